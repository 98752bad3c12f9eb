"""``amibake build``'s answers to a paused build: the headless prompt, and the command channel.

Headless (``--on-error ask``), a failed step asks on the terminal, as Packer's
``-on-error=ask`` does, with one more choice: a shell on the instance::

    ==> amazon-ebs: Step "Provisioning" failed: ...
    ==> amazon-ebs: [r] retry step  [s] shell on the instance  [c] clean up and exit
                    [a] abort without cleanup

With ``--json`` (the app's build process) standard input carries JSON commands, one a line:

- ``{"command": "continue", "key": K}``: continue the breakpoint K (BreakpointReached);
- ``{"command": "decide", "key": K, "choice": "retry"|"cleanup"|"abort"}``: answer StepPaused K;
- ``{"command": "shell", "build_id": B}``: a ShellReady event answers with the ``ssh`` command
  line for the build's instance and the private directory holding its key, which the asker
  removes once the shell exits (the process removes what is left when it ends).

``AMIBAKE_SHELL_COMMAND`` set: the shell runs that command instead of a login shell
(scripted use; the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amibake.core.engine import decisions
from amibake.core.engine.provisioners import breakpoint
from amibake.core.engine.shell_access import remove, shell_command
from amibake.core.errors import AmibakeError
from amibake.core.events import Event, ShellReady

KEYS = {"r": "retry", "s": "shell", "c": "cleanup", "a": "abort"}
LABELS = {
    "retry": "[r] retry step",
    "shell": "[s] shell on the instance",
    "cleanup": "[c] clean up and exit",
    "abort": "[a] abort without cleanup",
}


def scripted_command() -> str | None:
    return os.environ.get("AMIBAKE_SHELL_COMMAND") or None


async def prompt_decision(pause: decisions.Pause) -> str:
    """Ask on the terminal until a decision is made; a shell in between as often as asked."""
    name = pause.ctx.name
    out = sys.stdout
    out.write(f'==> {name}: Step "{pause.title}" failed: {pause.error}\n')
    while True:
        out.write(f"==> {name}: " + "  ".join(LABELS[c] for c in pause.choices) + "\n")
        out.flush()
        line = await breakpoint._read_line()
        if line is None:  # no terminal to ask: as Packer's ui.Ask, give up (and clean up)
            out.write(f"==> {name}: no answer (standard input closed): cleaning up\n")
            return "cleanup"
        choice = KEYS.get(line.strip().lower()[:1], "")
        if choice not in pause.choices:
            continue
        if choice != "shell":
            return choice
        await run_shell(pause.ctx, out)


async def run_shell(ctx: Any, out: Any) -> None:
    command = scripted_command()
    try:
        argv, directory = shell_command(ctx, command)
    except AmibakeError as error:
        out.write(f"==> {ctx.name}: cannot open a shell: {error}\n")
        return
    try:
        out.write(f"==> {ctx.name}: shell on the instance; exit it to come back here\n")
        out.flush()
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL if command else None
        )
        await process.wait()
    finally:
        remove(directory)


async def read_commands(reply: Callable[[Event], None]) -> None:
    """Carry out the JSON commands on standard input until it ends."""
    directories: list[Path] = []
    try:
        async for line in _lines():
            _command(line, reply, directories)
    finally:
        for directory in directories:
            remove(directory)


def _command(line: str, reply: Callable[[Event], None], directories: list[Path]) -> None:
    try:
        data = json.loads(line)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    command = data.get("command")
    if command == "continue":
        breakpoint.resume(str(data.get("key", "")))
    elif command == "decide":
        decisions.decide(str(data.get("key", "")), str(data.get("choice", "")))
    elif command == "shell":
        build_id = str(data.get("build_id", ""))
        ctx = decisions.context(build_id)
        if ctx is None:
            reply(ShellReady(build="", build_id=build_id, error="no such build running"))
            return
        try:
            argv, directory = shell_command(ctx, scripted_command())
        except AmibakeError as error:
            reply(ShellReady(build=ctx.name, build_id=build_id, error=str(error)))
            return
        directories.append(directory)
        reply(
            ShellReady(
                build=ctx.name, build_id=build_id, argv=tuple(argv), directory=str(directory)
            )
        )


async def _lines() -> Any:
    stream = sys.stdin
    if stream is None or stream.closed:
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), stream
        )
    except (OSError, ValueError):  # a regular file: read it all at once
        for line in stream.read().splitlines():
            yield line
        return
    try:
        while raw := await reader.readline():
            yield raw.decode("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):
            transport.close()
