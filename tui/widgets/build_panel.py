"""One build's panes side by side: summary, steps, resources, SSH output, artifacts.

Used live by the monitor (a running build) and by the history (a replayed one).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from amibake.tui import build_state
from amibake.tui.build_state import BuildState
from amibake.tui.widgets.build_panes import (
    BuildArtifactsTable,
    BuildResourcesTable,
    BuildStepsTable,
    format_duration,
    status_badge,
)
from amibake.tui.widgets.log_view import BuildLogView


def _fits(text: Text, width: int) -> bool:
    """True when every line of ``text`` fits in ``width`` cells (so none wraps)."""
    return all(cell_len(line) <= width for line in text.plain.split("\n"))


#: Below this height (a 100x30 terminal gives 23) the steps pane gives rows to the output.
SHORT_PANEL = 28


class BuildPanel(Vertical):
    """Renders a :class:`BuildState`; call :meth:`sync` whenever it changed."""

    DEFAULT_CSS = """
    BuildPanel { height: 1fr; }
    BuildPanel .build-box {
        border: round $primary-darken-1;
        border-title-color: $text-accent;
        border-subtitle-color: $text-muted;
        height: 1fr;
    }
    BuildPanel .build-box:focus-within { border: round $accent; }
    BuildPanel #build-summary { height: auto; padding: 0 1; }
    BuildPanel #build-top { height: 15; }  /* every step of a full plan, and the cleanup row */
    BuildPanel.-short #build-top { height: 10; }  /* a short terminal: room for output too */
    BuildPanel #steps-box { width: 3fr; }
    BuildPanel #resources-box { width: 4fr; }
    BuildPanel #output-box { height: 1fr; min-height: 6; }
    /* docked: the AMI ids stay on screen when the terminal is short (100x30) */
    BuildPanel #artifacts-box { height: auto; max-height: 8; dock: bottom; }
    BuildPanel #log-search { dock: bottom; height: 3; }
    BuildPanel DataTable { height: 1fr; background: $surface; scrollbar-size-horizontal: 0; }
    BuildPanel #build-artifacts { height: auto; }
    """

    # n / N work from every pane of the build (and so show in its help), not only the output
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "search_next", "Next match", show=False, id="log.search_next"),
        Binding("N", "search_previous", "Previous match", show=False, id="log.search_previous"),
    ]

    def __init__(self, build_name: str, *, live: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.build_name = build_name
        self.live = live
        self._seen_lines = 0
        self._seen_version = -1
        self._log_note = ""
        self._summary_text: Text | None = None
        self._output_titles: tuple[str, str] = ("", "")

    def compose(self) -> ComposeResult:
        yield Static(id="build-summary")
        with Horizontal(id="build-top"):
            with Vertical(id="steps-box", classes="build-box") as box:
                box.border_title = "Steps"
                yield BuildStepsTable(id="build-steps")
            with Vertical(id="resources-box", classes="build-box") as box:
                box.border_title = "Resources"
                yield BuildResourcesTable(id="build-resources")
        with Vertical(id="output-box", classes="build-box") as box:
            box.border_title = "SSH output"
            yield BuildLogView(id="build-log")
            yield Input(
                placeholder="search the output (enter: next, escape: close)",
                id="log-search",
                classes="hidden",
            )
        with Vertical(id="artifacts-box", classes="build-box hidden") as box:
            box.border_title = "Artifacts (y: copy the AMI id)"
            yield BuildArtifactsTable(id="build-artifacts")

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT_PANEL, "-short")

    @property
    def log_view(self) -> BuildLogView:
        return self.query_one(BuildLogView)

    def sync(self, state: BuildState, *, lines_from_disk: int = 0) -> None:
        """Bring every pane up to date with ``state`` (the caller holds the state's lock)."""
        if state.log_total > self._seen_lines:
            new = state.log_total - self._seen_lines
            self.log_view.write_lines(state.tail(new), total=state.log_total)
            self._seen_lines = state.log_total
        if state.version != self._seen_version:
            self._seen_version = state.version
            self.query_one(BuildResourcesTable).sync_state(state)
            artifacts = self.query_one(BuildArtifactsTable)
            artifacts.sync_state(state)
            self.query_one("#artifacts-box").set_class(not state.artifacts, "hidden")
        self.tick(state)

    def tick(self, state: BuildState) -> None:
        """Spinner and elapsed times (called a few times a second while the build runs)."""
        self.query_one(BuildStepsTable).sync_state(state, live=self.live)
        self._show_summary(self._summary(state))
        view = self.log_view
        follow = "following" if view.follow else "paused (f: follow)"
        older = f" · lines before {view.first_line + 1} in build.log" if view.first_line else ""
        titles = (f"SSH output · {follow}{older}", f"{view.total:,} lines")
        if titles != self._output_titles:
            self._output_titles = titles
            box = self.query_one("#output-box")
            box.border_title, box.border_subtitle = titles

    def _show_summary(self, text: Text) -> None:
        """Update the summary, with a layout pass only when its height may change.

        The summary ticks (elapsed time) several times a second; a layout of the whole
        screen each time is what made key presses wait during an output flood.
        """
        previous = self._summary_text
        if previous is not None and previous == text:
            return
        self._summary_text = text
        summary = self.query_one("#build-summary", Static)
        width = summary.content_region.width
        layout = (
            previous is None
            or not width
            or not _fits(previous, width)
            or not _fits(text, width)
            or previous.plain.count("\n") != text.plain.count("\n")
        )
        summary.update(text, layout=layout)

    def _summary(self, state: BuildState) -> Text:
        text = Text.assemble(
            (state.name, "bold"),
            "  ",
            status_badge(state.status),
            "  ",
            (state.region or "", "cyan"),
        )
        elapsed = state.elapsed(build_state.now()) if self.live else state.duration
        if elapsed is not None:
            text.append(f"  {format_duration(elapsed)}", style="dim")
        if state.build_id:
            text.append(f"  {state.build_id}", style="dim")
        if state.error:
            text.append(f"\n{state.error}", style="red")
        leftovers = (
            state.leftovers() if state.status in ("cancelling", "cancelled", "failed") else []
        )
        if state.status == "cancelling":
            text.append(
                f"\nCleaning up: {len(leftovers)} resource(s) still to delete", style="yellow"
            )
        elif state.finished and state.status != "succeeded" and not leftovers and state.resources:
            text.append("\nEvery temporary resource is deleted.", style="green")
        elif state.finished and leftovers:
            text.append(f"\n{len(leftovers)} resource(s) left behind", style="bold red")
        return text

    # -- search -----------------------------------------------------------------------------

    def open_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.remove_class("hidden")
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-search":
            return
        event.stop()
        if event.value and not self.log_view.search(event.value):
            self.notify(f"No line matches {event.value!r}", severity="warning")
        self._show_match_position()

    def action_search_next(self) -> None:
        self.log_view.action_search_next()
        self._show_match_position()

    def action_search_previous(self) -> None:
        self.log_view.action_search_previous()
        self._show_match_position()

    def _show_match_position(self) -> None:
        """``n of m`` under the search field (m: lines of the whole buffer that match)."""
        n, m = self.log_view.match_position()
        search = self.query_one("#log-search", Input)
        search.border_subtitle = (
            f"{n} of {m} · n/N: next/previous"
            if m
            else ("no match" if self.log_view.query_text else "")
        )

    @property
    def search_position(self) -> str:
        """What the search field's subtitle says (``3 of 7 · ...``)."""
        return str(self.query_one("#log-search", Input).border_subtitle or "")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            event.stop()
            self.log_view.query_text = event.value
            self._show_match_position()

    def close_search(self) -> bool:
        search = self.query_one("#log-search", Input)
        if search.has_class("hidden"):
            return False
        search.add_class("hidden")
        self.log_view.focus()
        return True
