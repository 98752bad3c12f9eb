"""Find the source AMI: an exact id, or a filter with owners (and most_recent)."""

from __future__ import annotations

from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.runner import Step
from amibake.core.errors import AmibakeError
from amibake.core.model import SourceAmiFilter


class SourceAmiStep(Step):
    name = "source-ami"
    title = "Finding the source AMI"

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        if builder.source_ami and builder.source_ami_filter is not None:
            # Packer sends one DescribeImages with the id and the filter together
            # (step_source_ami_info.go): the given id must also match the filter.
            spec = builder.source_ami_filter
            images = await ctx.aws.collect(
                ctx.region,
                "DescribeImages",
                "Images",
                ImageIds=[builder.source_ami],
                **filter_query(spec),
            )
            image = choose_image(images, spec, ctx.region)
        elif builder.source_ami:
            found = await ctx.aws.call(ctx.region, "DescribeImages", ImageIds=[builder.source_ami])
            images = found.get("Images", [])
            if not images:
                raise AmibakeError(f"source AMI {builder.source_ami} not found in {ctx.region}")
            image = images[0]
        else:
            image = await self._by_filter(ctx)
        if image.get("State") != "available":
            raise AmibakeError(
                f"source AMI {image['ImageId']} is {image.get('State')}, not available"
            )
        ctx.source_image = image
        ctx.say(f"Found source AMI {image['ImageId']} ({image.get('Name')})")

    @staticmethod
    async def _by_filter(ctx: BuildContext) -> dict[str, Any]:
        spec = ctx.builder.source_ami_filter
        assert spec is not None  # the template loader guarantees one source
        images = await ctx.aws.collect(ctx.region, "DescribeImages", "Images", **filter_query(spec))
        return choose_image(images, spec, ctx.region)


def filter_query(spec: SourceAmiFilter) -> dict[str, Any]:
    """DescribeImages parameters of a ``source_ami_filter`` (also ``data "amazon-ami"``)."""
    return {
        "Owners": list(spec.owners),
        "Filters": [{"Name": k, "Values": [v]} for k, v in spec.filters.items()],
        "IncludeDeprecated": spec.include_deprecated,
    }


def choose_image(
    images: list[dict[str, Any]], spec: SourceAmiFilter, region: str
) -> dict[str, Any]:
    """The image a filter selects: the only match, or the newest with ``most_recent``."""
    described = ", ".join(f"{k}={v}" for k, v in spec.filters.items())
    owners = ", ".join(spec.owners)
    if not images:
        raise AmibakeError(f"no AMI in {region} matches filter {{{described}}} owned by [{owners}]")
    images = sorted(images, key=lambda i: i.get("CreationDate", ""), reverse=True)
    if len(images) > 1 and not spec.most_recent:
        listed = "; ".join(
            f"{i['ImageId']} {i.get('Name')} ({i.get('CreationDate', '')[:10]})" for i in images[:5]
        )
        more = f" and {len(images) - 5} more" if len(images) > 5 else ""
        raise AmibakeError(
            f"{len(images)} AMIs match filter {{{described}}}: {listed}{more}; "
            "set most_recent = true or narrow the filter"
        )
    return images[0]
