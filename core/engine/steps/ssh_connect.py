"""Wait for SSH and connect, verifying the host key against the console output when it is there."""

from __future__ import annotations

import asyncio
import time

from core.engine.context import BuildContext
from core.engine.runner import Step
from core.ssh import Communicator, fingerprints_from_console


class ConnectStep(Step):
    name = "ssh"
    title = "Waiting for SSH"

    async def run(self, ctx: BuildContext) -> None:
        assert ctx.ssh_host is not None and ctx.private_key is not None
        expected: tuple[str, ...] = ()
        if ctx.options.verify_host_key:
            expected = await host_fingerprints(ctx)
            if not expected:
                ctx.say(
                    "The console output shows no SSH host key fingerprints yet: "
                    "connecting without verifying the host key",
                    "warning",
                )
        ctx.say(f"Connecting to {ctx.ssh_host}:{ctx.ssh_port} as {ctx.builder.ssh_username}")
        ctx.communicator = await Communicator.connect(
            host=ctx.ssh_host,
            port=ctx.ssh_port,
            username=ctx.builder.ssh_username,
            private_key=ctx.private_key,
            timeout=ctx.builder.ssh_timeout,
            expected_fingerprints=expected,
        )
        verified = " (verified against the console output)" if expected else ""
        ctx.say(f"Connected; host key {ctx.communicator.host_key_fingerprint}{verified}")

    async def cleanup(self, ctx: BuildContext) -> None:
        communicator, ctx.communicator = ctx.communicator, None
        if communicator is not None:
            await communicator.close()


async def host_fingerprints(ctx: BuildContext) -> tuple[str, ...]:
    """Fingerprints cloud-init printed to the console, polled for a short while."""
    assert ctx.instance_id is not None
    deadline = time.monotonic() + ctx.options.console_wait
    delay = 0.5
    while True:
        output = await ctx.aws.call(ctx.region, "GetConsoleOutput", InstanceId=ctx.instance_id)
        found = fingerprints_from_console(output.get("Output") or "")
        if found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 3.0)
