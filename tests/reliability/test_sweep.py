"""`amibake sweep` on orphans made by hand with boto3: order, dry run, filters, artifacts kept."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.context import TAG_ARTIFACT, TAG_BUILD_ID, TAG_CREATED_AT
from amibake.core.local.cloud import LocalCloud
from tests.local.conftest import wait_state

from .conftest import leftovers, run_cli

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"


@dataclass
class Orphans:
    build_id: str
    instance_id: str
    group_id: str
    key_name: str
    image_id: str
    artifact_id: str


def tags(build_id: str, age: timedelta, **extra: str) -> list[dict[str, str]]:
    created = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {TAG_BUILD_ID: build_id, TAG_CREATED_AT: created, **extra}
    return [{"Key": k, "Value": v} for k, v in values.items()]


def make_orphans(cloud: LocalCloud, age: timedelta = timedelta(hours=3)) -> Orphans:
    """What a build killed after CreateImage leaves: instance (holding its group), key, AMI."""
    ec2 = cloud.client("ec2", "us-east-1")
    build_id = f"orphan-{uuid.uuid4().hex[:8]}"

    def spec(kind: str, **extra: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": tags(build_id, age, **extra)}]

    key_name = f"amibake_{build_id}"
    ec2.create_key_pair(KeyName=key_name, TagSpecifications=spec("key-pair"))
    group_id = ec2.create_security_group(
        GroupName=f"amibake_{build_id}", Description="t", TagSpecifications=spec("security-group")
    )["GroupId"]
    source = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"][0]
    instance_id = ec2.run_instances(
        ImageId=source["ImageId"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        KeyName=key_name,
        SecurityGroupIds=[group_id],
        TagSpecifications=spec("instance") + spec("volume"),
    )["Instances"][0]["InstanceId"]
    wait_state(ec2, instance_id, "running")  # as on AWS, a pending instance cannot be imaged
    image_id = ec2.create_image(
        InstanceId=instance_id,
        Name=f"pending-{build_id}",
        TagSpecifications=spec("image") + spec("snapshot"),
    )["ImageId"]
    artifact_id = ec2.create_image(
        InstanceId=instance_id,
        Name=f"artifact-{build_id}",
        TagSpecifications=spec("image", **{TAG_ARTIFACT: "true"})
        + spec("snapshot", **{TAG_ARTIFACT: "true"}),
    )["ImageId"]
    return Orphans(build_id, instance_id, group_id, key_name, image_id, artifact_id)


@pytest.fixture
def orphans(cloud: LocalCloud) -> Orphans:
    cloud.set_latency("instant")
    return make_orphans(cloud)


def sweep(cloud: LocalCloud, tmp_path: Path, *args: str) -> Any:
    result = run_cli(cloud, tmp_path / "home", "sweep", "--region", "us-east-1", *args)
    assert "Traceback" not in result.stderr
    return result


def test_dry_run_lists_everything_and_changes_nothing(
    cloud: LocalCloud, orphans: Orphans, tmp_path: Path
) -> None:
    before = leftovers(cloud, orphans.build_id, ("us-east-1",))
    result = sweep(cloud, tmp_path, "--dry-run", "--build", orphans.build_id)
    assert result.returncode == 0, result.stderr
    for resource in (orphans.instance_id, orphans.group_id, orphans.key_name, orphans.image_id):
        assert "would delete" in result.stdout and resource in result.stdout
    assert orphans.artifact_id not in result.stdout
    assert leftovers(cloud, orphans.build_id, ("us-east-1",)) == before
    assert set(before) == {
        "instances",
        "security_groups",
        "key_pairs",
        "volumes",
        "images",
        "snapshots",
    }


def test_sweep_deletes_in_order_and_keeps_artifacts(
    cloud: LocalCloud, orphans: Orphans, tmp_path: Path
) -> None:
    result = sweep(cloud, tmp_path, "--build", orphans.build_id)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if f"deleted {kind}" in line)
        for kind in ("instance", "security-group", "key-pair", "image")
    ]
    assert order == sorted(order)
    assert leftovers(cloud, orphans.build_id, ("us-east-1",)) == {}
    ec2 = cloud.client("ec2", "us-east-1")
    kept = ec2.describe_images(ImageIds=[orphans.artifact_id])["Images"]
    assert kept and kept[0]["State"] == "available"


def test_older_than_spares_young_resources(cloud: LocalCloud, tmp_path: Path) -> None:
    cloud.set_latency("instant")
    young = make_orphans(cloud, age=timedelta(minutes=5))
    result = sweep(cloud, tmp_path, "--older-than", "1h", "--build", young.build_id)
    assert result.returncode == 0
    assert "swept 0 resource(s)" in result.stdout
    assert leftovers(cloud, young.build_id, ("us-east-1",))
    result = sweep(cloud, tmp_path, "--older-than", "2m", "--build", young.build_id)
    assert leftovers(cloud, young.build_id, ("us-east-1",)) == {}


def test_build_filter_leaves_other_builds(cloud: LocalCloud, tmp_path: Path) -> None:
    cloud.set_latency("instant")
    first, second = make_orphans(cloud), make_orphans(cloud)
    sweep(cloud, tmp_path, "--build", first.build_id)
    assert leftovers(cloud, first.build_id, ("us-east-1",)) == {}
    assert leftovers(cloud, second.build_id, ("us-east-1",))
    sweep(cloud, tmp_path, "--build", second.build_id)
    assert leftovers(cloud, second.build_id, ("us-east-1",)) == {}


def test_a_sweep_settles_only_its_own_targets_builds(cloud: LocalCloud, tmp_path: Path) -> None:
    from amibake.core.ledger import Ledger

    home = tmp_path / "home"
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        # Two builds that died after creating a key pair: one on this endpoint, one on an
        # AWS profile (whose key pair this sweep cannot see).
        for build_id, target in (
            ("here", {"profile": None, "endpoint_url": cloud.endpoint_url}),
            ("prod", {"profile": "prod", "endpoint_url": None}),
        ):
            ledger.begin_build(build_id, "amazon-ebs", "t.json", target)
            ledger.created(ledger.intend(build_id, "us-east-1", "key-pair", "k"), f"k-{build_id}")
            ledger._db.execute("UPDATE builds SET pid = 999999999 WHERE build_id = ?", (build_id,))
    finally:
        ledger.close()

    template = tmp_path / "missing-source.json"  # a build that fails at once, after recovery
    builder = {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami": "ami-0000000000000dead",
        "ami_name": "never-built",
    }
    template.write_text(json.dumps({"builders": [builder]}))
    noticed = run_cli(cloud, home, "build", "--recover", str(template))
    assert noticed.returncode == 1, noticed.stderr
    assert "recovering build here" in noticed.stderr
    assert "prod" not in noticed.stderr

    result = sweep(cloud, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        assert [b.build_id for b in ledger.unfinished_builds()] == ["prod"]
    finally:
        ledger.close()
