"""Options several subcommands share, parsed in one place.

``--var``/``--var-file`` (validate, inspect, build) and the target options
``--local``/``--profile``/``--region`` (build, validate ``--evaluate-datasources``),
with the data-source resolver those target options select. Never imports textual.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from core.templates import load

if TYPE_CHECKING:
    from core.datasources_aws import AwsResolver
    from core.local.cloud import LocalCloud
    from core.model import BuildSpec


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


def add_target_options(
    parser: argparse.ArgumentParser, *, local: str, profile: str, region: str
) -> None:
    """``--local``, ``--profile`` and ``--region`` with each command's own help text."""
    parser.add_argument("--local", action="store_true", help=local)
    parser.add_argument("--profile", help=profile)
    parser.add_argument("--region", help=region)


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
    from core.datasources_aws import resolver_for

    if not args.local:
        return resolver_for(
            profile=args.profile,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
            region=args.region,
        )

    def start_cloud() -> LocalCloud:
        if not started:
            from core.local.cloud import LocalCloud

            started.append(LocalCloud(latency=latency).start())
        return started[0]

    return resolver_for(local_cloud=start_cloud, region=args.region)
