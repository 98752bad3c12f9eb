"""Snapshots of the editor, monitor (running, cancelling) and history, at a fixed size.

The monitor is shown with a run whose states come from scripted events at fixed
times and a pinned clock, so spinners and elapsed times are deterministic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Target
from amibake.core.model import BuildSpec
from amibake.core.templates import loads
from amibake.tui import build_state
from amibake.tui.build_runner import BuildRun
from amibake.tui.screens.editor import EditorScreen
from amibake.tui.screens.history import HistoryScreen
from amibake.tui.screens.monitor import MonitorScreen
from tests.tui.builds_support import (
    T0,
    BuildsTestApp,
    FakeSession,
    scripted_events,
    wait_until,
    write_record,
)

SIZE = (130, 40)

TEMPLATE = """\
variable "region" {
  type    = string
  default = "us-east-1"
}

variable "api_token" {
  type      = string
  sensitive = true
}

source "amazon-ebs" "web" {
  region        = var.region
  instance_type = "t3.micro"
  ssh_usrname   = "ubuntu"
  ami_name      = "web-1.4.2"
  source_ami    = "ami-0e1c58181950e853b"
}

build {
  sources = ["source.amazon-ebs.web"]
  provisioner "shell" {
    inline = ["echo hello"]
  }
}
"""

SPEC_TEXT = """\
source "amazon-ebs" "demo" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "amibake-demo-20260101000000"
  source_ami    = "ami-0e1c58181950e853b"
}
build {
  sources = ["source.amazon-ebs.demo"]
  provisioner "shell" {
    inline = ["echo installing demo app"]
  }
}
"""


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_state, "now", lambda: T0 + 9.05)


def scripted_run(upto: str) -> BuildRun:
    spec: BuildSpec = loads(SPEC_TEXT, file="demo.pkr.hcl", format="hcl")
    run = BuildRun(spec, target=Target(), template_path=Path("templates/demo.pkr.hcl"))
    state = run.states["demo"]
    state.apply_all(scripted_events("demo", upto=upto))
    if upto == "cancelling":
        run.cancel()  # not started: only marks the run and its build as cancelling
    return run


def monitor_app(upto: str) -> BuildsTestApp:
    run = scripted_run(upto)
    return BuildsTestApp(FakeSession(Target()), lambda: MonitorScreen.attach(run))


def test_monitor_running(snap_compare: Any, pinned_clock: None) -> None:
    assert snap_compare(monitor_app("provisioning"), terminal_size=SIZE)


def test_monitor_cancelling(snap_compare: Any, pinned_clock: None) -> None:
    assert snap_compare(monitor_app("cancelling"), terminal_size=SIZE)


def test_editor_with_problems(snap_compare: Any) -> None:
    app = BuildsTestApp(FakeSession(Target()), lambda: EditorScreen())

    async def run_before(pilot: Any) -> None:
        screen = pilot.app.screen
        screen.text_area.cursor_blink = False
        screen.text_area.load_text(TEMPLATE)

        # Wait for what the snapshot shows: TEMPLATE's own validation (its variables form has
        # api_token, the starter's has not), not merely "a validation is done", which the
        # starter's already was while the edit's Changed message still waited in the queue.
        def shown() -> bool:
            return (
                bool(screen.query("#var-api_token"))
                and screen.validated_generation == screen.generation
                and "Checking" not in str(screen.query_one("#editor-status").render())
            )

        await wait_until(pilot, shown, 30, "TEMPLATE's validation and variables form")
        await pilot.pause()  # the new form's fields may post their Changed: let it settle
        await wait_until(pilot, shown, 30, "the validation after the form settled")
        screen.query_one("#var-api_token").cursor_blink = False

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_history(snap_compare: Any, tmp_path: Path) -> None:
    root = tmp_path / "builds"
    write_record(root, scripted_events("demo"))
    app = BuildsTestApp(FakeSession(Target()), lambda: HistoryScreen(root))

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: pilot.app.screen.loaded, 10)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
