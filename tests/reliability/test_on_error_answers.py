"""Headless ``amibake build --on-error ask``, answered "clean up" or "abort" on standard input.

A real build process on the test's local cloud (as the rest of this suite): its provisioner
fails, it asks, and the answer decides what stays. "c" cleans up at once and the build fails;
"a" keeps everything (as Packer's ``-on-error=abort``), the ledger knows the build is
unfinished, and `amibake sweep` then removes what it kept.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud

from .conftest import AMIBAKE, cli_env, leftovers, run_cli, template


def build_ids(cloud: LocalCloud) -> set[str]:
    """The build ids of every instance that is not terminated (through boto3)."""
    reservations = cloud.client("ec2", "us-east-1").describe_instances(
        Filters=[{"Name": "tag-key", "Values": [TAG_BUILD_ID]}]
    )["Reservations"]
    return {
        tag["Value"]
        for reservation in reservations
        for instance in reservation["Instances"]
        if instance["State"]["Name"] != "terminated"
        for tag in instance.get("Tags", [])
        if tag["Key"] == TAG_BUILD_ID
    }


def unfinished(home: Path) -> list[str]:
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        return [b.build_id for b in ledger.unfinished_builds()]
    finally:
        ledger.close()


@pytest.mark.parametrize("answer", ["c", "a"])
def test_clean_up_or_abort_when_a_step_fails(
    quick_cloud: LocalCloud, tmp_path: Path, answer: str
) -> None:
    home = tmp_path / "home"
    path = template(tmp_path, provisioning="exit 3", regions=False)
    before = build_ids(quick_cloud)
    port = str(quick_cloud.ssh_port)
    process = subprocess.Popen(
        [*AMIBAKE, "build", "--on-error", "ask", "--ssh-port", port, str(path)],
        env=cli_env(quick_cloud, home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    seen: list[str] = []
    try:
        while line := process.stdout.readline():
            seen.append(line)
            if "[c] clean up and exit" in line:
                break
        else:
            raise AssertionError("no prompt came:\n" + "".join(seen))
        (build_id,) = build_ids(quick_cloud) - before  # the paused build's instance runs
        process.stdin.write(f"{answer}\n")
        process.stdin.flush()
        rest, errors = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(seen) + rest
    assert process.returncode != 0, output
    assert "Traceback" not in errors, errors
    if answer == "c":
        assert leftovers(quick_cloud, build_id) == {}
        assert unfinished(home) == []
        return
    # aborted: the instance, its key pair and security group stay, and the ledger says so
    kept = leftovers(quick_cloud, build_id)
    assert {"instances", "security_groups", "key_pairs"} <= set(kept), kept
    assert unfinished(home) == [build_id]
    swept = run_cli(quick_cloud, home, "sweep", "--region", "us-east-1")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert leftovers(quick_cloud, build_id) == {}
    assert unfinished(home) == []
