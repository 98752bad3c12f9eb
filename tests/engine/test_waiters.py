"""The polling policy: fast while transitions are young, then backing off; aws_polling pins it."""

from __future__ import annotations

import pytest

from core.engine.waiters import PollPolicy, WaitFailed, WaitTimeout, poll
from core.model import AwsPolling


def delays(policy: PollPolicy, count: int) -> list[float]:
    next_delay = policy.delays()
    return [round(next_delay(), 3) for _ in range(count)]


def test_default_policy_holds_half_a_second_then_backs_off_to_the_cap() -> None:
    sequence = delays(PollPolicy(), 16)
    assert sequence[:10] == [0.5] * 10
    assert sequence[10:13] == [0.75, 1.125, 1.688]
    assert sequence[-1] == 4.0
    assert sequence == sorted(sequence)


def test_aws_polling_pins_delay_and_attempts() -> None:
    policy = PollPolicy.from_template(AwsPolling(delay_seconds=7, max_attempts=3), timeout=999)
    assert delays(policy, 4) == [7.0] * 4
    assert policy.timeout == 21


async def test_poll_returns_when_done_and_reports_failure_and_timeout() -> None:
    values = iter(["pending", "pending", "running"])

    async def fetch() -> str:
        return next(values)

    fast = PollPolicy(initial=0.001, timeout=5)
    assert await poll(fetch, lambda v: v == "running", what="x", policy=fast) == "running"

    async def broken() -> str:
        return "terminated"

    with pytest.raises(WaitFailed, match="instance: it is terminated"):
        await poll(
            broken,
            lambda v: v == "running",
            what="instance",
            policy=fast,
            failed=lambda v: f"it is {v}" if v == "terminated" else None,
        )

    async def stuck() -> str:
        return "pending"

    with pytest.raises(WaitTimeout, match=r"timed out after 0\.05s waiting for image"):
        await poll(
            stuck, lambda v: False, what="image", policy=PollPolicy(initial=0.01, timeout=0.05)
        )
