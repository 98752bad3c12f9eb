"""A process-wide budget of Describe* calls per target and region (issue 16).

EC2 throttles an account's read calls in a region as a whole, so every build of the
process draws on one budget: at most :data:`DESCRIBE_CALLS` Describe* calls in any
:data:`DESCRIBE_WINDOW` seconds per (target, region), however many builds run. It is a
token bucket whose tokens come back one window after they were spent: a call waits
for a token, never fails for want of one.

Only the builds' calls are budgeted (:func:`budgeted` marks them; the engine runs each
build inside it): the AMI browser paging through a catalogue, the sweep and test clients
are not builds. ``AMIBAKE_DESCRIBE_RATE`` (calls per second, ``0`` for no budget) sets
the budget of a process, read once.

A caller that gathers work while it waits (the region's waiter, batched lookups) takes
its token first with :meth:`CallBudget.acquire`, then sends its call inside
:func:`prepaid`, so that the call does not wait for a second token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar

#: Describe* calls per window and the window (seconds): 4 a second keeps any one-second
#: window at 5 or fewer even when a call leaves a little after its turn.
DESCRIBE_CALLS = 4
DESCRIBE_WINDOW = 1.0


def _configured_calls(environ: dict[str, str] | None = None) -> int:
    value = (os.environ if environ is None else environ).get("AMIBAKE_DESCRIBE_RATE", "")
    try:
        return max(0, int(value)) if value else DESCRIBE_CALLS
    except ValueError:
        return DESCRIBE_CALLS


class CallBudget:
    """At most ``calls`` calls in any ``window`` seconds; a call waits for its turn.

    Each call reserves the earliest turn that keeps the last ``calls`` turns at least
    ``window`` apart; turns never decrease, so no window of that length holds more.
    Thread-safe (builds of one process may run on several event loops).
    """

    def __init__(
        self,
        calls: int = DESCRIBE_CALLS,
        window: float = DESCRIBE_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if calls < 1 or window <= 0:
            raise ValueError("a budget needs at least one call per positive window")
        self.calls = calls
        self.window = window
        self._clock = clock
        self._turns: deque[float] = deque(maxlen=calls)
        self._lock = threading.Lock()
        #: calls granted so far (what tests and benchmarks look at)
        self.granted = 0

    def reserve(self) -> float:
        """Take the next turn: the seconds to wait before sending (0: at once)."""
        with self._lock:
            now = self._clock()
            turn = now
            if len(self._turns) == self.calls:
                turn = max(now, self._turns[0] + self.window)
            self._turns.append(turn)
            self.granted += 1
            return turn - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


_BUDGETS: dict[tuple[str, str], CallBudget] = {}
_BUDGETS_LOCK = threading.Lock()
#: calls per window, read from the environment when the first budget is made
_CALLS: int | None = None
#: inside a build (see :func:`budgeted`)
_ACTIVE: ContextVar[bool] = ContextVar("amibake_describe_budget", default=False)
#: a token already taken for the next budgeted call of this context
_PREPAID: ContextVar[list[bool] | None] = ContextVar("amibake_describe_prepaid", default=None)


def describe_budget(key: str, region: str) -> CallBudget | None:
    """The budget of (target key, region); None when budgets are off in this process."""
    global _CALLS
    with _BUDGETS_LOCK:
        if _CALLS is None:
            _CALLS = _configured_calls()
        if _CALLS <= 0:
            return None
        budget = _BUDGETS.get((key, region))
        if budget is None:
            budget = _BUDGETS[key, region] = CallBudget(_CALLS, DESCRIBE_WINDOW)
        return budget


def active() -> bool:
    """Whether the running code is a build's (its Describe* calls are budgeted)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def budgeted() -> Iterator[None]:
    """Describe* calls made in this context (and tasks it starts) draw on the budget."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def prepaid() -> Iterator[None]:
    """The next budgeted call in this context uses a token its caller already took."""
    token = _PREPAID.set([True])
    try:
        yield
    finally:
        _PREPAID.reset(token)


async def spend(key: str, region: str) -> None:
    """Wait for a Describe* call's turn (no wait outside builds or with a prepaid token)."""
    ticket = _PREPAID.get()
    if ticket is not None and ticket[0]:
        ticket[0] = False
        return
    if not _ACTIVE.get():
        return
    budget = describe_budget(key, region)
    if budget is not None:
        await budget.acquire()
