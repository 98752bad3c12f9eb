"""The temporary security group: the SSH port only, from the caller's own address.

Where the SSH connection comes from decides what the group admits (issue 10):

* ``temporary_security_group_source_cidrs`` when given (IPv4 blocks in ``IpRanges``, IPv6
  blocks in ``Ipv6Ranges``);
* SSH to a private address (``ssh_interface`` private_ip/private_dns, or an instance that
  gets no public IP: ``associate_public_ip_address = false`` or a subnet that does not map
  one): the caller is inside the network, so the subnet's CIDR (else the VPC's) is admitted;
* otherwise the public address checkip.amazonaws.com reports, asked directly (not through the
  environment's HTTP proxy: asyncssh does not use it either), as a /32 (or an IPv6 /128).
"""

from __future__ import annotations

import asyncio
import ipaddress
import urllib.request
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.retry import CreateCall, call_until_visible, find_until_certain
from amibake.core.engine.runner import Step
from amibake.core.engine.steps.network import default_vpc_id, ec2_filters, network
from amibake.core.engine.waiters import delete_when_free
from amibake.core.errors import AmibakeError

#: Where the caller's public address is asked for (as Packer does) when no CIDR is given.
CHECKIP_URL = "https://checkip.amazonaws.com"


class SecurityGroupStep(Step):
    name = "security-group"
    title = "Creating a temporary security group"

    def __init__(self) -> None:
        self.created: str | None = None
        self.requested = False
        self.create = CreateCall()

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
        vpc_id = await _vpc_for(ctx)
        if ssh and not cidrs:
            private = await private_source_cidrs(ctx, vpc_id)
            # amibake's default is Packer's temporary_security_group_source_public_ip.
            cidrs = private or [await caller_cidr(ctx)]
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

        async def create() -> str:
            answer = await ctx.aws.call(ctx.region, "CreateSecurityGroup", **params)
            group_id = str(answer["GroupId"])
            self.created = group_id
            await ctx.created(row, "security-group", group_id, detail=name)
            return group_id

        # A cancel while the call is in flight does not lose the group (issue 10).
        group_id = await self.create.send(create())
        ctx.security_group_ids = [group_id]
        if not ssh:
            ctx.say(f"Security group {group_id} has no SSH rule (communicator none)")
            return
        await call_until_visible(  # a new group may not be visible yet (issue 13)
            ctx.aws,
            ctx.region,
            "AuthorizeSecurityGroupIngress",
            kinds=("security-group",),
            GroupId=group_id,
            IpPermissions=[ssh_permission(ctx.ssh_port, cidrs)],
        )
        ctx.say(f"Security group {group_id} allows port {ctx.ssh_port} from {', '.join(cidrs)}")

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.created is None and self.requested:
            # The runner waited for CreateSecurityGroup's answer; only an unknown outcome
            # (the call failed on the way) needs looking for the group, until certain.
            outcome = await self.create.outcome()

            async def lookup() -> str | None:
                found = await ctx.aws.call(
                    ctx.region, "DescribeSecurityGroups", Filters=[ctx.build_filter()]
                )
                groups = found.get("SecurityGroups", [])
                return str(groups[0]["GroupId"]) if groups else None

            if outcome == "unknown":
                self.created = await find_until_certain(lookup, certain=False)
            if self.created is None and outcome != "unknown":
                await ctx.settled("security-group")
            elif self.created is None:
                ctx.say(
                    "CreateSecurityGroup's outcome is unknown and no group of the build was "
                    f"found; the ledger keeps it: run 'amibake sweep --region {ctx.region}' later",
                    "warning",
                )
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


def ssh_permission(port: int, cidrs: list[str]) -> dict[str, Any]:
    """The SSH ingress rule: IPv4 blocks in IpRanges, IPv6 blocks in Ipv6Ranges (EC2 rejects
    an IPv6 block given as CidrIp)."""
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    v4 = [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == 4]
    v6 = [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == 6]
    if v4:
        permission["IpRanges"] = [{"CidrIp": c, "Description": "amibake SSH"} for c in v4]
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": c, "Description": "amibake SSH"} for c in v6]
    return permission


def ssh_goes_private(ctx: BuildContext, subnet: dict[str, Any] | None) -> bool:
    """Will SSH reach the instance on a private address? (see the module docstring)"""
    builder = ctx.builder
    if builder.ssh_host or builder.ssh_interface in ("public_ip", "public_dns", "ipv6"):
        return False
    if builder.ssh_interface in ("private_ip", "private_dns"):
        return True
    if builder.associate_public_ip_address is not None:
        return not builder.associate_public_ip_address
    return subnet is not None and subnet.get("MapPublicIpOnLaunch") is False


async def private_source_cidrs(ctx: BuildContext, vpc_id: str | None) -> list[str]:
    """For SSH to a private address: the subnet's CIDR, else the VPC's (the default VPC's
    when none is given); on the local cloud also 127.0.0.1/32, the source of its routes."""
    subnet_id = network(ctx).subnet_id
    subnet = None
    if subnet_id:
        found = await ctx.aws.call(ctx.region, "DescribeSubnets", SubnetIds=[subnet_id])
        subnet = found["Subnets"][0]
    if not ssh_goes_private(ctx, subnet):
        return []
    cidrs: list[str] = []
    if subnet is not None and subnet.get("CidrBlock"):
        cidrs.append(subnet["CidrBlock"])
    else:
        filters = (
            {"VpcIds": [vpc_id]}
            if vpc_id
            else {"Filters": [{"Name": "isDefault", "Values": ["true"]}]}
        )
        vpcs = (await ctx.aws.call(ctx.region, "DescribeVpcs", **filters)).get("Vpcs", [])
        cidrs += [v["CidrBlock"] for v in vpcs[:1] if v.get("CidrBlock")]
    if ctx.aws.target.is_loopback:
        cidrs.append("127.0.0.1/32")
    if not cidrs:
        raise AmibakeError(
            "cannot find the CIDR of the subnet or VPC SSH goes through (private address); "
            "set temporary_security_group_source_cidrs"
        )
    ctx.say(f"SSH goes to a private address: admitting {', '.join(cidrs)}")
    return cidrs


def ask_checkip(url: str = CHECKIP_URL) -> str:
    """The caller's public address as checkip reports it, asked directly: an HTTP proxy of the
    environment would report the proxy's address, and the SSH connection does not use it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return str(response.read().decode().strip())


async def caller_cidr(ctx: BuildContext) -> str:
    """The caller's address as a /32 (IPv6: /128): 127.0.0.1 for an endpoint on this machine."""
    target = ctx.aws.target
    if target.is_loopback:
        return "127.0.0.1/32"
    try:
        address = ipaddress.ip_address(await asyncio.to_thread(ask_checkip))
    except (OSError, ValueError):
        raise AmibakeError(
            "cannot find your public IP address for the temporary security group; "
            "set temporary_security_group_source_cidrs"
        ) from None
    return f"{address}/{address.max_prefixlen}"


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
        vpc_id: str = subnets["Subnets"][0]["VpcId"]
        return vpc_id
    await require_default_vpc(ctx)
    return None


async def require_default_vpc(ctx: BuildContext) -> None:
    """Without a subnet the instance and the group go to the region's default VPC: say so
    in one line when there is none (EC2 would answer VPCIdNotSpecified or worse)."""
    if await default_vpc_id(ctx) is None:
        raise AmibakeError(
            f"region {ctx.region} has no default VPC: set subnet_id or subnet_filter "
            "(and vpc_id or vpc_filter) to say where the instance goes"
        )
