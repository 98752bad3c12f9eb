"""The SSH communicator: reach the temporary instance, verify it, run commands and move files.

:meth:`Communicator.connect` keeps trying while the instance boots (refused, reset, timed out,
lost during the handshake), backing off from ``retry_delay`` to about two seconds, until the
caller's ``timeout``. A refused key is retried for a short window only, because cloud-init may
not have written ``authorized_keys`` yet; after that the user gets a message naming the user.

Host keys: with ``expected_fingerprints`` (parsed from the console by
:func:`fingerprints_from_console`) the server's key must be one of them, checked during the
key exchange, before we authenticate; otherwise the connection fails closed with
:class:`HostKeyMismatch` and is not retried. Without fingerprints any key is accepted and the
caller decides what to log; :attr:`Communicator.host_key_fingerprint` tells what was presented.

:meth:`Communicator.run` streams output line by line through callbacks. Data arrives in the
channel's ``data_received`` callback (no reader task, no await per chunk), is split on newlines
in bulk and handed out one line at a time, stdout and stderr kept apart. Files go over SFTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh

from core.errors import AmibakeError

__all__ = [
    "CommandResult",
    "CommandTimeout",
    "Communicator",
    "HostKeyMismatch",
    "SshAuthFailed",
    "SshDisconnected",
    "SshError",
    "SshTimeout",
    "fingerprints_from_console",
]

#: how many trailing output lines a CommandResult keeps
TAIL_LINES = 20
#: the longest pause between two connection attempts
MAX_RETRY_DELAY = 2.0
#: the pause between two attempts after the server refused our key
AUTH_RETRY_DELAY = 2.0
#: after TERM, how long a timed-out command has before it gets KILL
KILL_GRACE = 2.0
#: how long closing waits for the other side to acknowledge
CLOSE_WAIT = 2.0
#: SFTP read/write block size
_SFTP_BLOCK = 256 * 1024
#: receive window of a command's channel (asyncssh's default is 2 MiB)
_RUN_WINDOW = 8 * 1024 * 1024

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]+=*")
_BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
_END = "-----END SSH HOST KEY FINGERPRINTS-----"


# -- errors -----------------------------------------------------------------------------------


class SshError(AmibakeError):
    """SSH to the instance failed; the message is one line."""


class SshTimeout(SshError):
    """No SSH connection could be made within the timeout."""


class HostKeyMismatch(SshError):
    """The server's host key is not one the instance's console announced."""

    def __init__(self, message: str, *, presented: str, expected: Sequence[str]) -> None:
        super().__init__(message)
        self.presented = presented
        self.expected = tuple(expected)


class SshAuthFailed(SshError):
    """The server refused our key for this user."""


class CommandTimeout(SshError):
    """A command ran longer than its timeout and was stopped."""


class SshDisconnected(SshError):
    """The connection dropped (``asyncssh.ConnectionLost`` and kin are its ``__cause__``)."""


# -- console fingerprints ----------------------------------------------------------------------


def fingerprints_from_console(output: str) -> tuple[str, ...]:
    """The ``SHA256:...`` host key fingerprints cloud-init printed on the console.

    Reads the last complete ``BEGIN/END SSH HOST KEY FINGERPRINTS`` block (a reboot prints a new
    one; a block cut off by the console buffer is ignored). Lines may carry a prefix such as
    ``ec2: ``. Returns ``()`` when there is no complete block.
    """
    found: tuple[str, ...] = ()
    current: list[str] | None = None
    for line in output.splitlines():
        if _BEGIN in line:
            current = []
        elif _END in line:
            if current is not None:
                found = tuple(dict.fromkeys(current))
            current = None
        elif current is not None:
            current.extend(_FINGERPRINT.findall(line))
    return found


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    """How a command ended: its exit status or the signal that killed it, and its last lines."""

    exit_status: int | None
    exit_signal: str | None
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


# -- helpers ---------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    """A short, one-line account of why an attempt failed."""
    if isinstance(error, asyncssh.DisconnectError):
        text = error.reason or type(error).__name__
    elif isinstance(error, TimeoutError):
        text = "timed out"
    elif isinstance(error, OSError) and error.errno:
        # asyncio says "Connect call failed (...)"; the errno says what happened
        text = os.strerror(error.errno)
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _short(command: str, limit: int = 60) -> str:
    text = " ".join(command.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _with_env(command: str, env: Mapping[str, str] | None) -> str:
    """Prefix ``export`` statements: OpenSSH drops SSH env requests unless AcceptEnv allows."""
    if not env:
        return command
    for name in env:
        if not _ENV_NAME.match(name):
            raise SshError(f"invalid environment variable name {name!r}")
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"export {exports}; {command}"


class _Client(asyncssh.SSHClient):
    """Keeps the connection (to abort it on cancel) and checks the host key by fingerprint."""

    def __init__(self, expected: frozenset[str]) -> None:
        self.expected = expected
        self.presented: str | None = None
        self.conn: asyncssh.SSHClientConnection | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented = key.get_fingerprint("sha256")
        return self.presented in self.expected


class _LineSplitter:
    """Bytes in, whole decoded lines out, one callback per line."""

    __slots__ = ("_batch", "_callback", "_partial", "_tail")

    def __init__(self, callback: Callable[[Any], None], tail: deque[str], batch: bool) -> None:
        self._callback = callback
        #: deliver each read's lines as one list (one call) instead of one call per line
        self._batch = batch
        # a bytearray: a long line arriving in many chunks grows in amortised O(1) per chunk
        self._partial = bytearray()
        self._tail = tail

    def feed(self, data: bytes) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            self._partial += data
            return
        chunk: bytes | bytearray
        if self._partial:
            self._partial += data[: end + 1]
            chunk = self._partial
            self._partial = bytearray(data[end + 1 :])
        else:
            chunk = data[: end + 1]
            if end + 1 < len(data):
                self._partial += data[end + 1 :]
        # "\n" never occurs inside a UTF-8 sequence: decoding up to a newline is safe
        lines = chunk.decode("utf-8", "replace").split("\n")
        lines.pop()  # the empty string after the final "\n"
        if b"\r" in chunk:
            lines = [line.removesuffix("\r") for line in lines]
        self._emit(lines)

    def finish(self) -> None:
        if self._partial:
            line = self._partial.decode("utf-8", "replace").removesuffix("\r")
            self._partial = bytearray()
            self._emit([line])

    def _emit(self, lines: list[str]) -> None:
        self._tail.extend(lines[-TAIL_LINES:])
        if self._batch:
            self._callback(lines)
            return
        # a zero-length deque drives map() from C: the per-line cost is the callback itself
        deque(map(self._callback, lines), maxlen=0)


class _CommandSession(asyncssh.SSHClientSession[bytes]):
    """Feeds a command's output to line splitters and records how it ended."""

    def __init__(
        self, on_stdout: Callable[[Any], None], on_stderr: Callable[[Any], None], batch: bool
    ) -> None:
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._stdout = _LineSplitter(on_stdout, self.tail, batch)
        self._stderr = _LineSplitter(on_stderr, self.tail, batch)
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.lost: Exception | None = None
        self.callback_error: BaseException | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.callback_error is not None:
            return
        try:
            if datatype == asyncssh.EXTENDED_DATA_STDERR:
                self._stderr.feed(data)
            else:
                self._stdout.feed(data)
        except Exception as error:  # the caller's callback failed: stop the command
            self.callback_error = error
            if self.chan is not None:
                self.chan.close()

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if self.callback_error is None:
            try:
                self._stdout.finish()
                self._stderr.finish()
            except Exception as error:
                self.callback_error = error
        self.lost = exc
        if not self.closed.done():
            self.closed.set_result(None)


