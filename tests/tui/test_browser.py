"""The app shell and the AMI browser, driven with Pilot against the suite's local cloud."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest

from amibake.core.catalog import HEAD_ROWS, CatalogCache, CatalogIndex
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.settings import Settings
from amibake.tui.modals.error import ErrorModal
from amibake.tui.modals.help import HelpModal
from amibake.tui.modals.region_picker import RegionPicker
from amibake.tui.modals.use_source import UseAsSourceModal
from amibake.tui.screens import browser as browser_module
from amibake.tui.session import SessionChanged, UseAsSource
from amibake.tui.widgets.filter_input import FilterInput
from amibake.tui.widgets.image_table import ImageTable
from tests.tui.browser_support import (
    CANONICAL,
    browser_status,
    describe_all,
    make_app,
    wait_loaded,
)
from tests.tui.builds_support import wait_until

SIZE = (140, 40)


def table_names(app) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.browser.query_one(ImageTable)
    return [table.index.records[row].name for row in table.rows]


async def test_opens_on_local_cloud_with_every_image_of_the_owner(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        expected = {i["ImageId"] for i in describe_all(cloud, "us-east-1", Owners=[CANONICAL])}
        table = app.browser.query_one(ImageTable)
        assert {table.index.records[r].image_id for r in table.rows} == expected
        assert app.session.local_cloud is cloud
        assert app.session.ssh_port == cloud.ssh_port
        assert "local cloud · us-east-1" in app.sub_title
        status = browser_status(app)
        assert f"{len(expected):,} images" in status and "fetched just now" in status
        # newest first by default
        dates = [table.index.records[r].creation_date for r in table.rows]
        assert dates == sorted(dates, reverse=True)


async def test_listing_is_cached_on_disk_and_r_refreshes(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        count = len(app.browser.index)
    cache = CatalogCache(tmp_path / "cache")
    cached = cache.load("local", "us-east-1", "canonical")
    assert cached is not None and len(cached.records) == count
    assert count > HEAD_ROWS

    # Reopened: the cache's head is shown first (newest first), then the whole listing.
    shown: list[tuple[int, int]] = []
    set_rows = ImageTable.set_rows

    def recording(table: ImageTable, index: CatalogIndex, rows: list[int], **kw: Any) -> None:
        shown.append((len(index), len(rows)))
        set_rows(table, index, rows, **kw)

    monkeypatch.setattr(ImageTable, "set_rows", recording)
    again = make_app(cloud, tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, again)
        assert shown[0] == (HEAD_ROWS, HEAD_ROWS) and shown[-1] == (count, count)
        table = again.browser.query_one(ImageTable)
        assert [table.index.records[r].image_id for r in table.rows[:HEAD_ROWS]] == [
            r.image_id for r in cached.records[:HEAD_ROWS]
        ]
        assert again.browser.from_cache
        assert "cached just now" in browser_status(again)
        assert len(again.browser.index) == count
        await pilot.press("r")
        await wait_loaded(pilot, again)
        assert not again.browser.from_cache
        assert "fetched" in browser_status(again)


async def test_aws_wildcard_filter_matches_what_describe_images_returns(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    pattern = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("slash", *pattern)
        await pilot.pause()
        names = table_names(app)
        aws = describe_all(
            cloud, "us-east-1", Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [pattern]}]
        )
        assert names and sorted(names) == sorted(i["Name"] for i in aws)
        assert all(fnmatch.fnmatchcase(name, pattern) for name in names)
        # escape leaves the filter line, a second escape clears it
        await pilot.press("escape")
        assert app.browser.query_one(ImageTable).has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert len(table_names(app)) == len(app.browser.index)


async def test_plain_words_match_anywhere_and_fuzzy_is_the_fallback(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("slash", *"noble arm64")
        await pilot.pause()
        names = table_names(app)
        assert names and all("noble" in n and "arm64" in n for n in names)
        assert app.browser.mode == "match"
        await pilot.press(*(["backspace"] * 11), *"nblarm")
        await pilot.pause()
        assert app.browser.mode == "fuzzy"
        assert "(fuzzy) · sorted by match" in browser_status(app)
        names = table_names(app)
        assert names
        for name in names[:50]:
            rest = iter(name.lower())
            assert all(ch in rest for ch in "nblarm"), name


async def test_large_listings_show_the_first_page_then_count(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a large listing (made small here) a filter paints its first page of matches,
    says "counting…", and ends with exactly the answer of a whole query; keys typed while
    it counts make one search each, the last one's answer shown."""
    monkeypatch.setattr(browser_module, "PROGRESSIVE_FROM", 0)
    monkeypatch.setattr(browser_module, "PAGE_ROWS", 20)
    monkeypatch.setattr(browser_module, "FILL_CHUNK", 50)
    monkeypatch.setattr(browser_module, "COUNT_CHUNK", 50)
    statuses: list[str] = []
    show_status = browser_module.BrowserScreen._show_status

    def recording(screen: browser_module.BrowserScreen) -> None:
        show_status(screen)
        statuses.append(str(screen.query_one("#status").render()))

    monkeypatch.setattr(browser_module.BrowserScreen, "_show_status", recording)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        index = app.browser.index
        fresh = CatalogIndex(index.records, now=index.now)
        for text in ("ubuntu amd64", "ubuntu amd64 server"):
            statuses.clear()
            await pilot.press("slash", "ctrl+u", *text)
            await wait_loaded(pilot, app)
            expected = fresh.query(text).rows
            table = app.browser.query_one(ImageTable)
            assert len(expected) > 20 and list(table.rows) == expected
            assert any("+ shown · counting…" in status for status in statuses)
            assert f"{len(expected):,} shown" in statuses[-1] and "counting" not in statuses[-1]
        await pilot.press(*"zzz")  # no exact match: fuzzy, once every row was seen
        await wait_loaded(pilot, app)
        assert app.browser.mode == fresh.query("ubuntu amd64 serverzzz").mode
        # fuzzy matches are ranked a chunk at a time too: "ranking…" first, then the
        # whole ranked answer (no first page can be shown before every row is scored)
        statuses.clear()
        await pilot.press("ctrl+u", *"nblarm64")
        await wait_loaded(pilot, app)
        expected = fresh.query("nblarm64").rows
        assert app.browser.mode == "fuzzy" and len(expected) > 50
        assert list(app.browser.query_one(ImageTable).rows) == expected
        assert any("ranking fuzzy matches…" in status for status in statuses)
        assert "(fuzzy) · sorted by match" in statuses[-1]


