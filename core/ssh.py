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
import ipaddress
import os
import re
import shlex
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import asyncssh

from amibake.core.errors import AmibakeError

__all__ = [
    "BastionSettings",
    "CommandResult",
    "CommandTimeout",
    "Communicator",
    "HostKeyMismatch",
    "ProxySettings",
    "SshAuthFailed",
    "SshDisconnected",
    "SshError",
    "SshSettings",
    "SshTimeout",
    "connect_options",
    "fingerprints_from_console",
    "parse_tunnel",
    "socks5_connect",
]

#: how many trailing output lines a CommandResult keeps
TAIL_LINES = 20
#: the longest pause between two connection attempts
MAX_RETRY_DELAY = 2.0
#: a refused port (sshd not listening yet) answers at once: look again soon, a capped
#: number of times, before backing off as for other errors (issue 16)
REFUSED_RETRY_DELAY = 0.1
REFUSED_FAST_ATTEMPTS = 50
#: the pause between two attempts after the server refused our key
AUTH_RETRY_DELAY = 2.0
#: the pause between two failed handshakes when they are counted (``handshake_attempts``):
#: a user that user data creates appears late, so refusals are retried a few seconds apart
#: (Packer sleeps several seconds between its handshake attempts too)
HANDSHAKE_RETRY_DELAY = 3.0
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


class KeyTypeRefused(SshError):
    """The server accepts no signature algorithm of our key's type (its server-sig-algs say
    so): an sshd older than OpenSSH 6.5, or one configured without ed25519 (FIPS)."""

    def __init__(self, message: str, *, key_type: str) -> None:
        super().__init__(message)
        self.key_type = key_type


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


# -- connection settings -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BastionSettings:
    """The host an SSH connection hops through (``ssh_bastion_*``). Its host key is not pinned:
    no console output tells us what it should be."""

    host: str
    port: int = 22
    username: str | None = None
    password: str | None = None
    private_key: asyncssh.SSHKey | None = None
    certificate: asyncssh.SSHCertificate | None = None
    agent_auth: bool = False
    #: answer keyboard-interactive prompts with the password
    interactive: bool = False


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """A SOCKS5 proxy (RFC 1928; username/password auth, RFC 1929) in front of the SSH server."""

    host: str
    port: int = 1080
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, kw_only=True)
class SshSettings:
    """How to reach and talk to one SSH server: credentials, algorithms, route, transfers.

    :func:`connect_options` turns it into ``asyncssh.connect`` keyword arguments; the build's
    communicator and an interactive shell on the instance use the same function.
    """

    private_keys: tuple[asyncssh.SSHKey, ...] = ()
    #: a user certificate for the (first) private key
    certificate: asyncssh.SSHCertificate | None = None
    password: str | None = None
    #: authenticate with the keys of the local agent (``SSH_AUTH_SOCK``)
    agent_auth: bool = False
    #: forward the local agent to the server's sessions
    agent_forwarding: bool = False
    ciphers: tuple[str, ...] = ()
    kex_algs: tuple[str, ...] = ()
    #: seconds between keepalives (0: none)
    keepalive_interval: float = 10.0
    #: declare the connection dead after this long without an answer (None: keepalives decide)
    read_write_timeout: float | None = None
    #: request a pseudo-terminal for every command
    pty: bool = False
    file_transfer: Literal["sftp", "scp"] = "sftp"
    bastion: BastionSettings | None = None
    proxy: ProxySettings | None = None


def _agent_socket(what: str) -> str:
    path = os.environ.get("SSH_AUTH_SOCK", "")
    if not path:
        raise SshError(f"{what} needs a running SSH agent, but SSH_AUTH_SOCK is not set")
    return path


async def _agent_keys(what: str) -> list[Any]:
    """The agent's keys, as client keys (asyncssh would otherwise add ~/.ssh's own)."""
    path = _agent_socket(what)
    try:
        async with asyncssh.connect_agent(path) as agent:
            keys = list(await agent.get_keys())
    except (OSError, asyncssh.Error) as error:
        raise SshError(f"{what}: cannot reach the SSH agent at {path}: {_reason(error)}") from None
    if not keys:
        raise SshError(f"{what}: the SSH agent at {path} holds no keys")
    return keys


async def _auth_options(
    keys: Sequence[asyncssh.SSHKey],
    certificate: asyncssh.SSHCertificate | None,
    password: str | None,
    agent_auth: bool,
    what: str,
    *,
    interactive: bool = True,
) -> dict[str, Any]:
    client_keys: list[Any] = []
    if agent_auth:
        client_keys.extend(await _agent_keys(what))
    for i, key in enumerate(keys):
        client_keys.append((key, certificate) if certificate is not None and i == 0 else key)
    return {
        # None: no public-key auth at all; an empty list would make asyncssh load ~/.ssh/id_*
        "client_keys": client_keys or None,
        "agent_path": None,
        "password": password,
        "password_auth": password is not None,
        # Packer answers keyboard-interactive prompts with the password too
        "kbdint_auth": password is not None and interactive,
        "gss_auth": False,
        "gss_kex": False,
        "host_based_auth": False,
        "config": None,
    }


