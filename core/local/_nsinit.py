"""PID 1 of a local instance's root filesystem (run by amibake.core.local.rootfs; standalone, no
imports from the project: it starts with a bare ``python3 _nsinit.py CONFIG``).

1. In a new mount namespace, still as the caller: a non-recursive bind of the host's ``/`` as
   the base layer (a bind inside the user namespace would be refused: the host's mounts are
   locked there).
2. New user, mount, pid, uts, ipc and network namespaces; the caller writes our uid/gid maps
   and says "go" on stdin.
3. As pid 1 of the new pid namespace: mount the overlay (the instance's upper layer over its
   mask layer over the base), /proc (host-wide knobs read-only), a minimal /dev of its own
   (never the host's: no disks, no host terminals), tmpfs on /run and /tmp, pivot_root into it,
   set the hostname, print "ready", and reap children until SIGTERM (a reboot or power off).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64
if os.uname().machine in ("aarch64", "arm64"):
    SYS_PIVOT_ROOT = 41

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    _check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {fstype or 'bind'} on {target}",
    )


def _mask_layer(source: str, target: str) -> None:
    """The mask layer on a tmpfs of its own (overlayfs refuses a lower layer under another
    one, and the base is the host's whole ``/``): a copy of what amibake.core.local.rootfs wrote."""
    os.makedirs(target, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    subprocess.run(["cp", "-a", f"{source}/.", target], check=True)
    for here, dirs, _ in os.walk(source):
        for name in dirs:
            path = os.path.join(here, name)
            if _opaque(path) and not _opaque(target + path[len(source) :]):
                raise OSError(f"no user xattrs on tmpfs here (kernel 6.6 or later): {target}")


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "user.overlay.opaque") == b"y"
    except OSError:
        return False


def main() -> None:
    config = json.loads(sys.argv[1])
    _check(libc.unshare(CLONE_NEWNS), "unshare(mount)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    base = config["base"]
    os.makedirs(base, exist_ok=True)
    _mount("/", base, None, MS_BIND, None)
    _mask_layer(str(config["masks_source"]), str(config["masks"]))
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC
    if not config.get("network"):
        flags |= CLONE_NEWNET
    _check(libc.unshare(flags), "unshare(user, mount, pid, uts, ipc, net)")
    print("unshared", flush=True)
    if sys.stdin.readline().strip() != "go":
        os._exit(1)
    pid = os.fork()
    if pid:  # the namespaces' parent: lives as long as their pid 1
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _pid1(config)


#: the instance's root is uid 0 of the host (see amibake.core.local.rootfs): host-wide kernel knobs
#: that check "uid 0" rather than capabilities are read-only (and masked where reading leaks), as
#: container runtimes do; CAP_SYS_ADMIN is out of every instance process's bounding set, so none
#: of these mounts can be undone from inside
_PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
_PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kmsg", "latency_stats")
#: device nodes an instance gets (bound from the host's /dev); no disks, no host terminals
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _harden_proc(merged: str) -> None:
    for name in _PROC_READ_ONLY:
        path = f"{merged}/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC, None)
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    for name in _PROC_MASKED:
        path = f"{merged}/proc/{name}"
        if os.path.isfile(path):
            _mount("/dev/null", path, None, MS_BIND, None)


def _minimal_dev(merged: str) -> None:
    """A /dev of its own: a few harmless nodes, a private devpts, shm (not the host's /dev)."""
    dev = f"{merged}/dev"
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755")
    for name in _DEVICES:
        if os.path.exists(f"/dev/{name}"):
            with open(f"{dev}/{name}", "w"):
                pass
            _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND, None)
    for name in ("pts", "shm"):
        os.mkdir(f"{dev}/{name}")
    _mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for name, target in (
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")


def _pid1(config: dict[str, object]) -> None:
    merged = str(config["merged"])
    _mount(
        "overlay",
        merged,
        "overlay",
        0,
        f"lowerdir={config['masks']}:{config['base']},upperdir={config['upper']},"
        f"workdir={config['work']},userxattr",
    )
    _mount("proc", f"{merged}/proc", "proc", MS_NOSUID | MS_NODEV, None)
    _harden_proc(merged)
    _minimal_dev(merged)
    for tmp in ("/run", "/tmp", "/var/tmp"):
        if os.path.isdir(merged + tmp):
            _mount("tmpfs", merged + tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    os.chdir(merged)
    os.makedirs(".amibake-oldroot", exist_ok=True)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b".amibake-oldroot"), "pivot_root")
    _check(libc.umount2(b"/.amibake-oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.amibake-oldroot")
    os.chdir("/")
    os.chmod("/run", 0o755)
    hostname = str(config["hostname"]).encode()
    libc.sethostname(hostname, len(hostname))

    def stop(signum: int, frame: object) -> None:
        # A reboot or power off asked for inside: the host drops SSH first, then ends us (pid 1
        # leaving takes every process of the namespace with it); if it does not, we leave.
        try:
            print("halting", flush=True)
        except OSError:
            os._exit(0)
        signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
        signal.alarm(30)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()


if __name__ == "__main__":
    main()
