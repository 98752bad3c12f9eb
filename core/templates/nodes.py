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
from typing import TYPE_CHECKING, Any

from amibake.core.templates.errors import Loc

if TYPE_CHECKING:  # hcltypes imports this module
    from amibake.core.model import SourceFormat
    from amibake.core.templates.hcltypes import HclType

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


@dataclass(frozen=True, slots=True)
class ForX:
    """``[for k, v in coll : value if cond]`` or ``{for k, v in coll : key => value... if cond}``.

    ``key`` is None for the tuple form; ``group`` is the object form's ``...``.
    """

    key_var: str | None
    value_var: str
    collection: Expr
    key: Expr | None
    value: Expr
    cond: Expr | None
    group: bool
    loc: Loc


#: The name a :class:`Splat`'s ``each`` expression reads the current element from.
SPLAT_ITEM = "*"


@dataclass(frozen=True, slots=True)
class Splat:
    """``obj[*].a.b`` / ``obj.*.a``: ``each`` (over ``Name(SPLAT_ITEM)``) for every element."""

    obj: Expr
    each: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class TmplIf:
    """A template's ``%{ if test }then%{ else }other%{ endif }``: always a string."""

    test: Expr
    then: Expr
    other: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class TmplFor:
    """A template's ``%{ for k, v in coll }body%{ endfor }``: the bodies joined."""

    key_var: str | None
    value_var: str
    collection: Expr
    body: Expr
    loc: Loc


Expr = (
    Lit
    | Tmpl
    | Name
    | Attr
    | Index
    | Call
    | Unary
    | Binary
    | Cond
    | TupleX
    | ObjectX
    | ForX
    | Splat
    | TmplIf
    | TmplFor
)


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


def make_template(parts: list[str | Expr], loc: Loc) -> Expr:
    """A template from its literal and interpolated parts: adjacent literals joined, empty ones
    dropped; all-literal (or nothing) is a plain :class:`Lit`."""
    merged: list[str | Expr] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + part
                continue
        merged.append(part)
    if all(isinstance(p, str) for p in merged):
        return Lit("".join(p for p in merged if isinstance(p, str)), loc)
    return Tmpl(tuple(merged), loc)


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
    #: The parsed ``type`` (a :class:`amibake.core.templates.hcltypes.HclType`), when the reader had
    #: one.
    type_constraint: HclType | None = None
    #: ``validation`` blocks: (condition, error_message, where the block is).
    validations: list[tuple[Node, str, Loc]] = field(default_factory=list)
    nullable: bool = True
    #: Legacy JSON: a ``user`` variable used but not declared (empty unless --var or a
    #: var-file sets it), and the declared name it looks like a typo of ("" if none).
    undeclared_hint: str | None = None


@dataclass(slots=True)
class DynamicBlock:
    """An HCL2 ``dynamic "TYPE" { for_each, iterator, labels, content }`` block, not yet expanded.

    It sits where the blocks it generates will be (in a body's ``ListNode`` of
    ``TYPE`` blocks, or in a build's list of provisioners...); ``content`` is the
    ``content`` block read like the blocks it generates. Expanding it (see
    :func:`amibake.core.templates.hcl.expand_dynamic`) needs ``for_each``'s value, so it
    happens when variables are known.
    """

    type: str
    for_each: Node
    iterator: str
    labels: list[Node]
    content: Any
    loc: Loc


@dataclass(slots=True)
class SourceUse:
    """A source a build uses: ``sources = ["..."]`` entry or a build-level ``source`` block."""

    ref: str
    loc: Loc
    body: MapNode | None = None  # the build-level block's settings (besides `name`)
    name: str | None = None  # its `name`: the builder's local name


@dataclass(slots=True)
class BuildDecl:
    """One HCL2 ``build`` block, before it is turned into builders and provisioners."""

    loc: Loc
    name: str | None = None
    name_node: Node | None = None  # a `name` computed from variables/locals
    description: str | None = None
    sources: Node | None = None  # the `sources` attribute (evaluated: it may use locals)
    source_uses: list[Any] = field(default_factory=list)  # SourceUse | DynamicBlock
    provisioners: list[Any] = field(default_factory=list)  # Section | DynamicBlock
    post_processors: list[Any] = field(default_factory=list)  # list[Section] | DynamicBlock
    error_cleanup_provisioner: Section | None = None


@dataclass(slots=True)
class Section:
    """A builder, provisioner or post-processor: its type, body and key path prefix."""

    type: str
    body: MapNode
    path: str
    loc: Loc
    name: str | None = None  # builder name (JSON `name` / HCL source label)
    type_loc: Loc | None = None
    #: HCL2: the builders (by name) of the build block a provisioner/post-processor is in.
    builders: tuple[str, ...] = ()
    #: HCL2 builders: Packer's run name, ``[<build name>.]<type>.<source local name>``.
    packer_name: str = ""
    #: HCL2 builders: Packer's ``packer_build_name``, the source block's own label.
    build_name: str = ""


@dataclass(slots=True)
class RawTemplate:
    file: str
    format: SourceFormat
    variables: dict[str, VariableDecl] = field(default_factory=dict)
    locals: dict[str, Node] = field(default_factory=dict)
    local_locs: dict[str, Loc] = field(default_factory=dict)
    builders: list[Section] = field(default_factory=list)
    provisioners: list[Section] = field(default_factory=list)
    post_processors: list[Section] = field(default_factory=list)
    error_cleanup_provisioner: Section | None = None
    loc: Loc | None = None
    #: HCL2 ``data "TYPE" "NAME"`` blocks, keyed ``TYPE.NAME`` (see
    #: amibake.core.templates.datasources).
    data_sources: dict[str, Section] = field(default_factory=dict)
    #: HCL2: sources by ``TYPE.NAME``, the build blocks, and whether they are already
    #: turned into ``builders``/``provisioners``/... (not when that needs variables).
    sources: dict[str, Section] = field(default_factory=dict)
    builds: list[BuildDecl] = field(default_factory=list)
    assembled: bool = True
    sensitive_locals: set[str] = field(default_factory=set)
