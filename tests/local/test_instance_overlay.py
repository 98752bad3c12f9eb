"""Local instances with their own overlay root (amibake.core.local.rootfs wired into the local
cloud).

Real boto3 over HTTP and real asyncssh: sudo makes root, files anywhere under / go into the
image, AMIs of AMIs carry everything, RebootInstances drops SSH and keeps the files, SFTP
uploads belong to the default user; and where overlay roots are not possible the cloud says why.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncssh
import pytest

from amibake.core.errors import LocalCloudError
from amibake.core.local import rootfs
from amibake.core.local.cloud import LocalCloud
from tests.local.conftest import wait_image, wait_state

needs_overlay = pytest.mark.skipif(
    not rootfs.overlay_support().available,
    reason=f"no overlay roots here: {rootfs.overlay_support().reason}",
)


async def run(conn: asyncssh.SSHClientConnection, command: str) -> str:
    result = await conn.run(command)
    assert result.exit_status == 0, (command, result.stderr)
    return str(result.stdout)


def image_of(ec2: Any, instance_id: str, name: str) -> str:
    ec2.stop_instances(InstanceIds=[instance_id])
    wait_state(ec2, instance_id, "stopped")
    image_id = str(ec2.create_image(InstanceId=instance_id, Name=name)["ImageId"])
    wait_image(ec2, image_id)
    return image_id


@needs_overlay
async def test_amis_of_amis_carry_everything_under_root(
    ec2: Any, launch: Any, cloud: LocalCloud, unique: str
) -> None:
    assert cloud.overlay_mode and cloud.status()["overlay"]
    first = launch()
    wait_state(ec2, first.id, "running")
    async with await first.connect_when_ready() as conn:
        assert (await run(conn, "id -un; sudo id -u")).split() == ["ubuntu", "0"]
        await run(conn, "sudo sh -c 'echo one > /etc/amibake-one' && echo home > ~/mine")
        await run(conn, "echo scratch > /tmp/scratch")
        # SFTP writes where the user may, owned by the user; /etc is root's
        async with conn.start_sftp_client() as sftp:
            async with sftp.open("/tmp/uploaded", "w") as handle:
                await handle.write("up\n")
            await sftp.mkdir("/home/ubuntu/dir")
            with pytest.raises(asyncssh.SFTPError):
                await sftp.open("/etc/amibake-sftp", "w")
            with pytest.raises(asyncssh.SFTPError):  # root's 0640 file: not the user's to read
                await sftp.open("/etc/shadow")
            async with sftp.open("/etc/passwd") as handle:
                assert "ubuntu:x:1000:1000" in await handle.read()
        owners = await run(
            conn, "stat -c %U /tmp/uploaded ~/dir /etc/amibake-one ~/.ssh ~/.ssh/authorized_keys"
        )
        assert owners.split() == ["ubuntu", "ubuntu", "root", "ubuntu", "ubuntu"]
    one = image_of(ec2, first.id, f"overlay-one-{unique}")
    snapshot = ec2.describe_images(ImageIds=[one])["Images"][0]["BlockDeviceMappings"][0]
    layer = cloud.content.layer("us-east-1", snapshot["Ebs"]["SnapshotId"])
    assert layer is not None and (layer / "etc/amibake-one").read_text() == "one\n"
    assert not (layer / "etc/hostname").exists()  # per instance, not the image's

    second = launch(one)
    wait_state(ec2, second.id, "running")
    async with await second.connect_when_ready() as conn:
        assert await run(conn, "cat /etc/amibake-one ~/mine") == "one\nhome\n"
        assert (await conn.run("test -e /tmp/scratch")).exit_status == 1
        await run(conn, "sudo sh -c 'echo two > /usr/local/amibake-two'")
    two = image_of(ec2, second.id, f"overlay-two-{unique}")
    west = cloud.client("ec2", "us-west-2")
    copied = west.copy_image(SourceImageId=two, SourceRegion="us-east-1", Name=f"west-{unique}")
    wait_image(west, copied["ImageId"])
    mapping = west.describe_images(ImageIds=[copied["ImageId"]])["Images"][0]
    west_layer = cloud.content.layer(
        "us-west-2", mapping["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    )
    assert west_layer is not None and (west_layer / "usr/local/amibake-two").exists()

    third = launch(two)
    wait_state(ec2, third.id, "running")
    async with await third.connect_when_ready() as conn:
        out = await run(conn, "cat /etc/amibake-one /usr/local/amibake-two ~/mine")
        assert out == "one\ntwo\nhome\n"
        assert (await run(conn, "hostname")).strip().startswith("ip-127-")


@needs_overlay
async def test_reboot_instances_drops_ssh_and_keeps_the_files(ec2: Any, launch: Any) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    async with await instance.connect_when_ready() as conn:
        await run(conn, "sudo sh -c 'echo kept > /etc/after-reboot'; echo gone > /tmp/gone")
        ec2.reboot_instances(InstanceIds=[instance.id])
        await asyncio.wait_for(conn.wait_closed(), timeout=20)
    async with await instance.connect_when_ready() as conn:
        assert await run(conn, "cat /etc/after-reboot") == "kept\n"
        assert (await conn.run("test -e /tmp/gone")).exit_status == 1
        # `reboot` inside does the same: the connection drops before any exit status
        dropped = await asyncio.wait_for(conn.run("sudo reboot"), timeout=20)
        assert (dropped.exit_status, dropped.exit_signal) == (None, None)
        await asyncio.wait_for(conn.wait_closed(), timeout=20)
    async with await instance.connect_when_ready() as conn:
        assert await run(conn, "cat /etc/after-reboot") == "kept\n"
    assert instance.describe()["State"]["Name"] == "running"


@needs_overlay
async def test_apt_without_network_fails_as_apt_does_offline(ec2: Any, launch: Any) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    async with await instance.connect_when_ready() as conn:
        result = await conn.run("sudo apt-get update")
    assert "command not found" not in result.stderr
    text = result.stdout + result.stderr
    assert "Temporary failure resolving" in text or "Could not resolve" in text, text


def test_without_overlay_the_cloud_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    missing = rootfs.OverlaySupport(False, "'nsenter' (util-linux) is not installed")
    monkeypatch.setattr(rootfs, "overlay_support", lambda: missing)
    fallback = LocalCloud(data_dir=tmp_path)
    fallback._choose_overlay()
    assert not fallback.overlay_mode
    assert fallback.instance_mode.endswith(
        "no overlay root: 'nsenter' (util-linux) is not installed"
    )
    from amibake.tui.cli.local import banner

    fallback.content = None  # type: ignore[assignment]  (not started: banner reads settings only)
    fallback.port = 1
    fallback.per_instance_addresses = False
    text = banner(fallback)
    assert "overlay    not available: 'nsenter' (util-linux) is not installed" in text
    with pytest.raises(LocalCloudError, match="overlay roots requested but not available: 'nsen"):
        LocalCloud(data_dir=tmp_path, overlay=True)._choose_overlay()
    off = LocalCloud(data_dir=tmp_path, overlay=False)
    off._choose_overlay()
    assert "no overlay root: overlay roots are turned off" in off.instance_mode


@needs_overlay
def test_instance_network_is_the_hosts_only_when_asked(tmp_path: Any) -> None:
    host_net = os.readlink("/proc/self/ns/net")
    seen = {}
    for network in (False, True):
        root = rootfs.InstanceRoot(tmp_path / str(network), "ubuntu", "net", network=network)
        root.start()
        try:
            result = root.shell("readlink /proc/self/ns/net; ls /etc/apt/apt.conf.d")
        finally:
            root.stop()
        net, *conf = result.stdout.split()
        seen[network] = (net == host_net, "99amibake-no-network" in conf)
    # off: a network namespace of its own (apt does not retry); on: the host's
    assert seen == {False: (False, True), True: (True, False)}


def test_instance_network_setting_round_trips(tmp_path: Any) -> None:
    from amibake.core.settings import Settings

    path = tmp_path / "settings.toml"
    settings = Settings.load(path)
    assert settings.instance_network is False  # off by default
    settings.instance_network = True
    assert settings.save()
    assert "[local]\ninstance_network = true" in path.read_text()
    assert Settings.load(path).instance_network is True
