"""The local cloud: moto's EC2 API on loopback HTTP plus real, SSH-reachable instances.

One call starts it in-process::

    with LocalCloud(latency="fast") as cloud:
        ec2 = boto3.client("ec2", endpoint_url=cloud.endpoint_url, region_name="us-east-1", ...)

Threads: werkzeug serves HTTP (a thread per request) into moto, under
``moto_lock``; one asyncio loop thread owns the instances' SSH servers and the
timers that move states along (pending -> running, image pending -> available
...). Hooks called by :mod:`amibake.core.local.moto_ext` run in request threads with the
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
import shlex
import shutil
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.core import paths
from amibake.core.errors import LocalCloudError, UsageError
from amibake.core.local.account import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT
from amibake.core.local.account import FAKE_ACCESS_KEY as FAKE_ACCESS_KEY
from amibake.core.local.account import FAKE_SECRET_KEY as FAKE_SECRET_KEY
from amibake.core.local.content import ContentStore, Registry
from amibake.core.local.faults import FaultPlan
from amibake.core.local.images import CatalogImage, catalog_for_region
from amibake.core.local.latency import DEFAULT_PROFILE, LatencyProfile, get_profile
from amibake.core.local.sandbox import find_bubblewrap

if TYPE_CHECKING:
    import boto3
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.instances import Instance

    from amibake.core.local.instances import LocalInstance
    from amibake.core.local.moto_ext import LocalAmi

log = logging.getLogger(__name__)

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
    return ipaddress.IPv4Network(f"127.{number}.0.0/16")


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
        overlay: bool | None = None,
        instance_network: bool = False,
        enforce_security_groups: bool = False,
        default_vpc: bool = True,
        fingerprint_delay: float = 0.0,
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
        #: each instance its own overlay root (amibake.core.local.rootfs): None = when available,
        #: True = required, False = the plain sandbox
        self.overlay = overlay
        #: instances share the host's network (apt reaches the host's mirrors); off by default
        self.instance_network = instance_network
        self.overlay_mode = False
        #: why instances have no overlay root (one line), when they have none
        self.overlay_reason = ""
        #: "address": each instance its own 127.1.x.y on ssh_port; "port": all on 127.0.0.1,
        #: each on its own port (published in the SSH_PORT_TAG tag); "auto": address if possible.
        self.addressing = addressing
        self.faults = faults or FaultPlan()
        #: issue 10 realism: the instances' sshd refuses sources their security groups do not
        #: admit; no default VPC in any region; the console shows the SSH host key
        #: fingerprints this long after boot (GetConsoleOutput without Latest shows the
        #: output of the boot transition only, as on AWS); images whose sshd refuses ed25519
        #: user keys (by image id or name pattern)
        self.enforce_security_groups = enforce_security_groups
        self.default_vpc = default_vpc
        self.fingerprint_delay = fingerprint_delay
        self.refuse_ed25519_images: set[str] = set()
        #: IAM policies attach to identities: a request signed with an access key id listed
        #: here is checked against that key's identity policy (amibake.core.iam_policy.evaluate)...
        self.identity_policies: dict[str, dict[str, Any]] = {}
        #: ... and a request signed with any other key against this one; None: allowed (an
        #: administrator). A policy-bound build next to an unbound test client: bind the
        #: build's key in identity_policies and leave this None.
        self.iam_policy: dict[str, Any] | None = None
        self.moto_lock = threading.RLock()
        self.account_id = DEFAULT_ACCOUNT
        self._instances: dict[str, LocalInstance] = {}
        self._addresses_in_use: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self._tasks: set[Future[Any]] = set()
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
        return self.overlay_mode or find_bubblewrap() is not None

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

    def _choose_overlay(self) -> None:
        from amibake.core.local.rootfs import overlay_support

        if self.overlay is False or self.isolate is False:
            self.overlay_mode = False
            self.overlay_reason = "overlay roots are turned off"
            return
        support = overlay_support()
        if self.overlay is True and not support.available:
            raise LocalCloudError(f"overlay roots requested but not available: {support.reason}")
        self.overlay_mode = support.available
        self.overlay_reason = support.reason

    @property
    def instance_mode(self) -> str:
        """One line for banners: what a local instance is here, and why when it is the
        fallback sandbox."""
        network = "host network" if self.instance_network else "no network"
        if self.overlay_mode:
            return f"overlay root per instance (sudo, apt, systemctl enable; {network})"
        kind = "bubblewrap sandbox" if self.isolated else "plain processes (NOT isolated)"
        return f"{kind}, home and /opt only; no overlay root: {self.overlay_reason}"

    def start(self) -> LocalCloud:
        global _active
        self._choose_overlay()
        if self.isolate is True and not self.overlay_mode and find_bubblewrap() is None:
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

        from amibake.core.local import moto_ext
        from amibake.core.local.gateway import Gateway

        self._prepare_data_dir()
        if self.addressing == "auto":
            self.per_instance_addresses = loopback_aliases_work()
        elif self.addressing == "address" and not loopback_aliases_work():
            raise LocalCloudError("this system gives only 127.0.0.1: use addressing 'port'")
        else:
            self.per_instance_addresses = self.addressing == "address"
        self._loop = asyncio.new_event_loop()
        # Instances' file work (boot copies, captures, key installs) runs in worker threads:
        # the default executor's min(32, cores + 4) would make 20 builds on 2 cores queue.
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="local-cloud")
        self._loop.set_default_executor(self._executor)
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
            flask_app = create_backend_app(service)  # type: ignore[arg-type]  # moto types it as a Literal of its services
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
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._loop = None
        from amibake.core.local import moto_ext

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

    def client(
        self,
        service: str = "ec2",
        region: str = "us-east-1",
        *,
        access_key_id: str = FAKE_ACCESS_KEY,
        **config: Any,
    ) -> Any:
        """A boto3 client talking to this cloud (real HTTP, like any other client), signing
        with ``access_key_id`` (the identity whose policy applies: :meth:`policy_for`)."""
        import boto3
        from botocore.config import Config

        session: boto3.session.Session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=FAKE_SECRET_KEY,
            region_name=region,
        )
        return session.client(
            service, endpoint_url=self.endpoint_url, config=Config(**config) if config else None
        )

    def policy_for(self, access_key_id: str | None) -> dict[str, Any] | None:
        """The identity policy of the key that signed a request: its own in
        ``identity_policies``, else ``iam_policy``; None: every call is allowed."""
        if access_key_id is not None and access_key_id in self.identity_policies:
            return self.identity_policies[access_key_id]
        return self.iam_policy

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
            "overlay": self.overlay_mode,
            "instance_mode": self.instance_mode,
            "instance_network": self.instance_network,
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
        self._tasks.add(future)

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

    def set_default_vpc(self, present: bool, region: str | None = None) -> None:
        """With ``present`` False a region has no default VPC (its VPC stays, but is not
        the default: describe ``isDefault=true`` finds none), as in accounts that deleted it;
        ``region`` None: every region, now and created later."""
        from moto.ec2.models import ec2_backends

        if region is None:
            self.default_vpc = present
        with self._moto():
            backends = ec2_backends[self.account_id]
            for name in [region] if region else list(backends.keys()):
                vpc = getattr(backends[name], "default_vpc", None)
                if vpc is not None:
                    vpc.is_default = present

    def restore_region(self, backend: EC2Backend) -> None:
        from amibake.core.local.moto_ext import LocalAmi, restore_snapshot

        if not self.default_vpc and getattr(backend, "default_vpc", None) is not None:
            backend.default_vpc.is_default = False

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
            root_snapshot = snapshots.get(record.get("snapshot_id") or "")
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
                snapshot=root_snapshot,
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
        """A private address from the lower half of this process's block (its public twin,
        :func:`public_address_for`, is in the upper half)."""
        if not self.per_instance_addresses:
            return "127.0.0.1"
        network = instance_network()
        private_block = next(network.subnets(new_prefix=network.prefixlen + 1))
        for host in private_block.hosts():
            address = str(host)
            if address.endswith((".0", ".255")) or address in self._addresses_in_use:
                continue
            if not (
                _port_free(address, self.ssh_port)
                and _port_free(public_address_for(address), self.ssh_port)
            ):
                # Another local cloud (or anything else) holds this address's SSH port.
                continue
            self._addresses_in_use.add(address)
            return address
        raise LocalCloudError("the local cloud ran out of loopback addresses")

    def instances_launched(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        from amibake.core.local.instances import LocalInstance

        region = backend.region_name
        for instance in instances:
            image = backend.amis.get(instance.image_id)
            username = getattr(image, "default_user", None) or "ec2-user"
            keys = []
            if instance.key_name and instance.key_name in backend.key_pairs:
                keys.append(backend.key_pairs[instance.key_name].public_key.strip())
            address = self._allocate_address()
            public = public_address_for(address)
            self._assign_address(instance, address, public)
            instance.amibake_address = address  # type: ignore[attr-defined]  # amibake's mark on moto's Instance
            instance.amibake_public_address = public  # type: ignore[attr-defined]  # amibake's mark on moto's Instance
            instance.amibake_username = username  # type: ignore[attr-defined]  # amibake's mark on moto's Instance
            local = LocalInstance(
                instance_id=instance.id,
                region=region,
                address=address,
                username=username,
                directory=self.data_dir / "instances" / region / instance.id,
                authorized_keys=keys,
                isolate=self.isolate,
                overlay=self.overlay_mode,
                image_layer=self.content.layer(region, _snapshot_of(image)),
                network=self.instance_network,
            )
            local.public_address = public
            self._instances[instance.id] = local
            local.admit = self._admit_for(region, instance.id)
            local.refuse_ed25519 = self._refuses_ed25519(image)
            late = self.latency.user_data > 0
            if local.root is None and not late:
                _apply_user_data(local, instance)
            elif not late:  # cloud-init, at first boot, into the instance's own root
                local.pending_user_data = instance
            # cloud-init's later stages (_cloud_init): a late user data, then its #! script
            local.cloud_init_pending = instance
            snapshot = getattr(image, "ebs_snapshot", None)
            snapshot_id = snapshot.id if snapshot is not None else None
            local.generation += 1
            self._spawn(self._boot(local, local.generation, region, snapshot_id))

    @staticmethod
    def _assign_address(instance: Instance, address: str, public: str) -> None:
        """The private address, and the public one unless the instance has none (as on
        EC2: associate_public_ip_address false, or a subnet that maps none)."""
        nic = instance.nics[0]
        nic.private_ip_address = address
        if nic.public_ip is not None or instance.associate_public_ip is not False:
            nic.public_ip = public

    def instances_starting(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        for instance in instances:
            local = self._instances.get(instance.id)
            if local is None:
                continue
            self._assign_address(instance, local.address, local.public_address)
            local.generation += 1
            local.booted_at = None
            self._spawn(self._boot(local, local.generation, backend.region_name, None))

    def instances_rebooting(self, backend: EC2Backend, instances: Sequence[Instance]) -> None:
        """RebootInstances: SSH drops, processes die, the instance comes back with its files."""
        for instance in instances:
            local = self._instances.get(instance.id)
            if local is None:
                continue
            local.generation += 1
            self._spawn(self._reboot(local, local.generation, backend.region_name))

    async def _reboot(self, local: LocalInstance, generation: int, region: str) -> None:
        await local.halt()
        if not self._current(local, generation):
            return
        local.booted_at = None
        await self._boot(local, generation, region, None)

    async def _watch_halt(self, local: LocalInstance, generation: int, region: str) -> None:
        """A ``reboot`` (or ``shutdown -r``, ``poweroff``) inside the instance: as on EC2 the
        instance comes back with the same files (a guest power off is a reboot here)."""
        root = local.root
        if root is None:
            return
        # It waits for as long as the instance runs: a thread of its own, never one of the
        # loop's executor (one per running instance would exhaust it and stall every boot).
        asked = await in_own_thread(root.wait_halt_request)
        if not asked or not self._current(local, generation):
            return
        local.generation += 1
        await self._reboot(local, local.generation, region)

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

    def console_output(self, instance: Instance, latest: bool = False) -> str | None:
        """The console as GetConsoleOutput shows it: without ``latest`` the output buffered at
        the boot transition, which has no host key fingerprints when they come later
        (``fingerprint_delay``); with it, the output so far (AWS: Nitro instances only)."""
        local = self._instances.get(instance.id)
        if local is None or instance.state not in ("running", "stopping", "stopped"):
            return None
        text = local.console_output()
        if text is None or local.booted_at is None or self.fingerprint_delay <= 0:
            return text
        from datetime import UTC

        elapsed = (datetime.now(UTC) - local.booted_at).total_seconds()
        if latest and elapsed >= self.fingerprint_delay:
            return text
        return text.split("-----BEGIN SSH HOST KEY", 1)[0]

    # -- issue 10: security groups and old sshds ----------------------------------------------

    def _admit_for(self, region: str, instance_id: str) -> Any:
        def admit(source: str, _port: int) -> bool:
            # the port the groups speak of is the cloud's SSH port (a per-instance fallback
            # port stands for it)
            return self.admits(region, instance_id, source, self.ssh_port)

        return admit

    def admits(self, region: str, instance_id: str, source: str, port: int) -> bool:
        """Do the instance's security groups admit TCP from ``source`` to ``port``? Always
        yes unless ``enforce_security_groups``."""
        if not self.enforce_security_groups:
            return True
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        with self._moto():
            backend = self._backend(region)
            try:
                instance = backend.get_instance(instance_id)
            except Exception:
                return False
            groups = {g.id: g for g in instance.security_groups}
            for nic in getattr(instance, "nics", {}).values():
                groups.update({g.id: g for g in nic.group_set})
            for group in groups.values():
                for rule in group.ingress_rules:
                    if _rule_admits(backend, rule, address, port, self._instances):
                        return True
        return False

    def _refuses_ed25519(self, image: Any) -> bool:
        import fnmatch

        if image is None:
            return False
        name = getattr(image, "name", "") or ""
        return any(
            image.id == wanted or fnmatch.fnmatchcase(name, wanted)
            for wanted in self.refuse_ed25519_images
        )

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
        if local.root is not None:
            # The overlay root: a first boot copies the image's layer; /tmp and /run are fresh.
            await asyncio.to_thread(local.root.start)
            pending, local.pending_user_data = local.pending_user_data, None
            if pending is not None:
                await asyncio.to_thread(_apply_user_data, local, pending)
            self._spawn(self._watch_halt(local, generation, region))
            if snapshot_id is not None and self.content.layer(region, snapshot_id) is None:
                # an image captured without overlay roots: its home and /opt come along
                await asyncio.to_thread(
                    self.content.restore, region, snapshot_id, local.persistent_dirs()
                )
        elif snapshot_id is not None:
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
        self._spawn(self._cloud_init(local, generation))

    async def _cloud_init(self, local: LocalInstance, generation: int) -> None:
        """After sshd is up, as cloud-init's later stages on a first boot: with a
        ``latency.user_data`` delay the user data's users, keys and passwords appear only
        now; then a ``#!`` user data script runs inside the instance (once per instance)."""
        instance, local.cloud_init_pending = local.cloud_init_pending, None
        if instance is None:
            return
        if self.latency.user_data > 0:
            await asyncio.sleep(self.latency.user_data)
            if not self._current(local, generation):
                return
            await asyncio.to_thread(_apply_user_data, local, instance)
        script = _user_data_text(instance)
        if script is None or not script.startswith("#!") or not self._current(local, generation):
            return
        interpreter = script[2:].splitlines()[0].strip() or "/bin/sh"
        # run by content (the #! line is a comment to sh, bash and python): in every sandbox
        # mode the same command line works without a file of its own
        process = await local.sandbox.start_process(f"{interpreter} -c {shlex.quote(script)}")
        output, _ = await process.communicate()
        local.sandbox.release(process)
        log_file = local.directory / "cloud-init-output.log"
        await asyncio.to_thread(log_file.write_bytes, output or b"")
        local.user_data_status = process.returncode

    async def _power_off(
        self, local: LocalInstance, generation: int, region: str, final: str
    ) -> None:
        # the timer starts with the call, not after the shutdown work: on time, as the profile says
        started = asyncio.get_running_loop().time()
        await local.halt()
        took = asyncio.get_running_loop().time() - started
        latency = self.latency.stop if final == "stopped" else self.latency.terminate
        await asyncio.sleep(max(0.0, latency - took))
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
        if snapshot_id is not None and local is not None and local.root is not None:
            # everything the instance changed under / (its upper layer), image layers included
            await asyncio.to_thread(self.content.capture_layer, region, snapshot_id, local.root)
        elif snapshot_id is not None and local is not None:
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


