"""Writing templates: amibake TOML (tomli-w), Packer JSON, and canonical formatting.

Conversion works on the raw template, before evaluation, so ``{{timestamp}}``
stays a timestamp of each future run instead of the one of the conversion.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

import tomli_w

from amibake.core.templates.errors import Loc, Problems, TemplateError
from amibake.core.templates.gotemplate import BUILD_NAME_KEY
from amibake.core.templates.nodes import (
    SPLAT_ITEM,
    Attr,
    BadNode,
    Binary,
    Call,
    Cond,
    Expr,
    ExprNode,
    ForX,
    Index,
    ListNode,
    Lit,
    MapNode,
    Name,
    Node,
    ObjectX,
    RawTemplate,
    Scalar,
    Section,
    Splat,
    Tmpl,
    TmplFor,
    TmplIf,
    TupleX,
    Unary,
)

SINGLE_BLOCKS = ("source_ami_filter", "aws_polling")
_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

# --------------------------------------------------------------------------- HCL-syntax expressions


def hcl_expr(expr: Expr) -> str:
    """Print an expression in HCL2 syntax (the inside of ``${ }``)."""
    if isinstance(expr, Lit):
        value = expr.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        return _hcl_string(str(value))
    if isinstance(expr, Tmpl | TmplIf | TmplFor):
        return '"' + _template_body(expr, _hcl_escape) + '"'
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, Attr):
        if expr.name == BUILD_NAME_KEY and isinstance(expr.obj, Name):
            # `{{ build_name }}`: the source's label, which is its name in a written template
            return f"{expr.obj.name}.name"
        return f"{hcl_expr(expr.obj)}.{expr.name}"
    if isinstance(expr, Index):
        return f"{hcl_expr(expr.obj)}[{hcl_expr(expr.key)}]"
    if isinstance(expr, Call):
        args = ", ".join(hcl_expr(a) for a in expr.args)
        return f"{expr.name}({args}{'...' if expr.expand else ''})"
    if isinstance(expr, Unary):
        return f"{expr.op}{_paren(expr.operand)}"
    if isinstance(expr, Binary):
        return f"{_paren(expr.left)} {expr.op} {_paren(expr.right)}"
    if isinstance(expr, Cond):
        return f"{_paren(expr.test)} ? {_paren(expr.then)} : {_paren(expr.other)}"
    if isinstance(expr, TupleX):
        return "[" + ", ".join(hcl_expr(i) for i in expr.items) + "]"
    if isinstance(expr, ObjectX):
        items = ", ".join(f"({hcl_expr(k)}) = {hcl_expr(v)}" for k, v in expr.items)
        return "{" + items + "}"
    if isinstance(expr, ForX):
        names = f"{expr.key_var}, {expr.value_var}" if expr.key_var else expr.value_var
        head = f"for {names} in {hcl_expr(expr.collection)} : "
        cond = f" if {hcl_expr(expr.cond)}" if expr.cond is not None else ""
        if expr.key is None:
            return f"[{head}{hcl_expr(expr.value)}{cond}]"
        group = "..." if expr.group else ""
        return f"{{{head}{hcl_expr(expr.key)} => {hcl_expr(expr.value)}{group}{cond}}}"
    if isinstance(expr, Splat):
        each = hcl_expr(expr.each)  # over Name(SPLAT_ITEM), printed "*"
        return f"{_paren(expr.obj)}[*]{each[len(SPLAT_ITEM) :]}"
    raise TypeError(expr)  # pragma: no cover - every Expr kind is handled above


def _template_body(expr: Expr, escape: Callable[[str], str]) -> str:
    """The inside of a string template: text, ``${ }`` and ``%{ if }``/``%{ for }`` directives."""
    if isinstance(expr, Lit):
        return escape("" if expr.value is None else _literal_text(expr.value))
    if isinstance(expr, Tmpl):
        return "".join(
            escape(p) if isinstance(p, str) else _template_body(p, escape) for p in expr.parts
        )
    if isinstance(expr, TmplIf):
        other = _template_body(expr.other, escape)
        return (
            f"%{{ if {hcl_expr(expr.test)} }}{_template_body(expr.then, escape)}"
            + (f"%{{ else }}{other}" if other else "")
            + "%{ endif }"
        )
    if isinstance(expr, TmplFor):
        names = f"{expr.key_var}, {expr.value_var}" if expr.key_var else expr.value_var
        return (
            f"%{{ for {names} in {hcl_expr(expr.collection)} }}"
            f"{_template_body(expr.body, escape)}%{{ endfor }}"
        )
    return "${" + hcl_expr(expr) + "}"


def _paren(expr: Expr) -> str:
    text = hcl_expr(expr)
    return f"({text})" if isinstance(expr, Binary | Cond | Unary) else text


def _hcl_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = text.replace("\r", "\\r").replace("\t", "\\t")
    return text.replace("${", "$${").replace("%{", "%%{")


def _hcl_string(text: str) -> str:
    return '"' + _hcl_escape(text) + '"'


def template_text(expr: Expr) -> str:
    """An expression as an amibake TOML string template."""
    return _template_body(expr, lambda p: p.replace("${", "$${").replace("%{", "%%{"))


# --------------------------------------------------------------------------- TOML


def _toml_value(node: Node, problems: Problems, path: str) -> Any:
    if isinstance(node, Scalar):
        if isinstance(node.value, str):
            return node.value.replace("${", "$${").replace("%{", "%%{")
        return node.value
    if isinstance(node, ExprNode):
        return template_text(node.expr)
    if isinstance(node, ListNode):
        return [_toml_value(i, problems, path) for i in node.items if not _is_null(i)]
    if isinstance(node, MapNode):
        return {
            k: _toml_value(v, problems, f"{path}.{k}")
            for k, v in node.entries.items()
            if not _is_null(v)
        }
    problems.add(node.loc, path, "this value cannot be converted")
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, Scalar) and node.value is None


def _scoped(
    section: Section, write: Any, problems: Problems, raw: RawTemplate
) -> dict[str, Any]:
    """A provisioner or post-processor: an HCL2 one runs only for its build block's sources
    (and a copy made per source for ``${source.name}`` for that source alone), which a
    written template says with ``only``."""
    out = _body(section, write, problems)
    everyone = {b.name or b.type for b in raw.builders}
    if section.builders and set(section.builders) != everyone and "only" not in out:
        out["only"] = list(section.builders)
    return out


def _body(section: Section, write: Any, problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {"type": section.type}
    if section.name is not None:
        out["name"] = section.name
    for key, node in section.body.entries.items():
        if _is_null(node):
            continue
        if key in SINGLE_BLOCKS and isinstance(node, ListNode) and len(node.items) == 1:
            node = node.items[0]
        out[key] = write(node, problems, f"{section.path}.{key}")
    return out


def to_toml(raw: RawTemplate) -> str:
    """The template as amibake TOML; :class:`TemplateError` if something cannot be written."""
    problems = Problems()
    doc: dict[str, Any] = {}
    if raw.variables:
        variables: dict[str, Any] = {}
        for name, decl in raw.variables.items():
            table: dict[str, Any] = {}
            if decl.has_default and decl.default is not None and not _is_null(decl.default):
                table["default"] = _toml_value(decl.default, problems, f"var.{name}")
            elif decl.has_default:
                problems.add(decl.loc, f"var.{name}", "a null default cannot be written in TOML")
            if decl.sensitive:
                table["sensitive"] = True
            if decl.description:
                table["description"] = decl.description
            if decl.type:
                table["type"] = decl.type
            if set(table) == {"default"} and not isinstance(table["default"], dict):
                variables[name] = table["default"]
            else:
                variables[name] = table
        doc["variables"] = variables
    if raw.locals:
        doc["locals"] = {k: _toml_value(v, problems, f"local.{k}") for k, v in raw.locals.items()}
    doc["builders"] = [_body(s, _toml_value, problems) for s in raw.builders]
    if raw.provisioners:
        doc["provisioners"] = [_scoped(s, _toml_value, problems, raw) for s in raw.provisioners]
    if raw.post_processors:
        doc["post_processors"] = [
            _scoped(s, _toml_value, problems, raw) for s in raw.post_processors
        ]
    if raw.error_cleanup_provisioner is not None:
        doc["error_cleanup_provisioner"] = _scoped(
            raw.error_cleanup_provisioner, _toml_value, problems, raw
        )
    problems.raise_if_any()
    return tomli_w.dumps(doc, multiline_strings=True)


# --------------------------------------------------------------------------- Packer JSON


class _GoWriter:
    """Expressions as Packer JSON ``{{ }}`` templates (only what Packer JSON can express)."""

    def __init__(self, raw: RawTemplate, problems: Problems) -> None:
        self.raw = raw
        self.problems = problems
        self.inlining: set[str] = set()

    def fail(self, loc: Loc, path: str, what: str) -> str:
        self.problems.add(loc, path, f"{what} cannot be written as Packer JSON")
        return ""

    def string(self, expr: Expr, path: str) -> str:
        if isinstance(expr, Lit):
            return "" if expr.value is None else _literal_text(expr.value)
        if isinstance(expr, Tmpl):
            return "".join(p if isinstance(p, str) else self.action(p, path) for p in expr.parts)
        return self.action(expr, path)

    def action(self, expr: Expr, path: str) -> str:
        if isinstance(expr, Attr) and isinstance(expr.obj, Name) and expr.obj.name == "local":
            return self.local(expr, path)
        if isinstance(expr, Lit):
            return _literal_text(expr.value)
        inner = self.pipeline(expr, path)
        return "{{" + inner + "}}" if inner else ""

    def local(self, expr: Attr, path: str) -> str:
        node = self.raw.locals.get(expr.name)
        if node is None or expr.name in self.inlining:
            return self.fail(expr.loc, path, f"local `{expr.name}`")
        self.inlining.add(expr.name)
        try:
            if isinstance(node, Scalar):
                return _literal_text(node.value)
            if isinstance(node, ExprNode):
                return self.string(node.expr, path)
            return self.fail(expr.loc, path, f"local `{expr.name}` (a list or object)")
        finally:
            self.inlining.discard(expr.name)

    def arg(self, expr: Expr, path: str) -> str:
        if isinstance(expr, Lit) and isinstance(expr.value, str):
            return json.dumps(expr.value)
        if isinstance(expr, Lit) and isinstance(expr.value, int):
            return str(expr.value)
        inner = self.pipeline(expr, path)
        return f"({inner})"

    def pipeline(self, expr: Expr, path: str) -> str:
        if isinstance(expr, Attr) and isinstance(expr.obj, Name):
            root, name = expr.obj.name, expr.name
            if root == "var":
                return f"user `{name}`"
            if root == "source" and name in ("name", "type", BUILD_NAME_KEY):
                return "build_type" if name == "type" else "build_name"
            if root == "path" and name in ("cwd", "root"):
                return "pwd" if name == "cwd" else "template_dir"
        if isinstance(expr, Call):
            n, args = expr.name, expr.args
            simple = {"unix_timestamp": "timestamp", "uuidv4": "uuid"}
            if n in simple and not args:
                return simple[n]
            if n in ("isotime", "env", "upper", "lower", "clean_resource_name") and len(args) <= 1:
                return " ".join([n, *(self.arg(a, path) for a in args)])
            if n == "timestamp" and not args:
                return 'isotime "2006-01-02T15:04:05Z07:00"'
            if (
                n == "formatdate"
                and len(args) == 2
                and isinstance(args[0], Lit)
                and isinstance(args[0].value, str)
                and isinstance(args[1], Call)
                and args[1].name == "timestamp"
            ):
                layout = formatdate_to_go(args[0].value)
                if layout is not None:
                    return f"isotime {json.dumps(layout)}"
            if n == "replace" and len(args) == 3:
                src, old, new = args
                return (
                    f"replace_all {self.arg(old, path)} {self.arg(new, path)} {self.arg(src, path)}"
                )
        if (
            isinstance(expr, Index)
            and isinstance(expr.obj, Call)
            and expr.obj.name == "split"
            and len(expr.obj.args) == 2
        ):
            sep, src = expr.obj.args
            return f"split {self.arg(src, path)} {self.arg(sep, path)} {self.arg(expr.key, path)}"
        self.fail(expr.loc, path, f"`{hcl_expr(expr)}`")
        return ""

    def value(self, node: Node, problems: Problems, path: str) -> Any:
        if isinstance(node, Scalar):
            return node.value
        if isinstance(node, ExprNode):
            return self.string(node.expr, path)
        if isinstance(node, ListNode):
            return [self.value(i, problems, path) for i in node.items]
        if isinstance(node, MapNode):
            return {k: self.value(v, problems, f"{path}.{k}") for k, v in node.entries.items()}
        self.problems.add(node.loc, path, "this value cannot be converted")
        return None


_GO_LAYOUT = {
    "YYYY": "2006",
    "YY": "06",
    "MMMM": "January",
    "MMM": "Jan",
    "MM": "01",
    "M": "1",
    "DD": "02",
    "D": "2",
    "EEEE": "Monday",
    "EEE": "Mon",
    "hh": "15",
    "HH": "03",
    "H": "3",
    "mm": "04",
    "m": "4",
    "ss": "05",
    "s": "5",
    "AA": "PM",
    "aa": "pm",
    "ZZZZZ": "Z07:00",
    "ZZZZ": "-0700",
    "ZZZ": "MST",
}
_GO_RESERVED = re.compile(r"[0-9]|Jan|Mon|MST|PM|pm|Z07|-07|_2")


def formatdate_to_go(spec: str) -> str | None:
    """An HCL ``formatdate`` spec as a Go layout for ``{{isotime}}``; None if impossible."""
    out = []
    for m in re.finditer(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+", spec):
        token = m.group(0)
        if m.group(1):
            if token not in _GO_LAYOUT:
                return None
            out.append(_GO_LAYOUT[token])
            continue
        literal = token[1:-1].replace("''", "'") if token.startswith("'") else token
        if _GO_RESERVED.search(literal):
            return None
        out.append(literal)
    return "".join(out)


def _literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def to_json(raw: RawTemplate) -> str:
    """The template as Packer legacy JSON."""
    problems = Problems()
    go = _GoWriter(raw, problems)
    doc: dict[str, Any] = {}
    if raw.variables:
        variables: dict[str, Any] = {}
        for name, decl in raw.variables.items():
            if not decl.has_default or decl.default is None or _is_null(decl.default):
                variables[name] = None
                continue
            value = go.value(decl.default, problems, f"var.{name}")
            if isinstance(value, list | dict):
                problems.add(
                    decl.loc,
                    f"var.{name}",
                    "Packer JSON variables are strings; a list or object default cannot be written",
                )
                continue
            variables[name] = _literal_text(value) if not isinstance(value, str) else value
        doc["variables"] = variables
        sensitive = [name for name, decl in raw.variables.items() if decl.sensitive]
        if sensitive:
            doc["sensitive-variables"] = sensitive
    doc["builders"] = [_body(s, go.value, problems) for s in raw.builders]
    if raw.provisioners:
        doc["provisioners"] = [_scoped(s, go.value, problems, raw) for s in raw.provisioners]
    if raw.post_processors:
        doc["post-processors"] = [_scoped(s, go.value, problems, raw) for s in raw.post_processors]
    if raw.error_cleanup_provisioner is not None:
        doc["error-cleanup-provisioner"] = _scoped(
            raw.error_cleanup_provisioner, go.value, problems, raw
        )
    problems.raise_if_any()
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- fmt


def format_json(text: str, file: str) -> str:
    from amibake.core.templates.jsonpos import parse_json

    problems = Problems()
    if parse_json(text, file, problems) is None or problems:
        raise TemplateError(problems.items)
    data = json.loads(text)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def format_toml(text: str, file: str) -> str:
    from amibake.core.templates.toml import _decode_error_loc

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        loc, message = _decode_error_loc(error, file)
        raise TemplateError([_problem(loc, f"invalid TOML: {message}")]) from None
    return tomli_w.dumps(data, multiline_strings=True)


def _problem(loc: Loc, message: str) -> Any:
    from amibake.core.templates.errors import Problem

    return Problem(loc, "", message)


def has_toml_comments(text: str) -> bool:
    """Whether TOML text has comments (which re-rendering would lose)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return True
        if "#" in stripped:
            try:
                tomllib.loads(stripped.split("#", 1)[0])
            except tomllib.TOMLDecodeError:
                continue
            if stripped.split("#", 1)[0].strip():
                return True
    return False


_ = BadNode
