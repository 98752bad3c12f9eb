"""The running-builds indicator every screen shows at the right of its top line.

Builds keep running when their monitor is left; this says so wherever the user is
(``⠹ 2 builds running``). It sits on its own layer, docked to the top right, so it
takes no room from the screen's layout, and it is hidden while no build runs.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widget import Widget

from amibake.tui.build_runner import active_runs
from amibake.tui.widgets.build_panes import SPINNER

TICK = 0.1


def running_text(count: int, frame: int) -> str:
    """The indicator's words for ``count`` running builds ("" for none)."""
    if count == 0:
        return ""
    return f"{SPINNER[frame % len(SPINNER)]} {count} build{'' if count == 1 else 's'} running"


class RunningBuilds(Widget):
    """``⠹ 1 build running`` while any build of the app runs (see the module docstring)."""

    DEFAULT_CSS = """
    RunningBuilds {
        layer: running-builds;
        dock: right;
        width: auto;
        height: 1;
        padding: 0 1;
        background: $warning-muted;
        color: $text;
        text-style: bold;
        display: none;
    }
    RunningBuilds.-running { display: block; }
    """

    text: reactive[str] = reactive("", layout=False)

    def on_mount(self) -> None:
        self._frame = 0
        self._tick()
        self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        self._frame += 1
        count = sum(
            not state.finished for run in active_runs(self.app) for state in run.states.values()
        )
        text = running_text(count, self._frame)
        if len(text) != len(self.text):
            self.refresh(layout=True)  # the width follows the words, not each spinner frame
        self.text = text
        self.set_class(count > 0, "-running")

    def render(self) -> str:
        return self.text
