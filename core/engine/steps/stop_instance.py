"""Stop the instance so its root volume is consistent for the snapshot."""

from __future__ import annotations

from core.engine.context import BuildContext
from core.engine.runner import Step
from core.engine.steps.instance import describe_instance
from core.engine.waiters import PollPolicy, poll


class StopInstanceStep(Step):
    name = "stop"
    title = "Stopping the instance"

    def applies(self, ctx: BuildContext) -> bool:
        return not ctx.builder.skip_create_ami

    async def run(self, ctx: BuildContext) -> None:
        assert ctx.instance_id is not None
        communicator, ctx.communicator = ctx.communicator, None
        if communicator is not None:
            await communicator.close()
        await ctx.aws.call(ctx.region, "StopInstances", InstanceIds=[ctx.instance_id])
        await poll(
            lambda: describe_instance(ctx, ctx.instance_id or ""),
            lambda i: i["State"]["Name"] == "stopped",
            what=f"instance {ctx.instance_id} to stop",
            policy=PollPolicy.from_template(ctx.builder.aws_polling, timeout=900),
        )
        ctx.say(f"Instance {ctx.instance_id} stopped")
