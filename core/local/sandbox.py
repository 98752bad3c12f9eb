"""Where a local instance's commands run: a bubblewrap sandbox rooted in the instance directory.

Each instance owns a directory on the host. Its writable guest directories (``/home/<user>``,
``/tmp``, ``/var/tmp``, ``/opt``, ``/srv``, ``/usr/local``) live under ``<instance_dir>/rootfs``;
everything else is the host's root, read-only. With bubblewrap a command sees exactly that
filesystem, in its own user, pid, network (none), ipc, uts and cgroup namespaces, as uid 1000.
Without bubblewrap, commands are plain child processes whose cwd, ``HOME`` and ``TMPDIR`` point into
the instance directory: convenient, but **not isolated**, and we say so (a warning logged once,
:attr:`Sandbox.isolated`). In that mode absolute paths are the host's: a file SFTP puts in the
guest's /tmp lands in the instance's tmp dir, while a command's ``/tmp`` is the host's.

Hidden from the guest in bubblewrap mode: the host's /root, /run, other users' homes and the
shadow password files; /etc/passwd, /etc/group and /etc/hostname are the instance's own.

Every process is started in a new session, so the whole tree a command creates can be found and
killed (by session id, and in bubblewrap mode by tearing down the pid namespace).

:meth:`Sandbox.map_path` is the SFTP server's view of the same filesystem; it resolves symbolic
links the way the guest would (an absolute link target means the *guest's* root), so a link made
inside the instance cannot make the server, which runs unsandboxed, touch host files.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import logging
import os
import posixpath
import shutil
import signal
import stat
import struct
import subprocess
import termios
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from amibake.core.errors import LocalCloudError

if TYPE_CHECKING:
    from amibake.core.local.rootfs import InstanceRoot

__all__ = ["Sandbox", "find_bubblewrap"]

log = logging.getLogger(__name__)

#: uid/gid the guest user gets inside the sandbox (the first regular user on most cloud images)
GUEST_UID = 1000
GUEST_GID = 1000

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: host files the sandbox must never show (they are readable by the mapped uid when the host
#: runs as root), replaced by /dev/null in bubblewrap mode and refused by :meth:`Sandbox.map_path`
_MASKED_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
#: host directories hidden from the guest (an empty read-only tmpfs in bubblewrap mode)
_HIDDEN_DIRS = ("/root", "/run")
#: guest trees the SFTP server refuses: in the guest they are per-sandbox pseudo filesystems or
#: hidden, and the host's versions (the unsandboxed server would read them) are not the guest's
_REFUSED_TREES = ("/proc", "/sys", "/dev", "/root", "/run")
#: the same in overlay mode, where everything else is the instance's own
_OVERLAY_REFUSED = ("/proc", "/sys", "/dev")

_SYMLINK_HOPS = 40

_warned_not_isolated = False


@functools.cache
def find_bubblewrap() -> str | None:
    """Path of a bwrap that actually works here (probed once per process), else None."""
    path = shutil.which("bwrap")
    return path if path is not None and _bwrap_runs(path) else None


def _bwrap_runs(bwrap: str, *options: str) -> bool:
    """Whether ``bwrap`` with ``options`` runs ``true`` over a read-only view of the host."""
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", *options, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@functools.cache
def _bwrap_can_map_uid(bwrap: str) -> bool:
    """Whether user namespaces let bwrap run the guest as uid/gid 1000 (else: the invoking uid)."""
    return _bwrap_runs(bwrap, "--unshare-user", "--uid", str(GUEST_UID), "--gid", str(GUEST_GID))


@dataclass
class _Tracked:
    """A process this sandbox started, with what it takes to clean it up."""

    process: asyncio.subprocess.Process
    pty_master: int | None = None
    pty_slave: int | None = None
    pty_watch: asyncio.Task[None] | None = None
    pty_transports: list[asyncio.BaseTransport] = field(default_factory=list)
    signals_sent: set[int] = field(default_factory=set)
    #: its session was cleaned up after it ended: nothing of it is left to kill
    cleared: bool = False


@dataclass(frozen=True)
class _ProcStat:
    pid: int
    ppid: int
    pgrp: int
    session: int
    #: dead, waiting for its parent to reap it: no signal can reach it any more
    zombie: bool = False


def _process_table() -> list[_ProcStat]:
    """Every process on the host (Linux /proc), with parent, group and session ids."""
    table: list[_ProcStat] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # comm (field 2) may hold spaces and parentheses: split after the last ')'
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            table.append(
                _ProcStat(
                    int(name), int(fields[1]), int(fields[2]), int(fields[3]), fields[0] == b"Z"
                )
            )
        except (IndexError, ValueError):
            continue
    return table


def _kill_quietly(pid: int, signum: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


class _PtyWriteProtocol(asyncio.streams.FlowControlMixin):
    """Write side of a pty master, usable by :class:`asyncio.StreamWriter` (drain + close)."""

    def __init__(self) -> None:
        super().__init__()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: object) -> asyncio.Future[None]:
        return self._closed


class Sandbox:
    """Runs an instance's commands confined to its directory; see the module docstring."""

    #: guest directories that are part of the instance's disk (persist across stop/start and go
    #: into an image); :meth:`host_dir` says where each lives on the host
    PERSISTENT_DIRS: tuple[str, ...] = ("/home", "/opt", "/srv", "/usr/local")
    #: guest directories wiped at every boot
    TMP_DIRS: tuple[str, ...] = ("/tmp", "/var/tmp")

    def __init__(
        self,
        instance_dir: Path,
        username: str,
        hostname: str,
        *,
        isolate: bool | None = None,
        root: InstanceRoot | None = None,
    ) -> None:
        if not username or "/" in username or username in (".", ".."):
            raise LocalCloudError(f"invalid instance user name: {username!r}")
        self.instance_dir = Path(instance_dir).absolute()
        self.username = username
        self.hostname = hostname
        self._rootfs = self.instance_dir / "rootfs"
        self._etc = self.instance_dir / "etc"
        #: overlay mode: commands run in the instance's own root filesystem
        #: (amibake.core.local.rootfs)
        self.root = root
        self._tracked: dict[int, _Tracked] = {}
        if root is not None:
            self._bwrap = None
            self._map_uid = True
            return
        bwrap = find_bubblewrap() if isolate is not False else None
        if isolate is True and bwrap is None:
            raise LocalCloudError(
                "bubblewrap (bwrap) is required to isolate instance commands but is missing or "
                "does not work here; install the 'bubblewrap' package"
            )
        self._bwrap = bwrap
        self._map_uid = bwrap is not None and _bwrap_can_map_uid(bwrap)
        if bwrap is None:
            global _warned_not_isolated
            if not _warned_not_isolated:
                _warned_not_isolated = True
                reason = "isolation is off" if isolate is False else "bubblewrap is not available"
                log.warning(
                    "%s: local instance commands run as plain child processes of this program "
                    "and are NOT isolated from this machine",
                    reason,
                )

    # -- layout ---------------------------------------------------------------------------

    @property
    def isolated(self) -> bool:
        """True when commands run inside bubblewrap or an overlay root; False when they are plain
        child processes."""
        return self._bwrap is not None or self.root is not None

    @property
    def home(self) -> str:
        """The guest user's home directory, as the guest sees it."""
        return f"/home/{self.username}"

    @property
    def writable_dirs(self) -> tuple[str, ...]:
        """Guest directories a command (and SFTP) may write to; all live in the instance dir.

        In overlay mode the whole root is the instance's: these are the mount points only
        (SFTP checks the guest user's permissions, :meth:`is_writable`)."""
        if self.root is not None:
            return (self.home, *self.TMP_DIRS)
        return (self.home, "/opt", "/srv", "/usr/local", *self.TMP_DIRS)

    def _root_view(self) -> Path:
        """The overlay root as the host sees it: pid 1's root while running, else the upper
        layer (written before the overlay is mounted)."""
        assert self.root is not None
        return self.root.view if self.root.running else self.root.upper

    def host_dir(self, guest_dir: str) -> Path:
        """Where the writable (or persistent) guest directory ``guest_dir`` lives on the host."""
        normal = posixpath.normpath("/" + guest_dir.lstrip("/"))
        if self.root is not None:
            return self._root_view() / normal.lstrip("/")
        for root in (*self.writable_dirs, *self.PERSISTENT_DIRS):
            if normal == root or normal.startswith(root + "/"):
                return self._rootfs / normal.lstrip("/")
        raise ValueError(f"{guest_dir!r} is not a writable directory of the instance")

    def ensure_layout(self) -> None:
        """Create the instance's directories and its generated /etc files (idempotent)."""
        if self.root is not None:
            return  # the overlay root writes its own (amibake.core.local.rootfs.write_guest_files)
        for guest in self.writable_dirs:
            path = self.host_dir(guest)
            path.mkdir(parents=True, exist_ok=True)
            if guest in self.TMP_DIRS:
                path.chmod(0o1777)
        self._etc.mkdir(parents=True, exist_ok=True)
        uid, gid = self._guest_ids()
        self._write_if_changed(self._etc / "passwd", self._passwd_text(uid, gid))
        self._write_if_changed(self._etc / "group", self._group_text(gid))
        self._write_if_changed(self._etc / "hostname", self.hostname + "\n")

    def clear_tmp(self) -> None:
        """Empty /tmp and /var/tmp, as a reboot does (call when the instance starts)."""
        if self.root is not None:
            return  # a fresh tmpfs at every boot
        for guest in self.TMP_DIRS:
            root = self.host_dir(guest)
            if not root.is_dir():
                continue
            for entry in root.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()

    def _guest_ids(self) -> tuple[int, int]:
        if self._map_uid:
            return GUEST_UID, GUEST_GID
        return os.getuid(), os.getgid()

    def _login_shell(self) -> str:
        return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"

    def _passwd_text(self, uid: int, gid: int) -> str:
        lines = [
            line
            for line in self._host_lines("/etc/passwd")
            if line.split(":")[0] != self.username and line.split(":")[2:3] != [str(uid)]
        ]
        lines.append(f"{self.username}:x:{uid}:{gid}::{self.home}:{self._login_shell()}")
        return "\n".join(lines) + "\n"

    def _group_text(self, gid: int) -> str:
        lines = [
            line
            for line in self._host_lines("/etc/group")
            if line.split(":")[0] != self.username and line.split(":")[2:3] != [str(gid)]
        ]
        lines.append(f"{self.username}:x:{gid}:")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _host_lines(path: str) -> list[str]:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ["root:x:0:0:root:/root:/bin/sh"] if path.endswith("passwd") else ["root:x:0:"]
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    @staticmethod
    def _write_if_changed(path: Path, text: str) -> None:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == text:
                return
        path.write_text(text, encoding="utf-8")

    # -- processes ------------------------------------------------------------------------

    def _environment(self, env: Mapping[str, str] | None, term_type: str | None) -> dict[str, str]:
        isolated = self.isolated
        home = self.home if isolated else str(self.host_dir(self.home))
        result = {
            "HOME": home,
            "USER": self.username,
            "LOGNAME": self.username,
            "PATH": DEFAULT_PATH,
            "SHELL": self._login_shell(),
            "LANG": "C.UTF-8",
        }
        if not isolated:
            # Tools that honour TMPDIR keep their files in the instance; absolute /tmp paths
            # still reach the host's /tmp in this mode.
            result["TMPDIR"] = str(self.host_dir("/tmp"))
        if term_type:
            result["TERM"] = term_type
        if env:
            result.update({str(k): str(v) for k, v in env.items()})
        return result

    def _bwrap_argv(self) -> list[str]:
        assert self._bwrap is not None
        argv = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for hidden in _HIDDEN_DIRS:
            if os.path.isdir(hidden):
                argv += ["--tmpfs", hidden, "--remount-ro", hidden]
        argv += ["--tmpfs", "/home", "--bind", str(self.host_dir(self.home)), self.home]
        for guest in ("/tmp", "/var/tmp", "/opt", "/srv", "/usr/local"):
            if os.path.isdir(guest):
                argv += ["--bind", str(self.host_dir(guest)), guest]
            else:
                log.debug("host has no %s to mount the instance's over; skipped", guest)
        for name in ("passwd", "group", "hostname"):
            if os.path.exists(f"/etc/{name}"):
                argv += ["--ro-bind", str(self._etc / name), f"/etc/{name}"]
        for masked in _MASKED_FILES:
            if os.path.exists(masked):
                argv += ["--ro-bind", "/dev/null", masked]
        argv += ["--unshare-all", "--hostname", self.hostname, "--die-with-parent"]
        if self._map_uid:
            argv += ["--uid", str(GUEST_UID), "--gid", str(GUEST_GID)]
        # No --new-session: we already start bwrap in a new session with no controlling terminal
        # (pipes) or with the sandbox's own pty, so TIOCSTI has nothing to reach, and keeping the
        # command in our session lets client signals reach it and lets a shell use its pty.
        argv += ["--chdir", self.home, "--"]
        return argv

    async def start_process(
        self,
        command: str | None,
        env: Mapping[str, str] | None = None,
        *,
        term_type: str | None = None,
        term_size: tuple[int, int] | None = None,
    ) -> asyncio.subprocess.Process:
        """Start ``/bin/sh -c command`` (or a login shell when command is None) in the sandbox.

        Without ``term_type`` the process gets stdin/stdout/stderr pipes; with it, a new pty whose
        master is exposed as the process's ``stdin`` (writer) and ``stdout`` (reader), ``stderr``
        being None. ``term_size`` is (columns, rows). The process leads a new session.
        """
        self.ensure_layout()
        inner = [self._login_shell(), "-l"] if command is None else ["/bin/sh", "-c", command]
        if self.root is not None:
            argv = self.root.command(inner)
            cwd = str(self.instance_dir)
        elif self.isolated:
            argv = [*self._bwrap_argv(), *inner]
            cwd = str(self.instance_dir)
        else:
            argv = inner
            cwd = str(self.host_dir(self.home))
        environment = self._environment(env, term_type)

        if term_type is None:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=environment,
                start_new_session=True,
            )
            self._tracked[process.pid] = _Tracked(process)
            return process

        master, slave = os.openpty()
        try:
            if term_size:
                self._set_winsize(master, *term_size)
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=environment,
                start_new_session=True,
                # make the pty the controlling terminal of the new session (job control, ^C)
                preexec_fn=_acquire_controlling_tty,
            )
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # We keep our slave fd until the process has ended: when the last slave fd closes while
        # output is still in flight, Linux may fail the master read with EIO and drop that
        # output. Closing ours after the exit turns "drained" into EIO, with nothing lost.
        tracked = _Tracked(process, pty_master=master, pty_slave=slave)
        tracked.pty_watch = asyncio.create_task(self._close_slave_after_exit(tracked))
        self._tracked[process.pid] = tracked
        try:
            process.stdout, process.stdin = await _pty_streams(master, tracked.pty_transports)
        except BaseException:
            await self.kill(process)
            self.release(process)
            raise
        return process

    @staticmethod
    async def _close_slave_after_exit(tracked: _Tracked) -> None:
        try:
            await tracked.process.wait()
        finally:
            if tracked.pty_slave is not None:
                with contextlib.suppress(OSError):
                    os.close(tracked.pty_slave)
                tracked.pty_slave = None

    def set_terminal_size(self, process: asyncio.subprocess.Process, size: tuple[int, int]) -> None:
        """Resize the pty of ``process`` to (columns, rows); no-op for pipe processes."""
        tracked = self._tracked.get(process.pid)
        if tracked is not None and tracked.pty_master is not None:
            with contextlib.suppress(OSError):
                self._set_winsize(tracked.pty_master, *size)

    @staticmethod
    def _set_winsize(fd: int, columns: int, rows: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def send_signal(self, process: asyncio.subprocess.Process, signum: int) -> None:
        """Deliver ``signum`` to the command's processes (what an SSH client's signal request does).

        Plain mode: the process group. bubblewrap mode: every process of the session inside the
        sandbox, but not bwrap itself nor its namespace init, so a command can trap the signal.
        """
        if process.returncode is not None:
            return
        tracked = self._tracked.get(process.pid)
        if tracked is not None:
            tracked.signals_sent.add(signum)
        if not self.isolated:
            _kill_quietly(process.pid, signum, group=True)
            return
        table = _process_table()
        wrappers = {process.pid}
        if self.root is None:  # bwrap's namespace init; nsenter's child is the command itself
            wrappers |= {p.pid for p in table if p.ppid == process.pid}
        for entry in table:
            if entry.session == process.pid and entry.pid not in wrappers:
                _kill_quietly(entry.pid, signum)

    def exit_outcome(self, process: asyncio.subprocess.Process) -> tuple[int | None, int | None]:
        """(exit status, None) or (None, signal number) for a process that has ended.

        bubblewrap reports a command killed by signal n as exit status 128+n; we turn that back
        into the signal when we delivered signal n ourselves (client request or kill), and
        otherwise keep the shell-compatible status.
        """
        code = process.returncode
        if code is None:
            raise RuntimeError("process has not ended")
        if code < 0:
            return None, -code
        tracked = self._tracked.get(process.pid)
        sent = tracked.signals_sent if tracked is not None else set()
        if self.isolated and code > 128 and code - 128 in sent:
            return None, code - 128
        return code, None

    async def kill(self, process: asyncio.subprocess.Process) -> None:
        """SIGKILL the process tree of ``process`` (its whole session) and reap it.

        Safe to call for a process that already ended: what it left behind in its session dies.
        A pty stays readable until :meth:`release` (its last output can still be drained).
        """
        tracked = self._tracked.get(process.pid)
        alive = process.returncode is None
        if tracked is not None and tracked.process is process and tracked.cleared and not alive:
            return  # cleaned up when it ended (sshd kills at the end and again on leaving)
        if tracked is not None and alive:
            tracked.signals_sent.add(signal.SIGKILL)
        # bubblewrap: killing the namespace's init (in the session) takes the whole pid
        # namespace down with it; what the scan finds there is mostly that init
        killed = await asyncio.to_thread(self._kill_session, process.pid, alive)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            log.warning("process %d did not die after SIGKILL", process.pid)
        if killed:
            # what forked while the first pass killed (the leader's last children)
            await asyncio.to_thread(self._kill_session, process.pid, False)
        if tracked is not None and tracked.process is process:
            tracked.cleared = True

    def release(self, process: asyncio.subprocess.Process) -> None:
        """Forget an ended process (after :meth:`exit_outcome`): close its pty, drop its record."""
        tracked = self._tracked.pop(process.pid, None)
        if tracked is None or tracked.process is not process:
            if tracked is not None:  # a reused pid belongs to a newer process: keep it
                self._tracked[process.pid] = tracked
            return
        # asyncio keeps a subprocess transport until every pipe has closed; an output pipe whose
        # reader stopped consuming never reaches EOF, so close them all (the process is dead).
        transport = getattr(process, "_transport", None)
        if isinstance(transport, asyncio.SubprocessTransport):
            with contextlib.suppress(Exception):
                transport.close()
        elif process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        if tracked.pty_slave is not None:
            with contextlib.suppress(OSError):
                os.close(tracked.pty_slave)
            tracked.pty_slave = None
        if tracked.pty_watch is not None:
            tracked.pty_watch.cancel()
        for transport in tracked.pty_transports:
            transport.close()
        tracked.pty_transports.clear()
        if tracked.pty_master is not None:
            with contextlib.suppress(OSError):
                os.close(tracked.pty_master)
            tracked.pty_master = None

    @staticmethod
    def _kill_session(sid: int, leader_alive: bool) -> int:
        """SIGKILL the session's processes; how many were alive to kill. Zombies (dead, their
        parent not reaping them yet, e.g. the instance's pid 1) are not looked for again."""
        killed = 0
        if leader_alive:
            _kill_quietly(sid, signal.SIGKILL, group=True)
            killed += 1
        # Children that moved to other process groups (shell job control) keep the session id;
        # one more pass for what they forked meanwhile, at most a few.
        for _ in range(5):
            members = [
                p.pid
                for p in _process_table()
                if p.session == sid and p.pid != sid and not p.zombie
            ]
            if not members:
                break
            for pid in members:
                _kill_quietly(pid, signal.SIGKILL)
            killed += len(members)
        return killed

    async def kill_all(self) -> None:
        """SIGKILL every process tree this sandbox started and reap them (stop/terminate)."""
        tracked = list(self._tracked.values())
        await asyncio.gather(*(self.kill(t.process) for t in tracked), return_exceptions=True)
        for entry in tracked:
            self.release(entry.process)

    @property
    def running_processes(self) -> list[asyncio.subprocess.Process]:
        """Processes started by this sandbox that have not ended yet."""
        return [t.process for t in self._tracked.values() if t.process.returncode is None]

    # -- SFTP's view of the filesystem ----------------------------------------------------

    def _lexical_host_path(self, guest: str) -> Path:
        """Host path of a normalised, symlink-free guest path (raises PermissionError if hidden)."""
        if self.root is not None:
            if any(guest == tree or guest.startswith(tree + "/") for tree in _OVERLAY_REFUSED):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), guest)
            return self._root_view() / guest.lstrip("/")
        for root in sorted(self.writable_dirs, key=len, reverse=True):
            if guest == root or guest.startswith(root + "/"):
                return self._rootfs / guest.lstrip("/")
        if guest in ("/etc/passwd", "/etc/group", "/etc/hostname"):
            return self._etc / posixpath.basename(guest)
        if guest in _MASKED_FILES or any(
            guest == tree or guest.startswith(tree + "/") for tree in _REFUSED_TREES
        ):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), guest)
        if guest == "/home" or guest.startswith("/home/"):
            # the guest's /home holds only its own user's home
            return self._rootfs / guest.lstrip("/")
        return Path(guest)

    def resolve_guest_path(self, guest_path: str, *, follow_symlinks: bool = True) -> str:
        """Normalise ``guest_path`` (relative to home), resolving symlinks as the guest would.

        With ``follow_symlinks=False`` the last component is left as is (lstat, unlink, rename).
        """
        if not guest_path.startswith("/"):
            guest_path = posixpath.join(self.home, guest_path)
        pending = [part for part in guest_path.split("/") if part]
        pending.reverse()
        resolved = "/"
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            last = all(p == "." for p in pending)
            if last and not follow_symlinks:
                resolved = candidate
                continue
            try:
                target = os.readlink(self._lexical_host_path(candidate))
            except OSError as exc:
                if isinstance(exc, PermissionError):
                    raise
                resolved = candidate  # not a link, or missing: the operation itself will say
                continue
            hops += 1
            if hops > _SYMLINK_HOPS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), guest_path)
            if target.startswith("/"):
                resolved = "/"
            pending.extend(reversed([p for p in target.split("/") if p]))
        return resolved

    def is_writable(self, guest_path: str) -> bool:
        """Whether a normalised guest path lies inside one of the writable directories (overlay
        mode: whether the guest user may write it, by its owner and mode or its parent's)."""
        if self.root is not None:
            return self._guest_may_write(guest_path)
        return any(
            guest_path == root or guest_path.startswith(root + "/") for root in self.writable_dirs
        )

    def _guest_may_write(self, guest: str) -> bool:
        try:
            host = self._lexical_host_path(guest)
        except PermissionError:
            return False
        try:
            info = os.lstat(host)
        except FileNotFoundError:
            try:
                info = os.stat(host.parent)
            except OSError:
                return False
        except OSError:
            return False
        if info.st_uid == GUEST_UID:
            return bool(info.st_mode & 0o200)
        if info.st_gid == GUEST_GID:
            return bool(info.st_mode & 0o020)
        return bool(info.st_mode & 0o002)

    def adopt(self, host_path: Path | bytes | str) -> None:
        """What the SFTP server created belongs to the guest user (overlay mode: uid 1000 of the
        instance, which is uid 1000 on the host)."""
        if self.root is not None:
            with contextlib.suppress(OSError):
                os.lchown(host_path, GUEST_UID, GUEST_GID)

    def map_path(self, guest_path: str, *, write: bool, follow_symlinks: bool = True) -> Path:
        """Host path for a guest path, for the SFTP server.

        Writable guest dirs map into the instance directory; /etc/passwd, /etc/group and
        /etc/hostname to the instance's generated files; /root, /proc, /sys, /dev, /run and the
        shadow files are refused (PermissionError); anything else is the host path, read-only.
        ``write=True`` outside the writable dirs raises PermissionError.

        Overlay mode: every guest path is the instance's (/proc, /sys and /dev refused); writing
        needs the guest user's permission, and so does reading a file (the server runs as the
        host's root: the user must not read root's 0600 files through it).
        """
        resolved = self.resolve_guest_path(guest_path, follow_symlinks=follow_symlinks)
        if write and not self.is_writable(resolved):
            raise PermissionError(
                errno.EACCES, "read-only outside the instance's writable dirs", resolved
            )
        host = self._lexical_host_path(resolved)
        if self.root is not None and not write and not _guest_may_read(host):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), resolved)
        return host


def _guest_may_read(host: Path) -> bool:
    """Whether the guest user (uid/gid 1000) may read a regular file (others: not checked)."""
    try:
        info = os.stat(host)
    except OSError:
        return True  # missing or unreachable: the operation itself will say
    if not stat.S_ISREG(info.st_mode):
        return True
    if info.st_uid == GUEST_UID:
        return bool(info.st_mode & 0o400)
    if info.st_gid == GUEST_GID:
        return bool(info.st_mode & 0o040)
    return bool(info.st_mode & 0o004)


def _acquire_controlling_tty() -> None:
    """preexec_fn: the child is a new session leader; make its stdin (the pty) its terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _pty_streams(
    master: int, transports: list[asyncio.BaseTransport]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A reader and a writer over duplicates of a pty master fd; their transports go in the list."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    read_file = os.fdopen(os.dup(master), "rb", buffering=0)
    try:
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), read_file
        )
    except BaseException:
        read_file.close()
        raise
    transports.append(read_transport)
    write_file = os.fdopen(os.dup(master), "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(_PtyWriteProtocol, write_file)
    except BaseException:
        write_file.close()
        raise
    transports.append(transport)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer
