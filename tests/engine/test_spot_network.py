"""Spot instances, network filters and ``disable_stop_instance`` (issue 12) against the local
cloud, through real boto3 over HTTP and real SSH.

Packer's behaviour: packer-plugin-amazon builder/common step_run_spot_instance.go (a temporary
launch template, then an "instant" EC2 Fleet), step_network_info.go (vpc_filter,
subnet_filter with most_free/random), step_security_group.go (security_group_filter) and
step_stop_ebs_instance.go (disable_stop_instance: the build only waits for "stopped").
"""

from __future__ import annotations

import base64
import sys
import uuid
from pathlib import Path
from typing import Any

from amibake.core.aws import Aws
from amibake.core.engine.context import TAG_BUILD_ID, TAG_CREATED_AT
from amibake.core.events import Event, Message, ResourceChanged, StepStarted
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.sweep import Sweeper
from tests.engine.test_build import Harness, builder, harness, restore_cloud, shell
from tests.engine.test_run_options import POLICY, Recorder, build, iam_leftovers, tags_of

__all__ = ["harness", "restore_cloud"]


def make_network(cloud: LocalCloud) -> dict[str, Any]:
    """A VPC with two tagged subnets (a /24 and a /28) and a tagged security group."""
    ec2 = cloud.client("ec2", "us-east-1")
    name = f"spot-{uuid.uuid4().hex[:8]}"
    octet = 100 + uuid.uuid4().int % 100
    vpc = ec2.create_vpc(
        CidrBlock=f"10.{octet}.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Vpc"]["VpcId"]
    subnets = {}
    for cidr, zone in ((f"10.{octet}.1.0/24", "us-east-1b"), (f"10.{octet}.2.0/28", "us-east-1c")):
        subnets[cidr] = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=cidr,
            AvailabilityZone=zone,
            TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"{name}-build"}]}
            ],
        )["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"{name}-ssh",
        Description="builds",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "Role", "Value": name}]}
        ],
    )["GroupId"]
    return {"name": name, "vpc": vpc, "subnets": list(subnets.values()), "group": group}


def drop_network(cloud: LocalCloud, network: dict[str, Any]) -> None:
    ec2 = cloud.client("ec2", "us-east-1")
    ec2.delete_security_group(GroupId=network["group"])
    for subnet in network["subnets"]:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=network["vpc"])


def fleets_left(cloud: LocalCloud, build_id: str) -> list[str]:
    ec2 = cloud.client("ec2", "us-east-1")
    return [
        f["FleetId"]
        for f in ec2.describe_fleets()["Fleets"]
        if tags_of(f).get(TAG_BUILD_ID) == build_id and not f["FleetState"].startswith("deleted")
    ]


def templates_left(cloud: LocalCloud, build_id: str) -> list[str]:
    ec2 = cloud.client("ec2", "us-east-1")
    return [
        t["LaunchTemplateId"]
        for t in ec2.describe_launch_templates()["LaunchTemplates"]
        if tags_of(t).get(TAG_BUILD_ID) == build_id
    ]


