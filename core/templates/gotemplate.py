"""Packer legacy JSON interpolation: Go's ``text/template`` as Packer uses it.

Packer renders every string of a JSON template with Go's text/template and the
function table of packer-plugin-sdk's ``template/interpolate``. This module
parses that language (text, ``{{ pipelines }}``, ``{{if}}/{{else if}}/{{else}}/
{{end}}``, ``{{- -}}`` trimming, comments) once, and serves two moments:

* **load time** (:func:`parse_go_template`): everything that depends only on
  the template (``user``, ``env``, ``isotime``, ``uuid``, ``template_dir``, ...)
  becomes an expression of the shared language in :mod:`amibake.core.templates.nodes`
  (``{{user `x`}}`` is ``var.x``), so variables, the TOML writer and the
  evaluator treat JSON like HCL2 and TOML;
* **run time** (:func:`render_runtime`): what Packer itself renders only during
  the build (fields such as ``{{.Path}}``, ``{{.Vars}}``, ``{{.Sudo}}``,
  ``{{.SourceAMIName}}`` and ``{{build `ID`}}`` values) is kept as template text
  at load time and rendered when the build has the values. Those values are
  never resolved at load time, so secrets such as ``SSHPrivateKey`` never reach
  a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from amibake.core.errors import AmibakeError
from amibake.core.templates.errors import Loc, suggest
from amibake.core.templates.nodes import (
    Attr,
    Binary,
    Call,
    Cond,
    Expr,
    Index,
    Lit,
    Name,
    Unary,
    make_template,
)

#: The Packer version whose template language amibake reads (its function table and
#: blocks follow Packer 1.16's source). ``{{packer_version}}`` / ``packer.version``
#: return it. A template asking for another version (``min_packer_version``,
#: ``required_version``) gets a warning, not an error: amibake is not Packer, and a
#: version pin says nothing about what amibake can build.
PACKER_COMPAT_VERSION = "1.16.0"
#: The key of the evaluation scope's ``source`` object that holds Packer's
#: ``packer_build_name`` (``{{ build_name }}``): in HCL2 the source block's label, which
#: ``source.name`` is not when a build block renames the source. No HCL name can spell it.
BUILD_NAME_KEY = "packer build name"

#: Packer JSON functions amibake does not provide, with the reason shown to the user.
UNSUPPORTED_FUNCTIONS = {
    "consul_key": "Consul lookups are not supported yet by amibake",
    "vault": "Vault lookups are not supported yet by amibake",
    "aws_secretsmanager": "Secrets Manager lookups are not supported yet by amibake",
    "aws_secretsmanager_raw": "Secrets Manager lookups are not supported yet by amibake",
    # packer-plugin-sdk keeps `sed` only to fail with this message
    "sed": "template function `sed` is deprecated in Packer; use `replace` or `replace_all`",
}

#: Functions that need the template's context (values, clock, paths) and are
#: therefore resolved at load time, also inside run-time actions.
CONTEXT_FUNCTIONS = (
    "user",
    "strftime",
    "env",
    "timestamp",
    "uuid",
    "isotime",
    "build_name",
    "build_type",
    "packer_version",
    "pwd",
    "template_dir",
)
#: Functions without context: evaluated at load time or at run time alike.
PURE_FUNCTIONS = (
    "clean_resource_name",
    "clean_ami_name",
    "upper",
    "lower",
    "replace",
    "replace_all",
    "split",
    "printf",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
)
#: Go's builtins that only run-time actions use (their operands are build data).
RUNTIME_ONLY_FUNCTIONS = ("index", "len", "print")
KNOWN_FUNCTIONS = (*CONTEXT_FUNCTIONS, *PURE_FUNCTIONS, *RUNTIME_ONLY_FUNCTIONS, "build")
_UNSUPPORTED_ACTIONS = ("range", "with", "define", "template", "block", "break", "continue")


class GoTemplateError(AmibakeError):
    """A Go-template action that cannot be parsed or rendered (one line)."""


#: The fields of Packer's BuildInfoTemplate (builder/common/interpolate_build_info.go): the
#: data the amazon-ebs builder renders ``ami_description`` and the tags with at run time.
BUILD_INFO_FIELDS = (
    "BuildRegion",
    "SourceAMI",
    "SourceAMICreationDate",
    "SourceAMIName",
    "SourceAMIOwner",
    "SourceAMIOwnerName",
    "SourceAMITags",
)
#: The builder options Packer renders with that data (the rest are rendered at load).
#: (Packer's builder.go also renders run_volume_tags at run time.)
BUILD_TEMPLATE_OPTIONS = (
    "ami_description",
    "tags",
    "run_tags",
    "snapshot_tags",
    "run_volume_tags",
    "spot_tags",
    "fleet_tags",
)
#: Their singular repeatable blocks (``tag { key, value }``...), excluded from the load-time
#: rendering as well (builder.go's InterpolateFilter) and merged into the maps.
BUILD_TEMPLATE_BLOCKS = (
    "tag",
    "run_tag",
    "snapshot_tag",
    "run_volume_tag",
    "spot_tag",
    "fleet_tag",
)


def build_info(region: str, image: Mapping[str, Any] | None) -> dict[str, Any]:
    """Packer's BuildInfoTemplate for a build in ``region`` from the source ``image``
    (the ``fields`` of :func:`render_runtime` for the options above)."""
    if image is None:
        return {"BuildRegion": region}
    return {
        "BuildRegion": region,
        "SourceAMI": image.get("ImageId", ""),
        "SourceAMICreationDate": image.get("CreationDate", ""),
        "SourceAMIName": image.get("Name", ""),
        "SourceAMIOwner": image.get("OwnerId", ""),
        "SourceAMIOwnerName": image.get("ImageOwnerAlias", ""),
        "SourceAMITags": {t["Key"]: t.get("Value", "") for t in image.get("Tags", [])},
    }


# --------------------------------------------------------------------------- lexing

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<raw>`[^`]*`)
      | (?P<str>"(?:[^"\\\n]|\\.)*")
      | (?P<num>-?\d+)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<var>\$[A-Za-z0-9_]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[|()])
    )""",
    re.VERBOSE,
)


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(m.group(1), m.group(1)),
        token[1:-1],
    )


