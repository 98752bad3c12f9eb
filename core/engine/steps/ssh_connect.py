"""Wait for SSH and connect, verifying the host key against the console output when it is there.

:func:`ssh_settings` is the one place where a builder's ``ssh_*`` options become the
communicator's :class:`amibake.core.ssh.SshSettings` (credentials, algorithms, bastion or SOCKS
proxy, pty, file transfer); :func:`connect_instance` connects with them, for this step, for a
provisioner's reconnect and for an interactive shell on the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import asyncssh

from amibake.core.aws import AwsError
from amibake.core.engine.context import BuildContext
from amibake.core.engine.runner import Step
from amibake.core.engine.steps.key_pair import read_key, uses_temporary_key
from amibake.core.errors import AmibakeError
from amibake.core.ssh import (
    BastionSettings,
    Communicator,
    ProxySettings,
    SshSettings,
    fingerprints_from_console,
)
from amibake.core.templates.paths import local_path

#: ``ssh_handshake_attempts`` when the template leaves it out (Packer's default)
PACKER_HANDSHAKE_ATTEMPTS = 10

#: the AWS plugin ``ssh_interface = "session_manager"`` needs (as Packer does)
SESSION_MANAGER_PLUGIN = "session-manager-plugin"


def ssh_settings(ctx: BuildContext) -> SshSettings:
    """The builder's SSH options as communicator settings (key files are read here)."""
    builder = ctx.builder
    keys = (ctx.private_key,) if ctx.private_key is not None else ()
    certificate = None
    if builder.ssh_certificate_file:
        certificate = read_certificate(ctx, builder.ssh_certificate_file, "ssh_certificate_file")
    bastion = None
    if builder.ssh_bastion is not None:
        b = builder.ssh_bastion
        bastion = BastionSettings(
            host=b.host,
            port=b.port,
            username=b.username,
            password=b.password,
            private_key=(
                read_key(ctx, b.private_key_file, "ssh_bastion_private_key_file")
                if b.private_key_file
                else None
            ),
            certificate=(
                read_certificate(ctx, b.certificate_file, "ssh_bastion_certificate_file")
                if b.certificate_file
                else None
            ),
            agent_auth=b.agent_auth,
            interactive=b.interactive,
        )
    proxy = None
    if builder.ssh_proxy is not None:
        p = builder.ssh_proxy
        proxy = ProxySettings(host=p.host, port=p.port, username=p.username, password=p.password)
    return SshSettings(
        private_keys=keys,
        certificate=certificate,
        password=builder.ssh_password,
        agent_auth=builder.ssh_agent_auth,
        # amibake forwards the agent only to a build that authenticates with it (Packer
        # forwards any agent it finds unless ssh_disable_agent_forwarding is set)
        agent_forwarding=builder.ssh_agent_auth and not builder.ssh_disable_agent_forwarding,
        ciphers=builder.ssh_ciphers,
        kex_algs=builder.ssh_key_exchange_algorithms,
        keepalive_interval=builder.ssh_keep_alive_interval,
        read_write_timeout=builder.ssh_read_write_timeout,
        pty=builder.ssh_pty,
        file_transfer=builder.ssh_file_transfer_method,
        bastion=bastion,
        proxy=proxy,
    )


async def connect_instance(
    ctx: BuildContext,
    *,
    expected_fingerprints: tuple[str, ...] = (),
    host: str | None = None,
    port: int | None = None,
) -> Communicator:
    """Connect to the build's instance with the builder's SSH settings (and tunnels)."""
    assert ctx.ssh_host is not None
    builder = ctx.builder
    attempts = builder.ssh_handshake_attempts or PACKER_HANDSHAKE_ATTEMPTS

    def refused(attempt: int, reason: str) -> None:
        # a refused login is worth a line: the user may be one user data creates late
        if "denied" in reason.lower():
            ctx.say(
                f"SSH login as {builder.ssh_username} refused ({reason}); retrying "
                f"(up to {attempts} handshake attempts within ssh_timeout)"
            )

    communicator = await Communicator.connect(
        host=host or ctx.ssh_host,
        port=port or ctx.ssh_port,
        username=builder.ssh_username,
        timeout=builder.ssh_timeout,
        settings=ssh_settings(ctx),
        # Packer's default: 10 failed handshakes (refused logins included), within ssh_timeout
        handshake_attempts=attempts,
        expected_fingerprints=expected_fingerprints,
        on_attempt=refused,
    )
    try:
        await communicator.open_tunnels(builder.ssh_local_tunnels, builder.ssh_remote_tunnels)
    except BaseException:
        await communicator.close()
        raise
    return communicator


