"""Fault injection for the local cloud: a plan naming operations and what to do to them.

A plan is a list of rules. Each rule names an operation (an EC2/STS action such
as ``RunInstances``, ``ec2:*`` or ``*``, or ``ssh`` for the instances' SSH
servers) and what happens to the calls it matches:

* ``error``: answer with that AWS error code (``RequestLimitExceeded``,
  ``InternalError``, ``Unavailable``, ...) instead of doing the call;
* ``delay``: wait that many seconds before handling the call;
* ``drop_after_bytes`` (``ssh`` only): cut the SSH connection once the server
  has sent that many bytes;
* ``wrong_host_key`` (``ssh`` only): an instance booting while the rule fires
  serves SSH with a different host key than its console output shows (a
  man-in-the-middle, as a client sees one).

Which calls a rule hits: the ``nth`` matching call (1-based), or each matching
call with a ``probability`` (from a seeded generator, so a chaos run can be
replayed), or every matching call; ``times`` caps how often it fires.

A plan may also cap concurrent AMI copies as AWS does per destination region:
``copy_image_limit = 2`` answers ``CopyImage`` with ``ResourceLimitExceeded`` while
that many copies are still pending there. Throttling a share of calls is a rule
with ``probability`` and ``error = "RequestLimitExceeded"`` (below).

A plan may also set the cloud's consistency (see :class:`amibake.core.local.latency.Consistency`):
``consistency = "eventual"``, or a table with ``hidden_calls`` / ``hidden_seconds``.

Plans load from JSON or TOML files, e.g.::

    seed = 7
    consistency = "eventual"
    [[rules]]
    operation = "RunInstances"
    error = "InsufficientInstanceCapacity"
    nth = 1

    [[rules]]
    operation = "ec2:*"
    probability = 0.05
    error = "RequestLimitExceeded"
"""

from __future__ import annotations

import json
import random
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from amibake.core.errors import UsageError
from amibake.core.local.latency import Consistency

#: HTTP status EC2 answers each error code with (others default to 400).
ERROR_STATUS: dict[str, int] = {
    "RequestLimitExceeded": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
    "InternalError": 500,
    "InternalFailure": 500,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "InsufficientInstanceCapacity": 500,
}

ERROR_MESSAGES: dict[str, str] = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "InternalError": "An internal error has occurred.",
    "Unavailable": "The server is overloaded and can't handle the request.",
    "InsufficientInstanceCapacity": (
        "We currently do not have sufficient capacity in the Availability Zone you requested."
    ),
    # expired session credentials (issue 10): what EC2, STS and IAM answer
    "ExpiredToken": "The security token included in the request is expired",
    "RequestExpired": "Request has expired.",
    "ExpiredTokenException": "The security token included in the request is expired",
    "InvalidSnapshot.InUse": "The snapshot is currently in use by an AMI.",
}