# -- the communicator -------------------------------------------------------------------------


class Communicator:
    """One SSH connection to an instance. Use :meth:`connect`, then ``async with`` or close()."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, *, host: str, port: int, username: str
    ) -> None:
        self._conn = conn
        self.host = host
        self.port = port
        self.username = username
        key = conn.get_server_host_key()
        self.host_key_fingerprint: str = key.get_fingerprint("sha256") if key else ""

    @property
    def where(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    # -- connecting ---------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        *,
        host: str,
        port: int,
        username: str,
        private_key: asyncssh.SSHKey,
        timeout: float,
        expected_fingerprints: Sequence[str] = (),
        retry_delay: float = 0.5,
        on_attempt: Callable[[int, str], None] | None = None,
        keepalive_interval: float = 10.0,
        auth_retry_window: float = 10.0,
        attempt_timeout: float = 20.0,
    ) -> Communicator:
        """Connect, retrying while the server is not up yet, within ``timeout`` seconds.

        ``on_attempt(n, reason)`` is called after each failed attempt ``n``.
        ``auth_retry_window``: how long a refused key is retried, from the first refusal.
        ``attempt_timeout``: the longest one attempt (TCP, handshake, auth) may take.
        """
        expected = frozenset(f.strip() for f in expected_fingerprints if f.strip())
        where = f"{username}@{host}:{port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = max(retry_delay, 0.01)
        attempt = 0
        first_refusal: float | None = None
        last_reason = "no attempt made"
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            client = _Client(expected)
            try:
                conn = await asyncssh.connect(
                    host,
                    port,
                    username=username,
                    client_keys=[private_key],
                    known_hosts=([], [], []) if expected else None,
                    client_factory=lambda client=client: client,  # type: ignore[misc]
                    connect_timeout=max(min(remaining, attempt_timeout), 0.1),
                    keepalive_interval=keepalive_interval,
                    agent_path=None,
                    config=None,
                    preferred_auth="publickey",
                    password_auth=False,
                    kbdint_auth=False,
                    gss_auth=False,
                    gss_kex=False,
                    host_based_auth=False,
                )
            except asyncio.CancelledError:
                # asyncssh aborts a half-open connection itself; make sure of it
                if client.conn is not None:
                    client.conn.abort()
                raise
            except asyncssh.HostKeyNotVerifiable as error:
                presented = client.presented or "an unverifiable key"
                raise HostKeyMismatch(
                    f"host key mismatch for {host}:{port}: server presented {presented}, "
                    f"expected one of {', '.join(sorted(expected))} (refusing to connect)",
                    presented=presented,
                    expected=sorted(expected),
                ) from error
            except asyncssh.PermissionDenied as error:
                now = loop.time()
                first_refusal = now if first_refusal is None else first_refusal
                last_reason = _reason(error)
                if now - first_refusal >= auth_retry_window or now >= deadline:
                    raise SshAuthFailed(
                        f"SSH server {host}:{port} refused our key for user {username!r} "
                        f"after {attempt} attempt(s) (check ssh_username)"
                    ) from error
                if on_attempt is not None:
                    on_attempt(attempt, last_reason)
                pause = min(
                    AUTH_RETRY_DELAY, deadline - now, first_refusal + auth_retry_window - now
                )
                await asyncio.sleep(max(pause, 0.0))
                continue
            except (OSError, TimeoutError, asyncssh.Error) as error:
                last_reason = _reason(error)
                if loop.time() + min(delay, 0.05) >= deadline:
                    raise SshTimeout(
                        f"timed out after {timeout:g}s waiting for SSH on {where} "
                        f"({attempt} attempt(s); last error: {last_reason})"
                    ) from error
                if on_attempt is not None:
                    on_attempt(attempt, last_reason)
                await asyncio.sleep(max(min(delay, deadline - loop.time()), 0.0))
                delay = min(delay * 1.5, MAX_RETRY_DELAY)
                continue
            return cls(conn, host=host, port=port, username=username)

    # -- running commands ---------------------------------------------------------------------

    async def run(
        self,
        command: str,
        *,
        on_stdout: Callable[[Any], None],
        on_stderr: Callable[[Any], None],
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
        batch: bool = False,
    ) -> CommandResult:
        """Run ``command`` in the login shell, streaming its output one line per callback.

        With ``batch=True`` each callback gets a ``list[str]``: the whole lines of one read, in
        order (a flood of output then costs one call per read, not per line).

        ``env`` is exported by the command line itself. ``stdin`` is sent and then closed; without
        it the command sees EOF at once. On ``timeout`` the command gets TERM, then KILL after
        two seconds, and :class:`CommandTimeout` is raised. If the connection drops,
        :class:`SshDisconnected`.
        """
        full = _with_env(command, env)
        try:
            chan, session = await self._conn.create_session(
                lambda: _CommandSession(on_stdout, on_stderr, batch),
                full,
                encoding=None,
                window=_RUN_WINDOW,
            )
        except (OSError, asyncssh.Error) as error:
            raise self._translate(error, f"cannot start {_short(command)!r}") from error
        assert isinstance(session, _CommandSession)
        try:
            if stdin is not None:
                chan.write(stdin.encode() if isinstance(stdin, str) else stdin)
            chan.write_eof()
        except (OSError, asyncssh.Error):
            pass  # the command already ended or the connection went; the close tells which
        try:
            if timeout is None:
                await asyncio.shield(session.closed)
            else:
                try:
                    await asyncio.wait_for(asyncio.shield(session.closed), timeout)
                except TimeoutError:
                    await self._stop(chan, session)
                    raise CommandTimeout(
                        f"command timed out after {timeout:g}s and was stopped: {_short(command)!r}"
                    ) from None
        except asyncio.CancelledError:
            await self._abandon(chan, session)
            raise
        if session.callback_error is not None:
            raise session.callback_error
        if session.lost is not None:
            raise self._translate(
                session.lost, f"while running {_short(command)!r}"
            ) from session.lost
        if session.exit_status is None and session.exit_signal is None and self._conn_gone():
            raise SshDisconnected(
                f"connection to {self.where} lost while running {_short(command)!r}"
            )
        return CommandResult(
            exit_status=session.exit_status,
            exit_signal=session.exit_signal,
            tail=tuple(session.tail),
        )

    async def _stop(self, chan: asyncssh.SSHClientChannel[bytes], session: _CommandSession) -> None:
        """TERM, then KILL after a grace period, then close the channel."""
        for signal in ("TERM", "KILL"):
            with contextlib.suppress(OSError, asyncssh.Error):
                chan.send_signal(signal)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(session.closed), KILL_GRACE)
                return
        chan.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(session.closed), CLOSE_WAIT)

    async def _abandon(
        self, chan: asyncssh.SSHClientChannel[bytes], session: _CommandSession
    ) -> None:
        """On cancel: signal the command and close its channel (the server kills it)."""
        if session.closed.done():
            return
        with contextlib.suppress(OSError, asyncssh.Error):
            chan.send_signal("TERM")
        chan.close()
        # Wait briefly (even if cancelled again) so the server has seen the close.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(session.closed), CLOSE_WAIT)

    def _conn_gone(self) -> bool:
        return self._conn.is_closed()

    def _translate(self, error: BaseException, doing: str) -> SshError:
        if isinstance(error, SshError):
            return error
        if isinstance(error, asyncssh.ConnectionLost | ConnectionError) or (
            isinstance(error, asyncssh.DisconnectError | asyncssh.ChannelOpenError)
            and self._conn_gone()
        ):
            return SshDisconnected(f"connection to {self.where} lost {doing}: {_reason(error)}")
        return SshError(f"SSH to {self.where} failed {doing}: {_reason(error)}")

    # -- files ----------------------------------------------------------------------------------

    async def upload(self, data: bytes | Path, remote_path: str, *, mode: int = 0o644) -> None:
        """Write ``data`` (bytes, or a local file's content) to ``remote_path`` and set its mode.

        Creates the file only, never its directories.
        """
        if isinstance(data, Path):
            try:
                payload = await asyncio.to_thread(data.read_bytes)
            except OSError as error:
                raise SshError(f"cannot read {data}: {error.strerror or error}") from None
        else:
            payload = data
        try:
            async with self._conn.start_sftp_client() as sftp:
                async with sftp.open(
                    remote_path,
                    "wb",
                    attrs=asyncssh.SFTPAttrs(permissions=mode),
                    block_size=_SFTP_BLOCK,
                ) as remote:
                    await remote.write(payload)
                # the permissions at creation pass through the server's umask
                await sftp.chmod(remote_path, mode)
        except asyncssh.SFTPError as error:
            raise self._sftp_error(error, f"cannot upload to {remote_path}") from error
        except (OSError, asyncssh.Error) as error:
            raise self._translate(error, f"uploading to {remote_path}") from error

    async def download(self, remote_path: str, local_path: Path) -> None:
        """Copy ``remote_path`` to ``local_path`` (replacing it)."""
        try:
            async with self._conn.start_sftp_client() as sftp:
                await sftp.get(remote_path, local_path, block_size=_SFTP_BLOCK)
        except asyncssh.SFTPError as error:
            raise self._sftp_error(error, f"cannot download {remote_path}") from error
        except (OSError, asyncssh.Error) as error:
            if isinstance(error, OSError) and not isinstance(error, ConnectionError):
                reason = error.strerror or str(error)
                raise SshError(
                    f"cannot download {remote_path} to {local_path}: {reason}"
                ) from error
            raise self._translate(error, f"downloading {remote_path}") from error

    def _sftp_error(self, error: asyncssh.SFTPError, doing: str) -> SshError:
        if isinstance(error, asyncssh.SFTPConnectionLost) or self._conn_gone():
            return SshDisconnected(f"connection to {self.where} lost: {doing}: {_reason(error)}")
        if isinstance(error, asyncssh.SFTPPermissionDenied):
            return SshError(f"{doing}: permission denied")
        if isinstance(error, asyncssh.SFTPNoSuchFile):
            return SshError(f"{doing}: no such file or directory")
        return SshError(f"{doing}: {_reason(error)}")

    # -- closing --------------------------------------------------------------------------------

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            await asyncio.wait_for(self._conn.wait_closed(), CLOSE_WAIT)

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
