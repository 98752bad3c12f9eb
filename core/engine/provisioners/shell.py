"""Packer's ``shell`` provisioner: upload each script, run it with ``execute_command``, clean up."""

from __future__ import annotations

import asyncio
import random
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import (
    ProvisionError,
    build_values,
    communicator,
    ignore,
    local_path,
    packer_env,
    reconnect,
    with_build_data,
)
from amibake.core.model import ShellProvisioner
from amibake.core.ssh import CommandResult, SshDisconnected, SshError
from amibake.core.templates.gotemplate import GoTemplateError, render_runtime

T = TypeVar("T")

DEFAULT_SHEBANG = "/bin/sh -e"
#: Packer's exit status for "the connection dropped" (packersdk.CmdDisconnect).
CMD_DISCONNECT = 2300218
DISCONNECT_HINT = (
    "the script disconnected unexpectedly; if it reboots the instance, set "
    "`expect_disconnect = true` (or `valid_exit_codes = [0, 2300218]`)"
)


def render_execute_command(
    template: str,
    path: str,
    variables: str,
    build: Mapping[str, str] | None = None,
    env_var_file: str = "",
) -> str:
    """Packer's ``execute_command`` rendered as Go's text/template does at run time.

    The shell provisioner's fields are ``.Path``, ``.Vars`` and ``.EnvVarFile``;
    ``{{build `...`}}`` values come from ``build``.
    """
    fields = {"Path": path, "Vars": variables, "EnvVarFile": env_var_file}
    try:
        return render_runtime(template, fields, build or {})
    except GoTemplateError as error:
        raise ProvisionError(f"execute_command: {error.message}") from None


def env_pairs(
    ctx: BuildContext, environment_vars: tuple[str, ...], env: Mapping[str, str]
) -> dict[str, str]:
    """Packer's variables, then ``environment_vars``, then ``env`` (later ones win)."""
    pairs = packer_env(ctx)
    for item in environment_vars:
        key, _, value = item.partition("=")
        pairs[key] = value
    pairs.update(env)
    return pairs


def flatten_vars(pairs: Mapping[str, str], env_var_format: str) -> str:
    """Packer's ``.Vars``: each pair through ``env_var_format`` in key order, quotes escaped."""
    out = []
    for key in sorted(pairs):
        value = pairs[key].replace("'", "'\"'\"'")
        out.append(_go_sprintf(env_var_format, key, value))
    return "".join(out)


def _go_sprintf(fmt: str, key: str, value: str) -> str:
    """``fmt.Sprintf(fmt, key, value)`` for the ``%s`` verbs ``env_var_format`` uses."""
    args = iter((key, value))
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            verb = fmt[i + 1]
            if verb == "%":
                out.append("%")
            else:
                out.append(next(args, f"%!{verb}(MISSING)"))
            i += 2
            continue
        out.append(fmt[i])
        i += 1
    return "".join(out)


def scripts(ctx: BuildContext, provisioner: ShellProvisioner) -> list[tuple[str, bytes]]:
    """(display name, content) of each script the provisioner runs."""
    if provisioner.inline:
        body = "".join(f"{line}\n" for line in provisioner.inline)
        # Packer writes the shebang when one is given, or when the commands bring none.
        if provisioner.inline_shebang is not None or not body.startswith("#!"):
            body = f"#!{provisioner.inline_shebang or DEFAULT_SHEBANG}\n{body}"
        return [("inline script", body.encode())]
    paths = [provisioner.script] if provisioner.script else list(provisioner.scripts)
    out = []
    for text in paths:
        assert text is not None
        path = local_path(ctx, text)
        try:
            content = path.read_bytes()
        except OSError as error:
            raise ProvisionError(f"cannot read script {path}: {error.strerror}") from None
        if not provisioner.binary:
            content = content.replace(b"\r\n", b"\n")  # Packer's UnixReader
        out.append((str(text), content))
    return out


def remote_path(provisioner: ShellProvisioner) -> str:
    if provisioner.remote_path:
        return provisioner.remote_path
    name = provisioner.remote_file or f"script_{random.randrange(9999)}.sh"
    return f"{provisioner.remote_folder}/{name}"


