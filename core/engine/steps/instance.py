"""Launch the temporary instance and wait for it to run; terminate it (and its volumes) after."""

from __future__ import annotations

import base64
import binascii
import string
from typing import Any

from amibake.core.aws import AwsError
from amibake.core.engine.context import TAG_BUILD_ID, BuildContext
from amibake.core.engine.retry import CreateCall, call_until_visible, find_until_certain
from amibake.core.engine.runner import Step
from amibake.core.engine.steps.iam_profile import instance_profile_name
from amibake.core.engine.steps.network import network
from amibake.core.engine.waiters import PollPolicy, lookup_by_filter, tag_values, wait_for_state
from amibake.core.errors import AmibakeError
from amibake.core.templates.paths import local_path
from amibake.core.templates.schema import BURSTABLE_RE


class LaunchInstanceStep(Step):
    name = "instance"
    title = "Launching the instance"

    def __init__(self) -> None:
        self.launched: str | None = None
        self.launch = CreateCall()

    def applies(self, ctx: BuildContext) -> bool:
        return not is_spot(ctx.builder)  # amibake.core.engine.steps.spot launches those

    async def run(self, ctx: BuildContext) -> None:
        params = launch_parameters(ctx)
        row = await ctx.intend("instance", params["ClientToken"])

        async def launch() -> str:
            reservation = await call_until_visible(  # the new key pair, group, profile
                ctx.aws,
                ctx.region,
                "RunInstances",
                kinds=("key-pair", "security-group", "instance-profile"),
                on_retry=lambda error, _: ctx.say(f"Not launched yet: {error}", "warning"),
                **params,
            )
            instance_id = str(reservation["Instances"][0]["InstanceId"])
            self.launched = ctx.instance_id = instance_id
            await ctx.created(row, "instance", instance_id, detail=ctx.builder.instance_type)
            return instance_id

        # A cancel while RunInstances is in flight does not lose the instance (issue 10).
        instance_id = await self.launch.send(launch())
        await wait_until_running(ctx, instance_id)

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.launched is None:
            # The call was answered before any cleanup (the runner waits for it); without an
            # answer, an uncertain outcome means looking again until it is certain.
            outcome = await self.launch.outcome()
            if outcome in ("unsent", "refused"):
                await ctx.settled("instance")
                return
            self.launched = await launched_by_token(ctx, certain=outcome == "answered")
            if self.launched is None:
                return
        await terminate_instance(ctx, self.launched)
        self.launched = None


def is_spot(builder: Any) -> bool:
    """Packer's IsSpotInstance: a spot price is set (the loader turns "0" into unset)."""
    return bool(builder.spot_price)


async def wait_until_running(ctx: BuildContext, instance_id: str) -> dict[str, Any]:
    """Wait for the launched instance to run; record its volumes and the address to reach."""
    ctx.say(f"Launched instance {instance_id}; waiting for it to run")
    instance = await wait_for_state(  # the region's one waiter (issue 16)
        ctx.aws,
        ctx.region,
        "instance",
        instance_id,
        "running",
        what=f"instance {instance_id} to be running",
        policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
        failed_states=("shutting-down", "terminated", "stopped"),
    )
    builder = ctx.builder
    if not (builder.ssh_host or builder.ssh_interface or instance.get("PublicIpAddress")):
        # EC2 may publish the public address a moment after "running": describe once more
        # before falling back to the private one (issue 10)
        instance = await describe_instance(ctx, instance_id)
    ctx.instance = instance
    for mapping in instance.get("BlockDeviceMappings", []):
        volume_id = mapping.get("Ebs", {}).get("VolumeId")
        if volume_id:
            await ctx.found("volume", volume_id, detail=f"attached to {instance_id}")
    ctx.ssh_host = ssh_address(ctx, instance)
    ctx.resource("instance", instance_id, "created", detail=ctx.ssh_host)
    ctx.say(f"Instance {instance_id} is running at {ctx.ssh_host}")
    return instance


