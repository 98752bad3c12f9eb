"""The larger reliability run: every kill point and cancel point several times, and fault rates.

Run with ``.venv/bin/python tests/bench/bench_reliability.py [TRIALS]`` (default 3 trials).
It drives real `amibake` processes against an in-process local cloud exactly as
tests/reliability does, and prints a table of trials and resources left, which
must read 0 everywhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from amibake.core.local.cloud import LocalCloud  # noqa: E402
from amibake.core.local.faults import FaultPlan, FaultRule  # noqa: E402
from tests.reliability.conftest import QUICK, leftovers, run_cli  # noqa: E402
from tests.reliability.test_faults import build, write_template  # noqa: E402
from tests.reliability.test_kill_and_cancel import POINTS, strike_at  # noqa: E402


def count(found: dict[str, list[str]]) -> int:
    return sum(len(ids) for ids in found.values())


def main() -> int:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["AMIBAKE_HOME"] = str(Path(scratch) / "home")
        with LocalCloud(latency=QUICK, data_dir=Path(scratch) / "cloud") as cloud:
            started = time.perf_counter()
            for name, when, delay in POINTS:
                for how, label in ((signal.SIGKILL, "kill + sweep"), (signal.SIGTERM, "cancel")):
                    left = 0
                    for trial in range(trials):
                        work = Path(scratch) / f"{name}-{label}-{trial}"
                        work.mkdir()
                        process, _ = strike_at(cloud, work, when, delay, how)
                        if how == signal.SIGKILL:
                            run_cli(
                                cloud,
                                work / "home",
                                "sweep",
                                "--region",
                                "us-east-1",
                                "--region",
                                "us-west-2",
                            )
                        assert process.build_id is not None
                        left += count(leftovers(cloud, process.build_id))
                    rows.append((f"{label} at {name}", trials, left))
            cloud.set_latency("instant")
            for code in ("RequestLimitExceeded", "InternalError", "Unavailable"):
                left, outcomes = 0, {"succeeded": 0, "failed": 0}
                for trial in range(trials):
                    plan = FaultPlan(
                        [FaultRule(operation="*", error=code, probability=0.3)], seed=trial
                    )
                    path = write_template(Path(scratch), [{"type": "shell", "inline": ["true"]}])
                    result = asyncio.run(build(cloud, path, plan))
                    outcomes[result.status] = outcomes.get(result.status, 0) + 1
                    left += count(leftovers(cloud, result.build_id, ("us-east-1",)))
                label = (
                    f"30% {code} ({outcomes['succeeded']} built, "
                    f"{outcomes['failed']} failed cleanly)"
                )
                rows.append((label, trials, left))
            elapsed = time.perf_counter() - started
    width = max(len(r[0]) for r in rows)
    print(f"reliability run: {trials} trial(s) per row, {elapsed:.0f} s")
    print(f"  {'scenario':<{width}}  trials  resources left")
    for label, n, left in rows:
        print(f"  {label:<{width}}  {n:>6}  {left:>14}")
    total = sum(r[2] for r in rows)
    print(f"  total resources left: {total}")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