async def retrying(
    ctx: BuildContext, timeout: float, what: str, action: Callable[[], Awaitable[T]]
) -> T:
    """Packer's ``start_retry_timeout``: retry ``action`` while the connection is down."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            return await action()
        except SshDisconnected as error:
            if time.monotonic() >= deadline:
                raise ProvisionError(f"{what}: {error}") from None
            ctx.say(f"{what}: {error}; retrying", "warning")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            await reconnect(ctx)


async def run_shell(ctx: BuildContext, number: int, provisioner: ShellProvisioner) -> None:
    provisioner = with_build_data(ctx, provisioner, f"shell provisioner {number}")
    path = remote_path(provisioner)
    pairs = env_pairs(ctx, provisioner.environment_vars, provisioner.env)
    fmt = provisioner.env_var_format or (
        "export %s='%s'\n" if provisioner.use_env_var_file else "%s='%s' "
    )
    flattened = flatten_vars(pairs, fmt)
    env_var_file = ""
    timeout = provisioner.start_retry_timeout
    if provisioner.use_env_var_file:
        env_var_file = f"{provisioner.remote_folder}/varfile_{random.randrange(9999)}.sh"

        async def upload_vars() -> None:
            comm = await communicator(ctx)
            await comm.upload(flattened.encode(), env_var_file, mode=0o600)

        await retrying(ctx, timeout, "uploading the environment file", upload_vars)
    execute = provisioner.execute_command or "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
    for label, content in scripts(ctx, provisioner):
        ctx.say(f"Provisioning with shell script: {label}")
        command = render_execute_command(execute, path, flattened, build_values(ctx), env_var_file)

        async def upload_and_run(
            content: bytes = content, command: str = command
        ) -> CommandResult | None:
            comm = await communicator(ctx)
            await comm.upload(content, path, mode=0o755)
            try:
                return await comm.run(
                    command,
                    on_stdout=lambda lines: ctx.log("stdout", lines, number),
                    on_stderr=lambda lines: ctx.log("stderr", lines, number),
                    timeout=provisioner.timeout,
                    batch=True,
                )
            except SshDisconnected:
                return None  # the command ran and the connection went: a reboot, perhaps

        result = await retrying(ctx, timeout, "uploading the script", upload_and_run)
        if result is None:
            if not provisioner.expect_disconnect and CMD_DISCONNECT not in (
                provisioner.valid_exit_codes
            ):
                raise ProvisionError(f"shell provisioner {number}: {DISCONNECT_HINT}")
            ctx.say("The connection dropped, as expect_disconnect allows; reconnecting")
            await reconnect(ctx)
        else:
            check(ctx, number, result, provisioner.valid_exit_codes)
        if not provisioner.skip_clean:
            await remove(ctx, path, timeout)
    if env_var_file and not provisioner.skip_clean:
        await remove(ctx, env_var_file, timeout)
    if provisioner.pause_after:
        ctx.say(f"Pausing {provisioner.pause_after:g}s after this provisioner")
        await asyncio.sleep(provisioner.pause_after)


async def remove(ctx: BuildContext, path: str, timeout: float) -> None:
    async def rm() -> None:
        comm = await communicator(ctx)
        result = await comm.run(f"rm -f {shlex.quote(path)}", on_stdout=ignore, on_stderr=ignore)
        if result.exit_status != 0:
            raise ProvisionError(f"cannot remove the temporary script {path}")

    try:
        await retrying(ctx, timeout, f"removing {path}", rm)
    except SshError as error:
        raise ProvisionError(f"cannot remove the temporary script {path}: {error}") from None


def check(
    ctx: BuildContext, number: int, result: CommandResult, valid: tuple[int, ...] = (0,)
) -> None:
    if result.exit_signal is None and result.exit_status in valid:
        return
    how = (
        f"exit status {result.exit_status}"
        if result.exit_signal is None
        else f"signal {result.exit_signal}"
    )
    tail = " | ".join(line for line in result.tail[-3:] if line.strip())
    last = f"; last output: {tail}" if tail else ""
    allowed = "" if valid == (0,) else f" (valid: {', '.join(map(str, valid))})"
    raise ProvisionError(ctx.redact(f"shell provisioner {number} failed with {how}{allowed}{last}"))
