"""``--on-error ask`` in the engine: a failed step pauses the build for a decision.

Against the local cloud: a shell provisioner fails, the build waits (StepPaused); an OpenSSH
shell reaches the instance with the build's temporary key meanwhile; after the template file
is fixed, "retry" runs the provisioners again from the one that failed (the ones before it
do not run twice) and the build succeeds. "cleanup" removes everything, as a failed build does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine import decisions
from amibake.core.engine.decisions import Pause
from amibake.core.engine.shell_access import remove, shell_command
from amibake.core.events import DecisionMade, Event, LogLines, StepFinished, StepPaused
from amibake.core.local.cloud import LocalCloud
from amibake.core.templates import load
from tests.engine.test_build import Harness, builder, shell

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh")


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    return Harness(cloud, tmp_path)


def lines(events: list[Event]) -> list[str]:
    return [line for e in events if isinstance(e, LogLines) for line in e.lines]


async def test_retry_after_fixing_the_template_and_a_shell_meanwhile(harness: Harness) -> None:
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [
                shell("echo ran >> /tmp/first-runs"),
                shell("echo about to fail", "exit 3"),
                shell("echo first ran $(wc -l < /tmp/first-runs) time"),
            ],
        }
    )
    seen: list[Pause] = []
    shell_output: list[str] = []

    async def decide(pause: Pause) -> str:
        seen.append(pause)
        # what `s` does, with a command instead of a terminal: OpenSSH with the build's key
        argv, directory = shell_command(pause.ctx, command="cat /tmp/first-runs; id -un")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            shell_output.extend(out.decode().split())
        finally:
            remove(directory)
        assert not directory.exists()
        assert modes["id_0"] == 0o600 and modes["known_hosts"] == 0o600
        # the fix, made in the file while the build waits
        data = json.loads(template.read_text())
        data["provisioners"][1] = shell("echo fixed")
        template.write_text(json.dumps(data))
        return "retry"

    [result] = await harness.build(
        template, on_error="ask", decide=decide, reload=lambda: load(template)
    )
    assert result.status == "succeeded", result.error
    [pause] = seen
    assert pause.step == "provision"
    assert pause.choices == ("retry", "shell", "cleanup", "abort")
    assert "exit status 3" in pause.error or "3" in pause.error
    assert shell_output == ["ran", "ubuntu"]
    output = lines(harness.events)
    assert "fixed" in output
    assert "first ran 1 time" in output  # provisioner 1 did not run again
    paused = [e for e in harness.events if isinstance(e, StepPaused)]
    assert [e.key for e in paused] == [pause.key]
    made = [e for e in harness.events if isinstance(e, DecisionMade)]
    assert [(e.key, e.choice) for e in made] == [(pause.key, "retry")]
    provision = [
        e.status for e in harness.events if isinstance(e, StepFinished) and e.step == "provision"
    ]
    assert provision == ["failed", "ok"]
    left = harness.leftovers(result.build_id)
    assert set(left) <= {"images", "snapshots"}  # only the artifacts: the AMI and its snapshot
    assert left["images"] == list(result.artifacts.values())
    await _remove_artifacts(harness, result.artifacts)


async def test_cleanup_decided_from_outside_removes_everything(harness: Harness) -> None:
    template = harness.template({"builders": [builder()], "provisioners": [shell("exit 7")]})

    def on_event(event: Event) -> None:
        if isinstance(event, StepPaused):
            assert decisions.waiting() == (event.key,)
            assert not decisions.decide(event.key, "shell")  # not a decision
            assert not decisions.decide(event.key, "reboot")
            assert decisions.decide(event.key, "cleanup")

    [result] = await harness.build(template, on_error="ask", on_event=on_event)
    assert result.status == "failed"
    assert "7" in (result.error or "")
    assert decisions.waiting() == ()
    assert harness.leftovers(result.build_id) == {}


async def _remove_artifacts(harness: Harness, artifacts: dict[str, str]) -> None:
    def deregister() -> None:
        for region, image_id in artifacts.items():
            ec2: Any = harness.client(region)
            ec2.deregister_image(ImageId=image_id)

    await asyncio.to_thread(deregister)
