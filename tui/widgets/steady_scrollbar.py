"""A vertical scrollbar that renders again only when it looks different.

:class:`SteadyScrollBar` wraps Textual's own :class:`~textual.scrollbar.ScrollBar`
rendering (it calls it, and reads :class:`~textual.scrollbar.ScrollBarRender` the way
Textual does); :class:`amibake.tui.widgets.image_table.ImageTable` installs it as its vertical bar.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip


class SteadyScrollBar(ScrollBar):
    """A scrollbar that reuses its lines while it looks the same.

    Each filter keystroke changes the table's row count, which makes Textual render its
    scrollbar again, line by line, though with thousands of rows the thumb stays one cell
    at the top. This one renders through Textual as usual, and keeps the result for the
    bar's actual segments (thumb and track cells, colours), the size and the filters.
    """

    _steady: tuple[tuple[object, ...], list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        renderable = self.render()
        if type(renderable) is not ScrollBarRender or not self.vertical:
            return super().render_lines(crop)
        height, width = self.size.height, self.size.width
        bar = ScrollBarRender.render_bar(  # the cells only: the colours are in the style
            size=height,
            virtual_size=renderable.virtual_size,
            window_size=renderable.window_size,
            position=renderable.position,
            thickness=width,
        )
        key = (renderable.style, tuple(bar.segments), height, width, *self.get_line_filters())
        if self._steady is None or self._steady[0] != key:
            self._steady = (key, super().render_lines(self.size.region))
        lines = self._steady[1][crop.y : crop.bottom]
        if crop.column_span != (0, width):
            lines = [line.crop(crop.x, crop.right) for line in lines]
        return lines
