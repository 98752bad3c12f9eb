"""``load()``: a template file -> a validated :class:`~core.model.BuildSpec`."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.model import BuildSpec, FrozenMap, Variable, freeze
from core.templates.errors import Loc, Problems, TemplateError, suggest
from core.templates.evaluate import EvalError, Scope, to_bool, to_number
from core.templates.hcl import HclReader, read_hcl
from core.templates.hclexpr import HclSyntaxError, parse_expression, significant
from core.templates.jsonpos import parse_json
from core.templates.nodes import (
    BadNode,
    ListNode,
    MapNode,
    Node,
    RawTemplate,
    Scalar,
    Section,
    expr_to_node,
)
from core.templates.packer_json import read_json
from core.templates.schema import decode_builder, decode_post_processor, decode_provisioner
from core.templates.toml import TomlReader, read_toml

FORMATS = ("json", "hcl", "toml")
BUILDER_TYPES = ("amazon-ebs",)


def detect_format(path: Path, text: str) -> str:
    name = path.name.lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".hcl"):
        return "hcl"
    if name.endswith(".toml"):
        return "toml"
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    if any(word in text for word in ('source "', "build {", 'variable "', "locals {")):
        return "hcl"
    return "toml"


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TemplateError(
            [
                _problem(
                    Loc(str(path), *_line_col(data, error.start)), "", "the file is not UTF-8 text"
                )
            ]
        ) from None
    if "\x00" in text:
        raise TemplateError(
            [
                _problem(
                    Loc(str(path), *_line_col(data, data.index(0))),
                    "",
                    "the file contains NUL bytes",
                )
            ]
        )
    return text


def _problem(loc: Loc, path: str, message: str) -> Any:
    from core.templates.errors import Problem

    return Problem(loc, path, message)


def _line_col(data: bytes, index: int) -> tuple[int, int]:
    before = data[:index]
    line = before.count(b"\n") + 1
    col = index - (before.rfind(b"\n") + 1) + 1
    return line, col


def parse_raw(text: str, file: str, fmt: str, problems: Problems) -> RawTemplate | None:
    """Read a template into its format-neutral raw form (no evaluation yet)."""
    if fmt == "json":
        raw = read_json(text, file, problems)
    elif fmt == "hcl":
        raw = read_hcl(text, file, problems)
    else:
        raw = read_toml(text, file, problems)
    if raw is not None:
        for section in raw.builders:
            normalize_builder(section, problems)
    return raw


def normalize_builder(section: Section, problems: Problems) -> None:
    """Fold the seed's ``source_ami_filter_name`` / ``_type`` keys into ``source_ami_filter``.

    ``_name`` is the name wildcard and ``_type`` the owner; the newest match is
    used (``most_recent``), which is what a user writing a wildcard expects.
    """
    body = section.body
    name = body.entries.pop("source_ami_filter_name", None)
    owner = body.entries.pop("source_ami_filter_type", None)
    if name is None and owner is None:
        return
    name_loc = body.key_locs.pop("source_ami_filter_name", None)
    owner_loc = body.key_locs.pop("source_ami_filter_type", None)
    first = name_loc or owner_loc or body.loc
    if "source_ami_filter" in body.entries:
        problems.add(
            first,
            f"{section.path}.source_ami_filter",
            "use either `source_ami_filter` or `source_ami_filter_name`/`source_ami_filter_type`",
        )
        return
    filter_node = MapNode({}, first)
    if name is not None:
        filter_node.entries["filters"] = MapNode(
            {"name": name}, name.loc, {"name": name_loc or name.loc}
        )
        filter_node.key_locs["filters"] = name_loc or name.loc
    if owner is not None:
        filter_node.entries["owners"] = ListNode([owner], owner.loc)
        filter_node.key_locs["owners"] = owner_loc or owner.loc
    else:
        problems.add(
            first,
            f"{section.path}.source_ami_filter_type",
            "`source_ami_filter_type` (the AMI owner, e.g. amazon or canonical) is required "
            "with `source_ami_filter_name`",
        )
        filter_node.entries["owners"] = BadNode(first)
    filter_node.entries["most_recent"] = Scalar(True, first)
    filter_node.key_locs["most_recent"] = first
    body.entries["source_ami_filter"] = filter_node
    body.key_locs["source_ami_filter"] = first


# --------------------------------------------------------------------------- variables


def read_var_file(path: Path, problems: Problems) -> dict[str, Node]:
    """Values of a ``--var-file``: JSON, TOML or HCL (``.pkrvars.hcl``)."""
    text = read_text(path)
    file = str(path)
    values: dict[str, Node] = {}
    fmt = detect_format(path, text)
    if fmt == "json":
        node = parse_json(text, file, problems)
        if node is None:
            return values
        if not isinstance(node, MapNode):
            problems.add(node.loc, "", "a variable file holds a JSON object of names to values")
            return values
        return dict(node.entries)
    if fmt == "toml" and not path.name.endswith(".hcl"):
        reader = TomlReader(text, file, problems)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            reader.read()  # reports the syntax error with its position
            return values
        for key, value in data.items():
            values[key] = reader.node(value, (key,), key)
        return values
    hcl = HclReader(file, problems)
    hcl.text = text
    try:
        from core.templates.hclexpr import parse_tree

        tree = parse_tree(text, hcl.loc_fn)
        attributes, blocks = hcl.items(tree.children[0])
    except HclSyntaxError as error:
        problems.add(error.loc, "", error.message)
        return values
    for block in blocks:
        problems.add(block.loc, block.type, "a variable file holds only `name = value` lines")
    for name, _loc, value_tree in attributes:
        try:
            values[name] = hcl.value(value_tree)
        except HclSyntaxError as error:
            problems.add(error.loc, name, error.message)
    _ = significant
    return values


def _convert(value: Any, type_: str | None, loc: Loc) -> Any:
    """Apply a variable's type constraint to a value (strings from --var / env)."""
    if type_ is None:
        return value
    base = type_.split("(")[0].strip()
    if base == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise EvalError(loc, f"expected a string for this variable (type {type_})")
        return value
    if base == "number":
        return to_number(value, loc)
    if base == "bool":
        return to_bool(value, loc)
    if base in ("list", "set", "tuple") and not isinstance(value, list):
        raise EvalError(loc, f"expected a list for this variable (type {type_})")
    if base in ("map", "object") and not isinstance(value, dict):
        raise EvalError(loc, f"expected an object for this variable (type {type_})")
    return value


