"""Stop the instance so its root volume is consistent for the snapshot; then set the
instance attributes the AMI inherits (``sriov_support``, ``ena_support``).

As Packer's StepStopEBSBackedInstance and StepModifyEBSBackedInstance: both run with
``skip_create_ami`` too (the instance is stopped before it is terminated), and neither
runs for a spot instance, which cannot be stopped.
"""

from __future__ import annotations

from amibake.core.engine.context import BuildContext
from amibake.core.engine.runner import Step
from amibake.core.engine.waiters import PollPolicy, wait_for_stop
from amibake.core.errors import AmibakeError


def is_spot(ctx: BuildContext) -> bool:
    builder = ctx.builder
    # The spot options belong to the run options group; read them only if present.
    return bool(getattr(builder, "spot_price", None)) or bool(
        getattr(builder, "spot_instance_types", ())
    )


class StopInstanceStep(Step):
    name = "stop"
    title = "Stopping the instance"

    def applies(self, ctx: BuildContext) -> bool:
        return not is_spot(ctx)

    async def run(self, ctx: BuildContext) -> None:
        assert ctx.instance_id is not None
        builder = ctx.builder
        wants_modification = builder.ena_support is not None or builder.sriov_support
        if wants_modification:
            check_enhanced_networking(ctx)
        communicator, ctx.communicator = ctx.communicator, None
        if communicator is not None:
            await communicator.close()
        if getattr(builder, "disable_stop_instance", False):
            ctx.say("Automatic instance stop disabled: waiting for the instance to stop itself")
        else:
            await ctx.aws.call(ctx.region, "StopInstances", InstanceIds=[ctx.instance_id])
        await wait_for_stop(  # the region's one waiter; forces a hung stop (issue 16)
            ctx.aws,
            ctx.region,
            ctx.instance_id,
            policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
        )
        ctx.say(f"Instance {ctx.instance_id} stopped")
        if builder.sriov_support:
            # Packer sets "simple" (the only value EC2 knows).
            await ctx.aws.call(
                ctx.region,
                "ModifyInstanceAttribute",
                InstanceId=ctx.instance_id,
                SriovNetSupport={"Value": "simple"},
            )
            ctx.say("Enabled enhanced networking (SR-IOV)")
        if builder.ena_support is not None:
            await ctx.aws.call(
                ctx.region,
                "ModifyInstanceAttribute",
                InstanceId=ctx.instance_id,
                EnaSupport={"Value": builder.ena_support},
            )
            ctx.say(f"{'En' if builder.ena_support else 'Dis'}abled enhanced networking (ENA)")


def check_enhanced_networking(ctx: BuildContext) -> None:
    """Packer's canEnableEnhancedNetworking: ENA and SR-IOV need an HVM image."""
    builder = ctx.builder
    if not (builder.ena_support or builder.sriov_support):
        return  # disabling ENA is fine on any image
    if builder.ami_virtualization_type == "hvm":
        return
    if builder.ami_virtualization_type:
        raise AmibakeError(
            "cannot enable enhanced networking: ami_virtualization_type "
            f"{builder.ami_virtualization_type!r} is not HVM"
        )
    source = ctx.source_image or {}
    if source.get("VirtualizationType", "hvm") != "hvm":
        raise AmibakeError(
            f"cannot enable enhanced networking: source AMI {source.get('ImageId')} is not HVM"
        )
