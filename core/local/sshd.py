"""The SSH server of a local instance: public-key login, exec/shell in the sandbox, and SFTP.

One :class:`InstanceSSHServer` listens on the instance's loopback address. It accepts exactly one
user with exactly the instance's key pair (public-key auth only). Every command or shell runs in
:class:`amibake.core.local.sandbox.Sandbox`: stdout and stderr stay separate, stdin is forwarded,
client signals reach the command, and the exit status (or the killing signal) goes back to the
client. When the client goes away the command's whole process tree is killed. SFTP goes through
:meth:`Sandbox.map_path`, so uploads land in the instance directory and nowhere else.

:func:`host_key_fingerprint_block` renders the host keys the way cloud-init prints them on the
console, which is what ``GetConsoleOutput`` shows and careful clients pin.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import hmac
import ipaddress
import logging
import os
import signal
import socket
import stat
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.sftp import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
)

from amibake.core.errors import AmibakeError, LocalCloudError
from amibake.core.local.sandbox import Sandbox

__all__ = ["InstanceSSHServer", "apply_cloud_config", "host_key_fingerprint_block"]

log = logging.getLogger(__name__)

#: SFTP protocol version offered (OpenSSH's sftp-server speaks 3 too)
SFTP_VERSION = 3
#: how long output may keep flowing after a command ended before we stop waiting for it
_OUTPUT_GRACE = 5.0
_CHUNK = 65536

#: Signature algorithms of client public-key logins the instances refuse: SHA-1 RSA, which
#: OpenSSH 8.8+ (every current EC2 Linux image) no longer accepts. RSA keys log in with
#: rsa-sha2-256/512, which clients pick from the server-sig-algs the server advertises.
REFUSED_SIGNATURE_ALGS: tuple[str, ...] = ("ssh-rsa",)

_KEY_LABELS = {
    b"ssh-ed25519": "ED25519",
    b"ssh-rsa": "RSA",
    b"ssh-dss": "DSA",
    b"ecdsa-sha2-nistp256": "ECDSA",
    b"ecdsa-sha2-nistp384": "ECDSA",
    b"ecdsa-sha2-nistp521": "ECDSA",
    b"sk-ssh-ed25519@openssh.com": "ED25519-SK",
    b"sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
    b"ssh-ed448": "ED448",
}


def _key_bits(key: asyncssh.SSHKey) -> int:
    size = getattr(getattr(key, "pyca_key", None), "key_size", None)
    if isinstance(size, int):
        return size
    return 456 if key.algorithm == b"ssh-ed448" else 256


def host_key_fingerprint_block(
    host_keys: Sequence[asyncssh.SSHKey], hostname: str, *, log_prefix: str | None = None
) -> str:
    """The host keys as cloud-init writes them to the console (``write-ssh-key-fingerprints``).

    A fingerprint block (``ssh-keygen -l`` lines of the ``root@<hostname>`` public keys) followed
    by a keys block (the public key lines). Keys appear in the order of their
    ``/etc/ssh/ssh_host_<type>_key.pub`` file names, as cloud-init's glob lists them.

    With ``log_prefix`` (e.g. ``"ec2: "``, what EC2 consoles show) the fingerprint block gets the
    syslog tag and the ``#####`` banner lines of the real output; the keys block never has them.
    """
    comment = f"root@{hostname}"
    keys = sorted(host_keys, key=lambda k: _KEY_LABELS.get(k.algorithm, "").lower())
    fingerprints = [
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----",
        *(
            f"{_key_bits(key)} {key.get_fingerprint('sha256')} {comment} "
            f"({_KEY_LABELS.get(key.algorithm, key.algorithm.decode().upper())})"
            for key in keys
        ),
        "-----END SSH HOST KEY FINGERPRINTS-----",
    ]
    if log_prefix is not None:
        banner = "#" * 61
        fingerprints = [log_prefix + line for line in ["", banner, *fingerprints, banner]]
    public_lines = [
        f"{key.algorithm.decode()} {base64.b64encode(key.public_data).decode()} {comment}"
        for key in keys
    ]
    key_block = [
        "-----BEGIN SSH HOST KEY KEYS-----",
        *public_lines,
        "-----END SSH HOST KEY KEYS-----",
    ]
    return "\n".join(fingerprints + key_block) + "\n"


class _ByteBudget:
    """Fault injection: how much channel data a connection may still send before it is cut."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.sent = 0
        self.tripped = False

    def wrap(
        self, chan: asyncssh.SSHServerChannel[bytes], conn: asyncssh.connection.SSHConnection
    ) -> None:
        """Meter every write on ``chan`` (stdout, stderr and SFTP replies all go through write)."""
        if self.limit is None:
            return
        original = chan.write

        def metered_write(data: bytes, datatype: int | None = None) -> None:
            if self.tripped:
                raise BrokenPipeError("connection dropped (fault injection)")
            assert self.limit is not None
            allowed = max(self.limit - self.sent, 0)
            if len(data) < allowed:
                self.sent += len(data)
                original(data, datatype)
                return
            if allowed:
                original(data[:allowed], datatype)
                self.sent += allowed
            self.tripped = True
            log.info("dropping SSH connection after %d bytes of channel data (fault)", self.sent)
            # A reset, like a network failure; a plain close would read as a clean EOF and a
            # client could take the truncated output for a finished command.
            sock = conn.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.abort()
            raise BrokenPipeError("connection dropped (fault injection)")

        # asyncssh offers no hook between a session and its channel's writes; wrapping this
        # channel's bound method is local to the one connection under fault injection.
        chan.write = metered_write  # type: ignore[method-assign]  # see the comment above


