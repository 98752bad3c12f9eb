"""Resolve the VPC, the subnet and the availability zone before launch (``vpc_filter``,
``subnet_filter``), as Packer's StepNetworkInfo does.

``vpc_filter`` must match exactly one VPC; ``subnet_filter`` (within that VPC and the
``availability_zone`` when given, available subnets only) one subnet, unless ``most_free``
(the most free addresses) or ``random`` chooses among several. A given subnet's VPC and zone
are read back from it. Nothing is created, so there is nothing to clean up.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.runner import Step
from amibake.core.errors import AmibakeError

_ATTRIBUTE = "_amibake_network"


@dataclass(frozen=True)
class Network:
    vpc_id: str | None
    subnet_id: str | None
    availability_zone: str | None


def network(ctx: BuildContext) -> Network:
    """Where the instance goes: what NetworkInfoStep resolved, else the template's values."""
    resolved = getattr(ctx, _ATTRIBUTE, None)
    if isinstance(resolved, Network):
        return resolved
    builder = ctx.builder
    return Network(builder.vpc_id, builder.subnet_id, builder.availability_zone)


def ec2_filters(filters: Mapping[str, str]) -> list[dict[str, Any]]:
    """EC2 filters from a template's map: a value is comma-separated values (CSV, as Packer's
    buildEc2Filters reads it, so a quoted value may hold a comma)."""
    out = []
    for name, value in filters.items():
        values = next(csv.reader([value], skipinitialspace=True), [""])
        out.append({"Name": name, "Values": values})
    return out


def _describe(filters: list[dict[str, Any]]) -> str:
    return ", ".join(f"{f['Name']}={','.join(f['Values'])}" for f in filters)


class NetworkInfoStep(Step):
    name = "network"
    title = "Finding the VPC and subnet"

    def applies(self, ctx: BuildContext) -> bool:
        builder = ctx.builder
        return (
            (builder.vpc_filter is not None and not builder.vpc_id)
            or (builder.subnet_filter is not None and not builder.subnet_id)
            or (builder.associate_public_ip_address is not None and not builder.subnet_id)
        )

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        vpc_id, subnet_id = builder.vpc_id, builder.subnet_id
        zone = builder.availability_zone
        if not vpc_id and builder.vpc_filter is not None:
            filters = ec2_filters(builder.vpc_filter.filters)
            found = await ctx.aws.collect(ctx.region, "DescribeVpcs", "Vpcs", Filters=filters)
            if len(found) != 1:
                raise AmibakeError(
                    f"vpc_filter: exactly one VPC should match {_describe(filters)}, "
                    f"found {len(found)}"
                )
            vpc_id = found[0]["VpcId"]
            ctx.say(f"Found VPC {vpc_id}")
        if not subnet_id and builder.subnet_filter is not None:
            wanted = dict(builder.subnet_filter.filters)
            wanted["state"] = "available"
            if vpc_id:
                wanted["vpc-id"] = vpc_id
            if zone:
                wanted["availabilityZone"] = zone
            filters = ec2_filters(wanted)
            subnets = await ctx.aws.collect(
                ctx.region, "DescribeSubnets", "Subnets", Filters=filters
            )
            if not subnets:
                raise AmibakeError(f"subnet_filter: no subnet matches {_describe(filters)}")
            choice = builder.subnet_filter
            if len(subnets) > 1 and not (choice.most_free or choice.random):
                raise AmibakeError(
                    f"subnet_filter matched {len(subnets)} subnets: make it more specific, "
                    "or set most_free or random"
                )
            if choice.most_free:
                subnet = most_free(subnets)
            elif choice.random:
                subnet = random.choice(subnets)
            else:
                subnet = subnets[0]
            subnet_id = subnet["SubnetId"]
            ctx.say(f"Found subnet {subnet_id}")
        if not subnet_id and builder.associate_public_ip_address is not None:
            subnet_id, vpc_id, zone = await _inferred_subnet(ctx, vpc_id, zone)
        if subnet_id and (not zone or not vpc_id):
            described = await ctx.aws.call(ctx.region, "DescribeSubnets", SubnetIds=[subnet_id])
            subnet = described["Subnets"][0]
            zone = zone or subnet["AvailabilityZone"]
            vpc_id = vpc_id or subnet["VpcId"]
        setattr(ctx, _ATTRIBUTE, Network(vpc_id, subnet_id, zone))
        ctx.say(
            f"Network: VPC {vpc_id or '(default)'}, subnet {subnet_id or '(default)'}, "
            f"zone {zone or '(any)'}"
        )


async def _inferred_subnet(
    ctx: BuildContext, vpc_id: str | None, zone: str | None
) -> tuple[str | None, str | None, str | None]:
    """Packer's GetDefaultVPCAndSubnet: ``associate_public_ip_address`` needs a network
    interface in a subnet, so with none given the subnet of ``vpc_id`` (or of the default
    VPC) with the most free addresses is taken, in a zone that offers the instance type.
    When that fails Packer goes on without a subnet, saying so; so does amibake (EC2 then
    places the interface in the default subnet)."""
    builder = ctx.builder
    public = "true" if builder.associate_public_ip_address else "false"
    ctx.say(f"Setting public IP address to {public} on instance without a subnet ID")
    try:
        if not vpc_id:
            ctx.say("No VPC ID provided, using the default VPC")
            vpc_id = await default_vpc_id(ctx)
            if vpc_id is None:
                raise AmibakeError("no default VPC found")
        ctx.say(f"Inferring subnet from the selected VPC {vpc_id}")
        wanted = {"vpc-id": vpc_id, "state": "available"}
        if zone:
            wanted["availabilityZone"] = zone
        subnets = await ctx.aws.collect(
            ctx.region, "DescribeSubnets", "Subnets", Filters=ec2_filters(wanted)
        )
        instance_type = builder.instance_type
        if instance_type:
            offered = await ctx.aws.collect(
                ctx.region,
                "DescribeInstanceTypeOfferings",
                "InstanceTypeOfferings",
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [instance_type]}],
            )
            zones = {o["Location"] for o in offered}
            subnets = [s for s in subnets if s["AvailabilityZone"] in zones] if zones else subnets
        if not subnets:
            raise AmibakeError(f"no available subnet in {vpc_id}")
    except AmibakeError as error:
        ctx.say(
            f"associate_public_ip_address is set without a subnet_id, and no subnet could be "
            f"inferred ({error}): launching without one",
            "warning",
        )
        return None, vpc_id, zone
    subnet = most_free(subnets)
    ctx.say(f"Found subnet {subnet['SubnetId']} (the most free addresses)")
    return subnet["SubnetId"], vpc_id, subnet["AvailabilityZone"]


def most_free(subnets: list[dict[str, Any]]) -> dict[str, Any]:
    """The subnet with the most free addresses (Packer's mostFreeSubnet)."""
    return max(subnets, key=lambda s: int(s.get("AvailableIpAddressCount", 0)))


async def default_vpc_id(ctx: BuildContext) -> str | None:
    """The region's default VPC, if it has one."""
    found = await ctx.aws.call(
        ctx.region, "DescribeVpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}]
    )
    vpcs = found.get("Vpcs", [])
    return str(vpcs[0]["VpcId"]) if vpcs else None
