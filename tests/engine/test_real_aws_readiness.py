"""Issue 10 against the local cloud: what real AWS answers that the emulation does not on its
own (fault plans), and the engine riding through it: eventual consistency of a new instance
profile, of a just-stopped instance and of fresh snapshots; force_delete_snapshot while the
snapshot is still in use; user data as Packer passes it; credentials that expire.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.credentials import Credentials, RefreshableCredentials

from amibake.core.aws import AwsError
from amibake.core.engine.retry import (
    PATIENT_POLICY,
    STOPPED_POLICY,
    codes_for,
    matches,
)
from amibake.core.engine.steps.credentials import credentials_expiry, expired
from amibake.core.events import Message, ResourceChanged
from amibake.core.local.faults import FaultPlan, FaultRule
from tests.engine.test_build import FOCAL, Harness, builder, harness, restore_cloud

__all__ = ["harness", "restore_cloud"]

PROFILE_NOT_YET = (
    "Value (amibake_x) for parameter iamInstanceProfile.name is invalid. "
    "Invalid IAM Instance Profile name"
)


def total(policy: Any) -> float:
    return sum(policy.delay(attempt) for attempt in range(1, policy.tries))


def test_retry_codes_and_patience_are_packers() -> None:
    profile = codes_for("instance-profile")
    assert matches(AwsError("RunInstances", "InvalidParameterValue", PROFILE_NOT_YET), profile)
    # the same code for another parameter is a real error, not "not yet"
    other = AwsError("RunInstances", "InvalidParameterValue", "Invalid value 'x' for InstanceType")
    assert not matches(other, profile)
    stopped = AwsError("CreateImage", "InvalidParameterValue", "Instance is not in state stopped")
    assert matches(stopped, codes_for("stopped-instance"))
    # Packer: Backoff{200ms, 30s, x2} over 11 tries (its comment: "about 2.5 minutes"), and
    # CreateImage for up to 15 minutes
    assert 100 < total(PATIENT_POLICY) < 150
    assert 14 * 60 < total(STOPPED_POLICY) < 16 * 60


def own_image(harness: Harness, name: str) -> tuple[str, str]:
    """An AMI of ``name`` made beforehand (for force_deregister), and its snapshot."""
    ec2 = harness.client()
    source = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )
    image_id = source["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
    waiting = {"InstanceIds": [instance["InstanceId"]], "WaiterConfig": {"Delay": 0.2}}
    ec2.get_waiter("instance_running").wait(**waiting)
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    ec2.get_waiter("instance_stopped").wait(**waiting)
    made = ec2.create_image(InstanceId=instance["InstanceId"], Name=name)["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    image = ec2.describe_images(ImageIds=[made])["Images"][0]
    snapshot = next(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m)
    return made, snapshot


def instance_user_data(harness: Harness) -> str:
    launched = [
        e.resource_id
        for e in harness.events
        if isinstance(e, ResourceChanged) and e.kind == "instance" and e.state == "created"
    ]
    attribute = harness.client().describe_instance_attribute(
        InstanceId=launched[0], Attribute="userData"
    )
    return str(attribute["UserData"]["Value"])


async def test_build_rides_through_what_real_aws_answers(harness: Harness) -> None:
    cloud = harness.cloud
    script = b"#!/bin/sh\necho already encoded\n"
    encoded = base64.b64encode(script).decode()
    template = builder(
        communicator="none",
        user_data=encoded,
        force_deregister=True,
        force_delete_snapshot=True,
    )
    del template["ssh_username"]
    old_image, old_snapshot = own_image(harness, template["ami_name"])
    plan = FaultPlan(
        rules=[
            # a new instance profile not usable yet (Packer retries RunInstances)
            FaultRule(
                "RunInstances", error="InvalidParameterValue", message=PROFILE_NOT_YET, nth=1
            ),
            # the stop wait saw "stopped" before CreateImage does
            FaultRule(
                "CreateImage",
                error="InvalidParameterValue",
                message="Instance is not in state stopped",
                nth=1,
            ),
            # the AMI's fresh snapshot not visible yet to CreateTags
            FaultRule("CreateTags", error="InvalidSnapshot.NotFound", nth=1),
            # the previous AMI's snapshot still in use right after DeregisterImage
            FaultRule("DeleteSnapshot", error="InvalidSnapshot.InUse", nth=1),
        ]
    )
    cloud.set_faults(plan)
    try:
        (result,) = await harness.build(harness.template({"builders": [template]}))
    finally:
        cloud.set_faults(FaultPlan())
    assert result.status == "succeeded", result.error
    assert [rule["fired"] for rule in plan.fired()] == [1, 1, 1, 1]
    messages = [e.text for e in harness.events if isinstance(e, Message)]
    assert any("Invalid IAM Instance Profile" in m for m in messages)
    ec2 = harness.client()
    assert (
        ec2.describe_images(Filters=[{"Name": "image-id", "Values": [old_image]}])["Images"] == []
    )
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert old_snapshot not in {s["SnapshotId"] for s in snapshots}
    # already base64: passed as it is (Packer), so the instance gets the script, not its base64
    assert instance_user_data(harness) == encoded
    assert harness.leftovers(result.build_id, ()) == {}


async def test_binary_user_data_file_is_read_as_bytes(harness: Harness) -> None:
    payload = gzip.compress(b"#cloud-config\nruncmd: [true]\n")
    (harness.directory / "user-data.gz").write_bytes(payload)
    template = builder(communicator="none", user_data_file="user-data.gz", skip_create_ami=True)
    del template["ssh_username"]
    (result,) = await harness.build(harness.template({"builders": [template]}))
    assert result.status == "succeeded", result.error
    assert base64.b64decode(instance_user_data(harness)) == payload


def test_expiry_of_session_credentials() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=20)
    env_static = Credentials("AKIA", "secret", "token", method="env")
    # the AWS CLI's convention for environment credentials
    assert credentials_expiry(env_static, {"AWS_CREDENTIAL_EXPIRATION": soon.isoformat()}) == soon
    assert credentials_expiry(env_static, {}) is None  # unknown
    assert credentials_expiry(Credentials("AKIA", "secret", method="env"), {}) is None

    def refresh() -> dict[str, str]:
        return {
            "access_key": "a",
            "secret_key": "b",
            "token": "c",
            "expiry_time": soon.isoformat(),
        }

    env_expiring = RefreshableCredentials("a", "b", "c", soon, refresh, method="env")
    assert credentials_expiry(env_expiring, {}) == soon
    assumed = RefreshableCredentials("a", "b", "c", soon, refresh, method="assume-role")
    assert credentials_expiry(assumed, {}) is None  # botocore renews those itself
    assert expired(AwsError("TerminateInstances", "ExpiredToken", "expired"))
    assert expired(ExceptionGroup("x", [AwsError("CreateImage", "RequestExpired", "expired")]))
    assert not expired(AwsError("CreateImage", "InvalidAMIID.NotFound", "no"))
