"""Waiting for EC2 state changes: one coalescing waiter per region for the whole process.

Every build's waits on instances, images, snapshots and volumes in a region go to
that region's :class:`RegionWaiter`, which sends one Describe call per kind per
tick for all the ids waited on (batched up to :data:`BATCH` ids) and wakes each
waiting build when its resource reaches its state. 20 builds poll as often as one.

Cadence: each wait learns how long its kind of transition takes (instance to
``running``, image to ``available``...) and polls around that expected time: rarely
while it is far off, often near it, backing off again when it is overdue. Nothing
learned yet: a quick first look, then backing off.

Budget: every Describe call of a region's waiter takes its turn in the process's budget
for the target and region (:mod:`amibake.core.budget`, shared with the builds' other Describe
calls), and gathers the ids waited on only once its turn has come. One kind is described
at most every :func:`kind_gap` seconds, a gap that grows with the number of resources
waited on: 20 builds' waits cost about what one build's cost.

A template's ``aws_polling`` (or Packer's ``AWS_POLL_DELAY_SECONDS``,
``AWS_MAX_ATTEMPTS`` and ``AWS_TIMEOUT_SECONDS``, read as Packer reads them, see
:meth:`PollPolicy.from_template`) pins the delay and the number of attempts.

Throttling and transient errors inside a wait count as "not yet": botocore's
``adaptive`` retry mode retries each call; a call that still fails only delays the
next tick, it never fails the build.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from amibake.core import budget
from amibake.core.aws import Aws, AwsError, target_key
from amibake.core.errors import AmibakeError
from amibake.core.model import AwsPolling

T = TypeVar("T")


class WaitTimeout(AmibakeError):
    pass


class WaitFailed(AmibakeError):
    pass


#: The AWS waiters' own delay (seconds) Packer keeps when only the attempts are given.
AWS_WAITER_DELAY = 15.0
#: Packer's delay when AWS_TIMEOUT_SECONDS is set without a delay.
TIMEOUT_ENV_DELAY = 2.0


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    """An integer environment variable; unset, empty or invalid reads as unset (Packer)."""
    value = environ.get(name, "")
    try:
        return int(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PollPolicy:
    initial: float = 0.5
    factor: float = 1.5
    cap: float = 4.0
    timeout: float = 1800.0
    #: seconds during which the delay stays at ``initial`` before it starts growing
    hold: float = 5.0
    #: a fixed delay (``aws_polling`` or AWS_POLL_DELAY_SECONDS): no adaptive cadence
    pinned: bool = False

    @classmethod
    def from_template(
        cls,
        polling: AwsPolling | None,
        timeout: float,
        *,
        default_attempts: int = 40,
        environ: Mapping[str, str] | None = None,
    ) -> PollPolicy:
        """The template's ``aws_polling`` over Packer's environment variables.

        As packer-plugin-amazon's getWaiterOptions: a delay (``delay_seconds`` or
        AWS_POLL_DELAY_SECONDS) alone keeps the waiter's ``default_attempts``; attempts
        (``max_attempts`` or AWS_MAX_ATTEMPTS) alone keep AWS's 15 s delay for the
        deadline (amibake polls adaptively within it); AWS_TIMEOUT_SECONDS without
        attempts gives ``timeout / delay`` attempts with the delay defaulting to 2 s;
        AWS_MAX_ATTEMPTS wins over AWS_TIMEOUT_SECONDS. Zero means unset, as in Packer.
        Nothing set: the adaptive cadence and ``timeout``.
        """
        env = os.environ if environ is None else environ
        delay = polling.delay_seconds if polling is not None else None
        attempts = polling.max_attempts if polling is not None else None
        delay = delay or _env_int(env, "AWS_POLL_DELAY_SECONDS") or None
        attempts = attempts or _env_int(env, "AWS_MAX_ATTEMPTS") or None
        env_timeout = _env_int(env, "AWS_TIMEOUT_SECONDS") or None
        if attempts is None and env_timeout is not None:
            delay = delay or int(TIMEOUT_ENV_DELAY)
            attempts = max(1, env_timeout // delay)
        if delay is None and attempts is None:
            return cls(timeout=timeout)
        if delay is None:
            assert attempts is not None
            return cls(timeout=attempts * AWS_WAITER_DELAY)
        total = float(delay) * (attempts if attempts is not None else default_attempts)
        return cls(
            initial=float(delay), factor=1.0, cap=float(delay), timeout=total, hold=0.0, pinned=True
        )

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


@dataclass(frozen=True)
class Kind:
    """One kind of resource a region's waiter describes in batches."""

    operation: str
    ids_parameter: str
    id_key: str
    not_found: tuple[str, ...]
    items: Callable[[dict[str, Any]], list[dict[str, Any]]]
    state: Callable[[dict[str, Any]], str]


