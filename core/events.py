"""Every event the build engine emits: the only interface between the engine and its consumers.

Events are frozen dataclasses; ``to_dict()`` gives a JSON-ready mapping with the
event's ``type`` (the CLI's ``--json`` writes one per line, the history keeps
them, the TUI turns them into messages). Secrets are redacted by the engine
before an event is created, so consumers never see them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

StepStatus = Literal["ok", "failed", "cancelled", "skipped"]
BuildStatus = Literal["succeeded", "failed", "cancelled"]
Stream = Literal["stdout", "stderr", "info"]
ResourceState = Literal["creating", "created", "deleting", "deleted", "failed", "kept"]


def _now() -> float:
    return datetime.now(UTC).timestamp()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Common fields: which build (its name in the template, e.g. ``amazon-ebs``) and when."""

    type: ClassVar[str] = "event"
    build: str
    time: float = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["type"] = self.type
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class BuildStarted(Event):
    type: ClassVar[str] = "build_started"
    build_id: str
    template: str
    region: str
    variables: dict[str, str] = field(default_factory=dict)
    #: the plan: (name, title) of every step the build will run, in order
    steps: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step: str
    title: str


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step: str
    status: StepStatus
    duration: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Message(Event):
    """A line of progress in the build's own words (``==> Waiting for SSH...``)."""

    type: ClassVar[str] = "message"
    text: str
    level: Literal["info", "warning", "error"] = "info"


@dataclass(frozen=True, kw_only=True)
class LogLines(Event):
    """Lines of provisioner output from the instance, in order.

    One event carries the whole lines of one read from the SSH channel (a
    single line when output trickles, thousands when it floods), so a
    provisioner printing a million lines costs hundreds of events, not a million.
    """

    type: ClassVar[str] = "log_lines"
    stream: Stream
    lines: tuple[str, ...]
    provisioner: int | None = None


@dataclass(frozen=True, kw_only=True)
class ResourceChanged(Event):
    """A temporary or produced resource moved to a new state (creating ... deleted)."""

    type: ClassVar[str] = "resource"
    kind: str  # "key-pair", "security-group", "instance", "volume", "image", "snapshot"
    resource_id: str
    region: str
    state: ResourceState
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class ArtifactCreated(Event):
    type: ClassVar[str] = "artifact"
    region: str
    image_id: str
    snapshot_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildFinished(Event):
    type: ClassVar[str] = "build_finished"
    build_id: str
    status: BuildStatus
    duration: float
    error: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # region -> AMI id


@dataclass(frozen=True, kw_only=True)
class BreakpointReached(Event):
    """A ``breakpoint`` provisioner paused the build.

    The build goes on once ``amibake.core.engine.provisioners.breakpoint.resume(key)`` is called
    (headless: Enter on standard input). ``connect`` tells how to reach the instance.
    """

    type: ClassVar[str] = "breakpoint"
    build_id: str
    key: str
    provisioner: int
    note: str = ""
    connect: str = ""


@dataclass(frozen=True, kw_only=True)
class BreakpointResumed(Event):
    type: ClassVar[str] = "breakpoint_resumed"
    build_id: str
    key: str


@dataclass(frozen=True, kw_only=True)
class StepPaused(Event):
    """A step failed and the build waits for a decision (``--on-error ask``).

    The build goes on once ``amibake.core.engine.decisions.decide(key, choice)`` is called with
    one of ``choices`` ("retry", "cleanup", "abort"); "shell" means the instance can be
    reached meanwhile (the front end opens it and the build keeps waiting).
    """

    type: ClassVar[str] = "step_paused"
    build_id: str
    key: str
    step: str
    title: str
    error: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DecisionMade(Event):
    type: ClassVar[str] = "decision"
    build_id: str
    key: str
    choice: str


@dataclass(frozen=True, kw_only=True)
class ShellReady(Event):
    """The answer to a front end's request for a shell on a build's instance: the OpenSSH
    command line, and the private directory (key, known hosts) to remove once it exits."""

    type: ClassVar[str] = "shell_ready"
    build_id: str
    argv: tuple[str, ...] = ()
    directory: str = ""
    error: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        BuildStarted,
        StepStarted,
        StepFinished,
        Message,
        LogLines,
        ResourceChanged,
        ArtifactCreated,
        BuildFinished,
        BreakpointReached,
        BreakpointResumed,
        StepPaused,
        DecisionMade,
        ShellReady,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``to_dict()`` output (history replay)."""
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is ArtifactCreated:
        kwargs["snapshot_ids"] = tuple(kwargs.get("snapshot_ids", ()))
    if cls is LogLines:
        kwargs["lines"] = tuple(kwargs.get("lines", ()))
    if cls is StepPaused:
        kwargs["choices"] = tuple(kwargs.get("choices", ()))
    if cls is ShellReady:
        kwargs["argv"] = tuple(kwargs.get("argv", ()))
    if cls is BuildStarted:
        kwargs["steps"] = tuple((str(n), str(t)) for n, t in kwargs.get("steps", ()))
    return cls(**kwargs)
