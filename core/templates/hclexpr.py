"""HCL2 expressions: python-hcl2's parse tree -> the shared expression language.

Parsing is python-hcl2's (its Lark grammar, with positions). We walk the raw
Lark tree rather than python-hcl2's dict output because the dict keeps no
line/column and renders expressions back to text. The only text we scan
ourselves is a template's ``${ ... }`` boundaries (heredoc bodies and amibake
TOML strings), whose inner expressions are again parsed by python-hcl2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from amibake.core.templates.errors import Loc
from amibake.core.templates.nodes import (
    SPLAT_ITEM,
    Attr,
    Binary,
    Call,
    Cond,
    Expr,
    ForX,
    Index,
    Lit,
    Name,
    ObjectX,
    Splat,
    TmplFor,
    TmplIf,
    TupleX,
    Unary,
    make_template,
)

LocFn = Callable[[int, int], Loc]


class HclSyntaxError(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def parse_tree(text: str, loc_fn: LocFn) -> Tree[Any]:
    """Parse HCL text with python-hcl2; any failure becomes an :class:`HclSyntaxError`."""
    import hcl2  # imported lazily: it builds its Lark parser on first use

    try:
        return hcl2.parses_to_tree(text)
    except Exception as error:  # the library raises Lark errors, but also Runtime/ValueErrors
        line = getattr(error, "line", None)
        column = getattr(error, "column", None)
        if not isinstance(line, int) or line < 1:
            # Unexpected end of input (Lark reports line -1) or an error without
            # a position: point at the last non-blank line, where the text stopped.
            lines = text.rstrip().splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        if not isinstance(column, int) or column < 1:
            column = 1
        message = _describe(error)
        # Lark notices some mistakes lines later than they were made: point at the line
        # the user wrote (as HCL itself does) rather than where the parser gave up.
        unclosed = _unclosed_string(text)
        if unclosed is not None and unclosed[0] <= line:
            line, column = unclosed
            message = "invalid HCL: a quoted string is not closed on its line"
        elif (header := _incomplete_block_header(error, text)) is not None:
            line, column, written = header
            message = (
                f"invalid HCL: `{written[:40]}` is neither an argument (`name = value`) "
                "nor a block (`name {` on the same line)"
            )
        raise HclSyntaxError(loc_fn(line, column), message) from None


def _unclosed_string(text: str) -> tuple[int, int] | None:
    """(line, column) of the first quoted string left open at the end of its line.

    HCL's quoted strings cannot span lines; the Lark grammar lets them, so such a typo
    surfaces lines later. Comments and heredoc bodies are skipped; quotes inside
    ``${ }`` / ``%{ }`` are nested strings.
    """
    heredoc: str | None = None
    in_comment = False
    for number, line in enumerate(text.splitlines(), start=1):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        i, in_string, start, depth = 0, False, 0, 0
        while i < len(line):
            if in_comment:
                if line.startswith("*/", i):
                    in_comment = False
                    i += 1
            elif in_string:
                char = line[i]
                if char == "\\":
                    i += 1
                elif line.startswith(("${", "%{"), i):
                    depth += 1
                    i += 1
                elif char == "}" and depth:
                    depth -= 1
                elif char == '"' and not depth:
                    in_string = False
            elif line[i] == '"':
                in_string, start, depth = True, i, 0
            elif line[i] == "#" or line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                in_comment = True
                i += 1
            elif line.startswith("<<", i):
                match = re.match(r"<<-?\s*([A-Za-z_][\w-]*)\s*$", line[i:])
                if match:
                    heredoc = match.group(1)
                    break
            i += 1
        if in_string:
            return number, start + 1
    return None


def _incomplete_block_header(error: Exception, text: str) -> tuple[int, int, str] | None:
    """A line like ``name "value"`` (no ``=``): Lark reads a block header and complains
    about the next line's first token; answers the written line, its column and text."""
    token = getattr(error, "token", None)
    if set(getattr(error, "expected", None) or ()) != {"LBRACE"} or not isinstance(token, Token):
        return None
    lines = text.splitlines()
    line = token.line
    if not isinstance(line, int) or not 1 < line <= len(lines):
        return None
    if lines[line - 1][: (token.column or 1) - 1].strip():
        return None  # not the first token of its line
    previous = line - 1
    while previous > 0 and not lines[previous - 1].strip():
        previous -= 1
    if previous < 1:
        return None
    written = lines[previous - 1]
    return previous, len(written) - len(written.lstrip()) + 1, written.strip()


