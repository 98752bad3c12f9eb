"""A JSON reader that remembers where every value and key is written.

Hand-written on purpose: the stdlib decoder gives no positions, and errors must
say ``file:line:col``. It is a small recursive-descent reader for RFC 8259
JSON; string escapes are decoded by :func:`json.loads` on the string's slice, so
only the structure is ours. Duplicate keys are reported (Go's decoder silently
keeps the last one, which hides typos).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from typing import Any

from amibake.core.templates.errors import Loc, Problems
from amibake.core.templates.nodes import ListNode, MapNode, Node, Scalar

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
MAX_DEPTH = 100
#: With ``keep_duplicates``, the n-th repeat of key ``k`` is stored as ``k + DUPLICATE + n``
#: (HCL's JSON syntax merges repeated block keys; see amibake.core.templates.hcljson).
DUPLICATE = "\x00"


class JsonSyntaxError(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class _Reader:
    def __init__(
        self,
        text: str,
        file: str,
        on_string: Callable[[str, Loc, str], Node] | None,
        keep_duplicates: bool = False,
    ) -> None:
        self.keep_duplicates = keep_duplicates
        self.text = text
        self.file = file
        self.pos = 0
        self.on_string = on_string
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.duplicates: list[tuple[Loc, str]] = []
        self.path: list[str | int] = []

    def loc(self, pos: int) -> Loc:
        line = bisect.bisect_right(self.line_starts, pos)
        return Loc(self.file, line, pos - self.line_starts[line - 1] + 1)

    def fail(self, message: str, pos: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(self.loc(self.pos if pos is None else pos), message)

    def path_text(self) -> str:
        out = ""
        for part in self.path:
            out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else part)
        return out

    def skip_ws(self) -> None:
        match = _WS.match(self.text, self.pos)
        if match is not None:  # always: _WS matches the empty string
            self.pos = match.end()

    def describe_here(self) -> str:
        if self.pos >= len(self.text):
            return "end of file"
        return f"`{self.text[self.pos]}`"

    def value(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        self.skip_ws()
        start = self.pos
        ch = self.text[start : start + 1]
        if ch == "{":
            return self.obj(depth)
        if ch == "[":
            return self.arr(depth)
        if ch == '"':
            raw = self.string()
            loc = self.loc(start)
            if self.on_string is not None:
                return self.on_string(raw, loc, self.path_text())
            return Scalar(raw, loc)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, start):
                self.pos += len(word)
                return Scalar(value, self.loc(start))
        m = _NUMBER.match(self.text, start)
        if m and m.group(0) not in ("-",):
            self.pos = m.end()
            number: Any = float(m.group(0)) if m.group(1) or m.group(2) else int(m.group(0))
            return Scalar(number, self.loc(start))
        raise self.fail(f"expected a JSON value, found {self.describe_here()}")

    def string(self) -> str:
        m = _STRING.match(self.text, self.pos)
        if not m:
            # find the precise culprit for the message
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                raise self.fail("unterminated string")
            raise self.fail("invalid string (bad escape or control character)")
        self.pos = m.end()
        try:
            decoded: str = json.loads(m.group(0))
        except ValueError as error:  # pragma: no cover - the regex admits only valid strings
            raise self.fail(f"invalid string: {error}") from None
        if any(0xD800 <= ord(c) <= 0xDFFF for c in decoded):
            raise self.fail("invalid string (lone surrogate escape)", m.start())
        return decoded

    def obj(self, depth: int) -> MapNode:
        node = MapNode({}, self.loc(self.pos))
        self.pos += 1
        self.skip_ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return node
        while True:
            self.skip_ws()
            if not self.text.startswith('"', self.pos):
                raise self.fail(f"expected a key in double quotes, found {self.describe_here()}")
            key_loc = self.loc(self.pos)
            key = self.string()
            self.skip_ws()
            if not self.text.startswith(":", self.pos):
                raise self.fail(f"expected `:` after key `{key}`, found {self.describe_here()}")
            self.pos += 1
            self.path.append(key)
            value = self.value(depth + 1)
            self.path.pop()
            if key in node.entries:
                if self.keep_duplicates:
                    n = 1
                    while f"{key}{DUPLICATE}{n}" in node.entries:
                        n += 1
                    key = f"{key}{DUPLICATE}{n}"
                else:
                    self.duplicates.append(
                        (key_loc, self.path_text() + ("." if self.path else "") + key)
                    )
            node.entries[key] = value
            node.key_locs[key] = key_loc
            self.skip_ws()
            ch = self.text[self.pos : self.pos + 1]
            if ch == ",":
                self.pos += 1
                continue
            if ch == "}":
                self.pos += 1
                return node
            raise self.fail(f"expected `,` or `}}` in object, found {self.describe_here()}")

    def arr(self, depth: int) -> ListNode:
        node = ListNode([], self.loc(self.pos))
        self.pos += 1
        self.skip_ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return node
        while True:
            self.path.append(len(node.items))
            node.items.append(self.value(depth + 1))
            self.path.pop()
            self.skip_ws()
            ch = self.text[self.pos : self.pos + 1]
            if ch == ",":
                self.pos += 1
                continue
            if ch == "]":
                self.pos += 1
                return node
            raise self.fail(f"expected `,` or `]` in array, found {self.describe_here()}")


def parse_json(
    text: str,
    file: str,
    problems: Problems,
    on_string: Callable[[str, Loc, str], Node] | None = None,
    *,
    keep_duplicates: bool = False,
) -> Node | None:
    """Parse ``text``; syntax errors and duplicate keys go to ``problems``.

    ``on_string`` turns each string value (not keys) into a node, which is how
    Packer's ``{{ }}`` templates are parsed as they are read.
    """
    reader = _Reader(text, file, on_string, keep_duplicates)
    try:
        node = reader.value(0)
        reader.skip_ws()
        if reader.pos < len(text):
            raise reader.fail(f"unexpected {reader.describe_here()} after the JSON document")
    except JsonSyntaxError as error:
        problems.add(error.loc, "", f"invalid JSON: {error.message}")
        return None
    for loc, key in reader.duplicates:
        problems.add(loc, key, "duplicate key (it is already set above in this object)")
    return node
