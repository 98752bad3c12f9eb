"""Benchmark: whole builds on the local cloud's ``fast`` profile.

Run with ``.venv/bin/python tests/bench/bench_build.py`` (or ``bash .ci/bench``).

* one build, as a ratio of its wall time to the sum of the profile's simulated
  transitions it must wait for (boot, SSH, stop, image, terminate): the floor;
* 20 builds in parallel (one template, 20 builders), as a ratio to one build;
* the API calls each run made, per operation, the Describe* calls of 20 builds as
  a ratio to one build's and their peak rate (calls in any one second);
* the engine's CPU per build (process CPU with the local cloud in its own process).

Both with the local cloud in its own process (``amibake local serve``, as real AWS
is) and in-process (as the app runs it). ``--mode process`` or ``--mode inprocess``
runs one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import amibake.core.aws
import amibake.core.budget
from amibake.core.aws import Aws, Target
from amibake.core.engine.build import run_builds, select_builders
from amibake.core.engine.context import BuildOptions
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.local.latency import get_profile
from amibake.core.local.process import LocalCloudProcess
from amibake.core.templates import load

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    seconds: float = 0.0
    cpu: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    times: list[tuple[float, str]] = field(default_factory=list)

    def describes(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith("Describe"))

    def peak_describe_rate(self) -> int:
        """The most Describe* calls sent within any one second."""
        stamps = sorted(t for t, op in self.times if op.startswith("Describe"))
        best = start = 0
        for end, stamp in enumerate(stamps):
            while stamp - stamps[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


@contextmanager
def counting(run: Run) -> Iterator[None]:
    original = amibake.core.aws.count_call

    def count(operation: str) -> None:
        run.calls[operation] += 1
        run.times.append((time.monotonic(), operation))
        original(operation)

    amibake.core.aws.count_call = count  # type: ignore[assignment]
    try:
        yield
    finally:
        amibake.core.aws.count_call = original  # type: ignore[assignment]


def template(directory: Path, builders: int) -> Path:
    def builder(n: int) -> dict:
        return {
            "type": "amazon-ebs",
            "name": f"b{n}",
            "region": "us-east-1",
            "instance_type": "t3.micro",
            "ssh_username": "ubuntu",
            "source_ami_filter": {
                "filters": {"name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"},
                "owners": ["099720109477"],
                "most_recent": True,
            },
            "ami_name": f"bench-{n}-{{{{uuid}}}}",
        }

    path = directory / f"bench-{builders}.json"
    path.write_text(
        json.dumps(
            {
                "builders": [builder(n) for n in range(builders)],
                "provisioners": [{"type": "shell", "inline": ["echo provisioned"]}],
            }
        )
    )
    return path


async def timed_builds(endpoint: str, ssh_port: int | None, path: Path) -> Run:
    spec = load(path)
    target = Target(
        endpoint_url=endpoint,
        access_key_id=FAKE_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )
    options = BuildOptions(target=target, ssh_port=ssh_port)
    aws = Aws(target, max_workers=64)
    run = Run()
    with counting(run):
        cpu = time.process_time()
        started = time.perf_counter()
        results = await run_builds(spec, select_builders(spec), aws, options, lambda event: None)
        run.seconds = time.perf_counter() - started
        run.cpu = time.process_time() - cpu
    aws.close()
    failed = [r for r in results if r.status != "succeeded"]
    if failed:
        raise SystemExit(f"benchmark build failed: {failed[0].error}")
    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(
    endpoint: str, ssh_port: int | None, directory: Path, many: int = 20
) -> tuple[Run, Run]:
    # Between runs, one window of the process's Describe budget passes, so that each
    # measured run starts with the budget a fresh process has (the warm-up's last calls
    # would otherwise hold the first turns of the next run).
    asyncio.run(timed_builds(endpoint, ssh_port, template(directory, 1)))  # warm-up
    time.sleep(amibake.core.budget.DESCRIBE_WINDOW)
    one = asyncio.run(timed_builds(endpoint, ssh_port, template(directory, 1)))
    time.sleep(amibake.core.budget.DESCRIBE_WINDOW)
    twenty = asyncio.run(timed_builds(endpoint, ssh_port, template(directory, many)))
    return one, twenty


def report(title: str, floor: float, one: Run, twenty: Run, n: int, engine_cpu: bool) -> None:
    print(f"build benchmark on the fast profile, local cloud {title} (one run)")
    print(f"  floor: simulated transitions one build waits for  {floor:.1f} s")
    print(f"  one build                                         {one.seconds:.1f} s")
    print(f"    as a ratio to the floor                         {one.seconds / floor:.2f}")
    print(f"  {n} builds in parallel                             {twenty.seconds:.1f} s")
    print(f"    as a ratio to one build                         {twenty.seconds / one.seconds:.2f}")
    what = "engine CPU" if engine_cpu else "process CPU (engine + local cloud)"
    print(f"  {what} per build, one build               {one.cpu:.2f} s")
    print(f"  {what} per build, {n} builds               {twenty.cpu / n:.2f} s")
    print(f"  Describe* calls: one build {one.describes()}, {n} builds {twenty.describes()} "
          f"({twenty.describes() / max(1, one.describes()):.1f}x)")  # fmt: skip
    print(f"  peak Describe* calls in one second: one build {one.peak_describe_rate()}, "
          f"{n} builds {twenty.peak_describe_rate()} (budget {amibake.core.budget.DESCRIBE_CALLS} "
          f"per {amibake.core.budget.DESCRIBE_WINDOW:g} s per region; target <= 5)")  # fmt: skip
    print(f"  API calls per operation (one build / {n} builds):")
    for operation in sorted(set(one.calls) | set(twenty.calls)):
        print(f"    {operation:40} {one.calls[operation]:5} {twenty.calls[operation]:6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("process", "inprocess", "both"), default="both")
    parser.add_argument("--builds", type=int, default=20, help="parallel builds (default 20)")
    args = parser.parse_args()
    floor = get_profile("fast").total_build_floor()
    if args.mode in ("process", "both"):
        with tempfile.TemporaryDirectory() as scratch:
            with LocalCloudProcess(
                latency="fast", ssh_port=free_port(), data_dir=Path(scratch) / "cloud"
            ) as cloud:
                one, twenty = measure(
                    cloud.endpoint_url, cloud.ssh_port, Path(scratch), args.builds
                )
            report("in its own process", floor, one, twenty, args.builds, engine_cpu=True)
    if args.mode in ("inprocess", "both"):
        with (
            tempfile.TemporaryDirectory() as scratch,
            LocalCloud(latency="fast", data_dir=Path(scratch) / "cloud") as cloud,
        ):
            one, twenty = measure(cloud.endpoint_url, cloud.ssh_port, Path(scratch), args.builds)
        report("in-process", floor, one, twenty, args.builds, engine_cpu=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
