"""Kill a real build process (SIGKILL) or cancel it (SIGTERM/SIGINT) at every step boundary and in
the middle of every wait; then count, through boto3, what the build left. It must be nothing:
after `amibake sweep` for kills, with no sweep at all for cancels. A finished build's AMIs are its
artifacts and stay.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud

from .conftest import artifacts, leftovers, run_cli, start_build, template

Event = dict[str, Any]


def step(name: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "step_started" and e["step"] == name


#: (point, event that marks it, seconds to wait after it before striking)
POINTS: list[tuple[str, Callable[[Event], bool], float]] = [
    ("prepare-boundary", step("prepare"), 0.0),
    ("instance-boundary", step("instance"), 0.0),
    ("instance-running-wait", step("instance"), 0.4),
    ("ssh-wait", step("ssh"), 0.2),
    ("provisioning", lambda e: e["type"] == "log_lines" and "working" in e["lines"], 0.3),
    ("stopped-wait", step("stop"), 0.4),
    ("create-image-boundary", step("create-image"), 0.0),
    ("ami-available-wait", step("create-image"), 0.5),
    ("region-copy-wait", step("copy-image"), 0.5),
    ("cleanup", lambda e: e["type"] == "resource" and e["state"] == "deleting", 0.05),
]
IDS = [name for name, _, _ in POINTS]


def strike_at(
    cloud: LocalCloud, tmp_path: Path, when: Callable[[Event], bool], delay: float, how: int
) -> tuple[Any, int]:
    build = start_build(cloud, tmp_path / "home", template(tmp_path, provisioning="sleep 1"))
    reached = build.wait_for(when)
    assert reached, f"the build ended before the point: {build.events[-1:]}"
    time.sleep(delay)
    build.process.send_signal(how)
    return build, build.finish()


@pytest.mark.parametrize(("point", "when", "delay"), POINTS, ids=IDS)
def test_sigkill_then_sweep_leaves_nothing(
    quick_cloud: LocalCloud, tmp_path: Path, point: str, when: Any, delay: float
) -> None:
    build, status = strike_at(quick_cloud, tmp_path, when, delay, signal.SIGKILL)
    assert status == -signal.SIGKILL
    build_id = build.build_id
    assert build_id is not None
    home = tmp_path / "home"
    # Whatever the build left, the ledger knows the build is unfinished (so the next start of
    # the CLI or the TUI reports it), and the sweep finishes the job.
    left = leftovers(quick_cloud, build_id)
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        unfinished = [b.build_id for b in ledger.unfinished_builds()]
    finally:
        ledger.close()
    assert unfinished == [build_id] or left == {}
    swept = run_cli(quick_cloud, home, "sweep", "--region", "us-east-1", "--region", "us-west-2")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "Traceback" not in swept.stderr
    assert leftovers(quick_cloud, build_id) == {}
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        assert ledger.unfinished_builds() == []
    finally:
        ledger.close()
    if point == "cleanup":
        # Killed while cleaning up after success: the build had finished; its AMIs stay.
        assert len(artifacts(quick_cloud, build_id)) == 2


CANCELS = [
    (point, when, delay, how)
    for point, when, delay in POINTS
    if point not in ("prepare-boundary", "create-image-boundary", "stopped-wait")
    for how in (signal.SIGTERM, signal.SIGINT)
    if how == signal.SIGTERM or point in ("provisioning", "ami-available-wait")
]


@pytest.mark.parametrize(
    ("point", "when", "delay", "how"),
    CANCELS,
    ids=[f"{c[0]}-{signal.Signals(c[3]).name}" for c in CANCELS],
)
def test_cancel_cleans_up_without_a_sweep(
    quick_cloud: LocalCloud, tmp_path: Path, point: str, when: Any, delay: float, how: int
) -> None:
    build, status = strike_at(quick_cloud, tmp_path, when, delay, how)
    build_id = build.build_id
    assert build_id is not None
    finished = [e for e in build.events if e["type"] == "build_finished"]
    assert len(finished) == 1
    if point == "cleanup":
        assert (status, finished[0]["status"]) == (0, "succeeded")
        assert len(artifacts(quick_cloud, build_id)) == 2
    else:
        assert (status, finished[0]["status"]) == (130, "cancelled")
        assert artifacts(quick_cloud, build_id) == []
    assert leftovers(quick_cloud, build_id) == {}