KINDS: dict[str, Kind] = {
    "instance": Kind(
        "DescribeInstances",
        "InstanceIds",
        "InstanceId",
        ("InvalidInstanceID.NotFound",),
        lambda r: [i for res in r.get("Reservations", []) for i in res.get("Instances", [])],
        lambda i: str(i.get("State", {}).get("Name", "")),
    ),
    "image": Kind(
        "DescribeImages",
        "ImageIds",
        "ImageId",
        ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"),
        lambda r: list(r.get("Images", [])),
        lambda i: str(i.get("State", "")),
    ),
    "snapshot": Kind(
        "DescribeSnapshots",
        "SnapshotIds",
        "SnapshotId",
        ("InvalidSnapshot.NotFound",),
        lambda r: list(r.get("Snapshots", [])),
        lambda i: str(i.get("State", "")),
    ),
    "volume": Kind(
        "DescribeVolumes",
        "VolumeIds",
        "VolumeId",
        ("InvalidVolume.NotFound",),
        lambda r: list(r.get("Volumes", [])),
        lambda i: str(i.get("State", "")),
    ),
}

#: Ids per Describe call (well under what EC2 accepts in one request).
BATCH = 200
#: The least time between two Describe calls of one kind, per resource waited on beyond
#: the first, and its bound (see :func:`kind_gap`). The bound is one turn of the region's
#: budget: a wider gap made 20 parallel builds late on each transition (bench_build: 20
#: builds 1.39x one build with 1 s, 1.21x with 0.25 s, at 2x one build's Describe calls).
GAP_PER_WATCH = 0.25
MAX_KIND_GAP = 0.25
#: The shortest and longest delay between two looks at one resource (adaptive cadence).
NEAR = 0.1
FAR = 5.0
#: Errors that mean "ask again later", never "the wait failed".
NOT_YET = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "EndpointUnreachable",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
    }
)

#: CopyImage over the region's quota of concurrent copies: retried until a copy ends.
COPY_QUOTA_CODES = ("ResourceLimitExceeded",)

#: (target, region, kind, state) -> seconds the transition is expected to take (learned).
EXPECTED: dict[tuple[str, str, str, str], float] = {}


def adaptive_delay(elapsed: float, expected: float | None) -> float:
    """Seconds until the next look at a resource ``elapsed`` seconds into its wait."""
    if expected is None:  # nothing learned: a quick first look, then backing off
        return min(FAR, max(NEAR * 2.5, elapsed * 0.25))
    remaining = expected - elapsed
    if remaining > NEAR:  # far from it: halve the distance
        return min(FAR, max(NEAR, remaining / 2))
    return min(FAR, max(NEAR, -remaining * 0.25))  # near it, then overdue: back off


def kind_gap(watched: int) -> float:
    """The least seconds between two Describe calls of one kind with ``watched`` resources
    waited on: none for one (its own cadence), up to :data:`MAX_KIND_GAP` for many, so that
    many waits of builds started apart from each other share calls instead of each
    bringing its own."""
    return min(MAX_KIND_GAP, GAP_PER_WATCH * max(0, watched - 1))


@dataclass(eq=False)
class Watch:
    resource_id: str
    state: str
    policy: PollPolicy
    failed_states: tuple[str, ...]
    missing: dict[str, Any] | None
    future: asyncio.Future[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)
    due: float = 0.0
    #: when a look last found it not there yet (bounds the learned transition time)
    last_pending: float | None = None


