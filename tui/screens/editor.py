"""The template editor: highlighted text, live validation, variables, preview, build.

``EditorScreen(path=None, source_image=None, as_filter=True)``: opens ``path``
(a file, or a folder template: a picker lists its files, validated as one template),
or scaffolds a template around ``source_image`` (an AMI picked in the
browser), or starts from the shipped demo. Every change is validated after a
short pause, in a thread, by the same loader the engine uses; problems are
listed with line:col and selecting one moves the cursor there. The build
action stays disabled, with the reason shown, while the template has problems.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from amibake.core.paths import expand_home
from amibake.tui.messages import BuildRequested
from amibake.tui.screens.editor_files import NEW_TEMPLATE_NAME, EditorFiles
from amibake.tui.template_support import (
    HCL_HIGHLIGHTS,
    Validation,
    VariableField,
    hcl_language,
    preview_lines,
    remember_template,
    scaffold_from_image,
    template_folder_of,
    template_format,
    validate_folder,
    validate_text,
)
from amibake.tui.widgets.running_builds import RunningBuilds

#: Seconds of quiet after a keystroke before the template is validated again.
VALIDATE_DELAY = 0.4
LANGUAGES = {"json": "json", "hcl": "hcl", "toml": "toml"}


def _var_id(name: str) -> str:
    return "var-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


class EditorScreen(EditorFiles):
    """Edit a template and launch its builds."""

    CSS_PATH = "builds.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+b", "build", "Build", id="editor.build"),
        Binding("ctrl+s", "save", "Save", id="editor.save"),
        Binding("f2", "save_as", "Save as", id="editor.save_as"),
        Binding("ctrl+o", "open", "Open", id="editor.open"),
        Binding("f8", "next_problem", "Next problem", id="editor.next_problem"),
        Binding("escape", "back", "Back", id="editor.back"),
    ]

    def __init__(
        self,
        path: Path | None = None,
        source_image: dict[str, Any] | None = None,
        as_filter: bool = True,
        *,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.path = expand_home(path) if path is not None else None
        self.source_image = source_image
        self.as_filter = as_filter
        self.validation: Validation | None = None
        #: bumped per edit; a validation result for an older text is dropped
        self.generation = 0
        self.validated_generation = -1
        self._saved_text = ""
        self._timer: Timer | None = None
        self._var_values: dict[str, str] = {}
        self._fields: dict[str, VariableField] = {}
        self._problem_index = -1
        #: a folder template: its files' texts as edited, and as saved (``path`` is the one shown)
        self.folder: Path | None = None
        self._buffers: dict[Path, str] = {}
        self._saved_texts: dict[Path, str] = {}

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="editor-title")
        yield RunningBuilds()
        with Horizontal(id="editor-main"):
            yield TextArea.code_editor("", id="editor-text", soft_wrap=False)
            with Vertical(id="editor-side"):
                with Vertical(id="files-box", classes="build-box hidden") as box:
                    box.border_title = "Files"
                    yield OptionList(id="editor-files")
                with Vertical(id="problems-box", classes="build-box") as box:
                    box.border_title = "Problems"
                    yield OptionList(id="editor-problems")
                with VerticalScroll(
                    id="variables-box", classes="build-box", can_focus=False
                ) as box:
                    box.border_title = "Variables"
                    box.border_subtitle = "this run only: file keeps defaults"
                    yield Vertical(id="editor-variables")
                with Vertical(id="preview-box", classes="build-box") as box:
                    box.border_title = "Preview"
                    yield Static(id="editor-preview")
        with Horizontal(id="editor-actions"):
            yield Static(id="editor-status")
            yield Button("Save [^s]", id="editor-save")
            yield Button("Build [^b]", id="editor-build", variant="success", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        area = self.text_area
        # tab walks editor -> problems -> variables -> buttons; [editor] tab_indents = true
        # in settings.toml makes it indent instead (ctrl+i is tab itself in a terminal)
        settings = self._settings()
        area.tab_behavior = "indent" if getattr(settings, "editor_tab_indents", False) else "focus"
        language = hcl_language()
        if language is not None:
            area.register_language("hcl", language, HCL_HIGHLIGHTS)
        folder = template_folder_of(self.path) if self.path is not None else None
        if folder is not None and self._open_folder(folder, self.path):
            area.focus()
            return
        text = self._initial_text()
        self._load_text(text)  # a fresh starter is not "modified" until it is edited
        area.focus()

    def _initial_text(self) -> str:
        if self.path is not None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as error:
                if self.path.exists() or not self.path.parent.exists():
                    self.notify(
                        f"cannot read {self.path}: {error.strerror or error}",
                        title="Open",
                        severity="error",
                    )
                return ""  # a path that does not exist yet: a new file to save there
            remember_template(self.path, self._settings())
            return text
        if self.source_image is not None:
            session = getattr(self.app, "session", None)
            region = getattr(session, "region", None) or "us-east-1"
            return scaffold_from_image(self.source_image, region, as_filter=self.as_filter)
        from amibake.core.examples import EXAMPLES_DIR

        return (EXAMPLES_DIR / "demo.pkr.hcl").read_text(encoding="utf-8")

    def _load_text(self, text: str) -> None:
        area = self.text_area
        self._saved_text = text
        fmt = template_format(self.path or Path(NEW_TEMPLATE_NAME), text)
        language = LANGUAGES.get(fmt)
        area.language = language if language in area.available_languages else None
        area.load_text(text)
        self._update_title()
        self._schedule_validation(delay=0)

    @property
    def fmt(self) -> str:
        return template_format(self.path or Path(NEW_TEMPLATE_NAME), self.text)

    def _update_title(self) -> None:
        where = str(self.path) if self.path else f"{NEW_TEMPLATE_NAME} (not saved yet)"
        if self.folder is not None and self.path is not None:
            where = f"{self.path} (folder template {self.folder}/)"
        title = Text.assemble(("Template editor", "bold"), "  ", (where, "cyan"))
        title.append(f"  {self.fmt.upper()}", style="dim")
        if self.modified:
            title.append("  ● modified", style="yellow")
        self.query_one("#editor-title", Static).update(title)

    # -- validation -------------------------------------------------------------------------

    @on(TextArea.Changed, "#editor-text")
    def _text_changed(self) -> None:
        self._update_title()
        self._schedule_validation()

    def _schedule_validation(self, delay: float = VALIDATE_DELAY) -> None:
        self.generation += 1
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, self._validate_now) if delay else None
        if not delay:
            self._validate_now()
        self._set_status(Text("Checking...", style="dim"), ok=None)

    def _validate_now(self) -> None:
        if self.folder is not None:
            self._validate_folder(
                self.generation, self.folder, self._unsaved(), dict(self._var_values)
            )
            return
        file = str(self.path) if self.path else NEW_TEMPLATE_NAME
        template_dir = self.path.parent.resolve() if self.path else Path.cwd()
        self._validate(
            self.generation, self.text, file, self.fmt, template_dir, dict(self._var_values)
        )

    @work(thread=True, group="editor-validate")
    def _validate(
        self,
        generation: int,
        text: str,
        file: str,
        fmt: str,
        template_dir: Path,
        variables: dict[str, str],
    ) -> None:
        result = validate_text(
            text, file=file, fmt=fmt, template_dir=template_dir, variables=variables
        )
        self.app.call_from_thread(self._show_validation, generation, result)

    @work(thread=True, group="editor-validate")
    def _validate_folder(
        self, generation: int, folder: Path, unsaved: dict[Path, str], variables: dict[str, str]
    ) -> None:
        result = validate_folder(folder, unsaved=unsaved, variables=variables)
        self.app.call_from_thread(self._show_validation, generation, result)

    def _show_validation(self, generation: int, result: Validation) -> None:
        if generation != self.generation or not self.is_mounted:
            return  # the text changed since; a newer validation is on its way
        self.validation = result
        self.validated_generation = generation
        self._show_problems(result)
        self._sync_variables(result.variables)
        self._show_preview(result)
        button = self.query_one("#editor-build", Button)
        if result.ok and result.spec is not None:
            builds = len(result.spec.builders)
            self._set_status(
                Text(f"✔ Valid: {builds} build{'s' if builds > 1 else ''} ready (ctrl+b)"),
                ok=True,
            )
            button.disabled = False
            button.tooltip = None
        else:
            reason = self.block_reason() or "the template has problems"
            self._set_status(Text(f"✘ Cannot build: {reason}"), ok=False)
            button.disabled = True
            button.tooltip = reason
        self.refresh_bindings()

    def block_reason(self) -> str | None:
        """Why the build action is disabled, or None when it is not."""
        result = self.validation
        if result is None or self.validated_generation != self.generation:
            return "checking the template"
        if result.error:
            return result.error
        if result.problems:
            count = len(result.problems)
            return f"fix {count} problem{'s' if count > 1 else ''} first"
        return None

    def _set_status(self, text: Text, ok: bool | None) -> None:
        status = self.query_one("#editor-status", Static)
        status.update(text)
        status.set_class(ok is False, "blocked")
        status.set_class(ok is True, "ready")

    def _show_problems(self, result: Validation) -> None:
        problems = self.query_one("#editor-problems", OptionList)
        problems.clear_options()
        this_file = str(self.path) if self.path else NEW_TEMPLATE_NAME
        options = []
        for index, problem in enumerate(result.problems):
            here = problem.loc.file == this_file
            where = f"{problem.line}:{problem.col}" if here else str(problem.loc)
            if not here and Path(problem.loc.file) in self._buffers:
                where = f"{Path(problem.loc.file).name}:{problem.line}:{problem.col}"
            label = Text.assemble(
                (f"{where:>7} ", "bold red" if here else "red"),
                (f"{problem.path}: " if problem.path else "", "cyan"),
                " ".join(problem.message.split()),
            )
            options.append(Option(label, id=str(index)))
        if result.error:
            options.append(Option(Text(result.error, style="red"), id="error"))
        if options:
            problems.add_options(options)
        else:
            problems.add_option(
                Option(Text("No problems.", style="green"), id="none", disabled=True)
            )
        box = self.query_one("#problems-box")
        box.border_title = f"Problems ({len(result.problems)})" if result.problems else "Problems"
        self._problem_index = -1

    @on(OptionList.OptionSelected, "#editor-problems")
    def _problem_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id.isdigit():
            self.goto_problem(int(event.option.id))

    def goto_problem(self, index: int) -> None:
        """Move the cursor to problem ``index`` (in this file) and focus the text."""
        if self.validation is None or not 0 <= index < len(self.validation.problems):
            return
        problem = self.validation.problems[index]
        self._problem_index = index
        this_file = str(self.path) if self.path else NEW_TEMPLATE_NAME
        if problem.loc.file != this_file and Path(problem.loc.file) in self._buffers:
            self._switch_file(Path(problem.loc.file))  # another file of the folder template
            this_file = problem.loc.file
        if problem.loc.file != this_file:
            self.notify(str(problem), title="Problem outside this file", severity="warning")
            return
        area = self.text_area
        line = max(0, min(problem.line - 1, area.document.line_count - 1))
        col = max(0, min(problem.col - 1, len(area.document.get_line(line))))
        area.cursor_location = (line, col)
        area.scroll_cursor_visible(center=True)
        area.focus()

    def action_next_problem(self) -> None:
        if self.validation is None or not self.validation.problems:
            self.notify("No problems.")
            return
        self.goto_problem((self._problem_index + 1) % len(self.validation.problems))

    # -- variables --------------------------------------------------------------------------

    def _sync_variables(self, fields: list[VariableField]) -> None:
        container = self.query_one("#editor-variables", Vertical)
        wanted = {f.name: f for f in fields}
        for name in [n for n in self._fields if n not in wanted]:
            for row in container.query(f"#row-{_var_id(name)}"):
                row.remove()
            del self._fields[name]
        for field in fields:
            old = self._fields.get(field.name)
            if old == field:
                continue
            if old is not None:
                for row in container.query(f"#row-{_var_id(field.name)}"):
                    row.remove()
            self._fields[field.name] = field
            placeholder = "(required)" if field.default is None else field.default
            if field.sensitive:
                placeholder = "(sensitive)" if field.default is None else "•••••• (default)"
            # The default is there to edit (typing goes where the cursor is, at its end),
            # except a sensitive one, which stays hidden behind its placeholder.
            editable = field.default is not None and not field.sensitive
            shown_default = field.default if editable and field.default is not None else ""
            value = Input(
                self._var_values.get(field.name, shown_default),
                placeholder=placeholder,
                password=field.sensitive,
                id=_var_id(field.name),
                tooltip=field.description or field.type or None,
                select_on_focus=False,
            )
            label = Label(field.name + (" (secret)" if field.sensitive else ""))
            row = Horizontal(label, value, id=f"row-{_var_id(field.name)}", classes="variable-row")
            container.mount(row)
        box = self.query_one("#variables-box")
        box.set_class(not fields, "hidden")

    @on(Input.Changed, ".variable-row Input")
    def _variable_changed(self, event: Input.Changed) -> None:
        event.stop()
        for name, field in self._fields.items():
            if _var_id(name) == event.input.id:
                if event.value == field.default and not field.sensitive:
                    self._var_values.pop(name, None)  # the default as shown: nothing to pass
                else:
                    self._var_values[name] = event.value
        self._schedule_validation()

    def variable_values(self) -> dict[str, str]:
        return {k: v for k, v in self._var_values.items() if v != ""}

    def _show_preview(self, result: Validation) -> None:
        preview = self.query_one("#editor-preview", Static)
        if result.spec is None:
            preview.update(Text("(shown when the template is valid)", style="dim"))
            return
        text = Text()
        for label, value in preview_lines(result.spec):
            if text:
                text.append("\n")
            text.append(f"{label}: ", style="bold")
            text.append(value, style="cyan")
        preview.update(text)

    def action_back(self) -> None:
        self.ask_before_leaving(self.dismiss)

    # -- build ------------------------------------------------------------------------------

    @on(Button.Pressed, "#editor-build")
    def _build_pressed(self) -> None:
        self.action_build()

    @on(Button.Pressed, "#editor-save")
    def _save_pressed(self) -> None:
        self.action_save()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "build":
            return True if self.block_reason() is None else None  # None: shown disabled
        return True

    def action_build(self) -> None:
        reason = self.block_reason()
        if reason is not None:
            self.notify(f"Cannot build yet: {reason}", title="Build", severity="warning")
            return
        if self.folder is not None:
            # the build reads the folder's files: they must be the ones validated here
            if self.modified:
                self.notify(
                    "Save the folder's files first (ctrl+s)", title="Build", severity="warning"
                )
                return
            result = validate_folder(self.folder, unsaved={}, variables=self._var_values)
            if result.spec is None or not result.ok:
                self._show_validation(self.generation, result)
                return
            self.post_message(BuildRequested(result.spec, self.folder))
            return
        # Load again so the build gets its own timestamp (ami_name) and the current variables.
        file = str(self.path) if self.path else NEW_TEMPLATE_NAME
        template_dir = self.path.parent.resolve() if self.path else Path.cwd()
        result = validate_text(
            self.text,
            file=file,
            fmt=self.fmt,
            template_dir=template_dir,
            variables=self._var_values,
        )
        if result.spec is None or not result.ok:
            self._show_validation(self.generation, result)
            return
        self.post_message(BuildRequested(result.spec, self.path, template_text=self.text))
