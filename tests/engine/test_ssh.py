"""amibake.core.ssh against real instances of the local cloud: real boto3, real asyncssh, real
sshd."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.core.errors import AmibakeError
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.ssh import (
    CommandResult,
    CommandTimeout,
    Communicator,
    HostKeyMismatch,
    SshAuthFailed,
    SshDisconnected,
    SshError,
    SshTimeout,
    fingerprints_from_console,
)

from .conftest import Instance


class Lines:
    """Collects a run's stdout and stderr lines."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def kwargs(self) -> dict[str, Callable[[str], None]]:
        return {"on_stdout": self.out.append, "on_stderr": self.err.append}


async def connect(instance: Instance, **options: Any) -> Communicator:
    options.setdefault("timeout", 20.0)
    options.setdefault("username", "ubuntu")
    return await Communicator.connect(
        host=instance.host, port=instance.port, private_key=instance.key, **options
    )


async def run(comm: Communicator, command: str, **options: Any) -> tuple[CommandResult, Lines]:
    lines = Lines()
    result = await comm.run(command, **lines.kwargs(), **options)
    return result, lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- console fingerprints -----------------------------------------------------------------------

CONSOLE = """\
[    0.000000] Linux version 5.15.0-1019-aws
Cloud-init v. 22.2 running 'modules:config'
ec2:
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 1024 SHA256:e2mHgNFkzXKxtGAmbwBQZBLGQ1Ks0bTQgQdBG6gIiA0 root@ip-10-0-0-5 (DSA)
ec2: 256 SHA256:Yc+2KMrX7mn0DAAe3P1tNzAnOBdmEzIs7jr3Rq9m1rQ root@ip-10-0-0-5 (ECDSA)
ec2: 256 SHA256:tUr8fy4dc/4J3e7MfqH0i1A+TwWfAT3s0KDN3eGYN9Q root@ip-10-0-0-5 (ED25519)
ec2: 3072 SHA256:n0v+8F0Q1m2xXxD3VbGvZ6yq0eCz3eYp0fN9fT0eLg8 root@ip-10-0-0-5 (RSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3 root@ip-10-0-0-5
-----END SSH HOST KEY KEYS-----
"""


def test_fingerprints_from_console_reads_the_cloud_init_block() -> None:
    assert fingerprints_from_console(CONSOLE) == (
        "SHA256:e2mHgNFkzXKxtGAmbwBQZBLGQ1Ks0bTQgQdBG6gIiA0",
        "SHA256:Yc+2KMrX7mn0DAAe3P1tNzAnOBdmEzIs7jr3Rq9m1rQ",
        "SHA256:tUr8fy4dc/4J3e7MfqH0i1A+TwWfAT3s0KDN3eGYN9Q",
        "SHA256:n0v+8F0Q1m2xXxD3VbGvZ6yq0eCz3eYp0fN9fT0eLg8",
    )


def test_fingerprints_from_console_edge_cases() -> None:
    assert fingerprints_from_console("") == ()
    assert fingerprints_from_console("booting...\nlogin:\n") == ()
    unprefixed = (
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"
        "256 SHA256:AAAA root@h (ED25519)\r\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\r\n"
    )
    assert fingerprints_from_console(unprefixed) == ("SHA256:AAAA",)
    # cut off by the console buffer: no complete block, nothing to pin
    assert fingerprints_from_console(CONSOLE.split("(RSA)")[0]) == ()
    # a later boot printed new keys: the last complete block wins
    reboot = unprefixed.replace("AAAA", "BBBB")
    assert fingerprints_from_console(unprefixed + "reboot\n" + reboot) == ("SHA256:BBBB",)


async def test_console_fingerprint_is_the_key_the_server_presents(instance: Instance) -> None:
    fingerprints = fingerprints_from_console(instance.console())
    assert len(fingerprints) == 1
    async with await connect(instance) as comm:
        assert comm.host_key_fingerprint == fingerprints[0]


# -- connecting ----------------------------------------------------------------------------------


async def test_expected_fingerprint_accepted(instance: Instance) -> None:
    comm = await connect(instance, expected_fingerprints=instance.fingerprints())
    try:
        result, lines = await run(comm, "echo pinned")
        assert (result.exit_status, lines.out) == (0, ["pinned"])
    finally:
        await comm.close()