def _describe(error: Exception) -> str:
    token = getattr(error, "token", None)
    if isinstance(token, Token):
        if token.type == "$END":
            return "invalid HCL: unexpected end of file"
        shown = str(token).replace("\n", "\\n")
        return f"invalid HCL: unexpected `{shown[:30]}`"
    char = getattr(error, "char", None)
    if isinstance(char, str):
        return f"invalid HCL: unexpected character `{char}`"
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"invalid HCL: {first[:120]}"


def node_loc(node: Tree[Any] | Token, loc_fn: LocFn, fallback: Loc) -> Loc:
    """Where a tree or token starts; falls back to its first positioned descendant."""
    if isinstance(node, Token):
        if node.line is not None and node.column is not None:
            return loc_fn(node.line, node.column)
        return fallback
    if not node.meta.empty:
        return loc_fn(node.meta.line, node.meta.column)
    for child in node.children:
        if isinstance(child, Tree | Token):
            loc = node_loc(child, loc_fn, fallback)
            if loc is not fallback:
                return loc
    return fallback


def significant(children: list[Any]) -> list[Any]:
    """Children that carry meaning: drop newline/comment runs and punctuation tokens."""
    out = []
    for child in children:
        if isinstance(child, Tree) and child.data == "new_line_or_comment":
            continue
        if isinstance(child, Token) and child.type in (
            "LPAR",
            "RPAR",
            "LSQB",
            "RSQB",
            "LBRACE",
            "RBRACE",
            "COMMA",
            "EQ",
            "COLON",
            "QMARK",
            "DBLQUOTE",
            "INTERP_START",
            "DOT",
            "NL_OR_COMMENT",
        ):
            continue
        out.append(child)
    return out


