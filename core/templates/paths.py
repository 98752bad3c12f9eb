"""Where a relative path of a template's options points on the user's machine.

Packer's plugins open the files their options name (file/shell sources, scripts,
``ssh_private_key_file``, ``user_data_file``, playbooks) as they are written, so a relative
path is relative to the directory ``packer build`` runs in; only HCL's functions (``file()``,
``templatefile()``...) resolve against ``path.root``, the template's folder (hcl2template's
parser: a file template's directory, or the folder template itself). amibake follows the
working directory and, as builds also start from the app wherever it was opened, falls back
to ``path.root`` for a file that is not in the working directory. A path written to (a file
download's destination) is the working directory's when the template lies inside it (a build
run as Packer runs, from the project) and ``path.root``'s otherwise.
"""

from __future__ import annotations

from pathlib import Path

from amibake.core.model import BuildSpec


def template_root(spec: BuildSpec) -> Path | None:
    """HCL's ``path.root``: the template file's directory, or the folder template itself."""
    source = spec.source_file
    if source is None:
        return None
    return source if source.is_dir() else source.parent


def local_path(spec: BuildSpec, text: str, *, write: bool = False, cwd: Path | None = None) -> Path:
    """The path ``text`` (an option's value) names on the user's machine."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    here = cwd or Path.cwd()
    root = template_root(spec)
    if root is None:
        return here / path
    if write:
        inside = root.resolve().is_relative_to(here.resolve())
        return (here if inside else root) / path
    found = here / path
    return found if found.exists() or not (root / path).exists() else root / path
