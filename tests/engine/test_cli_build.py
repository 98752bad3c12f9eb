"""`amibake build` as a user runs it: a real process with its own local cloud (--local)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amibake.core.examples import EXAMPLES_DIR

AMIBAKE = [sys.executable, "-m", "amibake.tui"]


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AMIBAKE_HOME"] = str(home)
    return env


def run(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMIBAKE, "build", "--local", "--latency", "instant", *args],
        cwd=tmp_path,
        env=env_for(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_builds_writes_manifest_and_history(tmp_path: Path) -> None:
    result = run(tmp_path, str(EXAMPLES_DIR / "demo.pkr.hcl"))
    assert result.returncode == 0, result.stdout + result.stderr
    # An HCL2 build is named as Packer prints it: amazon-ebs.<name>.
    assert "==> amazon-ebs.demo: Provisioning" in result.stdout
    assert "    amazon-ebs.demo: installing demo app 1.0.0 as ubuntu" in result.stdout
    assert "--> amazon-ebs.demo: AMIs were created:" in result.stdout
    manifest = json.loads((tmp_path / "amibake-demo-manifest.json").read_text())
    (entry,) = manifest["builds"]
    assert entry["name"] == "demo" and entry["builder_type"] == "amazon-ebs"
    regions = [part.split(":")[0] for part in entry["artifact_id"].split(",")]
    assert regions == ["us-east-1", "us-west-2"]
    assert manifest["last_run_uuid"] == entry["packer_run_uuid"]
    (record_dir,) = (tmp_path / "home" / "data" / "builds").iterdir()
    record = json.loads((record_dir / "record.json").read_text())
    assert record["status"] == "succeeded"
    assert set(record["artifacts"]) == {"us-east-1", "us-west-2"}
    events = [json.loads(line) for line in (record_dir / "events.ndjson").read_text().splitlines()]
    assert events[0]["type"] == "build_started" and events[-1]["type"] == "build_finished"
    assert "installing demo app" in (record_dir / "build.log").read_text()


def test_json_events_and_exit_status_of_a_failed_build(tmp_path: Path) -> None:
    result = run(tmp_path, "--json", str(EXAMPLES_DIR / "seed.json"))
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "build_started" and types[-1] == "build_finished"
    assert events[-1]["status"] == "failed"
    # 127: sudo not found (sandbox); 100: apt without network (overlay roots, issue 13)
    assert "exit status 127" in events[-1]["error"] or "exit status 100" in events[-1]["error"]
    deleted = {e["kind"] for e in events if e["type"] == "resource" and e["state"] == "deleted"}
    assert deleted == {"instance", "volume", "key-pair", "security-group"}


def test_template_errors_exit_2_with_locations(tmp_path: Path) -> None:
    template = tmp_path / "bad.json"
    template.write_text('{\n  "builders": [{"type": "amazon-ebs", "regoin": "us-east-1"}]\n}\n')
    result = run(tmp_path, str(template))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith(f"amibake: error: {template}:") for line in lines)
    assert any("did you mean `region`?" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_unknown_builder_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "--only", "nope", str(EXAMPLES_DIR / "seed.json"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "amibake: error: no builder named 'nope' (this template has: amazon-ebs)"
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_cancels_cleans_up_and_exits_130(tmp_path: Path, sig: signal.Signals) -> None:
    template = tmp_path / "slow.json"
    template.write_text(
        json.dumps(
            {
                "builders": [
                    {
                        "type": "amazon-ebs",
                        "region": "us-east-1",
                        "instance_type": "t3.micro",
                        "ssh_username": "ubuntu",
                        "source_ami_filter": {
                            "filters": {"name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-*"},
                            "owners": ["099720109477"],
                            "most_recent": True,
                        },
                        "ami_name": "slow-{{timestamp}}",
                    }
                ],
                "provisioners": [{"type": "shell", "inline": ["echo started", "sleep 60"]}],
            }
        )
    )
    process = subprocess.Popen(
        [*AMIBAKE, "build", "--local", "--latency", "instant", str(template)],
        cwd=tmp_path,
        env=env_for(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        seen.append(line)
        if "amazon-ebs: started" in line or time.monotonic() > deadline:
            break
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    output = "".join(seen) + out
    assert process.returncode == 130, output + err
    assert "cancelling; cleaning up" in err
    assert "deleted instance" in output
    assert "deleted key-pair" in output and "deleted security-group" in output
    assert "Build cancelled" in output
