"""Run the provisioners over SSH: shell (inline, script, scripts) and file, output streamed."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from pathlib import Path

from core.engine.context import BuildContext
from core.engine.runner import Step
from core.errors import AmibakeError
from core.model import FileProvisioner, ShellProvisioner
from core.ssh import CommandResult, SshDisconnected
from core.templates.gotemplate import GoTemplateError, render_runtime

REMOTE_DIR = "/tmp"
INLINE_SHEBANG = "#!/bin/sh -e"


class ProvisionError(AmibakeError):
    pass


class ProvisionStep(Step):
    name = "provision"
    title = "Provisioning"

    def applies(self, ctx: BuildContext) -> bool:
        return bool(ctx.spec.provisioners_for(ctx.builder))

    async def run(self, ctx: BuildContext) -> None:
        try:
            await self._all(ctx)
        except (AmibakeError, OSError):
            await self._error_cleanup(ctx)
            raise

    async def _error_cleanup(self, ctx: BuildContext) -> None:
        """Packer's error-cleanup-provisioner: best effort, before the resources go away."""
        provisioner = ctx.spec.error_cleanup_provisioner
        if provisioner is None or ctx.communicator is None:
            return
        ctx.say("Running the error-cleanup-provisioner")
        try:
            await self._one(ctx, 0, provisioner)
        except (AmibakeError, OSError) as error:
            ctx.say(f"The error-cleanup-provisioner failed too: {error}", "warning")

    async def _all(self, ctx: BuildContext) -> None:
        provisioners = ctx.spec.provisioners_for(ctx.builder)
        for number, provisioner in enumerate(provisioners, start=1):
            if provisioner.pause_before:
                ctx.say(f"Pausing {provisioner.pause_before:g}s before provisioner {number}")
                await asyncio.sleep(provisioner.pause_before)
            attempts = provisioner.max_retries + 1
            for attempt in range(1, attempts + 1):
                try:
                    await self._one(ctx, number, provisioner)
                    break
                except ProvisionError as error:
                    if attempt == attempts:
                        raise
                    ctx.say(f"{error}; retrying ({attempt}/{provisioner.max_retries})", "warning")

    async def _one(
        self, ctx: BuildContext, number: int, provisioner: ShellProvisioner | FileProvisioner
    ) -> None:
        if isinstance(provisioner, FileProvisioner):
            await run_file(ctx, number, provisioner)
        else:
            await run_shell(ctx, number, provisioner)