async def terminate_instance(ctx: BuildContext, instance_id: str) -> None:
    """Terminate the build's instance, wait for it, then delete the volumes it leaves."""
    ctx.resource("instance", instance_id, "deleting")
    # Right after its launch, EC2 may not know the instance yet: NotFound then means "not
    # yet", not "gone"; only after the retries is it taken as gone (issue 10).
    try:
        await call_until_visible(
            ctx.aws,
            ctx.region,
            "TerminateInstances",
            kinds=("instance",),
            InstanceIds=[instance_id],
        )
    except AwsError as error:
        if error.code != "InvalidInstanceID.NotFound":
            raise
    await wait_for_state(
        ctx.aws,
        ctx.region,
        "instance",
        instance_id,
        "terminated",
        what=f"instance {instance_id} to terminate",
        policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
    )
    await ctx.deleted("instance", instance_id)
    for mapping in (ctx.instance or {}).get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        if ebs.get("VolumeId") and ebs.get("DeleteOnTermination", True):
            await ctx.deleted("volume", ebs["VolumeId"])
    await delete_leftover_volumes(ctx)


def launch_parameters(ctx: BuildContext) -> dict[str, Any]:
    builder = ctx.builder
    assert ctx.source_image is not None
    params: dict[str, Any] = {
        "ImageId": ctx.source_image["ImageId"],
        "InstanceType": builder.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": f"{ctx.build_id}-launch",
        "InstanceInitiatedShutdownBehavior": builder.shutdown_behavior,
        "TagSpecifications": launch_tag_specifications(ctx),
    }
    params.update(run_option_parameters(ctx))
    if ctx.key_name:
        params["KeyName"] = ctx.key_name
    subnet_id = network(ctx).subnet_id
    if builder.associate_public_ip_address is not None:
        interface: dict[str, Any] = {
            "DeviceIndex": 0,
            "AssociatePublicIpAddress": builder.associate_public_ip_address,
            "Groups": ctx.security_group_ids,
            "DeleteOnTermination": True,
        }
        if subnet_id:
            interface["SubnetId"] = subnet_id
        params["NetworkInterfaces"] = [interface]
    else:
        params["SecurityGroupIds"] = ctx.security_group_ids
        if subnet_id:
            params["SubnetId"] = subnet_id
    profile = instance_profile_name(ctx)
    if profile:
        params["IamInstanceProfile"] = {"Name": profile}
    user_data = read_user_data(ctx)
    if user_data:
        params["UserData"] = user_data
    mappings = launch_block_device_mappings(ctx)
    if mappings:
        params["BlockDeviceMappings"] = mappings
    return params


def launch_tag_specifications(ctx: BuildContext) -> list[dict[str, Any]]:
    """The instance's, its volumes' and (with run_tags) its network interface's tags."""
    builder = ctx.builder
    specifications = [
        ctx.tag_specification(
            "instance", {"Name": "amibake builder"}, ctx.render_tags(builder.run_tags)
        ),
        # Packer tags the launched volumes with run_volume_tags only, not run_tags.
        ctx.tag_specification("volume", ctx.render_tags(builder.run_volume_tags)),
    ]
    if builder.run_tags:
        # Packer tags the instance's network interface with run_tags too.
        specifications.append(
            ctx.tag_specification("network-interface", ctx.render_tags(builder.run_tags))
        )
    return specifications


def read_user_data(ctx: BuildContext) -> bytes | None:
    """The bytes the instance gets as user data (``user_data`` or ``user_data_file``).

    As Packer (StepRunSourceInstance): user data that already is base64 is passed as it is,
    so the instance gets what it decodes to; anything else is the payload itself. A
    ``user_data_file`` is read as bytes (a gzip'ed cloud-config is binary). boto3 encodes
    RunInstances' UserData itself; the spot launch template's is encoded by its step."""
    builder = ctx.builder
    data: bytes | None = builder.user_data.encode() if builder.user_data else None
    if builder.user_data_file:
        path = local_path(ctx.spec, builder.user_data_file)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise AmibakeError(f"cannot read user_data_file {path}: {error.strerror}") from None
    if not data:
        return None
    return already_base64(data) or data


