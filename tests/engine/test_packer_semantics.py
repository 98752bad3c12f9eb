"""Packer amazon-ebs semantics a conformance run checks: build template data, the tagging rules,
output prefixes, amibake's own tags, RSA keys (issue 18).

Real boto3 over HTTP against the local cloud and real asyncssh, as in test_build.py.
Packer's behaviour quoted here comes from packer-plugin-amazon: builder/ebs/builder.go (which
options it renders at run time), step_create_ami.go (run_tags on the AMI and its snapshots
unless skip_ami_run_tags), common/step_create_tags.go (tags on the AMI and its snapshots,
snapshot_tags over them on the snapshots), common/interpolate_build_info.go (the data).
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.core.aws import Aws
from amibake.core.engine.build import packer_build_name, run_builds, select_builders
from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.events import Event, ResourceChanged, StepStarted
from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.settings import Settings
from amibake.core.sweep import Sweeper
from amibake.core.templates import TemplateError, load
from amibake.core.templates.gotemplate import GoTemplateError, render_runtime
from amibake.tui.cli.build import Printer, _amibake_tags
from tests.engine.test_build import FOCAL, Harness, builder, harness, restore_cloud, shell

CANONICAL = "099720109477"
__all__ = ["harness", "restore_cloud"]  # the fixtures of test_build.py, used here too


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def user_tags(resource: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in tags_of(resource).items() if not k.startswith("amibake:")}


def image_and_snapshot(harness: Harness, region: str, image_id: str) -> tuple[dict, dict]:
    ec2 = harness.client(region)
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    return image, snapshot


def focal_source(harness: Harness) -> dict[str, Any]:
    images = harness.client().describe_images(
        Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"]
    return max(images, key=lambda i: i["CreationDate"])


HCL = """\
source "amazon-ebs" "example" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  source_ami_filter {
    filters     = { name = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*" }
    owners      = ["099720109477"]
    most_recent = true
  }
  ami_name        = "packer-example-{{timestamp}}-NAME"
  ami_description = "Built from {{ .SourceAMIName }} in {{ .BuildRegion }}"
  run_tags = {
    Source = "{{ .SourceAMI }}"
  }
  tags = {
    Base_AMI_Name = "{{ .SourceAMIName }}"
    Extra         = "{{ .SourceAMITags.Conformance }}"
    Owner         = "{{ .SourceAMIOwner }}"
    Made          = "{{isotime \\"2006\\"}}"
  }
  snapshot_tags = {
    From = "{{ .SourceAMI | clean_resource_name }}"
  }
}

