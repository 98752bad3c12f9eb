"""Options several subcommands share, parsed in one place.

``--var``/``--var-file`` (validate, inspect, build) and the target options
``--local``/``--profile``/``--region`` (build, sweep, validate ``--evaluate-datasources``),
with the data-source resolver those target options select. The target options may also
come before the command (``amibake --local sweep``): :func:`merge_target_options` hands
them to it. Never imports textual.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from amibake.core.templates import load

if TYPE_CHECKING:
    from amibake.core.datasources_aws import AwsResolver
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.model import BuildSpec


def parse_var(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--var`` (the value may hold ``=``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got `{text}`")
    return name.strip(), value


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """``--var`` and ``--var-file``, the same for validate, inspect and build."""
    parser.add_argument(
        "--var",
        action="append",
        type=parse_var,
        metavar="NAME=VALUE",
        help="set a variable (repeatable; applied after every var file, as Packer does)",
    )
    parser.add_argument(
        "--var-file",
        action="append",
        metavar="FILE",
        help="read variables from a JSON, HCL or TOML file (repeatable, in order; a folder's "
        "*.auto.pkrvars.hcl/json come first)",
    )


#: The target options: on every command that talks to a target, and before any command.
TARGET_OPTIONS = ("local", "profile", "region")


def add_target_options(
    parser: argparse.ArgumentParser,
    *,
    local: str,
    profile: str,
    region: str,
    region_group: Any = None,
    regions: bool = False,
) -> None:
    """``--local``, ``--profile`` and ``--region`` with each command's own help text.

    ``regions``: ``--region`` is repeatable (a list); ``region_group``: the mutually
    exclusive group it belongs to (e.g. with sweep's ``--all-regions``).
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help=local)
    where.add_argument("--profile", help=profile)
    into = region_group if region_group is not None else parser
    if regions:
        into.add_argument("--region", action="append", default=[], metavar="REGION", help=region)
    else:
        into.add_argument("--region", help=region)


def add_global_target_options(parser: argparse.ArgumentParser) -> Any:
    """The target options before the command (``amibake --local sweep``); returns their group."""
    group = parser.add_argument_group("target (the terminal app, or any command that takes one)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        dest="global_local",
        action="store_true",
        help="work on the embedded local cloud (no AWS account)",
    )
    where.add_argument("--profile", dest="global_profile", help="work with this AWS profile")
    group.add_argument("--region", dest="global_region", help="start in (work in) this region")
    return group


def merge_target_options(args: argparse.Namespace) -> None:
    """Give the command the target options written before it (``amibake --local sweep``).

    An option given both before and after the command: the one after wins. A command
    that talks to no target refuses them rather than ignoring them; so do ``--local``
    and ``--profile`` together.
    """
    from amibake.core.errors import UsageError

    command = getattr(args, "command", None)
    given = {
        name: getattr(args, f"global_{name}", None)
        for name in TARGET_OPTIONS
        if getattr(args, f"global_{name}", None)
    }
    if command is not None and given and not hasattr(args, "local"):
        options = " ".join(f"--{name}" for name in given)
        raise UsageError(f"'amibake {command}' works on no target: {options} does not apply")
    for name in TARGET_OPTIONS:
        top = given.get(name)
        mine = getattr(args, name, None)
        if isinstance(mine, list):
            setattr(args, name, mine or ([top] if top else []))
        elif not mine:
            setattr(args, name, top if top is not None else (False if name == "local" else None))
    if args.local and args.profile:
        raise UsageError("--local and --profile name two targets: give one")


def load_template(
    args: argparse.Namespace, *, warn_undeclared_vars: bool = True, datasources: Any = None
) -> BuildSpec:
    """The spec of ``args.template`` (a file or a folder) with the command's variables.

    ``datasources``: a resolver evaluating the template's data sources (build,
    ``validate --evaluate-datasources``); without one they are checked by shape only.
    """
    return load(
        args.template,
        vars=list(getattr(args, "var", None) or []),
        var_files=list(getattr(args, "var_file", None) or []),
        warn_undeclared_vars=warn_undeclared_vars,
        datasources=datasources,
    )


def datasource_resolver(
    args: argparse.Namespace, started: list[LocalCloud], latency: str
) -> AwsResolver:
    """The resolver of the command's target (the target options) for the data sources.

    With ``--local`` the local cloud starts (at ``latency``) only when a data source
    needs it; it is appended to ``started`` for the command to reuse and stop.
    """
    from amibake.core.datasources_aws import resolver_for

    if not args.local:
        return resolver_for(
            profile=args.profile,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
            region=args.region,
        )

    def start_cloud() -> LocalCloud:
        if not started:
            from amibake.core.local.cloud import LocalCloud

            started.append(LocalCloud(latency=latency).start())
        return started[0]

    return resolver_for(local_cloud=start_cloud, region=args.region)
