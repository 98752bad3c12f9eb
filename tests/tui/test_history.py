"""The history: past builds listed from their records, replayed, rerun."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from amibake.core.history import builds_dir
from amibake.core.local.cloud import LocalCloud
from amibake.core.templates import load
from amibake.tui.build_runner import runs
from amibake.tui.screens.history import BuildRecordScreen, HistoryScreen, read_records
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.widgets.build_panes import BuildArtifactsTable, BuildStepsTable
from amibake.tui.widgets.log_view import BuildLogView
from tests.tui.builds_support import BuildsTestApp, session_for, wait_until, write_template
from tests.tui.test_monitor import chatty


async def test_history_replays_a_build_and_reruns_it(cloud: LocalCloud, tmp_path: Path) -> None:
    path = chatty(tmp_path, lines=200)
    spec = load(path)
    app = BuildsTestApp(session_for(cloud), lambda: MonitorScreen(spec, path))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 60)
        first = runs(app)[0].states["chatty"]
        assert first.status == "succeeded"
        record_dir = builds_dir() / first.build_id
        assert (record_dir / "events.ndjson").exists()

        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), 5)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_until(pilot, lambda: first.build_id in history.records, 10)
        table = history.query_one("#history-table", DataTable)
        table.move_cursor(row=table.get_row_index(first.build_id))
        assert history.selected() is not None
        row = table.get_row(first.build_id)
        assert "succeeded" in str(row[1]) and "chatty.pkr.hcl" in str(row[4])
        assert first.artifacts["us-east-1"] in str(row[5])

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BuildRecordScreen), 5)
        record_screen = app.screen
        assert isinstance(record_screen, BuildRecordScreen)
        await wait_until(pilot, lambda: record_screen.state is not None, 10)
        steps = record_screen.query_one(BuildStepsTable)
        icons = {str(steps.get_cell(key, "icon")) for key in steps.rows}
        assert "✔" in icons
        view = record_screen.query_one(BuildLogView)
        assert any(line.text == "200" for line in view.lines())
        assert any(line.stream == "stderr" for line in view.lines())
        artifacts = record_screen.query_one(BuildArtifactsTable)
        assert artifacts.selected_ami() == first.artifacts["us-east-1"]

        await pilot.press("r")  # rerun: a second build of the same template
        await wait_until(pilot, lambda: len(runs(app)) == 2, 5)
        await wait_until(pilot, runs(app)[1].finished.is_set, 60)
        second = runs(app)[1].states["chatty"]
        assert second.status == "succeeded" and second.build_id != first.build_id
    ids = [r.build_id for r in read_records()]
    assert ids.index(second.build_id) < ids.index(first.build_id)  # newest first


async def test_rerun_of_a_vanished_template_is_a_notification(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    root = tmp_path / "builds"
    record = root / "20260101-000000-abcdef"
    record.mkdir(parents=True)
    gone = write_template(tmp_path, "gone.pkr.hcl", "")
    gone.unlink()
    (record / "record.json").write_text(
        '{"build_id": "20260101-000000-abcdef", "build": "demo", "status": "failed",'
        f' "template": "{gone}", "started": 1767225600, "duration": 3.5, "artifacts": {{}},'
        ' "variables": {}, "error": "boom"}',
        encoding="utf-8",
    )
    app = BuildsTestApp(session_for(cloud), lambda: HistoryScreen(root))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_until(pilot, lambda: screen.loaded, 5)
        await pilot.press("r")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HistoryScreen)
        assert any("no longer there" in n.message for n in app._notifications)


def test_broken_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "builds"
    good = (
        '{"build_id": "good", "build": "demo", "status": "succeeded", "started": 1767225600,'
        ' "duration": 3.5, "artifacts": {"us-east-1": "ami-1"}, "variables": {"v": 1}}'
    )
    broken = {
        "not-json": "{",
        "a-list": "[1, 2]",
        "bad-start": '{"started": "yesterday"}',
        "bad-artifacts": '{"started": 1, "artifacts": [1, 2, 3]}',
        "bad-duration": '{"started": 1, "duration": {"s": 1}}',
    }
    for name, text in {"good": good, **broken}.items():
        (root / name).mkdir(parents=True)
        (root / name / "record.json").write_text(text, encoding="utf-8")
    (root / "empty").mkdir()
    records = read_records(root)
    assert [r.build_id for r in records] == ["good"]
    assert records[0].artifacts == {"us-east-1": "ami-1"} and records[0].variables == {"v": "1"}
