"""Eventual consistency, as AWS has it: the local cloud replays it and builds ride through it.

A resource just created is not found by the next calls that name it (InvalidInstanceID,
InvalidGroup, InvalidAMIID, InvalidKeyPair ``.NotFound``); the engine retries those codes for
that call, bounded, as Packer does (core/engine/retry.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amibake.core.aws import AwsError
from amibake.core.engine.retry import ConsistencyRetry, codes_for, until_visible
from amibake.core.errors import UsageError
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from amibake.core.local.latency import EVENTUAL, PROFILES, STRONG, Consistency
from tests.engine.test_build import Harness, builder, shell
from tests.local.conftest import wait_state

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
CANONICAL = "099720109477"

#: Every new resource hidden from exactly the first call naming it, however long that takes:
#: deterministic on a busy machine, and each code is met once per resource.
ONCE = Consistency("eventual", hidden_calls=1, hidden_seconds=math.inf)


@pytest.fixture
def eventual(cloud: LocalCloud) -> Iterator[LocalCloud]:
    latency, faults = cloud.latency, cloud.faults
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan(consistency=ONCE))
    yield cloud
    cloud.set_faults(faults)
    cloud.set_latency(latency)


def _code(call: Any) -> str | None:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def _focal(ec2: Any) -> str:
    images = ec2.describe_images(Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [FOCAL]}])[
        "Images"
    ]
    return str(max(images, key=lambda i: i["CreationDate"])["ImageId"])


def test_profiles_and_plans_carry_a_consistency() -> None:
    assert PROFILES["realistic"].consistency == EVENTUAL
    assert PROFILES["instant"].consistency == STRONG
    assert PROFILES["fast"].with_consistency("eventual").consistency.eventual
    plan = FaultPlan.from_mapping({"consistency": {"hidden_calls": 3, "hidden_seconds": 2}})
    assert plan.consistency == Consistency("eventual", 3, 2.0)
    assert plan.as_dict()["consistency"]["hidden_calls"] == 3
    with pytest.raises(UsageError, match="unknown consistency 'sometimes'"):
        FaultPlan.from_mapping({"consistency": "sometimes"})
    with pytest.raises(UsageError, match="unknown key"):
        Consistency.from_value({"calls": 1})


def _answered(cloud: LocalCloud) -> dict[str, int]:
    return dict(cloud.status()["consistency_answered"])


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {code: n - before.get(code, 0) for code, n in after.items() if n != before.get(code, 0)}


def test_each_new_resource_is_not_found_once_then_visible(eventual: LocalCloud) -> None:
    before = _answered(eventual)
    ec2 = eventual.client("ec2", "us-east-1")
    group = ec2.create_security_group(GroupName="consistency-sg", Description="t")["GroupId"]
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "127.0.0.1/32"}],
    }
    authorize = lambda: ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])  # noqa: E731
    assert _code(authorize) == "InvalidGroup.NotFound"
    assert _code(authorize) is None

    ec2.create_key_pair(KeyName="consistency-key")
    launch = lambda: ec2.run_instances(  # noqa: E731
        ImageId=_focal(ec2), MinCount=1, MaxCount=1, KeyName="consistency-key"
    )
    assert _code(launch) == "InvalidKeyPair.NotFound"
    instance = launch()["Instances"][0]["InstanceId"]
    # A Describe by filters alone simply does not list it yet; by id it is NotFound once.
    describe = lambda: ec2.describe_instances(InstanceIds=[instance])  # noqa: E731
    assert _code(describe) == "InvalidInstanceID.NotFound"
    assert _code(describe) is None

    wait_state(ec2, instance, "running")  # as on AWS, a pending instance cannot be imaged
    image = ec2.create_image(InstanceId=instance, Name="consistency-image")["ImageId"]
    tag = lambda: ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])  # noqa: E731
    assert _code(tag) == "InvalidAMIID.NotFound"
    assert _code(tag) is None
    assert _delta(before, _answered(eventual)) == {
        "InvalidGroup.NotFound": 1,
        "InvalidKeyPair.NotFound": 1,
        "InvalidInstanceID.NotFound": 1,
        "InvalidAMIID.NotFound": 1,
    }
    ec2.deregister_image(ImageId=image)
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.delete_key_pair(KeyName="consistency-key")


def test_strong_consistency_hides_nothing(cloud: LocalCloud) -> None:
    cloud.set_faults(FaultPlan(consistency=STRONG))
    try:
        ec2 = cloud.client("ec2", "us-east-1")
        group = ec2.create_security_group(GroupName="strong-sg", Description="t")["GroupId"]
        assert _code(lambda: ec2.describe_security_groups(GroupIds=[group])) is None
        ec2.delete_security_group(GroupId=group)
    finally:
        cloud.set_faults(FaultPlan())


async def test_until_visible_retries_only_its_codes_and_is_bounded() -> None:
    calls: list[int] = []
    fast = ConsistencyRetry(tries=3, initial=0.0)

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AwsError("DescribeInstances", "InvalidInstanceID.NotFound", "not yet")
        return "seen"

    assert await until_visible(flaky, codes=codes_for("instance"), policy=fast) == "seen"
    assert len(calls) == 3

    calls.clear()
    with pytest.raises(AwsError, match=r"InvalidInstanceID\.NotFound"):
        await until_visible(
            flaky, codes=codes_for("instance"), policy=ConsistencyRetry(tries=2, initial=0.0)
        )
    assert len(calls) == 2  # two tries, then the last error

    async def other() -> None:
        calls.append(1)
        raise AwsError("DescribeInstances", "UnauthorizedOperation", "no")

    calls.clear()
    with pytest.raises(AwsError, match="UnauthorizedOperation"):
        await until_visible(other, codes=codes_for("instance"), policy=fast)
    assert len(calls) == 1  # any other error goes up at once


async def test_a_whole_build_survives_every_not_yet_visible_code(
    eventual: LocalCloud, tmp_path: Path
) -> None:
    before = _answered(eventual)
    harness = Harness(eventual, tmp_path)
    template = harness.template(
        {
            "builders": [builder(ami_regions=["us-west-2"], tags={"Team": "bake"})],
            "provisioners": [shell("echo consistent")],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    answered = _delta(before, _answered(eventual))
    for code in (
        "InvalidGroup.NotFound",
        "InvalidKeyPair.NotFound",
        "InvalidInstanceID.NotFound",
        "InvalidAMIID.NotFound",
    ):
        assert answered.get(code, 0) >= 1, (code, answered)
    assert harness.leftovers(result.build_id, ("us-east-1", "us-west-2")).keys() == {
        "images",
        "snapshots",
    }
