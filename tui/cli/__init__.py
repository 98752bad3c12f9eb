"""The ``amibake`` entry point.

Subcommands are headless (``amibake local serve``, ``amibake validate`` ...);
each lives in a module of this package. User errors print one line on
stderr and exit with the error's status; a traceback is never shown for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from amibake.core import __version__
from amibake.core.errors import AmibakeError
from amibake.tui.cli.options import add_global_target_options, merge_target_options

#: Modules of tui.commands; each has register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "amibake.tui.cli.build",
    "amibake.tui.cli.templates",
    "amibake.tui.cli.sweep",
    "amibake.tui.cli.local",
    "amibake.tui.cli.examples",
    "amibake.tui.cli.iam_policy",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="amibake",
        description="Build AWS machine images from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"amibake {__version__}")
    app_options = add_global_target_options(parser)
    app_options.add_argument(
        "--latency",
        choices=("instant", "fast", "realistic"),
        help="the local cloud's latency profile (default: the last one used, else fast)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None) or run_app  # no COMMAND: the terminal app
    try:
        merge_target_options(args)  # `amibake --local sweep` is `amibake sweep --local`
        return int(handler(args) or 0)
    except AmibakeError as error:
        print(f"amibake: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("amibake: interrupted", file=sys.stderr)
        return 130


def run_app(args: argparse.Namespace) -> int:
    """``amibake`` with no subcommand: the terminal app."""
    from amibake.core.errors import UsageError
    from amibake.core.targets import list_targets
    from amibake.tui.app import AmibakeApp

    if args.profile:
        known = [t.profile for t in list_targets() if t.profile]
        if args.profile not in known:
            listed = ", ".join(known) if known else "none in your AWS config files"
            raise UsageError(f"no AWS profile {args.profile!r} (profiles: {listed})")
    target = "local" if args.local else f"profile:{args.profile}" if args.profile else None
    app = AmibakeApp(target=target, region=args.region, latency=args.latency)
    try:
        app.run()
    finally:
        app.stop_local_cloud()
    return int(app.return_code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
