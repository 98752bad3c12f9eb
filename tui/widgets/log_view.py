"""The SSH output pane: a Line-API log view over a bounded buffer (toolong-style).

Only the visible lines are ever rendered, so a build printing a million lines
costs the pane a deque append per line. The buffer keeps the last
``max_lines``; the whole log is on disk (the build's ``build.log``). Lines keep
their absolute number, shown in the gutter, so a line found in the pane can be
found in the file.

Follow mode keeps the view at the end; scrolling up leaves it, scrolling back to
the end (or ``f``) resumes it. Search highlights every match in view and jumps
between matching lines.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from operator import itemgetter
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from amibake.tui.build_state import LOG_BUFFER_LINES, LogEntry, OutputLine

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
MAX_WIDTH = 1000  # a single absurd line does not make the pane scroll for ever sideways


def clean(text: str) -> str:
    """Terminal escapes and control characters out, tabs expanded: the pane draws plain text."""
    if "\t" in text:
        text = text.expandtabs(4)
    return _CONTROL.sub("", text) if ("\x1b" in text or not text.isprintable()) else text


class BuildLogView(ScrollView, can_focus=True):
    """Bounded, virtualised view of a build's output lines."""

    DEFAULT_CSS = """
    BuildLogView { height: 1fr; background: $surface; }
    BuildLogView > .log-view--gutter { color: $text-disabled; }
    BuildLogView > .log-view--stderr { color: $error; }
    BuildLogView > .log-view--info { color: $text-accent; text-style: italic; }
    BuildLogView > .log-view--error { color: $error; text-style: bold; }
    BuildLogView > .log-view--match { background: $warning 60%; color: $text; }
    BuildLogView > .log-view--current { background: $accent 30%; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", id="log.follow"),
        Binding("home", "scroll_home", "Top", show=False, id="log.home"),
        Binding("end", "scroll_end", "End", show=False, id="log.end"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-view--gutter",
        "log-view--stderr",
        "log-view--info",
        "log-view--error",
        "log-view--match",
        "log-view--current",
    }

    follow: reactive[bool] = reactive(True)
    query_text: reactive[str] = reactive("", init=False)

    class FollowChanged(Message):
        def __init__(self, view: BuildLogView, follow: bool) -> None:
            super().__init__()
            self.view = view
            self.follow = follow

    def __init__(
        self,
        *,
        max_lines: int = LOG_BUFFER_LINES,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max_lines
        self._lines: deque[LogEntry] = deque(maxlen=max_lines)  # (stream, text)
        self._total = 0  # absolute number of lines written (the buffer holds the last ones)
        self._width = 0
        self._pattern: re.Pattern[str] | None = None
        self._current_match: int | None = None  # absolute line number
        self._scrolling_to_end = False

    # -- content ----------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return self._total

    @property
    def first_line(self) -> int:
        """Absolute number (0-based) of the oldest line still in memory."""
        return self._total - len(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def lines(self) -> list[OutputLine]:
        return list(map(OutputLine._make, self._lines))

    def clear(self) -> None:
        self._lines.clear()
        self._total = 0
        self._width = 0
        self._current_match = None
        self.virtual_size = Size(0, 0)
        self.refresh()

    def write_lines(self, lines: Iterable[LogEntry], total: int | None = None) -> None:
        """Append lines (OutputLine or (stream, text)); ``total`` is the absolute count
        after them when some were skipped."""
        batch = list(lines)
        if not batch and total is None:
            return
        dropped_before = self.first_line
        self._lines.extend(batch)
        self._total = max(self._total + len(batch), total or 0)
        widest = max(map(len, map(itemgetter(1), batch)), default=0)
        self._width = min(MAX_WIDTH, max(self._width, widest + self._gutter_width()))
        dropped = self.first_line - dropped_before
        self.virtual_size = Size(self._width, len(self._lines))
        if self.follow:
            self._scroll_to_end()
        elif dropped:
            # keep the lines under the reader's eyes where they were
            self.set_scroll(self.scroll_x, max(0, self.scroll_y - dropped))
        self.refresh()

    def _scroll_to_end(self) -> None:
        self._scrolling_to_end = True
        try:
            # after the next refresh: the scrollbars (and so max_scroll_y) follow the new size
            self.scroll_end(animate=False, x_axis=False)
        finally:
            self._scrolling_to_end = False

    def on_resize(self) -> None:
        if self.follow:
            self._scroll_to_end()

    # -- follow -----------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._scrolling_to_end:
            return
        at_end = round(new_value) >= self.max_scroll_y
        if at_end != self.follow:
            self.follow = at_end

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._scroll_to_end()
        self.post_message(self.FollowChanged(self, follow))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_scroll_end(self) -> None:
        self.follow = True

    def action_scroll_home(self) -> None:
        self.follow = False
        self.scroll_to(y=0, animate=False)

    # -- search -----------------------------------------------------------------------------

    def watch_query_text(self, text: str) -> None:
        self._pattern = re.compile(re.escape(text), re.IGNORECASE) if text else None
        self._current_match = None
        self.refresh()

    def search(self, text: str, *, backwards: bool = False) -> bool:
        """Highlight ``text`` and move to its next (or previous) line; False if none matches."""
        if text != self.query_text:
            self.query_text = text
        return self._jump(backwards)

    def action_search_next(self) -> None:
        if self._pattern is not None and not self._jump(False):
            self.notify(f"No line matches {self.query_text!r}", severity="warning")

    def action_search_previous(self) -> None:
        if self._pattern is not None and not self._jump(True):
            self.notify(f"No line matches {self.query_text!r}", severity="warning")

    def _jump(self, backwards: bool) -> bool:
        """Move to the next (previous) matching line of the whole buffer, wrapping around."""
        pattern = self._pattern
        count = len(self._lines)
        if pattern is None or not count:
            return False
        first = self.first_line
        if self._current_match is not None and self._current_match >= first:
            start = self._current_match - first + (-1 if backwards else 1)
        else:  # from the lines on screen: the first below their top (above their bottom)
            start = int(self.scroll_y) + (
                self.scrollable_content_region.height - 1 if backwards else 0
            )
        start = min(max(start, -1), count)
        step = -1 if backwards else 1
        for offset in range(count):
            index = (start + step * offset) % count
            if pattern.search(self._lines[index][1]):
                self._current_match = first + index
                self.follow = False
                height = self.scrollable_content_region.height
                self.scroll_to(y=max(0, index - height // 2), animate=False, immediate=True)
                self.refresh()
                return True
        return False

    @property
    def current_match(self) -> int | None:
        return self._current_match

    def match_position(self) -> tuple[int, int]:
        """(n, m): the current match is the n-th of the m lines that match (n 0: none current)."""
        pattern = self._pattern
        if pattern is None:
            return (0, 0)
        search = pattern.search
        matches = [i for i, (_, text) in enumerate(self._lines) if search(text)]
        current = self._current_match
        n = 0
        if current is not None and current - self.first_line in matches:
            n = matches.index(current - self.first_line) + 1
        return (n, len(matches))

    # -- rendering --------------------------------------------------------------------------

    def _gutter_width(self) -> int:
        return max(6, len(str(self._total)) + 1) + 1

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        stream, text = self._lines[index]
        number = self.first_line + index
        gutter_width = self._gutter_width()
        gutter = Segment(
            f"{number + 1:>{gutter_width - 1}} ",
            base + self.get_component_rich_style("log-view--gutter", partial=True),
        )
        style = base
        if stream == "stderr":
            style = base + self.get_component_rich_style("log-view--stderr", partial=True)
        elif stream == "info":
            style = base + self.get_component_rich_style("log-view--info", partial=True)
        elif stream == "error":
            style = base + self.get_component_rich_style("log-view--error", partial=True)
        if number == self._current_match:
            style = style + self.get_component_rich_style("log-view--current", partial=True)
        segments = [gutter, *self._highlight(clean(text), style)]
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, style)
        return strip.apply_offsets(scroll_x, index)

    def _highlight(self, text: str, style: Style) -> list[Segment]:
        pattern = self._pattern
        if pattern is None:
            return [Segment(text, style)]
        segments: list[Segment] = []
        match_style = style + self.get_component_rich_style("log-view--match", partial=True)
        position = 0
        for match in pattern.finditer(text):
            if match.start() > position:
                segments.append(Segment(text[position : match.start()], style))
            segments.append(Segment(match.group(), match_style))
            position = match.end()
        if position < len(text):
            segments.append(Segment(text[position:], style))
        return segments
