"""The durable journal of everything a build creates, so nothing is ever lost track of.

Before each call that creates something, the engine records its *intent*
(build, region, kind and the token or name the resource will carry); after the
call, the resource id; after deletion, the deletion. Each write is its own
committed SQLite transaction with ``synchronous=FULL``, so a crash one
instruction later keeps it. After a crash, :meth:`Ledger.unfinished_builds`
finds the builds whose process is gone and whose resources were not all
deleted; ``amibake sweep`` finishes their cleanup.

Every temporary resource also carries amibake's tags (see
:mod:`amibake.core.engine.context`), so a sweep finds it even when its ledger row has
no id yet (the process died between the call and its answer).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.core import paths
from amibake.core.errors import AmibakeError

if TYPE_CHECKING:
    from amibake.core.aws import Target

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    build_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    template TEXT NOT NULL,
    target TEXT NOT NULL,          -- JSON: profile / endpoint_url (never credentials)
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL           -- running / succeeded / failed / cancelled / aborted / swept
);
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id TEXT NOT NULL REFERENCES builds(build_id),
    region TEXT NOT NULL,
    kind TEXT NOT NULL,            -- key-pair, security-group, instance, volume, image, snapshot,
                                   -- role, instance-profile (IAM: global, the build's region),
                                   -- launch-template, fleet (spot instances)
    token TEXT NOT NULL,           -- the name or idempotency token it was created with
    resource_id TEXT,              -- NULL until the create call answered
    state TEXT NOT NULL,           -- intended / created / deleted / kept
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_by_build ON resources(build_id);
"""


class LedgerError(AmibakeError):
    pass


@dataclass(frozen=True)
class LedgerResource:
    row: int
    build_id: str
    region: str
    kind: str
    token: str
    resource_id: str | None
    state: str
    updated: float


@dataclass(frozen=True)
class LedgerBuild:
    build_id: str
    name: str
    template: str
    target: dict[str, Any]
    host: str
    pid: int
    started: float
    finished: float | None
    status: str
    outstanding: tuple[LedgerResource, ...]

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({r.region for r in self.outstanding}))

    def ran_on(self, target: Target) -> bool:
        """Whether this build talked to ``target`` (the same AWS profile and endpoint).

        Only a sweep through the same target can find its resources; through another,
        they would look gone while they still exist. No profile means boto3's default
        chain, so ``None`` and the profile the environment names are the same.
        """
        return _profile(self.target.get("profile")) == _profile(target.profile) and (
            self.target.get("endpoint_url") or None
        ) == (target.endpoint_url or None)


def _profile(name: str | None) -> str:
    return name or os.environ.get("AWS_PROFILE") or "default"


