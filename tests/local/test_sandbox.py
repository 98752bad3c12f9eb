"""The instance sandbox, with real processes: bubblewrap where it works, plain mode everywhere."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import amibake.core.local.sandbox as sandbox_module
from amibake.core.errors import LocalCloudError
from amibake.core.local.sandbox import Sandbox, find_bubblewrap

USER = "ubuntu"
HOSTNAME = "ip-127-0-0-9"

needs_bwrap = pytest.mark.skipif(find_bubblewrap() is None, reason="bubblewrap does not work here")


def session_members(sid: int) -> list[int]:
    """Host pids whose session id is ``sid`` (the trees a sandbox starts lead their session)."""
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


async def run(sandbox: Sandbox, command: str, **env: str) -> tuple[int | None, str, str]:
    process = await sandbox.start_process(command, env or None)
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    await sandbox.kill(process)
    sandbox.release(process)
    return process.returncode, out.decode(), err.decode()


async def _sandbox(tmp_path: Path, mode: str) -> AsyncIterator[Sandbox]:
    if mode == "isolated" and find_bubblewrap() is None:
        pytest.skip("bubblewrap does not work here")
    sandbox = Sandbox(tmp_path / f"i-{mode}", USER, HOSTNAME, isolate=mode == "isolated")
    sandbox.ensure_layout()
    yield sandbox
    await sandbox.kill_all()


@pytest.fixture
async def isolated(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async for sandbox in _sandbox(tmp_path, "isolated"):
        yield sandbox


@pytest.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async for sandbox in _sandbox(tmp_path, "plain"):
        yield sandbox


@pytest.fixture(params=["isolated", "plain"])
async def any_sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sandbox]:
    async for sandbox in _sandbox(tmp_path, request.param):
        yield sandbox


# -- bubblewrap mode -------------------------------------------------------------------------


@needs_bwrap
async def test_refuses_writes_outside_the_instance_directory(isolated: Sandbox) -> None:
    name = f"amibake-test-{uuid.uuid4().hex}"
    targets = [f"{d}/{name}" for d in ("/etc", "/root", "", "/usr/bin", "/var/lib", "/work")]
    status, out, err = await run(
        isolated,
        f"for p in {' '.join(targets)}; do"
        '  if touch "$p" 2>/dev/null; then echo "WROTE $p"; else echo refused; fi; done',
    )
    assert status == 0, err
    assert out.split() == ["refused"] * len(targets)
    for path in targets:
        assert not os.path.lexists(path)
    _, _, err = await run(isolated, f"touch /etc/{name}")
    assert "Read-only file system" in err


@needs_bwrap
async def test_guest_identity_and_hidden_host_dirs(isolated: Sandbox) -> None:
    status, out, _ = await run(
        isolated,
        "id -u; id -g; whoami; hostname; pwd; echo $HOME; ls -A /root | wc -l; ls -A /home;"
        " cat /etc/shadow >/dev/null 2>&1 || echo no-shadow",
    )
    assert status == 0
    lines = out.split()
    uid_expected = "1000" if sandbox_module._bwrap_can_map_uid(find_bubblewrap() or "") else None
    if uid_expected:
        assert lines[:2] == ["1000", "1000"]
    assert lines[2:8] == [USER, HOSTNAME, f"/home/{USER}", f"/home/{USER}", "0", USER]
    assert lines[8] == "no-shadow"
    assert isolated.isolated


@needs_bwrap
async def test_no_network_inside(isolated: Sandbox) -> None:
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 to probe the network with")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        probe = (
            "import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')\n"
            "except OSError as e:\n"
            "    print('refused', e.errno)\n"
        )
        status, out, err = await run(isolated, f'{python} -c "$PROBE"', PROBE=probe)
        assert status == 0, err
        assert "refused" in out
    finally:
        server.close()
        await server.wait_closed()


@needs_bwrap
async def test_files_persist_in_the_instance_directory(isolated: Sandbox, tmp_path: Path) -> None:
    status, _, err = await run(
        isolated,
        "echo hello > ~/note && mkdir -p /opt/app /usr/local/bin && echo x > /opt/app/f"
        " && echo y > /usr/local/bin/tool && echo t > /tmp/scratch",
    )
    assert status == 0, err
    assert (isolated.host_dir(isolated.home) / "note").read_text() == "hello\n"
    assert (isolated.host_dir("/opt") / "app" / "f").read_text() == "x\n"
    assert (isolated.host_dir("/usr/local") / "bin" / "tool").read_text() == "y\n"
    for guest in Sandbox.PERSISTENT_DIRS:
        assert isolated.host_dir(guest).is_relative_to(tmp_path / "i-isolated")
    # a "restart": a new Sandbox on the same directory sees the same files, /tmp wiped at boot
    again = Sandbox(isolated.instance_dir, USER, HOSTNAME, isolate=True)
    again.clear_tmp()
    status, out, _ = await run(again, "cat ~/note /opt/app/f; ls -A /tmp | wc -l")
    assert out.split() == ["hello", "x", "0"]


@needs_bwrap
async def test_kill_all_tears_down_the_pid_namespace(isolated: Sandbox) -> None:
    process = await isolated.start_process(
        "sleep 30 & sleep 31 & (trap '' TERM HUP; sleep 32) & echo ready; wait"
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 10) == b"ready\n"
    assert len(session_members(process.pid)) >= 5  # bwrap, its init, sh, three sleeps
    await isolated.kill_all()
    assert process.returncode is not None
    assert session_members(process.pid) == []
    assert isolated.running_processes == []


@needs_bwrap
async def test_signal_reaches_command_not_bwrap(isolated: Sandbox) -> None:
    process = await isolated.start_process(
        "trap 'echo trapped; exit 7' TERM; echo ready; sleep 30 & wait"
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 10) == b"ready\n"
    isolated.send_signal(process, signal.SIGTERM)
    out = await asyncio.wait_for(process.stdout.read(), 10)
    await process.wait()
    assert out == b"trapped\n"
    assert isolated.exit_outcome(process) == (7, None)
    await isolated.kill(process)


def test_isolate_true_without_bubblewrap_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_module, "find_bubblewrap", lambda: None)
    with pytest.raises(LocalCloudError) as caught:
        Sandbox(tmp_path / "i", USER, HOSTNAME, isolate=True)
    assert "\n" not in str(caught.value)
    assert "bubblewrap" in str(caught.value)


def test_default_isolation_follows_bubblewrap(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "i", USER, HOSTNAME)
    assert sandbox.isolated == (find_bubblewrap() is not None)


# -- plain (not isolated) mode --------------------------------------------------------------


async def test_plain_mode_confines_cwd_and_home_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox_module, "_warned_not_isolated", False)
    with caplog.at_level(logging.WARNING, logger="amibake.core.local.sandbox"):
        sandbox = Sandbox(tmp_path / "i-plain", USER, HOSTNAME, isolate=False)
        Sandbox(tmp_path / "i-other", USER, HOSTNAME, isolate=False)
    warnings = [r for r in caplog.records if "NOT isolated" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not per instance
    assert not sandbox.isolated
    sandbox.ensure_layout()
    status, out, _ = await run(sandbox, 'pwd -P; echo "$HOME"; echo "$TMPDIR"; echo "$USER"')
    home = sandbox.host_dir(sandbox.home).resolve()
    assert status == 0
    assert out.split() == [str(home), str(home), str(sandbox.host_dir("/tmp")), USER]
    assert home.is_relative_to((tmp_path / "i-plain").resolve())
    status, _, _ = await run(sandbox, "echo kept > note")
    assert (home / "note").read_text() == "kept\n"


async def test_plain_mode_kill_all_reaches_other_process_groups(plain: Sandbox) -> None:
    # set -m puts the background job in its own process group (job control)
    process = await plain.start_process("set -m; sleep 30 & sleep 31 & echo ready; wait")
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 10) == b"ready\n"
    assert len(session_members(process.pid)) == 3
    await plain.kill_all()
    assert session_members(process.pid) == []


# -- both modes --------------------------------------------------------------------------


async def test_exit_status_stdout_stderr_env(any_sandbox: Sandbox) -> None:
    status, out, err = await run(
        any_sandbox, 'echo "out $GREETING"; echo err >&2; exit 4', GREETING="hi"
    )
    assert (status, out, err) == (4, "out hi\n", "err\n")


async def test_kill_after_the_end_takes_what_it_left_and_scans_a_bounded_number_of_times(
    any_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[int] = []
    table = sandbox_module._process_table

    def counted() -> list[Any]:
        scans.append(1)
        return table()

    monkeypatch.setattr(sandbox_module, "_process_table", counted)
    # a job in a process group of its own outlives the command (job control)
    process = await any_sandbox.start_process("set -m; sleep 30 >/dev/null 2>&1 & echo ready")
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 10) == b"ready\n"
    await asyncio.wait_for(process.wait(), 10)
    await any_sandbox.kill(process)
    assert session_members(process.pid) == []
    # a pass kills it (bubblewrap: the namespace's init, which takes the job along), the next
    # finds nothing (a zombie is not looked for again; a dying process may still read alive
    # for an instant, so the passes are capped), one more after the reap. Under bubblewrap the
    # namespace can already be gone when the kill starts: then one pass finds nothing.
    scanned = len(scans)
    assert 1 <= scanned <= 10
    await any_sandbox.kill(process)  # sshd kills at the end and again when the client leaves
    assert len(scans) == scanned


async def test_signal_is_reported_as_signal(any_sandbox: Sandbox) -> None:
    process = await any_sandbox.start_process("echo ready; sleep 30")
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 10) == b"ready\n"
    any_sandbox.send_signal(process, signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 10)
    assert any_sandbox.exit_outcome(process) == (None, signal.SIGTERM)
    await any_sandbox.kill(process)
    assert session_members(process.pid) == []


async def test_exit_128_plus_n_without_a_signal_stays_a_status(any_sandbox: Sandbox) -> None:
    status, _, _ = await run(any_sandbox, "exit 143")
    assert status == 143


async def test_clear_tmp_wipes_tmp_but_not_home(any_sandbox: Sandbox) -> None:
    tmp = any_sandbox.host_dir("/tmp")
    (tmp / "dir").mkdir()
    (tmp / "dir" / "f").write_text("x")
    (tmp / "link").symlink_to(any_sandbox.host_dir(any_sandbox.home))
    (any_sandbox.host_dir("/var/tmp") / "g").write_text("y")
    (any_sandbox.host_dir(any_sandbox.home) / "keep").write_text("z")
    any_sandbox.clear_tmp()
    assert list(tmp.iterdir()) == []
    assert list(any_sandbox.host_dir("/var/tmp").iterdir()) == []
    assert (any_sandbox.host_dir(any_sandbox.home) / "keep").read_text() == "z"
    assert tmp.is_dir() and (tmp.stat().st_mode & 0o1777) == 0o1777


async def test_pty_process_has_a_terminal(any_sandbox: Sandbox) -> None:
    process = await any_sandbox.start_process(
        "test -t 0 && test -t 1 && echo tty; stty size; echo $TERM",
        term_type="xterm-256color",
        term_size=(120, 40),
    )
    assert process.stdout is not None and process.stderr is None
    chunks = []
    while True:
        try:
            chunk = await asyncio.wait_for(process.stdout.read(4096), 10)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    await process.wait()
    any_sandbox.release(process)
    assert b"".join(chunks).split() == [b"tty", b"40", b"120", b"xterm-256color"]


def test_ensure_layout_is_idempotent(any_sandbox: Sandbox) -> None:
    any_sandbox.ensure_layout()
    any_sandbox.ensure_layout()
    for guest in any_sandbox.writable_dirs:
        assert any_sandbox.host_dir(guest).is_dir()
    assert "ubuntu:x:" in (any_sandbox.instance_dir / "etc" / "passwd").read_text()


# -- the SFTP view (map_path) --------------------------------------------------------------


def test_map_path_writable_dirs_map_into_the_instance(plain: Sandbox) -> None:
    home = plain.host_dir(plain.home)
    assert plain.map_path(f"/home/{USER}/a/b", write=True) == home / "a" / "b"
    assert plain.map_path("relative.txt", write=True) == home / "relative.txt"
    assert plain.map_path("/tmp/x", write=True) == plain.host_dir("/tmp") / "x"
    assert plain.map_path("/usr/local/bin/t", write=True) == plain.host_dir("/usr/local") / "bin/t"
    # read-only host paths are the host's own; the generated /etc files are the instance's
    assert plain.map_path("/usr/bin", write=False) == Path("/usr/bin")
    assert plain.map_path("/etc/hostname", write=False) == plain.instance_dir / "etc/hostname"


@pytest.mark.parametrize(
    "path", ["/etc/x", "/usr/bin/x", "/x", "/home/other/x", "/home/x", "/var/lib/x"]
)
def test_map_path_refuses_writes_outside(plain: Sandbox, path: str) -> None:
    with pytest.raises(PermissionError):
        plain.map_path(path, write=True)


@pytest.mark.parametrize("path", ["/root/.bashrc", "/etc/shadow", "/proc/self/environ", "/dev/sda"])
def test_map_path_hides_private_host_paths(plain: Sandbox, path: str) -> None:
    with pytest.raises(PermissionError):
        plain.map_path(path, write=False)


def test_map_path_resolves_symlinks_as_the_guest(plain: Sandbox) -> None:
    home = plain.host_dir(plain.home)
    (home / "etc-link").symlink_to("/etc")
    (home / "tmp-link").symlink_to("/tmp")
    (home / "up").symlink_to("../../..")
    # an absolute target means the guest's root: writes through it are refused...
    with pytest.raises(PermissionError):
        plain.map_path(f"/home/{USER}/etc-link/cron.d/x", write=True)
    # ...and /tmp through a link is the instance's /tmp, not the host's
    assert plain.map_path("tmp-link/f", write=True) == plain.host_dir("/tmp") / "f"
    # ".." cannot climb out of the guest root
    assert plain.map_path("up/../../etc/passwd", write=False) == plain.instance_dir / "etc/passwd"
    # without following, the link itself is what we get (unlink, lstat)
    assert plain.map_path("etc-link", write=True, follow_symlinks=False) == home / "etc-link"
    (home / "loop").symlink_to("loop")
    with pytest.raises(OSError):
        plain.map_path("loop/x", write=False)
