"""``amibake sweep``: delete what interrupted or failed builds left behind."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from amibake.core.errors import AmibakeError, UsageError
from amibake.tui.cli.options import add_target_options

if TYPE_CHECKING:
    from amibake.core.aws import Target
    from amibake.core.ledger import Ledger, LedgerBuild


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="delete resources left behind by interrupted or failed builds",
        description="Find temporary resources of amibake builds (through the ledger and through "
        "amibake's tags) and delete them in the right order. AMIs of successful builds are "
        "never touched.",
    )
    where = parser.add_mutually_exclusive_group()
    add_target_options(
        parser,
        local="sweep the embedded local cloud (what its builds left behind)",
        profile="AWS profile (default: boto3's credential chain)",
        region="sweep this region (repeatable; default: the regions the ledger "
        "names, and your default region)",
        region_group=where,
        regions=True,
    )
    where.add_argument("--all-regions", action="store_true", help="sweep every enabled region")
    parser.add_argument("--build", metavar="ID", help="only this build's resources")
    parser.add_argument(
        "--older-than", metavar="AGE", help="only resources older than this (e.g. 30m, 2h, 1d)"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    parser.set_defaults(handler=sweep_command)


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def sweep_command(args: argparse.Namespace) -> int:
    from amibake.core.aws import Target
    from amibake.core.ledger import Ledger
    from amibake.core.sweep import parse_age

    older_than = parse_age(args.older_than) if args.older_than else None
    cloud = None
    if args.local:  # the local cloud keeps its resources on disk between runs
        from amibake.core.local.cloud import LocalCloud
        from amibake.core.targets import local_target

        cloud = LocalCloud(latency="instant").start()
        target = local_target(cloud)
    else:
        target = Target(profile=args.profile, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    ledger = Ledger()
    try:
        return asyncio.run(_sweep(args, ledger, target, older_than))
    finally:
        ledger.close()
        if cloud is not None:
            cloud.stop()


async def _sweep(
    args: argparse.Namespace, ledger: Any, target: Any, older_than: float | None
) -> int:
    from amibake.core.aws import Aws
    from amibake.core.sweep import Sweeper

    aws = Aws(target)
    try:
        regions = await _regions(args, ledger, aws)
        known = ledger.build(args.build) if args.build else None
        sweeper = Sweeper(
            aws,
            ledger=ledger,
            build_id=args.build,
            older_than=older_than,
            dry_run=args.dry_run,
            say=lambda text: print(text, flush=True),
        )
        report = await sweeper.sweep(regions)
    finally:
        aws.close()
    where = ", ".join(regions)
    if args.build and known is None and args.build not in sweeper.seen:
        raise UsageError(
            f"unknown build {args.build}: not in the ledger and nothing in {where} carries its tag"
        )
    if args.dry_run:
        print(f"dry run: {len(report.found)} resource(s) would be deleted in {where}")
        return 0
    print(
        f"swept {len(report.deleted)} resource(s) in {where}"
        + (f"; {len(report.failed)} could not be deleted" if report.failed else "")
    )
    if report.failed:
        raise AmibakeError(f"{len(report.failed)} resource(s) could not be deleted (see above)")
    return 0


async def _regions(args: argparse.Namespace, ledger: Any, aws: Any) -> list[str]:
    if args.region:
        return list(dict.fromkeys(args.region))
    home = default_region()
    if args.all_regions:
        found = await aws.call(home, "DescribeRegions")
        return sorted(r["RegionName"] for r in found.get("Regions", []))
    regions = [home]
    for build in ledger.unfinished_builds(aws.target):
        if args.build is None or build.build_id == args.build:
            regions.extend(build.regions)
    return list(dict.fromkeys(regions))


def recovery_notice(
    ledger: Ledger, target: Target, stream: TextIO = sys.stderr
) -> list[LedgerBuild]:
    """Tell the user about builds an earlier run left unfinished on ``target``; returns them."""
    unfinished = ledger.unfinished_builds(target)
    if unfinished:
        names = ", ".join(b.build_id for b in unfinished[:3])
        more = f" and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
        count = sum(len(b.outstanding) for b in unfinished)
        print(
            f"amibake: {len(unfinished)} unfinished build(s) from an earlier run left {count} "
            f"resource(s) ({names}{more}): run 'amibake sweep' or add --recover",
            file=stream,
        )
    return unfinished
