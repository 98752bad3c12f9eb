"""The image list: a Line-API table that renders only the rows on screen (toolong-style).

Textual's DataTable builds a row object per row (about 1.4 s for 100,000 rows), so
refilling it on every keystroke of a filter is out of the question. This view
holds only a list of row numbers into a :class:`amibake.core.catalog.CatalogIndex`;
setting a new filter result is O(1) and painting costs the visible rows alone.
Rendered rows (line filters applied) are cached by (row, width, cursor) until the rows or
the theme change, so a repaint that shows rows already drawn builds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.filter import LineFilter
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from amibake.core.catalog import CatalogIndex, ImageRecord
from amibake.tui.widgets.image_columns import (
    COLUMNS,
    DROP_ORDER,
    GAP,
    MIN_NAME_WIDTH,
    Column,
    cell_text,
    elide_middle,
)
from amibake.tui.widgets.steady_scrollbar import SteadyScrollBar

#: The re-exports keep the names other modules import from here.
__all__ = ["COLUMNS", "Column", "ImageTable", "SteadyScrollBar", "elide_middle"]

#: Rendered rows kept (row, width, cursor).
CACHE_SIZE = 512


class ImageTable(ScrollView, can_focus=True):
    """Virtualised, sortable table of images. Line 0 is the header; it never scrolls."""

    DEFAULT_CSS = """
    /* The vertical bar is always there (a bare track when every row fits): its coming
       and going with the row count would lay the screen out again on a keystroke. */
    ImageTable {
        width: 1fr;
        height: 1fr;
        overflow-x: hidden;
        overflow-y: scroll;
    }

    ImageTable > .image-table--header {
        background: $panel;
        color: $text;
        text-style: bold;
    }

    ImageTable > .image-table--sorted {
        color: $accent;
    }

    ImageTable > .image-table--cursor {
        background: $block-cursor-blurred-background;
    }

    ImageTable:focus > .image-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }

    ImageTable > .image-table--deprecated {
        color: $text-disabled;
    }

    ImageTable > .image-table--id {
        color: $text-accent;
    }

    ImageTable > .image-table--empty {
        color: $text-muted;
        text-style: italic;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home", "first", "First", show=False, id="table.first"),
        Binding("end", "last", "Last", show=False, id="table.last"),
        Binding("enter", "select", "Select", id="table.select"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "image-table--header",
        "image-table--sorted",
        "image-table--cursor",
        "image-table--deprecated",
        "image-table--id",
        "image-table--empty",
    }

    cursor: reactive[int] = reactive(0, init=False)

    class Highlighted(Message):
        """The cursor moved to ``row`` (an index row number) or to nothing (``None``)."""

        def __init__(self, table: ImageTable, row: int | None) -> None:
            super().__init__()
            self.table = table
            self.row = row

    class Selected(Message):
        """Enter or a double click on ``row``."""

        def __init__(self, table: ImageTable, row: int) -> None:
            super().__init__()
            self.table = table
            self.row = row

    class HeaderClicked(Message):
        def __init__(self, table: ImageTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.index = CatalogIndex()
        self.rows: Sequence[int] = []
        self.sort_key = "created"
        self.descending = True
        self.empty_text = "No images"
        self.now = self.index.now
        self._strips: OrderedDict[tuple[int, int, bool], Strip] = OrderedDict()
        #: The line filters and background the cached strips were filtered for.
        self._filtered_for: tuple[tuple[LineFilter, ...], Color] | None = None
        self._header_strip: tuple[tuple[int, str, bool], Strip] | None = None
        #: (base, deprecated, id, cursor) styles, looked up once per style change.
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._layouts: dict[int, list[tuple[Column, int]]] = {}
        #: Incremented by each set_rows; copied to painted_generation once drawn (benchmarks).
        self.generation = 0
        self.painted_generation = 0
        self._painted = asyncio.Event()

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """Textual's own vertical scrollbar, as a :class:`SteadyScrollBar` (as Textual makes it)."""
        if self._vertical_scrollbar is None:
            scroll_bar = SteadyScrollBar(
                vertical=True, name="vertical", thickness=self.scrollbar_size_vertical
            )
            self._vertical_scrollbar = scroll_bar
            scroll_bar.display = False
            self.app._start_widget(self, scroll_bar)
        return self._vertical_scrollbar

    # -- data ------------------------------------------------------------------------------

    def set_rows(
        self,
        index: CatalogIndex,
        rows: Sequence[int],
        *,
        sort_key: str | None = None,
        descending: bool | None = None,
        keep_image: str | None = None,
    ) -> None:
        """Show ``rows`` of ``index``. The cursor stays on ``keep_image`` if still present."""
        if index is not self.index or index.now != self.now:
            # Rendered rows are keyed by index row: they stay valid across filter results
            # (typing one more letter mostly shows rows already drawn), not across indexes.
            self._strips.clear()
        self.index = index
        self.now = index.now
        self.rows = rows
        if sort_key is not None:
            self.sort_key = sort_key
        if descending is not None:
            self.descending = descending
        self.generation += 1
        self._painted.clear()
        self._set_virtual_size(Size(self._content_width, len(rows) + 1))
        target = 0
        if keep_image is not None:
            row = index.row_of(keep_image)
            if row is not None:
                try:
                    target = rows.index(row)
                except ValueError:
                    target = 0
        old = self.cursor
        self.set_reactive(ImageTable.cursor, min(target, max(0, len(rows) - 1)))
        self._scroll_to_cursor(center=self.cursor != old and self.cursor > 0)
        self.refresh()
        self.post_message(self.Highlighted(self, self.current_row))

    async def wait_painted(self, timeout: float) -> None:
        """Until the rows last set are on screen (or ``timeout`` seconds, if never shown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._painted.wait(), timeout)

    @property
    def current_row(self) -> int | None:
        """The index row number under the cursor, or None when the table is empty."""
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    @property
    def current_record(self) -> ImageRecord | None:
        row = self.current_row
        return self.index.records[row] if row is not None else None

    # -- cursor ----------------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._scroll_to_cursor()
        self.post_message(self.Highlighted(self, self.current_row))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def _refresh_row(self, position: int) -> None:
        y = position - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh_line(y)

    def _scroll_to_cursor(self, center: bool = False) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if center:
            self.scroll_to(y=max(0, self.cursor - visible // 2), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * self._page

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.rows) - 1

    def action_select(self) -> None:
        row = self.current_row
        if row is not None:
            self.post_message(self.Selected(self, row))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            column = self._column_at(event.x)
            if column is not None:
                self.post_message(self.HeaderClicked(self, column))
            return
        position = int(self.scroll_y) + event.y - 1
        if 0 <= position < len(self.rows):
            self.cursor = position
            if event.chain >= 2:
                self.action_select()

    def _column_at(self, x: int) -> str | None:
        start = 0
        for column, width in self._layout(self._content_width):
            if start <= x < start + width + GAP:
                return column.key
            start += width + GAP
        return None

    # -- rendering -------------------------------------------------------------------------

    @property
    def _content_width(self) -> int:
        """Width left for the rows once the vertical scrollbar (gutter) is taken out."""
        return self.scrollable_content_region.width

    def _set_virtual_size(self, size: Size) -> None:
        """A new virtual size (the row count changed) without a layout pass of the screen.

        ``virtual_size`` is a layout reactive: setting it lays the whole screen out again
        and repaints what that touches, on every filter key. Only the scrollbars depend
        on it: they are updated here, and a layout is asked for only when one of them
        appears or goes (the rows' width changes then).
        """
        if size == self.virtual_size:
            return
        shown = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self.set_reactive(ImageTable.virtual_size, size)
        self._scroll_update(size)
        if (self.show_vertical_scrollbar, self.show_horizontal_scrollbar) != shown:
            self.refresh(layout=True)

    def on_resize(self, event: events.Resize) -> None:
        self._strips.clear()
        self.virtual_size = Size(self._content_width, len(self.rows) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header_strip = None
        self._styles = None

    def _row_styles(self) -> tuple[Style, Style, Style, Style]:
        """Base, deprecated, id and cursor styles (``rich_style`` costs ~0.1 ms a call)."""
        if self._styles is None:
            self._styles = (
                self.rich_style,
                self.get_component_rich_style("image-table--deprecated"),
                self.get_component_rich_style("image-table--id"),
                self.get_component_rich_style("image-table--cursor"),
            )
        return self._styles

    def _layout(self, width: int) -> list[tuple[Column, int]]:
        cached = self._layouts.get(width)
        if cached is not None:
            return cached
        columns = list(COLUMNS)
        for key in DROP_ORDER:
            fixed = sum(c.width + GAP for c in columns if c.width)
            if width - fixed >= MIN_NAME_WIDTH:
                break
            columns = [c for c in columns if c.key != key]
        fixed = sum(c.width + GAP for c in columns if c.width)
        name_width = max(12, width - fixed)
        layout = [(c, c.width or name_width) for c in columns]
        self._layouts[width] = layout
        return layout

    def render_lines(self, crop: Region) -> list[Strip]:
        """The visible rows, as final strips cached per row.

        Textual's generic path rebuilds every line of the widget on each refresh and runs
        the app's line filters over each again; a filter keystroke refreshes the whole
        table, so that was most of a keystroke's cost. The table has no border, padding,
        tint or opacity, so a row's final strip is its own strip with the filters applied:
        cached once, reused while the row stays on screen or comes back.
        """
        self.painted_generation = self.generation
        self._painted.set()
        styles = self.styles
        if (
            any(styles.padding)
            or any(edge for edge, _color in styles.border)
            or any(edge for edge, _color in styles.outline)
            or styles.tint.a
            or styles.text_opacity != 1.0
            or self.opacity != 1.0
            or styles.has_rule("hatch")
        ):
            return super().render_lines(crop)  # styled some other way: the generic path
        filters = tuple(self.get_line_filters())
        _base, background = self.background_colors
        if (filters, background) != self._filtered_for:
            self._filtered_for = (filters, background)
            self._strips.clear()
            self._header_strip = None
        strips = [self._final_line(y, filters, background) for y in crop.line_range]
        x1, x2 = crop.column_span
        if (x1, x2) != (0, self._content_width):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _final_line(self, y: int, filters: tuple[LineFilter, ...], background: Color) -> Strip:
        """Line ``y`` of the widget with the line filters applied (rows and header cached)."""
        width = self._content_width
        if y == 0:
            key = (width, self.sort_key, self.descending)
            if self._header_strip is None or self._header_strip[0] != key:
                self._header_strip = (key, self._filtered(self._header(width), filters, background))
            return self._header_strip[1]
        position = int(self.scroll_y) + y - 1
        if 0 <= position < len(self.rows):
            return self._row_line(position, width, filters, background)
        return self._filtered(self.render_line(y), filters, background)

    def _row_line(
        self, position: int, width: int, filters: tuple[LineFilter, ...], background: Color
    ) -> Strip:
        row = self.rows[position]
        key = (row, width, position == self.cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._row_strip(self.index.records[row], width, position == self.cursor)
            strip = self._filtered(strip, filters, background)
            self._strips[key] = strip
            if len(self._strips) > CACHE_SIZE:
                self._strips.popitem(last=False)
        return strip

    def _filtered(self, strip: Strip, filters: tuple[LineFilter, ...], background: Color) -> Strip:
        strip = strip.adjust_cell_length(self._content_width, self.rich_style)
        for line_filter in filters:
            strip = strip.apply_filter(line_filter, background)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self._content_width
        if y == 0:
            return self._header(width)
        position = int(self.scroll_y) + y - 1
        if not self.rows:
            if y == 1:
                style = self.get_component_rich_style("image-table--empty")
                return Strip([Segment(set_cell_size(f" {self.empty_text}", width), style)], width)
            return Strip.blank(width, self.rich_style)
        if position >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        record = self.index.records[self.rows[position]]
        return self._row_strip(record, width, position == self.cursor)

    def _header(self, width: int) -> Strip:
        base = self.get_component_rich_style("image-table--header")
        sorted_style = base + self.get_component_rich_style("image-table--sorted")
        segments: list[Segment] = []
        for column, column_width in self._layout(width):
            label = column.label
            if column.key == self.sort_key:
                arrow = "▼" if self.descending else "▲"
                if len(label) + 2 <= column_width:
                    label += f" {arrow}"
                else:  # a narrow column (Root, Virt): the arrow replaces the label's end
                    label = label[: max(0, column_width - 1)] + arrow
                style = sorted_style
            else:
                style = base
            segments.append(Segment(set_cell_size(label, column_width), style))
            segments.append(Segment(" " * GAP, base))
        return Strip(segments).adjust_cell_length(width, base)

    def _row_strip(self, record: ImageRecord, width: int, is_cursor: bool) -> Strip:
        base, deprecated, id_column, cursor = self._row_styles()
        if record.deprecation_time is not None and record.deprecation_time <= self.now:
            base = base + deprecated
        id_style = base + id_column
        if is_cursor:
            base = base + cursor
            id_style = id_style + cursor
        segments: list[Segment] = []
        gap = Segment(" " * GAP, base)
        for column, column_width in self._layout(width):
            text = cell_text(record, column.key)
            if column.key == "name":
                text = elide_middle(text, column_width)
            segments.append(
                Segment(set_cell_size(text, column_width), id_style if column.key == "id" else base)
            )
            segments.append(gap)
        return Strip(segments).adjust_cell_length(width, base)
