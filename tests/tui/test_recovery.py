"""On start, leftovers of a crashed earlier run (from the ledger) are offered for cleanup."""

from __future__ import annotations

import uuid
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Static

from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud
from amibake.tui.modals.recovery import RecoveryModal, offer_recovery
from amibake.tui.session import Session
from tests.tui.builds_support import wait_until


class RecoveryApp(App[None]):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Static("main")

    async def on_mount(self) -> None:
        await offer_recovery(self)


def crashed_build(cloud: LocalCloud) -> tuple[str, str]:
    """A build whose process died after creating a key pair: ledger row + tagged key pair."""
    build_id = f"crashed-{uuid.uuid4().hex[:6]}"
    name = f"amibake_{build_id}"
    cloud.client("ec2", "us-east-1").create_key_pair(
        KeyName=name,
        TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": "amibake:build-id", "Value": build_id}]}
        ],
    )
    ledger = Ledger()
    try:
        target = {"profile": None, "endpoint_url": cloud.endpoint_url}
        ledger.begin_build(build_id, "amazon-ebs", "t.json", target)
        ledger.created(ledger.intend(build_id, "us-east-1", "key-pair", name), name)
        ledger._db.execute("UPDATE builds SET pid = 999999999 WHERE build_id = ?", (build_id,))
    finally:
        ledger.close()
    return build_id, name


async def sweep_build(cloud: LocalCloud, build_id: str) -> None:
    from amibake.core.aws import Aws
    from amibake.core.sweep import Sweeper

    aws: Any = Aws(Session.for_local(cloud).target)
    ledger = Ledger()
    try:
        await Sweeper(aws, ledger=ledger, build_id=build_id).sweep(["us-east-1"])
    finally:
        aws.close()
        ledger.close()


def key_names(cloud: LocalCloud) -> list[str]:
    return [k["KeyName"] for k in cloud.client("ec2", "us-east-1").describe_key_pairs()["KeyPairs"]]


def unfinished(build_id: str) -> bool:
    """Whether the ledger still lists ``build_id`` as needing a sweep."""
    ledger = Ledger()
    try:
        return build_id in [b.build_id for b in ledger.unfinished_builds()]
    finally:
        ledger.close()


async def test_leftovers_are_offered_and_swept(cloud: LocalCloud) -> None:
    build_id, name = crashed_build(cloud)
    app = RecoveryApp(Session.for_local(cloud))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RecoveryModal)
        listed = "\n".join(str(w.render()) for w in app.screen.query(Static))
        assert build_id in listed and "1 key-pair" in listed
        await pilot.press("y")
        await wait_until(pilot, lambda: name not in key_names(cloud), 5, "the sweep")
    assert not unfinished(build_id)


async def test_later_keeps_everything(cloud: LocalCloud) -> None:
    build_id, name = crashed_build(cloud)
    app = RecoveryApp(Session.for_local(cloud))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RecoveryModal)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, RecoveryModal)
    assert name in key_names(cloud)
    await sweep_build(cloud, build_id)  # as a later 'amibake sweep' would
    assert name not in key_names(cloud)


async def test_builds_of_another_target_are_not_offered(cloud: LocalCloud) -> None:
    # A build recorded against an AWS profile: sweeping it through the local cloud would
    # find nothing and wrongly mark its resources gone.
    build_id, name = crashed_build(cloud)
    ledger = Ledger()
    try:
        ledger._db.execute(
            "UPDATE builds SET target = ? WHERE build_id = ?",
            ('{"profile": "prod", "endpoint_url": null}', build_id),
        )
    finally:
        ledger.close()
    app = RecoveryApp(Session.for_local(cloud))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        if isinstance(app.screen, RecoveryModal):
            assert build_id not in [b.build_id for b in app.screen.builds]
    assert unfinished(build_id)
    ledger = Ledger()
    try:
        # Back to this cloud's target, and swept, so later tests start clean.
        ledger._db.execute(
            "UPDATE builds SET target = ? WHERE build_id = ?",
            (f'{{"profile": null, "endpoint_url": "{cloud.endpoint_url}"}}', build_id),
        )
    finally:
        ledger.close()
    await sweep_build(cloud, build_id)
    assert name not in key_names(cloud)


async def test_the_app_offers_recovery_on_start(cloud: LocalCloud, tmp_path: Any) -> None:
    from tests.tui.browser_support import make_app

    build_id, name = crashed_build(cloud)
    app = make_app(cloud, tmp_path, recover=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RecoveryModal), 5, "the offer")
        assert build_id in [b.build_id for b in app.screen.builds]
        await pilot.press("y")
        await wait_until(pilot, lambda: name not in key_names(cloud), 5, "the sweep")


async def test_sweep_from_the_app_asks_then_deletes_leftovers(
    cloud: LocalCloud, tmp_path: Any
) -> None:
    from amibake.tui.modals.build_confirm import ConfirmationModal
    from tests.tui.browser_support import make_app

    build_id, name = crashed_build(cloud)
    app = make_app(cloud, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_sweep()
        await wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmationModal), 10, "the question"
        )
        await pilot.press("y")
        await wait_until(pilot, lambda: name not in key_names(cloud), 10, "the sweep")
    assert not unfinished(build_id)
