"""The reliability suite's tools: real `amibake` processes against the session's local cloud.

A build process here is the real CLI (`python -m amibake.tui build`) pointed at the test
process's local cloud through AWS_ENDPOINT_URL, exactly as a user would point it
at `amibake local serve`. It can then be killed, interrupted or starved, while
the cloud (and its evidence) survives in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.context import TAG_ARTIFACT, TAG_BUILD_ID
from amibake.core.iam_policy import policy_document
from amibake.core.local.cloud import FAKE_SECRET_KEY, LocalCloud
from amibake.core.local.faults import FaultPlan
from amibake.core.local.latency import Consistency, LatencyProfile

AMIBAKE = [sys.executable, "-m", "amibake.tui"]
REGIONS = ("us-east-1", "us-west-2")

#: The identity every build and sweep of this suite signs with: bound to the published IAM
#: policy (amibake.core.iam_policy.policy_document(), what `amibake iam-policy` prints and the
#: README carries) for the whole suite. The tests' own setup and counting go through
#: ``cloud.client()``, the cloud's unbound administrator key, as a user's console would.
BUILD_ACCESS_KEY = "AKIAAMIBAKEBUILDS001"

#: Short transitions: every wait lasts long enough to be killed in, and a build takes ~5 s.
#: Eventually consistent as AWS is (issue 10): a new resource is not found by the first two
#: calls naming it, for up to a second.
QUICK = LatencyProfile(
    "quick",
    boot=0.8,
    ssh_ready=0.5,
    stop=0.8,
    terminate=0.8,
    image=1.0,
    copy=1.0,
    consistency=Consistency("eventual", hidden_calls=2, hidden_seconds=1.0),
)


def template(directory: Path, *, provisioning: str = "sleep 1", regions: bool = True) -> Path:
    data = {
        "builders": [
            {
                "type": "amazon-ebs",
                "region": "us-east-1",
                "instance_type": "t3.micro",
                "ssh_username": "ubuntu",
                "source_ami_filter": {
                    "filters": {"name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"},
                    "owners": ["099720109477"],
                    "most_recent": True,
                },
                "ami_name": f"reliability-{uuid.uuid4().hex[:10]}",
                **({"ami_regions": ["us-west-2"]} if regions else {}),
            }
        ],
        "provisioners": [{"type": "shell", "inline": ["echo working", provisioning]}],
    }
    path = directory / "template.json"
    path.write_text(json.dumps(data))
    return path


def cli_env(cloud: LocalCloud, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=cloud.endpoint_url,
        AWS_ACCESS_KEY_ID=BUILD_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AMIBAKE_HOME=str(home),
    )
    return env


@dataclass
class BuildProcess:
    """A running `amibake build --json` whose events are read as they come."""

    process: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def build_id(self) -> str | None:
        for event in self.events:
            if event["type"] == "build_started":
                return str(event["build_id"])
        return None

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60) -> bool:
        """Read events until one matches; False if the build ended first."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event)
            if predicate(event):
                return True
            if time.monotonic() > deadline:
                raise AssertionError("the build never reached the point")
        return False

    def finish(self, timeout: float = 120) -> int:
        out, _ = self.process.communicate(timeout=timeout)
        self.events.extend(json.loads(line) for line in out.splitlines() if line.startswith("{"))
        return self.process.returncode


def start_build(cloud: LocalCloud, home: Path, template_path: Path) -> BuildProcess:
    process = subprocess.Popen(
        [*AMIBAKE, "build", "--json", "--ssh-port", str(cloud.ssh_port), str(template_path)],
        env=cli_env(cloud, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return BuildProcess(process)


def run_cli(cloud: LocalCloud, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMIBAKE, *args], env=cli_env(cloud, home), capture_output=True, text=True, timeout=300
    )


def leftovers(cloud: LocalCloud, build_id: str, regions: tuple[str, ...] = REGIONS) -> dict:
    """Everything carrying the build's tag, through boto3; a finished build's AMIs excepted."""
    tag = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}]
    found: dict[str, list[str]] = {}

    def add(kind: str, ids: list[str]) -> None:
        if ids:
            found.setdefault(kind, []).extend(ids)

    for region in regions:
        ec2 = cloud.client("ec2", region)
        add(
            "instances",
            [
                i["InstanceId"]
                for r in ec2.describe_instances(Filters=tag)["Reservations"]
                for i in r["Instances"]
                if i["State"]["Name"] != "terminated"
            ],
        )
        add(
            "security_groups",
            [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        )
        add("key_pairs", [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]])
        add("volumes", [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]])

        def not_artifact(resource: dict[str, Any]) -> bool:
            return {"Key": TAG_ARTIFACT, "Value": "true"} not in resource.get("Tags", [])

        add(
            "images",
            [
                i["ImageId"]
                for i in ec2.describe_images(Owners=["self"], Filters=tag)["Images"]
                if not_artifact(i)
            ],
        )
        add(
            "snapshots",
            [
                s["SnapshotId"]
                for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]
                if not_artifact(s)
            ],
        )
    return found


def artifacts(cloud: LocalCloud, build_id: str, regions: tuple[str, ...] = REGIONS) -> list[str]:
    tag = [
        {"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]},
        {"Name": f"tag:{TAG_ARTIFACT}", "Values": ["true"]},
    ]
    return [
        i["ImageId"]
        for region in regions
        for i in cloud.client("ec2", region).describe_images(Owners=["self"], Filters=tag)["Images"]
    ]


@pytest.fixture(autouse=True)
def as_on_aws(cloud: LocalCloud) -> Iterator[LocalCloud]:
    """Issue 10's realism for every test of the suite: the instances' sshd refuses sources
    their security groups do not admit, and the build identity (BUILD_ACCESS_KEY) may make
    only the calls of the published IAM policy; both restored afterwards."""
    cloud.enforce_security_groups = True
    cloud.identity_policies[BUILD_ACCESS_KEY] = policy_document()
    try:
        yield cloud
    finally:
        cloud.enforce_security_groups = False
        cloud.identity_policies.pop(BUILD_ACCESS_KEY, None)


@pytest.fixture
def quick_cloud(as_on_aws: LocalCloud) -> Iterator[LocalCloud]:
    """The session cloud on the quick profile (eventually consistent) and no faults, with
    :func:`as_on_aws`'s groups and policy; restored afterwards."""
    cloud = as_on_aws
    cloud.set_latency(QUICK)
    cloud.set_faults(FaultPlan())
    try:
        yield cloud
    finally:
        cloud.set_latency("instant")
        cloud.set_faults(FaultPlan())
