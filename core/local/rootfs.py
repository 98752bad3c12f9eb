"""A root filesystem per local instance: a copy-on-write overlay of the host's ``/``.

Each instance gets its own user, mount, pid, uts, ipc and network namespaces (see
``_nsinit.py``, its pid 1), in which an overlay is mounted: the host's root read-only at the
bottom and the instance's own upper
layer (``<instance>/upper``) on top. Everything a provisioner writes (/etc, /usr, /var, /opt,
homes) lands in the upper layer; :meth:`InstanceRoot.capture` copies it as the image's layer,
and an instance launched from that image starts with a copy of it as its upper layer, so AMIs
of AMIs stack as on EBS (each image's layer holds its parents' changes too: overlayfs refuses
lower layers that lie under the host's root, which is itself a layer).

Inside, users are as on a cloud image: the image family's default user (``ubuntu``,
``ec2-user``, ``admin``) with uid 1000 and passwordless ``sudo`` that makes a command root of
the instance (uid 0 of its user namespace; the full uid/gid range 0-65535 is mapped, so dpkg can
chown to ``www-data``). ``apt``/``dpkg`` work on the overlay; a ``policy-rc.d`` keeps packages
from starting services; ``systemctl enable|disable|mask|unmask|is-enabled`` edit unit links as
they would offline, ``start|stop|restart|reload|status`` say there is no init; ``reboot`` and
``shutdown -r`` restart the instance with the same files; ``cloud-init status --wait`` is done.

What the host keeps to itself. The instance's uid 0 is the host's uid 0 (uid map ``0 0 65536``):
that is what lets ns-root change the host's root-owned files through copy-up. An unprivileged map
(ns 0 -> a subordinate range) cannot do that alone: root-owned lower files are then nobody's and
read-only to ns-root; an idmapped lower mount (``mount_setattr(MOUNT_ATTR_IDMAP)``) makes them
ns-root's again, and with them every 0600 secret. No mapping both lets dpkg edit /etc and keeps
root's files unreadable, so secrets are masked, and what "uid 0 of the host" could reach beyond
the files is closed: (moving to an idmapped unprivileged map as well needs the host-side writers
(SFTP, authorized_keys) to act with the guest's fsuid; not done yet)

* a mask layer between the upper layer and the host's ``/`` (rebuilt at every boot, on a tmpfs,
  never captured into images): empty opaque directories for ``/root``, ``/home``,
  ``/etc/ssl/private``, ``/var/lib/sudo``, ``/var/lib/private``, ``/var/log`` (its first-level
  directories kept, empty), ``/var/tmp``, ``/var/backups``, ``/var/mail``, ``/var/spool/mail``,
  ``/var/spool/cron``, ``/srv``, ``/mnt``, ``/media``, ``/boot``, amibake's own directories
  (``AMIBAKE_HOME`` or its platformdirs), ``$HOME`` (and ``$SUDO_USER``'s home) of whoever runs
  amibake, and the local cloud's data directory; under /etc, /var, /opt and /usr/local, every
  directory and file an unprivileged host user could not read becomes an empty one of the same
  owner and mode (``/etc/shadow-``, ``/etc/sudoers``, database and VPN configs, ...);
  the host's ``/etc/ssh/ssh_host_*`` give way to the instance's own ed25519 key pair (the one its
  sshd shows). ``/etc/shadow`` and ``/etc/gshadow`` are the instance's own (its accounts, no
  passwords), written into its upper layer.
* a minimal ``/dev`` (null, zero, full, random, urandom, tty, a private devpts, shm): no disks,
  no host terminals; ``/proc/sys``, ``sysrq-trigger``, ``irq``, ``bus``, ``fs`` read-only and
  ``kcore``, ``keys``, ``kmsg``, ``timer_list``, ``sched_debug`` masked (kernel knobs that check
  "uid 0" rather than capabilities); other host mounts (``/proc``, ``/sys``, ``/run``, separate
  filesystems) are not in the non-recursive base at all.
* no instance process (root included) has CAP_SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_BOOT,
  SYS_TIME, SYSLOG or MAC_* in its bounding set: the masks cannot be unmounted from inside.

What a local instance is not: there is no kernel of its own and no init system; the network is
off unless asked for.

Requirements (:func:`overlay_support` says which one is missing): Linux 6.6 or later
(overlayfs in a user namespace since 5.11; user xattrs on tmpfs, which the mask layer needs,
since 6.6), ``nsenter`` and ``setpriv`` (util-linux), and root on the host
(a full uid range needs it; newuidmap/subuid for other users is not supported yet). Without
them the local cloud keeps its plain sandbox (:mod:`amibake.core.local.sandbox`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from amibake.core.errors import LocalCloudError

__all__ = ["InstanceRoot", "OverlaySupport", "default_user_for", "overlay_support"]

GUEST_UID = 1000
GUEST_GID = 1000
#: uids and gids mapped into an instance: the ones a Linux distribution hands out
ID_RANGE = 65536
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INIT = Path(__file__).with_name("_nsinit.py")
_START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class OverlaySupport:
    available: bool
    reason: str  # what is missing, when not available


def _kernel_at_least(release: str, major: int, minor: int) -> bool:
    parts = release.split(".")
    try:
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (
            major,
            minor,
        )
    except (IndexError, ValueError):
        return False


@functools.cache
def overlay_support() -> OverlaySupport:
    """Whether instances can have their own overlay root here, and if not, why (one line)."""
    if sys.platform != "linux":
        return OverlaySupport(False, f"overlay roots need Linux (this is {sys.platform})")
    release = platform.release()
    if not _kernel_at_least(release, 6, 6):
        return OverlaySupport(
            False,
            f"kernel {release} is older than 6.6 (overlayfs in a user namespace needs 5.11, "
            "the mask layer's user xattrs on tmpfs 6.6)",
        )
    for tool in ("nsenter", "setpriv", "su"):
        if shutil.which(tool) is None:
            return OverlaySupport(False, f"'{tool}' (util-linux) is not installed")
    if os.geteuid() != 0:
        return OverlaySupport(
            False,
            f"running as uid {os.geteuid()}: a full uid/gid range in the instance needs root "
            "(newuidmap and /etc/subuid ranges are not supported yet)",
        )
    with tempfile.TemporaryDirectory(prefix="amibake-probe-") as scratch:
        root = InstanceRoot(Path(scratch), "ubuntu", "probe")
        try:
            root.start()
            result = root.run(["true"], user="root")
        except (LocalCloudError, OSError) as error:
            return OverlaySupport(False, f"cannot mount an overlay in a user namespace: {error}")
        finally:
            root.stop()
        if result.returncode != 0:
            return OverlaySupport(False, "cannot enter the instance's namespaces with nsenter")
    return OverlaySupport(True, "")


def default_user_for(image_name: str) -> str:
    """The default user of an image family, as its cloud images create it."""
    name = image_name.lower()
    if "debian" in name:
        return "admin"
    if "ubuntu" in name:
        return "ubuntu"
    return "ec2-user"


class InstanceRoot:
    """One instance's namespaces and overlay root (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        username: str,
        hostname: str,
        *,
        image_layer: Path | None = None,
        network: bool = False,
    ) -> None:
        if not username or "/" in username or username in ("root", ".", ".."):
            raise LocalCloudError(f"invalid instance user name: {username!r}")
        self.directory = Path(directory).absolute()
        self.username = username
        self.hostname = hostname
        #: the layer of the image launched from (copied into the upper layer at first boot)
        self.image_layer = None if image_layer is None else Path(image_layer).absolute()
        self.network = network
        self.upper = self.directory / "upper"
        self._work = self.directory / "work"
        self._merged = self.directory / "merged"
        self._base = self.directory / "base"
        self._masks = self.directory / "masks"
        self._init: subprocess.Popen[str] | None = None
        self._pid1: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._init is not None and self._init.poll() is None

    @property
    def pid1(self) -> int:
        if self._pid1 is None or not self.running:
            raise LocalCloudError("the instance's root filesystem is not running")
        return self._pid1

    @property
    def view(self) -> Path:
        """The instance's root as the host (root) sees it: /proc/<pid 1>/root."""
        return Path(f"/proc/{self.pid1}/root")

    def start(self) -> None:
        """Boot: namespaces, overlay, pid 1. Idempotent while running."""
        if self.running:
            return
        if not self.upper.exists():
            self._first_boot()
        for path in (self.upper, self._work, self._merged, self._base):
            path.mkdir(parents=True, exist_ok=True)
        # The work dir must be empty at mount time (a previous boot may have left files).
        shutil.rmtree(self._work, ignore_errors=True)
        self._work.mkdir()
        write_guest_files(self.upper, self.username, self.hostname)
        offline = self.upper / _NO_NETWORK_APT
        if self.network:
            offline.unlink(missing_ok=True)
        else:
            # No network: apt fails as it does offline ("Temporary failure resolving"), at once.
            offline.parent.mkdir(parents=True, exist_ok=True)
            offline.write_text(_NO_NETWORK_APT_TEXT, encoding="utf-8")
        masks_source = self.directory / "masks.src"
        write_masks(masks_source, self.hidden_paths(), self._host_key_file())
        config = {
            "masks_source": str(masks_source),
            "masks": str(self._masks),
            "base": str(self._base),
            "upper": str(self.upper),
            "work": str(self._work),
            "merged": str(self._merged),
            "hostname": self.hostname,
            "network": self.network,
        }
        import json

        process = subprocess.Popen(
            [sys.executable, str(_INIT), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._init = process
        try:
            self._expect(process, "unshared")
            for name in ("uid_map", "gid_map"):
                Path(f"/proc/{process.pid}/{name}").write_text(f"0 0 {ID_RANGE}\n")
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
            self._expect(process, "ready")
            self._pid1 = _only_child(process.pid)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _expect(process: subprocess.Popen[str], word: str) -> None:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != word:
            process.kill()
            _, err = process.communicate(timeout=_START_TIMEOUT)
            last = (err or "").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            raise LocalCloudError(f"instance root did not start: {last[0]}")

    def stop(self) -> None:
        """Power off: pid 1 leaves and takes every process of the instance with it."""
        process, self._init, self._pid1 = self._init, None, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=_START_TIMEOUT)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def reboot(self) -> None:
        """Restart with the same files (the upper layer survives; /tmp and /run do not)."""
        self.stop()
        self.start()

    def wait_halt_request(self) -> bool:
        """Block until the instance asks to reboot or power off (True), or its root stops (False).

        Its pid 1 says so and waits to be ended: the caller drops SSH, then :meth:`reboot`.
        """
        process = self._init
        if process is None or process.stdout is None:
            return False
        try:
            line = process.stdout.readline()
        except (OSError, ValueError):
            return False
        return line.strip() == "halting"

    def wait_halted(self, timeout: float = _START_TIMEOUT) -> None:
        """Wait for pid 1 to leave (after a ``reboot`` or ``poweroff`` inside the instance)."""
        if self._init is not None:
            self._init.wait(timeout=timeout)

    # -- commands -------------------------------------------------------------------------

    def command(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        """The host argv running ``argv`` in the instance as ``user`` (the default user)."""
        user = user or self.username
        home = "/root" if user == "root" else f"/home/{user}"
        enter = [
            "nsenter",
            f"--target={self.pid1}",
            "--user",
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            *([] if self.network else ["--net"]),
            "--root",
            # nsenter opens the directory before entering: reach it through pid 1's root
            f"--wd=/proc/{self.pid1}/root{home}",
            "--",
        ]
        # Nothing in the instance may mount or unmount (the masks and the read-only /proc knobs
        # stay), load modules, reboot the host or read raw memory, root included.
        bounding = f"--bounding-set={','.join('-' + cap for cap in _DROPPED_CAPS)}"
        if user == "root":
            return [*enter, "setpriv", bounding, "--", *argv]
        return [
            *enter,
            "setpriv",
            bounding,
            f"--reuid={user}",
            f"--regid={user}",
            "--init-groups",
            "--",
            *argv,
        ]

    # -- what the host keeps to itself --------------------------------------------------------

    def hidden_paths(self) -> list[Path]:
        """Host directories shown empty in the instance beyond :data:`HIDDEN_DIRS`: amibake's
        own directories, the home of whoever runs it, and the local cloud's data directory."""
        from amibake.core import paths

        hidden = [paths.data_dir(), paths.config_dir(), paths.cache_dir(), paths.state_dir()]
        if os.environ.get("AMIBAKE_HOME"):
            hidden.append(paths.expand_home(os.environ["AMIBAKE_HOME"]))
        for home in (os.environ.get("HOME"), _sudo_user_home()):
            if home and home != "/":
                hidden.append(Path(home))
        # <data dir>/instances/<region>/<id>/root: every instance, image layer and key lives there
        data = next((p.parent for p in self.directory.parents if p.name == "instances"), None)
        hidden.append(data if data is not None else self.directory.parent)
        return hidden

    def _host_key_file(self) -> Path | None:
        path = self.directory.parent / HOST_KEY_FILE
        return path if path.is_file() else None

    def environment(
        self, user: str | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        user = user or self.username
        env = {
            "HOME": "/root" if user == "root" else f"/home/{user}",
            "USER": user,
            "LOGNAME": user,
            "PATH": DEFAULT_PATH,
            "SHELL": "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh",
            "LANG": "C.UTF-8",
        }
        env.update(extra or {})
        return env

    def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the instance and wait for it (tests, image setup)."""
        return subprocess.run(
            self.command(argv, user=user),
            env=self.environment(user, env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def shell(
        self, script: str, *, user: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self.run(["/bin/sh", "-c", script], user=user, timeout=timeout)

    # -- images ---------------------------------------------------------------------------

    def capture(self, destination: Path) -> Path:
        """Copy the upper layer as an image layer (whiteouts and overlay xattrs kept)."""
        destination = Path(destination)
        if destination.exists():
            raise LocalCloudError(f"image layer {destination} exists already")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = destination.with_name(f".{destination.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        _copy_tree(self.upper, staging)
        # What the guest files module writes per instance is not the image's business.
        for path in _PER_INSTANCE_FILES:
            (staging / path).unlink(missing_ok=True)
        staging.rename(destination)
        return destination

    def _first_boot(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.image_layer is None:
            self.upper.mkdir()
            return
        staging = self.directory / ".upper.partial"
        shutil.rmtree(staging, ignore_errors=True)
        _copy_tree(self.image_layer, staging)
        staging.rename(self.upper)

    def disk_used(self) -> int:
        """Bytes in the upper layer (what this instance added to its image)."""
        total = 0
        for root, _, files in os.walk(self.upper):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_size
        return total


# -- the mask layer: what the instance must not see of the host ---------------------------

#: host directories every instance sees empty (opaque in the mask layer)
HIDDEN_DIRS = (
    "/root",
    "/home",
    "/etc/ssl/private",
    "/var/lib/sudo",
    "/var/lib/private",
    "/var/log",
    "/var/tmp",
    "/var/backups",
    "/var/mail",
    "/var/spool/mail",
    "/var/spool/cron",
    "/srv",
    "/mnt",
    "/media",
    "/boot",
)
#: host trees scanned at boot for what an unprivileged host user could not read
_SCANNED = ("/etc", "/var", "/opt", "/usr/local")
#: the instance's own generated files (not the host's): shadow files come with the accounts
_OWN_FILES = ("etc/shadow", "etc/gshadow")
_SSH_DIR = "etc/ssh"
HOST_KEY_FILE = "ssh_host_ed25519_key"  # the instance sshd's key, next to the root's directory
_DROPPED_CAPS = (
    "sys_admin",
    "sys_module",
    "sys_rawio",
    "sys_boot",
    "sys_time",
    "syslog",
    "mac_admin",
    "mac_override",
)
_SCAN_TTL = 60.0
_scan_cache: tuple[float, tuple[str, ...], tuple[str, ...]] | None = None


def _sudo_user_home() -> str | None:
    user = os.environ.get("SUDO_USER")
    if not user:
        return None
    import pwd

    try:
        return pwd.getpwnam(user).pw_dir
    except KeyError:
        return None


def unreadable_host_paths() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(directories, files) under :data:`_SCANNED` that an unprivileged host user could not
    read: directories without r-x and regular files without r for others. Cached a minute."""
    global _scan_cache
    import time

    now = time.monotonic()
    if _scan_cache is not None and now - _scan_cache[0] < _SCAN_TTL:
        return _scan_cache[1], _scan_cache[2]
    dirs: list[str] = []
    files: list[str] = []
    for top in _SCANNED:
        for here, subdirs, names in os.walk(top, onerror=lambda _: None):
            keep = []
            for name in subdirs:
                path = os.path.join(here, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(path)
                    if stat.S_ISDIR(info.st_mode) and info.st_mode & 0o005 != 0o005:
                        dirs.append(path)
                        continue
                keep.append(name)
            subdirs[:] = keep
            for name in names:
                path = os.path.join(here, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(path)
                    if stat.S_ISREG(info.st_mode) and not info.st_mode & 0o004:
                        files.append(path)
    _scan_cache = (now, tuple(dirs), tuple(files))
    return _scan_cache[1], _scan_cache[2]


def write_masks(masks: Path, hidden: Sequence[Path], host_key: Path | None) -> None:
    """Rebuild the mask layer (between the instance's upper layer and the host's ``/``).

    Hidden directories become empty opaque directories (their first-level subdirectories kept,
    empty, for /var/log); files an unprivileged host user may not read become empty files of the
    same owner and mode; the host's SSH host keys give way to the instance's own ed25519 key.
    Everything else of the host shows through. Ownership and modes follow the host's, so
    copy-up behaves as on the host's own files.
    """
    shutil.rmtree(masks, ignore_errors=True)
    masks.mkdir(mode=0o755)
    extra_dirs, unreadable_files = unreadable_host_paths()
    own = {"/" + path for path in _OWN_FILES}
    hidden_dirs = sorted(
        {*HIDDEN_DIRS, *extra_dirs, *(os.path.normpath(str(p)) for p in hidden if p.is_absolute())}
    )
    done: list[str] = []
    for path in hidden_dirs:
        if path == "/" or any(path.startswith(d + "/") for d in done):
            continue  # inside something hidden already (nothing of it shows anyway)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        target = _mirror_dir(masks, path)
        os.setxattr(target, "user.overlay.opaque", b"y")
        done.append(path)
        if path == "/var/log":  # the directory tree programs log into, empty
            with contextlib.suppress(OSError):
                for entry in os.scandir(path):
                    if entry.is_dir(follow_symlinks=False):
                        _mirror_dir(masks, entry.path)
    for path in unreadable_files:
        if path in own or any(path.startswith(d + "/") for d in done):
            continue
        _mirror_file(masks, path, b"")
    ssh = Path("/") / _SSH_DIR
    if ssh.is_dir():
        with contextlib.suppress(OSError):
            for entry in os.scandir(ssh):
                if entry.name.startswith("ssh_host_") and "_key" in entry.name:
                    whiteout = _mirror_dir(masks, str(ssh)) / entry.name
                    whiteout.unlink(missing_ok=True)
                    os.mknod(whiteout, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        if host_key is not None:
            _write_host_key(_mirror_dir(masks, str(ssh)), host_key)


def _mirror_dir(masks: Path, host_path: str) -> Path:
    """``host_path`` in the mask layer, with its parents, owners and modes as on the host."""
    target = masks
    current = "/"
    for part in Path(host_path).parts[1:]:
        current = os.path.join(current, part)
        target = target / part
        if target.is_dir():
            continue
        target.mkdir()
        try:
            info = os.stat(current)
            os.chown(target, info.st_uid, info.st_gid)
            target.chmod(stat.S_IMODE(info.st_mode))
        except OSError:
            target.chmod(0o755)
    return target


def _mirror_file(masks: Path, host_path: str, content: bytes) -> None:
    parent = _mirror_dir(masks, os.path.dirname(host_path))
    target = parent / os.path.basename(host_path)
    target.write_bytes(content)
    with contextlib.suppress(OSError):
        info = os.lstat(host_path)
        os.chown(target, info.st_uid, info.st_gid)
        target.chmod(stat.S_IMODE(info.st_mode))


def _write_host_key(ssh: Path, host_key: Path) -> None:
    """The instance's own ed25519 host key pair (the one its sshd shows), as cloud-init does."""
    import asyncssh

    try:
        key = asyncssh.read_private_key(host_key)
    except (OSError, ValueError, asyncssh.KeyImportError):
        return
    private = ssh / "ssh_host_ed25519_key"
    private.unlink(missing_ok=True)
    private.write_bytes(key.export_private_key())
    private.chmod(0o600)
    public = ssh / "ssh_host_ed25519_key.pub"
    public.unlink(missing_ok=True)
    public.write_bytes(key.export_public_key())
    public.chmod(0o644)


def _copy_tree(source: Path, destination: Path) -> None:
    """``cp -a``: ownership, modes, whiteouts (character devices) and overlay xattrs kept."""
    subprocess.run(
        ["cp", "-a", "--reflink=auto", str(source), str(destination)],
        check=True,
        capture_output=True,
    )


def _only_child(pid: int) -> int:
    """The pid of ``pid``'s child (the namespace's pid 1), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError as error:
        raise LocalCloudError(f"instance root: cannot find its pid 1: {error}") from None
    if len(children) != 1:
        raise LocalCloudError("instance root: its pid 1 is not running")
    return int(children[0])


# -- what the image's files say (written into the upper layer before every boot) -----------

_NO_NETWORK_APT = "etc/apt/apt.conf.d/99amibake-no-network"
_NO_NETWORK_APT_TEXT = (
    "// amibake local instance without network: no retries (not part of images)\n"
    'Acquire::Retries "0";\n'
)
_PER_INSTANCE_FILES = ("etc/hostname", _NO_NETWORK_APT)

_SUDO = r"""#!/bin/sh
# amibake local instance: passwordless sudo, as on a cloud image. The command runs as root of
# this instance (uid 0 of its own user namespace), or as the -u user.
user=root keep= login=
while [ $# -gt 0 ]; do
    case "$1" in
        -u) user=$2; shift 2 ;;
        -u*) user=${1#-u}; shift ;;
        --user=*) user=${1#--user=}; shift ;;
        -E|--preserve-env|--preserve-env=*) keep=1; shift ;;
        -i|--login) login=1; shift ;;
        -n|-S|-H|-k|-K|-s|--non-interactive|--stdin|--set-home|--shell) shift ;;
        --) shift; break ;;
        -*) echo "sudo: option $1 is not supported on amibake local instances" >&2; exit 1 ;;
        *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    if [ -n "$login" ]; then exec su -l "$user"; fi
    echo "usage: sudo [-u user] [-E] [-i] command" >&2; exit 1
fi
# sudo VAR=value ... command (Packer's `sudo {{ .Vars }} {{ .Path }}`)
case "$1" in [A-Za-z_]*=*) set -- env "$@" ;; esac
if [ "$user" != root ]; then
    home=$(getent passwd "$user" | cut -d: -f6)
    gid=$(getent passwd "$user" | cut -d: -f4)
    [ -n "$home" ] || { echo "sudo: unknown user $user" >&2; exit 1; }
    set -- setpriv --reuid="$user" --regid="$gid" --init-groups -- \
        env HOME="$home" USER="$user" LOGNAME="$user" "$@"
