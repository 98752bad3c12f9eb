"""Benchmark: the seed template (``sudo apt-get update; sudo apt-get install -y nginx``) built for
real on the local cloud, with instances on the host's network (``--instance-network``).

Run with ``.venv/bin/python tests/bench/bench_seed_nginx.py``. It needs this machine's apt
mirrors to be reachable (the instances use the host's apt sources: a Debian host gives a
Debian userland whatever the AMI's name) and overlay roots (amibake.core.local.rootfs); without
either it says why and exits 0 (skipped). Never part of the default test run: it downloads packages.

It prints the build's wall time, the AMI's layer size, and checks that an instance launched
from the AMI has nginx installed (``dpkg -s nginx``) and enabled (``systemctl is-enabled``).

``--figures`` measures, offline (no network needed), what the README quotes for local
instances: boot to SSH, CreateImage time against the size of the upper layer, and the disk an
instance uses, with overlay roots and with the fallback sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from amibake.core.aws import Aws, Target  # noqa: E402
from amibake.core.engine.build import run_builds, select_builders  # noqa: E402
from amibake.core.engine.context import BuildOptions  # noqa: E402
from amibake.core.local import rootfs  # noqa: E402
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud  # noqa: E402
from amibake.core.templates import load  # noqa: E402

SEED = ROOT / "core" / "examples" / "seed.json"


def apt_mirrors() -> list[tuple[str, int]]:
    """(host, port) of the host's apt sources (sources.list and deb822 .sources files)."""
    found: list[tuple[str, int]] = []
    paths = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]
    paths += list(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in re.finditer(r"\b(https?)://([^/\s:]+)(?::(\d+))?", text):
            scheme, host, port = match.groups()
            entry = (host, int(port or (443 if scheme == "https" else 80)))
            if entry not in found:
                found.append(entry)
    return found


def why_not() -> str | None:
    """None when the benchmark can run, else why it cannot (one line)."""
    support = rootfs.overlay_support()
    if not support.available:
        return f"no overlay roots: {support.reason}"
    if os.environ.get("AMIBAKE_BENCH_OFFLINE"):
        return "AMIBAKE_BENCH_OFFLINE is set"
    mirrors = apt_mirrors()
    if not mirrors:
        return "this machine has no apt sources"
    for host, port in mirrors:
        try:
            with socket.create_connection((host, port), timeout=5):
                return None
        except OSError:
            continue
    return "no network: the apt mirrors " + ", ".join(h for h, _ in mirrors) + " are unreachable"


async def build_and_check(cloud: LocalCloud) -> int:
    spec = load(SEED)
    options = BuildOptions(
        target=Target(
            endpoint_url=cloud.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
        ),
        ssh_port=cloud.ssh_port,
    )
    aws = Aws(options.target)
    lines: list[str] = []

    def emit(event: object) -> None:
        for line in getattr(event, "lines", ()) or ():
            lines.append(line)

    started = time.monotonic()
    try:
        (result,) = await run_builds(spec, select_builders(spec), aws, options, emit)
    finally:
        aws.close()
    seconds = time.monotonic() - started
    if result.status != "succeeded":
        print(f"FAILED: the seed build {result.status}: {result.error}")
        print("\n".join(lines[-20:]))
        return 1
    ami = result.artifacts["us-east-1"]
    ec2 = cloud.client("ec2", "us-east-1")
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    layer = cloud.content.layer("us-east-1", snapshot)
    size = sum(p.lstat().st_size for p in layer.rglob("*") if p.is_file()) if layer else 0
    print(f"seed build: {seconds:.1f} s, AMI {ami}, image layer {size / 2**20:.1f} MiB")

    key = asyncssh.generate_private_key("ssh-ed25519")
    ec2.import_key_pair(KeyName="bench-seed", PublicKeyMaterial=key.export_public_key("openssh"))
    instance = ec2.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="bench-seed"
    )["Instances"][0]["InstanceId"]
    try:
        deadline = time.monotonic() + 60
        while True:
            described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0][
                "Instances"
            ][0]
            tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
            if described["State"]["Name"] == "running":
                try:
                    conn = await asyncssh.connect(
                        described["PublicIpAddress"],
                        port=int(tags.get("amibake:local:ssh-port", cloud.ssh_port)),
                        username="ubuntu",
                        client_keys=[key],
                        known_hosts=None,
                    )
                    break
                except (OSError, asyncssh.Error):
                    if time.monotonic() > deadline:
                        raise
            await asyncio.sleep(0.1)
        async with conn:
            check = await conn.run(
                "dpkg -s nginx | grep '^Status'; systemctl is-enabled nginx; nginx -v 2>&1"
            )
    finally:
        ec2.terminate_instances(InstanceIds=[instance])
    print(check.stdout, end="")
    if "Status: install ok installed" not in check.stdout:
        print("FAILED: nginx is not installed in an instance launched from the AMI")
        return 1
    print("ok: nginx is installed in an instance launched from the AMI")
    return 0


