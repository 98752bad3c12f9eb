"""Running builds from the TUI: the engine in a child process, its events as batched messages.

A :class:`BuildRun` is one launch of a template (one or more builders). The
builds run in a child process, ``python -m amibake.tui build --json TEMPLATE``, the
headless CLI: it journals every resource in the durable ledger, records the
history (``BuildRecorder``), writes one JSON event per line on stdout and
treats SIGTERM as "cancel and clean up". The UI process only reads those lines,
so a provisioner printing a million lines costs the UI's loop some JSON decoding
and never a fight for the GIL with the engine.

Events are folded into a :class:`~amibake.tui.build_state.BuildState` per builder on the
app's event loop (the screens read the states there too); subscribers (the monitor
screen) receive at most one :class:`BuildRunUpdated` message per
:data:`FLUSH_INTERVAL` carrying the batch of events since the last one, with log
lines summarised by count (the lines themselves are in the state's bounded buffer).

The child builds exactly the text it is given: the original file when that text
is what is saved, else a hidden temporary copy next to it (so relative paths such
as ``files/motd`` resolve), removed when the run is over.

Runs belong to the app, not to a screen: leaving the monitor does not stop a
build, and the app's quit (:func:`amibake.tui.host.quit_app`) asks before quitting while
builds run, then cancels them and waits for their cleanup before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message
from textual.message_pump import MessagePump

from amibake.core.errors import UsageError
from amibake.core.events import BuildStarted, Event, LogLines, ShellReady
from amibake.tui.build_channel import CommandChannel
from amibake.tui.build_child import child_command, child_environment, collect_stderr, event_batches
from amibake.tui.build_state import BuildState
from amibake.tui.child_files import hidden_copy, write_var_file
from amibake.tui.collector import hold_collector, release_collector

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from amibake.core.aws import Target
    from amibake.core.model import BuildSpec

#: How often batched events reach the UI (seconds).
FLUSH_INTERVAL = 0.1

#: Lines of the child's stderr kept for error messages.
STDERR_LINES = 50


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


class BuildRun(CommandChannel):
    """One launch of a template's builders on a target, in a child process."""

    def __init__(
        self,
        spec: BuildSpec,
        *,
        target: Target,
        ssh_port: int | None = None,
        template_path: Path | None = None,
        template_text: str | None = None,
        region: str | None = None,
        builders: Sequence[str] = (),
        on_error: str = "cleanup",
        force: bool = False,
    ) -> None:
        from amibake.core.engine.build import planned_steps, select_builders

        super().__init__()
        self.spec = spec
        self.target = target
        self.ssh_port = ssh_port
        self.template_path = template_path
        #: what to build (the editor's text, saved or not); None: the file at template_path
        self.template_text = template_text
        self.region = region
        self.on_error = on_error
        self.force = force
        self.builders = select_builders(spec, builders)
        self.states: dict[str, BuildState] = {
            b.name: BuildState.planned(b.name, planned_steps(spec, b)) for b in self.builders
        }
        for builder in self.builders:
            self.states[builder.name].region = builder.region
        self.started = time.time()
        #: set when the run is over (its child exited and its files are removed)
        self.finished = asyncio.Event()
        self.cancel_requested = False
        self.error: str | None = None
        #: the child's exit status once it is over
        self.returncode: int | None = None
        self._subscribers: list[weakref.ref[MessagePump]] = []
        self._pending: list[Event] = []
        self._pending_lines = 0
        self._process: asyncio.subprocess.Process | None = None
        self._signalled = False
        self._temporary: Path | None = None
        self._var_file: Path | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._build_ids: set[str] = set()
        self.worker: Worker[None] | None = None
        #: builder name -> its build id, once started
        self.build_id_of: dict[str, str] = {}

    # -- public -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.finished.is_set()

    @property
    def title(self) -> str:
        name = self.template_path.name if self.template_path else "template"
        return f"{name}: {', '.join(self.states)}"

    @property
    def pid(self) -> int | None:
        """The child process's id while it runs (or ran)."""
        return self._process.pid if self._process is not None else None

    def subscribe(self, pump: MessagePump) -> None:
        self._subscribers.append(weakref.ref(pump))

    def unsubscribe(self, pump: MessagePump) -> None:
        self._subscribers = [r for r in self._subscribers if r() not in (None, pump)]

    def start(self, app: App[Any]) -> Worker[None]:
        """Start the builds' process from a worker of ``app`` (the run outlives any screen).

        Raises :class:`~amibake.core.errors.UsageError` when there is nothing to build (no text,
        no file) or the temporary copy of the text cannot be written.
        """
        self._template_file()  # fails here, before the run is listed, if it cannot
        _runs_of(app).append(self)
        self.worker = app.run_worker(
            self._main(),
            name=f"build {self.title}",
            group="amibake-builds",
            exit_on_error=False,
        )
        return self.worker

    def cancel(self) -> None:
        """Cancel every build of the run; each cleans up what it created.

        The child gets one SIGTERM (cancel and clean up); it is never signalled again,
        as further signals would make it leave before its cleanup is done.
        """
        self.cancel_requested = True
        for state in self.states.values():
            if not state.finished:
                state.status = "cancelling"
                state.version += 1
        self._signal_child()
        self._notify()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run is over; False on timeout."""
        try:
            await asyncio.wait_for(self.finished.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # the command channel (send, decide, continue_breakpoint, shell): tui/build_channel.py

    # -- the child process ------------------------------------------------------------------

    def command(self, template: Path) -> list[str]:
        """The child's command line for building ``template``."""
        every = len(self.builders) == len(self.spec.builders)
        return child_command(
            template,
            on_error=self.on_error,
            force=self.force,
            only=() if every else [b.name for b in self.builders],
            ssh_port=self.ssh_port,
            profile=self.target.profile,
            var_file=self._var_file,
        )

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment for the run's target and region (see child_environment)."""
        return child_environment(self.target, self.region, base)

    def _write_var_file(self) -> Path | None:
        """The user's variables in a private var-file for ``--var-file`` (removed by _finish)."""
        self._var_file = write_var_file(self.spec)
        return self._var_file

    def _template_file(self) -> Path:
        """The file the child builds: the saved original, or a hidden copy of the text."""
        if self._temporary is not None:
            return self._temporary
        text, path = self.template_text, self.template_path
        if text is None:
            source = path or self.spec.source_file
            if source is None or not Path(source).exists():  # a file, or a folder template
                raise UsageError("nothing to build: save the template first")
            return Path(source)
        if path is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if path.read_text(encoding="utf-8") == text:
                    return path
        self._temporary = hidden_copy(text, path, self.spec.source_format)
        return self._temporary

    def _signal_child(self) -> None:
        process = self._process
        if process is None or self._signalled or process.returncode is not None:
            return  # not started yet (started cancelled), or over
        self._signalled = True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)

    async def _main(self) -> None:
        hold_collector()
        try:
            await self._run_child()
        except asyncio.CancelledError:
            # The app is going away without quit_app (which waits): ask the child to clean
            # up and give it the time it takes, as long as we are allowed to, reading its
            # output meanwhile so that it never blocks on a full pipe.
            self._signal_child()
            process = self._process
            if process is not None and process.returncode is None:
                drain = asyncio.ensure_future(self._drain(process))
                with contextlib.suppress(BaseException):
                    await asyncio.shield(drain)
            raise
        except Exception as error:  # reported in the UI, never as a traceback
            self._fail(f"{type(error).__name__}: {error}")
        finally:
            self._finish()

    async def _run_child(self) -> None:
        template = self._template_file()
        self._write_var_file()
        process = await asyncio.create_subprocess_exec(
            *self.command(template),
            stdin=asyncio.subprocess.PIPE,  # the command channel
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.environment(),
            # Signals meant for the terminal's process group are not for the builds:
            # only cancel() stops them, and then they clean up.
            start_new_session=True,
        )
        self._process = process
        if self.cancel_requested:  # cancelled while the process was starting
            self._signal_child()
        assert process.stdout is not None and process.stderr is not None
        flusher = asyncio.create_task(self._flush_periodically())
        errors = asyncio.create_task(self._read_stderr(process.stderr))
        try:
            await self._read_events(process.stdout)
            self.returncode = await process.wait()
            await errors
        finally:
            flusher.cancel()
            errors.cancel()
        self._child_over(self.returncode)

    async def _drain(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        await asyncio.gather(self._read_events(process.stdout), self._read_stderr(process.stderr))
        self.returncode = await process.wait()

    async def _read_events(self, stdout: asyncio.StreamReader) -> None:
        async for events in event_batches(stdout):
            self._apply(events)

    def _apply(self, events: list[Event]) -> None:
        states, pending = self.states, self._pending
        for event in events:
            if type(event) is LogLines:
                state = states.get(event.build)
                if state is not None:
                    state.apply(event)
                self._pending_lines += len(event.lines)
                continue
            if type(event) is ShellReady:
                assert isinstance(event, ShellReady)
                self._answer_shell(event)
                continue  # an answer, not part of the build's story
            self._track(event)
            if type(event) is BuildStarted:
                assert isinstance(event, BuildStarted)
                self.build_id_of[event.build] = event.build_id
                self._build_ids.add(event.build_id)
                if self._temporary is not None:
                    # the copy is gone after the run: show (and record) the template's name
                    original = str(self.template_path) if self.template_path else ""
                    event = dataclasses.replace(event, template=original)
            state = states.get(event.build)
            if state is not None:
                state.apply(event)
            pending.append(event)

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        await collect_stderr(stderr, self._stderr)

    def _child_over(self, returncode: int | None) -> None:
        """Builds the child never finished: cancelled if we asked, else failed with its words."""
        unfinished = [s for s in self.states.values() if not s.finished]
        if not unfinished:
            return
        if self.cancel_requested:
            for state in unfinished:
                state.status = "cancelled"
                state.version += 1
            return
        last = self._stderr[-1] if self._stderr else ""
        self._fail(last or f"the build process exited with status {returncode}")

    def _fail(self, message: str) -> None:
        self.error = message
        for state in self.states.values():
            if not state.finished:
                state.status, state.error = "failed", message
                state.version += 1

    def _finish(self) -> None:
        self._close_channel()
        if self._var_file is not None:
            with contextlib.suppress(OSError):
                self._var_file.unlink()
                self._var_file.parent.rmdir()
        if self._temporary is not None:
            with contextlib.suppress(OSError):
                self._temporary.unlink()
            from amibake.core.history import repoint_records

            original = str(self.template_path) if self.template_path else ""
            repoint_records(self._build_ids, original)
        self.finished.set()
        self._flush(final=True)
        release_collector()

    # -- batching ---------------------------------------------------------------------------

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self._flush()

    def _flush(self, final: bool = False) -> None:
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


# -- a shell on a build's instance -------------------------------------------------------------


def run_in_terminal(app: App[Any], argv: Sequence[str]) -> int:
    """Run ``argv`` (an interactive ``ssh``) on the app's terminal: the app is suspended
    meanwhile and comes back when it exits. Tests replace this with a double."""
    import subprocess

    with app.suspend():
        return subprocess.call(list(argv))


async def open_shell(app: App[Any], run: BuildRun, build: str) -> str | None:
    """A shell on the instance of ``build``; the reason when there is none (else None)."""
    from amibake.core.engine.shell_access import remove

    ready = await run.shell(build)
    if ready.error:
        return ready.error
    try:
        status = run_in_terminal(app, ready.argv)
    except Exception as error:  # no terminal to suspend (a web or test driver), no ssh...
        return f"{type(error).__name__}: {error}"
    finally:
        remove(ready.directory)
    # 255: ssh itself failed (anything else is what the shell's last command returned)
    return f"ssh could not connect (status {status})" if status == 255 else None


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
    template_text: str | None = None,
    **options: Any,
) -> BuildRun:
    """A run on ``app.session``'s target (its SSH port and region too), started.

    ``template_text`` is what to build (the editor's text, saved or not); without it,
    the file at ``template_path`` (or the spec's own file) is built.
    """
    # App declares no session: the amibake app and the tests' host app both carry one
    session: Session = app.session  # type: ignore[attr-defined]
    run = BuildRun(
        spec,
        target=session.target,
        ssh_port=getattr(session, "ssh_port", None),
        region=getattr(session, "region", None),
        template_path=template_path,
        template_text=template_text,
        **options,
    )
    run.start(app)
    return run
