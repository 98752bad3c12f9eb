"""Packer HCL2 (``.pkr.hcl``) -> :class:`RawTemplate`, parsed by python-hcl2."""

from __future__ import annotations

from dataclasses import dataclass

from lark import Token, Tree

from core.templates.errors import Loc, Problems, join_path, suggest
from core.templates.hclexpr import (
    ExprBuilder,
    HclSyntaxError,
    LocFn,
    node_loc,
    parse_tree,
    significant,
)
from core.templates.nodes import (
    BadNode,
    ExprNode,
    ListNode,
    Lit,
    MapNode,
    Name,
    Node,
    RawTemplate,
    Scalar,
    Section,
    VariableDecl,
    expr_to_node,
)

TOP_LEVEL_BLOCKS = ("variable", "variables", "locals", "source", "build", "packer")
BUILD_KEYS = ("name", "description", "sources")
BUILD_BLOCKS = (
    "source",
    "provisioner",
    "post-processor",
    "post-processors",
    "error-cleanup-provisioner",
)
VARIABLE_KEYS = ("type", "default", "description", "sensitive", "nullable")


@dataclass
class Block:
    type: str
    labels: list[tuple[str, Loc]]
    body: Tree
    loc: Loc


class HclReader:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self.loc_fn: LocFn = lambda line, col: Loc(file, line, col)
        self.fallback = Loc(file, 1, 1)
        self.exprs = ExprBuilder(self.loc_fn, self.fallback)
        self.text = ""

    def loc(self, node: Tree | Token) -> Loc:
        return node_loc(node, self.loc_fn, self.fallback)

    # ------------------------------------------------------------------ body walking

    def items(self, body: Tree) -> tuple[list[tuple[str, Loc, Tree]], list[Block]]:
        """Attributes (name, loc, expression tree) and blocks of a body, in order."""
        attributes: list[tuple[str, Loc, Tree]] = []
        blocks: list[Block] = []
        for child in body.children:
            if not isinstance(child, Tree):
                continue
            if child.data == "attribute":
                kids = significant(child.children)
                name = self.name_of(kids[0])
                attributes.append((name, self.loc(child), kids[-1]))
            elif child.data == "block":
                kids = significant(child.children)
                block_type = self.name_of(kids[0])
                labels = []
                for label in kids[1:-1]:
                    labels.append((self.label_text(label), self.loc(label)))
                blocks.append(Block(block_type, labels, kids[-1], self.loc(child)))
        return attributes, blocks

    def name_of(self, node: Tree | Token) -> str:
        if isinstance(node, Token):
            return str(node)
        kids = significant(node.children)
        return self.name_of(kids[0]) if kids else ""

    def label_text(self, node: Tree) -> str:
        if node.data == "string":
            expr = self.exprs.build(node)
            if isinstance(expr, Lit) and isinstance(expr.value, str):
                return expr.value
            raise HclSyntaxError(self.loc(node), "block labels cannot contain interpolations")
        return self.name_of(node)

    def value(self, tree: Tree) -> Node:
        return expr_to_node(self.exprs.build(tree))

    def body_node(self, body: Tree, loc: Loc, path: str) -> MapNode:
        node = MapNode({}, loc, block=True)
        attributes, blocks = self.items(body)
        for name, aloc, tree in attributes:
            if name in node.entries:
                self.problems.add(aloc, join_path(path, name), "attribute is set twice")
                continue
            try:
                node.entries[name] = self.value(tree)
            except HclSyntaxError as error:
                self.problems.add(error.loc, join_path(path, name), error.message)
                node.entries[name] = BadNode(error.loc)  # reported; no "missing" error too
            node.key_locs[name] = aloc
        for block in blocks:
            bpath = join_path(path, block.type)
            if block.labels:
                self.problems.add(block.labels[0][1], bpath, "this block takes no labels")
            if block.type in node.entries and not isinstance(node.entries[block.type], ListNode):
                self.problems.add(block.loc, bpath, "set both as an attribute and as a block")
                continue
            existing = node.entries.get(block.type)
            if existing is None:
                existing = ListNode([], block.loc)
                node.entries[block.type] = existing
                node.key_locs[block.type] = block.loc
            assert isinstance(existing, ListNode)
            existing.items.append(
                self.body_node(block.body, block.loc, join_path(bpath, len(existing.items)))
            )
        return node

    # ------------------------------------------------------------------ document

    def read(self, text: str) -> RawTemplate | None:
        self.text = text
        raw = RawTemplate(self.file, "hcl", loc=self.fallback)
        try:
            tree = parse_tree(text, self.loc_fn)
            attributes, blocks = self.items(tree.children[0])
        except HclSyntaxError as error:
            self.problems.add(error.loc, "", error.message)
            return None
        for name, loc, _ in attributes:
            self.problems.add(
                loc, name, "attributes are not allowed at the top level of a template"
            )
        sources: dict[str, Section] = {}
        builds: list[Block] = []
        for block in blocks:
            try:
                self.top_block(block, raw, sources, builds)
            except HclSyntaxError as error:
                self.problems.add(error.loc, block.type, error.message)
        if not builds:
            if sources:
                self.problems.add(self.fallback, "build", "a `build` block is required")
            else:
                self.problems.add(
                    self.fallback, "build", "a `build` block with `sources` is required"
                )
        for build in builds[1:]:
            self.problems.add(build.loc, "build", "only one `build` block is supported")
        if builds:
            try:
                self.build_block(builds[0], raw, sources)
            except HclSyntaxError as error:
                self.problems.add(error.loc, "build", error.message)
        return raw

    def expect_labels(self, block: Block, count: int, what: str) -> bool:
        if len(block.labels) != count:
            self.problems.add(block.loc, block.type, f"expected {what}")
            return False
        return True

    def top_block(
        self, block: Block, raw: RawTemplate, sources: dict[str, Section], builds: list[Block]
    ) -> None:
        if block.type == "variable":
            if self.expect_labels(block, 1, 'one label: variable "name" { ... }'):
                self.variable(block, raw)
        elif block.type in ("locals", "variables"):
            attributes, inner = self.items(block.body)
            for b in inner:
                self.problems.add(b.loc, f"{block.type}.{b.type}", "blocks are not allowed here")
            for name, loc, tree in attributes:
                try:
                    node = self.value(tree)
                except HclSyntaxError as error:
                    self.problems.add(error.loc, f"{block.type}.{name}", error.message)
                    continue
                if block.type == "locals":
                    if name in raw.locals:
                        self.problems.add(loc, f"local.{name}", "local is defined twice")
                    raw.locals[name] = node
                    raw.local_locs[name] = loc
                else:
                    self.add_variable(raw, VariableDecl(name, loc, node, True))
        elif block.type == "source":
            if not self.expect_labels(block, 2, 'two labels: source "amazon-ebs" "name" { ... }'):
                return
            (stype, type_loc), (name, _) = block.labels
            key = f"{stype}.{name}"
            path = f"source.{key}"
            if key in sources:
                self.problems.add(block.loc, path, "source is defined twice")
                return
            body = self.body_node(block.body, block.loc, path)
            sources[key] = Section(stype, body, path, block.loc, name=name, type_loc=type_loc)
        elif block.type == "build":
            if block.labels:
                self.problems.add(block.labels[0][1], "build", "the build block takes no labels")
            builds.append(block)
        elif block.type == "packer":
            pass  # plugin and version constraints: nothing to do for amibake
        elif block.type == "data":
            self.problems.add(block.loc, "data", "data sources are not supported by amibake")
        else:
            self.problems.add(
                block.loc,
                block.type,
                f"unknown block type `{block.type}`{suggest(block.type, TOP_LEVEL_BLOCKS)}",
            )

    def add_variable(self, raw: RawTemplate, decl: VariableDecl) -> None:
        if decl.name in raw.variables:
            self.problems.add(decl.loc, f"var.{decl.name}", "variable is declared twice")
            return
        raw.variables[decl.name] = decl

    def variable(self, block: Block, raw: RawTemplate) -> None:
        name = block.labels[0][0]
        path = f"variable.{name}"
        decl = VariableDecl(name, block.loc)
        attributes, inner = self.items(block.body)
        for b in inner:
            msg = (
                "validation blocks are not supported by amibake"
                if b.type == "validation"
                else (f"unknown block `{b.type}`")
            )
            self.problems.add(b.loc, f"{path}.{b.type}", msg)
        for key, loc, tree in attributes:
            kpath = f"{path}.{key}"
            if key == "type":
                decl.type = " ".join(self.text_of(tree).split())
                continue
            try:
                node = self.value(tree)
            except HclSyntaxError as error:
                self.problems.add(error.loc, kpath, error.message)
                continue
            if key == "default":
                decl.default = node
                decl.has_default = True
            elif key in ("description", "sensitive", "nullable"):
                if not isinstance(node, Scalar):
                    self.problems.add(node.loc, kpath, "expected a literal value")
                elif key == "description":
                    decl.description = str(node.value)
                elif key == "sensitive":
                    if not isinstance(node.value, bool):
                        self.problems.add(node.loc, kpath, "expected true or false")
                    decl.sensitive = node.value is True
            else:
                self.problems.add(
                    loc, kpath, f"unknown attribute `{key}`{suggest(key, VARIABLE_KEYS)}"
                )
        self.add_variable(raw, decl)

    def text_of(self, tree: Tree) -> str:
        """Source text of a tree (for type constraints such as ``list(string)``)."""
        if tree.meta.empty:
            return ""
        return self.text[tree.meta.start_pos : tree.meta.end_pos]

    def build_block(self, block: Block, raw: RawTemplate, sources: dict[str, Section]) -> None:
        attributes, blocks = self.items(block.body)
        build_name: str | None = None
        used: list[tuple[str, Loc, MapNode | None, str | None]] = []
        for key, loc, tree in attributes:
            if key == "name":
                node = self.value(tree)
                if isinstance(node, Scalar) and isinstance(node.value, str):
                    build_name = node.value
                else:
                    self.problems.add(node.loc, "build.name", "expected a literal string")
            elif key == "description":
                continue
            elif key == "sources":
                node = self.value(tree)
                if not isinstance(node, ListNode):
                    self.problems.add(node.loc, "build.sources", "expected a list of source names")
                    continue
                for item in node.items:
                    ref = self.source_ref(item)
                    if ref is None:
                        self.problems.add(
                            item.loc,
                            "build.sources",
                            "expected a source reference such as source.amazon-ebs.name",
                        )
                        continue
                    used.append((ref, item.loc, None, None))
            else:
                self.problems.add(
                    loc, f"build.{key}", f"unknown attribute `{key}`{suggest(key, BUILD_KEYS)}"
                )
        _ = build_name  # the build's own name only labels Packer's UI; builders keep theirs
        for inner in blocks:
            self.build_inner(inner, raw, used)
        if not used:
            self.problems.add(block.loc, "build.sources", "the build uses no source")
        for ref, loc, overrides, name in used:
            key = ref.removeprefix("source.")
            section = sources.get(key)
            if section is None:
                self.problems.add(
                    loc,
                    "build.sources",
                    f"no source `{ref}` is defined{suggest(key, sources)}",
                )
                continue
            body = MapNode(
                dict(section.body.entries), section.body.loc, dict(section.body.key_locs), True
            )
            if overrides is not None:
                body.entries.update(overrides.entries)
                body.key_locs.update(overrides.key_locs)
            raw.builders.append(
                Section(
                    section.type,
                    body,
                    section.path,
                    section.loc,
                    name=name or section.name,
                    type_loc=section.type_loc,
                )
            )

    def source_ref(self, item: Node) -> str | None:
        if isinstance(item, Scalar) and isinstance(item.value, str):
            return item.value if item.value.startswith("source.") else None
        if isinstance(item, ExprNode):
            parts = []
            expr = item.expr
            while not isinstance(expr, Name):
                if not hasattr(expr, "name") or not hasattr(expr, "obj"):
                    return None
                parts.append(expr.name)  # type: ignore[union-attr]
                expr = expr.obj  # type: ignore[union-attr]
            parts.append(expr.name)
            return ".".join(reversed(parts)) if parts[-1] == "source" else None
        return None

    def build_inner(self, block: Block, raw: RawTemplate, used: list) -> None:
        if block.type == "source":
            if not self.expect_labels(
                block, 1, 'one label: source "source.amazon-ebs.name" { ... }'
            ):
                return
            ref, loc = block.labels[0]
            if not ref.startswith("source."):
                ref = f"source.{ref}"
            overrides = self.body_node(block.body, block.loc, f"build.{ref}")
            name = None
            if "name" in overrides.entries:
                name_node = overrides.entries.pop("name")
                if isinstance(name_node, Scalar) and isinstance(name_node.value, str):
                    name = name_node.value
                else:
                    self.problems.add(
                        name_node.loc, f"build.{ref}.name", "expected a literal string"
                    )
            used.append((ref, loc, overrides, name))
        elif block.type in ("provisioner", "error-cleanup-provisioner", "post-processor"):
            if not self.expect_labels(block, 1, f'one label: {block.type} "type" {{ ... }}'):
                return
            ptype, type_loc = block.labels[0]
            if block.type == "provisioner":
                path = f"build.provisioner[{len(raw.provisioners)}]"
            elif block.type == "post-processor":
                path = f"build.post-processor[{len(raw.post_processors)}]"
            else:
                path = "build.error-cleanup-provisioner"
            body = self.body_node(block.body, block.loc, path)
            section = Section(ptype, body, path, block.loc, type_loc=type_loc)
            if block.type == "provisioner":
                raw.provisioners.append(section)
            elif block.type == "post-processor":
                raw.post_processors.append(section)
            elif raw.error_cleanup_provisioner is not None:
                self.problems.add(block.loc, path, "only one error-cleanup-provisioner is allowed")
            else:
                raw.error_cleanup_provisioner = section
        elif block.type == "post-processors":
            attributes, inner = self.items(block.body)
            for key, loc, _ in attributes:
                self.problems.add(loc, f"build.post-processors.{key}", "unexpected attribute")
            for b in inner:
                if b.type != "post-processor":
                    self.problems.add(
                        b.loc, f"build.post-processors.{b.type}", "expected post-processor blocks"
                    )
                    continue
                self.build_inner(b, raw, used)
        else:
            self.problems.add(
                block.loc,
                f"build.{block.type}",
                f"unknown block type `{block.type}`{suggest(block.type, BUILD_BLOCKS)}",
            )


def read_hcl(text: str, file: str, problems: Problems) -> RawTemplate | None:
    return HclReader(file, problems).read(text)
