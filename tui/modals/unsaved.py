"""Save, discard or stay: asked before a modified template is left (back, open, quit)."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

#: What the user chose: write the file first, drop the edits, or go back to editing.
LeaveChoice = Literal["save", "discard", "stay"]


class UnsavedChangesModal(ModalScreen[LeaveChoice]):
    """Answers "save" (s), "discard" (d) or "stay" (escape)."""

    DEFAULT_CSS = """
    UnsavedChangesModal { align: center middle; }
    UnsavedChangesModal > Vertical {
        width: 68; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    UnsavedChangesModal #unsaved-question { text-style: bold; width: 1fr; }
    UnsavedChangesModal #unsaved-detail { color: $text-muted; margin-top: 1; width: 1fr; }
    UnsavedChangesModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    UnsavedChangesModal Button { margin-left: 1; }
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
            yield Label(f"{self.what} has unsaved changes.", id="unsaved-question")
            yield Label("Save them, discard them, or stay in the editor?", id="unsaved-detail")
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