def _rule_admits(
    backend: Any, rule: Any, address: Any, port: int, instances: dict[str, Any]
) -> bool:
    """One ingress rule of a security group against a TCP connection."""
    protocol = (rule.ip_protocol or "").lower()
    if protocol not in ("tcp", "6", "-1", "all"):
        return False
    if protocol not in ("-1", "all") and not (
        rule.from_port is not None and rule.from_port <= port <= rule.to_port
    ):
        return False
    block = rule.ip_range.get("CidrIp") or rule.ip_range.get("CidrIpv6")
    if block:
        try:
            return address in ipaddress.ip_network(block, strict=False)
        except ValueError:
            return False
    source_group = rule.source_group.get("GroupId")
    if source_group:
        # a group as the source: the addresses of the instances in it
        for local in instances.values():
            try:
                other = backend.get_instance(local.instance_id)
            except Exception:
                continue
            if str(address) in (local.address, local.public_address) and any(
                g.id == source_group for g in other.security_groups
            ):
                return True
    return False


def _user_data_text(instance: Instance) -> str | None:
    """The instance's user data as text (None: none, or not decodable)."""
    import base64

    encoded = getattr(instance, "user_data", None)
    if not encoded:
        return None
    try:
        raw = encoded.as_bytes() if hasattr(encoded, "as_bytes") else str(encoded).encode()
        return base64.b64decode(raw).decode("utf-8", "replace")
    except (AttributeError, ValueError):
        return None