async def test_spot_build_through_a_fleet_in_filtered_network(harness: Harness) -> None:
    cloud = harness.cloud
    network = make_network(cloud)
    template = {
        "builders": [
            builder(
                instance_type=None,
                spot_price="0.05",
                spot_instance_types=["t3.small", "t3.micro"],
                spot_tags={"Purpose": "bake"},
                spot_tag=[{"key": "Owner", "value": "ci"}],
                fleet_tags={"Fleet": "{{ .SourceAMI }}"},
                spot_allocation_strategy="capacity-optimized",
                block_duration_minutes=60,
                run_tags={"Team": "bakers"},
                run_volume_tags={"Disk": "root"},
                user_data="#!/bin/sh\necho from-user-data\n",
                metadata_options={"http_tokens": "required"},
                temporary_iam_instance_profile_policy_document=POLICY,
                vpc_filter={"filters": {"tag:Name": network["name"]}},
                subnet_filter={
                    "filters": {"tag:Name": f"{network['name']}-build"},
                    "most_free": True,
                },
                security_group_filter={"filters": {"tag:Role": network["name"]}},
            )
        ],
        "provisioners": [shell("echo spot-ok")],
    }
    del template["builders"][0]["instance_type"]
    recorder = Recorder()
    seen: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        # While the instance runs: what the cloud holds for it, its request, fleet and template.
        if isinstance(event, StepStarted) and event.step == "provision":
            ec2 = cloud.client("ec2")
            (reservation,) = ec2.describe_instances(
                Filters=[
                    {"Name": "tag:Team", "Values": ["bakers"]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                    {"Name": "vpc-id", "Values": [network["vpc"]]},
                ]
            )["Reservations"]
            instance = seen["instance"] = reservation["Instances"][0]
            seen["request"] = ec2.describe_spot_instance_requests(
                SpotInstanceRequestIds=[instance["SpotInstanceRequestId"]]
            )["SpotInstanceRequests"][0]
            seen["volumes"] = ec2.describe_volumes(
                Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
            )["Volumes"]
            seen["credits"] = ec2.describe_instance_credit_specifications(
                InstanceIds=[instance["InstanceId"]]
            )["InstanceCreditSpecifications"]

    try:
        result = await build(harness, template, recorder, on_event)
    finally:
        drop_network(cloud, network)
    assert result.status == "succeeded", result.error
    build_id = result.build_id

    # network info: one VPC by its filter, the subnets of that VPC, the most free one
    (vpcs,) = recorder.params("DescribeVpcs")
    assert vpcs["Filters"] == [{"Name": "tag:Name", "Values": [network["name"]]}]
    subnet_query = next(p for p in recorder.params("DescribeSubnets") if "Filters" in p)
    assert {f["Name"]: f["Values"] for f in subnet_query["Filters"]} == {
        "tag:Name": [f"{network['name']}-build"],
        "state": ["available"],
        "vpc-id": [network["vpc"]],
    }
    groups = next(p for p in recorder.params("DescribeSecurityGroups") if "Filters" in p)
    assert {f["Name"]: f["Values"] for f in groups["Filters"]} == {
        "tag:Role": [network["name"]],
        "vpc-id": [network["vpc"]],
    }
    assert not recorder.params("CreateSecurityGroup")  # the filter found the group

    # the launch template: everything the instance is launched with, spot market included
    assert not recorder.params("RunInstances")
    (created,) = recorder.params("CreateLaunchTemplate")
    assert created["LaunchTemplateName"] == f"amibake_{build_id}"
    data = created["LaunchTemplateData"]
    assert data["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {"MaxPrice": "0.05", "BlockDurationMinutes": 60},
    }
    assert "InstanceType" not in data  # the fleet's overrides choose
    assert data["NetworkInterfaces"] == [
        {
            "Groups": [network["group"]],
            "DeleteOnTermination": True,
            "DeviceIndex": 0,
            "SubnetId": network["subnets"][0],  # the /24: most free addresses
        }
    ]
    assert data["Placement"] == {"AvailabilityZone": "us-east-1b"}  # the subnet's zone
    assert data["IamInstanceProfile"] == {"Name": f"amibake_{build_id}"}
    assert data["KeyName"] == f"amibake_{build_id}"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert base64.b64decode(data["UserData"]).decode() == "#!/bin/sh\necho from-user-data\n"
    by_type = {s["ResourceType"]: tags_of(s) for s in data["TagSpecifications"]}
    assert by_type["instance"]["Team"] == "bakers"
    assert by_type["network-interface"]["Team"] == "bakers"
    assert by_type["volume"]["Disk"] == "root"
    (template_tags,) = created["TagSpecifications"]
    assert template_tags["ResourceType"] == "launch-template"
    assert tags_of(template_tags)["Purpose"] == "bake"
    assert tags_of(template_tags)["Owner"] == "ci"
    assert tags_of(template_tags)[TAG_BUILD_ID] == build_id

    # the fleet: instant, one spot instance, an override per instance type
    (fleet,) = recorder.params("CreateFleet")
    assert fleet["Type"] == "instant"
    assert fleet["TargetCapacitySpecification"] == {
        "TotalTargetCapacity": 1,
        "DefaultTargetCapacityType": "spot",
    }
    assert fleet["ReplaceUnhealthyInstances"] is False
    assert fleet["SpotOptions"] == {"AllocationStrategy": "capacity-optimized"}
    (config,) = fleet["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"] == {
        "LaunchTemplateName": f"amibake_{build_id}",
        "Version": "1",
    }
    assert config["Overrides"] == [{"InstanceType": "t3.small"}, {"InstanceType": "t3.micro"}]
    fleet_tags = tags_of(fleet["TagSpecifications"][0])
    assert fleet_tags["Fleet"].startswith("ami-") and fleet_tags[TAG_BUILD_ID] == build_id

    # what the cloud launched: as the template says, reachable over SSH, its request tagged
    instance = seen["instance"]
    assert instance["InstanceLifecycle"] == "spot"
    assert instance["InstanceType"] in ("t3.small", "t3.micro")
    assert instance["SubnetId"] == network["subnets"][0]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [network["group"]]
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"/amibake_{build_id}")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert tags_of(instance)[TAG_BUILD_ID] == build_id
    assert tags_of(seen["request"]) == {"Purpose": "bake", "Owner": "ci"}
    assert all(tags_of(v)["Disk"] == "root" for v in seen["volumes"])
    # no instance_type: Packer sends no credit option, so T3 gets AWS's default
    assert "CreditSpecification" not in data
    assert seen["credits"][0]["CpuCredits"] == "unlimited"
    logs = " ".join(" ".join(getattr(e, "lines", ())) for e in harness.events)
    assert "spot-ok" in logs

    # a spot instance is not stopped (Packer skips the stop step)
    assert not recorder.params("StopInstances")
    assert result.artifacts

    # cleanup: the instance, then the fleet, then the launch template; nothing left
    order = [
        name
        for name, _ in recorder.calls
        if name in ("TerminateInstances", "DeleteFleets", "DeleteLaunchTemplate")
    ]
    assert order == ["TerminateInstances", "DeleteFleets", "DeleteLaunchTemplate"]
    (deleted,) = recorder.params("DeleteFleets")
    assert deleted["TerminateInstances"] is True
    assert fleets_left(cloud, build_id) == []
    assert templates_left(cloud, build_id) == []
    assert iam_leftovers(cloud, build_id) == []
    assert set(harness.leftovers(build_id)) <= {"images", "snapshots"}
    for kind in ("launch-template", "fleet"):
        states = [
            e.state for e in harness.events if isinstance(e, ResourceChanged) and e.kind == kind
        ]
        assert states == ["creating", "created", "deleting", "deleted"], (kind, states)


