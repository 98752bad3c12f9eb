"""Packer legacy JSON -> :class:`RawTemplate`."""

from __future__ import annotations

import re

from amibake.core.templates.errors import Loc, Problems, suggest
from amibake.core.templates.gotemplate import (
    PACKER_COMPAT_VERSION,
    GoTemplateError,
    parse_go_template,
)
from amibake.core.templates.jsonpos import parse_json
from amibake.core.templates.nodes import (
    Attr,
    BadNode,
    Binary,
    Call,
    Cond,
    Expr,
    ExprNode,
    Index,
    ListNode,
    MapNode,
    Node,
    RawTemplate,
    Scalar,
    Section,
    Tmpl,
    Unary,
    VariableDecl,
    expr_to_node,
)
from amibake.core.templates.nodes import Name as NameX

#: Where a JSON builder's templated ``name`` waits for the loader to resolve it.
BUILDER_NAME_KEY = " name"

TOP_LEVEL_KEYS = (
    "variables",
    "sensitive-variables",
    "builders",
    "provisioners",
    "post-processors",
    "error-cleanup-provisioner",
    "description",
    "min_packer_version",
    "push",
)


def read_json(text: str, file: str, problems: Problems) -> RawTemplate | None:
    """Read a legacy JSON template as Packer does.

    Top-level keys starting with ``_`` are comments (only there: inside a
    builder Packer rejects them); ``push`` is accepted and ignored with a
    warning; ``min_packer_version`` is checked against
    :data:`~amibake.core.templates.gotemplate.PACKER_COMPAT_VERSION`.
    """
    used: dict[str, Loc] = {}  # `user` variables referenced outside `variables`

    def on_string(value: str, loc: Loc, path: str) -> Node:
        try:
            expr = parse_go_template(value, loc)
        except GoTemplateError as error:
            problems.add(loc, path, error.message)
            return BadNode(loc)
        if not path.startswith(("variables", "sensitive-variables")):
            for name in _user_names(expr):
                used.setdefault(name, loc)
        return expr_to_node(expr)

    root = parse_json(text, file, problems, on_string)
    if root is None:
        return None
    raw = RawTemplate(file, "json", loc=root.loc)
    if not isinstance(root, MapNode):
        problems.add(root.loc, "", "expected a JSON object at the top level of a Packer template")
        return None
    for key in root.entries:
        if key.startswith("_"):
            continue  # a comment, as Packer reads the root of a template
        if key not in TOP_LEVEL_KEYS:
            problems.add(
                root.key_loc(key),
                key,
                f"unknown top-level key `{key}`{suggest(key, TOP_LEVEL_KEYS)}",
            )
    if "push" in root.entries:
        problems.warn(
            root.key_loc("push"),
            "push",
            "`push` is ignored: it configured Atlas, which Packer itself no longer has",
        )
    minimum = root.entries.get("min_packer_version")
    if minimum is not None:
        _check_min_version(minimum, problems)
    variables = root.entries.get("variables")
    if isinstance(variables, MapNode):
        for name, node in variables.entries.items():
            decl = VariableDecl(name, variables.key_loc(name))
            if isinstance(node, Scalar) and node.value is None:
                decl.has_default = False  # Packer: a null default makes the variable required
            elif isinstance(node, ListNode | MapNode):
                problems.add(node.loc, f"variables.{name}", "expected a string value")
                continue
            else:
                decl.default = node
                decl.has_default = True
            raw.variables[name] = decl
    elif variables is not None:
        problems.add(variables.loc, "variables", "expected an object of variable names to values")
    declared = list(raw.variables)
    for name, loc in used.items():
        if name not in raw.variables:
            # Packer: `user` of a variable the template does not declare is "" unless
            # a var-file or -var sets it (they may set undeclared variables)
            # (the loader warns when none does and its name looks like a declared one's typo)
            raw.variables[name] = VariableDecl(
                name,
                loc,
                default=Scalar("", loc),
                has_default=True,
                undeclared_hint=suggest(name, declared),
            )
    sensitive = root.entries.get("sensitive-variables")
    if isinstance(sensitive, ListNode):
        for item in sensitive.items:
            if not (isinstance(item, Scalar) and isinstance(item.value, str)):
                problems.add(item.loc, "sensitive-variables", "expected variable names")
            elif item.value not in raw.variables:
                problems.add(
                    item.loc,
                    "sensitive-variables",
                    f"`{item.value}` is not a declared variable"
                    f"{suggest(item.value, raw.variables)}",
                )
            else:
                raw.variables[item.value].sensitive = True
    elif sensitive is not None:
        problems.add(sensitive.loc, "sensitive-variables", "expected a list of variable names")

    builders = root.entries.get("builders")
    if builders is None:
        problems.add(root.loc, "builders", "a template needs at least one builder")
    else:
        raw.builders = _sections(builders, "builders", problems)
        if isinstance(builders, ListNode) and not builders.items:
            problems.add(builders.loc, "builders", "a template needs at least one builder")
        for section in raw.builders:
            name_node = section.body.entries.pop("name", None)
            if name_node is not None:
                section.body.key_locs.pop("name", None)
                if (
                    isinstance(name_node, Scalar)
                    and isinstance(name_node.value, str)
                    and name_node.value
                ):
                    section.name = name_node.value
                elif isinstance(name_node, ExprNode):
                    # Packer interpolates a build name with the user variables: resolved
                    # by the loader (BUILDER_NAME_KEY), before the builder is decoded
                    section.body.entries[BUILDER_NAME_KEY] = name_node
                else:
                    problems.add(
                        name_node.loc, f"{section.path}.name", "expected a non-empty literal string"
                    )
    provisioners = root.entries.get("provisioners")
    if provisioners is not None:
        raw.provisioners = _sections(provisioners, "provisioners", problems)
    post = root.entries.get("post-processors")
    if post is not None:
        raw.post_processors = _post_processors(post, problems)
    cleanup = root.entries.get("error-cleanup-provisioner")
    if cleanup is not None:
        if isinstance(cleanup, MapNode):
            raw.error_cleanup_provisioner = _section(
                cleanup, "error-cleanup-provisioner", problems
            )
        else:
            problems.add(cleanup.loc, "error-cleanup-provisioner", "expected an object")
    return raw


def _section(node: MapNode, path: str, problems: Problems) -> Section | None:
    type_node = node.entries.get("type")
    if type_node is None:
        problems.add(node.loc, f"{path}.type", "missing `type`")
        return None
    if not (isinstance(type_node, Scalar) and isinstance(type_node.value, str)):
        problems.add(type_node.loc, f"{path}.type", "expected a literal string")
        return None
    body = MapNode(dict(node.entries), node.loc, dict(node.key_locs))
    body.entries.pop("type")
    return Section(type_node.value, body, path, node.loc, type_loc=type_node.loc)


def _sections(node: Node, path: str, problems: Problems) -> list[Section]:
    if not isinstance(node, ListNode):
        problems.add(node.loc, path, "expected a list of objects")
        return []
    out = []
    for i, item in enumerate(node.items):
        if not isinstance(item, MapNode):
            problems.add(item.loc, f"{path}[{i}]", "expected an object")
            continue
        section = _section(item, f"{path}[{i}]", problems)
        if section is not None:
            out.append(section)
    return out


def _post_processors(node: Node, problems: Problems) -> list[Section]:
    """Post-processors: objects, bare type names, or nested lists (sequences), flattened."""
    if not isinstance(node, ListNode):
        problems.add(node.loc, "post-processors", "expected a list")
        return []
    out: list[Section] = []

    def add(item: Node, path: str) -> None:
        if isinstance(item, Scalar) and isinstance(item.value, str):
            out.append(
                Section(item.value, MapNode({}, item.loc), path, item.loc, type_loc=item.loc)
            )
        elif isinstance(item, MapNode):
            section = _section(item, path, problems)
            if section is not None:
                out.append(section)
        elif isinstance(item, ListNode):
            for j, inner in enumerate(item.items):
                if isinstance(inner, ListNode):
                    problems.add(inner.loc, f"{path}[{j}]", "expected an object or a type name")
                else:
                    add(inner, f"{path}[{j}]")
        elif not isinstance(item, BadNode):
            problems.add(item.loc, path, "expected an object or a type name")

    for i, item in enumerate(node.items):
        add(item, f"post-processors[{i}]")
    return out


def _version(text: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?", text.strip())
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())


def _check_min_version(node: Node, problems: Problems) -> None:
    if not (isinstance(node, Scalar) and isinstance(node.value, str)):
        problems.add(node.loc, "min_packer_version", 'expected a version string such as "1.7.0"')
        return
    wanted = _version(node.value)
    if wanted is None:
        problems.add(
            node.loc,
            "min_packer_version",
            f'`{node.value}` is not a version (expected e.g. "1.7.0")',
        )
    elif wanted > (_version(PACKER_COMPAT_VERSION) or ()):  # PACKER_COMPAT_VERSION parses
        problems.warn(
            node.loc,
            "min_packer_version",
            f"this template needs Packer {node.value} or newer; amibake is compatible with "
            f"Packer {PACKER_COMPAT_VERSION}",
        )


def _user_names(expr: Expr) -> list[str]:
    """Names of ``{{user `x`}}`` variables in an expression."""
    out: list[str] = []

    def walk(e: Expr) -> None:
        if isinstance(e, Attr):
            if isinstance(e.obj, NameX) and e.obj.name == "var":
                out.append(e.name)
            else:
                walk(e.obj)
        elif isinstance(e, Tmpl):
            for part in e.parts:
                if not isinstance(part, str):
                    walk(part)
        elif isinstance(e, Call):
            for arg in e.args:
                walk(arg)
        elif isinstance(e, Index):
            walk(e.obj)
            walk(e.key)
        elif isinstance(e, Binary):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, Unary):
            walk(e.operand)
        elif isinstance(e, Cond):
            walk(e.test)
            walk(e.then)
            walk(e.other)

    walk(expr)
    return out