@dataclass(frozen=True, slots=True)
class _Arg:
    """One operand: kind is str, num, bool, field, var, ident or pipe."""

    kind: str
    value: Any


@dataclass(frozen=True, slots=True)
class _Pipe:
    commands: tuple[tuple[_Arg, ...], ...]
    text: str  # as written, for run-time actions kept verbatim


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Action:
    pipe: _Pipe
    source: str  # the whole ``{{ ... }}`` as written


@dataclass(frozen=True, slots=True)
class _If:
    branches: tuple[tuple[_Pipe, tuple[_Node, ...]], ...]
    other: tuple[_Node, ...] | None


_Node = _Text | _Action | _If


class _PipeParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        body = text.rstrip()
        while pos < len(body):
            m = _TOKEN.match(body, pos)
            if not m or m.end() == pos:
                raise GoTemplateError(
                    f"cannot read `{body[pos:].strip()[:20]}` in `{{{{{text}}}}}`"
                )
            pos = m.end()
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> _Pipe:
        pipe = self.pipeline()
        extra = self.peek()
        if extra is not None:
            raise GoTemplateError(f"unexpected `{extra[1]}` in `{{{{{self.text}}}}}`")
        return pipe

    def pipeline(self) -> _Pipe:
        start = self.i
        commands = [self.command()]
        while self.peek() == ("punct", "|"):
            self.i += 1
            if self.peek() is None or self.peek() == ("punct", ")"):
                raise GoTemplateError("nothing after `|`")
            commands.append(self.command())
        text = " ".join(t for _, t in self.tokens[start : self.i])
        return _Pipe(tuple(commands), text)

    def command(self) -> tuple[_Arg, ...]:
        args: list[_Arg] = []
        while (tok := self.peek()) is not None and tok not in (("punct", "|"), ("punct", ")")):
            args.append(self.operand())
        if not args:
            raise GoTemplateError("empty action")
        return tuple(args)

    def operand(self) -> _Arg:
        kind, text = self.tokens[self.i]
        self.i += 1
        if kind in ("raw", "str"):
            return _Arg("str", _unquote(text))
        if kind == "num":
            return _Arg("num", int(text))
        if kind == "field":
            return _Arg("field", tuple(p for p in text.split(".") if p))
        if kind == "var":
            raise GoTemplateError(
                f"template variables such as `{text}` are not supported yet by amibake"
            )
        if kind == "ident":
            if text in ("true", "false"):
                return _Arg("bool", text == "true")
            if text == "nil":
                raise GoTemplateError("`nil` is not a value here")
            return _Arg("ident", text)
        if text == "(":
            pipe = self.pipeline()
            if self.peek() != ("punct", ")"):
                raise GoTemplateError("missing `)`")
            self.i += 1
            return _Arg("pipe", pipe)
        raise GoTemplateError(f"unexpected `{text}`")


