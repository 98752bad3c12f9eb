"""A file path prompt: the editor's open and save-as, with recent templates to pick from."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from amibake.core.paths import expand_home


class PathModal(ModalScreen[Path | None]):
    """Asks for a file path; recent templates can be picked from a list."""

    DEFAULT_CSS = """
    PathModal { align: center middle; }
    PathModal > Vertical {
        width: 80; height: auto; max-height: 24; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    PathModal #path-title { text-style: bold; margin-bottom: 1; }
    PathModal #path-recent { height: auto; max-height: 12; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", id="path.cancel"),
    ]

    def __init__(self, title: str, initial: str = "", recent: list[Path] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.recent = recent or []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="path-title")
            yield Input(self.initial, placeholder="path/to/template.pkr.hcl", id="path-input")
            if self.recent:
                yield OptionList(
                    *(Option(str(p), id=str(i)) for i, p in enumerate(self.recent)),
                    id="path-recent",
                )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#path-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(expand_home(value) if value else None)

    @on(OptionList.OptionSelected, "#path-recent")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.recent[int(event.option.id or 0)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
