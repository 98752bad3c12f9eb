"""How the app shell and the browser look (pytest-textual-snapshot), at a fixed size.

Regenerate after an intended change: ``pytest tests/tui/test_browser_snapshots.py
--snapshot-update``, then look at the SVGs in the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from amibake.core.local.cloud import LocalCloud
from amibake.tui.modals.error import ErrorModal
from tests.tui.browser_support import make_app, no_blink, wait_loaded

SIZE = (130, 36)


def prepared(
    *keys: str, then: Callable[[Any], None] | None = None
) -> Callable[..., Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot, pilot.app)  # type: ignore[arg-type]
        if keys:
            await pilot.press(*keys)
        if then is not None:
            then(pilot.app)
        await pilot.pause(0.3)
        no_blink(pilot.app)  # type: ignore[arg-type]
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


def test_browser(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared("down", "down"))


def test_browser_filtered_with_facets(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    keys = ("slash", *"*jammy-22.04-arm64-server-*", "enter", "a", "x", "S")
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(*keys))


def test_region_picker(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared("g", *"eu-"))


def test_owner_picker(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared("o"))


def test_target_picker(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared("t"))


def test_use_as_source(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    keys = ("slash", *"noble amd64 server", "enter", "u")
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(*keys))


def test_help(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared("question_mark"))


def test_error_modal(snap_compare: Any, cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    message = (
        "profile 'nokeys' has no usable credentials (check ~/.aws/config), or use the local cloud"
    )
    assert snap_compare(
        app,
        terminal_size=SIZE,
        run_before=prepared(then=lambda a: a.push_screen(ErrorModal("Credentials", message))),
    )
