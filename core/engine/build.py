"""Run one builder's build, or all of a template's builders in parallel."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amibake.core import budget
from amibake.core.aws import Aws
from amibake.core.engine.access import builder_aws, ledger_record
from amibake.core.engine.context import BuildContext, BuildOptions, Emit, new_build_id
from amibake.core.engine.postprocess import run_post_processors, write_manifests_async
from amibake.core.engine.runner import Concurrently, Step, describe_error, run_steps
from amibake.core.engine.steps.communicator import NoCommunicatorCheck, SshOnly
from amibake.core.engine.steps.iam_profile import IamInstanceProfileStep
from amibake.core.engine.steps.images import (
    ArtifactsStep,
    CopyImageStep,
    CreateImageStep,
    EncryptBootStep,
    ImageAttributesStep,
)
from amibake.core.engine.steps.instance import LaunchInstanceStep
from amibake.core.engine.steps.key_pair import KeyPairStep, uses_temporary_key
from amibake.core.engine.steps.network import NetworkInfoStep
from amibake.core.engine.steps.prevalidate import PreValidateStep
from amibake.core.engine.steps.provision import ProvisionStep
from amibake.core.engine.steps.security_group import SecurityGroupStep
from amibake.core.engine.steps.source_ami import SourceAmiStep
from amibake.core.engine.steps.spot import SpotInstanceStep
from amibake.core.engine.steps.ssh_connect import ClearAuthorizedKeysStep, ConnectStep
from amibake.core.engine.steps.stop_instance import StopInstanceStep
from amibake.core.errors import AmibakeError, UsageError
from amibake.core.events import ArtifactCreated, BuildFinished, BuildStarted
from amibake.core.ledger import Ledger
from amibake.core.model import AmazonEbsBuilder, BuildSpec


@dataclass
class BuildResult:
    build_id: str
    name: str
    status: str  # succeeded / failed / cancelled
    duration: float
    error: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    #: the ``manifest`` post-processors' custom_data for this build (BuildContext.manifest_data)
    manifest_data: dict[int, dict[str, str]] = field(default_factory=dict)


def amazon_ebs_steps() -> list[Step]:
    """The flow, in order. Fresh step objects per build: they remember what they created."""
    return [
        PreValidateStep(),
        NoCommunicatorCheck(),
        NetworkInfoStep(),
        Concurrently(
            "prepare",
            "Preparing source AMI, key pair, security group",
            [
                SourceAmiStep(),
                SshOnly(KeyPairStep()),
                SecurityGroupStep(),
                IamInstanceProfileStep(),
            ],
        ),
        LaunchInstanceStep(),
        SpotInstanceStep(),
        SshOnly(ConnectStep()),
        ProvisionStep(),
        SshOnly(ClearAuthorizedKeysStep()),
        StopInstanceStep(),
        CreateImageStep(),
        EncryptBootStep(),
        CopyImageStep(),
        ImageAttributesStep(),
        ArtifactsStep(),
    ]


@dataclass(frozen=True)
class _Plan:
    """What a step's ``applies`` reads before a build starts: the spec and the builder."""

    spec: BuildSpec
    builder: AmazonEbsBuilder

    @property
    def region(self) -> str:
        return self.builder.region


def planned_steps(spec: BuildSpec, builder: AmazonEbsBuilder) -> list[tuple[str, str]]:
    """(name, title) of the steps a build of ``builder`` will run, in order.

    Whether a step applies depends on the spec and the builder only, so the plan
    is known before the build starts (the monitor shows it as pending rows).
    """
    plan: Any = _Plan(spec, builder)
    return [(step.name, step.title) for step in amazon_ebs_steps() if step.applies(plan)]


async def run_build(
    spec: BuildSpec,
    builder: AmazonEbsBuilder,
    aws: Aws,
    options: BuildOptions,
    emit: Emit,
    build_id: str | None = None,
    ledger: Ledger | None = None,
) -> BuildResult:
    if not budget.active():  # the build's Describe* calls share the region's budget (issue 16)
        with budget.budgeted():
            return await run_build(spec, builder, aws, options, emit, build_id, ledger)
    own = builder_aws(aws, builder)  # the builder's access options (issue 12)
    if own is not None:
        try:
            return await run_build(spec, builder, own, options, emit, build_id, ledger)
        finally:
            own.close()
    ctx = BuildContext(
        spec=spec,
        builder=builder,
        aws=aws,
        options=options,
        emit_event=emit,
        build_id=build_id or new_build_id(),
        ledger=ledger,
    )
    if ledger is not None:
        await asyncio.to_thread(
            ledger.begin_build,
            ctx.build_id,
            builder.name,
            str(spec.source_file or ""),
            ledger_record(aws),
        )
    emit(
        BuildStarted(
            build=builder.name,
            build_id=ctx.build_id,
            template=str(spec.source_file or ""),
            region=builder.region,
            variables={
                name: ("<sensitive>" if v.sensitive else spec.redact(str(v.value)))
                for name, v in spec.variables.items()
            },
            steps=tuple(planned_steps(spec, builder)),
        )
    )
    began = time.monotonic()
    outcome, error = await run_steps(ctx, amazon_ebs_steps())
    if _ed25519_refused(error, builder) and not ctx.keep:
        # The AMI's sshd takes no ed25519 keys (old OpenSSH, FIPS): the instance only knows
        # the key it was launched with, so the build starts again (after its cleanup) with
        # an RSA temporary key, as temporary_key_pair_type = "rsa" would (issue 10).
        ctx.say(
            "The AMI's sshd refuses ed25519 keys: building again with an RSA temporary key "
            '(set temporary_key_pair_type = "rsa" to skip this)',
            "warning",
        )
        builder = replace(builder, temporary_key_pair_type="rsa")
        ctx = BuildContext(
            spec=spec,
            builder=builder,
            aws=aws,
            options=options,
            emit_event=emit,
            build_id=ctx.build_id,
            ledger=ledger,
        )
        outcome, error = await run_steps(ctx, amazon_ebs_steps())
    built = outcome == "succeeded"
    if built and spec.post_processors:  # shell-local, amazon-ami-management (issue 12)
        outcome, error = await run_post_processors(ctx)
    if outcome == "failed" and ctx.keep:
        await keep_for_debugging(ctx)
    if ledger is not None:
        status = "aborted" if outcome == "failed" and ctx.keep else outcome
        await asyncio.to_thread(ledger.finish_build, ctx.build_id, status)
    artifacts = dict(ctx.images) if built else {}
    for region, image_id in artifacts.items():
        emit(
            ArtifactCreated(
                build=builder.name,
                region=region,
                image_id=image_id,
                snapshot_ids=tuple(ctx.snapshots.get(region, ())),
            )
        )
    message = ctx.redact(describe_error(error)) if error is not None else None
    duration = time.monotonic() - began
    emit(
        BuildFinished(
            build=builder.name,
            build_id=ctx.build_id,
            status=outcome,
            duration=duration,
            error=message,
            artifacts=artifacts,
        )
    )
    return BuildResult(
        build_id=ctx.build_id,
        name=builder.name,
        status=outcome,
        duration=duration,
        error=message,
        artifacts=artifacts,
        snapshots={r: list(s) for r, s in ctx.snapshots.items() if r in artifacts},
        manifest_data=ctx.manifest_data if built else {},
    )


