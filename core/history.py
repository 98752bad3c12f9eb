"""Build records (for the TUI's history) and Packer-compatible manifests.

Each build gets ``<data dir>/builds/<build id>/`` holding ``events.ndjson`` (every
event, redacted by the engine), ``build.log`` (the human-readable log) and
``record.json`` (template, redacted variables, status, artifacts), written as
events arrive so a crash leaves what happened so far. :func:`read_records`,
:func:`replay_events` and :func:`rerun_spec` read them back for the app's history.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from amibake.core import paths
from amibake.core.events import (
    ArtifactCreated,
    BuildFinished,
    BuildStarted,
    Event,
    LogLines,
    Message,
    ResourceChanged,
    StepFinished,
    StepStarted,
    event_from_dict,
)
from amibake.core.model import BuildSpec, ManifestPostProcessor

#: Seconds between flushes of a build's files while only output lines arrive.
FLUSH_INTERVAL = 0.2


def builds_dir() -> Path:
    return paths.data_dir() / "builds"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def log_line(event: Event) -> str | None:
    """An event as one line of the human log, or None for events the log leaves out."""
    stamp = datetime.fromtimestamp(event.time, UTC).strftime("%H:%M:%S")
    if isinstance(event, StepStarted):
        return f"{stamp} ==> {event.title}"
    if isinstance(event, StepFinished) and event.status != "ok":
        return f"{stamp} ==> {event.step} {event.status}: {event.error or ''}".rstrip(": ")
    if isinstance(event, Message):
        return f"{stamp}     {event.text}"
    if isinstance(event, LogLines):
        marker = "!" if event.stream == "stderr" else " "
        return "\n".join(f"{stamp}   {marker} {text}" for text in event.lines)
    if isinstance(event, ResourceChanged):
        return f"{stamp}     [{event.state}] {event.kind} {event.resource_id} ({event.region})"
    if isinstance(event, BuildFinished):
        return f"{stamp} ==> Build {event.status} in {event.duration:.1f}s" + (
            f": {event.error}" if event.error else ""
        )
    return None


@dataclass
class BuildRecorder:
    """Consumes a build's events and keeps its record on disk."""

    spec: BuildSpec
    root: Path = field(default_factory=builds_dir)
    _dirs: dict[str, Path] = field(default_factory=dict)
    _files: dict[str, tuple[IO[str], IO[str]]] = field(default_factory=dict)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_name: dict[str, str] = field(default_factory=dict)
    _flushed: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildStarted):
            self._open(event)
        build_id = self._by_name.get(event.build)
        if build_id is None:
            return
        events, log = self._files[build_id]
        events.write(event.to_json() + "\n")
        line = log_line(event)
        if line is not None:
            log.write(line + "\n")
        if isinstance(event, LogLines | Message):
            # Output can arrive at a million lines a minute: the record does not change, and
            # the files are flushed a few times a second rather than once per line.
            now = time.monotonic()
            if now - self._flushed.get(build_id, 0.0) >= FLUSH_INTERVAL:
                self._flushed[build_id] = now
                events.flush()
                log.flush()
            return
        record = self._records[build_id]
        if isinstance(event, ArtifactCreated):
            record["artifacts"][event.region] = event.image_id
        if isinstance(event, BuildFinished):
            record.update(
                status=event.status, duration=event.duration, error=event.error, finished=event.time
            )
            events.close()
            log.close()
            del self._files[build_id]
            del self._by_name[event.build]
        _write_json(self._dirs[build_id] / "record.json", record)
        if not isinstance(event, BuildFinished):
            events.flush()
            log.flush()

    def _open(self, event: BuildStarted) -> None:
        directory = self.root / event.build_id
        directory.mkdir(parents=True, exist_ok=True)
        self._dirs[event.build_id] = directory
        self._by_name[event.build] = event.build_id
        self._files[event.build_id] = (
            open(directory / "events.ndjson", "a", encoding="utf-8"),  # noqa: SIM115
            open(directory / "build.log", "a", encoding="utf-8"),  # noqa: SIM115
        )
        self._records[event.build_id] = {
            "build_id": event.build_id,
            "build": event.build,
            "template": event.template,
            "region": event.region,
            "variables": event.variables,
            "started": event.time,
            "status": "running",
            "artifacts": {},
        }

    def directory(self, build_id: str) -> Path:
        return self._dirs[build_id]


