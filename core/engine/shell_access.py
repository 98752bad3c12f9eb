"""A shell on a build's instance: the OpenSSH command line that logs in as the build does.

The build's temporary private key goes in a file of a fresh private directory (0700,
the file 0600) under the runtime directory (``$XDG_RUNTIME_DIR``, a memory file system
on most systems), with the host key the build verified pinned in a known-hosts file of
the same directory; whoever runs the command removes the directory once it exits
(:func:`remove`). A bastion (``ssh_bastion_*``) is a ``ProxyCommand`` hop with its own
key file; a SOCKS5 proxy (``ssh_proxy_*``) is not supported yet for the shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from amibake.core.errors import AmibakeError

if TYPE_CHECKING:
    import asyncssh

    from amibake.core.engine.context import BuildContext


class ShellUnavailable(AmibakeError):
    """No shell can be opened on this build's instance (now)."""


def runtime_dir() -> Path | None:
    value = os.environ.get("XDG_RUNTIME_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def shell_command(ctx: BuildContext, command: str | None = None) -> tuple[list[str], Path]:
    """(argv, private directory) of an ``ssh`` login to the build's instance.

    ``command``: run this instead of a login shell (tests, scripted use).
    """
    communicator = ctx.communicator
    if communicator is None or ctx.ssh_host is None:
        raise ShellUnavailable("the build is not connected to its instance (yet)")
    if shutil.which("ssh") is None:
        raise ShellUnavailable("OpenSSH's `ssh` is not installed")
    settings = communicator.settings
    if settings.proxy is not None:
        raise ShellUnavailable("a shell through ssh_proxy_host is not supported yet")
    directory = Path(tempfile.mkdtemp(prefix="amibake-shell-", dir=runtime_dir()))
    try:
        argv = _argv(ctx, directory, command)
    except BaseException:
        remove(directory)
        raise
    return argv, directory


def _argv(ctx: BuildContext, directory: Path, command: str | None) -> list[str]:
    communicator = ctx.communicator
    assert communicator is not None
    settings = communicator.settings
    host, port = communicator.host, communicator.port
    options = ["-o", "BatchMode=no", "-o", "LogLevel=ERROR"]
    key_files = []
    for number, key in enumerate(settings.private_keys):
        key_files.append(_write(directory / f"id_{number}", _private(key)))
    for key_file in key_files:
        options += ["-i", str(key_file)]
    if key_files and not settings.agent_auth:
        options += ["-o", "IdentitiesOnly=yes"]
    host_key = _host_key(communicator)
    known_hosts = directory / "known_hosts"
    if host_key:
        name = host if port == 22 else f"[{host}]:{port}"
        _write(known_hosts, f"{name} {host_key}\n".encode())
        options += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    else:  # pragma: no cover - a connected communicator always saw a host key
        options += ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
    if settings.bastion is not None:
        options += ["-o", f"ProxyCommand={_bastion_hop(settings.bastion, directory)}"]
    argv = ["ssh", *options, "-p", str(port)]
    if command is None:
        argv.append("-t")
    argv.append(f"{communicator.username}@{host}")
    if command is not None:
        argv.append(command)
    return argv


def _bastion_hop(bastion: object, directory: Path) -> str:
    from amibake.core.ssh import BastionSettings

    assert isinstance(bastion, BastionSettings)
    hop = ["ssh", "-o", "LogLevel=ERROR", "-p", str(bastion.port)]
    # As for the build's own connection, the bastion's host key is not pinned.
    hop += ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
    if bastion.private_key is not None:
        key_file = _write(directory / "bastion_key", _private(bastion.private_key))
        hop += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    user = f"{bastion.username}@" if bastion.username else ""
    hop += ["-W", "%h:%p", f"{user}{bastion.host}"]
    return shlex.join(hop)


def _private(key: asyncssh.SSHKey) -> bytes:
    return bytes(key.export_private_key("openssh"))


def _host_key(communicator: object) -> str:
    connection = getattr(communicator, "_conn", None)
    key = connection.get_server_host_key() if connection is not None else None
    if key is None:
        return ""
    return bytes(key.export_public_key("openssh")).decode().strip()


def _write(path: Path, data: bytes) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def remove(directory: Path | str) -> None:
    """Remove a shell's private directory (its key files) once the shell is over."""
    shutil.rmtree(directory, ignore_errors=True)
