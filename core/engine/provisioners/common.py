"""What the provisioners share: errors, local paths, build values, reconnecting."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from amibake.core.engine.context import BuildContext
from amibake.core.engine.steps.ssh_connect import connect_instance
from amibake.core.errors import AmibakeError
from amibake.core.model import FrozenMap
from amibake.core.ssh import Communicator
from amibake.core.templates.gotemplate import GoTemplateError, render_build_data
from amibake.core.templates.paths import local_path as template_path

_Config = TypeVar("_Config")


class ProvisionError(AmibakeError):
    pass


def local_path(ctx: BuildContext, text: str, *, write: bool = False) -> Path:
    """A path of the user's machine (where a relative one points: amibake.core.templates.paths)."""
    return template_path(ctx.spec, text, write=write)


#: what Packer's commonsteps give a builder without an HTTP server (amazon-ebs has none)
_NO_HTTP = {
    "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
    "PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
    "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
}
#: options that name the provisioner's place in the template, not text for the instance
_NOT_TEXT = frozenset({"type", "only", "except_", "builders", "overrides"})


def build_values(ctx: BuildContext) -> dict[str, str]:
    """The ``{{build `...`}}`` values known once the instance runs (never written to disk):
    Packer's PopulateProvisionHookData (the communicator's settings, the instance id) over
    the amazon builder's generated data (interpolate_build_info.go)."""
    info = ctx.build_info()
    values = {k: str(v) for k, v in info.items() if isinstance(v, str)}
    values |= {"ID": ctx.instance_id or "", "Host": ctx.ssh_host or "", "Port": str(ctx.ssh_port)}
    values["User"] = ctx.builder.ssh_username
    values["Password"] = getattr(ctx.builder, "ssh_password", None) or ""
    values["ConnType"] = getattr(ctx.builder, "communicator", None) or "ssh"
    # amazon's step_key_pair sets the private key (the temporary one or the file's), never
    # the public one
    key = ctx.private_key
    values["SSHPrivateKey"] = key.export_private_key("openssh").decode() if key else ""
    values["SSHPublicKey"] = ""
    values["WinRMPassword"] = ""
    values["PackerRunUUID"] = ctx.build_id
    values |= _NO_HTTP
    return values


def with_build_data(ctx: BuildContext, config: _Config, what: str) -> _Config:
    """``config`` with ``{{ build `X` }}`` (HCL: ``${build.X}``) filled in in every string
    option, as Packer prepares a provisioner or post-processor again when it runs it."""
    values: dict[str, str] | None = None

    def fill(value: object, where: str) -> object:
        nonlocal values
        if isinstance(value, str):
            if "build" not in value:
                return value
            values = values if values is not None else build_values(ctx)
            try:
                return render_build_data(value, values)
            except GoTemplateError as error:
                raise ProvisionError(f"{what}: `{where}`: {error.message}") from None
        if isinstance(value, tuple):
            return tuple(fill(item, f"{where}[{i}]") for i, item in enumerate(value))
        if isinstance(value, FrozenMap):
            return FrozenMap((fill(k, where), fill(v, f"{where}.{k}")) for k, v in value.items())
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return _fill_fields(value, fill, where + ".")
        return value

    return _fill_fields(config, fill, "")


def _fill_fields(config: _Config, fill: Callable[[object, str], object], prefix: str) -> _Config:
    changes = {}
    for item in dataclasses.fields(config):  # type: ignore[arg-type]  # a dataclass instance
        if item.name in _NOT_TEXT or not item.init:
            continue
        old = getattr(config, item.name)
        new = fill(old, prefix + item.name.rstrip("_"))
        if new is not old and new != old:
            changes[item.name] = new
    return dataclasses.replace(config, **changes) if changes else config  # type: ignore[type-var]


def packer_env(ctx: BuildContext) -> dict[str, str]:
    """The variables Packer gives every shell provisioner (no HTTP server: no PACKER_HTTP_*)."""
    return {"PACKER_BUILD_NAME": ctx.build_name, "PACKER_BUILDER_TYPE": ctx.builder.type}


def ignore(lines: object) -> None:
    pass


async def communicator(ctx: BuildContext) -> Communicator:
    """The build's SSH connection, reconnected first if a provisioner dropped it (a reboot)."""
    if ctx.communicator is None:
        if ctx.ssh_host is None or getattr(ctx.builder, "communicator", "ssh") == "none":
            raise ProvisionError("this provisioner needs SSH, and the build has no communicator")
        await reconnect(ctx)
    assert ctx.communicator is not None
    return ctx.communicator


async def reconnect(ctx: BuildContext) -> None:
    """Connect again after a disconnect, pinned to the host key the first connection saw.

    The same route as the first connection (the builder's SSH settings: credentials,
    algorithms, bastion, proxy, tunnels) to the same address and port (with a session
    manager, the local end of its port forward). Waits up to ``ssh_timeout`` for the
    instance to accept SSH again (a reboot takes a while).
    """
    old, ctx.communicator = ctx.communicator, None
    pinned: tuple[str, ...] = ()
    host, port = ctx.ssh_host, ctx.ssh_port
    if old is not None:
        if old.host_key_fingerprint:
            pinned = (old.host_key_fingerprint,)
        host, port = old.host, old.port
        await old.close()
    ctx.say(f"Reconnecting to {host}:{port}")
    ctx.communicator = await connect_instance(
        ctx, expected_fingerprints=pinned, host=host, port=port
    )