class _InstanceSession(asyncssh.SSHServerProcess[bytes]):
    """A session channel whose signals, resizes and close reach us as callbacks.

    asyncssh's SSHServerProcess queues signals into stdin; once stdin hit EOF nobody would read
    them, so they are delivered directly instead.
    """

    def __init__(
        self,
        handler: Callable[[_InstanceSession], object],
        sftp_factory: Callable[[asyncssh.SSHServerChannel[bytes]], asyncssh.SFTPServer],
        budget: _ByteBudget,
    ) -> None:
        super().__init__(handler, sftp_factory, SFTP_VERSION, False)  # type: ignore[arg-type]  # asyncssh types the factory over SSHChannel; a server session's is an SSHServerChannel
        self._budget = budget
        self.closed = False
        self.on_signal: Callable[[str], None] | None = None
        self.on_resize: Callable[[int, int], None] | None = None
        self.on_close: Callable[[], object] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]  # a server session's channel is an SSHServerChannel
        super().connection_made(chan)
        self._budget.wrap(chan, chan.get_connection())

    def signal_received(self, signal: str) -> None:
        if self.on_signal is not None:
            self.on_signal(signal)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.on_resize is not None and width and height:
            self.on_resize(width, height)

    def break_received(self, msec: int) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.closed = True
        if self.on_close is not None:
            self.on_close()


