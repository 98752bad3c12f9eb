"""Packer's ``breakpoint`` provisioner: pause the build until the user continues.

Headless, Enter on standard input continues (one breakpoint at a time reads it, as
Packer's UI asks one question at a time); standard input at its end fails the build,
as Packer's ``ui.Ask`` does. Anything else (the app's Continue button) calls
:func:`resume` with the key of the :class:`~amibake.core.events.BreakpointReached` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import ProvisionError, with_build_data
from amibake.core.events import BreakpointReached, BreakpointResumed
from amibake.core.model import BreakpointProvisioner

#: Whether Enter on standard input continues a breakpoint. The app, which owns the
#: terminal, sets this to False and calls :func:`resume` instead.
stdin_continues = True

_waiting: dict[str, asyncio.Future[None]] = {}
_stdin_lock: asyncio.Lock | None = None


def waiting() -> tuple[str, ...]:
    """The keys of the breakpoints paused now."""
    return tuple(key for key, future in _waiting.items() if not future.done())


def resume(key: str) -> bool:
    """Continue the paused breakpoint ``key`` (from any thread); False if none waits."""
    future = _waiting.get(key)
    if future is None or future.done():
        return False

    def finish() -> None:
        if not future.done():
            future.set_result(None)

    future.get_loop().call_soon_threadsafe(finish)
    return True


def connect_hint(ctx: BuildContext) -> str:
    if not ctx.ssh_host:
        return ""
    return f"ssh -p {ctx.ssh_port} {ctx.builder.ssh_username}@{ctx.ssh_host}"


async def run_breakpoint(
    ctx: BuildContext, number: int, provisioner: BreakpointProvisioner
) -> None:
    provisioner = with_build_data(ctx, provisioner, f"breakpoint provisioner {number}")
    note = f' with note "{provisioner.note}"' if provisioner.note else ""
    if provisioner.disable:
        ctx.say(f"Breakpoint provisioner{note} disabled; continuing...")
        return
    ctx.say(f"Pausing at breakpoint provisioner{note}.")
    key = f"{ctx.build_id}:{number}"
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _waiting[key] = future
    hint = connect_hint(ctx)
    ctx.emit(
        BreakpointReached(
            build=ctx.name,
            build_id=ctx.build_id,
            key=key,
            provisioner=number,
            note=provisioner.note,
            connect=hint,
        )
    )
    try:
        if hint:
            ctx.say(f"The instance is reachable with the build's key: {hint}")
        if stdin_continues:
            await _wait_with_stdin(ctx, future)
        else:
            await future
    finally:
        _waiting.pop(key, None)
    ctx.emit(BreakpointResumed(build=ctx.name, build_id=ctx.build_id, key=key))
    ctx.say("Continuing after the breakpoint")


async def _wait_with_stdin(ctx: BuildContext, future: asyncio.Future[None]) -> None:
    global _stdin_lock
    if _stdin_lock is None:
        _stdin_lock = asyncio.Lock()
    async with _stdin_lock:
        if future.done():
            return
        ctx.say("Press enter to continue.")
        reader = asyncio.ensure_future(_read_line())
        try:
            either: set[asyncio.Future[Any]] = {future, reader}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        if future.done():
            return
        if reader.result() is None:
            raise ProvisionError(
                "breakpoint: cannot wait for Enter: standard input is closed "
                "(set `disable = true` to skip the breakpoint)"
            )


async def _read_line() -> str | None:
    """One line of standard input without blocking the loop; None at end of input."""
    stream = sys.stdin
    if stream is None or stream.closed:
        return None
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return None
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 1)  # one byte: never take what comes after the newline
        except OSError:
            chunk = b""
        if not chunk:
            if not done.done():
                done.set_result(None)
            return
        buffer.extend(chunk)
        if chunk == b"\n" and not done.done():
            done.set_result(buffer.decode(errors="replace"))

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError):
        # a regular file cannot be watched: it never blocks, so read it directly
        line = stream.readline()
        return line or None
    try:
        return await done
    finally:
        loop.remove_reader(fd)