def _apply_user_data(local: Any, instance: Instance) -> None:
    """The SSH parts of a ``#cloud-config`` user data (password, authorized keys), as
    cloud-init would apply them at first boot (amibake.core.local.sshd.apply_cloud_config)."""
    import base64

    from amibake.core.local.sshd import apply_cloud_config

    encoded = getattr(instance, "user_data", None)
    if not encoded:
        return
    try:
        raw = encoded.as_bytes() if hasattr(encoded, "as_bytes") else str(encoded).encode()
        text = base64.b64decode(raw).decode("utf-8", "replace")
    except (AttributeError, ValueError):
        return
    apply_cloud_config(local.directory, local.username, local.authorized_keys_file, text)


def public_address_for(private: str) -> str:
    """An instance's public address: its private one moved to the upper half of the block
    (127.N.x.y -> 127.N.x+128.y); 127.0.0.1 (one address for all) stays as it is."""
    if private == "127.0.0.1":
        return private
    network = instance_network()
    address = ipaddress.ip_address(private)
    if address not in network:
        return private
    half = network.num_addresses // 2
    return str(address + half) if int(address) - int(network.network_address) < half else private


def _snapshot_of(image: Any) -> str | None:
    snapshot = getattr(image, "ebs_snapshot", None)
    return snapshot.id if snapshot is not None else None


def running_cloud() -> LocalCloud | None:
    """The local cloud running in this process, if any."""
    return _active


async def in_own_thread(function: Callable[[], Any]) -> Any:
    """``function()`` in a daemon thread of its own, for a blocking wait of unbounded length."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return  # the waiter was cancelled
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = function(), None
        except BaseException as caught:
            result, error = None, caught
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="local-cloud-wait", daemon=True).start()
    return await future
