"""What the local cloud keeps on disk: image contents and its registry of built images.

* Snapshot contents: CreateImage captures an instance's persistent directories
  into ``snapshots/<region>/<snapshot-id>.tar``; an instance launched from the
  image starts with them; CopyImage copies the file; DeleteSnapshot removes it.
  Contents belong to snapshots, not AMIs, exactly as on EBS.
* Overlay mode (:mod:`amibake.core.local.rootfs`): CreateImage captures the instance's whole upper
  layer (everything it changed under ``/``) into ``snapshots/<region>/<snapshot-id>.layer/``;
  an instance launched from the image starts with a copy of it as its own upper layer.
* The registry (``registry.json``): the images and snapshots the account built
  itself, so they survive a restart of the local cloud. The catalogue of public
  images is generated, never stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REGISTRY_VERSION = 1


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ContentStore:
    """Snapshot contents as tarballs of guest paths (``home/ubuntu/...``, ``opt/...``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, region: str, snapshot_id: str) -> Path:
        return self.root / region / f"{snapshot_id}.tar"

    def has(self, region: str, snapshot_id: str) -> bool:
        path = self.path(region, snapshot_id)
        return path.exists() or self.layer(region, snapshot_id) is not None

    def layer_path(self, region: str, snapshot_id: str) -> Path:
        return self.root / region / f"{snapshot_id}.layer"

    def layer(self, region: str, snapshot_id: str | None) -> Path | None:
        """The snapshot's overlay layer (an image captured in overlay mode), if it has one."""
        if snapshot_id is None:
            return None
        path = self.layer_path(region, snapshot_id)
        return path if path.is_dir() else None

    def capture_layer(self, region: str, snapshot_id: str, root: Any) -> Path:
        """Copy an instance root's upper layer (a
        :class:`amibake.core.local.rootfs.InstanceRoot`)."""
        target = self.layer_path(region, snapshot_id)
        shutil.rmtree(target, ignore_errors=True)
        result: Path = root.capture(target)
        return result

    def capture(self, region: str, snapshot_id: str, dirs: Iterable[tuple[str, Path]]) -> Path:
        """Write the given (guest dir, host dir) pairs into the snapshot's tarball."""
        target = self.path(region, snapshot_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{snapshot_id}.")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w") as archive:
                for guest_dir, host_dir in dirs:
                    if host_dir.is_dir():
                        archive.add(host_dir, arcname=guest_dir.strip("/"), recursive=True)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def restore(self, region: str, snapshot_id: str, dirs: Iterable[tuple[str, Path]]) -> bool:
        """Unpack a snapshot's contents into the given (guest dir, host dir) pairs.

        Returns False when the snapshot has no recorded contents (catalogue images).
        """
        source = self.path(region, snapshot_id)
        if not source.exists():
            return False
        with tempfile.TemporaryDirectory(dir=self.root) as staging:
            with tarfile.open(source) as archive:
                archive.extractall(staging, filter="data")
            for guest_dir, host_dir in dirs:
                unpacked = Path(staging) / guest_dir.strip("/")
                if unpacked.is_dir():
                    host_dir.mkdir(parents=True, exist_ok=True)
                    shutil.copytree(unpacked, host_dir, symlinks=True, dirs_exist_ok=True)
        return True

    def copy(self, source_region: str, source_id: str, region: str, snapshot_id: str) -> bool:
        layer = self.layer(source_region, source_id)
        if layer is not None:
            target = self.layer_path(region, snapshot_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            subprocess.run(
                ["cp", "-a", "--reflink=auto", str(layer), str(staging)],
                check=True,
                capture_output=True,
            )
            staging.rename(target)
            return True
        source = self.path(source_region, source_id)
        if not source.exists():
            return False
        target = self.path(region, snapshot_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return True

    def delete(self, region: str, snapshot_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(region, snapshot_id).unlink()
        shutil.rmtree(self.layer_path(region, snapshot_id), ignore_errors=True)


class Registry:
    """The account's own images and snapshots, per region, persisted as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._regions: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            # A registry we cannot read is kept aside, not overwritten, and we start empty.
            with contextlib.suppress(OSError):
                self.path.replace(self.path.with_suffix(".unreadable.json"))
            return
        if isinstance(data, dict) and data.get("version") == REGISTRY_VERSION:
            regions = data.get("regions", {})
            if isinstance(regions, dict):
                self._regions = regions

    def region(self, account_id: str, region: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            entry = self._regions.get(f"{account_id}/{region}", {})
            return {
                "images": list(entry.get("images", [])),
                "snapshots": list(entry.get("snapshots", [])),
            }

    def replace_region(
        self,
        account_id: str,
        region: str,
        images: list[dict[str, Any]],
        snapshots: list[dict[str, Any]],
    ) -> None:
        with self._lock:
            key = f"{account_id}/{region}"
            new = {"images": images, "snapshots": snapshots}
            if self._regions.get(key) == new:
                return
            if images or snapshots:
                self._regions[key] = new
            else:
                self._regions.pop(key, None)
            payload = {"version": REGISTRY_VERSION, "regions": self._regions}
            _atomic_write(self.path, json.dumps(payload, indent=1, sort_keys=True).encode())
