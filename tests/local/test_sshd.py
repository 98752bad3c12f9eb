"""The instance SSH server, driven by a real asyncssh client (and once by OpenSSH) over loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from amibake.core.errors import LocalCloudError
from amibake.core.local.sandbox import Sandbox, find_bubblewrap
from amibake.core.local.sshd import InstanceSSHServer, host_key_fingerprint_block

ADDRESS = "127.0.0.23"
USER = "ec2-user"
HOSTNAME = "ip-127-0-0-23"


def session_members(sid: int) -> list[int]:
    """Live host pids in session ``sid`` (each command the sandbox runs leads its session)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != b"Z":
            members.append(int(name))
    return members


async def eventually(predicate: object, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]


@dataclass
class Instance:
    server: InstanceSSHServer
    sandbox: Sandbox
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    drop_after: list[int | None] = field(default_factory=lambda: [None])

    async def connect(self, **options: object) -> asyncssh.SSHClientConnection:
        settings: dict[str, object] = {
            "username": USER,
            "client_keys": [self.client_key],
            "known_hosts": None,
            "config": None,
            "agent_path": None,
            "password": None,
        }
        settings.update(options)
        return await asyncssh.connect(ADDRESS, self.server.port, **settings)  # type: ignore[arg-type]

    def home(self) -> Path:
        return self.sandbox.host_dir(self.sandbox.home)


@pytest.fixture(scope="module")
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


async def _instance(
    tmp_path: Path, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey, isolate: bool | None
) -> AsyncIterator[Instance]:
    sandbox = Sandbox(tmp_path / "i-0123456789abcdef0", USER, HOSTNAME, isolate=isolate)
    sandbox.ensure_layout()
    drop_after: list[int | None] = [None]
    server = InstanceSSHServer(
        host=ADDRESS,
        port=0,
        username=USER,
        authorized_keys=[client_key.export_public_key().decode()],
        host_key=host_key,
        sandbox=sandbox,
        drop_after_bytes=lambda: drop_after[0],
    )
    await server.start()
    try:
        yield Instance(server, sandbox, host_key, client_key, drop_after)
    finally:
        await server.stop()


@pytest.fixture
async def instance(
    tmp_path: Path, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey
) -> AsyncIterator[Instance]:
    """An instance in the default mode: bubblewrap when it works here."""
    async for running in _instance(tmp_path, host_key, client_key, None):
        yield running


@pytest.fixture(params=["isolated", "plain"])
async def any_instance(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    host_key: asyncssh.SSHKey,
    client_key: asyncssh.SSHKey,
) -> AsyncIterator[Instance]:
    if request.param == "isolated" and find_bubblewrap() is None:
        pytest.skip("bubblewrap does not work here")
    async for running in _instance(tmp_path, host_key, client_key, request.param == "isolated"):
        yield running


# -- exec -------------------------------------------------------------------------------------


async def test_exec_stdout_stderr_and_exit_status(any_instance: Instance) -> None:
    async with await any_instance.connect() as conn:
        result = await conn.run("echo out; echo err >&2; exit 3")
        assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 3)
        assert result.exit_signal is None
        assert (await conn.run("true")).exit_status == 0


async def test_env_requests_reach_the_command(instance: Instance) -> None:
    async with await instance.connect() as conn:
        result = await conn.run(
            'echo "$PACKER_BUILD_NAME $ANY_NAME_AT_ALL $USER $HOME"',
            env={"PACKER_BUILD_NAME": "amazon-ebs", "ANY_NAME_AT_ALL": "ok"},
        )
    assert result.stdout == f"amazon-ebs ok {USER} /home/{USER}\n"


async def test_stdin_is_forwarded_and_eof_delivered(instance: Instance) -> None:
    payload = os.urandom(300_000)
    async with await instance.connect() as conn:
        result = await conn.run("cat; echo done >&2", input=payload, encoding=None)
    assert result.stdout == payload
    assert result.stderr == b"done\n"


async def test_large_output_arrives_whole(instance: Instance) -> None:
    async with await instance.connect() as conn:
        result = await conn.run("head -c 3000000 /dev/zero", encoding=None)
    assert result.stdout == b"\0" * 3_000_000
    assert result.exit_status == 0