def _ed25519_refused(error: BaseException | None, builder: AmazonEbsBuilder) -> bool:
    from amibake.core.ssh import KeyTypeRefused

    return (
        isinstance(error, KeyTypeRefused)
        and error.key_type == "ssh-ed25519"
        and builder.temporary_key_pair_type == "ed25519"
        and uses_temporary_key(builder)
    )


async def keep_for_debugging(ctx: BuildContext) -> None:
    """--on-error abort: say what was kept, how to reach the instance and how to sweep later."""
    from amibake.core.paths import state_dir

    if ctx.instance_id and ctx.ssh_host:
        login = f"-p {ctx.ssh_port} {ctx.builder.ssh_username}@{ctx.ssh_host}"
        if ctx.private_key is not None and uses_temporary_key(ctx.builder):
            # The one case where the temporary key is written: the user asked to keep the
            # instance to log in to it. `amibake sweep` deletes the file with the build.
            key_file = state_dir() / "keys" / f"{ctx.build_id}.pem"
            await asyncio.to_thread(_write_private_key, ctx.private_key, key_file)
            ctx.say(f"Instance {ctx.instance_id} kept; connect with: ssh -i {key_file} {login}")
        else:
            ctx.say(f"Instance {ctx.instance_id} kept; connect with your key: ssh {login}")
    regions = " ".join(f"--region {r}" for r in dict.fromkeys([ctx.region, *ctx.images]))
    ctx.say(f"When done, remove everything with: amibake sweep --build {ctx.build_id} {regions}")


def _write_private_key(key: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.export_private_key("openssh"))


def packer_build_name(spec: BuildSpec, builder: AmazonEbsBuilder) -> str:
    """The build's name as Packer prints it: ``amazon-ebs.<name>`` for HCL2 (the source
    reference), the builder's name for legacy JSON (and amibake TOML)."""
    if builder.packer_name:  # HCL2: `<build name>.amazon-ebs.<source>` (CoreBuild.Name)
        return builder.packer_name
    if spec.source_format == "hcl":
        return f"{builder.type}.{builder.name}"
    return builder.name


def select_builders(
    spec: BuildSpec, only: Sequence[str] = (), except_: Sequence[str] = ()
) -> list[AmazonEbsBuilder]:
    names = {b.name for b in spec.builders} | {f"{b.type}.{b.name}" for b in spec.builders}
    unknown = [n for n in (*only, *except_) if n not in names]
    if unknown:
        known = ", ".join(b.name for b in spec.builders)
        raise UsageError(f"no builder named {unknown[0]!r} (this template has: {known})")
    chosen = [
        b
        for b in spec.builders
        if (not only or any(b.matches(n) for n in only)) and not any(b.matches(n) for n in except_)
    ]
    if not chosen:
        raise UsageError("--only/--except leave no builder to run")
    return chosen


async def run_builds(
    spec: BuildSpec,
    builders: Sequence[AmazonEbsBuilder],
    aws: Aws,
    options: BuildOptions,
    emit: Emit,
    ledger: Ledger | None = None,
) -> list[BuildResult]:
    """Each builder in its own task (at most ``options.parallel_builds`` at once; 0 = all)."""
    if spec.unresolved:  # loaded without evaluating its data sources: placeholders, not values
        raise AmibakeError(
            "the template's data sources were not evaluated; unresolved: "
            + ", ".join(spec.unresolved)
        )
    limit = options.parallel_builds or len(builders)
    gate = asyncio.Semaphore(limit)

    async def one(builder: AmazonEbsBuilder) -> BuildResult:
        async with gate:
            return await run_build(spec, builder, aws, options, emit, ledger=ledger)

    tasks = [asyncio.create_task(one(b), name=f"build {b.name}") for b in builders]
    try:
        done = list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        # Cancelling the whole run cancels each build; each still cleans up after itself.
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        done = [r for r in results if isinstance(r, BuildResult)]
    await write_manifests_async(spec, done)  # the `manifest` post-processors (issue 12)
    return done
