"""Benchmark: the build monitor under a provisioner printing 1,000,000 lines.

Run with ``.venv/bin/python tests/bench/bench_monitor.py [--lines N]``. Not part of the
default test run. The local cloud runs in a subprocess (``amibake local serve``) so this
process holds only what the TUI holds (an in-process cloud alone is ~230 MB RSS).

Reports, from one run:

* key press -> screen: a probe key is pressed every 20 ms during the flood; the time from
  the key being sent to the screen having refreshed with its effect (p50 / p95 / max);
* end-to-end throughput (instance -> engine -> pane): lines per second from the first line
  reaching the pane to the last, against a bare asyncssh client reading the same command's
  output (``async for line in process.stdout``) on an instance of the same cloud;
* RSS: peak of this process (ru_maxrss), the UI's; and of the build's child process
  (``python -m amibake.tui build --json``, which runs the engine) sampled during the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEMPLATE = """
source "amazon-ebs" "flood" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "amibake-bench-flood-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  skip_create_ami = true
  source_ami_filter {
    filters = { name = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*" }
    owners      = ["099720109477"]
    most_recent = true
  }
}
build {
  sources = ["source.amazon-ebs.flood"]
  provisioner "shell" {
    inline = ["seq 1 LINES"]
  }
}
"""


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # the process is gone
        pass
    return 0.0


def start_cloud(data_dir: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "amibake"),
            "local",
            "serve",
            "--latency",
            "instant",
            "--data-dir",
            data_dir,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"endpoint\s+(http://\S+)", line)
        if match:
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("the local cloud did not start")


async def bare_client(endpoint: str, lines: int) -> float:
    """Seconds for a bare asyncssh client to read ``seq 1 N`` line by line on a fresh instance."""
    import asyncssh
    import boto3

    from amibake.core.ssh import fingerprints_from_console

    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key = asyncssh.generate_private_key("ssh-ed25519")
    name = f"bench-monitor-{os.getpid()}"
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.export_public_key("openssh"))
    images = ec2.describe_images(
        Owners=["099720109477"],
        Filters=[
            {
                "Name": "name",
                "Values": ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"],
            }
        ],
    )["Images"]
    image = max(images, key=lambda i: i["CreationDate"])["ImageId"]
    instance = ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=name
    )["Instances"][0]["InstanceId"]
    try:
        while True:
            described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0][
                "Instances"
            ][0]
            console = ec2.get_console_output(InstanceId=instance).get("Output") or ""
            if described["State"]["Name"] == "running" and fingerprints_from_console(console):
                break
            await asyncio.sleep(0.05)
        host = described["PublicIpAddress"]
        port = 2222
        for tag in described.get("Tags", []):
            if tag["Key"] == "amibake:local:ssh-port":
                port = int(tag["Value"])
        async with asyncssh.connect(
            host, port, username="ubuntu", client_keys=[key], known_hosts=None, agent_path=None
        ) as conn:
            best = float("inf")
            for _ in range(2):
                started = time.perf_counter()
                process = await conn.create_process(f"seq 1 {lines}")
                count = 0
                async for line in process.stdout:
                    count += line.endswith("\n")
                await process.wait()
                best = min(best, time.perf_counter() - started)
                assert count == lines, count
        return best
    finally:
        ec2.terminate_instances(InstanceIds=[instance])
        ec2.delete_key_pair(KeyName=name)


async def run_monitor(endpoint: str, lines: int) -> dict[str, Any]:
    from textual import events
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import Static

    from amibake.core.aws import Target
    from amibake.core.templates import loads
    from amibake.tui.build_runner import runs
    from amibake.tui.host import quit_app
    from amibake.tui.screens.monitor import MonitorScreen
    from amibake.tui.widgets.log_view import BuildLogView

    class Session:
        target = Target(endpoint_url=endpoint, access_key_id="testing", secret_access_key="testing")
        region = "us-east-1"
        ssh_port = 2222
        local_cloud = None
        settings = None

    probe_done: list[float] = []

    class BenchApp(App[None]):
        BINDINGS: ClassVar = [Binding("ctrl+t", "probe", "probe", id="bench.probe", priority=True)]

        def __init__(self) -> None:
            super().__init__()
            self.session = Session()
            self.probes = 0

        def compose(self) -> ComposeResult:
            yield Static("bench")

        def action_probe(self) -> None:
            self.probes += 1
            self.screen.sub_title = f"probe {self.probes}"
            self.screen.refresh()
            self.call_after_refresh(lambda: probe_done.append(time.perf_counter()))

        def action_quit(self) -> None:  # type: ignore[override]
            quit_app(self)

    text = TEMPLATE.replace("LINES", str(lines))
    spec = loads(text, file="flood.pkr.hcl", format="hcl")
    app = BenchApp()
    latencies: list[float] = []
    peak_during = 0.0
    child_peak = 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(MonitorScreen(spec, None, template_text=text))
        while not runs(app):
            await pilot.pause(0.01)
        run = runs(app)[0]
        await pilot.pause(0.2)
        view = app.screen.query_one(BuildLogView)
        state = run.states["flood"]
        first_line_at = None
        deadline = time.monotonic() + 600
        while view.total < lines and not run.finished.is_set() and time.monotonic() < deadline:
            if first_line_at is None and view.total > 0:
                first_line_at = time.perf_counter() - 0.1  # the first batch waited <= 0.1 s
            if view.total > 0:
                before = len(probe_done)
                sent = time.perf_counter()
                # as the terminal driver does: a Key event into the app's queue
                app.post_message(events.Key("ctrl+t", None))
                while len(probe_done) == before:
                    await asyncio.sleep(0.001)
                latencies.append(probe_done[-1] - sent)
                peak_during = max(peak_during, rss_mb())
                if run.pid is not None:
                    child_peak = max(child_peak, rss_mb(run.pid))
            await asyncio.sleep(0.02)
        pane_done = time.perf_counter()
        pane_lines = view.total
        await run.wait(120)
        result = {
            "status": state.status,
            "error": state.error,
            "pane_lines": pane_lines,
            "pane_seconds": pane_done - (first_line_at or pane_done),
            "latencies": latencies,
            "rss_during": peak_during,
            "rss_child": child_peak,
            "buffer": view.line_count,
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["AMIBAKE_HOME"] = home
        process, endpoint = start_cloud(os.path.join(home, "cloud"))
        try:
            bare = asyncio.run(bare_client(endpoint, args.lines))
            monitor = asyncio.run(run_monitor(endpoint, args.lines))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    latencies = sorted(monitor["latencies"])
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else float("nan")
    pane_rate = monitor["pane_lines"] / monitor["pane_seconds"] if monitor["pane_seconds"] else 0
    bare_rate = args.lines / bare
    print(f"{args.lines:,} lines of `seq` through the build monitor (one run):")
    print(f"  build status              {monitor['status']} {monitor['error'] or ''}")
    print(
        f"  key press -> screen       p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
        f"({len(latencies)} presses during the flood)"
    )
    print(
        f"  pane throughput           {pane_rate:,.0f} lines/s "
        f"({monitor['pane_lines']:,} lines in {monitor['pane_seconds']:.2f} s)"
    )
    print(f"  bare asyncssh (lines)     {bare_rate:,.0f} lines/s ({bare:.2f} s)")
    print(f"  ratio pane / bare         {pane_rate / bare_rate:.2f}")
    print(
        f"  RSS                       peak {peak:.0f} MB "
        f"(during the flood {monitor['rss_during']:.0f} MB); "
        f"pane buffer {monitor['buffer']:,} lines"
    )
    print(f"  RSS of the build process  {monitor['rss_child']:.0f} MB during the flood")
    return 0


if __name__ == "__main__":
    sys.exit(main())
