"""On start: builds an earlier run left unfinished (from the ledger), offered for cleanup.

:func:`offer_recovery` reads the ledger off the UI thread; when builds whose
process is gone left resources, a :class:`RecoveryModal` lists them and offers to
sweep them now (``y``) or later (``n`` / ``escape``; ``amibake sweep`` does it
from the shell too). The sweep runs in a worker with the session's target and
reports through notifications. :func:`sweep_region` is the app's "sweep leftovers in
this region" (find, confirm, delete).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from amibake.core.errors import AmibakeError
from amibake.tui.modals.build_confirm import ConfirmationModal

if TYPE_CHECKING:
    from textual.app import App

    from amibake.core.aws import Target
    from amibake.core.ledger import LedgerBuild
    from amibake.tui.session import Session


def describe(build: LedgerBuild) -> str:
    kinds: dict[str, int] = {}
    for resource in build.outstanding:
        kinds[resource.kind] = kinds.get(resource.kind, 0) + 1
    left = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    where = ", ".join(build.regions) or "?"
    return f"{build.build_id}  {build.name}  ({build.status}; {left} in {where})"


class RecoveryModal(ModalScreen[bool]):
    """Lists unfinished builds; dismisses with True to sweep them now."""

    DEFAULT_CSS = """
    RecoveryModal { align: center middle; }
    RecoveryModal > Vertical {
        width: 90; height: auto; max-height: 80%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    RecoveryModal #recovery-title { text-style: bold; margin-bottom: 1; }
    RecoveryModal #recovery-list { margin-bottom: 1; color: $text-muted; }
    RecoveryModal Horizontal { height: auto; align-horizontal: right; }
    RecoveryModal Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "sweep", "Sweep now", id="recovery.sweep"),
        Binding("n,escape", "later", "Later", id="recovery.later"),
    ]

    def __init__(self, builds: list[LedgerBuild]) -> None:
        super().__init__()
        self.builds = builds

    def compose(self) -> ComposeResult:
        count = sum(len(b.outstanding) for b in self.builds)
        with Vertical():
            yield Static(
                f"{len(self.builds)} build(s) of an earlier run did not finish and left "
                f"{count} resource(s) behind.",
                id="recovery-title",
            )
            yield Static("\n".join(describe(b) for b in self.builds), id="recovery-list")
            yield Static("Sweep them now? (You can also run 'amibake sweep' later.)")
            with Horizontal():
                yield Button("Sweep now", variant="warning", id="recovery-sweep")
                yield Button("Later", id="recovery-later")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "recovery-sweep")

    def action_sweep(self) -> None:
        self.dismiss(True)

    def action_later(self) -> None:
        self.dismiss(False)


async def unfinished_builds(target: Target) -> list[LedgerBuild]:
    """The ledger's unfinished builds on ``target`` (read off the UI thread)."""
    from amibake.core.ledger import Ledger, LedgerError

    def read() -> list[LedgerBuild]:
        ledger = Ledger()
        try:
            return ledger.unfinished_builds(target)
        finally:
            ledger.close()

    try:
        return await asyncio.to_thread(read)
    except LedgerError:
        return []


async def ready_session(app: App[Any], timeout: float = 30.0) -> Any:
    """The app's session once it has a target (the local cloud may still be starting)."""
    for _ in range(int(timeout * 10)):
        session = getattr(app, "session", None)
        if session is not None and session.ready:
            return session
        await asyncio.sleep(0.1)
    return None


async def sweep_builds(app: App[Any], builds: list[LedgerBuild]) -> None:
    """Sweep each build with the session's target; say what happened."""
    from amibake.core.aws import Aws
    from amibake.core.ledger import Ledger
    from amibake.core.sweep import sweep_builds as sweep

    session = await ready_session(app)
    if session is None:
        app.notify("No target to sweep with yet; run 'amibake sweep' later", severity="warning")
        return
    ledger = await asyncio.to_thread(Ledger)
    aws = Aws(session.target)
    try:
        report = await sweep(aws, ledger, builds, fallback_region=session.region)
    except Exception as error:  # shown, never raised into the UI
        app.notify(f"Sweep failed: {error}", severity="error", timeout=10)
        return
    finally:
        await asyncio.to_thread(aws.close)
        await asyncio.to_thread(ledger.close)
    deleted, failed = len(report.deleted), len(report.failed)
    if failed:
        app.notify(
            f"Swept {deleted} resource(s); {failed} could not be deleted "
            "(run 'amibake sweep' for details)",
            severity="warning",
            timeout=10,
        )
    else:
        app.notify(f"Swept {deleted} resource(s) left by {len(builds)} earlier build(s)")


async def offer_recovery(app: App[Any]) -> None:
    """Look for leftovers of a crashed run on the app's target; offer to sweep them."""
    session = await ready_session(app)
    if session is None:
        return
    builds = await unfinished_builds(session.target)
    if not builds:
        return

    async def answered(sweep: bool | None) -> None:
        if sweep:
            await sweep_builds(app, builds)

    await app.push_screen(RecoveryModal(builds), answered)


async def sweep_region(
    app: App[Any], session: Session, report_error: Callable[[str, str], None]
) -> None:
    """The app's sweep: find what builds left in the session's region, confirm, delete."""
    from amibake.core.ledger import Ledger
    from amibake.core.sweep import Sweeper

    if not session.ready:
        app.notify("the local cloud is still starting")
        return
    try:
        ledger = Ledger()
        finder = Sweeper(session.aws(), ledger=ledger, dry_run=True)
        found = await finder.find(session.region)
    except AmibakeError as error:
        report_error("Sweep", str(error))
        return
    except Exception as error:
        report_error("Sweep", f"{type(error).__name__}: {error}")
        return
    if not found:
        app.notify(f"nothing left behind in {session.region}", title="Sweep")
        return
    kinds = ", ".join(sorted({orphan.kind for orphan in found}))
    confirmed = await app.push_screen_wait(
        ConfirmationModal(
            f"Delete {len(found)} leftover resources in {session.region}?",
            detail=kinds,
            confirm_label="Delete",
        )
    )
    if not confirmed:
        return
    try:
        sweeper = Sweeper(session.aws(), ledger=ledger)
        report = await sweeper.sweep([session.region])
    except Exception as error:
        report_error("Sweep", f"{type(error).__name__}: {error}")
        return
    if report.clean:
        app.notify(f"deleted {len(report.deleted)} resources", title="Sweep")
    else:
        report_error("Sweep", f"{len(report.failed)} resources could not be deleted")
