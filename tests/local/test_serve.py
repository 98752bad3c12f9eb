"""`amibake local serve` as a user runs it: a real process, real clients, bad input."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import boto3
import pytest

from .conftest import FOCAL_WILDCARD, wait_for

AMIBAKE = [sys.executable, "-m", "amibake.tui"]


class Server:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                *AMIBAKE,
                "local",
                "serve",
                "--latency",
                "instant",
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        text = "\n".join(self.banner)
        match = re.search(r"export AWS_ENDPOINT_URL=(\S+)", text)
        assert match, f"no endpoint in the banner: {text}\n{self.process.stderr.read()}"
        self.endpoint = match.group(1)

    def client(self, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
        return boto3.client(
            "ec2",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_banner_tells_how_to_use_it(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)
    text = "\n".join(server.banner)
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in text
    assert "AWS_ACCESS_KEY_ID=testing" in text
    assert "sandbox" in text
    assert server.stop() == 0


def test_plain_boto3_script_works_from_the_printed_environment(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path)
    servers.append(server)
    script = (
        "import boto3\n"
        "ec2 = boto3.client('ec2')\n"
        f"images = ec2.describe_images(Owners=['099720109477'], Filters=[{{'Name': 'name', "
        f"'Values': ['{FOCAL_WILDCARD}']}}])['Images']\n"
        "print(len(images))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert int(result.stdout) >= 5


def test_built_images_and_their_files_survive_a_restart(
    tmp_path: Path, servers: list[Server]
) -> None:
    first = Server(tmp_path)
    servers.append(first)
    ec2 = first.client()
    key = asyncssh.generate_private_key("ssh-ed25519")
    ec2.import_key_pair(KeyName="k", PublicKeyMaterial=key.export_public_key("openssh"))
    source = max(
        ec2.describe_images(Filters=[{"Name": "name", "Values": [FOCAL_WILDCARD]}])["Images"],
        key=lambda i: i["CreationDate"],
    )
    instance_id = ec2.run_instances(
        ImageId=source["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="k"
    )["Instances"][0]["InstanceId"]

    def describe(client, iid):  # type: ignore[no-untyped-def]
        return client.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]

    wait_for(lambda: describe(ec2, instance_id)["State"]["Name"] == "running")
    address = describe(ec2, instance_id)["PublicIpAddress"]
    asyncio.run(_ssh_run(address, key, "echo persisted > ~/proof"))
    image_id = ec2.create_image(InstanceId=instance_id, Name="survivor")["ImageId"]
    wait_for(lambda: ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available")
    assert first.stop() == 0

    second = Server(tmp_path)
    servers.append(second)
    ec2 = second.client()
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert [(i["ImageId"], i["Name"]) for i in mine] == [(image_id, "survivor")]
    ec2.import_key_pair(KeyName="k", PublicKeyMaterial=key.export_public_key("openssh"))
    child = ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="k"
    )["Instances"][0]["InstanceId"]
    wait_for(lambda: describe(ec2, child)["State"]["Name"] == "running")
    address = describe(ec2, child)["PublicIpAddress"]
    assert asyncio.run(_ssh_run(address, key, "cat ~/proof")) == "persisted\n"
    assert second.stop() == 0


async def _ssh_run(address: str, key: asyncssh.SSHKey, command: str, port: int = 2222) -> str:
    deadline = time.monotonic() + 20
    while True:
        try:
            async with asyncssh.connect(
                address, port=port, username="ubuntu", client_keys=[key], known_hosts=None
            ) as conn:
                result = await conn.run(command, check=True)
                return str(result.stdout)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMIBAKE, *args], capture_output=True, text=True, timeout=60)


def test_unknown_flag_is_a_one_line_usage_error() -> None:
    result = run_cli("local", "serve", "--bogus")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "amibake: error: unrecognized arguments: --bogus (see 'amibake --help')"
    )


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("local", "serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"amibake: error: port {port} on 127.0.0.1 is already in use "
        "(choose another with --port, or 0 for a free one)"
    )


def test_unwritable_data_dir_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("local", "serve", "--data-dir", str(blocker / "sub"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"amibake: error: data directory {blocker / 'sub'} is not writable")


def test_bad_fault_plan_is_a_one_line_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[rules]]\noperation = "RunInstances"\nnth = 0\nerror = "InternalError"\n')
    result = run_cli("local", "serve", "--faults", str(plan), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "amibake: error: fault rule for 'RunInstances': 'nth' counts from 1"
    )


def test_non_loopback_host_is_refused(tmp_path: Path) -> None:
    result = run_cli("local", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "amibake: error: the local cloud listens on loopback only, not 0.0.0.0"
    )


def test_per_instance_port_fallback_publishes_the_port(
    tmp_path: Path, servers: list[Server]
) -> None:
    # What a system that gives only 127.0.0.1 gets: one SSH port per instance, in a tag.
    server = Server(tmp_path, "--addressing", "port")
    servers.append(server)
    assert "tag 'amibake:local:ssh-port'" in "\n".join(server.banner)
    ec2 = server.client()
    key = asyncssh.generate_private_key("ssh-ed25519")
    ec2.import_key_pair(KeyName="k", PublicKeyMaterial=key.export_public_key("openssh"))
    image = ec2.describe_images(Filters=[{"Name": "name", "Values": [FOCAL_WILDCARD]}])["Images"][0]
    ids = [
        ec2.run_instances(
            ImageId=image["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="k"
        )["Instances"][0]["InstanceId"]
        for _ in range(2)
    ]

    def endpoint(iid: str) -> tuple[str, int] | None:
        described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        if "amibake:local:ssh-port" not in tags:
            return None
        return described["PublicIpAddress"], int(tags["amibake:local:ssh-port"])

    endpoints = [wait_for(lambda iid=iid: endpoint(iid)) for iid in ids]
    assert {address for address, _ in endpoints} == {"127.0.0.1"}
    assert len({port for _, port in endpoints}) == 2
    for address, port in endpoints:
        assert asyncio.run(_ssh_run(address, key, "echo hi", port=port)) == "hi\n"


def test_consistency_eventual_is_served_and_announced(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path, "--consistency", "eventual")
    servers.append(server)
    assert "  consistency eventual (new resources are not found for a moment, as on AWS)" in (
        server.banner
    )
    with urllib.request.urlopen(f"{server.endpoint}/_amibake/status", timeout=10) as answer:
        status = json.loads(answer.read())
    assert status["latency"]["name"] == "instant"
    assert status["latency"]["consistency"] == {
        "mode": "eventual",
        "hidden_calls": 2,
        "hidden_seconds": 5.0,
    }
    assert server.stop() == 0
