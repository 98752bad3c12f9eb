"""Issue 15, "Friction to remove" and "Screenshots": what a new user tripped over.

Each test drives the real screens (Pilot) and reads what the terminal shows, at the sizes
the issue names (100x30, 160x45, 220x60).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, TabbedContent, TextArea

from amibake.core.aws import Target
from amibake.core.local.cloud import LocalCloud
from amibake.core.owners import PUBLISHER_ACCOUNTS, owner_label
from amibake.core.settings import Settings
from amibake.core.targets import list_targets
from amibake.tui.build_runner import BuildRun, _runs_of
from amibake.tui.cli.build import _summary
from amibake.tui.modals.help import HelpModal, key_rows, screen_title
from amibake.tui.modals.picker import PickerModal
from amibake.tui.screens.browser import BrowserScreen
from amibake.tui.screens.editor import EditorScreen
from amibake.tui.screens.history import HistoryScreen
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.widgets.build_panes import SPINNER
from amibake.tui.widgets.image_details import details_markup
from amibake.tui.widgets.image_table import ImageTable, elide_middle
from amibake.tui.widgets.running_builds import RunningBuilds
from tests.tui.browser_support import make_app, wait_loaded
from tests.tui.builds_support import (
    BuildsTestApp,
    FakeSession,
    scripted_events,
    wait_until,
    write_record,
)
from tests.tui.test_builds_snapshots import SPEC_TEXT, scripted_run

JAMMY = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301"


def screen_text(pilot: Pilot[Any]) -> str:
    """The terminal as the user sees it, one line per row."""
    strips = pilot.app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


# -- browser: the Name column gets the room, owners by name --------------------------------


def test_long_names_lose_their_middle_not_their_serial_and_date() -> None:
    # the last path segment whole when it fits, the path's start before it
    assert elide_middle(JAMMY, 48) == "ubuntu…/ubuntu-jammy-22.04-amd64-server-20240301"
    assert elide_middle(JAMMY, 42) == "…/ubuntu-jammy-22.04-amd64-server-20240301"
    # else the end keeps two thirds of the room
    short = elide_middle(JAMMY, 30)
    assert short == "ubuntu/ima…d64-server-20240301"
    assert elide_middle("debian-12-amd64", 42) == "debian-12-amd64"


def test_owners_read_as_their_publisher_with_the_account_in_the_details() -> None:
    canonical = PUBLISHER_ACCOUNTS["canonical"]
    assert owner_label(canonical, None) == "Canonical"
    assert owner_label(PUBLISHER_ACCOUNTS["amazon"], "amazon") == "Amazon"
    assert owner_label("111122223333", "aws-marketplace") == "aws-marketplace"
    assert owner_label("111122223333", None) == "111122223333"
    text = details_markup({"Name": JAMMY, "ImageId": "ami-1", "OwnerId": canonical}, "2026")
    assert f"Canonical ({canonical})" in text


@pytest.mark.parametrize("size", [(100, 30), (160, 45)])
async def test_browser_below_180_columns_gives_the_name_the_room(
    cloud: LocalCloud, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        assert browser is not None and not browser.show_details
        table = browser.query_one(ImageTable)
        layout = dict((c.key, w) for c, w in table._layout(table._content_width))
        assert layout["name"] >= (42 if size[0] == 100 else 80)
        assert "arch" in layout and "owner" in layout
        record = table.current_record
        assert record is not None
        await wait_until(pilot, lambda: record.name in screen_text(pilot), 10)
        shown = screen_text(pilot)
        assert "Canonical" in shown  # the owner column, not 099720109477
        assert record.image_id in shown
        # i shows the panel; the choice then holds whatever the width
        await pilot.press("i")
        assert browser.show_details
        await pilot.resize_terminal(size[0] + 1, size[1])
        await pilot.pause()
        assert browser.show_details


async def test_browser_at_220_columns_shows_the_detail_panel(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(220, 60)) as pilot:
        await wait_loaded(pilot, app)
        assert app.browser is not None and app.browser.show_details
        await wait_until(pilot, lambda: "(099720109477)" in screen_text(pilot), 10)


async def test_one_image_is_singular(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        assert browser is not None
        browser.index = browser.index.__class__(browser.index.records[:1], now=browser.index.now)
        browser._show_status()
        await pilot.pause()
        assert "1 image ·" in screen_text(pilot) or "1 image\n" in screen_text(pilot)
        assert "1 images" not in screen_text(pilot)


# -- target picker -----------------------------------------------------------------------


def fake_aws_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~/.aws of a new user (in the test's HOME, nothing else read): profiles of every
    kind, and the SSO token cache ``aws sso login`` leaves, fresh, expired and absent."""
    import hashlib
    import json

    aws = home / ".aws"
    cache = aws / "sso" / "cache"
    cache.mkdir(parents=True)
    (aws / "config").write_text(
        "[profile empty]\nregion = eu-west-1\n\n"
        "[profile half]\naws_access_key_id = AKIAEXAMPLE\n\n"
        + "".join(
            f"[profile {name}]\nsso_session = {name}\nsso_account_id = 111122223333\n"
            f"sso_role_name = dev\n\n[sso-session {name}]\n"
            f"sso_start_url = https://{name}.invalid/start\nsso_region = us-east-1\n\n"
            for name in ("fresh", "expired", "refreshes", "never")
        )
        + "[profile legacy]\nsso_start_url = https://legacy.invalid/start\n"
        "sso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = dev\n\n"
        "[profile role-on-expired]\nrole_arn = arn:aws:iam::111122223333:role/x\n"
        "source_profile = expired\n\n"
        "[profile role-on-keys]\nrole_arn = arn:aws:iam::111122223333:role/x\n"
        "source_profile = keys\n",
        encoding="utf-8",
    )
    (aws / "credentials").write_text(
        "[keys]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n",
        encoding="utf-8",
    )

    def token(key: str, **fields: str) -> None:
        name = hashlib.sha1(key.encode()).hexdigest() + ".json"
        (cache / name).write_text(json.dumps({"accessToken": "tok", **fields}))

    token("fresh", expiresAt="2999-01-01T00:00:00Z")
    token("expired", expiresAt="2020-01-01T00:00:00Z")
    # expired, but botocore refreshes an sso-session token while its registration lasts
    token(
        "refreshes",
        expiresAt="2020-01-01T00:00:00Z",
        refreshToken="r",
        clientId="c",
        clientSecret="s",
        registrationExpiresAt="2999-01-01T00:00:00Z",
    )
    # a legacy profile (no sso-session) has no refresh: expired is expired ("UTC" as older CLIs)
    token(
        "https://legacy.invalid/start",
        expiresAt="2020-01-01T00:00:00UTC",
        refreshToken="r",
        clientId="c",
        clientSecret="s",
        registrationExpiresAt="2999-01-01T00:00:00Z",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AWS_CONFIG_FILE")
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")


def test_target_list_knows_which_profiles_cannot_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_aws_home(tmp_path, monkeypatch)
    targets = {t.profile: t for t in list_targets() if t.profile}
    problems = {name: t.problem for name, t in targets.items()}
    assert {name for name, t in targets.items() if t.usable} == {
        "fresh",
        "keys",
        "refreshes",
        "role-on-keys",
    }
    assert all(t.usable == (not t.problem) for t in targets.values())
    assert problems["empty"] == "no credentials in its config"
    assert problems["half"] == "aws_access_key_id without aws_secret_access_key"
    assert problems["expired"] == "SSO session expired: run 'aws sso login --profile expired'"
    assert problems["legacy"] == "SSO session expired: run 'aws sso login --profile legacy'"
    assert problems["never"] == "not signed in to SSO: run 'aws sso login --profile never'"
    assert problems["role-on-expired"] == (
        "its source profile 'expired': SSO session expired: run 'aws sso login --profile expired'"
    )
    # the same files, a clock past the fresh token's expiry: it is marked too
    later = list_targets(now=datetime(3000, 1, 1, tzinfo=UTC))
    assert not next(t for t in later if t.profile == "fresh").usable


async def test_target_picker_marks_them_before_they_are_chosen(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_aws_home(tmp_path / "home", monkeypatch)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, PickerModal), 5, "the picker")
        picker = app.screen
        assert isinstance(picker, PickerModal)
        options = picker.query_one("#picker-options", OptionList)
        shown = {
            str(options.get_option_at_index(i).id): str(options.get_option_at_index(i).prompt)
            for i in range(options.option_count)
        }
        assert "✘" not in shown["local"] and "✘" not in shown["profile:fresh"]
        assert shown["profile:expired"] == (
            "AWS profile expired (sso)  ✘ SSO session expired: "
            "run 'aws sso login --profile expired'"
        )
        assert "✘ not signed in to SSO" in shown["profile:never"]
        assert "✘ no credentials in its config" in shown["profile:empty"]
        assert "✘ cannot sign in now (as your AWS files and SSO cache tell)" in screen_text(pilot)
        assert "SSO session expired" in screen_text(pilot)  # on screen, not only in the model
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BrowserScreen), 5)
        assert app.session.is_local  # looking chose nothing


