"""Packer legacy JSON interpolation: ``{{user `x`}}``, ``{{timestamp}}``, pipes.

Packer evaluates these with Go's text/template. We need only the subset Packer
templates use (function calls with string/number arguments, parentheses and
``|`` pipes), so this is a tiny hand-written tokenizer and parser that maps each
action onto the shared expression language of :mod:`core.templates.nodes`.
Field actions such as ``{{ .Path }}`` (Packer fills them in at run time, e.g. in
``execute_command``) are kept verbatim as literal text.
"""

from __future__ import annotations

import re

from core.templates.errors import Loc, suggest
from core.templates.nodes import Attr, Call, Expr, Index, Lit, Name, Tmpl

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<raw>`[^`]*`)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[|()])
    )""",
    re.VERBOSE,
)

#: Packer JSON functions amibake does not provide, with the reason shown to the user.
UNSUPPORTED_FUNCTIONS = {
    "consul_key": "Consul lookups are not supported",
    "vault": "Vault lookups are not supported",
    "aws_secretsmanager": "Secrets Manager lookups are not supported",
    "aws_secretsmanager_raw": "Secrets Manager lookups are not supported",
    "packer_version": "amibake is not Packer",
    "sed": "`sed` is deprecated in Packer and not supported",
    "build": "`build` values exist only at run time",
}

KNOWN_FUNCTIONS = (
    "user",
    "env",
    "timestamp",
    "uuid",
    "isotime",
    "build_name",
    "build_type",
    "clean_resource_name",
    "clean_ami_name",
    "upper",
    "lower",
    "replace",
    "replace_all",
    "split",
    "pwd",
    "template_dir",
)


class GoTemplateError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    body = token[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)),
        body,
    )


class _Action:
    def __init__(self, text: str, loc: Loc) -> None:
        self.loc = loc
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise GoTemplateError(
                    f"cannot read `{text[pos:].strip()[:20]}` in `{{{{{text}}}}}`"
                )
            pos = m.end()
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def pipeline(self) -> Expr:
        value = self.command(None)
        while (tok := self.peek()) is not None and tok == ("punct", "|"):
            self.i += 1
            value = self.command(value)
        return value

    def operand(self) -> Expr:
        tok = self.peek()
        if tok is None:
            raise GoTemplateError("expected an argument")
        kind, text = tok
        self.i += 1
        if kind in ("raw", "str"):
            return Lit(_unquote(text), self.loc)
        if kind == "num":
            return Lit(int(text), self.loc)
        if kind == "punct" and text == "(":
            value = self.pipeline()
            if self.peek() != ("punct", ")"):
                raise GoTemplateError("missing `)`")
            self.i += 1
            return value
        if kind == "ident":
            return self.call(text, [])
        raise GoTemplateError(f"unexpected `{text}`")

    def command(self, piped: Expr | None) -> Expr:
        tok = self.peek()
        if tok is None:
            raise GoTemplateError("empty action" if piped is None else "nothing after `|`")
        kind, text = tok
        if kind != "ident":
            if piped is not None:
                raise GoTemplateError(f"expected a function after `|`, found `{text}`")
            return self.operand()
        self.i += 1
        args: list[Expr] = []
        while (nxt := self.peek()) is not None and nxt not in (("punct", "|"), ("punct", ")")):
            args.append(self.operand())
        if piped is not None:
            args.append(piped)  # Go passes the piped value as the last argument
        return self.call(text, args)

    def call(self, name: str, args: list[Expr]) -> Expr:
        loc = self.loc

        def arity(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(str(c) for c in counts)
                raise GoTemplateError(f"`{name}` takes {want} argument(s), got {len(args)}")

        if name == "user":
            arity(1)
            if not isinstance(args[0], Lit) or not isinstance(args[0].value, str):
                raise GoTemplateError("`user` needs a variable name in backquotes")
            return Attr(Name("var", loc), args[0].value, loc)
        if name == "env":
            arity(1)
            return Call("env", tuple(args), loc)
        if name == "timestamp":
            arity(0)
            return Call("unix_timestamp", (), loc)
        if name == "uuid":
            arity(0)
            return Call("uuidv4", (), loc)
        if name == "isotime":
            arity(0, 1)
            return Call("isotime", tuple(args), loc)
        if name in ("build_name", "build_type"):
            arity(0)
            return Attr(Name("source", loc), "name" if name == "build_name" else "type", loc)
        if name in ("clean_resource_name", "clean_ami_name"):
            arity(1)
            return Call("clean_resource_name", tuple(args), loc)
        if name in ("upper", "lower"):
            arity(1)
            return Call(name, tuple(args), loc)
        if name == "replace_all":
            arity(3)
            return Call("replace", (args[2], args[0], args[1]), loc)
        if name == "replace":
            arity(4)
            count = args[2]
            if not (isinstance(count, Lit) and count.value == -1):
                raise GoTemplateError("`replace` with a count other than -1 is not supported")
            return Call("replace", (args[3], args[0], args[1]), loc)
        if name == "split":
            arity(3)
            return Index(Call("split", (args[1], args[0]), loc), args[2], loc)
        if name in ("pwd", "template_dir"):
            arity(0)
            return Attr(Name("path", loc), "cwd" if name == "pwd" else "root", loc)
        if name in UNSUPPORTED_FUNCTIONS:
            raise GoTemplateError(f"`{name}`: {UNSUPPORTED_FUNCTIONS[name]}")
        raise GoTemplateError(f"unknown function `{name}`{suggest(name, KNOWN_FUNCTIONS)}")


_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)


def parse_go_template(text: str, loc: Loc) -> Expr:
    """Parse a Packer JSON string into a :class:`Tmpl` (or a :class:`Lit` if plain)."""
    if "{{" not in text:
        return Lit(text, loc)
    parts: list[str | Expr] = []
    pos = 0
    for m in _ACTION.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        body = m.group(1)
        stripped = body.strip()
        if stripped.startswith("/*") and stripped.endswith("*/"):
            pass  # a comment
        elif stripped.startswith("."):
            parts.append(m.group(0))  # run-time field such as {{ .Path }}: kept verbatim
        else:
            parts.append(_Action(body, loc).pipeline())
        pos = m.end()
    rest = text[pos:]
    if "{{" in rest:
        raise GoTemplateError("unclosed `{{` (missing `}}`)")
    if rest:
        parts.append(rest)
    merged: list[str | Expr] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    if all(isinstance(p, str) for p in merged):
        return Lit("".join(p for p in merged if isinstance(p, str)), loc)
    return Tmpl(tuple(merged), loc)
