"""Launch a spot instance (``spot_price``) as Packer's StepRunSpotInstance does: a temporary
launch template holding everything the instance is launched with (spot market options
included), then an EC2 Fleet of type "instant" for one spot instance of it, one override per
``spot_instance_types`` entry.

Both are temporary resources: journaled before they are created, tagged with amibake's tags
(the launch template also with ``spot_tags``, the fleet with ``fleet_tags``), and deleted after
the instance: terminate the instance, delete the fleet, delete the launch template. Packer
keeps the fleet (and leaks the launch template when killed); amibake removes both.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from amibake.core.aws import AwsError
from amibake.core.engine.context import TAG_BUILD_ID, BuildContext
from amibake.core.engine.retry import PACKER_POLICY, CreateCall
from amibake.core.engine.runner import Step
from amibake.core.engine.steps.iam_profile import instance_profile_name
from amibake.core.engine.steps.instance import (
    is_spot,
    launch_block_device_mappings,
    launch_tag_specifications,
    launched_by_token,
    metadata_options,
    read_user_data,
    terminate_instance,
    wait_until_running,
)
from amibake.core.engine.steps.network import network
from amibake.core.errors import AmibakeError
from amibake.core.templates.schema import BURSTABLE_RE

#: CreateFleet errors Packer tries again (the new instance profile not visible yet, no capacity)
_RETRIED = ("InsufficientInstanceCapacity", "Invalid IAM Instance Profile name")
#: fleet states of a fleet that still exists (a deleted one stays visible for a while)
LIVE_FLEET_STATES = ("submitted", "active", "modifying")
_TEMPLATE_GONE = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.NotFoundException",
)


def template_name(ctx: BuildContext) -> str:
    return f"amibake_{ctx.build_id}"


def launch_template_data(ctx: BuildContext) -> dict[str, Any]:
    """Packer's CreateTemplateData, with amibake's tags on what the instance creates."""
    builder = ctx.builder
    assert ctx.source_image is not None
    where = network(ctx)
    spot_options: dict[str, Any] = {}
    if builder.spot_price != "auto":  # "auto": up to the on-demand price (AWS's default)
        spot_options["MaxPrice"] = builder.spot_price
    if builder.block_duration_minutes:
        spot_options["BlockDurationMinutes"] = builder.block_duration_minutes
    data: dict[str, Any] = {
        "DisableApiTermination": False,
        "EbsOptimized": builder.ebs_optimized,
        "ImageId": ctx.source_image["ImageId"],
        "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": spot_options},
        "TagSpecifications": launch_tag_specifications(ctx),
        "MetadataOptions": metadata_options(builder),
    }
    mappings = [
        {k: v for k, v in mapping.items() if k in ("DeviceName", "Ebs", "VirtualName", "NoDevice")}
        for mapping in launch_block_device_mappings(ctx)
    ]
    if mappings:
        data["BlockDeviceMappings"] = mappings
    profile = instance_profile_name(ctx)
    if profile:
        data["IamInstanceProfile"] = {"Name": profile}
    if where.availability_zone:
        data["Placement"] = {"AvailabilityZone": where.availability_zone}
    user_data = read_user_data(ctx)
    if user_data:
        # a launch template takes its user data base64-encoded (RunInstances encodes it itself)
        data["UserData"] = base64.b64encode(user_data).decode()
    if where.subnet_id:
        interface: dict[str, Any] = {
            "Groups": ctx.security_group_ids,
            "DeleteOnTermination": True,
            "DeviceIndex": 0,
            "SubnetId": where.subnet_id,
        }
        if builder.associate_public_ip_address is not None:
            interface["AssociatePublicIpAddress"] = builder.associate_public_ip_address
        data["NetworkInterfaces"] = [interface]
    else:
        data["SecurityGroupIds"] = ctx.security_group_ids
    if builder.enable_unlimited_credits:
        data["CreditSpecification"] = {"CpuCredits": "unlimited"}
    elif builder.instance_type and BURSTABLE_RE.match(builder.instance_type):
        data["CreditSpecification"] = {"CpuCredits": "standard"}
    if builder.instance_type:  # else the fleet picks among spot_instance_types
        data["InstanceType"] = builder.instance_type
    if ctx.key_name:
        data["KeyName"] = ctx.key_name
    return data


def fleet_request(ctx: BuildContext, token: str) -> dict[str, Any]:
    builder = ctx.builder
    config: dict[str, Any] = {
        "LaunchTemplateSpecification": {
            "LaunchTemplateName": template_name(ctx),
            "Version": "1",
        }
    }
    if builder.spot_instance_types:
        config["Overrides"] = [{"InstanceType": t} for t in builder.spot_instance_types]
    request: dict[str, Any] = {
        "ClientToken": token,
        "LaunchTemplateConfigs": [config],
        "ReplaceUnhealthyInstances": False,
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": 1,
            "DefaultTargetCapacityType": "spot",
        },
        "Type": "instant",
        "TagSpecifications": [ctx.tag_specification("fleet", ctx.render_tags(builder.fleet_tags))],
    }
    if builder.spot_allocation_strategy:
        request["SpotOptions"] = {"AllocationStrategy": builder.spot_allocation_strategy}
    return request


class SpotInstanceStep(Step):
    name = "spot"
    title = "Launching a spot instance"

    def __init__(self) -> None:
        self.template: str | None = None  # its name, set before it is asked for
        self.fleets: list[str] = []
        self.fleet_requested = False
        self.launched: str | None = None

    def applies(self, ctx: BuildContext) -> bool:
        return is_spot(ctx.builder)

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        name = template_name(ctx)
        row = await ctx.intend("launch-template", name)
        self.template = name

        async def create_template() -> None:
            created = await ctx.aws.call(
                ctx.region,
                "CreateLaunchTemplate",
                ClientToken=f"{ctx.build_id}-template",
                LaunchTemplateName=name,
                VersionDescription="template generated by amibake for launching spot instances",
                LaunchTemplateData=launch_template_data(ctx),
                TagSpecifications=[
                    ctx.tag_specification("launch-template", ctx.render_tags(builder.spot_tags))
                ],
            )
            template_id = created["LaunchTemplate"]["LaunchTemplateId"]
            await ctx.created(row, "launch-template", template_id, detail=name)

        # Create calls in flight are awaited before any cleanup (issue 10).
        await CreateCall().send(create_template())
        answer = await self._create_fleet(ctx)
        instance_id = answer["Instances"][0]["InstanceIds"][0]
        self.launched = ctx.instance_id = instance_id
        chosen = answer["Instances"][0].get("InstanceType") or builder.instance_type
        await ctx.found("instance", instance_id, detail=f"spot {chosen}")
        instance = await wait_until_running(ctx, instance_id)
        request_id = instance.get("SpotInstanceRequestId")
        if builder.spot_tags and request_id:
            # Packer tags the spot instance request (not only the launch template)
            await ctx.aws.call(
                ctx.region,
                "CreateTags",
                Resources=[request_id],
                Tags=[
                    {"Key": k, "Value": v} for k, v in ctx.render_tags(builder.spot_tags).items()
                ],
            )
            ctx.say(f"Tagged spot instance request {request_id}")

    async def _create_fleet(self, ctx: BuildContext) -> dict[str, Any]:
        """CreateFleet, tried again as Packer does for capacity and a new instance profile;
        every fleet it creates is the build's (a failed attempt's too)."""
        for attempt in range(1, PACKER_POLICY.tries + 1):
            token = f"{ctx.build_id}-fleet-{attempt}"
            row = await ctx.intend("fleet", token)
            self.fleet_requested = True

            async def create_fleet(row: int | None = row, token: str = token) -> dict[str, Any]:
                answer = await ctx.aws.call(
                    ctx.region, "CreateFleet", **fleet_request(ctx, token)
                )
                fleet_id = answer.get("FleetId")
                if fleet_id:
                    self.fleets.append(fleet_id)
                    await ctx.created(row, "fleet", fleet_id)
                instances = answer.get("Instances") or []
                if instances and instances[0].get("InstanceIds"):
                    self.launched = ctx.instance_id = instances[0]["InstanceIds"][0]
                self.fleet_requested = False
                return answer

            answer = await CreateCall().send(create_fleet())
            fleet_id = answer.get("FleetId")
            if answer.get("Instances"):
                return answer
            errors = answer.get("Errors") or []
            text = "; ".join(
                f"{e.get('ErrorCode', '')}: {e.get('ErrorMessage', '')}".strip(": ") for e in errors
            )
            retry = any(code in text for code in _RETRIED)
            if not retry or attempt == PACKER_POLICY.tries:
                raise AmibakeError(
                    f"the spot fleet {fleet_id or ''} launched no instance: "
                    f"{text or 'no reason given'}"
                )
            ctx.say(f"No spot instance yet ({text}); trying again", "warning")
            await asyncio.sleep(PACKER_POLICY.delay(attempt))
        raise AssertionError("unreachable")

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.launched is None and (self.fleets or self.fleet_requested):
            # Cancelled while CreateFleet was in flight: its instance carries the build's tags.
            self.launched = await launched_by_token(ctx)
        if self.launched is not None:
            await terminate_instance(ctx, self.launched)
            self.launched = None
        if self.fleet_requested:
            self.fleets += [f for f in await fleets_of_build(ctx) if f not in self.fleets]
            self.fleet_requested = False
            await ctx.settled("fleet")
        for fleet_id in list(self.fleets):
            ctx.resource("fleet", fleet_id, "deleting")
            await delete_fleet(ctx.aws, ctx.region, fleet_id)
            await ctx.deleted("fleet", fleet_id)
            self.fleets.remove(fleet_id)
        if self.template is not None:
            name = self.template
            ctx.resource("launch-template", name, "deleting")
            template_id = await delete_launch_template(ctx.aws, ctx.region, name)
            if template_id is not None:
                await ctx.deleted("launch-template", template_id)
            await ctx.settled("launch-template")
            self.template = None


async def fleets_of_build(ctx: BuildContext) -> list[str]:
    """The live fleets carrying this build's tag."""
    found = await ctx.aws.call(
        ctx.region,
        "DescribeFleets",
        Filters=[{"Name": "fleet-state", "Values": list(LIVE_FLEET_STATES)}],
    )
    return [
        fleet["FleetId"]
        for fleet in found.get("Fleets", [])
        if fleet.get("FleetState") in LIVE_FLEET_STATES
        and {t["Key"]: t["Value"] for t in fleet.get("Tags", [])}.get(TAG_BUILD_ID) == ctx.build_id
    ]


async def delete_fleet(aws: Any, region: str, fleet_id: str) -> None:
    """Delete a fleet; an instant fleet's instances go with it (AWS requires it)."""
    try:
        answer = await aws.call(
            region, "DeleteFleets", FleetIds=[fleet_id], TerminateInstances=True
        )
    except AwsError as error:
        if error.code in ("InvalidFleetId.NotFound", "FleetNotFound"):
            return
        raise
    failed = answer.get("UnsuccessfulFleetDeletions") or []
    for failure in failed:
        why = failure.get("Error") or {}
        if why.get("Code") not in ("fleetIdDoesNotExist", "fleetNotInDeletableState"):
            raise AmibakeError(
                f"could not delete fleet {fleet_id}: {why.get('Code')} {why.get('Message', '')}"
            )


async def delete_launch_template(aws: Any, region: str, name: str) -> str | None:
    """Delete a launch template by name; its id, or None if it was not there."""
    try:
        answer = await aws.call(region, "DeleteLaunchTemplate", LaunchTemplateName=name)
    except AwsError as error:
        if error.code in _TEMPLATE_GONE:
            return None
        raise
    return str(answer["LaunchTemplate"]["LaunchTemplateId"])