async def test_sorting_by_header_click_and_keys(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.click(ImageTable, offset=(2, 0))  # the "Name" header
        await pilot.pause()
        names = table_names(app)
        assert names == sorted(names)
        await pilot.press("S")
        await pilot.pause()
        assert table_names(app) == sorted(names, reverse=True)
        await pilot.press("s")  # next column: image id, ascending
        await pilot.pause()
        table = app.browser.query_one(ImageTable)
        ids = [table.index.records[r].image_id for r in table.rows]
        assert table.sort_key == "id" and ids == sorted(ids)


async def test_facets_narrow_the_list(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        total = len(table_names(app))
        await pilot.press("a")  # arch: arm64
        await pilot.pause()
        table = app.browser.query_one(ImageTable)
        records = [table.index.records[r] for r in table.rows]
        assert records and all(r.architecture == "arm64" for r in records)
        assert len(records) < total
        while app.browser.facets.architecture != "x86_64":  # cycles through the values
            await pilot.press("a")
        await pilot.press("x")  # hide deprecated
        await pilot.pause()
        records = [table.index.records[r] for r in table.rows]
        now = app.browser.index.now
        assert records and all(r.architecture == "x86_64" for r in records)
        assert not any(r.deprecation_time and r.deprecation_time <= now for r in records)
        assert "deprecated: hidden" in str(app.browser.query_one("#facets").render())


async def test_switching_region_reloads_without_restart(cloud: LocalCloud, tmp_path: Path) -> None:
    changes: list[SessionChanged] = []
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE, message_hook=_collect(changes, SessionChanged)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, RegionPicker)
        await pilot.press(*"eu-west-1", "enter")
        await wait_loaded(pilot, app)
        assert app.session.region == "eu-west-1"
        expected = {i["ImageId"] for i in describe_all(cloud, "eu-west-1", Owners=[CANONICAL])}
        table = app.browser.query_one(ImageTable)
        assert {table.index.records[r].image_id for r in table.rows} == expected
        assert any(c.what == "region" for c in changes)
        # pinned favourites: number keys
        await pilot.press("2")
        await wait_loaded(pilot, app)
        assert app.session.region == app.settings.favourite_regions[1]
    assert Settings.load(tmp_path / "settings.toml").region == app.settings.favourite_regions[1]


async def test_owner_picker_accepts_presets_and_account_ids(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("o", *"debian", "enter")
        await wait_loaded(pilot, app)
        owners = {r.owner_id for r in app.browser.index.records}
        assert owners == {"136693071363"}
        await pilot.press("o", *"309956199498", "enter")
        await wait_loaded(pilot, app)
        assert app.settings.owner == "309956199498"
        assert {r.owner_id for r in app.browser.index.records} == {"309956199498"}


async def test_use_as_source_offers_the_id_or_the_filter(cloud: LocalCloud, tmp_path: Path) -> None:
    handed: list[UseAsSource] = []
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE, message_hook=_collect(handed, UseAsSource)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("slash", *"noble amd64 server", "enter")
        await pilot.pause()
        record = app.browser.query_one(ImageTable).current_record
        assert record is not None
        await pilot.press("enter")  # enter on a row: use it
        await wait_until(pilot, lambda: isinstance(app.screen, UseAsSourceModal), 10, "modal")
        await pilot.press("f")
        # the editor opens with the filter (wait for it, then back to the browser)
        await wait_until(pilot, lambda: handed and len(app.screen_stack) > 2, 10, "editor")
        while len(app.screen_stack) > 2:
            app.pop_screen()
            await pilot.pause()
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, UseAsSourceModal), 10, "modal")
        await pilot.press("i")
        await wait_until(pilot, lambda: len(handed) == 2, 10, "the id handed over")
    assert [m.as_filter for m in handed] == [True, False]
    assert handed[1].source_ami == record.image_id
    block = handed[0].source_ami_filter
    assert block["most_recent"] is True and block["owners"] == [CANONICAL]
    assert fnmatch.fnmatchcase(record.name, block["filters"]["name"])
    assert block["filters"]["name"].endswith("-*") and "noble" in block["filters"]["name"]
    assert handed[0].image["BlockDeviceMappings"]  # details from the on-disk cache too