async def test_host_key_mismatch_fails_closed_without_retrying(instance: Instance) -> None:
    attempts: list[tuple[int, str]] = []
    bogus = "SHA256:" + "A" * 43
    started = time.monotonic()
    with pytest.raises(HostKeyMismatch) as excinfo:
        await connect(
            instance,
            expected_fingerprints=[bogus],
            on_attempt=lambda n, why: attempts.append((n, why)),
        )
    assert time.monotonic() - started < 5
    assert attempts == []
    message = str(excinfo.value)
    assert "\n" not in message
    assert bogus in message and instance.fingerprints()[0] in message
    assert excinfo.value.presented == instance.fingerprints()[0]


async def test_wrong_user_is_auth_failed_naming_the_user(instance: Instance) -> None:
    attempts: list[tuple[int, str]] = []
    with pytest.raises(SshAuthFailed) as excinfo:
        await connect(
            instance,
            username="ec2-user",
            auth_retry_window=1.0,
            on_attempt=lambda n, why: attempts.append((n, why)),
        )
    message = str(excinfo.value)
    assert "'ec2-user'" in message and "check ssh_username" in message
    assert "\n" not in message
    assert isinstance(excinfo.value, SshError) and isinstance(excinfo.value, AmibakeError)
    assert attempts, "a refused key is retried for a while (cloud-init may be late)"


async def test_wrong_key_is_auth_failed(instance: Instance) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(SshAuthFailed):
        await Communicator.connect(
            host=instance.host,
            port=instance.port,
            username="ubuntu",
            private_key=other,
            timeout=10,
            auth_retry_window=0.0,
        )


async def test_connect_waits_for_ssh_to_come_up(
    launch: Callable[..., Instance], latency: Callable[[str], None], engine_cloud: LocalCloud
) -> None:
    latency("fast")
    instance = launch(wait=False)
    assert instance.state() == "pending"
    attempts: list[tuple[int, str]] = []
    started = time.monotonic()
    comm = await connect(instance, timeout=30, on_attempt=lambda n, why: attempts.append((n, why)))
    elapsed = time.monotonic() - started
    try:
        result, lines = await run(comm, "echo up")
        assert (result.exit_status, lines.out) == (0, ["up"])
    finally:
        await comm.close()
    floor = engine_cloud.latency.boot + engine_cloud.latency.ssh_ready
    assert elapsed >= floor * 0.8
    assert elapsed < floor + 5, "retries back off to about 2 s, no more"
    assert len(attempts) >= 2
    assert [n for n, _ in attempts] == list(range(1, len(attempts) + 1))
    assert all(why for _, why in attempts)


async def test_nothing_listening_is_ssh_timeout() -> None:
    port = free_port()
    attempts: list[tuple[int, str]] = []
    started = time.monotonic()
    with pytest.raises(SshTimeout) as excinfo:
        await Communicator.connect(
            host="127.0.0.1",
            port=port,
            username="ubuntu",
            private_key=asyncssh.generate_private_key("ssh-ed25519"),
            timeout=1.5,
            retry_delay=0.1,
            on_attempt=lambda n, why: attempts.append((n, why)),
        )
    elapsed = time.monotonic() - started
    assert 1.3 <= elapsed < 3.0
    message = str(excinfo.value)
    assert f"127.0.0.1:{port}" in message and "ubuntu" in message
    assert "refused" in message.lower()
    assert len(attempts) >= 3


async def test_cancel_during_connect_is_prompt() -> None:
    task = asyncio.create_task(
        Communicator.connect(
            host="127.0.0.1",
            port=free_port(),
            username="ubuntu",
            private_key=asyncssh.generate_private_key("ssh-ed25519"),
            timeout=60,
        )
    )
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5


async def test_cancel_during_handshake_leaves_no_connection() -> None:
    # A server that accepts TCP and never answers: the attempt hangs in the handshake.
    accepted: list[asyncio.StreamWriter] = []
    hung_up: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        with contextlib.suppress(Exception):
            await reader.read()  # returns once the client closed its end
        hung_up.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        task = asyncio.create_task(
            Communicator.connect(
                host="127.0.0.1",
                port=port,
                username="ubuntu",
                private_key=asyncssh.generate_private_key("ssh-ed25519"),
                timeout=60,
            )
        )
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.02)
        assert accepted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):
            if len(hung_up) == len(accepted):
                break
            await asyncio.sleep(0.02)
        assert hung_up == accepted, "the cancelled attempt closed its socket"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# -- running commands ----------------------------------------------------------------------------


