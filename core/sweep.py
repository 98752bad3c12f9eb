"""Find and delete what builds left behind, through the ledger and through amibake's tags.

Order matters on EC2: instances first (and wait until terminated, which frees
their security groups and volumes), then spot fleets and their launch templates,
security groups (AWS may still say DependencyViolation for a moment), key pairs,
detached volumes, then AMIs that never became artifacts and their snapshots. A
successful build's AMIs carry the ``amibake:artifact`` tag and are never touched.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from amibake.core.aws import Aws, AwsError
from amibake.core.engine.context import TAG_ARTIFACT, TAG_BUILD_ID, TAG_CREATED_AT
from amibake.core.engine.steps.iam_profile import delete_instance_profile, delete_role
from amibake.core.engine.steps.spot import LIVE_FLEET_STATES, delete_fleet
from amibake.core.engine.waiters import AMI_GONE, PollPolicy, delete_when_free, poll
from amibake.core.errors import UsageError
from amibake.core.ledger import Ledger, LedgerBuild
from amibake.core.paths import state_dir

#: deletion order (a role goes before its instance profile: deleting it detaches it)
KINDS = (
    "instance",
    "fleet",
    "launch-template",
    "security-group",
    "key-pair",
    "role",
    "instance-profile",
    "volume",
    "image",
    "snapshot",
)
#: IAM names of amibake's temporary roles and instance profiles (``amibake_<build id>``)
IAM_PREFIX = "amibake_"


@dataclass(frozen=True)
class Orphan:
    region: str
    kind: str
    resource_id: str
    build_id: str | None
    created: float | None  # epoch seconds, when known
    detail: str = ""


@dataclass
class SweepReport:
    dry_run: bool
    found: list[Orphan] = field(default_factory=list)
    deleted: list[Orphan] = field(default_factory=list)
    failed: list[tuple[Orphan, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.failed


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1d`` (or combinations like ``1h30m``) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise UsageError(f"--older-than expects a duration like 30m, 2h or 1d, not {text!r}")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * scale[u] for n, u in parts)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _created(tags: dict[str, str]) -> float | None:
    value = tags.get(TAG_CREATED_AT)
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Sweeper:
    def __init__(
        self,
        aws: Aws,
        *,
        ledger: Ledger | None = None,
        build_id: str | None = None,
        older_than: float | None = None,
        dry_run: bool = False,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.aws = aws
        self.ledger = ledger
        self.build_id = build_id
        self.older_than = older_than
        self.dry_run = dry_run
        self.say = say
        #: resources carrying amibake's tags were seen (before the age and build filters)
        self.seen: set[str] = set()
        #: IAM is global: its roles and instance profiles are searched with the first region
        self._iam_searched = False

    def _wanted(self, build_id: str | None, created: float | None) -> bool:
        if self.build_id is not None and build_id != self.build_id:
            return False
        if self.older_than is not None:
            if created is None:
                return False  # unknown age: not provably old enough
            if time.time() - created < self.older_than:
                return False
        return True

    def _live_builds(self) -> set[str]:
        """Builds running right now in a live process: never swept from under them."""
        if self.ledger is None:
            return set()
        finished = {b.build_id for b in self.ledger.unfinished_builds()}
        return {b.build_id for b in self.ledger.builds() if b.status == "running"} - finished

    async def find(self, region: str) -> list[Orphan]:
        tag_filter = [{"Name": "tag-key", "Values": [TAG_BUILD_ID]}]
        if self.build_id:
            tag_filter = [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [self.build_id]}]
        call = self.aws.call
        (
            instances,
            groups,
            keys,
            volumes,
            images,
            snapshots,
            fleets,
            templates,
        ) = await asyncio.gather(
            self.aws.collect(region, "DescribeInstances", "Reservations", Filters=tag_filter),
            self.aws.collect(
                region, "DescribeSecurityGroups", "SecurityGroups", Filters=tag_filter
            ),
            call(region, "DescribeKeyPairs", Filters=tag_filter),
            self.aws.collect(region, "DescribeVolumes", "Volumes", Filters=tag_filter),
            call(region, "DescribeImages", Owners=["self"], Filters=tag_filter),
            self.aws.collect(
                region, "DescribeSnapshots", "Snapshots", OwnerIds=["self"], Filters=tag_filter
            ),
            # DescribeFleets has no tag filter: the tags are read below
            self.aws.collect(
                region,
                "DescribeFleets",
                "Fleets",
                Filters=[{"Name": "fleet-state", "Values": list(LIVE_FLEET_STATES)}],
            ),
            self.aws.collect(
                region, "DescribeLaunchTemplates", "LaunchTemplates", Filters=tag_filter
            ),
        )
        live = self._live_builds()
        found: list[Orphan] = []

        def add(kind: str, resource_id: str, tags: dict[str, str], detail: str = "") -> None:
            build = tags.get(TAG_BUILD_ID)
            if build:
                self.seen.add(build)
            if build in live or not self._wanted(build, _created(tags)):
                return
            found.append(Orphan(region, kind, resource_id, build, _created(tags), detail))

        for reservation in instances:
            for instance in reservation.get("Instances", []):
                if instance["State"]["Name"] != "terminated":
                    add(
                        "instance",
                        instance["InstanceId"],
                        _tags(instance),
                        instance["State"]["Name"],
                    )
        for fleet in fleets:
            if fleet.get("FleetState") in LIVE_FLEET_STATES:
                add("fleet", fleet["FleetId"], _tags(fleet), fleet.get("Type", ""))
        for template in templates:
            add(
                "launch-template",
                template["LaunchTemplateId"],
                _tags(template),
                template.get("LaunchTemplateName", ""),
            )
        for group in groups:
            add("security-group", group["GroupId"], _tags(group), group.get("GroupName", ""))
        # gather() of nine calls types its results as one union: these two are responses
        for key in cast("dict[str, Any]", keys).get("KeyPairs", []):
            add("key-pair", key["KeyName"], _tags(key))
        for volume in volumes:
            if volume.get("State") in ("available", "error", "creating"):
                add("volume", volume["VolumeId"], _tags(volume), volume.get("State", ""))
        artifact_snapshots: set[str] = set()
        for image in cast("dict[str, Any]", images).get("Images", []):
            tags = _tags(image)
            if tags.get(TAG_ARTIFACT) == "true":
                artifact_snapshots.update(
                    m["Ebs"]["SnapshotId"]
                    for m in image.get("BlockDeviceMappings", [])
                    if m.get("Ebs", {}).get("SnapshotId")
                )
                continue
            add("image", image["ImageId"], tags, f"{image.get('Name', '')} ({image.get('State')})")
        for snapshot in snapshots:
            tags = _tags(snapshot)
            if tags.get(TAG_ARTIFACT) == "true" or snapshot["SnapshotId"] in artifact_snapshots:
                continue
            add("snapshot", snapshot["SnapshotId"], tags, snapshot.get("State", ""))
        if not self._iam_searched:
            self._iam_searched = True
            for kind, resource_id, tags in await self._iam(region):
                add(kind, resource_id, tags)
        found.extend(await self._untagged(region, {o.resource_id for o in found}, live))
        return found

    async def _iam(self, region: str) -> list[tuple[str, str, dict[str, str]]]:
        """amibake's temporary roles and instance profiles, with their tags (IAM's list calls
        leave tags out, so each candidate named ``amibake_*`` is read with its Get call)."""

        async def iam(operation: str, **params: Any) -> dict[str, Any]:
            return await self.aws.service_call("iam", region, operation, **params)

        found: list[tuple[str, str, dict[str, str]]] = []
        for kind, lister, key, name_key, getter, item_key in (
            ("role", "ListRoles", "Roles", "RoleName", "GetRole", "Role"),
            (
                "instance-profile",
                "ListInstanceProfiles",
                "InstanceProfiles",
                "InstanceProfileName",
                "GetInstanceProfile",
                "InstanceProfile",
            ),
        ):
            names: list[str] = []
            marker: str | None = None
            while True:
                page = await iam(lister, **({"Marker": marker} if marker else {}))
                names += [
                    item[name_key]
                    for item in page.get(key, [])
                    if item[name_key].startswith(IAM_PREFIX)
                ]
                marker = page.get("Marker") if page.get("IsTruncated") else None
                if not marker:
                    break
            for name in names:
                tags = _tags((await iam(getter, **{name_key: name}))[item_key])
                if tags.get(TAG_BUILD_ID):
                    found.append((kind, name, tags))
        return found

    async def _untagged(self, region: str, seen: set[str], live: set[str]) -> list[Orphan]:
        """AMIs and snapshots the ledger knows by id that carry no amibake tag
        (``--no-amibake-tags`` builds): found through the ledger alone."""
        if self.ledger is None:
            return []
        wanted: dict[str, dict[str, tuple[str, float]]] = {"image": {}, "snapshot": {}}
        for build in self.ledger.unfinished_builds(self.aws.target):
            if build.build_id in live or not self._wanted(build.build_id, build.started):
                continue
            for resource in build.outstanding:
                if (
                    resource.region == region
                    and resource.kind in wanted
                    and resource.resource_id
                    and resource.resource_id not in seen
                ):
                    wanted[resource.kind][resource.resource_id] = (build.build_id, build.started)
        orphans: list[Orphan] = []
        if wanted["image"]:
            images = await self.aws.call(
                region,
                "DescribeImages",
                Owners=["self"],
                Filters=[{"Name": "image-id", "Values": sorted(wanted["image"])}],
            )
            for image in images.get("Images", []):
                if _tags(image).get(TAG_BUILD_ID):
                    continue  # tagged: the tag search decided (an artifact stays)
                build_id, started = wanted["image"][image["ImageId"]]
                detail = f"{image.get('Name', '')} ({image.get('State')})"
                orphans.append(Orphan(region, "image", image["ImageId"], build_id, started, detail))
        if wanted["snapshot"]:
            snapshots = await self.aws.collect(
                region,
                "DescribeSnapshots",
                "Snapshots",
                OwnerIds=["self"],
                Filters=[{"Name": "snapshot-id", "Values": sorted(wanted["snapshot"])}],
            )
            for snapshot in snapshots:
                if _tags(snapshot).get(TAG_BUILD_ID):
                    continue
                build_id, started = wanted["snapshot"][snapshot["SnapshotId"]]
                orphans.append(
                    Orphan(
                        region,
                        "snapshot",
                        snapshot["SnapshotId"],
                        build_id,
                        started,
                        snapshot.get("State", ""),
                    )
                )
        return orphans

    async def delete(self, orphan: Orphan) -> None:
        region, resource_id = orphan.region, orphan.resource_id
        call = self.aws.call
        if orphan.kind == "instance":
            await call(region, "TerminateInstances", InstanceIds=[resource_id])
        elif orphan.kind == "fleet":
            await delete_fleet(self.aws, region, resource_id)
        elif orphan.kind == "launch-template":
            try:
                await call(region, "DeleteLaunchTemplate", LaunchTemplateId=resource_id)
            except AwsError as error:
                if not error.code.startswith("InvalidLaunchTemplate"):
                    raise
        elif orphan.kind == "security-group":
            await delete_when_free(
                self.aws,
                region,
                "DeleteSecurityGroup",
                in_use="DependencyViolation",
                gone=("InvalidGroup.NotFound",),
                what=f"security group {resource_id}",
                GroupId=resource_id,
            )
        elif orphan.kind == "key-pair":
            await call(region, "DeleteKeyPair", KeyName=resource_id)
        elif orphan.kind == "role":
            await delete_role(self.aws, region, resource_id)
        elif orphan.kind == "instance-profile":
            await delete_instance_profile(self.aws, region, resource_id)
        elif orphan.kind == "volume":
            await call(region, "DeleteVolume", VolumeId=resource_id)
        elif orphan.kind == "image":
            await delete_when_free(
                self.aws,
                region,
                "DeregisterImage",
                gone=AMI_GONE,
                what=f"AMI {resource_id}",
                ImageId=resource_id,
            )
        elif orphan.kind == "snapshot":
            await delete_when_free(
                self.aws,
                region,
                "DeleteSnapshot",
                in_use="InvalidSnapshot.InUse",
                gone=("InvalidSnapshot.NotFound",),
                what=f"snapshot {resource_id}",
                SnapshotId=resource_id,
            )

    async def wait_terminated(self, region: str, instance_ids: Sequence[str]) -> None:
        async def states() -> list[str]:
            found = await self.aws.collect(
                region, "DescribeInstances", "Reservations", InstanceIds=list(instance_ids)
            )
            return [i["State"]["Name"] for r in found for i in r.get("Instances", [])]

        await poll(
            states,
            lambda s: all(x == "terminated" for x in s),
            what="instances to terminate",
            policy=PollPolicy(timeout=900),
        )

    async def sweep(self, regions: Iterable[str]) -> SweepReport:
        report = SweepReport(dry_run=self.dry_run)
        regions_done: list[str] = []
        for region in regions:
            regions_done.append(region)
            orphans = await self.find(region)
            orphans.sort(key=lambda o: KINDS.index(o.kind))
            report.found.extend(orphans)
            if self.dry_run:
                for orphan in orphans:
                    self.say(
                        f"would delete {orphan.kind} {orphan.resource_id} in {region} "
                        f"(build {orphan.build_id}) {orphan.detail}".rstrip()
                    )
                continue
            for kind in KINDS:
                batch = [o for o in orphans if o.kind == kind]
                results = await asyncio.gather(
                    *(self.delete(o) for o in batch), return_exceptions=True
                )
                for orphan, result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        report.failed.append((orphan, str(result)))
                        self.say(
                            f"could not delete {orphan.kind} {orphan.resource_id} in "
                            f"{region}: {result}"
                        )
                    else:
                        report.deleted.append(orphan)
                        self.say(
                            f"deleted {orphan.kind} {orphan.resource_id} in {region} "
                            f"(build {orphan.build_id})"
                        )
                if kind == "instance":
                    terminated = [o.resource_id for o in batch if o in report.deleted]
                    if terminated:
                        await self.wait_terminated(region, terminated)
        if not self.dry_run:
            self._settle_ledger(report, set(regions_done))
        return report

    def _settle_ledger(self, report: SweepReport, regions: set[str]) -> None:
        """Bring the ledger up to date with what the sweep removed.

        A sweep that searched every region a build used, without failures and without an
        age limit, has removed everything of that build found by tag, so every row of it
        still open (including intents that never got an id) is settled and the build is
        marked swept.
        """
        if self.ledger is None:
            return
        for orphan in report.deleted:
            if orphan.build_id:
                self.ledger.set_state(orphan.build_id, orphan.resource_id, "deleted")
        if self.older_than is not None:
            return  # a partial sweep settles only what it deleted
        failed = {o.build_id for o, _ in report.failed}
        # Only builds of this sweep's target: it could not see another's resources.
        for build in self.ledger.unfinished_builds(self.aws.target):
            if self.build_id is not None and build.build_id != self.build_id:
                continue
            if build.build_id in failed or not set(build.regions) <= regions:
                continue
            for resource in build.outstanding:
                if resource.resource_id is None:
                    self.ledger.settle_intents(build.build_id, resource.kind, resource.region)
                else:
                    self.ledger.set_state(build.build_id, resource.resource_id, "deleted")
            if build.status not in ("succeeded",):
                self.ledger.finish_build(build.build_id, "swept")
            (state_dir() / "keys" / f"{build.build_id}.pem").unlink(missing_ok=True)


async def sweep_builds(
    aws: Aws,
    ledger: Ledger,
    builds: Iterable[LedgerBuild],
    *,
    fallback_region: str,
    say: Callable[[str], None] = lambda text: None,
) -> SweepReport:
    """Sweep what each of ``builds`` (the ledger's unfinished builds) left behind.

    Each build is swept in the regions it used (``fallback_region`` when it recorded
    none). The one recovery flow: ``amibake build --recover`` and the app's recovery
    offer both call this; one report sums the builds'.
    """
    total = SweepReport(dry_run=False)
    for build in builds:
        sweeper = Sweeper(aws, ledger=ledger, build_id=build.build_id, say=say)
        report = await sweeper.sweep(build.regions or (fallback_region,))
        total.found += report.found
        total.deleted += report.deleted
        total.failed += report.failed
    return total