class _SandboxSFTPServer(asyncssh.SFTPServer):
    """SFTP over the sandbox's filesystem view: guest paths, guest symlinks, writable dirs only."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], sandbox: Sandbox) -> None:
        super().__init__(chan)
        self._sandbox = sandbox

    def _host(self, path: bytes, *, write: bool = False, follow: bool = True) -> bytes:
        guest = os.fsdecode(path) or "."
        return os.fsencode(self._sandbox.map_path(guest, write=write, follow_symlinks=follow))

    def _mutable(self, path: bytes) -> bytes:
        """Host path for creating, removing or renaming the entry ``path`` itself."""
        guest = self._sandbox.resolve_guest_path(os.fsdecode(path) or ".", follow_symlinks=False)
        if guest in self._sandbox.writable_dirs:
            raise PermissionError(errno.EACCES, "cannot replace a mount point", guest)
        return self._host(path, write=True, follow=False)

    def map_path(self, path: bytes) -> bytes:
        return self._host(path)

    def exit(self) -> None:
        # Like OpenSSH's sshd when sftp-server ends; OpenSSH's scp (SFTP mode) fails without it.
        with contextlib.suppress(Exception):
            self.channel.exit(0)

    def format_user(self, uid: int | None) -> str:
        # inside bubblewrap our own uid is the guest user's: list files as the guest sees them
        overlay = self._sandbox.root is not None  # there ids are the instance's own
        if uid is not None and uid == os.getuid() and self._sandbox.isolated and not overlay:
            return self._sandbox.username
        return super().format_user(uid)

    def format_group(self, gid: int | None) -> str:
        overlay = self._sandbox.root is not None  # there ids are the instance's own
        if gid is not None and gid == os.getgid() and self._sandbox.isolated and not overlay:
            return self._sandbox.username
        return super().format_group(gid)

    def reverse_map_path(self, path: bytes) -> bytes:  # pragma: no cover - not used by overrides
        raise asyncssh.SFTPOpUnsupported("reverse path mapping")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC | FXF_EXCL))
        host = self._host(path, write=writing)
        if pflags & FXF_READ and pflags & FXF_WRITE:
            flags, mode = os.O_RDWR, "r+b"
        elif pflags & FXF_WRITE:
            flags, mode = os.O_WRONLY, "wb"
        else:
            flags, mode = os.O_RDONLY, "rb"
        if pflags & FXF_APPEND:
            flags |= os.O_APPEND
            mode = "a+b" if mode == "r+b" else "ab" if mode == "wb" else mode
        if pflags & FXF_CREAT:
            flags |= os.O_CREAT
        if pflags & FXF_TRUNC:
            flags |= os.O_TRUNC
        if pflags & FXF_EXCL:
            flags |= os.O_CREAT | os.O_EXCL
        if writing:
            # map_path resolved the guest's symlinks; a link swapped in since is refused.
            flags |= os.O_NOFOLLOW
        perms = 0o666 if attrs.permissions is None else stat.S_IMODE(attrs.permissions)
        created = bool(flags & os.O_CREAT) and not os.path.lexists(host)
        fd = os.open(host, flags | os.O_CLOEXEC, perms)
        if created:
            self._sandbox.adopt(host)
        try:
            return os.fdopen(fd, mode, buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:  # pragma: no cover - we only offer SFTP v3
        raise asyncssh.SFTPOpUnsupported("SFTP v5+ open")

    def stat(self, path: bytes) -> os.stat_result:
        return os.stat(self._host(path))

    def lstat(self, path: bytes) -> os.stat_result:
        return os.lstat(self._host(path, follow=False))

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        _apply_attrs(self._host(path, write=True), attrs, follow=True)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        _apply_attrs(self._host(path, write=True, follow=False), attrs, follow=False)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        handle = file_obj.fileno()  # type: ignore[attr-defined]  # the file open() returned, typed object by asyncssh
        _apply_attrs(handle, attrs, follow=True)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        host = self._host(path)
        for name in (b".", b".."):
            yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs.from_local(os.stat(host)))
        with os.scandir(host) as entries:
            for entry in entries:
                attrs = asyncssh.SFTPAttrs.from_local(entry.stat(follow_symlinks=False))
                yield asyncssh.SFTPName(os.fsencode(entry.name), attrs=attrs)

    def remove(self, path: bytes) -> None:
        os.remove(self._mutable(path))

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        mode = 0o777 if attrs.permissions is None else stat.S_IMODE(attrs.permissions)
        host = self._mutable(path)
        os.mkdir(host, mode)
        self._sandbox.adopt(host)

    def rmdir(self, path: bytes) -> None:
        os.rmdir(self._mutable(path))

    def realpath(self, path: bytes) -> bytes:
        return os.fsencode(self._sandbox.resolve_guest_path(os.fsdecode(path) or "."))

    def readlink(self, path: bytes) -> bytes:
        # the link text is already in guest terms
        return os.fsencode(os.readlink(self._host(path, follow=False)))

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        host = self._mutable(newpath)
        os.symlink(os.fsdecode(oldpath), host)
        self._sandbox.adopt(host)

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        # the source must be writable too: a hard link to a host file would make it writable
        os.link(self._mutable(oldpath), self._mutable(newpath), follow_symlinks=False)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        source, target = self._mutable(oldpath), self._mutable(newpath)
        if os.path.lexists(target):
            raise asyncssh.SFTPFailure(f"{os.fsdecode(newpath)} already exists")
        os.rename(source, target)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        os.replace(self._mutable(oldpath), self._mutable(newpath))

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        return asyncssh.SFTPVFSAttrs.from_local(os.statvfs(self._host(path)))


def _apply_attrs(target: bytes | int, attrs: asyncssh.SFTPAttrs, *, follow: bool) -> None:
    """setstat: size, permissions and times. Ownership changes are ignored (the guest user
    could not chown to someone else on a real instance either, and clients send them
    routinely when preserving attributes)."""
    if attrs.size is not None:
        if not follow:
            raise asyncssh.SFTPOpUnsupported("truncating without following symlinks")
        os.truncate(target, attrs.size)
    # Linux cannot chmod a symlink itself; like OpenSSH, that request is ignored
    if attrs.permissions is not None and (isinstance(target, int) or follow):
        os.chmod(target, stat.S_IMODE(attrs.permissions))
    if attrs.atime is not None or attrs.mtime is not None:
        current = os.stat(target, follow_symlinks=follow)
        atime = current.st_atime if attrs.atime is None else attrs.atime
        mtime = current.st_mtime if attrs.mtime is None else attrs.mtime
        if isinstance(target, int):
            os.utime(target, (atime, mtime))
        else:
            os.utime(target, (atime, mtime), follow_symlinks=follow)


class _ConnectionHandler(asyncssh.SSHServer):
    """Per-connection callbacks: authentication and session creation."""

    def __init__(self, owner: InstanceSSHServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._budget = _ByteBudget(None)

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)
        peer = conn.get_extra_info("peername") or ("", 0)
        admit = self._owner.admit
        if admit is not None and not admit(str(peer[0]), self._owner.port):
            # The instance's security groups do not admit this source on this port: as on
            # EC2 the connection gets nowhere (here it is closed at once).
            log.info("instance sshd: %s refused by the security groups", peer[0])
            conn.abort()
            return
        try:
            limit = self._owner._drop_after_bytes()
        except Exception:  # a broken fault plan must not take the server down
            log.exception("drop_after_bytes callback failed; not injecting")
            limit = None
        self._budget = _ByteBudget(limit)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self._owner.password_hash() is not None

    def kbdint_auth_supported(self) -> bool:
        # NotImplemented: asyncssh then asks for the password through keyboard-interactive
        return NotImplemented if self._owner.password_hash() is not None else False

    def validate_password(self, username: str, password: str) -> bool:
        stored = self._owner.password_hash(username)
        return stored is not None and _check_password(password, stored)

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """A user certificate signed by a ``cert-authority`` line of authorized_keys."""
        if self._conn is None:
            return False
        peer = self._conn.get_extra_info("peername") or ("", 0)
        authorized = self._owner.authorized_keys(username)
        return authorized is not None and (
            authorized.validate(key, str(peer[0]), str(peer[0]), ca=True) is not None
        )

    def connection_requested(  # type: ignore[override]  # asyncssh takes a forward_connection()-like coroutine (its docs) but does not type it
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> object:
        """direct-tcpip (a bastion hop, ssh_local_tunnels): to loopback addresses only; the
        instance's own "localhost" is its address."""
        target = self._owner.loopback_target(dest_host)
        if target is None or self._conn is None:
            return False
        return _forward_from(self._owner.host, target, dest_port)

    def server_requested(
        self, listen_host: str, listen_port: int
    ) -> bool | Awaitable[asyncssh.SSHListener]:
        """tcpip-forward (ssh_remote_tunnels): listen on the instance's own address."""
        target = self._owner.loopback_target(listen_host or "localhost")
        if target is None or self._conn is None or not listen_port:
            return False
        return self._conn.forward_local_port(target, listen_port, listen_host, listen_port)

    def host_based_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._conn is None:
            return False
        if self._owner.refuse_ed25519 and key.get_algorithm() == "ssh-ed25519":
            return False  # an old sshd (OpenSSH < 6.5) knows no ed25519 user keys
        peer = self._conn.get_extra_info("peername") or ("", 0)
        authorized = self._owner.authorized_keys(username)
        if authorized is None or authorized.validate(key, str(peer[0]), str(peer[0])) is None:
            return False
        refused = self._owner.refused_signature_algs
        if refused:
            # asyncssh verifies the login signature with this very key object afterwards;
            # a signature made with a refused algorithm (ssh-rsa: SHA-1) fails, as with sshd.
            verify = key.verify

            def verify_allowed(data: bytes, sig: bytes) -> bool:
                return _signature_algorithm(sig) not in refused and verify(data, sig)

            key.verify = verify_allowed  # type: ignore[method-assign]  # this key object only (see above)
        return True

    def session_requested(self) -> _InstanceSession:
        owner = self._owner
        return _InstanceSession(
            owner._run_session,
            lambda chan: _SandboxSFTPServer(chan, owner.sandbox),
            self._budget,
        )


