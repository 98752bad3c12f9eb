"""Evaluating template expressions: variables, locals and functions.

One :class:`Scope` serves one build run, so every ``timestamp()`` /
``{{timestamp}}`` of a template sees the same instant.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from amibake.core.templates import functions as _functions
from amibake.core.templates.errors import Loc, suggest
from amibake.core.templates.functions import (
    REGISTRY,
    FunctionContext,
    FunctionError,
    clean_resource_name,
    equal,
    number_text,
)
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
    Scalar,
    Splat,
    Tmpl,
    TmplFor,
    TmplIf,
    TupleX,
    Unary,
)

__all__ = ["UNKNOWN", "EvalError", "Scope", "clean_resource_name", "has_unknown"]


class EvalError(Exception):
    """``reported``: the same failure was already reported where it happened."""

    def __init__(self, loc: Loc, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.reported = reported


class Unknown:
    """The one value that is known only later (data sources not run during ``validate``).

    Every operator, index, attribute, template and function applied to it yields it
    again; so does a conditional whose test is unknown.
    """

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __copy__(self) -> Unknown:
        return self

    def __deepcopy__(self, _memo: object) -> Unknown:
        return self

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


#: how ``build.X`` stands in a provisioner's strings until the build runs (hcl.py)
_BUILD_VALUE = re.compile(r"\{\{ build `[A-Za-z]+` \}\}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


#: functions that carry a ``build.*`` stand-in through whatever its value turns out to be
_PASS_BUILD_VALUES = frozenset(
    {
        "format",
        "formatlist",
        "join",
        "concat",
        "flatten",
        "tolist",
        "tostring",
        "tomap",
        "element",
        "lookup",
        "merge",
        "slice",
        "reverse",
        "values",
        "keys",
        "zipmap",
    }
)


def _check_build_values(name: str, loc: Loc, args: list[Any], result: Any) -> None:
    """``build.*`` is known only when the provisioner runs (Packer decodes it again then):
    its stand-in may pass through ``join``, ``format``... but no function may depend on it."""
    wanted = {
        m for text in _strings(args) if "{{ build `" in text for m in _BUILD_VALUE.findall(text)
    }
    if not wanted:
        return
    kept = "\n".join(_strings(result)) if name in _PASS_BUILD_VALUES else ""
    lost = sorted(m.split("`")[1] for m in wanted if m not in kept)
    if lost:
        raise EvalError(
            loc,
            f"{name}() over `build.{lost[0]}`: a function of a value known only when the "
            "provisioner runs is not supported yet",
        )


def has_unknown(value: Any) -> bool:
    """Whether ``value`` is or contains :data:`UNKNOWN`."""
    if value is UNKNOWN:
        return True
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    return False


# --------------------------------------------------------------------------- helpers


def to_text(value: Any, loc: Loc, what: str = "value") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EvalError(loc, f"cannot use a non-finite number as a string ({what})")
        return number_text(value)
    if value is None:
        raise EvalError(loc, f"cannot use null as a string ({what})")
    kind = "a list" if isinstance(value, list) else "an object"
    raise EvalError(loc, f"cannot use {kind} as a string ({what})")


def to_number(value: Any, loc: Loc) -> int | float:
    if isinstance(value, bool):
        raise EvalError(loc, "expected a number, got a bool")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise EvalError(loc, f"expected a number, got `{value}`") from None
            if math.isfinite(number):
                return number
    raise EvalError(loc, f"expected a number, got {type(value).__name__}")


def to_bool(value: Any, loc: Loc) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise EvalError(loc, f"expected true or false, got `{value}`")


def isotime(layout: str, t: _dt.datetime) -> str:
    """Format ``t`` with a Go reference-time layout, as Packer's ``{{isotime}}`` does."""
    return _functions.go_time_format(layout, t)


RFC3339_GO = _functions.RFC3339_GO


# --------------------------------------------------------------------------- scope


ROOT_NAMES = ("var", "local", "source", "path", "data")


