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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from core.templates.errors import Loc, suggest
from core.templates.nodes import (
    Attr,
    BadNode,
    Binary,
    Call,
    Cond,
    Expr,
    ExprNode,
    Index,
    ListNode,
    Lit,
    MapNode,
    Name,
    Node,
    ObjectX,
    Scalar,
    Tmpl,
    TupleX,
    Unary,
)


class EvalError(Exception):
    """``reported``: the same failure was already reported where it happened."""

    def __init__(self, loc: Loc, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.reported = reported


# --------------------------------------------------------------------------- helpers


def to_text(value: Any, loc: Loc, what: str = "value") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
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
        return value == "true"
    raise EvalError(loc, f"expected true or false, got `{value}`")


_AWS_NAME_ALLOWED = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")


def clean_resource_name(value: str) -> str:
    """Packer's amazon ``clean_resource_name``: characters AWS forbids become ``-``."""
    return _AWS_NAME_ALLOWED.sub("-", value)


# formatdate (HCL) ----------------------------------------------------------

_FORMATDATE = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _offset(t: _dt.datetime, colon: bool) -> str:
    off = t.utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    sep = ":" if colon else ""
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


def formatdate(spec: str, t: _dt.datetime, loc: Loc) -> str:
    out = []
    h12 = t.hour % 12 or 12
    table: dict[str, str] = {
        "YYYY": f"{t.year:04d}",
        "YY": f"{t.year % 100:02d}",
        "MMMM": _MONTHS[t.month - 1],
        "MMM": _MONTHS[t.month - 1][:3],
        "MM": f"{t.month:02d}",
        "M": str(t.month),
        "DD": f"{t.day:02d}",
        "D": str(t.day),
        "EEEE": _DAYS[t.weekday()],
        "EEE": _DAYS[t.weekday()][:3],
        "hh": f"{t.hour:02d}",
        "h": str(t.hour),
        "HH": f"{h12:02d}",
        "H": str(h12),
        "AA": "AM" if t.hour < 12 else "PM",
        "aa": "am" if t.hour < 12 else "pm",
        "mm": f"{t.minute:02d}",
        "m": str(t.minute),
        "ss": f"{t.second:02d}",
        "s": str(t.second),
        "ZZZZZ": "Z" if not t.utcoffset() else _offset(t, True),
        "ZZZZ": _offset(t, False),
        "ZZZ": "UTC" if not t.utcoffset() else _offset(t, False),
        "Z": "Z" if not t.utcoffset() else _offset(t, True),
    }
    for m in _FORMATDATE.finditer(spec):
        token = m.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("''", "'"))
        elif m.group(1):
            if token not in table:
                raise EvalError(loc, f"formatdate: invalid format sequence `{token}`")
            out.append(table[token])
        else:
            out.append(token)
    return "".join(out)


# isotime (Go layouts) ------------------------------------------------------

_GO_CHUNKS: list[tuple[str, Callable[[_dt.datetime], str]]] = [
    ("January", lambda t: _MONTHS[t.month - 1]),
    ("Jan", lambda t: _MONTHS[t.month - 1][:3]),
    ("Monday", lambda t: _DAYS[t.weekday()]),
    ("Mon", lambda t: _DAYS[t.weekday()][:3]),
    ("MST", lambda t: "UTC" if not t.utcoffset() else _offset(t, False)),
    ("2006", lambda t: f"{t.year:04d}"),
    ("Z07:00", lambda t: "Z" if not t.utcoffset() else _offset(t, True)),
    ("Z0700", lambda t: "Z" if not t.utcoffset() else _offset(t, False)),
    ("-07:00", lambda t: _offset(t, True)),
    ("-0700", lambda t: _offset(t, False)),
    (".000000", lambda t: f".{t.microsecond:06d}"),
    (".000", lambda t: f".{t.microsecond // 1000:03d}"),
    ("01", lambda t: f"{t.month:02d}"),
    ("02", lambda t: f"{t.day:02d}"),
    ("_2", lambda t: f"{t.day:>2d}"),
    ("03", lambda t: f"{t.hour % 12 or 12:02d}"),
    ("04", lambda t: f"{t.minute:02d}"),
    ("05", lambda t: f"{t.second:02d}"),
    ("06", lambda t: f"{t.year % 100:02d}"),
    ("15", lambda t: f"{t.hour:02d}"),
    ("PM", lambda t: "AM" if t.hour < 12 else "PM"),
    ("pm", lambda t: "am" if t.hour < 12 else "pm"),
    ("1", lambda t: str(t.month)),
    ("2", lambda t: str(t.day)),
    ("3", lambda t: str(t.hour % 12 or 12)),
    ("4", lambda t: str(t.minute)),
    ("5", lambda t: str(t.second)),
]