fi
flags=
if [ -n "$login" ]; then flags=-l; elif [ -n "$keep" ]; then flags=-m; fi
# sudo's secure_path
[ -n "$keep" ] || export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
exec su $flags -s /bin/sh -c 'exec "$0" "$@"' -- root "$@"
"""

# su asks no password in a local instance: sudo above is passwordless, as on a cloud image.
_PAM_SU = (
    "auth sufficient pam_permit.so\naccount sufficient pam_permit.so\n"
    "session optional pam_permit.so\n"
)

_POLICY_RC_D = (
    "#!/bin/sh\n# amibake local instance: no init system; packages do not start services\n"
    "exit 101\n"
)

_SYSTEMCTL = r"""#!/bin/sh
# amibake local instance: no init system. Unit files and their links are edited as
# `systemctl --root` would offline (that is what an image keeps); starting, stopping and
# status say there is no init.
NOINIT="systemctl: amibake local instances have no init system; the unit is enabled in the image and starts on a real instance"
find_unit() {
    for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
        if [ -e "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    return 1
}
unit_name() { case "$1" in *.*) echo "$1" ;; *) echo "$1.service" ;; esac; }
wanted_by() { sed -n 's/^[[:space:]]*\(WantedBy\|RequiredBy\)[[:space:]]*=[[:space:]]*//p' "$1" | tr ' ' '\n' | sed '/^$/d'; }
action=
while [ $# -gt 0 ]; do
    case "$1" in
        -q|--quiet|--no-block|--now|--no-reload|--system|--no-pager|-f|--force) shift ;;
        -*) shift ;;
        *) if [ -z "$action" ]; then action=$1; shift; else break; fi ;;
    esac