def _typed_text_node(text: str, type_: str | None, loc: Loc) -> Node:
    """A --var / PKR_VAR_ string: taken as is for strings, parsed as HCL for other types."""
    base = (type_ or "string").split("(")[0].strip()
    if base in ("string", "any", "number", "bool"):
        return Scalar(text, loc)
    return expr_to_node(parse_expression(text, loc))


def _leaf_strings(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaf_strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaf_strings(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


# --------------------------------------------------------------------------- load


def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    var_files: Sequence[str | os.PathLike[str]] = (),
    env: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
    uuid_factory: Callable[[], str] | None = None,
    format: str | None = None,
) -> BuildSpec:
    """Load, interpolate and validate a template.

    Variable precedence (later wins), as in Packer: the template's defaults,
    ``PKR_VAR_<name>`` environment variables, each of ``var_files`` in order,
    then ``vars`` (``--var k=v``) in order. ``env`` defaults to ``os.environ``
    and serves both ``PKR_VAR_*`` and ``env()`` / ``{{env}}``; ``now`` is the
    build run's single timestamp (default: the current UTC time).

    Raises :class:`TemplateError` (every problem, with file:line:col) or
    :class:`~core.errors.UsageError` for an unreadable file.
    """
    file_path = Path(path)
    text = read_text(file_path)
    return loads(
        text,
        file=str(file_path),
        format=format or detect_format(file_path, text),
        vars=vars,
        var_files=var_files,
        env=env,
        now=now,
        uuid_factory=uuid_factory,
        template_dir=file_path.parent.resolve() if file_path.parent else Path.cwd(),
    )


def loads(
    text: str,
    *,
    file: str = "<template>",
    format: str = "json",
    vars: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    var_files: Sequence[str | os.PathLike[str]] = (),
    env: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
    uuid_factory: Callable[[], str] | None = None,
    template_dir: Path | None = None,
) -> BuildSpec:
    """:func:`load` for text already in memory."""
    if format not in FORMATS:
        raise UsageError(f"unknown template format `{format}` (expected json, hcl or toml)")
    problems = Problems()
    raw = parse_raw(text, file, format, problems)
    if raw is None:
        problems.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover
    env = os.environ if env is None else env
    now = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC).replace(microsecond=0)
    return build_spec(
        raw,
        problems,
        vars=list(vars.items()) if isinstance(vars, Mapping) else list(vars),
        var_files=[Path(p) for p in var_files],
        env=env,
        now=now,
        uuid_factory=uuid_factory,
        template_dir=template_dir or Path.cwd(),
    )


