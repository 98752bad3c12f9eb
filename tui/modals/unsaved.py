"""Save, discard or stay: asked before a modified template is left (back, open, quit)."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from amibake.tui.modals.dialog import DialogModal

#: What the user chose: write the file first, drop the edits, or go back to editing.
LeaveChoice = Literal["save", "discard", "stay"]


class UnsavedChangesModal(DialogModal[LeaveChoice]):
    """Answers "save" (s), "discard" (d) or "stay" (escape)."""

    DEFAULT_CSS = """
    UnsavedChangesModal > Vertical { width: 68; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "answer('save')", "Save", id="unsaved.save"),
        Binding("d", "answer('discard')", "Discard", id="unsaved.discard"),
        Binding("escape", "answer('stay')", "Stay", id="unsaved.stay"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"{self.what} has unsaved changes.", id="unsaved-question", classes="dialog-title"
            )
            yield Label(
                "Save them, discard them, or stay in the editor?",
                id="unsaved-detail",
                classes="dialog-detail",
            )
            with Horizontal():
                yield Button("Stay [esc]", id="unsaved-stay")
                yield Button("Discard [d]", id="unsaved-discard", variant="error")
                yield Button("Save [s]", id="unsaved-save", variant="success")

    def on_mount(self) -> None:
        self.query_one("#unsaved-stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = (event.button.id or "unsaved-stay").removeprefix("unsaved-")
        self.action_answer(choice)

    def action_answer(self, choice: str) -> None:
        self.dismiss("save" if choice == "save" else "discard" if choice == "discard" else "stay")