build {
  sources = ["source.amazon-ebs.example"]
  provisioner "shell" { inline = ["echo baked"] }
}
"""


# -- load time ---------------------------------------------------------------------------------


def test_hcl_builder_strings_render_load_time_functions_and_keep_build_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "example.pkr.hcl"
    path.write_text(HCL)
    spec = load(path)
    (b,) = spec.builders
    assert b.ami_name == f"packer-example-{int(spec.build_time.timestamp())}-NAME"
    assert b.ami_description == "Built from {{ .SourceAMIName }} in {{ .BuildRegion }}"
    assert b.tags["Base_AMI_Name"] == "{{ .SourceAMIName }}"
    assert b.tags["Made"] == spec.build_time.strftime("%Y")
    assert b.run_tags["Source"] == "{{ .SourceAMI }}"


@pytest.mark.parametrize("suffix", [".pkr.hcl", ".json"])
def test_build_data_outside_the_run_time_options_is_a_located_error(
    tmp_path: Path, suffix: str
) -> None:
    if suffix == ".json":
        body = builder(ami_name="from {{ .SourceAMIName }}")
        path = tmp_path / "t.json"
        path.write_text(json.dumps({"builders": [body]}, indent=2))
    else:
        path = tmp_path / f"t{suffix}"
        path.write_text(HCL.replace("packer-example-{{timestamp}}", "from {{ .SourceAMIName }}"))
    with pytest.raises(TemplateError) as caught:
        load(path)
    (problem,) = [str(p) for p in caught.value.problems]
    assert "ami_name" in problem and "`{{ .SourceAMIName }}` is known only once the build runs" in (
        problem
    )
    where = (
        "t.json:18:19: builders[0].ami_name"
        if suffix == ".json"
        else ("t.pkr.hcl:10:21: source.amazon-ebs.example.ami_name")
    )
    assert problem.startswith(f"{path.parent}/{where}: "), problem


def test_render_build_template_as_packer_does() -> None:
    info = {
        "BuildRegion": "eu-central-1",
        "SourceAMI": "ami-0123456789abcdef0",
        "SourceAMIName": "ubuntu/images/focal 20.04",
        "SourceAMITags": {"Name": "base"},
    }
    assert render_runtime("{{ .BuildRegion }}/{{.SourceAMI}}", info, {}) == (
        "eu-central-1/ami-0123456789abcdef0"
    )
    assert render_runtime("{{ .SourceAMITags.Name }}", info, {}) == "base"
    assert render_runtime('{{ index .SourceAMITags "Name" }}', info, {}) == "base"
    # Go's text/template (default missingkey): a missing key of the map field prints
    # "<no value>"; `index` gives the map's zero value, "".
    assert render_runtime("[{{ .SourceAMITags.Missing }}]", info, {}) == "[<no value>]"
    assert render_runtime('[{{ index .SourceAMITags "Missing" }}]', info, {}) == "[]"
    assert render_runtime("{{ .SourceAMIName | clean_resource_name }}", info, {}) == (
        "ubuntu/images/focal 20.04"
    )
    with pytest.raises(GoTemplateError, match=r"did you mean `SourceAMIName`"):
        render_runtime("{{ .SourceAmiName }}", info, {})


# -- a build -----------------------------------------------------------------------------------


async def test_hcl_build_renders_build_data_and_tags_as_packer(
    harness: Harness, restore_cloud: LocalCloud
) -> None:
    source = focal_source(harness)
    ec2 = harness.client()
    ec2.create_tags(Resources=[source["ImageId"]], Tags=[{"Key": "Conformance", "Value": "yes"}])
    path = harness.directory / "example.pkr.hcl"
    path.write_text(HCL.replace("NAME", uuid.uuid4().hex[:8]))
    out = io.StringIO()
    spec = load(path)
    names = {b.name: packer_build_name(spec, b) for b in spec.builders}
    printer = Printer(out, colour=False, timestamps=False, names=names)
    try:
        (result,) = await harness.build(path, on_event=printer)
    finally:
        ec2.delete_tags(Resources=[source["ImageId"]], Tags=[{"Key": "Conformance"}])
    assert result.status == "succeeded", result.error
    image, snapshot = image_and_snapshot(harness, "us-east-1", result.artifacts["us-east-1"])
    assert image["Description"] == f"Built from {source['Name']} in us-east-1"
    assert user_tags(image) == {
        "Source": source["ImageId"],  # run_tags go on the AMI too
        "Base_AMI_Name": source["Name"],
        "Extra": "yes",
        "Owner": CANONICAL,
        "Made": spec.build_time.strftime("%Y"),
    }
    assert user_tags(snapshot) == {**user_tags(image), "From": source["ImageId"]}
    # Output lines carry Packer's prefix for an HCL build: `amazon-ebs.<name>:`.
    lines = out.getvalue().splitlines()
    assert "==> amazon-ebs.example: Preparing source AMI, key pair, security group" in lines
    assert "    amazon-ebs.example: baked" in lines
    assert all(
        line.startswith(("==> amazon-ebs.example: ", "    amazon-ebs.example: ")) for line in lines
    )


def test_legacy_json_output_keeps_the_builders_name(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder("ubuntu")]}))
    spec = load(path)
    names = {b.name: packer_build_name(spec, b) for b in spec.builders}
    assert names == {"ubuntu": "ubuntu"}
    out = io.StringIO()
    Printer(out, colour=False, timestamps=False, names=names)(
        StepStarted(build="ubuntu", step="instance", title="Launching the instance")
    )
    assert out.getvalue() == "==> ubuntu: Launching the instance\n"


async def test_run_tags_tags_and_snapshot_tags_in_every_region(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [
                builder(
                    ami_regions=["us-west-2"],
                    run_tags={"Env": "run", "Shared": "from-run"},
                    tags={"Shared": "from-tags", "Team": "bake"},
                    snapshot_tags={"Kind": "root", "Team": "snap"},
                )
            ],
            "provisioners": [shell("true")],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    image, snapshot = image_and_snapshot(harness, "us-east-1", result.artifacts["us-east-1"])
    # tags win over run_tags on the AMI; snapshot_tags win over both on its snapshots.
    assert user_tags(image) == {"Env": "run", "Shared": "from-tags", "Team": "bake"}
    assert user_tags(snapshot) == {
        "Env": "run",
        "Shared": "from-tags",
        "Team": "snap",
        "Kind": "root",
    }
    # The copy carries the source AMI's tags (CopyImageTags); its new snapshot gets tags and
    # snapshot_tags only (Packer's CreateImage put the run tags on the first snapshots only).
    copy, copy_snapshot = image_and_snapshot(harness, "us-west-2", result.artifacts["us-west-2"])
    assert user_tags(copy) == {"Env": "run", "Shared": "from-tags", "Team": "bake"}
    assert user_tags(copy_snapshot) == {"Shared": "from-tags", "Team": "snap", "Kind": "root"}
    # The instance had the run tags; its volumes only run_volume_tags (none here).
    ec2 = harness.client()
    tagged = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [result.build_id]}]
    (instance,) = [
        i for r in ec2.describe_instances(Filters=tagged)["Reservations"] for i in r["Instances"]
    ]
    assert user_tags(instance) == {"Name": "amibake builder", "Env": "run", "Shared": "from-run"}


async def test_skip_ami_run_tags_keeps_run_tags_off_the_ami(harness: Harness) -> None:
    # Legacy JSON: the same build template data as in HCL.
    template = harness.template(
        {
            "builders": [
                builder(
                    run_tags={"Env": "run"},
                    tags={"Team": "bake", "Base": "{{ .SourceAMIName }}"},
                    ami_description="from {{ .SourceAMI }} ({{ .SourceAMIOwnerName }})",
                    skip_ami_run_tags=True,
                )
            ]
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    source = focal_source(harness)
    image, snapshot = image_and_snapshot(harness, "us-east-1", result.artifacts["us-east-1"])
    assert user_tags(image) == {"Team": "bake", "Base": source["Name"]}
    assert user_tags(snapshot) == {"Team": "bake", "Base": source["Name"]}
    assert image["Description"] == f"from {source['ImageId']} ({source.get('ImageOwnerAlias', '')})"


# -- amibake's own tags --------------------------------------------------------------------------


async def test_no_amibake_tags_leaves_the_artifacts_clean(harness: Harness) -> None:
    template = harness.template({"builders": [builder(tags={"Team": "bake"})]})
    (result,) = await harness.build(template, amibake_tags=False)
    assert result.status == "succeeded", result.error
    image, snapshot = image_and_snapshot(harness, "us-east-1", result.artifacts["us-east-1"])
    assert tags_of(image) == {"Team": "bake"}
    assert tags_of(snapshot) == {"Team": "bake"}
    # The temporary resources still carried the build's tag, and are all gone.
    assert harness.leftovers(result.build_id) == {}


async def test_without_amibake_tags_cleanup_and_sweep_go_by_the_ledger(
    harness: Harness, restore_cloud: LocalCloud, tmp_path: Path
) -> None:
    # The copy to us-west-2 fails after the AMI exists; --on-error abort keeps the AMI,
    # which carries no amibake tag: the sweep finds it (and its snapshot) through the ledger.
    restore_cloud.set_faults(
        FaultPlan([FaultRule(operation="ec2:CopyImage", error="InvalidParameterValue", status=400)])
    )
    template = harness.template({"builders": [builder(ami_regions=["us-west-2"])]})
    spec = load(template)
    options = harness.options(amibake_tags=False, on_error="abort")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    aws = Aws(options.target)
    try:
        (result,) = await run_builds(
            spec, select_builders(spec), aws, options, harness.events.append, ledger=ledger
        )
        assert result.status == "failed"
        restore_cloud.set_faults(FaultPlan())
        ec2 = harness.client()
        kept = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [spec.builders[0].ami_name]}]
        )["Images"]
        (image,) = kept
        assert not any(k.startswith("amibake:") for k in tags_of(image))
        report = await Sweeper(aws, ledger=ledger, build_id=result.build_id).sweep(
            ["us-east-1", "us-west-2"]
        )
        assert report.clean, report.failed
        swept = {(o.kind, o.resource_id) for o in report.deleted}
        snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        assert {("image", image["ImageId"]), ("snapshot", snapshot_id)} <= swept
        assert ec2.describe_images(ImageIds=[image["ImageId"]])["Images"] == []
        assert harness.leftovers(result.build_id) == {}
    finally:
        aws.close()
        ledger.close()


def test_the_setting_and_the_flag_turn_amibake_tags_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    settings_file = tmp_path / "settings.toml"
    monkeypatch.setattr(Settings, "default_path", staticmethod(lambda: settings_file))
    assert _amibake_tags(argparse.Namespace(amibake_tags=None)) is True
    settings_file.write_text("[build]\ntag_artifacts = false\n")
    assert Settings.load().tag_artifacts is False
    assert _amibake_tags(argparse.Namespace(amibake_tags=None)) is False
    settings_file.write_text("")
    assert _amibake_tags(argparse.Namespace(amibake_tags=False)) is False
    from amibake.tui.cli import build_parser

    parsed = build_parser().parse_args(["build", "--no-amibake-tags", "t.pkr.hcl"])
    assert parsed.amibake_tags is False


# -- RSA temporary keys --------------------------------------------------------------------------


async def test_rsa_temporary_key_logs_in_to_a_sha2_only_sshd(harness: Harness) -> None:
    # The local instances refuse ssh-rsa (SHA-1) signatures, as OpenSSH 8.8+ does
    # (tests/local/test_image_attributes.py shows a SHA-1 client refused).
    template = harness.template(
        {
            "builders": [
                builder(
                    temporary_key_pair_type="rsa",
                    temporary_key_pair_bits=2048,
                    skip_create_ami=True,
                )
            ],
            "provisioners": [shell("cat ~/.ssh/authorized_keys")],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    (line,) = harness.lines("stdout")
    key = asyncssh.import_public_key(line)
    assert key.algorithm == b"ssh-rsa"
    assert key.pyca_key.key_size == 2048


async def test_without_amibake_tags_a_cancelled_build_still_removes_its_ami(
    harness: Harness, restore_cloud: LocalCloud
) -> None:
    restore_cloud.set_latency("fast")
    template = harness.template({"builders": [builder()]})
    name = load(template).builders[0].ami_name
    task: asyncio.Task[Any] | None = None
    loop = asyncio.get_running_loop()
    images: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ResourceChanged) and event.kind == "image":
            images.append(event.resource_id)
        if isinstance(event, StepStarted) and event.step == "create-image" and task is not None:
            loop.call_later(0.3, task.cancel)

    task = asyncio.ensure_future(harness.build(template, on_event=on_event, amibake_tags=False))
    (result,) = await task
    assert result.status == "cancelled"
    ec2 = harness.client()
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])
    assert found["Images"] == []
    image_ids = {i for i in images if i.startswith("ami-")}
    assert image_ids, "the AMI was created before the cancel"
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [s for s in snapshots if any(i in s.get("Description", "") for i in image_ids)] == []
    assert harness.leftovers(result.build_id) == {}
