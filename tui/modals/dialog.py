"""The look the question modals share: a centred box, a bold title, muted details, buttons
on the right. Each modal sets only its box's width and border colour (and what it adds)."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class DialogModal(ModalScreen[ResultType]):
    """A ``Vertical`` box holding a ``.dialog-title`` label, ``.dialog-detail`` labels and a
    ``Horizontal`` row of buttons."""

    DEFAULT_CSS = """
    DialogModal { align: center middle; }
    DialogModal > Vertical {
        width: 64; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    DialogModal .dialog-title { text-style: bold; width: 1fr; }
    DialogModal .dialog-detail { color: $text-muted; margin-top: 1; width: 1fr; }
    DialogModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    DialogModal Button { margin-left: 1; }
    """
