"""Fixtures for driving the local cloud the way any EC2 client would: boto3 over HTTP, asyncssh."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.core.local.cloud import LocalCloud

FOCAL_WILDCARD = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
CANONICAL = "099720109477"


@pytest.fixture
def ec2(cloud: LocalCloud) -> Any:
    return cloud.client("ec2", "us-east-1")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def latency(cloud: LocalCloud) -> Iterator[Callable[[str], None]]:
    """Switch the cloud's latency profile for one test; restored afterwards."""
    previous = cloud.latency
    yield cloud.set_latency
    cloud.set_latency(previous)


@pytest.fixture
def ssh_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def instance_state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def wait_state(ec2: Any, instance_id: str, state: str, timeout: float = 20.0) -> None:
    wait_for(
        lambda: instance_state(ec2, instance_id) == state,
        timeout,
        what=f"{instance_id} to be {state}",
    )


def image_state(ec2: Any, image_id: str) -> str:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"]


def wait_image(ec2: Any, image_id: str, timeout: float = 30.0) -> None:
    wait_for(
        lambda: image_state(ec2, image_id) == "available", timeout, what=f"{image_id} available"
    )


def newest_image(ec2: Any, wildcard: str = FOCAL_WILDCARD, owner: str = CANONICAL) -> dict:
    images = ec2.describe_images(Owners=[owner], Filters=[{"Name": "name", "Values": [wildcard]}])
    return max(images["Images"], key=lambda i: i["CreationDate"])


class Launched:
    """An instance launched for a test, with everything needed to reach it."""

    def __init__(
        self, ec2: Any, cloud: LocalCloud, instance: dict, key: asyncssh.SSHKey, user: str
    ):
        self.ec2 = ec2
        self.cloud = cloud
        self.id: str = instance["InstanceId"]
        self.key = key
        self.user = user

    def describe(self) -> dict:
        return self.ec2.describe_instances(InstanceIds=[self.id])["Reservations"][0]["Instances"][0]

    def ssh_port(self) -> int:
        tags = {t["Key"]: t["Value"] for t in self.describe().get("Tags", [])}
        return int(tags.get("amibake:local:ssh-port", self.cloud.ssh_port))

    async def connect(self, **options: Any) -> asyncssh.SSHClientConnection:
        address = self.describe()["PublicIpAddress"]
        return await asyncssh.connect(
            address,
            port=self.ssh_port(),
            username=self.user,
            client_keys=[self.key],
            known_hosts=None,
            **options,
        )

    async def connect_when_ready(self, timeout: float = 20.0) -> asyncssh.SSHClientConnection:
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.connect()
            except (OSError, asyncssh.Error):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


@pytest.fixture
def launch(
    ec2: Any, cloud: LocalCloud, ssh_key: asyncssh.SSHKey, unique: str
) -> Iterator[Callable[..., Launched]]:
    """Launch instances with an imported key pair; terminates them after the test."""
    key_name = f"test-{unique}"
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=ssh_key.export_public_key("openssh"))
    launched: list[Launched] = []

    def _launch(image_id: str | None = None, user: str = "ubuntu", **extra: Any) -> Launched:
        image_id = image_id or newest_image(ec2)["ImageId"]
        response = ec2.run_instances(
            ImageId=image_id,
            InstanceType=extra.pop("InstanceType", "t3.micro"),
            MinCount=1,
            MaxCount=1,
            KeyName=key_name,
            **extra,
        )
        instance = Launched(ec2, cloud, response["Instances"][0], ssh_key, user)
        launched.append(instance)
        return instance

    yield _launch
    ids = [i.id for i in launched]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
    ec2.delete_key_pair(KeyName=key_name)


def fixture_path(name: str) -> Path:
    return Path(__file__).parent / "fixtures" / name
