"""The browser's filter line: an Input whose keystrokes cost no layout pass of the screen."""

from __future__ import annotations

from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Input


class FilterInput(Input):
    """An :class:`Input` of a fixed size that repaints, without a layout pass, per key.

    Textual's Input sets its virtual size (the text's width, which bounds horizontal
    scrolling) on every change, and a virtual size is a layout reactive: each key would
    lay the whole screen out again (and repaint every widget the pass touches). When the
    Input's own size does not depend on its text (no ``auto`` dimension), the new virtual
    size is stored quietly instead; scrolling reads it as before, and the value change
    still repaints the line.
    """

    def _watch_value(self, value: str) -> None:
        if not self.styles.auto_dimensions:
            # The assignment in Input._watch_value then changes nothing: no layout.
            self.set_reactive(Widget.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)
