"""Riding through EC2's eventual consistency, as Packer does.

A resource just created is not at once visible to every later call that names it:
DescribeInstances right after RunInstances may answer ``InvalidInstanceID.NotFound``,
AuthorizeSecurityGroupIngress right after CreateSecurityGroup ``InvalidGroup.NotFound``,
CreateTags on a new AMI ``InvalidAMIID.NotFound``, RunInstances with a key pair created a
moment ago ``InvalidKeyPair.NotFound``. Packer retries those codes for that call, 11 tries
with a linear backoff of 0.2 s per attempt capped at 30 s (about 11 s in all); so do we.

This is not throttling (botocore's retry mode handles that) and not a waiter: only the
listed codes are retried, only for a call naming a resource this build just created, and
any other error goes up at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from amibake.core.aws import AwsError

T = TypeVar("T")

#: The codes AWS answers for a resource that exists but is not visible yet, by kind.
NOT_YET_VISIBLE: dict[str, tuple[str, ...]] = {
    "instance": ("InvalidInstanceID.NotFound",),
    "security-group": ("InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound"),
    "image": ("InvalidAMIID.NotFound",),
    "snapshot": ("InvalidSnapshot.NotFound",),
    "key-pair": ("InvalidKeyPair.NotFound",),
    # A new instance profile is not usable by EC2 for a while (Packer: about 2.5 minutes).
    "instance-profile": (
        "InvalidParameterValue: Invalid IAM Instance Profile",
        "InvalidParameterValue: iamInstanceProfile",
    ),
    # CreateImage right after the stop wait (Packer: for up to 15 minutes).
    "stopped-instance": (
        "InvalidParameterValue: is not in state",
        "IncorrectInstanceState: is not in state",
    ),
}

ALL_NOT_YET_VISIBLE: tuple[str, ...] = tuple(
    code for codes in NOT_YET_VISIBLE.values() for code in codes
)


@dataclass(frozen=True, slots=True)
class ConsistencyRetry:
    """Packer's policy (builder/common: ``retry.Config{Tries: 11}`` with a linear backoff)."""

    tries: int = 11
    initial: float = 0.2
    cap: float = 30.0
    #: None: linear (``initial * attempt``); else each delay is the last one times this
    multiplier: float | None = None

    def delay(self, attempt: int) -> float:
        if self.multiplier is None:
            return min(self.initial * attempt, self.cap)
        return min(self.initial * self.multiplier ** (attempt - 1), self.cap)


PACKER_POLICY = ConsistencyRetry()
#: Packer's ``Backoff{200ms, 30s, x2}`` over 11 tries: about 2 minutes (an instance profile,
#: tags on fresh snapshots and AMIs).
PATIENT_POLICY = ConsistencyRetry(multiplier=2.0)
#: CreateImage while the instance is not yet seen stopped: about 15 minutes, as Packer.
STOPPED_POLICY = ConsistencyRetry(tries=37, multiplier=2.0)


def matches(error: AwsError, codes: Iterable[str]) -> bool:
    """Whether ``error`` is one of ``codes``: ``"Code"``, or ``"Code: fragment"`` for a code
    that means "not yet" only with that fragment in its message (InvalidParameterValue)."""
    for entry in codes:
        code, _, fragment = entry.partition(": ")
        if error.code == code and fragment.lower() in error.aws_message.lower():
            return True
    return False


def codes_for(*kinds: str) -> tuple[str, ...]:
    """The not-yet-visible codes of these resource kinds (``instance``, ``image``, ...)."""
    return tuple(code for kind in kinds for code in NOT_YET_VISIBLE[kind])


async def until_visible(
    call: Callable[[], Awaitable[T]],
    *,
    codes: Iterable[str] = ALL_NOT_YET_VISIBLE,
    policy: ConsistencyRetry = PACKER_POLICY,
    on_retry: Callable[[AwsError, int], Any] | None = None,
) -> T:
    """``await call()``, again while it fails with one of ``codes``, at most ``policy.tries``.

    ``on_retry(error, attempt)`` is told of each retry (to say it in the build log). The
    last error goes up unchanged when the tries run out.
    """
    wanted = tuple(codes)
    attempt = 1
    while True:
        try:
            return await call()
        except AwsError as error:
            if not matches(error, wanted) or attempt >= policy.tries:
                raise
            if on_retry is not None:
                on_retry(error, attempt)
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1


