"""Every binding id of the app, for checking the ``[keymap]`` section of the settings.

Textual's ``App.set_keymap`` silently ignores ids that match no binding; the app
reports them instead (:func:`unknown_keymap_ids`). A binding id names one binding
of the whole app: tests/tui/test_keymap.py checks :func:`binding_ids` has no
duplicate.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping

from textual.binding import Binding
from textual.dom import DOMNode

#: The packages and modules whose classes carry the app's bindings.
BINDING_HOMES = (
    "amibake.tui.app",
    "amibake.tui.screens",
    "amibake.tui.widgets",
    "amibake.tui.modals",
)


def _classes() -> Iterator[type[DOMNode]]:
    """Every DOMNode subclass defined in amibake's UI modules (imported here)."""
    names: list[str] = []
    for home in BINDING_HOMES:
        module = importlib.import_module(home)
        names.append(home)
        if hasattr(module, "__path__"):
            names += [m.name for m in pkgutil.iter_modules(module.__path__, prefix=home + ".")]
    seen: set[type[DOMNode]] = set()
    for name in names:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, DOMNode)
                and value.__module__ == name
                and value not in seen
            ):
                seen.add(value)
                yield value


def binding_ids() -> list[tuple[str, str]]:
    """(id, owning class) of every binding with an id, duplicates included."""
    found: list[tuple[str, str]] = []
    for cls in _classes():
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                found.append((binding.id, f"{cls.__module__}.{cls.__qualname__}"))
    return found


def unknown_keymap_ids(keymap: Mapping[str, str]) -> list[str]:
    """The ids of ``keymap`` (the settings' ``[keymap]``) that name no binding, sorted."""
    if not keymap:
        return []
    known = {binding_id for binding_id, _owner in binding_ids()}
    return sorted(set(keymap) - known)
