"""The garbage collector during a build's output flood: held while any run is live.

:class:`amibake.tui.build_runner.BuildRun` holds the collector when its child starts and
releases it when the run is over; the objects alive at the first hold stay out of
full collections until the last run ends.
"""

from __future__ import annotations

import gc

_HOLDS = 0


def hold_collector() -> None:
    """Keep the objects alive now (the app, its screens, modules) out of full collections.

    During an output flood the UI process allocates hundreds of thousands of small
    objects a second (the lines of the panes), so full collections come every few
    hundred milliseconds; each would walk every object of the app, a pause of ~85 ms
    a key press waits behind. Frozen (``gc.freeze``), those objects are skipped and a
    full collection costs what the build's own objects cost. They are handed back
    to the collector (``gc.unfreeze``) when no run is left.
    """
    global _HOLDS
    _HOLDS += 1
    gc.freeze()


def release_collector() -> None:
    """One hold fewer; the last one hands the frozen objects back to the collector."""
    global _HOLDS
    _HOLDS = max(0, _HOLDS - 1)
    if _HOLDS == 0:
        gc.unfreeze()
