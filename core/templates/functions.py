"""Packer's HCL2 function library, as one table.

The names, arities and behaviour follow Packer's own table
(``hcl2template/functions.go``: go-cty's stdlib, go-cty-funcs and Packer's
additions). Each entry converts its arguments to the declared parameter kinds
(``s`` string, ``n`` number, ``b`` bool, ``l`` list, ``m`` object, ``a`` any)
the way cty converts them, then calls its implementation with a
:class:`FunctionContext` and the converted arguments.

A few amibake names sit in the table too (marked ``extra``): the targets of
Packer JSON's ``{{timestamp}}``, ``{{isotime}}`` and ``{{clean_resource_name}}``,
plus ``env`` (Packer allows it in variable defaults) and ``tostring`` /
``tonumber``.

``try``, ``can`` and ``convert`` need their arguments unevaluated (or as a type
expression): :class:`amibake.core.templates.evaluate.Scope` handles them; their entries
here only carry the arity and documentation.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import decimal
import functools
import gzip
import hashlib
import io
import ipaddress
import json
import math
import os
import re
import unicodedata
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class FunctionError(Exception):
    """A function refused its arguments. ``arg``: index of the argument at fault."""

    def __init__(self, message: str, arg: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.arg = arg


@dataclass(frozen=True)
class FunctionContext:
    """What functions may see of the world: one per build run."""

    now: _dt.datetime
    env: Mapping[str, str]
    template_dir: Path  # path.root: `file()`, `fileset()`, `templatefile()` resolve against it
    cwd: Path
    uuid_factory: Callable[[], str]
    #: ``aws_secret(secret_id, version_stage or None) -> SecretString``; None: no AWS target.
    aws_secret: Callable[[str, str | None], str] | None = None
    #: ``render_template(text, file, vars)``: evaluates an HCL template (for ``templatefile``).
    render_template: Callable[[str, str, dict[str, Any]], Any] | None = None


Impl = Callable[..., Any]


@dataclass(frozen=True)
class Function:
    name: str
    params: str  # one kind letter per parameter; a trailing `*` repeats the last kind
    impl: Impl | None  # impl(ctx, *args); None: a special form evaluated by Scope
    optional: int = 0  # how many trailing parameters may be left out
    extra: bool = False  # amibake name, not in Packer's HCL2 table

    @property
    def variadic(self) -> bool:
        return self.params.endswith("*")

    @property
    def kinds(self) -> str:
        return self.params.rstrip("*")

    @property
    def min_args(self) -> int:
        n = len(self.kinds) - self.optional
        return n - 1 if self.variadic else n

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else len(self.kinds)

    def arity_text(self) -> str:
        lo, hi = self.min_args, self.max_args
        if hi is None:
            return f"at least {lo} argument{'s' if lo != 1 else ''}"
        if lo == hi:
            return f"{lo} argument{'s' if lo != 1 else ''}"
        return f"{lo} to {hi} arguments"

    def kind_of(self, index: int) -> str:
        kinds = self.kinds
        return kinds[min(index, len(kinds) - 1)]


# --------------------------------------------------------------------------- values


def number_text(value: int | float) -> str:
    """A number as cty prints it: integers without a point, others in shortest form."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise FunctionError("number is not finite")
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(decimal.Decimal(text), "f")
    return text


def norm_number(value: int | float) -> int | float:
    """Whole floats become ints, as cty keeps no such distinction."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FunctionError("number out of range")
        if value == int(value) and abs(value) < 2**63:
            return int(value)
    return value


def kind_name(value: Any, *, other: str = "object") -> str:
    """The kind of a template value as error messages name it (null, bool, number, string,
    list, object); ``other`` names a value that is none of them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return other


