"""How long the local cloud's state transitions take.

Real EC2 is slow in ways a build must cope with: an instance is ``pending`` for
a while, SSH answers some time after ``running``, an image is ``pending`` for
minutes. The local cloud replays those delays at three speeds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.errors import UsageError


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Seconds each transition takes. ``instant`` makes every one happen at once."""

    name: str
    boot: float  # pending -> running
    ssh_ready: float  # running -> SSH accepting connections
    stop: float  # stopping -> stopped
    terminate: float  # shutting-down -> terminated
    image: float  # image pending -> available (and its snapshots pending -> completed)
    copy: float  # a CopyImage copy pending -> available

    def total_build_floor(self) -> float:
        """Sum of the transitions one plain amazon-ebs build waits for.

        boot + SSH + stop + image + terminate: the least wall time a build can
        take on this profile, against which benchmarks report a ratio.
        """
        return self.boot + self.ssh_ready + self.stop + self.image + self.terminate

    def as_dict(self) -> dict[str, float | str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PROFILES: dict[str, LatencyProfile] = {
    "instant": LatencyProfile("instant", boot=0, ssh_ready=0, stop=0, terminate=0, image=0, copy=0),
    "fast": LatencyProfile(
        "fast", boot=1.5, ssh_ready=1.0, stop=1.5, terminate=1.5, image=2.0, copy=2.0
    ),
    "realistic": LatencyProfile(
        "realistic", boot=30, ssh_ready=15, stop=30, terminate=30, image=90, copy=120
    ),
}

DEFAULT_PROFILE = "fast"


def get_profile(name: str) -> LatencyProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise UsageError(f"unknown latency profile {name!r} (choose one of: {known})") from None