class RegionWaiter:
    """All waits of one target and region, served by one task on the running loop."""

    def __init__(self, aws: Aws, region: str) -> None:
        self.aws = aws
        self.region = region
        self.key = target_key(aws.target)
        self.watches: dict[str, list[Watch]] = {kind: [] for kind in KINDS}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: the latest Describe calls sent: (kind, ids) (what tests and benchmarks look at)
        self.sent: deque[tuple[str, tuple[str, ...]]] = deque(maxlen=256)
        #: when each kind was last described
        self._last_tick: dict[str, float] = {}

    def expected(self, kind: str, state: str) -> float | None:
        return EXPECTED.get((self.key, self.region, kind, state))

    def _learn(self, kind: str, watch: Watch, now: float) -> None:
        # the transition happened between the last "not yet" and now
        seen = now - watch.started
        if watch.last_pending is not None:
            seen = (watch.last_pending - watch.started + seen) / 2
        else:
            seen *= 0.8  # done at the first look: it may have been done well before
        key = (self.key, self.region, kind, watch.state)
        previous = EXPECTED.get(key)
        EXPECTED[key] = seen if previous is None else previous * 0.5 + seen * 0.5

    def _schedule(self, kind: str, watch: Watch, now: float) -> None:
        if watch.policy.pinned:
            watch.due = now + watch.policy.initial
        else:
            delay = adaptive_delay(now - watch.started, self.expected(kind, watch.state))
            watch.due = now + delay

    async def wait(
        self,
        kind: str,
        resource_id: str,
        state: str,
        *,
        policy: PollPolicy,
        what: str,
        failed_states: tuple[str, ...] = (),
        missing: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        watch = Watch(resource_id, state, policy, failed_states, missing, loop.create_future())
        watch.due = watch.started  # the first look at once
        if not policy.pinned:
            expected = self.expected(kind, state)
            if expected is not None:
                watch.due = watch.started + max(0.0, expected - NEAR)
        self.watches[kind].append(watch)
        self._ensure_running()
        try:
            return await asyncio.wait_for(asyncio.shield(watch.future), policy.timeout)
        except TimeoutError:
            raise WaitTimeout(f"timed out after {policy.timeout:g}s waiting for {what}") from None
        except WaitFailed as error:
            raise WaitFailed(f"{what}: {error}") from None
        finally:
            if watch in self.watches[kind]:
                self.watches[kind].remove(watch)
            if not watch.future.done():
                watch.future.cancel()

    def _ensure_running(self) -> None:
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _due(self, kind: str) -> float | None:
        """When ``kind`` is next to be described (None: nothing waited on)."""
        # a finished wait stays listed until its caller runs again: not worth a look
        watches = [w for w in self.watches[kind] if not w.future.done()]
        if not watches:
            return None
        soonest = min(w.due for w in watches)
        last = self._last_tick.get(kind)
        if last is None:
            return soonest
        return max(soonest, last + kind_gap(len({w.resource_id for w in watches})))

    async def _run(self) -> None:
        with budget.budgeted():  # every call of the waiter draws on the region's budget
            while any(self.watches.values()):
                self._wake.clear()
                now = time.monotonic()
                dues = {kind: self._due(kind) for kind in self.watches}
                due_kinds = [kind for kind, due in dues.items() if due is not None and due <= now]
                if not due_kinds:
                    pending = [due for due in dues.values() if due is not None]
                    if not pending:  # only finished waits listed: their callers remove them
                        await asyncio.sleep(0)
                        continue
                    soonest = min(pending)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(0.0, soonest - now))
                    continue
                for kind in due_kinds:
                    # the turn first, then the ids: waits that began meanwhile come along
                    allowance = budget.describe_budget(self.key, self.region)
                    if allowance is not None:
                        await allowance.acquire()
                    self._last_tick[kind] = time.monotonic()
                    with budget.prepaid():
                        await self._tick(kind)
                await asyncio.sleep(0)  # the woken waits leave the list before the next round

    async def _tick(self, kind: str) -> None:
        watches = [w for w in self.watches[kind] if not w.future.done()]
        #: watches whose look was due; the others came along and keep their own time
        due = {id(w) for w in watches if w.due <= time.monotonic()}
        ids = list(dict.fromkeys(w.resource_id for w in watches))
        found: dict[str, dict[str, Any]] = {}
        throttled = False
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            try:
                found.update(await self._describe(kind, batch))
            except AwsError as error:
                if error.code not in NOT_YET:
                    for watch in watches:
                        if watch.resource_id in batch and not watch.future.done():
                            watch.future.set_exception(error)
                    continue
                throttled = True
        now = time.monotonic()
        spec = KINDS[kind]
        for watch in watches:
            if watch.future.done():
                continue
            item = found.get(watch.resource_id)
            if item is None and not throttled:
                item = watch.missing
            if item is None:  # not visible yet, or the call was throttled: not yet
                watch.last_pending = now
                if id(watch) in due or throttled:
                    self._schedule(kind, watch, now)
                if throttled:
                    watch.due = max(watch.due, now + 1.0)
                continue
            current = spec.state(item)
            if current == watch.state:
                if not watch.policy.pinned:
                    self._learn(kind, watch, now)
                watch.future.set_result(item)
            elif current in watch.failed_states:
                reason = item.get("StateReason", {}).get("Message", "")
                watch.future.set_exception(
                    WaitFailed(f"it is {current}" + (f" ({reason})" if reason else ""))
                )
            else:
                watch.last_pending = now
                if id(watch) in due:
                    self._schedule(kind, watch, now)

    async def _describe(self, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The batch's resources by id; ids EC2 does not know (yet) are left out."""
        spec = KINDS[kind]
        self.sent.append((kind, tuple(ids)))
        try:
            answer = await self.aws.call(self.region, spec.operation, **{spec.ids_parameter: ids})
        except AwsError as error:
            if error.code not in spec.not_found:
                raise
            if len(ids) == 1:
                return {}
            # one unknown id fails the whole call: ask for each (rare: right after a create)
            found: dict[str, dict[str, Any]] = {}
            for one in ids:
                found.update(await self._describe(kind, [one]))
            return found
        return {str(item[spec.id_key]): item for item in spec.items(answer)}


_WAITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], RegionWaiter]]
_WAITERS = weakref.WeakKeyDictionary()