def _local_path(ctx: BuildContext, text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute() and ctx.spec.source_file is not None:
        path = ctx.spec.source_file.parent / path
    return path


def _scripts(ctx: BuildContext, provisioner: ShellProvisioner) -> list[tuple[str, bytes]]:
    """(display name, content) of each script the provisioner runs."""
    if provisioner.inline:
        body = "\n".join([INLINE_SHEBANG, *provisioner.inline]) + "\n"
        return [("inline script", body.encode())]
    paths = [provisioner.script] if provisioner.script else list(provisioner.scripts)
    scripts = []
    for text in paths:
        assert text is not None
        path = _local_path(ctx, text)
        try:
            scripts.append((str(text), path.read_bytes()))
        except OSError as error:
            raise ProvisionError(f"cannot read script {path}: {error.strerror}") from None
    return scripts


def _vars(ctx: BuildContext, provisioner: ShellProvisioner) -> str:
    pairs = [("PACKER_BUILD_NAME", ctx.name), ("PACKER_BUILDER_TYPE", "amazon-ebs")]
    for item in provisioner.environment_vars:
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return " ".join(f"{key}={shlex.quote(value)}" for key, value in pairs)


def render_execute_command(
    template: str, path: str, variables: str, build: Mapping[str, str] | None = None
) -> str:
    """Packer's ``execute_command`` rendered as Go's text/template does at run time.

    The shell provisioner's fields are ``.Path``, ``.Vars`` and ``.EnvVarFile``;
    ``{{build `...`}}`` values come from ``build``.
    """
    fields = {"Path": path, "Vars": variables, "EnvVarFile": ""}
    try:
        return render_runtime(template, fields, build or {})
    except GoTemplateError as error:
        raise ProvisionError(f"execute_command: {error.message}") from None


def _build_values(ctx: BuildContext) -> dict[str, str]:
    """The ``{{build `...`}}`` values known once the instance runs (never written to disk)."""
    values = {"ID": ctx.instance_id or "", "Host": ctx.ssh_host or "", "Port": str(ctx.ssh_port)}
    values["User"] = ctx.builder.ssh_username
    image = ctx.source_image or {}
    values["SourceAMI"] = str(image.get("ImageId", ""))
    values["SourceAMIName"] = str(image.get("Name", ""))
    values["SourceAMIOwner"] = str(image.get("OwnerId", ""))
    return values


async def run_shell(ctx: BuildContext, number: int, provisioner: ShellProvisioner) -> None:
    communicator = ctx.communicator
    assert communicator is not None
    for index, (label, content) in enumerate(_scripts(ctx, provisioner), start=1):
        remote = f"{REMOTE_DIR}/amibake-{ctx.build_id}-{number}-{index}.sh"
        ctx.say(f"Provisioning with shell ({label})")
        await communicator.upload(content, remote, mode=0o755)
        command = render_execute_command(
            provisioner.execute_command, remote, _vars(ctx, provisioner), _build_values(ctx)
        )
        try:
            result = await communicator.run(
                command,
                on_stdout=lambda lines: ctx.log("stdout", lines, number),
                on_stderr=lambda lines: ctx.log("stderr", lines, number),
                timeout=provisioner.timeout,
                batch=True,
            )
        except SshDisconnected:
            if provisioner.expect_disconnect:
                ctx.say("The connection dropped, as expected_disconnect allows; reconnecting")
                await _reconnect(ctx)
                continue
            raise
        _check(ctx, number, result)
        await communicator.run(f"rm -f {shlex.quote(remote)}", on_stdout=_ignore, on_stderr=_ignore)


def _ignore(line: str) -> None:
    pass


def _check(ctx: BuildContext, number: int, result: CommandResult) -> None:
    if result.exit_status == 0:
        return
    how = (
        f"exit status {result.exit_status}"
        if result.exit_signal is None
        else f"signal {result.exit_signal}"
    )
    tail = " | ".join(line for line in result.tail[-3:] if line.strip())
    last = f"; last output: {tail}" if tail else ""
    raise ProvisionError(ctx.redact(f"shell provisioner {number} failed with {how}{last}"))


async def _reconnect(ctx: BuildContext) -> None:
    from core.ssh import Communicator

    old, ctx.communicator = ctx.communicator, None
    if old is not None:
        await old.close()
    assert ctx.ssh_host is not None and ctx.private_key is not None
    ctx.communicator = await Communicator.connect(
        host=ctx.ssh_host,
        port=ctx.ssh_port,
        username=ctx.builder.ssh_username,
        private_key=ctx.private_key,
        timeout=ctx.builder.ssh_timeout,
    )


async def run_file(ctx: BuildContext, number: int, provisioner: FileProvisioner) -> None:
    communicator = ctx.communicator
    assert communicator is not None
    if provisioner.direction == "download":
        target = _local_path(ctx, provisioner.destination)
        ctx.say(f"Downloading {provisioner.source} to {target}")
        await communicator.download(provisioner.source, target)
        return
    source = _local_path(ctx, provisioner.source)
    if source.is_dir():
        # Packer's rule: "dir/" uploads the contents, "dir" uploads the directory itself.
        base = provisioner.destination.rstrip("/")
        if not provisioner.source.endswith("/"):
            base = f"{base}/{source.name}"
        files = sorted(p for p in source.rglob("*") if p.is_file())
        ctx.say(f"Uploading {len(files)} file(s) from {source} to {base}")
        directories = sorted({f"{base}/{p.relative_to(source).parent}".rstrip("/.") for p in files})
        if directories:
            quoted = " ".join(shlex.quote(d) for d in directories)
            await communicator.run(f"mkdir -p {quoted}", on_stdout=_ignore, on_stderr=_ignore)
        for path in files:
            await communicator.upload(path, f"{base}/{path.relative_to(source)}")
        return
    if not source.is_file():
        raise ProvisionError(f"file provisioner {number}: no such file {source}")
    destination = provisioner.destination
    if destination.endswith("/"):
        destination += source.name
    ctx.say(f"Uploading {source} to {destination}")
    await communicator.upload(source, destination)
