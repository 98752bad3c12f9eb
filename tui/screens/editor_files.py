"""The editor's files: open, save, save as, and the files of a folder template.

:class:`EditorFiles` is the base of :class:`amibake.tui.screens.editor.EditorScreen`, which
adds the text, its validation and the build; it keeps the editor's state about
files (the path shown, a folder template's texts as edited and as saved).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on
from textual.screen import Screen
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from amibake.core.errors import AmibakeError
from amibake.tui.modals.path import PathModal
from amibake.tui.modals.unsaved import LeaveChoice, UnsavedChangesModal
from amibake.tui.template_support import (
    folder_template_files,
    recent_templates,
    remember_template,
    template_folder_of,
)

NEW_TEMPLATE_NAME = "new-template.pkr.hcl"


class EditorFiles(Screen[None]):
    """The files side of the editor (see the module docstring)."""

    path: Path | None
    #: a folder template: its files' texts as edited, and as saved (``path`` is the one shown)
    folder: Path | None
    _buffers: dict[Path, str]
    _saved_texts: dict[Path, str]
    _saved_text: str
    _var_values: dict[str, str]

    def _load_text(self, text: str) -> None:
        """Show ``text`` (the editor screen re-highlights and validates it)."""
        raise NotImplementedError

    def _update_title(self) -> None:
        raise NotImplementedError

    def _settings(self) -> Any:
        """The app's settings (recent templates live there), when the app has them."""
        return getattr(getattr(self.app, "session", None), "settings", None)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#editor-text", TextArea)

    @property
    def text(self) -> str:
        return self.text_area.text

    @property
    def modified(self) -> bool:
        if self.text != self._saved_text:
            return True
        return any(
            text != self._saved_texts.get(path)
            for path, text in self._buffers.items()
            if path != self.path
        )

    # -- files ------------------------------------------------------------------------------

    def action_save(self) -> None:
        if self.path is None:
            self.action_save_as()
            return
        if self.folder is not None:  # every edited file of the folder template
            self._buffers[self.path] = self.text
            for path, text in self._buffers.items():
                if path != self.path and text != self._saved_texts.get(path):
                    if not self._write_file(path, text):
                        return
                    self._saved_texts[path] = text
        self._write(self.path)

    def action_save_as(self, then: Callable[[], object] | None = None) -> None:
        initial = str(self.path) if self.path else str(Path.cwd() / NEW_TEMPLATE_NAME)

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._write(path)
                if then is not None and not self.modified:
                    then()

        self.app.push_screen(PathModal("Save the template as", initial), chosen)

    def _write_file(self, path: Path, text: str) -> bool:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            self.notify(
                f"cannot write {path}: {error.strerror or error}", title="Save", severity="error"
            )
            return False
        return True

    def _write(self, path: Path) -> None:
        text = self.text
        if not self._write_file(path, text):
            return
        moved = path != self.path
        if self.folder is not None:
            if moved:  # saved elsewhere: open what that file belongs to
                self._open(path)
                return
            self._buffers[path] = self._saved_texts[path] = text
        self.path = path
        self._saved_text = text
        remember_template(path, self._settings())
        self.notify(f"Saved {path}", title="Save")
        self._update_title()
        if moved:
            self._load_text(text)  # the format (and so the highlighting) may follow the name

    def action_open(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is None:
                return
            self.ask_before_leaving(lambda: self._open(path))

        self.app.push_screen(
            PathModal("Open a template", recent=recent_templates(self._settings())), chosen
        )

    def _open(self, path: Path) -> None:
        folder = template_folder_of(path)
        if folder is not None:
            self._open_folder(folder, path)
            return
        self._leave_folder()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            self.notify(f"cannot open {path}: {reason}", title="Open", severity="error")
            return
        self.path = path
        remember_template(path, self._settings())
        self._var_values.clear()
        self._load_text(text)

    # -- folder templates -------------------------------------------------------------------

    def _open_folder(self, folder: Path, path: Path | None) -> bool:
        """Show ``folder``'s files in the picker and ``path`` (or the first one) in the text."""
        try:
            files = folder_template_files(folder)
            texts = {f: f.read_text(encoding="utf-8") for f in files}
        except (OSError, UnicodeDecodeError, AmibakeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            self.notify(f"cannot open {folder}: {reason}", title="Open", severity="error")
            return False
        if not files:
            self.notify(
                f"{folder}: no *.pkr.hcl or *.pkr.json file in this folder",
                title="Open",
                severity="error",
            )
            return False
        self.folder = folder
        self._buffers = dict(texts)
        self._saved_texts = dict(texts)
        self._var_values.clear()
        remember_template(folder, self._settings())
        picker = self.query_one("#editor-files", OptionList)
        picker.clear_options()
        picker.add_options(Option(f.name, id=str(i)) for i, f in enumerate(files))
        self.query_one("#files-box").remove_class("hidden")
        shown = path if path in texts else files[0]
        self.path = shown
        self._load_text(texts[shown])
        picker.highlighted = files.index(shown)
        return True

    def _leave_folder(self) -> None:
        self.folder = None
        self._buffers.clear()
        self._saved_texts.clear()
        self.query_one("#files-box").add_class("hidden")

    def _unsaved(self) -> dict[Path, str]:
        """The folder's texts as the editor has them (the shown file's current text)."""
        unsaved = dict(self._buffers)
        if self.path is not None:
            unsaved[self.path] = self.text
        return unsaved

    def _switch_file(self, path: Path) -> None:
        """Show another file of the folder template; its edits and the others' are kept."""
        if self.folder is None or self.path is None or path == self.path:
            return
        self._buffers[self.path] = self.text
        self.path = path
        self._load_text(self._buffers[path])
        self._saved_text = self._saved_texts[path]
        self._update_title()
        picker = self.query_one("#editor-files", OptionList)
        picker.highlighted = list(self._buffers).index(path)

    @on(OptionList.OptionSelected, "#editor-files")
    def _file_picked(self, event: OptionList.OptionSelected) -> None:
        files = list(self._buffers)
        index = int(event.option.id or 0)
        if 0 <= index < len(files):
            self._switch_file(files[index])
            self.text_area.focus()

    def ask_before_leaving(self, then: Callable[[], object]) -> None:
        """Run ``then`` (leave, open another file, quit) once unsaved edits are saved or
        discarded; the user can also stay, and then nothing happens."""
        if not self.modified:
            then()
            return

        def answered(choice: LeaveChoice | None) -> None:
            if choice == "discard":
                then()
            elif choice == "save":
                if self.path is None:
                    self.action_save_as(then)  # then runs once the file is written
                    return
                self.action_save()
                if not self.modified:
                    then()

        name = self.path.name if self.path is not None else "The new template"
        self.app.push_screen(UnsavedChangesModal(name), answered)
