"""A list to choose from with type-to-filter: targets, regions, owners, template files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


class PickerModal(ModalScreen[str | None]):
    """Answers the key of the chosen option, a typed value ``accept`` allows, or None."""

    DEFAULT_CSS = """
    PickerModal { align: center middle; }
    #picker {
        width: 64;
        height: auto;
        max-height: 80%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    #picker-title { text-style: bold; width: 1fr; padding-bottom: 1; }
    #picker-options { height: auto; max-height: 20; }
    #picker-hint { color: $text-muted; padding-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("down", "move(1)", "Down", show=False, id="picker.down"),
        Binding("up", "move(-1)", "Up", show=False, id="picker.up"),
    ]

    def __init__(
        self,
        title: str,
        options: Sequence[tuple[str, str]],
        *,
        current: str | None = None,
        placeholder: str = "type to filter",
        hint: str = "",
        accept: Callable[[str], bool] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        unique: dict[str, str] = {}
        for key, label in options:  # option ids must be unique: the first of a key wins
            unique.setdefault(key, label)
        self.options = list(unique.items())
        self.current = current
        self.placeholder = placeholder
        self.hint = hint
        self.accept = accept
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(self.title_text, id="picker-title")
            yield Input(placeholder=self.placeholder, id="picker-filter")
            yield OptionList(id="picker-options")
            if self.hint:
                yield Label(self.hint, id="picker-hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-filter", Input).focus()

    def _fill(self, text: str, keep: str | None = None) -> None:
        """Show the options matching ``text``; highlight ``keep`` when shown, else the
        current option (no filter) or the first."""
        needle = text.strip().lower()
        options = self.query_one("#picker-options", OptionList)
        shown = [
            (key, label)
            for key, label in self.options
            if not needle or needle in label.lower() or needle in key.lower()
        ]
        self._shown = [key for key, _ in shown]
        options.clear_options()
        options.add_options([Option(label, id=key) for key, label in shown])
        if shown:
            highlight = 0
            if keep in self._shown:
                highlight = self._shown.index(keep)
            elif not needle and self.current in self._shown:
                highlight = self._shown.index(self.current)
            options.highlighted = highlight

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one("#picker-options", OptionList)
        typed = event.value.strip()
        if self.accept is not None and typed and self.accept(typed) and typed not in self._shown:
            self.dismiss(typed)
        elif options.highlighted is not None and self._shown:
            self.dismiss(self._shown[options.highlighted])
        elif typed:
            self.notify(f"{typed!r} matches nothing here", severity="warning")

    @on(OptionList.OptionSelected, "#picker-options")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, delta: int) -> None:
        options = self.query_one("#picker-options", OptionList)
        if not self._shown:
            return
        current = options.highlighted or 0
        options.highlighted = max(0, min(len(self._shown) - 1, current + delta))

    def action_cancel(self) -> None:
        self.dismiss(None)