done
status=0
case "$action" in
    daemon-reload|daemon-reexec|reset-failed) exit 0 ;;
    enable|disable|mask|unmask|is-enabled) ;;
    start|stop|restart|reload|try-restart|reload-or-restart|kill)
        echo "$NOINIT ($action $*)" >&2; exit 0 ;;
    is-active) for u in "$@"; do echo inactive; done; exit 3 ;;
    status) echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2; exit 3 ;;
    "") echo "$NOINIT" >&2; exit 1 ;;
    *) echo "systemctl: '$action' is not supported on amibake local instances" >&2; exit 1 ;;
esac
for arg in "$@"; do
    u=$(unit_name "$arg")
    case "$action" in
        mask) ln -sf /dev/null "/etc/systemd/system/$u"; echo "Created symlink /etc/systemd/system/$u → /dev/null." ;;
        unmask) [ "$(readlink "/etc/systemd/system/$u")" = /dev/null ] && rm -f "/etc/systemd/system/$u" ;;
        enable|disable|is-enabled)
            if [ "$(readlink "/etc/systemd/system/$u" 2>/dev/null)" = /dev/null ]; then
                [ "$action" = is-enabled ] && { echo masked; status=1; continue; }
                echo "Failed to $action unit: Unit file /etc/systemd/system/$u is masked." >&2; exit 1
            fi
            file=$(find_unit "$u") || { echo "Failed to $action unit: Unit file $u does not exist." >&2; exit 1; }
            targets=$(wanted_by "$file")
            if [ "$action" = is-enabled ]; then
                state=disabled
                [ -z "$targets" ] && state=static
                for t in $targets; do [ -e "/etc/systemd/system/$t.wants/$u" ] && state=enabled; done
                echo "$state"; [ "$state" = disabled ] && status=1
                continue
            fi
            for t in $targets; do
                if [ "$action" = enable ]; then
                    mkdir -p "/etc/systemd/system/$t.wants"
                    ln -sf "$file" "/etc/systemd/system/$t.wants/$u"
                    echo "Created symlink /etc/systemd/system/$t.wants/$u → $file."
                else
                    [ -e "/etc/systemd/system/$t.wants/$u" ] && rm -f "/etc/systemd/system/$t.wants/$u" && echo "Removed \"/etc/systemd/system/$t.wants/$u\"."
                fi
            done ;;
    esac