def write_manifest(
    path: Path,
    results: list[Any],
    builders: Mapping[str, str],
    post_processor: ManifestPostProcessor | None = None,
    custom_data: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Append this run's builds to a Packer-style manifest (``builds`` + ``last_run_uuid``).

    ``custom_data``: by build name, the post-processor's custom_data with ``build.*``
    filled in for that build (else it is written as the template has it).
    """
    custom_data = custom_data or {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("builds"), list):
            manifest = {"builds": []}
    except (OSError, ValueError):
        manifest = {"builds": []}
    run_uuid = str(uuid.uuid4())
    for result in results:
        if not result.artifacts:
            continue
        entry: dict[str, Any] = {
            "name": result.name,
            "builder_type": builders.get(result.name, "amazon-ebs"),
            "build_time": 0 if post_processor and post_processor.strip_time else int(time.time()),
            "files": None,
            "artifact_id": ",".join(f"{r}:{a}" for r, a in sorted(result.artifacts.items())),
            "packer_run_uuid": run_uuid,
            "custom_data": dict(
                custom_data.get(result.name, post_processor.custom_data if post_processor else {})
            ),
        }
        manifest["builds"].append(entry)
    manifest["last_run_uuid"] = run_uuid
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, manifest)
    return path


# -- reading the records back (the app's history) ---------------------------------------------


@dataclass(frozen=True)
class BuildRecord:
    directory: Path
    build_id: str
    build: str
    template: str
    region: str
    status: str
    started: float
    duration: float | None
    error: str | None
    artifacts: dict[str, str]
    variables: dict[str, str]

    @classmethod
    def read(cls, directory: Path) -> BuildRecord | None:
        try:
            data = json.loads((directory / "record.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        try:  # a record edited or cut by hand is skipped, not a crash of the history
            duration = data.get("duration")
            error = data.get("error")
            return cls(
                directory=directory,
                build_id=str(data.get("build_id", directory.name)),
                build=str(data.get("build", "")),
                template=str(data.get("template", "")),
                region=str(data.get("region", "")),
                status=str(data.get("status", "unknown")),
                started=float(data.get("started") or 0.0),
                duration=float(duration) if duration is not None else None,
                error=str(error) if error is not None else None,
                artifacts={str(k): str(v) for k, v in dict(data.get("artifacts") or {}).items()},
                variables={str(k): str(v) for k, v in dict(data.get("variables") or {}).items()},
            )
        except (TypeError, ValueError):
            return None


def read_records(root: Path | None = None) -> list[BuildRecord]:
    """Every build record, newest first."""
    root = root or builds_dir()
    try:
        directories = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    records = [r for r in (BuildRecord.read(d) for d in directories) if r is not None]
    return sorted(records, key=lambda r: (r.started, r.build_id), reverse=True)


def replay_events(directory: Path) -> Iterator[Event]:
    """The events of a recorded build, skipping lines a crash may have cut."""
    try:
        handle = open(directory / "events.ndjson", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return
    with handle:
        for line in handle:
            try:
                yield event_from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue


def rerun_spec(record: BuildRecord) -> tuple[BuildSpec, Path, list[str]]:
    """The spec to build ``record``'s template again; raises AmibakeError when it cannot load.

    Returns (spec, path, names of sensitive variables left at their defaults).
    """
    from amibake.core.errors import UsageError
    from amibake.core.model import REDACTED
    from amibake.core.templates import load

    if not record.template:
        raise UsageError("this build was started from an unsaved template; open it in the editor")
    path = Path(record.template)
    if not path.exists():
        raise UsageError(f"the template {path} is no longer there")
    values = [(k, v) for k, v in record.variables.items() if v != REDACTED]
    skipped = [k for k, v in record.variables.items() if v == REDACTED]
    spec = load(path, vars=values)
    return spec, path, skipped


def repoint_records(build_ids: Iterable[str], template: str) -> None:
    """Name ``template`` in the records of ``build_ids`` (built from a temporary copy of it).

    The app builds unsaved text from a hidden copy next to the template, removed after the
    run; its records must name the template the user knows. Unreadable records are skipped.
    """
    for build_id in build_ids:
        record = builds_dir() / build_id / "record.json"
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            if data.get("template") != template:
                data["template"] = template
                _write_json(record, data)
        except (OSError, ValueError, AttributeError):
            continue
