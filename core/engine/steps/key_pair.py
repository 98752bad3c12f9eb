"""The SSH key: a temporary key pair generated here (private key in memory only), or the user's.

As Packer's StepKeyPair: ``ssh_private_key_file`` is used as it is; with ``ssh_agent_auth``
no key pair is made (the agent holds the key of ``ssh_keypair_name``, or of the source AMI);
with ``ssh_password`` and no ``temporary_key_pair_name`` none either; otherwise a temporary
key pair named ``temporary_key_pair_name`` (default ``amibake_<build id>``) is imported.
"""

from __future__ import annotations

import asyncio

import asyncssh

from amibake.core.engine.context import BuildContext
from amibake.core.engine.retry import CreateCall
from amibake.core.engine.runner import Step
from amibake.core.errors import AmibakeError
from amibake.core.model import AmazonEbsBuilder
from amibake.core.templates.paths import local_path


def uses_temporary_key(builder: AmazonEbsBuilder) -> bool:
    """Whether the build makes (and logs in with) a temporary key pair."""
    if builder.ssh_private_key_file or builder.ssh_agent_auth:
        return False
    return not (builder.ssh_password and not builder.temporary_key_pair_name)


class KeyPairStep(Step):
    name = "key-pair"
    title = "Creating a temporary key pair"

    def __init__(self) -> None:
        self.created: str | None = None
        self.create = CreateCall()

    async def run(self, ctx: BuildContext) -> None:
        from amibake.core.engine.steps.ssh_connect import check_session_manager

        check_session_manager(ctx)  # before anything is created
        builder = ctx.builder
        if builder.ssh_private_key_file:
            ctx.private_key = read_key(ctx, builder.ssh_private_key_file, "ssh_private_key_file")
            ctx.key_name = builder.ssh_keypair_name
            ctx.say(f"Using the key in {builder.ssh_private_key_file}")
            return
        if builder.ssh_agent_auth:
            ctx.key_name = builder.ssh_keypair_name
            ctx.say(
                f"Using the SSH agent for the key pair {builder.ssh_keypair_name}"
                if builder.ssh_keypair_name
                else "Using the SSH agent with the key pair in the source AMI"
            )
            return
        if not uses_temporary_key(builder):
            ctx.say("Not using a temporary key pair (ssh_password)")
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
        name = builder.temporary_key_pair_name or f"amibake_{ctx.build_id}"
        row = await ctx.intend("key-pair", name)
        # Set before the call: if it is cancelled in flight, cleanup still deletes by name,
        # once the call has answered (the runner waits for it: a delete sent before the
        # import arrives would leave the key pair behind; issue 10).
        self.created = name

        async def create() -> None:
            await ctx.aws.call(
                ctx.region,
                "ImportKeyPair",
                KeyName=name,
                PublicKeyMaterial=key.export_public_key("openssh"),
                TagSpecifications=[ctx.tag_specification("key-pair")],
            )
            await ctx.created(row, "key-pair", name)

        await self.create.send(create())
        ctx.private_key, ctx.key_name = key, name

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.created is None:
            return
        if await self.create.outcome() == "refused":
            # AWS refused the import (a key pair of that name exists?): not ours to delete.
            await ctx.settled("key-pair")
            self.created = None
            return
        ctx.resource("key-pair", self.created, "deleting")
        await ctx.aws.call(ctx.region, "DeleteKeyPair", KeyName=self.created)
        await ctx.deleted("key-pair", self.created)
        self.created = None


def read_key(ctx: BuildContext, path_text: str, option: str) -> asyncssh.SSHKey:
    """A private key file named by a template option (a relative one:
    amibake.core.templates.paths)."""
    path = local_path(ctx.spec, path_text)
    try:
        return asyncssh.read_private_key(path)
    except OSError as error:
        raise AmibakeError(f"cannot read {option} {path}: {error.strerror}") from None
    except (asyncssh.KeyImportError, ValueError) as error:
        raise AmibakeError(f"{option} {path} is not a usable key: {error}") from None