def build_spec(
    raw: RawTemplate,
    problems: Problems,
    *,
    vars: list[tuple[str, str]],
    var_files: list[Path],
    env: Mapping[str, str],
    now: _dt.datetime,
    uuid_factory: Callable[[], str] | None,
    template_dir: Path,
) -> BuildSpec:
    decls = raw.variables
    chosen: dict[str, tuple[Node, str]] = {}
    for name, decl in decls.items():
        if decl.has_default and decl.default is not None:
            chosen[name] = (decl.default, "default")
    for name, decl in decls.items():
        value = env.get(f"PKR_VAR_{name}")
        if value is not None:
            loc = Loc(f"<env PKR_VAR_{name}>", 1, 1)
            try:
                chosen[name] = (_typed_text_node(value, decl.type, loc), "env")
            except HclSyntaxError as error:
                problems.add(error.loc, f"var.{name}", error.message)
    for var_file in var_files:
        for name, node in read_var_file(var_file, problems).items():
            if name not in decls:
                problems.add(
                    node.loc,
                    name,
                    f"`{name}` is not a variable of the template{suggest(name, decls)}",
                )
                continue
            chosen[name] = (node, f"var-file:{var_file}")
    for position, (name, value) in enumerate(vars, start=1):
        loc = Loc("<command line>", 1, position)
        if name not in decls:
            problems.add(
                loc,
                f"--var {name}",
                f"`{name}` is not a variable of the template{suggest(name, decls)}",
            )
            continue
        try:
            chosen[name] = (_typed_text_node(value, decls[name].type, loc), "cli")
        except HclSyntaxError as error:
            problems.add(error.loc, f"--var {name}", error.message)

    scope: Scope

    def getter(name: str) -> Callable[[], Any]:
        def get() -> Any:
            node, _origin = chosen[name]
            return _convert(scope.node_value(node), decls[name].type, node.loc)

        return get

    missing = [name for name in decls if name not in chosen]
    for name in missing:
        decl = decls[name]
        problems.add(
            decl.loc,
            f"var.{name}",
            f"variable `{name}` has no value: set it with --var {name}=..., a --var-file "
            f"or PKR_VAR_{name}",
        )
    scope = Scope(
        variables={name: getter(name) for name in chosen},
        locals_=raw.locals,
        now=now,
        env=env,
        uuid_factory=uuid_factory,
        template_dir=template_dir,
        unset=missing,
    )
    variables: dict[str, Variable] = {}
    sensitive: set[str] = set()
    for name, decl in decls.items():
        if name not in chosen:
            continue
        try:
            value = scope.variable(name, decl.loc)
        except EvalError as error:
            if not error.reported:
                problems.add(error.loc, f"var.{name}", error.message)
            continue
        variables[name] = Variable(
            name=name,
            value=freeze(value),
            sensitive=decl.sensitive,
            description=decl.description,
            type=decl.type,
            origin=chosen[name][1],
        )
        if decl.sensitive:
            sensitive.update(_leaf_strings(value))

    def resolve(node: Node, path: str) -> Node:
        errors: list[tuple[EvalError, str]] = []
        result = scope.resolve(node, errors, path)
        for error, where in errors:
            problems.add(error.loc, where, error.message)
        return result

    builders = []
    seen_names: dict[str, Loc] = {}
    for section in raw.builders:
        name = section.name or section.type
        if section.type not in BUILDER_TYPES:
            problems.add(
                section.type_loc or section.loc,
                f"{section.path}.type",
                f"builder type `{section.type}` is not supported: amibake builds amazon-ebs images"
                f"{suggest(section.type, BUILDER_TYPES)}",
            )
            continue
        if name in seen_names:
            problems.add(
                section.loc,
                f"{section.path}.name",
                f"two builders are named `{name}`; give each a unique `name`",
            )
        seen_names[name] = section.loc
        scope.source = {"name": name, "type": section.type}
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        builder = decode_builder(section.type, name, body, section.path, problems)
        if builder is not None:
            builders.append(builder)
    scope.source = (
        {"name": raw.builders[0].name or raw.builders[0].type, "type": raw.builders[0].type}
        if len(raw.builders) == 1
        else None
    )

    def selectors_ok(body: MapNode, path: str) -> None:
        known = [b.name or b.type for b in raw.builders] + [
            f"{b.type}.{b.name or b.type}" for b in raw.builders
        ]
        for key in ("only", "except"):
            node = body.entries.get(key)
            if isinstance(node, ListNode):
                for item in node.items:
                    if (
                        isinstance(item, Scalar)
                        and isinstance(item.value, str)
                        and item.value not in known
                    ):
                        problems.add(
                            item.loc,
                            f"{path}.{key}",
                            f"no builder is named `{item.value}`{suggest(item.value, known)}",
                        )

    provisioners = []
    for section in raw.provisioners:
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        selectors_ok(body, section.path)
        provisioner = decode_provisioner(
            section.type, body, section.path, section.type_loc or section.loc, problems
        )
        if provisioner is not None:
            provisioners.append(provisioner)
    cleanup = None
    if raw.error_cleanup_provisioner is not None:
        section = raw.error_cleanup_provisioner
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        cleanup = decode_provisioner(
            section.type, body, section.path, section.type_loc or section.loc, problems
        )
    post_processors = []
    for section in raw.post_processors:
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        selectors_ok(body, section.path)
        post = decode_post_processor(
            section.type, body, section.path, section.type_loc or section.loc, problems
        )
        if post is not None:
            post_processors.append(post)
    # locals that nothing used are still checked, so a typo there is not silent
    for name, node in raw.locals.items():
        try:
            scope.local(name, raw.local_locs.get(name, node.loc))
        except EvalError as error:
            if not error.reported:
                problems.add(error.loc, f"local.{name}", error.message)
    if not builders and not problems:
        problems.add(raw.loc or Loc(raw.file), "builders", "a template needs at least one builder")
    problems.raise_if_any()
    return BuildSpec(
        variables=FrozenMap(variables),
        builders=tuple(builders),
        provisioners=tuple(provisioners),
        post_processors=tuple(post_processors),
        error_cleanup_provisioner=cleanup,
        sensitive_values=frozenset(s for s in sensitive if s),
        build_time=now,
        source_file=Path(raw.file),
        source_format=raw.format,  # type: ignore[arg-type]
        warnings=tuple(str(w) for w in problems.warnings),
    )


_ = json
