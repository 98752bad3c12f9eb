"""A paused build asks what next: the failed-step panel (--on-error ask) and the breakpoint panel.

:class:`FailedStepModal` answers "retry", "shell", "cleanup" or "abort" (keep everything), or
None (escape: decide later, the build keeps waiting); :class:`BreakpointModal` answers
"continue", "shell" or None.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Label, Static

from amibake.tui.modals.dialog import DialogModal

#: choice -> (button label, variant)
FAILED_BUTTONS = {
    "retry": ("Retry step [r]", "primary"),
    "shell": ("Shell on instance [s]", "default"),
    "cleanup": ("Clean up [c]", "error"),
    "abort": ("Keep everything [k]", "warning"),
}


class FailedStepModal(DialogModal[str | None]):
    """A step of ``build`` failed; the build waits for a choice among ``choices``."""

    DEFAULT_CSS = """
    FailedStepModal > Vertical {
        width: 90; max-width: 100%; max-height: 100%; border: thick $error;
    }
    FailedStepModal #failed-error {
        color: $text-error; margin-top: 1; width: 1fr; max-height: 10; overflow-y: auto;
    }
    FailedStepModal Button { min-width: 12; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "choose('retry')", "Retry", id="failed.retry"),
        Binding("s", "choose('shell')", "Shell", id="failed.shell"),
        Binding("c", "choose('cleanup')", "Clean up", id="failed.cleanup"),
        Binding("k", "choose('abort')", "Keep everything", id="failed.keep"),
        Binding("escape", "later", "Decide later", id="failed.later"),
    ]

    def __init__(self, build: str, title: str, error: str, choices: tuple[str, ...]) -> None:
        super().__init__()
        self.build = build
        self.step_title = title
        self.error = error
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"{self.build}: {self.step_title} failed", id="failed-title", classes="dialog-title"
            )
            yield Static(self.error, id="failed-error", markup=False)
            yield Label(
                "The build is paused with its instance running. Retry runs the provisioners "
                "again from the one that failed, reading the template from disk (save a fix "
                "first). Keep everything leaves the resources for debugging (amibake sweep "
                "removes them later). Esc decides later (p brings this back).",
                id="failed-help",
                classes="dialog-detail",
            )
            with Horizontal():
                for choice in self.choices:
                    label, variant = FAILED_BUTTONS[choice]
                    # Content: "[r]" is the key, not markup
                    yield Button(Content(label), id=f"failed-{choice}", variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        first = self.query(Button).first()
        first.focus()

    def action_choose(self, choice: str) -> None:
        if choice in self.choices:
            self.dismiss(choice)

    def action_later(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = (event.button.id or "").removeprefix("failed-")
        self.action_choose(choice)


class BreakpointModal(DialogModal[str | None]):
    """A ``breakpoint`` provisioner paused ``build``: continue, or look at the instance first."""

    DEFAULT_CSS = """
    BreakpointModal > Vertical { width: 80; max-width: 100%; border: thick $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose('continue')", "Continue", id="breakpoint.continue"),
        Binding("s", "choose('shell')", "Shell", id="breakpoint.shell"),
        Binding("escape", "choose(None)", "Later", id="breakpoint.later"),
    ]

    def __init__(self, build: str, note: str, connect: str) -> None:
        super().__init__()
        self.build = build
        self.note = note
        self.connect = connect

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"{self.build}: paused at a breakpoint",
                id="breakpoint-title",
                classes="dialog-title",
            )
            if self.note:
                yield Label(self.note, classes="dialog-detail", markup=False)
            yield Label(
                "Shell opens a session on the instance with the build's key; the build goes "
                "on when you continue. Esc hides this (p brings it back).",
                classes="dialog-detail",
            )
            with Horizontal():
                yield Button(Content("Shell on instance [s]"), id="breakpoint-shell")
                yield Button(
                    Content("Continue [enter]"), id="breakpoint-continue", variant="primary"
                )

    def on_mount(self) -> None:
        self.query_one("#breakpoint-continue", Button).focus()

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("breakpoint-"))