def as_string(value: Any, arg: int | None = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if value is None:
        raise FunctionError("argument must not be null", arg)
    raise FunctionError(f"string required, got {kind_name(value)}", arg)


def parse_number(text: str) -> int | float | None:
    """A string as cty converts it to a number (a whole number stays an int); None when it is
    not a finite number."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_number(value: Any, arg: int | None = None) -> int | float:
    if isinstance(value, bool):
        raise FunctionError("number required, got bool", arg)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            raise FunctionError(f"a number is required, got `{value}`", arg)
        return norm_number(number)
    if value is None:
        raise FunctionError("argument must not be null", arg)
    raise FunctionError(f"number required, got {kind_name(value)}", arg)


def as_int(value: Any, arg: int | None = None) -> int:
    number = as_number(value, arg)
    if isinstance(number, float):
        if not number.is_integer():
            raise FunctionError(f"a whole number is required, got {number_text(number)}", arg)
        return int(number)
    return number


def as_bool(value: Any, arg: int | None = None) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    if value is None:
        raise FunctionError("argument must not be null", arg)
    raise FunctionError(f"bool required, got {kind_name(value)}", arg)


def as_list(value: Any, arg: int | None = None) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        raise FunctionError("argument must not be null", arg)
    raise FunctionError(f"list required, got {kind_name(value)}", arg)


def as_map(value: Any, arg: int | None = None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None:
        raise FunctionError("argument must not be null", arg)
    raise FunctionError(f"object required, got {kind_name(value)}", arg)


_CONVERT: dict[str, Callable[[Any, int | None], Any]] = {
    "s": as_string,
    "n": as_number,
    "b": as_bool,
    "l": as_list,
    "m": as_map,
    "a": lambda v, _i: v,
}


def equal(a: Any, b: Any) -> bool:
    """cty equality: type matters (``1 != "1"``, ``true != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


# --------------------------------------------------------------------------- strings


def _chomp(_ctx: FunctionContext, s: str) -> str:
    return re.sub(r"(?:\r\n|\r|\n)+\Z", "", s)


def _indent(_ctx: FunctionContext, spaces: Any, s: str) -> str:
    pad = " " * as_int(spaces, 0)
    lines = s.split("\n")
    return "\n".join([lines[0]] + [pad + line if line else line for line in lines[1:]])


def _join(_ctx: FunctionContext, sep: str, *lists: Any) -> str:
    items: list[str] = []
    for i, lst in enumerate(lists, start=1):
        for item in as_list(lst, i):
            if item is None:
                raise FunctionError("element of the list is null", i)
            items.append(as_string(item, i))
    return sep.join(items)


def _split(_ctx: FunctionContext, sep: str, s: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _title(_ctx: FunctionContext, s: str) -> str:
    # Go's strings.Title: a letter after a non-word character starts a word.
    out = []
    prev_word = False
    for ch in s:
        out.append(ch if prev_word else ch.upper())
        prev_word = ch.isalnum() or ch == "_" or ch == "'"
    return "".join(out)


def _substr(_ctx: FunctionContext, s: str, offset: Any, length: Any) -> str:
    start = as_int(offset, 1)
    count = as_int(length, 2)
    n = len(s)
    if start < 0:
        start = max(n + start, 0)
    if start > n:
        raise FunctionError("offset is greater than the length of the string", 1)
    if count < 0:
        return s[start:]
    return s[start : start + count]


def _trim(_ctx: FunctionContext, s: str, cutset: str) -> str:
    return s.strip(cutset) if cutset else s


def _trimprefix(_ctx: FunctionContext, s: str, prefix: str) -> str:
    return s[len(prefix) :] if prefix and s.startswith(prefix) else s


def _trimsuffix(_ctx: FunctionContext, s: str, suffix: str) -> str:
    return s[: -len(suffix)] if suffix and s.endswith(suffix) else s


# Go regexp (RE2) -> Python re --------------------------------------------------

_POSIX_CLASSES: dict[str, str] = {
    # RE2's ASCII-only POSIX classes, as Python class contents (no brackets)
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\x00-\x7f",
    "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": r"\x21-\x7e",
    "lower": "a-z",
    "print": r"\x20-\x7e",
    "punct": r"\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e",
    "space": r"\t\n\x0b\x0c\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_PERL_CLASSES: dict[str, str] = {"d": "0-9", "s": r"\t\n\x0c\r ", "w": "0-9A-Za-z_"}
# Go's unicode.Categories: major -> minor letters (Cn, unassigned, is not in Go's C)
_GO_MINOR = {
    "C": "cfos",
    "L": "lmotu",
    "M": "cen",
    "N": "dlo",
    "P": "cdefios",
    "S": "ckmo",
    "Z": "lps",
}
_GO_CATEGORIES = frozenset([*_GO_MINOR, *(m + c for m, cs in _GO_MINOR.items() for c in cs)])
_SIMPLE_ESCAPES = {"a": "\a", "f": "\f", "t": "\t", "n": "\n", "r": "\r", "v": "\v"}
_GO_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


class _RegexSyntaxError(Exception):
    pass


def _class_char(c: str) -> str:
    """One character, safe anywhere inside a Python character class."""
    if c.isascii() and c.isalnum():
        return c
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


@functools.cache
def _unicode_category(name: str) -> str:
    """Python class contents for a Unicode general category (``L``, ``Lu``, ...), as Go has it."""
    if name == "Any":
        return r"\x00-\U0010ffff"
    wanted = (lambda cat: cat != "Cn" and cat[0] == name) if len(name) == 1 else name.__eq__
    parts: list[str] = []
    start = -1
    for n in range(0x110001):
        inside = n < 0x110000 and wanted(unicodedata.category(chr(n)))
        if inside and start < 0:
            start = n
        elif not inside and start >= 0:
            low, high = _class_char(chr(start)), _class_char(chr(n - 1))
            parts.append(low if start == n - 1 else f"{low}-{high}")
            start = -1
    return "".join(parts)


def _go_regex_to_python(pattern: str) -> str:
    r"""Translate a Go regexp (RE2 syntax, read by Packer's ``regex*`` functions) to Python ``re``.

    What Python reads differently, or not at all, is rewritten:
    - character classes are rebuilt from their items, every character escaped (no FutureWarning
      for ``[[``, ``--``, ``&&``): POSIX classes ``[[:alpha:]]``/``[[:^alpha:]]`` (RE2's 14,
      ASCII), Perl classes ``\d \s \w`` (ASCII, as in RE2: ``\s`` is ``[\t\n\f\r ]``), Unicode
      general categories ``\pL \p{Lu} \PL \p{^Nd}`` (from :mod:`unicodedata`; scripts such as
      ``\p{Greek}`` are "not supported yet"); a class holding a negated item (``[a\D]``)
      becomes an alternation, a negated one a lookahead;
    - ``$`` outside ``(?m)`` matches only at the very end (``\Z``), ``\z`` is ``\Z``, ``\b``
      and ``\B`` are ASCII word boundaries, ``\Q...\E`` is literal text, ``\x{10FFFF}`` and
      octal escapes are characters, ``(?<name>`` is a named group, a ``{`` that is no repeat
      count is literal;
    - flag groups ``(?i)``/``(?m-s)`` anywhere apply up to the end of their group, as in Go;
    - what Go rejects is rejected with Go's words: lookaround and backreferences, ``\Z``, unknown
      escapes, repeat counts above 1000, nested repetitions (``a**``, possessive ``a*+``).
    Raises :class:`_RegexSyntaxError` (one line) for an invalid or unsupported pattern.
    """
    out: list[str] = []
    # one frame per open group: [multiline, pending flag scopes opened in it]
    frames: list[tuple[bool, list[str]]] = [(False, [])]
    i, n = 0, len(pattern)
    repeatable = False  # the last item may take a repetition operator
    repeated = False  # the last item was a repetition

    def error(message: str) -> _RegexSyntaxError:
        return _RegexSyntaxError(message)

    def parse_escape(j: int, in_class: bool) -> tuple[str, str | None, bool, int]:
        """Escape at pattern[j] == '\\': (kind, value, negated, next index).

        kind: "char" (value: one character), "class" (value: Python class contents),
        "assert" (value: Python text, outside classes only)."""
        if j + 1 >= n:
            raise error("trailing backslash at end of expression")
        c = pattern[j + 1]
        if c in "01234567" and (c == "0" or (j + 2 < n and pattern[j + 2] in "01234567")):
            k = j + 1
            while k < n and k < j + 4 and pattern[k] in "01234567":
                k += 1
            return "char", chr(int(pattern[j + 1 : k], 8)), False, k
        if c == "x":
            if j + 2 < n and pattern[j + 2] == "{":
                end = pattern.find("}", j + 3)
                digits = pattern[j + 3 : end] if end >= 0 else ""
                if (
                    end < 0
                    or not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits)
                    or int(digits, 16) > 0x10FFFF
                ):
                    raise error(
                        f"invalid escape sequence: `{pattern[j : end + 1 if end >= 0 else n]}`"
                    )
                return "char", chr(int(digits, 16)), False, end + 1
            digits = pattern[j + 2 : j + 4]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise error(f"invalid escape sequence: `{pattern[j : j + 4]}`")
            return "char", chr(int(digits, 16)), False, j + 4
        if c in _SIMPLE_ESCAPES:
            return "char", _SIMPLE_ESCAPES[c], False, j + 2
        if c.lower() in _PERL_CLASSES:
            return "class", _PERL_CLASSES[c.lower()], c.isupper(), j + 2
        if c in "pP":
            if j + 2 >= n:
                raise error(f"invalid character class range: `{pattern[j:]}`")
            if pattern[j + 2] == "{":
                end = pattern.find("}", j + 3)
                if end < 0:
                    raise error(f"invalid character class range: `{pattern[j:]}`")
                name, k = pattern[j + 3 : end], end + 1
            else:
                name, k = pattern[j + 2], j + 3
            negated = c == "P"
            if name.startswith("^"):
                name, negated = name[1:], not negated
            if name in _GO_CATEGORIES or name == "Any":
                return "class", _unicode_category(name), negated, k
            raise error(
                f"Unicode class `{pattern[j:k]}` is not supported yet (general categories only)"
            )
        if not in_class and c in "AbBz":
            text = {"A": r"\A", "b": r"(?a:\b)", "B": r"(?a:\B)", "z": r"\Z"}[c]
            return "assert", text, False, j + 2
        if c.isascii() and not (c.isalnum() and c.isascii()):
            return "char", c, False, j + 2
        raise error(f"invalid escape sequence: `\\{c}`")

    def parse_class(j: int) -> tuple[str, int]:
        """Character class opening at pattern[j] == '[': (Python text, next index)."""
        k = j + 1
        negated = k < n and pattern[k] == "^"
        if negated:
            k += 1
        parts: list[str] = []
        negs: list[str] = []
        first = True
        while True:
            if k >= n:
                raise error(f"missing closing ]: `{pattern[j:]}`")
            c = pattern[k]
            if c == "]" and not first:
                k += 1
                break
            first = False
            if pattern.startswith("[:", k):
                end = pattern.find(":]", k + 2)
                name = pattern[k + 2 : end] if end >= 0 else ""
                flip = name.startswith("^")
                if end >= 0 and name.lstrip("^") in _POSIX_CLASSES:
                    (negs if flip else parts).append(_POSIX_CLASSES[name.lstrip("^")])
                    k = end + 2
                    continue
                if end >= 0 and re.fullmatch(r"\^?[a-z]+", name):
                    raise error(f"invalid character class range: `{pattern[k : end + 2]}`")
            if c == "\\":
                kind, value, flip, k2 = parse_escape(k, True)
                if kind == "class":
                    assert value is not None
                    (negs if flip else parts).append(value)
                    k = k2
                    continue
                assert value is not None
                low, k = value, k2
            else:
                low, k = c, k + 1
            high = low
            if k + 1 < n and pattern[k] == "-" and pattern[k + 1] != "]":
                start = k - 1
                if pattern[k + 1] == "\\":
                    kind, value, _flip, k2 = parse_escape(k + 1, True)
                    if kind != "char" or value is None:
                        raise error(f"invalid character class range: `{pattern[start:k2]}`")
                    high, k = value, k2
                else:
                    high, k = pattern[k + 1], k + 2
                if high < low:
                    raise error(f"invalid character class range: `{low}-{high}`")
            parts.append(
                _class_char(low) if low == high else f"{_class_char(low)}-{_class_char(high)}"
            )
        content = "".join(parts)
        if not negs:
            return (f"[^{content}]" if negated else f"[{content}]"), k
        alternatives = ([f"[{content}]"] if content else []) + [f"[^{neg}]" for neg in negs]
        union = "|".join(alternatives)
        return (f"(?:(?!{union})[\\s\\S])" if negated else f"(?:{union})"), k

    def open_flags(flags: str) -> tuple[str, bool]:
        """Python scoped-flag prefix for Go flags ``imsU`` (with ``-``), and the new multiline."""
        if not flags or not re.fullmatch(r"[imsU]*(-[imsU]+)?", flags):
            raise error(f"invalid or unsupported Perl syntax: `(?{flags[:1]}`")
        if "U" in flags:
            raise error("the ungreedy flag `U` is not supported yet")
        on, _, off = flags.partition("-")
        multiline = frames[-1][0]
        if "m" in on:
            multiline = True
        if "m" in off:
            multiline = False
        return f"(?{flags}:", multiline

    while i < n:
        c = pattern[i]
        item = True  # what was emitted can take a repetition operator
        if c == "\\" and pattern.startswith(r"\Q", i):
            end = pattern.find(r"\E", i + 2)
            literal = pattern[i + 2 : end if end >= 0 else n]
            i = end + 2 if end >= 0 else n
            if literal:
                out.append(re.escape(literal[:-1]) + "(?:" + re.escape(literal[-1]) + ")")
            else:
                item = repeatable
            repeatable, repeated = item, False if literal else repeated
            continue
        if c == "\\":
            kind, value, negated, i = parse_escape(i, False)
            assert value is not None
            if kind == "char":
                out.append(re.escape(value))
            elif kind == "class":
                out.append(f"[^{value}]" if negated else f"[{value}]")
            else:  # an assertion: Go lets it take a repetition, Python only as a group
                out.append(f"(?:{value})" if pattern[i : i + 1] in ("*", "+", "?", "{") else value)
        elif c == "[":
            text, i = parse_class(i)
            out.append(text)
        elif c == "(":
            item = False
            if pattern.startswith("(?", i):
                m = re.match(r"\(\?(?:P?<([A-Za-z0-9_]+)>|([^:)]*)(:|\)))", pattern[i:])
                if m is None or (m.group(1) is None and m.group(2) is None):
                    raise error(f"invalid or unsupported Perl syntax: `{pattern[i : i + 3]}`")
                if m.group(1) is not None:
                    out.append(f"(?P<{m.group(1)}>")
                    frames.append((frames[-1][0], []))
                elif m.group(3) == ":":
                    if m.group(2) == "":
                        out.append("(?:")
                        frames.append((frames[-1][0], []))
                    else:
                        prefix, multiline = open_flags(m.group(2))
                        out.append(prefix)
                        frames.append((multiline, []))
                else:
                    prefix, multiline = open_flags(m.group(2))
                    out.append(prefix)
                    frames[-1][1].append(prefix)
                    frames[-1] = (multiline, frames[-1][1])
                i += m.end()
            else:
                out.append("(")
                frames.append((frames[-1][0], []))
                i += 1
        elif c == ")":
            if len(frames) == 1:
                raise error(f"unexpected ): `{pattern}`")
            out.append(")" * len(frames[-1][1]) + ")")
            frames.pop()
            i += 1
        elif c == "|":
            pending = frames[-1][1]
            out.append(")" * len(pending) + "|" + "".join(pending))
            item = False
            i += 1
        elif c == "^":
            i += 1
            out.append("(?:^)" if pattern[i : i + 1] in ("*", "+", "?", "{") else "^")
        elif c == "$":
            anchor = "$" if frames[-1][0] else r"\Z"
            i += 1
            out.append(f"(?:{anchor})" if pattern[i : i + 1] in ("*", "+", "?", "{") else anchor)
        elif c in "*+?{":
            m = _GO_REPEAT.match(pattern, i) if c == "{" else None
            if c == "{" and m is None:
                out.append(r"\{")
                i += 1
            else:
                end = m.end() if m is not None else i + 1
                operator = pattern[i:end]
                if m is not None and any(int(v) > 1000 for v in (m.group(1), m.group(3)) if v):
                    raise error(f"invalid repeat count: `{operator}`")
                if m is not None and m.group(3) and int(m.group(3)) < int(m.group(1)):
                    raise error(f"invalid repeat count: `{operator}`")
                if repeated:
                    raise error(f"invalid nested repetition operator: `{pattern[i - 1 : end]}`")
                if not repeatable:
                    raise error(f"missing argument to repetition operator: `{operator}`")
                if end < n and pattern[end] == "?":
                    end += 1
                out.append(pattern[i:end])
                i = end
                repeatable, repeated = False, True
                continue
        else:
            out.append(c)
            i += 1
        repeatable, repeated = item, False
    if len(frames) > 1:
        raise error(f"missing closing ): `{pattern}`")
    out.append(")" * len(frames[0][1]))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile_cached(pattern: str) -> re.Pattern[str] | str:
    try:
        translated = _go_regex_to_python(pattern)
    except _RegexSyntaxError as error:
        return str(error)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a FutureWarning would leak to stderr
        try:
            return re.compile(translated)
        except (re.error, Warning) as error:
            return str(error)


def _compile(pattern: str, arg: int) -> re.Pattern[str]:
    compiled = _compile_cached(pattern)
    if isinstance(compiled, str):
        raise FunctionError(f"invalid regular expression pattern: {compiled}", arg)
    return compiled


def _match_value(rx: re.Pattern[str], m: re.Match[str]) -> Any:
    if rx.groupindex:
        if len(rx.groupindex) != rx.groups:
            raise FunctionError("invalid regular expression: can't mix named and unnamed groups", 0)
        return {name: m.group(name) or "" for name in rx.groupindex}
    if rx.groups:
        return [g if g is not None else "" for g in m.groups()]
    return m.group(0)


def _regex(_ctx: FunctionContext, pattern: str, s: str) -> Any:
    rx = _compile(pattern, 0)
    m = rx.search(s)
    if m is None:
        raise FunctionError("pattern did not match any part of the given string")
    return _match_value(rx, m)


def _regexall(_ctx: FunctionContext, pattern: str, s: str) -> list[Any]:
    rx = _compile(pattern, 0)
    return [_match_value(rx, m) for m in rx.finditer(s)]


_GO_EXPAND = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _regex_replace(_ctx: FunctionContext, s: str, pattern: str, replacement: str) -> str:
    rx = _compile(pattern, 1)

    def expand(m: re.Match[str]) -> str:
        def group(ref: re.Match[str]) -> str:
            if ref.group(0) == "$$":
                return "$"
            name = ref.group(1) or ref.group(2)
            try:
                value = m.group(int(name)) if name.isdigit() else m.group(name)
            except (IndexError, re.error):
                return ""  # Go expands an unknown group to nothing
            return value or ""

        return _GO_EXPAND.sub(group, replacement)

    return rx.sub(expand, s)


def _replace(_ctx: FunctionContext, s: str, old: str, new: str) -> str:
    if old == "":
        # Go's strings.Replace with an empty old string inserts between every rune
        return new + new.join(s) + new if s else new
    return s.replace(old, new)


def _strcontains(_ctx: FunctionContext, s: str, sub: str) -> bool:
    return sub in s


def _startswith(_ctx: FunctionContext, s: str, prefix: str) -> bool:
    return s.startswith(prefix)


def _endswith(_ctx: FunctionContext, s: str, suffix: str) -> bool:
    return s.endswith(suffix)


# format / formatlist ---------------------------------------------------------

_VERB = re.compile(r"%(?:\[(\d+)\])?([-+# 0]*)(\d+)?(?:\.(\d*))?(?:\[(\d+)\])?(.?)")


def _pad(text: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+- " and text[:1] else ""
        body = text[len(sign) :]
        return sign + body.rjust(width - len(sign), "0")
    return text.rjust(width)


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, value: Any) -> str:
    if verb == "v" and "#" in flags:
        return _pad(json_encode(value), flags.replace("#", ""), width, False)
    if verb == "v":
        if value is None:
            return _pad("null", flags, width, False)
        if isinstance(value, list | dict):
            return _pad(json_encode(value), flags, width, False)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _format_one("g" if isinstance(value, float) else "d", flags, width, prec, value)
        return _format_one("s", flags, width, prec, value)
    if value is None:
        raise FunctionError(f"unsupported value for %{verb}: null value cannot be formatted")
    if verb == "t":
        return _pad("true" if as_bool(value) else "false", flags, width, False)
    if verb == "s":
        text = as_string(value)
        if prec is not None:
            text = text[:prec]
        return _pad(text, flags, width, False)
    if verb == "q":
        return _pad(json.dumps(as_string(value), ensure_ascii=False), flags, width, False)
    number = as_number(value)
    sign = "+" if "+" in flags else (" " if " " in flags else "")
    if verb in "dboxX":
        if isinstance(number, float) and not number.is_integer():
            raise FunctionError(f"unsupported value for %{verb}: the number has a fractional part")
        whole = int(number)
        base = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
        prefix = ""
        if "#" in flags and verb != "d":
            prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}[verb]
        text = format(abs(whole), base)
        lead = "-" if whole < 0 else sign
        return _pad(lead + prefix + text, flags, width, True)
    if verb in "eEfgG":
        spec = f"{sign}.{prec}{verb}" if prec is not None else f"{sign}{verb}"
        if verb in "gG" and prec is None:
            text = number_text(number) if not sign or number < 0 else sign + number_text(number)
            return _pad(text, flags, width, True)
        if verb in "eEf" and prec is None:
            spec = f"{sign}.6{verb}"
        text = format(float(number), spec)
        if verb in "eE":
            text = re.sub(r"([eE][-+])(\d)$", r"\g<1>0\2", text)
        return _pad(text, flags, width, True)
    raise FunctionError(f"unsupported format verb %{verb}")


def format_string(spec: str, args: list[Any]) -> str:
    out: list[str] = []
    pos = 0
    next_arg = 0
    for m in _VERB.finditer(spec):
        out.append(spec[pos : m.start()])
        pos = m.end()
        index_a, flags, width, prec, index_b, verb = m.groups()
        if verb == "%" and not (index_a or flags or width or prec or index_b):
            out.append("%")
            continue
        if not verb:
            raise FunctionError("format string ends with an incomplete verb", 0)
        index = index_a or index_b
        if index is not None:
            next_arg = int(index) - 1
        if not 0 <= next_arg < len(args):
            raise FunctionError(f"not enough arguments for %{verb} at offset {m.start()}", 0)
        value = args[next_arg]
        next_arg += 1
        out.append(
            _format_one(
                verb,
                flags,
                int(width) if width else None,
                int(prec or 0) if prec is not None else None,
                value,
            )
        )
    out.append(spec[pos:])
    if next_arg < len(args) and not any(m.group(1) or m.group(5) for m in _VERB.finditer(spec)):
        raise FunctionError(f"too many arguments; only {next_arg} used by format string", 0)
    return "".join(out)


def _format(_ctx: FunctionContext, spec: str, *args: Any) -> str:
    return format_string(spec, list(args))


def _formatlist(_ctx: FunctionContext, spec: str, *args: Any) -> list[str]:
    length: int | None = None
    for i, value in enumerate(args, start=1):
        if isinstance(value, list):
            if length is not None and len(value) != length:
                raise FunctionError(
                    f"argument {i + 1} has length {len(value)}, which is inconsistent with "
                    f"the length {length} of an earlier argument",
                    i,
                )
            length = len(value)
    if length is None:
        return [format_string(spec, list(args))]
    return [
        format_string(spec, [v[n] if isinstance(v, list) else v for v in args])
        for n in range(length)
    ]


# --------------------------------------------------------------------------- numbers


def _abs(_ctx: FunctionContext, n: Any) -> Any:
    return abs(n)


def _ceil(_ctx: FunctionContext, n: float) -> int:
    return math.ceil(n)


def _floor(_ctx: FunctionContext, n: float) -> int:
    return math.floor(n)


def _log(_ctx: FunctionContext, n: Any, base: Any) -> Any:
    try:
        return norm_number(math.log(n, base))
    except (ValueError, ZeroDivisionError):
        raise FunctionError("the logarithm is not defined for these arguments") from None


def _max(_ctx: FunctionContext, *numbers: Any) -> Any:
    if not numbers:
        raise FunctionError("must pass at least one number")
    return max(numbers)


def _min(_ctx: FunctionContext, *numbers: Any) -> Any:
    if not numbers:
        raise FunctionError("must pass at least one number")
    return min(numbers)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _parseint(_ctx: FunctionContext, s: Any, base: Any) -> int:
    b = as_int(base, 1)
    if not 2 <= b <= 62:
        raise FunctionError("base must be a whole number between 2 and 62 inclusive", 1)
    if not isinstance(s, str):
        raise FunctionError(f"first argument must be a string, not {kind_name(s)}", 0)
    text = s
    negative = text.startswith("-")
    if text[:1] in "+-":
        text = text[1:]
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[:b]
    if b <= 36:
        text_cmp = text.lower()
        digits = digits.lower()
    else:
        text_cmp = text
    if not text_cmp or any(c not in digits for c in text_cmp):
        raise FunctionError(f"cannot parse `{s}` as a base {b} integer", 0)
    value = 0
    for c in text_cmp:
        value = value * b + digits.index(c)
    return -value if negative else value


def _pow(_ctx: FunctionContext, n: Any, p: Any) -> Any:
    try:
        return (
            norm_number(n**p)
            if not (isinstance(n, int) and isinstance(p, int) and p >= 0)
            else n**p
        )
    except (OverflowError, ZeroDivisionError):
        raise FunctionError("result out of range") from None


def _signum(_ctx: FunctionContext, n: float) -> int:
    return (n > 0) - (n < 0)


# --------------------------------------------------------------------------- collections


def _alltrue(_ctx: FunctionContext, items: list[Any]) -> bool:
    return all(v is not None and as_bool(v, 0) for v in items)


def _anytrue(_ctx: FunctionContext, items: list[Any]) -> bool:
    return any(v is not None and as_bool(v, 0) for v in items)


def _chunklist(_ctx: FunctionContext, items: list[Any], size: Any) -> list[list[Any]]:
    n = as_int(size, 1)
    if n < 0:
        raise FunctionError("the size argument must be positive", 1)
    if n == 0:
        return [items]
    return [items[i : i + n] for i in range(0, len(items), n)]


def _coalesce(_ctx: FunctionContext, *values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    raise FunctionError("no non-null, non-empty-string arguments")


def _coalescelist(_ctx: FunctionContext, *lists: Any) -> list[Any]:
    if not lists:
        raise FunctionError("no parameters provided")
    for i, value in enumerate(lists):
        items = as_list(value, i)  # the list itself
        if items:
            return items
    raise FunctionError("no non-null arguments")


def _compact(_ctx: FunctionContext, items: list[Any]) -> list[str]:
    return [as_string(v, 0) for v in items if v is not None and v != ""]


def _concat(_ctx: FunctionContext, *lists: Any) -> list[Any]:
    out: list[Any] = []
    for i, value in enumerate(lists):
        out.extend(as_list(value, i))
    return out


def _contains(_ctx: FunctionContext, items: list[Any], value: Any) -> bool:
    return any(equal(v, value) for v in items)


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(equal(item, seen) for seen in out):
            out.append(item)
    return out


def _element(_ctx: FunctionContext, items: list[Any], index: Any) -> Any:
    i = as_int(index, 1)
    if not items:
        raise FunctionError("cannot use element function with an empty list", 0)
    if i < 0:
        raise FunctionError("cannot use element function with a negative index", 1)
    return items[i % len(items)]


def _flatten(_ctx: FunctionContext, items: list[Any]) -> list[Any]:
    out: list[Any] = []

    def walk(values: list[Any]) -> None:
        for v in values:
            if isinstance(v, list):
                walk(v)
            else:
                out.append(v)

    walk(items)
    return out


def _index(_ctx: FunctionContext, items: list[Any], value: Any) -> int:
    if not items:
        raise FunctionError("cannot search an empty list", 0)
    for i, v in enumerate(items):
        if equal(v, value):
            return i
    raise FunctionError("item not found")


def _keys(_ctx: FunctionContext, obj: dict[str, Any]) -> list[str]:
    return sorted(obj)


def _length(_ctx: FunctionContext, value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    raise FunctionError("argument must be a string, a collection type, or a structural type", 0)


def _lookup(_ctx: FunctionContext, obj: dict[str, Any], key: str, *default: Any) -> Any:
    if key in obj:
        return obj[key]
    if default:
        return default[0]
    raise FunctionError(f"the given object has no attribute `{key}`", 1)


def _merge(_ctx: FunctionContext, *objs: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for i, value in enumerate(objs):
        if value is None:
            continue
        merged.update(as_map(value, i))
    return merged


def _range(_ctx: FunctionContext, *args: Any) -> list[Any]:
    if not 1 <= len(args) <= 3:
        raise FunctionError("must have one, two, or three arguments")
    numbers = [as_number(a, i) for i, a in enumerate(args)]
    start: float
    end: float
    step: float
    if len(numbers) == 1:
        start, end, step = 0, numbers[0], 1
    elif len(numbers) == 2:
        start, end = numbers
        step = 1 if end >= start else -1
    else:
        start, end, step = numbers
    if step == 0:
        raise FunctionError("step must not be zero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        direction = "greater" if step > 0 else "less"
        raise FunctionError(
            f"when step is {'positive' if step > 0 else 'negative'}, "
            f"end must be {direction} than start"
        )
    out: list[Any] = []
    value = start
    while (value < end) if step > 0 else (value > end):
        if len(out) >= 1024:
            raise FunctionError(
                "more than 1024 values were generated; either decrease the difference "
                "between start and end or use a smaller step"
            )
        out.append(norm_number(value))
        value += step
    return out


def _reverse(_ctx: FunctionContext, items: list[Any]) -> list[Any]:
    return list(reversed(items))


def _set_sorted(items: list[Any]) -> list[Any]:
    # cty sets of strings/numbers iterate in order; other kinds keep first-seen order
    unique = _unique(items)
    if all(isinstance(v, str) for v in unique):
        return sorted(unique)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in unique):
        return sorted(unique)
    return unique


def _setintersection(_ctx: FunctionContext, first: list[Any], *rest: Any) -> list[Any]:
    others = [as_list(v, i + 1) for i, v in enumerate(rest)]
    return _set_sorted(
        [v for v in first if all(any(equal(v, o) for o in other) for other in others)]
    )


def _setunion(_ctx: FunctionContext, *lists: Any) -> list[Any]:
    out: list[Any] = []
    for i, value in enumerate(lists):
        out.extend(as_list(value, i))
    return _set_sorted(out)


def _setproduct(_ctx: FunctionContext, *lists: Any) -> list[list[Any]]:
    if len(lists) < 2:
        raise FunctionError("at least two arguments are required")
    result: list[list[Any]] = [[]]
    for i, value in enumerate(lists):
        result = [[*prefix, v] for prefix in result for v in as_list(value, i)]
    return result


def _slice(_ctx: FunctionContext, items: list[Any], start: Any, end: Any) -> list[Any]:
    a, b = as_int(start, 1), as_int(end, 2)
    if a < 0:
        raise FunctionError("the starting index must not be negative", 1)
    if b > len(items):
        raise FunctionError("end index must not be greater than the length of the list", 2)
    if a > b:
        raise FunctionError("the start index cannot be greater than the end index", 1)
    return items[a:b]


def _sort(_ctx: FunctionContext, items: list[Any]) -> list[str]:
    return sorted(as_string(v, 0) for v in items)


def _sum(_ctx: FunctionContext, items: list[Any]) -> Any:
    if not items:
        raise FunctionError("cannot sum an empty list", 0)
    total: int | float = 0
    for v in items:
        if v is None:
            raise FunctionError("argument must be list, set, or tuple of number values", 0)
        try:
            total += as_number(v)
        except FunctionError:
            raise FunctionError(
                "argument must be list, set, or tuple of number values", 0
            ) from None
    return norm_number(total)


def _values(_ctx: FunctionContext, obj: dict[str, Any]) -> list[Any]:
    return [obj[k] for k in sorted(obj)]


def _zipmap(_ctx: FunctionContext, keys: list[Any], values: list[Any]) -> dict[str, Any]:
    if len(keys) != len(values):
        raise FunctionError(
            f"number of keys ({len(keys)}) does not match number of values ({len(values)})"
        )
    return {as_string(k, 0): v for k, v in zip(keys, values, strict=True)}


# --------------------------------------------------------------------------- encoding


def _b64decode(_ctx: FunctionContext, s: str) -> str:
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError:
        raise FunctionError("failed to decode base64 data", 0) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FunctionError(
            "the result of decoding the provided string is not valid UTF-8", 0
        ) from None


def _b64encode(_ctx: FunctionContext, s: str) -> str:
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


def _b64gzip(_ctx: FunctionContext, s: str) -> str:
    return base64.b64encode(gzip.compress(s.encode("utf-8"), mtime=0)).decode("ascii")


def _csvdecode(_ctx: FunctionContext, s: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(s)))
    if not rows:
        raise FunctionError("missing header line", 0)
    header = rows[0]
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise FunctionError(f"record on line {n}: wrong number of fields", 0)
        out.append(dict(zip(header, row, strict=True)))
    return out


_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _json_string(s: str) -> str:
    text = json.dumps(s, ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def json_encode(value: Any) -> str:
    """Go's ``json.Marshal`` as cty uses it: compact, sorted keys, ``<>&`` escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(json_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{_json_string(k)}:{json_encode(value[k])}" for k in sorted(value))
            + "}"
        )
    raise FunctionError(f"cannot encode a {type(value).__name__} as JSON")


def _from_json(value: Any) -> Any:
    if isinstance(value, float):
        return norm_number(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _jsondecode(_ctx: FunctionContext, s: str) -> Any:
    try:
        return _from_json(json.loads(s))
    except json.JSONDecodeError as error:
        raise FunctionError(
            f"invalid JSON: {error.msg} at line {error.lineno}, column {error.colno}", 0
        ) from None


def _jsonencode(_ctx: FunctionContext, value: Any) -> str:
    return json_encode(value)


def _text_codec(name: str) -> str:
    import codecs

    try:
        return codecs.lookup(name).name
    except LookupError:
        raise FunctionError(f"`{name}` is not a supported IANA encoding name or alias", 1) from None


def _textencodebase64(_ctx: FunctionContext, s: str, encoding: str) -> str:
    codec = _text_codec(encoding)
    try:
        raw = s.encode(codec)
    except UnicodeEncodeError:
        raise FunctionError(
            f"the given string contains characters that cannot be represented in {encoding}", 0
        ) from None
    return base64.b64encode(raw).decode("ascii")


def _textdecodebase64(_ctx: FunctionContext, s: str, encoding: str) -> str:
    codec = _text_codec(encoding)
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError:
        raise FunctionError("the given value has an invalid base64 symbol", 0) from None
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise FunctionError(
            f"the given string contains symbols that are not defined for {encoding}", 0
        ) from None


def _urlencode(_ctx: FunctionContext, s: str) -> str:
    return urllib.parse.quote_plus(s, safe="")


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the project's dependencies
        raise FunctionError("needs the PyYAML package, which is not installed") from None
    return yaml


def _yamldecode(_ctx: FunctionContext, s: str) -> Any:
    yaml = _yaml()

    # YAML 1.2 core schema, as go-cty-yaml: no yes/no bools (a SafeLoader subclass made at
    # run time: PyYAML is imported lazily and has no type information)
    CoreLoader: Any = type("CoreLoader", (yaml.SafeLoader,), {})

    CoreLoader.yaml_implicit_resolvers = {
        first: [
            (tag, rx)
            for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    CoreLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    try:
        docs = list(yaml.load_all(s, Loader=CoreLoader))  # a SafeLoader subclass
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid YAML"
        raise FunctionError(f"invalid YAML: {first}", 0) from None
    if len(docs) > 1:
        raise FunctionError("the given YAML contains more than one document", 0)
    return _from_yaml(docs[0] if docs else None)


def _from_yaml(value: Any) -> Any:
    if isinstance(value, float):
        return norm_number(value) if math.isfinite(value) else value
    if isinstance(value, list):
        return [_from_yaml(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _from_yaml(v) for k, v in value.items()}
    if isinstance(value, bytes | _dt.date):
        return str(value)
    return value


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return json.dumps(value, ensure_ascii=False)


def _yaml_block_string(s: str, indent: str) -> str:
    body = s.rstrip("\n")
    trailing = len(s) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    lines = body.split("\n") + [""] * (trailing - 1 if trailing > 1 else 0)
    return f"|{chomp}\n" + "\n".join(indent + line if line else "" for line in lines)


def yaml_encode(value: Any, indent: str = "") -> str:
    """go-cty-yaml's block style: quoted strings, sorted keys, literal multi-line strings."""
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for key in sorted(value):
            item = value[key]
            head = f"{indent}{json.dumps(key, ensure_ascii=False)}:"
            if isinstance(item, dict) and item:
                out.append(head + "\n" + yaml_encode(item, indent + "  "))
            elif isinstance(item, list) and item:
                out.append(head + "\n" + yaml_encode(item, indent))
            elif isinstance(item, str) and "\n" in item:
                out.append(f"{head} {_yaml_block_string(item, indent + '  ')}\n")
            else:
                out.append(f"{head} {_yaml_inline(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = yaml_encode(item, indent + "  ")
                out.append(f"{indent}- " + inner[len(indent) + 2 :])
            elif isinstance(item, str) and "\n" in item:
                out.append(f"{indent}- {_yaml_block_string(item, indent + '  ')}\n")
            else:
                out.append(f"{indent}- {_yaml_inline(item)}\n")
        return "".join(out)
    if isinstance(value, str) and "\n" in value:
        return _yaml_block_string(value, "  ") + "\n"
    return _yaml_scalar(value) + "\n"


def _yaml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def _yamlencode(_ctx: FunctionContext, value: Any) -> str:
    return yaml_encode(value)


# --------------------------------------------------------------------------- files


def _expand_home(path: str) -> str:
    return os.path.expanduser(path) if path.startswith("~") else path


def _resolve(ctx: FunctionContext, path: str) -> Path:
    p = Path(_expand_home(path))
    return p if p.is_absolute() else ctx.template_dir / p


def _read_text(ctx: FunctionContext, path: str) -> str:
    full = _resolve(ctx, path)
    try:
        data = full.read_bytes()
    except FileNotFoundError:
        raise FunctionError(f"no file exists at {full}", 0) from None
    except OSError as error:
        raise FunctionError(
            f"cannot read {full}: {error.strerror or type(error).__name__}", 0
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FunctionError(
            f"contents of {full} are not valid UTF-8; "
            "use filebase64 to obtain the Base64 encoded contents",
            0,
        ) from None


def _file(ctx: FunctionContext, path: str) -> str:
    return _read_text(ctx, path)


def _filebase64(ctx: FunctionContext, path: str) -> str:
    # Packer's filebase64 opens the path as given: relative to the working directory.
    full = Path(_expand_home(path))
    if not full.is_absolute():
        full = ctx.cwd / full
    try:
        return base64.b64encode(full.read_bytes()).decode("ascii")
    except OSError as error:
        raise FunctionError(
            f"failed to read file `{path}`: {error.strerror or type(error).__name__}", 0
        ) from None


def _fileexists(ctx: FunctionContext, path: str) -> bool:
    full = _resolve(ctx, path)
    if not full.exists():
        return False
    if full.is_file():
        return True
    raise FunctionError(f"{full} is not a regular file", 0)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Doublestar glob syntax (``*``, ``**``, ``?``, ``[...]``, ``{a,b}``) as a regex."""
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise FunctionError("failed to glob pattern: syntax error in pattern", 1)
            body = pattern[i + 1 : end]
            if body.startswith("!") or body.startswith("^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth:
            depth -= 1
            out.append(")")
        elif ch == "," and depth:
            out.append("|")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    if depth:
        raise FunctionError("failed to glob pattern: syntax error in pattern", 1)
    return re.compile("".join(out) + r"\Z")


def _fileset(ctx: FunctionContext, path: str, pattern: str) -> list[str]:
    base = _resolve(ctx, path)
    rx = _glob_regex(pattern)
    found: list[str] = []
    if not base.is_dir():
        return found
    for root, _dirs, files in os.walk(base):
        for name in files:
            rel = (Path(root) / name).relative_to(base).as_posix()
            if rx.match(rel):
                found.append(rel)
    return sorted(found)


def _abspath(ctx: FunctionContext, path: str) -> str:
    p = Path(path)
    return os.path.normpath(p if p.is_absolute() else ctx.cwd / p)


def _basename(_ctx: FunctionContext, path: str) -> str:
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _dirname(_ctx: FunctionContext, path: str) -> str:
    if "/" not in path:
        return "."
    head = path[: path.rfind("/") + 1]
    return os.path.normpath(head) if head.strip("/") else "/"


def _pathexpand(ctx: FunctionContext, path: str) -> str:
    if not path.startswith("~"):
        return path
    home = ctx.env.get("HOME") or os.path.expanduser("~")
    if path == "~":
        return home
    if path.startswith("~/"):
        return home.rstrip("/") + path[1:]
    return os.path.expanduser(path)


def _templatefile(ctx: FunctionContext, path: str, variables: Any) -> Any:
    if not isinstance(variables, dict):
        raise FunctionError("invalid vars value: must be a map", 1)
    for name in variables:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise FunctionError(
                f"invalid template variable name `{name}`: must start with a letter, followed by "
                "zero or more letters, digits, and underscores",
                1,
            )
    if ctx.render_template is None:
        raise FunctionError("cannot recursively call templatefile from inside templatefile call")
    text = _read_text(ctx, path)
    return ctx.render_template(text, str(_resolve(ctx, path)), variables)


# --------------------------------------------------------------------------- time


_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def parse_rfc3339(value: str, arg: int | None = 0) -> _dt.datetime:
    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value
    )
    if not m:
        raise FunctionError(f"`{value}` is not a valid RFC3339 timestamp", arg)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz = _dt.UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        return _dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        raise FunctionError(f"`{value}` is not a valid RFC3339 timestamp", arg) from None


def _offset(t: _dt.datetime, colon: bool, zulu: bool = False) -> str:
    off = t.utcoffset() or _dt.timedelta(0)
    if zulu and not off:
        return "Z"
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    sep = ":" if colon else ""
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


def rfc3339(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + _offset(t, True, zulu=True)


_FORMATDATE = re.compile(r"'(?:[^']|'')*'?|([A-Za-z])\1*|[^A-Za-z']+")


def formatdate(spec: str, t: _dt.datetime) -> str:
    h12 = t.hour % 12 or 12
    utc = not t.utcoffset()
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
        "ZZZZZ": _offset(t, True),
        "ZZZZ": _offset(t, False),
        "ZZZ": "UTC" if utc else _offset(t, False),
        "Z": _offset(t, True, zulu=True),
    }
    out = []
    for m in _FORMATDATE.finditer(spec):
        token = m.group(0)
        if token.startswith("'"):
            if len(token) < 2 or not token.endswith("'") or token == "'":
                raise FunctionError("unterminated literal '", 0)
            out.append(token[1:-1].replace("''", "'") if token != "''" else "'")
        elif m.group(1):
            if token not in table:
                raise FunctionError(f"invalid date format verb `{token}`", 0)
            out.append(table[token])
        else:
            out.append(token)
    return "".join(out)


def _formatdate(_ctx: FunctionContext, spec: str, timestamp: str) -> str:
    return formatdate(spec, parse_rfc3339(timestamp, 1))


_GO_CHUNKS: list[tuple[str, Callable[[_dt.datetime], str]]] = [
    ("January", lambda t: _MONTHS[t.month - 1]),
    ("Jan", lambda t: _MONTHS[t.month - 1][:3]),
    ("Monday", lambda t: _DAYS[t.weekday()]),
    ("Mon", lambda t: _DAYS[t.weekday()][:3]),
    ("MST", lambda t: "UTC" if not t.utcoffset() else _offset(t, False)),
    ("2006", lambda t: f"{t.year:04d}"),
    ("Z07:00", lambda t: _offset(t, True, zulu=True)),
    ("Z0700", lambda t: _offset(t, False, zulu=True)),
    ("Z07", lambda t: _offset(t, False, zulu=True)[:3]),
    ("-07:00", lambda t: _offset(t, True)),
    ("-0700", lambda t: _offset(t, False)),
    ("-07", lambda t: _offset(t, False)[:3]),
    (".000000000", lambda t: f".{t.microsecond:06d}000"),
    (".000000", lambda t: f".{t.microsecond:06d}"),
    (".000", lambda t: f".{t.microsecond // 1000:03d}"),
    (".999999999", lambda t: f".{t.microsecond:06d}".rstrip("0").rstrip(".")),
    (".999999", lambda t: f".{t.microsecond:06d}".rstrip("0").rstrip(".")),
    (".999", lambda t: f".{t.microsecond // 1000:03d}".rstrip("0").rstrip(".")),
    ("002", lambda t: f"{t.timetuple().tm_yday:03d}"),
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


def go_time_format(layout: str, t: _dt.datetime) -> str:
    """Format ``t`` with a Go reference-time layout (``2006-01-02T15:04:05Z07:00``)."""
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


_STRFTIME: dict[str, Callable[[_dt.datetime], str]] = {
    "a": lambda t: _DAYS[t.weekday()][:3],
    "A": lambda t: _DAYS[t.weekday()],
    "b": lambda t: _MONTHS[t.month - 1][:3],
    "B": lambda t: _MONTHS[t.month - 1],
    "c": lambda t: go_time_format("Mon Jan _2 15:04:05 2006", t),
    "d": lambda t: f"{t.day:02d}",
    "f": lambda t: f"{t.microsecond:06d}",
    "H": lambda t: f"{t.hour:02d}",
    "I": lambda t: f"{t.hour % 12 or 12:02d}",
    "j": lambda t: f"{t.timetuple().tm_yday:03d}",
    "L": lambda t: f"{t.microsecond // 1000:03d}",
    "m": lambda t: f"{t.month:02d}",
    "M": lambda t: f"{t.minute:02d}",
    "p": lambda t: "AM" if t.hour < 12 else "PM",
    "S": lambda t: f"{t.second:02d}",
    "U": lambda t: t.strftime("%U"),
    "w": lambda t: str((t.weekday() + 1) % 7),
    "W": lambda t: t.strftime("%W"),
    "x": lambda t: go_time_format("01/02/06", t),
    "X": lambda t: go_time_format("15:04:05", t),
    "y": lambda t: f"{t.year % 100:02d}",
    "Y": lambda t: f"{t.year:04d}",
    "Z": lambda t: "UTC" if not t.utcoffset() else _offset(t, False),
    "z": lambda t: _offset(t, False),
    "%": lambda _t: "%",
}


def strftime(spec: str, t: _dt.datetime) -> str:
    """jehiah/go-strftime, as ``legacy_strftime`` uses it; unknown directives stay as typed."""

    def one(m: re.Match[str]) -> str:
        render = _STRFTIME.get(m.group(1))
        return render(t) if render else m.group(0)

    return re.sub(r"%(.)", one, spec, flags=re.S)


def _timestamp(ctx: FunctionContext) -> str:
    return rfc3339(ctx.now.astimezone(_dt.UTC))


def _legacy_isotime(ctx: FunctionContext, *layout: str) -> str:
    if len(layout) > 1:
        raise FunctionError(f"too many values, 1 needed: {len(layout)} given")
    t = ctx.now.astimezone(_dt.UTC)
    return go_time_format(layout[0], t) if layout else rfc3339(t)


def _legacy_strftime(ctx: FunctionContext, *spec: str) -> str:
    if len(spec) > 1:
        raise FunctionError(f"too many values, 1 needed: {len(spec)} given")
    t = ctx.now.astimezone(_dt.UTC)
    return strftime(spec[0], t) if spec else rfc3339(t)


_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, arg: int | None = 1) -> _dt.timedelta:
    """Go's ``time.ParseDuration``: ``1h30m``, ``-10m``, ``1.5h``, ``300ms``."""
    rest = text
    sign = 1
    if rest[:1] in "+-":
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return _dt.timedelta(0)
    if not rest:
        raise FunctionError(f"invalid duration `{text}`", arg)
    seconds = 0.0
    pos = 0
    while pos < len(rest):
        m = _DURATION_PART.match(rest, pos)
        if not m:
            raise FunctionError(f"invalid duration `{text}`", arg)
        seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return _dt.timedelta(seconds=sign * seconds)


def _timeadd(_ctx: FunctionContext, timestamp: str, duration: str) -> str:
    t = parse_rfc3339(timestamp, 0)
    try:
        return rfc3339(t + parse_duration(duration, 1))
    except OverflowError:
        raise FunctionError("the resulting time is out of range") from None


def _time_fields(t: _dt.datetime) -> dict[str, Any]:
    iso_year, iso_week, _ = t.isocalendar()
    return {
        "year": t.year,
        "year_day": t.timetuple().tm_yday,
        "day": t.day,
        "month": t.month,
        "month_name": _MONTHS[t.month - 1],
        "weekday": (t.weekday() + 1) % 7,
        "weekday_name": _DAYS[t.weekday()],
        "hour": t.hour,
        "minute": t.minute,
        "second": t.second,
        "iso_year": iso_year,
        "iso_week": iso_week,
    }


def _rfc3339_parse(_ctx: FunctionContext, timestamp: str) -> dict[str, Any]:
    t = parse_rfc3339(timestamp, 0)
    return _time_fields(t) | {"unix": int(t.timestamp())}


def _unix_timestamp_parse(_ctx: FunctionContext, seconds: Any) -> dict[str, Any]:
    n = as_int(seconds, 0)
    try:
        t = _dt.datetime.fromtimestamp(n, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise FunctionError("unix_timestamp is out of range", 0) from None
    return _time_fields(t) | {"rfc3339": rfc3339(t)}


# --------------------------------------------------------------------------- hashes & crypto


def _hasher(name: str) -> Impl:
    def digest(_ctx: FunctionContext, s: str) -> str:
        return hashlib.new(name, s.encode("utf-8")).hexdigest()

    return digest


def _bcrypt(_ctx: FunctionContext, s: str, *cost: Any) -> str:
    rounds = as_int(cost[0], 1) if cost else 10
    if not 4 <= rounds <= 31:
        raise FunctionError(f"crypto/bcrypt: cost {rounds} is outside allowed range (4,31)", 1)
    try:
        import bcrypt
    except ImportError:
        raise FunctionError("needs the `bcrypt` Python package, which is not installed") from None
    salt = bcrypt.gensalt(rounds=rounds, prefix=b"2a")
    return str(bcrypt.hashpw(s.encode("utf-8"), salt).decode("ascii"))


def _rsadecrypt(_ctx: FunctionContext, ciphertext: str, key_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except ValueError:
        raise FunctionError(
            "failed to decode input: the ciphertext is not valid base64", 0
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise FunctionError("invalid private key: not a PEM-encoded RSA private key", 1) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FunctionError("invalid private key: not an RSA key", 1)
    try:
        return key.decrypt(raw, padding.PKCS1v15()).decode("utf-8")
    except ValueError:
        raise FunctionError("failed to decrypt: the ciphertext does not match the key", 0) from None


# --------------------------------------------------------------------------- network


def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise FunctionError(f"invalid CIDR expression `{prefix}`", 0) from None


def _cidrhost(_ctx: FunctionContext, prefix: str, hostnum: Any) -> str:
    net = _network(prefix)
    n = as_int(hostnum, 1)
    size = net.num_addresses
    index = n if n >= 0 else size + n
    if not 0 <= index < size:
        raise FunctionError(
            f"prefix of {net.prefixlen} does not accommodate a host numbered {n}", 1
        )
    return str(net.network_address + index)


def _cidrnetmask(_ctx: FunctionContext, prefix: str) -> str:
    net = _network(prefix)
    if net.version != 4:
        raise FunctionError(f"IPv6 addresses cannot have a netmask: {prefix}", 0)
    return str(net.netmask)


def _cidrsubnet(_ctx: FunctionContext, prefix: str, newbits: Any, netnum: Any) -> str:
    net = _network(prefix)
    bits = as_int(newbits, 1)
    num = as_int(netnum, 2)
    new_len = net.prefixlen + bits
    if bits < 0:
        raise FunctionError("newbits must not be negative", 1)
    if new_len > net.max_prefixlen:
        raise FunctionError(
            f"insufficient address space to extend prefix of {net.prefixlen} by {bits}", 1
        )
    if not 0 <= num < 2**bits:
        raise FunctionError(
            f"prefix extension of {bits} does not accommodate a subnet numbered {num}", 2
        )
    size = 2 ** (net.max_prefixlen - new_len)
    return f"{net.network_address + num * size}/{new_len}"


def _cidrsubnets(_ctx: FunctionContext, prefix: str, *newbits: Any) -> list[str]:
    net = _network(prefix)
    first = int(net.network_address)
    end = first + net.num_addresses
    current = first
    out: list[str] = []
    for i, nb in enumerate(newbits, start=1):
        bits = as_int(nb, i)
        new_len = net.prefixlen + bits
        if bits < 1 or new_len > net.max_prefixlen:
            raise FunctionError(
                f"would extend prefix to {new_len} bits, "
                f"which is too long for an IPv{net.version} address",
                i,
            )
        size = 2 ** (net.max_prefixlen - new_len)
        current = -(-current // size) * size  # align up to the subnet's size
        if current + size > end:
            raise FunctionError(
                "not enough remaining address space for a subnet with a prefix of "
                f"{new_len} bits after {out[-1] if out else prefix}",
                i,
            )
        address = (
            ipaddress.IPv4Address(current) if net.version == 4 else ipaddress.IPv6Address(current)
        )
        out.append(f"{address}/{new_len}")
        current += size
    return out


# --------------------------------------------------------------------------- ids, secrets, extras


def _uuidv4(ctx: FunctionContext) -> str:
    return ctx.uuid_factory()


_UUID_NAMESPACES = {
    "dns": uuid.NAMESPACE_DNS,
    "url": uuid.NAMESPACE_URL,
    "oid": uuid.NAMESPACE_OID,
    "x500": uuid.NAMESPACE_X500,
}


def _uuidv5(_ctx: FunctionContext, namespace: str, name: str) -> str:
    space = _UUID_NAMESPACES.get(namespace)
    if space is None:
        try:
            space = uuid.UUID(namespace)
        except ValueError:
            raise FunctionError(
                f"namespace `{namespace}` is not supported: use dns, url, oid, x500 or a UUID",
                0,
            ) from None
    return str(uuid.uuid5(space, name))


def _secret_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(round(value))
    raise FunctionError(f"unsupported secret value type: {kind_name(value)}")


def _aws_secret_string(ctx: FunctionContext, name: str, fn: str) -> str:
    if ctx.aws_secret is None:
        raise FunctionError("no AWS target to read secrets from")
    if not name:
        raise FunctionError("at least one secret name must be provided", 0)
    return ctx.aws_secret(name, "AWSCURRENT")


def _aws_secretsmanager(ctx: FunctionContext, name: str, key: Any) -> str:
    secret = _aws_secret_string(ctx, name, "aws_secretsmanager")
    if not isinstance(secret, str):
        # UNKNOWN: shape-only validation reads no secret (amibake.core.templates.datasources)
        return secret
    key_text = "" if key is None else as_string(key, 1)
    try:
        parsed = json.loads(secret)
    except ValueError:
        return secret  # a plain-text secret is returned whole
    if not isinstance(parsed, dict):
        return secret
    if not key_text:
        if len(parsed) > 1:
            raise FunctionError("secret has multiple values and no key was set")
        for value in parsed.values():
            return _secret_text(value)
        return secret
    if key_text in parsed:
        return _secret_text(parsed[key_text])
    raise FunctionError(f"no secret found for key `{key_text}`", 1)


def _aws_secretsmanager_raw(ctx: FunctionContext, name: str) -> str:
    return _aws_secret_string(ctx, name, "aws_secretsmanager_raw")


def _not_connected(what: str, service: str) -> Impl:
    def refuse(_ctx: FunctionContext, *_args: Any) -> str:
        raise FunctionError(f"`{what}()` is not supported yet: amibake has no {service} connection")

    return refuse


_AWS_NAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")


def clean_resource_name(value: str) -> str:
    """Packer's amazon ``clean_resource_name``: characters AWS forbids become ``-``."""
    return _AWS_NAME_FORBIDDEN.sub("-", value)


def _env(ctx: FunctionContext, name: str) -> str:
    return ctx.env.get(name, "")


def _go_replace_n(_ctx: FunctionContext, src: str, old: str, new: str, n: Any) -> str:
    """Packer JSON's ``replace old new n src`` (Go's strings.Replace; n < 0: all)."""
    from amibake.core.templates.gotemplate import _go_replace

    if n != int(n):
        raise FunctionError("the count must be a whole number", 3)
    return _go_replace(src, old, new, int(n))


def _unix_timestamp(ctx: FunctionContext) -> str:
    return str(int(ctx.now.timestamp()))


def _isotime(ctx: FunctionContext, *layout: str) -> str:
    return go_time_format(layout[0] if layout else RFC3339_GO, ctx.now)


def _tonumber(_ctx: FunctionContext, value: Any) -> Any:
    if value is None:
        return None
    return as_number(value, 0)


def _tostring(_ctx: FunctionContext, value: Any) -> Any:
    if value is None:
        return None
    return as_string(value, 0)


# --------------------------------------------------------------------------- the table

F = Function

REGISTRY: dict[str, Function] = {
    f.name: f
    for f in [
        # strings
        F("chomp", "s", _chomp),
        F("endswith", "ss", _endswith),
        F("format", "sa*", _format),
        F("formatlist", "sa*", _formatlist),
        F("indent", "ns", _indent),
        F("join", "sl*", _join),
        F("lower", "s", lambda _c, s: s.lower()),
        F("regex", "ss", _regex),
        F("regexall", "ss", _regexall),
        F("regex_replace", "sss", _regex_replace),
        F("replace", "sss", _replace),
        F("split", "ss", _split),
        F("startswith", "ss", _startswith),
        F("strcontains", "ss", _strcontains),
        F("strrev", "s", lambda _c, s: s[::-1]),
        F("substr", "snn", _substr),
        F("title", "s", _title),
        F("trim", "ss", _trim),
        F("trimprefix", "ss", _trimprefix),
        F("trimspace", "s", lambda _c, s: s.strip()),
        F("trimsuffix", "ss", _trimsuffix),
        F("upper", "s", lambda _c, s: s.upper()),
        # numbers
        F("abs", "n", _abs),
        F("ceil", "n", _ceil),
        F("floor", "n", _floor),
        F("log", "nn", _log),
        F("max", "n*", _max),
        F("min", "n*", _min),
        F("parseint", "aa", _parseint),
        F("pow", "nn", _pow),
        F("signum", "n", _signum),
        # collections
        F("alltrue", "l", _alltrue),
        F("anytrue", "l", _anytrue),
        F("chunklist", "ln", _chunklist),
        F("coalesce", "a*", _coalesce),
        F("coalescelist", "a*", _coalescelist),
        F("compact", "l", _compact),
        F("concat", "a*", _concat),
        F("contains", "la", _contains),
        F("distinct", "l", lambda _c, items: _unique(items)),
        F("element", "la", _element),
        F("flatten", "l", _flatten),
        F("index", "la", _index),
        F("keys", "m", _keys),
        F("length", "a", _length),
        F("lookup", "msa", _lookup, optional=1),
        F("merge", "a*", _merge),
        F("range", "a*", _range),
        F("reverse", "l", _reverse),
        F("setintersection", "ll*", _setintersection),
        F("setproduct", "a*", _setproduct),
        F("setunion", "a*", _setunion),
        F("slice", "laa", _slice),
        F("sort", "l", _sort),
        F("sum", "l", _sum),
        F("values", "m", _values),
        F("zipmap", "ll", _zipmap),
        # encoding
        F("base64decode", "s", _b64decode),
        F("base64encode", "s", _b64encode),
        F("base64gzip", "s", _b64gzip),
        F("csvdecode", "s", _csvdecode),
        F("jsondecode", "s", _jsondecode),
        F("jsonencode", "a", _jsonencode),
        F("textdecodebase64", "ss", _textdecodebase64),
        F("textencodebase64", "ss", _textencodebase64),
        F("urlencode", "s", _urlencode),
        F("yamldecode", "s", _yamldecode),
        F("yamlencode", "a", _yamlencode),
        # files
        F("abspath", "s", _abspath),
        F("basename", "s", _basename),
        F("dirname", "s", _dirname),
        F("file", "s", _file),
        F("filebase64", "s", _filebase64),
        F("fileexists", "s", _fileexists),
        F("fileset", "ss", _fileset),
        F("pathexpand", "s", _pathexpand),
        F("templatefile", "sa", _templatefile),
        # time
        F("formatdate", "ss", _formatdate),
        F("legacy_isotime", "s*", _legacy_isotime),
        F("legacy_strftime", "s*", _legacy_strftime),
        F("rfc3339_parse", "s", _rfc3339_parse),
        F("timeadd", "ss", _timeadd),
        F("timestamp", "", _timestamp),
        F("unix_timestamp_parse", "n", _unix_timestamp_parse),
        # hashes and crypto
        F("bcrypt", "sa", _bcrypt, optional=1),
        F("md5", "s", _hasher("md5")),
        F("rsadecrypt", "ss", _rsadecrypt),
        F("sha1", "s", _hasher("sha1")),
        F("sha256", "s", _hasher("sha256")),
        F("sha512", "s", _hasher("sha512")),
        # network
        F("cidrhost", "sn", _cidrhost),
        F("cidrnetmask", "s", _cidrnetmask),
        F("cidrsubnet", "snn", _cidrsubnet),
        F("cidrsubnets", "sn*", _cidrsubnets),
        # type conversion: special forms (Scope evaluates them)
        F("can", "a", None),
        F("convert", "aa", None),
        F("try", "aa*", None),
        # ids and secrets
        F("uuidv4", "", _uuidv4),
        F("uuidv5", "ss", _uuidv5),
        F("aws_secretsmanager", "sa", _aws_secretsmanager),
        F("aws_secretsmanager_raw", "s", _aws_secretsmanager_raw),
        F("consul_key", "s", _not_connected("consul_key", "Consul")),
        F("vault", "ss", _not_connected("vault", "Vault")),
        # amibake extras: the targets of Packer JSON's functions, and older conveniences
        F("clean_resource_name", "s", lambda _c, s: clean_resource_name(s), extra=True),
        F("env", "s", _env, extra=True),
        F("go_replace", "sssn", _go_replace_n, extra=True),
        F("isotime", "s*", _isotime, extra=True),
        F("tonumber", "a", _tonumber, extra=True),
        F("tostring", "a", _tostring, extra=True),
        F("unix_timestamp", "", _unix_timestamp, extra=True),
    ]
}


def call(fn: Function, ctx: FunctionContext, args: list[Any]) -> Any:
    """Check the arity, convert the arguments to the parameter kinds, run."""
    count = len(args)
    if count < fn.min_args or (fn.max_args is not None and count > fn.max_args):
        raise FunctionError(f"takes {fn.arity_text()}, got {count}")
    if fn.impl is None:  # pragma: no cover - special forms never reach here
        raise FunctionError("must be evaluated by the scope")
    converted = [_CONVERT[fn.kind_of(i)](value, i) for i, value in enumerate(args)]
    result = fn.impl(ctx, *converted)
    if isinstance(result, float):
        return norm_number(result)
    return result
