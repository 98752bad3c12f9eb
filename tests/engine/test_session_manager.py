"""``ssh_interface = "session_manager"`` with AWS's plugin on PATH (issue 12).

The local cloud has no Systems Manager (a build there says so in one line: see
tests/engine/test_ssh_options.py), so what real AWS does is played here by two stand-ins:

* an SSM endpoint in the test (a loopback HTTP server speaking SSM's JSON protocol) that
  answers StartSession (the first time with TargetNotConnected, as while the instance's
  agent registers) and TerminateSession, and records both;
* a stub ``session-manager-plugin`` on PATH that records its arguments, listens on the
  ``localPortNumber`` the session asked for and forwards each connection to the instance's
  sshd at ``portNumber`` (what the SSM agent does on the instance).

Real: the engine's ConnectStep, boto3 over HTTP, the plugin started as a process with the
arguments the AWS CLI gives it, and asyncssh through the forwarded port to a local-cloud
instance, its host key checked against that instance's console output.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Aws, Target
from amibake.core.engine.context import BuildContext, BuildOptions
from amibake.core.engine.provisioners.common import reconnect
from amibake.core.engine.steps.ssh_connect import ConnectStep
from amibake.core.errors import AmibakeError
from amibake.core.events import Event, Message
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from tests.templates.helpers import load_text

from .conftest import Instance

PLUGIN = """#!{python}
import json, os, socket, sys, threading

with open(os.environ["STUB_PLUGIN_LOG"], "a") as log:
    log.write(json.dumps({{"pid": os.getpid(), "argv": sys.argv[1:]}}) + "\\n")
if os.environ.get("STUB_PLUGIN_FAIL"):
    print("Cannot perform start session: " + os.environ["STUB_PLUGIN_FAIL"], flush=True)
    sys.exit(255)
session, region, operation, profile, parameters, endpoint = sys.argv[1:7]
ports = json.loads(parameters)["Parameters"]
local, remote = int(ports["localPortNumber"][0]), int(ports["portNumber"][0])
agent_host = os.environ["STUB_PLUGIN_INSTANCE_HOST"]  # the instance's own sshd
server = socket.create_server(("127.0.0.1", local))
print("Starting session with SessionId: " + json.loads(session)["SessionId"], flush=True)
print("Port %d opened for sessionId %s." % (local, json.loads(session)["SessionId"]), flush=True)
print("Waiting for connections...", flush=True)


def pipe(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


while True:
    client, _ = server.accept()
    print("Connection accepted for session", flush=True)
    one = os.environ.get("STUB_PLUGIN_ONE_CONNECTION")
    if one:  # a session that ends with its connection (as when the instance reboots)
        server.close()
    upstream = socket.create_connection((agent_host, remote))
    pipes = [
        threading.Thread(target=pipe, args=(client, upstream), daemon=True),
        threading.Thread(target=pipe, args=(upstream, client), daemon=True),
    ]
    for thread in pipes:
        thread.start()
    if one:
        for thread in pipes:
            thread.join()
        print("Session ended", flush=True)
        sys.exit(0)
"""


@dataclass
class FakeSsm:
    """The SSM endpoint: what it was asked, and how many TargetNotConnected to answer first."""

    not_connected: int = 1
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    url: str = ""
    started: int = 0


@pytest.fixture
def ssm() -> Iterator[FakeSsm]:
    fake = FakeSsm()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            action = self.headers["X-Amz-Target"].split(".", 1)[1]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            signer = self.headers.get("Authorization", "")
            fake.calls.append((action, body, signer))
            if action == "StartSession" and fake.not_connected > 0:
                fake.not_connected -= 1
                self.answer(400, {"__type": "TargetNotConnected", "message": "not connected"})
            elif action == "StartSession":
                fake.started += 1
                number = "" if fake.started == 1 else f"-{fake.started}"
                self.answer(
                    200,
                    {
                        "SessionId": "builder-0a1b2c3d4e5f6" + number,
                        "TokenValue": "session-token",
                        "StreamUrl": "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/x",
                    },
                )
            else:
                self.answer(200, {"SessionId": body.get("SessionId", "")})

        def answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stub plugin, alone on PATH's first folder; returns its argument log."""
    folder = tmp_path / "bin"
    folder.mkdir()
    stub = folder / "session-manager-plugin"
    stub.write_text(PLUGIN.format(python=sys.executable))
    stub.chmod(0o755)
    log = tmp_path / "plugin.log"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STUB_PLUGIN_LOG", str(log))
    return log


def context(
    cloud: LocalCloud,
    ssm: FakeSsm,
    events: list[Event],
    instance: Instance | None = None,
) -> BuildContext:
    spec = load_text(
        json.dumps(
            {
                "builders": [
                    {
                        "type": "amazon-ebs",
                        "region": "us-east-1",
                        "source_ami": "ami-0123456789abcdef0",
                        "instance_type": "t3.micro",
                        "ssh_username": "ubuntu",
                        "ssh_interface": "session_manager",
                        "iam_instance_profile": "ssm-core",
                        "ssh_timeout": "60s",
                        "pause_before_ssm": "0s",
                        "ami_name": "ssm-test",
                    }
                ]
            }
        )
    )
    # The build's target: EC2 at the local cloud, SSM at the stand-in. The user's target
    # (options.target) is AWS's default chain: not the local cloud, so the plugin path runs.
    aws = Aws(
        Target(
            endpoint_url=ssm.url,
            ec2_endpoint_url=cloud.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
            profile=None,
        )
    )
    ctx = BuildContext(
        spec=spec,
        builder=spec.builders[0],
        aws=aws,
        options=BuildOptions(
            target=Target(),
            ssh_port=instance.port if instance else 22,
            console_wait=10.0,
            verify_host_key=instance is not None,
        ),
        emit_event=events.append,
    )
    ctx.instance_id = instance.id if instance else "i-0123456789abcdef0"
    ctx.ssh_host = "localhost"  # Packer's address for a session manager build
    ctx.private_key = instance.key if instance else None
    return ctx


def said(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Message)]


