"""The browser's filter line: an Input whose keystrokes cost no layout pass of the screen
and meet no garbage collection."""

from __future__ import annotations

from textual.geometry import Size
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input

from amibake.tui.collector import pause_collections, resume_collections

#: Seconds without a change after which the collections held off while typing may run.
TYPING_PAUSE = 0.5


class FilterInput(Input):
    """An :class:`Input` of a fixed size that repaints, without a layout pass, per key.

    Textual's Input sets its virtual size (the text's width, which bounds horizontal
    scrolling) on every change, and a virtual size is a layout reactive: each key would
    lay the whole screen out again (and repaint every widget the pass touches). When the
    Input's own size does not depend on its text (no ``auto`` dimension), the new virtual
    size is stored quietly instead; scrolling reads it as before, and the value change
    still repaints the line.

    While its text keeps changing, automatic garbage collection is paused (see
    :func:`amibake.tui.collector.pause_collections`); it resumes TYPING_PAUSE seconds
    after the last change, or when the line goes away.
    """

    _collections_paused = False
    _resume_timer: Timer | None = None

    def _watch_value(self, value: str) -> None:
        if not self.styles.auto_dimensions:
            # The assignment in Input._watch_value then changes nothing: no layout.
            self.set_reactive(Widget.virtual_size, Size(self.content_width, 1))
        self._typing()
        super()._watch_value(value)

    @property
    def collections_paused(self) -> bool:
        return self._collections_paused

    def _typing(self) -> None:
        if not self._collections_paused:
            self._collections_paused = True
            pause_collections()
        if self._resume_timer is not None:
            self._resume_timer.stop()
        self._resume_timer = self.set_timer(TYPING_PAUSE, self._typing_paused)

    def _typing_paused(self) -> None:
        self._resume_timer = None
        if self._collections_paused:
            self._collections_paused = False
            resume_collections()

    def on_unmount(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.stop()
        self._typing_paused()