async def _ssh(cloud: LocalCloud, ec2: object, instance: str, key: asyncssh.SSHKey) -> object:
    while True:
        described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0][  # type: ignore[attr-defined]
            "Instances"
        ][0]
        if described["State"]["Name"] == "running":
            tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
            try:
                return await asyncssh.connect(
                    described["PublicIpAddress"],
                    port=int(tags.get("amibake:local:ssh-port", cloud.ssh_port)),
                    username="ubuntu",
                    client_keys=[key],
                    known_hosts=None,
                )
            except (OSError, asyncssh.Error):
                pass
        await asyncio.sleep(0.01)


def _du(path: Path) -> int:
    """Bytes of disk blocks under path (as du counts them)."""
    total = 0
    for item in [path, *path.rglob("*")]:
        with contextlib.suppress(OSError):
            total += item.lstat().st_blocks * 512
    return total


async def figures(cloud: LocalCloud) -> None:
    ec2 = cloud.client("ec2", "us-east-1")
    key = asyncssh.generate_private_key("ssh-ed25519")
    ec2.import_key_pair(KeyName="figures", PublicKeyMaterial=key.export_public_key("openssh"))
    images = ec2.describe_images(
        Owners=["099720109477"],
        Filters=[
            {"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"]}
        ],
    )["Images"]
    source = max(images, key=lambda i: i["CreationDate"])["ImageId"]
    boots = []
    for _ in range(5):
        started = time.monotonic()
        instance = ec2.run_instances(
            ImageId=source, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="figures"
        )["Instances"][0]["InstanceId"]
        conn = await _ssh(cloud, ec2, instance, key)
        boots.append(time.monotonic() - started)
        conn.close()  # type: ignore[attr-defined]
        ec2.terminate_instances(InstanceIds=[instance])
    boots.sort()
    print(f"  boot to SSH (instant profile, median of 5): {boots[2] * 1000:.0f} ms")
    instance = ec2.run_instances(
        ImageId=source, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="figures"
    )["Instances"][0]["InstanceId"]
    conn = await _ssh(cloud, ec2, instance, key)
    local = cloud._instances[instance]
    print(f"  disk used by a fresh instance: {_du(local.directory) / 1024:.0f} KiB")
    written = 0
    for megabytes in (0, 10, 100, 500):
        if megabytes > written:
            sudo = "sudo " if cloud.overlay_mode else ""
            where = "/var/lib/blob" if cloud.overlay_mode else "~/blob"
            command = f"{sudo}sh -c 'head -c {(megabytes - written) << 20} /dev/urandom >> {where}'"
            await conn.run(command, check=True)  # type: ignore[attr-defined]
            written = megabytes
        started = time.monotonic()
        image = ec2.create_image(InstanceId=instance, Name=f"figures-{megabytes}", NoReboot=True)[
            "ImageId"
        ]
        while ec2.describe_images(ImageIds=[image])["Images"][0]["State"] != "available":
            await asyncio.sleep(0.01)
        print(
            f"  CreateImage with {megabytes:>3} MiB written: "
            f"{(time.monotonic() - started) * 1000:.0f} ms"
        )
    print(f"  disk used by that instance: {_du(local.directory) / 2**20:.1f} MiB")
    conn.close()  # type: ignore[attr-defined]
    ec2.terminate_instances(InstanceIds=[instance])


def run_figures() -> int:
    for overlay in (True, False):
        if overlay and not rootfs.overlay_support().available:
            print(f"overlay roots: not available ({rootfs.overlay_support().reason})")
            continue
        with tempfile.TemporaryDirectory(prefix="amibake-figures-") as data:
            cloud = LocalCloud(latency="instant", data_dir=data, overlay=overlay)
            with cloud:
                print(cloud.instance_mode)
                asyncio.run(figures(cloud))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--figures", action="store_true", help="boot, CreateImage and disk figures (offline)"
    )
    if parser.parse_args().figures:
        return run_figures()
    reason = why_not()
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="amibake-bench-seed-") as data:
        cloud = LocalCloud(latency="instant", data_dir=data, overlay=True, instance_network=True)
        with cloud:
            return asyncio.run(build_and_check(cloud))


if __name__ == "__main__":
    sys.exit(main())