_DELIM = re.compile(r"\{\{(-\s)?")


def _find_close(text: str, pos: int) -> int:
    """Index of the ``}}`` closing the action that starts at ``pos`` (quotes respected)."""
    i = pos
    while i < len(text):
        ch = text[i]
        if ch in '"`':
            end = text.find(ch, i + 1) if ch == "`" else _string_end(text, i)
            if end < 0:
                raise GoTemplateError("unterminated string in `{{ }}`")
            i = end + 1
            continue
        if text.startswith("}}", i):
            return i
        i += 1
    raise GoTemplateError("unclosed `{{` (missing `}}`)")


def _string_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        if text[i] == "\n":
            return -1
        i += 1
    return -1


def _lex(text: str) -> list[tuple[str, str, str]]:
    """(kind, body, source): kind is ``text`` or ``action``; trimming already applied."""
    out: list[tuple[str, str, str]] = []
    pos = 0
    trim_next = False
    while True:
        m = _DELIM.search(text, pos)
        chunk = text[pos : m.start()] if m else text[pos:]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if m and m.group(1):
            chunk = chunk.rstrip(" \t\r\n")
        if chunk:
            out.append(("text", chunk, chunk))
        if not m:
            return out
        inner_start = m.end()
        close = _find_close(text, inner_start)
        body = text[inner_start:close]
        trim_next = False
        if re.search(r"\s-$", body):
            body = body[:-1]
            trim_next = True
        elif body == "-" and m.group(1):  # "{{- -}}"
            body = ""
            trim_next = True
        out.append(("action", body, text[m.start() : close + 2]))
        pos = close + 2


def _parse(text: str) -> tuple[_Node, ...]:
    items = _lex(text)
    pos = 0

    def block(stop: tuple[str, ...]) -> tuple[tuple[_Node, ...], str, str]:
        nonlocal pos
        nodes: list[_Node] = []
        while pos < len(items):
            kind, body, source = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(_Text(body))
                continue
            stripped = body.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise GoTemplateError("unclosed comment `/*` (missing `*/`)")
                continue
            word = re.match(r"[A-Za-z_]+", stripped)
            keyword = word.group(0) if word else ""
            if keyword in ("end", "else"):
                if keyword not in stop:
                    raise GoTemplateError(f"unexpected `{{{{{keyword}}}}}`")
                return tuple(nodes), keyword, stripped[len(keyword) :].strip()
            if keyword == "if":
                nodes.append(if_block(stripped[2:]))
                continue
            if keyword in _UNSUPPORTED_ACTIONS:
                raise GoTemplateError(f"`{{{{{keyword}}}}}` is not supported yet by amibake")
            if not stripped:
                raise GoTemplateError("empty action `{{}}`")
            nodes.append(_Action(_PipeParser(stripped).parse(), source))
        if stop:
            raise GoTemplateError("`{{if}}` without `{{end}}`")
        return tuple(nodes), "", ""

    def if_block(condition: str) -> _If:
        if not condition.strip():
            raise GoTemplateError("`{{if}}` needs a condition")
        branches = []
        cond = _PipeParser(condition.strip()).parse()
        while True:
            body, keyword, rest = block(("end", "else"))
            branches.append((cond, body))
            if keyword == "end":
                return _If(tuple(branches), None)
            if rest.startswith("if ") or rest == "if":
                cond = _PipeParser(rest[2:].strip()).parse()
                continue
            if rest:
                raise GoTemplateError(f"unexpected `{rest}` after `else`")
            other, keyword, _ = block(("end",))
            return _If(tuple(branches), other)

    nodes, _, _ = block(())
    return nodes


# --------------------------------------------------------------------------- load time


def _is_runtime(pipe: _Pipe) -> bool:
    for command in pipe.commands:
        for arg in command:
            if arg.kind == "field" or (arg.kind == "ident" and arg.value == "build"):
                return True
            if arg.kind == "pipe" and _is_runtime(arg.value):
                return True
    return False


