"""Benchmark: the local cloud's start-up, catalogue queries and memory.

Run with ``.venv/bin/python tests/bench/bench_local_cloud.py`` (or ``bash .ci/bench``).
Every figure comes from this one run; ratios compare against a floor measured
in the same run, so a noisy machine shifts both sides alike.

Measured:
* start: a fresh interpreter importing amibake, starting the cloud and answering
  the first DescribeImages of us-east-1 (which builds the region's catalogue);
* wildcard: DescribeImages with the seed's name wildcard over us-east-1, as a
  ratio to DescribeRegions, the cheapest round trip (the HTTP + SigV4 floor);
* RSS of the process after start with us-east-1 loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys, time
started = time.perf_counter()
from amibake.core.local.cloud import LocalCloud
cloud = LocalCloud(latency="instant", data_dir=sys.argv[1]).start()
ec2 = cloud.client("ec2", "us-east-1")
ec2.describe_images(Owners=["099720109477"], MaxResults=100)
first_answer = time.perf_counter() - started

def timed(call, repeat):
    samples = []
    for _ in range(repeat):
        t = time.perf_counter(); call(); samples.append(time.perf_counter() - t)
    return samples

wildcard = {"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"]}
floor = timed(lambda: ec2.describe_regions(), 30)
query = timed(lambda: ec2.describe_images(Owners=["099720109477"], Filters=[wildcard]), 30)
any_owner = timed(lambda: ec2.describe_images(Filters=[wildcard]), 10)
count = len(ec2.describe_images(IncludeDeprecated=True)["Images"])
rss_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
print(json.dumps({"first_answer_s": first_answer, "floor": floor, "query": query,
                  "any_owner": any_owner, "images": count, "rss_mib": rss_kib / 1024}))
cloud.stop()
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as data_dir:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, data_dir],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t0
    result = json.loads(out.stdout.strip().splitlines()[-1])
    floor = statistics.median(result["floor"])
    query = statistics.median(result["query"])
    any_owner = statistics.median(result["any_owner"])
    figures = {
        "process start to first DescribeImages answer (s)": round(result["first_answer_s"], 2),
        "whole child process wall time (s)": round(wall, 2),
        "images in us-east-1 (incl. deprecated)": result["images"],
        "DescribeRegions round trip, median (ms)": round(floor * 1000, 1),
        "DescribeImages seed wildcard + Owners, median (ms)": round(query * 1000, 1),
        "  as a ratio to DescribeRegions": round(query / floor, 1),
        "DescribeImages seed wildcard, any owner, median (ms)": round(any_owner * 1000, 1),
        "  (any owner) as a ratio to DescribeRegions": round(any_owner / floor, 1),
        "RSS after start with us-east-1 loaded (MiB)": round(result["rss_mib"], 1),
    }
    width = max(len(k) for k in figures)
    print("local cloud benchmark (one run)")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
