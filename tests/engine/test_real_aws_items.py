"""Issue 10 items no other test would catch breaking, against the local cloud:

* item 1: TerminateInstances answering ``InvalidInstanceID.NotFound`` right after the launch
  (EC2 does not know the new id everywhere yet) is "not yet", retried, never "gone";
* item 7: the address EC2 publishes a moment after "running": the instance is described once
  more before SSH falls back from the public address to the private one.
"""

from __future__ import annotations

from typing import Any

import pytest

from amibake.core.engine.steps import instance as instance_step
from amibake.core.engine.waiters import wait_for_state
from amibake.core.events import Message
from amibake.core.local.faults import FaultPlan, FaultRule
from tests.engine.test_build import Harness, builder, harness, restore_cloud, shell

__all__ = ["harness", "restore_cloud"]


async def test_terminate_not_found_right_after_the_launch_is_retried(
    harness: Harness, restore_cloud: Any
) -> None:
    template = builder(communicator="none", skip_create_ami=True)
    del template["ssh_username"]
    plan = FaultPlan([FaultRule("TerminateInstances", error="InvalidInstanceID.NotFound", times=2)])
    restore_cloud.set_faults(plan)
    try:
        (result,) = await harness.build(harness.template({"builders": [template]}))
    finally:
        restore_cloud.set_faults(FaultPlan())
    assert result.status == "succeeded", result.error
    assert plan.fired()[0]["fired"] == 2  # both answers were ridden out...
    assert harness.leftovers(result.build_id) == {}  # ... and the instance really terminated


async def test_the_instance_is_described_again_before_ssh_falls_back_to_private(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The region's waiter (its own client) saw "running" before EC2 published the public
    address: its answer is stripped of it, as EC2's can be; the engine's next DescribeInstances
    goes to the cloud as it is."""
    stripped: list[str] = []

    async def waited_too_soon(*args: Any, **kwargs: Any) -> dict[str, Any]:
        found: dict[str, Any] = await wait_for_state(*args, **kwargs)
        if args[2] == "instance" and found.get("State", {}).get("Name") == "running":
            stripped.append(found.pop("PublicIpAddress"))
            found["PublicDnsName"] = ""
        return found

    monkeypatch.setattr(instance_step, "wait_for_state", waited_too_soon)
    template = harness.template(
        {"builders": [builder(skip_create_ami=True)], "provisioners": [shell("true")]}
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    (public,) = stripped
    (running,) = [
        e.text for e in harness.events if isinstance(e, Message) and " is running at " in e.text
    ]
    instance_id, address = running.split()[1], running.rsplit(" ", 1)[-1]
    described = harness.client().describe_instances(InstanceIds=[instance_id])
    private = described["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
    assert public != private
    assert address == public
