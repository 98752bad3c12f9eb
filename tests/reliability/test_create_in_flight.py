"""Ctrl-C while a create call is in flight leaves nothing (issue 10, item 1).

A boto3 call in a worker thread cannot be stopped: once sent, the resource comes to exist
whatever the build does. Each case delays one create call in the local cloud (a fault plan),
interrupts the real CLI once the cloud holds the call, and counts what the build left: nothing,
and nothing unfinished in the ledger either (no sweep needed). The first case is the issue's
reproduction: the user's own key pair and security group, RunInstances delayed 3 s.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule

from .conftest import start_build, template
from .test_spot_and_iam_cancel import everything_left, spot_template

DELAY = 3.0


def own_key_and_group(cloud: LocalCloud, directory: Path) -> Path:
    """The issue's template: ``ssh_keypair_name`` + ``security_group_ids`` of the user's own."""
    ec2 = cloud.client("ec2", "us-east-1")
    name = f"own-{uuid.uuid4().hex[:8]}"
    key = ec2.create_key_pair(KeyName=name)
    key_file = directory / "own.pem"
    key_file.write_text(key["KeyMaterial"])
    key_file.chmod(0o600)
    group = ec2.create_security_group(GroupName=name, Description="the user's own group")
    path = template(directory, regions=False)
    data = json.loads(path.read_text())
    data["builders"][0].update(
        ssh_keypair_name=name,
        ssh_private_key_file=str(key_file),
        security_group_ids=[group["GroupId"]],
    )
    path.write_text(json.dumps(data))
    return path


#: (the create call delayed, the template that makes it)
CASES: list[tuple[str, str]] = [
    ("RunInstances", "own-key-and-group"),
    ("ImportKeyPair", "plain"),
    ("CreateSecurityGroup", "plain"),
    ("CreateImage", "plain"),
    ("CopyImage", "regions"),
    ("CreateInstanceProfile", "spot"),
    ("CreateRole", "spot"),
    ("CreateLaunchTemplate", "spot"),
    ("CreateFleet", "spot"),
]


def make_template(cloud: LocalCloud, directory: Path, kind: str) -> Path:
    if kind == "own-key-and-group":
        return own_key_and_group(cloud, directory)
    if kind == "spot":
        return spot_template(directory)
    return template(directory, regions=kind == "regions")


def wait_until_received(plan: FaultPlan, build: Any, timeout: float = 90) -> None:
    """Until the cloud holds the delayed call (the rule counted it)."""
    deadline = time.monotonic() + timeout
    while plan.fired()[0]["fired"] == 0:
        assert build.process.poll() is None, "the build ended before the call"
        assert time.monotonic() < deadline, "the build never made the call"
        time.sleep(0.02)


@pytest.mark.parametrize(("operation", "kind"), CASES, ids=[c[0] for c in CASES])
def test_ctrl_c_during_a_create_call_leaves_nothing(
    quick_cloud: LocalCloud, tmp_path: Path, operation: str, kind: str
) -> None:
    home = tmp_path / "home"
    path = make_template(quick_cloud, tmp_path, kind)
    plan = FaultPlan(rules=[FaultRule(operation=operation, delay=DELAY, nth=1)])
    quick_cloud.set_faults(plan)
    build = start_build(quick_cloud, home, path)
    try:
        wait_until_received(plan, build)
        build.process.send_signal(signal.SIGINT)  # the call is in flight for DELAY more seconds
        status = build.finish()
    finally:
        if build.process.poll() is None:
            build.process.kill()
    quick_cloud.set_faults(FaultPlan())
    build_id = build.build_id
    assert build_id is not None
    finished = [e for e in build.events if e["type"] == "build_finished"]
    assert [(status, e["status"]) for e in finished] == [(130, "cancelled")]
    assert any(e["type"] == "message" and "in flight" in e["text"] for e in build.events), (
        "cleanup did not wait for the call"
    )
    assert everything_left(quick_cloud, build_id) == {}
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        assert ledger.unfinished_builds() == []
    finally:
        ledger.close()
