"""An error the user should read before going on (a notification is for the rest)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ErrorModal(ModalScreen[None]):
    """A title, a one-line message (wrapped) and OK; enter or escape closes it."""

    DEFAULT_CSS = """
    ErrorModal { align: center middle; }
    #error-box {
        width: 72;
        height: auto;
        border: thick $error;
        background: $surface;
        padding: 1 2;
    }
    #error-title { text-style: bold; width: 1fr; padding-bottom: 1; }
    #error-message { width: 1fr; padding-bottom: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", id="error.close"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Label(self.title_text, id="error-title")
            yield Label(self.message, id="error-message")
            yield Button("OK", id="error-ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#error-ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
