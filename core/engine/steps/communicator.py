"""``communicator = "none"``: no key pair, no SSH rule, no connection, and no provisioners."""

from __future__ import annotations

from amibake.core.engine.context import BuildContext
from amibake.core.engine.runner import Step
from amibake.core.errors import AmibakeError

#: Packer's words (packer/provisioner.go), on one line.
NO_COMMUNICATOR = (
    'no communicator for the provisioners: `communicator` is "none", and provisioners need '
    "one (remove them or use the ssh communicator)"
)


def uses_ssh(ctx: BuildContext) -> bool:
    return ctx.builder.communicator != "none"


class SshOnly(Step):
    """A step that only a build with an SSH communicator runs (the key pair, the connection)."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.name = step.name
        self.title = step.title

    def applies(self, ctx: BuildContext) -> bool:
        return uses_ssh(ctx) and self.step.applies(ctx)

    async def run(self, ctx: BuildContext) -> None:
        await self.step.run(ctx)

    async def cleanup(self, ctx: BuildContext) -> None:
        await self.step.cleanup(ctx)


class NoCommunicatorCheck(Step):
    """Fail before anything is created when provisioners meet ``communicator = "none"``.

    Packer finds out only at the provisioning step, after launching the instance.
    """

    name = "communicator"
    title = "Checking the communicator"

    def applies(self, ctx: BuildContext) -> bool:
        return not uses_ssh(ctx) and bool(ctx.spec.provisioners_for(ctx.builder))

    async def run(self, ctx: BuildContext) -> None:
        raise AmibakeError(NO_COMMUNICATOR)
