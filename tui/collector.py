"""The garbage collector around the app's bursts of work.

Three uses, one module, so that none undoes another:

* a build's output flood (:func:`hold_collector` / :func:`release_collector`):
  :class:`amibake.tui.build_runner.BuildRun` holds the collector while its child runs;
  the objects alive at the first hold stay out of full collections until the last run
  ends;
* the AMI browser's listing (:func:`freeze_long_lived`): 100,000 records that live as
  long as the screen, kept out of full collections for good;
* typing in a filter line (:func:`pause_collections` / :func:`resume_collections`): no
  collection at all between keys, the ones due run once typing pauses.
"""

from __future__ import annotations

import gc

_HOLDS = 0
_PAUSES = 0
#: Something long-lived was frozen (the browser's listing): frozen again after a release.
_LONG_LIVED = False


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
    """One hold fewer; the last one hands the frozen objects back to the collector.

    If a long-lived listing was frozen too, what survives one full collection then is
    frozen again: otherwise every later full collection would walk the listing (30-85 ms,
    in the middle of typing a filter).
    """
    global _HOLDS
    _HOLDS = max(0, _HOLDS - 1)
    if _HOLDS == 0:
        gc.unfreeze()
        if _LONG_LIVED:
            gc.collect()
            gc.freeze()


def freeze_long_lived() -> None:
    """Keep every object alive now out of full collections (call once a big structure that
    lives as long as its screen, such as the browser's listing, is built)."""
    global _LONG_LIVED
    _LONG_LIVED = True
    gc.freeze()


def pause_collections() -> None:
    """No automatic collection until the matching :func:`resume_collections` (pauses nest).

    A full collection walks every object not frozen (the filter's recent answers, the
    table's rendered rows, Textual's caches): 15-30 ms that a keystroke waited behind.
    Paused while keys come, the collections due run once typing stops.
    """
    global _PAUSES
    _PAUSES += 1
    gc.disable()


def resume_collections() -> None:
    """One pause fewer; the last one turns automatic collection back on."""
    global _PAUSES
    if _PAUSES == 0:
        return
    _PAUSES -= 1
    if _PAUSES == 0:
        gc.enable()
