"""Benchmark: streaming a command's output through amibake.core.ssh.Communicator.run.

Run with ``.venv/bin/python tests/bench/bench_ssh.py [--lines N] [--rounds R]``. Not part of
the default test run.

A local-cloud instance runs ``seq 1 N`` (1,000,000 short lines by default) and its output is
received three ways, alternating, in the same process and run:

* ``communicator``: ``Communicator.run`` with a callback per line (what the engine does);
* ``asyncssh run()``: bare ``conn.run()``, which only collects the output into one string
  (the floor: no line splitting, no callbacks);
* ``asyncssh lines``: ``conn.create_process()`` and ``async for line in process.stdout``, the
  obvious way to stream lines with asyncssh (for reference).

Reports the best of each as lines per second and the communicator's ratio to the floor. The
SSH server runs in this process too (the local cloud's loop thread), so both sides share one
GIL; figures are for comparison within the run, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncssh  # noqa: E402

from amibake.core.local.cloud import LocalCloud, running_cloud  # noqa: E402
from amibake.core.ssh import Communicator, fingerprints_from_console  # noqa: E402

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"


def launch(cloud: LocalCloud, key: asyncssh.SSHKey) -> tuple[Any, str, str, str]:
    ec2 = cloud.client("ec2", "us-east-1")
    key_name = f"bench-ssh-{int(time.time())}"
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=key.export_public_key("openssh"))
    images = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"]
    image_id = max(images, key=lambda i: i["CreationDate"])["ImageId"]
    instance_id = ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=key_name
    )["Instances"][0]["InstanceId"]
    deadline = time.monotonic() + 30
    while True:
        described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"
        ][0]
        console = ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
        if described["State"]["Name"] == "running" and fingerprints_from_console(console):
            return ec2, key_name, instance_id, described["PublicIpAddress"]
        if time.monotonic() > deadline:
            raise SystemExit(f"{instance_id} did not boot")
        time.sleep(0.05)


async def measure(host: str, port: int, key: asyncssh.SSHKey, lines: int, rounds: int) -> dict:
    command = f"seq 1 {lines}"
    comm = await Communicator.connect(
        host=host, port=port, username="ubuntu", private_key=key, timeout=30
    )
    conn = await asyncssh.connect(
        host, port, username="ubuntu", client_keys=[key], known_hosts=None, agent_path=None
    )
    samples: dict[str, list[float]] = {
        "communicator": [],
        "asyncssh run()": [],
        "asyncssh lines": [],
    }
    try:
        for _ in range(rounds):
            received = 0

            def count(_line: str) -> None:
                nonlocal received
                received += 1

            started = time.perf_counter()
            result = await comm.run(command, on_stdout=count, on_stderr=count)
            samples["communicator"].append(time.perf_counter() - started)
            assert result.exit_status == 0 and received == lines, (result, received)

            started = time.perf_counter()
            completed = await conn.run(command, check=True)
            samples["asyncssh run()"].append(time.perf_counter() - started)
            assert isinstance(completed.stdout, str) and completed.stdout.count("\n") == lines

            started = time.perf_counter()
            process = await conn.create_process(command)
            streamed = 0
            async for line in process.stdout:
                streamed += line.endswith("\n")  # asyncssh also yields a final ""
            await process.wait()
            samples["asyncssh lines"].append(time.perf_counter() - started)
            assert streamed == lines, streamed
    finally:
        await comm.close()
        conn.close()
        await conn.wait_closed()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    key = asyncssh.generate_private_key("ssh-ed25519")
    with tempfile.TemporaryDirectory() as data_dir:
        own = running_cloud() is None
        cloud = LocalCloud(latency="instant", data_dir=data_dir).start() if own else running_cloud()
        assert cloud is not None
        ec2, key_name, instance_id, host = launch(cloud, key)
        try:
            samples = asyncio.run(measure(host, cloud.ssh_port, key, args.lines, args.rounds))
        finally:
            ec2.terminate_instances(InstanceIds=[instance_id])
            ec2.delete_key_pair(KeyName=key_name)
            if own:
                cloud.stop()

    best = {name: min(times) for name, times in samples.items()}
    print(f"{args.lines:,} lines of `seq`, best of {args.rounds} rounds each (same process/run):")
    for name, seconds in best.items():
        rate = args.lines / seconds
        runs = ", ".join(f"{t:.2f}" for t in samples[name])
        print(f"  {name:<16} {seconds:6.2f} s  {rate:>12,.0f} lines/s   (runs: {runs})")
    ratio = best["communicator"] / best["asyncssh run()"]
    print(f"  ratio communicator / asyncssh run(): {ratio:.2f}x the time")
    versus_lines = best["communicator"] / best["asyncssh lines"]
    print(f"  ratio communicator / asyncssh lines: {versus_lines:.2f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