def already_base64(data: bytes) -> bytes | None:
    """What ``data`` decodes to if it is standard base64 (Go's StdEncoding: padded, line
    breaks ignored), else None."""
    text = data.replace(b"\r", b"").replace(b"\n", b"")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def launch_block_device_mappings(ctx: BuildContext) -> list[dict[str, Any]]:
    builder = ctx.builder
    mappings = [_mapping(m) for m in builder.launch_block_device_mappings]
    if builder.no_ephemeral:
        # Packer: empty mappings for xvdca-xvdcz, so no instance store is attached.
        mappings += [{"DeviceName": f"xvdc{c}", "NoDevice": ""} for c in string.ascii_lowercase]
    return mappings


def run_option_parameters(ctx: BuildContext) -> dict[str, Any]:
    """RunInstances parameters of the run options, as Packer's StepRunSourceInstance sends them."""
    builder = ctx.builder
    placement: dict[str, Any] = {}
    zone = network(ctx).availability_zone
    if zone:
        placement["AvailabilityZone"] = zone
    for field, key in (
        ("host_resource_group_arn", "HostResourceGroupArn"),
        ("host_id", "HostId"),
        ("tenancy", "Tenancy"),
    ):
        value = getattr(builder.placement, field)
        if value:
            placement[key] = value
    params: dict[str, Any] = {
        "EbsOptimized": builder.ebs_optimized,
        "EnclaveOptions": {"Enabled": builder.enable_nitro_enclave},
    }
    if placement:
        params["Placement"] = placement
    if builder.enable_unlimited_credits:
        params["CreditSpecification"] = {"CpuCredits": "unlimited"}
    elif BURSTABLE_RE.match(builder.instance_type):
        params["CreditSpecification"] = {"CpuCredits": "standard"}
    params["MetadataOptions"] = metadata_options(builder)
    if builder.license_specifications:
        params["LicenseSpecifications"] = [
            {"LicenseConfigurationArn": arn} for arn in builder.license_specifications
        ]
    target: dict[str, str] = {}
    if builder.capacity_reservation_id:
        target["CapacityReservationId"] = builder.capacity_reservation_id
    if builder.capacity_reservation_group_arn:
        target["CapacityReservationResourceGroupArn"] = builder.capacity_reservation_group_arn
    if target:
        params["CapacityReservationSpecification"] = {"CapacityReservationTarget": target}
    else:
        params["CapacityReservationSpecification"] = {
            "CapacityReservationPreference": builder.capacity_reservation_preference or "none"
        }
    return params


def metadata_options(builder: Any) -> dict[str, Any]:
    """MetadataOptions as Packer sends them (RunInstances and the spot launch template)."""
    metadata = builder.metadata_options
    if metadata.http_endpoint == "enabled":
        options: dict[str, Any] = {
            "HttpEndpoint": metadata.http_endpoint,
            "HttpTokens": metadata.http_tokens,
            "HttpPutResponseHopLimit": metadata.http_put_response_hop_limit,
        }
        if metadata.instance_metadata_tags == "enabled":
            options["InstanceMetadataTags"] = "enabled"
        return options
    # Packer sends nothing then (the service stays on); amibake turns it off as asked.
    options = {"HttpEndpoint": "disabled"}
    if metadata.instance_metadata_tags == "enabled":
        options["InstanceMetadataTags"] = "enabled"
    return options


def _mapping(mapping: Any) -> dict[str, Any]:
    # Packer's BlockDevice semantics (virtual_name, IOPS/throughput by volume type),
    # shared with ami_block_device_mappings.
    from amibake.core.engine.steps.images import ec2_block_device_mapping

    return ec2_block_device_mapping(mapping)


