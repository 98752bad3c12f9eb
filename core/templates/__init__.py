"""Templates: Packer JSON, Packer HCL2 and amibake TOML into one
:class:`~amibake.core.model.BuildSpec`.

Public API::

    load(path, *, vars=(), var_files=(), env=None, now=None, uuid_factory=None, format=None)
    loads(text, *, file=..., format="json", ...)
    convert(path, to="toml" | "json") -> str
    format_template(path) -> str          # canonical text (``amibake fmt``)
    TemplateError / Problem / Loc

Every problem a user can cause is a :class:`TemplateError` listing all
problems with ``file:line:col``; an unreadable file is a
:class:`~amibake.core.errors.UsageError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from amibake.core.templates.errors import Loc, Problem, Problems, TemplateError
from amibake.core.templates.loader import detect_format, load, loads, parse_raw, read_text
from amibake.core.templates.nodes import RawTemplate

__all__ = [
    "Loc",
    "Problem",
    "TemplateError",
    "convert",
    "detect_format",
    "format_template",
    "load",
    "loads",
    "read_raw",
]


def read_raw(path: str | os.PathLike[str]) -> RawTemplate:
    """The template before evaluation (for converters and tools)."""
    file_path = Path(path)
    text = read_text(file_path)
    problems = Problems()
    raw = parse_raw(text, str(file_path), detect_format(file_path, text), problems)
    problems.raise_if_any()
    assert raw is not None
    return raw


def convert(path: str | os.PathLike[str], to: str) -> str:
    """The template at ``path`` written as amibake TOML (``to="toml"``) or Packer JSON."""
    from amibake.core.templates.writers import to_json, to_toml

    raw = read_raw(path)
    return to_toml(raw) if to == "toml" else to_json(raw)


def format_template(path: str | os.PathLike[str]) -> str:
    """The canonical text of the template at ``path`` (same format)."""
    from amibake.core.templates.hclfmt import format_hcl
    from amibake.core.templates.writers import format_json, format_toml

    file_path = Path(path)
    text = read_text(file_path)
    fmt = detect_format(file_path, text)
    if fmt == "json":
        return format_json(text, str(file_path))
    if fmt == "hcl":
        return format_hcl(text, str(file_path))
    return format_toml(text, str(file_path))
