"""Packer semantics found while running the corpus (brief r5/B2), against the local cloud with
real boto3 over HTTP and real asyncssh:

- the singular tag blocks (``tag``, ``run_tag``, ``snapshot_tag``, ``run_volume_tag``) reach
  the AMI, its snapshot, the instance and its volumes (packer-plugin-amazon: KeyValues.CopyOn
  into the maps in ami_config.go / run_config.go, NameValues for ebs's run_volume_tag);
- ``build.*`` (HCL) and ``{{ build `X` }}`` (legacy JSON) in every provisioner and
  post-processor option, filled in when it runs (hcl2template/types.hcl_provisioner.go,
  provisioner/shell and file render their fields with the build's generated data);
- a folder template's relative file source found next to its files (core/templates/paths.py);
- ``pause_before_ssm``: Packer's docs say 10s by default, its source sets none
  (builder/common/run_config.go; step_create_ssm_tunnel.go waits only when it is > 0).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.engine.steps.ssh_connect import ConnectStep
from amibake.core.errors import AmibakeError
from amibake.core.events import Event, LogLines, StepStarted
from amibake.core.local.cloud import LocalCloud
from tests.engine.test_build import FOCAL, Harness, builder, harness, restore_cloud, shell
from tests.engine.test_run_options import running_instance
from tests.engine.test_session_manager import FakeSsm, context, plugin, said, ssm
from tests.templates.helpers import load_text

__all__ = ["harness", "plugin", "restore_cloud", "ssm"]


def user_tags(resource: dict[str, Any]) -> dict[str, str]:
    tags = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
    return {k: v for k, v in tags.items() if not k.startswith("amibake:")}


def output_lines(harness: Harness) -> list[str]:
    return [line for e in harness.events if isinstance(e, LogLines) for line in e.lines]


FOLDER_TEMPLATE = """\
source "amazon-ebs" "folder" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  source_ami_filter {
    filters     = { name = "FOCAL" }
    owners      = ["099720109477"]
    most_recent = true
  }
  ami_name = "build-data-NAME"
  tags     = { Team = "map", Keep = "map" }
  tag {
    key   = "Team"
    value = "block"
  }
  tag {
    key   = "Base"
    value = "{{ .SourceAMIName }}"
  }
  run_tag {
    key   = "Run"
    value = "NAME"
  }
  snapshot_tag {
    key   = "Snap"
    value = "{{ .BuildRegion }}"
  }
  run_volume_tag {
    name  = "Disk"
    value = "root of {{ .SourceAMI }}"
  }
}
"""

FOLDER_BUILD = """\
build {
  sources = ["source.amazon-ebs.folder"]
  provisioner "file" {
    source      = "files/hello.txt"
    destination = "/tmp/${build.ID}.txt"
  }
  provisioner "shell" {
    inline = [
      "echo id=${build.ID} user=${build.User}",
      "echo x=$X",
      "cat /tmp/${build.ID}.txt",
    ]
    environment_vars = ["X=${build.Host}:${build.Port}"]
  }
  post-processor "shell-local" {
    inline = ["echo post=${build.ID} source=${build.SourceAMI}"]
  }
}
"""


async def test_folder_template_tag_blocks_build_data_and_relative_source(
    harness: Harness,
) -> None:
    name = uuid.uuid4().hex[:8]
    folder = harness.directory / "project"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "hello.txt").write_text("hello from the folder\n")
    (folder / "source.pkr.hcl").write_text(
        FOLDER_TEMPLATE.replace("FOCAL", FOCAL).replace("NAME", name)
    )
    (folder / "build.pkr.hcl").write_text(FOLDER_BUILD)
    # the working directory has no files/hello.txt: the folder's own is uploaded
    assert os.getcwd() != str(folder) and not Path("files/hello.txt").exists()
    ec2 = harness.client()
    seen: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        # while the instance runs: its tags and its volumes' tags
        if isinstance(event, StepStarted) and event.step == "stop" and not seen:
            seen["instance"], seen["volumes"] = running_instance(ec2, "Run", name)

    (result,) = await harness.build(folder, on_event=on_event)
    assert result.status == "succeeded", result.error
    instance = seen["instance"]
    source_ami = instance["ImageId"]
    source_name = ec2.describe_images(ImageIds=[source_ami])["Images"][0]["Name"]

    lines = output_lines(harness)
    assert f"id={instance['InstanceId']} user=ubuntu" in lines
    host = next(line for line in lines if line.startswith("x=")).removeprefix("x=")
    assert host.split(":")[0].startswith("127.") and host.split(":")[1].isdigit()
    assert "hello from the folder" in lines
    assert f"post={instance['InstanceId']} source={source_ami}" in lines

    image = ec2.describe_images(ImageIds=[result.artifacts["us-east-1"]])["Images"][0]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    (snapshot,) = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    # tag blocks win over the map; run tags go on the AMI too (Packer's CreateImage)
    ami_tags = {"Team": "block", "Keep": "map", "Base": source_name, "Run": name}
    assert user_tags(image) == ami_tags
    assert user_tags(snapshot) == {**ami_tags, "Snap": "us-east-1"}
    assert user_tags(instance) == {"Name": "amibake builder", "Run": name}
    assert seen["volumes"]
    assert all(user_tags(v) == {"Disk": f"root of {source_ami}"} for v in seen["volumes"])


async def test_legacy_json_build_function_in_provisioners_and_post_processors(
    harness: Harness,
) -> None:
    template = harness.template(
        {
            "builders": [builder(run_tag=[{"key": "Legacy", "value": "yes"}])],
            "provisioners": [
                shell(
                    "echo id={{ build `ID` }} user={{ build `User` }}",
                    'echo conn={{ build "ConnType" }} x=$X',
                    environment_vars=["X={{ build `Host` }}"],
                ),
            ],
            "post-processors": [
                {"type": "shell-local", "inline": ["echo post={{ build `ID` }}"]},
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    ec2 = harness.client()
    tagged = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [result.build_id]}]
    (instance,) = [
        i for r in ec2.describe_instances(Filters=tagged)["Reservations"] for i in r["Instances"]
    ]
    assert user_tags(instance) == {"Name": "amibake builder", "Legacy": "yes"}
    lines = output_lines(harness)
    assert f"id={instance['InstanceId']} user=ubuntu" in lines
    conn = next(line for line in lines if line.startswith("conn="))
    assert conn.startswith("conn=ssh x=127.")
    assert f"post={instance['InstanceId']}" in lines


@pytest.mark.parametrize(
    ("given", "waited"),
    [({}, []), ({"pause_before_ssm": "50ms"}, ["Waiting 0.05s before starting the SSM session"])],
)
async def test_session_manager_pauses_only_when_asked(
    engine_cloud: LocalCloud,
    ssm: FakeSsm,
    plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: dict[str, str],
    waited: list[str],
) -> None:
    options = {"ssh_interface": "session_manager", "iam_instance_profile": "ssm-core", **given}
    (decoded,) = load_text(json.dumps({"builders": [builder(**options)]})).builders
    monkeypatch.setenv("STUB_PLUGIN_FAIL", "gone")  # the session ends at once: no SSH needed
    ssm.not_connected = 0
    events: list[Event] = []
    ctx = context(engine_cloud, ssm, events)
    ctx.builder = replace(ctx.builder, pause_before_ssm=decoded.pause_before_ssm)
    step = ConnectStep()
    try:
        with pytest.raises(AmibakeError, match="session-manager-plugin exited"):
            await step.run(ctx)
    finally:
        await step.cleanup(ctx)
        ctx.aws.close()
    assert [m for m in said(events) if m.startswith("Waiting")] == waited
    assert [action for action, _, _ in ssm.calls] == ["StartSession", "TerminateSession"]
