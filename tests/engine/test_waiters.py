"""Waiting for EC2: the polling policy (adaptive; aws_polling and Packer's AWS_* variables
pin it) and the region's one coalescing waiter against the local cloud."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import CALLS, Aws, Target, target_key
from amibake.core.engine.waiters import (
    FAR,
    NEAR,
    PollPolicy,
    WaitFailed,
    WaitTimeout,
    adaptive_delay,
    poll,
    region_waiter,
    wait_for_state,
    wait_for_stop,
)
from amibake.core.events import Event
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.local.latency import get_profile
from amibake.core.model import AwsPolling
from tests.engine.conftest import FOCAL_WILDCARD as FOCAL
from tests.engine.conftest import Instance


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


# --- Packer's environment knobs (builder/common/state.go getWaiterOptions) ---------------


def test_environment_knobs_as_packer_reads_them() -> None:
    def policy(polling: AwsPolling | None = None, **env: str) -> PollPolicy:
        return PollPolicy.from_template(polling, timeout=900, environ=env)

    assert policy() == PollPolicy(timeout=900)  # nothing set: adaptive
    # a delay alone keeps the waiter's attempts (40; AMIs 120)
    assert policy(AWS_POLL_DELAY_SECONDS="3").timeout == 120
    assert policy(AWS_POLL_DELAY_SECONDS="3").pinned
    ami = PollPolicy.from_template(
        None, timeout=3600, default_attempts=120, environ={"AWS_POLL_DELAY_SECONDS": "5"}
    )
    assert ami.timeout == 600
    # attempts alone keep AWS's own 15 s delay for the deadline; the cadence stays adaptive
    alone = policy(AWS_MAX_ATTEMPTS="10")
    assert (alone.timeout, alone.pinned) == (150, False)
    # AWS_TIMEOUT_SECONDS: timeout / delay attempts, the delay defaulting to 2 s
    assert delays(policy(AWS_TIMEOUT_SECONDS="60"), 2) == [2.0, 2.0]
    assert policy(AWS_TIMEOUT_SECONDS="60").timeout == 60
    assert policy(AWS_TIMEOUT_SECONDS="60", AWS_POLL_DELAY_SECONDS="7").timeout == 56
    # AWS_MAX_ATTEMPTS wins over AWS_TIMEOUT_SECONDS
    assert (
        policy(AWS_TIMEOUT_SECONDS="60", AWS_MAX_ATTEMPTS="4", AWS_POLL_DELAY_SECONDS="1").timeout
        == 4
    )
    # the template wins over the environment; invalid or zero values read as unset
    pinned = policy(AwsPolling(delay_seconds=9), AWS_POLL_DELAY_SECONDS="3", AWS_MAX_ATTEMPTS="2")
    assert (pinned.initial, pinned.timeout) == (9.0, 18.0)
    assert policy(AWS_POLL_DELAY_SECONDS="soon", AWS_MAX_ATTEMPTS="0") == PollPolicy(timeout=900)


def test_adaptive_cadence_is_fast_near_the_expected_time_and_slow_far_from_it() -> None:
    # learned: 20 s expected -> far off, halve the distance; near it, the shortest delay
    assert adaptive_delay(0.0, 20.0) == FAR
    assert adaptive_delay(16.0, 20.0) == 2.0
    assert adaptive_delay(19.95, 20.0) == NEAR
    # overdue: backing off again, up to the cap
    assert NEAR < adaptive_delay(24.0, 20.0) < adaptive_delay(30.0, 20.0) <= FAR
    # nothing learned: a quick first look, then backing off
    first = [adaptive_delay(t, None) for t in (0.0, 4.0, 16.0, 60.0)]
    assert first == sorted(first) and first[0] < 0.5 and first[-1] == FAR


# --- the region's one waiter against the local cloud -----------------------------------


@pytest.fixture
def aws(engine_cloud: LocalCloud) -> Iterator[Aws]:
    from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

    client = Aws(
        Target(
            endpoint_url=engine_cloud.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
            max_retries=0,  # no botocore retries: the waiter itself must ride out throttling
        )
    )
    yield client
    client.close()


async def test_many_waits_share_one_describe_per_tick_and_each_wakes_at_its_state(
    aws: Aws, launch: Callable[..., Instance], ec2: Any
) -> None:
    instances = [launch(wait=False) for _ in range(4)]
    ids = [i.id for i in instances]
    policy = PollPolicy(timeout=60)
    waiter = region_waiter(aws, "us-east-1")
    waiter.sent.clear()
    before = CALLS["DescribeInstances"]

    running = await asyncio.gather(
        *(
            wait_for_state(aws, "us-east-1", "instance", i, "running", what=i, policy=policy)
            for i in ids
        )
    )
    assert [r["InstanceId"] for r in running] == ids
    assert all(r["State"]["Name"] == "running" for r in running)
    # one Describe per tick for every id still waited on; the first tick asked for all four
    sent = [entry for entry in waiter.sent if entry[0] == "instance"]
    assert sent[0] == ("instance", tuple(ids))
    assert CALLS["DescribeInstances"] - before == len(sent)

    # two wait to stop, two to run: one Describe per tick serves both, each wakes at its own
    ec2.stop_instances(InstanceIds=ids[:2])
    waiter.sent.clear()
    stopped, still = await asyncio.gather(
        asyncio.gather(
            *(wait_for_stop(aws, "us-east-1", i, policy=policy, force_after=None) for i in ids[:2])
        ),
        asyncio.gather(
            *(
                wait_for_state(aws, "us-east-1", "instance", i, "running", what=i, policy=policy)
                for i in ids[2:]
            )
        ),
    )
    assert [s["State"]["Name"] for s in stopped] == ["stopped", "stopped"]
    assert [s["State"]["Name"] for s in still] == ["running", "running"]
    assert waiter.sent[0] == ("instance", (ids[0], ids[1], ids[2], ids[3]))
    assert all(len(entry[1]) <= 4 for entry in waiter.sent)


async def test_throttling_inside_a_wait_is_not_yet_and_failure_states_fail(
    aws: Aws,
    launch: Callable[..., Instance],
    ec2: Any,
    faults: Callable[[FaultPlan], None],
) -> None:
    instance = launch(wait=False)
    plan = FaultPlan(rules=(FaultRule("DescribeInstances", error="RequestLimitExceeded", times=2),))
    faults(plan)
    found = await wait_for_state(
        aws, "us-east-1", "instance", instance.id, "running",
        what="instance", policy=PollPolicy(timeout=60),
    )  # fmt: skip
    assert found["State"]["Name"] == "running"
    assert plan.fired()[0]["fired"] == 2  # both throttled answers were ridden out
    faults(FaultPlan())

    ec2.terminate_instances(InstanceIds=[instance.id])
    with pytest.raises(
        WaitFailed, match=rf"instance {instance.id} to stop: it is (terminated|shutting-down)"
    ):
        await wait_for_stop(aws, "us-east-1", instance.id, policy=PollPolicy(timeout=60))


async def test_a_hung_stop_is_forced_after_the_bound(
    aws: Aws, launch: Callable[..., Instance]
) -> None:
    instance = launch()
    before = CALLS["StopInstances"]
    # nobody stops it (as an instance hung in its shutdown): after the bound, a forced stop
    found = await wait_for_stop(
        aws, "us-east-1", instance.id, policy=PollPolicy(timeout=60), force_after=0.5
    )
    assert found["State"]["Name"] == "stopped"
    assert CALLS["StopInstances"] - before == 1


async def test_copy_image_over_the_copy_quota_waits_for_a_slot(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    from tests.engine.test_build import Harness, builder

    harness = Harness(cloud, tmp_path)
    west = cloud.client("ec2", "us-west-2")
    east = cloud.client("ec2", "us-east-1")
    source = east.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"][0]["ImageId"]
    # a slow copy of someone's holds the region's only slot (the plan's quota: one)
    cloud.set_latency(replace(get_profile("instant"), copy=600.0))
    cloud.set_faults(FaultPlan(copy_image_limit=1))
    other = west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="slot-holder")
    refused: list[str] = []

    def on_event(event: Event) -> None:
        if "ResourceLimitExceeded" in event.to_json() and not refused:
            refused.append(event.to_json())
            # the other copy ends (deregistered): the slot frees, later copies are instant
            cloud.set_latency("instant")
            west.deregister_image(ImageId=other["ImageId"])

    try:
        template = harness.template({"builders": [builder(ami_regions=["us-west-2"])]})
        [result] = await harness.build(template, on_event=on_event)
    finally:
        cloud.set_latency("instant")
        cloud.set_faults(FaultPlan())
    assert result.status == "succeeded", result.error
    assert refused, "CopyImage was never refused"
    copies = [r for r in cloud.gateway.requests if r["action"] == "CopyImage"]
    assert len(copies) >= 3  # the holder's, the refused one, the one that landed
    assert harness.leftovers(result.build_id, ("us-east-1", "us-west-2")).keys() <= {
        "images",
        "snapshots",
    }


async def test_ssh_retries_a_refused_port_soon_and_a_capped_number_of_times() -> None:
    import socket

    from amibake.core.ssh import REFUSED_FAST_ATTEMPTS, Communicator, SshTimeout

    with socket.socket() as probe:  # a port nobody listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempts: list[str] = []
    with pytest.raises(SshTimeout, match="refused"):
        await Communicator.connect(
            host="127.0.0.1",
            port=port,
            username="nobody",
            timeout=2.0,
            on_attempt=lambda n, reason: attempts.append(reason),
        )
    # backing off from 0.5 s would make 3 attempts in 2 s; short retries make many more,
    # never more than the cap plus the backed-off ones
    assert 6 <= len(attempts) <= REFUSED_FAST_ATTEMPTS + 5


def test_fault_plans_carry_the_copy_quota() -> None:
    from amibake.core.errors import UsageError

    plan = FaultPlan.from_mapping(
        {"copy_image_limit": 2, "rules": [{"operation": "ec2:*", "probability": 0.2,
                                           "error": "RequestLimitExceeded"}]}
    )  # fmt: skip
    assert plan.copy_image_limit == 2
    assert plan.as_dict()["copy_image_limit"] == 2
    with pytest.raises(UsageError, match="copy_image_limit"):
        FaultPlan.from_mapping({"copy_image_limit": 0})


# --- the process's Describe budget and what many waits cost (issue 16) ---------------------


def test_describe_budget_keeps_every_window_within_its_calls() -> None:
    from amibake.core.budget import CallBudget

    now = [100.0]
    allowance = CallBudget(4, 1.0, clock=lambda: now[0])
    # 20 builds asking at once: each call gets the earliest turn that keeps any one-second
    # window at 4 calls
    turns = [now[0] + allowance.reserve() for _ in range(20)]
    assert turns[:4] == [100.0] * 4
    assert turns == sorted(turns)
    assert all(later - earlier >= 1.0 for earlier, later in zip(turns, turns[4:], strict=False))
    assert turns[-1] == 104.0
    # calls spread out wait for nothing
    now[0] = 200.0
    for _ in range(10):
        now[0] += 0.3
        assert allowance.reserve() == pytest.approx(0.0, abs=1e-9)
    assert allowance.granted == 30


class ScriptedEc2:
    """An EC2 stand-in for the waiter's logic alone: each instance reads ``running`` from
    its n-th look on (n given per id); counts the calls."""

    def __init__(self, looks_needed: dict[str, int]) -> None:
        import uuid

        self.target = Target(endpoint_url=f"http://127.0.0.1:9/scripted-{uuid.uuid4()}")
        self.looks_needed = looks_needed
        self.looks: dict[str, int] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.volumes: dict[str, str] = {}

    async def call(self, region: str, operation: str, /, **params: Any) -> dict[str, Any]:
        if operation == "DescribeVolumes":
            wanted = params["Filters"][-1]["Values"]
            self.calls.append((operation, tuple(wanted)))
            return {
                "Volumes": [
                    {"VolumeId": v, "Tags": [{"Key": "amibake:build-id", "Value": b}]}
                    for v, b in self.volumes.items()
                    if b in wanted
                ]
            }
        ids = tuple(params["InstanceIds"])
        self.calls.append((operation, ids))
        instances = []
        for i in ids:
            self.looks[i] = self.looks.get(i, 0) + 1
            state = "running" if self.looks[i] >= self.looks_needed[i] else "pending"
            instances.append({"InstanceId": i, "State": {"Name": state}})
        return {"Reservations": [{"Instances": instances}]}


async def test_twenty_waits_cost_the_describe_calls_of_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from amibake.core import budget
    from amibake.core.engine.waiters import RegionWaiter

    # the process's default budget (the suite turns it off for its other builds)
    monkeypatch.setattr(budget, "_CALLS", budget.DESCRIBE_CALLS)
    monkeypatch.setattr(budget, "_BUDGETS", {})

    async def waits(looks_needed: dict[str, int]) -> ScriptedEc2:
        ec2 = ScriptedEc2(looks_needed)
        waiter = RegionWaiter(ec2, "us-east-1")  # type: ignore[arg-type]
        found = await asyncio.gather(
            *(
                waiter.wait("instance", i, "running", policy=PollPolicy(timeout=60), what=i)
                for i in looks_needed
            )
        )
        assert [f["State"]["Name"] for f in found] == ["running"] * len(looks_needed)
        return ec2

    one = await waits({"i-0": 3})
    many = await waits({f"i-{n}": 1 + n % 3 for n in range(20)})
    # every call asks for every id still waited on: 20 waits take the calls of the slowest
    assert len(one.calls) == len(many.calls) == 3
    assert many.calls[0] == ("DescribeInstances", tuple(f"i-{n}" for n in range(20)))
    assert len(many.calls[1][1]) == 13 and len(many.calls[2][1]) == 6
    # each call took its turn in the region's budget
    allowance = budget.describe_budget(target_key(many.target), "us-east-1")
    assert allowance is not None and allowance.granted == 3


async def test_lookups_by_filter_of_many_builds_go_as_one_call() -> None:
    from amibake.core import budget
    from amibake.core.engine.waiters import _WAITERS, RegionWaiter, lookup_by_filter, tag_values

    ec2 = ScriptedEc2({})
    ec2.volumes = {"vol-1": "build-1", "vol-2": "build-2", "vol-3": "build-2"}
    loop = asyncio.get_running_loop()
    key = (target_key(ec2.target), "us-east-1")
    _WAITERS.setdefault(loop, {})[key] = RegionWaiter(ec2, "us-east-1")  # type: ignore[arg-type]

    async def leftovers(build: str) -> list[str]:
        found = await lookup_by_filter(
            ec2, "us-east-1", "DescribeVolumes", "Volumes",  # type: ignore[arg-type]
            name="tag:amibake:build-id", value=build, key_of=tag_values("amibake:build-id"),
            Filters=[{"Name": "status", "Values": ["available"]}],
        )  # fmt: skip
        return [v["VolumeId"] for v in found]

    with budget.budgeted():
        found = await asyncio.gather(*(leftovers(f"build-{n}") for n in range(10)))
    assert found[1] == ["vol-1"] and found[2] == ["vol-2", "vol-3"]
    assert all(f == [] for n, f in enumerate(found) if n not in (1, 2))
    assert ec2.calls == [("DescribeVolumes", tuple(f"build-{n}" for n in range(10)))]
