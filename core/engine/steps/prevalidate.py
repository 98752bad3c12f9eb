"""Check what can be checked before anything is created: the local files the template names,
credentials, regions, the instance profile, the AMI name."""

from __future__ import annotations

import asyncio
from typing import Any

from amibake.core.aws import AwsError
from amibake.core.engine.access import describe_access
from amibake.core.engine.context import BuildContext
from amibake.core.engine.local_files import check_local_files
from amibake.core.engine.runner import Step
from amibake.core.engine.steps.credentials import warn_if_expiring
from amibake.core.engine.waiters import lookup_by_filter
from amibake.core.errors import AmibakeError


class PreValidateStep(Step):
    name = "prevalidate"
    title = "Checking credentials, regions and the AMI name"

    async def run(self, ctx: BuildContext) -> None:
        check_local_files(ctx.spec, ctx.builder)
        access = describe_access(ctx.aws.target)
        if access:
            ctx.say(access)
        wanted = list(dict.fromkeys([ctx.region, *ctx.builder.ami_regions]))
        # The checks are independent reads: they are sent together (issue 16), and what the
        # build says and which failure it reports follow the order below (Packer's), never
        # which answer came first. A check is awaited only once those before it passed.
        expiring = asyncio.create_task(warn_if_expiring(ctx))  # issue 10
        account = asyncio.create_task(self._account(ctx))
        regions = asyncio.create_task(self._regions_available(ctx, wanted))
        profile = asyncio.create_task(self._instance_profile_exists(ctx))
        names = asyncio.create_task(self._names_taken(ctx, wanted, regions))
        checks = (expiring, account, regions, profile, names)
        try:
            await expiring
            await account
            if not ctx.builder.access.skip_credential_validation:
                ctx.say(f"Using account {ctx.account_id} in {ctx.region}")
            await regions
            await profile
            taken = await names
        finally:
            _stop(checks)  # after a failure (or a cancel) the later checks stop
        force = ctx.builder.force_deregister or ctx.options.force
        for region, image_id in taken:
            if not force:
                raise AmibakeError(
                    f"an AMI named {ctx.builder.ami_name!r} already exists in {region} "
                    f"({image_id}); set force_deregister or use --force"
                )
            ctx.say(f"AMI {image_id} in {region} has the same name and will be replaced (force)")

    @staticmethod
    async def _account(ctx: BuildContext) -> None:
        if ctx.builder.access.skip_credential_validation:
            return
        identity = await ctx.aws.caller_identity(ctx.region)
        ctx.account_id = identity.get("Account")

    @staticmethod
    async def _regions_available(ctx: BuildContext, wanted: list[str]) -> None:
        if ctx.builder.skip_region_validation:
            return
        regions = await ctx.aws.call(ctx.region, "DescribeRegions")
        available = {r["RegionName"] for r in regions.get("Regions", [])}
        missing = [r for r in wanted if r not in available]
        if missing:
            raise AmibakeError(
                f"region(s) {', '.join(missing)} not available to this account "
                "(not enabled, or not a commercial region)"
            )

    async def _names_taken(
        self, ctx: BuildContext, wanted: list[str], regions: asyncio.Task[None]
    ) -> list[tuple[str, str]]:
        """(region, image id) of the AMIs that already have the build's AMI name. The build's
        own region is asked at once; the ``ami_regions`` once the regions check passed (a
        region that does not exist would only answer after the client's retries)."""
        if ctx.builder.skip_create_ami:
            return []
        here = asyncio.create_task(self._image_named(ctx, ctx.region))
        try:
            await asyncio.shield(regions)  # its own failure is reported by its own check
            others = await asyncio.gather(*(self._image_named(ctx, r) for r in wanted[1:]))
            found = [await here, *others]
        finally:
            _stop((here,))
        return [(r, image_id) for r, image_id in zip(wanted, found, strict=True) if image_id]

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


def _stop(tasks: tuple[asyncio.Task[Any], ...]) -> None:
    """Cancel the checks still running; an outcome nobody awaited is read here (so asyncio
    does not log it as never retrieved): only the first failure in order is reported."""
    for task in tasks:
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()
