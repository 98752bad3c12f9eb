"""``amibake examples``: the templates shipped with amibake, to build or copy."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from amibake.core.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "examples",
        help="list the shipped example templates (or copy them somewhere)",
        description="List the templates shipped with amibake: the seed's Packer template and a "
        "demo that builds end to end on the local cloud ('amibake build --local PATH').",
    )
    parser.add_argument("--copy", type=Path, metavar="DIR", help="copy them (with their files)")
    parser.set_defaults(handler=examples_command)


def examples_command(args: argparse.Namespace) -> int:
    from amibake.core.examples import EXAMPLES_DIR, examples

    if args.copy is None:
        for name, path in examples().items():
            print(f"{name:<16} {path}")
        return 0
    target: Path = args.copy
    try:
        target.mkdir(parents=True, exist_ok=True)
        for path in examples().values():
            shutil.copy2(path, target / path.name)
        shutil.copytree(EXAMPLES_DIR / "files", target / "files", dirs_exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot copy the examples to {target}: {error.strerror}") from None
    print(f"copied {len(examples())} templates to {target}")
    return 0