async def test_run_streams_stdout_and_stderr_separately(instance: Instance) -> None:
    async with await connect(instance) as comm:
        result, lines = await run(
            comm, "echo one; echo oops >&2; echo two; printf 'no newline'; echo late >&2"
        )
    assert lines.out == ["one", "two", "no newline"]
    assert lines.err == ["oops", "late"]
    assert result.exit_status == 0 and result.exit_signal is None
    assert set(result.tail) == {"one", "two", "no newline", "oops", "late"}


async def test_non_zero_exit_and_tail(instance: Instance) -> None:
    async with await connect(instance) as comm:
        result, lines = await run(comm, "seq 1 50; echo failed >&2; exit 3")
    assert result.exit_status == 3 and result.exit_signal is None
    assert not result.ok
    assert lines.out == [str(i) for i in range(1, 51)]
    assert len(result.tail) == 20
    assert result.tail[-1] == "failed"
    assert result.tail[:-1] == tuple(str(i) for i in range(32, 51))


async def test_exit_signal_is_reported(instance: Instance) -> None:
    async with await connect(instance) as comm:
        result, _ = await run(comm, "kill -KILL $$")
    assert result.exit_status is None or result.exit_status != 0
    assert result.exit_signal == "KILL" or result.exit_status == 137


async def test_env_and_stdin(instance: Instance) -> None:
    env = {"GREETING": "hello world", "QUOTED": 'it\'s "$HOME" `x`', "EMPTY": ""}
    async with await connect(instance) as comm:
        result, lines = await run(
            comm,
            'printf "%s|%s|%s\\n" "$GREETING" "$QUOTED" "$EMPTY"; cat',
            env=env,
            stdin="from stdin\nsecond",
        )
        assert result.exit_status == 0
        assert lines.out == ['hello world|it\'s "$HOME" `x`|', "from stdin", "second"]
        # without stdin the command sees EOF at once instead of hanging
        result, lines = await run(comm, "cat; echo done", timeout=10)
        assert lines.out == ["done"]
        with pytest.raises(SshError):
            await comm.run("true", on_stdout=print, on_stderr=print, env={"BAD NAME": "x"})


async def test_lines_decoding_crlf_and_partial_lines(instance: Instance) -> None:
    async with await connect(instance) as comm:
        result, lines = await run(comm, r"printf 'a\r\nb\377c\n\nd\r\ntail'")
    assert result.exit_status == 0
    assert lines.out == ["a", "b\ufffdc", "", "d", "tail"]


async def test_timeout_stops_the_command(instance: Instance) -> None:
    async with await connect(instance) as comm:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as excinfo:
            await run(comm, "while true; do echo tick >> ~/alive; sleep 0.05; done", timeout=0.5)
        assert time.monotonic() - started < 2.0
        assert "0.5s" in str(excinfo.value)
        await assert_marker_still(comm, "~/alive")
        # a command that ignores TERM gets KILL two seconds later
        started = time.monotonic()
        with pytest.raises(CommandTimeout):
            await run(
                comm,
                "trap '' TERM; while true; do echo tick >> ~/stubborn; sleep 0.05; done",
                timeout=0.5,
            )
        assert 2.0 <= time.monotonic() - started < 5.0
        await assert_marker_still(comm, "~/stubborn")
        # the connection is still usable
        _, lines = await run(comm, "echo still here")
        assert lines.out == ["still here"]


async def assert_marker_still(comm: Communicator, path: str) -> None:
    """The loop that appended to ``path`` every 50 ms is dead: the file no longer grows."""
    _, first = await run(comm, f"wc -c < {path}")
    await asyncio.sleep(0.4)
    _, second = await run(comm, f"wc -c < {path}")
    assert first.out and int(first.out[0]) > 0
    assert first.out == second.out, "the command still runs"


async def test_cancel_during_run_leaves_nothing_running(instance: Instance) -> None:
    token = uuid.uuid4().hex
    async with await connect(instance) as comm:
        started = asyncio.Event()

        def on_stdout(line: str) -> None:
            if line == "started":
                started.set()

        tasks_before = asyncio.all_tasks()
        task = asyncio.create_task(
            comm.run(
                f"echo started; while true; do echo tick >> ~/cancelled-{token}; sleep 0.05; done",
                on_stdout=on_stdout,
                on_stderr=on_stdout,
            )
        )
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.2)
        assert host_processes_matching(token), "the probe sees the running command"
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled_at < 1.0
        await assert_marker_still(comm, f"~/cancelled-{token}")
        # the sandbox's processes are processes of this machine: none is left
        assert host_processes_matching(token) == []
        assert asyncio.all_tasks() - tasks_before - {asyncio.current_task()} == set()


