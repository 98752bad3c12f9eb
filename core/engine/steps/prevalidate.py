"""Check what can be checked before anything is created: credentials, regions, the AMI name."""

from __future__ import annotations

import asyncio

from core.engine.context import BuildContext
from core.engine.runner import Step
from core.errors import AmibakeError


class PreValidateStep(Step):
    name = "prevalidate"
    title = "Checking credentials, regions and the AMI name"

    async def run(self, ctx: BuildContext) -> None:
        identity = await ctx.aws.caller_identity(ctx.region)
        ctx.account_id = identity.get("Account")
        ctx.say(f"Using account {ctx.account_id} in {ctx.region}")
        regions = await ctx.aws.call(ctx.region, "DescribeRegions")
        available = {r["RegionName"] for r in regions.get("Regions", [])}
        wanted = [ctx.region, *ctx.builder.ami_regions]
        missing = [r for r in wanted if r not in available]
        if missing:
            raise AmibakeError(
                f"region(s) {', '.join(missing)} not available to this account "
                "(not enabled, or not a commercial region)"
            )
        if ctx.builder.skip_create_ami:
            return
        force = ctx.builder.force_deregister or ctx.options.force
        taken = await asyncio.gather(*(self._image_named(ctx, r) for r in dict.fromkeys(wanted)))
        for region, image_id in zip(dict.fromkeys(wanted), taken, strict=True):
            if image_id is None:
                continue
            if not force:
                raise AmibakeError(
                    f"an AMI named {ctx.builder.ami_name!r} already exists in {region} "
                    f"({image_id}); set force_deregister or use --force"
                )
            ctx.say(f"AMI {image_id} in {region} has the same name and will be replaced (force)")

    @staticmethod
    async def _image_named(ctx: BuildContext, region: str) -> str | None:
        found = await ctx.aws.call(
            region,
            "DescribeImages",
            Owners=["self"],
            Filters=[{"Name": "name", "Values": [ctx.builder.ami_name]}],
        )
        images = found.get("Images", [])
        return images[0]["ImageId"] if images else None
