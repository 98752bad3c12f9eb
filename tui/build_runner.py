"""Running builds from the TUI: the engine in a worker thread, its events as batched messages.

A :class:`BuildRun` is one launch of a template (one or more builders). The
engine runs in a Textual thread worker with its own asyncio loop, so a
provisioner printing a million lines never competes with key presses on the
UI's loop. Engine events are folded into a :class:`~tui.build_state.BuildState`
per builder (under a lock) and recorded on disk by
:class:`core.history.BuildRecorder`; subscribers (the monitor screen) receive at
most one :class:`BuildRunUpdated` message per :data:`FLUSH_INTERVAL` carrying
the batch of events since the last one, with log lines summarised by count
(the lines themselves are in the state's bounded buffer).

Runs belong to the app, not to a screen: leaving the monitor does not stop a
build, and :func:`quit_app` asks before quitting while builds run, then cancels
them and waits for their cleanup before exiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message
from textual.message_pump import MessagePump

from core.events import Event, LogLines
from tui.build_state import BuildState

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from core.aws import Target
    from core.model import BuildSpec

#: How often batched events reach the UI (seconds).
FLUSH_INTERVAL = 0.1


class Session(Protocol):
    """What a run needs from ``app.session`` (tui/session.py)."""

    target: Target
    region: str
    ssh_port: int | None


class BuildRunUpdated(Message):
    """A batch of a run's events (every kind but log lines, which are counted)."""

    def __init__(
        self, run: BuildRun, events: list[Event], log_lines: int = 0, finished: bool = False
    ) -> None:
        super().__init__()
        self.run = run
        self.events = events
        self.log_lines = log_lines
        self.finished = finished


class BuildRun:
    """One launch of a template's builders on a target, in its own thread and loop."""

    def __init__(
        self,
        spec: BuildSpec,
        *,
        target: Target,
        ssh_port: int | None = None,
        template_path: Path | None = None,
        builders: Sequence[str] = (),
        on_error: str = "cleanup",
        force: bool = False,
    ) -> None:
        from core.engine.build import select_builders

        self.spec = spec
        self.target = target
        self.ssh_port = ssh_port
        self.template_path = template_path
        self.on_error = on_error
        self.force = force
        self.builders = select_builders(spec, builders)
        self.states: dict[str, BuildState] = {b.name: BuildState(b.name) for b in self.builders}
        for builder in self.builders:
            self.states[builder.name].region = builder.region
        self.lock = threading.Lock()
        self.started = time.time()
        self.finished = threading.Event()
        self.cancel_requested = False
        self.error: str | None = None
        self.results: list[Any] = []
        self._subscribers: list[weakref.ref[MessagePump]] = []
        self._pending: list[Event] = []
        self._pending_lines = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self.worker: Worker[None] | None = None

    # -- public -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.finished.is_set()

    @property
    def title(self) -> str:
        name = self.template_path.name if self.template_path else "template"
        return f"{name}: {', '.join(self.states)}"

    def subscribe(self, pump: MessagePump) -> None:
        self._subscribers.append(weakref.ref(pump))

    def unsubscribe(self, pump: MessagePump) -> None:
        self._subscribers = [r for r in self._subscribers if r() not in (None, pump)]

    def start(self, app: App[Any]) -> Worker[None]:
        """Start the builds in a thread worker of ``app`` (the run outlives any screen)."""
        _runs_of(app).append(self)
        self.worker = app.run_worker(
            self._thread_main,
            name=f"build {self.title}",
            group="amibake-builds",
            thread=True,
            exit_on_error=False,
        )
        return self.worker

    def cancel(self) -> None:
        """Cancel every build of the run; each cleans up what it created (shielded)."""
        self.cancel_requested = True
        with self.lock:
            for state in self.states.values():
                if not state.finished:
                    state.status = "cancelling"
                    state.version += 1
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        self._notify()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait (without blocking the UI loop) until the run is over; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- the worker thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported in the UI, never as a traceback
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.finished.set()
            self._flush(final=True)

    async def _main(self) -> None:
        from core.aws import Aws
        from core.engine.build import run_builds
        from core.engine.context import BuildOptions
        from core.history import BuildRecorder
        from core.ledger import Ledger

        self._loop = asyncio.get_running_loop()
        # the durable journal of what each build creates: a crash leaves a way to sweep
        ledger = await asyncio.to_thread(Ledger)
        options = BuildOptions(
            target=self.target,
            ssh_port=self.ssh_port,
            on_error=self.on_error,  # type: ignore[arg-type]
            force=self.force,
        )
        recorder = BuildRecorder(self.spec)
        states = self.states
        pending = self._pending
        lock = self.lock

        def emit(event: Event) -> None:
            recorder(event)
            with lock:
                state = states.get(event.build)
                if state is not None:
                    state.apply(event)
                if type(event) is LogLines:
                    self._pending_lines += len(event.lines)
                else:
                    pending.append(event)

        aws = Aws(self.target)
        flusher = asyncio.create_task(self._flush_periodically())
        self._task = asyncio.create_task(
            run_builds(self.spec, self.builders, aws, options, emit, ledger=ledger)
        )
        if self.cancel_requested:  # cancelled before the loop existed
            self._task.cancel()
        try:
            self.results = await self._task
        except asyncio.CancelledError:
            self.results = []
        except Exception as error:
            self.error = str(error)
            with lock:
                for state in states.values():
                    if not state.finished:
                        state.status, state.error = "failed", str(error)
        finally:
            flusher.cancel()
            await asyncio.to_thread(aws.close)
            ledger.close()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self._flush()

    def _flush(self, final: bool = False) -> None:
        with self.lock:
            if not self._pending and not self._pending_lines and not final:
                return
            events = self._pending[:]
            self._pending.clear()
            lines, self._pending_lines = self._pending_lines, 0
        self._notify(events, lines, final)

    def _notify(
        self, events: list[Event] | None = None, lines: int = 0, final: bool = False
    ) -> None:
        for ref in list(self._subscribers):
            pump = ref()
            if pump is None:
                continue
            pump.post_message(BuildRunUpdated(self, events or [], lines, final))


