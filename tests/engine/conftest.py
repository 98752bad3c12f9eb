"""Engine tests run real boto3 and real asyncssh against the local cloud.

One local cloud serves the whole test run (there can be only one per process): the session
``cloud`` fixture of tests/conftest.py, reused here and never stopped by these fixtures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncssh
import pytest

from amibake.core.local.cloud import LocalCloud, running_cloud
from amibake.core.local.faults import FaultPlan
from amibake.core.ssh import fingerprints_from_console

FOCAL_WILDCARD = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
CANONICAL = "099720109477"
SSH_PORT_TAG = "amibake:local:ssh-port"


@pytest.fixture(scope="session")
def engine_cloud(cloud: LocalCloud) -> Iterator[LocalCloud]:
    """The process's one local cloud (tests/conftest.py's session ``cloud``), on ``instant``.

    A process holds one cloud at a time, so this never starts another: it reuses the session's,
    or one some other code already runs, and leaves it running with its settings restored.
    """
    active = running_cloud() or cloud
    latency, faults = active.latency, active.faults
    active.set_latency("instant")
    yield active
    active.set_latency(latency)
    active.set_faults(faults)


@pytest.fixture
def ec2(engine_cloud: LocalCloud) -> Any:
    return engine_cloud.client("ec2", "us-east-1")


@pytest.fixture
def latency(engine_cloud: LocalCloud) -> Iterator[Callable[[str], None]]:
    """Switch the latency profile for one test; restored afterwards."""
    previous = engine_cloud.latency
    yield engine_cloud.set_latency
    engine_cloud.set_latency(previous)


@pytest.fixture
def faults(engine_cloud: LocalCloud) -> Iterator[Callable[[FaultPlan], None]]:
    """Install a fault plan for one test; no faults afterwards."""
    yield engine_cloud.set_faults
    engine_cloud.set_faults(FaultPlan())


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


@dataclass
class Instance:
    """A launched test instance and what it takes to reach it."""

    id: str
    host: str
    port: int
    key: asyncssh.SSHKey
    ec2: Any

    def describe(self) -> dict[str, Any]:
        return self.ec2.describe_instances(InstanceIds=[self.id])["Reservations"][0]["Instances"][0]

    def state(self) -> str:
        return str(self.describe()["State"]["Name"])

    def console(self) -> str:
        return str(self.ec2.get_console_output(InstanceId=self.id).get("Output") or "")

    def wait_running(self) -> None:
        wait_for(lambda: self.state() == "running", what=f"{self.id} running")

    def fingerprints(self) -> tuple[str, ...]:
        return wait_for(
            lambda: fingerprints_from_console(self.console()), what="console fingerprints"
        )

    def refresh_port(self, default: int) -> None:
        tags = {t["Key"]: t["Value"] for t in self.describe().get("Tags", [])}
        self.port = int(tags.get(SSH_PORT_TAG, default))


@pytest.fixture
def launch(ec2: Any, engine_cloud: LocalCloud) -> Iterator[Callable[..., Instance]]:
    """Launch instances (t3.micro, newest focal) with an imported ed25519 key; terminated after.

    ``launch(wait=False)`` returns at once, while the instance may still be pending.
    """
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_name = f"engine-ssh-{uuid.uuid4().hex[:10]}"
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=key.export_public_key("openssh"))
    images = ec2.describe_images(
        Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [FOCAL_WILDCARD]}]
    )["Images"]
    image_id = max(images, key=lambda i: i["CreationDate"])["ImageId"]
    launched: list[Instance] = []

    def _launch(wait: bool = True) -> Instance:
        response = ec2.run_instances(
            ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=key_name
        )
        described = response["Instances"][0]
        instance = Instance(
            id=described["InstanceId"],
            host=described.get("PublicIpAddress", ""),
            port=engine_cloud.ssh_port,
            key=key,
            ec2=ec2,
        )
        launched.append(instance)
        if wait:
            instance.wait_running()
            instance.fingerprints()  # the console shows them once booted
            instance.refresh_port(engine_cloud.ssh_port)
        if not instance.host:
            instance.host = wait_for(lambda: instance.describe().get("PublicIpAddress"))
        assert instance.host.startswith("127."), instance.host
        return instance

    yield _launch
    if launched:
        ec2.terminate_instances(InstanceIds=[i.id for i in launched])
    ec2.delete_key_pair(KeyName=key_name)


@pytest.fixture
async def instance(launch: Callable[..., Instance]) -> AsyncIterator[Instance]:
    yield launch()
