"""Pre-validation's checks go out together; the failure reported follows Packer's order of
checks, never which answer came first (issue 16). Against the local cloud, real boto3."""

from __future__ import annotations

import uuid

from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from tests.engine.test_build import Harness, builder, harness, restore_cloud
from tests.engine.test_run_options import Recorder, build

__all__ = ["harness", "restore_cloud"]


async def test_the_first_failing_check_in_order_is_reported_whatever_answers_first(
    harness: Harness, cloud: LocalCloud
) -> None:
    # The region check answers last (held back by the cloud); the instance profile check,
    # sent with it, fails first. Packer checks the regions first: that failure is reported.
    cloud.set_faults(FaultPlan(rules=[FaultRule("DescribeRegions", delay=0.5)]))
    profile = f"missing-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    template = {"builders": [builder(ami_regions=["cn-north-1"], iam_instance_profile=profile)]}
    result = await build(harness, template, recorder)
    assert result.status == "failed"
    assert result.error == (
        "region(s) cn-north-1 not available to this account "
        "(not enabled, or not a commercial region)"
    )
    # sent without waiting for the regions' answer, and its failure was not the one reported
    assert [p["InstanceProfileName"] for p in recorder.params("GetInstanceProfile")] == [profile]
    # the build region's AMI name was looked up at once; the missing region never was
    assert [
        f["Values"] for p in recorder.params("DescribeImages") for f in p.get("Filters", [])
        if f["Name"] == "name"
    ] == [[template["builders"][0]["ami_name"]]]  # fmt: skip
    assert cloud.gateway is not None
    assert not [r for r in cloud.gateway.requests if r["region"] == "cn-north-1"]
    assert not [n for n, _ in recorder.calls if n.startswith(("Create", "Run", "Import"))]
