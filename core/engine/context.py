"""What one build knows while it runs: its spec, its AWS session, what it has created."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from amibake.core.events import Event, LogLines, Message, ResourceChanged, ResourceState, Stream
from amibake.core.model import AmazonEbsBuilder, BuildSpec
from amibake.core.templates.gotemplate import build_info, render_runtime

if TYPE_CHECKING:
    import asyncssh

    from amibake.core.aws import Aws, Target
    from amibake.core.engine.decisions import Pause
    from amibake.core.ledger import Ledger
    from amibake.core.ssh import Communicator

#: Tag keys amibake puts on everything it creates, so a sweep can find it without the ledger.
TAG_BUILD_ID = "amibake:build-id"
TAG_CREATED_BY = "amibake:created-by"
TAG_TEMPLATE = "amibake:template"
TAG_CREATED_AT = "amibake:created-at"
#: Put on a successful build's AMIs and snapshots: artifacts, never swept.
TAG_ARTIFACT = "amibake:artifact"

Emit = Callable[[Event], None]
_T = TypeVar("_T")


def new_build_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class BuildOptions:
    """How to run builds (everything that is not in the template)."""

    target: Target | None = None
    #: "cleanup": a failed build removes what it created; "abort": keeps it for debugging;
    #: "ask": a failed step pauses the build until a decision (core/engine/decisions.py).
    on_error: Literal["cleanup", "abort", "ask"] = "cleanup"
    #: --on-error ask: the front end's answer to a paused step (None: only
    #: ``amibake.core.engine.decisions.decide`` answers, e.g. a command on the child's stdin)
    decide: Callable[[Pause], Awaitable[str]] | None = None
    #: reads the template again from disk (a retried provisioner runs the fixed template)
    reload: Callable[[], BuildSpec] | None = None
    #: force_deregister for every builder (``amibake build --force``).
    force: bool = False
    #: replaces every builder's ssh_port (a target whose instances listen elsewhere, e.g. 2222).
    ssh_port: int | None = None
    #: verify the SSH host key against the fingerprints in the console output when present.
    verify_host_key: bool = True
    #: how long to look for fingerprints in the console output before connecting unverified
    #: (GetConsoleOutput with Latest; issue 10).
    console_wait: float = 180.0
    parallel_builds: int = 0  # 0: all builders at once
    #: put amibake's ``amibake:*`` bookkeeping tags on the AMIs and snapshots (the temporary
    #: resources carry them always); off: cleanup and sweep find them through the ledger.
    amibake_tags: bool = True


@dataclass
class BuildContext:
    spec: BuildSpec
    builder: AmazonEbsBuilder
    aws: Aws
    options: BuildOptions
    emit_event: Emit
    build_id: str = field(default_factory=new_build_id)
    #: the durable journal of what this build creates (None: not journaled, e.g. some tests)
    ledger: Ledger | None = None
    # What the steps find and create, filled in as the build goes.
    account_id: str | None = None
    source_image: dict[str, Any] | None = None
    key_name: str | None = None
    private_key: asyncssh.SSHKey | None = None
    security_group_ids: list[str] = field(default_factory=list)
    instance_id: str | None = None
    instance: dict[str, Any] | None = None
    ssh_host: str | None = None
    communicator: Communicator | None = None
    images: dict[str, str] = field(default_factory=dict)  # region -> AMI id
    snapshots: dict[str, list[str]] = field(default_factory=dict)  # region -> snapshot ids
    #: "succeeded" / "failed" / "cancelled" once the steps are over; cleanups read it.
    outcome: str = "running"
    #: when the build started (UTC): an AMI of the build's name created since is the build's
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: regions where a CreateImage/CopyImage call was sent and not answered (yet)
    unanswered_images: set[str] = field(default_factory=set)
    #: keep the resources of a failed build (--on-error abort, or "abort" chosen when asked)
    keep: bool = False
    #: each ``manifest`` post-processor's custom_data (by its place among the template's
    #: post-processors) with ``build.*`` filled in for this build, once it has succeeded
    manifest_data: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.builder.name

    @property
    def build_name(self) -> str:
        """Packer's ``packer_build_name``: what provisioners get as PACKER_BUILD_NAME."""
        return self.builder.build_name or self.builder.name

    @property
    def region(self) -> str:
        return self.builder.region

    @property
    def ssh_port(self) -> int:
        return self.options.ssh_port or self.builder.ssh_port

    @property
    def template_name(self) -> str:
        return self.spec.source_file.name if self.spec.source_file else "<template>"

    def amibake_tags(self) -> dict[str, str]:
        return {
            TAG_BUILD_ID: self.build_id,
            TAG_CREATED_BY: "amibake",
            TAG_TEMPLATE: self.template_name,
            TAG_CREATED_AT: self.spec.build_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def tag_specification(
        self, resource_type: str, *extra: Any, bookkeeping: bool = True
    ) -> dict[str, Any]:
        """The tags of a new resource: ``extra`` mappings in order (later ones win), then
        amibake's own unless ``bookkeeping`` is False."""
        tags: dict[str, str] = {}
        for mapping in extra:
            tags.update(mapping)
        if bookkeeping:
            tags.update(self.amibake_tags())
        return {
            "ResourceType": resource_type,
            "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items()],
        }

    # -- Packer's build template data ({{ .SourceAMIName }} ...) ----------------------------

    def build_info(self) -> dict[str, Any]:
        """Packer's BuildInfoTemplate: the build region and the source AMI (once known)."""
        return build_info(self.region, self.source_image)

    def render(self, text: str) -> str:
        """``ami_description`` and tags, rendered as Packer renders them at run time."""
        return render_runtime(text, self.build_info(), {})

    def render_tags(self, tags: Mapping[str, str]) -> dict[str, str]:
        info = self.build_info()
        return {
            render_runtime(k, info, {}): render_runtime(v, info, {}) for k, v in tags.items()
        }

    def image_tags(self) -> dict[str, str]:
        """The tags of the AMI (every region): ``run_tags`` unless ``skip_ami_run_tags``,
        then ``tags``, which win on a key both have (Packer tags the AMI with ``tags`` after
        creating it with the run tags; region copies carry the source's tags)."""
        builder = self.builder
        tags = {} if builder.skip_ami_run_tags else self.render_tags(builder.run_tags)
        tags.update(self.render_tags(builder.tags))
        return tags

    def snapshot_tags(self, from_instance: bool) -> dict[str, str]:
        """The tags of the AMI's snapshots: ``run_tags`` (only on the snapshots CreateImage
        makes, unless ``skip_ami_run_tags``), then ``tags``, then ``snapshot_tags``."""
        builder = self.builder
        tags = (
            self.render_tags(builder.run_tags)
            if from_instance and not builder.skip_ami_run_tags
            else {}
        )
        tags.update(self.render_tags(builder.tags))
        tags.update(self.render_tags(builder.snapshot_tags))
        return tags

    def artifact_tag_specifications(self, from_instance: bool) -> list[dict[str, Any]]:
        keep = self.options.amibake_tags
        return [
            self.tag_specification("image", self.image_tags(), bookkeeping=keep),
            self.tag_specification("snapshot", self.snapshot_tags(from_instance), bookkeeping=keep),
        ]

    @property
    def ami_description(self) -> str | None:
        text = self.builder.ami_description
        return self.render(text) if text else None

    def build_filter(self) -> dict[str, Any]:
        """EC2 filter matching everything this build tagged."""
        return {"Name": f"tag:{TAG_BUILD_ID}", "Values": [self.build_id]}

    def redact(self, text: str) -> str:
        return self.spec.redact(text)

    # -- the ledger: intent before each create call, the id after, the deletion ---------------

    async def _journal(self, function: Callable[..., _T], *args: object) -> _T | None:
        if self.ledger is None:
            return None
        # fsync'ed SQLite writes: off the event loop.
        return await asyncio.to_thread(function, *args)

    async def intend(self, kind: str, token: str, region: str | None = None) -> int | None:
        """Record that a resource is about to be created (before the call is sent)."""
        region = region or self.region
        self.resource(kind, token, "creating", region)
        if self.ledger is None:
            return None
        write = asyncio.ensure_future(
            self._journal(self.ledger.intend, self.build_id, region, kind, token)
        )
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            # Cancelled before the create call was sent (it is sent only once this returns):
            # nothing can exist for this intent. The write goes on in its thread; once it
            # lands the intent is withdrawn, as a create call in flight this is waited for
            # before the cleanups (else a sweep-worthy "intended" row would outlive the build).
            from amibake.core.engine.retry import IN_FLIGHT

            withdrawal = asyncio.ensure_future(self._withdraw_when_written(write))
            pending = IN_FLIGHT.get()
            if pending is not None:
                pending.add(withdrawal)
                withdrawal.add_done_callback(pending.discard)
            raise

    async def _withdraw_when_written(self, write: asyncio.Future[int | None]) -> None:
        row = await write
        if row is not None and self.ledger is not None:
            await self._journal(self.ledger.withdraw, row)

    async def created(
        self,
        row: int | None,
        kind: str,
        resource_id: str,
        region: str | None = None,
        detail: str | None = None,
    ) -> None:
        if self.ledger is not None and row is not None:
            await self._journal(self.ledger.created, row, resource_id)
        self.resource(kind, resource_id, "created", region, detail)

    async def found(
        self, kind: str, resource_id: str, region: str | None = None, detail: str | None = None
    ) -> None:
        """A resource the build owns that it learnt of after the fact (an AMI's snapshot)."""
        if self.ledger is not None:
            await self._journal(
                self.ledger.record, self.build_id, region or self.region, kind, resource_id
            )
        self.resource(kind, resource_id, "created", region, detail)

    async def deleted(self, kind: str, resource_id: str, region: str | None = None) -> None:
        if self.ledger is not None:
            await self._journal(self.ledger.set_state, self.build_id, resource_id, "deleted")
        self.resource(kind, resource_id, "deleted", region)

    async def kept(self, kind: str, resource_id: str, region: str | None = None) -> None:
        if self.ledger is not None:
            await self._journal(self.ledger.set_state, self.build_id, resource_id, "kept")
        self.resource(kind, resource_id, "kept", region)

    async def settled(self, kind: str, region: str | None = None) -> None:
        """Intents of ``kind`` that never got an id were found and removed by tag."""
        if self.ledger is not None:
            await self._journal(
                self.ledger.settle_intents, self.build_id, kind, region or self.region
            )

    # -- events -----------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self.emit_event(event)

    def say(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        self.emit(Message(build=self.name, text=self.redact(text), level=level))

    def log(self, stream: Stream, lines: list[str], provisioner: int | None = None) -> None:
        """Output lines from the instance, redacted, as one event."""
        if self.spec.sensitive_values:
            # One pass over the joined text per secret, not one per line.
            lines = self.redact("\n".join(lines)).split("\n")
        self.emit(
            LogLines(build=self.name, stream=stream, lines=tuple(lines), provisioner=provisioner)
        )

    def resource(
        self,
        kind: str,
        resource_id: str,
        state: ResourceState,
        region: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.emit(
            ResourceChanged(
                build=self.name,
                kind=kind,
                resource_id=resource_id,
                region=region or self.region,
                state=state,
                detail=detail,
            )
        )
