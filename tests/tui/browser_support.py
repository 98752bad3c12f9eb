"""Shared helpers of the app-shell and browser tests (issue 6): an app on the suite's cloud."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Input

from amibake.core.catalog import CatalogCache
from amibake.core.local.cloud import LocalCloud
from amibake.core.settings import Settings
from amibake.tui.app import AmibakeApp

#: A fixed clock (deprecation styling) so snapshots do not change with the date.
NOW = "2026-11-01T00:00:00.000Z"
CANONICAL = "099720109477"


def make_app(cloud: LocalCloud, home: Path, **options: Any) -> AmibakeApp:
    """An app on the running local cloud with its own settings file and image cache."""
    settings = options.pop("settings", None) or Settings.load(home / "settings.toml")
    return AmibakeApp(
        settings=settings,
        target=options.pop("target", "local"),
        cloud=cloud,
        catalog_cache=CatalogCache(home / "cache"),
        now=NOW,
        recover=options.pop("recover", False),  # the suite's shared ledger: no recovery modal
        **options,
    )


async def wait_loaded(pilot: Pilot[Any], app: AmibakeApp, timeout: float = 30.0) -> None:
    """Until the browser has finished loading its listing."""
    waited = 0.0
    while waited < timeout:
        await pilot.pause(0.05)
        waited += 0.05
        browser = app.browser
        if (
            browser is not None
            and browser.loaded_key == browser._listing_key()
            and not browser.loading_images
            and not getattr(browser, "counting", False)
            and not any(w.is_running for w in browser.workers)
        ):
            await pilot.pause()
            return
    raise AssertionError("the browser did not finish loading")


def browser_status(app: AmibakeApp) -> str:
    """The browser's status line as shown."""
    assert app.browser is not None
    return str(app.browser.query_one("#status").render())


def notification_hook(sink: list[tuple[str, str]]) -> Any:
    """A ``message_hook`` keeping every notification as (severity, message).

    The app's own list drops a notification when its timeout ends, which on a busy
    machine can come before the test looks.
    """

    def hook(message: Message) -> None:
        if isinstance(message, Notify):
            sink.append((message.notification.severity, str(message.notification.message)))

    return hook


def no_blink(app: AmibakeApp) -> None:
    """Cursors steady for snapshots."""
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False


def describe_all(cloud: LocalCloud, region: str, **params: Any) -> list[dict[str, Any]]:
    """Every image DescribeImages answers with ``params`` (paged), straight through boto3."""
    ec2 = cloud.client("ec2", region)
    images: list[dict[str, Any]] = []
    token = None
    while True:
        call = dict(params, MaxResults=1000, IncludeDeprecated=True)
        if token:
            call["NextToken"] = token
        answer = ec2.describe_images(**call)
        images += answer["Images"]
        token = answer.get("NextToken")
        if not token:
            return images
