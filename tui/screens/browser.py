"""The AMI browser: one region's images for an owner preset, filtered as you type.

Loading: the disk cache first (instant, its age shown); otherwise, or on ``r``,
DescribeImages page by page, the table filling as each page lands, then the
listing is cached. Filtering, facets and sorting run on the in-memory
:class:`amibake.core.catalog.CatalogIndex`; the table is a virtualised
:class:`amibake.tui.widgets.image_table.ImageTable`, so neither depends on how many
images there are.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Label, ProgressBar, Static

from amibake.core.catalog import SORT_KEYS, Facets, Search, format_age
from amibake.core.owners import is_account_id
from amibake.tui.screens.browser_loading import ImageListingScreen
from amibake.tui.session import SessionChanged, UseAsSource
from amibake.tui.widgets.filter_input import FilterInput
from amibake.tui.widgets.image_columns import COLUMNS
from amibake.tui.widgets.image_details import StatusLine, details_markup, selected_line
from amibake.tui.widgets.image_table import ImageTable
from amibake.tui.widgets.running_builds import RunningBuilds
from amibake.tui.widgets.same_frame import repaint_together

#: From this many images on, a filter finds the first PAGE_ROWS matches (FILL_CHUNK rows
#: looked at a time), paints them, and counts the rest between keys and frames, COUNT_CHUNK
#: rows at a time; below, the whole answer costs a few milliseconds and is shown at once.
PROGRESSIVE_FROM = 20_000
PAGE_ROWS = 200
FILL_CHUNK = 2_000
COUNT_CHUNK = 5_000
#: A key's filter looks for its first page for at most this long before the table is
#: painted with what it found ("searching…"): a query that matches few images would
#: otherwise look at every one of them first.
FILL_SECONDS = 0.004
#: The count waits for the key's frame (at most PAINT_WAIT s), then runs in slices of
#: SLICE_SECONDS with a pause of SLICE_GAP after each, so the next key and frame are
#: never held up by more than one slice.
PAINT_WAIT = 0.1
SLICE_SECONDS = 0.002
SLICE_GAP = 0.0005
#: Seconds the detail panel waits for the cursor to settle.
DETAILS_DELAY = 0.06
#: Below this many columns the detail panel starts hidden, so the Name column gets the room
#: (``i`` shows it; once toggled, the user's choice holds whatever the width).
DETAILS_MIN_WIDTH = 180
SORT_CYCLE = [column.key for column in COLUMNS]
FACET_LABELS = {
    "architecture": "arch",
    "virtualization": "virt",
    "root_device": "root",
}


class BrowserScreen(ImageListingScreen):
    """Browse, filter, sort and pick base images."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter", id="browser.filter"),
        Binding("r", "refresh", "Refresh", id="browser.refresh"),
        Binding("o", "pick_owner", "Owner", id="browser.owner"),
        Binding("s", "sort_next", "Sort", id="browser.sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False, id="browser.sort_reverse"),
        Binding("a", "facet('architecture')", "Arch", show=False, id="browser.facet_arch"),
        Binding("v", "facet('virtualization')", "Virt", show=False, id="browser.facet_virt"),
        Binding("d", "facet('root_device')", "Root dev", show=False, id="browser.facet_root"),
        Binding("x", "toggle_deprecated", "Hide deprecated", show=False, id="browser.deprecated"),
        Binding("c", "copy_id", "Copy id", id="browser.copy"),
        Binding("u", "use_source", "Use as source", id="browser.use"),
        Binding("i", "toggle_details", "Details", show=False, id="browser.details"),
        Binding("escape", "back", "Back", show=False, id="browser.back"),
        *[
            Binding(str(n), f"favourite({n})", f"Region {n}", show=False, id=f"browser.region_{n}")
            for n in range(1, 10)
        ],
    ]

    show_details: reactive[bool] = reactive(True)

    def __init__(self, *, id: str | None = "browser") -> None:
        super().__init__(id=id)
        self.filter_text = ""
        self.facets = Facets()
        self.sort_key = "created"
        self.descending = True
        self.mode = "all"
        self.shown = 0
        self._details_timer: Timer | None = None
        self._filter_pending = False
        #: The query shown; ``counting``: its matches past the first page are being found.
        self._search: Search | None = None
        #: How many searches were made (the newest one's number).
        self._searches = 0
        self.counting = False
        self._details_chosen = False
        #: The detail panel was hidden when the cursor last moved: refill it when shown.
        self._details_stale = False

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunningBuilds()
        with Horizontal(id="browser-bar"):
            yield Label("", id="owner-label")
            yield StatusLine(id="status")
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="progress")
        yield FilterInput(
            placeholder="/ filter: words, AWS wildcards (ubuntu/images/*-amd64-server-*), ami-...",
            id="filter",
        )
        yield Label("", id="facets")
        with Horizontal(id="browser-body"):
            yield ImageTable(id="images")
            with VerticalScroll(id="details"):
                yield Static("", id="details-text", markup=True)
        # with the detail panel hidden: the selected image's full name, id and owner
        yield StatusLine(id="selected")
        yield Footer()

    def on_mount(self) -> None:
        #: When the browser opened (perf_counter), for the benchmark's first-screen figure.
        self.opened_at = time.perf_counter()
        self.query_one(ImageTable).focus()
        self._show_facets()
        self._show_owner()
        self.start_loading()

    # -- loading (the rest: tui/screens/browser_loading.py) ----------------------------------

    def on_session_changed(self, event: SessionChanged) -> None:
        self._show_owner()
        self.start_loading()

    # -- filtering -------------------------------------------------------------------------

    def _apply(self, keep: bool = True) -> None:
        """Run the query and show its rows (the cursor stays on the same image if it can).

        Over a large listing only the first page of matches is found before the table
        is painted; the rest is counted in :meth:`_count`, a chunk at a time between
        keys and frames, and the status says "counting…" until then. A new query
        cancels an unfinished count (the last query wins) and narrows from what that
        one had not ruled out yet. Fuzzy matches (no exact one) are ranked the same way,
        "ranking fuzzy matches…" showing until the whole ranked answer is known.
        """
        keep_image = self._current_image() if keep else None
        try:
            search = self.index.search(
                self.filter_text, self.facets, self.sort_key, self.descending
            )
            if len(self.index) < PROGRESSIVE_FROM:
                search.finish()
            else:
                search.fill(PAGE_ROWS, FILL_CHUNK, FILL_SECONDS)
        except Exception as error:  # a filter must never take the app down
            self.notify(f"filter failed: {type(error).__name__}: {error}", severity="error")
            return
        self._search = search  # an unfinished count of an earlier search stops at its next look
        self._searches += 1
        self._show_search(search, keep_image)
        if not search.done:
            self._count(self._searches)

    def _show_search(self, search: Search, keep_image: str | None) -> None:
        table = self.query_one(ImageTable)
        self.mode = search.mode
        self.shown = len(search.rows)
        self.counting = not search.done
        table.empty_text = (
            "Loading…"
            if self.loading_images
            else "Could not list images (r: retry)"
            if self._status_note == "load failed"
            else "Ranking fuzzy matches…"
            if search.ranking
            else "Searching…"
            if self.counting
            else "No images match"
            if len(self.index)
            else "No images for this owner here"
        )
        table.set_rows(
            self.index,
            list(search.rows) if self.counting else search.rows,
            sort_key=self.sort_key,
            descending=self.descending,
            keep_image=keep_image,
        )
        self._show_status()
        # The typed letter, the rows and the count in one frame (see same_frame.py).
        repaint_together(self.query_one("#filter"), table, self.query_one("#status"))

    @work(group="count", exit_on_error=False)
    async def _count(self, number: int) -> None:
        """The rest of search ``number``'s matches, a slice at a time once the key's frame
        is painted; the first page as soon as it is found, if it was not; then the whole.

        A newer search makes this one stale: it returns at its next look instead of being
        cancelled, and the worker is given the search's number, not the search (a worker
        keeps its arguments, and a cancelled one its frames, until a full garbage
        collection, which typing holds off: the rows they hold would pile up).
        """
        await self.query_one(ImageTable).wait_painted(PAINT_WAIT)
        search = self._search
        if number != self._searches or search is None:
            return
        page_shown = len(search.rows) >= PAGE_ROWS
        try:
            while not search.done:
                await asyncio.sleep(SLICE_GAP)  # keys and frames first
                if search is not self._search:
                    return
                search.step_for(SLICE_SECONDS, COUNT_CHUNK)
                if not page_shown and not search.done and len(search.rows) >= PAGE_ROWS:
                    page_shown = True
                    self._show_search(search, self._current_image())
        except Exception as error:  # a filter must never take the app down
            self.notify(f"filter failed: {type(error).__name__}: {error}", severity="error")
            return
        if search is self._search:
            self._show_search(search, self._current_image())

    def _current_image(self) -> str | None:
        current = self.query_one(ImageTable).current_record
        return current.image_id if current else None

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Coalesced: keys typed faster than a filter runs queue one run, not one each,
        # and that run takes the filter line as it is by then (the last query wins).
        if not self._filter_pending:
            self._filter_pending = True
            self.call_later(self._run_filter)

    def _run_filter(self) -> None:
        self._filter_pending = False
        text = self.query_one("#filter", Input).value
        if text != self.filter_text:
            self.filter_text = text
            self._apply(keep=False)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.query_one(ImageTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if filter_input.has_focus:
            self.query_one(ImageTable).focus()
        elif filter_input.value:
            filter_input.value = ""
        elif self.facets.active:
            self.facets = Facets()
            self._show_facets()
            self._apply()

    def action_refresh(self) -> None:
        self.start_loading(refresh=True)

    # -- sorting and facets ----------------------------------------------------------------

    def sort_by(self, key: str, descending: bool | None = None) -> None:
        if key not in SORT_KEYS:
            return
        if descending is None:
            descending = not self.descending if key == self.sort_key else key == "created"
        self.sort_key = key
        self.descending = descending
        self._apply()

    def action_sort_next(self) -> None:
        position = SORT_CYCLE.index(self.sort_key) if self.sort_key in SORT_CYCLE else -1
        key = SORT_CYCLE[(position + 1) % len(SORT_CYCLE)]
        self.sort_by(key, key in ("created", "deprecation"))

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_key, not self.descending)

    @on(ImageTable.HeaderClicked)
    def _header_clicked(self, event: ImageTable.HeaderClicked) -> None:
        self.sort_by(event.column)

    def action_facet(self, name: str) -> None:
        values: list[str | None] = [None, *self.index.facet_values().get(name, [])]
        current = getattr(self.facets, name)
        following = values[(values.index(current) + 1) % len(values)] if current in values else None
        self.facets = Facets(**{**self.facets.__dict__, name: following})
        self._show_facets()
        self._apply()

    def action_toggle_deprecated(self) -> None:
        self.facets = Facets(
            **{**self.facets.__dict__, "hide_deprecated": not self.facets.hide_deprecated}
        )
        self._show_facets()
        self._apply()

    # -- owner and regions -----------------------------------------------------------------

    def action_pick_owner(self) -> None:
        from amibake.tui.modals.picker import PickerModal

        settings = self.amibake.session.settings
        presets = settings.all_owner_presets()
        options = [(p.key, f"{p.label}  ({', '.join(p.owners)})") for p in presets]

        def chosen(key: str | None) -> None:
            if key:
                self.set_owner(key)

        self.app.push_screen(
            PickerModal(
                "Owner",
                options,
                current=settings.owner,
                placeholder="type to filter, or a 12-digit account id",
                hint="enter: choose · an account id typed here is used as is",
                accept=lambda text: is_account_id(text) or text in ("self", "amazon"),
                id="owner-picker",
            ),
            chosen,
        )

    def set_owner(self, key: str) -> None:
        settings = self.amibake.session.settings
        if key == settings.owner and self.loaded_key == self._listing_key():
            return
        settings.owner = key
        self.amibake.save_settings()
        self._show_owner()
        self.start_loading()

    def action_favourite(self, number: int) -> None:
        favourites = self.amibake.session.settings.favourite_regions
        if 1 <= number <= len(favourites):
            self.amibake.switch_region(favourites[number - 1])
        else:
            self.notify(f"no favourite region {number} (pin one in the region picker)")

    # -- the selected image ----------------------------------------------------------------

    @on(ImageTable.Highlighted)
    def _highlighted(self, event: ImageTable.Highlighted) -> None:
        # Debounced: the panel's text needs a layout pass, which a keystroke in the
        # filter (or a held arrow key) should not wait for.
        if self._details_timer is not None:
            self._details_timer.stop()
        row = event.row
        self._details_timer = self.set_timer(DETAILS_DELAY, lambda: self._show_details(row))

    @on(ImageTable.Selected)
    def _selected(self, event: ImageTable.Selected) -> None:
        self.action_use_source()

    def selected_image(self) -> dict[str, Any] | None:
        row = self.query_one(ImageTable).current_row
        if row is None:
            return None
        image = self.index.image(row)
        image["_Region"] = self.amibake.session.region
        return image

    def action_copy_id(self) -> None:
        record = self.query_one(ImageTable).current_record
        if record is None:
            self.notify("no image selected", severity="warning")
            return
        self.app.copy_to_clipboard(record.image_id)
        self.notify(f"copied {record.image_id}", title="Clipboard")

    def action_use_source(self) -> None:
        from amibake.tui.modals.use_source import UseAsSourceModal

        image = self.selected_image()
        if image is None:
            self.notify("no image selected", severity="warning")
            return

        def chosen(as_filter: bool | None) -> None:
            if as_filter is not None:
                self.app.post_message(UseAsSource(image, as_filter))

        self.app.push_screen(UseAsSourceModal(image), chosen)

    def action_toggle_details(self) -> None:
        self._details_chosen = True
        self.show_details = not self.show_details

    def on_resize(self, event: events.Resize) -> None:
        if not self._details_chosen:
            self.show_details = event.size.width >= DETAILS_MIN_WIDTH

    def watch_show_details(self, show: bool) -> None:
        self.set_class(not show, "-no-details")
        if show and self._details_stale:
            self._show_details(self.query_one(ImageTable).current_row)

    # -- text ------------------------------------------------------------------------------

    def _set_status(self, text: str) -> None:
        self.query_one("#status", StatusLine).text = text

    def _show_status(self) -> None:
        total = len(self.index)
        parts = [f"{total:,} image" + ("" if total == 1 else "s")]
        if self.counting and self.mode == "fuzzy":
            parts.append("no exact match · ranking fuzzy matches…")
        elif self.counting and not self.shown:
            parts.append("searching…")
        elif self.counting:
            parts.append(f"{self.shown:,}+ shown · counting…")
        elif self.filter_text or self.facets.active:
            fuzzy = " (fuzzy) · sorted by match" if self.mode == "fuzzy" else ""
            parts.append(f"{self.shown:,} shown{fuzzy}")
        if self._status_note:
            parts.append(self._status_note)
        elif self.fetched_at is not None:
            age = (datetime.now(UTC) - self.fetched_at).total_seconds()
            source = "cached" if self.from_cache else "fetched"
            parts.append(f"{source} {format_age(age)}" + (" ago" if age >= 60 else ""))
        self._set_status(" · ".join(parts))

    def _show_owner(self) -> None:
        session = self.amibake.session
        preset = session.settings.owner_preset(session.settings.owner)
        self.query_one("#owner-label", Label).update(
            f"[b]{escape(preset.label)}[/b] in [b]{escape(session.region)}[/b]"
        )

    def _show_facets(self) -> None:
        facets = self.facets
        parts = [
            f"[b]a[/b] arch: {facets.architecture or 'any'}",
            f"[b]v[/b] virt: {facets.virtualization or 'any'}",
            f"[b]d[/b] root: {facets.root_device or 'any'}",
            f"[b]x[/b] deprecated: {'hidden' if facets.hide_deprecated else 'shown'}",
        ]
        self.query_one("#facets", Label).update("   ".join(parts))

    def _show_details(self, row: int | None) -> None:
        text = self.query_one("#details-text", Static)
        selected = self.query_one("#selected", StatusLine)
        self._details_stale = False
        if row is None or row >= len(self.index):  # a row of the listing a reload replaced
            selected.text = ""
            if self.show_details:
                text.update("")
            else:  # hidden: an update would still cost a layout pass of the screen
                self._details_stale = True
            return
        image = self.index.image(row)
        selected.text = selected_line(image)
        if self.show_details:
            text.update(details_markup(image, self.index.now))
        else:  # hidden: filled when shown (an update costs a layout pass of the screen)
            self._details_stale = True
