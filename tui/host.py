"""The app's side of running builds: it reacts to the screens' messages and quits safely.

:class:`BuildsHost` is mixed into the app (and into the tests' host app). It turns
:class:`~amibake.tui.messages.BuildRequested`, :class:`~amibake.tui.messages.OpenRun` and
:class:`~amibake.tui.messages.OpenHistory` into screens, and its quit asks first while builds
run, then cancels them and waits for their cleanup before exiting. It sits above
the screens in the layers (amibake.tui.app > amibake.tui.host > amibake.tui.screens).
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from amibake.tui.build_runner import BuildRun, active_runs
from amibake.tui.messages import BuildRequested, OpenHistory, OpenRun


class BuildsHost(App[None]):
    """Handlers of the build messages and the quit action (see the module docstring)."""

    def on_build_requested(self, message: BuildRequested) -> None:
        from amibake.tui.screens.monitor import MonitorScreen

        self.push_screen(
            MonitorScreen(
                message.spec, message.template_path, template_text=message.template_text
            )
        )

    def on_open_run(self, message: OpenRun) -> None:
        from amibake.tui.screens.monitor import MonitorScreen

        self.push_screen(MonitorScreen.attach(message.run))

    def on_open_history(self, _message: OpenHistory) -> None:
        from amibake.tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen())

    async def action_quit(self) -> None:
        """Quit; while builds run, ask first, then cancel them and clean up before exiting."""
        quit_app(self)


def quit_app(app: App[Any], asked: frozenset[int] = frozenset()) -> None:
    """The app's quit action: asks first while builds run, then cancels, cleans up and exits.

    A template modified in an editor (anywhere on the stack) is saved, discarded or kept
    (the quit is then abandoned) first; ``asked`` holds the editors already answered.
    While the builds clean up, their monitor is shown; the app exits when every run is over.
    """
    from amibake.tui.screens.editor_files import EditorFiles

    editor = next(
        (
            screen
            for screen in reversed(app.screen_stack)
            if isinstance(screen, EditorFiles) and id(screen) not in asked and screen.modified
        ),
        None,
    )
    if editor is not None:
        editor.ask_before_leaving(lambda: quit_app(app, asked | {id(editor)}))
        return
    active = active_runs(app)
    if not active:
        app.exit()
        return
    if any(run.cancel_requested for run in active):
        app.notify(
            "Cleaning up what the builds created; amibake quits when it is done.",
            title="Quitting",
        )
        return
    from amibake.tui.modals.build_confirm import ConfirmationModal

    count = sum(len(run.states) for run in active)
    builds = "a build is" if count == 1 else f"{count} builds are"

    def answered(confirmed: bool | None) -> None:
        if not confirmed:
            return
        for run in active:
            run.cancel()
        _show_cleanup(app, active[0])
        app.run_worker(_exit_when_done(app, active), group="amibake-quit", exclusive=True)

    app.push_screen(
        ConfirmationModal(
            f"{builds[0].upper()}{builds[1:]} running. Cancel, clean up and quit?",
            detail="Every temporary resource is deleted before amibake exits.",
            confirm_label="Cancel builds and quit",
        ),
        answered,
    )


async def _exit_when_done(app: App[Any], active: list[BuildRun]) -> None:
    for run in active:
        await run.wait()
    app.exit()


def _show_cleanup(app: App[Any], run: BuildRun) -> None:
    from amibake.tui.screens.monitor import MonitorScreen

    for screen in app.screen_stack:
        if isinstance(screen, MonitorScreen) and screen.run is run:
            if app.screen is not screen:
                while app.screen is not screen and len(app.screen_stack) > 1:
                    app.pop_screen()
            return
    app.push_screen(MonitorScreen.attach(run))