_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def unescape(text: str, loc: Loc) -> str:
    """HCL quoted-string escapes; an unknown escape is an error, as in HCL itself."""

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc[0]] + esc[1:]
        if esc[0] in "uU":
            width = 4 if esc[0] == "u" else 8
            digits = esc[1 : 1 + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                code = int(digits, 16)
                if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                    return chr(code) + esc[1 + width :]
        raise HclSyntaxError(loc, f"invalid escape sequence `\\{esc[:1]}` in string")

    return re.sub(r"\\(u[0-9a-fA-F]{0,4}|U[0-9a-fA-F]{0,8}|.)", repl, text, flags=re.S)


class ExprBuilder:
    """Turns Lark expression trees into :mod:`nodes` expressions."""

    def __init__(self, loc_fn: LocFn, fallback: Loc) -> None:
        self.loc_fn = loc_fn
        self.fallback = fallback

    def loc(self, node: Tree[Any] | Token) -> Loc:
        return node_loc(node, self.loc_fn, self.fallback)

    def fail(self, node: Tree[Any] | Token, message: str) -> HclSyntaxError:
        return HclSyntaxError(self.loc(node), message)

    def build(self, node: Tree[Any] | Token) -> Expr:
        if isinstance(node, Token):
            raise self.fail(node, f"unexpected `{node}`")
        kind = node.data
        loc = self.loc(node)
        kids = significant(node.children)
        if kind == "expr_term":
            if len(kids) != 1:
                raise self.fail(node, "unexpected expression")
            return self.build(kids[0])
        if kind == "int_lit":
            return Lit(int(str(kids[0])), loc)
        if kind == "float_lit":
            return Lit(float(str(kids[0])), loc)
        if kind == "literal_value":
            return Lit({"true": True, "false": False, "null": None}[str(kids[0])], loc)
        if kind == "identifier":
            return Name(str(kids[0]), loc)
        if kind == "string":
            return self.string(node, loc)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self.heredoc(str(kids[0]), loc, trim=kind.endswith("trim"))
        if kind == "tuple":
            return TupleX(tuple(self.build(k) for k in kids), loc)
        if kind == "object":
            items = []
            for elem in kids:
                key_node, value_node = significant(elem.children)
                items.append((self.object_key(key_node), self.build(value_node)))
            return ObjectX(tuple(items), loc)
        if kind == "function_call":
            return self.call(node, kids, loc)
        if kind == "index_expr_term":
            obj, index = kids
            index_kids = significant(index.children)
            if index.data == "short_index":
                return Index(self.build(obj), Lit(int(str(index_kids[0])), loc), loc)
            return Index(self.build(obj), self.build(index_kids[0]), loc)
        if kind == "get_attr_expr_term":
            obj, get_attr = kids
            (name_node,) = significant(get_attr.children)
            return Attr(self.build(obj), str(significant(name_node.children)[0]), loc)
        if kind == "conditional":
            test, then, other = kids
            return Cond(self.build(test), self.build(then), self.build(other), loc)
        if kind == "binary_op":
            left, term = kids[0], kids[1]
            op_node, right = significant(term.children)
            op = str(significant(op_node.children)[0])
            return Binary(op, self.build(left), self.build(right), loc)
        if kind == "unary_op":
            op, operand = kids
            return Unary(str(op), self.build(operand), loc)
        if kind in ("for_tuple_expr", "for_object_expr"):
            return self.for_expr(node, loc)
        if kind in ("attr_splat_expr_term", "full_splat_expr_term"):
            obj, splat = kids
            each: Expr = Name(SPLAT_ITEM, loc)
            for step in significant(splat.children):
                if isinstance(step, Token):  # the `[*]` / `.*` itself
                    continue
                each = self.traverse(each, step)
            return Splat(self.build(obj), each, loc)
        raise self.fail(node, f"unsupported expression ({kind})")

    def traverse(self, obj: Expr, step: Tree[Any]) -> Expr:
        """One `.name` or `[index]` step applied to ``obj``."""
        loc = self.loc(step)
        step_kids = significant(step.children)
        if step.data == "get_attr":
            (name_node,) = step_kids
            return Attr(obj, str(significant(name_node.children)[0]), loc)
        if step.data == "short_index":
            return Index(obj, Lit(int(str(step_kids[0]).lstrip(".")), loc), loc)
        return Index(obj, self.build(step_kids[0]), loc)

    def for_intro(self, intro: Tree[Any]) -> tuple[str | None, str, Expr]:
        names = [
            str(significant(c.children)[0])
            for c in intro.children
            if isinstance(c, Tree) and c.data == "identifier"
        ]
        trees = [
            c
            for c in intro.children
            if isinstance(c, Tree) and c.data not in ("identifier", "new_line_or_comment")
        ]
        collection = self.build(trees[-1])
        if len(names) == 2:
            return names[0], names[1], collection
        return None, names[0], collection

    def for_expr(self, node: Tree[Any], loc: Loc) -> Expr:
        intro = None
        cond: Expr | None = None
        exprs: list[Expr] = []
        group = False
        for child in node.children:
            if isinstance(child, Token):
                group = group or child.type == "ELLIPSIS"
            elif child.data == "for_intro":
                intro = child
            elif child.data == "for_cond":
                cond = self.build(significant(child.children)[-1])
            elif child.data != "new_line_or_comment":
                exprs.append(self.build(child))
        if intro is None or not exprs:
            raise self.fail(node, "invalid `for` expression")
        key_var, value_var, collection = self.for_intro(intro)
        if node.data == "for_object_expr":
            key, value = exprs
            return ForX(key_var, value_var, collection, key, value, cond, group, loc)
        return ForX(key_var, value_var, collection, None, exprs[0], cond, False, loc)

    def object_key(self, key_node: Tree[Any]) -> Expr:
        (inner,) = significant(key_node.children)
        loc = self.loc(key_node)
        if isinstance(inner, Token):  # keyword used as a key: `in = 1`
            return Lit(str(inner), loc)
        if inner.data == "keyword":
            return Lit(str(significant(inner.children)[0]), loc)
        term = inner
        term_kids = significant(term.children) if term.data == "expr_term" else [term]
        # A bare identifier is the key's name, not a variable (as in HCL);
        # parentheses make it an expression: `(var.k) = 1`.
        parenthesised = any(
            isinstance(c, Token) and c.type == "LPAR" for c in getattr(term, "children", [])
        )
        if len(term_kids) == 1 and isinstance(term_kids[0], Tree) and not parenthesised:
            only = term_kids[0]
            if only.data == "identifier":
                return Lit(str(significant(only.children)[0]), loc)
        return self.build(term)

    def call(self, node: Tree[Any], kids: list[Any], loc: Loc) -> Expr:
        if any(isinstance(c, Token) and c.type == "COLONS" for c in node.children):
            raise self.fail(node, "provider functions (`a::b::c()`) are not supported")
        name = str(significant(kids[0].children)[0])
        args: list[Expr] = []
        expand = False
        if len(kids) > 1:
            arguments = kids[1]
            for child in arguments.children:
                if isinstance(child, Token) and child.type == "ELLIPSIS":
                    expand = True
            args = [
                self.build(a)
                for a in significant(arguments.children)
                if not (isinstance(a, Token) and a.type == "ELLIPSIS")
            ]
        return Call(name, tuple(args), loc, expand)

    def string(self, node: Tree[Any], loc: Loc) -> Expr:
        pieces: list[str | Piece] = []
        for part in node.children:
            if not (isinstance(part, Tree) and part.data == "string_part"):
                continue
            (inner,) = part.children
            if isinstance(inner, Token):
                text = str(inner)
                if inner.type == "ESCAPED_INTERPOLATION" or inner.type == "ESCAPED_DIRECTIVE":
                    pieces.append(text[1:])  # $${ -> ${ and %%{ -> %{
                else:
                    pieces.append(unescape(text, self.loc(inner)))
            elif inner.data == "interpolation":
                (expr,) = significant(inner.children)
                pieces.append(Piece("expr", self.loc(inner), expr=self.build(expr)))
            else:
                pieces.append(self.directive(inner))
        return assemble(pieces, loc)

    def directive(self, node: Tree[Any]) -> Piece:
        loc = self.loc(node)
        kind = {
            "template_if_start": "if",
            "template_else": "else",
            "template_endif": "endif",
            "template_for_start": "for",
            "template_endfor": "endfor",
        }.get(node.data)
        if kind is None:
            raise self.fail(node, "invalid template directive")
        strip_l = strip_r = False
        seen_keyword = False
        for child in node.children:
            if isinstance(child, Token):
                if child.type == "STRIP_MARKER":
                    if seen_keyword:
                        strip_r = True
                    else:
                        strip_l = True
                elif child.type not in ("DIRECTIVE_START", "RBRACE"):
                    seen_keyword = True
        trees = [
            c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"
        ]
        if kind == "if":
            return Piece(kind, loc, strip_l, strip_r, expr=self.build(trees[-1]))
        if kind == "for":
            names = [str(significant(t.children)[0]) for t in trees if t.data == "identifier"]
            collection = self.build([t for t in trees if t.data != "identifier"][-1])
            key_var = names[0] if len(names) == 2 else None
            return Piece(kind, loc, strip_l, strip_r, collection, key_var, names[-1])
        return Piece(kind, loc, strip_l, strip_r)

    def heredoc(self, token_text: str, loc: Loc, *, trim: bool) -> Expr:
        m = re.match(r"<<-?([A-Za-z][A-Za-z0-9._-]*)\r?\n(.*)$", token_text, re.S)
        if not m:
            raise HclSyntaxError(loc, "invalid heredoc")
        marker = m.group(1)
        body = m.group(2)
        body = re.sub(r"[ \t]*" + re.escape(marker) + r"\r?\n?$", "", body)
        lines = body.split("\n")
        if trim:
            indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
            cut = min(indents, default=0)
            lines = [ln[cut:] for ln in lines]
            body = "\n".join(lines)
        # body lines start on the line after `<<EOT`
        base = Loc(loc.file, loc.line + 1, 1)
        return parse_template(body, base, cols_known=not trim)


@dataclass(frozen=True, slots=True)
class Piece:
    """A template's interpolation (``expr``) or directive, before nesting; ``~`` markers."""

    kind: str  # expr | if | else | endif | for | endfor
    loc: Loc
    strip_l: bool = False
    strip_r: bool = False
    expr: Expr | None = None  # the interpolation, the `if` test or the `for` collection
    key_var: str | None = None
    value_var: str = ""


_DIRECTIVE_NAMES = {"endif": "`%{ endif }`", "endfor": "`%{ endfor }`", "else": "`%{ else }`"}


def assemble(pieces: list[str | Piece], loc: Loc) -> Expr:
    """Apply ``~`` strip markers, then nest ``if``/``for`` directives into expressions."""
    items = list(pieces)
    for i, piece in enumerate(items):
        if not isinstance(piece, Piece):
            continue
        if piece.strip_l and i > 0 and isinstance(items[i - 1], str):
            items[i - 1] = str(items[i - 1]).rstrip()
        if piece.strip_r and i + 1 < len(items) and isinstance(items[i + 1], str):
            items[i + 1] = str(items[i + 1]).lstrip()
    parts, end, stop = _nest(items, 0, ())
    assert stop is None and end == len(items)
    return make_template(parts, loc)


def _nest(
    items: list[str | Piece], i: int, until: tuple[str, ...]
) -> tuple[list[str | Expr], int, Piece | None]:
    parts: list[str | Expr] = []
    while i < len(items):
        item = items[i]
        i += 1
        if isinstance(item, str):
            parts.append(item)
            continue
        if item.kind in until:
            return parts, i, item
        if item.kind == "expr":
            assert item.expr is not None
            parts.append(item.expr)
        elif item.kind == "if":
            assert item.expr is not None
            then, i, stop = _nest(items, i, ("else", "endif"))
            other: list[str | Expr] = []
            if stop is not None and stop.kind == "else":
                other, i, stop = _nest(items, i, ("endif",))
            if stop is None:
                raise HclSyntaxError(item.loc, "`%{ if }` without a matching `%{ endif }`")
            parts.append(
                TmplIf(
                    item.expr,
                    make_template(then, item.loc),
                    make_template(other, item.loc),
                    item.loc,
                )
            )
        elif item.kind == "for":
            assert item.expr is not None
            body, i, stop = _nest(items, i, ("endfor",))
            if stop is None:
                raise HclSyntaxError(item.loc, "`%{ for }` without a matching `%{ endfor }`")
            parts.append(
                TmplFor(
                    item.key_var, item.value_var, item.expr, make_template(body, item.loc), item.loc
                )
            )
        else:
            opener = "`%{ for }`" if item.kind == "endfor" else "`%{ if }`"
            raise HclSyntaxError(
                item.loc, f"{_DIRECTIVE_NAMES[item.kind]} without a matching {opener}"
            )
    return parts, i, None


def _offset_loc(base: Loc, text: str, index: int, cols_known: bool) -> Loc:
    before = text[:index]
    line = base.line + before.count("\n")
    col = index - before.rfind("\n") if "\n" in before else base.col + index
    return Loc(base.file, line, col if cols_known else base.col)


def parse_expression(text: str, loc: Loc) -> Expr:
    """Parse one HCL expression (the inside of ``${ }``) written at ``loc``."""
    prefix = "__amibake = "

    def loc_fn(line: int, col: int) -> Loc:
        if line == 1:
            return Loc(loc.file, loc.line, loc.col + max(col - 1 - len(prefix), 0))
        return Loc(loc.file, loc.line + line - 1, col)

    if "\n" in text.strip():
        # python-hcl2 only accepts newlines inside brackets; keep the expression on one line
        text = " ".join(text.split("\n"))
    tree = parse_tree(prefix + text.strip(), loc_fn)
    body = tree.children[0]
    attributes = [
        c for c in body.children if isinstance(c, Tree) and c.data != "new_line_or_comment"
    ]
    if len(attributes) != 1 or attributes[0].data != "attribute":
        raise HclSyntaxError(loc, f"invalid expression `${{{text.strip()[:40]}}}`")
    value = significant(attributes[0].children)[-1]
    return ExprBuilder(loc_fn, loc).build(value)


def parse_template(text: str, loc: Loc, *, cols_known: bool = True) -> Expr:
    """Split a template into literal text, ``${ }`` expressions and ``%{ }`` directives.

    Used for heredoc bodies, ``templatefile()`` files and amibake TOML strings
    (``$${`` and ``%%{`` are literal ``${`` and ``%{``).
    """
    if "${" not in text and "%{" not in text:
        return Lit(text, loc)
    parts: list[str | Piece] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if text.startswith("%%{", i):
            literal.append("%{")
            i += 3
            continue
        if text.startswith("${", i) or text.startswith("%{", i):
            end = _closing_brace(text, i + 2)
            where = _offset_loc(loc, text, i, cols_known)
            if end < 0:
                raise HclSyntaxError(where, f"unclosed `{text[i : i + 2]}` (missing `}}`)")
            raw = text[i + 2 : end]
            strip_l = raw.startswith("~")
            strip_r = raw.endswith("~") and len(raw) > 1
            inner = raw[1 if strip_l else 0 : len(raw) - 1 if strip_r else len(raw)]
            inner_loc = Loc(where.file, where.line, where.col + 2 + (1 if strip_l else 0))
            if literal:
                parts.append("".join(literal))
                literal = []
            if text[i] == "$":
                if not inner.strip():
                    raise HclSyntaxError(where, "empty `${}` interpolation")
                expr = parse_expression(inner, inner_loc)
                parts.append(Piece("expr", where, strip_l, strip_r, expr=expr))
            else:
                parts.append(_directive(inner, where, inner_loc, strip_l, strip_r))
            i = end + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return assemble(parts, loc)


_FOR_DIRECTIVE = re.compile(
    r"\s*for\s+([A-Za-z_][\w-]*)(?:\s*,\s*([A-Za-z_][\w-]*))?\s+in\s+(\S.*)$", re.S
)


def _directive(inner: str, where: Loc, inner_loc: Loc, strip_l: bool, strip_r: bool) -> Piece:
    """The inside of one ``%{ ... }`` directive."""
    body = inner.strip()
    if body in ("else", "endif", "endfor"):
        return Piece(body, where, strip_l, strip_r)
    if re.match(r"if\s", body):
        offset = inner.index("if") + 2
        test = parse_expression(inner[offset:], _shift(inner_loc, inner, offset))
        return Piece("if", where, strip_l, strip_r, expr=test)
    m = _FOR_DIRECTIVE.match(inner)
    if m:
        key_var, value_var = (m.group(1), m.group(2)) if m.group(2) else (None, m.group(1))
        collection = parse_expression(m.group(3), _shift(inner_loc, inner, m.start(3)))
        return Piece("for", where, strip_l, strip_r, collection, key_var, value_var)
    word = body.split()[0] if body.split() else ""
    raise HclSyntaxError(
        where,
        f"invalid template directive `%{{{body[:30]}}}`: expected if, else, endif, for or endfor"
        if word not in ("if", "for")
        else f"invalid `%{{ {word} }}` directive",
    )


def _shift(loc: Loc, text: str, offset: int) -> Loc:
    before = text[:offset]
    if "\n" in before:
        return Loc(loc.file, loc.line + before.count("\n"), offset - before.rfind("\n"))
    return Loc(loc.file, loc.line, loc.col + offset)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    i = start
    quote = False
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1