def _algorithm_options(settings: SshSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.ciphers:
        options["encryption_algs"] = list(settings.ciphers)
    if settings.kex_algs:
        options["kex_algs"] = list(settings.kex_algs)
    interval = settings.keepalive_interval
    if settings.read_write_timeout:
        # Packer puts a deadline on every read and write of the socket; keepalives answered
        # count as reads, so "no answer for that long" is when the connection is given up.
        interval = interval or settings.read_write_timeout
        count = max(1, int(-(-settings.read_write_timeout // interval)))
        options["keepalive_count_max"] = count
    options["keepalive_interval"] = interval or None
    return options


async def _open_bastion(
    bastion: BastionSettings, stack: contextlib.AsyncExitStack, timeout: float
) -> asyncssh.SSHClientConnection:
    where = (
        f"{bastion.username or ''}{'@' if bastion.username else ''}{bastion.host}:{bastion.port}"
    )
    auth = await _auth_options(
        (bastion.private_key,) if bastion.private_key is not None else (),
        bastion.certificate,
        bastion.password,
        bastion.agent_auth,
        f"the bastion {where}",
        interactive=bastion.interactive or bastion.password is not None,
    )
    try:
        conn = await asyncssh.connect(
            bastion.host,
            bastion.port,
            username=bastion.username or (),
            known_hosts=None,
            connect_timeout=max(timeout, 0.1),
            **auth,
        )
    except asyncssh.PermissionDenied as error:
        raise SshAuthFailed(
            f"the bastion {where} refused our credentials: {_reason(error)}"
        ) from None
    stack.push_async_callback(_close_quietly, conn)
    return conn


async def _close_quietly(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
        await asyncio.wait_for(conn.wait_closed(), CLOSE_WAIT)


_SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


async def socks5_connect(
    proxy: ProxySettings, host: str, port: int, timeout: float
) -> socket.socket:
    """A socket connected to ``host:port`` through the SOCKS5 proxy (CONNECT).

    The proxy's refusal to reach the target (the instance not up yet) is an OSError, retried
    like a refused connection; a refused login to the proxy is an :class:`SshError`.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)

    async def receive(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = await loop.sock_recv(sock, count - len(data))
            if not chunk:
                raise ConnectionResetError(f"the SOCKS proxy {proxy.host}:{proxy.port} hung up")
            data += chunk
        return data

    try:
        async with asyncio.timeout(max(timeout, 0.1)):
            await loop.sock_connect(sock, address)
            methods = b"\x00\x02" if proxy.username is not None else b"\x00"
            await loop.sock_sendall(sock, bytes([5, len(methods)]) + methods)
            version, method = await receive(2)
            if version != 5:
                raise SshError(f"{proxy.host}:{proxy.port} is not a SOCKS5 proxy")
            if method == 2 and proxy.username is not None:
                user = proxy.username.encode()
                secret = (proxy.password or "").encode()
                await loop.sock_sendall(
                    sock, bytes([1, len(user)]) + user + bytes([len(secret)]) + secret
                )
                _, status = await receive(2)
                if status != 0:
                    raise SshError(
                        f"the SOCKS proxy {proxy.host}:{proxy.port} refused user {proxy.username!r}"
                    )
            elif method != 0:
                raise SshError(
                    f"the SOCKS proxy {proxy.host}:{proxy.port} accepts none of our "
                    "authentication methods (set ssh_proxy_username/ssh_proxy_password?)"
                )
            try:
                ip = ipaddress.ip_address(host)
                target = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
            except ValueError:
                name = host.encode("idna")
                target = bytes([3, len(name)]) + name
            await loop.sock_sendall(sock, b"\x05\x01\x00" + target + port.to_bytes(2, "big"))
            _, reply, _, kind_of_address = await receive(4)
            if reply != 0:
                reason = _SOCKS_REPLIES.get(reply, f"error {reply}")
                raise ConnectionRefusedError(f"SOCKS proxy: {reason}")
            if kind_of_address == 1:
                await receive(4 + 2)
            elif kind_of_address == 4:
                await receive(16 + 2)
            else:
                (length,) = await receive(1)
                await receive(length + 2)
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_options(
    settings: SshSettings,
    host: str,
    port: int,
    stack: contextlib.AsyncExitStack,
    timeout: float,
) -> dict[str, Any]:
    """``asyncssh.connect`` keyword arguments for ``settings``: credentials, algorithms,
    keepalives, and the route (a bastion's tunnel or a SOCKS5 socket). What the route opens
    is closed by ``stack``; the host key check is the caller's (``known_hosts``)."""
    options = await _auth_options(
        settings.private_keys,
        settings.certificate,
        settings.password,
        settings.agent_auth,
        "ssh_agent_auth",
    )
    options.update(_algorithm_options(settings))
    if settings.agent_forwarding:
        options["agent_forwarding"] = True
        options["agent_path"] = _agent_socket("agent forwarding")
    if settings.bastion is not None:
        options["tunnel"] = await _open_bastion(settings.bastion, stack, timeout)
    elif settings.proxy is not None:
        sock = await socks5_connect(settings.proxy, host, port, timeout)
        stack.callback(sock.close)  # the connection owns it once made; closing twice is harmless
        options["sock"] = sock
    return options


def parse_tunnel(spec: str) -> tuple[int, str, int]:
    """``port:host:hostport`` (Packer's ssh_*_tunnels form) as (port, host, hostport)."""
    listen, rest = spec.split(":", 1)
    host, _, target = rest.rpartition(":")
    return int(listen), host.strip("[]") or "localhost", int(target)


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


def _refused_key_type(client: _Client, settings: SshSettings) -> str | None:
    """The type of our only key, when the server's server-sig-algs (RFC 8308) name none of its
    signature algorithms; None when that cannot be the reason (other credentials, no list)."""
    if settings.password or settings.agent_auth or len(settings.private_keys) != 1:
        return None
    advertised = getattr(client.conn, "_server_sig_algs", None) if client.conn else None
    key = settings.private_keys[0]
    if not advertised or key is None:
        return None
    if any(alg in advertised for alg in key.sig_algorithms):
        return None
    return str(key.get_algorithm())


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

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
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
        self,
        conn: asyncssh.SSHClientConnection,
        *,
        host: str,
        port: int,
        username: str,
        settings: SshSettings | None = None,
        route: contextlib.AsyncExitStack | None = None,
    ) -> None:
        self._conn = conn
        self.host = host
        self.port = port
        self.username = username
        self.settings = settings or SshSettings()
        #: what carries the connection (a bastion's connection): closed after it
        self._route = route
        self._listeners: list[asyncssh.SSHListener] = []
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
        private_key: asyncssh.SSHKey | None = None,
        timeout: float,
        settings: SshSettings | None = None,
        handshake_attempts: int | None = None,
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
        ``settings``: credentials, algorithms and route (``private_key`` and
        ``keepalive_interval`` are shorthands for the plain case).
        ``handshake_attempts``: as Packer's ``ssh_handshake_attempts``, how many failed SSH
        handshakes (the server answered, then refused or dropped us) end the wait; it replaces
        ``auth_retry_window`` when given.
        """
        if settings is None:
            settings = SshSettings(
                private_keys=(private_key,) if private_key is not None else (),
                keepalive_interval=keepalive_interval,
            )
        expected = frozenset(f.strip() for f in expected_fingerprints if f.strip())
        where = f"{username}@{host}:{port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = max(retry_delay, 0.01)
        attempt = 0
        first_refusal: float | None = None
        handshakes_failed = 0
        refused_fast = 0
        last_reason = "no attempt made"
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            client = _Client(expected)
            route = contextlib.AsyncExitStack()
            limit = max(min(remaining, attempt_timeout), 0.1)
            try:
                try:
                    options = await connect_options(settings, host, port, route, limit)
                    conn = await asyncssh.connect(
                        host,
                        port,
                        username=username,
                        known_hosts=([], [], []) if expected else None,
                        client_factory=lambda client=client: client,
                        connect_timeout=limit,
                        **options,
                    )
                except BaseException:
                    await route.aclose()
                    raise
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
                refused_type = _refused_key_type(client, settings)
                if refused_type is not None:
                    # no retry can help: the server takes no key of this type at all
                    raise KeyTypeRefused(
                        f"SSH server {host}:{port} accepts no {refused_type} keys (its "
                        "server-sig-algs lack them)",
                        key_type=refused_type,
                    ) from error
                now = loop.time()
                first_refusal = now if first_refusal is None else first_refusal
                handshakes_failed += 1
                last_reason = _reason(error)
                if handshake_attempts is not None:
                    given_up = handshakes_failed >= handshake_attempts
                    window_end = deadline
                else:
                    given_up = now - first_refusal >= auth_retry_window
                    window_end = first_refusal + auth_retry_window
                if given_up or now >= deadline:
                    what = (
                        "key"
                        if settings.private_keys and not settings.password
                        else ("credentials")
                    )
                    raise SshAuthFailed(
                        f"SSH server {host}:{port} refused our {what} for user {username!r} "
                        f"after {attempt} attempt(s) (check ssh_username)"
                    ) from error
                if on_attempt is not None:
                    on_attempt(attempt, last_reason)
                spacing = AUTH_RETRY_DELAY if handshake_attempts is None else HANDSHAKE_RETRY_DELAY
                pause = min(spacing, deadline - now, window_end - now)
                await asyncio.sleep(max(pause, 0.0))
                continue
            except SshError:
                raise
            except (OSError, TimeoutError, asyncssh.Error) as error:
                last_reason = _reason(error)
                if isinstance(error, asyncssh.Error) and handshake_attempts is not None:
                    # the server answered and the SSH handshake failed (Packer counts these)
                    handshakes_failed += 1
                    if handshakes_failed >= handshake_attempts:
                        raise SshTimeout(
                            f"gave up on SSH to {where} after {handshakes_failed} failed "
                            f"handshake(s) (ssh_handshake_attempts; last error: {last_reason})"
                        ) from error
                if loop.time() + min(delay, 0.05) >= deadline:
                    raise SshTimeout(
                        f"timed out after {timeout:g}s waiting for SSH on {where} "
                        f"({attempt} attempt(s); last error: {last_reason})"
                    ) from error
                if on_attempt is not None:
                    on_attempt(attempt, last_reason)
                refused = isinstance(error, ConnectionRefusedError)
                if refused and refused_fast < REFUSED_FAST_ATTEMPTS:
                    refused_fast += 1
                    pause = REFUSED_RETRY_DELAY
                else:
                    pause, delay = delay, min(delay * 1.5, MAX_RETRY_DELAY)
                await asyncio.sleep(max(min(pause, deadline - loop.time()), 0.0))
                continue
            return cls(
                conn, host=host, port=port, username=username, settings=settings, route=route
            )

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
            # ssh_pty: a terminal, as `ssh -t` (stderr then arrives merged into stdout)
            terminal: dict[str, Any] = (
                {"term_type": "vt100", "term_size": (80, 24)} if self.settings.pty else {}
            )
            chan, session = await self._conn.create_session(
                lambda: _CommandSession(on_stdout, on_stderr, batch),
                full,
                encoding=None,
                window=_RUN_WINDOW,
                **terminal,
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
        if self.settings.file_transfer == "scp":
            await self._scp_upload(payload, remote_path, mode)
            return
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
        if self.settings.file_transfer == "scp":
            try:
                await asyncssh.scp((self._conn, remote_path), local_path)
            except asyncssh.SFTPError as error:
                raise self._sftp_error(error, f"cannot download {remote_path}") from error
            except (OSError, asyncssh.Error) as error:
                raise self._translate(error, f"downloading {remote_path}") from error
            return
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

    async def _scp_upload(self, payload: bytes, remote_path: str, mode: int) -> None:
        """ssh_file_transfer_method = "scp": the remote ``scp -t``, as Packer's default.

        scp sends the file's mode with its content, so the payload goes through a private
        temporary file carrying ``mode``.
        """
        with tempfile.TemporaryDirectory(prefix="amibake-scp-") as folder:
            local = Path(folder) / (Path(remote_path).name or "file")

            def write() -> None:
                local.write_bytes(payload)
                local.chmod(mode)

            await asyncio.to_thread(write)
            try:
                await asyncssh.scp(local, (self._conn, remote_path), block_size=_SFTP_BLOCK)
            except asyncssh.SFTPError as error:
                raise self._sftp_error(error, f"cannot upload to {remote_path}") from error
            except (OSError, asyncssh.Error) as error:
                raise self._translate(error, f"uploading to {remote_path}") from error

    # -- tunnels --------------------------------------------------------------------------------

    async def open_tunnels(self, local: Sequence[str] = (), remote: Sequence[str] = ()) -> None:
        """Packer's ssh_local_tunnels (listen here on localhost:port, connect from the server
        to host:hostport) and ssh_remote_tunnels (listen on the server's localhost:port,
        connect from here to host:hostport); they live as long as the connection."""
        for direction, specs in (("local", local), ("remote", remote)):
            for spec in specs:
                listen, host, target = parse_tunnel(spec)
                try:
                    if direction == "local":
                        listener = await self._conn.forward_local_port(
                            "localhost", listen, host, target
                        )
                    else:
                        listener = await self._conn.forward_remote_port(
                            "localhost", listen, host, target
                        )
                except (OSError, asyncssh.Error) as error:
                    raise SshError(
                        f"cannot open the ssh_{direction}_tunnels entry {spec!r}: {_reason(error)}"
                    ) from error
                self._listeners.append(listener)

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
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        self._conn.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            await asyncio.wait_for(self._conn.wait_closed(), CLOSE_WAIT)
        route, self._route = self._route, None
        if route is not None:
            await route.aclose()

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