def host_processes_matching(token: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", token], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


async def test_callback_error_stops_the_command_and_propagates(instance: Instance) -> None:
    def explode(line: str) -> None:
        raise ValueError(f"bad line {line}")

    async with await connect(instance) as comm:
        with pytest.raises(ValueError, match="bad line 1"):
            await comm.run("seq 1 100000", on_stdout=explode, on_stderr=explode, timeout=10)
        _, lines = await run(comm, "echo fine")
        assert lines.out == ["fine"]


async def test_200k_lines_arrive_whole_and_in_order(instance: Instance) -> None:
    async with await connect(instance) as comm:
        started = time.monotonic()
        result, lines = await run(comm, "seq 1 200000", timeout=60)
        elapsed = time.monotonic() - started
    assert result.exit_status == 0
    assert len(lines.out) == 200_000
    assert lines.out == [str(i) for i in range(1, 200_001)]
    assert lines.err == []
    assert result.tail == tuple(str(i) for i in range(199_981, 200_001))
    # Generous: the benchmark measures the rate; this only catches a pathological slowdown.
    assert elapsed < 15, f"200,000 lines took {elapsed:.1f}s"


async def test_dropped_connection_is_ssh_disconnected(
    instance: Instance, faults: Callable[[FaultPlan], None], tmp_path: Path
) -> None:
    async with await connect(instance) as comm:
        await comm.upload(b"x" * 200_000, "/home/ubuntu/big.bin")
    faults(FaultPlan([FaultRule(operation="ssh", drop_after_bytes=1000)]))
    comm = await connect(instance)
    try:
        with pytest.raises(SshDisconnected) as excinfo:
            await run(comm, "seq 1 100000", timeout=20)
        assert "\n" not in str(excinfo.value)
        assert isinstance(excinfo.value.__cause__, asyncssh.Error | OSError)
        # and the next command on the dead connection says so as well
        with pytest.raises(SshDisconnected):
            await run(comm, "true")
    finally:
        await comm.close()
    async with await connect(instance) as comm:
        with pytest.raises(SshDisconnected):
            await comm.download("/home/ubuntu/big.bin", tmp_path / "big.bin")
    faults(FaultPlan())
    async with await connect(instance) as comm:
        result, _ = await run(comm, "true")
        assert result.exit_status == 0


# -- files -----------------------------------------------------------------------------------------


async def test_upload_and_download_round_trip(instance: Instance, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096 + b"end"  # 1 MiB and a bit, every byte value
    local = tmp_path / "script.sh"
    local.write_text("#!/bin/sh\necho uploaded script ran\n")
    async with await connect(instance) as comm:
        await comm.upload(payload, "/home/ubuntu/blob.bin")
        await comm.upload(local, "/home/ubuntu/script.sh", mode=0o755)
        result, lines = await run(
            comm,
            "stat -c '%a %s' blob.bin script.sh; ./script.sh",
        )
        assert result.exit_status == 0
        assert lines.out == [
            f"644 {len(payload)}",
            f"755 {local.stat().st_size}",
            "uploaded script ran",
        ]
        # an upload replaces the file
        await comm.upload(b"short", "/home/ubuntu/blob.bin", mode=0o600)
        _, lines = await run(comm, "stat -c '%a %s' blob.bin")
        assert lines.out == ["600 5"]
        await comm.upload(payload, "blob.bin")  # relative to the home directory
        await comm.download("/home/ubuntu/blob.bin", tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == payload


async def test_upload_errors_name_the_path(instance: Instance, tmp_path: Path) -> None:
    async with await connect(instance) as comm:
        with pytest.raises(SshError) as excinfo:
            await comm.upload(b"x", "/etc/amibake-test")
        assert "/etc/amibake-test" in str(excinfo.value)
        assert "permission denied" in str(excinfo.value)
        with pytest.raises(SshError) as excinfo:
            await comm.upload(b"x", "/home/ubuntu/no/such/dir/file")
        assert "/home/ubuntu/no/such/dir/file" in str(excinfo.value)
        # nothing was created on the way
        _, lines = await run(comm, "test -e /home/ubuntu/no && echo exists || echo absent")
        assert lines.out == ["absent"]
        with pytest.raises(SshError) as excinfo:
            await comm.download("/home/ubuntu/missing.txt", tmp_path / "missing.txt")
        assert "/home/ubuntu/missing.txt" in str(excinfo.value)
        with pytest.raises(SshError):
            await comm.upload(tmp_path / "not-there", "/home/ubuntu/x")
