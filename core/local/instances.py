"""One local instance: its loopback address, sandbox, host key, SSH server and console.

The EC2 view of the instance (state, tags, volumes) lives in moto; this is the
machine behind it. :class:`amibake.core.local.cloud.LocalCloud` drives its lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from amibake.core.local.rootfs import GUEST_GID, GUEST_UID, InstanceRoot
from amibake.core.local.sandbox import Sandbox
from amibake.core.local.sshd import InstanceSSHServer, host_key_fingerprint_block

if TYPE_CHECKING:
    from moto.ec2.models.instances import Instance

HOST_KEY_FILE = "ssh_host_ed25519_key"


def hostname_for(address: str) -> str:
    return "ip-" + address.replace(".", "-")


class LocalInstance:
    def __init__(
        self,
        *,
        instance_id: str,
        region: str,
        address: str,
        username: str,
        directory: Path,
        authorized_keys: Sequence[str],
        isolate: bool | None,
        overlay: bool = False,
        image_layer: Path | None = None,
        network: bool = False,
    ) -> None:
        self.instance_id = instance_id
        self.region = region
        self.address = address
        #: the public address (issue 10): another loopback address, served by the same sshd
        self.public_address = address
        self.username = username
        self.directory = directory
        self.authorized_keys = list(authorized_keys)
        self.hostname = hostname_for(address)
        directory.mkdir(parents=True, exist_ok=True)
        #: overlay mode: the instance's own root filesystem (None: the plain sandbox)
        self.root: InstanceRoot | None = None
        if overlay:
            self.root = InstanceRoot(
                directory / "root",
                username,
                self.hostname,
                image_layer=image_layer,
                network=network,
            )
        self.sandbox = Sandbox(directory, username, self.hostname, isolate=isolate, root=self.root)
        #: a moto Instance whose user data cloud-init applies at first boot (overlay mode)
        self.pending_user_data: Instance | None = None
        self.sandbox.ensure_layout()
        self.host_key = self._load_or_create_host_key()
        self.ssh: InstanceSSHServer | None = None
        self.ssh_port: int | None = None
        #: bumped by every state change; a scheduled transition only applies if it is unchanged
        self.generation = 0
        self.booted_at: datetime | None = None
        #: the security-group check the cloud gives its sshd (None: none) and whether that
        #: sshd refuses ed25519 user keys (issue 10)
        self.admit: Callable[[str, int], bool] | None = None
        self.refuse_ed25519 = False
        #: the moto Instance whose user data cloud-init's later stages still have to apply
        #: (late users, the #! script; LocalCloud._cloud_init) and the script's exit status
        self.cloud_init_pending: Instance | None = None
        self.user_data_status: int | None = None

    def _load_or_create_host_key(self) -> asyncssh.SSHKey:
        # Kept in the instance directory (outside the guest's view) so it survives stop/start.
        path = self.directory / HOST_KEY_FILE
        if path.exists():
            return asyncssh.read_private_key(path)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(path)
        path.chmod(0o600)
        return key

    def persistent_dirs(self) -> list[tuple[str, Path]]:
        return [(guest, self.sandbox.host_dir(guest)) for guest in self.sandbox.PERSISTENT_DIRS]

    def console_output(self) -> str | None:
        """Boot log as GetConsoleOutput returns it, once the instance has booted."""
        if self.booted_at is None:
            return None
        stamp = self.booted_at.strftime("%a, %d %b %Y %H:%M:%S +0000")
        fingerprints = host_key_fingerprint_block([self.host_key], self.hostname)
        lines = [
            "[    0.000000] Linux version 6.1.0-amibake (local cloud) #1 SMP",
            "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=LABEL=cloudimg-rootfs ro",
            f"[    1.204112] EXT4-fs (nvme0n1p1): mounted filesystem {self.instance_id} ro",
            f"Cloud-init v. 24.1 running 'init' at {stamp}. Up 3.12 seconds.",
            f"ci-info: | eth0 | True | {self.address} | 255.0.0.0 | global |",
            "Generating public/private ed25519 key pair.",
            f"Cloud-init v. 24.1 running 'modules:config' at {stamp}. Up 5.30 seconds.",
        ]
        text = "\n".join(lines) + "\n" + fingerprints
        if not text.endswith("\n"):
            text += "\n"
        text += (
            f"Cloud-init v. 24.1 finished at {stamp}. Datasource DataSourceEc2Local.  "
            "Up 7.91 seconds\n"
        )
        return text

    def mark_booted(self) -> None:
        self.booted_at = datetime.now(UTC)

    async def start_ssh(
        self,
        port: int,
        drop_after_bytes: Callable[[], int | None],
        fallback_port: bool,
        wrong_host_key: bool = False,
    ) -> int:
        """Start sshd on the instance's address; returns the port it listens on.

        When ``port`` is taken (or the OS gives only 127.0.0.1 to share), a free
        port is used instead and the caller publishes it.
        """
        await self.stop_ssh()
        await asyncio.to_thread(self.install_authorized_keys)
        attempts = [0] if fallback_port else [port, 0]
        # Fault injection: a server whose key is not the one the console output shows.
        host_key = asyncssh.generate_private_key("ssh-ed25519") if wrong_host_key else self.host_key
        last_error: Exception | None = None
        for candidate in attempts:
            server = InstanceSSHServer(
                host=self.address,
                port=candidate,
                username=self.username,
                authorized_keys=self.authorized_keys,
                host_key=host_key,
                sandbox=self.sandbox,
                drop_after_bytes=drop_after_bytes,
                authorized_keys_file=self.authorized_keys_file,
                admit=self.admit,
            )
            server.refuse_ed25519 = self.refuse_ed25519
            if candidate and self.public_address != self.address:
                server.extra_hosts = (self.public_address,)
            try:
                self.ssh_port = await server.start()
            except Exception as error:  # the address or port is taken: try the next
                last_error = error
                continue
            self.ssh = server
            return self.ssh_port
        raise RuntimeError(f"cannot start SSH for {self.instance_id}: {last_error}")

    @property
    def authorized_keys_file(self) -> Path:
        """The guest's ``~/.ssh/authorized_keys``, on the host."""
        return self.sandbox.host_dir(self.sandbox.home) / ".ssh" / "authorized_keys"

    def install_authorized_keys(self) -> None:
        """What cloud-init does at boot: the launch key pair's public key goes into the
        default user's ``~/.ssh/authorized_keys`` (added to what an image brought along)."""
        path = self.authorized_keys_file
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            present = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            present = ""
        have = {" ".join(line.split()[:2]) for line in present.splitlines()}
        missing = [k for k in self.authorized_keys if " ".join(k.split()[:2]) not in have]
        if missing or not path.exists():
            text = present if not present or present.endswith("\n") else present + "\n"
            path.write_text(text + "".join(f"{k}\n" for k in missing), encoding="utf-8")
            path.chmod(0o600)
        if self.root is not None:  # the default user's own, as cloud-init leaves them
            for owned in (path.parent, path):
                os.lchown(owned, GUEST_UID, GUEST_GID)

    async def stop_ssh(self) -> None:
        server, self.ssh = self.ssh, None
        if server is not None:
            await server.stop()

    async def halt(self) -> None:
        """Power off: SSH goes away and every process in the sandbox dies."""
        await self.stop_ssh()
        await self.sandbox.kill_all()
        if self.root is not None:
            await asyncio.to_thread(self.root.stop)

    def disk_used(self) -> int:
        """Bytes this instance keeps on the host (overlay mode: its upper layer)."""
        if self.root is not None:
            return self.root.disk_used()
        total = 0
        for _, host_dir in self.persistent_dirs():
            for base, _, files in os.walk(host_dir):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(base, name)).st_size
        return total

    def destroy(self) -> None:
        if self.root is not None:
            self.root.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