async def test_client_signal_term_is_reported_as_exit_signal(any_instance: Instance) -> None:
    async with await any_instance.connect() as conn:
        process = await conn.create_process("echo ready; sleep 30")
        assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
        process.send_signal("TERM")
        result = await asyncio.wait_for(process.wait(), 10)
    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"
    assert result.exit_status == -1  # asyncssh's value when the command died by a signal


async def test_client_signal_can_be_trapped(instance: Instance) -> None:
    async with await instance.connect() as conn:
        process = await conn.create_process(
            "trap 'echo trapped; exit 7' INT; echo ready; sleep 30 & wait"
        )
        assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
        process.send_signal("INT")
        result = await asyncio.wait_for(process.wait(), 10)
    assert (result.stdout, result.exit_status, result.exit_signal) == ("trapped\n", 7, None)


async def test_client_signal_kill(instance: Instance) -> None:
    async with await instance.connect() as conn:
        process = await conn.create_process("trap '' TERM; echo ready; sleep 30")
        assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
        process.send_signal("KILL")
        result = await asyncio.wait_for(process.wait(), 10)
    assert result.exit_signal is not None and result.exit_signal[0] == "KILL"


async def test_interactive_shell_on_a_pty(instance: Instance) -> None:
    async with await instance.connect() as conn:
        process = await conn.create_process(term_type="xterm", term_size=(100, 30))
        process.stdin.write("echo $((6*7)); stty size; exit 5\n")
        result = await asyncio.wait_for(process.wait(), 10)
    assert result.exit_status == 5
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "42" in lines and "30 100" in lines


# -- process lifetime -----------------------------------------------------------------------


async def _running_leader(instance: Instance) -> int:
    assert await eventually(lambda: len(instance.sandbox.running_processes) == 1)
    return instance.sandbox.running_processes[0].pid


async def test_client_disconnect_kills_the_command(any_instance: Instance) -> None:
    conn = await any_instance.connect()
    process = await conn.create_process("sleep 30 & sleep 31 & echo ready; wait")
    assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
    leader = await _running_leader(any_instance)
    assert len(session_members(leader)) >= 3
    conn.abort()
    assert await eventually(lambda: session_members(leader) == [])
    assert await eventually(lambda: any_instance.sandbox.running_processes == [])


async def test_closing_a_session_leaves_no_process(instance: Instance) -> None:
    async with await instance.connect() as conn:
        process = await conn.create_process("sleep 30 & echo ready; wait")
        assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
        leader = await _running_leader(instance)
        process.close()
        await process.wait_closed()
        assert await eventually(lambda: session_members(leader) == [])
        # the connection is still usable afterwards
        assert (await conn.run("echo still here")).stdout == "still here\n"


async def test_background_leftovers_die_with_their_command(any_instance: Instance) -> None:
    async with await any_instance.connect() as conn:
        result = await asyncio.wait_for(conn.run("sleep 30 >/dev/null 2>&1 & echo started"), 10)
    assert result.stdout == "started\n"
    assert await eventually(lambda: any_instance.sandbox.running_processes == [])


async def test_stop_kills_a_running_command(any_instance: Instance) -> None:
    conn = await any_instance.connect()
    process = await conn.create_process("echo ready; sleep 30")
    assert await asyncio.wait_for(process.stdout.readline(), 10) == "ready\n"
    leader = await _running_leader(any_instance)
    await any_instance.server.stop()
    assert session_members(leader) == []
    assert not os.path.exists(f"/proc/{leader}") or session_members(leader) == []
    assert any_instance.sandbox.running_processes == []
    assert not any_instance.server.running
    with pytest.raises(OSError):
        await any_instance.connect()
    await asyncio.wait_for(conn.wait_closed(), 5)


# -- SFTP -----------------------------------------------------------------------------------