async def test_copy_id_and_detail_panel(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("down", "down", "c")
        await pilot.pause(0.2)
        record = app.browser.query_one(ImageTable).current_record
        assert record is not None and app.clipboard == record.image_id
        # the selected line follows the cursor once it settles (a timer): wait for it
        await wait_until(
            pilot,
            lambda: record.image_id in str(app.browser.query_one("#selected").render()),
            10,
            "the selected line",
        )
        # below 180 columns the panel starts hidden (issue 15); i shows it, i hides it
        assert not app.browser.query_one("#details").display
        # hidden, it is not filled (an update costs a layout pass); shown, it is
        assert record.image_id not in str(app.browser.query_one("#details-text").render())
        await pilot.press("i")
        await wait_until(
            pilot,
            lambda: record.image_id in str(app.browser.query_one("#details-text").render()),
            10,
            "the details",
        )
        assert app.browser.query_one("#details").display
        details = str(app.browser.query_one("#details-text").render())
        assert record.image_id in details and "Block devices" in details
        await pilot.press("i")
        await pilot.pause()
        assert not app.browser.query_one("#details").display


async def test_help_lists_current_keys_and_keymap_remaps(cloud: LocalCloud, tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    settings.keymap = {"browser.filter": "f", "browser.refresh": "ctrl+r"}
    app = make_app(cloud, tmp_path, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        rows = dict((d, k) for k, d in app.screen.rows)
        assert rows["Filter"] == "f" and "Use as source" in rows
        await pilot.press("escape", "f")
        await pilot.pause()
        assert app.browser.query_one("#filter").has_focus


async def test_broken_settings_file_gives_defaults_and_is_kept(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("theme = [broken\n")
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        assert any("not valid" in n.message for n in app._notifications)
        app.switch_region("us-west-2")
        await wait_loaded(pilot, app)
    assert path.read_text() == "theme = [broken\n"


async def test_api_errors_are_notifications_not_crashes(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    cloud.set_faults(
        FaultPlan(rules=(FaultRule(operation="DescribeImages", error="UnauthorizedOperation"),))
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_loaded(pilot, app)
            errors = [n for n in app._notifications if n.severity == "error"]
            assert errors and "UnauthorizedOperation" in errors[0].message
            assert "load failed" in browser_status(app)
    finally:
        cloud.set_faults(FaultPlan())


@pytest.fixture
def aws_profiles(cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake AWS config: one profile on the local cloud's endpoint, one without keys, one SSO."""
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile dev]\nregion = us-east-1\naws_access_key_id = testing\n"
        f"aws_secret_access_key = testing\nendpoint_url = {cloud.endpoint_url}\n"
        "[profile nokeys]\nregion = eu-west-1\n"
        "[profile sso]\nsso_start_url = https://sso.invalid/start\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = Admin\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no SSO token cache of the developer's
    return config


async def test_targets_switch_to_a_profile_and_explain_bad_ones(
    cloud: LocalCloud, tmp_path: Path, aws_profiles: Path
) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("t")
        await pilot.pause()
        labels = [label for _, label in app.screen.options]  # type: ignore[attr-defined]
        assert labels[0].startswith("Local cloud") and "AWS profile dev" in labels
        await pilot.press(*"nokeys", "enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(app.screen, ErrorModal):
                break
        assert isinstance(app.screen, ErrorModal)
        assert "profile 'nokeys' has no usable credentials" in app.screen.message
        await pilot.press("escape")
        app.switch_target("profile:sso")
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(app.screen, ErrorModal):
                break
        assert "aws sso login --profile sso" in app.screen.message  # type: ignore[attr-defined]
        await pilot.press("escape")
        app.switch_target("profile:dev")
        await wait_loaded(pilot, app)
        assert app.session.target.profile == "dev" and app.session.local_cloud is None
        assert app.session.ssh_port is None
        assert len(app.browser.index) == len(describe_all(cloud, "us-east-1", Owners=[CANONICAL]))
        for _ in range(100):
            await pilot.pause(0.05)
            if app.session.account_id:
                break
        assert app.session.account_id == cloud.account_id
        app.switch_target("local")
        await wait_loaded(pilot, app)
        assert app.session.local_cloud is cloud


async def test_command_palette_offers_app_commands(cloud: LocalCloud, tmp_path: Path) -> None:
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("ctrl+p", *"region: eu-central-1")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_loaded(pilot, app)
        assert app.session.region == "eu-central-1"

        previous = cloud.latency
        try:
            await pilot.press("ctrl+p", *"latency: realistic")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause()
            assert cloud.latency.name == "realistic"  # the running cloud, at once
        finally:
            cloud.set_latency(previous)
    assert Settings.load(tmp_path / "settings.toml").latency == "realistic"  # and next time


def _collect(into: list, kind: type):  # type: ignore[no-untyped-def,type-arg]
    def hook(message: object) -> None:
        if isinstance(message, kind):
            into.append(message)

    return hook


async def test_the_filter_line_scrolls_like_an_input_without_a_layout_pass() -> None:
    """Typed past its width, the filter line scrolls and places its cursor exactly as
    Textual's Input does, yet no key asks for a layout pass of the screen."""
    from textual.app import App, ComposeResult
    from textual.widgets import Input

    layouts: list[str] = []

    class Recording(FilterInput):
        def refresh(self, *regions: Any, **flags: Any) -> Any:
            if flags.get("layout"):
                layouts.append(self.value)
            return super().refresh(*regions, **flags)

    async def typed(kind: type[Input]) -> list[Any]:
        class One(App[None]):
            def compose(self) -> ComposeResult:
                yield kind(id="line")

        seen: list[Any] = []
        app = One()
        async with app.run_test(size=(40, 10)) as pilot:
            line = app.query_one("#line", Input)
            line.focus()
            await pilot.pause()
            layouts.clear()
            for keys in (list("ubuntu/images/hvm-ssd/ubuntu-noble-24.04"), ["left"] * 20):
                await pilot.press(*keys)
                await pilot.pause()
                seen.append((line.scroll_x, line.cursor_screen_offset, line.virtual_size))
            await pilot.press(*["backspace"] * 25)
            await pilot.pause()
            seen.append((line.value, line.scroll_x, line.cursor_screen_offset))
        return seen

    expected = await typed(Input)
    assert expected[0][0] > 0  # it did scroll
    assert await typed(Recording) == expected
    assert layouts == []
