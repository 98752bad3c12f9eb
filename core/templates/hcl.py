"""Packer HCL2 (``*.pkr.hcl``, one file or a folder of them) -> :class:`RawTemplate`.

Parsed by python-hcl2's grammar; the blocks are read here with Packer's rules
(hashicorp/packer ``hcl2template``):

* A folder is one template: ``variable``/``locals``/``local``/``source``/``data``/
  ``build`` blocks of every file share one namespace, and a name defined twice
  (in one file or two) is a located error.
* Several ``build`` blocks, each with its own ``name``, sources, provisioners and
  post-processors. Each source a build uses becomes one builder; its
  provisioners and post-processors get the names of that build's builders in
  :attr:`Section.builders` (they apply to those only).
* ``dynamic`` blocks wherever blocks go (sources, builds, provisioners,
  post-processors, data sources, nested): kept as :class:`DynamicBlock` and
  expanded by :func:`expand_dynamic` once variables are known.
* ``variable`` blocks with ``type`` (:mod:`amibake.core.templates.hcltypes`),
  ``validation``, ``sensitive``; ``packer { required_version }`` checked against
  :data:`~amibake.core.templates.gotemplate.PACKER_COMPAT_VERSION`.

Builder names: a builder is named after its source's local name (the ``name``
of a build-level ``source`` block, else the source's label), which is what
``only``/``except`` and ``source.name`` see, as in Packer. Packer names a run
``<build name>.<type>.<local name>`` and allows two builds to use one source;
amibake needs unique builder names, so when a local name is already taken by an
earlier builder, the later one is named ``<build name>.<local name>`` (or
``<local name>-2``, ``-3``... when its build has no name). ``only``/``except``
entries of that build that name the source (``amazon-ebs.x``) are rewritten to
the new name.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from amibake.core.templates.errors import Loc, Problems, join_path, suggest
from amibake.core.templates.evaluate import EvalError
from amibake.core.templates.hclexpr import (
    ExprBuilder,
    HclSyntaxError,
    LocFn,
    node_loc,
    parse_tree,
    significant,
)
from amibake.core.templates.hcltypes import infer_type, type_from_expr
from amibake.core.templates.nodes import (
    SPLAT_ITEM,
    Attr,
    BadNode,
    BuildDecl,
    DynamicBlock,
    ExprNode,
    ForX,
    ListNode,
    Lit,
    MapNode,
    Name,
    Node,
    RawTemplate,
    Scalar,
    Section,
    SourceUse,
    Splat,
    TmplFor,
    VariableDecl,
    expr_to_node,
)

TOP_LEVEL_BLOCKS = (
    "variable",
    "variables",
    "locals",
    "local",
    "source",
    "build",
    "packer",
    "data",
    "hcp_packer_registry",
)
BUILD_KEYS = ("name", "description", "sources")
BUILD_BLOCKS = (
    "source",
    "provisioner",
    "post-processor",
    "post-processors",
    "error-cleanup-provisioner",
    "hcp_packer_registry",
)
VARIABLE_KEYS = ("type", "default", "description", "sensitive", "nullable")
#: Roots a variable's default cannot refer to (Packer decodes defaults without variables).
DEFAULT_FORBIDDEN_ROOTS = ("var", "local", "data", "source", "path", "packer", "build")
DYNAMIC_KEYS = ("for_each", "iterator", "labels")
BUILDER_TYPES = ("amazon-ebs",)

#: ``build.*`` values Packer documents for provisioners and post-processors; known only
#: while the build runs, so they stay as the run-time ``{{ build `X` }}`` the engine renders.
BUILD_VARIABLES = (
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPAddr",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "SSHPublicKey",
    "SSHPrivateKey",
    "WinRMPassword",
    "SourceAMIName",
    "SourceAMI",
    "SourceAMIOwner",
    "SourceAMIOwnerName",
    "SourceAMICreationDate",
    "SourceAMITags",
    "BuildRegion",
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class Block:
    type: str
    labels: list[tuple[str, Loc]]
    body: Any  # a Lark tree; a JsonBody for the JSON syntax
    loc: Loc


class HclReader:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self.loc_fn: LocFn = lambda line, col: Loc(file, line, col)
        self.fallback = Loc(file, 1, 1)
        self.exprs = ExprBuilder(self.loc_fn, self.fallback)
        self.text = ""

    def loc(self, node: Tree[Any] | Token) -> Loc:
        return node_loc(node, self.loc_fn, self.fallback)

    # ------------------------------------------------------------------ body walking

    def items(self, body: Tree[Any]) -> tuple[list[tuple[str, Loc, Tree[Any]]], list[Block]]:
        """Attributes (name, loc, expression tree) and blocks of a body, in order."""
        attributes: list[tuple[str, Loc, Tree[Any]]] = []
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

    def name_of(self, node: Tree[Any] | Token) -> str:
        if isinstance(node, Token):
            return str(node)
        kids = significant(node.children)
        return self.name_of(kids[0]) if kids else ""

    def label_text(self, node: Tree[Any]) -> str:
        if node.data == "string":
            expr = self.exprs.build(node)
            if isinstance(expr, Lit) and isinstance(expr.value, str):
                return expr.value
            raise HclSyntaxError(self.loc(node), "block labels cannot contain interpolations")
        return self.name_of(node)

    def value(self, tree: Tree[Any]) -> Node:
        return expr_to_node(self.exprs.build(tree))

    def literal_string(self, tree: Tree[Any], path: str) -> str | None:
        node = self.value(tree)
        if isinstance(node, Scalar) and isinstance(node.value, str):
            return node.value
        self.problems.add(node.loc, path, "expected a literal string")
        return None

    def body_node(self, body: Tree[Any], loc: Loc, path: str) -> MapNode:
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
            item: MapNode | DynamicBlock
            if block.type == "dynamic":
                dynamic = self.dynamic(block, path, lambda b, p: self.body_node(b.body, b.loc, p))
                if dynamic is None:
                    continue
                item, block_type = dynamic, dynamic.type
                bpath = join_path(path, block_type)
            else:
                block_type = block.type
                if block.labels:
                    self.problems.add(block.labels[0][1], bpath, "this block takes no labels")
                item = self.body_node(block.body, block.loc, join_path(bpath, 0))
            if block_type in node.entries and not isinstance(node.entries[block_type], ListNode):
                self.problems.add(block.loc, bpath, "set both as an attribute and as a block")
                continue
            existing = node.entries.get(block_type)
            if existing is None:
                existing = ListNode([], block.loc)
                node.entries[block_type] = existing
                node.key_locs[block_type] = block.loc
            assert isinstance(existing, ListNode)
            existing.items.append(item)  # type: ignore[arg-type]  # a DynamicBlock waits among the blocks until expand_dynamic replaces it
        return node

    def dynamic(
        self, block: Block, path: str, read_content: Callable[[Block, str], Any]
    ) -> DynamicBlock | None:
        """``dynamic "TYPE" { for_each = ..., iterator = ..., labels = [...], content { } }``."""
        if len(block.labels) != 1:
            self.problems.add(
                block.loc,
                join_path(path, "dynamic"),
                'expected one label: dynamic "block_type" { ... }',
            )
            return None
        block_type = block.labels[0][0]
        dpath = join_path(path, f"dynamic.{block_type}")
        attributes, inner = self.items(block.body)
        for_each: Node | None = None
        iterator = block_type
        labels: list[Node] = []
        for key, loc, tree in attributes:
            try:
                node = self.value(tree)
            except HclSyntaxError as error:
                self.problems.add(error.loc, f"{dpath}.{key}", error.message)
                return None
            if key == "for_each":
                for_each = node
            elif key == "iterator":
                if isinstance(node, ExprNode) and isinstance(node.expr, Name):
                    iterator = node.expr.name
                else:
                    self.problems.add(
                        node.loc, f"{dpath}.iterator", "expected a name, e.g. `iterator = item`"
                    )
            elif key == "labels":
                if not isinstance(node, ListNode):
                    self.problems.add(node.loc, f"{dpath}.labels", "expected a list of labels")
                else:
                    labels = list(node.items)
            else:
                self.problems.add(
                    loc, f"{dpath}.{key}", f"unknown attribute `{key}`{suggest(key, DYNAMIC_KEYS)}"
                )
        contents = [b for b in inner if b.type == "content"]
        for b in inner:
            if b.type != "content":
                self.problems.add(
                    b.loc, f"{dpath}.{b.type}", "a dynamic block holds one `content` block"
                )
        if for_each is None:
            self.problems.add(block.loc, f"{dpath}.for_each", "`for_each` is required")
            return None
        if len(contents) != 1:
            self.problems.add(
                block.loc, f"{dpath}.content", "a dynamic block needs exactly one `content` block"
            )
            return None
        if contents[0].labels:
            self.problems.add(
                contents[0].labels[0][1], f"{dpath}.content", "the content block takes no labels"
            )
        content = read_content(contents[0], f"{path}.{block_type}")
        return DynamicBlock(block_type, for_each, iterator, labels, content, block.loc)

    # ------------------------------------------------------------------ document

    def read_into(self, text: str, raw: RawTemplate, builds: list[tuple[Block, HclReader]]) -> bool:
        """Read one file's blocks into ``raw``; ``build`` blocks are collected for later."""
        self.text = text
        try:
            tree = parse_tree(text, self.loc_fn)
            attributes, blocks = self.items(tree.children[0])
        except HclSyntaxError as error:
            self.problems.add(error.loc, "", error.message)
            return False
        self.read_top(attributes, blocks, raw, builds)
        return True

    def read_top(
        self,
        attributes: list[tuple[str, Loc, Any]],
        blocks: list[Block],
        raw: RawTemplate,
        builds: list[tuple[Block, HclReader]],
    ) -> None:
        """A file's top-level attributes (errors) and blocks, read into ``raw``."""
        for name, loc, _ in attributes:
            self.problems.add(
                loc, name, "attributes are not allowed at the top level of a template"
            )
        for block in blocks:
            try:
                if block.type == "build":
                    if block.labels:
                        self.problems.add(
                            block.labels[0][1], "build", "the build block takes no labels"
                        )
                    builds.append((block, self))
                else:
                    self.top_block(block, raw)
            except HclSyntaxError as error:
                self.problems.add(error.loc, block.type, error.message)

    def expect_labels(self, block: Block, count: int, what: str) -> bool:
        if len(block.labels) != count:
            self.problems.add(block.loc, block.type, f"expected {what}")
            return False
        return True

    def top_block(self, block: Block, raw: RawTemplate) -> None:
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
                    self.add_local(raw, name, loc, node)
                else:
                    self.add_variable(raw, VariableDecl(name, loc, node, True))
        elif block.type == "local":
            if self.expect_labels(block, 1, 'one label: local "name" { expression = ... }'):
                self.local_block(block, raw)
        elif block.type == "source":
            if not self.expect_labels(block, 2, 'two labels: source "amazon-ebs" "name" { ... }'):
                return
            (stype, type_loc), (name, _) = block.labels
            key = f"{stype}.{name}"
            path = f"source.{key}"
            if key in raw.sources:
                previous = raw.sources[key].loc
                self.problems.add(block.loc, path, f"source is defined twice (first at {previous})")
                return
            body = self.body_node(block.body, block.loc, path)
            raw.sources[key] = Section(stype, body, path, block.loc, name=name, type_loc=type_loc)
        elif block.type == "packer":
            self.packer_block(block)
        elif block.type == "hcp_packer_registry":
            self.problems.warn(
                block.loc, block.type, "hcp_packer_registry ignored: there is no HCP here"
            )
        elif block.type == "data":
            self.data_block(block, raw)
        elif block.type == "dynamic":
            self.problems.add(
                block.loc, "dynamic", "a top-level `dynamic` block is not supported yet"
            )
        else:
            self.problems.add(
                block.loc,
                block.type,
                f"unknown block type `{block.type}`{suggest(block.type, TOP_LEVEL_BLOCKS)}",
            )

    def data_block(self, block: Block, raw: RawTemplate) -> None:
        """``data "TYPE" "NAME" { ... }``: kept raw; amibake.core.templates.datasources runs it."""
        if not self.expect_labels(block, 2, 'two labels: data "amazon-ami" "name" { ... }'):
            return
        (dtype, type_loc), (name, _) = block.labels
        key = f"{dtype}.{name}"
        path = f"data.{key}"
        if key in raw.data_sources:
            self.problems.add(block.loc, path, "data source is defined twice")
            return
        body = self.body_node(block.body, block.loc, path)
        raw.data_sources[key] = Section(dtype, body, path, block.loc, name=name, type_loc=type_loc)

    def packer_block(self, block: Block) -> None:
        """``packer { required_version = "...", required_plugins { ... } }``."""
        from amibake.core.templates.gotemplate import PACKER_COMPAT_VERSION

        attributes, inner = self.items(block.body)
        for b in inner:
            if b.type != "required_plugins":
                self.problems.add(
                    b.loc,
                    f"packer.{b.type}",
                    f"unknown block `{b.type}`{suggest(b.type, ['required_plugins'])}",
                )
        for key, loc, tree in attributes:
            if key != "required_version":
                self.problems.add(
                    loc,
                    f"packer.{key}",
                    f"unknown attribute `{key}`{suggest(key, ['required_version'])}",
                )
                continue
            constraint = self.literal_string(tree, "packer.required_version")
            if constraint is None:
                continue
            try:
                ok = version_satisfies(PACKER_COMPAT_VERSION, constraint)
            except ValueError as error:
                self.problems.add(loc, "packer.required_version", str(error))
                continue
            if not ok:
                self.problems.warn(
                    loc,
                    "packer.required_version",
                    f"this template requires Packer {constraint}; amibake reads templates as "
                    f"Packer {PACKER_COMPAT_VERSION} does",
                )

    def add_local(self, raw: RawTemplate, name: str, loc: Loc, node: Node) -> None:
        if name in raw.locals:
            previous = raw.local_locs.get(name)
            where = f" (first at {previous})" if previous else ""
            self.problems.add(loc, f"local.{name}", f"local is defined twice{where}")
            return
        raw.locals[name] = node
        raw.local_locs[name] = loc

    def local_block(self, block: Block, raw: RawTemplate) -> None:
        """``local "name" { expression = ..., sensitive = true }``."""
        name = block.labels[0][0]
        path = f"local.{name}"
        if not _IDENT.match(name):
            self.problems.add(
                block.labels[0][1], path, "invalid local name: use letters, digits, `_` and `-`"
            )
        attributes, inner = self.items(block.body)
        for b in inner:
            self.problems.add(b.loc, f"{path}.{b.type}", "blocks are not allowed here")
        expression: Node | None = None
        sensitive = False
        for key, loc, tree in attributes:
            try:
                node = self.value(tree)
            except HclSyntaxError as error:
                self.problems.add(error.loc, f"{path}.{key}", error.message)
                return
            if key == "expression":
                expression = node
            elif key == "sensitive":
                if isinstance(node, Scalar) and isinstance(node.value, bool):
                    sensitive = node.value
                else:
                    self.problems.add(node.loc, f"{path}.sensitive", "expected true or false")
            else:
                self.problems.add(
                    loc,
                    f"{path}.{key}",
                    f"unknown attribute `{key}`{suggest(key, ['expression', 'sensitive'])}",
                )
        if expression is None:
            self.problems.add(block.loc, f"{path}.expression", "`expression` is required")
            return
        self.add_local(raw, name, block.loc, expression)
        if sensitive:
            raw.sensitive_locals.add(name)

    def add_variable(self, raw: RawTemplate, decl: VariableDecl) -> None:
        if decl.name in raw.variables:
            previous = raw.variables[decl.name].loc
            self.problems.add(
                decl.loc, f"var.{decl.name}", f"variable is declared twice (first at {previous})"
            )
            return
        raw.variables[decl.name] = decl

    def variable(self, block: Block, raw: RawTemplate) -> None:
        name = block.labels[0][0]
        path = f"variable.{name}"
        decl = VariableDecl(name, block.loc)
        if not _IDENT.match(name):
            self.problems.add(
                block.labels[0][1], path, "invalid variable name: use letters, digits, `_` and `-`"
            )
        attributes, inner = self.items(block.body)
        for b in inner:
            if b.type == "validation":
                self.validation(b, decl, path)
            else:
                self.problems.add(
                    b.loc,
                    f"{path}.{b.type}",
                    f"unknown block `{b.type}`{suggest(b.type, ['validation'])}",
                )
        for key, loc, tree in attributes:
            kpath = f"{path}.{key}"
            try:
                if key == "type":
                    decl.type, decl.type_constraint = self.type_of(tree)
                    continue
                node = self.value(tree)
            except HclSyntaxError as error:
                self.problems.add(error.loc, kpath, error.message)
                continue
            except EvalError as error:  # an optional() default that does not fit its type
                self.problems.add(error.loc, kpath, error.message)
                continue
            if key == "default":
                decl.default = self.default_value(node, kpath)
                decl.has_default = True
            elif key in ("description", "sensitive", "nullable"):
                if not isinstance(node, Scalar):
                    self.problems.add(node.loc, kpath, "expected a literal value")
                elif key == "description":
                    decl.description = str(node.value)
                elif not isinstance(node.value, bool):
                    self.problems.add(node.loc, kpath, "expected true or false")
                elif key == "sensitive":
                    decl.sensitive = node.value
                else:
                    # Terraform's `nullable`; Packer's variable block has no such argument.
                    decl.nullable = node.value
                    self.problems.warn(
                        loc,
                        kpath,
                        "`nullable` is a Terraform argument that Packer rejects; amibake "
                        "applies it (false: null is not an accepted value)",
                    )
            else:
                self.problems.add(
                    loc, kpath, f"unknown attribute `{key}`{suggest(key, VARIABLE_KEYS)}"
                )
        if decl.type_constraint is None and isinstance(decl.default, Scalar):
            # Packer: an untyped variable takes its default's type (-var text converts to it)
            decl.type_constraint = infer_type(decl.default.value)
        self.add_variable(raw, decl)

    def default_value(self, node: Node, path: str) -> Node:
        """A variable's ``default``: Packer evaluates it with no variables at all (only
        ``env()``), so ``var.``, ``local.``, ``data.``... there is HCL's "Variables not
        allowed" error."""
        bad = [loc for ref, loc in references(node) if ref[0] in DEFAULT_FORBIDDEN_ROOTS]
        for loc in bad:
            self.problems.add(loc, path, "Variables not allowed: Variables may not be used here.")
        return Scalar("", node.loc) if bad else node  # reported: no second error

    def validation(self, block: Block, decl: VariableDecl, path: str) -> None:
        """``validation { condition = ..., error_message = "..." }`` (Packer's checks)."""
        vpath = f"{path}.validation"
        if block.labels:
            self.problems.add(block.labels[0][1], vpath, "this block takes no labels")
        attributes, inner = self.items(block.body)
        for b in inner:
            self.problems.add(b.loc, f"{vpath}.{b.type}", "blocks are not allowed here")
        condition: Node | None = None
        message: str | None = None
        for key, loc, tree in attributes:
            if key == "condition":
                try:
                    condition = self.value(tree)
                except HclSyntaxError as error:
                    self.problems.add(error.loc, f"{vpath}.condition", error.message)
                    return
                if not self.condition_refs_ok(condition, decl.name, f"{vpath}.condition"):
                    return
            elif key == "error_message":
                message = self.literal_string(tree, f"{vpath}.error_message")
                if message is None:
                    return
                if not message.strip():
                    self.problems.add(
                        loc, f"{vpath}.error_message", "an empty error message is not a useful one"
                    )
                    return
                if not _looks_like_sentences(message):
                    self.problems.add(
                        loc,
                        f"{vpath}.error_message",
                        "the error message must be a full sentence: starting with an upper-case "
                        "letter and ending with a period, question mark or exclamation mark",
                    )
                    return
            else:
                self.problems.add(
                    loc,
                    f"{vpath}.{key}",
                    f"unknown attribute `{key}`{suggest(key, ['condition', 'error_message'])}",
                )
        for key, value in (("condition", condition), ("error_message", message)):
            if value is None:
                self.problems.add(block.loc, f"{vpath}.{key}", f"`{key}` is required")
                return
        assert condition is not None and message is not None
        decl.validations.append((condition, message, block.loc))

    def condition_refs_ok(self, condition: Node, name: str, path: str) -> bool:
        """Packer: a condition refers to its own variable, and to nothing else."""
        good = 0
        for ref, loc in references(condition):
            if ref[:2] == ("var", name):
                good += 1
                continue
            self.problems.add(
                loc,
                path,
                f"the condition of variable `{name}` can only refer to the variable itself, "
                f"as var.{name}",
            )
            return False
        if not good:
            self.problems.add(condition.loc, path, f"the condition must refer to var.{name}")
            return False
        return True

    def type_of(self, tree: Tree[Any]) -> tuple[str, Any]:
        """A variable's ``type``: its text and parsed constraint."""
        return " ".join(self.text_of(tree).split()), type_from_expr(self.exprs.build(tree))

    def text_of(self, tree: Tree[Any]) -> str:
        """Source text of a tree (for type constraints such as ``list(string)``)."""
        if tree.meta.empty:
            return ""
        return self.text[tree.meta.start_pos : tree.meta.end_pos]

    # ------------------------------------------------------------------ build blocks

    def build_block(self, block: Block) -> BuildDecl:
        build = BuildDecl(block.loc)
        attributes, blocks = self.items(block.body)
        for key, loc, tree in attributes:
            if key == "name":  # Packer evaluates it with variables and locals
                node = self.value(tree)
                if isinstance(node, Scalar) and isinstance(node.value, str):
                    build.name = node.value
                else:
                    build.name_node = node
            elif key == "description":
                build.description = self.literal_string(tree, f"build.{key}")
            elif key == "sources":
                build.sources = self.value(tree)
            else:
                self.problems.add(
                    loc, f"build.{key}", f"unknown attribute `{key}`{suggest(key, BUILD_KEYS)}"
                )
        for inner in blocks:
            try:
                self.build_inner(inner, build)
            except HclSyntaxError as error:
                self.problems.add(error.loc, f"build.{inner.type}", error.message)
        return build

    def section(self, block: Block, ptype: str, type_loc: Loc, path: str) -> Section:
        body = self.body_node(block.body, block.loc, path)
        return Section(ptype, body, path, block.loc, type_loc=type_loc)

    def build_inner(self, block: Block, build: BuildDecl) -> None:
        n_prov = len(build.provisioners)
        n_post = len(build.post_processors)
        if block.type == "source":
            if not self.expect_labels(
                block, 1, 'one label: source "source.amazon-ebs.name" { ... }'
            ):
                return
            build.source_uses.append(self.source_use(block, block.labels[0][0], block.labels[0][1]))
        elif block.type in ("provisioner", "error-cleanup-provisioner", "post-processor"):
            if not self.expect_labels(block, 1, f'one label: {block.type} "type" {{ ... }}'):
                return
            ptype, type_loc = block.labels[0]
            if block.type == "provisioner":
                build.provisioners.append(
                    self.section(block, ptype, type_loc, f"build.provisioner[{n_prov}]")
                )
            elif block.type == "post-processor":
                build.post_processors.append(
                    [self.section(block, ptype, type_loc, f"build.post-processor[{n_post}]")]
                )
            elif build.error_cleanup_provisioner is not None:
                self.problems.add(
                    block.loc, block.type, "only one error-cleanup-provisioner is allowed"
                )
            else:
                build.error_cleanup_provisioner = self.section(
                    block, ptype, type_loc, "build.error-cleanup-provisioner"
                )
        elif block.type == "post-processors":
            if block.labels:
                self.problems.add(
                    block.labels[0][1], "build.post-processors", "this block takes no labels"
                )
            build.post_processors.append(self.chain(block, f"build.post-processors[{n_post}]"))
        elif block.type == "hcp_packer_registry":
            self.problems.warn(
                block.loc,
                "build.hcp_packer_registry",
                "hcp_packer_registry ignored: there is no HCP here",
            )
        elif block.type == "dynamic":
            self.build_dynamic(block, build)
        else:
            self.problems.add(
                block.loc,
                f"build.{block.type}",
                f"unknown block type `{block.type}`{suggest(block.type, BUILD_BLOCKS)}",
            )

    def chain(self, block: Block, path: str) -> list[Section]:
        """A ``post-processors { post-processor "a" {} post-processor "b" {} }`` sequence."""
        attributes, inner = self.items(block.body)
        for key, loc, _ in attributes:
            self.problems.add(
                loc,
                f"{path}.{key}",
                "unexpected attribute: a post-processors block holds post-processor blocks",
            )
        sections = []
        for i, b in enumerate(inner):
            if b.type != "post-processor":
                self.problems.add(b.loc, f"{path}.{b.type}", "expected post-processor blocks")
                continue
            if self.expect_labels(b, 1, 'one label: post-processor "type" { ... }'):
                ptype, type_loc = b.labels[0]
                sections.append(self.section(b, ptype, type_loc, f"{path}[{i}]"))
        return sections

    def source_use(self, block: Block, ref: str, loc: Loc) -> SourceUse:
        overrides = self.body_node(block.body, block.loc, f"build.source.{ref}")
        use = SourceUse(ref, loc, overrides)
        name_node = overrides.entries.pop("name", None)
        overrides.key_locs.pop("name", None)
        if name_node is not None:
            if isinstance(name_node, Scalar) and isinstance(name_node.value, str):
                use.name = name_node.value
            else:
                self.problems.add(
                    name_node.loc, f"build.source.{ref}.name", "expected a literal string"
                )
        return use

    def build_dynamic(self, block: Block, build: BuildDecl) -> None:
        if not block.labels:
            self.problems.add(
                block.loc, "build.dynamic", 'expected one label: dynamic "provisioner" { ... }'
            )
            return
        kind = block.labels[0][0]
        if kind in ("provisioner", "post-processor", "source"):
            dynamic = self.dynamic(block, "build", lambda b, p: b)
            if dynamic is None:
                return
            dynamic.content = self.body_node(
                dynamic.content.body, dynamic.content.loc, f"build.{kind}"
            )
            if not dynamic.labels:
                self.problems.add(
                    block.loc,
                    f"build.dynamic.{kind}.labels",
                    f'a dynamic "{kind}" needs `labels = ["..."]` (the {kind}\'s type)',
                )
                return
            if kind == "provisioner":
                build.provisioners.append(dynamic)
            elif kind == "source":
                build.source_uses.append(dynamic)
            else:
                build.post_processors.append(dynamic)
        elif kind == "post-processors":
            dynamic = self.dynamic(
                block, "build", lambda b, p: self.chain(b, "build.post-processors")
            )
            if dynamic is not None:
                build.post_processors.append(dynamic)
        else:
            self.problems.add(
                block.labels[0][1],
                "build.dynamic",
                f"a dynamic `{kind}` block is not supported yet here"
                if kind == "error-cleanup-provisioner"
                else f"unknown block type `{kind}`{suggest(kind, BUILD_BLOCKS)}",
            )


