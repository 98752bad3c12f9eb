"""The format-neutral form of a template before interpolation.

Each reader (JSON, HCL2, TOML) produces these nodes; the evaluator resolves
the expressions in them and the schema decoder turns them into the model. Every
node and expression keeps the :class:`Loc` of its source text.

Expressions use one small language for all formats: Packer JSON's
``{{user `x`}}`` becomes ``var.x``, ``{{timestamp}}`` becomes
``unix_timestamp()``, so the TOML writer can print any of them in the
``${...}`` syntax amibake TOML shares with HCL2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.templates.errors import Loc

# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any
    loc: Loc


@dataclass(frozen=True, slots=True)
class Tmpl:
    """A string template: literal text and interpolated expressions.

    A template made of a single expression yields that expression's value
    unconverted (as in HCL2), so ``"${var.list}"`` stays a list.
    """

    parts: tuple[str | Expr, ...]
    loc: Loc


@dataclass(frozen=True, slots=True)
class Name:
    """A root identifier: ``var``, ``local``, ``source``, ``path`` or a for-loop name."""

    name: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class Attr:
    obj: Expr
    name: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class Index:
    obj: Expr
    key: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    loc: Loc
    expand: bool = False  # f(list...)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class Cond:
    test: Expr
    then: Expr
    other: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class TupleX:
    items: tuple[Expr, ...]
    loc: Loc


@dataclass(frozen=True, slots=True)
class ObjectX:
    items: tuple[tuple[Expr, Expr], ...]
    loc: Loc


Expr = Lit | Tmpl | Name | Attr | Index | Call | Unary | Binary | Cond | TupleX | ObjectX


def is_literal(expr: Expr) -> bool:
    return isinstance(expr, Lit)


# --------------------------------------------------------------------------- value nodes


@dataclass(slots=True)
class Scalar:
    """A literal: str, int, float, bool or None."""

    value: Any
    loc: Loc


@dataclass(slots=True)
class ExprNode:
    """A value still to be computed."""

    expr: Expr
    loc: Loc


@dataclass(slots=True)
class ListNode:
    items: list[Node]
    loc: Loc


@dataclass(slots=True)
class MapNode:
    """An object or block body. ``key_locs`` holds where each key is written."""

    entries: dict[str, Node]
    loc: Loc
    key_locs: dict[str, Loc] = field(default_factory=dict)
    block: bool = False

    def key_loc(self, key: str) -> Loc:
        return self.key_locs.get(key, self.entries[key].loc if key in self.entries else self.loc)


@dataclass(slots=True)
class BadNode:
    """A value that failed to evaluate; its problem is already reported."""

    loc: Loc


Node = Scalar | ExprNode | ListNode | MapNode | BadNode


def expr_to_node(expr: Expr) -> Node:
    """Literal tuples/objects become list/map nodes so each element keeps its position."""
    if isinstance(expr, Lit):
        return Scalar(expr.value, expr.loc)
    if isinstance(expr, TupleX):
        return ListNode([expr_to_node(i) for i in expr.items], expr.loc)
    if isinstance(expr, ObjectX) and all(
        isinstance(k, Lit) and isinstance(k.value, str) for k, _ in expr.items
    ):
        node = MapNode({}, expr.loc)
        for key, value in expr.items:
            assert isinstance(key, Lit)
            node.entries[key.value] = expr_to_node(value)
            node.key_locs[key.value] = key.loc
        return node
    if isinstance(expr, Tmpl) and all(isinstance(p, str) for p in expr.parts):
        return Scalar("".join(p for p in expr.parts if isinstance(p, str)), expr.loc)
    return ExprNode(expr, expr.loc)


# --------------------------------------------------------------------------- raw template


@dataclass(slots=True)
class VariableDecl:
    name: str
    loc: Loc
    default: Node | None = None  # None: required
    has_default: bool = False
    sensitive: bool = False
    description: str | None = None
    type: str | None = None  # HCL type expression as text: string, number, bool, list(string)...


@dataclass(slots=True)
class Section:
    """A builder, provisioner or post-processor: its type, body and key path prefix."""

    type: str
    body: MapNode
    path: str
    loc: Loc
    name: str | None = None  # builder name (JSON `name` / HCL source label)
    type_loc: Loc | None = None


@dataclass(slots=True)
class RawTemplate:
    file: str
    format: str  # json | hcl | toml
    variables: dict[str, VariableDecl] = field(default_factory=dict)
    locals: dict[str, Node] = field(default_factory=dict)
    local_locs: dict[str, Loc] = field(default_factory=dict)
    builders: list[Section] = field(default_factory=list)
    provisioners: list[Section] = field(default_factory=list)
    post_processors: list[Section] = field(default_factory=list)
    error_cleanup_provisioner: Section | None = None
    loc: Loc | None = None
