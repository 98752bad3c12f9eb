"""Packer's ``ansible`` provisioner: ``ansible-playbook`` on the user's machine.

Ansible reaches the instance directly over SSH (Packer's ``use_proxy = false``), with the
build's temporary key and an inventory written for this run only: both files are mode
0600 in a private directory removed afterwards (``keep_inventory_file`` keeps the
inventory). Unlike Packer, the instance's host key is checked: Ansible gets a
known_hosts file holding the key the build verified.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import (
    ProvisionError,
    communicator,
    local_path,
    with_build_data,
)
from amibake.core.engine.provisioners.local import execute_local
from amibake.core.model import AnsibleProvisioner

INSTALL_HINT = "install it with: pip install 'amibake[ansible]'"


def inventory_text(ctx: BuildContext, provisioner: AnsibleProvisioner, user: str) -> str:
    """Packer's inventory for a direct connection: the host line, then each group."""
    host = (
        f"{provisioner.host_alias} ansible_host={ctx.ssh_host} ansible_user={user} "
        f"ansible_port={ctx.ssh_port}\n"
    )
    lines = [host]
    for group in provisioner.groups:
        lines.append(f"[{group}]\n{host}")
    for group in provisioner.empty_groups:
        lines.append(f"[{group}]\n")
    return "".join(lines)


def _private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


async def run_ansible(ctx: BuildContext, number: int, provisioner: AnsibleProvisioner) -> None:
    provisioner = with_build_data(ctx, provisioner, f"ansible provisioner {number}")
    playbook_command = shutil.which(provisioner.command)
    if playbook_command is None:
        raise ProvisionError(f"ansible: `{provisioner.command}` is not on PATH; {INSTALL_HINT}")
    playbook = local_path(ctx, provisioner.playbook_file)
    if not playbook.is_file():
        raise ProvisionError(f"ansible: no such playbook {playbook}")
    if ctx.private_key is None:
        # Packer's adapter proxies password and agent logins; amibake connects Ansible
        # straight to the instance, which needs a key file.
        raise ProvisionError(
            "ansible: logging in with `ssh_password` or `ssh_agent_auth` is not supported yet "
            "by amibake's ansible provisioner (it needs the temporary key or "
            "`ssh_private_key_file`)"
        )
    assert ctx.ssh_host is not None
    comm = await communicator(ctx)
    user = provisioner.user or ctx.builder.ssh_username
    parent = (
        local_path(ctx, provisioner.inventory_directory)
        if (provisioner.inventory_directory)
        else None
    )
    own_inventory = (
        local_path(ctx, provisioner.inventory_file) if provisioner.inventory_file else None
    )
    if own_inventory is not None and not own_inventory.exists():
        raise ProvisionError(f"ansible: no such inventory_file {own_inventory}")
    scratch = Path(tempfile.mkdtemp(prefix="amibake-ansible-"))
    # the user's inventory_file is used as is (Packer writes none then)
    inventory = own_inventory or (parent or scratch) / f"amibake-inventory-{ctx.build_id}"
    try:
        key_file = scratch / "key"
        _private(key_file, ctx.private_key.export_private_key("openssh"))
        known_hosts = scratch / "known_hosts"
        entry = _host_key_line(comm)
        if entry:
            _private(known_hosts, f"[{ctx.ssh_host}]:{ctx.ssh_port} {entry}\n".encode())
        if own_inventory is None:
            _private(inventory, inventory_text(ctx, provisioner, user).encode())
        environment = _environment(ansible_env_vars(provisioner))
        if provisioner.galaxy_file:
            await _galaxy(ctx, number, provisioner, environment)
        ssh_args = "-o IdentitiesOnly=yes"
        if entry:
            ssh_args += f" -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts}"
        argv = [
            playbook_command,
            "-e",
            f"packer_build_name={ctx.build_name} packer_builder_type={ctx.builder.type}",
            "--ssh-extra-args",
            ssh_args,
            *provisioner.extra_arguments,
            "-e",
            f"ansible_ssh_private_key_file={key_file}",
            "-i",
            str(inventory),
            str(playbook),
        ]
        ctx.say(f"Executing Ansible: {' '.join(argv[1:])}")
        status = await execute_local(ctx, number, argv, {**os.environ, **environment})
        if status != 0:
            raise ProvisionError(f"ansible provisioner {number}: ansible-playbook exited {status}")
    finally:
        if own_inventory is None and not provisioner.keep_inventory_file:
            inventory.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _host_key_line(comm: object) -> str:
    """``<algorithm> <base64>`` of the host key the build's connection verified."""
    conn = getattr(comm, "_conn", None)
    key = conn.get_server_host_key() if conn is not None else None
    if key is None:
        return ""
    line: str = key.export_public_key("openssh").decode().strip()
    return line


def ansible_env_vars(provisioner: AnsibleProvisioner) -> tuple[str, ...]:
    """The template's ``ansible_env_vars`` plus what Packer appends: without ``use_sftp``,
    Ansible copies files with scp (``ANSIBLE_SCP_IF_SSH=True``, last, so it wins)."""
    extra = () if provisioner.use_sftp else ("ANSIBLE_SCP_IF_SSH=True",)
    return (*provisioner.ansible_env_vars, *extra)


def _environment(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in pairs:
        key, _, value = item.partition("=")
        out[key] = value
    return out


async def _galaxy(
    ctx: BuildContext, number: int, provisioner: AnsibleProvisioner, environment: Mapping[str, str]
) -> None:
    """``ansible-galaxy install`` the roles (and collections) of ``galaxy_file`` first."""
    command = shutil.which(provisioner.galaxy_command)
    if command is None:
        raise ProvisionError(
            f"ansible: `{provisioner.galaxy_command}` is not on PATH; {INSTALL_HINT}"
        )
    assert provisioner.galaxy_file is not None
    galaxy_file = local_path(ctx, provisioner.galaxy_file)
    text = galaxy_file.read_text(errors="replace") if galaxy_file.is_file() else ""
    runs = [["install", "-r", str(galaxy_file)]]
    if provisioner.roles_path:
        runs[0] += ["-p", str(local_path(ctx, provisioner.roles_path))]
    if "collections:" in text:
        collections = ["collection", "install", "-r", str(galaxy_file)]
        if provisioner.collections_path:
            collections += ["-p", str(local_path(ctx, provisioner.collections_path))]
        runs.append(collections)
    for args in runs:
        if provisioner.galaxy_force_install:
            args.append("--force")
        if provisioner.galaxy_force_with_deps:
            args.append("--force-with-deps")
        ctx.say(f"Executing Ansible Galaxy: {' '.join(args)}")
        status = await execute_local(ctx, number, [command, *args], {**os.environ, **environment})
        if status != 0:
            raise ProvisionError(f"ansible provisioner {number}: ansible-galaxy exited {status}")