done
exit $status
"""  # noqa: E501

_CLOUD_INIT = r"""#!/bin/sh
# amibake local instance: cloud-init ran at boot (SSH keys, user data); nothing is pending.
case "$1" in
    status) echo "status: done"; exit 0 ;;
    *) exit 0 ;;
esac
"""

_REBOOT = r"""#!/bin/sh
# amibake local instance: reboot or power off; the instance comes back with the same files.
# As with systemd, the command does not return: the host drops SSH, then every process dies.
kill -TERM 1
sleep 60
"""


def _host_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def write_guest_files(upper: Path, username: str, hostname: str) -> None:
    """The files that make the overlay a cloud image of ``username`` (idempotent).

    Accounts are merged into what the image layers (or the host) already have, so users a
    provisioner added (``useradd``) stay; the default user is uid 1000 in the ``sudo`` group.
    """

    def current(relative: str) -> Path:
        return upper / relative if (upper / relative).exists() else Path("/") / relative

    def write(relative: str, text: str, mode: int = 0o644) -> None:
        path = upper / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o7777) == mode:
                return
        except OSError:
            pass
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)

    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    passwd = [
        line
        for line in _host_lines(current("etc/passwd"))
        if line.split(":")[0] != username and line.split(":")[2:3] != [str(GUEST_UID)]
    ]
    passwd.append(f"{username}:x:{GUEST_UID}:{GUEST_GID}::/home/{username}:{shell}")
    write("etc/passwd", "\n".join(passwd) + "\n")
    groups = []
    seen_sudo = False
    for line in _host_lines(current("etc/group")):
        fields = line.split(":")
        if fields[0] == username or fields[2:3] == [str(GUEST_GID)]:
            continue
        if fields[0] in ("sudo", "wheel", "adm") and len(fields) == 4:
            members = [m for m in fields[3].split(",") if m and m != username]
            fields[3] = ",".join([*members, username])
            seen_sudo = seen_sudo or fields[0] == "sudo"
            line = ":".join(fields)
        groups.append(line)
    if not seen_sudo:
        groups.append(f"sudo:x:27:{username}")
    groups.append(f"{username}:x:{GUEST_GID}:")
    write("etc/group", "\n".join(groups) + "\n")
    # No host secrets in the instance: shadow files of its own (no passwords).
    names = [line.split(":")[0] for line in passwd]
    write("etc/shadow", "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names), 0o640)
    write("etc/gshadow", "".join(f"{line.split(':')[0]}:*::\n" for line in groups), 0o640)
    write("etc/hostname", hostname + "\n")
    write("etc/pam.d/su", _PAM_SU)
    write("etc/sudoers.d/90-cloud-init-users", f"{username} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    write("usr/bin/sudo", _SUDO, 0o755)
    write("usr/sbin/policy-rc.d", _POLICY_RC_D, 0o755)
    write("usr/bin/systemctl", _SYSTEMCTL, 0o755)
    write("usr/bin/cloud-init", _CLOUD_INIT, 0o755)
    for name in ("reboot", "poweroff", "halt"):
        write(f"usr/sbin/{name}", _REBOOT, 0o755)
    write("usr/sbin/shutdown", _REBOOT, 0o755)
    # The host's homes and /root are not the instance's: opaque directories hide them.
    for private in ("home", "root"):
        path = upper / private
        if not path.is_dir():
            path.mkdir(mode=0o755 if private == "home" else 0o700)
            os.setxattr(path, "user.overlay.opaque", b"y")
    home = upper / "home" / username
    if not home.is_dir():
        home.mkdir(mode=0o755, parents=True)
        os.chown(home, GUEST_UID, GUEST_GID)
    for state in ("var/lib/cloud/instance", "etc/systemd/system"):
        (upper / state).mkdir(parents=True, exist_ok=True)
    (upper / "var/lib/cloud/instance/boot-finished").touch()
