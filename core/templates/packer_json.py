"""Packer legacy JSON -> :class:`RawTemplate`."""

from __future__ import annotations

from core.templates.errors import Loc, Problems, suggest
from core.templates.gotemplate import GoTemplateError, parse_go_template
from core.templates.jsonpos import parse_json
from core.templates.nodes import (
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
    "sensitive-variables",
    "builders",
    "provisioners",
    "post-processors",
    "error-cleanup-provisioner",
    "description",
    "min_packer_version",
)


def read_json(text: str, file: str, problems: Problems) -> RawTemplate | None:
    def on_string(value: str, loc: Loc, path: str) -> Node:
        try:
            return expr_to_node(parse_go_template(value, loc))
        except GoTemplateError as error:
            problems.add(loc, path, error.message)
            return BadNode(loc)

    root = parse_json(text, file, problems, on_string)
    if root is None:
        return None
    raw = RawTemplate(file, "json", loc=root.loc)
    if not isinstance(root, MapNode):
        problems.add(root.loc, "", "expected a JSON object at the top level of a Packer template")
        return None
    for key in root.entries:
        if key not in TOP_LEVEL_KEYS:
            problems.add(
                root.key_loc(key),
                key,
                f"unknown top-level key `{key}`{suggest(key, TOP_LEVEL_KEYS)}",
            )
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
            name = section.body.entries.pop("name", None)
            if name is not None:
                section.body.key_locs.pop("name", None)
                if isinstance(name, Scalar) and isinstance(name.value, str) and name.value:
                    section.name = name.value
                else:
                    problems.add(
                        name.loc, f"{section.path}.name", "expected a non-empty literal string"
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
            section = _section(cleanup, "error-cleanup-provisioner", problems)
            raw.error_cleanup_provisioner = section
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
