"""``load()``: a template file -> a validated :class:`~amibake.core.model.BuildSpec`."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from amibake.core.errors import UsageError
from amibake.core.model import BuildSpec, FrozenMap, Variable, freeze
from amibake.core.paths import expand_home
from amibake.core.templates.datasources import (
    DataSourceResolver,
    DataSources,
    aws_secret_function,
    unknown_paths,
)
from amibake.core.templates.errors import Loc, Problems, TemplateError, suggest
from amibake.core.templates.evaluate import EvalError, Scope
from amibake.core.templates.gotemplate import BUILD_NAME_KEY
from amibake.core.templates.hcl import (
    HclReader,
    prepare_hcl,
    read_hcl,
    validate_variable,
    with_builders,
)
from amibake.core.templates.hclexpr import HclSyntaxError, significant
from amibake.core.templates.hcltypes import (
    typed_text_node,
    variable_type,
    variable_value,
)
from amibake.core.templates.jsonpos import parse_json
from amibake.core.templates.nodes import (
    BadNode,
    ListNode,
    MapNode,
    Node,
    RawTemplate,
    Scalar,
    Section,
    VariableDecl,
)
from amibake.core.templates.packer_json import read_json
from amibake.core.templates.paths import checkable, local_file_options, path_under, root_of
from amibake.core.templates.schema import (
    check_ansible_login,
    decode_builder,
    decode_post_processor,
    decode_provisioner,
    is_true,
)
from amibake.core.templates.toml import TomlReader, read_toml

FORMATS = ("json", "hcl", "toml")
BUILDER_TYPES = ("amazon-ebs",)


def detect_format(path: Path, text: str) -> str:
    name = path.name.lower()
    if name.endswith(".pkr.json"):  # Packer: HCL2 in its JSON syntax; a plain .json is legacy
        return "hcl"
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
    from amibake.core.templates.errors import Problem

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
        from amibake.core.templates.hclexpr import parse_tree

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


def _typed_text_node(text: str, decl: VariableDecl | None, loc: Loc) -> Node:
    """A --var / PKR_VAR_ string: taken as is for string/number/any, else parsed as HCL."""
    return typed_text_node(text, variable_type(decl), loc)


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

#: What Packer reads from a folder: templates, then the var-files it loads by itself.
TEMPLATE_SUFFIXES = (".pkr.hcl", ".pkr.json")
AUTO_VAR_SUFFIXES = (".auto.pkrvars.hcl", ".auto.pkrvars.json")


def folder_files(directory: Path, suffixes: tuple[str, str]) -> list[Path]:
    """The files of ``directory`` ending in ``suffixes`` as Packer lists them.

    Packer (hcl2template ``GetHCL2Files``) takes every file ending in the HCL
    suffix, then every one ending in the JSON suffix, each group in lexical
    order; sub-folders are not read.
    """
    try:
        names = sorted(
            entry.name for entry in os.scandir(directory) if not entry.is_dir(follow_symlinks=False)
        )
    except OSError as error:
        raise UsageError(f"cannot read {directory}: {error.strerror or error}") from None
    hcl_suffix, json_suffix = suffixes
    return [directory / n for n in names if n.endswith(hcl_suffix)] + [
        directory / n for n in names if n.endswith(json_suffix)
    ]


def template_folder(path: Path) -> Path | None:
    """The folder template ``path`` belongs to: ``path`` itself when it is a folder."""
    return path if path.is_dir() else None


def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    var_files: Sequence[str | os.PathLike[str]] = (),
    env: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
    uuid_factory: Callable[[], str] | None = None,
    format: str | None = None,
    warn_undeclared_vars: bool = True,
    unsaved: Mapping[str | os.PathLike[str], str] | None = None,
    datasources: DataSourceResolver | None = None,
) -> BuildSpec:
    """Load, interpolate and validate a template: a file, or a folder of them.

    A folder is read as Packer reads one: every ``*.pkr.hcl`` then every
    ``*.pkr.json`` in it (each group in lexical order) as one HCL2 template, and
    its ``*.auto.pkrvars.hcl`` then ``*.auto.pkrvars.json`` files as var-files
    that come before ``var_files``.

    Variable precedence (later wins), as Packer implements it
    (hcl2template ``collectInputVariableValues``): the template's defaults,
    ``PKR_VAR_<name>`` environment variables (HCL2 and TOML templates only:
    Packer's legacy JSON reads none), the folder's auto var-files, each of
    ``var_files`` in order, then ``vars`` (``--var k=v``; the last one of a
    name wins). Packer keeps ``-var`` in a map applied after every var-file,
    whatever the order of ``-var`` and ``-var-file`` on its command line.

    A var-file setting a variable the template does not declare is a warning
    (``warn_undeclared_vars``; Packer's ``validate`` warns, its ``build`` only
    with ``-warn-on-undeclared-var``); an undeclared ``--var`` is an error. A
    legacy JSON template takes both silently, as Packer does: they are user
    variables ``{{user}}`` can read. ``env`` defaults to ``os.environ`` and
    serves both ``PKR_VAR_*`` and ``env()`` / ``{{env}}``; ``now`` is the build
    run's single timestamp (default: the current UTC time). ``unsaved`` maps
    template files to texts to read instead of the files' contents (an editor's
    buffers).

    Raises :class:`TemplateError` (every problem, with file:line:col) or
    :class:`~amibake.core.errors.UsageError` for an unreadable file or an empty folder.
    """
    file_path = Path(path)
    buffers = {Path(k): v for k, v in (unsaved or {}).items()}

    def text_of(file: Path) -> str:
        return buffers[file] if file in buffers else read_text(file)

    common: dict[str, Any] = {
        "vars": vars,
        "var_files": var_files,
        "env": env,
        "now": now,
        "uuid_factory": uuid_factory,
        "warn_undeclared_vars": warn_undeclared_vars,
        "datasources": datasources,
    }
    folder = template_folder(file_path)
    if folder is not None:
        if format not in (None, "hcl"):
            raise UsageError(f"{folder}: a folder template is HCL2, not `{format}`")
        files = folder_files(folder, TEMPLATE_SUFFIXES)
        if not files:
            raise UsageError(f"{folder}: no *.pkr.hcl or *.pkr.json file in this folder")
        return _load_hcl_files(
            [(text_of(f), str(f)) for f in files],
            name=str(folder),
            base=folder,
            auto_var_files=folder_files(folder, AUTO_VAR_SUFFIXES),
            **common,
        )
    text = text_of(file_path)
    return loads(
        text,
        file=str(file_path),
        format=format or detect_format(file_path, text),
        template_dir=file_path.parent.resolve() if file_path.parent else Path.cwd(),
        **common,
    )


def _load_hcl_files(
    sources: list[tuple[str, str]],
    *,
    name: str,
    base: Path,
    auto_var_files: Sequence[Path],
    vars: Mapping[str, str] | Sequence[tuple[str, str]],
    var_files: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None,
    now: _dt.datetime | None,
    uuid_factory: Callable[[], str] | None,
    warn_undeclared_vars: bool,
    datasources: DataSourceResolver | None = None,
) -> BuildSpec:
    """Several HCL2 files (text, file name) read as one template named ``name``."""
    from amibake.core.templates.hcl import read_hcl_files

    problems = Problems()
    raw = read_hcl_files(sources, problems)
    if raw is None:
        problems.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover
    raw.file = name
    for section in raw.builders:
        normalize_builder(section, problems)
    return build_spec(
        raw,
        problems,
        vars=list(vars.items()) if isinstance(vars, Mapping) else list(vars),
        var_files=[Path(p) for p in var_files],
        env=os.environ if env is None else env,
        now=(now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC).replace(microsecond=0),
        uuid_factory=uuid_factory,
        template_dir=base.resolve(),
        auto_var_files=list(auto_var_files),
        warn_undeclared_vars=warn_undeclared_vars,
        datasources=datasources,
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
    warn_undeclared_vars: bool = True,
    datasources: DataSourceResolver | None = None,
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
        warn_undeclared_vars=warn_undeclared_vars,
        datasources=datasources,
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
    auto_var_files: Sequence[Path] = (),
    warn_undeclared_vars: bool = True,
    datasources: DataSourceResolver | None = None,
) -> BuildSpec:
    """The raw template evaluated into a BuildSpec.

    ``datasources`` evaluates ``data`` blocks against a target; without it they
    are checked by shape only and their outputs are unknown (see
    :mod:`amibake.core.templates.datasources`; ``BuildSpec.unresolved`` lists what they
    left unknown).
    """
    decls = raw.variables
    chosen: dict[str, tuple[Node, str]] = {}
    for name, decl in decls.items():
        if decl.has_default and decl.default is not None:
            chosen[name] = (decl.default, "default")
    # Packer's legacy JSON core reads no PKR_VAR_ and takes variables it does not declare
    # (from -var or a var-file) as user variables; HCL2 (and amibake's TOML) declare them all.
    legacy = raw.format == "json"
    if not legacy:
        for name, decl in decls.items():
            value = env.get(f"PKR_VAR_{name}")
            if value is not None:
                loc = Loc(f"<env PKR_VAR_{name}>", 1, 1)
                try:
                    chosen[name] = (_typed_text_node(value, decl, loc), "env")
                except HclSyntaxError as error:
                    problems.add(error.loc, f"var.{name}", error.message)
    layers = [(p, "auto-var-file") for p in auto_var_files] + [(p, "var-file") for p in var_files]
    for var_file, kind in layers:
        for name, node in read_var_file(var_file, problems).items():
            if name not in decls and not legacy:
                if warn_undeclared_vars:
                    problems.warn(
                        node.loc,
                        name,
                        f"undefined variable: `{name}` is set but the template does not "
                        f"declare it{suggest(name, decls)}",
                    )
                continue
            if legacy and isinstance(node, Scalar) and node.value is None:
                node = Scalar("", node.loc)  # Packer reads a var-file into strings: null is ""
            chosen[name] = (node, f"{kind}:{var_file}")
    # Packer keeps -var in a map applied after every var-file: the last -var of a name wins.
    undeclared: set[str] = set()
    for position, (name, value) in enumerate(vars, start=1):
        loc = Loc("<command line>", 1, position)
        if name not in decls and not legacy:
            if name not in undeclared:
                undeclared.add(name)
                problems.add(
                    loc,
                    f"--var {name}",
                    f"`{name}` is not a variable of the template{suggest(name, decls)}",
                )
            continue
        try:
            chosen[name] = (_typed_text_node(value, decls.get(name), loc), "cli")
        except HclSyntaxError as error:
            problems.add(error.loc, f"--var {name}", error.message)

    scope: Scope

    def getter(name: str) -> Callable[[], Any]:
        def get() -> Any:
            node, origin = chosen[name]
            decl = decls.get(name)  # None: a legacy JSON user variable set but not declared
            # HCL2/TOML: an untyped variable takes its default's type (Packer), -var text too
            return variable_value(
                node,
                decl,
                scope.node_value,
                infer=not legacy and origin != "default",
                from_text=origin in ("cli", "env"),
            )

        return get

    for name, decl in decls.items():
        if decl.undeclared_hint and chosen.get(name, (None, "default"))[1] == "default":
            problems.warn(
                decl.loc,
                f"user `{name}`",
                f"`{name}` is not declared in `variables`: it is empty unless --var or "
                f"--var-file sets it{decl.undeclared_hint}",
            )
    missing = [name for name in decls if name not in chosen]
    for name in missing:
        decl = decls[name]
        problems.add(
            decl.loc,
            f"var.{name}",
            f"variable `{name}` has no value: set it with --var {name}=..."
            + (" or a --var-file" if legacy else f", a --var-file or PKR_VAR_{name}"),
        )
    data_sources = DataSources(raw.data_sources, problems, datasources)
    data_sources.check_types()
    scope = Scope(
        variables={name: getter(name) for name in chosen},
        locals_=raw.locals,
        now=now,
        env=env,
        uuid_factory=uuid_factory,
        template_dir=template_dir,
        unset=missing,
        data_sources=data_sources.getters(),
        aws_secret=aws_secret_function(datasources),  # what aws_secretsmanager() reads through
    )
    data_sources.scope = scope
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
        validate_variable(decl, value, chosen[name][0].loc, scope.node_value, problems)

    # Every data source runs once, in dependency order (Packer runs them all, used or not).
    for key, section in raw.data_sources.items():
        try:
            scope.data_source(key, section.loc)
        except EvalError as error:
            if not error.reported:
                problems.add(error.loc, section.path, error.message)
    unresolved: list[str] = []

    def resolve(node: Node, path: str) -> Node:
        errors: list[tuple[EvalError, str]] = []
        result = scope.resolve(node, errors, path)
        for error, where in errors:
            problems.add(error.loc, where, error.message)
        unknown_paths(result, path, unresolved)
        return result

    prepare_hcl(raw, scope.node_value, problems)  # HCL2 builds and dynamic blocks
    skip_other_builders(raw, problems)
    #: (section, resolved body) of every builder, provisioner and post-processor read
    resolved_sections: list[tuple[Section, MapNode]] = []
    builders = []
    seen_names: dict[str, Loc] = {}
    for section in raw.builders:
        name = builder_name(section, resolve) or section.type
        if section.type not in BUILDER_TYPES:
            continue  # skipped (a warning) or a typo (an error): see skip_other_builders
        if name in seen_names:
            problems.add(
                section.loc,
                f"{section.path}.name",
                f"two builders are named `{name}`; give each a unique `name`",
            )
        seen_names[name] = section.loc
        build_name = section.build_name or name
        scope.source = {"name": name, "type": section.type, BUILD_NAME_KEY: build_name}
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        resolved_sections.append((section, body))
        region_from_env(body, section.path, env, problems)
        builder = decode_builder(
            section.type, name, body, section.path, problems, render=scope.eval
        )
        if builder is not None:
            if section.packer_name:
                builder = dataclasses.replace(builder, packer_name=section.packer_name)
            if build_name != name:
                builder = dataclasses.replace(builder, build_name=build_name)
            builders.append(builder)
    ebs = [b for b in raw.builders if b.type in BUILDER_TYPES]
    scope.source = (
        {
            "name": ebs[0].name or ebs[0].type,
            "type": ebs[0].type,
            BUILD_NAME_KEY: ebs[0].build_name or ebs[0].name or ebs[0].type,
        }
        if len(ebs) == 1
        else None
    )

    def selectors_ok(body: MapNode, path: str) -> None:
        if raw.format == "hcl":
            return  # Packer's HCL2 checks no names there (OnlyExcept.Validate); hcl.py skips
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

    hcl = raw.format == "hcl"

    def where(section: Section) -> Loc:
        return section.type_loc or section.loc

    provisioners = []
    for section in raw.provisioners:
        if bound_to_skipped_builders(section, raw, problems):
            continue
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        resolved_sections.append((section, body))
        selectors_ok(body, section.path)
        names = None if hcl else [b.name for b in builders]
        provisioner = decode_provisioner(
            section.type, body, section.path, where(section), problems, hcl=hcl, builders=names
        )
        if provisioner is not None:
            provisioner = with_builders(provisioner, section)
            check_ansible_login(
                provisioner, builders, section.type_loc or section.loc, section.path, problems
            )
            provisioners.append(provisioner)
    cleanup = None
    if raw.error_cleanup_provisioner is not None:
        section = raw.error_cleanup_provisioner
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        resolved_sections.append((section, body))
        cleanup = decode_provisioner(
            section.type, body, section.path, where(section), problems, hcl=hcl
        )
        cleanup = with_builders(cleanup, section)
    post_processors = []
    for section in raw.post_processors:
        if bound_to_skipped_builders(section, raw, problems):
            continue
        body = resolve(section.body, section.path)
        assert isinstance(body, MapNode)
        resolved_sections.append((section, body))
        selectors_ok(body, section.path)
        post = decode_post_processor(
            section.type, body, section.path, where(section), problems, hcl=hcl
        )
        if post is not None:
            post_processors.append(with_builders(post, section))
    # locals that nothing used are still checked, so a typo there is not silent
    for name, node in raw.locals.items():
        try:
            value = scope.local(name, raw.local_locs.get(name, node.loc))
        except EvalError as error:
            if not error.reported:
                problems.add(error.loc, f"local.{name}", error.message)
            continue
        if name in raw.sensitive_locals:  # `local "x" { sensitive = true }`
            sensitive.update(_leaf_strings(value))
    missing_local_files(raw, resolved_sections, problems)
    for builder in builders:  # template credentials are secrets (issue 12)
        sensitive.update(builder.access.secrets())
        sensitive.update(builder.ssh_secrets())
    sensitive.update(data_sources.secrets)
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
        source_format=raw.format,
        warnings=tuple(str(w) for w in problems.warnings),
        unresolved=tuple(unresolved),
    )


_ = json


def missing_local_files(
    raw: RawTemplate, sections: Sequence[tuple[Section, MapNode]], problems: Problems
) -> None:
    """A warning, located, for each local file a section names that is not there: Packer's
    validate fails on them ("Bad script", "Bad source"); a build stops on them before it
    creates anything (amibake.core.engine.local_files). A warning here, as a template is
    often checked away from the files it will be built with."""
    root = root_of(Path(raw.file))
    for section, body in sections:
        direction = body.entries.get("direction")
        options = local_file_options(
            section.type,
            direction.value if isinstance(direction, Scalar) else None,
            is_true(body.entries.get("generated")),
        )
        for key in options:
            node = body.entries.get(key)
            items = node.items if isinstance(node, ListNode) else [node] if node else []
            for item in items:
                if not isinstance(item, Scalar) or not isinstance(item.value, str):
                    continue
                text = item.value
                if not checkable(text) or path_under(root, text).exists():
                    continue
                problems.warn(
                    item.loc,
                    f"{section.path}.{key}",
                    f"`{text}` is not there (in {Path.cwd()} or {root.resolve()}): Packer's "
                    "validate fails on it, and a build stops on it before creating anything",
                )


# --------------------------------------------------------------------------- other builder types

#: Packer builder types near `amazon-ebs` that are real (skipped, not taken for typos).
OTHER_AMAZON_BUILDERS = (
    "amazon-ebssurrogate",
    "amazon-ebsvolume",
    "amazon-instance",
    "amazon-chroot",
)


def skip_other_builders(raw: RawTemplate, problems: Problems) -> None:
    """Builders of other types are skipped with one warning line each, as amibake builds
    amazon-ebs only; the template stays valid while one amazon-ebs builder remains."""
    found: list[str] = []
    for section in raw.builders:
        if section.type in BUILDER_TYPES:
            continue
        loc = section.type_loc or section.loc
        hint = suggest(section.type, BUILDER_TYPES)
        if hint and section.type not in OTHER_AMAZON_BUILDERS:
            problems.add(
                loc, f"{section.path}.type", f"unknown builder type `{section.type}`{hint}"
            )
            continue
        found.append(section.type)
        problems.warn(
            loc, f"{section.path}.type", f"skipping {section.type}: amibake builds amazon-ebs"
        )
    if found and not any(s.type in BUILDER_TYPES for s in raw.builders):
        first = next(s for s in raw.builders if s.type not in BUILDER_TYPES)
        problems.add(
            first.type_loc or first.loc,
            "builders",
            "no amazon-ebs build in this template: builder types "
            f"{', '.join(dict.fromkeys(found))} are not supported yet by amibake",
        )


def _selector_names(section: Section, key: str) -> list[str] | None:
    node = section.body.entries.get(key)
    if node is None:
        return None
    items = node.items if isinstance(node, ListNode) else [node]
    names = [i.value for i in items if isinstance(i, Scalar) and isinstance(i.value, str)]
    return names if len(names) == len(items) else None


def bound_to_skipped_builders(section: Section, raw: RawTemplate, problems: Problems) -> bool:
    """Whether ``only``/``except`` bind this provisioner/post-processor to skipped builders only.

    Such an entry is skipped with a warning and not decoded, as it would never run here.
    """
    every = []
    for builder in raw.builders:
        name = builder.name or builder.type
        every.append(({name, f"{builder.type}.{name}", f"source.{builder.type}.{name}"}, builder))
    only = _selector_names(section, "only")
    excluded = _selector_names(section, "except")
    if only is not None:
        applies = [b for names, b in every if names & set(only)]
        if not applies:
            return False  # names no builder at all: reported as such later
    elif excluded is not None:
        applies = [b for names, b in every if not names & set(excluded)]
    else:
        return False
    if not applies or any(b.type in BUILDER_TYPES for b in applies):
        return False  # runs for an amazon-ebs builder, or for none at all (as Packer has it)
    if not any(b.type in BUILDER_TYPES for b in raw.builders):
        return True  # the missing amazon-ebs builder is the one problem to report
    targets = ", ".join(dict.fromkeys(b.name or b.type for b in applies))
    problems.warn(
        section.type_loc or section.loc,
        section.path,
        f"skipping {section.type}: it runs only for {targets}, which amibake skips",
    )
    return True


def profile_region(profile: str, env: Mapping[str, str]) -> str | None:
    """The ``region`` of an AWS profile in the shared config file (botocore's reader).

    The file is ``AWS_CONFIG_FILE`` or ``$HOME/.aws/config`` from ``env`` (never the
    network); a missing or unreadable file, or a profile without a region, gives None.
    """
    from botocore.configloader import load_config
    from botocore.exceptions import BotoCoreError

    file = env.get("AWS_CONFIG_FILE") or (
        str(Path(env["HOME"]) / ".aws" / "config") if env.get("HOME") else None
    )
    if not file or not expand_home(file).is_file():
        return None
    try:
        config = load_config(file)
    except (BotoCoreError, OSError, ValueError):
        return None
    region = config.get("profiles", {}).get(profile, {}).get("region")
    return region if isinstance(region, str) and region else None


def region_from_env(body: MapNode, path: str, env: Mapping[str, str], problems: Problems) -> None:
    """An unset or empty ``region`` comes from AWS_REGION / AWS_DEFAULT_REGION, then from the
    region of the AWS profile (the builder's ``profile``, else AWS_PROFILE, else ``default``)
    in the shared config file, as the AWS SDK gives it to Packer; without any, one located
    error says what to set."""
    node = body.entries.get("region")
    if node is not None and not (isinstance(node, Scalar) and node.value in (None, "")):
        return
    loc = node.loc if node is not None else body.loc
    profile = body.entries.get("profile")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        name = profile.value if isinstance(profile, Scalar) and profile.value else None
        region = profile_region(name or env.get("AWS_PROFILE") or "default", env)
    if region:
        body.entries["region"] = Scalar(region, loc)
        body.key_locs.setdefault("region", loc)
        return
    problems.add(
        loc,
        f"{path}.region",
        "no region: set `region` in the builder, AWS_REGION (or AWS_DEFAULT_REGION), or a "
        "`region` in the AWS profile's ~/.aws/config",
    )
    body.entries["region"] = BadNode(loc)


def builder_name(section: Section, resolve: Callable[[Node, str], Node]) -> str | None:
    """The builder's name; a legacy JSON ``name`` with ``{{user}}`` is resolved here."""
    from amibake.core.templates.packer_json import BUILDER_NAME_KEY

    node = section.body.entries.pop(BUILDER_NAME_KEY, None)
    if node is not None:
        value = resolve(node, f"{section.path}.name")
        if isinstance(value, Scalar) and isinstance(value.value, str) and value.value:
            section.name = value.value
    return section.name
