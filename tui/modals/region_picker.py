"""The region picker: type to filter, favourites first (number keys 1-9 in the browser)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from amibake.core.settings import Settings
from amibake.tui.modals.picker import PickerModal

MAX_FAVOURITES = 9


def region_options(regions: Sequence[str], favourites: Sequence[str]) -> list[tuple[str, str]]:
    pinned = [r for r in favourites if r in regions or not regions]
    options = [(r, f"{n}  ★ {r}") for n, r in enumerate(pinned, start=1)]
    options += [(r, f"     {r}") for r in regions if r not in pinned]
    return options


def _spread(needle: str, text: str) -> int | None:
    """Cells between the first and last letter of ``needle`` found in order in ``text``
    (the tightest such span ending at the leftmost end), or None when not all are there."""
    best: int | None = None
    start = text.find(needle[0]) if needle else -1
    while start >= 0:
        position = start
        for ch in needle[1:]:
            position = text.find(ch, position + 1)
            if position < 0:
                return best
        span = position - start + 1
        best = span if best is None else min(best, span)
        start = text.find(needle[0], start + 1)
    return best


def filter_regions(options: Sequence[tuple[str, str]], text: str) -> list[tuple[str, str]]:
    """Options whose region holds ``text``, in their order (pinned first); when none does,
    those holding its letters in order (``euw1`` finds eu-west-1), tightest first."""
    needle = "".join(text.split()).lower()
    if not needle:
        return list(options)
    exact = [(key, label) for key, label in options if needle in label.lower()]
    if exact:
        return exact
    scored = [(_spread(needle, key.lower()), n) for n, (key, _) in enumerate(options)]
    return [options[n] for score, n in sorted((s, n) for s, n in scored if s is not None)]


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

    def _fill(self, text: str, keep: str | None = None) -> None:
        """As :meth:`PickerModal._fill`, with a fuzzy fallback; an empty result says so."""
        options = self.query_one("#picker-options", OptionList)
        shown = filter_regions(self.options, text)
        self._shown = [key for key, _ in shown]
        options.clear_options()
        if not shown:
            options.add_option(Option(f"no region matches {text.strip()!r}", disabled=True))
            return
        options.add_options([Option(label, id=key) for key, label in shown])
        highlight = 0
        if keep in self._shown:
            highlight = self._shown.index(keep)
        elif not text.strip() and self.current in self._shown:
            highlight = self._shown.index(self.current)
        options.highlighted = highlight

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
        # the highlight stays on the region just (un)pinned, wherever it moved
        self._fill(self.query_one("#picker-filter", Input).value, keep=region)
