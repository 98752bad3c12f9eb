"""The live panes of a build: steps, temporary resources, artifacts.

Each table is updated from a :class:`~tui.build_state.BuildState` by diffing
rows by key (dolphie-style): new rows are added, changed cells updated, rows
gone removed; a table is never cleared and refilled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from tui import build_state
from tui.build_state import BuildState, ResourceRow, StepRow

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


class BuildStepsTable(_DiffTable):
    """Steps with a state icon and duration; the running one spins and counts its seconds."""

    # Time before the title: in a narrow pane the end of a long title is what gets cut.
    COLUMNS = (("icon", " "), ("time", "Time"), ("title", "Step"), ("detail", "Detail"))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cursor_type = "none"
        self.show_cursor = False
        self._frame = 0

    def sync_state(self, state: BuildState, *, live: bool = True) -> None:
        now = build_state.now()
        self._frame = int(now * 10)
        rows: dict[str, tuple[Any, ...]] = {}
        for row in state.steps.values():
            rows[row.name] = self._cells_for(row, now, live)
        self.sync(rows)

    def _cells_for(self, row: StepRow, now: float, live: bool) -> tuple[Any, ...]:
        if row.state == "running":
            icon = Text(SPINNER[self._frame % len(SPINNER)] if live else "●", style="bold cyan")
            elapsed = now - row.started if (live and row.started is not None) else row.duration
            when = Text(format_duration(elapsed), style="cyan")
            title = Text(row.title, style="bold")
        else:
            glyph, style = STEP_ICONS.get(row.state, ("?", ""))
            icon = Text(glyph, style=style)
            when = Text(format_duration(row.duration), style="dim")
            title = Text(row.title, style="dim" if row.state in ("pending", "skipped") else "")
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
