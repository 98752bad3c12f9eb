"""Real builds on local instances that behave like EC2 Linux instances (issue 13).

One build carries it all: a .deb made here with dpkg-deb goes up with the file provisioner and
is installed with ``sudo dpkg -i``, a unit is enabled with ``sudo systemctl enable``, then
``sudo reboot`` under ``expect_disconnect`` and the next provisioner sees the same files on a new
connection; an instance launched from the AMI has the package and the enabled unit. The seed
template runs too: without network its ``sudo apt-get update`` fails as apt does offline.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.core.events import LogLines, Message
from amibake.core.local import rootfs
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from tests.engine.test_build import Harness, builder, shell

pytestmark = pytest.mark.skipif(
    not rootfs.overlay_support().available or shutil.which("dpkg-deb") is None,
    reason=f"no overlay roots or dpkg-deb here: {rootfs.overlay_support().reason or 'dpkg-deb'}",
)

SEED = Path(__file__).resolve().parents[2] / "core" / "examples" / "seed.json"
UNIT = (
    "[Unit]\\nDescription=demo\\n[Service]\\nExecStart=/bin/true\\n"
    "[Install]\\nWantedBy=multi-user.target\\n"
)


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    return Harness(cloud, tmp_path)


def make_deb(directory: Path) -> Path:
    """A tiny package (amibake-demo) with one file, built with dpkg-deb."""
    tree = directory / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: amibake-demo\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: amibake <test@example.invalid>\nDescription: amibake test package\n"
    )
    (tree / "usr/share/amibake-demo").mkdir(parents=True)
    (tree / "usr/share/amibake-demo/hello").write_text("hello from a deb\n")
    deb = directory / "amibake-demo_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


async def test_sudo_packages_units_and_a_reboot_go_into_the_image(
    harness: Harness, tmp_path: Path
) -> None:
    deb = make_deb(tmp_path)
    template = harness.template(
        {
            "builders": [builder()],
            "provisioners": [
                {"type": "file", "source": str(deb), "destination": "/tmp/amibake-demo.deb"},
                shell(
                    "echo who: $(id -un) $(sudo id -u) $(stat -c %U /tmp/amibake-demo.deb)",
                    "sudo dpkg -i /tmp/amibake-demo.deb",
                    f"printf '{UNIT}' | sudo tee /etc/systemd/system/demo.service >/dev/null",
                    "sudo systemctl enable demo",
                    "echo kept > ~/kept",
                ),
                shell("echo rebooting", "sudo reboot", expect_disconnect=True),
                shell(
                    "echo after: $(cat ~/kept) $(systemctl is-enabled demo)",
                    "dpkg -s amibake-demo | grep '^Status'",
                    "test -e /tmp/amibake-demo.deb || echo tmp-cleared",
                ),
            ],
        }
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    out = harness.lines("stdout")
    assert "who: ubuntu 0 ubuntu" in out  # sudo makes root; the upload is the user's
    assert out.index("rebooting") < out.index("after: kept enabled")
    assert "Status: install ok installed" in out and "tmp-cleared" in out
    messages = [e.text for e in harness.events if isinstance(e, Message)]
    assert any("expect_disconnect allows" in m for m in messages)

    ami = result.artifacts["us-east-1"]
    ec2 = harness.client()
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_name = f"from-ami-{uuid.uuid4().hex[:8]}"
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=key.export_public_key("openssh"))
    launched = ec2.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=key_name
    )["Instances"][0]
    try:
        conn = await connect(ec2, harness.cloud, launched["InstanceId"], key)
        async with conn:
            result_ = await conn.run(
                "dpkg -s amibake-demo | grep '^Status'; cat /usr/share/amibake-demo/hello;"
                " systemctl is-enabled demo; cat ~/kept"
            )
        assert result_.stdout.splitlines() == [
            "Status: install ok installed",
            "hello from a deb",
            "enabled",
            "kept",
        ], result_.stderr
    finally:
        ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])
        ec2.delete_key_pair(KeyName=key_name)


async def test_the_seed_template_offline_fails_in_apt_not_in_sudo(harness: Harness) -> None:
    (result,) = await harness.build(SEED)
    assert result.status == "failed"
    text = "\n".join(line for e in harness.events if isinstance(e, LogLines) for line in e.lines)
    assert "sudo: command not found" not in text
    assert "Temporary failure resolving" in text or "Could not resolve" in text, text


async def connect(
    ec2: Any, cloud: LocalCloud, instance_id: str, key: asyncssh.SSHKey
) -> asyncssh.SSHClientConnection:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"
        ][0]
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        if described["State"]["Name"] == "running":
            try:
                return await asyncssh.connect(
                    described["PublicIpAddress"],
                    port=int(tags.get("amibake:local:ssh-port", cloud.ssh_port)),
                    username="ubuntu",
                    client_keys=[key],
                    known_hosts=None,
                )
            except (OSError, asyncssh.Error):
                if asyncio.get_running_loop().time() > deadline:
                    raise
        await asyncio.sleep(0.05)