async def said_back(ctx: BuildContext, text: str) -> list[str]:
    """What ``echo text`` prints on the instance, over the build's connection."""
    assert ctx.communicator is not None
    lines: list[str] = []
    result = await ctx.communicator.run(
        f"echo {text}", on_stdout=lines.append, on_stderr=lines.append
    )
    assert result.ok
    return lines


async def test_ssh_goes_through_the_plugins_port_forward(
    engine_cloud: LocalCloud,
    ssm: FakeSsm,
    instance: Instance,
    plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STUB_PLUGIN_INSTANCE_HOST", instance.host)
    events: list[Event] = []
    ctx = context(engine_cloud, ssm, events, instance)
    step = ConnectStep()
    try:
        await step.run(ctx)
        assert await said_back(ctx, "via-ssm") == ["via-ssm"]
    finally:
        await step.cleanup(ctx)
        ctx.aws.close()
    # StartSession: retried after TargetNotConnected, then the port forward Packer asks for
    starts = [body for action, body, _ in ssm.calls if action == "StartSession"]
    (record,) = [json.loads(line) for line in plugin.read_text().splitlines()]
    argv = record["argv"]
    local_port = int(json.loads(argv[4])["Parameters"]["localPortNumber"][0])
    expected = {
        "Target": instance.id,
        "DocumentName": "AWS-StartPortForwardingSession",
        "Parameters": {"portNumber": [str(instance.port)], "localPortNumber": [str(local_port)]},
    }
    assert starts == [expected, expected]
    assert all(FAKE_ACCESS_KEY in signer for _, _, signer in ssm.calls)
    # the plugin's arguments: session, region, operation, profile, parameters, SSM endpoint
    assert json.loads(argv[0]) == {
        "SessionId": "builder-0a1b2c3d4e5f6",
        "TokenValue": "session-token",
        "StreamUrl": "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/x",
    }
    assert argv[1:4] == ["us-east-1", "StartSession", ""]
    assert json.loads(argv[4]) == expected
    assert argv[5] == ssm.url
    # SSH went to the plugin's local end and reached the instance: its host key matched
    # the console output of that instance
    messages = said(events)
    assert f"Connecting to 127.0.0.1:{local_port} as ubuntu" in messages
    assert any(m.endswith("(verified against the console output)") for m in messages)
    assert (
        f"session-manager-plugin: Port {local_port} opened for sessionId "
        "builder-0a1b2c3d4e5f6." in messages
    )
    assert any("SSM agent is not connected yet" in m for m in messages)
    # cleanup: the session terminated, the plugin stopped
    assert ssm.calls[-1][:2] == ("TerminateSession", {"SessionId": "builder-0a1b2c3d4e5f6"})
    with pytest.raises(ProcessLookupError):
        os.kill(record["pid"], 0)


async def test_a_plugin_that_exits_ends_the_wait_with_its_last_line(
    engine_cloud: LocalCloud, ssm: FakeSsm, plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_PLUGIN_FAIL", "SessionManagerPlugin could not reach the target")
    ssm.not_connected = 0
    events: list[Event] = []
    ctx = context(engine_cloud, ssm, events)
    step = ConnectStep()
    try:
        with pytest.raises(AmibakeError) as failed:
            await step.run(ctx)
    finally:
        await step.cleanup(ctx)
        ctx.aws.close()
    assert str(failed.value) == (
        "session-manager-plugin exited with status 255 before SSH connected through it: "
        "Cannot perform start session: SessionManagerPlugin could not reach the target"
    )
    assert [action for action, _, _ in ssm.calls] == ["StartSession", "TerminateSession"]


async def test_a_session_that_ends_is_started_again_for_the_next_connection(
    engine_cloud: LocalCloud,
    ssm: FakeSsm,
    instance: Instance,
    plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in Packer, once SSH is up a session that ends (the plugin exits: here with its
    connection, as when a provisioner reboots the instance) is replaced by a new one on the
    same local port, so the provisioner's reconnect finds a tunnel again."""
    monkeypatch.setenv("STUB_PLUGIN_INSTANCE_HOST", instance.host)
    monkeypatch.setenv("STUB_PLUGIN_ONE_CONNECTION", "1")
    ssm.not_connected = 0
    events: list[Event] = []
    ctx = context(engine_cloud, ssm, events, instance)
    step = ConnectStep()
    try:
        await step.run(ctx)
        await reconnect(ctx)  # closes the first connection, which ends the first session
        assert await said_back(ctx, "again") == ["again"]
    finally:
        await step.cleanup(ctx)
        ctx.aws.close()
    records = [json.loads(line) for line in plugin.read_text().splitlines()]
    ports = {json.loads(r["argv"][4])["Parameters"]["localPortNumber"][0] for r in records}
    assert len(records) == 2 and len(ports) == 1
    assert [(action, body.get("SessionId")) for action, body, _ in ssm.calls] == [
        ("StartSession", None),
        ("TerminateSession", "builder-0a1b2c3d4e5f6"),
        ("StartSession", None),
        ("TerminateSession", "builder-0a1b2c3d4e5f6-2"),
    ]
    port = ports.pop()
    assert (
        f"session-manager-plugin exited with status 0: starting a new SSM session on "
        f"127.0.0.1:{port}" in said(events)
    )