RFC3339_GO = "2006-01-02T15:04:05Z07:00"


def isotime(layout: str, t: _dt.datetime) -> str:
    """Format ``t`` with a Go reference-time layout, as Packer's ``{{isotime}}`` does."""
    out = []
    i = 0
    while i < len(layout):
        for chunk, render in _GO_CHUNKS:
            if layout.startswith(chunk, i):
                out.append(render(t))
                i += len(chunk)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)


def parse_timestamp(value: str, loc: Loc) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise EvalError(loc, f"`{value}` is not an RFC 3339 timestamp") from None
    if t.tzinfo is None:
        raise EvalError(loc, f"`{value}` has no time zone (RFC 3339 needs one)")
    return t


# --------------------------------------------------------------------------- scope


FUNCTIONS = (
    "timestamp",
    "unix_timestamp",
    "formatdate",
    "isotime",
    "uuidv4",
    "env",
    "clean_resource_name",
    "upper",
    "lower",
    "replace",
    "split",
    "join",
    "trimspace",
    "format",
    "concat",
    "lookup",
    "length",
    "coalesce",
    "tostring",
    "tonumber",
    "merge",
    "file",
    "abspath",
    "basename",
)


ROOT_NAMES = ("var", "local", "source", "path")


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
    ) -> None:
        self._variables = variables
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
            if len(expr.parts) == 1 and not isinstance(expr.parts[0], str):
                return self.eval(expr.parts[0])
            return "".join(
                p if isinstance(p, str) else to_text(self.eval(p), p.loc, "in a string template")
                for p in expr.parts
            )
        if isinstance(expr, Attr):
            return self.attr(expr)
        if isinstance(expr, Name):
            if expr.name in ("var", "local", "source", "path"):
                raise EvalError(expr.loc, f"`{expr.name}` needs an attribute, e.g. `{expr.name}.x`")
            raise EvalError(
                expr.loc,
                f"unknown name `{expr.name}`{suggest(expr.name, ROOT_NAMES)}",
            )
        if isinstance(expr, Index):
            obj = self.eval(expr.obj)
            key = self.eval(expr.key)
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
            raise EvalError(expr.loc, "only lists and objects can be indexed")
        if isinstance(expr, Call):
            return self.call(expr)
        if isinstance(expr, Unary):
            value = self.eval(expr.operand)
            if expr.op == "!":
                return not to_bool(value, expr.loc)
            return -to_number(value, expr.loc)
        if isinstance(expr, Binary):
            return self.binary(expr)
        if isinstance(expr, Cond):
            test = to_bool(self.eval(expr.test), expr.test.loc)
            return self.eval(expr.then if test else expr.other)
        if isinstance(expr, TupleX):
            return [self.eval(i) for i in expr.items]
        if isinstance(expr, ObjectX):
            return {
                to_text(self.eval(k), k.loc, "an object key"): self.eval(v) for k, v in expr.items
            }
        raise EvalError(Loc("?"), "unknown expression")  # pragma: no cover

    def attr(self, expr: Attr) -> Any:
        if isinstance(expr.obj, Name):
            root = expr.obj.name
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
            if root == "path":
                if expr.name == "root":
                    return str(self.template_dir)
                if expr.name == "cwd":
                    return os.getcwd()
                raise EvalError(
                    expr.loc, f"`path.{expr.name}` does not exist; use `path.root` or `path.cwd`"
                )
        obj = self.eval(expr.obj)
        if isinstance(obj, dict):
            if expr.name not in obj:
                raise EvalError(expr.loc, f"no attribute `{expr.name}`{suggest(expr.name, obj)}")
            return obj[expr.name]
        raise EvalError(expr.loc, f"cannot read attribute `{expr.name}` of a {type(obj).__name__}")

    def variable(self, name: str, loc: Loc) -> Any:
        if name in self._var_cache:
            return self._var_cache[name]
        if name not in self._variables and f"var.{name}" not in self._failed:
            raise EvalError(loc, f"undefined variable `{name}`{suggest(name, self._variables)}")
        key = f"var.{name}"
        if key in self._in_progress:
            raise EvalError(loc, f"variable `{name}` refers to itself")
        if key in self._failed:
            raise EvalError(loc, self._failed[key].message, reported=True)
        self._in_progress.add(key)
        try:
            value = self._variables[name]()
        except EvalError as error:
            if not error.reported:
                self._failed[key] = error
            raise
        finally:
            self._in_progress.discard(key)
        self._var_cache[name] = value
        return value

    def local(self, name: str, loc: Loc) -> Any:
        if name in self._local_cache:
            return self._local_cache[name]
        if name not in self._locals:
            raise EvalError(loc, f"undefined local `{name}`{suggest(name, self._locals)}")
        key = f"local.{name}"
        if key in self._in_progress:
            raise EvalError(loc, f"local `{name}` refers to itself")
        if key in self._failed:
            raise EvalError(loc, self._failed[key].message, reported=True)
        self._in_progress.add(key)
        try:
            value = self.node_value(self._locals[name])
        except EvalError as error:
            if not error.reported:
                self._failed[key] = error
            raise
        finally:
            self._in_progress.discard(key)
        self._local_cache[name] = value
        return value

    def failed(self, key: str) -> bool:
        return key in self._failed

    def binary(self, expr: Binary) -> Any:
        op = expr.op
        if op in ("&&", "||"):
            left = to_bool(self.eval(expr.left), expr.left.loc)
            if op == "&&" and not left:
                return False
            if op == "||" and left:
                return True
            return to_bool(self.eval(expr.right), expr.right.loc)
        left = self.eval(expr.left)
        right = self.eval(expr.right)
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        a = to_number(left, expr.left.loc)
        b = to_number(right, expr.right.loc)
        if op in ("/", "%") and b == 0:
            raise EvalError(expr.loc, "division by zero")
        try:
            result = {
                "+": lambda: a + b,
                "-": lambda: a - b,
                "*": lambda: a * b,
                "/": lambda: a / b,
                "%": lambda: a % b,
                "<": lambda: a < b,
                ">": lambda: a > b,
                "<=": lambda: a <= b,
                ">=": lambda: a >= b,
            }[op]()
        except (OverflowError, KeyError):
            raise EvalError(expr.loc, f"cannot compute `{op}`") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise EvalError(expr.loc, "number out of range")
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > 2**63:
            raise EvalError(expr.loc, "number out of range")
        return result

    def call(self, expr: Call) -> Any:
        name = expr.name
        loc = expr.loc
        args = [self.eval(a) for a in expr.args]
        if expr.expand:
            if not args or not isinstance(args[-1], list):
                raise EvalError(loc, "`...` needs a list as the last argument")
            args = args[:-1] + args[-1]

        def arity(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(str(c) for c in counts)
                raise EvalError(loc, f"{name}() takes {want} argument(s), got {len(args)}")

        def text(i: int) -> str:
            return to_text(
                args[i], expr.args[min(i, len(expr.args) - 1)].loc, f"argument {i + 1} of {name}()"
            )

        if name == "timestamp":
            arity(0)
            return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if name == "unix_timestamp":
            arity(0)
            return str(int(self.now.timestamp()))
        if name == "formatdate":
            arity(2)
            return formatdate(text(0), parse_timestamp(text(1), loc), loc)
        if name == "isotime":
            arity(0, 1)
            return isotime(text(0) if args else RFC3339_GO, self.now)
        if name in ("uuidv4", "uuid"):
            arity(0)
            return self.uuid_factory()
        if name == "env":
            arity(1)
            return self.env.get(text(0), "")
        if name == "clean_resource_name":
            arity(1)
            return clean_resource_name(text(0))
        if name in ("upper", "lower", "trimspace", "tostring", "basename", "abspath"):
            arity(1)
            value = text(0)
            return {
                "upper": str.upper,
                "lower": str.lower,
                "trimspace": str.strip,
                "tostring": str,
                "basename": lambda s: os.path.basename(s),
                "abspath": lambda s: os.path.abspath(s),
            }[name](value)
        if name == "replace":
            arity(3)
            source, old, new = text(0), text(1), text(2)
            if len(old) > 1 and old.startswith("/") and old.endswith("/"):
                try:
                    return re.sub(old[1:-1], new.replace("$", "\\"), source)
                except (re.error, IndexError) as error:
                    raise EvalError(
                        loc, f"replace(): invalid regular expression: {error}"
                    ) from None
            return source.replace(old, new)
        if name == "split":
            arity(2)
            sep = text(0)
            if not sep:
                raise EvalError(loc, "split() needs a non-empty separator")
            return text(1).split(sep)
        if name == "join":
            if len(args) < 2:
                raise EvalError(loc, "join() takes a separator and one or more lists")
            sep = text(0)
            items: list[str] = []
            for i, lst in enumerate(args[1:], start=1):
                if not isinstance(lst, list):
                    raise EvalError(
                        expr.args[min(i, len(expr.args) - 1)].loc, "join() expects lists"
                    )
                items.extend(to_text(x, loc, "a join() item") for x in lst)
            return sep.join(items)
        if name == "format":
            if not args:
                raise EvalError(loc, "format() needs a format string")
            return _format(text(0), args[1:], loc)
        if name == "concat":
            out: list[Any] = []
            for value in args:
                if not isinstance(value, list):
                    raise EvalError(loc, "concat() expects lists")
                out.extend(value)
            return out
        if name == "merge":
            merged: dict[str, Any] = {}
            for value in args:
                if not isinstance(value, dict):
                    raise EvalError(loc, "merge() expects objects")
                merged.update(value)
            return merged
        if name == "lookup":
            arity(2, 3)
            if not isinstance(args[0], dict):
                raise EvalError(loc, "lookup() expects an object first")
            key = text(1)
            if key in args[0]:
                return args[0][key]
            if len(args) == 3:
                return args[2]
            raise EvalError(loc, f"lookup(): no key `{key}`")
        if name == "length":
            arity(1)
            if isinstance(args[0], str | list | dict):
                return len(args[0])
            raise EvalError(loc, "length() expects a string, list or object")
        if name == "coalesce":
            for value in args:
                if value is not None and value != "":
                    return value
            raise EvalError(loc, "coalesce(): all arguments are null or empty")
        if name == "tonumber":
            arity(1)
            return to_number(args[0], loc)
        if name == "file":
            arity(1)
            path = Path(text(0))
            if not path.is_absolute():
                path = self.template_dir / path
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise EvalError(
                    loc, f"file(): cannot read {path}: {error.__class__.__name__}"
                ) from None
        raise EvalError(loc, f"unknown function `{name}()`{suggest(name, FUNCTIONS)}")


def _format(spec: str, args: list[Any], loc: Loc) -> str:
    out = []
    i = 0
    n = 0
    while i < len(spec):
        ch = spec[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        verb = spec[i + 1 : i + 2]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if verb not in ("s", "d", "v", "q"):
            raise EvalError(loc, f"format(): unsupported verb `%{verb}`")
        if n >= len(args):
            raise EvalError(loc, "format(): not enough arguments")
        value = args[n]
        n += 1
        if verb == "d":
            number = to_number(value, loc)
            out.append(str(int(number)))
        elif verb == "q":
            out.append('"' + to_text(value, loc).replace('"', '\\"') + '"')
        else:
            out.append(to_text(value, loc))
    return "".join(out)


def value_to_node(value: Any, loc: Loc) -> Node:
    if isinstance(value, list):
        return ListNode([value_to_node(v, loc) for v in value], loc)
    if isinstance(value, dict):
        return MapNode(
            {k: value_to_node(v, loc) for k, v in value.items()}, loc, {k: loc for k in value}
        )
    return Scalar(value, loc)
