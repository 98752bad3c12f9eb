"""The region picker: type to filter, favourites first (number keys 1-9 in the browser)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input, OptionList

from core.settings import Settings
from tui.modals.picker import PickerModal

MAX_FAVOURITES = 9


def region_options(regions: Sequence[str], favourites: Sequence[str]) -> list[tuple[str, str]]:
    pinned = [r for r in favourites if r in regions or not regions]
    options = [(r, f"{n}  ★ {r}") for n, r in enumerate(pinned, start=1)]
    options += [(r, f"     {r}") for r in regions if r not in pinned]
    return options


class RegionPicker(PickerModal):
    """A :class:`PickerModal` of regions; ``ctrl+s`` pins or unpins the highlighted one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "pin", "Pin / unpin", id="regions.pin"),
    ]

    def __init__(self, regions: Sequence[str], current: str, settings: Settings) -> None:
        self.regions = list(regions)
        self.settings = settings
        super().__init__(
            "Region",
            region_options(self.regions, settings.favourite_regions),
            current=current,
            hint="enter: switch · ctrl+s: pin/unpin (pinned regions: keys 1-9 in the browser)",
            id="region-picker",
        )

    def action_pin(self) -> None:
        options = self.query_one("#picker-options", OptionList)
        if options.highlighted is None or not self._shown:
            return
        region = self._shown[options.highlighted]
        favourites = self.settings.favourite_regions
        if region in favourites:
            favourites.remove(region)
            self.notify(f"unpinned {region}")
        elif len(favourites) >= MAX_FAVOURITES:
            self.notify(f"at most {MAX_FAVOURITES} pinned regions", severity="warning")
            return
        else:
            favourites.append(region)
            self.notify(f"pinned {region} as {len(favourites)}")
        try:
            self.settings.save()
        except OSError as error:
            self.notify(f"cannot save settings: {error}", severity="warning")
        self.options = region_options(self.regions, favourites)
        self.current = region
        self._fill(self.query_one("#picker-filter", Input).value)
