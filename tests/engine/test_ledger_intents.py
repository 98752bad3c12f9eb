"""A cancel while a build journals an intent leaves no "intended" row behind.

A step journals what it is about to create (``BuildContext.intend``, an fsync'ed SQLite write
in a worker thread) before it sends the create call. A Ctrl-C that lands during that write
cannot stop the thread: the row is written after the step was cancelled, and no cleanup knew
of it, so the ledger reported an unfinished build (seen once in
tests/reliability/test_create_in_flight.py). The write is held here, mid-way, by a gate.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from amibake.core.engine.context import BuildContext
from amibake.core.engine.retry import IN_FLIGHT, wait_in_flight
from amibake.core.ledger import Ledger
from tests.templates.helpers import json_builder, load_text


class GatedLedger(Ledger):
    """A ledger whose intent writes wait for the test to let them through."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writing = threading.Event()
        self.gate = threading.Event()

    def intend(self, build_id: str, region: str, kind: str, token: str) -> int:
        self.writing.set()
        self.gate.wait(10)
        return super().intend(build_id, region, kind, token)


async def test_an_intent_cancelled_while_it_is_written_is_withdrawn(tmp_path: Path) -> None:
    ledger = GatedLedger(tmp_path / "ledger.sqlite3")
    spec = load_text(json_builder())
    context = BuildContext(
        spec=spec,
        builder=spec.builders[0],
        aws=None,  # type: ignore[arg-type]  # intend touches the ledger only
        options=None,  # type: ignore[arg-type]
        emit_event=lambda event: None,
        ledger=ledger,
    )
    ledger.begin_build(context.build_id, "amazon-ebs", "t.json", {})
    pending: set[asyncio.Future[Any]] = set()
    IN_FLIGHT.set(pending)
    step = asyncio.create_task(context.intend("security-group", "amibake_x"))
    await asyncio.to_thread(ledger.writing.wait, 10)  # the row is being written
    step.cancel()
    await asyncio.gather(step, return_exceptions=True)
    assert step.cancelled() and pending  # the withdrawal waits for the write
    ledger.gate.set()
    await wait_in_flight(pending, lambda text: None)  # what the runner does before cleanups
    ledger.finish_build(context.build_id, "cancelled")
    assert ledger.unfinished_builds() == []
    ledger.close()