async def describe_instance(ctx: BuildContext, instance_id: str) -> dict[str, Any]:
    try:
        found = await ctx.aws.call(ctx.region, "DescribeInstances", InstanceIds=[instance_id])
    except AwsError as error:
        # Right after RunInstances, EC2 may not know the id yet (eventual consistency).
        if error.code == "InvalidInstanceID.NotFound":
            return {"InstanceId": instance_id, "State": {"Name": "pending"}}
        raise
    instance: dict[str, Any] = found["Reservations"][0]["Instances"][0]
    return instance


def ssh_address(ctx: BuildContext, instance: dict[str, Any]) -> str:
    builder = ctx.builder
    if builder.ssh_host:
        return builder.ssh_host
    choices = {
        "public_ip": instance.get("PublicIpAddress"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_dns": instance.get("PublicDnsName"),
        "private_dns": instance.get("PrivateDnsName"),
        "ipv6": ipv6_address(instance),
        # SSH goes through the SSM tunnel's local end (ConnectStep), as Packer's "localhost"
        "session_manager": "localhost",
    }
    if builder.ssh_interface:
        address = choices[builder.ssh_interface]
        if not address:
            wanted = builder.ssh_interface.replace("_", " ")
            local = ctx.options.target is not None and ctx.options.target.is_loopback
            why = " (the local cloud hands out IPv4 loopback addresses only)" if local else ""
            raise AmibakeError(
                f"instance {instance['InstanceId']} has no {wanted} (ssh_interface){why}"
            )
        return address
    address = choices["public_ip"] or choices["private_ip"]
    if not address:
        raise AmibakeError(f"instance {instance['InstanceId']} has no IP address to connect to")
    return address


def ipv6_address(instance: dict[str, Any]) -> str | None:
    """The instance's IPv6 address (``ssh_interface = "ipv6"``), if it has one."""
    if instance.get("Ipv6Address"):
        return str(instance["Ipv6Address"])
    for nic in instance.get("NetworkInterfaces") or ():
        for entry in nic.get("Ipv6Addresses") or ():
            if entry.get("Ipv6Address"):
                return str(entry["Ipv6Address"])
    return None


async def delete_leftover_volumes(ctx: BuildContext) -> None:
    """Volumes the build's instance left behind (DeleteOnTermination false), found by tag."""
    # many builds' lookups at once go as one DescribeVolumes listing every build (issue 16)
    volumes = await lookup_by_filter(
        ctx.aws, ctx.region, "DescribeVolumes", "Volumes",
        name=f"tag:{TAG_BUILD_ID}", value=ctx.build_id, key_of=tag_values(TAG_BUILD_ID),
        Filters=[{"Name": "status", "Values": ["available"]}],
    )  # fmt: skip
    for volume in volumes:
        volume_id = volume["VolumeId"]
        ctx.resource("volume", volume_id, "deleting")
        await ctx.aws.call(ctx.region, "DeleteVolume", VolumeId=volume_id)
        await ctx.deleted("volume", volume_id)


async def launched_by_token(ctx: BuildContext, *, certain: bool = True) -> str | None:
    """The instance RunInstances created for this build, found by the tags it was launched with.

    ``certain`` False (the launch's outcome is unknown): one negative answer proves nothing,
    so look again while the consistency policy allows; found nothing even then, the ledger's
    intent stays open for ``amibake sweep`` instead of being settled."""

    async def lookup() -> str | None:
        found = await ctx.aws.call(ctx.region, "DescribeInstances", Filters=[ctx.build_filter()])
        for reservation in found.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance["State"]["Name"] != "terminated":
                    return str(instance["InstanceId"])
        return None

    instance_id = await find_until_certain(lookup, certain=certain)
    if instance_id is None:
        if certain:
            await ctx.settled("instance")
        else:
            ctx.say(
                "The launch's outcome is unknown and no instance of the build was found; "
                f"the ledger keeps it: run 'amibake sweep --region {ctx.region}' later",
                "warning",
            )
    return instance_id
