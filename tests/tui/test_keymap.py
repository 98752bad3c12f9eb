"""Binding ids: one binding per id across the app, and [keymap] ids that match nothing reported."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from amibake.core.local.cloud import LocalCloud
from amibake.core.settings import Settings
from amibake.tui.keymap import binding_ids, unknown_keymap_ids
from tests.tui.browser_support import make_app, notification_hook, wait_loaded

SIZE = (120, 36)


def test_every_binding_id_names_one_binding() -> None:
    found = binding_ids()
    owners = {binding_id: owner for binding_id, owner in found}
    # the walk reaches every layer of the UI (guards against a vacuous pass)
    assert {"app.quit", "browser.filter", "monitor.cancel", "log.follow", "help.close"} <= set(
        owners
    )
    repeated = {i: n for i, n in Counter(i for i, _ in found).items() if n > 1}
    assert repeated == {}


def test_the_monitor_binds_each_key_once() -> None:
    # `f` (follow) belongs to the output pane alone: the monitor no longer binds it too
    from amibake.tui.screens.monitor import MonitorScreen
    from amibake.tui.widgets.log_view import BuildLogView

    monitor_keys = [b.key for b in MonitorScreen.BINDINGS if hasattr(b, "key")]
    log_keys = [b.key for b in BuildLogView.BINDINGS if hasattr(b, "key")]
    assert "f" in log_keys and not set(monitor_keys) & set(log_keys)


def test_unknown_keymap_ids_are_named() -> None:
    assert unknown_keymap_ids({}) == []
    assert unknown_keymap_ids({"browser.filter": "f", "browser.flter": "g", "nope": "x"}) == [
        "browser.flter",
        "nope",
    ]


async def test_the_app_reports_keymap_ids_that_match_nothing(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    settings.keymap = {"browser.filter": "f", "browser.fliter": "g"}
    app = make_app(cloud, tmp_path, settings=settings)
    seen: list[tuple[str, str]] = []
    async with app.run_test(size=SIZE, message_hook=notification_hook(seen)) as pilot:
        await wait_loaded(pilot, app)
        warnings = [message for severity, message in seen if severity == "warning"]
        assert any("browser.fliter" in m for m in warnings)
        assert not any("browser.filter," in m or m.endswith("browser.filter") for m in warnings)


CHILD = """
import sys
# what `python -m amibake.tui build ...` runs (tui/__main__.py calls amibake.tui.cli.main)
import amibake.tui.cli
from amibake.tui.cli import build_parser
build_parser()  # imports every subcommand's module
print(" ".join(sorted(sys.modules)))
"""


def test_the_build_child_never_imports_the_app() -> None:
    # `python -m amibake.tui build --json ...` is how the app starts a build (tui/build_runner.py):
    # its modules leave textual, rich and the app's modules out.
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-800:]
    imported = set(result.stdout.split())
    assert {
        "amibake.tui.cli.build",
        "amibake.tui.cli.templates",
        "amibake.core.templates",
    } <= imported
    ui = sorted(m for m in imported if m.split(".")[0] in ("textual", "rich"))
    assert ui == []
    assert not {
        m
        for m in imported
        if m.startswith(("amibake.tui.app", "amibake.tui.screens", "amibake.tui.host"))
    }
