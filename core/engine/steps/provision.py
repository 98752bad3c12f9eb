"""Run the provisioners in order: shell and file over SSH, shell-local and ansible on the
user's machine, breakpoint pauses. Each type lives in core/engine/provisioners/."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.ansible import run_ansible
from amibake.core.engine.provisioners.breakpoint import run_breakpoint
from amibake.core.engine.provisioners.common import ProvisionError
from amibake.core.engine.provisioners.file import run_file
from amibake.core.engine.provisioners.local import run_shell_local
from amibake.core.engine.provisioners.on_instance import (
    run_ansible_local,
    run_chef_solo,
    run_puppet,
)
from amibake.core.engine.provisioners.shell import render_execute_command, run_shell
from amibake.core.engine.runner import Step
from amibake.core.errors import AmibakeError
from amibake.core.model import (
    AnsibleLocalProvisioner,
    AnsibleProvisioner,
    BreakpointProvisioner,
    ChefSoloProvisioner,
    FileProvisioner,
    Provisioner,
    PuppetMasterlessProvisioner,
    ShellLocalProvisioner,
    ShellProvisioner,
)

__all__ = ["ProvisionError", "ProvisionStep", "render_execute_command"]


class ProvisionStep(Step):
    name = "provision"
    title = "Provisioning"

    #: --on-error ask: "retry" runs the provisioners again from the one that failed
    retryable = True

    def __init__(self) -> None:
        self._resume_at = 1  # the provisioner the next run starts with

    def applies(self, ctx: BuildContext) -> bool:
        return bool(ctx.spec.provisioners_for(ctx.builder))

    async def run(self, ctx: BuildContext) -> None:
        try:
            await self._all(ctx)
        except (AmibakeError, OSError):
            if ctx.options.on_error != "ask":  # asked: once the user gives up (given_up)
                await self._error_cleanup(ctx)
            raise

    async def prepare_retry(self, ctx: BuildContext) -> None:
        """Read the template again (a fix made in the editor takes effect), keeping the build's
        builder and instance: only the provisioners are taken from the new text."""
        if ctx.options.reload is not None:
            fresh = await asyncio.to_thread(ctx.options.reload)
            ctx.spec = replace(
                ctx.spec,
                provisioners=fresh.provisioners,
                error_cleanup_provisioner=fresh.error_cleanup_provisioner,
            )
            ctx.say("Template read again from disk")
        ctx.say(f"Retrying from provisioner {self._resume_at}")

    async def given_up(self, ctx: BuildContext) -> None:
        await self._error_cleanup(ctx)

    async def _error_cleanup(self, ctx: BuildContext) -> None:
        """Packer's error-cleanup-provisioner: best effort, before the resources go away."""
        provisioner = ctx.spec.error_cleanup_provisioner
        if provisioner is None or ctx.communicator is None:
            return
        provisioner = provisioner.overrides.get(ctx.builder.name, provisioner)
        ctx.say("Running the error-cleanup-provisioner")
        try:
            await self._one(ctx, 0, provisioner)
        except (AmibakeError, OSError) as error:
            ctx.say(f"The error-cleanup-provisioner failed too: {error}", "warning")

    async def _all(self, ctx: BuildContext) -> None:
        provisioners = ctx.spec.provisioners_for(ctx.builder)
        for number, provisioner in enumerate(provisioners, start=1):
            if number < self._resume_at:
                continue  # ran before the failure a retry starts after
            self._resume_at = number
            if provisioner.name:
                ctx.say(f"Provisioner {number}: {provisioner.name}")
            if provisioner.pause_before:
                ctx.say(f"Pausing {provisioner.pause_before:g}s before provisioner {number}")
                await asyncio.sleep(provisioner.pause_before)
            try:
                await self._attempts(ctx, number, provisioner)
            except (AmibakeError, OSError) as error:
                if not provisioner.continue_on_error:
                    raise
                # Packer's words (ContinueOnErrorProvisioner); a cancel still stops the build
                ctx.say(
                    f'Provisioner {number} failed with "{error}", but continue_on_error is '
                    "set; continuing the build.",
                    "warning",
                )

    async def _attempts(self, ctx: BuildContext, number: int, provisioner: Provisioner) -> None:
        """One provisioner, tried again on failure up to its ``max_retries``."""
        attempts = provisioner.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                await self._one(ctx, number, provisioner)
                return
            except ProvisionError as error:
                if attempt == attempts:
                    raise
                ctx.say(f"{error}; retrying ({attempt}/{provisioner.max_retries})", "warning")

    async def _one(self, ctx: BuildContext, number: int, provisioner: Provisioner) -> None:
        if isinstance(provisioner, ShellProvisioner):
            # the shell provisioner stops its command itself at `timeout` (TERM, then KILL)
            await run_shell(ctx, number, provisioner)
            return
        if provisioner.timeout is None:
            await _dispatch(ctx, number, provisioner)
            return
        try:
            async with asyncio.timeout(provisioner.timeout):
                await _dispatch(ctx, number, provisioner)
        except TimeoutError:
            raise ProvisionError(
                f"{provisioner.type} provisioner {number} timed out after {provisioner.timeout:g}s"
            ) from None


async def _dispatch(ctx: BuildContext, number: int, provisioner: Provisioner) -> None:
    if isinstance(provisioner, FileProvisioner):
        await run_file(ctx, number, provisioner)
    elif isinstance(provisioner, ShellLocalProvisioner):
        await run_shell_local(ctx, number, provisioner)
    elif isinstance(provisioner, BreakpointProvisioner):
        await run_breakpoint(ctx, number, provisioner)
    elif isinstance(provisioner, AnsibleProvisioner):
        await run_ansible(ctx, number, provisioner)
    elif isinstance(provisioner, PuppetMasterlessProvisioner):
        await run_puppet(ctx, number, provisioner)
    elif isinstance(provisioner, ChefSoloProvisioner):
        await run_chef_solo(ctx, number, provisioner)
    elif isinstance(provisioner, AnsibleLocalProvisioner):
        await run_ansible_local(ctx, number, provisioner)
    else:  # pragma: no cover - the loader makes only the types above
        raise ProvisionError(f"provisioner `{provisioner.type}` is not supported yet")
