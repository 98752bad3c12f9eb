"""The step runner: run steps in order, then clean up after the ones that ran, in reverse.

Like Packer's multistep, each step pairs ``run`` with ``cleanup``. Unlike it, the
cleanup phase is shielded from cancellation: cancelling a build stops the
running step at once, then every cleanup still runs to the end, reporting
through the same events. A cleanup that fails is reported and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from amibake.core.engine import decisions
from amibake.core.engine.context import BuildContext
from amibake.core.engine.retry import IN_FLIGHT, wait_in_flight
from amibake.core.errors import AmibakeError
from amibake.core.events import BuildStatus, StepFinished, StepStarted

log = logging.getLogger(__name__)


class Step:
    """One stage of a build. Subclasses set ``name`` and ``title`` and override ``run``."""

    #: class attributes of each step; a wrapper step (Concurrently, SshOnly) sets its own
    name: str = "step"
    title: str = "Step"

    async def run(self, ctx: BuildContext) -> None:
        raise NotImplementedError

    async def cleanup(self, ctx: BuildContext) -> None:
        """Undo what ``run`` created; called (shielded) for every step that started."""

    def applies(self, ctx: BuildContext) -> bool:
        return True

    #: whether ``--on-error ask`` offers to run the step again after it failed
    retryable: ClassVar[bool] = False

    async def prepare_retry(self, ctx: BuildContext) -> None:
        """Before the step runs again after a failure (--on-error ask, "retry")."""

    async def given_up(self, ctx: BuildContext) -> None:
        """The step failed for good (--on-error ask: no retry): its own last words."""


class Concurrently(Step):
    """Independent steps run at the same time; one failing cancels the others."""

    def __init__(self, name: str, title: str, steps: Sequence[Step]) -> None:
        self.name = name
        self.title = title
        self.steps = list(steps)

    async def run(self, ctx: BuildContext) -> None:
        async with asyncio.TaskGroup() as group:
            for step in self.steps:
                if step.applies(ctx):
                    group.create_task(step.run(ctx))

    async def cleanup(self, ctx: BuildContext) -> None:
        await asyncio.gather(*(_cleanup_one(ctx, s) for s in self.steps if s.applies(ctx)))


def describe_error(error: BaseException) -> str:
    if isinstance(error, ExceptionGroup):
        return "; ".join(describe_error(e) for e in error.exceptions)
    if isinstance(error, AmibakeError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def first_user_error(error: BaseException) -> BaseException:
    """The error to report from a TaskGroup's ExceptionGroup (user errors first)."""
    if isinstance(error, ExceptionGroup):
        leaves = [first_user_error(e) for e in error.exceptions]
        for leaf in leaves:
            if isinstance(leaf, AmibakeError):
                return leaf
        return leaves[0]
    return error


async def _cleanup_one(ctx: BuildContext, step: Step) -> BaseException | None:
    try:
        await step.cleanup(ctx)
    except Exception as error:  # one failed cleanup must not stop the others
        if not isinstance(error, AmibakeError):
            log.exception("cleanup of %s failed", step.name)
        ctx.say(f"Cleanup of {step.title.lower()} failed: {describe_error(error)}", "error")
        return error
    return None


async def run_steps(
    ctx: BuildContext, steps: Sequence[Step]
) -> tuple[BuildStatus, BaseException | None]:
    """Run the steps, then the cleanups. Returns (outcome, error)."""
    started: list[Step] = []
    outcome: BuildStatus = "succeeded"
    failure: BaseException | None = None
    # create calls (amibake.core.engine.retry.CreateCall)
    in_flight: set[asyncio.Future[Any]] = set()
    IN_FLIGHT.set(in_flight)
    ctx.keep = ctx.keep or ctx.options.on_error == "abort"
    decisions.register(ctx)
    try:
        for step in steps:
            if not step.applies(ctx):
                continue
            started.append(step)
            await _run_asking(ctx, step)
    except asyncio.CancelledError:
        outcome = "cancelled"
    except Exception as error:
        outcome, failure = "failed", first_user_error(error)
    finally:
        decisions.unregister(ctx)
    ctx.outcome = outcome

    if outcome == "failed" and ctx.keep:
        ctx.say("Build failed; its resources are kept for debugging (abort).", "warning")
        return outcome, failure

    cleanup = asyncio.ensure_future(_cleanup_all(ctx, started, in_flight))
    interrupted = False
    while not cleanup.done():
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            # A further cancel during cleanup does not stop it: nothing may be left behind.
            interrupted = True
            ctx.say("Cleanup in progress; waiting for it to finish.", "warning")
    if interrupted:
        # A cancel that arrives during cleanup changes nothing more: the cleanup finished, and
        # a build that had succeeded keeps its artifacts and its status.
        task = asyncio.current_task()
        if task is not None:
            while task.uncancel():
                pass
    return outcome, failure


async def _run_asking(ctx: BuildContext, step: Step) -> None:
    """Run the step; with --on-error ask, a failure pauses the build for a decision."""
    retrying = False
    while True:
        try:
            if retrying:
                await step.prepare_retry(ctx)
            await _run_one(ctx, step)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if ctx.options.on_error != "ask" or _handled_by_engine(error):
                raise
            message = ctx.redact(describe_error(error))
            choice = await decisions.ask(ctx, step.name, step.title, message, step.retryable)
            if choice == "retry":
                retrying = True
                continue
            ctx.keep = choice == "abort"
            await step.given_up(ctx)
            raise


def _handled_by_engine(error: BaseException) -> bool:
    """Errors the build answers itself (an sshd refusing ed25519: built again with RSA)."""
    from amibake.core.ssh import KeyTypeRefused

    return isinstance(first_user_error(error), KeyTypeRefused)


async def _run_one(ctx: BuildContext, step: Step) -> None:
    ctx.emit(StepStarted(build=ctx.name, step=step.name, title=step.title))
    began = time.monotonic()
    try:
        await step.run(ctx)
    except asyncio.CancelledError:
        ctx.emit(
            StepFinished(
                build=ctx.name,
                step=step.name,
                status="cancelled",
                duration=time.monotonic() - began,
            )
        )
        raise
    except BaseException as error:
        if not isinstance(first_user_error(error), AmibakeError):
            log.exception("step %s failed", step.name)
        ctx.emit(
            StepFinished(
                build=ctx.name,
                step=step.name,
                status="failed",
                duration=time.monotonic() - began,
                error=ctx.redact(describe_error(error)),
            )
        )
        raise
    ctx.emit(
        StepFinished(build=ctx.name, step=step.name, status="ok", duration=time.monotonic() - began)
    )


async def _cleanup_all(
    ctx: BuildContext, started: list[Step], in_flight: set[asyncio.Future[Any]]
) -> None:
    # A create call that was sent may still create its resource: no cleanup decides
    # anything before it has answered (issue 10).
    await wait_in_flight(in_flight, ctx.say)
    errors = [await _cleanup_one(ctx, step) for step in reversed(started)]
    await _after_expired_credentials(ctx, [e for e in errors if e is not None])


async def _after_expired_credentials(ctx: BuildContext, errors: list[BaseException]) -> None:
    """The credentials expired and cleanup could not finish: say exactly what is left and the
    sweep command that finishes it with fresh credentials (issue 10)."""
    from amibake.core.engine.steps.credentials import expired, left_behind

    if not any(expired(e) for e in errors):
        return
    left, command = await asyncio.to_thread(left_behind, ctx)
    ctx.say(
        f"The AWS credentials expired before cleanup finished; left behind: {left}. "
        f"With fresh credentials, run: {command}",
        "error",
    )
