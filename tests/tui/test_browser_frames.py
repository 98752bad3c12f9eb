"""What keeps a filter keystroke within a frame: one frame for the line, the rows and the
count; no layout pass; no garbage collection between keys; nothing kept of stale searches.

These look at Textual's screen updates (``Screen._on_timer_update``, ``_refresh_layout``):
if Textual changes how a screen paints, they fail rather than pass without testing.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

from amibake.core.local.cloud import LocalCloud
from amibake.tui import collector
from amibake.tui.screens import browser as browser_module
from amibake.tui.widgets import filter_input as filter_input_module
from amibake.tui.widgets.filter_input import FilterInput
from amibake.tui.widgets.image_table import ImageTable
from tests.tui.browser_support import make_app, wait_loaded
from tests.tui.builds_support import wait_until

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def collections_restored() -> Iterator[None]:
    """Whatever a test leaves, automatic collection is on again after it."""
    yield
    collector._PAUSES = 0
    gc.enable()


class Frames:
    """Each screen update (a frame) of the test, with what it painted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.painted: list[set[str]] = []
        self.layouts = 0
        update = Screen._on_timer_update
        layout = Screen._refresh_layout
        frames = self

        def counted_update(screen: Screen[Any]) -> None:
            frames.painted.append(set())
            update(screen)

        def counted_layout(screen: Screen[Any], *args: Any, **kwargs: Any) -> None:
            frames.layouts += 1
            layout(screen, *args, **kwargs)

        monkeypatch.setattr(Screen, "_on_timer_update", counted_update)
        monkeypatch.setattr(Screen, "_refresh_layout", counted_layout)

    def watch(self, name: str, widget: Any) -> None:
        """Note ``name`` in the frame that renders ``widget``."""
        render_lines = widget.render_lines

        def noted(crop: Any) -> Any:
            if self.painted:
                self.painted[-1].add(name)
            return render_lines(crop)

        widget.render_lines = noted


async def test_a_key_after_a_pause_paints_line_rows_and_count_in_one_frame(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key typed after a pause (every key a person types) paints the typed letter, the
    table's new rows and the new count in the same frame: the screen starts that frame at
    once, and without same_frame.repaint_together the rows come a frame (16.7 ms) later."""
    frames = Frames(monkeypatch)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        table = browser.query_one(ImageTable)
        frames.watch("line", browser.query_one(FilterInput))
        frames.watch("rows", table)
        status = browser.query_one("#status")
        frames.watch("count", status)
        await pilot.press("slash")
        for key in "ubuntu":
            await pilot.pause()
            before = len(frames.painted)
            generation = table.generation
            count = str(status.render())
            await pilot.press(key)
            await wait_until(
                pilot,
                lambda generation=generation: (
                    table.generation > generation and table.painted_generation == table.generation
                ),
                what="the new rows painted",
            )
            changed = {"line", "rows"} | ({"count"} if str(status.render()) != count else set())
            first = next(painted for painted in frames.painted[before:] if "line" in painted)
            assert first >= changed, (key, frames.painted[before:])
        assert any("count" in painted for painted in frames.painted)


async def test_typing_lays_nothing_out_and_holds_collections_off(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys that take the table from many rows to none and back cost no layout pass (the
    table's scrollbar stays), and no garbage collection runs until typing pauses."""
    monkeypatch.setattr(browser_module, "PROGRESSIVE_FROM", 0)
    monkeypatch.setattr(filter_input_module, "TYPING_PAUSE", 3.0)  # a busy machine's keys
    frames = Frames(monkeypatch)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        table = app.browser.query_one(ImageTable)
        collecting: list[bool] = []  # at each paint of the rows
        render_lines = table.render_lines

        def noted(crop: Any) -> Any:
            collecting.append(gc.isenabled())
            return render_lines(crop)

        table.render_lines = noted  # type: ignore[method-assign]
        await pilot.press("slash")
        while True:  # until the focus change has laid the footer out again
            layouts = frames.layouts
            await pilot.pause(0.1)
            if frames.layouts == layouts:
                break
        collecting.clear()
        await pilot.press(*"ubuntu*qqqq")
        await wait_until(pilot, lambda: not table.rows, what="no rows")
        await pilot.press(*["backspace"] * 5)
        await wait_until(pilot, lambda: len(table.rows) > 10, what="rows again")
        assert frames.layouts == layouts
        assert collecting and not any(collecting)
        await wait_until(pilot, gc.isenabled, what="collections on again")
        assert not app.browser.query_one(FilterInput).collections_paused


async def test_a_search_a_newer_key_replaced_is_freed_at_once(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search whose count a newer key made stale is freed by reference counting alone
    (its count ends instead of being cancelled, and its worker never held it): with
    collections held off while typing, kept searches would pile up their rows."""
    monkeypatch.setattr(browser_module, "PROGRESSIVE_FROM", 0)
    monkeypatch.setattr(browser_module, "PAGE_ROWS", 5)
    monkeypatch.setattr(browser_module, "FILL_CHUNK", 10)
    counts: list[int] = []
    count = browser_module.BrowserScreen._count

    def recorded(screen: browser_module.BrowserScreen, number: int) -> Any:
        counts.append(number)
        return count(screen, number)

    monkeypatch.setattr(browser_module.BrowserScreen, "_count", recorded)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        gc.disable()
        await pilot.press("slash", "u")
        first = app.browser._search
        assert first is not None and counts  # its count was started
        stale = weakref.ref(first)
        del first
        await pilot.press("b")
        await wait_loaded(pilot, app)
        assert stale() is None


def test_collection_pauses_nest_and_the_last_resume_ends_them() -> None:
    collector.pause_collections()
    collector.pause_collections()
    collector.resume_collections()
    assert not gc.isenabled()
    collector.resume_collections()
    assert gc.isenabled()
    collector.resume_collections()  # one too many: harmless
    assert gc.isenabled()


def test_a_build_ending_keeps_the_long_lived_listing_frozen() -> None:
    """The last build's release unfreezes what the builds froze; a long-lived listing
    frozen before is frozen again (else every full collection walks it mid-typing)."""
    gc.unfreeze()
    listing = [[n] for n in range(1000)]
    collector.freeze_long_lived()
    try:
        collector.hold_collector()
        collector.release_collector()
        assert gc.get_freeze_count() >= len(listing)
        assert not any(item is listing for item in gc.get_objects())  # still out of reach
    finally:
        gc.unfreeze()
        collector._LONG_LIVED = False
