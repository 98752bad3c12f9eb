"""End-to-end builds against the local cloud: real boto3 over HTTP, real asyncssh, real sandbox.

After every build the cloud is searched, through boto3, for anything carrying
the build's tag: on failure nothing may remain; on success only the AMIs and
their snapshots.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Aws, CredentialsError, Target
from amibake.core.engine.build import BuildResult, run_builds, select_builders
from amibake.core.engine.context import TAG_BUILD_ID, BuildOptions
from amibake.core.errors import UsageError
from amibake.core.events import BuildFinished, Event, LogLines, StepFinished, StepStarted
from amibake.core.examples import EXAMPLES_DIR
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.templates import load

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"


def builder(name: str = "amazon-ebs", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "amazon-ebs",
        "name": name,
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami_filter": {
            "filters": {"name": FOCAL},
            "owners": ["099720109477"],
            "most_recent": True,
        },
        "ami_name": f"test-{name}-{uuid.uuid4().hex[:8]}",
    }
    base.update(overrides)
    return base


def shell(*commands: str, **extra: Any) -> dict[str, Any]:
    return {"type": "shell", "inline": list(commands), **extra}


#: a shell provisioner's script run as root, as Packer's docs show it (overlay roots, issue 13)
AS_ROOT = {"execute_command": "chmod +x {{ .Path }}; sudo {{ .Vars }} {{ .Path }}"}


class Harness:
    def __init__(self, cloud: LocalCloud, directory: Path) -> None:
        self.cloud = cloud
        self.directory = directory
        self.events: list[Event] = []

    def template(self, data: dict[str, Any], name: str = "template.json") -> Path:
        path = self.directory / name
        path.write_text(json.dumps(data, indent=2))
        return path

    def options(self, **overrides: Any) -> BuildOptions:
        target = Target(
            endpoint_url=self.cloud.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
        )
        values: dict[str, Any] = {
            "target": target,
            "ssh_port": self.cloud.ssh_port,
            "console_wait": 5.0,
        }
        values.update(overrides)
        return BuildOptions(**values)

    async def build(
        self,
        template: Path,
        *,
        on_event: Callable[[Event], None] | None = None,
        variables: dict[str, str] | None = None,
        **options: Any,
    ) -> list[BuildResult]:
        spec = load(template, vars=list((variables or {}).items()))
        opts = self.options(**options)
        aws = Aws(opts.target)

        def emit(event: Event) -> None:
            # Every event must be JSON-serialisable: it is the engine's only interface.
            json.loads(event.to_json())
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        try:
            return await run_builds(spec, select_builders(spec), aws, opts, emit)
        finally:
            aws.close()

    def client(self, region: str = "us-east-1") -> Any:
        return self.cloud.client("ec2", region)

    def leftovers(self, build_id: str, regions: tuple[str, ...] = ("us-east-1",)) -> dict:
        """Everything in the cloud that carries this build's tag (or its key pair's name)."""
        tag = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}]
        found: dict[str, list[str]] = {}
        for region in regions:
            ec2 = self.client(region)
            instances = [
                i["InstanceId"]
                for r in ec2.describe_instances(Filters=tag)["Reservations"]
                for i in r["Instances"]
                if i["State"]["Name"] != "terminated"
            ]
            groups = [
                g["GroupId"]
                for g in ec2.describe_security_groups()["SecurityGroups"]
                if g["GroupName"] == f"amibake_{build_id}"
            ]
            keys = [
                k["KeyName"]
                for k in ec2.describe_key_pairs()["KeyPairs"]
                if k["KeyName"] == f"amibake_{build_id}"
            ]
            volumes = [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]]
            images = [
                i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=tag)["Images"]
            ]
            snapshots = [
                s["SnapshotId"]
                for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]
            ]
            for kind, ids in (
                ("instances", instances),
                ("security_groups", groups),
                ("key_pairs", keys),
                ("volumes", volumes),
                ("images", images),
                ("snapshots", snapshots),
            ):
                if ids:
                    found.setdefault(kind, []).extend(ids)
        return found

    def lines(self, stream: str | None = None) -> list[str]:
        return [
            text
            for e in self.events
            if isinstance(e, LogLines) and (stream is None or e.stream == stream)
            for text in e.lines
        ]


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    return Harness(cloud, tmp_path)


@pytest.fixture
def restore_cloud(cloud: LocalCloud) -> Any:
    yield cloud
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())


# -- the seed ------------------------------------------------------------------------------------


async def test_seed_template_fails_in_the_sandbox_and_leaves_nothing(harness: Harness) -> None:
    (result,) = await harness.build(EXAMPLES_DIR / "seed.json")
    assert result.status == "failed"
    assert result.error is not None
    if harness.cloud.overlay_mode:  # issue 13: sudo works; apt fails as it does offline
        assert result.error.startswith("shell provisioner 1 failed with exit status 100")
    else:
        assert result.error.startswith("shell provisioner 1 failed with exit status 127")
        assert "sudo: not found" in result.error
    assert harness.leftovers(result.build_id) == {}
    failed = [e for e in harness.events if isinstance(e, StepFinished) and e.status == "failed"]
    assert [e.step for e in failed] == ["provision"]


async def test_seed_variant_with_runnable_commands_builds_a_tagged_ami(harness: Harness) -> None:
    seed = json.loads((EXAMPLES_DIR / "seed.json").read_text())
    seed["provisioners"][0]["inline"] = [
        "echo preparing nginx config",
        "mkdir -p ~/nginx && echo 'server {}' > ~/nginx/site.conf",
        "echo warning >&2",
    ]
    seed["builders"][0]["ami_name"] = f"my-nginx-ami-{uuid.uuid4().hex[:8]}-{{{{timestamp}}}}"
    (result,) = await harness.build(harness.template(seed))
    assert result.status == "succeeded", result.error
    image_id = result.artifacts["us-east-1"]
    image = harness.client().describe_images(ImageIds=[image_id])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["Name"] == "my-nginx-ami" and tags["BuildTool"] == "Packer"
    assert tags[TAG_BUILD_ID] == result.build_id
    assert harness.lines("stdout") == ["preparing nginx config"]
    assert harness.lines("stderr") == ["warning"]
    left = harness.leftovers(result.build_id)
    assert set(left) == {"images", "snapshots"}
    assert left["images"] == [image_id]
    assert left["snapshots"] == result.snapshots["us-east-1"]


# -- templates with more moving parts ------------------------------------------------------------


async def test_two_builders_run_in_parallel_with_their_own_streams(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [builder("alpha"), builder("beta", region="eu-west-1")],
            "provisioners": [shell("echo hello from $PACKER_BUILD_NAME")],
        }
    )
    results = await harness.build(template)
    assert {r.name: r.status for r in results} == {"alpha": "succeeded", "beta": "succeeded"}
    by_build = {
        name: [
            text
            for e in harness.events
            if isinstance(e, LogLines) and e.build == name
            for text in e.lines
        ]
        for name in ("alpha", "beta")
    }
    assert by_build == {"alpha": ["hello from alpha"], "beta": ["hello from beta"]}
    # Interleaved: beta started before alpha finished.
    order = [(e.build, type(e).__name__) for e in harness.events]
    assert order.index(("beta", "BuildStarted")) < order.index(("alpha", "BuildFinished"))


def test_the_plan_lists_only_the_steps_a_builder_runs(tmp_path: Path) -> None:
    from amibake.core.engine.build import planned_steps

    path = tmp_path / "t.json"
    plain, full = (
        builder("plain"),
        builder(
            "full",
            encrypt_boot=True,
            kms_key_id="alias/shared",  # Packer: no sharing of an AMI under the default key
            ami_regions=["us-west-2"],
            ami_users=["111122223333"],
        ),
    )
    path.write_text(json.dumps({"builders": [plain, full], "provisioners": [shell("true")]}))
    spec = load(path)
    plans = {b.name: [name for name, _ in planned_steps(spec, b)] for b in spec.builders}
    common = ["prevalidate", "prepare", "instance", "ssh", "provision", "stop", "create-image"]
    assert plans["plain"] == [*common, "artifacts"]
    assert plans["full"] == [
        *common,
        "encrypt-boot",
        "copy-image",
        "image-attributes",
        "artifacts",
    ]


def test_only_and_except_select_builders(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder("alpha"), builder("beta")]}))
    spec = load(path)
    assert [b.name for b in select_builders(spec, only=["beta"])] == ["beta"]
    assert [b.name for b in select_builders(spec, except_=["beta"])] == ["alpha"]
    with pytest.raises(UsageError, match="no builder named 'gamma'"):
        select_builders(spec, only=["gamma"])


async def test_region_copies_are_tagged_and_reported(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [
                builder(
                    ami_regions=["us-west-2", "eu-central-1"],
                    tags={"Team": "bake"},
                    snapshot_tags={"Kind": "root"},
                    ami_users=["111122223333"],
                )
            ]
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    assert set(result.artifacts) == {"us-east-1", "us-west-2", "eu-central-1"}
    for region, image_id in result.artifacts.items():
        ec2 = harness.client(region)
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        assert {"Key": "Team", "Value": "bake"} in image["Tags"]
        snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        assert {"Key": "Kind", "Value": "root"} in snapshot["Tags"]
        permissions = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
        assert {"UserId": "111122223333"} in permissions["LaunchPermissions"]


async def test_file_uploads_scripts_and_environment(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>baked</h1>\n")
    (tmp_path / "site" / "css").mkdir()
    (tmp_path / "site" / "css" / "main.css").write_text("body {}\n")
    (tmp_path / "setup.sh").write_text('#!/bin/sh\necho "greeting=$GREETING port=$PORT"\n')
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [
                {"type": "file", "source": "site/", "destination": "/home/ubuntu/www"},
                {"type": "file", "source": "setup.sh", "destination": "/home/ubuntu/"},
                {
                    "type": "shell",
                    "script": "setup.sh",
                    "environment_vars": ["GREETING=hello world", "PORT=8080"],
                    "execute_command": "{{ .Vars }} sh {{ .Path }}",
                },
                shell("cat ~/www/index.html ~/www/css/main.css", "ls ~/setup.sh"),
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    assert harness.lines("stdout") == [
        "greeting=hello world port=8080",
        "<h1>baked</h1>",
        "body {}",
        "/home/ubuntu/setup.sh",
    ]


async def test_force_deregister_replaces_an_ami_of_the_same_name(harness: Harness) -> None:
    name = f"reused-{uuid.uuid4().hex[:8]}"
    template = harness.template({"builders": [builder(ami_name=name)]})
    (first,) = await harness.build(template)
    assert first.status == "succeeded"
    (refused,) = await harness.build(template)
    assert refused.status == "failed"
    assert refused.error == (
        f"an AMI named {name!r} already exists in us-east-1 ({first.artifacts['us-east-1']}); "
        "set force_deregister or use --force"
    )
    (second,) = await harness.build(template, force=True)
    assert second.status == "succeeded", second.error
    mine = harness.client().describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]
    )["Images"]
    assert [i["ImageId"] for i in mine] == [second.artifacts["us-east-1"]]


async def test_sensitive_values_never_reach_events(harness: Harness) -> None:
    template = harness.template(
        {
            "variables": {"token": "s3cr3t-t0ken-value"},
            "sensitive-variables": ["token"],
            "builders": [builder(skip_create_ami=True)],
            "provisioners": [shell("echo using {{user `token`}} now")],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    assert harness.lines("stdout") == ["using <sensitive> now"]
    assert not any("s3cr3t" in e.to_json() for e in harness.events)


# -- error paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "provisioners", "error"),
    [
        (
            {"source_ami": "ami-0123456789abcdef0", "source_ami_filter": None},
            [],
            "DescribeImages: InvalidAMIID.NotFound",
        ),
        (
            {"source_ami_filter": {"filters": {"name": FOCAL}, "owners": ["099720109477"]}},
            [],
            "set most_recent = true or narrow the filter",
        ),
        ({"ssh_username": "root", "ssh_timeout": "3s"}, [], "root"),
        ({}, [shell("sleep 30", timeout="1s")], "timed out"),
        ({}, [shell("echo about to fail", "exit 3")], "failed with exit status 3"),
    ],
    ids=["unknown-ami", "ambiguous-filter", "wrong-user", "provisioner-timeout", "exit-code"],
)
async def test_failures_are_clear_and_leave_nothing(
    harness: Harness, overrides: dict[str, Any], provisioners: list[Any], error: str
) -> None:
    spec = builder(**overrides)
    spec = {k: v for k, v in spec.items() if v is not None}
    template = harness.template({"builders": [spec], "provisioners": provisioners})
    (result,) = await harness.build(template)
    assert result.status == "failed"
    assert result.error is not None and error in result.error
    assert "\n" not in result.error
    assert harness.leftovers(result.build_id) == {}


async def test_throttling_is_ridden_out_by_botocore_retries(
    harness: Harness, restore_cloud: LocalCloud
) -> None:
    plan = FaultPlan(
        [FaultRule(operation="ec2:*", error="RequestLimitExceeded", probability=0.15)], seed=11
    )
    restore_cloud.set_faults(plan)
    template = harness.template({"builders": [builder()]})
    (result,) = await harness.build(template)
    restore_cloud.set_faults(FaultPlan())
    assert result.status == "succeeded", result.error
    assert plan.fired()[0]["fired"] >= 3  # the build really met throttling
    assert harness.leftovers(result.build_id).keys() == {"images", "snapshots"}


# -- cancellation --------------------------------------------------------------------------------


async def test_encrypt_boot_leaves_only_encrypted_amis(harness: Harness) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    template = harness.template(
        {
            "builders": [
                builder(
                    ami_regions=["us-west-2"], encrypt_boot=True, kms_key_id=key, tags={"T": "1"}
                )
            ]
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    steps = [e.step for e in harness.events if isinstance(e, StepStarted)]
    assert steps.index("create-image") < steps.index("encrypt-boot") < steps.index("copy-image")
    expected_keys = {"us-east-1": key, "us-west-2": "alias/aws/ebs"}
    for region, image_id in result.artifacts.items():
        ec2 = harness.client(region)
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        assert image["Name"] == json.loads(template.read_text())["builders"][0]["ami_name"]
        ebs = image["BlockDeviceMappings"][0]["Ebs"]
        assert ebs["Encrypted"] is True
        assert ebs["KmsKeyId"].endswith(expected_keys[region])
        assert {"Key": "T", "Value": "1"} in image["Tags"]
    # the unencrypted intermediate AMI and its snapshot are gone: only the artifacts remain
    left = harness.leftovers(result.build_id, ("us-east-1", "us-west-2"))
    assert sorted(left["images"]) == sorted(result.artifacts.values())
    assert sorted(left["snapshots"]) == sorted(s for ids in result.snapshots.values() for s in ids)
    intermediate = harness.client().describe_images(
        Owners=["self"],
        Filters=[{"Name": "name", "Values": [f"*-unencrypted-{result.build_id}"]}],
    )["Images"]
    assert intermediate == []


async def test_cancel_while_encrypting_removes_both_amis(
    harness: Harness, restore_cloud: LocalCloud
) -> None:
    restore_cloud.set_latency("fast")
    template = harness.template({"builders": [builder(encrypt_boot=True)]})
    task: asyncio.Task[Any] | None = None
    loop = asyncio.get_running_loop()

    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted) and event.step == "encrypt-boot" and task is not None:
            loop.call_later(0.3, task.cancel)

    task = asyncio.ensure_future(harness.build(template, on_event=on_event))
    (result,) = await task
    assert result.status == "cancelled"
    assert harness.leftovers(result.build_id) == {}


@pytest.mark.parametrize(
    "step", ["prepare", "instance", "ssh", "provision", "create-image", "copy-image"]
)
async def test_cancel_at_each_step_cleans_up_everything(
    harness: Harness, restore_cloud: LocalCloud, step: str
) -> None:
    restore_cloud.set_latency("fast")
    template = harness.template(
        {
            "builders": [builder(ami_regions=["us-west-2"])],
            # Long enough to be cancelled in, only where that is the point.
            "provisioners": [shell("echo working", "sleep 20" if step == "provision" else "true")],
        }
    )
    task: asyncio.Task[Any] | None = None
    loop = asyncio.get_running_loop()

    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted) and event.step == step and task is not None:
            # Let the step get under way (its call sent, its wait begun), then cancel.
            loop.call_later(0.3, task.cancel)

    task = asyncio.ensure_future(harness.build(template, on_event=on_event))
    (result,) = await task
    assert result.status == "cancelled"
    finished = [e for e in harness.events if isinstance(e, BuildFinished)]
    assert [e.status for e in finished] == ["cancelled"]
    assert harness.leftovers(result.build_id, ("us-east-1", "us-west-2")) == {}


def test_examples_ship_with_their_files(tmp_path: Path) -> None:
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES_DIR, copy)
    for name in ("seed.json", "demo.pkr.hcl"):
        assert load(copy / name).builders


async def test_error_cleanup_provisioner_runs_after_a_failure(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [shell("echo step one", "false")],
            "error-cleanup-provisioner": shell("echo collecting logs after failure"),
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "failed"
    assert harness.lines("stdout") == ["step one", "collecting logs after failure"]
    assert harness.leftovers(result.build_id) == {}


async def test_rsa_temporary_key_pairs_work_too(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [builder(temporary_key_pair_type="rsa", skip_create_ami=True)],
            "provisioners": [shell("echo over rsa")],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    assert harness.lines("stdout") == ["over rsa"]


async def test_on_error_abort_keeps_the_resources(harness: Harness) -> None:
    template = harness.template({"builders": [builder()], "provisioners": [shell("exit 5")]})
    (result,) = await harness.build(template, on_error="abort")
    assert result.status == "failed"
    left = harness.leftovers(result.build_id)
    # The instance, its root volume, its key pair and security group: all there to debug.
    assert set(left) == {"instances", "volumes", "security_groups", "key_pairs"}
    # Tidy up by hand, as a user would after debugging.
    ec2 = harness.client()
    ec2.terminate_instances(InstanceIds=left["instances"])
    ec2.delete_key_pair(KeyName=left["key_pairs"][0])


async def test_missing_credentials_are_a_clear_error(cloud: LocalCloud, monkeypatch: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    aws = Aws(Target(endpoint_url=cloud.endpoint_url))
    try:
        with pytest.raises(CredentialsError) as excinfo:
            await aws.caller_identity("us-east-1")
    finally:
        aws.close()
    assert str(excinfo.value).startswith(
        "GetCallerIdentity: NoCredentials: no AWS credentials found"
    )


async def test_secrets_quoted_or_escaped_by_a_shell_are_redacted_everywhere(
    harness: Harness, tmp_path: Path
) -> None:
    from amibake.core.history import BuildRecorder

    secret = "p@ss w0rd'x"
    template = harness.template(
        {
            "variables": {"token": secret, "key": "-----BEGIN KEY-----\nAAAAsecretline\n-----END"},
            "sensitive-variables": ["token", "key"],
            "builders": [builder(skip_create_ami=True)],
            "provisioners": [
                shell(
                    'echo "$TOKEN"',
                    'bash -c \'printf "%q\\n" "$TOKEN"\'',
                    "bash -xc 'true \"$TOKEN\"' 2>&1",
                    "printf '%s\\n' \"$KEY\"",
                    environment_vars=["TOKEN={{user `token`}}", "KEY={{user `key`}}"],
                )
            ],
        }
    )
    recorder = BuildRecorder(load(template), root=tmp_path / "builds")
    (result,) = await harness.build(template, on_event=recorder)
    assert result.status == "succeeded", result.error
    # echo, printf %q, bash -x, and the three lines of the key (hidden whole).
    assert harness.lines("stdout") == [
        "<sensitive>",
        "<sensitive>",
        "+ true '<sensitive>'",
        "<sensitive>",
    ]
    dumped = "\n".join(e.to_json() for e in harness.events)
    on_disk = "\n".join(p.read_text() for p in (tmp_path / "builds").rglob("*") if p.is_file())
    for text in (dumped, on_disk):
        assert "w0rd" not in text and "secretline" not in text
    assert "<sensitive>" in dumped