class Scope:
    """Evaluates expressions for one template and one build run."""

    def __init__(
        self,
        *,
        variables: Mapping[str, Callable[[], Any]],
        locals_: Mapping[str, Node],
        now: _dt.datetime,
        env: Mapping[str, str],
        uuid_factory: Callable[[], str] | None,
        template_dir: Path,
        unset: Iterable[str] = (),
        data_sources: Mapping[str, Callable[[], Any]] | None = None,
        aws_secret: Callable[[str, str | None], str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self._variables = variables
        # data.TYPE.NAME: getters keyed "TYPE.NAME" (amibake.core.templates.datasources), run once
        # each
        self._data_sources = data_sources or {}
        self._data_cache: dict[str, Any] = {}
        self._var_cache: dict[str, Any] = {}
        self._locals = locals_
        self._local_cache: dict[str, Any] = {}
        self._in_progress: set[str] = set()
        self._failed: dict[str, EvalError] = {}
        for name in unset:  # required variables without a value: reported once, where declared
            self._failed[f"var.{name}"] = EvalError(Loc("?"), f"variable `{name}` has no value")
        self.now = now
        self.env = env
        self.uuid_factory = uuid_factory or (lambda: str(uuid.uuid4()))
        self.template_dir = template_dir
        self.source: dict[str, str] | None = None
        # names bound by `for` expressions, splats and templatefile() (innermost last)
        self._bindings: list[Mapping[str, Any]] = []
        self.aws_secret = aws_secret
        self.cwd = cwd
        self._in_templatefile = False

    # -- nodes

    def resolve(self, node: Node, errors: list[tuple[EvalError, str]], path: str = "") -> Node:
        """Evaluate every expression under ``node``; failures become :class:`BadNode`.

        ``errors`` receives each new failure with the key path where it happened.
        """
        if isinstance(node, ExprNode):
            try:
                return value_to_node(self.eval(node.expr), node.loc)
            except EvalError as error:
                if not error.reported:
                    errors.append((error, path))
                return BadNode(node.loc)
        if isinstance(node, ListNode):
            return ListNode(
                [self.resolve(n, errors, f"{path}[{i}]") for i, n in enumerate(node.items)],
                node.loc,
            )
        if isinstance(node, MapNode):
            return MapNode(
                {
                    k: self.resolve(v, errors, f"{path}.{k}" if path else k)
                    for k, v in node.entries.items()
                },
                node.loc,
                node.key_locs,
                node.block,
            )
        return node

    def node_value(self, node: Node) -> Any:
        if isinstance(node, Scalar):
            return node.value
        if isinstance(node, ExprNode):
            return self.eval(node.expr)
        if isinstance(node, ListNode):
            return [self.node_value(n) for n in node.items]
        if isinstance(node, MapNode):
            return {k: self.node_value(v) for k, v in node.entries.items()}
        raise EvalError(node.loc, "invalid value")

    # -- expressions

    def eval(self, expr: Expr) -> Any:
        if isinstance(expr, Lit):
            return expr.value
        if isinstance(expr, Tmpl):
            return self.template(expr)
        if isinstance(expr, Attr):
            return self.attr(expr)
        if isinstance(expr, Name):
            for frame in reversed(self._bindings):
                if expr.name in frame:
                    return frame[expr.name]
            if expr.name in ROOT_NAMES:
                raise EvalError(expr.loc, f"`{expr.name}` needs an attribute, e.g. `{expr.name}.x`")
            bound = [n for frame in self._bindings for n in frame if n != SPLAT_ITEM]
            raise EvalError(
                expr.loc,
                f"unknown name `{expr.name}`{suggest(expr.name, [*ROOT_NAMES, *bound])}",
            )
        if isinstance(expr, Index):
            return self.index(expr)
        if isinstance(expr, Call):
            return self.call(expr)
        if isinstance(expr, Unary):
            value = self.eval(expr.operand)
            if value is UNKNOWN:
                return UNKNOWN
            if expr.op == "!":
                return not to_bool(value, expr.loc)
            return -to_number(value, expr.loc)
        if isinstance(expr, Binary):
            return self.binary(expr)
        if isinstance(expr, Cond):
            test = self.eval(expr.test)
            if test is UNKNOWN:
                return UNKNOWN
            return self.eval(expr.then if to_bool(test, expr.test.loc) else expr.other)
        if isinstance(expr, TupleX):
            return [self.eval(i) for i in expr.items]
        if isinstance(expr, ObjectX):
            out: dict[str, Any] = {}
            unknown_key = False
            for k, v in expr.items:
                key = self.eval(k)
                value = self.eval(v)
                if key is UNKNOWN:
                    unknown_key = True
                    continue
                out[to_text(key, k.loc, "an object key")] = value
            return UNKNOWN if unknown_key else out
        if isinstance(expr, ForX):
            return self.for_expr(expr)
        if isinstance(expr, Splat):
            return self.splat(expr)
        if isinstance(expr, TmplIf):
            test = self.eval(expr.test)
            if test is UNKNOWN:
                return UNKNOWN
            chosen = expr.then if to_bool(test, expr.test.loc) else expr.other
            return self.text(chosen)
        if isinstance(expr, TmplFor):
            return self.template_for(expr)
        raise EvalError(Loc("?"), "unknown expression")  # pragma: no cover

    # -- expression forms

    def template(self, expr: Tmpl) -> Any:
        parts = expr.parts
        if len(parts) == 1 and not isinstance(parts[0], str | TmplIf | TmplFor):
            return self.eval(parts[0])  # "${x}" keeps x's type, as in HCL
        out: list[str] = []
        unknown = False
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.eval(part)
            if value is UNKNOWN:
                unknown = True
            elif not unknown:
                out.append(to_text(value, part.loc, "in a string template"))
        return UNKNOWN if unknown else "".join(out)

    def text(self, expr: Expr) -> Any:
        """A template directive's body: always a string (or :data:`UNKNOWN`)."""
        value = self.eval(expr)
        if value is UNKNOWN:
            return UNKNOWN
        where = expr.loc
        if isinstance(expr, Tmpl) and len(expr.parts) == 1 and not isinstance(expr.parts[0], str):
            where = expr.parts[0].loc  # the one interpolation the body is made of
        return to_text(value, where, "in a string template")

    @contextmanager
    def bound(self, names: Mapping[str, Any]) -> Iterator[None]:
        self._bindings.append(names)
        try:
            yield
        finally:
            self._bindings.pop()

    def pairs(self, collection: Any, loc: Loc, what: str) -> list[tuple[Any, Any]]:
        """(key, value) pairs a `for` walks: list indexes, or object keys in lexical order."""
        if isinstance(collection, list):
            return list(enumerate(collection))
        if isinstance(collection, dict):
            return [(k, collection[k]) for k in sorted(collection)]
        kind = "null" if collection is None else type(collection).__name__
        if isinstance(collection, str):
            kind = "a string"
        raise EvalError(loc, f"{what} needs a list or an object to iterate over, got {kind}")

    @staticmethod
    def _names(key_var: str | None, value_var: str, key: Any, value: Any) -> dict[str, Any]:
        return {key_var: key, value_var: value} if key_var else {value_var: value}

    def for_expr(self, expr: ForX) -> Any:
        collection = self.eval(expr.collection)
        if collection is UNKNOWN:
            return UNKNOWN
        pairs = self.pairs(collection, expr.collection.loc, "a `for` expression")
        items: list[Any] = []
        entries: dict[str, Any] = {}
        unknown = False
        for k, v in pairs:
            with self.bound(self._names(expr.key_var, expr.value_var, k, v)):
                if expr.cond is not None:
                    keep = self.eval(expr.cond)
                    if keep is UNKNOWN:
                        unknown = True
                        continue
                    if keep is None:
                        raise EvalError(expr.cond.loc, "the `for` condition is null")
                    if not to_bool(keep, expr.cond.loc):
                        continue
                if expr.key is None:
                    items.append(self.eval(expr.value))
                    continue
                key = self.eval(expr.key)
                value = self.eval(expr.value)
                if key is UNKNOWN:
                    unknown = True
                    continue
                name = to_text(key, expr.key.loc, "an object key")
                if expr.group:
                    entries.setdefault(name, []).append(value)
                elif name in entries:
                    raise EvalError(
                        expr.key.loc,
                        f"duplicate object key `{name}` in a `for` expression; "
                        "add `...` after the value to group the values by key",
                    )
                else:
                    entries[name] = value
        if unknown:
            return UNKNOWN
        return items if expr.key is None else entries

    def splat(self, expr: Splat) -> Any:
        obj = self.eval(expr.obj)
        if obj is UNKNOWN:
            return UNKNOWN
        if obj is None:
            return []
        elements = obj if isinstance(obj, list) else [obj]  # a single value acts as a 1-tuple
        out = []
        for element in elements:
            with self.bound({SPLAT_ITEM: element}):
                out.append(self.eval(expr.each))
        return out

    def template_for(self, expr: TmplFor) -> Any:
        collection = self.eval(expr.collection)
        if collection is UNKNOWN:
            return UNKNOWN
        out: list[str] = []
        unknown = False
        for k, v in self.pairs(collection, expr.collection.loc, "`%{ for }`"):
            with self.bound(self._names(expr.key_var, expr.value_var, k, v)):
                piece = self.text(expr.body)
            if piece is UNKNOWN:
                unknown = True
            else:
                out.append(piece)
        return UNKNOWN if unknown else "".join(out)

    def index(self, expr: Index) -> Any:
        obj = self.eval(expr.obj)
        key = self.eval(expr.key)
        if obj is UNKNOWN or key is UNKNOWN:
            return UNKNOWN
        if isinstance(obj, list):
            i = to_number(key, expr.key.loc)
            if not isinstance(i, int) and not float(i).is_integer():
                raise EvalError(expr.loc, "list index must be a whole number")
            if not 0 <= int(i) < len(obj):
                raise EvalError(expr.loc, f"index {int(i)} is out of range (length {len(obj)})")
            return obj[int(i)]
        if isinstance(obj, dict):
            k = to_text(key, expr.key.loc, "an object key")
            if k not in obj:
                raise EvalError(expr.loc, f"no key `{k}`{suggest(k, obj)}")
            return obj[k]
        if obj is None:
            raise EvalError(expr.loc, "cannot index a null value")
        raise EvalError(expr.loc, "only lists and objects can be indexed")

    def attr(self, expr: Attr) -> Any:
        inner = expr.obj
        if isinstance(inner, Attr) and isinstance(inner.obj, Name) and inner.obj.name == "data":
            return self.data_source(f"{inner.name}.{expr.name}", expr.loc)  # data.TYPE.NAME
        if isinstance(expr.obj, Name):
            root = expr.obj.name
            if root == "data":  # data.TYPE on its own: every data source of that type
                prefix = f"{expr.name}."
                names = [k for k in self._data_sources if k.startswith(prefix)]
                if not names:
                    raise EvalError(
                        expr.loc,
                        f"no data source of type `{expr.name}` is defined"
                        f"{suggest(expr.name, {k.split('.')[0] for k in self._data_sources})}",
                    )
                return {k[len(prefix) :]: self.data_source(k, expr.loc) for k in names}
            if root == "var":
                return self.variable(expr.name, expr.loc)
            if root == "local":
                return self.local(expr.name, expr.loc)
            if root == "source":
                if self.source is None:
                    raise EvalError(expr.loc, "`source` is only available inside a builder")
                if expr.name not in self.source:
                    raise EvalError(
                        expr.loc,
                        f"`source.{expr.name}` does not exist; use `source.name` or `source.type`",
                    )
                return self.source[expr.name]
            if root in ("packer", "build"):
                return self.contextual(root, expr)
            if root == "path":
                if expr.name == "root":
                    return str(self.template_dir)
                if expr.name == "cwd":
                    return os.getcwd()
                raise EvalError(
                    expr.loc, f"`path.{expr.name}` does not exist; use `path.root` or `path.cwd`"
                )
        obj = self.eval(expr.obj)
        if obj is UNKNOWN:
            return UNKNOWN
        if isinstance(obj, dict):
            if expr.name not in obj:
                raise EvalError(expr.loc, f"no attribute `{expr.name}`{suggest(expr.name, obj)}")
            return obj[expr.name]
        raise EvalError(expr.loc, f"cannot read attribute `{expr.name}` of a {type(obj).__name__}")

    def contextual(self, root: str, expr: Attr) -> Any:
        """HCL2 contextual variables: ``packer.version``; ``build.*`` outside a build.

        Inside a build block's provisioners and post-processors the HCL reader has
        already replaced ``build.name`` (the build's name) and ``build.ID`` & co.
        (the run-time ``{{ build `ID` }}`` the engine renders); anywhere else they
        do not exist yet, as in Packer.
        """
        if root == "packer":
            if expr.name == "version":
                from amibake.core.templates.gotemplate import PACKER_COMPAT_VERSION

                return PACKER_COMPAT_VERSION
            if expr.name in ("iterationID", "versionFingerprint"):
                raise EvalError(
                    expr.loc, f"`packer.{expr.name}` needs HCP Packer: there is no HCP here"
                )
            raise EvalError(
                expr.loc, f"`packer.{expr.name}` does not exist{suggest(expr.name, ['version'])}"
            )
        from amibake.core.templates.hcl import BUILD_VARIABLES

        if expr.name != "name" and expr.name not in BUILD_VARIABLES:
            known = ["name", *BUILD_VARIABLES]
            raise EvalError(
                expr.loc, f"`build.{expr.name}` does not exist{suggest(expr.name, known)}"
            )
        raise EvalError(
            expr.loc,
            f"`build.{expr.name}` is only available in a build block's provisioners and "
            "post-processors",
        )

    def variable(self, name: str, loc: Loc) -> Any:
        if name in self._var_cache:
            return self._var_cache[name]
        if name not in self._variables and f"var.{name}" not in self._failed:
            raise EvalError(loc, f"undefined variable `{name}`{suggest(name, self._variables)}")
        value = self._once(
            f"var.{name}", f"variable `{name}`", loc, lambda: self._variables[name]()
        )
        self._var_cache[name] = value
        return value

    def local(self, name: str, loc: Loc) -> Any:
        if name in self._local_cache:
            return self._local_cache[name]
        if name not in self._locals:
            raise EvalError(loc, f"undefined local `{name}`{suggest(name, self._locals)}")
        node = self._locals[name]
        value = self._once(f"local.{name}", f"local `{name}`", loc, lambda: self.node_value(node))
        self._local_cache[name] = value
        return value

    def _once(self, key: str, what: str, loc: Loc, compute: Callable[[], Any]) -> Any:
        """``compute()`` for ``key`` (``var.x``/``local.x``), reporting a reference cycle and
        repeating an earlier failure (already reported) instead of computing again."""
        if key in self._in_progress:
            raise EvalError(loc, f"{what} refers to itself")
        if key in self._failed:
            raise EvalError(loc, self._failed[key].message, reported=True)
        self._in_progress.add(key)
        try:
            return compute()
        except EvalError as error:
            if not error.reported:
                self._failed[key] = error
            raise
        finally:
            self._in_progress.discard(key)

    def data_source(self, key: str, loc: Loc) -> Any:
        """The outputs of ``data.KEY``; its getter detects dependency cycles itself."""
        if key in self._data_cache:
            return self._data_cache[key]
        if key not in self._data_sources:
            hint = suggest(key, self._data_sources)
            raise EvalError(loc, f"undefined data source `data.{key}`{hint}")
        failed = self._failed.get(f"data.{key}")
        if failed is not None:
            raise EvalError(loc, failed.message, reported=True)
        try:
            value = self._data_sources[key]()
        except EvalError as error:
            if error.reported:
                self._failed[f"data.{key}"] = error
            raise
        self._data_cache[key] = value
        return value

    def failed(self, key: str) -> bool:
        return key in self._failed

    def binary(self, expr: Binary) -> Any:
        op = expr.op
        if op in ("&&", "||"):
            left = self.eval(expr.left)
            if left is UNKNOWN:
                return UNKNOWN
            known = to_bool(left, expr.left.loc)
            if op == "&&" and not known:
                return False
            if op == "||" and known:
                return True
            right = self.eval(expr.right)
            return UNKNOWN if right is UNKNOWN else to_bool(right, expr.right.loc)
        left = self.eval(expr.left)
        right = self.eval(expr.right)
        if has_unknown(left) or has_unknown(right):
            return UNKNOWN
        if op == "==":
            return equal(left, right)
        if op == "!=":
            return not equal(left, right)
        a = to_number(left, expr.left.loc)
        b = to_number(right, expr.right.loc)
        if op in ("/", "%") and b == 0:
            raise EvalError(expr.loc, "division by zero")
        operations: dict[str, Callable[[], float | bool]] = {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: a / b,
            "%": lambda: _remainder(a, b),
            "<": lambda: a < b,
            ">": lambda: a > b,
            "<=": lambda: a <= b,
            ">=": lambda: a >= b,
        }
        try:
            result = operations[op]()
        except (OverflowError, KeyError):
            raise EvalError(expr.loc, f"cannot compute `{op}`") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise EvalError(expr.loc, "number out of range")
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > 2**63:
            raise EvalError(expr.loc, "number out of range")
        if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
            return int(result)  # cty numbers: 4 / 2 is 2
        return result

    # -- functions

    def function_context(self) -> FunctionContext:
        return FunctionContext(
            now=self.now,
            env=self.env,
            template_dir=self.template_dir,
            cwd=self.cwd or Path(os.getcwd()),
            uuid_factory=self.uuid_factory,
            aws_secret=self.aws_secret,
            render_template=None if self._in_templatefile else self._render_template,
        )

    def call(self, expr: Call) -> Any:
        name = expr.name
        loc = expr.loc
        fn = REGISTRY.get(name)
        if fn is None:
            public = [n for n, f in REGISTRY.items() if not f.extra] + ["env"]
            raise EvalError(loc, f"unknown function `{name}()`{suggest(name, public)}")
        if fn.impl is None:
            return self.special_form(expr)
        args = [self.eval(a) for a in expr.args]
        arg_locs = [a.loc for a in expr.args]
        if expr.expand:
            last = args[-1] if args else None
            if last is UNKNOWN:
                return UNKNOWN
            if not isinstance(last, list):
                raise EvalError(loc, "`...` needs a list as the last argument")
            args = args[:-1] + last
            arg_locs = arg_locs[:-1] + [arg_locs[-1]] * len(last)
        if any(has_unknown(a) for a in args):
            return UNKNOWN
        try:
            result = _functions.call(fn, self.function_context(), args)
        except FunctionError as error:
            at_arg = error.arg is not None and error.arg < len(arg_locs)
            where = arg_locs[error.arg] if at_arg and error.arg is not None else loc
            message = error.message
            if not message.startswith(f"`{name}()`"):
                message = f"{name}(): {message}"
            raise EvalError(where, message) from None
        _check_build_values(name, loc, args, result)
        return result

    def special_form(self, expr: Call) -> Any:
        """``try``, ``can`` and ``convert``: they see their arguments unevaluated."""
        name = expr.name
        fn = REGISTRY[name]
        count = len(expr.args)
        if count < fn.min_args or (fn.max_args is not None and count > fn.max_args):
            raise EvalError(expr.loc, f"{name}(): takes {fn.arity_text()}, got {count}")
        if expr.expand:
            raise EvalError(expr.loc, f"{name}() cannot take its arguments from a list (`...`)")
        if name == "convert":
            from amibake.core.templates import hcltypes  # hcltypes imports this module
            from amibake.core.templates.hclexpr import HclSyntaxError

            value = self.eval(expr.args[0])
            try:
                type_ = hcltypes.type_from_expr(expr.args[1])
            except HclSyntaxError as error:
                raise EvalError(error.loc, f"convert(): {error.message}") from None
            if has_unknown(value):
                return UNKNOWN
            return hcltypes.convert(value, type_, expr.args[0].loc)
        failures: list[EvalError] = []
        for arg in expr.args:
            value, failure = self.attempt(arg)
            if failure is None:
                if name == "can":
                    return UNKNOWN if has_unknown(value) else True
                return UNKNOWN if has_unknown(value) else value
            if name == "can":
                return False
            failures.append(failure)
        first = failures[0]
        raise EvalError(
            expr.loc,
            f"try(): no expression succeeded; the first failed at line {first.loc.line}: "
            f"{first.message}",
        )

    def attempt(self, expr: Expr) -> tuple[Any, EvalError | None]:
        """Evaluate ``expr``; a failure is returned, and leaves no trace in the scope."""
        failed_before = set(self._failed)
        try:
            return self.eval(expr), None
        except EvalError as error:
            for key in [k for k in self._failed if k not in failed_before]:
                del self._failed[key]  # let a later direct use report it
            return None, error

    def _render_template(self, text: str, file: str, variables: dict[str, Any]) -> Any:
        """``templatefile()``: ``text`` as an HCL template where only ``variables`` are known."""
        from amibake.core.templates.hclexpr import HclSyntaxError, parse_template

        try:
            expr = parse_template(text, Loc(file, 1, 1))
        except HclSyntaxError as error:
            raise EvalError(error.loc, error.message) from None
        for ref in _free_names(expr, frozenset()):
            if ref.name not in variables:
                raise FunctionError(
                    f"vars map does not contain key `{ref.name}`, referenced at "
                    f"{ref.loc.file}:{ref.loc.line}:{ref.loc.col}",
                    1,
                )
        self._in_templatefile = True
        saved, self._bindings = self._bindings, [variables]
        try:
            return self.eval(expr)
        finally:
            self._bindings = saved
            self._in_templatefile = False


def _remainder(a: int | float, b: int | float) -> int | float:
    """cty's ``%``: the sign follows the dividend, as in Go."""
    if isinstance(a, float) or isinstance(b, float):
        return math.fmod(a, b)
    return (abs(a) % abs(b)) * (1 if a >= 0 else -1)


def _free_names(expr: Any, bound: frozenset[str]) -> Iterator[Name]:
    """The root names an expression reads that no `for`/splat inside it binds."""
    if isinstance(expr, Name):
        if expr.name not in bound:
            yield expr
        return
    if isinstance(expr, ForX | TmplFor):
        yield from _free_names(expr.collection, bound)
        inner = bound | {n for n in (expr.key_var, expr.value_var) if n}
        rest = (expr.key, expr.value, expr.cond) if isinstance(expr, ForX) else (expr.body,)
        for part in rest:
            if part is not None:
                yield from _free_names(part, inner)
        return
    if isinstance(expr, Splat):
        yield from _free_names(expr.obj, bound)
        yield from _free_names(expr.each, bound | {SPLAT_ITEM})
        return
    if isinstance(expr, Call):
        for arg in expr.args:
            yield from _free_names(arg, bound)
        return
    if isinstance(expr, tuple):
        for item in expr:
            yield from _free_names(item, bound)
        return
    if isinstance(expr, Lit) or not hasattr(expr, "__dataclass_fields__"):
        return
    for field_name in expr.__dataclass_fields__:
        if field_name != "loc":
            yield from _free_names(getattr(expr, field_name), bound)


def value_to_node(value: Any, loc: Loc) -> Node:
    if isinstance(value, list):
        return ListNode([value_to_node(v, loc) for v in value], loc)
    if isinstance(value, dict):
        return MapNode(
            {k: value_to_node(v, loc) for k, v in value.items()}, loc, {k: loc for k in value}
        )
    return Scalar(value, loc)
