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

from amibake.core.errors import AmibakeError
from amibake.core.model import (
    AmazonEbsBuilder,
    AnsibleLocalProvisioner,
    AnsibleProvisioner,
    BuildSpec,
    FileProvisioner,
    ShellLocalPostProcessor,
    ShellLocalProvisioner,
    ShellProvisioner,
)
from amibake.core.templates.paths import local_path


def named_files(spec: BuildSpec, builder: AmazonEbsBuilder) -> Iterator[tuple[str, str]]:
    """(what names it, the path as written) for each local file ``builder``'s run reads."""
    if builder.user_data_file:
        yield "user_data_file", builder.user_data_file
    if builder.ssh_private_key_file:
        yield "ssh_private_key_file", builder.ssh_private_key_file
    for number, provisioner in enumerate(spec.provisioners_for(builder), start=1):
        what = f"{provisioner.type} provisioner {number}"
        if isinstance(provisioner, ShellProvisioner | ShellLocalProvisioner):
            for script in (provisioner.script, *provisioner.scripts):
                if script:
                    yield f"{what} script", script
        elif isinstance(provisioner, FileProvisioner):
            if provisioner.direction == "upload" and not provisioner.generated:
                for source in (provisioner.source, *provisioner.sources):
                    if source:
                        yield f"{what} source", source
        elif isinstance(provisioner, AnsibleProvisioner):
            yield f"{what} playbook_file", provisioner.playbook_file
        elif isinstance(provisioner, AnsibleLocalProvisioner):
            for playbook in (provisioner.playbook_file, *provisioner.playbook_files):
                if playbook:
                    yield f"{what} playbook", playbook
    for number, post in enumerate(spec.post_processors, start=1):
        if isinstance(post, ShellLocalPostProcessor) and post.applies_to(builder):
            for script in (post.script, *post.scripts):
                if script:
                    yield f"shell-local post-processor {number} script", script


def check_local_files(spec: BuildSpec, builder: AmazonEbsBuilder) -> None:
    """Raise one error naming every local file of ``builder``'s run that does not exist."""
    missing = [
        f"{what} {text}"
        for what, text in named_files(spec, builder)
        if "{{" not in text and not local_path(spec, text).exists()
    ]
    if missing:
        raise AmibakeError(
            "files the template names are not there (as `packer validate` says): "
            + "; ".join(missing)
        )
