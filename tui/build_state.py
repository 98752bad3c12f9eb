"""What the TUI knows about one build, folded from its engine events.

The same model serves a live build (events the build child process writes, read
by :class:`amibake.tui.build_runner.BuildRun` on the app's loop) and a past one (events
replayed from ``events.ndjson``). The step plan arrives in ``BuildStarted``. It holds no widget: the
monitor and history screens render it, diffing rows by key.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import NamedTuple

from amibake.core.events import (
    ArtifactCreated,
    BuildFinished,
    BuildStarted,
    DecisionMade,
    Event,
    LogLines,
    Message,
    ResourceChanged,
    StepFinished,
    StepPaused,
    StepStarted,
)

#: Lines of SSH output kept in memory per build; the whole log is on disk (build.log).
LOG_BUFFER_LINES = 20_000

CLEANUP_STEP = "cleanup"


def now() -> float:
    """The wall clock the panes measure elapsed times with (tests pin it for snapshots)."""
    return time.time()


#: pending, running, ok, failed, cancelled, skipped
StepState = str


@dataclass
class StepRow:
    name: str
    title: str
    state: StepState = "pending"
    started: float | None = None  # wall-clock (event time)
    duration: float | None = None
    error: str | None = None
    detail: str = ""


@dataclass
class ResourceRow:
    kind: str
    resource_id: str
    region: str
    state: str
    detail: str = ""
    updated: float = 0.0
    #: announced ("creating") but not yet known by the id AWS gave it
    intent: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.resource_id}|{self.region}"


class OutputLine(NamedTuple):
    """One line of the SSH output pane: ``stream`` is stdout, stderr or info (engine message).

    The buffers keep plain ``(stream, text)`` tuples, which an OutputLine is too: a flood
    of lines becomes rows through ``zip`` (no Python call per line), and tuples of
    strings are untracked by the garbage collector, so a full buffer costs collections
    nothing.
    """

    stream: str
    text: str


#: What the buffers hold: (stream, text).
LogEntry = tuple[str, str]


@dataclass
class BuildState:
    """One builder's build: status, steps, resources, artifacts and a bounded log."""

    name: str
    build_id: str = ""
    template: str = ""
    region: str = ""
    #: pending, running, cancelling, succeeded, failed, cancelled
    status: str = "pending"
    started: float | None = None
    duration: float | None = None
    error: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepRow] = field(default_factory=dict)
    resources: dict[str, ResourceRow] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    log: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=LOG_BUFFER_LINES))
    #: every line ever appended (the buffer keeps the last LOG_BUFFER_LINES of them)
    log_total: int = 0
    #: bumped on every change other than log lines; lets views skip work
    version: int = 0

    @classmethod
    def planned(cls, name: str, steps: list[tuple[str, str]]) -> BuildState:
        """A build about to run ``steps`` (name, title)."""
        return cls(name, steps={step: StepRow(step, title) for step, title in steps})

    # -- folding events ---------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if type(event) is LogLines:
            # A flood arrives in chunks of thousands of lines: only the last buffer's worth
            # becomes rows, (stream, text) pairs built in C (zip over repeat).
            lines = event.lines[-LOG_BUFFER_LINES:]
            self.log.extend(zip(repeat(event.stream), lines))
            self.log_total += len(event.lines)
            return
        self.version += 1
        if isinstance(event, Message):
            self.log.append(("info" if event.level == "info" else "error", event.text))
            self.log_total += 1
        elif isinstance(event, BuildStarted):
            self.build_id = event.build_id
            self.template = event.template
            self.region = event.region
            self.variables = dict(event.variables)
            if not self.steps:  # a replay: the plan travels in the event (older records: none)
                self.steps = {name: StepRow(name, title) for name, title in event.steps}
            self.status = "running"
            self.started = event.time
        elif isinstance(event, StepStarted):
            row = self.steps.get(event.step)
            if row is None:
                row = self.steps[event.step] = StepRow(event.step, event.title)
            row.title = event.title
            row.state, row.started, row.duration, row.error = "running", event.time, None, None
        elif isinstance(event, StepFinished):
            row = self.steps.setdefault(event.step, StepRow(event.step, event.step))
            row.state, row.duration, row.error = event.status, event.duration, event.error
            if event.status in ("failed", "cancelled"):
                self._begin_cleanup(event.time)
        elif isinstance(event, ResourceChanged):
            self._resource(event)
        elif isinstance(event, StepPaused):  # --on-error ask: no cleanup before the decision
            self.status = "paused"
            cleanup = self.steps.get(CLEANUP_STEP)
            if cleanup is not None and cleanup.state == "running":
                del self.steps[CLEANUP_STEP]
        elif isinstance(event, DecisionMade):
            self.status = "running"
            if event.choice == "cleanup":
                self._begin_cleanup(event.time)
        elif isinstance(event, ArtifactCreated):
            self.artifacts[event.region] = event.image_id
        elif isinstance(event, BuildFinished):
            self.status = event.status
            self.duration = event.duration
            self.error = event.error
            self.artifacts.update(event.artifacts)
            # intents that never got an id: nothing exists under their token
            for key in [k for k, r in self.resources.items() if r.intent]:
                del self.resources[key]
            for row in self.steps.values():
                if row.name == CLEANUP_STEP:  # judged below, by what is left
                    continue
                if row.state == "pending":
                    row.state = "skipped"
                elif row.state == "running":  # a step the engine never closed
                    row.state = "cancelled" if event.status == "cancelled" else "failed"
            cleanup = self.steps.get(CLEANUP_STEP)
            if cleanup is not None and cleanup.state == "running":
                cleanup.state = "ok" if not self.leftovers() else "failed"
                cleanup.duration = event.time - (cleanup.started or event.time)
                cleanup.detail = self._cleanup_detail()

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def _resource(self, event: ResourceChanged) -> None:
        rows = self.resources
        key = f"{event.kind}|{event.resource_id}|{event.region}"
        if key not in rows and event.state != "creating":
            # The engine announces a create with a token ("creating") and then the id it got
            # ("created"): the id replaces the oldest intent of that kind in that region.
            for old_key, old in rows.items():
                if old.kind == event.kind and old.region == event.region and old.intent:
                    del rows[old_key]
                    break
        previous = rows.get(key)
        row = ResourceRow(
            event.kind,
            event.resource_id,
            event.region,
            event.state,
            event.detail or (previous.detail if previous else ""),
            event.time,
            intent=event.state == "creating" and (previous is None or previous.intent),
        )
        rows[key] = row
        if event.state == "deleting":
            self._begin_cleanup(event.time)
        cleanup = self.steps.get(CLEANUP_STEP)
        if cleanup is not None:
            cleanup.detail = self._cleanup_detail()

    def _begin_cleanup(self, when: float) -> None:
        if CLEANUP_STEP not in self.steps:
            self.steps[CLEANUP_STEP] = StepRow(
                CLEANUP_STEP, "Cleaning up temporary resources", "running", started=when
            )

    def _cleanup_detail(self) -> str:
        temporary = [r for r in self.resources.values() if r.state in ("deleting", "deleted")]
        deleted = sum(r.state == "deleted" for r in temporary)
        return f"{deleted}/{len(temporary)} deleted" if temporary else ""

    # -- questions --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def leftovers(self) -> list[ResourceRow]:
        """Resources still present that a build which did not succeed should have removed."""
        return [r for r in self.resources.values() if r.state not in ("deleted", "kept")]

    def current_step(self) -> StepRow | None:
        running = [r for r in self.steps.values() if r.state == "running"]
        return running[-1] if running else None

    def elapsed(self, at: float | None = None) -> float | None:
        if self.duration is not None:
            return self.duration
        if self.started is None:
            return None
        return max(0.0, (at if at is not None else now()) - self.started)

    def tail(self, count: int) -> list[LogEntry]:
        """The last ``count`` lines of the buffer as (stream, text) pairs (O(count))."""
        count = min(count, len(self.log))
        lines = list(islice(reversed(self.log), count))
        lines.reverse()
        return lines
