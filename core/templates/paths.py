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
from amibake.core.paths import expand_home


def template_root(spec: BuildSpec) -> Path | None:
    """HCL's ``path.root``: the template file's directory, or the folder template itself."""
    return None if spec.source_file is None else root_of(spec.source_file)


def root_of(source: Path) -> Path:
    """``path.root`` of the template at ``source``: its directory, or the folder itself."""
    return source if source.is_dir() else source.parent


def local_path(spec: BuildSpec, text: str, *, write: bool = False, cwd: Path | None = None) -> Path:
    """The path ``text`` (an option's value) names on the user's machine."""
    return path_under(template_root(spec), text, write=write, cwd=cwd)


def path_under(
    root: Path | None, text: str, *, write: bool = False, cwd: Path | None = None
) -> Path:
    """:func:`local_path` for a template whose ``path.root`` is ``root``."""
    path = expand_home(text)
    if path.is_absolute():
        return path
    here = cwd or Path.cwd()
    if root is None:
        return here / path
    if write:
        inside = root.resolve().is_relative_to(here.resolve())
        return (here if inside else root) / path
    found = here / path
    return found if found.exists() or not (root / path).exists() else root / path


#: The options that name a file on the user's machine which a build reads, by builder,
#: provisioner or post-processor type: Packer's validate fails when one is not there.
LOCAL_FILE_OPTIONS: dict[str, tuple[str, ...]] = {
    "amazon-ebs": ("user_data_file", "ssh_private_key_file"),
    "shell": ("script", "scripts"),
    "shell-local": ("script", "scripts"),
    "file": ("source", "sources"),
    "ansible": ("playbook_file",),
    "ansible-local": ("playbook_file", "playbook_files"),
}


def local_file_options(
    kind: str, direction: object = None, generated: bool = False
) -> tuple[str, ...]:
    """:data:`LOCAL_FILE_OPTIONS` of ``kind``; none for a file provisioner that downloads (its
    source is on the instance) or whose source an earlier provisioner generates."""
    if kind == "file" and (direction == "download" or generated):
        return ()
    return LOCAL_FILE_OPTIONS.get(kind, ())


def checkable(text: str) -> bool:
    """A path written out, not one a run-time template (``{{ build `ID` }}``) makes."""
    return bool(text) and "{{" not in text
