"""Create the AMI, copy it to other regions, set its permissions; on failure remove every one.

Packer leaks an AMI still pending when a build is cancelled during "waiting for
AMI", and region copies in flight. Here every image and snapshot the build
makes carries its build-id tag from the call that creates it, so cleanup finds
them all, pending or not, even if the create call's answer was never received.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime
from typing import Any

from amibake.core.aws import AwsError
from amibake.core.engine.context import TAG_ARTIFACT, BuildContext
from amibake.core.engine.retry import (
    PATIENT_POLICY,
    STOPPED_POLICY,
    UNCERTAIN_CODES,
    CreateCall,
    call_until_visible,
    codes_for,
    until_visible,
)
from amibake.core.engine.runner import Step
from amibake.core.engine.waiters import (
    AMI_GONE,
    COPY_QUOTA_CODES,
    PollPolicy,
    delete_when_free,
    wait_for_state,
)
from amibake.core.model import BlockDeviceMapping


def ec2_block_device_mapping(mapping: BlockDeviceMapping) -> dict[str, Any]:
    """One mapping as EC2 takes it, as Packer's BlockDevice.BuildEC2BlockDeviceMapping:
    ``no_device`` suppresses, an ``ephemeral*`` virtual name maps an instance store (any
    other virtual name maps nothing), else an EBS volume; IOPS only for io1/io2/gp3 and
    throughput only for gp3."""
    if mapping.no_device:
        return {"DeviceName": mapping.device_name, "NoDevice": ""}
    if mapping.virtual_name:
        if mapping.virtual_name.startswith("ephemeral"):
            return {"DeviceName": mapping.device_name, "VirtualName": mapping.virtual_name}
        return {"DeviceName": mapping.device_name}
    ebs: dict[str, Any] = {"DeleteOnTermination": mapping.delete_on_termination}
    if mapping.volume_type:
        ebs["VolumeType"] = mapping.volume_type
    if mapping.volume_size:
        ebs["VolumeSize"] = mapping.volume_size
    if mapping.iops is not None and mapping.volume_type in ("io1", "io2", "gp3"):
        ebs["Iops"] = mapping.iops
    if mapping.throughput is not None and mapping.volume_type == "gp3":
        ebs["Throughput"] = mapping.throughput
    if mapping.snapshot_id:
        ebs["SnapshotId"] = mapping.snapshot_id
    if mapping.encrypted is not None:
        ebs["Encrypted"] = mapping.encrypted
    if mapping.kms_key_id:
        ebs["KmsKeyId"] = mapping.kms_key_id
    return {"DeviceName": mapping.device_name, "Ebs": ebs}


def intermediary(ctx: BuildContext) -> bool:
    """Packer's intermediary image: ``encrypt_boot`` copies it encrypted, and
    ``skip_save_build_region`` only copies it to the other regions; it is then removed."""
    return bool(ctx.builder.encrypt_boot) or ctx.builder.skip_save_build_region


#: a multi-region KMS key (``mrk-...``), bare or as the key of an ARN (group 1: the ARN's region)
_MULTI_REGION_KEY = re.compile(r"(?:arn:[a-z-]+:kms:([a-z0-9-]*):\d{12}:key/)?mrk-[0-9a-f-]+")


def region_key(ctx: BuildContext, region: str) -> str | None:
    """The KMS key of ``region``'s encrypted copy; None is the region's default EBS key.

    ``region_kms_key_ids[region]`` when given (``""``: the default key). Otherwise
    ``kms_key_id`` in the build region, and in another region only where it can work
    there: a multi-region key (``mrk-...``), whose replica carries the same id (an ARN is
    pointed at ``region``). Packer encrypts such copies with the region's default key,
    which the AMI's users in other accounts cannot launch; amibake keeps the user's key.
    A single-region key cannot encrypt in another region: the default key, said by
    :func:`default_key_note`."""
    keys = ctx.builder.region_kms_key_ids
    if region in keys:
        return keys[region] or None
    key = ctx.builder.kms_key_id
    if not key or region == ctx.region:
        return key or None
    multi = _MULTI_REGION_KEY.fullmatch(key)
    if multi is None:
        return None
    if multi.group(1) is None:
        return key
    start, end = multi.span(1)
    return key[:start] + region + key[end:]


def default_key_note(ctx: BuildContext, region: str) -> str | None:
    """Why ``region``'s encrypted copy falls back to the default key though the user gave
    ``kms_key_id`` (a single-region key, not usable in another region), or None."""
    key = ctx.builder.kms_key_id
    if not key or region == ctx.region or region in ctx.builder.region_kms_key_ids:
        return None
    if region_key(ctx, region) is not None:
        return None
    return (
        f"kms_key_id {key} is a single-region key: the copy in {region} is encrypted with "
        f"{region}'s default EBS key (set region_kms_key_ids, or use a multi-region mrk- key)"
    )


class CreateImageStep(Step):
    name = "create-image"
    title = "Creating the AMI"

    def applies(self, ctx: BuildContext) -> bool:
        return not ctx.builder.skip_create_ami

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        assert ctx.instance_id is not None
        if not builder.skip_save_build_region:  # the build region keeps no AMI of the name
            await replace_same_name(ctx, ctx.region)
        params: dict[str, Any] = {
            "InstanceId": ctx.instance_id,
            "Name": builder.ami_name,
            "TagSpecifications": ctx.artifact_tag_specifications(from_instance=True),
        }
        if builder.ami_block_device_mappings:
            params["BlockDeviceMappings"] = [
                ec2_block_device_mapping(m) for m in builder.ami_block_device_mappings
            ]
        if intermediary(ctx):
            # The AMI users get is a copy (EncryptBootStep, CopyImageStep), which takes the name.
            params["Name"] = unencrypted_name(ctx)
        if ctx.ami_description:
            params["Description"] = ctx.ami_description
        row = await ctx.intend("image", params["Name"])
        image_id = await create_call(
            ctx, ctx.region, "CreateImage", params, row, detail=params["Name"]
        )
        ctx.images[ctx.region] = image_id
        ctx.say(f"Creating AMI {image_id} ({params['Name']}); waiting for it to be available")
        await wait_available(ctx, ctx.region, image_id)

    async def cleanup(self, ctx: BuildContext) -> None:
        if ctx.outcome != "succeeded":
            await remove_build_images(ctx, ctx.region)


def unencrypted_name(ctx: BuildContext) -> str:
    """The intermediate AMI's name under ``encrypt_boot``: unique to the build, <= 128 chars."""
    suffix = f"-unencrypted-{ctx.build_id}"
    return ctx.builder.ami_name[: 128 - len(suffix)] + suffix


