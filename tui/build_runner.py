"""Running builds from the TUI: the engine in a child process, its events as batched messages.

A :class:`BuildRun` is one launch of a template (one or more builders). The
builds run in a child process, ``python -m tui build --json TEMPLATE``, the
headless CLI: it journals every resource in the durable ledger, records the
history (``BuildRecorder``), writes one JSON event per line on stdout and
treats SIGTERM as "cancel and clean up". The UI process only reads those lines,
so a provisioner printing a million lines costs the UI's loop some JSON decoding
and never a fight for the GIL with the engine.

Events are folded into a :class:`~tui.build_state.BuildState` per builder on the
app's event loop (the screens read the states there too); subscribers (the monitor
screen) receive at most one :class:`BuildRunUpdated` message per
:data:`FLUSH_INTERVAL` carrying the batch of events since the last one, with log
lines summarised by count (the lines themselves are in the state's bounded buffer).

The child builds exactly the text it is given: the original file when that text
is what is saved, else a hidden temporary copy next to it (so relative paths such
as ``files/motd`` resolve), removed when the run is over.

Runs belong to the app, not to a screen: leaving the monitor does not stop a
build, and the app's quit (:func:`tui.host.quit_app`) asks before quitting while
builds run, then cancels them and waits for their cleanup before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import signal
import sys
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message
from textual.message_pump import MessagePump

from core.errors import UsageError
from core.events import (
    BreakpointReached,
    BreakpointResumed,
    BuildFinished,
    BuildStarted,
    DecisionMade,
    Event,
    LogLines,
    ShellReady,
    StepPaused,
    event_from_dict,
)
from tui.build_state import BuildState
from tui.child_files import hidden_copy, write_var_file

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from core.aws import Target
    from core.model import BuildSpec

#: How often batched events reach the UI (seconds).
FLUSH_INTERVAL = 0.1

#: Bytes read from the child's stdout at a time; a ``log_lines`` event can be far larger
#: than one read (it is reassembled), and many small events arrive in one read.
READ_CHUNK = 1 << 20

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


class BuildRun:
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
        from core.engine.build import planned_steps, select_builders

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
        #: builder name -> the failed step waiting for a decision (--on-error ask)
        self.paused: dict[str, StepPaused] = {}
        #: builder name -> the breakpoint it waits at
        self.breakpoints: dict[str, BreakpointReached] = {}
        self._shells: dict[str, asyncio.Future[ShellReady]] = {}

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

        Raises :class:`~core.errors.UsageError` when there is nothing to build (no text,
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

    # -- the command channel (the child's stdin; tui/cli/build_commands.py) ------------------

    def send(self, command: Mapping[str, Any]) -> bool:
        """Write one JSON command to the child; False when it is not there to read it."""
        process = self._process
        if process is None or process.returncode is not None or process.stdin is None:
            return False
        if process.stdin.is_closing():
            return False
        process.stdin.write(json.dumps(dict(command)).encode() + b"\n")
        return True

    def decide(self, build: str, choice: str) -> bool:
        """Answer the paused build ``build``: retry, cleanup or abort."""
        paused = self.paused.get(build)
        if paused is None or choice not in paused.choices:
            return False
        if choice == "retry":
            self._refresh_copy()
        return self.send({"command": "decide", "key": paused.key, "choice": choice})

    def continue_breakpoint(self, build: str) -> bool:
        reached = self.breakpoints.get(build)
        if reached is None:
            return False
        return self.send({"command": "continue", "key": reached.key})

    async def shell(self, build: str) -> ShellReady:
        """The ``ssh`` command line for the instance of ``build`` (from the child, which holds
        the temporary key); the caller removes ``directory`` once the shell is over."""
        build_id = self.build_id_of.get(build)
        if build_id is None or not self.running:
            return ShellReady(build=build, build_id="", error="the build is not running")
        future = self._shells.get(build_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._shells[build_id] = future
            if not self.send({"command": "shell", "build_id": build_id}):
                self._shells.pop(build_id, None)
                return ShellReady(build=build, build_id=build_id, error="the build is over")
        try:
            return await asyncio.shield(future)
        finally:
            self._shells.pop(build_id, None)

    def _refresh_copy(self) -> None:
        """A retry reads the template again: the child builds a hidden copy of the editor's text,
        so the copy takes what the file on disk says now (the fix, saved)."""
        if self._temporary is None or self.template_path is None:
            return
        with contextlib.suppress(OSError):
            self._temporary.write_bytes(self.template_path.read_bytes())

    def _track(self, event: Event) -> None:
        kind = type(event)
        if kind is StepPaused:
            assert isinstance(event, StepPaused)
            self.paused[event.build] = event
        elif kind is DecisionMade or kind is BuildFinished:
            self.paused.pop(event.build, None)
            if kind is BuildFinished:
                self.breakpoints.pop(event.build, None)
        elif kind is BreakpointReached:
            assert isinstance(event, BreakpointReached)
            self.breakpoints[event.build] = event
        elif kind is BreakpointResumed:
            self.breakpoints.pop(event.build, None)

    # -- the child process ------------------------------------------------------------------

    def command(self, template: Path) -> list[str]:
        """The child's command line for building ``template``."""
        argv = [sys.executable, "-m", "tui", "build", "--json", "--on-error", self.on_error]
        if self.force:
            argv.append("--force")
        if len(self.builders) != len(self.spec.builders):
            for builder in self.builders:
                argv += ["--only", builder.name]
        if self.ssh_port is not None:
            argv += ["--ssh-port", str(self.ssh_port)]
        if self.target.profile:
            argv += ["--profile", self.target.profile]
        if self._var_file is not None:
            argv += ["--var-file", str(self._var_file)]
        argv.append(str(template))
        return argv

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ours (AMIBAKE_HOME...) with AWS_* set for the target.

        A target with its own keys (the local cloud) gets nothing of our AWS set-up: no
        stray credentials, profile, config file or endpoint. The variables the user set
        (editor form, rerun) go in a private var-file (see :meth:`_write_var_file`), not
        here: legacy JSON templates read no ``PKR_VAR_*``, as in Packer.
        """
        env = dict(os.environ if base is None else base)
        target = self.target
        if target.access_key_id:
            for name in [n for n in env if n.startswith("AWS_")]:
                del env[name]
            env["AWS_ACCESS_KEY_ID"] = target.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = target.secret_access_key or ""
            env["AWS_CONFIG_FILE"] = os.devnull
            env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        if target.endpoint_url:
            env["AWS_ENDPOINT_URL"] = target.endpoint_url
        if self.region:
            env["AWS_DEFAULT_REGION"] = self.region
        return env

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
        _hold_collector()
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
        buffer = bytearray()
        while chunk := await stdout.read(READ_CHUNK):
            buffer += chunk
            end = buffer.rfind(b"\n")
            if end < 0:
                continue  # inside one large event
            complete = bytes(buffer[:end])
            del buffer[: end + 1]
            self._apply_lines(complete.split(b"\n"))
        if buffer.strip():
            self._apply_lines([bytes(buffer)])

    def _apply_lines(self, raw_lines: list[bytes]) -> None:
        events: list[Event] = []
        for raw in raw_lines:
            try:
                events.append(event_from_dict(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                continue  # not an event (a stray print): the child's stderr has its words
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
                waiter = self._shells.get(event.build_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
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
        while line := await stderr.readline():
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text)

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
        for waiter in self._shells.values():
            if not waiter.done():
                waiter.set_result(ShellReady(build="", build_id="", error="the build is over"))
        self.paused.clear()
        self.breakpoints.clear()
        if self._var_file is not None:
            with contextlib.suppress(OSError):
                self._var_file.unlink()
                self._var_file.parent.rmdir()
        if self._temporary is not None:
            with contextlib.suppress(OSError):
                self._temporary.unlink()
            from core.history import repoint_records

            original = str(self.template_path) if self.template_path else ""
            repoint_records(self._build_ids, original)
        self.finished.set()
        self._flush(final=True)
        _release_collector()

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


# -- the garbage collector during a flood ------------------------------------------------------

_HOLDS = 0


def _hold_collector() -> None:
    """Keep the objects alive now (the app, its screens, modules) out of full collections.

    During an output flood the UI process allocates hundreds of thousands of small
    objects a second (the lines of the panes), so full collections come every few
    hundred milliseconds; each would walk every object of the app, a pause of ~85 ms
    a key press waits behind. Frozen (``gc.freeze``), those objects are skipped and a
    full collection costs what the build's own objects cost. They are handed back
    to the collector (``gc.unfreeze``) when no run is left.
    """
    global _HOLDS
    _HOLDS += 1
    gc.freeze()


def _release_collector() -> None:
    global _HOLDS
    _HOLDS = max(0, _HOLDS - 1)
    if _HOLDS == 0:
        gc.unfreeze()


# -- a shell on a build's instance -------------------------------------------------------------


def run_in_terminal(app: App[Any], argv: Sequence[str]) -> int:
    """Run ``argv`` (an interactive ``ssh``) on the app's terminal: the app is suspended
    meanwhile and comes back when it exits. Tests replace this with a double."""
    import subprocess

    with app.suspend():
        return subprocess.call(list(argv))


async def open_shell(app: App[Any], run: BuildRun, build: str) -> str | None:
    """A shell on the instance of ``build``; the reason when there is none (else None)."""
    from core.engine.shell_access import remove

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
