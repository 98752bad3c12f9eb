"""The AMI options group (issue 12) carried out against the local cloud: real boto3 over HTTP,
real asyncssh, asserting the requests the engine made, what the cloud then reports
(DescribeImages / DescribeImageAttribute / DescribeSnapshotAttribute) and that cleanup left
nothing but the artifacts.

Packer's behaviour quoted here is packer-plugin-amazon's: builder/ebs/step_create_ami.go
(ami_block_device_mappings on CreateImage), common/step_modify_ebs_instance.go (ENA, SR-IOV),
common/step_modify_ami_attributes.go (launch and create-volume permissions, product codes,
IMDS), common/step_enable_deprecation.go, step_enable_deregistration_protection.go,
common/step_ami_region_copy.go (region keys, skip_save_build_region, time-based copies),
common/step_stop_ebs_instance.go (the instance is stopped even with skip_create_ami) and
common/block_device.go (delete_on_termination defaults to false).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

from amibake.core.aws import Aws
from amibake.core.engine.build import BuildResult, run_builds, select_builders
from amibake.core.events import Event
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.templates import load
from tests.engine.test_build import FOCAL, Harness, builder, harness, restore_cloud, shell
from tests.engine.test_cli_build import run as run_cli

__all__ = ["harness", "restore_cloud"]

KEY_EAST = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_WEST = "arn:aws:kms:us-west-2:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdef3456"


class RecordingAws(Aws):
    """The engine's real AWS facade, noting each call's operation and parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    async def call(self, region: str, operation: str, /, **params: Any) -> dict[str, Any]:
        self.seen.append((region, operation, params))
        return await super().call(region, operation, **params)

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [p for _, op, p in self.seen if op == operation]


async def build(
    harness: Harness, template: Path, **options: Any
) -> tuple[BuildResult, RecordingAws]:
    spec = load(template)
    opts = harness.options(**options)
    aws = RecordingAws(opts.target)

    def emit(event: Event) -> None:
        json.loads(event.to_json())
        harness.events.append(event)

    try:
        (result,) = await run_builds(spec, select_builders(spec), aws, opts, emit)
    finally:
        aws.close()
    return result, aws


def mappings_by_device(image: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["DeviceName"]: m for m in image["BlockDeviceMappings"]}


