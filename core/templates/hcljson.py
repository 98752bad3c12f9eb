"""HCL2's JSON syntax (``*.pkr.json``) read as Packer reads it.

Packer decodes a ``.pkr.json`` file with HCL's JSON parser against the same
schema as a ``.pkr.hcl`` file (hashicorp/hcl ``json`` package, its spec.md):

* The root object is a body. In a body, a property whose name is a block type
  of that body is one or more blocks: its value is an object keyed by the first
  label, nested once per further label; at each level (and at the leaf) an array
  of objects stands for several entries, in order. Repeated property names are
  allowed and merge (``"source": {...}, "source": {...}``).
* Every other property is an attribute. A string is a template (``${ }`` and
  ``%{ }``, with ``$${``/``%%{`` escapes); numbers, booleans and null are literal;
  arrays and objects hold further values of the same kind.
* A property named ``//`` in a body is a comment.
* Where HCL expects a keyword or a type rather than a value (a variable's
  ``type``, a dynamic block's ``iterator``), the string holds that expression.

The block structure then goes through :class:`~amibake.core.templates.hcl.HclReader`
unchanged, so both syntaxes share every rule and message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amibake.core.templates.errors import Loc, Problems
from amibake.core.templates.hcl import Block, HclReader
from amibake.core.templates.hclexpr import HclSyntaxError, parse_expression, parse_template
from amibake.core.templates.hcltypes import type_from_expr
from amibake.core.templates.jsonpos import DUPLICATE, parse_json
from amibake.core.templates.nodes import (
    BadNode,
    ExprNode,
    ListNode,
    MapNode,
    Name,
    Node,
    RawTemplate,
    Scalar,
    expr_to_node,
)

#: Block types (and their label counts) of each kind of body; "" is the file's root.
#: Bodies not listed (sources, provisioners, data sources...) hold attributes and
#: ``dynamic`` blocks only: their nested blocks read as objects, which the schema
#: decoder accepts where a block goes.
BODY_BLOCKS: dict[str, dict[str, int]] = {
    "": {
        "variable": 1,
        "variables": 0,
        "locals": 0,
        "local": 1,
        "source": 2,
        "build": 0,
        "packer": 0,
        "data": 2,
        "hcp_packer_registry": 0,
    },
    "variable": {"validation": 0},
    "build": {
        "source": 1,
        "provisioner": 1,
        "post-processor": 1,
        "post-processors": 0,
        "error-cleanup-provisioner": 1,
        "hcp_packer_registry": 0,
        "dynamic": 1,
    },
    "post-processors": {"post-processor": 1},
    "packer": {"required_plugins": 0},
    "dynamic": {"content": 0},
    "variables": {},
    "locals": {},
    "local": {},
    "validation": {},
    "required_plugins": {},
    "hcp_packer_registry": {},
}
OTHER_BODY_BLOCKS = {"dynamic": 1}
COMMENT_KEY = "//"


@dataclass
class JsonBody:
    """A JSON object read as the body of a block of type ``kind``."""

    node: MapNode
    kind: str


def _key(stored: str) -> str:
    return stored.split(DUPLICATE, 1)[0]


class JsonSyntaxReader(HclReader):
    """:class:`HclReader` over a JSON document: same blocks, same checks."""

    def read_into(self, text: str, raw: RawTemplate, builds: list[tuple[Block, HclReader]]) -> bool:
        self.text = text
        root = parse_json(text, self.file, self.problems, self.on_string, keep_duplicates=True)
        if root is None:
            return False
        if not isinstance(root, MapNode):
            self.problems.add(root.loc, "", "the root of a .pkr.json file must be a JSON object")
            return False
        raw.loc = raw.loc or root.loc
        attributes, blocks = self.items(JsonBody(root, ""))
        self.read_top(attributes, blocks, raw, builds)
        return True

    def on_string(self, text: str, loc: Loc, path: str) -> Node:
        try:
            return expr_to_node(parse_template(text, Loc(loc.file, loc.line, loc.col + 1)))
        except HclSyntaxError as error:
            self.problems.add(error.loc, path, error.message)
            return BadNode(error.loc)

    # ------------------------------------------------------------------ bodies

    def items(self, body: Any) -> tuple[list[tuple[str, Loc, Any]], list[Block]]:
        assert isinstance(body, JsonBody)
        schema = BODY_BLOCKS.get(body.kind, OTHER_BODY_BLOCKS)
        attributes: list[tuple[str, Loc, Any]] = []
        blocks: list[Block] = []
        for stored, value in body.node.entries.items():
            name = _key(stored)
            loc = body.node.key_loc(stored)
            if name == COMMENT_KEY:
                continue
            if name in schema or body.kind == "":  # the root holds blocks only
                self.unpack(value, name, schema.get(name, 0), [], blocks)
                continue
            if body.kind == "dynamic" and name == "iterator":
                value = self.keyword(value)
            attributes.append((name, loc, value))
        return attributes, blocks

    def unpack(
        self,
        value: Node,
        block_type: str,
        n_labels: int,
        labels: list[tuple[str, Loc]],
        out: list[Block],
    ) -> None:
        """One block property: labels as nested object keys, arrays of objects at any level."""
        elements = value.items if isinstance(value, ListNode) else [value]
        for element in elements:
            if not isinstance(element, MapNode):
                what = "object keyed by the block's labels" if len(labels) < n_labels else "object"
                self.problems.add(
                    element.loc,
                    ".".join([block_type, *(label for label, _ in labels)]),
                    f"a `{block_type}` block is written as a JSON {what}",
                )
                continue
            if len(labels) == n_labels:
                out.append(
                    Block(block_type, list(labels), JsonBody(element, block_type), element.loc)
                )
                continue
            for stored, inner in element.entries.items():
                label = (_key(stored), element.key_loc(stored))
                self.unpack(inner, block_type, n_labels, [*labels, label], out)

    def value(self, tree: Any) -> Node:
        node: Node = tree
        self.no_duplicates(node)
        return node

    def no_duplicates(self, node: Node) -> None:
        """Repeated keys are allowed only for blocks: in a value they are an error."""
        if isinstance(node, MapNode):
            for stored in list(node.entries):
                if DUPLICATE in stored:
                    self.problems.add(
                        node.key_loc(stored),
                        _key(stored),
                        "duplicate key (it is already set above in this object)",
                    )
                    del node.entries[stored]
            for item in node.entries.values():
                self.no_duplicates(item)
        elif isinstance(node, ListNode):
            for item in node.items:
                self.no_duplicates(item)

    def keyword(self, node: Node) -> Node:
        """A string that holds a bare name (``"iterator": "item"``)."""
        if isinstance(node, Scalar) and isinstance(node.value, str):
            return ExprNode(Name(node.value, node.loc), node.loc)
        return node

    def type_of(self, tree: Any) -> tuple[str, Any]:
        node: Node = tree
        if not (isinstance(node, Scalar) and isinstance(node.value, str)):
            raise HclSyntaxError(
                node.loc, 'a type is written as a string in JSON, e.g. "list(string)"'
            )
        text = " ".join(node.value.split())
        expr = parse_expression(text, Loc(node.loc.file, node.loc.line, node.loc.col + 1))
        return text, type_from_expr(expr)


def read_hcl_json(text: str, file: str, problems: Problems) -> RawTemplate | None:
    """One ``*.pkr.json`` file as a template (see
    :func:`amibake.core.templates.hcl.read_hcl_files`)."""
    from amibake.core.templates.hcl import read_hcl_files

    return read_hcl_files([(text, file)], problems)