def _looks_like_sentences(text: str) -> bool:
    text = text.strip()
    first, last = text[0], text[-1]
    if first.isalpha() and not first.isupper():
        return False
    return last in ".?!"


# --------------------------------------------------------------------------- expressions


def references(node: Any) -> list[tuple[tuple[str, ...], Loc]]:
    """Every ``a.b.c`` traversal in a node or expression: (names, where). The names a ``for``
    expression binds (``k``, ``v`` in ``[for k, v in coll : ...]``) and a splat's element
    are local to it: what they read is no reference to anything outside."""
    out: list[tuple[tuple[str, ...], Loc]] = []

    def walk(obj: Any, bound: frozenset[str]) -> None:
        if isinstance(obj, Attr | Name):
            names: list[str] = []
            cur: Any = obj
            while isinstance(cur, Attr):
                names.append(cur.name)
                cur = cur.obj
            if isinstance(cur, Name):
                if cur.name not in bound:
                    names.append(cur.name)
                    out.append((tuple(reversed(names)), obj.loc))
                return
            walk(cur, bound)
            return
        if isinstance(obj, ForX | TmplFor):
            walk(obj.collection, bound)
            inner = bound | {obj.value_var} | ({obj.key_var} if obj.key_var else set())
            parts = (obj.body,) if isinstance(obj, TmplFor) else (obj.key, obj.value, obj.cond)
            for part in parts:
                walk(part, inner)
        elif isinstance(obj, Splat):
            walk(obj.obj, bound)
            walk(obj.each, bound | {SPLAT_ITEM})
        elif isinstance(obj, ExprNode):
            walk(obj.expr, bound)
        elif isinstance(obj, ListNode):
            for item in obj.items:
                walk(item, bound)
        elif isinstance(obj, MapNode):
            for item in obj.entries.values():
                walk(item, bound)
        elif isinstance(obj, list | tuple):
            for item in obj:
                walk(item, bound)
        elif dataclasses.is_dataclass(obj) and not isinstance(
            obj, Loc | Lit | Scalar | BadNode | type
        ):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name), bound)

    walk(node, frozenset())
    return out


