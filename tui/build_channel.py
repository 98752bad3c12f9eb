"""A run's command channel: the child's stdin (tui/cli/build_commands.py reads it) and what
waits on it: paused steps (``--on-error ask``), breakpoints and shells on an instance.

:class:`CommandChannel` is a mixin of :class:`amibake.tui.build_runner.BuildRun`, which owns the
child process; the channel tracks the events that open or close a question and answers
them through :meth:`CommandChannel.send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amibake.core.events import (
    BreakpointReached,
    BreakpointResumed,
    BuildFinished,
    DecisionMade,
    Event,
    ShellReady,
    StepPaused,
)


class CommandChannel:
    """The questions a run's child asks and the answers written to its stdin."""

    # provided by the run
    template_path: Path | None
    _temporary: Path | None
    _process: asyncio.subprocess.Process | None
    build_id_of: dict[str, str]

    def __init__(self) -> None:
        #: builder name -> the failed step waiting for a decision (--on-error ask)
        self.paused: dict[str, StepPaused] = {}
        #: builder name -> the breakpoint it waits at
        self.breakpoints: dict[str, BreakpointReached] = {}
        self._shells: dict[str, asyncio.Future[ShellReady]] = {}

    @property
    def running(self) -> bool:
        raise NotImplementedError

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

    def _answer_shell(self, event: ShellReady) -> None:
        waiter = self._shells.get(event.build_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(event)

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

    def _close_channel(self) -> None:
        """The run is over: every question is void, every shell waiter answered."""
        for waiter in self._shells.values():
            if not waiter.done():
                waiter.set_result(ShellReady(build="", build_id="", error="the build is over"))
        self.paused.clear()
        self.breakpoints.clear()