_RULE_KEYS = {
    "operation",
    "error",
    "message",
    "status",
    "nth",
    "probability",
    "times",
    "delay",
    "drop_after_bytes",
    "wrong_host_key",
    "region",
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    operation: str
    error: str | None = None
    message: str | None = None
    status: int | None = None
    nth: int | None = None
    probability: float | None = None
    times: int | None = None
    delay: float = 0.0
    drop_after_bytes: int | None = None
    wrong_host_key: bool = False
    region: str | None = None

    def __post_init__(self) -> None:
        where = f"fault rule for {self.operation!r}"
        if not self.operation:
            raise UsageError("fault rule: 'operation' is required")
        if self.nth is not None and self.nth < 1:
            raise UsageError(f"{where}: 'nth' counts from 1")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise UsageError(f"{where}: 'probability' must be between 0 and 1")
        if self.nth is not None and self.probability is not None:
            raise UsageError(f"{where}: give 'nth' or 'probability', not both")
        if self.delay < 0:
            raise UsageError(f"{where}: 'delay' cannot be negative")
        if self.drop_after_bytes is not None and self.operation != "ssh":
            raise UsageError(f"{where}: 'drop_after_bytes' applies to operation 'ssh' only")
        if self.wrong_host_key and self.operation != "ssh":
            raise UsageError(f"{where}: 'wrong_host_key' applies to operation 'ssh' only")
        if self.operation == "ssh" and (self.drop_after_bytes is None) == (not self.wrong_host_key):
            raise UsageError(f"{where}: ssh rules take 'drop_after_bytes' or 'wrong_host_key'")
        if self.operation == "ssh" and (self.error is not None or self.delay):
            raise UsageError(f"{where}: ssh rules take 'drop_after_bytes' or 'wrong_host_key'")
        if (
            self.error is None
            and self.delay == 0
            and self.drop_after_bytes is None
            and not self.wrong_host_key
        ):
            raise UsageError(f"{where}: says nothing to do (give error, delay or drop_after_bytes)")

    def matches(self, service: str, operation: str, region: str | None) -> bool:
        if self.region is not None and region != self.region:
            return False
        pattern = self.operation
        if pattern == "*":
            return operation != "ssh"
        if ":" in pattern:
            rule_service, rule_op = pattern.split(":", 1)
            if rule_service != service:
                return False
            return rule_op in ("*", operation)
        return pattern == operation

    @property
    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        return ERROR_STATUS.get(self.error or "", 400)

    @property
    def error_message(self) -> str:
        return self.message or ERROR_MESSAGES.get(self.error or "", f"Injected fault: {self.error}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultRule:
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise UsageError(f"fault rule: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**dict(data))
        except TypeError as error:
            raise UsageError(f"fault rule: {error}") from None


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one call: wait ``delay`` seconds, then fail with ``rule`` if set."""

    delay: float = 0.0
    rule: FaultRule | None = None


@dataclass
class FaultPlan:
    """A thread-safe plan: counts matching calls per rule and decides each call's fate."""

    rules: Sequence[FaultRule] = ()
    seed: int = 0
    #: overrides the latency profile's consistency while this plan is in force
    consistency: Consistency | None = None
    #: the most CopyImage copies pending at once per destination region (None: no quota)
    copy_image_limit: int | None = None
    _calls: list[int] = field(default_factory=list, init=False, repr=False)
    _fired: list[int] = field(default_factory=list, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self._calls = [0] * len(self.rules)
        self._fired = [0] * len(self.rules)
        self._rng = random.Random(self.seed)

    def _fires(self, index: int, rule: FaultRule) -> bool:
        # Called with the lock held, once per matching call.
        self._calls[index] += 1
        if rule.times is not None and self._fired[index] >= rule.times:
            return False
        if rule.nth is not None:
            hit = self._calls[index] == rule.nth
        elif rule.probability is not None:
            hit = self._rng.random() < rule.probability
        else:
            hit = True
        if hit:
            self._fired[index] += 1
        return hit

    def decide(self, service: str, operation: str, region: str | None = None) -> FaultDecision:
        """The fate of one API call. The first error rule that fires wins; delays add up."""
        delay = 0.0
        error_rule: FaultRule | None = None
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.operation == "ssh" or not rule.matches(service, operation, region):
                    continue
                if not self._fires(index, rule):
                    continue
                delay += rule.delay
                if rule.error is not None and error_rule is None:
                    error_rule = rule
        return FaultDecision(delay=delay, rule=error_rule)

    def ssh_drop_after(self) -> int | None:
        """For a new SSH connection: cut it after this many bytes, or None."""
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.operation != "ssh" or rule.drop_after_bytes is None:
                    continue
                if self._fires(index, rule):
                    return rule.drop_after_bytes
        return None

    def ssh_wrong_host_key(self) -> bool:
        """For an instance's SSH server about to start: serve a key the console does not show?"""
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.operation == "ssh" and rule.wrong_host_key and self._fires(index, rule):
                    return True
        return False

    def fired(self) -> list[dict[str, Any]]:
        """Per rule: how many calls matched and how many it hit (for tests and chaos reports)."""
        with self._lock:
            return [
                {"rule": asdict(rule), "calls": calls, "fired": fired}
                for rule, calls, fired in zip(self.rules, self._calls, self._fired, strict=True)
            ]

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.consistency is not None:
            extra["consistency"] = self.consistency.as_dict()
        if self.copy_image_limit is not None:
            extra["copy_image_limit"] = self.copy_image_limit
        return {
            **extra,
            "seed": self.seed,
            "rules": [
                {k: v for k, v in asdict(rule).items() if v not in (None, 0.0, False)}
                for rule in self.rules
            ],
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultPlan:
        if not isinstance(data, Mapping):
            raise UsageError("fault plan: expected a table with a 'rules' list")
        unknown = set(data) - {"rules", "seed", "consistency", "copy_image_limit"}
        if unknown:
            raise UsageError(f"fault plan: unknown key(s) {', '.join(sorted(unknown))}")
        rules = data.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            raise UsageError("fault plan: 'rules' must be a list of tables")
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise UsageError("fault plan: 'seed' must be an integer")
        consistency = data.get("consistency")
        limit = data.get("copy_image_limit")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise UsageError("fault plan: 'copy_image_limit' must be a positive integer")
        return cls(
            rules=[FaultRule.from_mapping(r) for r in rules],
            seed=seed,
            consistency=None if consistency is None else Consistency.from_value(consistency),
            copy_image_limit=limit,
        )

    @classmethod
    def load(cls, path: Path) -> FaultPlan:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot read fault plan {path}: {error.strerror}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
            raise UsageError(f"{path}: not a valid fault plan: {error}") from None
        return cls.from_mapping(data)


NO_FAULTS = FaultPlan()
