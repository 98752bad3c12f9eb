"""Host secrets stay out of local instances with an overlay root (amibake.core.local.rootfs masks).

The instance's root is uid 0 of the host (so it may change the host's root-owned files through
copy-up); the mask layer, the minimal /dev and the read-only /proc knobs keep what only the
host's root may read out of sight. Checked through real SSH, with sudo, as a provisioner would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from amibake.core.local import rootfs
from amibake.core.local.cloud import LocalCloud
from tests.local.conftest import wait_state

pytestmark = pytest.mark.skipif(
    not rootfs.overlay_support().available,
    reason=f"no overlay roots here: {rootfs.overlay_support().reason}",
)


async def test_sudo_in_an_instance_reads_no_host_secrets(
    ec2: Any, launch: Any, cloud: LocalCloud
) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    host_root = sorted(os.listdir("/root"))
    data_dir = cloud.data_dir.resolve()
    amibake_home = os.environ.get("AMIBAKE_HOME", "/nonexistent-amibake-home")
    async with await instance.connect_when_ready() as conn:

        async def sudo(command: str) -> str:
            result = await conn.run(f"sudo sh -c '{command}'")
            return str(result.stdout)

        assert (await sudo("id -u")).strip() == "0"
        shadow = await sudo("cat /etc/shadow /etc/shadow- /etc/gshadow 2>/dev/null")
        assert "$" not in shadow  # no password hash of the host's
        assert {line.split(":")[1] for line in shadow.splitlines()} <= {"*"}
        assert "ubuntu:*" in shadow
        listed = (await sudo("ls -A /root")).split()
        assert not set(listed) & set(host_root), listed
        public = (await sudo("cat /etc/ssh/ssh_host_ed25519_key.pub")).split()[:2]
        server_key = conn.get_server_host_key()
        assert server_key is not None
        assert public == server_key.export_public_key().decode().split()[:2]
        host_pub = Path("/etc/ssh/ssh_host_ed25519_key.pub")
        if host_pub.exists():
            assert public != host_pub.read_text().split()[:2]
        for hidden in (data_dir, Path(amibake_home)):
            out = await sudo(f"ls -A {hidden} 2>/dev/null | wc -l")
            assert out.strip() == "0", (hidden, out)
        # no host disks or terminals, no host-wide kernel knobs, no way to unmount the masks
        assert set((await sudo("ls /dev")).split()) <= {
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero",
        }  # fmt: skip
        knob = await conn.run(
            "sudo sh -c 'cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern'"
        )
        assert knob.exit_status != 0 and "Read-only" in str(knob.stderr)
        assert (await conn.run("sudo umount /proc/sys")).exit_status != 0
        assert (await conn.run("sudo umount /root")).exit_status != 0
        # what a provisioner needs still works: dpkg and apt read and write their state
        assert (await conn.run("sudo dpkg -s coreutils")).exit_status == 0
        assert (await conn.run("sudo sh -c 'echo x > /etc/amibake-root-write'")).exit_status == 0
        assert (await conn.run("sudo useradd -m deploy && id deploy")).exit_status == 0


def test_masks_cover_what_an_unprivileged_host_user_cannot_read(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    secret_dir = tmp_path / "data"
    secret_dir.mkdir()
    (secret_dir / "key").write_text("secret")
    rootfs.write_masks(masks, [secret_dir], None)
    assert os.getxattr(masks / "root", "user.overlay.opaque") == b"y"
    assert os.getxattr(masks / str(secret_dir).lstrip("/"), "user.overlay.opaque") == b"y"
    assert not (masks / str(secret_dir).lstrip("/") / "key").exists()
    _dirs, files = rootfs.unreadable_host_paths()
    for path in files:
        if path not in ("/etc/shadow", "/etc/gshadow") and not path.startswith("/var/log/"):
            mirrored = masks / path.lstrip("/")
            assert mirrored.stat().st_size == 0, path
            assert mirrored.stat().st_mode == os.stat(path).st_mode, path
    if os.path.exists("/etc/shadow-"):
        assert (masks / "etc/shadow-").read_bytes() == b""
