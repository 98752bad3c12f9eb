"""Post-processors, run by the engine once a build has its AMIs.

``shell-local`` and ``amazon-ami-management`` run per build, in the template's order,
right after the build succeeded (a failure fails the build, as in Packer). ``manifest``
is written once per run for all builds (:func:`write_manifests`), so every entry shares
the run's ``packer_run_uuid`` as in Packer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import with_build_data
from amibake.core.engine.provisioners.local import run_shell_local
from amibake.core.engine.runner import first_user_error
from amibake.core.events import BuildStatus
from amibake.core.model import (
    AmiManagementPostProcessor,
    BuildSpec,
    ManifestPostProcessor,
    ShellLocalPostProcessor,
)


def artifact_id(artifacts: dict[str, str]) -> str:
    """Packer's amazon-ebs artifact id: ``region:ami-...`` pairs joined by commas."""
    return ",".join(f"{region}:{image}" for region, image in sorted(artifacts.items()))


async def post_process(ctx: BuildContext, artifacts: dict[str, str]) -> None:
    """Run this build's ``shell-local`` and ``amazon-ami-management`` post-processors."""
    for index, post in enumerate(ctx.spec.post_processors):
        if not post.applies_to(ctx.builder):
            continue
        if post.name:
            ctx.say(f"Post-processor {index + 1}: {post.name}")
        if isinstance(post, ShellLocalPostProcessor):
            ctx.say(f"Running post-processor {index + 1}: shell-local")
            await run_shell_local(
                ctx,
                None,
                post,
                extra_env={"AMIBAKE_ARTIFACT_ID": artifact_id(artifacts)},
                what="shell-local post-processor",
            )
        elif isinstance(post, AmiManagementPostProcessor):
            ctx.say(f"Running post-processor {index + 1}: amazon-ami-management")
            post = with_build_data(ctx, post, f"amazon-ami-management post-processor {index + 1}")
            regions = post.regions or tuple(artifacts) or (ctx.region,)
            for region in regions:
                await manage_amis(ctx, post, region)
        elif isinstance(post, ManifestPostProcessor):  # written once all builds are over
            filled = with_build_data(ctx, post, f"manifest post-processor {index + 1}")
            ctx.manifest_data[index] = dict(filled.custom_data)


async def run_post_processors(ctx: BuildContext) -> tuple[BuildStatus, BaseException | None]:
    """:func:`post_process` for a build that succeeded: (outcome, error) as ``run_steps``."""
    try:
        await post_process(ctx, dict(ctx.images))
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        ctx.say("Post-processing cancelled; the AMIs stay", "warning")
        return "cancelled", None
    except Exception as error:
        return "failed", first_user_error(error)
    return "succeeded", None


