"""Issue 15's bugs, each driven with Pilot as a new user met it (against the local cloud)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, TextArea

from amibake.core.events import BuildFinished, ResourceChanged
from amibake.core.examples import examples
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.settings import Settings
from amibake.core.templates import load
from amibake.tui.build_runner import runs
from amibake.tui.modals.picker import PickerModal
from amibake.tui.modals.region_picker import RegionPicker
from amibake.tui.modals.unsaved import UnsavedChangesModal
from amibake.tui.modals.use_source import UseAsSourceModal
from amibake.tui.screens.browser import BrowserScreen
from amibake.tui.screens.editor import EditorScreen
from amibake.tui.screens.history import BuildRecordScreen, read_records
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.widgets.build_panel import BuildPanel
from amibake.tui.widgets.build_panes import BuildArtifactsTable, BuildStepsTable
from amibake.tui.widgets.image_table import ImageTable
from tests.tui.browser_support import browser_status, make_app, wait_loaded
from tests.tui.builds_support import (
    BuildsTestApp,
    scripted_events,
    session_for,
    wait_until,
    write_record,
)
from tests.tui.test_monitor import chatty

SIZE = (140, 40)


def cleanup_icon(steps: BuildStepsTable) -> str:
    return str(steps.get_cell("cleanup", "icon"))


# -- 1. a built example is also a recent template: the picker opens, once per path ------------


async def test_template_picker_lists_a_built_example_once(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    demo = examples()["demo.pkr.hcl"]
    settings.remember_template(demo)  # as a build of the example leaves it
    settings.remember_template(tmp_path / "mine.pkr.hcl")
    app = make_app(cloud, tmp_path, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        for _ in range(2):  # the crash came on every later try
            await pilot.press("b")
            await wait_until(pilot, lambda: isinstance(app.screen, PickerModal), 5, "the picker")
            picker = app.screen
            assert isinstance(picker, PickerModal)
            options = picker.query_one("#picker-options", OptionList)
            ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
            assert len(ids) == len(set(ids))
            assert str(demo.resolve()) in ids and str(tmp_path / "mine.pkr.hcl") in ids
            labels = dict(picker.options)
            assert labels[str(demo.resolve())].endswith("(example)")
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, BrowserScreen), 5)


async def test_a_build_the_app_lost_is_interrupted_in_history(tmp_path: Path) -> None:
    """1, its aftermath: a record left ``running`` by an app that died reads "interrupted";
    the same record of a build that runs in this app reads "running"."""
    from types import SimpleNamespace

    from textual.widgets import DataTable

    from amibake.core.aws import Target
    from amibake.tui.build_runner import _runs_of
    from amibake.tui.screens.history import HistoryScreen
    from tests.tui.builds_support import FakeSession
    from tests.tui.test_builds_snapshots import scripted_run

    root = write_record(tmp_path / "builds", scripted_events("demo", upto="provisioning"))
    [record] = read_records(root)
    assert record.status == "running"
    for live in (False, True):
        app = BuildsTestApp(FakeSession(Target()), lambda: HistoryScreen(root))
        if live:
            run = scripted_run("provisioning")
            assert run.states["demo"].build_id == record.build_id
            run.worker = SimpleNamespace(is_running=True)  # type: ignore[assignment]
            _runs_of(app).append(run)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            table = screen.query_one("#history-table", DataTable)
            await wait_until(pilot, lambda s=screen: record.build_id in s.records, 10, "the record")
            status = str(table.get_cell(record.build_id, "status"))
            if live:
                assert "running" in status and "interrupted" not in status, status
            else:
                assert status == "⚠ interrupted"


# -- 2. cleanup that deleted everything reads ✔, live and replayed ------------------------------


async def test_replayed_cleanup_is_ok_after_success_and_after_cancel(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    succeeded = scripted_events("demo")
    cancelled = scripted_events("demo", upto="cancelling")
    last = cancelled[-1].time
    cancelled += [
        ResourceChanged(
            build="demo",
            time=last + 0.1,
            kind=kind,
            resource_id=rid,
            region="us-east-1",
            state="deleted",
        )
        for kind, rid in (
            ("instance", "i-0123456789abcdef0"),
            ("security-group", "sg-0a1b2c3d4e5f60718"),
            ("key-pair", "amibake_20260101-000000-5eed00"),
        )
    ]
    cancelled.append(
        BuildFinished(
            build="demo",
            time=last + 0.2,
            build_id="20260101-000000-5eed00",
            status="cancelled",
            duration=9.0,
        )
    )
    for events, status in ((succeeded, "succeeded"), (cancelled, "cancelled")):
        root = write_record(tmp_path / status, events)
        record = read_records(root)[0]
        app = BuildsTestApp(session_for(cloud), lambda record=record: BuildRecordScreen(record))
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, BuildRecordScreen)
            await wait_until(pilot, lambda screen=screen: screen.state is not None, 10)
            assert screen.state is not None and screen.state.status == status
            steps = screen.query_one(BuildStepsTable)
            await wait_until(pilot, lambda steps=steps: "cleanup" in steps.rows, 5)
            assert cleanup_icon(steps) == "✔", status
            assert screen.state.steps["cleanup"].state == "ok"


async def test_live_build_at_100x30_cleanup_artifact_and_search(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """2: cleanup ✔ live; 7: the artifact visible at 100x30; 4: search finds every line."""
    path = chatty(tmp_path, lines=40)
    spec = load(path)
    app = BuildsTestApp(session_for(cloud), lambda: MonitorScreen(spec, path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bool(runs(app)) and runs(app)[0].finished.is_set(), 60)
        state = runs(app)[0].states["chatty"]
        assert state.status == "succeeded"
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        steps = screen.query_one(BuildStepsTable)
        await wait_until(pilot, lambda: "cleanup" in steps.rows and cleanup_icon(steps) == "✔", 10)

        # 7: the AMI id is on screen, inside the visible region, not only in a toast
        ami = state.artifacts["us-east-1"]
        artifacts = screen.query_one(BuildArtifactsTable)
        await wait_until(pilot, lambda: artifacts.row_count == 1, 10)
        await pilot.pause()
        panel = screen.query_one(BuildPanel)
        shown = artifacts.content_region.intersection(panel.region)  # the panel clips the rest
        assert shown.height >= artifacts.row_count, (artifacts.content_region, panel.region)
        assert ami in app.export_screenshot()

        # 4: a line far above the viewport (the pane follows the end) is found, n of m shown
        view = panel.log_view
        await wait_until(pilot, lambda: any(line.text == "40" for line in view.lines()), 10)
        lines = [line.text for line in view.lines()]
        await pilot.press("slash")
        await pilot.press(*"provisioning", "enter")
        assert view.current_match is not None
        target = next(i for i, text in enumerate(lines) if "provisioning" in text.lower())
        assert view.current_match - view.first_line == target
        count = sum("provisioning" in text.lower() for text in lines)
        assert panel.search_position.startswith(f"1 of {count}")
        # enter again wraps around to the first match when it was the last
        for _ in range(count):
            await pilot.press("enter")
        assert view.current_match - view.first_line == target
        await pilot.press("escape")  # closes the search; n / N go on from the panel
        await pilot.press("N")
        assert panel.search_position.startswith(f"{count} of {count}")
        from amibake.tui.modals.help import key_rows

        described = dict((d, k) for k, d in key_rows(screen))
        assert described.get("Next match") == "n" and described.get("Previous match") == "N"


# -- 3. leaving a modified template asks: save, discard or stay --------------------------------


async def test_leaving_or_quitting_a_modified_template_asks(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5, "the editor")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        area = editor.query_one(TextArea)
        area.focus()
        await pilot.press("home", *"# mine", "enter")
        assert editor.modified and editor.text.startswith("# mine")

        await pilot.press("escape", "escape")  # as the user did: asked, then stays
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5)
        assert editor.text.startswith("# mine")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChangesModal), 5)
        await pilot.press("escape")  # stay
        await wait_until(pilot, lambda: app.screen is editor, 5)

        # quitting asks too; stay keeps the app running
        await app.run_action("quit")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChangesModal), 5)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is editor, 5)
        assert app.is_running

        # save: a new template asks where, is written, and then the editor closes
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChangesModal), 5)
        await pilot.press("s")
        await wait_until(pilot, lambda: app.screen.query("Input").first() is not None, 5)
        field = app.screen.query_one(Input)
        target = tmp_path / "saved.pkr.hcl"
        field.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BrowserScreen), 5, "back")
        assert target.read_text(encoding="utf-8").startswith("# mine")

        # discard on quit: the app exits
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5)
        second = app.screen
        assert isinstance(second, EditorScreen)
        second.query_one(TextArea).insert("# more\n", (0, 0))
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChangesModal), 5)
        await pilot.press("d")
        await wait_until(pilot, lambda: app._exit, 10, "the app to exit")


async def test_opening_another_template_over_edits_asks(tmp_path: Path) -> None:
    """3, "everywhere": ctrl+o over a modified template asks too; stay keeps the edits,
    discard opens the other file."""
    from amibake.core.aws import Target
    from amibake.tui.modals.path import PathModal
    from tests.tui.builds_support import FakeSession
    from tests.tui.test_editor import demo_copy, validated

    first = demo_copy(tmp_path)
    other = tmp_path / "other.pkr.hcl"
    other.write_text(first.read_text().replace("demo", "other"), encoding="utf-8")
    app = BuildsTestApp(FakeSession(Target()), lambda: EditorScreen(first))
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await validated(pilot, editor)
        editor.text_area.insert("# mine\n", (0, 0))
        await pilot.pause()
        assert editor.modified
        for answer in ("escape", "d"):
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(app.screen, PathModal), 5, "the path")
            app.screen.query_one("#path-input", Input).value = str(other)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChangesModal), 5)
            await pilot.press(answer)
            await wait_until(pilot, lambda: app.screen is editor, 5)
            if answer == "escape":  # stay: nothing lost, nothing opened
                assert editor.path == first and editor.text.startswith("# mine")
        await wait_until(pilot, lambda: editor.path == other, 5, "the other file")
        assert editor.text == other.read_text(encoding="utf-8") and not editor.modified
        assert not first.read_text(encoding="utf-8").startswith("# mine")


# -- 5. pinning keeps the highlight on the pinned region ----------------------------------------


async def test_pinning_a_region_keeps_it_highlighted(cloud: LocalCloud, tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    settings.favourite_regions = ["eu-north-1"]  # pinned before: the new pin goes second
    app = make_app(cloud, tmp_path, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, RegionPicker), 5)
        picker = app.screen
        assert isinstance(picker, RegionPicker)
        await pilot.press(*"eu-")
        await pilot.press("down", "down")
        options = picker.query_one("#picker-options", OptionList)
        chosen = picker._shown[options.highlighted or 0]
        assert chosen != picker._shown[0]
        await pilot.press("ctrl+s")
        assert picker._shown[options.highlighted or 0] == chosen
        assert picker._shown.index(chosen) == 1  # it moved, the highlight with it
        await pilot.press("ctrl+s", "ctrl+s")  # unpinned (moves back down), pinned again
        assert picker._shown[options.highlighted or 0] == chosen
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.region == chosen, 5, "the switch")
        assert chosen in app.settings.favourite_regions


# -- 6. the browser's status says what happens ---------------------------------------------------


async def test_browser_status_while_loading_and_after_failures(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        assert browser is not None

        assert "fetched" in browser_status(app)
        cloud.set_faults(FaultPlan(rules=(FaultRule(operation="DescribeImages", delay=2.0),)))
        try:
            await pilot.press("r")
            await wait_until(pilot, lambda: browser.loading_images, 15, "the reload")
            assert "fetched" not in browser_status(app) and "loading" in browser_status(app), (
                browser_status(app)
            )
            await wait_loaded(pilot, app)
            cloud.set_faults(
                FaultPlan(rules=(FaultRule(operation="DescribeImages", error="AuthFailure"),))
            )
            await pilot.press("r")
            await wait_loaded(pilot, app)
            assert "load failed" in browser_status(app)
            assert "Loading" not in browser.query_one(ImageTable).empty_text
        finally:
            cloud.set_faults(FaultPlan())
        # another region (listed from the cache or fetched): the old failure is gone
        app.switch_region("eu-west-1")
        await wait_loaded(pilot, app)
        app.switch_region("us-east-1")  # this one comes from the disk cache
        await wait_loaded(pilot, app)
        assert "load failed" not in browser_status(app) and "cached" in browser_status(app), (
            browser_status(app)
        )


async def test_a_profile_without_credentials_then_the_local_cloud_again(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6: a profile without credentials says "load failed" and the table does not claim to
    be loading; back on the local cloud the failure is gone without pressing ``r``.
    (No network: botocore finds no credentials before sending anything.)"""
    config = tmp_path / "aws-config"
    config.write_text("[profile empty]\nregion = us-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        assert browser is not None

        app.switch_target("profile:empty")
        await wait_until(pilot, lambda: "load failed" in browser_status(app), 15, "the failure")
        await wait_loaded(pilot, app)
        assert "Loading" not in browser.query_one(ImageTable).empty_text
        while not isinstance(app.screen, BrowserScreen):  # the credentials error, if shown
            await pilot.press("escape")
            await pilot.pause()
        app.switch_target("local")
        await wait_until(pilot, lambda: app.session.is_local and app.session.ready, 30)
        await wait_loaded(pilot, app)
        await wait_until(pilot, lambda: "load failed" not in browser_status(app), 10, "no failure")
        assert len(browser.index) > 0 and "image" in browser_status(app)


# -- 8. sort arrows on narrow columns; the filter written is the one previewed; HCL lines ----------


async def test_sorting_by_root_or_virt_shows_the_arrow(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_loaded(pilot, app)
        browser = app.browser
        assert browser is not None
        table = browser.query_one(ImageTable)
        for key, label in (("root", "Ro"), ("virt", "Vi")):
            while browser.sort_key != key:
                await pilot.press("s")
            await pilot.pause()
            header = table.render_line(0).text
            arrow = "▼" if browser.descending else "▲"
            assert header.count(arrow) == 1 and header.index(label) < header.index(arrow), header
            assert "Root" in header or key == "root"


async def test_use_as_source_writes_the_filter_it_previews(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    from amibake.core.catalog import source_ami_filter

    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("slash", *"noble amd64 server", "enter")
        await pilot.pause()
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, UseAsSourceModal), 5)
        modal = app.screen
        assert isinstance(modal, UseAsSourceModal)
        previewed = source_ami_filter(modal.image)
        assert "root-device-type" in previewed["filters"]
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 5, "the editor")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await wait_until(
            pilot, lambda: editor.validation is not None and editor.validation.spec is not None, 10
        )
        assert editor.validation is not None and editor.validation.spec is not None
        builder = editor.validation.spec.builders[0]
        written = builder.source_ami_filter
        assert written is not None
        assert dict(written.filters) == previewed["filters"]
        assert list(written.owners) == previewed["owners"]


async def test_hcl_errors_point_at_the_line_typed(cloud: LocalCloud, tmp_path: Path) -> None:
    from tests.tui.test_editor import demo_copy, validated

    path = demo_copy(tmp_path)
    app = BuildsTestApp(session_for(cloud), lambda: EditorScreen(path))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        await validated(pilot, screen)
        line = screen.text_area.document.get_line(17)
        assert line.startswith("  region ")
        for typed, col in (('  region = "us-east-1', 12), ('  region "us-east-1"', 3)):
            screen.text_area.replace(typed, (17, 0), (17, len(line)))
            line = typed
            await validated(pilot, screen)
            assert screen.validation is not None
            problems = screen.validation.problems
            assert problems and (problems[0].line, problems[0].col) == (18, col), problems
