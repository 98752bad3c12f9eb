"""Bad input around cleanup: one clear line each, no traceback, nothing lost."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from amibake.core.local.cloud import LocalCloud

from .conftest import run_cli


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("amibake: error: ")
    return lines[0]


def test_corrupt_ledger_is_reported_and_left_untouched(cloud: LocalCloud, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ledger = home / "state" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    garbage = b"this is not a database\x00" * 64
    ledger.write_bytes(garbage)
    result = run_cli(cloud, home, "sweep", "--region", "us-east-1")
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert f"the ledger {ledger} is unreadable" in line
    assert "move it aside" in line
    assert ledger.read_bytes() == garbage


def test_unwritable_state_dir_is_one_line(cloud: LocalCloud, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "state").write_text("a file where the state directory should be")
    result = run_cli(cloud, home, "sweep", "--region", "us-east-1")
    assert result.returncode == 1
    assert "cannot create the state directory" in one_line_error(result.stderr)


def test_unknown_build_id_is_one_line(cloud: LocalCloud, tmp_path: Path) -> None:
    result = run_cli(
        cloud, tmp_path / "home", "sweep", "--build", "no-such-build", "--region", "us-east-1"
    )
    assert result.returncode == 2
    assert one_line_error(result.stderr) == (
        "amibake: error: unknown build no-such-build: not in the ledger and nothing in "
        "us-east-1 carries its tag"
    )


def test_bad_age_is_one_line(cloud: LocalCloud, tmp_path: Path) -> None:
    result = run_cli(cloud, tmp_path / "home", "sweep", "--older-than", "soon")
    assert result.returncode == 2
    assert "--older-than expects a duration like 30m, 2h or 1d" in one_line_error(result.stderr)


def test_expired_sso_session_is_one_line(cloud: LocalCloud, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile expired]\n"
        "sso_start_url = https://example.awsapps.com/start\n"
        "sso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Admin\n"
    )
    home = tmp_path / "home"
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AMIBAKE_HOME=str(home),
        HOME=str(tmp_path),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "amibake.tui",
            "sweep",
            "--profile",
            "expired",
            "--region",
            "us-east-1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "the SSO session has expired: run 'aws sso login'" in one_line_error(result.stderr)


def test_recover_sweeps_an_interrupted_build_before_building(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    from amibake.core.ledger import Ledger

    home = tmp_path / "home"
    # An earlier run died right after creating a key pair (its ledger row and tag say so).
    ec2 = cloud.client("ec2", "us-east-1")
    build_id = f"crashed-{uuid.uuid4().hex[:6]}"
    name = f"amibake_{build_id}"
    ec2.create_key_pair(
        KeyName=name,
        TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": "amibake:build-id", "Value": build_id}]}
        ],
    )
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    target = {"profile": None, "endpoint_url": cloud.endpoint_url}  # as the engine records it
    ledger.begin_build(build_id, "amazon-ebs", "t.json", target)
    ledger.created(ledger.intend(build_id, "us-east-1", "key-pair", name), name)
    # Marked as a process that is gone.
    ledger._db.execute("UPDATE builds SET pid = 999999999 WHERE build_id = ?", (build_id,))
    ledger.close()
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {
                "builders": [
                    {
                        "type": "amazon-ebs",
                        "region": "us-east-1",
                        "instance_type": "t3.micro",
                        "ssh_username": "ubuntu",
                        "source_ami": "ami-0123456789abcdef0",
                        "ami_name": "x-{{uuid}}",
                    }
                ]
            }
        )
    )
    plain = run_cli(cloud, home, "build", "--ssh-port", str(cloud.ssh_port), str(template))
    assert f"1 unfinished build(s) from an earlier run left 1 resource(s) ({build_id})" in (
        plain.stderr
    )
    recovered = run_cli(
        cloud, home, "build", "--recover", "--ssh-port", str(cloud.ssh_port), str(template)
    )
    assert f"recovering build {build_id}" in recovered.stderr
    assert f"deleted key-pair {name}" in recovered.stderr
    assert name not in [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