class InstanceSSHServer:
    """sshd of one local instance (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        authorized_keys: Sequence[str],
        host_key: asyncssh.SSHKey,
        sandbox: Sandbox,
        drop_after_bytes: Callable[[], int | None] = lambda: None,
        login_timeout: float = 30.0,
        authorized_keys_file: Path | None = None,
        refused_signature_algs: Sequence[str] = REFUSED_SIGNATURE_ALGS,
        admit: Callable[[str, int], bool] | None = None,
    ) -> None:
        """With ``authorized_keys_file``, logins are checked against that file (the guest's
        ``~/.ssh/authorized_keys``, read at each login as sshd does), else ``authorized_keys``.
        ``admit(source address, port)``: the instance's security groups (None: no check)."""
        self.host = host
        self.admit = admit
        #: refuse ed25519 user keys, as an sshd older than OpenSSH 6.5 does
        self.refuse_ed25519 = False
        #: more addresses to listen on, on the same port (the instance's public address)
        self.extra_hosts: tuple[str, ...] = ()
        self.port = port
        self.username = username
        self.sandbox = sandbox
        self._host_key = host_key
        self._drop_after_bytes = drop_after_bytes
        self._login_timeout = login_timeout
        lines = [line.strip() for line in authorized_keys if line.strip()]
        # an instance launched without a key pair (ssh_password, a key in the AMI) has none
        self._authorized: asyncssh.SSHAuthorizedKeys | None = None
        if lines:
            try:
                self._authorized = asyncssh.import_authorized_keys("\n".join(lines) + "\n")
            except (asyncssh.KeyImportError, ValueError) as error:
                raise LocalCloudError(f"invalid authorized key for {username}: {error}") from None
        self._authorized_keys_file = authorized_keys_file
        self.refused_signature_algs = frozenset(a.encode() for a in refused_signature_algs)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    def authorized_keys(self, username: str | None = None) -> asyncssh.SSHAuthorizedKeys | None:
        """The keys ``username`` (default: the image's user) may log in with; another user
        exists once cloud-config ``users`` created it (:func:`apply_cloud_config`)."""
        keys_file = self._authorized_keys_file
        if username is not None and username != self.username:
            keys_file = self.sandbox.instance_dir / f"{USER_KEYS_PREFIX}{username}"
        elif keys_file is None:
            return self._authorized
        try:
            text = keys_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None  # no file: no key logs in, as with sshd
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not lines:
            return None
        try:
            return asyncssh.import_authorized_keys("\n".join(lines) + "\n")
        except (asyncssh.KeyImportError, ValueError):
            return None  # sshd skips what it cannot read; one bad line here refuses all

    def password_hash(self, username: str | None = None) -> str | None:
        """The user's password hash (``username`` None: any user's), when cloud-config gave
        one and allowed SSH password logins (``ssh_pwauth``); read at each login, like sshd
        reads /etc/shadow (a user cloud-config creates late logs in once it is there)."""
        try:
            text = (self.sandbox.instance_dir / PASSWORD_FILE).read_text(encoding="utf-8")
        except OSError:
            return None
        for line in text.splitlines():
            user, _, stored = line.partition(":")
            if (username is None or user == username) and stored:
                return stored
        return None

    def loopback_target(self, host: str) -> str | None:
        """Where a forwarded connection to ``host`` goes: the instance's own address for its
        localhost, another loopback address as it is; anything else is refused."""
        if host.lower() in ("localhost", "ip6-localhost", "") or host == hostname_of(self.host):
            return self.host
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        if address.is_loopback:
            return self.host if str(address) in ("127.0.0.1", "::1") else str(address)
        return None

    def _signature_algs(self) -> tuple[str, ...]:
        """The server-sig-algs advertised: asyncssh's defaults without the refused ones."""
        refused = set(self.refused_signature_algs)
        if self.refuse_ed25519:  # an sshd without ed25519 does not advertise it either
            refused |= {b"ssh-ed25519", b"sk-ssh-ed25519@openssh.com"}
        if not refused:
            return ()
        from asyncssh.public_key import get_default_public_key_algs

        return tuple(a.decode() for a in get_default_public_key_algs() if a not in refused)

    async def start(self) -> int:
        """Listen on host:port (0: any free port) and return the bound port."""
        if self._acceptor is not None:
            return self.port
        try:
            acceptor = await asyncssh.create_server(
                lambda: _ConnectionHandler(self),
                [self.host, *self.extra_hosts] if self.extra_hosts else self.host,
                self.port,
                server_host_keys=[self._host_key],
                signature_algs=self._signature_algs(),
                encoding=None,
                line_editor=False,
                allow_pty=True,
                x11_forwarding=False,
                agent_forwarding=False,
                # offered only when the instance has a password (cloud-config), see below
                password_auth=True,
                kbdint_auth=True,
                gss_host=None,
                login_timeout=self._login_timeout,
                reuse_address=True,
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                reason = "address already in use"
            else:
                reason = error.strerror or str(error)
            raise LocalCloudError(
                f"cannot start SSH server on {self.host}:{self.port}: {reason}"
            ) from None
        self._acceptor = acceptor
        self.port = acceptor.get_port()
        log.debug("instance sshd listening on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening, drop every connection and kill every process of the sandbox."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
        connections = list(self._connections)
        for conn in connections:
            conn.abort()
        # (on Python 3.12+ the listener's wait_closed also waits for its connections)
        waits = [conn.wait_closed() for conn in connections]
        if acceptor is not None:
            waits.append(acceptor.wait_closed())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout=10)
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.gather(*sessions, return_exceptions=True)
        await self.sandbox.kill_all()
        self._connections.clear()

    # -- one exec / shell session ---------------------------------------------------------

    async def _run_session(self, session: _InstanceSession) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._serve(session, task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("SSH session failed")
            with contextlib.suppress(Exception):
                session.exit(255)
        finally:
            self._sessions.discard(task)

    async def _serve(self, session: _InstanceSession, task: asyncio.Task[None]) -> None:
        term_type = session.term_type
        term_size = None
        if term_type:
            width, height = session.term_size[:2]
            term_size = (width or 80, height or 24)
        env = dict(session.env)
        # as OpenSSH's sshd: who is connected, from where, to where
        peer = session.get_extra_info("peername") or ("", 0)
        local = session.get_extra_info("sockname") or ("", 0)
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {local[1]}"
        # sshd runs the command through the user's login shell (bash on cloud images), which
        # exports SHLVL=1: a `bash -c` the command starts is then nested (SHLVL 2) and, as on
        # EC2, does not read ~/.bashrc although SSH_CLIENT is set.
        env.setdefault("SHLVL", "1")
        try:
            process = await self.sandbox.start_process(
                session.command, env, term_type=term_type, term_size=term_size
            )
        except (OSError, AmibakeError) as error:
            with contextlib.suppress(Exception):
                session.stderr.write(f"amibake: cannot start command: {error}\n".encode())
                session.exit(127)
            return

        def forward_signal(name: str) -> None:
            signum = getattr(signal, "SIG" + name.upper(), None)
            if isinstance(signum, signal.Signals):
                self.sandbox.send_signal(process, signum)

        session.on_signal = forward_signal
        session.on_resize = lambda w, h: self.sandbox.set_terminal_size(process, (w, h))
        session.on_close = task.cancel

        outputs = [asyncio.create_task(_pump_output(process.stdout, session.stdout))]
        if process.stderr is not None:
            outputs.append(asyncio.create_task(_pump_output(process.stderr, session.stderr)))
        feeder = asyncio.create_task(_pump_input(session, process, pty=term_type is not None))
        try:
            if session.closed:  # the client left while the process was starting
                return
            await process.wait()
            # What the command left running in its session dies with it (in bubblewrap mode
            # the pid namespace already took it), so its output pipes reach EOF.
            await self.sandbox.kill(process)
            _, pending = await asyncio.wait(outputs, timeout=_OUTPUT_GRACE)
            for pump in pending:
                pump.cancel()
            status, signum = self.sandbox.exit_outcome(process)
            with contextlib.suppress(Exception):
                if signum is None:
                    session.exit(status or 0)
                else:
                    try:
                        name = signal.Signals(signum).name.removeprefix("SIG")
                    except ValueError:
                        session.exit(128 + signum)
                    else:
                        session.exit_with_signal(name)
        finally:
            session.on_close = None
            session.on_signal = None
            session.on_resize = None
            feeder.cancel()
            for pump in outputs:
                pump.cancel()
            # also runs when the client disconnected (this task was cancelled): no leaks
            await asyncio.shield(self.sandbox.kill(process))
            self.sandbox.release(process)
            await asyncio.gather(feeder, *outputs, return_exceptions=True)


#: the instance directory's file of SSH-login passwords (user:scrypt$salt$hash), as cloud-init's
#: ``password``/``chpasswd`` with ``ssh_pwauth: true`` would set them
PASSWORD_FILE = "ssh-passwords"
#: the instance directory's ``authorized_keys.<user>``: the keys of a user cloud-config created
USER_KEYS_PREFIX = "authorized_keys."


def hostname_of(address: str) -> str:
    return "ip-" + address.replace(".", "-")


def _hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    kind, _, rest = stored.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    if kind != "scrypt":
        return False
    try:
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate, digest)


def apply_cloud_config(
    instance_dir: Path, username: str, authorized_keys_file: Path, user_data: str | None
) -> None:
    """What cloud-init does with a ``#cloud-config`` user data for SSH logins: the default
    user's ``password`` (or its ``chpasswd`` entry) becomes an SSH password when
    ``ssh_pwauth: true``; ``ssh_authorized_keys`` (``cert-authority`` lines too) are added
    to the user's authorized_keys. ``users`` entries other than ``default`` become users who
    may log in: with their ``ssh_authorized_keys``, and with ``plain_text_passwd`` when
    ``lock_passwd: false`` and ``ssh_pwauth: true`` (hashed ``passwd`` entries are not
    supported here). Their sessions run as the instance's one sandbox user. Other user data
    is left alone."""
    if not user_data or not user_data.lstrip().startswith("#cloud-config"):
        return
    import yaml

    try:
        config = yaml.safe_load(user_data)
    except yaml.YAMLError as error:
        log.warning("cloud-config user data is not valid YAML: %s", error)
        return
    if not isinstance(config, dict):
        return
    passwords: dict[str, str] = {}
    if isinstance(config.get("password"), str | int):
        passwords[username] = str(config["password"])
    extra: list[dict[str, Any]] = [
        entry
        for entry in config.get("users") or ()
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]
    ]
    for entry in extra:
        if entry.get("plain_text_passwd") is not None and entry.get("lock_passwd") in (
            False,
            "false",
        ):
            passwords[entry["name"]] = str(entry["plain_text_passwd"])
    chpasswd = config.get("chpasswd")
    if isinstance(chpasswd, dict):
        for item in chpasswd.get("users") or ():
            if isinstance(item, dict) and item.get("name") and item.get("password") is not None:
                passwords[str(item["name"])] = str(item["password"])
        listed = chpasswd.get("list")
        lines = listed.splitlines() if isinstance(listed, str) else listed or ()
        for line in lines:
            user, _, value = str(line).partition(":")
            if user and value:
                passwords[user] = value
    if passwords and config.get("ssh_pwauth") in (True, "true", "yes"):
        path = instance_dir / PASSWORD_FILE
        instance_dir.mkdir(parents=True, exist_ok=True)
        known = {username} | {entry["name"] for entry in extra}
        path.write_text(
            "".join(
                f"{user}:{_hash_password(password)}\n"
                for user, password in passwords.items()
                if user in known
            ),
            encoding="utf-8",
        )
        path.chmod(0o600)
    _add_keys(authorized_keys_file, config.get("ssh_authorized_keys"))
    for entry in extra:
        if entry["name"] == username:
            _add_keys(authorized_keys_file, entry.get("ssh_authorized_keys"))
        elif "/" not in entry["name"] and entry["name"] not in (".", ".."):
            path = instance_dir / f"{USER_KEYS_PREFIX}{entry['name']}"
            _add_keys(path, entry.get("ssh_authorized_keys"), create=True)