class EncryptBootStep(Step):
    """``encrypt_boot``: replace the new AMI by an encrypted copy of it, as Packer does.

    EC2 cannot encrypt an image in place: the instance's image is copied within its
    region with ``Encrypted`` (and ``KmsKeyId`` when given, else the account's default
    EBS key), then the unencrypted intermediate and its snapshots are removed.
    """

    name = "encrypt-boot"
    title = "Encrypting the AMI"

    def applies(self, ctx: BuildContext) -> bool:
        builder = ctx.builder
        return (
            not builder.skip_create_ami
            and bool(builder.encrypt_boot)
            and not builder.skip_save_build_region
        )

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        region = ctx.region
        source_id = ctx.images[region]
        await replace_same_name(ctx, region)
        params: dict[str, Any] = {
            "SourceImageId": source_id,
            "SourceRegion": region,
            "Name": builder.ami_name,
            "Encrypted": True,
            "ClientToken": f"{ctx.build_id}-encrypted",
            "TagSpecifications": ctx.artifact_tag_specifications(from_instance=False),
        }
        key_id = region_key(ctx, region)
        if key_id:
            params["KmsKeyId"] = key_id
        if ctx.ami_description:
            params["Description"] = ctx.ami_description
        row = await ctx.intend("image", params["ClientToken"])
        image_id = await create_call(ctx, region, "CopyImage", params, row, detail=builder.ami_name)
        ctx.images[region] = image_id
        key = key_id or "the default EBS key"
        ctx.say(f"Encrypting {source_id} with {key} as {image_id}; waiting for it")
        intermediate_snapshots = ctx.snapshots.get(region, [])
        await wait_available(ctx, region, image_id)
        await remove_image(ctx, region, source_id, intermediate_snapshots)
        ctx.say(f"Removed the unencrypted intermediate AMI {source_id}")


