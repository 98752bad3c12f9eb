"""Packer's ``shell-local`` (provisioner and post-processor): commands on the user's machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import (
    ProvisionError,
    build_values,
    local_path,
    with_build_data,
)
from amibake.core.engine.provisioners.shell import env_pairs, flatten_vars
from amibake.core.events import Stream
from amibake.core.model import ShellLocalPostProcessor, ShellLocalProvisioner
from amibake.core.templates.gotemplate import GoTemplateError, render_runtime

ShellLocal = ShellLocalProvisioner | ShellLocalPostProcessor
_GOOS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}


async def run_shell_local(
    ctx: BuildContext,
    number: int | None,
    config: ShellLocal,
    extra_env: Mapping[str, str] | None = None,
    what: str = "shell-local",
) -> None:
    """Run each script of ``config`` with its ``execute_command``, streaming the output.

    ``extra_env`` (the post-processor's artifact) is added to the environment.
    """
    config = with_build_data(
        ctx, config, what if number is None else f"{what} provisioner {number}"
    )
    goos = _GOOS.get(sys.platform, sys.platform)
    if config.only_on and goos not in config.only_on:
        ctx.say(f"Skipping {what}: it runs only on {', '.join(config.only_on)}")
        return
    pairs = env_pairs(ctx, config.environment_vars, config.env)
    flattened = flatten_vars(pairs, config.env_var_format)
    environment = {**os.environ, **pairs, **(extra_env or {})}
    with tempfile.TemporaryDirectory(prefix="amibake-shell-local-") as scratch:
        for label, script in _scripts(ctx, config, Path(scratch)):
            argv = _command(ctx, config, flattened, script)
            ctx.say(f"Running local shell script: {label}")
            status = await execute_local(ctx, number, argv, environment)
            if status not in config.valid_exit_codes:
                raise ProvisionError(
                    f"{what} script {label} exited with status {status}"
                    + (
                        f" (valid: {', '.join(map(str, config.valid_exit_codes))})"
                        if config.valid_exit_codes != (0,)
                        else ""
                    )
                )


def _scripts(ctx: BuildContext, config: ShellLocal, scratch: Path) -> list[tuple[str, str]]:
    inline = (config.command,) if config.command else config.inline
    if inline:
        path = scratch / "inline.sh"
        body = f"#!{config.inline_shebang}\n" + "".join(f"{line}\n" for line in inline)
        path.write_text(body)
        path.chmod(0o700)
        return [("inline script" if not config.command else "command", str(path))]
    paths = [config.script] if config.script else list(config.scripts)
    out = []
    for text in paths:
        assert text is not None
        path = local_path(ctx, text)
        if not path.is_file():
            raise ProvisionError(f"shell-local: no such script {path}")
        out.append((text, str(path)))
    return out


def _command(ctx: BuildContext, config: ShellLocal, flattened: str, script: str) -> list[str]:
    fields = {"Vars": flattened, "Script": script, "Command": config.command or ""}
    try:
        return [render_runtime(part, fields, build_values(ctx)) for part in config.execute_command]
    except GoTemplateError as error:
        raise ProvisionError(f"shell-local execute_command: {error.message}") from None


async def execute_local(
    ctx: BuildContext, number: int | None, argv: list[str], environment: Mapping[str, str]
) -> int:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(environment),
            start_new_session=True,
        )
    except OSError as error:
        raise ProvisionError(f"cannot run {argv[0]}: {error.strerror or error}") from None
    assert process.stdout is not None and process.stderr is not None

    async def pump(stream: asyncio.StreamReader, name: Stream) -> None:
        async for raw in stream:
            ctx.log(name, [raw.decode(errors="replace").rstrip("\n")], number)

    try:
        await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
        return await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
            await asyncio.shield(process.wait())
        raise
