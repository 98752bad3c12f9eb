"""What the provisioners share: errors, local paths, build values, reconnecting."""

from __future__ import annotations

from pathlib import Path

from core.engine.context import BuildContext
from core.engine.steps.ssh_connect import connect_instance
from core.errors import AmibakeError
from core.ssh import Communicator


class ProvisionError(AmibakeError):
    pass


def local_path(ctx: BuildContext, text: str) -> Path:
    """A path of the user's machine: relative ones are relative to the template's folder."""
    path = Path(text).expanduser()
    if not path.is_absolute() and ctx.spec.source_file is not None:
        path = ctx.spec.source_file.parent / path
    return path


def build_values(ctx: BuildContext) -> dict[str, str]:
    """The ``{{build `...`}}`` values known once the instance runs (never written to disk)."""
    values = {"ID": ctx.instance_id or "", "Host": ctx.ssh_host or "", "Port": str(ctx.ssh_port)}
    values["User"] = ctx.builder.ssh_username
    image = ctx.source_image or {}
    values["SourceAMI"] = str(image.get("ImageId", ""))
    values["SourceAMIName"] = str(image.get("Name", ""))
    values["SourceAMIOwner"] = str(image.get("OwnerId", ""))
    values["PackerRunUUID"] = ctx.build_id
    return values


def packer_env(ctx: BuildContext) -> dict[str, str]:
    """The variables Packer gives every shell provisioner (no HTTP server: no PACKER_HTTP_*)."""
    return {"PACKER_BUILD_NAME": ctx.name, "PACKER_BUILDER_TYPE": ctx.builder.type}


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
