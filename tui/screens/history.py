"""Past builds (from amibake.core.history's records): status, duration, template, artifacts.

Enter opens a build: its steps, resources and artifacts replayed from
``events.ndjson`` and the tail of its output, in the same panes as the live
monitor (a build still running in this app opens its live monitor instead).
``r`` runs the same template again with the same (non-sensitive) variables.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Static

from amibake.core.history import BuildRecord, read_records, replay_events, rerun_spec
from amibake.tui.build_runner import BuildRun, runs
from amibake.tui.build_state import BuildState
from amibake.tui.messages import BuildRequested, OpenRun
from amibake.tui.widgets.build_panel import BuildPanel
from amibake.tui.widgets.build_panes import format_duration, status_badge
from amibake.tui.widgets.running_builds import RunningBuilds


class HistoryScreen(Screen[None]):
    CSS_PATH = "builds.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="history.open"),
        Binding("r", "rerun", "Rerun", id="history.rerun"),
        Binding("f5", "reload", "Reload", id="history.reload"),
        Binding("escape", "back", "Back", id="history.back"),
    ]

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = root
        self.records: dict[str, BuildRecord] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(Text("Build history", style="bold"), id="history-title")
        yield RunningBuilds()
        table: DataTable[Any] = DataTable(id="history-table", cursor_type="row")
        for key, label in (
            ("started", "Started"),
            ("status", "Status"),
            ("build", "Build"),
            ("duration", "Duration"),
            ("template", "Template"),
            ("artifacts", "Artifacts"),
        ):
            table.add_column(label, key=key)
        yield table
        yield Static(
            "No builds yet: start one from the editor.", id="history-empty", classes="hidden"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(2.0, self.action_reload)

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="history-load")
    def _load(self) -> None:
        records = read_records(self.root)
        self.app.call_from_thread(self._show, records)

    def _show(self, records: list[BuildRecord]) -> None:
        table = self.query_one("#history-table", DataTable)
        wanted = {r.build_id: r for r in records}
        for key in [k for k in self.records if k not in wanted]:
            table.remove_row(key)
            del self.records[key]
        live = {s.build_id for run in runs(self.app) for s in run.states.values() if run.running}
        added = False
        for record in records:
            status = record.status
            if status == "running" and record.build_id not in live:
                status = "interrupted"
            cells = (
                datetime.fromtimestamp(record.started).strftime("%Y-%m-%d %H:%M:%S")
                if record.started
                else "",
                status_badge(status)
                if status != "interrupted"
                else Text("⚠ interrupted", "bold red"),
                record.build,
                format_duration(record.duration),
                Path(record.template).name if record.template else "(unsaved)",
                ", ".join(f"{r}: {a}" for r, a in sorted(record.artifacts.items())) or "",
            )
            old = self.records.get(record.build_id)
            if old is None:
                table.add_row(*cells, key=record.build_id)
                added = True
            elif old != record:
                for column, value in zip(
                    ("started", "status", "build", "duration", "template", "artifacts"),
                    cells,
                    strict=True,
                ):
                    table.update_cell(record.build_id, column, value, update_width=True)
            self.records[record.build_id] = record
        if added and self.loaded:
            table.sort("started", reverse=True)
        self.query_one("#history-empty").set_class(bool(records), "hidden")
        self.loaded = True
        self._show_position()

    @on(DataTable.RowHighlighted, "#history-table")
    def _show_position(self) -> None:
        """The title says where the cursor is: ``Build history  3 of 12``."""
        table = self.query_one("#history-table", DataTable)
        title = Text("Build history", style="bold")
        if table.row_count:
            title.append(f"  {table.cursor_row + 1} of {table.row_count}", style="dim")
        self.query_one("#history-title", Static).update(title)

    def selected(self) -> BuildRecord | None:
        table = self.query_one("#history-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.records.get(key or "")

    @on(DataTable.RowSelected, "#history-table")
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        record = self.selected()
        if record is None:
            return
        for run in runs(self.app):
            if run.running and any(s.build_id == record.build_id for s in run.states.values()):
                self.post_message(OpenRun(run))
                return
        self.app.push_screen(BuildRecordScreen(record))

    def action_rerun(self) -> None:
        record = self.selected()
        if record is not None:
            rerun(self, record)

    def action_back(self) -> None:
        self.dismiss()


def rerun(screen: Screen[Any], record: BuildRecord) -> BuildRun | None:
    from amibake.core.errors import AmibakeError

    try:
        spec, path, skipped = rerun_spec(record)
    except AmibakeError as error:
        screen.notify(str(error), title="Cannot rerun", severity="error")
        return None
    if skipped:
        screen.notify(
            f"Sensitive variables use their defaults: {', '.join(skipped)}",
            title="Rerun",
            severity="warning",
        )
    screen.post_message(BuildRequested(spec, path))
    return None


class BuildRecordScreen(Screen[None]):
    """One past build, replayed from its events: steps, resources, artifacts, output."""

    CSS_PATH = "builds.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun", "Rerun", id="record.rerun"),
        Binding("slash", "search", "Search output", id="record.search"),
        Binding("escape", "back", "Back", id="record.back"),
    ]

    def __init__(self, record: BuildRecord) -> None:
        super().__init__()
        self.record = record
        self.state: BuildState | None = None

    def compose(self) -> ComposeResult:
        record = self.record
        yield Static(
            Text.assemble(
                ("Past build", "bold"),
                "  ",
                (record.build_id, "cyan"),
                "  ",
                (record.template or "(unsaved template)", "dim"),
            ),
            id="record-title",
        )
        yield RunningBuilds()
        yield BuildPanel(record.build, live=False, id="record-panel")
        with Horizontal(id="record-actions"):
            yield Static(f"Full log: {record.directory / 'build.log'}", id="record-hint")
            yield Button("Rerun [r]", id="record-rerun", variant="primary")
            yield Button("Back [esc]", id="record-back")
        yield Footer()

    def on_mount(self) -> None:
        self._replay()

    @work(thread=True, exclusive=True, group="history-replay")
    def _replay(self) -> None:
        state = BuildState(self.record.build)
        state.apply_all(replay_events(self.record.directory))
        if not state.finished and self.record.status != "running":
            state.status = self.record.status
        self.app.call_from_thread(self._show, state)

    def _show(self, state: BuildState) -> None:
        self.state = state
        panel = self.query_one(BuildPanel)
        panel.sync(state)
        panel.log_view.follow = False
        panel.log_view.scroll_to(y=0, animate=False)

    @on(Button.Pressed, "#record-rerun")
    def action_rerun(self) -> None:
        rerun(self, self.record)

    @on(Button.Pressed, "#record-back")
    def action_back(self) -> None:
        if not self.query_one(BuildPanel).close_search():
            self.dismiss()

    def action_search(self) -> None:
        self.query_one(BuildPanel).open_search()