async def create_call(
    ctx: BuildContext,
    region: str,
    action: str,
    params: dict[str, Any],
    row: int | None = None,
    detail: str | None = None,
) -> str:
    """CreateImage / CopyImage. While the call is unanswered, ``region`` is in
    ``ctx.unanswered_images``: without amibake's tags, cleanup then looks the AMI up by name.

    The call and the record of its answer run as a :class:`CreateCall` (issue 10): a cancel
    while it is in flight does not lose the AMI; the runner waits for the answer before any
    cleanup, and the answer is in the ledger (and in ``ctx.images`` for a region without one).
    CreateImage is tried again while EC2 does not see the instance stopped yet (Packer: for
    up to 15 minutes)."""
    ctx.unanswered_images.add(region)
    # CopyImage: AWS caps concurrent copies per region (ResourceLimitExceeded): wait for a
    # slot as patiently as for a stopped instance (issue 10 item 9).
    retried = codes_for("stopped-instance") if action == "CreateImage" else COPY_QUOTA_CODES

    async def call() -> str:
        try:
            answer = await until_visible(
                lambda: ctx.aws.call(region, action, **params),
                codes=retried,
                policy=STOPPED_POLICY,
                on_retry=lambda error, _: ctx.say(f"Not yet: {error}", "warning"),
            )
        except AwsError as error:
            if error.code not in UNCERTAIN_CODES:
                ctx.unanswered_images.discard(region)  # AWS answered: nothing was created
            raise
        image_id = str(answer["ImageId"])
        ctx.images.setdefault(region, image_id)
        await ctx.created(row, "image", image_id, region, detail=detail)
        return image_id

    image_id = await CreateCall().send(call())
    ctx.unanswered_images.discard(region)
    return image_id


async def remove_image(
    ctx: BuildContext, region: str, image_id: str, snapshot_ids: list[str]
) -> None:
    """Deregister one AMI of this build and delete its snapshots."""
    await deregister(ctx, region, image_id)
    for snapshot_id in snapshot_ids:
        await delete_snapshot(ctx, region, snapshot_id)


async def deregister(ctx: BuildContext, region: str, image_id: str) -> None:
    """Deregister an AMI of this build (pending or not; already gone is fine)."""
    ctx.resource("image", image_id, "deleting", region=region)
    protection = ctx.builder.deregistration_protection
    if protection is not None and protection.enabled:
        # The build may have protected it before failing: lift the protection first.
        # Not protected, gone, or refused: DeregisterImage says which.
        with contextlib.suppress(AwsError):
            await ctx.aws.call(region, "DisableImageDeregistrationProtection", ImageId=image_id)
    await delete_when_free(
        ctx.aws, region, "DeregisterImage", gone=AMI_GONE, what=f"AMI {image_id}", ImageId=image_id
    )
    await ctx.deleted("image", image_id, region)


async def delete_snapshot(ctx: BuildContext, region: str, snapshot_id: str) -> None:
    """Delete a snapshot once the deregistration of its AMI has settled."""
    ctx.resource("snapshot", snapshot_id, "deleting", region=region)
    await delete_when_free(
        ctx.aws,
        region,
        "DeleteSnapshot",
        in_use="InvalidSnapshot.InUse",
        gone=("InvalidSnapshot.NotFound",),
        what=f"snapshot {snapshot_id}",
        SnapshotId=snapshot_id,
    )
    await ctx.deleted("snapshot", snapshot_id, region)