Replacer = Callable[[Any], Any]


def substitute(obj: Any, replace: Replacer) -> Any:
    """A copy of a node/expression tree where ``replace(expr)`` (when not None) stands instead."""
    if isinstance(obj, str | int | float | bool | Loc) or obj is None:
        return obj
    if isinstance(obj, list):
        return [substitute(i, replace) for i in obj]
    if isinstance(obj, tuple):
        return tuple(substitute(i, replace) for i in obj)
    if isinstance(obj, dict):
        return {k: substitute(v, replace) for k, v in obj.items()}
    if isinstance(obj, Scalar | BadNode | Lit | Tree | Token):
        return obj
    if isinstance(obj, MapNode):
        return MapNode(
            {k: substitute(v, replace) for k, v in obj.entries.items()},
            obj.loc,
            dict(obj.key_locs),
            obj.block,
        )
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if not isinstance(obj, ExprNode | ListNode | DynamicBlock | Section):
            replaced = replace(obj)
            if replaced is not None:
                return replaced
        changes = {
            f.name: substitute(getattr(obj, f.name), replace)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def replace_traversal(root: str, values: dict[str, Any]) -> Replacer:
    """Replace ``root.<key>`` by the literal ``values[key]``."""

    def replace(expr: Any) -> Any:
        if (
            isinstance(expr, Attr)
            and isinstance(expr.obj, Name)
            and expr.obj.name == root
            and expr.name in values
        ):
            return Lit(values[expr.name], expr.loc)
        return None

    return replace


def replace_name(name: str, value: Any) -> Replacer:
    def replace(expr: Any) -> Any:
        if isinstance(expr, Name) and expr.name == name:
            return Lit(value, expr.loc)
        return None

    return replace


# --------------------------------------------------------------------------- dynamic blocks

Evaluate = Callable[[Node], Any]
Errors = list[tuple[EvalError, str]]


def dynamic_items(
    dynamic: DynamicBlock, evaluate: Evaluate, errors: Errors, path: str
) -> list[tuple[list[str], Any]]:
    """Expand one dynamic block: (labels, content with the iterator replaced) per element."""
    try:
        collection = evaluate(dynamic.for_each)
    except EvalError as error:
        if not error.reported:
            errors.append((error, f"{path}.for_each"))
        return []
    if _is_unknown(collection):
        return []
    if isinstance(collection, dict):
        pairs = list(collection.items())
    elif isinstance(collection, list | tuple):
        pairs = list(enumerate(collection))
    else:
        what = "null" if collection is None else type(collection).__name__
        errors.append(
            (
                EvalError(dynamic.for_each.loc, f"`for_each` needs a list, set or map, got {what}"),
                f"{path}.for_each",
            )
        )
        return []
    out = []
    for key, value in pairs:
        replace = replace_name(dynamic.iterator, {"key": key, "value": value})
        labels: list[str] = []
        try:
            for label in dynamic.labels:
                text = evaluate(substitute(label, replace))
                if not isinstance(text, str):
                    raise EvalError(label.loc, "a block label must be a string")
                labels.append(text)
        except EvalError as error:
            if not error.reported:
                errors.append((error, f"{path}.labels"))
            continue
        out.append((labels, substitute(dynamic.content, replace)))
    return out


def _is_unknown(value: Any) -> bool:
    from amibake.core.templates import evaluate as _evaluate

    unknown = getattr(_evaluate, "UNKNOWN", None)
    return unknown is not None and value is unknown


def expand_dynamic(node: Node, evaluate: Evaluate, errors: Errors, path: str = "") -> Node:
    """``node`` with every :class:`DynamicBlock` inside replaced by the blocks it makes.

    A block type that only dynamic blocks produced, and none this time, is left
    out (as if never written). ``errors`` receives (error, key path) pairs.
    """
    if isinstance(node, MapNode):
        out = MapNode({}, node.loc, dict(node.key_locs), node.block)
        for key, value in node.entries.items():
            kpath = join_path(path, key)
            if isinstance(value, ListNode) and any(
                isinstance(i, DynamicBlock) for i in value.items
            ):
                items: list[Any] = []
                for item in value.items:
                    if isinstance(item, DynamicBlock):
                        for labels, content in dynamic_items(item, evaluate, errors, kpath):
                            if labels:
                                errors.append(
                                    (
                                        EvalError(item.loc, f"`{item.type}` blocks take no labels"),
                                        kpath,
                                    )
                                )
                                continue
                            items.append(
                                expand_dynamic(
                                    content, evaluate, errors, join_path(kpath, len(items))
                                )
                            )
                    else:
                        items.append(
                            expand_dynamic(item, evaluate, errors, join_path(kpath, len(items)))
                        )
                if not items and all(isinstance(i, DynamicBlock) for i in value.items):
                    out.key_locs.pop(key, None)
                    continue
                out.entries[key] = ListNode(items, value.loc)
            else:
                out.entries[key] = expand_dynamic(value, evaluate, errors, kpath)
        return out
    if isinstance(node, ListNode):
        return ListNode(
            [
                expand_dynamic(i, evaluate, errors, join_path(path, n))
                for n, i in enumerate(node.items)
            ],
            node.loc,
        )
    return node


def has_dynamic(node: Any) -> bool:
    if isinstance(node, DynamicBlock):
        return True
    if isinstance(node, MapNode):
        return any(has_dynamic(v) for v in node.entries.values())
    if isinstance(node, ListNode):
        return any(has_dynamic(v) for v in node.items)
    return False


# --------------------------------------------------------------------------- builds -> sections


def parse_source_ref(ref: str) -> tuple[str, str] | None:
    """Packer's ``sourceRefFromString``: ``source.TYPE.NAME`` or ``TYPE.NAME``."""
    parts = ref.split(".")
    if len(parts) < 2:
        return None
    if len(parts) > 2:
        parts = parts[1:]
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        return None
    return parts[0], parts[1]


def _static(node: Node) -> Any:
    """The value of a node with no expression in it; raises :class:`_Deferred` otherwise."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, ListNode):
        return [_static(i) for i in node.items]
    if isinstance(node, MapNode):
        return {k: _static(v) for k, v in node.entries.items()}
    raise _Deferred


class _Deferred(Exception):
    pass


def needs_scope(build: BuildDecl) -> bool:
    """Whether turning ``build`` into sections needs variables (computed sources, dynamic)."""
    if build.sources is not None:
        try:
            _static(build.sources)
        except _Deferred:
            if not all(_traversal_ref(i) for i in getattr(build.sources, "items", [])):
                return True
    return build.name_node is not None or any(
        isinstance(x, DynamicBlock)
        for x in (*build.source_uses, *build.provisioners, *build.post_processors)
    )


def _traversal_ref(node: Node) -> str | None:
    """``source.amazon.x`` written without quotes (an attribute chain rooted at ``source``)."""
    if isinstance(node, Scalar) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ExprNode):
        refs = references(node.expr)
        if len(refs) == 1 and isinstance(node.expr, Attr) and refs[0][0][0] == "source":
            return ".".join(refs[0][0])
    return None


def assemble(raw: RawTemplate, evaluate: Evaluate | None, problems: Problems) -> None:
    """Turn ``raw.builds`` into ``raw.builders``, ``provisioners``, ``post_processors``.

    ``evaluate`` is None at read time (only literal ``sources`` and no build-level
    dynamic blocks can be handled then).
    """
    errors: Errors = []
    ev: Evaluate = evaluate or _static
    raw.builders, raw.provisioners, raw.post_processors = [], [], []
    raw.error_cleanup_provisioner = None
    used_names: dict[str, Loc] = {}
    cleanup_loc: Loc | None = None
    for build in raw.builds:
        bname = build.name or ""
        if build.name_node is not None:
            try:
                value = ev(build.name_node)
                if not isinstance(value, str):
                    raise EvalError(build.name_node.loc, "the build's name must be a string")
                bname = build.name = value
            except EvalError as error:
                if not error.reported:
                    errors.append((error, "build.name"))
        uses: list[SourceUse] = []
        if build.sources is not None:
            items = build.sources.items if isinstance(build.sources, ListNode) else None
            refs: list[tuple[Any, Loc]] = []
            if items is not None and all(_traversal_ref(i) for i in items):
                refs = [(_traversal_ref(i), i.loc) for i in items]
            else:
                try:
                    value = ev(build.sources)
                except EvalError as error:
                    if not error.reported:
                        errors.append((error, "build.sources"))
                    value = []
                if not isinstance(value, list | tuple):
                    problems.add(
                        build.sources.loc, "build.sources", "expected a list of source references"
                    )
                    value = []
                refs = [(v, build.sources.loc) for v in value]
            for ref, loc in refs:
                if not isinstance(ref, str) or parse_source_ref(ref) is None:
                    problems.add(
                        loc,
                        "build.sources",
                        f"invalid source reference `{ref}`: expected `source.TYPE.NAME` or "
                        "`TYPE.NAME`, "
                        "e.g. source.amazon-ebs.example",
                    )
                    continue
                uses.append(SourceUse(ref, loc))
        for item in build.source_uses:
            if isinstance(item, DynamicBlock):
                for labels, content in dynamic_items(item, ev, errors, "build.source"):
                    if len(labels) != 1:
                        errors.append(
                            (
                                EvalError(item.loc, "a dynamic source needs one label"),
                                "build.source",
                            )
                        )
                        continue
                    use = SourceUse(labels[0], item.loc, content)
                    name = content.entries.pop("name", None)
                    if name is not None:
                        try:
                            use.name = ev(name)
                        except EvalError as error:
                            errors.append((error, "build.source.name"))
                    uses.append(use)
            else:
                uses.append(item)
        if build.sources is None and not build.source_uses:
            problems.add(build.loc, "build.sources", "a build block must use at least one source")
        builder_names: list[str] = []
        build_keys: list[str] = []
        renames: dict[str, str] = {}
        for use in uses:
            parsed = parse_source_ref(use.ref)
            if parsed is None:
                problems.add(
                    use.loc,
                    "build.source",
                    f"invalid source reference `{use.ref}`: expected `source.TYPE.NAME` "
                    "or `TYPE.NAME`",
                )
                continue
            key = ".".join(parsed)
            section = raw.sources.get(key)
            if section is None:
                problems.add(
                    use.loc,
                    "build.sources",
                    f"no source `{use.ref}` is defined{suggest(key, raw.sources)}",
                )
                continue
            local = use.name or section.name or section.type
            name = local
            if name in used_names:
                if bname and f"{bname}.{local}" not in used_names:
                    name = f"{bname}.{local}"
                else:
                    n = 2
                    while f"{local}-{n}" in used_names:
                        n += 1
                    name = f"{local}-{n}"
                renames[f"{section.type}.{local}"] = name
                renames[local] = name
            used_names[name] = use.loc
            body = MapNode(
                dict(section.body.entries), section.body.loc, dict(section.body.key_locs), True
            )
            if use.body is not None:
                for k, v in use.body.entries.items():
                    existing = body.entries.get(k)
                    if existing is not None and not (
                        isinstance(existing, ListNode)
                        and isinstance(v, ListNode)
                        and existing.loc != v.loc
                        and _is_block_list(existing, v)
                    ):
                        problems.add(
                            use.body.key_loc(k),
                            f"build.source.{key}.{k}",
                            f"`{k}` is already set in source `{key}` "
                            f"(at {section.body.key_loc(k)}); "
                            "a build-level source block cannot override it (as in Packer)",
                        )
                        continue
                    if isinstance(existing, ListNode) and isinstance(v, ListNode):
                        # blocks of both are kept, as HCL merges bodies (checked just above)
                        body.entries[k] = ListNode([*existing.items, *v.items], existing.loc)
                    else:
                        body.entries[k] = v
                        body.key_locs[k] = use.body.key_loc(k)
            context = replace_traversal("source", {"name": local, "type": section.type})
            raw.builders.append(
                Section(
                    section.type,
                    substitute(body, context),
                    section.path,
                    section.loc,
                    name=name,
                    type_loc=section.type_loc,
                    packer_name=f"{bname + '.' if bname else ''}{section.type}.{local}",
                    build_name=section.name or section.type,
                )
            )
            builder_names.append(name)
            build_keys.append(key)
        if not any(raw.sources[k].type in BUILDER_TYPES for k in build_keys):
            continue  # its builders are all skipped (other types): so are its provisioners
        contexts = [
            (
                n,
                replace_traversal(
                    "source", {"name": _local_of(n, renames), "type": raw.sources[k].type}
                ),
            )
            for n, k in zip(builder_names, build_keys, strict=True)
        ]
        build_values: dict[str, Any] = {"name": bname}
        for var in BUILD_VARIABLES:
            build_values[var] = "{{ build `" + var + "` }}"
        build_ctx = replace_traversal("build", build_values)

        # each builder as `only`/`except` name it ("type.local") and its source's type
        scope_refs = [
            (f"{raw.sources[k].type}.{_local_of(n, renames)}", raw.sources[k].type)
            for n, k in zip(builder_names, build_keys, strict=True)
        ]
        scope_refs = [(r, t) for r, t in scope_refs if t in BUILDER_TYPES]
        scoped = functools.partial(
            _scoped, build_ctx, renames, tuple(builder_names), contexts, scope_refs
        )

        for item in build.provisioners:
            if isinstance(item, DynamicBlock):
                for labels, content in dynamic_items(item, ev, errors, "build.provisioner"):
                    section = _dynamic_section(
                        item, labels, content, f"build.provisioner[{len(raw.provisioners)}]", errors
                    )
                    if section is not None:
                        raw.provisioners.extend(scoped(section))
            else:
                raw.provisioners.extend(scoped(item))
        for item in build.post_processors:
            chains: list[list[Section]] = []
            if isinstance(item, DynamicBlock):
                for labels, content in dynamic_items(item, ev, errors, f"build.{item.type}"):
                    if item.type == "post-processors":
                        chains.append(content)
                    else:
                        section = _dynamic_section(
                            item,
                            labels,
                            content,
                            f"build.post-processor[{len(raw.post_processors)}]",
                            errors,
                        )
                        if section is not None:
                            chains.append([section])
            else:
                chains.append(item)
            for chain in chains:
                for section in chain:  # a chain runs its post-processors in order: flattened
                    raw.post_processors.extend(scoped(section))
        if build.error_cleanup_provisioner is not None:
            if raw.error_cleanup_provisioner is not None:
                problems.add(
                    build.error_cleanup_provisioner.loc,
                    "build.error-cleanup-provisioner",
                    f"error-cleanup-provisioner in more than one build block is not supported yet "
                    f"(first at {cleanup_loc})",
                )
            else:
                cleanup = scoped(build.error_cleanup_provisioner)
                raw.error_cleanup_provisioner = cleanup[0]
                cleanup_loc = cleanup[0].loc
    # A build that uses every builder needs no scope: its sections read as those of a
    # single-build template (and convert to JSON/TOML the same).
    every = tuple(b.name for b in raw.builders)
    for section in [*raw.provisioners, *raw.post_processors, raw.error_cleanup_provisioner]:
        if section is not None and set(section.builders) == set(every):
            section.builders = ()
    for failure, where in errors:
        problems.add(failure.loc, where, failure.message)
    if not raw.builds:
        problems.add(
            raw.loc or Loc(raw.file),
            "build",
            "a `build` block is required"
            if raw.sources
            else "a `build` block with `sources` is required",
        )


def _scoped(
    build_ctx: Replacer,
    renames: dict[str, str],
    builder_names: tuple[str, ...],
    contexts: list[tuple[str, Replacer]],
    sources: list[tuple[str, str]],
    section: Section,
) -> list[Section]:
    """A build's provisioner/post-processor, bound to the build's builders.

    ``build.*`` becomes the build's name or the run-time ``{{ build `X` }}``; a
    section that reads ``source.name``/``source.type`` is copied per builder.
    """
    body = substitute(section.body, build_ctx)
    runs_for = [ref for ref, _ in sources]
    only, excluded = _selector_values(body, "only"), _selector_values(body, "except")
    if only is not None and only:
        runs_for = [r for r in runs_for if r in only]
    elif excluded is not None:
        runs_for = [r for r in runs_for if r not in excluded]
    if not runs_for:
        return []  # Packer never starts it (OnlyExcept.Skip on `type.name`): neither do we
    _rename_selectors(body, renames)
    if not any(r[0][0] == "source" for r in references(body)):
        return [dataclasses.replace(section, body=body, builders=builder_names)]
    return [
        dataclasses.replace(section, body=substitute(body, ctx), builders=(n,))
        for n, ctx in contexts
    ]


def _selector_values(body: MapNode, key: str) -> list[str] | None:
    node = body.entries.get(key)
    if not isinstance(node, ListNode):
        return None
    values = [i.value for i in node.items if isinstance(i, Scalar) and isinstance(i.value, str)]
    return values if len(values) == len(node.items) else None


def _is_block_list(a: ListNode, b: ListNode) -> bool:
    return all(isinstance(i, MapNode) and i.block for i in (*a.items, *b.items))


def _local_of(name: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if new == name and "." not in old:
            return old
    return name


def _rename_selectors(body: MapNode, renames: dict[str, str]) -> None:
    if not renames:
        return
    for key in ("only", "except"):
        node = body.entries.get(key)
        if isinstance(node, ListNode):
            for item in node.items:
                if isinstance(item, Scalar) and item.value in renames:
                    item.value = renames[item.value]


def _dynamic_section(
    dynamic: DynamicBlock, labels: list[str], content: Any, path: str, errors: Errors
) -> Section | None:
    if len(labels) != 1:
        errors.append(
            (EvalError(dynamic.loc, f"a dynamic {dynamic.type} needs one label: its type"), path)
        )
        return None
    return Section(labels[0], content, path, dynamic.loc, type_loc=dynamic.loc)


# --------------------------------------------------------------------------- evaluation time


def prepare_hcl(raw: RawTemplate, evaluate: Evaluate, problems: Problems) -> None:
    """What an HCL2 template needs once variables are known: builds and dynamic blocks.

    Called by the loader before it evaluates sections; a no-op for other formats.
    """
    if raw.format != "hcl":
        return
    if not raw.assembled:
        assemble(raw, evaluate, problems)
        raw.assembled = True
        from amibake.core.templates.loader import normalize_builder

        for section in raw.builders:
            normalize_builder(section, problems)
    errors: Errors = []
    sections = [*raw.builders, *raw.provisioners, *raw.post_processors]
    if raw.error_cleanup_provisioner is not None:
        sections.append(raw.error_cleanup_provisioner)
    for section in sections:
        if has_dynamic(section.body):
            expanded = expand_dynamic(section.body, evaluate, errors, section.path)
            assert isinstance(expanded, MapNode)
            section.body = expanded
    for error, where in errors:
        problems.add(error.loc, where, error.message)


# --------------------------------------------------------------------------- versions


_CONSTRAINT = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+(?:\.\d+)*)(?:-[0-9A-Za-z.-]+)?\s*$")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def version_satisfies(version: str, constraints: str) -> bool:
    """hashicorp/go-version constraints: ``>= 1.7.0, < 2``, ``~> 1.9``, ``!= 1.8.1``."""
    have = _version(version)
    for part in constraints.split(","):
        m = _CONSTRAINT.match(part)
        if m is None:
            raise ValueError(f"malformed version constraint `{part.strip()}`")
        op, number = m.group(1) or "=", m.group(2)
        want = _version(number)
        width = max(len(have), len(want), 3)
        h = have + (0,) * (width - len(have))
        w = want + (0,) * (width - len(want))
        if op == "~>":
            # ~> 1.9 means >= 1.9, < 2.0; ~> 1.9.3 means >= 1.9.3, < 1.10
            fixed = max(len(want) - 1, 1)
            ok = h >= w and h[:fixed] == w[:fixed]
        else:
            ok = {
                "=": h == w,
                "!=": h != w,
                ">": h > w,
                ">=": h >= w,
                "<": h < w,
                "<=": h <= w,
            }[op]
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------- entry points


def read_hcl_files(files: list[tuple[str, str]], problems: Problems) -> RawTemplate | None:
    """Several HCL2 files ``(text, file name)`` read as ONE template, as Packer reads a folder.

    Variables, locals, sources, data sources and builds of all files share one
    namespace; defining a name twice is a located error. ``*.pkr.json`` files
    are read in HCL2's JSON syntax (:mod:`amibake.core.templates.hcljson`). ``None`` when
    no file could be parsed at all.
    """
    if not files:
        return None
    first = files[0][1]
    raw = RawTemplate(first, "hcl", loc=Loc(first, 1, 1))
    builds: list[tuple[Block, HclReader]] = []
    parsed = 0
    for text, file in files:
        if file.endswith(".json"):
            from amibake.core.templates.hcljson import JsonSyntaxReader

            reader: HclReader = JsonSyntaxReader(file, problems)
        else:
            reader = HclReader(file, problems)
        if reader.read_into(text, raw, builds):
            parsed += 1
    if not parsed:
        return None
    for block, reader in builds:
        try:
            raw.builds.append(reader.build_block(block))
        except HclSyntaxError as error:
            problems.add(error.loc, "build", error.message)
    if any(needs_scope(b) for b in raw.builds):
        raw.assembled = False
        if not raw.builds:  # pragma: no cover - needs_scope implies builds
            assemble(raw, None, problems)
    else:
        try:
            assemble(raw, None, problems)
        except _Deferred:  # pragma: no cover - needs_scope said no
            raw.assembled = False
    return raw


def read_hcl(text: str, file: str, problems: Problems) -> RawTemplate | None:
    return read_hcl_files([(text, file)], problems)


def with_builders(obj: Any, section: Section) -> Any:
    """A decoded provisioner/post-processor bound to its HCL2 build's builders."""
    if obj is None or not section.builders:
        return obj
    names = {f.name for f in dataclasses.fields(obj)}
    if "builders" not in names:
        return obj
    return dataclasses.replace(obj, builders=section.builders)


def validate_variable(
    decl: VariableDecl, value: Any, where: Loc, evaluate: Evaluate, problems: Problems
) -> None:
    """Run a variable's ``validation`` blocks on its chosen value (Packer's rules).

    A false condition is the author's ``error_message``, located where the value
    was given (the default, a var-file line, the command line), as Packer does.
    """
    for condition, message, block_loc in decl.validations:
        bound = substitute(condition, replace_traversal("var", {decl.name: value}))
        try:
            result = evaluate(bound)
        except EvalError as error:
            if not error.reported:
                problems.add(
                    error.loc, f"var.{decl.name}", f"validation condition failed: {error.message}"
                )
            continue
        if _is_unknown(result):
            continue
        if result is None or result not in (True, False, "true", "false"):
            problems.add(
                condition.loc,
                f"var.{decl.name}",
                "a validation condition must be true or false",
            )
            continue
        if result in (False, "false"):
            loc = where if where.file != "?" else block_loc
            problems.add(loc, f"var.{decl.name}", message)