def _created(image: dict[str, Any]) -> datetime:
    text = str(image.get("CreationDate") or "1970-01-01T00:00:00.000Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def manage_amis(ctx: BuildContext, post: AmiManagementPostProcessor, region: str) -> None:
    """Keep the newest ``keep_releases`` (or those younger than ``keep_days``) of the AMIs
    the post-processor manages; deregister the others and delete their snapshots, except an
    AMI still in use (by an instance, a launch template or a launch configuration), which
    is kept and said, as the plugin does."""
    images = await ctx.aws.collect(
        region, "DescribeImages", "Images", Owners=["self"], Filters=post.tag_filters()
    )
    # newest first; on a tie (CreationDate may have whole seconds) this build's own AMI is
    # the newest: it is never the one a release count drops
    mine = set(ctx.images.values())
    images.sort(key=lambda image: (_created(image), image["ImageId"] in mine), reverse=True)
    if post.keep_releases is not None:
        doomed = images[post.keep_releases :]
    else:
        assert post.keep_days is not None
        limit = datetime.now(UTC) - timedelta(days=post.keep_days)
        doomed = [image for image in images if _created(image) < limit]
    if not doomed:
        return
    used = await images_in_use(ctx, region, resolve_aliases=post.resolve_aliases)
    dry = "[DryRun] " if post.dry_run else ""
    for image in doomed:
        image_id = image["ImageId"]
        ctx.say(f"{dry}Deleting image: {image_id} ({region})")
        if image_id in used:
            ctx.say(f"{dry}{image_id} is used in {used[image_id]}: skipped", "warning")
            continue
        if post.dry_run:
            continue
        snapshots = [
            m["Ebs"]["SnapshotId"]
            for m in image.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("SnapshotId")
        ]
        await ctx.aws.call(region, "DeregisterImage", ImageId=image_id)
        for snapshot in snapshots:
            ctx.say(f"Deleting snapshot {snapshot} of {image_id}")
            await ctx.aws.call(region, "DeleteSnapshot", SnapshotId=snapshot)


#: The instance states in which an instance still uses its AMI (the plugin's list).
_USING_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


async def images_in_use(
    ctx: BuildContext, region: str, *, resolve_aliases: bool = False
) -> dict[str, str]:
    """AMI id -> what uses it in ``region``: instances, launch template versions and Auto
    Scaling launch configurations. With ``resolve_aliases`` (the plugin's option, off by
    default) a version whose image is a ``resolve:ssm:`` alias is described alone again with
    ``ResolveAlias`` (EC2 resolves aliases only for one version at a time) and counts for
    the AMI the parameter names; each alias is resolved once."""
    used: dict[str, str] = {}
    reservations = await ctx.aws.collect(
        region,
        "DescribeInstances",
        "Reservations",
        Filters=[{"Name": "instance-state-name", "Values": _USING_STATES}],
    )
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            used.setdefault(instance["ImageId"], f"instance {instance['InstanceId']}")
    templates = await ctx.aws.collect(region, "DescribeLaunchTemplates", "LaunchTemplates")
    resolved: dict[str, str] = {}
    for template in templates:
        versions = await ctx.aws.collect(
            region,
            "DescribeLaunchTemplateVersions",
            "LaunchTemplateVersions",
            LaunchTemplateId=template["LaunchTemplateId"],
        )
        for version in versions:
            image_id = version.get("LaunchTemplateData", {}).get("ImageId")
            if image_id and resolve_aliases and image_id.startswith("resolve:ssm:"):
                if image_id not in resolved:
                    alone = await ctx.aws.collect(
                        region,
                        "DescribeLaunchTemplateVersions",
                        "LaunchTemplateVersions",
                        LaunchTemplateId=template["LaunchTemplateId"],
                        Versions=[str(version["VersionNumber"])],
                        ResolveAlias=True,
                    )
                    if alone:  # none: the alias is kept as it is (not cached), as in the plugin
                        resolved[image_id] = (
                            alone[0].get("LaunchTemplateData", {}).get("ImageId", image_id)
                        )
                image_id = resolved.get(image_id, image_id)
            if image_id:
                name = f"{version['LaunchTemplateName']} ({version['VersionNumber']})"
                used.setdefault(image_id, f"launch template {name}")
    configurations = await ctx.aws.service_call(
        "autoscaling", region, "DescribeLaunchConfigurations"
    )
    for configuration in configurations.get("LaunchConfigurations", []):
        used.setdefault(
            configuration["ImageId"],
            f"launch configuration {configuration['LaunchConfigurationName']}",
        )
    return used


def write_manifests(spec: BuildSpec, results: Sequence[Any]) -> list[Path]:
    """Write each ``manifest`` post-processor's file for the builds it applies to."""
    from amibake.core.history import write_manifest

    written = []
    for index, post in enumerate(spec.post_processors):
        if not isinstance(post, ManifestPostProcessor):
            continue
        # The builds it ran for: only/except and (HCL2) its build block chose them, they
        # succeeded, and so did the post-processors before it (as in Packer, a
        # post-processor runs only on a build's artifact); post_process filled in its
        # custom_data for each.
        mine = [r for r in results if r.artifacts and index in r.manifest_data]
        if not mine:
            continue
        types = {b.name: b.type for b in spec.builders}
        custom = {r.name: r.manifest_data[index] for r in mine}
        written.append(write_manifest(Path(post.output), mine, types, post, custom))
    return written


async def write_manifests_async(spec: BuildSpec, results: Sequence[Any]) -> list[Path]:
    return await asyncio.to_thread(write_manifests, spec, results)