def default_path() -> Path:
    return paths.state_dir() / "ledger.sqlite3"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """One SQLite file; safe to share between threads of one process and between processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LedgerError(
                f"cannot create the state directory {self.path.parent}: {error.strerror}"
            ) from None
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise LedgerError(
                    f"the ledger {self.path} was written by a newer amibake (schema {version})"
                )
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise LedgerError(
                f"the ledger {self.path} is unreadable ({error}); it is left as it is: "
                f"move it aside to start a new one, and run 'amibake sweep --all-regions' to find "
                "leftovers by their tags"
            ) from None
        except OSError as error:
            raise LedgerError(f"cannot open the ledger {self.path}: {error.strerror}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise LedgerError(f"cannot write the ledger {self.path}: {error}") from None

    # -- builds -------------------------------------------------------------------------------

    def begin_build(self, build_id: str, name: str, template: str, target: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO builds VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 'running')",
                (
                    build_id,
                    name,
                    template,
                    json.dumps(target),
                    socket.gethostname(),
                    os.getpid(),
                    time.time(),
                ),
            )

    def finish_build(self, build_id: str, status: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE builds SET finished = ?, status = ? WHERE build_id = ?",
                (time.time(), status, build_id),
            )

    # -- resources ----------------------------------------------------------------------------

    def intend(self, build_id: str, region: str, kind: str, token: str) -> int:
        """Record a create call about to be made; returns the row to complete."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO resources (build_id, region, kind, token, resource_id, state, updated)"
                " VALUES (?, ?, ?, ?, NULL, 'intended', ?)",
                (build_id, region, kind, token, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def created(self, row: int, resource_id: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE resources SET resource_id = ?, state = 'created', updated = ? WHERE id = ?",
                (resource_id, time.time(), row),
            )

    def record(self, build_id: str, region: str, kind: str, resource_id: str) -> None:
        """A resource the build found it owns after the fact (e.g. an AMI's snapshots)."""
        with self._write() as db:
            exists = db.execute(
                "SELECT 1 FROM resources WHERE build_id = ? AND resource_id = ?",
                (build_id, resource_id),
            ).fetchone()
            if not exists:
                db.execute(
                    "INSERT INTO resources (build_id, region, kind, token, resource_id, state,"
                    " updated) VALUES (?, ?, ?, ?, ?, 'created', ?)",
                    (build_id, region, kind, resource_id, resource_id, time.time()),
                )

    def set_state(self, build_id: str, resource_id: str, state: str) -> None:
        """Mark every row of ``resource_id`` (deleted, kept...)."""
        with self._write() as db:
            db.execute(
                "UPDATE resources SET state = ?, updated = ?"
                " WHERE build_id = ? AND resource_id = ?",
                (state, time.time(), build_id, resource_id),
            )

    def withdraw(self, row: int) -> None:
        """An intent whose create call was never sent: nothing can exist for it."""
        with self._write() as db:
            db.execute(
                "UPDATE resources SET state = 'deleted', updated = ? "
                "WHERE id = ? AND state = 'intended'",
                (time.time(), row),
            )

    def settle_intents(self, build_id: str, kind: str, region: str) -> None:
        """Rows of ``kind`` that never got an id are resolved (found and removed by tag)."""
        with self._write() as db:
            db.execute(
                "UPDATE resources SET state = 'deleted', updated = ? WHERE build_id = ? AND "
                "kind = ? AND region = ? AND state = 'intended'",
                (time.time(), build_id, kind, region),
            )

    # -- queries -------------------------------------------------------------------------------

    def _build(self, row: tuple[Any, ...]) -> LedgerBuild:
        resources = self._db.execute(
            "SELECT id, build_id, region, kind, token, resource_id, state, updated FROM resources"
            " WHERE build_id = ? AND state IN ('intended', 'created', 'kept') ORDER BY id",
            (row[0],),
        ).fetchall()
        return LedgerBuild(
            build_id=row[0],
            name=row[1],
            template=row[2],
            target=json.loads(row[3]),
            host=row[4],
            pid=row[5],
            started=row[6],
            finished=row[7],
            status=row[8],
            outstanding=tuple(LedgerResource(*r) for r in resources),
        )

    def build(self, build_id: str) -> LedgerBuild | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM builds WHERE build_id = ?", (build_id,)
            ).fetchone()
            return self._build(row) if row else None

    def builds(self) -> list[LedgerBuild]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM builds ORDER BY started").fetchall()
            return [self._build(r) for r in rows]

    def unfinished_builds(self, target: Target | None = None) -> list[LedgerBuild]:
        """Builds that need a sweep: their process is gone (or they failed) with resources left.

        A build still running in a live process on this host is not unfinished. Resources a
        failed build kept on purpose (``--on-error abort``) count: they wait for a sweep. The
        AMIs and snapshots of a succeeded build are its artifacts, never leftovers. With a
        ``target``, only the builds that ran on it (:meth:`LedgerBuild.ran_on`): the only ones
        a sweep through that target can settle.
        """
        found = []
        for build in self.builds():
            if target is not None and not build.ran_on(target):
                continue
            here = build.host == socket.gethostname()
            if build.status == "running" and here and process_alive(build.pid):
                continue
            if build.status == "succeeded":
                leftovers = tuple(
                    r
                    for r in build.outstanding
                    if r.kind not in ("image", "snapshot") and r.state != "kept"
                )
            else:
                leftovers = build.outstanding
            if leftovers:
                found.append(LedgerBuild(**{**build.__dict__, "outstanding": leftovers}))
        return found
