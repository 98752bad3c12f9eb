"""Adaptive polling for EC2 state changes.

Polls come every half second for the first few seconds (most waits end there
on a fast target, and each poll late is time lost), then the delay grows to a
cap of a few seconds, so long transitions do not hammer the API. A template's
``aws_polling`` pins the delay and the number of attempts, as in Packer.
Throttling during polls is botocore's retry mode's business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.aws import Aws, AwsError
from core.errors import AmibakeError
from core.model import AwsPolling

T = TypeVar("T")


class WaitTimeout(AmibakeError):
    pass


class WaitFailed(AmibakeError):
    pass


@dataclass(frozen=True)
class PollPolicy:
    initial: float = 0.5
    factor: float = 1.5
    cap: float = 4.0
    timeout: float = 1800.0
    #: seconds during which the delay stays at ``initial`` before it starts growing
    hold: float = 5.0

    @classmethod
    def from_template(cls, polling: AwsPolling | None, timeout: float) -> PollPolicy:
        if polling is None or (polling.delay_seconds is None and polling.max_attempts is None):
            return cls(timeout=timeout)
        delay = float(polling.delay_seconds) if polling.delay_seconds is not None else 2.0
        attempts = polling.max_attempts
        total = delay * attempts if attempts is not None else timeout
        return cls(initial=delay, factor=1.0, cap=delay, timeout=total, hold=0.0)

    def delays(self) -> Callable[[], float]:
        current = [self.initial]
        waited = [0.0]

        def next_delay() -> float:
            delay = current[0]
            waited[0] += delay
            if waited[0] >= self.hold:
                current[0] = min(self.cap, current[0] * self.factor)
            return delay

        return next_delay


async def poll(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    policy: PollPolicy,
    failed: Callable[[T], str | None] | None = None,
) -> T:
    """Call ``fetch`` until ``done(value)``; raise WaitFailed when ``failed`` says so."""
    deadline = time.monotonic() + policy.timeout
    next_delay = policy.delays()
    while True:
        value = await fetch()
        if done(value):
            return value
        if failed is not None:
            reason = failed(value)
            if reason:
                raise WaitFailed(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {policy.timeout:g}s waiting for {what}")
        await asyncio.sleep(min(next_delay(), max(0.0, deadline - time.monotonic())))


#: What DeregisterImage answers for an AMI that is already gone.
AMI_GONE = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")

#: How a delete waits for AWS to release what still holds the resource.
RELEASE_POLICY = PollPolicy(initial=1.0, cap=5.0, timeout=300)


async def delete_when_free(
    aws: Aws,
    region: str,
    operation: str,
    *,
    gone: tuple[str, ...],
    in_use: str | None = None,
    what: str,
    **params: object,
) -> None:
    """Call a Delete* ``operation``, again while AWS answers ``in_use``.

    A security group stays in use until its instance has terminated, a snapshot until
    the deregistration of its AMI has settled. The ``gone`` codes (NotFound) count as
    deleted: cleanup and sweep may race each other, or a retried call may have landed.
    """

    async def attempt() -> bool:
        try:
            await aws.call(region, operation, **params)
        except AwsError as error:
            if error.code == in_use:
                return False
            if error.code not in gone:
                raise
        return True

    await poll(attempt, bool, what=f"{what} to be deletable", policy=RELEASE_POLICY)
