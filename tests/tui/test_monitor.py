"""The build monitor driven by Pilot against the local cloud: build, cancel, quit, batching."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message

from amibake.core.aws import Target
from amibake.core.history import builds_dir
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.templates import load, loads
from amibake.tui.build_runner import BuildRun, BuildRunUpdated, active_runs, runs
from amibake.tui.build_state import OutputLine
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.widgets.build_panes import BuildArtifactsTable, BuildResourcesTable
from amibake.tui.widgets.log_view import BuildLogView
from tests.tui.builds_support import (
    BuildsTestApp,
    FakeSession,
    session_for,
    tagged_resources,
    wait_until,
    write_template,
)

CHATTY = """
source "amazon-ebs" "chatty" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "amibake-tui-chatty-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  source_ami_filter {
    filters = {
      name = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
    }
    owners      = ["099720109477"]
    most_recent = true
  }
}

build {
  sources = ["source.amazon-ebs.chatty"]
  provisioner "shell" {
    inline = [
      "seq 1 LINES",
      "echo 'something odd' >&2",
      "sleep SLEEP",
    ]
  }
}
"""


def chatty(directory: Path, lines: int = 3000, sleep: float = 0) -> Path:
    text = CHATTY.replace("LINES", str(lines)).replace("SLEEP", str(sleep))
    return write_template(directory, "chatty.pkr.hcl", text)


@pytest.fixture
def fast_cloud(cloud: LocalCloud) -> Iterator[LocalCloud]:
    """The shared cloud on the 'fast' profile (a build takes seconds: time to cancel it)."""
    previous = cloud.latency
    cloud.set_latency("fast")
    yield cloud
    cloud.set_latency(previous)


async def test_build_runs_to_its_artifact_with_batched_output(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    path = chatty(tmp_path)
    spec = load(path)
    messages: list[Message] = []
    app = BuildsTestApp(session_for(cloud), lambda: MonitorScreen(spec, path))
    async with app.run_test(size=(140, 45), message_hook=messages.append) as pilot:
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 60, "build")
        await pilot.pause(0.3)
        run = runs(app)[0]
        state = run.states["chatty"]
        assert state.status == "succeeded", state.error
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        # the artifact pane shows the AMI the cloud really has
        artifacts = screen.query_one(BuildArtifactsTable)
        ami = artifacts.selected_ami()
        assert ami is not None and ami == state.artifacts["us-east-1"]
        images = cloud.client("ec2").describe_images(ImageIds=[ami])["Images"]
        assert images and images[0]["State"] == "available"
        # every temporary resource reads deleted; the AMI and its snapshot are kept
        resources = screen.query_one(BuildResourcesTable)
        states = {str(resources.get_cell(key, "state")) for key in resources.rows}
        assert states <= {"deleted", "kept"}, states
        assert tagged_resources(cloud, state.build_id) == [
            ami,
            *(s for s in tagged_resources(cloud, state.build_id) if s.startswith("snap-")),
        ]
        # 3,000 lines arrived in the pane, stderr distinguished, in far fewer messages
        view = screen.query_one(BuildLogView)
        lines = {(line.stream, line.text) for line in view.lines()}
        assert ("stdout", "3000") in lines
        assert ("stderr", "something odd") in lines
        batches = [m for m in messages if isinstance(m, BuildRunUpdated)]
        assert sum(m.log_lines for m in batches) >= 3000
        assert len(batches) < 200
        # the copy action puts the AMI id on the clipboard
        artifacts.focus()
        await pilot.press("y")
        assert app.clipboard == ami


async def test_cancel_mid_build_leaves_nothing(fast_cloud: LocalCloud, tmp_path: Path) -> None:
    path = chatty(tmp_path, lines=10, sleep=30)
    spec = load(path)
    app = BuildsTestApp(session_for(fast_cloud), lambda: MonitorScreen(spec, path))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: bool(runs(app)), 10, "the run")
        run = runs(app)[0]
        state = run.states["chatty"]

        def provisioning() -> bool:
            return state.steps["provision"].state == "running" and state.log_total > 10

        await wait_until(pilot, provisioning, 60, "provisioning")
        await pilot.press("c")
        await pilot.pause(0.2)
        assert app.screen.query_one("#confirm-question")  # the modal asks first
        await pilot.press("y")
        await wait_until(pilot, run.finished.is_set, 60, "cleanup")
        await pilot.pause(0.3)
        assert state.status == "cancelled"
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        resources = screen.query_one(BuildResourcesTable)
        assert resources.row_count >= 3  # key pair, security group, instance (+ volume)
        states = {str(resources.get_cell(key, "state")) for key in resources.rows}
        assert states == {"deleted"}
        assert tagged_resources(fast_cloud, state.build_id) == []


async def test_quitting_mid_build_asks_then_cleans_up(
    fast_cloud: LocalCloud, tmp_path: Path
) -> None:
    from tests.tui.browser_support import make_app, wait_loaded

    path = chatty(tmp_path, lines=10, sleep=30)
    spec = load(path)
    app = make_app(fast_cloud, tmp_path)  # the real app, with its own quit key
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_loaded(pilot, app)
        await app.push_screen(MonitorScreen(spec, path))
        await wait_until(pilot, lambda: bool(runs(app)), 10, "the run")
        run = runs(app)[0]
        state = run.states["chatty"]
        await wait_until(
            pilot, lambda: any(r.kind == "instance" for r in state.resources.values()), 60
        )
        await pilot.press("q")
        await pilot.pause(0.2)
        await pilot.press("n")  # changed my mind: the build goes on
        await pilot.pause(0.2)
        assert not run.cancel_requested and app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        await pilot.press("y")
        await wait_until(pilot, lambda: app._exit, 60, "the app to exit")
        assert run.finished.is_set()
        assert state.status == "cancelled"
    assert not active_runs(app)
    assert tagged_resources(fast_cloud, state.build_id) == []


async def test_log_view_is_bounded_follows_and_searches() -> None:
    from textual.app import App, ComposeResult

    class LogApp(App[None]):
        def compose(self) -> ComposeResult:
            yield BuildLogView(max_lines=1000)

    app = LogApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(BuildLogView)
        for chunk in range(50):
            view.write_lines(
                OutputLine("stderr" if i % 7 == 0 else "stdout", f"line {chunk * 1000 + i}")
                for i in range(1000)
            )
        await pilot.pause()
        assert view.total == 50_000 and view.line_count == 1000
        assert view.first_line == 49_000
        assert view.follow and view.scroll_y == view.max_scroll_y
        # the last line is on screen with its absolute number in the gutter
        last = view.render_line(view.scrollable_content_region.height - 1).text
        assert "50000" in last and "line 49999" in last
        # scrolling up pauses following; new lines no longer move the view
        view.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert not view.follow
        view.write_lines([OutputLine("stdout", "line new")])
        await pilot.pause()
        assert view.scroll_y == 0
        # search jumps to the next match and highlights it
        assert view.search("line 49500")
        assert view.current_match == 49_500
        assert not view.search("no such text")
        view.focus()
        await pilot.press("f")
        assert view.follow and view.scroll_y == view.max_scroll_y


def hidden_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


async def test_builds_the_unsaved_text_with_its_variables(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """The child builds what the editor shows (not what is saved), next to the template."""
    path = chatty(tmp_path, lines=3)  # saved: `seq 1 3`
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd").write_text("motd from a relative path\n", encoding="utf-8")
    text = 'variable "greeting" {\n  type    = string\n  default = "hello"\n}\n' + path.read_text(
        encoding="utf-8"
    ).replace(
        'sources = ["source.amazon-ebs.chatty"]',
        'sources = ["source.amazon-ebs.chatty"]\n'
        '  provisioner "file" {\n'
        '    source      = "files/motd"\n'
        '    destination = "/home/ubuntu/motd"\n'
        "  }",
    ).replace('"seq 1 3",', '"echo unsaved-$((6*7)) ${var.greeting}", "cat ~/motd",')
    spec = loads(
        text,
        file=str(path),
        format="hcl",
        vars=[("greeting", "from-the-form")],
        template_dir=tmp_path,
    )
    app = BuildsTestApp(session_for(cloud), lambda: MonitorScreen(spec, path, template_text=text))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 60, "build")
        await pilot.pause(0.2)
        run = runs(app)[0]
        state = run.states["chatty"]
        assert state.status == "succeeded", state.error
        texts = {line.text for line in app.screen.query_one(BuildLogView).lines()}
        assert "unsaved-42 from-the-form" in texts
        assert "motd from a relative path" in texts
        # the temporary copy is gone; the state and the history name the template itself
        assert hidden_files(tmp_path) == []
        assert state.template == str(path)
        record = (builds_dir() / state.build_id / "record.json").read_text(encoding="utf-8")
        assert f'"template": "{path}"' in record


async def test_a_child_that_dies_fails_the_builds_with_its_last_words(tmp_path: Path) -> None:
    path = chatty(tmp_path)
    spec = load(path)
    broken = path.read_text(encoding="utf-8") + "\nbuild {\n"  # unsaved, and wrong
    target = Target(endpoint_url="http://127.0.0.1:9", access_key_id="x", secret_access_key="y")
    app = BuildsTestApp(
        FakeSession(target), lambda: MonitorScreen(spec, path, template_text=broken)
    )
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 60, "exit")
        await pilot.pause(0.2)
        run = runs(app)[0]
        state = run.states["chatty"]
        assert run.returncode == 2
        assert state.status == "failed"
        assert state.error is not None and state.error.startswith("amibake: error: ")
        assert "Traceback" not in state.error and "\n" not in state.error
        assert run.error == state.error
        assert any(state.error in str(n.message) for n in app._notifications)
        assert hidden_files(tmp_path) == []


def test_the_child_gets_the_sessions_target_only(tmp_path: Path) -> None:
    path = chatty(tmp_path)
    spec = load(path, vars=[])
    ours = {
        "AMIBAKE_HOME": "/somewhere",
        "PATH": "/usr/bin",
        "AWS_ACCESS_KEY_ID": "AKIASTRAY",
        "AWS_SECRET_ACCESS_KEY": "stray",
        "AWS_SESSION_TOKEN": "stray",
        "AWS_PROFILE": "prod",
        "AWS_ENDPOINT_URL": "https://ec2.example",
    }
    local = BuildRun(
        spec,
        target=Target(
            endpoint_url="http://127.0.0.1:4566",
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
        ),
        ssh_port=2222,
        region="eu-west-1",
    )
    env = local.environment(ours)
    assert env["AMIBAKE_HOME"] == "/somewhere" and env["PATH"] == "/usr/bin"
    assert env["AWS_ACCESS_KEY_ID"] == FAKE_ACCESS_KEY
    assert env["AWS_SECRET_ACCESS_KEY"] == FAKE_SECRET_KEY
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "AWS_SESSION_TOKEN" not in env and "AWS_PROFILE" not in env
    argv = local.command(path)
    assert argv[1:5] == ["-m", "amibake.tui", "build", "--json"] and argv[-1] == str(path)
    assert argv[argv.index("--ssh-port") + 1] == "2222" and "--profile" not in argv

    aws = BuildRun(spec, target=Target(profile="dev"), region="us-east-1")
    argv = aws.command(path)
    assert argv[argv.index("--profile") + 1] == "dev" and "--ssh-port" not in argv
    assert aws.environment(ours)["AWS_SESSION_TOKEN"] == "stray"  # boto3's chain, untouched


def test_the_users_variables_reach_the_child_in_a_private_var_file(tmp_path: Path) -> None:
    # A legacy JSON template reads no PKR_VAR_*: the editor's values must travel otherwise,
    # and never on the command line (ps) or in a file others can read.
    template = tmp_path / "t.json"
    template.write_text(
        '{"variables": {"token": null, "size": "8"}, "builders": [{"type": "amazon-ebs",'
        ' "region": "us-east-1", "source_ami": "ami-0123456789abcdef0",'
        ' "instance_type": "t3.micro", "ssh_username": "u", "ami_name": "n-{{user `size`}}"}]}',
        encoding="utf-8",
    )
    spec = load(template, vars=[("token", "s3cret")])
    run = BuildRun(spec, target=Target(profile="dev"), region="us-east-1")
    path = run._write_var_file()
    assert path is not None
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text(encoding="utf-8")) == {"token": "s3cret"}
    argv = run.command(template)
    assert argv[argv.index("--var-file") + 1] == str(path)
    assert "s3cret" not in " ".join(argv)
    assert not any(name.startswith("PKR_VAR_") for name in run.environment({}))
    # what the child does with it: the value is the template's
    assert load(template, var_files=[path]).variables["token"].value == "s3cret"
    run._finish()
    assert not path.exists() and not path.parent.exists()


def _unused(*_: Any) -> None:  # keeps imports honest for type checkers
    return None
