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
from dataclasses import dataclass
from typing import Any, TypeVar

from core.aws import AwsError

T = TypeVar("T")

#: The codes AWS answers for a resource that exists but is not visible yet, by kind.
NOT_YET_VISIBLE: dict[str, tuple[str, ...]] = {
    "instance": ("InvalidInstanceID.NotFound",),
    "security-group": ("InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound"),
    "image": ("InvalidAMIID.NotFound",),
    "snapshot": ("InvalidSnapshot.NotFound",),
    "key-pair": ("InvalidKeyPair.NotFound",),
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

    def delay(self, attempt: int) -> float:
        return min(self.initial * attempt, self.cap)


PACKER_POLICY = ConsistencyRetry()


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
    wanted = frozenset(codes)
    attempt = 1
    while True:
        try:
            return await call()
        except AwsError as error:
            if error.code not in wanted or attempt >= policy.tries:
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
    **params: Any,
) -> dict[str, Any]:
    """``aws.call(region, operation, **params)`` through :func:`until_visible` for the
    not-yet-visible codes of ``kinds``: the one-line form for the engine's call sites."""
    return await until_visible(
        lambda: aws.call(region, operation, **params),
        codes=codes_for(*kinds),
        on_retry=on_retry,
    )
