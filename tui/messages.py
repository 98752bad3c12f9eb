"""What screens ask of the app: messages up, calls down.

A screen never imports another screen or the app. It posts one of these; the
app (:class:`amibake.tui.host.BuildsHost`, mixed into the app) owns the running builds
and reacts by starting a run or pushing the screen that shows it. Every message
bubbles from the screen that posts it to the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from amibake.core.model import BuildSpec
    from amibake.tui.build_runner import BuildRun


class BuildRequested(Message):
    """Build ``spec`` (from the editor, a rerun or a template file) and show its monitor.

    ``template_text``: what to build (the editor's text, saved or not); None builds the
    file or folder at ``template_path``.
    """

    def __init__(
        self, spec: BuildSpec, template_path: Path | None, template_text: str | None = None
    ) -> None:
        super().__init__()
        self.spec = spec
        self.template_path = template_path
        self.template_text = template_text


class OpenRun(Message):
    """Show the monitor of ``run``, a run the app already owns (the history's live rows)."""

    def __init__(self, run: BuildRun) -> None:
        super().__init__()
        self.run = run


class OpenHistory(Message):
    """Show the build history."""
