"""The temporary security group: the SSH port only, from the caller's own address."""

from __future__ import annotations

import asyncio
import ipaddress
import urllib.request

from core.engine.context import BuildContext
from core.engine.retry import call_until_visible
from core.engine.runner import Step
from core.engine.steps.network import ec2_filters, network
from core.engine.waiters import delete_when_free
from core.errors import AmibakeError

#: Where the caller's public address is asked for (as Packer does) when no CIDR is given.
CHECKIP_URL = "https://checkip.amazonaws.com"


class SecurityGroupStep(Step):
    name = "security-group"
    title = "Creating a temporary security group"

    def __init__(self) -> None:
        self.created: str | None = None
        self.requested = False

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        if builder.security_group_ids:
            ctx.security_group_ids = list(builder.security_group_ids)
            ctx.say(f"Using security group(s) {', '.join(builder.security_group_ids)}")
            return
        if builder.security_group_filter is not None:
            ctx.security_group_ids = await groups_by_filter(ctx)
            ctx.say(f"Found security group(s) {', '.join(ctx.security_group_ids)}")
            return
        ssh = builder.communicator != "none"
        cidrs = list(builder.temporary_security_group_source_cidrs)
        if cidrs and builder.temporary_security_group_source_public_ip:
            ctx.say(
                "temporary_security_group_source_public_ip with "
                "temporary_security_group_source_cidrs is unsupported (as in Packer): "
                "using the CIDRs",
                "warning",
            )
        if ssh and not cidrs:
            # amibake's default is Packer's temporary_security_group_source_public_ip.
            cidrs = [await caller_cidr(ctx)]
        vpc_id = await _vpc_for(ctx)
        name = f"amibake_{ctx.build_id}"
        row = await ctx.intend("security-group", name)
        params = {
            "GroupName": name,
            "Description": f"Temporary group for amibake build {ctx.build_id}",
            "TagSpecifications": [ctx.tag_specification("security-group")],
        }
        if vpc_id:
            params["VpcId"] = vpc_id
        self.requested = True
        group_id = (await ctx.aws.call(ctx.region, "CreateSecurityGroup", **params))["GroupId"]
        self.created = group_id
        ctx.security_group_ids = [group_id]
        await ctx.created(row, "security-group", group_id, detail=name)
        if not ssh:
            ctx.say(f"Security group {group_id} has no SSH rule (communicator none)")
            return
        await call_until_visible(  # a new group may not be visible yet (issue 13)
            ctx.aws,
            ctx.region,
            "AuthorizeSecurityGroupIngress",
            kinds=("security-group",),
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": ctx.ssh_port,
                    "ToPort": ctx.ssh_port,
                    "IpRanges": [{"CidrIp": c, "Description": "amibake SSH"} for c in cidrs],
                }
            ],
        )
        ctx.say(f"Security group {group_id} allows port {ctx.ssh_port} from {', '.join(cidrs)}")

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.created is None and self.requested:
            # Cancelled while CreateSecurityGroup was in flight: find it by its tags.
            found = await ctx.aws.call(
                ctx.region, "DescribeSecurityGroups", Filters=[ctx.build_filter()]
            )
            groups = found.get("SecurityGroups", [])
            self.created = groups[0]["GroupId"] if groups else None
            if self.created is None:
                await ctx.settled("security-group")
        if self.created is None:
            return
        group_id = self.created
        ctx.resource("security-group", group_id, "deleting")

        # A terminating instance holds the group a little longer: DependencyViolation.
        await delete_when_free(
            ctx.aws,
            ctx.region,
            "DeleteSecurityGroup",
            in_use="DependencyViolation",
            gone=("InvalidGroup.NotFound",),
            what=f"security group {group_id}",
            GroupId=group_id,
        )
        await ctx.deleted("security-group", group_id)
        self.created = None


async def caller_cidr(ctx: BuildContext) -> str:
    """The caller's address as a /32: 127.0.0.1 for an endpoint on this machine."""
    target = ctx.aws.target
    if target.is_loopback:
        return "127.0.0.1/32"

    def ask() -> str:
        with urllib.request.urlopen(CHECKIP_URL, timeout=5) as response:
            return response.read().decode().strip()

    try:
        address = ipaddress.ip_address(await asyncio.to_thread(ask))
    except (OSError, ValueError):
        raise AmibakeError(
            "cannot find your public IP address for the temporary security group; "
            "set temporary_security_group_source_cidrs"
        ) from None
    return f"{address}/32"


async def groups_by_filter(ctx: BuildContext) -> list[str]:
    """``security_group_filter``: the groups it matches (in the build's VPC when known), as
    Packer's StepSecurityGroup; none matching is an error (Packer would launch with none)."""
    assert ctx.builder.security_group_filter is not None
    wanted = dict(ctx.builder.security_group_filter.filters)
    vpc_id = await _vpc_for(ctx)
    if vpc_id:
        wanted["vpc-id"] = vpc_id
    filters = ec2_filters(wanted)
    groups = await ctx.aws.collect(
        ctx.region, "DescribeSecurityGroups", "SecurityGroups", Filters=filters
    )
    if not groups:
        shown = ", ".join(f"{f['Name']}={','.join(f['Values'])}" for f in filters)
        raise AmibakeError(f"security_group_filter: no security group matches {shown}")
    return [g["GroupId"] for g in groups]


async def _vpc_for(ctx: BuildContext) -> str | None:
    where = network(ctx)  # vpc_filter/subnet_filter, resolved before this step
    if where.vpc_id:
        return where.vpc_id
    if where.subnet_id:
        subnets = await ctx.aws.call(ctx.region, "DescribeSubnets", SubnetIds=[where.subnet_id])
        return subnets["Subnets"][0]["VpcId"]
    return None