# -- editor ------------------------------------------------------------------------------


def editor_app(path: Path | None = None) -> BuildsTestApp:
    return BuildsTestApp(FakeSession(Target()), lambda: EditorScreen(path))


async def validated(pilot: Pilot[Any], screen: EditorScreen) -> None:
    await wait_until(pilot, lambda: screen.validated_generation == screen.generation, 20)
    await pilot.pause()


async def test_a_fresh_starter_is_not_modified() -> None:
    app = editor_app()
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        assert not screen.modified
        assert "modified" not in screen_text(pilot)
        screen.text_area.insert("# mine\n", (0, 0))
        await pilot.pause()
        assert screen.modified and "● modified" in screen_text(pilot)


async def test_tab_walks_editor_problems_variables_buttons(tmp_path: Path) -> None:
    path = tmp_path / "app.pkr.hcl"
    path.write_text(SPEC_TEXT.replace('source "amazon-ebs"', VARIABLES + 'source "amazon-ebs"'))
    app = editor_app(path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        await wait_until(pilot, lambda: bool(screen.query("#var-app_version")), 10)
        text_before = screen.text
        walk = []
        for _ in range(6):
            focused = app.focused
            walk.append(type(focused).__name__ + (f"#{focused.id}" if focused else ""))
            await pilot.press("tab")
        assert screen.text == text_before  # tab moved the focus; it inserted nothing
        assert walk == [
            "TextArea#editor-text",
            "OptionList#editor-problems",
            "Input#var-app_version",
            "Input#var-team",
            "Button#editor-save",
            "Button#editor-build",
        ]
        # the Variables box says its values apply to this run only
        assert "this run only" in screen_text(pilot)


async def test_tab_indents_when_the_setting_says_so(tmp_path: Path) -> None:
    settings = Settings(path=tmp_path / "settings.toml", editor_tab_indents=True)
    settings.save()
    assert Settings.load(settings.path).editor_tab_indents
    app = BuildsTestApp(
        FakeSession(Target(), settings=Settings.load(settings.path)), lambda: EditorScreen(None)
    )
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        assert screen.text_area.tab_behavior == "indent"
        await pilot.press("tab")
        assert isinstance(app.focused, TextArea)
        assert screen.modified


VARIABLES = """\
variable "app_version" {
  type    = string
  default = "1.0.0"
}

variable "team" {
  type    = string
  default = "web"
}

"""


async def test_typing_into_a_variable_edits_its_default(tmp_path: Path) -> None:
    path = tmp_path / "app.pkr.hcl"
    path.write_text(
        SPEC_TEXT.replace('source "amazon-ebs"', VARIABLES + 'source "amazon-ebs"').replace(
            '"amibake-demo-20260101000000"', '"app-${var.app_version}"'
        )
    )
    app = editor_app(path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        await wait_until(pilot, lambda: bool(screen.query("#var-app_version")), 10)
        field = screen.query_one("#var-app_version", Input)
        assert field.value == "1.0.0"
        assert screen.variable_values() == {}  # the default as shown: nothing to pass
        field.focus()
        await pilot.press("backspace", "1")
        await validated(pilot, screen)
        assert field.value == "1.0.1"
        assert screen.variable_values() == {"app_version": "1.0.1"}
        assert "app-1.0.1" in screen_text(pilot)


async def test_the_variables_form_says_it_applies_to_this_run_only(tmp_path: Path) -> None:
    """The form's values go to the build, never into the template: the box says so, at
    100x30 too, and the file and the editor's text keep their defaults."""
    path = tmp_path / "app.pkr.hcl"
    original = SPEC_TEXT.replace('source "amazon-ebs"', VARIABLES + 'source "amazon-ebs"')
    path.write_text(original)
    app = editor_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        await wait_until(pilot, lambda: bool(screen.query("#var-team")), 10)
        field = screen.query_one("#var-team", Input)
        field.focus()
        await pilot.press(*["backspace"] * 3, *"ops")
        await validated(pilot, screen)
        assert screen.variable_values() == {"team": "ops"}
        assert "this run only: file keeps defaults" in screen_text(pilot)
        assert screen.text == original and not screen.modified
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_text() == original


# -- monitor, help, running builds, history ----------------------------------------------


def two_build_run() -> BuildRun:
    from amibake.core.templates import loads

    text = SPEC_TEXT.replace(
        '"source.amazon-ebs.demo"', '"source.amazon-ebs.demo", "source.amazon-ebs.web"'
    )
    text = text.replace(
        "build {", SPEC_TEXT.split("build {")[0].replace('"demo"', '"web"') + "build {"
    )
    spec = loads(text, file="demo.pkr.hcl", format="hcl")
    run = BuildRun(spec, target=Target(), template_path=Path("templates/demo.pkr.hcl"))
    for name in run.states:
        run.states[name].apply_all(scripted_events(name, upto="finished"))
    return run


async def test_brackets_switch_build_tabs_and_help_lists_every_key() -> None:
    run = two_build_run()
    app = BuildsTestApp(FakeSession(Target()), lambda: MonitorScreen.attach(run))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        tabs = screen.query_one(TabbedContent)
        first = tabs.active
        await pilot.press("right_square_bracket")
        assert tabs.active != first
        await pilot.press("right_square_bracket")
        assert tabs.active == first  # wraps around
        await pilot.press("left_square_bracket")
        assert tabs.active != first
        # what AmibakeApp.action_help shows (this host app has no `?`)
        app.push_screen(HelpModal(key_rows(screen), title=f"Keys · {screen_title(screen)}"))
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpModal)
        assert help_screen.title_text == "Keys · Monitor"
        described = {description for _keys, description in help_screen.rows}
        # the screen's own keys and those of its panes, focused or not
        assert {"Previous build", "Next build", "Cancel build", "Search output"} <= described
        assert {"Follow", "Next match", "Previous match", "Copy AMI id"} <= described
        keys = dict((d, k) for k, d in help_screen.rows)
        assert keys["Next build"] == "]" and keys["Previous build"] == "["


async def test_a_running_build_shows_on_every_screen(tmp_path: Path) -> None:
    root = tmp_path / "builds"
    write_record(root, scripted_events("demo"))
    run = scripted_run("provisioning")
    app = BuildsTestApp(FakeSession(Target()), lambda: HistoryScreen(root))
    async with app.run_test(size=(160, 45)) as pilot:
        indicator = app.screen.query_one(RunningBuilds)
        assert not indicator.display and indicator.text == ""
        _runs_of(app).append(run)
        run.worker = SimpleNamespace(is_running=True)  # type: ignore[assignment]
        await wait_until(pilot, lambda: "1 build running" in screen_text(pilot), 10)
        assert indicator.display
        # a spinner in front of the count, and it turns
        first = indicator.text[0]
        assert first in SPINNER
        await wait_until(pilot, lambda: indicator.text[:1] not in ("", first), 10, "a turn")
        app.push_screen(EditorScreen(None))
        await wait_until(pilot, lambda: "1 build running" in screen_text(pilot), 10)
        app.push_screen(MonitorScreen.attach(run))
        await wait_until(pilot, lambda: "1 build running" in screen_text(pilot), 10)
        run.finished.set()
        await wait_until(pilot, lambda: "build running" not in screen_text(pilot), 10)


async def test_history_shows_the_cursor_position(tmp_path: Path) -> None:
    root = tmp_path / "builds"
    events = scripted_events("demo")
    write_record(root, events)
    write_record(
        root,
        [
            dataclasses.replace(e, build_id="20260102-000000-5eed01")
            if hasattr(e, "build_id")
            else e
            for e in events
        ],
    )
    app = BuildsTestApp(FakeSession(Target()), lambda: HistoryScreen(root))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: getattr(screen, "loaded", False), 10)
        await wait_until(pilot, lambda: "Build history  1 of 2" in screen_text(pilot), 10)
        await pilot.press("down")
        await wait_until(pilot, lambda: "Build history  2 of 2" in screen_text(pilot), 10)