async def call_until_visible(
    aws: Any,
    region: str,
    operation: str,
    /,
    *,
    kinds: Iterable[str],
    on_retry: Callable[[AwsError, int], Any] | None = None,
    policy: ConsistencyRetry | None = None,
    **params: Any,
) -> dict[str, Any]:
    """``aws.call(region, operation, **params)`` through :func:`until_visible` for the
    not-yet-visible codes of ``kinds``: the one-line form for the engine's call sites.
    The policy is the most patient one any of the kinds needs unless given."""
    kinds = tuple(kinds)
    if policy is None:
        policy = max(
            (KIND_POLICIES.get(kind, PACKER_POLICY) for kind in kinds),
            key=lambda p: sum(p.delay(a) for a in range(1, p.tries)),
            default=PACKER_POLICY,
        )
    return await until_visible(
        lambda: aws.call(region, operation, **params),
        codes=codes_for(*kinds),
        on_retry=on_retry,
        policy=policy,
    )


#: The kinds whose "not yet" lasts longer than Packer's usual 11 short tries.
KIND_POLICIES: dict[str, ConsistencyRetry] = {
    "instance-profile": PATIENT_POLICY,
    "stopped-instance": STOPPED_POLICY,
}


# -- create calls that a cancel must not lose (issue 10, item 1) -----------------------------

#: Codes after which a create call may or may not have been carried out: the service failed
#: or the connection did, after the request may have arrived. Any other AWS error is a refusal.
UNCERTAIN_CODES: frozenset[str] = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "EndpointUnreachable",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "EndpointConnectionError",
    }
)

#: The create calls in flight of the build whose steps run in this context (set by the runner,
#: which waits for them before any cleanup decides anything).
IN_FLIGHT: ContextVar[set[asyncio.Future[Any]] | None] = ContextVar("in_flight", default=None)

CreateOutcome = Literal["unsent", "answered", "refused", "unknown"]


class CreateCall:
    """One create call of a step, sent so that cancelling the step cannot lose its answer.

    A boto3 call in a worker thread cannot be stopped: once sent, the resource may come to
    exist whatever the caller does. So the call (with the bookkeeping of its answer: the id in
    the ledger and on the step) runs as its own task, which the step awaits shielded; a cancel
    stops the step's waiting, not the call. The runner waits for every such task before the
    cleanups run, so a cleanup sees the answer as if it had come before the cancel, and
    :meth:`outcome` tells it whether a resource can exist that it does not know of.
    """

    def __init__(self) -> None:
        self.task: asyncio.Future[Any] | None = None

    async def send(self, call: Awaitable[T]) -> T:
        task = asyncio.ensure_future(call)
        self.task = task
        pending = IN_FLIGHT.get()
        if pending is not None:
            pending.add(task)
            task.add_done_callback(pending.discard)
        return await asyncio.shield(task)

    async def outcome(self) -> CreateOutcome:
        """``unsent``: nothing was asked; ``answered``: its answer was recorded; ``refused``:
        AWS said no (nothing was created); ``unknown``: it may have been created."""
        if self.task is None:
            return "unsent"
        try:
            await asyncio.shield(self.task)
        except AwsError as error:
            return "unknown" if error.code in UNCERTAIN_CODES else "refused"
        except asyncio.CancelledError:
            if self.task.cancelled():  # the event loop is closing: it may have gone out
                return "unknown"
            raise
        except Exception:
            return "unknown"
        return "answered"


async def wait_in_flight(pending: set[asyncio.Future[Any]], say: Callable[[str], Any]) -> None:
    """Wait for the create calls still in flight (their errors are their steps' business)."""
    if not pending:
        return
    say(f"Waiting for {len(pending)} create call(s) in flight to answer before cleaning up")
    await asyncio.gather(*list(pending), return_exceptions=True)


async def find_until_certain(
    lookup: Callable[[], Awaitable[T | None]],
    *,
    certain: bool,
    policy: ConsistencyRetry = PACKER_POLICY,
) -> T | None:
    """Look a resource up by its token, tag or name. One negative answer proves nothing while
    its create call's outcome is unknown (a new resource is not at once visible): then look
    again, as long as the consistency policy allows. ``certain``: one lookup is enough."""
    attempt = 1
    while True:
        found = await lookup()
        if found is not None or certain or attempt >= policy.tries:
            return found
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1
