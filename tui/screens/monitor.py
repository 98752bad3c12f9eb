"""The build monitor: one tab per build, each with live steps, output, resources, artifacts.

``MonitorScreen(spec, template_path, template_text=...)`` starts the
template's builds on the app's session target (in a child process building
``template_text``, the editor's text, or the file at ``template_path``);
``MonitorScreen.attach(run)`` shows a run already going (the history does
this for a build still running). Leaving the screen does not
stop the builds: they belong to the app. Cancelling asks first, then every
build cleans up what it created while the resources pane shows each one
deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Static, TabbedContent, TabPane

from amibake.core.errors import AmibakeError
from amibake.core.events import BreakpointReached, BuildFinished, StepPaused
from amibake.core.model import BuildSpec
from amibake.tui.build_runner import BuildRun, BuildRunUpdated, open_shell, start_run
from amibake.tui.messages import OpenHistory
from amibake.tui.modals.build_confirm import ConfirmationModal
from amibake.tui.modals.failed_step import BreakpointModal, FailedStepModal
from amibake.tui.widgets.build_panel import BuildPanel
from amibake.tui.widgets.build_panes import STATUS_BADGES
from amibake.tui.widgets.running_builds import RunningBuilds

TICK = 0.1  # spinner / elapsed refresh


def badge_label(name: str, status: str) -> Content:
    """A tab's label: the build's name behind its status badge."""
    label, style = STATUS_BADGES.get(status, (status, ""))
    glyph = label.split(" ", 1)[0]
    return Content.assemble((glyph, style), " ", name)


class MonitorScreen(Screen[None]):
    """Live view of a :class:`BuildRun`."""

    CSS_PATH = "builds.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_builds", "Cancel build", id="monitor.cancel"),
        Binding("escape", "back", "Back", id="monitor.back"),
        Binding("slash", "search", "Search output", id="monitor.search"),
        Binding("o", "focus_output", "Output", show=False, id="monitor.focus_output"),
        Binding("h", "history", "History", show=False, id="monitor.history"),
        Binding("s", "shell", "Shell on instance", id="monitor.shell"),
        Binding("p", "show_pause", "Paused build", show=False, id="monitor.paused"),
        Binding(
            "left_square_bracket",
            "switch_tab(-1)",
            "Previous build",
            show=False,
            id="monitor.previous_build",
        ),
        Binding(
            "right_square_bracket",
            "switch_tab(1)",
            "Next build",
            show=False,
            id="monitor.next_build",
        ),
    ]

    def __init__(
        self,
        spec: BuildSpec | None = None,
        template_path: Path | None = None,
        *,
        template_text: str | None = None,
        run: BuildRun | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        if spec is None:
            if run is None:
                raise ValueError("MonitorScreen needs a spec to build or a run to show")
            spec = run.spec
        self.spec = spec
        self.template_path = template_path if run is None else run.template_path
        #: what to build, as the editor shows it (None: the file at template_path)
        self.template_text = template_text
        self.run: BuildRun | None = run
        self._panels: dict[str, BuildPanel] = {}
        self._announced: set[str] = set()
        self._chrome: tuple[Text, str, bool] | None = None
        #: the builds whose pause (failed step, breakpoint) a panel shows now
        self._asking: set[str] = set()

    @classmethod
    def attach(cls, run: BuildRun) -> MonitorScreen:
        return cls(run=run)

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="monitor-title")
        yield RunningBuilds()
        names = [b.name for b in self.spec.builders] if self.run is None else list(self.run.states)
        with TabbedContent(id="monitor-tabs"):
            for index, name in enumerate(names):
                with TabPane(badge_label(name, "pending"), id=f"build-{index}"):
                    panel = BuildPanel(name, id=f"panel-{index}")
                    self._panels[name] = panel
                    yield panel
        with Horizontal(id="monitor-actions"):
            yield Static(id="monitor-hint")
            yield Button("Cancel build [c]", id="monitor-cancel", variant="error")
            yield Button("Back [esc]", id="monitor-back")
        yield Footer()

    def on_mount(self) -> None:
        if self.run is None:
            try:
                # --on-error ask: a failed step pauses the build and the panel asks what next
                self.run = start_run(
                    self.app, self.spec, self.template_path, self.template_text, on_error="ask"
                )
            except AmibakeError as error:
                self.notify(str(error), title="Cannot start the build", severity="error")
                self.call_later(self.dismiss)
                return
            except Exception as error:  # no session, bad target...: a notification, not a crash
                self.notify(
                    f"{type(error).__name__}: {error}",
                    title="Cannot start the build",
                    severity="error",
                )
                self.call_later(self.dismiss)
                return
            # The panels were composed from the spec's builders; keep only the selected ones.
            for name in list(self._panels):
                if name not in self.run.states:
                    self._panels.pop(name)
        self.run.subscribe(self)
        self._refresh_all()
        self.set_interval(TICK, self._tick)
        first = next(iter(self._panels.values()), None)
        if first is not None:
            first.log_view.focus()

    def on_unmount(self) -> None:
        if self.run is not None:
            self.run.unsubscribe(self)

    # -- updates ----------------------------------------------------------------------------

    def on_build_run_updated(self, message: BuildRunUpdated) -> None:
        if message.run is not self.run:
            return
        self._refresh_all()
        for event in message.events:
            if isinstance(event, BuildFinished) and event.build not in self._announced:
                self._announced.add(event.build)
                self._announce(event)
            elif isinstance(event, (StepPaused, BreakpointReached)):
                self._offer(event.build)
        if message.finished and self.run.error:
            self.notify(self.run.error, title="The build stopped", severity="error")

    def _announce(self, event: BuildFinished) -> None:
        if event.status == "succeeded":
            amis = ", ".join(f"{r}: {a}" for r, a in sorted(event.artifacts.items()))
            self.notify(amis or "no AMI (skip_create_ami)", title=f"{event.build} built")
        elif event.status == "cancelled":
            self.notify("Cleanup finished.", title=f"{event.build} cancelled", severity="warning")
        else:
            self.notify(event.error or "failed", title=f"{event.build} failed", severity="error")

    def _refresh_all(self) -> None:
        run = self.run
        if run is None:
            return
        tabs = self.query_one(TabbedContent)
        for index, (name, panel) in enumerate(self._panels.items()):
            state = run.states[name]
            panel.sync(state)
            pane_id = self._pane_id(name, index)
            tab = tabs.get_tab(pane_id)
            label = badge_label(name, state.status)
            if tab.label.plain != label.plain:
                tab.label = label
        self._update_chrome()

    def _pane_id(self, name: str, fallback: int) -> str:
        panel = self._panels[name]
        pane = panel.parent
        return pane.id if pane is not None and pane.id else f"build-{fallback}"

    def _tick(self) -> None:
        run = self.run
        if run is None:
            return
        active = self.query_one(TabbedContent).active_pane
        for name, panel in self._panels.items():
            if panel.parent is active:
                panel.tick(run.states[name])
        self._update_chrome()

    def _update_chrome(self) -> None:
        run = self.run
        if run is None:
            return
        template = str(self.template_path) if self.template_path else "(unsaved template)"
        statuses = [s.status for s in run.states.values()]
        over = run.finished.is_set()
        title = Text.assemble(("Build monitor", "bold"), "  ", (template, "cyan"))
        if over:
            title.append("  finished", style="dim")
        elif run.cancel_requested:
            title.append("  cancelling: cleaning up", style="bold yellow")
        if over:
            hint = "Done. " + ", ".join(
                f"{n}: {s}" for n, s in zip(run.states, statuses, strict=True)
            )
        elif run.cancel_requested:
            hint = "Cleaning up; every resource will read deleted."
        else:
            hint = "Builds keep running if you go back; reopen them from the history."
        # Called on every tick and batch: touch the widgets only when something changed
        # (an update lays the screen out again, which a key press would wait for).
        chrome = (title, hint, over or run.cancel_requested)
        if chrome == self._chrome:
            return
        self._chrome = chrome
        # the title is one line high whatever it says: no layout needed
        self.query_one("#monitor-title", Static).update(title, layout=False)
        self.query_one("#monitor-cancel", Button).disabled = over or run.cancel_requested
        self.refresh_bindings()  # shell and cancel depend on the run's state
        self.query_one("#monitor-hint", Static).update(hint)

    # -- actions ----------------------------------------------------------------------------

    @property
    def active_panel(self) -> BuildPanel | None:
        pane = self.query_one(TabbedContent).active_pane
        if pane is None:
            return None
        panels = pane.query(BuildPanel)
        return panels.first() if panels else None

    def action_switch_tab(self, step: int) -> None:
        """``[`` / ``]``: the previous / next build's tab, wrapping around."""
        tabs = self.query_one(TabbedContent)
        ids = [pane.id for pane in tabs.query(TabPane) if pane.id is not None]
        if len(ids) < 2:
            return
        current = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(current + step) % len(ids)]

    def action_cancel_builds(self) -> None:
        run = self.run
        if run is None or run.finished.is_set():
            self.notify("Nothing to cancel: the builds are over.")
            return
        if run.cancel_requested:
            self.notify("Already cancelling; cleanup is in progress.")
            return
        count = len(run.states)
        what = "the build" if count == 1 else f"all {count} builds"

        def answered(confirmed: bool | None) -> None:
            if confirmed and self.run is not None:
                self.run.cancel()
                self.notify("Cleaning up what the build created...", title="Cancelling")
                self._refresh_all()

        self.app.push_screen(
            ConfirmationModal(
                f"Cancel {what}?",
                detail="The running step stops; then every temporary resource is deleted "
                "(instance, security group, key pair, pending AMI).",
                confirm_label="Cancel and clean up",
                cancel_label="Keep building",
            ),
            answered,
        )

    @on(Button.Pressed, "#monitor-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel_builds()

    @on(Button.Pressed, "#monitor-back")
    def _back_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        panel = self.active_panel
        if panel is not None and panel.close_search():
            return
        if self.run is not None and self.run.running:
            self.notify(
                "The builds go on; reopen them from the history (h).", title="Builds running"
            )
        self.dismiss()

    def action_search(self) -> None:
        panel = self.active_panel
        if panel is not None:
            panel.open_search()

    def action_focus_output(self) -> None:
        panel = self.active_panel
        if panel is not None:
            panel.log_view.focus()

    # -- paused builds: the failed-step panel, breakpoints, shells ----------------------------

    def _active_build(self) -> str | None:
        panel = self.active_panel
        return next((n for n, p in self._panels.items() if p is panel), None)

    def _offer(self, build: str) -> None:
        """Show the panel of a paused build (once at a time per build)."""
        run = self.run
        if run is None or build in self._asking:
            return
        paused, reached = run.paused.get(build), run.breakpoints.get(build)
        modal: FailedStepModal | BreakpointModal
        if paused is not None:
            modal = FailedStepModal(build, paused.title, paused.error, paused.choices)
        elif reached is not None:
            modal = BreakpointModal(build, reached.note, reached.connect)
        else:
            return
        self._asking.add(build)

        def answered(choice: str | None) -> None:
            self._asking.discard(build)
            self._answer(build, choice)

        self.app.push_screen(modal, answered)

    def _answer(self, build: str, choice: str | None) -> None:
        run = self.run
        if run is None or choice is None:
            return
        if choice == "shell":
            self.run_worker(self._shell(build, then_offer=True), group="shell")
        elif choice == "continue":
            run.continue_breakpoint(build)
        elif run.decide(build, choice):
            what = {"retry": "Retrying", "cleanup": "Cleaning up", "abort": "Keeping everything"}
            self.notify(f"{what.get(choice, choice)}...", title=build)

    async def _shell(self, build: str, then_offer: bool = False) -> None:
        run = self.run
        if run is None:
            return
        problem = await open_shell(self.app, run, build)
        if problem is not None:
            self.notify(problem, title="No shell on the instance", severity="error")
        if then_offer:
            self._offer(build)

    def action_shell(self) -> None:
        build = self._active_build()
        if self.run is None or build is None or not self.run.running:
            self.notify("No build running here to open a shell on.")
            return
        self.run_worker(self._shell(build), group="shell")

    def action_show_pause(self) -> None:
        build = self._active_build()
        run = self.run
        if run is None or build is None:
            return
        if build not in run.paused and build not in run.breakpoints:
            self.notify("This build is not paused.")
            return
        self._offer(build)

    def action_history(self) -> None:
        self.post_message(OpenHistory())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_builds":
            run = self.run
            return run is not None and not run.finished.is_set() and not run.cancel_requested
        if action == "shell":  # a shell needs the instance: not while it is removed
            run = self.run
            return run is not None and run.running and not run.cancel_requested
        return True

    def on_tabbed_content_tab_activated(self, _event: Any) -> None:
        self._refresh_all()
