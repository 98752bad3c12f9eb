"""Issue 10, items 7 and 8 on the local cloud: distinct public and private addresses, a cloud
without a default VPC from the command line, SSH patience with users that user data creates
late, ``#!`` user data run at boot inside the instance, and the RSA fallback for an sshd
that refuses ed25519 keys."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from amibake.core.local.cloud import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    LocalCloud,
    public_address_for,
)
from amibake.core.local.faults import FaultPlan
from amibake.core.local.latency import get_profile
from tests.engine.test_build import Harness, builder, shell
from tests.engine.test_real_aws import said


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Iterator[Harness]:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    yield Harness(cloud, tmp_path)
    cloud.set_latency("instant")
    cloud.refuse_ed25519_images.clear()


def running_at(messages: list[str]) -> str:
    (address,) = {m.split(" is running at ", 1)[1] for m in messages if " is running at " in m}
    return address


def connecting_to(messages: list[str]) -> str:
    (address,) = {
        m.split()[2].rsplit(":", 1)[0] for m in messages if m.startswith("Connecting to ")
    }
    return address


# -- item 7: addresses ----------------------------------------------------------


async def test_public_and_private_addresses_differ_and_both_serve_ssh(harness: Harness) -> None:
    cloud = harness.cloud
    if not cloud.per_instance_addresses:
        pytest.skip("this system gives only 127.0.0.1: public and private addresses coincide")
    ec2 = harness.client()
    image = ec2.describe_images(
        Owners=["099720109477"],
        Filters=[{"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-focal-20.04-*"]}],
    )["Images"][0]["ImageId"]
    (launched,) = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ]
    instance_id = launched["InstanceId"]
    try:
        for _ in range(600):
            endpoint = cloud.instance_ssh_endpoint(instance_id)
            if endpoint is not None:
                break
            await asyncio.sleep(0.05)
        assert endpoint is not None
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        (described,) = reservation["Instances"]
        public, private = described["PublicIpAddress"], described["PrivateIpAddress"]
        assert public != private
        assert ipaddress.ip_address(public).is_loopback
        assert ipaddress.ip_address(private).is_loopback
        assert public == public_address_for(private)
        assert described["PublicDnsName"] == public and described["PrivateDnsName"] == private
        # the instance's sshd answers on both
        for address in (public, private):
            banner = await asyncio.to_thread(_ssh_banner, address, endpoint[1])
            assert banner.startswith(b"SSH-2.0-"), (address, banner)
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])


def _ssh_banner(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=10) as conn:
        return conn.recv(64)


async def test_ssh_interface_private_ip_connects_to_the_private_address(
    harness: Harness,
) -> None:
    if not harness.cloud.per_instance_addresses:
        pytest.skip("this system gives only 127.0.0.1: public and private addresses coincide")
    found: dict[str, str] = {}
    for interface in ("public_ip", "private_ip"):
        harness.events.clear()
        template = harness.template(
            {
                "builders": [builder(ssh_interface=interface)],
                "provisioners": [shell("echo on $(hostname)")],
            },
            name=f"{interface}.json",
        )
        (result,) = await harness.build(template)
        assert result.status == "succeeded", result.error
        messages = said(harness)
        found[interface] = connecting_to(messages)
        assert running_at(messages) == found[interface]
    public, private = found["public_ip"], found["private_ip"]
    assert public != private
    assert public_address_for(private) != private  # private: the lower half of the block
    assert public_address_for(public) == public  # public: the upper half


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_without_a_default_vpc(tmp_path: Path) -> None:
    """`amibake local serve --no-default-vpc`: no region answers a default VPC."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amibake.tui",
            "local",
            "serve",
            "--latency",
            "instant",
            "--no-default-vpc",
            "--ssh-port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path / "cloud"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AMIBAKE_HOME": str(tmp_path / "home")},
    )
    try:
        assert process.stdout is not None
        endpoint = None
        lines = []
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"endpoint\s+(http://\S+)", line)
            if match:
                endpoint = match.group(1)
            if line.startswith("Press Ctrl-C"):
                break
        if endpoint is None:
            process.kill()
            pytest.fail(f"no endpoint: {lines} {process.communicate(timeout=30)[1]}")
        assert any("no default VPC in any region" in line for line in lines), lines
        for region in ("us-east-1", "eu-west-1"):
            ec2 = boto3.client(
                "ec2",
                endpoint_url=endpoint,
                region_name=region,
                aws_access_key_id=FAKE_ACCESS_KEY,
                aws_secret_access_key=FAKE_SECRET_KEY,
            )
            default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
            assert default["Vpcs"] == []
            assert ec2.describe_vpcs()["Vpcs"]  # the VPC is there, just not the default
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0


# -- item 8: late users, user data scripts, ed25519 --------------------------


async def test_a_user_that_user_data_creates_late_logs_in(harness: Harness) -> None:
    """cloud-init creates the build's ssh_username 3 s after sshd is up: the build keeps
    trying (handshake attempts a few seconds apart) and succeeds; a #! user data script
    runs inside the instance at boot."""
    cloud = harness.cloud
    cloud.set_latency(replace(get_profile("instant"), user_data=3.0))
    late_user = "\n".join(
        [
            "#cloud-config",
            "ssh_pwauth: true",
            "users:",
            "  - default",
            "  - name: builder",
            "    plain_text_passwd: Late-Pass-1",
            "    lock_passwd: false",
        ]
    )
    script = '#!/bin/sh\necho "user data ran for $(id -un)" > /tmp/amibake-user-data-ran\n'
    template = harness.template(
        {
            "builders": [
                builder(
                    "late",
                    ssh_username="builder",
                    ssh_password="Late-Pass-1",
                    user_data=late_user,
                    ssh_timeout="60s",
                ),
                builder("script", user_data=script),
            ],
            "provisioners": [
                shell("echo logged in as $(id -un)"),
                shell(
                    "while [ ! -s /tmp/amibake-user-data-ran ]; do sleep 0.1; done",
                    "cat /tmp/amibake-user-data-ran",
                    only=["script"],
                ),
            ],
        }
    )
    results = await harness.build(template)
    assert {r.name: r.status for r in results} == {
        "late": "succeeded",
        "script": "succeeded",
    }, [r.error for r in results]
    lines = said(harness)
    assert any("user data ran for" in line for line in lines), lines
    # the first logins were refused (the user did not exist yet) and retried
    assert any("SSH login as builder refused" in line for line in lines), lines
    for result in results:  # the AMIs stay (artifacts); nothing temporary does
        left = harness.leftovers(result.build_id)
        assert set(left) <= {"images", "snapshots"}, left


async def test_an_sshd_that_refuses_ed25519_gets_an_rsa_key(harness: Harness) -> None:
    cloud = harness.cloud
    cloud.refuse_ed25519_images.add("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-*")
    template = harness.template(
        {"builders": [builder(ssh_timeout="60s")], "provisioners": [shell("echo in")]}
    )
    (result,) = await harness.build(template)
    assert result.status == "succeeded", result.error
    messages = said(harness)
    assert any("refuses ed25519" in m and "RSA" in m for m in messages), messages
    left = harness.leftovers(result.build_id)  # the first attempt's instance and key are gone
    assert set(left) <= {"images", "snapshots"}, left
