"""How long the local cloud's state transitions take.

Real EC2 is slow in ways a build must cope with: an instance is ``pending`` for
a while, SSH answers some time after ``running``, an image is ``pending`` for
minutes. The local cloud replays those delays at three speeds.

EC2 is also eventually consistent: a resource just created may not yet be visible to the
next call that names it (DescribeInstances answers InvalidInstanceID.NotFound right after
RunInstances, AuthorizeSecurityGroupIngress InvalidGroup.NotFound right after
CreateSecurityGroup). A :class:`Consistency` replays that; ``realistic`` has it on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from amibake.core.errors import UsageError


@dataclass(frozen=True, slots=True)
class Consistency:
    """How soon a new resource is visible to the calls that name it.

    ``strong``: at once. ``eventual``: a resource created by RunInstances, CreateSecurityGroup,
    CreateImage/CopyImage/RegisterImage or CreateKeyPair/ImportKeyPair is not found by the
    first ``hidden_calls`` Describe*, Authorize*, CreateTags or RunInstances calls naming it,
    for at most ``hidden_seconds`` after its creation (whichever ends first).
    """

    mode: str = "strong"
    hidden_calls: int = 2
    hidden_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in ("strong", "eventual"):
            raise UsageError(f"unknown consistency {self.mode!r} (choose strong or eventual)")
        if self.hidden_calls < 0 or not self.hidden_seconds >= 0:
            raise UsageError("consistency: hidden_calls and hidden_seconds cannot be negative")

    @property
    def eventual(self) -> bool:
        return self.mode == "eventual" and self.hidden_calls > 0 and self.hidden_seconds > 0

    def as_dict(self) -> dict[str, Any]:
        seconds = self.hidden_seconds if math.isfinite(self.hidden_seconds) else None
        return {"mode": self.mode, "hidden_calls": self.hidden_calls, "hidden_seconds": seconds}

    @classmethod
    def from_value(cls, value: object) -> Consistency:
        """From ``"strong"``/``"eventual"`` or a table (fault plans, the control endpoint)."""
        if isinstance(value, Consistency):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"mode", "hidden_calls", "hidden_seconds"}
            if unknown:
                raise UsageError(f"consistency: unknown key(s) {', '.join(sorted(unknown))}")
            mode = value.get("mode", "eventual")
            calls = value.get("hidden_calls", 2)
            seconds = value.get("hidden_seconds", 5.0)
            if (
                not isinstance(mode, str)
                or not isinstance(calls, int)
                or isinstance(calls, bool)
                or not isinstance(seconds, int | float)
            ):
                raise UsageError(
                    "consistency: mode is a string, hidden_calls an integer, "
                    "hidden_seconds a number"
                )
            return cls(mode=mode, hidden_calls=calls, hidden_seconds=float(seconds))
        raise UsageError("consistency: expected strong, eventual or a table")


STRONG = Consistency()
EVENTUAL = Consistency("eventual")


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
    consistency: Consistency = field(default=STRONG)  # how soon new resources are visible
    #: SSH up -> cloud-init has applied the user data (its users, keys and passwords, then its
    #: ``#!`` script): on AWS a user that user data creates appears this late (issue 10)
    user_data: float = 0.0

    def total_build_floor(self) -> float:
        """Sum of the transitions one plain amazon-ebs build waits for.

        boot + SSH + stop + image + terminate: the least wall time a build can
        take on this profile, against which benchmarks report a ratio.
        """
        return self.boot + self.ssh_ready + self.stop + self.image + self.terminate

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["consistency"] = self.consistency.as_dict()
        return out

    def with_consistency(self, consistency: str | Consistency) -> LatencyProfile:
        """This profile with another consistency (``--consistency eventual``)."""
        return replace(self, consistency=Consistency.from_value(consistency))


PROFILES: dict[str, LatencyProfile] = {
    "instant": LatencyProfile("instant", boot=0, ssh_ready=0, stop=0, terminate=0, image=0, copy=0),
    "fast": LatencyProfile(
        "fast", boot=1.5, ssh_ready=1.0, stop=1.5, terminate=1.5, image=2.0, copy=2.0
    ),
    "realistic": LatencyProfile(
        "realistic",
        boot=30,
        ssh_ready=15,
        stop=30,
        terminate=30,
        image=90,
        copy=120,
        consistency=EVENTUAL,
    ),
}

DEFAULT_PROFILE = "fast"


def get_profile(name: str) -> LatencyProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise UsageError(f"unknown latency profile {name!r} (choose one of: {known})") from None
