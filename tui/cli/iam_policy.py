"""``amibake iam-policy``: the IAM policy amibake needs, as JSON (issue 10)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from amibake.core.iam_policy import FEATURES

    parser = subparsers.add_parser(
        "iam-policy",
        help="print the IAM policy amibake needs on real AWS",
        description="Print the identity policy (JSON) that allows every AWS call amibake "
        "makes. --only keeps the statements of the features named (Build is what a plain "
        "build needs; " + ", ".join(FEATURES[1:]) + " are for the options that need them).",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=FEATURES,
        metavar="FEATURE",
        help=f"a statement to keep (repeatable; one of {', '.join(FEATURES)})",
    )
    parser.set_defaults(handler=iam_policy_command)


def iam_policy_command(args: argparse.Namespace) -> int:
    from amibake.core.iam_policy import FEATURES, policy_json

    features = tuple(f for f in FEATURES if f in (args.only or FEATURES))
    print(policy_json(features), end="")
    return 0