class CopyImageStep(Step):
    name = "copy-image"
    title = "Copying the AMI to other regions"

    def applies(self, ctx: BuildContext) -> bool:
        builder = ctx.builder
        return not builder.skip_create_ami and (
            bool(self.regions(ctx)) or builder.skip_save_build_region
        )

    @staticmethod
    def regions(ctx: BuildContext) -> list[str]:
        return [r for r in dict.fromkeys(ctx.builder.ami_regions) if r != ctx.region]

    async def run(self, ctx: BuildContext) -> None:
        async with asyncio.TaskGroup() as group:
            for region in self.regions(ctx):
                group.create_task(self._copy(ctx, region))
        if ctx.builder.skip_save_build_region:
            # Packer: the intermediary AMI served the copies; the build region keeps none.
            source_id = ctx.images.pop(ctx.region)
            await remove_image(ctx, ctx.region, source_id, ctx.snapshots.pop(ctx.region, []))
            ctx.say(f"Removed the intermediary AMI {source_id} (skip_save_build_region)")

    async def _copy(self, ctx: BuildContext, region: str) -> None:
        builder = ctx.builder
        source_id = ctx.images[ctx.region]
        await replace_same_name(ctx, region)
        params: dict[str, Any] = {
            "SourceImageId": source_id,
            "SourceRegion": ctx.region,
            "Name": builder.ami_name,
            "ClientToken": f"{ctx.build_id}-{region}",
            "TagSpecifications": ctx.artifact_tag_specifications(from_instance=False),
        }
        if builder.encrypt_boot:
            params["Encrypted"] = True
            key_id = region_key(ctx, region)  # None: the destination region's default EBS key
            if key_id:
                params["KmsKeyId"] = key_id
            note = default_key_note(ctx, region)
            if note is not None:
                ctx.say(note, "warning")
        if builder.snapshot_copy_duration_minutes:
            params["SnapshotCopyCompletionDurationMinutes"] = builder.snapshot_copy_duration_minutes
        if ctx.ami_description:
            params["Description"] = ctx.ami_description
        row = await ctx.intend("image", params["ClientToken"], region)
        image_id = await create_call(
            ctx, region, "CopyImage", params, row, detail=f"copy of {source_id}"
        )
        ctx.images[region] = image_id
        ctx.say(f"Copying {source_id} to {region} as {image_id}")
        await wait_available(ctx, region, image_id)

    async def cleanup(self, ctx: BuildContext) -> None:
        if ctx.outcome != "succeeded":
            await asyncio.gather(*(remove_build_images(ctx, r) for r in self.regions(ctx)))