async def test_network_filters_that_match_badly_fail_before_anything_is_created(
    harness: Harness,
) -> None:
    cloud = harness.cloud
    network = make_network(cloud)
    cases = [
        (
            {"vpc_filter": {"filters": {"tag:Name": "no-such-vpc"}}},
            "vpc_filter: exactly one VPC should match tag:Name=no-such-vpc, found 0",
        ),
        (
            {"subnet_filter": {"filters": {"tag:Name": f"{network['name']}-build"}}},
            "subnet_filter matched 2 subnets: make it more specific, or set most_free or random",
        ),
        (
            {
                "vpc_filter": {"filters": {"tag:Name": network["name"]}},
                "subnet_filter": {"filters": {"cidr-block": "10.0.0.0/8,192.168.0.0/16"}},
            },
            "subnet_filter: no subnet matches cidr-block=10.0.0.0/8,192.168.0.0/16, "
            f"state=available, vpc-id={network['vpc']}",
        ),
    ]
    try:
        for options, message in cases:
            recorder = Recorder()
            result = await build(harness, {"builders": [builder(**options)]}, recorder)
            assert (result.status, result.error) == ("failed", message)
            created = [n for n, _ in recorder.calls if n.startswith(("Create", "Run", "Import"))]
            assert created == []
        # a security group filter matching nothing: located, and the build leaves nothing
        recorder = Recorder()
        options = {"security_group_filter": {"filters": {"tag:Role": "nobody"}}}
        result = await build(harness, {"builders": [builder(**options)]}, recorder)
        assert result.status == "failed"
        assert result.error == "security_group_filter: no security group matches tag:Role=nobody"
        assert not recorder.params("RunInstances") and not recorder.params("CreateSecurityGroup")
        assert harness.leftovers(result.build_id) == {}
    finally:
        drop_network(cloud, network)


