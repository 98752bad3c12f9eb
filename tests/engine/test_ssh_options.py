"""The SSH options of amazon-ebs (issue 12) against the local cloud: real boto3 over HTTP, real
asyncssh, real instances (a second one as the bastion), a SOCKS5 proxy and an ssh-agent started
by the tests. Each build checks several options at once and asserts what the instance saw."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncssh
import pytest

from amibake.core.aws import Target
from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.engine.steps.ssh_connect import check_session_manager
from amibake.core.errors import AmibakeError
from amibake.core.events import Message, ResourceChanged
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from amibake.core.ssh import Communicator, SshSettings, connect_options

from .conftest import SSH_PORT_TAG, Instance, wait_for
from .test_build import AS_ROOT, Harness, builder, shell


@pytest.fixture
def harness(cloud: LocalCloud, tmp_path: Path) -> Harness:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    return Harness(cloud, tmp_path)


def build_instance(harness: Harness, build_id: str) -> dict[str, Any]:
    """The build's instance as EC2 describes it (terminated by now)."""
    found = harness.client().describe_instances(
        Filters=[{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}]
    )
    (instance,) = [i for r in found["Reservations"] for i in r["Instances"]]
    return instance


def instance_address(harness: Harness) -> str:
    """The address the build connected to, as it said ("Instance i-... is running at ...")."""
    (address,) = [m.rsplit(" ", 1)[1] for m in messages(harness) if " is running at " in m]
    return address


def messages(harness: Harness) -> list[str]:
    return [e.text for e in harness.events if isinstance(e, Message)]


def key_pairs_made(harness: Harness) -> set[str]:
    return {
        e.resource_id
        for e in harness.events
        if isinstance(e, ResourceChanged) and e.kind == "key-pair"
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- one build, many options ---------------------------------------------------------------------


async def test_one_build_carries_out_the_connection_options(
    harness: Harness, tmp_path: Path
) -> None:
    if not harness.cloud.isolated:
        pytest.skip("puts an scp wrapper in the instance's /usr/local/bin: needs bubblewrap")
    payload = tmp_path / "payload.txt"
    payload.write_text("over scp\n")
    key_name = f"packer-style-{uuid.uuid4().hex[:8]}"
    wrapper = '#!/bin/sh\\necho "scp $*" >> ~/scp.log\\nexec /usr/bin/scp "$@"\\n'
    template = {
        "builders": [
            builder(
                temporary_key_pair_name=key_name,
                ssh_pty=True,
                ssh_file_transfer_method="scp",
                ssh_ciphers=["aes256-ctr"],
                ssh_key_exchange_algorithms=["curve25519-sha256@libssh.org"],
                ssh_keep_alive_interval="-1s",
                ssh_read_write_timeout="2m",
                ssh_handshake_attempts=5,
                pause_before_connecting="100ms",
                ssh_clear_authorized_keys=True,
            )
        ],
        "provisioners": [
            shell(
                "mkdir -p /usr/local/bin",
                f"printf '{wrapper}' > /usr/local/bin/scp && chmod +x /usr/local/bin/scp",
                "[ -t 1 ] && echo stdout-is-a-terminal",
                # overlay roots: /usr/local/bin is root's, as on EC2 (issue 13)
                **(AS_ROOT if harness.cloud.overlay_mode else {}),
            ),
            {"type": "file", "source": str(payload), "destination": "payload.txt"},
            shell("cat ~/payload.txt", "stat -c %a ~/payload.txt", "cat ~/scp.log"),
        ],
    }
    (result,) = await harness.build(harness.template(template))
    assert result.status == "succeeded", result.error
    out = harness.lines("stdout")
    assert "stdout-is-a-terminal" in out  # ssh_pty
    assert "over scp" in out and "644" in out
    # the file provisioner went through the instance's scp (ssh_file_transfer_method)
    assert any(line.startswith("scp -t") and line.endswith("payload.txt") for line in out), out
    # temporary_key_pair_name: the instance was launched with it, and it is gone again
    assert key_pairs_made(harness) == {key_name}
    assert build_instance(harness, result.build_id)["KeyName"] == key_name
    assert not harness.client().describe_key_pairs(
        Filters=[{"Name": "key-name", "Values": [key_name]}]
    )["KeyPairs"]
    said = messages(harness)
    assert any(m.startswith("Pausing 0.1s before connecting") for m in said)
    assert any(m.startswith("Removed the temporary key from ~/.ssh/authorized_keys") for m in said)
    assert set(harness.leftovers(result.build_id)) == {"images", "snapshots"}
    await _authorized_keys_of_the_image_hold_only_the_new_key(
        harness, result.artifacts["us-east-1"]
    )


async def _authorized_keys_of_the_image_hold_only_the_new_key(
    harness: Harness, image_id: str
) -> None:
    """ssh_clear_authorized_keys: an instance of the AMI knows only its own launch key."""
    ec2 = harness.client()
    key = asyncssh.generate_private_key("ssh-ed25519")
    name = f"after-clear-{uuid.uuid4().hex[:8]}"
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.export_public_key("openssh"))
    launched = ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=name
    )["Instances"][0]
    instance = Instance(launched["InstanceId"], "", harness.cloud.ssh_port, key, ec2)
    try:
        instance.wait_running()
        instance.fingerprints()
        instance.refresh_port(harness.cloud.ssh_port)
        instance.host = wait_for(lambda: instance.describe().get("PublicIpAddress"))
        async with await Communicator.connect(
            host=instance.host, port=instance.port, username="ubuntu", private_key=key, timeout=30
        ) as communicator:
            lines: list[str] = []
            result = await communicator.run(
                "cat ~/.ssh/authorized_keys", on_stdout=lines.append, on_stderr=lines.append
            )
        assert result.ok
        assert [" ".join(line.split()[:2]) for line in lines if line.strip()] == [
            " ".join(key.export_public_key("openssh").decode().split()[:2])
        ]
    finally:
        ec2.terminate_instances(InstanceIds=[instance.id])
        ec2.delete_key_pair(KeyName=name)


