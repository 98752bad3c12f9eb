"""Headless ``amibake build --on-error ask``: a real process answered on its standard input.

The failed provisioner prompts (retry / shell / cleanup / abort); "s" opens a real OpenSSH
session on the instance (run with a command, AMIBAKE_SHELL_COMMAND, instead of a terminal);
the template is fixed on disk; "r" retries from the failed provisioner and the build succeeds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine.test_build import builder, shell
from tests.engine.test_cli_build import AMIBAKE, env_for

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh")


def read_until(process: subprocess.Popen[str], marker: str, seen: list[str]) -> str:
    assert process.stdout is not None
    while line := process.stdout.readline():
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"{marker!r} never came; output:\n{''.join(seen)}")


def test_prompt_shell_fix_and_retry(tmp_path: Path) -> None:
    template = tmp_path / "template.json"
    data = {
        "builders": [builder(skip_create_ami=True)],
        "provisioners": [
            shell("echo first >> /tmp/first-runs"),
            shell("echo broken", "exit 4"),
            shell("echo first ran $(wc -l < /tmp/first-runs) time"),
        ],
    }
    template.write_text(json.dumps(data))
    env = env_for(tmp_path / "home")
    env["AMIBAKE_SHELL_COMMAND"] = "echo shell-on-$(cat /tmp/first-runs)"
    process = subprocess.Popen(
        [*AMIBAKE, "build", "--local", "--latency", "instant", "--on-error", "ask", str(template)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    seen: list[str] = []
    try:
        failed = read_until(process, 'Step "Provisioning" failed', seen)
        assert "exit status 4" in failed or "4" in failed
        choices = read_until(process, "[r] retry step", seen)
        assert "[s] shell on the instance" in choices
        assert "[c] clean up and exit" in choices and "[a] abort without cleanup" in choices
        process.stdin.write("s\n")
        process.stdin.flush()
        read_until(process, "shell-on-first", seen)  # the real SSH session's output
        read_until(process, "[r] retry step", seen)  # asked again after the shell
        data["provisioners"][1] = shell("echo repaired")
        template.write_text(json.dumps(data))
        process.stdin.write("r\n")
        process.stdin.flush()
        read_until(process, "repaired", seen)
        read_until(process, "first ran 1 time", seen)
        rest, errors = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, "".join(seen) + rest + errors