def region_waiter(aws: Aws, region: str) -> RegionWaiter:
    """The one waiter of ``aws``'s target in ``region`` (per running event loop)."""
    loop = asyncio.get_running_loop()
    waiters = _WAITERS.setdefault(loop, {})
    key = (target_key(aws.target), region)
    waiter = waiters.get(key)
    if waiter is None:
        # its own Aws (shared clients, own threads): a build's Aws may close before others end
        waiter = waiters[key] = RegionWaiter(Aws(aws.target, max_workers=4), region)
    return waiter


async def wait_for_state(
    aws: Aws,
    region: str,
    kind: str,
    resource_id: str,
    state: str,
    *,
    what: str,
    policy: PollPolicy,
    failed_states: tuple[str, ...] = (),
    missing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait until ``resource_id`` (an ``instance``/``image``/``snapshot``/``volume``)
    reads ``state``; raise WaitFailed when it reads one of ``failed_states``.

    ``missing``: what an id EC2 does not know stands for (e.g. a terminated instance
    that has aged out); by default it is not visible yet and the wait goes on.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}")
    return await region_waiter(aws, region).wait(
        kind,
        resource_id,
        state,
        policy=policy,
        what=what,
        failed_states=failed_states,
        missing=missing,
    )


# -- lookups by filter, batched -----------------------------------------------------------


@dataclass(eq=False)
class _FilterBatch:
    """Lookups that differ only in one filter's value, sent as one call with all values."""

    aws: Aws
    region: str
    operation: str
    items_key: str
    name: str
    params: dict[str, Any]
    key_of: Callable[[dict[str, Any]], Iterable[str]]
    pending: dict[str, list[asyncio.Future[list[dict[str, Any]]]]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    #: calls sent: the values each asked for (what tests look at)
    sent: list[tuple[str, ...]] = field(default_factory=list)

    async def run(self) -> None:
        while self.pending:
            # the turn first, then the values: lookups that came meanwhile come along
            allowance = budget.describe_budget(self.aws_key, self.region)
            if budget.active() and allowance is not None:
                await allowance.acquire()
            else:
                await asyncio.sleep(0)
            values = list(self.pending)[:BATCH]
            waiting = {value: self.pending.pop(value) for value in values}
            self.sent.append(tuple(values))
            filters = [*self.params.get("Filters", []), {"Name": self.name, "Values": values}]
            try:
                with budget.prepaid():
                    answer = await self.aws.call(
                        self.region, self.operation, **{**self.params, "Filters": filters}
                    )
            except Exception as error:
                for futures in waiting.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                continue
            found: dict[str, list[dict[str, Any]]] = {value: [] for value in waiting}
            for item in answer.get(self.items_key, []):
                for key in self.key_of(item):
                    if key in found:
                        found[key].append(item)
            for value, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(copy.deepcopy(found[value]))

    @property
    def aws_key(self) -> str:
        return target_key(self.aws.target)


_BATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _FilterBatch]]
_BATCHES = weakref.WeakKeyDictionary()