def check_session_manager(ctx: BuildContext) -> None:
    """``ssh_interface = "session_manager"`` fails before anything is created when it cannot
    work: the local cloud has no Systems Manager, and AWS's plugin must be on PATH."""
    if ctx.builder.ssh_interface != "session_manager":
        return
    target = ctx.options.target
    if target is not None and target.is_loopback:
        raise AmibakeError(
            'ssh_interface = "session_manager" is not available on the local cloud '
            "(it has no Systems Manager): use public_ip or private_ip there"
        )
    if shutil.which(SESSION_MANAGER_PLUGIN) is None:
        raise AmibakeError(
            f'ssh_interface = "session_manager" needs AWS\'s {SESSION_MANAGER_PLUGIN} on PATH '
            "(not found; see the AWS Systems Manager documentation: 'Install the Session "
            "Manager plugin for the AWS CLI')"
        )


class ConnectStep(Step):
    name = "ssh"
    title = "Waiting for SSH"

    def __init__(self) -> None:
        self._ssm_process: asyncio.subprocess.Process | None = None
        self._ssm_session: str | None = None
        self._ssm_reader: asyncio.Future[None] | None = None
        self._ssm_output: list[str] = []
        #: Starts a new session whenever the plugin exits once SSH is up (see _keep_session).
        self._ssm_keeper: asyncio.Task[None] | None = None

    async def run(self, ctx: BuildContext) -> None:
        assert ctx.ssh_host is not None
        builder = ctx.builder
        host, port = ctx.ssh_host, ctx.ssh_port
        if builder.ssh_interface == "session_manager":
            check_session_manager(ctx)
            if builder.pause_before_ssm > 0:
                ctx.say(f"Waiting {builder.pause_before_ssm:g}s before starting the SSM session")
                await asyncio.sleep(builder.pause_before_ssm)
            local_port = builder.session_manager_port or _free_port()
            host, port = "127.0.0.1", await self._start_session(ctx, local_port)
        expected: tuple[str, ...] = ()
        if ctx.options.verify_host_key:
            expected = await host_fingerprints(ctx)
            if not expected:
                ctx.say(
                    "The console output shows no SSH host key fingerprints yet: "
                    "connecting without verifying the host key",
                    "warning",
                )
        via = ""
        if builder.ssh_bastion is not None:
            via = f" via the bastion {builder.ssh_bastion.host}:{builder.ssh_bastion.port}"
        elif builder.ssh_proxy is not None:
            via = f" via the SOCKS5 proxy {builder.ssh_proxy.host}:{builder.ssh_proxy.port}"
        ctx.say(f"Connecting to {host}:{port} as {builder.ssh_username}{via}")
        ctx.communicator = await self._connect(ctx, expected, host, port)
        if builder.pause_before_connecting > 0:
            # Packer: once a connection works, disconnect, wait, then connect for good.
            communicator, ctx.communicator = ctx.communicator, None
            await communicator.close()
            ctx.say(f"Pausing {builder.pause_before_connecting:g}s before connecting")
            await asyncio.sleep(builder.pause_before_connecting)
            ctx.communicator = await connect_instance(
                ctx, expected_fingerprints=expected, host=host, port=port
            )
        verified = " (verified against the console output)" if expected else ""
        ctx.say(f"Connected; host key {ctx.communicator.host_key_fingerprint}{verified}")
        if self._ssm_process is not None:
            self._ssm_keeper = asyncio.create_task(self._keep_session(ctx, port))
        for spec in builder.ssh_local_tunnels:
            ctx.say(f"Local tunnel {spec}: listening on localhost here")
        for spec in builder.ssh_remote_tunnels:
            ctx.say(f"Remote tunnel {spec}: listening on the instance's localhost")

    async def cleanup(self, ctx: BuildContext) -> None:
        keeper, self._ssm_keeper = self._ssm_keeper, None
        if keeper is not None:  # no new session once cleanup stops the plugin
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        communicator, ctx.communicator = ctx.communicator, None
        if communicator is not None:
            await communicator.close()
        process, self._ssm_process = self._ssm_process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        reader, self._ssm_reader = self._ssm_reader, None
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(reader, 5)
        session, self._ssm_session = self._ssm_session, None
        if session is not None:
            await ctx.aws.service_call("ssm", ctx.region, "TerminateSession", SessionId=session)

    async def _connect(
        self, ctx: BuildContext, expected: tuple[str, ...], host: str, port: int
    ) -> Communicator:
        """:func:`connect_instance`; through a session manager tunnel, a plugin that exits
        before the connection is made ends the wait at once, with its last line."""
        process = self._ssm_process
        if process is None:
            return await connect_instance(ctx, expected_fingerprints=expected, host=host, port=port)
        connecting = asyncio.ensure_future(
            connect_instance(ctx, expected_fingerprints=expected, host=host, port=port)
        )
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait((connecting, exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting
        if connecting.done() and not connecting.cancelled():
            return connecting.result()
        if self._ssm_reader is not None:
            # the plugin has exited: its output ends soon after (EOF); read all of it first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ssm_reader), 5)
        last = self._ssm_output[-1] if self._ssm_output else "no output"
        raise AmibakeError(
            f"{SESSION_MANAGER_PLUGIN} exited with status {process.returncode} before SSH "
            f"connected through it: {last}"
        )

    async def _keep_session(self, ctx: BuildContext, local_port: int) -> None:
        """Once SSH is up, a new session each time the plugin exits, on the same local port,
        as Packer does: a session ends when the instance reboots (a provisioner's
        ``expect_disconnect``) or idles out, and the next connection needs a tunnel again.
        Runs until the step's cleanup; a session that cannot start again is said, and the
        next connection fails with its own error."""
        while (process := self._ssm_process) is not None:
            status = await process.wait()
            if self._ssm_reader is not None:  # its last lines first (EOF follows the exit)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._ssm_reader), 5)
            ended, self._ssm_session = self._ssm_session, None
            ctx.say(
                f"{SESSION_MANAGER_PLUGIN} exited with status {status}: starting a new SSM "
                f"session on 127.0.0.1:{local_port}"
            )
            try:
                if ended is not None:
                    await ctx.aws.service_call(
                        "ssm", ctx.region, "TerminateSession", SessionId=ended
                    )
                await self._start_session(ctx, local_port)
            except (AmibakeError, OSError) as error:
                self._ssm_process = None
                ctx.say(f"The SSM session could not start again: {error}", "warning")
                return

    async def _start_session(self, ctx: BuildContext, local_port: int) -> int:
        """An SSM port-forwarding session from ``local_port`` here to the instance's SSH port,
        with AWS's plugin holding its local end (started with the arguments the AWS CLI
        gives it); returns the local port."""
        assert ctx.instance_id is not None
        parameters = {
            "Target": ctx.instance_id,
            "DocumentName": "AWS-StartPortForwardingSession",
            "Parameters": {
                "portNumber": [str(ctx.ssh_port)],
                "localPortNumber": [str(local_port)],
            },
        }
        session = await self._start_session_call(ctx, parameters)
        self._ssm_session = session["SessionId"]
        session.pop("ResponseMetadata", None)
        # the build's own target: the template's profile and endpoint when it sets them
        target = ctx.aws.target
        endpoint = target.endpoint_for("ssm") or f"https://ssm.{ctx.region}.amazonaws.com"
        plugin = shutil.which(SESSION_MANAGER_PLUGIN) or SESSION_MANAGER_PLUGIN
        self._ssm_process = await asyncio.create_subprocess_exec(
            plugin,
            json.dumps(session),
            ctx.region,
            "StartSession",
            target.profile or "",
            json.dumps(parameters),
            endpoint,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._ssm_reader = asyncio.ensure_future(self._read_plugin(ctx, self._ssm_process))
        ctx.say(f"SSM session {self._ssm_session}: 127.0.0.1:{local_port} -> port {ctx.ssh_port}")
        return local_port

    async def _start_session_call(
        self, ctx: BuildContext, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """StartSession, retried while the instance's SSM agent has not registered yet
        (TargetNotConnected, as Packer retries it), for at most ssh_timeout."""
        deadline = time.monotonic() + ctx.builder.ssh_timeout
        delay = 0.2
        while True:
            try:
                return await ctx.aws.service_call("ssm", ctx.region, "StartSession", **parameters)
            except AwsError as error:
                if error.code != "TargetNotConnected" or time.monotonic() + delay > deadline:
                    raise
                ctx.say(f"The instance's SSM agent is not connected yet; retrying in {delay:g}s")
            await asyncio.sleep(delay)
            delay = min(delay + 0.2, 5.0)

    async def _read_plugin(self, ctx: BuildContext, process: asyncio.subprocess.Process) -> None:
        """The plugin's output, as build messages (its last lines explain an early exit)."""
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line longer than the stream's limit: skip what is there
                raw = await process.stdout.read(1 << 16)
            except OSError:
                return
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._ssm_output = [*self._ssm_output[-4:], line]
                ctx.say(f"{SESSION_MANAGER_PLUGIN}: {line}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ClearAuthorizedKeysStep(Step):
    """``ssh_clear_authorized_keys``: after provisioning, the temporary key leaves the user's
    and root's ``authorized_keys`` (as Packer does, with sed; root's through ``sudo -n``)."""

    name = "clear-keys"
    title = "Removing the temporary key from authorized_keys"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.builder.ssh_clear_authorized_keys

    async def run(self, ctx: BuildContext) -> None:
        communicator, key = ctx.communicator, ctx.private_key
        if communicator is None or key is None or not uses_temporary_key(ctx.builder):
            return
        blob = key.export_public_key("openssh").split()[1].decode()
        user = (
            f"sed -i.bak '\\#{blob}#d' ~/.ssh/authorized_keys && rm -f ~/.ssh/authorized_keys.bak"
        )
        root = (
            f"sudo -n sed -i.bak '\\#{blob}#d' /root/.ssh/authorized_keys && "
            "sudo -n rm -f /root/.ssh/authorized_keys.bak"
        )
        for where, command in (("~/.ssh/authorized_keys", user), ("/root's", root)):
            lines: list[str] = []
            result = await communicator.run(command, on_stdout=lines.append, on_stderr=lines.append)
            if result.ok:
                ctx.say(f"Removed the temporary key from {where}")
            else:
                # as Packer: not fatal, the key is useless without its private half anyway
                reason = " | ".join(result.tail[-2:]) or f"exit status {result.exit_status}"
                ctx.say(f"Could not clean {where}: {reason}", "warning")


#: error codes of a GetConsoleOutput that may not be asked with Latest (not a Nitro instance)
LATEST_UNSUPPORTED = ("UnsupportedOperation", "InvalidParameterValue", "InvalidParameter")
#: error codes of a GetConsoleOutput the caller's IAM policy denies
DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")
#: how long to wait for fingerprints without ``Latest``: the buffered output changes only
#: shortly after a state change, so waiting longer rarely helps
BUFFERED_WAIT = 20.0


async def host_fingerprints(ctx: BuildContext) -> tuple[str, ...]:
    """Fingerprints cloud-init printed to the console, polled for a while.

    Asked with ``Latest=True`` (the console as it is now; without it EC2 returns the output
    buffered at the last state change, which rarely has them), for up to ``LATEST_WAIT``
    for ``console_wait`` (3 minutes by default: cloud-init prints them a minute or two into
    the boot on AWS; at most ssh_timeout, as Packer bounds its whole wait for SSH); where EC2
    refuses ``Latest`` (instances not on Nitro), without it for at most ``BUFFERED_WAIT``. A
    denied GetConsoleOutput means "not verified", with a warning."""
    assert ctx.instance_id is not None
    latest = True
    wait = min(ctx.options.console_wait, ctx.builder.ssh_timeout)
    started = time.monotonic()
    delay = 0.5
    while True:
        params: dict[str, Any] = {"InstanceId": ctx.instance_id}
        if latest:
            params["Latest"] = True
        try:
            output = await ctx.aws.call(ctx.region, "GetConsoleOutput", **params)
        except AwsError as error:
            if latest and error.code in LATEST_UNSUPPORTED:
                ctx.say("GetConsoleOutput cannot give the latest output here: asking without it")
                latest = False
                wait = min(wait, BUFFERED_WAIT)
                continue
            if error.code in DENIED:
                ctx.say(
                    "GetConsoleOutput is denied (ec2:GetConsoleOutput missing from the IAM "
                    "policy): the host key is not verified",
                    "warning",
                )
                return ()
            raise
        found = fingerprints_from_console(output.get("Output") or "")
        if found or time.monotonic() >= started + wait:
            return found
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 3.0)


def _local(ctx: BuildContext, path_text: str) -> Path:
    return local_path(ctx.spec, path_text)


def read_certificate(ctx: BuildContext, path_text: str, option: str) -> Any:
    path = _local(ctx, path_text)
    try:
        return asyncssh.read_certificate(path)
    except OSError as error:
        raise AmibakeError(f"cannot read {option} {path}: {error.strerror}") from None
    except (asyncssh.KeyImportError, ValueError) as error:
        raise AmibakeError(f"{option} {path} is not a usable certificate: {error}") from None
