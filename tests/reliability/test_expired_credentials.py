"""Session credentials that expire mid-build (issue 10, item 10), through the real CLI.

The build starts with environment credentials that expire in 20 minutes
(``AWS_SESSION_TOKEN`` + ``AWS_CREDENTIAL_EXPIRATION``, the AWS CLI's convention): it warns that
they expire before a build can plausibly finish. While it provisions, the local cloud starts
answering every call with ``ExpiredToken`` (a fault plan); the build fails, cleanup cannot
remove anything, and says exactly what is left and the sweep command. That command, run with
working credentials, leaves nothing.
"""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule

from .conftest import AMIBAKE, BuildProcess, cli_env, leftovers, run_cli, template


def test_expired_credentials_leave_a_sweep_command_that_finishes_the_job(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = cli_env(quick_cloud, home)
    expiry = datetime.now(UTC) + timedelta(minutes=20)
    env.update(
        AWS_SESSION_TOKEN="session-token",
        AWS_CREDENTIAL_EXPIRATION=expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = template(tmp_path, provisioning="sleep 1", regions=False)
    process = subprocess.Popen(
        [*AMIBAKE, "build", "--json", "--ssh-port", str(quick_cloud.ssh_port), str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    build = BuildProcess(process)
    try:
        assert build.wait_for(lambda e: e["type"] == "log_lines" and "working" in e["lines"])
        # from now on, every AWS call meets expired credentials
        quick_cloud.set_faults(FaultPlan(rules=[FaultRule("*", error="ExpiredToken")]))
        status = build.finish()
    finally:
        quick_cloud.set_faults(FaultPlan())
        if process.poll() is None:
            process.kill()
    assert status != 0
    build_id = build.build_id
    assert build_id is not None
    messages = [e for e in build.events if e["type"] == "message"]
    warning = next(m["text"] for m in messages if "not refreshable" in m["text"])
    assert "expire in 19 min" in warning or "expire in 20 min" in warning
    report = next(m["text"] for m in messages if "credentials expired" in m["text"])
    left = leftovers(quick_cloud, build_id, ("us-east-1",))
    assert left["instances"] and left["security_groups"] and left["key_pairs"]
    for instance_id in left["instances"]:
        assert f"instance {instance_id} in us-east-1" in report
    assert f"security-group {left['security_groups'][0]} in us-east-1" in report
    command = report.split("run: ", 1)[1]
    assert command == f"amibake sweep --build {build_id} --region us-east-1"
    swept = run_cli(quick_cloud, home, *shlex.split(command)[1:])
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert leftovers(quick_cloud, build_id, ("us-east-1",)) == {}
