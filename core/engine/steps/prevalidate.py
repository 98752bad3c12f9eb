"""Check what can be checked before anything is created: credentials, regions, the instance
profile, the AMI name."""

from __future__ import annotations

import asyncio

from core.aws import AwsError
from core.engine.access import describe_access
from core.engine.context import BuildContext
from core.engine.runner import Step
from core.engine.steps.credentials import warn_if_expiring
from core.engine.waiters import lookup_by_filter
from core.errors import AmibakeError


class PreValidateStep(Step):
    name = "prevalidate"
    title = "Checking credentials, regions and the AMI name"

    async def run(self, ctx: BuildContext) -> None:
        await warn_if_expiring(ctx)  # credentials that expire before the build ends (issue 10)
        access = describe_access(ctx.aws.target)
        if access:
            ctx.say(access)
        if not ctx.builder.access.skip_credential_validation:
            identity = await ctx.aws.caller_identity(ctx.region)
            ctx.account_id = identity.get("Account")
            ctx.say(f"Using account {ctx.account_id} in {ctx.region}")
        wanted = [ctx.region, *ctx.builder.ami_regions]
        missing: list[str] = []
        if not ctx.builder.skip_region_validation:
            regions = await ctx.aws.call(ctx.region, "DescribeRegions")
            available = {r["RegionName"] for r in regions.get("Regions", [])}
            missing = [r for r in wanted if r not in available]
        if missing:
            raise AmibakeError(
                f"region(s) {', '.join(missing)} not available to this account "
                "(not enabled, or not a commercial region)"
            )
        await self._instance_profile_exists(ctx)
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
    async def _instance_profile_exists(ctx: BuildContext) -> None:
        """Packer's StepIamInstanceProfile: the template's profile must exist (IAM is global;
        its calls go through the build region's client) unless ``skip_profile_validation``."""
        name = ctx.builder.iam_instance_profile
        if not name or ctx.builder.skip_profile_validation:
            return
        try:
            await ctx.aws.service_call(
                "iam", ctx.region, "GetInstanceProfile", InstanceProfileName=name
            )
        except AwsError as error:
            raise AmibakeError(f"couldn't find the instance profile {name!r}: {error}") from None

    @staticmethod
    async def _image_named(ctx: BuildContext, region: str) -> str | None:
        # many builds' checks at once go as one DescribeImages listing every name (issue 16)
        images = await lookup_by_filter(
            ctx.aws, region, "DescribeImages", "Images",
            name="name", value=ctx.builder.ami_name,
            key_of=lambda image: [str(image.get("Name", ""))], Owners=["self"],
        )  # fmt: skip
        return str(images[0]["ImageId"]) if images else None
