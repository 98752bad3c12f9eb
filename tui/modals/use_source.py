""" "Use as source": the exact AMI id, or the filter that finds the newest of its series."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from amibake.core.catalog import source_ami_filter


class UseAsSourceModal(ModalScreen[bool | None]):
    """Answers False for ``source_ami`` (i), True for ``source_ami_filter`` (f), None (escape)."""

    DEFAULT_CSS = """
    UseAsSourceModal { align: center middle; }
    #source-box {
        width: 80;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    #source-title { text-style: bold; width: 1fr; padding-bottom: 1; }
    #source-name { color: $text-accent; padding-bottom: 1; }
    #source-filter { background: $panel; margin-bottom: 1; }
    #source-buttons { height: auto; align-horizontal: right; }
    #source-buttons Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "answer(False)", "Exact id", id="source.exact"),
        Binding("f", "answer(True)", "Filter", id="source.filter"),
        Binding("escape", "cancel", "Cancel", id="source.cancel"),
    ]

    def __init__(self, image: dict[str, Any]) -> None:
        super().__init__()
        self.image = image

    def compose(self) -> ComposeResult:
        block = json.dumps(source_ami_filter(self.image), indent=2)
        with Vertical(id="source-box"):
            yield Label(f"Use {self.image.get('ImageId')} as the build's source", id="source-title")
            yield Static(str(self.image.get("Name", "")), id="source-name", markup=False)
            yield Label("source_ami_filter (most recent of this series):")
            yield Static(
                Syntax(block, "json", theme="ansi_dark", background_color="default"),
                id="source-filter",
            )
            with Horizontal(id="source-buttons"):
                yield Button("Exact id (i)", id="source-exact")
                yield Button("Filter (f)", id="source-filter-button", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "source-filter-button")

    def action_answer(self, as_filter: bool) -> None:
        self.dismiss(as_filter)

    def action_cancel(self) -> None:
        self.dismiss(None)
