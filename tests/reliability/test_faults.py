"""Builds under AWS and SSH faults either succeed or fail with one clear line, and leave nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Aws, Target
from amibake.core.engine.build import BuildResult, run_builds, select_builders
from amibake.core.engine.context import BuildOptions
from amibake.core.local.cloud import FAKE_SECRET_KEY, LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.local.latency import LatencyProfile, get_profile
from amibake.core.templates import load

from .conftest import BUILD_ACCESS_KEY, QUICK, leftovers


def write_template(directory: Path, provisioners: list[dict[str, Any]], **builder: Any) -> Path:
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
                "ami_name": f"faults-{uuid.uuid4().hex[:10]}",
                **builder,
            }
        ],
        "provisioners": provisioners,
    }
    path = directory / f"{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(data))
    return path


async def build(cloud: LocalCloud, path: Path, plan: FaultPlan | None = None) -> BuildResult:
    spec = load(path)
    target = Target(
        endpoint_url=cloud.endpoint_url,
        access_key_id=BUILD_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )
    aws = Aws(target)
    cloud.set_faults(plan or FaultPlan())
    try:
        options = BuildOptions(target=target, ssh_port=cloud.ssh_port, console_wait=3.0)
        (result,) = await run_builds(spec, select_builders(spec), aws, options, lambda e: None)
    finally:
        cloud.set_faults(FaultPlan())  # counting below must not meet the faults
        aws.close()
    return result


def assert_clean(cloud: LocalCloud, result: BuildResult) -> None:
    if result.status == "failed":
        assert result.error and "\n" not in result.error and "Traceback" not in result.error
    else:
        assert result.status == "succeeded"
    assert leftovers(cloud, result.build_id, ("us-east-1",)) == {}


#: Instant transitions, but as eventually consistent as the rest of the suite.
INSTANT_EVENTUAL = get_profile("instant").with_consistency(QUICK.consistency)


@pytest.fixture
def fault_cloud(as_on_aws: LocalCloud) -> Any:
    """Instant and eventually consistent, with the suite's enforced groups and policy."""
    cloud = as_on_aws
    cloud.set_latency(INSTANT_EVENTUAL)
    yield cloud
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "InternalError", "Unavailable"])
async def test_thirty_percent_of_calls_failing(
    fault_cloud: LocalCloud, tmp_path: Path, code: str
) -> None:
    plan = FaultPlan([FaultRule(operation="*", error=code, probability=0.3)], seed=len(code))
    result = await build(
        fault_cloud, write_template(tmp_path, [{"type": "shell", "inline": ["echo ok"]}]), plan
    )
    fired = plan.fired()[0]
    assert fired["fired"] >= 3, (fired, result)  # the faults really happened
    assert_clean(fault_cloud, result)


async def test_ssh_refused_until_late_still_builds(fault_cloud: LocalCloud, tmp_path: Path) -> None:
    fault_cloud.set_latency(
        LatencyProfile(
            "late-ssh",
            boot=0.2,
            ssh_ready=4.0,
            stop=0.2,
            terminate=0.2,
            image=0.2,
            copy=0.2,
            consistency=QUICK.consistency,
        )
    )
    result = await build(
        fault_cloud, write_template(tmp_path, [{"type": "shell", "inline": ["echo ok"]}])
    )
    assert result.status == "succeeded", result.error
    assert_clean(fault_cloud, result)


@pytest.mark.parametrize(
    ("plan", "provisioners", "builder", "expected"),
    [
        (
            FaultPlan([FaultRule(operation="ssh", drop_after_bytes=4000, times=1)]),
            [{"type": "shell", "inline": ["head -c 100000 /dev/zero | tr '\\0' x | fold -w 80"]}],
            {},
            "disconnected unexpectedly",
        ),
        (
            FaultPlan([FaultRule(operation="ssh", wrong_host_key=True, times=1)]),
            [{"type": "shell", "inline": ["echo never runs"]}],
            {},
            "host key mismatch",
        ),
        (None, [], {"ssh_username": "admin", "ssh_timeout": "3s"}, "admin"),
        (
            None,
            [{"type": "shell", "inline": ["sleep 60"], "timeout": "1s"}],
            {},
            "timed out",
        ),
    ],
    ids=["dropped-mid-command", "wrong-host-key", "auth-failure", "provisioner-hangs"],
)
async def test_ssh_faults_fail_clearly_and_leave_nothing(
    fault_cloud: LocalCloud,
    tmp_path: Path,
    plan: FaultPlan | None,
    provisioners: list[dict[str, Any]],
    builder: dict[str, Any],
    expected: str,
) -> None:
    result = await build(fault_cloud, write_template(tmp_path, provisioners, **builder), plan)
    assert result.status == "failed"
    assert result.error is not None and expected in result.error.lower()
    assert_clean(fault_cloud, result)


async def test_expected_disconnect_reconnects_and_goes_on(
    fault_cloud: LocalCloud, tmp_path: Path
) -> None:
    plan = FaultPlan([FaultRule(operation="ssh", drop_after_bytes=2000, times=1)])
    provisioners: list[dict[str, Any]] = [
        {
            "type": "shell",
            "inline": ["head -c 50000 /dev/zero | tr '\\0' x | fold -w 80"],
            "expect_disconnect": True,
        },
        {"type": "shell", "inline": ["echo after the reboot"]},
    ]
    result = await build(fault_cloud, write_template(tmp_path, provisioners), plan)
    assert result.status == "succeeded", result.error
    assert_clean(fault_cloud, result)