def _uses_context(pipe: _Pipe) -> bool:
    for command in pipe.commands:
        for arg in command:
            if arg.kind == "ident" and arg.value in CONTEXT_FUNCTIONS:
                return True
            if arg.kind == "pipe" and _uses_context(arg.value):
                return True
    return False


Part = str | Expr


class _LoadTime:
    """Go template -> shared expressions; run-time parts stay template text."""

    def __init__(self, loc: Loc) -> None:
        self.loc = loc

    # ---- whole templates

    def nodes(self, nodes: tuple[_Node, ...]) -> list[Part]:
        parts: list[Part] = []
        for node in nodes:
            if isinstance(node, _Text):
                parts.append(node.text)
            elif isinstance(node, _Action):
                if _is_runtime(node.pipe):
                    if _uses_context(node.pipe):
                        parts += ["{{", *self.runtime_pipe(node.pipe), "}}"]
                    else:
                        parts.append(node.source)
                else:
                    value = self.pipe(node.pipe)[0]
                    if isinstance(value, Lit) and isinstance(value.value, str):
                        parts.append(value.value)
                    else:
                        parts.append(value)
            else:
                parts += self.if_node(node)
        return parts

    def if_node(self, node: _If) -> list[Part]:
        if any(_is_runtime(cond) for cond, _ in node.branches):
            parts: list[Part] = []
            for i, (cond, body) in enumerate(node.branches):
                parts += ["{{if " if i == 0 else "{{else if ", *self.runtime_pipe(cond), "}}"]
                parts += self.nodes(body)
            if node.other is not None:
                parts += ["{{else}}", *self.nodes(node.other)]
            parts.append("{{end}}")
            return parts
        result: Expr = make_template(self.nodes(node.other or ()), self.loc)
        for cond, body in reversed(node.branches):
            test = self.truth(self.pipe(cond))
            result = Cond(test, make_template(self.nodes(body), self.loc), result, self.loc)
        return [result]

    def runtime_pipe(self, pipe: _Pipe) -> list[Part]:
        """A run-time pipeline as text, with its context calls resolved now."""
        out: list[Part] = []
        for n, command in enumerate(pipe.commands):
            if n:
                out.append(" | ")
            for m, arg in enumerate(command):
                if m:
                    out.append(" ")
                out += self.runtime_arg(arg, command, m)
        return out

    def runtime_arg(self, arg: _Arg, command: tuple[_Arg, ...], index: int) -> list[Part]:
        if arg.kind == "pipe":
            if _is_runtime(arg.value):
                return ["(", *self.runtime_pipe(arg.value), ")"]
            return ["`", self.pipe(arg.value)[0], "`"]
        if arg.kind == "ident" and index == 0 and arg.value in CONTEXT_FUNCTIONS:
            raise GoTemplateError(
                f"`{arg.value}` inside a run-time action needs parentheses, e.g. `(user `x`)`"
            )
        return [_arg_text(arg)]

    # ---- pipelines; each result is (expr, kind) with kind "bool" or "str"

    def pipe(self, pipe: _Pipe) -> tuple[Expr, str]:
        value: tuple[Expr, str] | None = None
        for command in pipe.commands:
            value = self.command(command, value)
        assert value is not None
        return value

    def command(
        self, command: tuple[_Arg, ...], piped: tuple[Expr, str] | None
    ) -> tuple[Expr, str]:
        first = command[0]
        if first.kind != "ident":
            if len(command) > 1 or piped is not None:
                raise GoTemplateError(f"`{_arg_text(first)}` is not a function")
            return self.operand(first)
        args = [self.operand(a) for a in command[1:]]
        if piped is not None:
            args.append(piped)  # Go passes the piped value as the last argument
        return self.call(first.value, args)

    def operand(self, arg: _Arg) -> tuple[Expr, str]:
        if arg.kind == "str":
            return Lit(arg.value, self.loc), "str"
        if arg.kind == "num":
            return Lit(arg.value, self.loc), "num"
        if arg.kind == "bool":
            return Lit(arg.value, self.loc), "bool"
        if arg.kind == "pipe":
            return self.pipe(arg.value)
        if arg.kind == "ident":
            return self.call(arg.value, [])
        raise GoTemplateError(f"unexpected `{_arg_text(arg)}`")  # pragma: no cover

    def truth(self, value: tuple[Expr, str]) -> Expr:
        """Go's truth: false, 0 and "" are false; everything else is true."""
        expr, kind = value
        if kind == "bool":
            return expr
        zero: Any = 0 if kind == "num" else ""
        return Binary("!=", expr, Lit(zero, self.loc), self.loc)

    def call(self, name: str, args: list[tuple[Expr, str]]) -> tuple[Expr, str]:
        loc = self.loc
        exprs = [a for a, _ in args]

        def arity(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(str(c) for c in counts)
                raise GoTemplateError(f"`{name}` takes {want} argument(s), got {len(args)}")

        def literal_str(i: int) -> str:
            value = exprs[i]
            if not isinstance(value, Lit) or not isinstance(value.value, str):
                raise GoTemplateError(f"`{name}` needs a name in quotes or backquotes")
            return value.value

        if name == "user":
            arity(1)
            return Attr(Name("var", loc), literal_str(0), loc), "str"
        if name == "env":
            arity(1)
            return Call("env", tuple(exprs), loc), "str"
        if name == "timestamp":
            arity(0)
            return Call("unix_timestamp", (), loc), "str"
        if name == "uuid":
            arity(0)
            return Call("uuidv4", (), loc), "str"
        if name == "isotime":
            arity(0, 1)
            return Call("isotime", tuple(exprs), loc), "str"
        if name == "strftime":
            # packer-plugin-sdk's funcGenStrftime: jehiah/go-strftime at the build's start
            arity(1)
            return Call("legacy_strftime", tuple(exprs), loc), "str"
        if name == "packer_version":
            arity(0)
            return Lit(PACKER_COMPAT_VERSION, loc), "str"
        if name in ("build_name", "build_type"):
            arity(0)
            key = BUILD_NAME_KEY if name == "build_name" else "type"
            return Attr(Name("source", loc), key, loc), "str"
        if name in ("pwd", "template_dir"):
            arity(0)
            return Attr(Name("path", loc), "cwd" if name == "pwd" else "root", loc), "str"
        if name in ("clean_resource_name", "clean_ami_name"):
            arity(1)
            return Call("clean_resource_name", tuple(exprs), loc), "str"
        if name in ("upper", "lower"):
            arity(1)
            return Call(name, tuple(exprs), loc), "str"
        if name == "replace_all":
            arity(3)
            return Call("replace", (exprs[2], exprs[0], exprs[1]), loc), "str"
        if name == "replace":
            arity(4)
            return self.replace_n(exprs), "str"
        if name == "split":
            arity(3)
            return Index(Call("split", (exprs[1], exprs[0]), loc), exprs[2], loc), "str"
        if name == "printf":
            if not args:
                raise GoTemplateError("`printf` needs a format")
            return Call("format", tuple(exprs), loc), "str"
        if name in ("eq", "ne"):
            if len(args) < 2:
                raise GoTemplateError(f"`{name}` takes at least 2 arguments, got {len(args)}")
            if name == "ne":
                arity(2)
                return Binary("!=", exprs[0], exprs[1], loc), "bool"
            result: Expr = Binary("==", exprs[0], exprs[1], loc)
            for other in exprs[2:]:  # eq a b c: a == b || a == c
                result = Binary("||", result, Binary("==", exprs[0], other, loc), loc)
            return result, "bool"
        if name in ("lt", "le", "gt", "ge"):
            arity(2)
            op = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[name]
            return Binary(op, exprs[0], exprs[1], loc), "bool"
        if name == "not":
            arity(1)
            return Unary("!", self.truth(args[0]), loc), "bool"
        if name in ("and", "or"):
            if len(args) < 2:
                raise GoTemplateError(f"`{name}` takes at least 2 arguments, got {len(args)}")
            if all(kind == "bool" for _, kind in args) or len({k for _, k in args}) > 1:
                op = "&&" if name == "and" else "||"
                out = self.truth(args[0])
                for operand in args[1:]:
                    out = Binary(op, out, self.truth(operand), loc)
                return out, "bool"
            # Go returns the deciding operand itself
            value, kind = args[-1]
            for prev in reversed(args[:-1]):
                test = self.truth(prev)
                value = (
                    Cond(test, value, prev[0], loc)
                    if name == "and"
                    else Cond(test, prev[0], value, loc)
                )
            return value, kind
        if name == "build":
            raise GoTemplateError("`build` values exist only at run time")  # pragma: no cover
        if name in UNSUPPORTED_FUNCTIONS:
            raise GoTemplateError(f"`{name}`: {UNSUPPORTED_FUNCTIONS[name]}")
        raise GoTemplateError(f"unknown function `{name}`{suggest(name, KNOWN_FUNCTIONS)}")

    def replace_n(self, exprs: list[Expr]) -> Expr:
        """``replace old new n src``: Go's strings.Replace (n < 0: every occurrence)."""
        old, new, count, src = exprs
        if isinstance(count, Lit) and not isinstance(count.value, int):
            raise GoTemplateError("`replace` needs a whole number as its count")
        if isinstance(count, Lit) and count.value < 0:
            return Call("replace", (src, old, new), self.loc)
        if isinstance(count, Lit) and all(
            isinstance(e, Lit) and isinstance(e.value, str) for e in (old, new, src)
        ):
            assert isinstance(old, Lit) and isinstance(new, Lit) and isinstance(src, Lit)
            return Lit(_go_replace(src.value, old.value, new.value, count.value), self.loc)
        # a computed source or count: Go's strings.Replace when the value is known
        return Call("go_replace", (src, old, new, count), self.loc)


def _go_replace(src: str, old: str, new: str, n: int) -> str:
    if n < 0:
        n = -1
    if old == "":
        # Go inserts `new` before each rune (and at the end), up to n times
        pieces = list(src)
        out = []
        count = 0
        for ch in pieces:
            if n < 0 or count < n:
                out.append(new)
                count += 1
            out.append(ch)
        if n < 0 or count < n:
            out.append(new)
        return "".join(out)
    return src.replace(old, new, n)


def _arg_text(arg: _Arg) -> str:
    if arg.kind == "str":
        value = str(arg.value)
        if "`" not in value:
            return f"`{value}`"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if arg.kind == "num":
        return str(arg.value)
    if arg.kind == "bool":
        return "true" if arg.value else "false"
    if arg.kind == "field":
        return "." + ".".join(arg.value)
    if arg.kind == "pipe":
        return f"({arg.value.text})"
    return str(arg.value)


def parse_go_template(text: str, loc: Loc) -> Expr:
    """Parse a Packer JSON string into an expression (a :class:`Lit` if plain).

    Run-time parts (fields such as ``{{.Path}}``, ``{{build `ID`}}`` and
    ``{{if .Sudo}}`` blocks) stay template text for :func:`render_runtime`.
    """
    if "{{" not in text:
        return Lit(text, loc)
    return make_template(_LoadTime(loc).nodes(_parse(text)), loc)


def has_runtime_parts(text: str) -> bool:
    """Whether ``text`` still holds actions that only the build can render."""
    return "{{" in text


# --------------------------------------------------------------------------- run time

_NO_FIELD = object()


def render_runtime(text: str, fields: Mapping[str, Any], build: Mapping[str, str]) -> str:
    """Render what is left of a Go template at run time.

    ``fields`` serve ``{{.Name}}`` (``.Path``, ``.Vars``, ``.Sudo``,
    ``.SourceAMIName``, ...); ``build`` serves ``{{build `ID`}}``. ``{{if}}``
    blocks, comparisons and the pure string functions work as in Go templates.
    A field or build value that is not given raises :class:`GoTemplateError`
    naming it and what is available.
    """
    if "{{" not in text:
        return text
    return _Runtime(fields, build).nodes(_parse(text))


def render_build_data(text: str, build: Mapping[str, str]) -> str:
    """Fill in the ``{{ build `ID` }}`` actions of a provisioner or post-processor option
    (HCL's ``${build.ID}`` loads as that action) once the build's values are known.

    Packer re-decodes an HCL provisioner with ``build.*`` set when it runs it
    (hcl2template/types.hcl_provisioner.go) and renders a legacy one's fields with the
    build's generated data. A string whose actions also read fields (``{{.Path}}`` in
    ``execute_command``) is left to the renderer that has those fields; text that is no
    Go template (a Jinja ``{{ x }}`` in an inline command) or uses no ``build`` is kept.
    """
    if "{{" not in text or "build" not in text:
        return text
    try:
        nodes = _parse(text)
    except GoTemplateError:
        return text  # accepted at load: not a Go template for amibake to fill in
    kinds = {(arg.kind, arg.value if arg.kind == "ident" else "") for arg in _node_args(nodes)}
    if ("ident", "build") not in kinds or any(kind in ("field", "var") for kind, _ in kinds):
        return text
    return _Runtime({}, build).nodes(nodes)


def _node_args(nodes: tuple[_Node, ...]) -> Iterator[_Arg]:
    for node in nodes:
        if isinstance(node, _Action):
            yield from _pipe_args(node.pipe)
        elif isinstance(node, _If):
            for cond, body in node.branches:
                yield from _pipe_args(cond)
                yield from _node_args(body)
            if node.other is not None:
                yield from _node_args(node.other)


def _pipe_args(pipe: _Pipe) -> Iterator[_Arg]:
    for command in pipe.commands:
        for arg in command:
            yield arg
            if arg.kind == "pipe":
                yield from _pipe_args(arg.value)


class _Runtime:
    def __init__(self, fields: Mapping[str, Any], build: Mapping[str, str]) -> None:
        self.fields = fields
        self.build = build

    def nodes(self, nodes: tuple[_Node, ...]) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                out.append(_go_text(self.pipe(node.pipe)))
            else:
                for cond, body in node.branches:
                    if _go_truth(self.pipe(cond)):
                        out.append(self.nodes(body))
                        break
                else:
                    if node.other is not None:
                        out.append(self.nodes(node.other))
        return "".join(out)

    def pipe(self, pipe: _Pipe) -> Any:
        value: Any = _NO_FIELD
        for command in pipe.commands:
            value = self.command(command, value)
        return value

    def command(self, command: tuple[_Arg, ...], piped: Any) -> Any:
        first = command[0]
        if first.kind != "ident":
            if len(command) > 1 or piped is not _NO_FIELD:
                raise GoTemplateError(f"`{_arg_text(first)}` is not a function")
            return self.operand(first)
        args = [self.operand(a) for a in command[1:]]
        if piped is not _NO_FIELD:
            args.append(piped)
        return self.call(first.value, args)

    def operand(self, arg: _Arg) -> Any:
        if arg.kind in ("str", "num", "bool"):
            return arg.value
        if arg.kind == "pipe":
            return self.pipe(arg.value)
        if arg.kind == "ident":
            return self.call(arg.value, [])
        # a field: .A.B. The data is a struct (a missing field is an error); values below
        # it that are maps (.SourceAMITags) give Go's invalid value for a missing key,
        # printed "<no value>" (text/template's default missingkey option, as Packer uses it).
        value: Any = self.fields
        for i, name in enumerate(arg.value):
            where = "." + ".".join(arg.value[: i + 1])
            if isinstance(value, Mapping) and name in value:
                value = value[name]
                continue
            if i > 0 and isinstance(value, Mapping):
                value = None
                continue
            if i > 0:
                what = "nil" if value is None else type(value).__name__
                raise GoTemplateError(f"`{{{{{where}}}}}`: cannot read field `{name}` of {what}")
            known = list(value) if isinstance(value, Mapping) else []
            available = ", ".join(f".{k}" for k in sorted(known)) or "none"
            raise GoTemplateError(
                f"`{{{{{where}}}}}` is not available here{suggest(name, known)} "
                f"(available: {available})"
            )
        if not arg.value:
            return dict(self.fields)
        return value

    def call(self, name: str, args: list[Any]) -> Any:
        fn = _RUNTIME_FUNCTIONS.get(name)
        if name == "build":
            if len(args) != 1:
                raise GoTemplateError(f"`build` takes 1 argument(s), got {len(args)}")
            key = str(args[0])
            if key not in self.build:
                raise GoTemplateError(
                    f"build value `{key}` is not available here{suggest(key, self.build)}"
                )
            return self.build[key]
        if fn is None:
            if name in CONTEXT_FUNCTIONS:
                raise GoTemplateError(f"`{name}` is resolved when the template loads, not here")
            if name in UNSUPPORTED_FUNCTIONS:
                raise GoTemplateError(f"`{name}`: {UNSUPPORTED_FUNCTIONS[name]}")
            raise GoTemplateError(f"unknown function `{name}`{suggest(name, KNOWN_FUNCTIONS)}")
        count, impl = fn
        if count >= 0 and len(args) != count:
            raise GoTemplateError(f"`{name}` takes {count} argument(s), got {len(args)}")
        return impl(*args)


def _go_truth(value: Any) -> bool:
    if value is None or value is _NO_FIELD:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _go_text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, Mapping):  # fmt's %v of a map: keys sorted
        return "map[" + " ".join(f"{k}:{_go_text(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _split(text: Any, sep: Any, index: Any) -> str:
    pieces = str(text).split(str(sep)) if sep != "" else list(str(text))
    i = int(index)
    if not 0 <= i < len(pieces):
        raise GoTemplateError(
            f"the substring {i} was unavailable using the separator value, {sep}, "
            f"only {len(pieces)} values were found"
        )
    return pieces[i]


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        mixed = isinstance(a, bool) or isinstance(b, bool) or type(a) is not type(b)
        if mixed and not (isinstance(a, int | float) and isinstance(b, int | float)):
            raise GoTemplateError(f"incompatible types for comparison: `{a}` and `{b}`")
        return bool({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op])

    return compare


def _and(*args: Any) -> Any:
    for value in args[:-1]:
        if not _go_truth(value):
            return value
    return args[-1]


def _or(*args: Any) -> Any:
    for value in args[:-1]:
        if _go_truth(value):
            return value
    return args[-1]


def _printf(fmt: Any, *args: Any) -> str:
    values = list(args)

    def one(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        if not values:
            return f"%!{verb}(MISSING)"
        value = values.pop(0)
        if verb == "q":
            return '"' + _go_text(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb == "d":
            return str(int(value))
        return _go_text(value)

    return re.sub(r"%([%sdvq])", one, str(fmt))


def _clean(value: Any) -> str:
    from amibake.core.templates.evaluate import clean_resource_name

    return clean_resource_name(str(value))


def _need(count: int, fn: Callable[..., Any]) -> tuple[int, Callable[..., Any]]:
    return count, fn


_RUNTIME_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "upper": _need(1, lambda s: str(s).upper()),
    "lower": _need(1, lambda s: str(s).lower()),
    "clean_resource_name": _need(1, _clean),
    "clean_ami_name": _need(1, _clean),
    "replace_all": _need(3, lambda old, new, src: str(src).replace(str(old), str(new))),
    "replace": _need(4, lambda old, new, n, src: _go_replace(str(src), str(old), str(new), int(n))),
    "split": _need(3, _split),
    "printf": _need(-1, _printf),
    "eq": _need(-1, lambda a, *bs: any(a == b for b in bs)),
    "ne": _need(2, lambda a, b: a != b),
    "lt": _need(2, _compare("lt")),
    "le": _need(2, _compare("le")),
    "gt": _need(2, _compare("gt")),
    "ge": _need(2, _compare("ge")),
    "and": _need(-1, _and),
    "or": _need(-1, _or),
    "not": _need(1, lambda v: not _go_truth(v)),
    "index": _need(-1, lambda *a: _index(*a)),
    "len": _need(1, lambda v: _len(v)),
    "print": _need(-1, lambda *a: _print(a)),
}


def _index(*args: Any) -> Any:
    """Go's ``index``: a missing map key is the zero value ("" for Packer's string maps)."""
    if not args:
        raise GoTemplateError(
            "`index` takes a map or list and keys, e.g. index .SourceAMITags `Name`"
        )
    value = args[0]
    for key in args[1:]:
        if isinstance(value, Mapping):
            value = value.get(key, "")
        elif isinstance(value, list | tuple | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise GoTemplateError(f"`index`: index out of range: {key}")
            value = value[key]
        else:
            what = "nil" if value is None else type(value).__name__
            raise GoTemplateError(f"`index`: cannot index {what} with `{key}`")
    return value


def _len(value: Any) -> int:
    if not isinstance(value, Mapping | list | tuple | str):
        raise GoTemplateError(f"`len`: cannot take the length of {_go_text(value)}")
    return len(value)


def _print(values: tuple[Any, ...]) -> str:
    """Go's fmt.Sprint: spaces between operands when neither is a string."""
    out = ""
    for i, value in enumerate(values):
        if i and not isinstance(value, str) and not isinstance(values[i - 1], str):
            out += " "
        out += _go_text(value)
    return out
