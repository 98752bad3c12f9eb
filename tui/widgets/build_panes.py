"""The live panes of a build: steps, temporary resources, artifacts.

Each table is updated from a :class:`~amibake.tui.build_state.BuildState` by diffing
rows by key (dolphie-style): new rows are added, changed cells updated, rows
gone removed; a table is never cleared and refilled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from amibake.tui import build_state
from amibake.tui.build_state import BuildState, ResourceRow, StepRow

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STEP_ICONS = {
    "pending": ("·", "dim"),
    "ok": ("✔", "green"),
    "failed": ("✘", "bold red"),
    "cancelled": ("⊘", "yellow"),
    "skipped": ("-", "dim"),
}
RESOURCE_STATES = {
    "creating": "yellow",
    "created": "green",
    "deleting": "magenta",
    "deleted": "dim",
    "failed": "bold red",
    "kept": "cyan",
}
STATUS_BADGES = {
    "pending": ("○ pending", "dim"),
    "running": ("● running", "bold cyan"),
    "paused": ("⏸ paused", "bold magenta"),
    "cancelling": ("◌ cleaning up", "bold yellow"),
    "succeeded": ("✔ succeeded", "bold green"),
    "failed": ("✘ failed", "bold red"),
    "cancelled": ("⊘ cancelled", "bold yellow"),
}


def status_badge(status: str) -> Text:
    label, style = STATUS_BADGES.get(status, (status, ""))
    return Text(label, style=style)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class _DiffTable(DataTable[Any]):
    """A DataTable kept equal to a keyed set of rows by adding, updating and removing."""

    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._cells: dict[str, tuple[Any, ...]] = {}
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    def sync(self, rows: dict[str, tuple[Any, ...]]) -> None:
        """Make the table show ``rows`` (key -> cells, in order) with the fewest changes."""
        columns = [key for key, _label in self.COLUMNS]
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
        for key, cells in rows.items():
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for column, before, after in zip(columns, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, column, after, update_width=True)
            self._cells[key] = cells


#: The Detail room a narrow steps pane keeps by cutting titles, and the shortest title cut.
MIN_DETAIL_ROOM = 24
MIN_TITLE_WIDTH = 14


class BuildStepsTable(_DiffTable):
    """Steps with a state icon and duration; the running one spins and counts its seconds."""

    # Time before the title: in a narrow pane the end of a long title is what gets cut.
    COLUMNS = (("icon", " "), ("time", "Time"), ("title", "Step"), ("detail", "Detail"))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cursor_type = "none"
        self.show_cursor = False
        self._frame = 0
        self._followed: int | None = None

    def sync_state(self, state: BuildState, *, live: bool = True) -> None:
        now = build_state.now()
        self._frame = int(now * 10)
        rows: dict[str, tuple[Any, ...]] = {}
        for row in state.steps.values():
            rows[row.name] = self._cells_for(row, now, live)
        self.sync(rows)
        self._fit_title()
        # keep the step that matters in view in a short pane: the running one, else the last
        # that ran (after a build, the cleanup row and its "4/4 deleted")
        steps = list(state.steps.values())
        started = [i for i, r in enumerate(steps) if r.state not in ("pending", "skipped")]
        running = [i for i, r in enumerate(steps) if r.state == "running"]
        focus = running[0] if running else (started[-1] if started else None)
        if focus is not None and focus != self._followed:
            self._followed = focus
            self.call_after_refresh(self._show_row, focus)

    def _show_row(self, index: int) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # the header is fixed
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)

    def on_resize(self) -> None:
        self._fit_title()
        if self._followed is not None:
            self.call_after_refresh(self._show_row, self._followed)

    def _fit_title(self) -> None:
        """In a narrow pane, cut the step titles (ellipsis) before the Detail column: an error
        or "4/4 deleted" must stay readable, a title's end is guessable."""
        # the vertical scrollbar counts as taken: it comes and goes with the rows
        width = self.size.width - self.styles.scrollbar_size_vertical
        column = self.columns.get(ColumnKey("title"))
        if not width or column is None or not self._cells:
            return
        natural = max(cell_len(str(cells[2])) for cells in self._cells.values())
        natural = max(natural, len("Step"))
        detail = max(cell_len(str(cells[3])) for cells in self._cells.values())
        fixed = sum(self.columns[ColumnKey(k)].get_render_width(self) for k in ("icon", "time"))
        padding = 4 * self.cell_padding  # the title's and the detail's
        room = width - fixed - padding - min(detail, MIN_DETAIL_ROOM)
        fitted = max(MIN_TITLE_WIDTH, min(natural, room))
        auto = fitted >= natural
        if column.auto_width == auto and (auto or column.width == fitted):
            return
        column.auto_width = auto
        column.width = fitted
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    def _cells_for(self, row: StepRow, now: float, live: bool) -> tuple[Any, ...]:
        if row.state == "running":
            icon = Text(SPINNER[self._frame % len(SPINNER)] if live else "●", style="bold cyan")
            elapsed = now - row.started if (live and row.started is not None) else row.duration
            when = Text(format_duration(elapsed), style="cyan")
            title = Text(row.title, style="bold", no_wrap=True, overflow="ellipsis")
        else:
            glyph, style = STEP_ICONS.get(row.state, ("?", ""))
            icon = Text(glyph, style=style)
            when = Text(format_duration(row.duration), style="dim")
            title = Text(
                row.title,
                style="dim" if row.state in ("pending", "skipped") else "",
                no_wrap=True,
                overflow="ellipsis",
            )
        detail = row.error or row.detail
        return (icon, when, title, Text(detail, style="red" if row.error else "dim"))


class BuildResourcesTable(_DiffTable):
    """Every resource the build created, as it goes creating -> created -> deleting -> deleted."""

    # The state next to the kind: it is what changes, and it must stay in view.
    COLUMNS = (
        ("kind", "Kind"),
        ("state", "State"),
        ("id", "ID"),
        ("region", "Region"),
        ("detail", "Detail"),
    )

    def sync_state(self, state: BuildState) -> None:
        self.sync({key: self._cells_for(row) for key, row in state.resources.items()})

    @staticmethod
    def _cells_for(row: ResourceRow) -> tuple[Any, ...]:
        return (
            row.kind,
            Text(row.state, style=RESOURCE_STATES.get(row.state, "")),
            row.resource_id,
            row.region,
            Text(row.detail, style="dim"),
        )


class BuildArtifactsTable(_DiffTable):
    """The AMIs built, one per region; ``y`` (or enter) copies the selected AMI id."""

    COLUMNS = (("region", "Region"), ("ami", "AMI"))

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "copy", "Copy AMI id", id="artifacts.copy"),
    ]

    def sync_state(self, state: BuildState) -> None:
        self.sync({region: (region, ami) for region, ami in sorted(state.artifacts.items())})

    def selected_ami(self) -> str | None:
        if not self.row_count:
            return None
        row = self.get_row_at(self.cursor_row)
        return str(row[1])

    def action_copy(self) -> None:
        ami = self.selected_ami()
        if ami is None:
            return
        self.app.copy_to_clipboard(ami)
        self.notify(f"Copied {ami} to the clipboard", title="AMI id")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_copy()