async def test_sftp_upload_into_home_and_refusal_outside(
    instance: Instance, tmp_path: Path
) -> None:
    source = tmp_path / "script.sh"
    source.write_text("echo provisioned > ~/marker\n")
    name = f"amibake-test-{uuid.uuid4().hex}"
    async with await instance.connect() as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(str(source), f"/home/{USER}/script.sh")
            await sftp.put(str(source), "/tmp/script.sh")
            await sftp.mkdir("/opt/app")
            async with sftp.open("relative.txt", "w") as handle:
                await handle.write("relative to home")
            for forbidden in (f"/etc/{name}", f"/root/{name}", f"/{name}", f"/home/{name}"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    async with sftp.open(forbidden, "w") as handle:
                        await handle.write("nope")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.mkdir(f"/usr/{name}")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.remove("/etc/hostname")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.rmdir("/tmp")
            # reads work, and show the guest's files
            async with sftp.open("/etc/hostname") as handle:
                assert await handle.read() == HOSTNAME + "\n"
            assert sorted(await sftp.listdir("/home")) == [".", "..", USER]
            assert await sftp.realpath(".") == f"/home/{USER}"
        # what was uploaded is what commands see
        result = await conn.run("sh /tmp/script.sh && cat ~/marker ~/relative.txt")
    assert result.stdout == "provisioned\nrelative to home"
    assert (instance.home() / "script.sh").read_text() == source.read_text()
    assert (instance.home() / "marker").read_text() == "provisioned\n"
    assert (instance.sandbox.host_dir("/opt") / "app").is_dir()
    for host_path in (f"/etc/{name}", f"/root/{name}", f"/{name}", f"/usr/{name}"):
        assert not os.path.lexists(host_path)


async def test_sftp_cannot_escape_through_a_guest_symlink(instance: Instance) -> None:
    name = f"amibake-test-{uuid.uuid4().hex}"
    async with await instance.connect() as conn:
        await conn.run("ln -s /etc etc-link && ln -s /root root-link", check=True)
        async with conn.start_sftp_client() as sftp:
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                async with sftp.open(f"etc-link/{name}", "w") as handle:
                    await handle.write("escape")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.listdir("root-link")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.symlink("/etc/passwd", "/etc/link")
            # the link itself can be inspected and removed
            assert await sftp.readlink("etc-link") == "/etc"
            await sftp.remove("etc-link")
    assert not os.path.lexists(f"/etc/{name}")
    assert not (instance.home() / "etc-link").exists()


# -- authentication ----------------------------------------------------------------------


async def test_wrong_key_is_rejected(instance: Instance) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await instance.connect(client_keys=[stranger])


async def test_wrong_user_is_rejected(instance: Instance) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await instance.connect(username="root")


async def test_passwords_and_keyboard_interactive_are_refused(instance: Instance) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await instance.connect(client_keys=None, password="hunter2", kbdint_auth=True)


def test_bad_authorized_key_is_a_one_line_error(tmp_path: Path, host_key: asyncssh.SSHKey) -> None:
    sandbox = Sandbox(tmp_path / "i", USER, HOSTNAME, isolate=False)
    with pytest.raises(LocalCloudError) as caught:
        InstanceSSHServer(
            host=ADDRESS,
            port=0,
            username=USER,
            authorized_keys=["ssh-rsa garbage"],
            host_key=host_key,
            sandbox=sandbox,
        )
    assert "\n" not in str(caught.value)


# -- faults, ports, host keys ------------------------------------------------------------


async def test_drop_after_bytes_cuts_the_connection(instance: Instance) -> None:
    instance.drop_after[0] = 1000
    lost: list[Exception | None] = []

    class Client(asyncssh.SSHClient):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.append(exc)

    conn = await instance.connect(client_factory=Client)
    result = await asyncio.wait_for(
        conn.run("head -c 200000 /dev/zero; sleep 5", encoding=None), 10
    )
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert 0 < len(result.stdout) <= 1000
    # what asyncssh's run() makes of a connection that died mid-command (it does not raise)
    assert result.exit_status is None and result.exit_signal is None
    # the cut is a reset, as a network failure would be, not a clean close
    assert len(lost) == 1 and isinstance(lost[0], ConnectionResetError)
    assert await eventually(lambda: instance.sandbox.running_processes == [])
    # consulted per connection: the next one is healthy again
    instance.drop_after[0] = None
    async with await instance.connect() as healthy:
        result = await healthy.run("head -c 200000 /dev/zero", encoding=None)
    assert len(result.stdout) == 200_000


async def test_port_in_use_is_a_one_line_error(
    instance: Instance, client_key: asyncssh.SSHKey, host_key: asyncssh.SSHKey
) -> None:
    other = InstanceSSHServer(
        host=ADDRESS,
        port=instance.server.port,
        username=USER,
        authorized_keys=[client_key.export_public_key().decode()],
        host_key=host_key,
        sandbox=instance.sandbox,
    )
    with pytest.raises(LocalCloudError) as caught:
        await other.start()
    assert "\n" not in str(caught.value)
    assert "in use" in str(caught.value)
    assert not other.running


async def test_fingerprint_block_matches_the_key_the_client_sees(instance: Instance) -> None:
    block = host_key_fingerprint_block([instance.host_key], HOSTNAME)
    async with await instance.connect() as conn:
        seen = conn.get_server_host_key()
    assert seen is not None
    fingerprint = instance.host_key.get_fingerprint("sha256")
    assert seen.get_fingerprint("sha256") == fingerprint
    public_line = (
        f"{seen.export_public_key().decode().split()[0]} "
        f"{seen.export_public_key().decode().split()[1]} root@{HOSTNAME}"
    )
    assert block == (
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
        f"256 {fingerprint} root@{HOSTNAME} (ED25519)\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\n"
        "-----BEGIN SSH HOST KEY KEYS-----\n"
        f"{public_line}\n"
        "-----END SSH HOST KEY KEYS-----\n"
    )


async def test_fingerprint_lines_are_what_ssh_keygen_prints(tmp_path: Path) -> None:
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        pytest.skip("ssh-keygen is not installed")
    keys = [
        asyncssh.generate_private_key("ssh-rsa", key_size=2048),
        asyncssh.generate_private_key("ssh-ed25519"),
        asyncssh.generate_private_key("ecdsa-sha2-nistp256"),
    ]
    block = host_key_fingerprint_block(keys, "ip-10-0-0-1", log_prefix="ec2: ")
    lines = block.splitlines()
    key_lines = lines[lines.index("-----BEGIN SSH HOST KEY KEYS-----") + 1 : -1]
    assert [line.split()[0] for line in key_lines] == [
        "ecdsa-sha2-nistp256",
        "ssh-ed25519",
        "ssh-rsa",  # cloud-init's glob order
    ]
    expected = []
    for index, line in enumerate(key_lines):
        pub = tmp_path / f"key{index}.pub"
        pub.write_text(line + "\n")
        keygen = await asyncio.create_subprocess_exec(
            ssh_keygen, "-l", "-f", str(pub), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await keygen.communicate()
        expected.append("ec2: " + out.decode().strip())
    start = lines.index("ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----")
    assert lines[start - 1] == "ec2: " + "#" * 61
    assert lines[start + 1 : start + 4] == expected
    assert lines[start + 4 : start + 6] == [
        "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
        "ec2: " + "#" * 61,
    ]


async def test_real_openssh_client(instance: Instance, tmp_path: Path) -> None:
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("the OpenSSH client is not installed")
    key_file = tmp_path / "id_ed25519"
    instance.client_key.write_private_key(key_file)
    key_file.chmod(0o600)
    options = [
        "-F",
        "/dev/null",
        "-i",
        str(key_file),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
    ]
    client = await asyncio.create_subprocess_exec(
        ssh,
        "-p",
        str(instance.server.port),
        *options,
        f"{USER}@{ADDRESS}",
        "echo hello from $(hostname); echo oops >&2; exit 9",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(client.communicate(), 20)
    assert client.returncode == 9, err
    assert out.decode() == f"hello from {HOSTNAME}\n"
    assert err.decode() == "oops\n"
    # OpenSSH's scp speaks SFTP and insists on the subsystem's exit status
    scp = shutil.which("scp")
    if scp is not None:
        source = tmp_path / "payload.txt"
        source.write_text("via scp")
        copy = await asyncio.create_subprocess_exec(
            scp,
            "-P",
            str(instance.server.port),
            *options,
            str(source),
            f"{USER}@{ADDRESS}:/tmp/payload.txt",
            stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(copy.communicate(), 20)
        assert copy.returncode == 0, err
        assert (instance.sandbox.host_dir("/tmp") / "payload.txt").read_text() == "via scp"


async def test_signal_numbers_round_trip() -> None:
    # the names the SSH protocol uses are the signal module's without "SIG"
    for name in ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1"):
        assert signal.Signals["SIG" + name].name.removeprefix("SIG") == name
