"""The editor on a folder template: a picker of its files, validated as one template."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, OptionList

from amibake.tui.screens.editor import EditorScreen
from tests.tui.builds_support import BuildsTestApp, FakeSession, wait_until

VARIABLES = 'variable "v" {\n  type = string\n}\n'
MAIN = """source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_typo = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "app-${var.v}"
}

build {
  sources = ["source.amazon-ebs.x"]
}
"""


def folder_template(tmp_path: Path) -> Path:
    root = tmp_path / "tpl"
    root.mkdir()
    (root / "main.pkr.hcl").write_text(MAIN, encoding="utf-8")
    (root / "variables.pkr.hcl").write_text(VARIABLES, encoding="utf-8")
    return root


async def validated(pilot, screen: EditorScreen) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.05)  # let the edit's Changed message schedule its validation
    await wait_until(pilot, lambda: screen.validated_generation == screen.generation, 10)


def problem_files(screen: EditorScreen) -> list[tuple[str, int]]:
    assert screen.validation is not None
    return [(Path(p.file).name, p.line) for p in screen.validation.problems]


async def test_folder_files_validate_as_one_template(tmp_path: Path) -> None:
    root = folder_template(tmp_path)
    app = BuildsTestApp(FakeSession(target=None), lambda: EditorScreen(root))  # type: ignore[arg-type]
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        files = screen.query_one("#editor-files", OptionList)
        names = [str(files.get_option_at_index(i).prompt) for i in range(files.option_count)]
        assert names == ["main.pkr.hcl", "variables.pkr.hcl"]
        assert screen.path == root / "main.pkr.hcl"
        assert screen.text == MAIN
        # problems in each file; `var.v` is known to main.pkr.hcl through variables.pkr.hcl
        assert problem_files(screen) == [
            ("main.pkr.hcl", 1),
            ("main.pkr.hcl", 4),
            ("variables.pkr.hcl", 1),
        ]
        assert screen.query_one("#var-v", Input) is not None

        # the problem of the other file opens that file at its line
        screen.goto_problem(2)
        assert screen.path == root / "variables.pkr.hcl"
        assert screen.text == VARIABLES
        assert screen.text_area.cursor_location == (0, 0)
        await validated(pilot, screen)

        # back to main.pkr.hcl through the picker; fixing the typo there (unsaved) counts
        files.focus()
        files.highlighted = 0
        await pilot.press("enter")
        assert screen.path == root / "main.pkr.hcl"
        screen.text_area.replace("instance_type", (3, 2), (3, 15))
        await validated(pilot, screen)
        assert problem_files(screen) == [("variables.pkr.hcl", 1)]
        assert screen.modified

        # a value in the variables form: the folder template is valid
        value = screen.query_one("#var-v", Input)
        value.focus()
        await pilot.press(*"1.0")
        await validated(pilot, screen)
        assert screen.block_reason() is None, screen.validation
        assert screen.validation is not None and screen.validation.spec is not None
        assert screen.validation.spec.builders[0].ami_name == "app-1.0"

        # saving writes the edited file of the folder
        await pilot.press("ctrl+s")
        assert (root / "main.pkr.hcl").read_text(encoding="utf-8").count("instance_type") == 1
        assert not screen.modified


async def test_a_file_of_a_folder_template_opens_the_folder(tmp_path: Path) -> None:
    root = folder_template(tmp_path)
    path = root / "variables.pkr.hcl"
    app = BuildsTestApp(FakeSession(target=None), lambda: EditorScreen(path))  # type: ignore[arg-type]
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        assert screen.folder == root and screen.path == path
        assert [f for f, _ in problem_files(screen)] == [
            "main.pkr.hcl",
            "main.pkr.hcl",
            "variables.pkr.hcl",
        ]