async def test_every_ami_option_reaches_the_cloud(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [
                builder(
                    launch_block_device_mappings=[{"device_name": "/dev/sdg", "volume_size": 2}],
                    ami_block_device_mappings=[
                        {
                            "device_name": "/dev/sdf",
                            "volume_size": 5,
                            "volume_type": "gp3",
                            "throughput": 250,
                            "delete_on_termination": True,
                        },
                        {"device_name": "/dev/sdb", "virtual_name": "ephemeral0"},
                        {"device_name": "/dev/sdc", "no_device": True},
                    ],
                    ena_support=True,
                    sriov_support=True,
                    ami_regions=["us-east-1", "us-west-2"],
                    encrypt_boot=True,
                    region_kms_key_ids={"us-east-1": KEY_EAST, "us-west-2": KEY_WEST},
                    snapshot_copy_duration_minutes=15,
                    ami_users=["111122223333"],
                    ami_org_arns=[ORG],
                    ami_ou_arns=[OU],
                    snapshot_users=["111122223333"],
                    snapshot_groups=["all"],
                    ami_product_codes=["abcdefghijklmnopqrstuvwxy"],
                    imds_support="v2.0",
                    deprecate_at="2030-06-01T12:00:00Z",
                    deregistration_protection={"enabled": True},
                    tags={"Team": "bake"},
                )
            ],
            "provisioners": [shell("echo baked")],
        }
    )
    result, aws = await build(harness, template)
    try:
        assert result.status == "succeeded", result.error
        assert set(result.artifacts) == {"us-east-1", "us-west-2"}

        # The launch mapping: Packer's delete_on_termination default (false) went to EC2...
        (launch,) = aws.calls("RunInstances")
        assert launch["BlockDeviceMappings"] == [
            {"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": False, "VolumeSize": 2}}
        ]
        # ... and the stopped instance got ENA and SR-IOV before CreateImage, with its mappings
        modified = aws.calls("ModifyInstanceAttribute")
        assert {
            "InstanceId": result_instance(aws),
            "SriovNetSupport": {"Value": "simple"},
        } in modified
        assert {"InstanceId": result_instance(aws), "EnaSupport": {"Value": True}} in modified
        (create,) = aws.calls("CreateImage")
        assert create["BlockDeviceMappings"] == [
            {
                "DeviceName": "/dev/sdf",
                "Ebs": {
                    "DeleteOnTermination": True,
                    "VolumeType": "gp3",
                    "VolumeSize": 5,
                    "Throughput": 250,
                },
            },
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdc", "NoDevice": ""},
        ]
        # Each region's encrypted copy uses its own key; the region copy is time-based.
        copies = {region: p for region, op, p in aws.seen if op == "CopyImage"}
        assert copies["us-east-1"]["KmsKeyId"] == KEY_EAST
        assert "SnapshotCopyCompletionDurationMinutes" not in copies["us-east-1"]
        assert copies["us-west-2"]["KmsKeyId"] == KEY_WEST
        assert copies["us-west-2"]["Encrypted"] is True
        assert copies["us-west-2"]["SnapshotCopyCompletionDurationMinutes"] == 15

        for region, image_id in result.artifacts.items():
            ec2 = harness.client(region)
            image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
            devices = mappings_by_device(image)
            assert devices["/dev/sdf"]["Ebs"]["VolumeSize"] == 5
            assert devices["/dev/sdf"]["Ebs"]["DeleteOnTermination"] is True
            assert devices["/dev/sdb"]["VirtualName"] == "ephemeral0"
            assert "/dev/sdc" in devices and "Ebs" not in devices["/dev/sdc"]
            # the instance's extra volume was snapshotted too, as EC2 does
            assert devices["/dev/sdg"]["Ebs"]["SnapshotId"] in result.snapshots[region]
            key = KEY_EAST if region == "us-east-1" else KEY_WEST
            for snapshot_id in result.snapshots[region]:
                snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
                assert snapshot["Encrypted"] is True and snapshot["KmsKeyId"] == key
                permissions = ec2.describe_snapshot_attribute(
                    SnapshotId=snapshot_id, Attribute="createVolumePermission"
                )["CreateVolumePermissions"]
                assert {"UserId": "111122223333"} in permissions
                assert {"Group": "all"} in permissions
            assert image["EnaSupport"] is True
            assert image["SriovNetSupport"] == "simple"
            assert image["ImdsSupport"] == "v2.0"
            assert image["DeprecationTime"].startswith("2030-06-01T12:00:00")
            assert image["DeregistrationProtection"] == "enabled-without-cooldown"
            launch_permissions = ec2.describe_image_attribute(
                ImageId=image_id, Attribute="launchPermission"
            )["LaunchPermissions"]
            for permission in (
                {"UserId": "111122223333"},
                {"OrganizationArn": ORG},
                {"OrganizationalUnitArn": OU},
            ):
                assert permission in launch_permissions
            codes = ec2.describe_image_attribute(ImageId=image_id, Attribute="productCodes")
            assert [c["ProductCodeId"] for c in codes["ProductCodes"]] == [
                "abcdefghijklmnopqrstuvwxy"
            ]
            protection = ec2.describe_image_attribute(
                ImageId=image_id, Attribute="deregistrationProtection"
            )
            assert protection["DeregistrationProtection"]["Value"] == "enabled-without-cooldown"
        # Only the artifacts remain: the intermediary AMI, the instance and its kept volume
        # (delete_on_termination false) are gone.
        left = harness.leftovers(result.build_id, ("us-east-1", "us-west-2"))
        assert sorted(left.pop("images")) == sorted(result.artifacts.values())
        assert sorted(left.pop("snapshots")) == sorted(
            s for ids in result.snapshots.values() for s in ids
        )
        assert left == {}
    finally:
        for region, image_id in result.artifacts.items():
            harness.client(region).disable_image_deregistration_protection(ImageId=image_id)


