"""Yes/no questions before something that cannot be undone (cancelling builds, quitting)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmationModal(ModalScreen[bool]):
    """Answers True (y) or False (n / escape), as posting's confirmation modal does."""

    DEFAULT_CSS = """
    ConfirmationModal { align: center middle; }
    ConfirmationModal > Vertical {
        width: 64; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmationModal #confirm-question { text-style: bold; width: 1fr; }
    ConfirmationModal #confirm-detail { color: $text-muted; margin-top: 1; width: 1fr; }
    ConfirmationModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmationModal Button { margin-left: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "No", show=False, id="confirm.escape"),
    ]

    def __init__(
        self,
        question: str,
        *,
        detail: str = "",
        confirm_label: str = "Yes",
        cancel_label: str = "No",
    ) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="confirm-question")
            if self.detail:
                yield Label(self.detail, id="confirm-detail")
            with Horizontal():
                yield Button(f"{self.cancel_label} [n]", id="confirm-no")
                yield Button(f"{self.confirm_label} [y]", id="confirm-yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
