"""The SSH key: a temporary key pair generated here (private key in memory only), or the user's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh

from core.engine.context import BuildContext
from core.engine.runner import Step
from core.errors import AmibakeError


class KeyPairStep(Step):
    name = "key-pair"
    title = "Creating a temporary key pair"

    def __init__(self) -> None:
        self.created: str | None = None

    async def run(self, ctx: BuildContext) -> None:
        builder = ctx.builder
        if builder.ssh_private_key_file:
            ctx.private_key = _read_key(ctx, builder.ssh_private_key_file)
            ctx.key_name = builder.ssh_keypair_name
            ctx.say(f"Using the key in {builder.ssh_private_key_file}")
            return
        algorithm = "ssh-rsa" if builder.temporary_key_pair_type == "rsa" else "ssh-ed25519"
        # RSA generation takes a while: off the event loop.
        bits = builder.temporary_key_pair_bits or 3072
        key = await asyncio.to_thread(
            lambda: (
                asyncssh.generate_private_key(algorithm, key_size=bits)
                if algorithm == "ssh-rsa"
                else asyncssh.generate_private_key(algorithm)
            )
        )
        name = f"amibake_{ctx.build_id}"
        row = await ctx.intend("key-pair", name)
        # Set before the call: if it is cancelled in flight, cleanup still deletes by name.
        self.created = name
        await ctx.aws.call(
            ctx.region,
            "ImportKeyPair",
            KeyName=name,
            PublicKeyMaterial=key.export_public_key("openssh"),
            TagSpecifications=[ctx.tag_specification("key-pair")],
        )
        ctx.private_key, ctx.key_name = key, name
        await ctx.created(row, "key-pair", name)

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.created is None:
            return
        ctx.resource("key-pair", self.created, "deleting")
        await ctx.aws.call(ctx.region, "DeleteKeyPair", KeyName=self.created)
        await ctx.deleted("key-pair", self.created)
        self.created = None


def _read_key(ctx: BuildContext, path_text: str) -> asyncssh.SSHKey:
    path = Path(path_text).expanduser()
    if not path.is_absolute() and ctx.spec.source_file is not None:
        path = ctx.spec.source_file.parent / path
    try:
        return asyncssh.read_private_key(path)
    except OSError as error:
        raise AmibakeError(f"cannot read ssh_private_key_file {path}: {error.strerror}") from None
    except (asyncssh.KeyImportError, ValueError) as error:
        raise AmibakeError(f"ssh_private_key_file {path} is not a usable key: {error}") from None