def result_instance(aws: RecordingAws) -> str:
    (stop,) = aws.calls("StopInstances")
    return str(stop["InstanceIds"][0])


async def test_a_failure_after_protection_still_removes_every_ami(
    harness: Harness, restore_cloud: Any
) -> None:
    template = harness.template(
        {
            "builders": [
                builder(deregistration_protection={"enabled": True}, ami_users=["111122223333"])
            ]
        }
    )
    # The artifacts step's CreateTags is the one call after the protection.
    harness.cloud.set_faults(
        FaultPlan(rules=(FaultRule(operation="CreateTags", error="InvalidParameterValue"),))
    )
    before = len(harness.events)
    result, aws = await build(harness, template)
    assert result.status == "failed"
    assert aws.calls("EnableImageDeregistrationProtection")
    assert aws.calls("DisableImageDeregistrationProtection")
    assert harness.leftovers(result.build_id) == {}
    assert len(harness.events) > before


async def test_skip_create_ami_still_stops_the_instance(harness: Harness) -> None:
    template = harness.template({"builders": [builder(skip_create_ami=True)]})
    result, aws = await build(harness, template)
    assert result.status == "succeeded", result.error
    assert len(aws.calls("StopInstances")) == 1
    assert aws.calls("CreateImage") == []
    assert result.artifacts == {}
    assert harness.leftovers(result.build_id) == {}


async def test_skip_save_build_region_keeps_only_the_copies(harness: Harness) -> None:
    template = harness.template(
        {"builders": [builder(ami_regions=["us-west-2"], skip_save_build_region=True)]}
    )
    name = json.loads(template.read_text())["builders"][0]["ami_name"]
    result, aws = await build(harness, template)
    assert result.status == "succeeded", result.error
    assert set(result.artifacts) == {"us-west-2"}
    (create,) = aws.calls("CreateImage")
    assert create["Name"] != name  # the intermediary's name; the copy takes the real one
    image = harness.client("us-west-2").describe_images(ImageIds=[result.artifacts["us-west-2"]])
    assert image["Images"][0]["Name"] == name
    assert "SnapshotCopyCompletionDurationMinutes" not in aws.calls("CopyImage")[0]
    left = harness.leftovers(result.build_id, ("us-east-1", "us-west-2"))
    assert left == {
        "images": [result.artifacts["us-west-2"]],
        "snapshots": result.snapshots["us-west-2"],
    }


def test_manifest_only_and_except_choose_the_builds(tmp_path: Path) -> None:
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {
                "builders": [builder("baker")],
                "post-processors": [
                    {
                        "type": "manifest",
                        "output": "mine.json",
                        "only": ["baker"],
                        # as amazon-eks-ami's templates have it: build data, filled per build
                        "custom_data": {
                            "source_ami_name": "{{ build `SourceAMIName` }}",
                            "source_ami_id": "{{ build `SourceAMI` }}",
                            "instance": "{{ build `ID` }}",
                            "kind": "{{ user `kind` }}",
                        },
                    },
                    {"type": "manifest", "output": "not-mine.json", "except": ["baker"]},
                ],
                "variables": {"kind": "base"},
            }
        )
    )
    result: subprocess.CompletedProcess[str] = run_cli(tmp_path, str(template))
    assert result.returncode == 0, result.stdout + result.stderr
    (entry,) = json.loads((tmp_path / "mine.json").read_text())["builds"]
    assert entry["name"] == "baker"
    data = entry["custom_data"]
    assert fnmatch.fnmatchcase(data["source_ami_name"], FOCAL), data
    assert (
        data["source_ami_id"].startswith("ami-")
        and data["source_ami_id"] not in entry["artifact_id"]
    )
    assert data["instance"].startswith("i-") and data["kind"] == "base"
    # As in Packer, a post-processor that does not run for any build writes nothing.
    assert not (tmp_path / "not-mine.json").exists()
