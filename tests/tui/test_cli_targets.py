"""Commands that talk to a target take --local/--profile/--region, also before them (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amibake.core.errors import UsageError
from amibake.tui.cli import build_parser
from amibake.tui.cli.options import merge_target_options


def parsed(*argv: str):  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(argv)
    merge_target_options(args)
    return args


def test_target_options_before_or_after_the_command_are_the_same() -> None:
    for argv in (("sweep", "--local"), ("--local", "sweep")):
        args = parsed(*argv)
        assert args.local is True and args.profile is None and args.region == []
    args = parsed("--region", "eu-west-1", "sweep")
    assert args.region == ["eu-west-1"] and args.local is False
    args = parsed("--region", "eu-west-1", "sweep", "--region", "us-east-1")
    assert args.region == ["us-east-1"]  # after the command wins
    args = parsed("--profile", "dev", "sweep")
    assert args.profile == "dev" and args.local is False
    args = parsed("--profile", "dev", "--region", "eu-west-1", "build", "t.pkr.hcl")
    assert (args.profile, args.region, args.local) == ("dev", "eu-west-1", False)
    args = parsed("--local", "validate", "t.pkr.hcl")
    assert args.local is True
    args = parsed("--local")  # the terminal app
    assert args.local is True and args.command is None


def test_target_options_that_cannot_apply_are_refused() -> None:
    with pytest.raises(UsageError, match="--local and --profile"):
        parsed("--local", "sweep", "--profile", "dev")
    with pytest.raises(UsageError, match="'amibake fmt' works on no target"):
        parsed("--local", "fmt", "t.pkr.hcl")
    with pytest.raises(SystemExit):  # argparse: not allowed with argument --local
        build_parser().parse_args(["sweep", "--local", "--profile", "dev"])


@pytest.mark.parametrize("argv", [("sweep", "--local"), ("--local", "sweep")])
def test_sweep_on_the_local_cloud_needs_no_aws_credentials(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AMIBAKE_HOME"] = str(tmp_path / "home")
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    result = subprocess.run(
        [sys.executable, "-m", "amibake.tui", *argv, "--dry-run", "--region", "us-east-1"]
        if argv[0] == "sweep"
        else [sys.executable, "-m", "amibake.tui", *argv, "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run: 0 resource(s) would be deleted in us-east-1" in result.stdout
    assert "credential" not in (result.stdout + result.stderr).lower()
