"""Launch the temporary instance and wait for it to run; terminate it (and its volumes) after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.aws import AwsError
from core.engine.context import BuildContext
from core.engine.runner import Step
from core.engine.waiters import PollPolicy, poll
from core.errors import AmibakeError


class LaunchInstanceStep(Step):
    name = "instance"
    title = "Launching the instance"

    def __init__(self) -> None:
        self.launched: str | None = None

    async def run(self, ctx: BuildContext) -> None:
        params = launch_parameters(ctx)
        row = await ctx.intend("instance", params["ClientToken"])
        reservation = await ctx.aws.call(ctx.region, "RunInstances", **params)
        instance_id = reservation["Instances"][0]["InstanceId"]
        self.launched = ctx.instance_id = instance_id
        await ctx.created(row, "instance", instance_id, detail=ctx.builder.instance_type)
        ctx.say(f"Launched instance {instance_id}; waiting for it to run")
        instance = await poll(
            lambda: describe_instance(ctx, instance_id),
            lambda i: i["State"]["Name"] == "running",
            what=f"instance {instance_id} to be running",
            policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
            failed=lambda i: (
                f"it is {i['State']['Name']} ({i.get('StateReason', {}).get('Message', '')})"
                if i["State"]["Name"] in ("shutting-down", "terminated", "stopped")
                else None
            ),
        )
        ctx.instance = instance
        for mapping in instance.get("BlockDeviceMappings", []):
            volume_id = mapping.get("Ebs", {}).get("VolumeId")
            if volume_id:
                await ctx.found("volume", volume_id, detail=f"attached to {instance_id}")
        ctx.ssh_host = ssh_address(ctx, instance)
        ctx.resource("instance", instance_id, "created", detail=ctx.ssh_host)
        ctx.say(f"Instance {instance_id} is running at {ctx.ssh_host}")

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.launched is None:
            # Killed or cancelled while RunInstances was in flight? The ClientToken tells.
            self.launched = await launched_by_token(ctx)
            if self.launched is None:
                return
        instance_id = self.launched
        ctx.resource("instance", instance_id, "deleting")
        try:
            await ctx.aws.call(ctx.region, "TerminateInstances", InstanceIds=[instance_id])
        except AwsError as error:
            if error.code != "InvalidInstanceID.NotFound":
                raise
        await poll(
            lambda: describe_instance(ctx, instance_id),
            lambda i: i["State"]["Name"] == "terminated",
            what=f"instance {instance_id} to terminate",
            policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
        )
        await ctx.deleted("instance", instance_id)
        self.launched = None
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
        "TagSpecifications": [
            ctx.tag_specification(
                "instance", {"Name": "amibake builder"}, ctx.render_tags(builder.run_tags)
            ),
            # Packer tags the launched volumes with run_volume_tags only, not run_tags.
            ctx.tag_specification("volume"),
        ],
    }
    if ctx.key_name:
        params["KeyName"] = ctx.key_name
    if builder.associate_public_ip_address is not None:
        interface: dict[str, Any] = {
            "DeviceIndex": 0,
            "AssociatePublicIpAddress": builder.associate_public_ip_address,
            "Groups": ctx.security_group_ids,
            "DeleteOnTermination": True,
        }
        if builder.subnet_id:
            interface["SubnetId"] = builder.subnet_id
        params["NetworkInterfaces"] = [interface]
    else:
        params["SecurityGroupIds"] = ctx.security_group_ids
        if builder.subnet_id:
            params["SubnetId"] = builder.subnet_id
    if builder.iam_instance_profile:
        params["IamInstanceProfile"] = {"Name": builder.iam_instance_profile}
    user_data = builder.user_data
    if builder.user_data_file:
        path = Path(builder.user_data_file)
        if not path.is_absolute() and ctx.spec.source_file is not None:
            path = ctx.spec.source_file.parent / path
        try:
            user_data = path.read_text(encoding="utf-8")
        except OSError as error:
            raise AmibakeError(f"cannot read user_data_file {path}: {error.strerror}") from None
    if user_data:
        params["UserData"] = user_data
    if builder.launch_block_device_mappings:
        params["BlockDeviceMappings"] = [_mapping(m) for m in builder.launch_block_device_mappings]
    return params


def _mapping(mapping: Any) -> dict[str, Any]:
    if mapping.no_device:
        return {"DeviceName": mapping.device_name, "NoDevice": ""}
    ebs: dict[str, Any] = {"DeleteOnTermination": mapping.delete_on_termination}
    for field, key in (
        ("volume_size", "VolumeSize"),
        ("volume_type", "VolumeType"),
        ("iops", "Iops"),
        ("throughput", "Throughput"),
        ("encrypted", "Encrypted"),
        ("kms_key_id", "KmsKeyId"),
        ("snapshot_id", "SnapshotId"),
    ):
        value = getattr(mapping, field)
        if value is not None:
            ebs[key] = value
    return {"DeviceName": mapping.device_name, "Ebs": ebs}


async def describe_instance(ctx: BuildContext, instance_id: str) -> dict[str, Any]:
    try:
        found = await ctx.aws.call(ctx.region, "DescribeInstances", InstanceIds=[instance_id])
    except AwsError as error:
        # Right after RunInstances, EC2 may not know the id yet (eventual consistency).
        if error.code == "InvalidInstanceID.NotFound":
            return {"InstanceId": instance_id, "State": {"Name": "pending"}}
        raise
    return found["Reservations"][0]["Instances"][0]


def ssh_address(ctx: BuildContext, instance: dict[str, Any]) -> str:
    builder = ctx.builder
    if builder.ssh_host:
        return builder.ssh_host
    choices = {
        "public_ip": instance.get("PublicIpAddress"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_dns": instance.get("PublicDnsName"),
        "private_dns": instance.get("PrivateDnsName"),
    }
    if builder.ssh_interface:
        address = choices[builder.ssh_interface]
        if not address:
            wanted = builder.ssh_interface.replace("_", " ")
            raise AmibakeError(f"instance {instance['InstanceId']} has no {wanted} (ssh_interface)")
        return address
    address = choices["public_ip"] or choices["private_ip"]
    if not address:
        raise AmibakeError(f"instance {instance['InstanceId']} has no IP address to connect to")
    return address


async def delete_leftover_volumes(ctx: BuildContext) -> None:
    """Volumes the build's instance left behind (DeleteOnTermination false), found by tag."""
    volumes = await ctx.aws.call(
        ctx.region,
        "DescribeVolumes",
        Filters=[ctx.build_filter(), {"Name": "status", "Values": ["available"]}],
    )
    for volume in volumes.get("Volumes", []):
        volume_id = volume["VolumeId"]
        ctx.resource("volume", volume_id, "deleting")
        await ctx.aws.call(ctx.region, "DeleteVolume", VolumeId=volume_id)
        await ctx.deleted("volume", volume_id)


async def launched_by_token(ctx: BuildContext) -> str | None:
    """The instance RunInstances created for this build, found by the tags it was launched with."""
    found = await ctx.aws.call(ctx.region, "DescribeInstances", Filters=[ctx.build_filter()])
    for reservation in found.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance["State"]["Name"] != "terminated":
                return str(instance["InstanceId"])
    await ctx.settled("instance")
    return None