# -- runs of an app ---------------------------------------------------------------------------

_RUNS: weakref.WeakKeyDictionary[Any, list[BuildRun]] = weakref.WeakKeyDictionary()


def _runs_of(app: App[Any]) -> list[BuildRun]:
    return _RUNS.setdefault(app, [])


def runs(app: App[Any]) -> list[BuildRun]:
    """Every run started in this app, oldest first."""
    return list(_runs_of(app))


def active_runs(app: App[Any]) -> list[BuildRun]:
    return [run for run in _runs_of(app) if run.running]


def start_run(
    app: App[Any],
    spec: BuildSpec,
    template_path: Path | None = None,
    **options: Any,
) -> BuildRun:
    """A run on ``app.session``'s target (its SSH port too), started."""
    session = app.session  # type: ignore[attr-defined]
    run = BuildRun(
        spec,
        target=session.target,
        ssh_port=getattr(session, "ssh_port", None),
        template_path=template_path,
        **options,
    )
    run.start(app)
    return run


def quit_app(app: App[Any]) -> None:
    """The app's quit action: asks first while builds run, then cancels, cleans up and exits.

    The app calls this from ``action_quit`` (instead of ``App.exit``). While the
    builds clean up, their monitor is shown; the app exits when every run is over.
    """
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
    from tui.modals.build_confirm import ConfirmationModal

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
    from tui.screens.monitor import MonitorScreen

    for screen in app.screen_stack:
        if isinstance(screen, MonitorScreen) and screen.run is run:
            if app.screen is not screen:
                while app.screen is not screen and len(app.screen_stack) > 1:
                    app.pop_screen()
            return
    app.push_screen(MonitorScreen.attach(run))
