"""Test support for the editor, monitor and history screens (issue 7).

``BuildsTestApp`` stands in for the real app: it provides ``app.session`` with
the interface of tui/session.py (target, region, ssh_port, local_cloud,
settings) built from the session's local cloud, and quits through
:func:`amibake.tui.host.quit_app` as the real app does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from amibake.core.aws import Target
from amibake.core.engine.build import amazon_ebs_steps
from amibake.core.engine.context import TAG_BUILD_ID
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.tui.host import BuildsHost


@dataclass
class FakeSession:
    target: Target
    region: str = "us-east-1"
    ssh_port: int | None = None
    local_cloud: Any = None
    settings: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def session_for(cloud: LocalCloud) -> FakeSession:
    return FakeSession(
        target=Target(
            endpoint_url=cloud.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
        ),
        ssh_port=cloud.ssh_port,
        local_cloud=cloud,
    )


class _Home(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("home")


class BuildsTestApp(BuildsHost):
    """A minimal host app; ``first`` builds the screen shown on start."""

    def __init__(
        self, session: FakeSession, first: Callable[[], Screen[Any]] | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self._first = first

    def on_mount(self) -> None:
        self.push_screen(_Home())
        if self._first is not None:
            self.push_screen(self._first())


def tagged_resources(
    cloud: LocalCloud, build_id: str, regions: tuple[str, ...] = ("us-east-1",)
) -> list[str]:
    """Everything still alive in the cloud with the tag amibake:build-id = ``build_id``."""
    left: list[str] = []
    tag = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}]
    for region in regions:
        ec2 = cloud.client("ec2", region)
        for reservation in ec2.describe_instances(Filters=tag)["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    left.append(instance["InstanceId"])
        left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]]
        left += [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]]
        left += [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=tag)["Images"]]
        left += [
            s["SnapshotId"]
            for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]
        ]
        left += [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]]
    return left


async def wait_until(
    pilot: Any, predicate: Callable[[], Any], timeout: float = 30.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def write_template(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- a recorded build with fixed ids and times (snapshots) ---------------------------------------

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC

#: The plan a scripted build announces in BuildStarted: the whole amazon-ebs flow.
PLAN: tuple[tuple[str, str], ...] = tuple(
    (step.name, step.title)
    for step in amazon_ebs_steps()
    if step.name not in ("encrypt-boot", "artifacts")
)


def scripted_events(build: str = "demo", *, upto: str = "finished") -> list[Any]:
    """A plausible build's events at fixed times; ``upto``: provisioning, cancelling, finished."""
    from amibake.core.events import (
        ArtifactCreated,
        BuildFinished,
        BuildStarted,
        LogLines,
        Message,
        ResourceChanged,
        StepFinished,
        StepStarted,
    )

    build_id = "20260101-000000-5eed00"
    t = T0
    events: list[Any] = [
        BuildStarted(
            build=build,
            time=t,
            build_id=build_id,
            template="demo.pkr.hcl",
            region="us-east-1",
            variables={"app_version": "1.0.0"},
            steps=PLAN,
        ),
    ]
    steps = [
        ("prevalidate", "Checking credentials, regions and the AMI name", 0.4),
        ("prepare", "Preparing source AMI, key pair, security group", 1.1),
        ("instance", "Launching the instance", 1.6),
        ("ssh", "Waiting for SSH", 1.2),
    ]
    for name, title, took in steps:
        events.append(StepStarted(build=build, time=t, step=name, title=title))
        if name == "prepare":
            events += [
                ResourceChanged(
                    build=build,
                    time=t + 0.2,
                    kind="key-pair",
                    resource_id="amibake_20260101-000000-5eed00",
                    region="us-east-1",
                    state="created",
                ),
                ResourceChanged(
                    build=build,
                    time=t + 0.3,
                    kind="security-group",
                    resource_id="sg-0a1b2c3d4e5f60718",
                    region="us-east-1",
                    state="created",
                    detail="amibake_20260101-000000-5eed00",
                ),
            ]
        if name == "instance":
            events += [
                ResourceChanged(
                    build=build,
                    time=t + 0.1,
                    kind="instance",
                    resource_id="i-0123456789abcdef0",
                    region="us-east-1",
                    state="created",
                    detail="127.42.0.1",
                ),
                ResourceChanged(
                    build=build,
                    time=t + 0.2,
                    kind="volume",
                    resource_id="vol-0fedcba9876543210",
                    region="us-east-1",
                    state="created",
                    detail="attached to i-0123456789abcdef0",
                ),
                Message(
                    build=build,
                    time=t + 0.3,
                    text="Instance i-0123456789abcdef0 is running at 127.42.0.1",
                ),
            ]
        t += took
        events.append(StepFinished(build=build, time=t, step=name, status="ok", duration=took))
    events.append(StepStarted(build=build, time=t, step="provision", title="Provisioning"))
    events.append(Message(build=build, time=t, text="Provisioning with shell (inline script)"))
    for i in range(1, 41):
        stream = "stderr" if i % 13 == 0 else "stdout"
        text = f"warning: step {i} is slow" if stream == "stderr" else f"installing package {i}/40"
        events.append(LogLines(build=build, time=t + i * 0.01, stream=stream, lines=(text,)))
    if upto == "provisioning":
        return events
    if upto == "cancelling":
        events.append(
            StepFinished(
                build=build, time=t + 1, step="provision", status="cancelled", duration=1.0
            )
        )
        events += [
            ResourceChanged(
                build=build,
                time=t + 1.1,
                kind="instance",
                resource_id="i-0123456789abcdef0",
                region="us-east-1",
                state="deleting",
            ),
            ResourceChanged(
                build=build,
                time=t + 1.2,
                kind="volume",
                resource_id="vol-0fedcba9876543210",
                region="us-east-1",
                state="deleted",
            ),
        ]
        return events
    t += 1.5
    events.append(StepFinished(build=build, time=t, step="provision", status="ok", duration=1.5))
    for name, title, took in (
        ("stop", "Stopping the instance", 1.5),
        ("create-image", "Creating the AMI", 2.0),
    ):
        events.append(StepStarted(build=build, time=t, step=name, title=title))
        t += took
        events.append(StepFinished(build=build, time=t, step=name, status="ok", duration=took))
    for kind, rid in (
        ("instance", "i-0123456789abcdef0"),
        ("volume", "vol-0fedcba9876543210"),
        ("security-group", "sg-0a1b2c3d4e5f60718"),
        ("key-pair", "amibake_20260101-000000-5eed00"),
    ):
        events.append(
            ResourceChanged(
                build=build,
                time=t,
                kind=kind,
                resource_id=rid,
                region="us-east-1",
                state="deleting",
            )
        )
        events.append(
            ResourceChanged(
                build=build,
                time=t + 0.5,
                kind=kind,
                resource_id=rid,
                region="us-east-1",
                state="deleted",
            )
        )
    events += [
        ResourceChanged(
            build=build,
            time=t,
            kind="image",
            resource_id="ami-0abc1234def567890",
            region="us-east-1",
            state="kept",
            detail="amibake-demo-20260101000000",
        ),
        ArtifactCreated(
            build=build, time=t + 1, region="us-east-1", image_id="ami-0abc1234def567890"
        ),
        BuildFinished(
            build=build,
            time=t + 1,
            build_id=build_id,
            status="succeeded",
            duration=t + 1 - T0,
            artifacts={"us-east-1": "ami-0abc1234def567890"},
        ),
    ]
    return events


def write_record(
    root: Path, events: list[Any], template: str = "/srv/templates/demo.pkr.hcl"
) -> Path:
    """A build record as amibake.core.history's recorder writes it, from ``events``."""
    from amibake.core.history import BuildRecorder
    from amibake.core.model import BuildSpec

    recorder = BuildRecorder(
        BuildSpec(builders=(), build_time=__import__("datetime").datetime.now()), root=root
    )
    for event in events:
        if type(event).__name__ == "BuildStarted":
            import dataclasses

            event = dataclasses.replace(event, template=template)
        recorder(event)
    return root