# -- password login through a SOCKS5 proxy -------------------------------------------------------


class Socks5Server:
    """A minimal SOCKS5 server (RFC 1928 CONNECT, RFC 1929 login) that records what it was
    asked to reach; it relays only to loopback addresses."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.connects: list[tuple[str, str, int]] = []
        self.refused_logins = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Socks5Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._relay(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 2 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x02")
        _, length = await reader.readexactly(2)
        user = (await reader.readexactly(length)).decode()
        (length,) = await reader.readexactly(1)
        secret = (await reader.readexactly(length)).decode()
        if (user, secret) != (self.username, self.password):
            self.refused_logins += 1
            writer.write(b"\x01\x01")
            return
        writer.write(b"\x01\x00")
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        else:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.connects.append((user, host, port))
        if command != 1 or not host.startswith("127."):
            writer.write(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        upstream_writer.close()


async def test_password_login_through_a_socks5_proxy_without_a_key_pair(
    harness: Harness,
) -> None:
    password = f"correct horse {uuid.uuid4().hex[:6]}"
    async with Socks5Server("builder", "proxy-secret") as proxy:
        template = {
            "builders": [
                builder(
                    ssh_password=password,
                    # what cloud-init reads: the default user's password, SSH password logins on
                    user_data=f"#cloud-config\nssh_pwauth: true\npassword: {password}\n"
                    "chpasswd: {expire: false}\n",
                    ssh_proxy_host="127.0.0.1",
                    ssh_proxy_port=proxy.port,
                    ssh_proxy_username="builder",
                    ssh_proxy_password="proxy-secret",
                )
            ],
            "provisioners": [shell("echo user=$(id -un)")],
        }
        (result,) = await harness.build(harness.template(template))
    assert result.status == "succeeded", result.error
    assert "user=ubuntu" in harness.lines("stdout")
    assert not [e for e in harness.events if password in e.to_json()]  # sensitive
    instance = build_instance(harness, result.build_id)
    # Packer: with ssh_password and no temporary_key_pair_name, no key pair at all
    assert "KeyName" not in instance and key_pairs_made(harness) == set()
    # every connection went through the proxy, logged in as the template says
    assert proxy.connects and proxy.refused_logins == 0
    assert {c[0] for c in proxy.connects} == {"builder"}
    assert {c[1] for c in proxy.connects} == {instance_address(harness)}
    assert set(harness.leftovers(result.build_id)) == {"images", "snapshots"}


# -- a certificate, through a bastion ------------------------------------------------------------


async def test_certificate_login_through_a_bastion_instance(
    harness: Harness, launch: Callable[..., Instance], tmp_path: Path
) -> None:
    bastion = launch()
    bastion_key = tmp_path / "bastion_key"
    bastion.key.write_private_key(bastion_key)
    # the instance trusts a CA (cloud-config's ssh_authorized_keys); we hold a user certificate
    ca = asyncssh.generate_private_key("ssh-ed25519")
    user = asyncssh.generate_private_key("ssh-ed25519")
    certificate = ca.generate_user_certificate(user, "amibake-test", principals=["ubuntu"])
    user.write_private_key(tmp_path / "id_user")
    certificate.write_certificate(tmp_path / "id_user-cert.pub")
    ca_line = f"cert-authority {ca.export_public_key('openssh').decode().strip()}"
    template = {
        "builders": [
            builder(
                ssh_private_key_file="id_user",
                ssh_certificate_file="id_user-cert.pub",
                user_data=f"#cloud-config\nssh_authorized_keys:\n  - {ca_line}\n",
                ssh_bastion_host=bastion.host,
                ssh_bastion_port=bastion.port,
                ssh_bastion_username="ubuntu",
                ssh_bastion_private_key_file=str(bastion_key),
            )
        ],
        "provisioners": [shell("echo from=${SSH_CONNECTION%% *}")],
    }
    (result,) = await harness.build(harness.template(template))
    assert result.status == "succeeded", result.error
    instance = build_instance(harness, result.build_id)
    assert "KeyName" not in instance  # only the certificate can have logged in
    assert any("via the bastion" in m for m in messages(harness))
    if bastion.host != instance_address(harness):
        # the SSH connection reached the instance from the bastion's (private) address
        assert f"from={bastion.describe()['PrivateIpAddress']}" in harness.lines("stdout")
    assert set(harness.leftovers(result.build_id)) == {"images", "snapshots"}


# -- the SSH agent -------------------------------------------------------------------------------


@pytest.fixture
async def ssh_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Path]:
    program = shutil.which("ssh-agent")
    if program is None:
        pytest.skip("ssh-agent is not installed")
    socket_path = tmp_path / "agent.sock"
    process = await asyncio.create_subprocess_exec(
        program,
        "-D",
        "-a",
        str(socket_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        wait_for(socket_path.exists, what="the ssh-agent socket")
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        yield socket_path
    finally:
        process.terminate()
        await process.wait()


async def test_agent_auth_uses_the_named_key_pair_and_makes_none(
    harness: Harness, ssh_agent: Path
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    async with asyncssh.connect_agent(str(ssh_agent)) as agent:  # type: ignore[attr-defined]
        await agent.add_keys([key])
    name = f"agent-key-{uuid.uuid4().hex[:8]}"
    ec2 = harness.client()
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.export_public_key("openssh"))
    try:
        template = {
            "builders": [builder(ssh_keypair_name=name, ssh_agent_auth=True)],
            "provisioners": [shell("echo agent-login-ok")],
        }
        (result,) = await harness.build(harness.template(template))
    finally:
        ec2.delete_key_pair(KeyName=name)
    assert result.status == "succeeded", result.error
    assert "agent-login-ok" in harness.lines("stdout")
    assert build_instance(harness, result.build_id)["KeyName"] == name
    assert key_pairs_made(harness) == set()


# -- what the local cloud cannot do --------------------------------------------------------------


async def test_ipv6_and_session_manager_fail_clearly_on_the_local_cloud(harness: Harness) -> None:
    template = {"builders": [builder(ssh_interface="ipv6")]}
    (result,) = await harness.build(harness.template(template))
    assert result.status == "failed"
    assert result.error is not None and result.error.endswith(
        "has no ipv6 (ssh_interface) (the local cloud hands out IPv4 loopback addresses only)"
    )
    assert harness.leftovers(result.build_id) == {}
    # an instance profile that exists: the build gets as far as the session manager check
    iam = harness.cloud.client("iam", "us-east-1")
    profile = f"ssm-{uuid.uuid4().hex[:8]}"
    iam.create_instance_profile(InstanceProfileName=profile)
    template = {
        "builders": [builder(ssh_interface="session_manager", iam_instance_profile=profile)]
    }
    harness.events.clear()
    try:
        (result,) = await harness.build(harness.template(template))
    finally:
        iam.delete_instance_profile(InstanceProfileName=profile)
    assert result.status == "failed"
    assert result.error is not None and (
        'ssh_interface = "session_manager" is not available on the local cloud' in result.error
    )
    assert harness.leftovers(result.build_id) == {}
    # it fails before an instance is launched
    launched = [
        e for e in harness.events if isinstance(e, ResourceChanged) and e.kind == "instance"
    ]
    assert not launched


def test_session_manager_needs_the_plugin_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ctx = SimpleNamespace(
        builder=SimpleNamespace(ssh_interface="session_manager"),
        options=SimpleNamespace(target=Target(profile="prod")),
    )
    with pytest.raises(AmibakeError, match="needs AWS's session-manager-plugin on PATH"):
        check_session_manager(ctx)  # type: ignore[arg-type]
    plugin = tmp_path / "session-manager-plugin"
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o755)
    check_session_manager(ctx)  # type: ignore[arg-type]


# -- the communicator ----------------------------------------------------------------------------


async def test_local_and_remote_tunnels_carry_traffic(instance: Instance) -> None:
    async def shout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(shout, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    remote, local = free_port(), free_port()
    communicator = await Communicator.connect(
        host=instance.host,
        port=instance.port,
        username="ubuntu",
        private_key=instance.key,
        timeout=30,
    )
    try:
        # here:local -> instance localhost:remote -> (remote tunnel) -> here:target
        await communicator.open_tunnels(
            local=[f"{local}:localhost:{remote}"], remote=[f"{remote}:127.0.0.1:{target}"]
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"ping\n")
        assert await asyncio.wait_for(reader.readline(), 20) == b"PING\n"
        writer.close()
    finally:
        await communicator.close()
        server.close()


async def test_scp_transfers_both_ways_with_the_mode(instance: Instance, tmp_path: Path) -> None:
    communicator = await Communicator.connect(
        host=instance.host,
        port=instance.port,
        username="ubuntu",
        timeout=30,
        settings=SshSettings(private_keys=(instance.key,), file_transfer="scp"),
    )
    async with communicator:
        await communicator.upload(b"#!/bin/sh\necho hi\n", "run.sh", mode=0o750)
        lines: list[str] = []
        result = await communicator.run(
            "stat -c %a run.sh && ./run.sh", on_stdout=lines.append, on_stderr=lines.append
        )
        assert result.ok and lines == ["750", "hi"]
        await communicator.download("run.sh", tmp_path / "back.sh")
    assert (tmp_path / "back.sh").read_bytes() == b"#!/bin/sh\necho hi\n"


async def test_read_write_timeout_is_keepalives_without_an_answer() -> None:
    async with contextlib.AsyncExitStack() as stack:
        options = await connect_options(
            SshSettings(keepalive_interval=5.0, read_write_timeout=12.0), "h", 22, stack, 1.0
        )
        assert (options["keepalive_interval"], options["keepalive_count_max"]) == (5.0, 3)
        off = await connect_options(SshSettings(keepalive_interval=0.0), "h", 22, stack, 1.0)
        assert off["keepalive_interval"] is None and off["client_keys"] is None


async def test_a_refused_proxy_login_is_not_retried(instance: Instance) -> None:
    async with Socks5Server("builder", "right") as proxy:
        from amibake.core.ssh import ProxySettings, SshError

        settings = SshSettings(
            private_keys=(instance.key,),
            proxy=ProxySettings(
                host="127.0.0.1", port=proxy.port, username="builder", password="wrong"
            ),
        )
        with pytest.raises(SshError, match="refused user 'builder'"):
            await Communicator.connect(
                host=instance.host,
                port=instance.port,
                username="ubuntu",
                timeout=30,
                settings=settings,
            )
    assert proxy.refused_logins == 1


_ = SSH_PORT_TAG  # the port tag the Instance helper reads


async def test_handshake_attempts_end_the_wait_for_a_refused_key(instance: Instance) -> None:
    from amibake.core.ssh import SshAuthFailed

    stranger = asyncssh.generate_private_key("ssh-ed25519")
    attempts: list[int] = []
    with pytest.raises(SshAuthFailed, match=r"refused our key for user 'ubuntu' after 2 attempt"):
        await Communicator.connect(
            host=instance.host,
            port=instance.port,
            username="ubuntu",
            private_key=stranger,
            timeout=60,
            handshake_attempts=2,
            on_attempt=lambda n, _reason: attempts.append(n),
        )
    assert attempts == [1]


async def test_a_password_bastion_answers_keyboard_interactive(
    instance: Instance, engine_cloud: LocalCloud
) -> None:
    """ssh_bastion_password with ssh_bastion_interactive: the bastion (an instance given a
    password by cloud-config, no key pair) is logged in to through keyboard-interactive."""
    from amibake.core.ssh import BastionSettings

    ec2 = instance.ec2
    launched = ec2.run_instances(
        ImageId=instance.describe()["ImageId"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        UserData="#cloud-config\nssh_pwauth: true\npassword: jump-pass\n",
    )["Instances"][0]
    bastion = Instance(launched["InstanceId"], "", engine_cloud.ssh_port, instance.key, ec2)
    try:
        bastion.wait_running()
        bastion.fingerprints()
        bastion.refresh_port(engine_cloud.ssh_port)
        bastion.host = wait_for(lambda: bastion.describe().get("PublicIpAddress"))
        settings = SshSettings(
            private_keys=(instance.key,),
            bastion=BastionSettings(
                host=bastion.host,
                port=bastion.port,
                username="ubuntu",
                password="jump-pass",
                interactive=True,
            ),
        )
        async with await Communicator.connect(
            host=instance.host,
            port=instance.port,
            username="ubuntu",
            timeout=30,
            settings=settings,
        ) as communicator:
            lines: list[str] = []
            result = await communicator.run(
                "echo ${SSH_CONNECTION%% *}", on_stdout=lines.append, on_stderr=lines.append
            )
        assert result.ok
        if bastion.host != instance.host:  # from the bastion's (private) address
            assert lines == [bastion.describe()["PrivateIpAddress"]]
    finally:
        ec2.terminate_instances(InstanceIds=[bastion.id])
