"""Canonical formatting of HCL2 templates, like ``packer fmt``.

python-hcl2 can re-render a document but drops comments and spacing, so we
format line by line instead, guided by the positions of python-hcl2's tokens:
indent two spaces per open bracket, align the ``=`` of consecutive attributes,
trim trailing spaces and runs of blank lines. Heredoc bodies, block comments
and multi-line strings are left untouched. The result is checked to parse to
the same document; if it does not, the text is returned unchanged.
"""

from __future__ import annotations

from lark import Token

from amibake.core.templates.errors import Loc, TemplateError
from amibake.core.templates.hclexpr import HclSyntaxError, parse_tree

_OPEN = {"LBRACE", "LSQB", "LPAR", "INTERP_START", "DIRECTIVE_START"}
_CLOSE = {"RBRACE", "RSQB", "RPAR"}


def _document(text: str) -> object:
    import hcl2
    from hcl2.utils import SerializationOptions

    try:
        return hcl2.serialize(
            hcl2.parses(text), serialization_options=SerializationOptions(with_comments=False)
        )
    except Exception:  # any failure: treat as "not equal", never crash fmt
        return None


def _one_space_around_equals(line: str) -> str:
    head, sep, rest = line.partition("=")
    if not sep or '"' in head:
        return line
    return f"{head.rstrip()} = {rest.lstrip()}"


def format_hcl(text: str, file: str) -> str:
    try:
        tree = parse_tree(text, lambda line, col: Loc(file, line, col))
    except HclSyntaxError as error:
        from amibake.core.templates.errors import Problem

        raise TemplateError([Problem(error.loc, "", error.message)]) from None
    lines = text.split("\n")
    protected: set[int] = set()
    depth_at: dict[int, int] = {}
    first_type: dict[int, str] = {}
    depth = 0
    tokens = [t for t in tree.scan_values(lambda v: isinstance(v, Token))]
    tokens.sort(key=lambda t: (t.line or 0, t.column or 0))
    for token in tokens:
        line = token.line or 1
        if line not in depth_at:
            depth_at[line] = depth
            first_type[line] = token.type
        if token.type in _OPEN:
            depth += 1
        elif token.type in _CLOSE:
            depth = max(depth - 1, 0)
        value = str(token)
        if ("\n" in value and token.type != "NL_OR_COMMENT") or value.startswith("/*"):
            end = line + value.count("\n")
            last = end - 1 if value.endswith("\n") else end
            protected.update(range(line + 1, last + 1))
    # `=` positions of attributes and object elements that start their line
    equals: dict[int, int] = {}
    multi_line: set[int] = set()
    for node in tree.iter_subtrees():
        if node.data not in ("attribute", "object_elem"):
            continue
        for child in node.children:
            if isinstance(child, Token) and child.type in ("EQ",) and child.line is not None:
                start = node.meta.line if not node.meta.empty else child.line
                end = node.meta.end_line if not node.meta.empty else child.line
                if start != end:
                    # a multi-line value (object, list, heredoc) is not aligned, as in packer fmt
                    multi_line.add(child.line)
                elif start == child.line and (child.column or 0) > 0:
                    col = (child.column or 1) - 1 + len(str(child)) - 1
                    equals[child.line] = col
    out: list[str] = []
    run: list[int] = []
    run_level = -1

    def flush() -> None:
        if not run:
            return
        width = max(len(out[i].split("\x00", 1)[0].rstrip()) for i in run)
        for i in run:
            key, rest = out[i].split("\x00", 1)
            key = key.rstrip()
            out[i] = f"{key}{' ' * (width - len(key))} = {rest.strip()}"
        run.clear()

    previous_depth = None
    for index, line in enumerate(lines):
        number = index + 1
        if number in protected:
            flush()
            out.append(line)
            continue
        stripped = line.strip()
        if not stripped:
            flush()
            if out and out[-1] != "":
                out.append("")
            continue
        level = depth_at.get(number, previous_depth if previous_depth is not None else 0)
        if first_type.get(number) in _CLOSE:
            level = max(level - 1, 0)
        indent = "  " * level
        if number in equals:
            col = equals[number]
            key = line[:col].strip()
            rest = line[col + 1 :]
            if run and run_level != level:
                flush()
            run_level = level
            out.append(f"{indent}{key}\x00{rest}")
            run.append(len(out) - 1)
        else:
            flush()
            if number in multi_line:
                out.append(indent + _one_space_around_equals(stripped))
            else:
                out.append(indent + stripped)
        previous_depth = level
    flush()
    while out and out[-1] == "":
        out.pop()
    while out and out[0] == "":
        out.pop(0)
    result = "\n".join(out) + "\n"
    if _document(result) != _document(text):
        return text
    return result
