"""amibake TOML -> :class:`RawTemplate`.

Layout::

    [variables]                       # name = default, or a table for more
    region = "us-east-1"
    [variables.secret]
    default = "..."
    sensitive = true

    [locals]
    stamp = "${formatdate(\"YYYYMMDD\", timestamp())}"

    [[builders]]
    type = "amazon-ebs"
    ami_name = "web-${unix_timestamp()}"

    [[provisioners]] / [[post_processors]] / [error_cleanup_provisioner]

Strings are HCL2 string templates: ``${var.x}``, ``${local.x}``, functions;
``$${`` is a literal ``${``. tomllib parses the document; it keeps no
positions, so :class:`TomlLocator` finds each key's line by scanning table
headers and ``key =`` lines (values inside inline tables and multi-line arrays
point at their key).
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from typing import Any

from amibake.core.templates.errors import Loc, Problems, suggest
from amibake.core.templates.hclexpr import HclSyntaxError, parse_template
from amibake.core.templates.nodes import (
    BadNode,
    ListNode,
    MapNode,
    Node,
    RawTemplate,
    Scalar,
    Section,
    VariableDecl,
    expr_to_node,
)

TOP_LEVEL_KEYS = (
    "variables",
    "locals",
    "builders",
    "provisioners",
    "post_processors",
    "error_cleanup_provisioner",
    "description",
)
VARIABLE_KEYS = ("default", "sensitive", "description", "type")

_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_LINE = re.compile(rf"^(\s*)({_KEY}(?:\s*\.\s*{_KEY})*)\s*=\s*")
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]\]?")
_PART = re.compile(_KEY)


def _split_key(text: str) -> tuple[str, ...]:
    parts = []
    for m in _PART.finditer(text):
        part = m.group(0)
        if part.startswith('"'):
            try:
                part = tomllib.loads(f"k = {part}")["k"]
            except tomllib.TOMLDecodeError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


class TomlLocator:
    """Maps key paths (with array-of-table indexes) to where they are written."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.where: dict[tuple[Any, ...], Loc] = {}
        self.value_where: dict[tuple[Any, ...], Loc] = {}
        counts: dict[tuple[Any, ...], int] = {}
        table: tuple[Any, ...] = ()
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER.match(line)
            if header and not _KEY_LINE.match(line):
                keys = _split_key(header.group(2))
                resolved: tuple[Any, ...] = ()
                for i, key in enumerate(keys):
                    resolved += (key,)
                    last = i == len(keys) - 1
                    if resolved in counts and not (last and header.group(1) == "[["):
                        resolved += (counts[resolved] - 1,)
                if header.group(1) == "[[":
                    index = counts.get(resolved, 0)
                    counts[resolved] = index + 1
                    self.where.setdefault(resolved, Loc(file, number, 1))
                    resolved += (index,)
                table = resolved
                self.where[table] = Loc(file, number, 1)
                continue
            m = _KEY_LINE.match(line)
            if m:
                path = table + _split_key(m.group(2))
                self.where.setdefault(path, Loc(file, number, len(m.group(1)) + 1))
                self.value_where.setdefault(path, Loc(file, number, m.end() + 1))
                rest = line[m.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote
                        break

    def key(self, path: tuple[Any, ...]) -> Loc:
        return self._find(path, self.where)

    def value(self, path: tuple[Any, ...]) -> Loc:
        if path in self.value_where:
            return self.value_where[path]
        return self._find(path, self.where)

    def _find(self, path: tuple[Any, ...], table: dict[tuple[Any, ...], Loc]) -> Loc:
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.value_where:
                return self.value_where[probe]
            probe = probe[:-1]
        return Loc(self.file, 1, 1)


def _decode_error_loc(error: tomllib.TOMLDecodeError, file: str) -> tuple[Loc, str]:
    message = str(error)
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if m:
        return Loc(file, int(m.group(1)), int(m.group(2))), message[: m.start()].strip()
    m = re.search(r"\(at end of document\)", message)
    return Loc(file, 1, 1), message.replace("(at end of document)", "at end of document").strip()


class TomlReader:
    def __init__(self, text: str, file: str, problems: Problems) -> None:
        self.text = text
        self.file = file
        self.problems = problems
        self.locator = TomlLocator(text, file)

    def node(self, value: Any, path: tuple[Any, ...], shown: str) -> Node:
        loc = self.locator.value(path)
        if isinstance(value, str):
            try:
                return expr_to_node(parse_template(value, loc, cols_known=False))
            except HclSyntaxError as error:
                self.problems.add(error.loc, shown, error.message)
                return BadNode(loc)
        if isinstance(value, bool | int | float):
            return Scalar(value, loc)
        if isinstance(value, list):
            return ListNode(
                [self.node(v, (*path, i), f"{shown}[{i}]") for i, v in enumerate(value)], loc
            )
        if isinstance(value, dict):
            node = MapNode({}, self.locator.key(path))
            for key, item in value.items():
                node.entries[key] = self.node(
                    item, (*path, key), f"{shown}.{key}" if shown else key
                )
                node.key_locs[key] = self.locator.key((*path, key))
            return node
        if isinstance(value, _dt.date | _dt.time):
            self.problems.add(loc, shown, "dates and times are not supported; write a string")
            return BadNode(loc)
        self.problems.add(loc, shown, "unsupported value")  # pragma: no cover
        return BadNode(loc)

    def read(self) -> RawTemplate | None:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as error:
            loc, message = _decode_error_loc(error, self.file)
            self.problems.add(loc, "", f"invalid TOML: {message}")
            return None
        raw = RawTemplate(self.file, "toml", loc=Loc(self.file, 1, 1))
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.problems.add(
                    self.locator.key((key,)),
                    key,
                    f"unknown top-level key `{key}`{suggest(key, TOP_LEVEL_KEYS)}",
                )
        self.variables(data.get("variables"), raw)
        local_values = data.get("locals", {})
        if not isinstance(local_values, dict):
            self.problems.add(self.locator.key(("locals",)), "locals", "expected a table")
        else:
            for name, value in local_values.items():
                raw.locals[name] = self.node(value, ("locals", name), f"local.{name}")
                raw.local_locs[name] = self.locator.key(("locals", name))
        raw.builders = self.sections(data.get("builders"), "builders")
        if not raw.builders and "builders" not in data:
            self.problems.add(
                Loc(self.file, 1, 1), "builders", "a template needs at least one builder"
            )
        for section in raw.builders:
            name = section.body.entries.pop("name", None)
            if name is not None:
                section.body.key_locs.pop("name", None)
                if isinstance(name, Scalar) and isinstance(name.value, str) and name.value:
                    section.name = name.value
                else:
                    self.problems.add(
                        name.loc, f"{section.path}.name", "expected a non-empty string"
                    )
        raw.provisioners = self.sections(data.get("provisioners"), "provisioners")
        raw.post_processors = self.sections(data.get("post_processors"), "post_processors")
        cleanup = data.get("error_cleanup_provisioner")
        if cleanup is not None:
            if isinstance(cleanup, dict):
                raw.error_cleanup_provisioner = self.section(
                    cleanup, ("error_cleanup_provisioner",), "error_cleanup_provisioner"
                )
            else:
                self.problems.add(
                    self.locator.key(("error_cleanup_provisioner",)),
                    "error_cleanup_provisioner",
                    "expected a table",
                )
        return raw

    def variables(self, value: Any, raw: RawTemplate) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.problems.add(self.locator.key(("variables",)), "variables", "expected a table")
            return
        for name, spec in value.items():
            path = ("variables", name)
            decl = VariableDecl(name, self.locator.key(path))
            if isinstance(spec, dict):
                for key in spec:
                    if key not in VARIABLE_KEYS:
                        self.problems.add(
                            self.locator.key((*path, key)),
                            f"variables.{name}.{key}",
                            f"unknown key `{key}`{suggest(key, VARIABLE_KEYS)}",
                        )
                if "default" in spec:
                    decl.default = self.node(spec["default"], (*path, "default"), f"var.{name}")
                    decl.has_default = True
                for key, kind in (("sensitive", bool), ("description", str), ("type", str)):
                    if key in spec and not isinstance(spec[key], kind):
                        self.problems.add(
                            self.locator.value((*path, key)),
                            f"variables.{name}.{key}",
                            f"expected {'true or false' if kind is bool else 'a string'}",
                        )
                decl.sensitive = spec.get("sensitive") is True
                if isinstance(spec.get("description"), str):
                    decl.description = spec["description"]
                if isinstance(spec.get("type"), str):
                    decl.type = spec["type"]
            else:
                decl.default = self.node(spec, path, f"var.{name}")
                decl.has_default = True
            raw.variables[name] = decl

    def sections(self, value: Any, key: str) -> list[Section]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.add(self.locator.key((key,)), key, f"expected [[{key}]] tables")
            return []
        out = []
        for i, item in enumerate(value):
            section = self.section(item, (key, i), f"{key}[{i}]")
            if section is not None:
                out.append(section)
        return out

    def section(self, item: dict[str, Any], path: tuple[Any, ...], shown: str) -> Section | None:
        body = self.node(item, path, shown)
        assert isinstance(body, MapNode)
        type_node = body.entries.pop("type", None)
        body.key_locs.pop("type", None)
        if type_node is None:
            self.problems.add(body.loc, f"{shown}.type", "missing `type`")
            return None
        if not (isinstance(type_node, Scalar) and isinstance(type_node.value, str)):
            self.problems.add(type_node.loc, f"{shown}.type", "expected a literal string")
            return None
        return Section(type_node.value, body, shown, body.loc, type_loc=type_node.loc)


def read_toml(text: str, file: str, problems: Problems) -> RawTemplate | None:
    return TomlReader(text, file, problems).read()
