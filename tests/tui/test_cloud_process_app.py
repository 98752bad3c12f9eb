"""``[local] own_process``: the app runs its local cloud as a child process, browses it, and
stops it when it exits."""

from __future__ import annotations

from pathlib import Path

from amibake.core.catalog import CatalogCache
from amibake.core.local.process import LocalCloudProcess
from amibake.core.settings import Settings
from amibake.tui.app import AmibakeApp
from amibake.tui.widgets.image_table import ImageTable
from tests.tui.browser_support import NOW, wait_loaded


async def test_the_app_runs_the_local_cloud_in_its_own_process(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    settings.local_own_process = True
    settings.latency = "instant"
    app = AmibakeApp(
        settings=settings,
        target="local",
        catalog_cache=CatalogCache(tmp_path / "cache"),
        now=NOW,
        recover=False,
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_loaded(pilot, app, timeout=120)
        cloud = app.session.local_cloud
        assert isinstance(cloud, LocalCloudProcess) and cloud.running
        assert app.session.target.endpoint_url == cloud.endpoint_url
        assert app.browser is not None and app.browser.query_one(ImageTable).rows
        app.set_latency("fast")  # the palette's latency command reaches the process
        assert cloud.status()["latency"]["name"] == "fast"
    assert not cloud.running  # stopped with the app
