"""Interactive debugging in the app (issue 15), driven by Pilot against the local cloud.

A failed provisioner pauses the build (--on-error ask, the app's default) with a panel:
retry (after fixing the template file), a shell on the instance, clean up, keep everything.
A breakpoint shows a Continue button; ``s`` opens a shell on a running build. The shell is
a real OpenSSH session to the instance with the build's temporary key, run through a test
double of the terminal: the same command line, with a command instead of a login shell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from amibake.core.local.cloud import LocalCloud
from amibake.core.templates import load
from amibake.tui import build_runner
from amibake.tui.build_runner import runs
from amibake.tui.modals.failed_step import BreakpointModal, FailedStepModal
from amibake.tui.screens.monitor import MonitorScreen
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import Instance
from tests.tui.builds_support import BuildsTestApp, session_for, tagged_resources, wait_until

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh")

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"

# the engine tests' fixtures that launch a test instance (a bastion here)
engine_cloud = engine_fixtures.engine_cloud
ec2 = engine_fixtures.ec2
launch = engine_fixtures.launch


def builder(**extra: Any) -> dict[str, Any]:
    return {
        "type": "amazon-ebs",
        "name": "debug",
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami_filter": {
            "filters": {"name": FOCAL},
            "owners": ["099720109477"],
            "most_recent": True,
        },
        "ami_name": f"tui-debug-{uuid.uuid4().hex[:8]}",
        "skip_create_ami": True,
        **extra,
    }


def shell(*commands: str) -> dict[str, Any]:
    return {"type": "shell", "inline": list(commands)}


class Terminal:
    """Stands in for the suspended app's terminal: runs the app's ``ssh`` command line for
    real, with ``command`` appended, and keeps what the session printed."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.sessions: list[list[str]] = []
        self.argv: list[list[str]] = []

    def __call__(self, app: Any, argv: Sequence[str]) -> int:
        self.argv.append(list(argv))
        # the key file exists while the shell runs, private to the user
        key = Path(argv[argv.index("-i") + 1])
        assert key.stat().st_mode & 0o777 == 0o600
        result = subprocess.run(
            [*argv, self.command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.sessions.append(result.stdout.split())
        return result.returncode


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    double = Terminal("cat /tmp/first-runs 2>/dev/null; id -un")
    monkeypatch.setattr(build_runner, "run_in_terminal", double)
    return double


@pytest.fixture
def instant(cloud: LocalCloud) -> LocalCloud:
    cloud.set_latency("instant")
    return cloud


def showing(app: Any, kind: type) -> bool:
    """The panel is up, its buttons mounted."""
    return isinstance(app.screen, kind) and bool(app.screen.query("Button"))


def start(cloud: LocalCloud, path: Path) -> BuildsTestApp:
    spec = load(path)
    return BuildsTestApp(session_for(cloud), lambda: MonitorScreen(spec, path))


async def test_shell_then_retry_after_fixing_the_template(
    instant: LocalCloud, tmp_path: Path, terminal: Terminal
) -> None:
    path = tmp_path / "debug.json"
    data = {
        "builders": [builder()],
        "provisioners": [
            shell("echo ran >> /tmp/first-runs"),
            shell("echo broken", "exit 5"),
            shell("echo first ran $(wc -l < /tmp/first-runs) time"),
        ],
    }
    path.write_text(json.dumps(data))
    app = start(instant, path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: showing(app, FailedStepModal), 90, "panel")
        modal = app.screen
        assert isinstance(modal, FailedStepModal)
        assert modal.build == "debug" and modal.step_title == "Provisioning"
        assert "5" in modal.error
        buttons = [b.id for b in modal.query("Button")]
        assert buttons == ["failed-retry", "failed-shell", "failed-cleanup", "failed-abort"]
        await pilot.press("s")  # a shell; the panel comes back when it exits
        await wait_until(pilot, lambda: terminal.sessions, 60, "shell")
        assert terminal.sessions == [["ran", "ubuntu"]]
        key_dir = Path(terminal.argv[0][terminal.argv[0].index("-i") + 1]).parent
        await wait_until(pilot, lambda: showing(app, FailedStepModal), 30, "panel")
        assert not key_dir.exists()  # removed right after the shell
        data["provisioners"][1] = shell("echo repaired")
        path.write_text(json.dumps(data))
        await pilot.press("r")
        run = runs(app)[0]
        await wait_until(pilot, lambda: run.finished.is_set(), 90, "build")
        state = run.states["debug"]
        assert state.status == "succeeded", state.error
        texts = [text for _, text in state.log]
        assert "repaired" in texts
        assert "first ran 1 time" in texts  # the provisioner before the failed one ran once
        assert tagged_resources(instant, state.build_id) == []
        assert run.paused == {}


async def test_clean_up_from_the_panel(instant: LocalCloud, tmp_path: Path) -> None:
    path = tmp_path / "debug.json"
    path.write_text(json.dumps({"builders": [builder()], "provisioners": [shell("exit 9")]}))
    app = start(instant, path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: showing(app, FailedStepModal), 90, "panel")
        run = runs(app)[0]
        build_id = run.build_id_of["debug"]
        assert tagged_resources(instant, build_id)  # paused: the instance is still there
        await pilot.press("c")
        await wait_until(pilot, lambda: run.finished.is_set(), 90, "build")
        assert run.states["debug"].status == "failed"
        assert tagged_resources(instant, build_id) == []


async def test_keep_everything_from_the_panel(instant: LocalCloud, tmp_path: Path) -> None:
    path = tmp_path / "debug.json"
    path.write_text(json.dumps({"builders": [builder()], "provisioners": [shell("exit 9")]}))
    app = start(instant, path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: showing(app, FailedStepModal), 90, "panel")
        run = runs(app)[0]
        await pilot.press("k")
        await wait_until(pilot, lambda: run.finished.is_set(), 90, "build")
        state = run.states["debug"]
        assert state.status == "failed"
        kept = tagged_resources(instant, state.build_id)
        assert any(r.startswith("i-") for r in kept)
        texts = [text for _, text in state.log]
        assert any("amibake sweep --build" in t for t in texts)
    _remove(instant, kept)


async def test_breakpoint_continue_and_s_on_a_running_build(
    instant: LocalCloud, tmp_path: Path, terminal: Terminal
) -> None:
    path = tmp_path / "debug.json"
    provisioners = [
        shell("echo before >> /tmp/first-runs"),
        {"type": "breakpoint", "note": "look around"},
        shell("echo after the breakpoint"),
    ]
    path.write_text(json.dumps({"builders": [builder()], "provisioners": provisioners}))
    app = start(instant, path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: showing(app, BreakpointModal), 90, "breakpoint")
        modal = app.screen
        assert isinstance(modal, BreakpointModal) and modal.note == "look around"
        await pilot.press("escape")  # later: back to the monitor, the build still paused
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("s")  # a shell on the running build
        await wait_until(pilot, lambda: terminal.sessions, 60, "shell")
        assert terminal.sessions == [["before", "ubuntu"]]
        await pilot.press("p")  # the breakpoint's panel again
        await wait_until(pilot, lambda: showing(app, BreakpointModal), 30, "panel")
        await pilot.click("#breakpoint-continue")
        run = runs(app)[0]
        await wait_until(pilot, lambda: run.finished.is_set(), 90, "build")
        state = run.states["debug"]
        assert state.status == "succeeded", state.error
        assert "after the breakpoint" in [text for _, text in state.log]


async def test_the_shell_goes_through_the_templates_bastion(
    instant: LocalCloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    launch: Callable[..., Instance],
) -> None:
    """``s`` at a breakpoint of a build that reaches its instance through ``ssh_bastion_*``:
    the shell takes the same hop (a ProxyCommand with the bastion's own key, 0600, removed
    with the rest after the shell)."""
    bastion = launch()
    bastion_key = tmp_path / "bastion_key"
    bastion.key.write_private_key(bastion_key)
    double = Terminal("echo from=${SSH_CONNECTION%% *}; id -un")
    monkeypatch.setattr(build_runner, "run_in_terminal", double)
    path = tmp_path / "debug.json"
    template = builder(
        ssh_bastion_host=bastion.host,
        ssh_bastion_port=bastion.port,
        ssh_bastion_username="ubuntu",
        ssh_bastion_private_key_file=str(bastion_key),
    )
    provisioners = [{"type": "breakpoint", "note": "via the bastion"}]
    path.write_text(json.dumps({"builders": [template], "provisioners": provisioners}))
    app = start(instant, path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: showing(app, BreakpointModal), 90, "breakpoint")
        await pilot.press("escape")
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("s")
        await wait_until(pilot, lambda: double.sessions, 60, "shell")
        argv = double.argv[0]
        [hop] = [a.removeprefix("ProxyCommand=") for a in argv if a.startswith("ProxyCommand=")]
        assert f"ubuntu@{bastion.host}" in hop and f"-p {bastion.port}" in hop
        hop_key = Path(hop.split(" -i ", 1)[1].split(" ", 1)[0])
        assert hop_key.parent == Path(argv[argv.index("-i") + 1]).parent
        assert double.sessions[0][-1] == "ubuntu"
        if bastion.host != argv[-1].split("@", 1)[1]:
            # the instance saw the session come from the bastion's private address
            assert double.sessions[0][0] == f"from={bastion.describe()['PrivateIpAddress']}"
        await wait_until(pilot, lambda: not hop_key.parent.exists(), 30, "the keys removed")
        await pilot.press("p")
        await wait_until(pilot, lambda: showing(app, BreakpointModal), 30, "panel")
        await pilot.click("#breakpoint-continue")
        run = runs(app)[0]
        await wait_until(pilot, lambda: run.finished.is_set(), 90, "build")
        assert run.states["debug"].status == "succeeded", run.states["debug"].error
        assert tagged_resources(instant, run.states["debug"].build_id) == []


def _remove(cloud: LocalCloud, kept: list[str]) -> None:
    ec2 = cloud.client("ec2", "us-east-1")
    instances = [r for r in kept if r.startswith("i-")]
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=instances, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )
    for resource in kept:
        if resource.startswith("sg-"):
            ec2.delete_security_group(GroupId=resource)
        elif not resource.startswith(("i-", "ami-", "snap-")):
            ec2.delete_key_pair(KeyName=resource)