def test_headless_summary_lists_cancelled_builds_apart(capsys: pytest.CaptureFixture[str]) -> None:
    def result(name: str, status: str, artifacts: dict[str, str], error: str = "") -> Any:
        return SimpleNamespace(name=name, status=status, artifacts=artifacts, error=error)

    _summary([result("main", "cancelled", {})], {"main": "main"})
    out = capsys.readouterr().out
    assert "--> main: cancelled" in out
    assert "artifacts of successful builds" not in out
    assert "==> Some builds didn't complete successfully and had errors:" in out
    assert "==> Builds finished but no artifacts were created." in out

    _summary(
        [result("web", "succeeded", {"us-east-1": "ami-0abc"}), result("db", "failed", {}, "boom")],
        {"web": "amazon-ebs.web", "db": "amazon-ebs.db"},
    )
    out = capsys.readouterr().out
    errors, artifacts = out.split("==> Builds finished. The artifacts of successful builds are:")
    assert "--> amazon-ebs.db: failed (boom)" in errors
    assert "--> amazon-ebs.web: AMIs were created:\nus-east-1: ami-0abc" in artifacts
    assert "db" not in artifacts


# -- screenshots at 100x30: nothing essential clipped -------------------------------------


async def test_steps_detail_is_readable_at_160_columns() -> None:
    from amibake.core.events import StepFinished

    run = scripted_run("provisioning")
    error = "script exited with status 100: E: Unable to locate package nginx-ful"
    run.states["demo"].apply(
        StepFinished(
            build="demo",
            time=run.states["demo"].started or 0.0,
            step="provision",
            status="failed",
            duration=1.0,
            error=error,
        )
    )
    app = BuildsTestApp(FakeSession(Target()), lambda: MonitorScreen.attach(run))
    async with app.run_test(size=(160, 45)) as pilot:
        # the Detail column keeps 24 cells: the error's start is on screen, the title cut
        await wait_until(pilot, lambda: error[:22] in screen_text(pilot), 10)
        assert "Provisioning" in screen_text(pilot)


