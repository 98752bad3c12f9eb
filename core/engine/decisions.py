"""``--on-error ask``: a failed step pauses its build until someone decides what comes next.

The runner calls :func:`ask` when a step fails; it emits
:class:`~amibake.core.events.StepPaused` and waits for one of its ``choices``:

- ``retry``: run the step again (a provisioning step runs again from the provisioner that
  failed, with the template re-read from disk: ``BuildOptions.reload``);
- ``cleanup``: give up and remove what the build created;
- ``abort``: give up and keep everything for debugging (as ``--on-error abort``).

Meanwhile the instance can be reached with a shell (:mod:`amibake.core.engine.shell_access`).
The answer comes from ``BuildOptions.decide`` (the headless prompt) or from
:func:`decide`, from any thread (the app's command on the build process's stdin).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amibake.core.events import DecisionMade, StepPaused

if TYPE_CHECKING:
    from amibake.core.engine.context import BuildContext

CHOICES = ("retry", "shell", "cleanup", "abort")

_waiting: dict[str, asyncio.Future[str]] = {}
_contexts: dict[str, BuildContext] = {}
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Pause:
    """What the decision hook is told: the paused build, its failed step and the choices."""

    ctx: BuildContext
    key: str
    step: str
    title: str
    error: str
    choices: tuple[str, ...]


def register(ctx: BuildContext) -> None:
    """Make a running build reachable by its id (a shell on its instance)."""
    _contexts[ctx.build_id] = ctx


def unregister(ctx: BuildContext) -> None:
    if _contexts.get(ctx.build_id) is ctx:
        del _contexts[ctx.build_id]


def context(build_id: str) -> BuildContext | None:
    return _contexts.get(build_id)


def waiting() -> tuple[str, ...]:
    """The keys of the builds paused now."""
    return tuple(key for key, future in _waiting.items() if not future.done())


def decide(key: str, choice: str) -> bool:
    """Answer the paused build ``key`` (from any thread); False if none waits or the
    choice is not one it offers."""
    future = _waiting.get(key)
    if future is None or future.done() or choice not in CHOICES or choice == "shell":
        return False

    def finish() -> None:
        if not future.done():
            future.set_result(choice)

    future.get_loop().call_soon_threadsafe(finish)
    return True


def shell_available(ctx: BuildContext) -> bool:
    return ctx.communicator is not None and ctx.ssh_host is not None


async def ask(ctx: BuildContext, step: str, title: str, error: str, retry: bool) -> str:
    """Pause the build after ``step`` failed with ``error``; the choice made."""
    key = f"{ctx.build_id}:{step}:{next(_numbers)}"
    choices = tuple(
        c for c in CHOICES if (c != "retry" or retry) and (c != "shell" or shell_available(ctx))
    )
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _waiting[key] = future
    ctx.emit(
        StepPaused(
            build=ctx.name,
            build_id=ctx.build_id,
            key=key,
            step=step,
            title=title,
            error=error,
            choices=choices,
        )
    )
    ctx.say(f"{title} failed; waiting for a decision: {', '.join(choices)}", "warning")
    try:
        hook = ctx.options.decide
        if hook is None:
            choice = await future
        else:
            asked = asyncio.ensure_future(hook(Pause(ctx, key, step, title, error, choices)))
            try:
                await asyncio.wait({future, asked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not asked.done():
                    asked.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asked
            choice = future.result() if future.done() else asked.result()
    finally:
        _waiting.pop(key, None)
    if choice not in choices or choice == "shell":
        choice = "cleanup"
    ctx.emit(DecisionMade(build=ctx.name, build_id=ctx.build_id, key=key, choice=choice))
    return choice
