"""PID 1 of a local instance's root filesystem (run by core.local.rootfs; standalone, no imports
from the project: it starts with a bare ``python3 _nsinit.py CONFIG``).

1. In a new mount namespace, still as the caller: a non-recursive bind of the host's ``/`` as
   the base layer (a bind inside the user namespace would be refused: the host's mounts are
   locked there).
2. New user, mount, pid, uts, ipc and network namespaces; the caller writes our uid/gid maps
   and says "go" on stdin.
3. As pid 1 of the new pid namespace: mount the overlay (the instance's upper layer over the
   base), /proc, /dev, tmpfs on /run and /tmp, pivot_root into it,
   set the hostname, print "ready", and reap children until SIGTERM (a reboot or power off).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
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


def main() -> None:
    config = json.loads(sys.argv[1])
    _check(libc.unshare(CLONE_NEWNS), "unshare(mount)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    base = config["base"]
    os.makedirs(base, exist_ok=True)
    _mount("/", base, None, MS_BIND, None)
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


def _pid1(config: dict[str, object]) -> None:
    merged = str(config["merged"])
    _mount(
        "overlay",
        merged,
        "overlay",
        0,
        f"lowerdir={config['base']},upperdir={config['upper']},workdir={config['work']},userxattr",
    )
    _mount("proc", f"{merged}/proc", "proc", MS_NOSUID | MS_NODEV, None)
    _mount("/dev", f"{merged}/dev", None, MS_BIND | MS_REC, None)
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
        # pid 1 leaving takes every process of the namespace with it: power off or reboot
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()


if __name__ == "__main__":
    main()
