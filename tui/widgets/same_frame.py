"""Repaint several widgets in one frame of their screen.

A widget's ``refresh()`` reaches its screen in two hops: the widget marks itself dirty
and, once its own message queue is idle, tells the screen (an ``Update`` message); the
screen paints whatever it was told of at its next frame, which it starts at once when
no frame was painted in the last 1/60 s. So when a keystroke changes the filter line
and, in the same handler, the table below it, the line's news can reach the screen
first: the screen paints the line alone and the table a whole frame (16.7 ms) later.
That is the case of every key a person types (keys come further apart than frames).

:func:`repaint_together` does now, from the handler that made the changes, what each
widget would do at its next idle (Textual's ``Widget._check_refresh``): the screen's
queue then holds every widget's news before the screen next goes idle, and it paints
them in one frame. The widgets' own idle later finds nothing left to report, so nothing
is painted twice. ``tests/tui/test_browser_frames.py`` fails if Textual changes this.
"""

from __future__ import annotations

from textual.widget import Widget


def repaint_together(*widgets: Widget) -> None:
    """Have the screen of ``widgets`` paint their pending changes in one frame.

    Call it from a handler running on that screen's message queue (an event handler, a
    ``call_later`` callback, a worker of the screen), after the changes.
    """
    for widget in widgets:
        if widget.is_mounted:
            widget._check_refresh()