async def test_main_screens_at_100x30_clip_nothing_essential(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # the browser: the selected image's full name and id
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot, app)
        assert app.browser is not None
        record = app.browser.query_one(ImageTable).current_record
        assert record is not None
        await wait_until(pilot, lambda: record.name in screen_text(pilot), 10)
        assert record.image_id in screen_text(pilot)
    # the monitor of a finished build: its artifact id and the steps' details
    run = scripted_run("finished")
    monitor = BuildsTestApp(FakeSession(Target()), lambda: MonitorScreen.attach(run))
    async with monitor.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: "4/4 deleted" in screen_text(pilot), 10)
        for ami in run.states["demo"].artifacts.values():
            await wait_until(pilot, lambda ami=ami: ami in screen_text(pilot), 10)
        assert monitor.screen.query_one("#monitor-cancel", Button)
    # the history: the artifact id of each build
    root = tmp_path / "builds"
    write_record(root, scripted_events("demo"))
    history = BuildsTestApp(FakeSession(Target()), lambda: HistoryScreen(root))
    async with history.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: getattr(history.screen, "loaded", False), 10)
        await wait_until(pilot, lambda: "ami-0abc1234def567890" in screen_text(pilot), 10)
    # the editor: problems and the build button
    editor = editor_app()
    async with editor.run_test(size=(100, 30)) as pilot:
        screen = editor.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        shown = screen_text(pilot)
        assert "Build [^b]" in shown and "Problems" in shown
        assert screen.query_one("#editor-problems", OptionList).region.width > 20


async def test_the_failed_step_panel_at_100x30_shows_the_error_and_every_choice() -> None:
    from amibake.tui.modals.failed_step import FAILED_BUTTONS, FailedStepModal

    error = (
        "script exited with status 3 (/tmp/script_1234.sh): demo.conf is missing; "
        "the provisioner ran as ubuntu on i-0123456789abcdef0"
    )
    choices = ("retry", "shell", "cleanup", "abort")
    app = BuildsTestApp(
        FakeSession(Target()), lambda: MonitorScreen.attach(scripted_run("provisioning"))
    )
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(FailedStepModal("demo", "Provisioning", error, choices))
        await wait_until(pilot, lambda: bool(app.screen.query(Button)), 10, "the panel")
        await pilot.pause()
        shown = screen_text(pilot)
        assert "demo: Provisioning failed" in shown
        assert all(word in shown for word in error.split())  # wrapped, never cut
        for choice in choices:
            label = FAILED_BUTTONS[choice][0]
            assert label in shown, (label, shown)
            button = app.screen.query_one(f"#failed-{choice}", Button)
            assert app.screen.region.contains_region(button.region), choice