async def test_disable_stop_instance_waits_for_the_provisioners_to_stop_it(
    harness: Harness, tmp_path: Path
) -> None:
    # The last provisioner stops the instance itself (here through the cloud's API, from the
    # host: the local cloud's sandboxes have no power button).
    mark = uuid.uuid4().hex[:8]
    script = tmp_path / "stop.py"
    script.write_text(
        "import boto3\n"
        "ec2 = boto3.client('ec2', region_name='us-east-1',"
        f" endpoint_url={harness.cloud.endpoint_url!r},"
        f" aws_access_key_id={FAKE_ACCESS_KEY!r}, aws_secret_access_key={FAKE_SECRET_KEY!r})\n"
        f"found = ec2.describe_instances(Filters=[{{'Name': 'tag:StopMe', 'Values': [{mark!r}]}},"
        " {'Name': 'instance-state-name', 'Values': ['running']}])\n"
        "(reservation,) = found['Reservations']\n"
        "ec2.stop_instances(InstanceIds=[reservation['Instances'][0]['InstanceId']])\n"
    )
    template = {
        "builders": [builder(disable_stop_instance=True, run_tags={"StopMe": mark})],
        "provisioners": [
            shell("echo provisioned"),
            {"type": "shell-local", "inline": [f"{sys.executable} {script}"]},
        ],
    }
    recorder = Recorder()
    result = await build(harness, template, recorder)
    lines = [line for e in harness.events for line in getattr(e, "lines", ())]
    assert result.status == "succeeded", (result.error, lines[-3:])
    assert not recorder.params("StopInstances")  # the build never stopped it
    assert recorder.params("CreateImage")
    says = [getattr(e, "text", "") for e in harness.events]
    assert any("waiting for the instance to stop itself" in s for s in says)
    assert set(harness.leftovers(result.build_id)) <= {"images", "snapshots"}


async def test_sweep_deletes_a_killed_builds_fleet_and_launch_template(
    cloud: LocalCloud, harness: Harness
) -> None:
    build_id = f"20240101-000000-{uuid.uuid4().hex[:6]}"
    tags = [
        {"Key": TAG_BUILD_ID, "Value": build_id},
        {"Key": TAG_CREATED_AT, "Value": "2024-01-01T00:00:00Z"},
    ]
    ec2 = cloud.client("ec2", "us-east-1")
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    name = f"amibake_{build_id}"
    template_id = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image,
            "InstanceType": "t3.micro",
            "InstanceMarketOptions": {"MarketType": "spot"},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    fleet = ec2.create_fleet(
        LaunchTemplateConfigs=[
            {"LaunchTemplateSpecification": {"LaunchTemplateName": name, "Version": "1"}}
        ],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "spot"},
        Type="instant",
        TagSpecifications=[{"ResourceType": "fleet", "Tags": tags}],
    )
    instance_id = fleet["Instances"][0]["InstanceIds"][0]
    aws = Aws(harness.options().target)
    try:
        report = await Sweeper(aws, build_id=build_id).sweep(["us-east-1"])
    finally:
        aws.close()
    assert sorted((o.kind, o.resource_id) for o in report.deleted) == sorted(
        [("instance", instance_id), ("fleet", fleet["FleetId"]), ("launch-template", template_id)]
    )
    assert fleets_left(cloud, build_id) == []
    assert templates_left(cloud, build_id) == []
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated"


async def test_a_public_ip_without_a_subnet_takes_the_vpcs_most_free_subnet(
    harness: Harness,
) -> None:
    """Packer's GetDefaultVPCAndSubnet: with ``associate_public_ip_address`` set and no
    subnet, the subnet of ``vpc_id`` with the most free addresses is taken (here the /24,
    not the /28), so ``vpc_id`` alone is then no mistake."""
    cloud = harness.cloud
    network = make_network(cloud)
    try:
        recorder = Recorder()
        options = {"vpc_id": network["vpc"], "associate_public_ip_address": True}
        result = await build(harness, {"builders": [builder(**options)]}, recorder)
    finally:
        drop_network(cloud, network)
    assert result.status == "succeeded", result.error
    (launch,) = recorder.params("RunInstances")
    (interface,) = launch["NetworkInterfaces"]
    assert interface["SubnetId"] == network["subnets"][0]
    assert interface["AssociatePublicIpAddress"] is True
    said = [e.text for e in harness.events if isinstance(e, Message)]
    assert f"Inferring subnet from the selected VPC {network['vpc']}" in said
