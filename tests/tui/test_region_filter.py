"""The region picker's filter: substrings first, then fuzzy; an empty result says so."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets import OptionList

from amibake.core.settings import Settings
from amibake.tui.modals.region_picker import RegionPicker, filter_regions, region_options

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1", "ap-southeast-1"]


def test_substring_first_then_letters_in_order_tightest_first() -> None:
    options = region_options(REGIONS, ["eu-west-2"])
    assert [k for k, _ in filter_regions(options, "west")] == [
        "eu-west-2",
        "us-west-2",
        "eu-west-1",
    ]
    assert [k for k, _ in filter_regions(options, "euw1")] == ["eu-west-1"]
    # "use1" is no substring: us-east-1 holds its letters tightest
    assert filter_regions(options, "use1")[0][0] == "us-east-1"
    assert filter_regions(options, "zz") == []
    assert filter_regions(options, "") == options


async def test_picker_filters_fuzzily_and_says_when_nothing_matches(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "settings.toml")
    picker = RegionPicker(REGIONS, "us-east-1", settings)
    app: App[None] = App()
    async with app.run_test() as pilot:
        app.push_screen(picker)
        await pilot.pause()
        await pilot.press(*"euc1")
        assert picker._shown == ["eu-central-1"]
        await pilot.press(*"xyz")
        options = picker.query_one("#picker-options", OptionList)
        assert picker._shown == []
        assert options.option_count == 1
        assert "no region matches 'euc1xyz'" in str(options.get_option_at_index(0).prompt)
