"""Cancel (SIGTERM) or kill (SIGKILL, then `amibake sweep`) a build while it creates its temporary
IAM instance profile and while it launches its spot instance (launch template, then fleet):
nothing may be left, neither EC2 resources nor the IAM role, profile, launch template or fleet.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud

from .conftest import leftovers, run_cli, start_build

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
}


def spot_template(directory: Path) -> Path:
    data = {
        "builders": [
            {
                "type": "amazon-ebs",
                "region": "us-east-1",
                "instance_type": "t3.micro",
                "spot_price": "auto",
                "ssh_username": "ubuntu",
                "source_ami_filter": {
                    "filters": {"name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"},
                    "owners": ["099720109477"],
                    "most_recent": True,
                },
                "ami_name": f"reliability-spot-{uuid.uuid4().hex[:10]}",
                "temporary_iam_instance_profile_policy_document": POLICY,
            }
        ],
        "provisioners": [{"type": "shell", "inline": ["echo working", "sleep 1"]}],
    }
    path = directory / "template.json"
    path.write_text(json.dumps(data))
    return path


def everything_left(cloud: LocalCloud, build_id: str) -> dict[str, Any]:
    """EC2 leftovers plus the spot and IAM resources of the build."""
    found = leftovers(cloud, build_id)
    ec2 = cloud.client("ec2", "us-east-1")

    def ours(resource: dict[str, Any]) -> bool:
        return {"Key": TAG_BUILD_ID, "Value": build_id} in resource.get("Tags", [])

    fleets = [
        f["FleetId"]
        for f in ec2.describe_fleets()["Fleets"]
        if ours(f) and not f["FleetState"].startswith("deleted")
    ]
    templates = [
        t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"] if ours(t)
    ]
    iam = cloud.client("iam", "us-east-1")
    names = [r["RoleName"] for r in iam.list_roles()["Roles"]] + [
        p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
    ]
    for kind, ids in (
        ("fleets", fleets),
        ("launch_templates", templates),
        ("iam", [n for n in names if build_id in n]),
    ):
        if ids:
            found[kind] = ids
    return found


POINTS = {
    # CreateRole in flight (the profile exists, the role is being created)
    "iam-profile": lambda e: e["type"] == "resource" and e["kind"] == "role",
    # CreateFleet in flight (the launch template exists)
    "spot": lambda e: e["type"] == "resource" and e["kind"] == "fleet",
}
CASES = [(point, how) for point in POINTS for how in (signal.SIGTERM, signal.SIGKILL)]


@pytest.mark.parametrize(
    ("point", "how"), CASES, ids=[f"{p}-{signal.Signals(h).name}" for p, h in CASES]
)
def test_cancel_or_kill_during_iam_and_spot_leaves_nothing(
    quick_cloud: LocalCloud, tmp_path: Path, point: str, how: int
) -> None:
    home = tmp_path / "home"
    build = start_build(quick_cloud, home, spot_template(tmp_path))
    assert build.wait_for(POINTS[point]), f"the build ended before {point}: {build.events[-1:]}"
    build.process.send_signal(how)
    status = build.finish()
    build_id = build.build_id
    assert build_id is not None
    if how == signal.SIGTERM:
        finished = [e for e in build.events if e["type"] == "build_finished"]
        assert [(status, e["status"]) for e in finished] == [(130, "cancelled")]
        assert everything_left(quick_cloud, build_id) == {}
        return
    assert status == -signal.SIGKILL
    swept = run_cli(quick_cloud, home, "sweep", "--region", "us-east-1", "--region", "us-west-2")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert everything_left(quick_cloud, build_id) == {}
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        assert ledger.unfinished_builds() == []
    finally:
        ledger.close()
