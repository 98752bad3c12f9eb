"""Yes/no questions before something that cannot be undone (cancelling builds, quitting)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from amibake.tui.modals.dialog import DialogModal


class ConfirmationModal(DialogModal[bool]):
    """Answers True (y) or False (n / escape), as posting's confirmation modal does."""

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
            yield Label(self.question, id="confirm-question", classes="dialog-title")
            if self.detail:
                yield Label(self.detail, id="confirm-detail", classes="dialog-detail")
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