def _add_keys(path: Path, listed: object, *, create: bool = False) -> None:
    keys = (
        [str(k).strip() for k in listed if str(k).strip()]
        if isinstance(listed, list | tuple)
        else []
    )
    if not keys and not create:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        present = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        present = ""
    if present and not present.endswith("\n"):
        present += "\n"
    path.write_text(present + "".join(f"{k}\n" for k in keys if k not in present), encoding="utf-8")
    path.chmod(0o600)


async def _forward_from(source: str, host: str, port: int) -> object:
    """A forwarded connection that leaves from the instance's own address (as it would on a
    network): the far end sees the instance, e.g. in its SSH_CONNECTION."""
    from asyncssh.forward import SSHForwarder

    loop = asyncio.get_running_loop()
    try:
        _, peer = await loop.create_connection(SSHForwarder, host, port, local_addr=(source, 0))
    except OSError as error:
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, str(error)) from None
    return SSHForwarder(peer)


def _signature_algorithm(sig: bytes) -> bytes:
    """The algorithm name an SSH signature blob starts with (string alg, string blob)."""
    if len(sig) < 4:
        return b""
    (length,) = struct.unpack(">I", sig[:4])
    return sig[4 : 4 + length]


async def _pump_output(
    source: asyncio.StreamReader | None, sink: asyncssh.SSHWriter[bytes]
) -> None:
    if source is None:
        return
    while True:
        try:
            data = await source.read(_CHUNK)
        except OSError:  # a pty master reports EIO once the last slave fd closed
            return
        if not data:
            return
        try:
            sink.write(data)
            await sink.drain()
        except (OSError, asyncssh.Error):  # the channel or the connection went away
            return


async def _pump_input(
    session: _InstanceSession, process: asyncio.subprocess.Process, *, pty: bool
) -> None:
    stdin = process.stdin
    if stdin is None:
        return
    try:
        while True:
            data = await session.stdin.read(_CHUNK)
            if not data:
                break
            stdin.write(data)
            await stdin.drain()
    except (OSError, asyncssh.Error, asyncio.IncompleteReadError):
        pass
    finally:
        if not pty:  # EOF on a pipe; a pty stays open, as with OpenSSH
            with contextlib.suppress(Exception):
                stdin.close()
