"""The template editor: live validation, problem navigation, variables, preview, build."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import Button, Input, OptionList, Static

from amibake.core.examples import EXAMPLES_DIR
from amibake.core.local.cloud import LocalCloud
from amibake.tui.build_runner import runs
from amibake.tui.screens.editor import EditorScreen
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.template_support import name_wildcard, recent_templates, scaffold_from_image
from tests.tui.builds_support import BuildsTestApp, FakeSession, session_for, wait_until


def demo_copy(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES_DIR, tmp_path / "examples", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "examples" / "demo.pkr.hcl"


async def validated(pilot, screen: EditorScreen) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.05)  # let the edit's Changed message schedule its validation
    await wait_until(pilot, lambda: screen.validated_generation == screen.generation, 10)


async def test_problems_block_the_build_and_jump_to_their_line(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    path = demo_copy(tmp_path)
    app = BuildsTestApp(session_for(cloud), lambda: EditorScreen(path))
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        assert screen.block_reason() is None
        assert not screen.query_one("#editor-build", Button).disabled
        assert screen.text_area.language == "hcl"
        preview = str(screen.query_one("#editor-preview", Static).render())
        assert "amibake-demo-" in preview and "us-west-2" in preview
        assert path.resolve() in [p.resolve() for p in recent_templates()]

        # a typo on line 19: listed with line:col, build disabled with the reason
        assert screen.text_area.document.get_line(18).startswith("  instance_type ")
        screen.text_area.replace("instance_typo", (18, 2), (18, 15))
        await validated(pilot, screen)
        assert screen.validation is not None
        problems_found = screen.validation.problems
        assert problems_found, screen.validation
        problem = next(p for p in problems_found if p.line == 19)
        assert "instance_type" in problem.message  # did you mean
        assert screen.query_one("#editor-build", Button).disabled
        status = str(screen.query_one("#editor-status", Static).render())
        count = len(problems_found)
        assert f"fix {count} problem{'s' if count > 1 else ''} first" in status
        await pilot.press("ctrl+b")  # refused, with the reason
        assert not isinstance(app.screen, MonitorScreen)

        # selecting the problem moves the cursor there
        screen.text_area.cursor_location = (0, 0)
        problems = screen.query_one("#editor-problems", OptionList)
        problems.focus()
        problems.highlighted = problems_found.index(problem)
        await pilot.press("enter")
        assert screen.text_area.cursor_location == (problem.line - 1, problem.col - 1)
        assert screen.text_area.has_focus

        # fixing it re-enables the build
        screen.text_area.undo()
        await validated(pilot, screen)
        assert screen.block_reason() is None


async def test_variables_form_feeds_the_preview_and_masks_secrets(tmp_path: Path) -> None:
    path = tmp_path / "vars.pkr.hcl"
    path.write_text(
        (EXAMPLES_DIR / "demo.pkr.hcl")
        .read_text()
        .replace(
            'variable "app_version" {',
            'variable "token" {\n  type = string\n  sensitive = true\n'
            '  default = "s3cret-value"\n}\n\nvariable "app_version" {',
        )
        .replace('"amibake-demo-${local.stamp}"', '"app-${var.app_version}-${var.token}"'),
        encoding="utf-8",
    )
    app = BuildsTestApp(FakeSession(target=None), lambda: EditorScreen(path))  # type: ignore[arg-type]
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        token = screen.query_one("#var-token", Input)
        assert token.password
        version = screen.query_one("#var-app_version", Input)
        version.focus()
        assert version.value == "1.0.0"  # the default, there to edit
        await pilot.press("ctrl+u", *"2.5")  # the cursor at its end: delete to the start, type
        await validated(pilot, screen)
        preview = str(screen.query_one("#editor-preview", Static).render())
        assert "app-2.5-<sensitive>" in preview
        assert "s3cret" not in preview


async def test_new_from_selected_ami_builds_to_its_artifact(cloud: LocalCloud) -> None:
    ec2 = cloud.client("ec2")
    images = ec2.describe_images(
        Owners=["099720109477"],
        Filters=[{"Name": "name", "Values": ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-*amd64*"]}],
    )["Images"]
    image = max(images, key=lambda i: i["CreationDate"])
    assert name_wildcard(image["Name"]).endswith("-server-*")
    text = scaffold_from_image(image, "us-east-1")
    assert image["OwnerId"] in text

    app = BuildsTestApp(session_for(cloud), lambda: EditorScreen(source_image=image))
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        assert screen.block_reason() is None, screen.validation
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), 5)
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 60)
        state = runs(app)[0].states["main"]
        assert state.status == "succeeded", state.error
        ami = state.artifacts["us-east-1"]
        described = ec2.describe_images(ImageIds=[ami])["Images"][0]
        assert described["Name"].startswith("custom-")