async def lookup_by_filter(
    aws: Aws,
    region: str,
    operation: str,
    items_key: str,
    *,
    name: str,
    value: str,
    key_of: Callable[[dict[str, Any]], Iterable[str]],
    **params: Any,
) -> list[dict[str, Any]]:
    """The ``items_key`` items a Describe ``operation`` finds with the filter ``name`` =
    ``value`` (and ``params``): lookups of many builds at once that differ only in ``value``
    go as one call listing every value (up to :data:`BATCH`), each gets the items whose
    ``key_of`` names its value. A value with wildcards is looked up alone."""
    if "*" in value or "?" in value:
        filters = [*params.get("Filters", []), {"Name": name, "Values": [value]}]
        answer = await aws.call(region, operation, **{**params, "Filters": filters})
        return list(answer.get(items_key, []))
    loop = asyncio.get_running_loop()
    waiter_aws = region_waiter(aws, region).aws  # long-lived: a build's Aws may close first
    key = json.dumps(
        [target_key(aws.target), region, operation, items_key, name, params], sort_keys=True
    )
    batches = _BATCHES.setdefault(loop, {})
    batch = batches.get(key)
    if batch is None:
        batch = batches[key] = _FilterBatch(
            waiter_aws, region, operation, items_key, name, params, key_of
        )
    future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
    batch.pending.setdefault(value, []).append(future)
    if batch.task is None or batch.task.done():
        batch.task = loop.create_task(batch.run())
    return await future


def tag_values(tag: str) -> Callable[[dict[str, Any]], Iterable[str]]:
    """``key_of`` for a ``tag:<tag>`` filter: the item's value of that tag."""

    def values(item: dict[str, Any]) -> Iterable[str]:
        return [str(t.get("Value", "")) for t in item.get("Tags") or () if t.get("Key") == tag]

    return values


#: How long the stop wait lets an instance take before it forces the stop.
FORCE_STOP_AFTER = 300.0


async def wait_for_stop(
    aws: Aws,
    region: str,
    instance_id: str,
    *,
    policy: PollPolicy,
    force_after: float | None = FORCE_STOP_AFTER,
) -> dict[str, Any]:
    """Wait for a stopping instance to read ``stopped``.

    ``terminated`` / ``shutting-down`` fail the wait at once (the instance is gone, there
    is nothing to snapshot). An instance still not stopped after ``force_after`` seconds
    (hung in its shutdown) gets one ``StopInstances(Force=True)``, then the wait goes on.
    """
    what = f"instance {instance_id} to stop"
    failed = ("terminated", "shutting-down")
    if force_after is None or force_after >= policy.timeout:
        return await wait_for_state(
            aws, region, "instance", instance_id, "stopped",
            what=what, policy=policy, failed_states=failed,
        )  # fmt: skip
    try:
        first = PollPolicy(**{**policy.__dict__, "timeout": force_after})
        return await wait_for_state(
            aws, region, "instance", instance_id, "stopped",
            what=what, policy=first, failed_states=failed,
        )  # fmt: skip
    except WaitTimeout:
        pass
    await aws.call(region, "StopInstances", InstanceIds=[instance_id], Force=True)
    rest = PollPolicy(**{**policy.__dict__, "timeout": policy.timeout - force_after})
    return await wait_for_state(
        aws, region, "instance", instance_id, "stopped",
        what=what, policy=rest, failed_states=failed,
    )  # fmt: skip


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
