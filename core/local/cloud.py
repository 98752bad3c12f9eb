"""The local cloud: moto's EC2 API on loopback HTTP plus real, SSH-reachable instances.

One call starts it in-process::

    with LocalCloud(latency="fast") as cloud:
        ec2 = boto3.client("ec2", endpoint_url=cloud.endpoint_url, region_name="us-east-1", ...)

Threads: werkzeug serves HTTP (a thread per request) into moto, under
``moto_lock``; one asyncio loop thread owns the instances' SSH servers and the
timers that move states along (pending -> running, image pending -> available
...). Hooks called by :mod:`core.local.moto_ext` run in request threads with the
lock held and only *schedule* work on the loop, never wait for it.

moto keeps its state in module globals, so one LocalCloud runs per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.errors import LocalCloudError, UsageError
from core.local.content import ContentStore, Registry
from core.local.faults import FaultPlan
from core.local.images import CatalogImage, catalog_for_region
from core.local.latency import DEFAULT_PROFILE, LatencyProfile, get_profile
from core.local.sandbox import find_bubblewrap

if TYPE_CHECKING:
    import boto3
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.instances import Instance

    from core.local.instances import LocalInstance
    from core.local.moto_ext import LocalAmi

log = logging.getLogger(__name__)

#: Fake credentials the local cloud accepts (any would do; these are conventional).
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_SSH_PORT = 2222
#: Tag carrying the instance's SSH port when it is not the cloud's fixed port.
SSH_PORT_TAG = "amibake:local:ssh-port"

#: Instances get addresses from a 127.N.0.0/16 block; 127.0.0.1 stays the cloud's own.
INSTANCE_NETWORK = ipaddress.ip_network("127.1.0.0/16")


def instance_network(pid: int | None = None) -> ipaddress.IPv4Network:
    """This process's block of instance addresses.

    Two local clouds on one machine (a test run next to ``amibake local serve``)
    must not hand out the same address: an instance would then answer on
    another's SSH port. Each process takes its own 127.N.0.0/16, N from its pid
    (1..250); the first cloud of a login session usually lands on a small N.
    """
    number = 1 + (os.getpid() if pid is None else pid) % 250
    return ipaddress.ip_network(f"127.{number}.0.0/16")


_active: LocalCloud | None = None
_active_lock = threading.Lock()


@lru_cache(maxsize=1)
def loopback_aliases_work() -> bool:
    """Can we bind addresses of 127.0.0.0/8 other than 127.0.0.1? (Linux: yes; macOS: no.)"""
    probe = str(next(INSTANCE_NETWORK.hosts()))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((probe, 0))
        except OSError:
            return False
    return True


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class LocalCloud:
    """The embedded EC2 emulation. ``start()`` / ``stop()``, or use it as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssh_port: int = DEFAULT_SSH_PORT,
        latency: str | LatencyProfile = DEFAULT_PROFILE,
        data_dir: Path | str | None = None,
        isolate: bool | None = None,
        faults: FaultPlan | None = None,
        addressing: str = "auto",
    ) -> None:
        if not _is_loopback(host):
            raise UsageError(f"the local cloud listens on loopback only, not {host}")
        if not 0 <= port <= 65535:
            raise UsageError(f"port {port} is not a TCP port (0-65535)")
        if addressing not in ("auto", "address", "port"):
            raise UsageError(f"addressing must be auto, address or port, not {addressing!r}")
        if not 1 <= ssh_port <= 65535:
            raise UsageError(f"SSH port {ssh_port} is not a TCP port (1-65535)")
        self.host = host
        self.requested_port = port
        self.ssh_port = ssh_port
        self.latency = get_profile(latency) if isinstance(latency, str) else latency
        self.data_dir = Path(data_dir) if data_dir is not None else paths.local_cloud_dir()
        self.isolate = isolate
        #: "address": each instance its own 127.1.x.y on ssh_port; "port": all on 127.0.0.1,
        #: each on its own port (published in the SSH_PORT_TAG tag); "auto": address if possible.
        self.addressing = addressing
        self.faults = faults or FaultPlan()
        self.moto_lock = threading.RLock()
        self.account_id = DEFAULT_ACCOUNT
        self._instances: dict[str, LocalInstance] = {}
        self._addresses_in_use: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.port = 0
        self.per_instance_addresses = True
        self.content: ContentStore
        self.registry: Registry

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def isolated(self) -> bool:
        if self.isolate is False:
            return False
        return find_bubblewrap() is not None

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as error:
            reason = error.strerror or str(error)
            raise LocalCloudError(
                f"data directory {self.data_dir} is not writable: {reason}"
            ) from None
        # Instances do not outlive the cloud; their leftovers from a crash go now.
        shutil.rmtree(self.data_dir / "instances", ignore_errors=True)
        self.content = ContentStore(self.data_dir / "snapshots")
        self.registry = Registry(self.data_dir / "registry.json")

    def start(self) -> LocalCloud:
        global _active
        if self.isolate is True and find_bubblewrap() is None:
            raise LocalCloudError("isolation requested but bubblewrap (bwrap) is not usable here")
        with _active_lock:
            if _active is not None:
                raise LocalCloudError(
                    f"a local cloud already runs in this process at {_active.endpoint_url}"
                )
            _active = self
        try:
            self._start()
        except BaseException:
            with _active_lock:
                _active = None
            self._teardown()
            raise
        if not self.isolated:
            log.warning(
                "bubblewrap not available: commands on local instances run as plain child "
                "processes, confined only by their working directory (NOT isolated)"
            )
        return self

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from core.local import moto_ext
        from core.local.gateway import Gateway

        self._prepare_data_dir()
        if self.addressing == "auto":
            self.per_instance_addresses = loopback_aliases_work()
        elif self.addressing == "address" and not loopback_aliases_work():
            raise LocalCloudError("this system gives only 127.0.0.1: use addressing 'port'")
        else:
            self.per_instance_addresses = self.addressing == "address"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run_loop() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._loop_thread = threading.Thread(target=run_loop, name="local-cloud-loop", daemon=True)
        self._loop_thread.start()
        ready.wait()
        moto_ext.install(self)

        def backend_app(service: str) -> Any:
            # Exceptions reach the Gateway, which logs them and answers InternalError
            # the way AWS does, instead of Flask's HTML error page.
            flask_app = create_backend_app(service)
            flask_app.config["PROPAGATE_EXCEPTIONS"] = True
            return flask_app

        app = Gateway(self, DomainDispatcherApplication(backend_app))
        self.gateway: Gateway | None = app
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.requested_port and not _port_free(self.host, self.requested_port):
            # Checked first: werkzeug would print its own advice and exit the process.
            raise LocalCloudError(
                f"port {self.requested_port} on {self.host} is already in use "
                "(choose another with --port, or 0 for a free one)"
            )
        try:
            self._http = make_server(
                self.host,
                self.requested_port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LocalCloudError(
                    f"port {self.requested_port} on {self.host} is already in use "
                    "(choose another with --port, or 0 for a free one)"
                ) from None
            raise LocalCloudError(
                f"cannot listen on {self.host}:{self.requested_port}: {error.strerror}"
            ) from None
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="local-cloud-http", daemon=True
        )
        self._http_thread.start()

    def stop(self) -> None:
        global _active
        self._teardown()
        with _active_lock:
            if _active is self:
                _active = None

    def _teardown(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._loop is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._halt_everything(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            self._loop.close()
        self._loop = None
        from core.local import moto_ext

        if moto_ext._runtime is self:
            moto_ext.uninstall()
        for instance in self._instances.values():
            instance.destroy()
        self._instances.clear()
        self._addresses_in_use.clear()

    async def _halt_everything(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(i.halt() for i in self._instances.values()), return_exceptions=True)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences for clients ----------------------------------------------------------

    def client_env(self, region: str = "us-east-1") -> dict[str, str]:
        """Environment that points the AWS CLI, boto3 and amibake at this cloud."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }

    def client(self, service: str = "ec2", region: str = "us-east-1", **config: Any) -> Any:
        """A boto3 client talking to this cloud (real HTTP, like any other client)."""
        import boto3
        from botocore.config import Config

        session: boto3.session.Session = boto3.session.Session(
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            region_name=region,
        )
        return session.client(
            service, endpoint_url=self.endpoint_url, config=Config(**config) if config else None
        )

    def set_faults(self, plan: FaultPlan) -> None:
        self.faults = plan

    def set_latency(self, profile: str | LatencyProfile) -> None:
        self.latency = get_profile(profile) if isinstance(profile, str) else profile

    def instance_ssh_endpoint(self, instance_id: str) -> tuple[str, int] | None:
        """(address, port) of a running instance's SSH server, or None while it has none."""
        instance = self._instances.get(instance_id)
        if instance is None or instance.ssh is None or instance.ssh_port is None:
            return None
        return instance.address, instance.ssh_port

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_url,
            "latency": self.latency.as_dict(),
            "ssh_port": self.ssh_port,
            "addressing": "per-instance-address"
            if self.per_instance_addresses
            else "per-instance-port",
            "isolated": self.isolated,
            "data_dir": str(self.data_dir),
            "instances": len(self._instances),
            "faults": self.faults.as_dict(),
            "faults_fired": self.faults.fired(),
            # calls answered NotFound by eventual consistency, per error code (issue 13)
            "consistency_answered": dict(gateway.consistency.answered)
            if (gateway := getattr(self, "gateway", None)) is not None
            else {},
        }

    # -- scheduling on the loop --------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        self._tasks.add(future)  # type: ignore[arg-type]

        def done(f: Any) -> None:
            self._tasks.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.error("local cloud task failed: %r", f.exception())

        future.add_done_callback(done)

    @contextlib.contextmanager
    def _moto(self) -> Iterator[None]:
        with self.moto_lock:
            yield

    def _backend(self, region: str) -> EC2Backend:
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account_id][region]

    # -- runtime hooks (called by moto_ext with moto_lock held) ----------------------------

    def catalog(self, region: str) -> Sequence[CatalogImage]:
        return catalog_for_region(region)

    def restore_region(self, backend: EC2Backend) -> None:
        from core.local.moto_ext import LocalAmi, restore_snapshot

        saved = self.registry.region(backend.account_id, backend.region_name)
        snapshots = {}
        for record in saved["snapshots"]:
            snapshot = restore_snapshot(
                backend, record["id"], record["size"], record["description"], record.get("from_ami")
            )
            if record.get("tags"):
                snapshot.add_tags(record["tags"])
            snapshots[record["id"]] = snapshot
        for record in saved["images"]:
            snapshot = snapshots.get(record.get("snapshot_id") or "")
            image = LocalAmi(
                backend,
                record["id"],
                name=record["name"],
                description=record.get("description"),
                owner_id=backend.account_id,
                owner_alias=None,
                architecture=record["architecture"],
                virtualization_type=record.get("virtualization_type", "hvm"),
                root_device_type=record.get("root_device_type", "ebs"),
                root_device_name=record.get("root_device_name", "/dev/xvda"),
                creation_date=datetime.fromisoformat(record["creation_date"]),
                platform=record.get("platform"),
                platform_details=record.get("platform_details", "Linux/UNIX"),
                usage_operation=record.get("usage_operation", "RunInstances"),
                boot_mode=record.get("boot_mode"),
                snapshot=snapshot,
                volume_size=record.get("volume_size", 8),
                default_user=record.get("default_user"),
                source_instance_id=record.get("source_instance_id"),
            )
            image.launch_permissions = list(record.get("launch_permissions", []))
            backend.amis[image.id] = image
            if record.get("tags"):
                image.add_tags(record["tags"])

    def registry_changed(self, backend: EC2Backend) -> None:
        """Persist the account's own finished images and snapshots of this region."""
        account = backend.account_id
        images = []
        for image in backend.amis.values():
            if image.owner_id != account or image.state != "available":
                continue
            snapshot = image.ebs_snapshot
            images.append(
                {
                    "id": image.id,
                    "name": image.name,
                    "description": image.description,
                    "architecture": image.architecture,
                    "virtualization_type": image.virtualization_type,
                    "root_device_type": image.root_device_type,
                    "root_device_name": image.root_device_name,
                    "creation_date": image.creation_date.isoformat(),
                    "platform": image.platform,
                    "platform_details": getattr(image, "platform_details", "Linux/UNIX"),
                    "usage_operation": getattr(image, "usage_operation", "RunInstances"),
                    "boot_mode": image.boot_mode,
                    "volume_size": getattr(image, "volume_size", 8),
                    "default_user": getattr(image, "default_user", None),
                    "source_instance_id": image.instance_id,
                    "snapshot_id": snapshot.id if snapshot is not None else None,
                    "launch_permissions": list(image.launch_permissions),
                    "tags": {t["key"]: t["value"] for t in image.get_tags()},
                }
            )
        snapshots = [
            {
                "id": snapshot.id,
                "size": snapshot.volume.size,
                "description": snapshot.description,
                "from_ami": snapshot.from_ami,
                "tags": {t["key"]: t["value"] for t in snapshot.get_tags()},
            }
            for snapshot in backend.snapshots.values()
            # Catalogue snapshots belong to their publishers; only ours are persisted.
            if snapshot.owner_id == account and snapshot.status == "completed"
        ]
        self.registry.replace_region(account, backend.region_name, images, snapshots)

    def _allocate_address(self) -> str:
        if not self.per_instance_addresses:
            return "127.0.0.1"
        for host in instance_network().hosts():
            address = str(host)
            if address.endswith((".0", ".255")) or address in self._addresses_in_use:
                continue
            if not _port_free(address, self.ssh_port):
                # Another local cloud (or anything else) holds this address's SSH port.
                continue
            self._addresses_in_use.add(address)
            return address
        raise LocalCloudError("the local cloud ran out of loopback addresses")

    def instances_launched(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        from core.local.instances import LocalInstance

        region = backend.region_name
        for instance in instances:
            image = backend.amis.get(instance.image_id)
            username = getattr(image, "default_user", None) or "ec2-user"
            keys = []
            if instance.key_name and instance.key_name in backend.key_pairs:
                keys.append(backend.key_pairs[instance.key_name].public_key.strip())
            address = self._allocate_address()
            self._assign_address(instance, address)
            instance.amibake_address = address
            instance.amibake_username = username
            local = LocalInstance(
                instance_id=instance.id,
                region=region,
                address=address,
                username=username,
                directory=self.data_dir / "instances" / region / instance.id,
                authorized_keys=keys,
                isolate=self.isolate,
            )
            self._instances[instance.id] = local
            _apply_user_data(local, instance)
            snapshot = getattr(image, "ebs_snapshot", None)
            snapshot_id = snapshot.id if snapshot is not None else None
            local.generation += 1
            self._spawn(self._boot(local, local.generation, region, snapshot_id))

    @staticmethod
    def _assign_address(instance: Instance, address: str) -> None:
        nic = instance.nics[0]
        nic.private_ip_address = address
        if nic.public_ip is not None or instance.associate_public_ip is not False:
            nic.public_ip = address

    def instances_starting(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        for instance in instances:
            local = self._instances.get(instance.id)
            if local is None:
                continue
            self._assign_address(instance, local.address)
            local.generation += 1
            local.booted_at = None
            self._spawn(self._boot(local, local.generation, backend.region_name, None))

    def instances_stopping(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        for instance in instances:
            local = self._instances.get(instance.id)
            if local is None:
                continue
            local.generation += 1
            self._spawn(self._power_off(local, local.generation, backend.region_name, "stopped"))

    def instances_terminating(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        for instance in instances:
            local = self._instances.get(instance.id)
            if local is None:
                continue
            local.generation += 1
            self._spawn(self._power_off(local, local.generation, backend.region_name, "terminated"))

    def image_created(self, backend: EC2Backend, image: LocalAmi, instance: Instance) -> None:
        local = self._instances.get(instance.id)
        snapshot_id = image.ebs_snapshot.id if image.ebs_snapshot is not None else None
        self._spawn(self._capture(backend.region_name, image.id, snapshot_id, local))

    def image_copied(
        self, backend: EC2Backend, image: LocalAmi, source: Ami, source_region: str
    ) -> None:
        source_snapshot = source.ebs_snapshot.id if source.ebs_snapshot is not None else None
        target_snapshot = image.ebs_snapshot.id if image.ebs_snapshot is not None else None
        self._spawn(
            self._copy(
                backend.region_name, image.id, target_snapshot, source_region, source_snapshot
            )
        )

    def snapshot_deleted(self, backend: EC2Backend, snapshot_id: str) -> None:
        self.content.delete(backend.region_name, snapshot_id)
        self.registry_changed(backend)

    def console_output(self, instance: Instance) -> str | None:
        local = self._instances.get(instance.id)
        if local is None or instance.state not in ("running", "stopping", "stopped"):
            return None
        return local.console_output()

    # -- transitions (on the loop) -----------------------------------------------------------

    def _current(self, local: LocalInstance, generation: int) -> bool:
        return local.generation == generation and local.instance_id in self._instances

    def _set_state(self, region: str, instance_id: str, name: str, code: int) -> None:
        instance = self._backend(region).get_instance(instance_id)
        instance._state.name, instance._state.code = name, code

    async def _boot(
        self, local: LocalInstance, generation: int, region: str, snapshot_id: str | None
    ) -> None:
        started = asyncio.get_running_loop().time()
        if snapshot_id is not None:
            # First boot from an image we built: its files come with it.
            await asyncio.to_thread(
                self.content.restore, region, snapshot_id, local.persistent_dirs()
            )
        else:
            await asyncio.to_thread(local.sandbox.clear_tmp)
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(0.0, self.latency.boot - elapsed))
        with self._moto():
            if not self._current(local, generation):
                return
            self._set_state(region, local.instance_id, "running", 16)
            local.mark_booted()
        await asyncio.sleep(self.latency.ssh_ready)
        if not self._current(local, generation):
            return
        if local.username is None:
            return
        port = await local.start_ssh(
            self.ssh_port,
            # Looked up per connection: the plan may be replaced while the instance runs.
            lambda: self.faults.ssh_drop_after(),
            fallback_port=not self.per_instance_addresses,
            wrong_host_key=self.faults.ssh_wrong_host_key(),
        )
        if not self._current(local, generation):
            await local.stop_ssh()
            return
        if port != self.ssh_port:
            with self._moto():
                instance = self._backend(region).get_instance(local.instance_id)
                instance.add_tag(SSH_PORT_TAG, str(port))

    async def _power_off(
        self, local: LocalInstance, generation: int, region: str, final: str
    ) -> None:
        await local.halt()
        await asyncio.sleep(self.latency.stop if final == "stopped" else self.latency.terminate)
        with self._moto():
            if not self._current(local, generation):
                return
            code = 80 if final == "stopped" else 48
            self._set_state(region, local.instance_id, final, code)
            if final == "terminated":
                self._instances.pop(local.instance_id, None)
                self._addresses_in_use.discard(local.address)
        if final == "terminated":
            await asyncio.to_thread(local.destroy)

    async def _capture(
        self, region: str, image_id: str, snapshot_id: str | None, local: LocalInstance | None
    ) -> None:
        started = asyncio.get_running_loop().time()
        if snapshot_id is not None and local is not None:
            await asyncio.to_thread(
                self.content.capture, region, snapshot_id, local.persistent_dirs()
            )
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(0.0, self.latency.image - elapsed))
        self._finish_image(region, image_id, snapshot_id)

    async def _copy(
        self,
        region: str,
        image_id: str,
        snapshot_id: str | None,
        source_region: str,
        source_snapshot: str | None,
    ) -> None:
        await asyncio.sleep(self.latency.copy)
        if snapshot_id is not None and source_snapshot is not None:
            await asyncio.to_thread(
                self.content.copy, source_region, source_snapshot, region, snapshot_id
            )
        self._finish_image(region, image_id, snapshot_id)

    def _finish_image(self, region: str, image_id: str, snapshot_id: str | None) -> None:
        with self._moto():
            backend = self._backend(region)
            snapshot = backend.snapshots.get(snapshot_id or "")
            if snapshot is None and snapshot_id is not None:
                # Deleted while pending: drop what we captured for it.
                self.content.delete(region, snapshot_id)
            elif snapshot is not None:
                snapshot.status = "completed"
            image = backend.amis.get(image_id)
            if image is not None and image.state == "pending":
                image.state = "available"
            self.registry_changed(backend)


def _apply_user_data(local: Any, instance: Instance) -> None:
    """The SSH parts of a ``#cloud-config`` user data (password, authorized keys), as
    cloud-init would apply them at first boot (core.local.sshd.apply_cloud_config)."""
    import base64

    from core.local.sshd import apply_cloud_config

    encoded = getattr(instance, "user_data", None)
    if not encoded:
        return
    try:
        raw = encoded.as_bytes() if hasattr(encoded, "as_bytes") else str(encoded).encode()
        text = base64.b64decode(raw).decode("utf-8", "replace")
    except (AttributeError, ValueError):
        return
    apply_cloud_config(local.directory, local.username, local.authorized_keys_file, text)


def running_cloud() -> LocalCloud | None:
    """The local cloud running in this process, if any."""
    return _active