class ImageAttributesStep(Step):
    """Packer's StepEnableDeprecation, StepEnableDeregistrationProtection and
    StepModifyAMIAttributes, on the AMI of every region and its snapshots.

    Deregistration protection comes last: a build that fails after it would have to
    lift it again to clean up (and ``with_cooldown`` keeps an AMI 24 hours more).
    """

    name = "image-attributes"
    title = "Setting the AMI's attributes and permissions"

    def applies(self, ctx: BuildContext) -> bool:
        b = ctx.builder
        protection = b.deregistration_protection is not None and b.deregistration_protection.enabled
        wanted = (
            b.ami_users,
            b.ami_groups,
            b.ami_org_arns,
            b.ami_ou_arns,
            b.ami_product_codes,
            b.snapshot_users,
            b.snapshot_groups,
            b.imds_support,
            b.deprecate_at,
            protection,
        )
        return not b.skip_create_ami and any(wanted)

    async def run(self, ctx: BuildContext) -> None:
        b = ctx.builder
        launch = [{"UserId": u} for u in b.ami_users]
        launch += [{"Group": g} for g in b.ami_groups]
        launch += [{"OrganizationArn": a} for a in b.ami_org_arns]
        launch += [{"OrganizationalUnitArn": a} for a in b.ami_ou_arns]
        modifications: list[dict[str, Any]] = []
        if launch:
            modifications.append({"LaunchPermission": {"Add": launch}})
        if b.ami_product_codes:
            modifications.append({"ProductCodes": list(b.ami_product_codes)})
        if b.imds_support:
            modifications.append({"ImdsSupport": {"Value": b.imds_support}})
        volume: dict[str, Any] = {}
        if b.snapshot_users:
            volume["UserIds"] = list(b.snapshot_users)
        if b.snapshot_groups:
            volume["GroupNames"] = list(b.snapshot_groups)

        async def region_attributes(region: str, image_id: str) -> None:
            if b.deprecate_at:
                moment = datetime.fromisoformat(b.deprecate_at.replace("Z", "+00:00"))
                await ctx.aws.call(
                    region, "EnableImageDeprecation", ImageId=image_id, DeprecateAt=moment
                )
                ctx.say(f"AMI {image_id} in {region} is deprecated from {b.deprecate_at}")
            for change in modifications:
                await ctx.aws.call(region, "ModifyImageAttribute", ImageId=image_id, **change)
            for snapshot_id in ctx.snapshots.get(region, []) if volume else []:
                await ctx.aws.call(
                    region,
                    "ModifySnapshotAttribute",
                    SnapshotId=snapshot_id,
                    Attribute="createVolumePermission",
                    OperationType="add",
                    **volume,
                )

        await asyncio.gather(*(region_attributes(r, i) for r, i in ctx.images.items()))
        if launch:
            shared = ", ".join(next(iter(p.values())) for p in launch)
            ctx.say(f"Shared the AMI(s) with {shared}")
        if volume:
            who = ", ".join([*b.snapshot_users, *b.snapshot_groups])
            ctx.say(f"Shared the AMI's snapshots with {who}")
        protection = b.deregistration_protection
        if protection is not None and protection.enabled:
            for region, image_id in ctx.images.items():
                await ctx.aws.call(
                    region,
                    "EnableImageDeregistrationProtection",
                    ImageId=image_id,
                    WithCooldown=protection.with_cooldown,
                )
                ctx.say(f"AMI {image_id} in {region} is protected from deregistration")


async def wait_available(ctx: BuildContext, region: str, image_id: str) -> None:
    # The region's one waiter (issue 16); an id not visible yet right after creation
    # reads as "not yet".
    image = await wait_for_state(
        ctx.aws,
        region,
        "image",
        image_id,
        "available",
        what=f"AMI {image_id} in {region} to be available",
        policy=PollPolicy.from_template(
            ctx.builder.aws_polling, timeout=3600, default_attempts=120
        ),
        failed_states=("failed", "invalid", "deregistered", "error"),
    )
    snapshots = [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]
    ctx.snapshots[region] = snapshots
    ctx.resource("image", image_id, "created", region=region, detail=ctx.builder.ami_name)
    for snapshot_id in snapshots:
        await ctx.found("snapshot", snapshot_id, region, detail=image_id)
    ctx.say(f"AMI {image_id} is available in {region}")


async def replace_same_name(ctx: BuildContext, region: str) -> None:
    """force_deregister: remove our AMI of the same name (and its snapshots if asked)."""
    builder = ctx.builder
    if not (builder.force_deregister or ctx.options.force):
        return
    found = await ctx.aws.call(
        region,
        "DescribeImages",
        Owners=["self"],
        Filters=[{"Name": "name", "Values": [builder.ami_name]}],
    )
    for image in found.get("Images", []):
        image_id = image["ImageId"]
        await ctx.aws.call(region, "DeregisterImage", ImageId=image_id)
        ctx.say(f"Deregistered the previous AMI {image_id} in {region} (force_deregister)")
        if builder.force_delete_snapshot:
            for mapping in image.get("BlockDeviceMappings", []):
                snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot_id:
                    # Right after DeregisterImage the snapshot is still "in use" for a while
                    # (issue 10): deleted once EC2 lets go of it.
                    await delete_when_free(
                        ctx.aws,
                        region,
                        "DeleteSnapshot",
                        in_use="InvalidSnapshot.InUse",
                        gone=("InvalidSnapshot.NotFound",),
                        what=f"snapshot {snapshot_id}",
                        SnapshotId=snapshot_id,
                    )
                    ctx.say(f"Deleted its snapshot {snapshot_id}")


