"""``?``: every key of the screen below and of the app, as currently mapped."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


def key_rows(screen: Screen[object]) -> list[tuple[str, str]]:
    """(keys, description) of every key of ``screen``: the bindings active now (focused
    widget, screen, app) first, then those of the screen's other widgets (the output's
    ``f``/``n``/``N``, the artifacts' ``y``) that work once that widget has the focus."""
    rows: dict[str, list[str]] = {}

    def add(binding: Binding) -> None:
        if not binding.description or binding.system:
            return
        key = screen.app.get_key_display(binding)
        keys = rows.setdefault(binding.description, [])
        if key not in keys:
            keys.append(key)

    for active in screen.active_bindings.values():
        add(active.binding)
    keymap = screen.app._keymap  # the remapped keys, as Screen._binding_chain applies them
    for widget in screen.walk_children(with_self=False):
        bindings = widget._bindings.copy()
        if keymap:
            bindings.apply_keymap(keymap)
        for _key, binding in bindings:
            if binding.id is not None:  # amibake's own; not Input's or TextArea's editing keys
                add(binding)
    return [(" ".join(keys), description) for description, keys in rows.items()]


def screen_title(screen: Screen[object]) -> str:
    """The help's title for ``screen``: its HELP_TITLE, else its class name in words."""
    title = getattr(screen, "HELP_TITLE", None)
    if isinstance(title, str) and title:
        return title
    name = type(screen).__name__.removesuffix("Screen").removesuffix("Modal")
    words = "".join(f" {c}" if c.isupper() else c for c in name).strip()
    return words[:1].upper() + words[1:].lower()


class HelpModal(ModalScreen[None]):
    """The keys in effect (after any remapping from the config file)."""

    DEFAULT_CSS = """
    HelpModal { align: center middle; }
    #help-box {
        width: 72;
        height: 80%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    #help-title { text-style: bold; width: 1fr; padding-bottom: 1; }
    #help-hint { color: $text-muted; padding-top: 1; }
    #help-keys { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, rows: list[tuple[str, str]], title: str = "Keys") -> None:
        super().__init__()
        self.rows = rows
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label(self.title_text, id="help-title")
            with VerticalScroll(id="help-keys"):
                for keys, description in self.rows:
                    yield Static(f"[b]{keys:>14}[/b]  {description}", markup=True)
            yield Label(
                "Remap any key in settings.toml under [keymap] with the binding's id.",
                id="help-hint",
                markup=False,
            )

    def action_close(self) -> None:
        self.dismiss(None)
