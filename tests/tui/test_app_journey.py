"""The whole journey inside the real app: browse, use an image as source, edit, build, history."""

from __future__ import annotations

from pathlib import Path

from amibake.core.local.cloud import LocalCloud
from amibake.tui.build_runner import runs
from amibake.tui.modals.use_source import UseAsSourceModal
from amibake.tui.screens.editor import EditorScreen
from amibake.tui.screens.history import HistoryScreen
from amibake.tui.screens.monitor import MonitorScreen
from amibake.tui.widgets.image_table import ImageTable
from tests.tui.browser_support import make_app, wait_loaded
from tests.tui.builds_support import wait_until


async def test_from_the_browser_to_an_ami_and_its_history(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("slash", *"noble amd64 server", "enter")
        await pilot.pause()
        record = app.browser.query_one(ImageTable).current_record
        assert record is not None

        await pilot.press("enter")  # use it as the source...
        await wait_until(pilot, lambda: isinstance(app.screen, UseAsSourceModal), 30, "modal")
        await pilot.press("i")  # ...by its exact id
        await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen), 30, "the editor")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        assert record.image_id in editor.text_area.text
        await wait_until(
            pilot, lambda: editor.validated_generation == editor.generation, 10, "validation"
        )
        assert editor.block_reason() is None, editor.validation

        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), 30, "the monitor")
        await wait_until(pilot, lambda: runs(app) and runs(app)[0].finished.is_set(), 90)
        (state,) = runs(app)[0].states.values()
        assert state.status == "succeeded", state.error
        ami = state.artifacts["us-east-1"]
        image = cloud.client("ec2").describe_images(ImageIds=[ami])["Images"][0]
        assert image["State"] == "available"
        assert {m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m}

        await pilot.press("h")  # the history lists it, most recent first
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), 30, "history")
        history = app.screen
        await wait_until(pilot, lambda: history.loaded, 10, "the history to load")
        assert any(r.build_id == state.build_id for r in history.records.values())
