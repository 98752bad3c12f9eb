"""Benchmark: whole builds on the local cloud's ``fast`` profile.

Run with ``.venv/bin/python tests/bench/bench_build.py`` (or ``bash .ci/bench``).

* one build, as a ratio of its wall time to the sum of the profile's simulated
  transitions it must wait for (boot, SSH, stop, image, terminate): the floor;
* 20 builds in parallel (one template, 20 builders), as a ratio to one build.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from core.aws import Aws, Target
from core.engine.build import run_builds, select_builders
from core.engine.context import BuildOptions
from core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from core.templates import load


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


async def timed_builds(cloud: LocalCloud, path: Path) -> float:
    spec = load(path)
    target = Target(
        endpoint_url=cloud.endpoint_url,
        access_key_id=FAKE_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )
    options = BuildOptions(target=target, ssh_port=cloud.ssh_port)
    aws = Aws(target, max_workers=64)
    started = time.perf_counter()
    results = await run_builds(spec, select_builders(spec), aws, options, lambda event: None)
    elapsed = time.perf_counter() - started
    aws.close()
    failed = [r for r in results if r.status != "succeeded"]
    if failed:
        raise SystemExit(f"benchmark build failed: {failed[0].error}")
    return elapsed


def main() -> int:
    with (
        tempfile.TemporaryDirectory() as scratch,
        LocalCloud(latency="fast", data_dir=Path(scratch) / "cloud") as cloud,
    ):
        directory = Path(scratch)
        asyncio.run(timed_builds(cloud, template(directory, 1)))  # warm-up: catalogue, clients
        one = asyncio.run(timed_builds(cloud, template(directory, 1)))
        twenty = asyncio.run(timed_builds(cloud, template(directory, 20)))
        floor = cloud.latency.total_build_floor()
    print("build benchmark on the fast profile (one run)")
    print(f"  floor: simulated transitions one build waits for  {floor:.1f} s")
    print(f"  one build                                         {one:.1f} s")
    print(f"    as a ratio to the floor                         {one / floor:.2f}")
    print(f"  20 builds in parallel                             {twenty:.1f} s")
    print(f"    as a ratio to one build                         {twenty / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
