"""A vertical scrollbar whose lines are rendered once per look.

:class:`SteadyScrollBar` wraps Textual's own :class:`~textual.scrollbar.ScrollBar`
rendering (it calls it, and reads :class:`~textual.scrollbar.ScrollBarRender` the way
Textual does); :class:`amibake.tui.widgets.image_table.ImageTable` installs it as its vertical bar.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip


class SteadyScrollBar(ScrollBar):
    """A scrollbar that reuses its rendered lines.

    Each filter keystroke changes the table's row count, which makes Textual render its
    scrollbar again, line by line (about 2 ms), though a bar is a column of a handful of
    distinct cells (track above, thumb, track below, the thumb's eighth-block ends).
    Line ``i`` of a vertical bar is its cell ``i`` with the widget's styles applied, so
    this one renders through Textual as usual when it meets a cell it has not drawn,
    keeps each cell's finished line, and otherwise puts the bar together from those.
    """

    #: (style, height, width, line filters) -> finished line of each cell drawn with them.
    _lines: tuple[tuple[object, ...], dict[Segment, Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        renderable = self.render()
        if type(renderable) is not ScrollBarRender or not self.vertical:
            return super().render_lines(crop)
        height, width = self.size.height, self.size.width
        cells = ScrollBarRender.render_bar(  # the cells only: the colours are in the style
            size=height,
            virtual_size=renderable.virtual_size,
            window_size=renderable.window_size,
            position=renderable.position,
            thickness=width,
        ).segments
        key = (renderable.style, height, width, *self.get_line_filters())
        if self._lines is None or self._lines[0] != key:
            self._lines = (key, {})
        drawn = self._lines[1]
        if any(cell not in drawn for cell in cells):
            drawn.update(zip(cells, super().render_lines(self.size.region), strict=False))
        lines = [drawn[cell] for cell in cells[crop.y : crop.bottom]]
        if crop.column_span != (0, width):
            lines = [line.crop(crop.x, crop.right) for line in lines]
        return lines
