"""The files on the user's machine a build will read, checked before anything is created.

``packer validate`` prepares every provisioner, and a missing ``script`` ("Bad script"), file
``source`` ("Bad source"), ``user_data_file`` or playbook fails there. amibake reads
templates without touching the disk, so a build checks these files first: a missing one
stops it before any instance is launched, rather than at its provisioner (all of them in
one line). A name still holding a run-time template (``{{ build `ID` }}``) is left to the
provisioner, which knows it then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from amibake.core.errors import AmibakeError
from amibake.core.model import AmazonEbsBuilder, BuildSpec, ShellLocalPostProcessor
from amibake.core.templates.paths import checkable, local_file_options, local_path


def _named(config: Any, what: str) -> Iterator[tuple[str, str]]:
    """(what names it, the path) for each local file ``config`` (a builder, provisioner or
    post-processor) names, an option of :data:`LOCAL_FILE_OPTIONS` of its type."""
    options = local_file_options(
        config.type, getattr(config, "direction", None), getattr(config, "generated", False)
    )
    for key in options:
        value = getattr(config, key)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str) and checkable(text):
                yield f"{what}{key.removesuffix('s')}", text


def named_files(spec: BuildSpec, builder: AmazonEbsBuilder) -> Iterator[tuple[str, str]]:
    """(what names it, the path as written) for each local file ``builder``'s run reads."""
    yield from _named(builder, "")
    for number, provisioner in enumerate(spec.provisioners_for(builder), start=1):
        yield from _named(provisioner, f"{provisioner.type} provisioner {number} ")
    for number, post in enumerate(spec.post_processors, start=1):
        if isinstance(post, ShellLocalPostProcessor) and post.applies_to(builder):
            yield from _named(post, f"shell-local post-processor {number} ")


def check_local_files(spec: BuildSpec, builder: AmazonEbsBuilder) -> None:
    """Raise one error naming every local file of ``builder``'s run that does not exist."""
    missing = [
        f"{what} {text}"
        for what, text in named_files(spec, builder)
        if not local_path(spec, text).exists()
    ]
    if missing:
        raise AmibakeError(
            "files the template names are not there (as `packer validate` says): "
            + "; ".join(missing)
        )