async def remove_build_images(ctx: BuildContext, region: str) -> None:
    """Deregister every AMI this build made in ``region`` (pending too) and delete its snapshots."""
    known = {ctx.images[region]} if region in ctx.images else set()
    tagged = await ctx.aws.call(
        region, "DescribeImages", Owners=["self"], Filters=[ctx.build_filter()]
    )
    image_ids = known | {i["ImageId"] for i in tagged.get("Images", [])}
    snapshot_ids: set[str] = set()
    if not ctx.options.amibake_tags:
        # Untagged AMIs: the ones whose id the build knows, plus (if a create call went
        # unanswered) the one of the build's name created since the build started.
        for image in await _untagged_images(ctx, region, image_ids):
            image_ids.add(image["ImageId"])
            snapshot_ids.update(
                m["Ebs"]["SnapshotId"]
                for m in image.get("BlockDeviceMappings", [])
                if m.get("Ebs", {}).get("SnapshotId")
            )
    for image_id in sorted(image_ids):
        await deregister(ctx, region, image_id)
    await ctx.settled("image", region)
    snapshots = await ctx.aws.call(
        region, "DescribeSnapshots", OwnerIds=["self"], Filters=[ctx.build_filter()]
    )
    snapshot_ids.update(s["SnapshotId"] for s in snapshots.get("Snapshots", []))
    if not ctx.options.amibake_tags:
        snapshot_ids.update(ctx.snapshots.get(region, ()))
    for snapshot_id in sorted(snapshot_ids):
        await delete_snapshot(ctx, region, snapshot_id)
    ctx.images.pop(region, None)


async def _untagged_images(
    ctx: BuildContext, region: str, image_ids: set[str]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if image_ids:
        described = await ctx.aws.call(
            region,
            "DescribeImages",
            Owners=["self"],
            Filters=[{"Name": "image-id", "Values": sorted(image_ids)}],
        )
        found.extend(described.get("Images", []))
    if region in ctx.unanswered_images:
        names = [ctx.builder.ami_name, unencrypted_name(ctx)]
        described = await ctx.aws.call(
            region, "DescribeImages", Owners=["self"], Filters=[{"Name": "name", "Values": names}]
        )
        started = ctx.started.strftime("%Y-%m-%dT%H:%M:%S")
        found.extend(
            i for i in described.get("Images", []) if i.get("CreationDate", "")[:19] >= started
        )
    return found


class ArtifactsStep(Step):
    """The build succeeded: its AMIs and snapshots become artifacts, which no sweep touches."""

    name = "artifacts"
    title = "Recording the artifacts"

    def applies(self, ctx: BuildContext) -> bool:
        return not ctx.builder.skip_create_ami

    async def run(self, ctx: BuildContext) -> None:
        async def mark(region: str, image_id: str) -> None:
            snapshots = ctx.snapshots.get(region, [])
            if ctx.options.amibake_tags:
                await call_until_visible(  # as Packer tags new AMIs and snapshots
                    ctx.aws,
                    region,
                    "CreateTags",
                    kinds=("image", "snapshot"),
                    # fresh copies' snapshots: Packer retries for about 2 minutes (issue 10)
                    policy=PATIENT_POLICY,
                    Resources=[image_id, *snapshots],
                    Tags=[{"Key": TAG_ARTIFACT, "Value": "true"}],
                )
            # Without the tag, the ledger's "kept" state is what keeps a sweep off them.
            await ctx.kept("image", image_id, region)
            for snapshot_id in snapshots:
                await ctx.kept("snapshot", snapshot_id, region)

        await asyncio.gather(*(mark(r, i) for r, i in ctx.images.items()))
