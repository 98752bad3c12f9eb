"""HCL2 variable type constraints and Packer's (go-cty's) conversions.

A ``variable`` block's ``type`` is an expression (``string``, ``list(string)``,
``object({ name = string, size = optional(number, 8) })``...). :func:`type_from_expr`
reads it into an :class:`HclType`; :func:`convert` applies it to a value the way
go-cty's ``convert.Convert`` does for Packer: numbers and bools become strings,
``"12"`` becomes a number, ``"true"``/``"1"`` a bool, a list a set, an object a map;
a missing object attribute is an error unless it is ``optional()`` (then its
default, or null); extra object attributes are dropped. ``null`` converts to any type.

Without a ``type``, Packer takes the type of the default: a string, number or bool
default makes the variable that type (so ``-var`` values are converted to it). A
literal string/number/bool default gets it when the template is read
(:func:`infer_type`); any other default gets go-cty's exact type of its value when
variables are chosen (:func:`default_type`): ``["a", "b"]`` is ``tuple([string, string])``,
``{ Team = "x" }`` is ``object({Team = string})``. A default computed by a function may be
a list, set or map in Packer (split(), merge()...): amibake, whose values do not carry
that difference, takes it as "a list" / "an object" of anything (looser). An empty list
or object (or null) default leaves the variable untyped, so a ``-var`` value for it stays
a string, as in Packer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amibake.core.templates.errors import Loc
from amibake.core.templates.evaluate import EvalError, to_text
from amibake.core.templates.functions import kind_name, parse_number
from amibake.core.templates.hclexpr import HclSyntaxError, parse_expression
from amibake.core.templates.nodes import (
    Call,
    Expr,
    ExprNode,
    ForX,
    Lit,
    Name,
    Node,
    ObjectX,
    Scalar,
    Tmpl,
    TupleX,
    Unary,
    VariableDecl,
    expr_to_node,
)

PRIMITIVES = ("string", "number", "bool", "any")
COLLECTIONS = ("list", "set", "map")


@dataclass(frozen=True, slots=True)
class ObjectAttr:
    name: str
    type: HclType
    optional: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class HclType:
    """``kind``: string, number, bool, any, list, set, map, object or tuple.

    ``elem`` is the element type of list/set/map; ``attrs`` the attributes of an
    object; ``items`` the element types of a tuple. ``loose`` marks a type inferred
    from a default's shape ("some list" / "some object").
    """

    kind: str
    elem: HclType | None = None
    attrs: tuple[ObjectAttr, ...] = ()
    items: tuple[HclType, ...] = ()
    loose: bool = False

    def __str__(self) -> str:
        if self.kind in PRIMITIVES:
            return self.kind
        if self.kind in COLLECTIONS:
            return f"{self.kind}({self.elem})"
        if self.kind == "tuple":
            return f"tuple([{', '.join(str(i) for i in self.items)}])"
        fields = []
        for a in self.attrs:
            fields.append(f"{a.name} = {f'optional({a.type})' if a.optional else a.type}")
        return "object({" + ", ".join(fields) + "})"

    @property
    def is_primitive_text(self) -> bool:
        """Whether a ``-var``/``PKR_VAR_`` string is taken as is (Packer: string, number, any)."""
        return self.kind in ("string", "number", "any")


ANY = HclType("any")
STRING = HclType("string")


# --------------------------------------------------------------------------- reading


def type_from_text(text: str, loc: Loc) -> HclType:
    """A type constraint written as text (TOML/JSON ``type`` keys, or HCL source text)."""
    return type_from_expr(parse_expression(text, loc))


def type_from_expr(expr: Expr, *, in_object: bool = False) -> HclType:
    """Read a type expression; raises :class:`HclSyntaxError` at the offending part."""
    if isinstance(expr, Tmpl) and len(expr.parts) == 1 and not isinstance(expr.parts[0], str):
        expr = expr.parts[0]
    if isinstance(expr, Name):
        if expr.name in PRIMITIVES:
            return HclType(expr.name)
        if expr.name in COLLECTIONS or expr.name in ("object", "tuple"):
            raise HclSyntaxError(
                expr.loc,
                f"the `{expr.name}` type constraint needs an argument, e.g. `{expr.name}(string)`"
                if expr.name in COLLECTIONS
                else f"the `{expr.name}` type constraint needs an argument",
            )
        raise HclSyntaxError(
            expr.loc,
            f"`{expr.name}` is not a type: use string, number, bool, any, list(...), set(...), "
            "map(...), object({...}) or tuple([...])",
        )
    if isinstance(expr, Call):
        if expr.name in COLLECTIONS:
            if len(expr.args) != 1:
                raise HclSyntaxError(expr.loc, f"`{expr.name}(...)` takes one element type")
            return HclType(expr.name, elem=type_from_expr(expr.args[0]))
        if expr.name == "tuple":
            if len(expr.args) != 1 or not isinstance(expr.args[0], TupleX):
                raise HclSyntaxError(
                    expr.loc, "`tuple(...)` takes a list of types: tuple([string, number])"
                )
            return HclType("tuple", items=tuple(type_from_expr(i) for i in expr.args[0].items))
        if expr.name == "object":
            if len(expr.args) != 1 or not isinstance(expr.args[0], ObjectX):
                raise HclSyntaxError(
                    expr.loc,
                    "`object(...)` takes attribute types: object({ a = string })",
                )
            attrs: list[ObjectAttr] = []
            for key, value in expr.args[0].items:
                if not (isinstance(key, Lit) and isinstance(key.value, str)):
                    raise HclSyntaxError(key.loc, "an object attribute name must be a plain name")
                if any(a.name == key.value for a in attrs):
                    raise HclSyntaxError(key.loc, f"attribute `{key.value}` is given twice")
                if isinstance(value, Call) and value.name == "optional":
                    if len(value.args) not in (1, 2):
                        raise HclSyntaxError(
                            value.loc, "`optional(type)` or `optional(type, default)` expected"
                        )
                    atype = type_from_expr(value.args[0])
                    default = None
                    if len(value.args) == 2:
                        default = convert(literal_value(value.args[1]), atype, value.args[1].loc)
                    attrs.append(ObjectAttr(key.value, atype, True, default))
                else:
                    attrs.append(ObjectAttr(key.value, type_from_expr(value, in_object=True)))
            return HclType("object", attrs=tuple(attrs))
        if expr.name == "optional":
            raise HclSyntaxError(
                expr.loc, "`optional(...)` is only allowed for an attribute of object({...})"
            )
        raise HclSyntaxError(expr.loc, f"`{expr.name}(...)` is not a type constructor")
    raise HclSyntaxError(expr.loc, "expected a type, e.g. string, list(string) or map(number)")


def literal_value(expr: Expr) -> Any:
    """The value of a constant expression (an ``optional()`` default)."""
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Tmpl) and all(isinstance(p, str) for p in expr.parts):
        return "".join(p for p in expr.parts if isinstance(p, str))
    if isinstance(expr, TupleX):
        return [literal_value(i) for i in expr.items]
    if isinstance(expr, ObjectX):
        out = {}
        for key, value in expr.items:
            k = literal_value(key)
            if not isinstance(k, str):
                raise HclSyntaxError(key.loc, "an object key must be a string")
            out[k] = literal_value(value)
        return out
    if isinstance(expr, Unary) and expr.op == "-":
        inner = literal_value(expr.operand)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner
    raise HclSyntaxError(expr.loc, "a default in a type constraint must be a constant value")


def infer_type(value: Any) -> HclType:
    """The type Packer gives a variable that has a default but no ``type``."""
    if isinstance(value, bool):
        return HclType("bool")
    if isinstance(value, str):
        return STRING
    if isinstance(value, int | float):
        return HclType("number")
    if isinstance(value, list) and value:
        return HclType("list", elem=ANY, loose=True)
    if isinstance(value, dict) and value:
        return HclType("map", elem=ANY, loose=True)
    return ANY


def default_type(value: Any, exact: bool = True) -> HclType:
    """The type Packer gives an untyped variable from its evaluated ``default``.

    go-cty's type of the value (Packer hcl2template ``decodeVariableBlock``): a list is a
    tuple of its elements' types and an object an object of its attributes' types, except
    that a default that is null, ``[]`` or ``{}`` leaves the variable untyped (``any``).
    ``exact=False`` (a default computed by a function, which may return a list, set or
    map in Packer: split(), sort(), merge()...): only "a list" / "an object" of anything.
    """
    if value is None or (isinstance(value, list | dict) and not value):
        return ANY
    if not exact and isinstance(value, list | dict):
        return infer_type(value)
    return _value_type(value)


def _value_type(value: Any) -> HclType:
    if isinstance(value, list):
        return HclType("tuple", items=tuple(_value_type(v) for v in value))
    if isinstance(value, dict):
        return HclType(
            "object", attrs=tuple(ObjectAttr(str(k), _value_type(v)) for k, v in value.items())
        )
    if value is None:
        return ANY
    return infer_type(value)


# --------------------------------------------------------------------------- converting


def convert(value: Any, t: HclType, loc: Loc, path: str = "") -> Any:
    """Convert ``value`` to ``t`` as go-cty does; raises :class:`EvalError` naming where."""
    if value is None or t.kind == "any":
        return value
    where = f" at `{path}`" if path else ""

    def fail(expected: str) -> EvalError:
        return EvalError(loc, f"expected {expected}{where}, got {_describe(value)}")

    if t.kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return to_text(value, loc)
        raise fail("a string")
    if t.kind == "number":
        if isinstance(value, bool):
            raise fail("a number")
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            number = parse_number(value)
            if number is not None:
                return number
        raise fail("a number")
    if t.kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        if isinstance(value, str) and value.lower() in ("true", "false"):
            raise EvalError(
                loc, f"expected a bool{where}: write `{value.lower()}` in lower case, not `{value}`"
            )
        raise fail("a bool")
    if t.kind in ("list", "set"):
        if not isinstance(value, list):
            raise fail(f"a {t.kind} ({t})" if not t.loose else "a list")
        assert t.elem is not None
        items = [convert(v, t.elem, loc, f"{path}[{i}]") for i, v in enumerate(value)]
        if t.kind == "set":
            items = _as_set(items)
        return items
    if t.kind == "map":
        if not isinstance(value, dict):
            raise fail(f"a map ({t})" if not t.loose else "an object")
        assert t.elem is not None
        return {k: convert(v, t.elem, loc, f"{path}.{k}" if path else k) for k, v in value.items()}
    if t.kind == "tuple":
        if not isinstance(value, list):
            raise fail(f"a tuple ({t})")
        if len(value) != len(t.items):
            raise EvalError(
                loc, f"expected a tuple of {len(t.items)} elements{where}, got {len(value)}"
            )
        return [
            convert(v, it, loc, f"{path}[{i}]")
            for i, (v, it) in enumerate(zip(value, t.items, strict=True))
        ]
    if t.kind == "object":
        if not isinstance(value, dict):
            raise fail(f"an object ({t})")
        out: dict[str, Any] = {}
        for attr in t.attrs:
            apath = f"{path}.{attr.name}" if path else attr.name
            if attr.name in value:
                item = value[attr.name]
                if item is None and attr.optional:
                    item = attr.default
                out[attr.name] = convert(item, attr.type, loc, apath)
            elif attr.optional:
                out[attr.name] = attr.default
            else:
                raise EvalError(loc, f"attribute `{apath}` is required (type {t})")
        return out
    raise EvalError(loc, f"unknown type `{t}`")  # pragma: no cover


def _as_set(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    if all(isinstance(i, str) for i in unique):
        return sorted(unique)
    if all(isinstance(i, int | float) and not isinstance(i, bool) for i in unique):
        return sorted(unique)
    return unique


def _describe(value: Any) -> str:
    kind = kind_name(value, other=type(value).__name__)
    if kind in ("string",):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f'"{short}"'
    if kind in ("number", "bool"):
        return f"{kind} {to_text(value, Loc('?'))}"
    return "a list" if kind == "list" else ("an object" if kind == "object" else kind)


# --------------------------------------------------------------------------- -var / PKR_VAR_


def typed_text_node(text: str, type_: HclType | None, loc: Loc) -> Node:
    """A ``-var`` / ``PKR_VAR_`` string, as Packer reads it.

    For a string, number or ``any`` variable (or one without a type) the text is
    the value; for any other type it is parsed as an HCL expression (so
    ``-var 'subnets=["a","b"]'`` is a list and ``-var debug=true`` a bool).
    """
    if type_ is None or type_.is_primitive_text:
        return Scalar(text, loc)
    return expr_to_node(parse_expression(text, loc))


def node_is_literal(node: Node) -> bool:
    return not isinstance(node, ExprNode)


# --------------------------------------------------------------------------- variables


def variable_type(decl: VariableDecl | None) -> HclType | None:
    """A declared variable's type (the HCL reader sets it from the default when untyped).

    ``decl`` is a :class:`~amibake.core.templates.nodes.VariableDecl` (or None: an undeclared
    legacy JSON user variable, which has no type).
    """
    if decl is None:
        return None
    if decl.type_constraint is not None:
        return decl.type_constraint
    if decl.type:  # TOML / JSON templates carry the type as text
        try:
            decl.type_constraint = type_from_text(decl.type, decl.loc)
        except HclSyntaxError:
            return None  # reported where the template is checked; taken as untyped here
        return decl.type_constraint
    return None


def convert_variable(
    value: Any, decl: VariableDecl | None, loc: Loc, type_: HclType | None = None
) -> Any:
    """A variable's chosen value converted to its type (``type_``, else the declared one);
    null refused when not nullable."""
    if value is None and decl is not None and not decl.nullable:
        raise EvalError(loc, f"variable `{decl.name}` must not be null (nullable = false)")
    t = type_ or variable_type(decl)
    return value if t is None else convert(value, t, loc)


def untyped_default_type(decl: VariableDecl, evaluate: Callable[[Node], Any]) -> HclType | None:
    """The type an untyped variable takes from a default that is not a literal string,
    number or bool (those get theirs when the template is read); None otherwise."""
    if variable_type(decl) is not None or decl.default is None:
        return None
    if isinstance(decl.default, Scalar):
        return None
    # `[...]`, `{...}` and `for` expressions make tuples and objects; anything else
    # (a function call, a conditional...) may make a list, set or map in Packer
    exact = not isinstance(decl.default, ExprNode) or isinstance(
        decl.default.expr, TupleX | ObjectX | ForX
    )
    return default_type(evaluate(decl.default), exact)


def variable_value(
    node: Node,
    decl: VariableDecl | None,
    evaluate: Callable[[Node], Any],
    *,
    infer: bool,
    from_text: bool = False,
) -> Any:
    """A variable's chosen value (``node``) evaluated and converted to its type.

    ``infer``: an untyped variable takes its type from its default (HCL2 and TOML, for a
    value that is not the default): a ``-var`` / ``PKR_VAR_`` string is then read as
    Packer reads it for that type (HCL for a list, object or bool) before converting.
    ``from_text``: ``node`` is such a string, kept as text when the variables were chosen.
    """
    t = untyped_default_type(decl, evaluate) if infer and decl is not None else None
    if t is None:
        return convert_variable(evaluate(node), decl, node.loc)
    assert decl is not None
    if from_text and isinstance(node, Scalar) and isinstance(node.value, str):
        try:
            node = typed_text_node(node.value, t, node.loc)
        except HclSyntaxError as error:
            raise EvalError(error.loc, error.message) from None
    value = evaluate(node)
    try:
        return convert_variable(value, decl, node.loc, t)
    except EvalError as error:
        of_default = "" if str(t) in error.message else f", {t}"
        raise EvalError(
            error.loc,
            f"{error.message} (`{decl.name}` has no `type`: it takes its default's{of_default})",
        ) from None
