"""``amibake build``: run a template's builds headless, Packer-style output or NDJSON events."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from amibake.core.errors import UsageError
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
)
from amibake.core.local.latency import DEFAULT_PROFILE, PROFILES
from amibake.tui.cli.options import (
    add_input_options,
    add_target_options,
    datasource_resolver,
    load_template,
)
from amibake.tui.cli.templates import print_warnings

EXIT_BUILT, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
COLOURS = ("\x1b[32m", "\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[34m")
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


def register(subparsers: Any) -> None:
    build = subparsers.add_parser(
        "build",
        help="build the AMIs a template describes",
        description="Run a template's builds: exit 0 built, 1 failed, 2 template or usage error, "
        "130 cancelled.",
    )
    build.add_argument(
        "template",
        type=Path,
        help="Packer JSON, Packer HCL2 (a file or a folder of them) or amibake TOML",
    )
    add_input_options(build)
    build.add_argument(
        "--warn-on-undeclared-var",
        action="store_true",
        help="warn about var-file values for variables the template does not declare",
    )
    build.add_argument("--only", action="append", default=[], metavar="BUILD")
    build.add_argument("--except", dest="except_", action="append", default=[], metavar="BUILD")
    build.add_argument(
        "--parallel-builds",
        type=int,
        default=0,
        metavar="N",
        help="run at most N builds at once (default: all)",
    )
    build.add_argument(
        "--on-error",
        choices=("cleanup", "abort", "ask"),
        default="cleanup",
        help="after a failure: remove what the build created (default), keep it, or ask "
        "(retry the step, open a shell on the instance, clean up or abort); with --json the "
        "answers are JSON commands on stdin",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="replace an existing AMI of the same name (force_deregister)",
    )
    build.add_argument("--json", action="store_true", help="write events as NDJSON on stdout")
    build.add_argument("--timestamp-ui", action="store_true", help="prefix lines with the time")
    add_target_options(
        build,
        local="build on the embedded local cloud (no AWS account needed)",
        profile="AWS profile (default: boto3's credential chain)",
        region="build in this region instead of the template's",
    )
    build.add_argument(
        "--latency",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="with --local: how long state transitions take",
    )
    build.add_argument(
        "--no-host-key-check",
        action="store_true",
        help="do not verify the SSH host key against the console output",
    )
    build.add_argument(
        "--ssh-port",
        type=int,
        metavar="PORT",
        help="connect to instances on this port instead of the template's ssh_port "
        "(e.g. 2222 for an 'amibake local serve' endpoint given in AWS_ENDPOINT_URL)",
    )
    build.add_argument(
        "--no-amibake-tags",
        dest="amibake_tags",
        action="store_false",
        default=None,
        help="do not put amibake's own amibake:* tags on the AMIs and snapshots "
        "(default: the tag_artifacts setting, on)",
    )
    build.add_argument(
        "--recover",
        action="store_true",
        help="first sweep what builds of an earlier, interrupted run left behind",
    )
    build.set_defaults(handler=build_command)


class Printer:
    """Packer-like human output: a coloured prefix per build, ``==>`` for steps."""

    def __init__(
        self,
        out: TextIO,
        *,
        colour: bool,
        timestamps: bool,
        names: dict[str, str] | None = None,
    ) -> None:
        self.out = out
        self.colour = colour
        self.timestamps = timestamps
        #: builder name -> the name Packer prints (``amazon-ebs.<name>`` for HCL2)
        self.names = names or {}
        self._colours: dict[str, str] = {}

    def _prefix(self, build: str, event: Event) -> str:
        build = self.names.get(build, build)
        stamp = datetime.fromtimestamp(event.time).strftime("%H:%M:%S ") if self.timestamps else ""
        if not self.colour:
            return f"{stamp}{build}"
        colour = self._colours.setdefault(build, COLOURS[len(self._colours) % len(COLOURS)])
        return f"{stamp}{colour}{build}{RESET}"

    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line is not None:
            self.out.write(line + "\n")
            self.out.flush()

    def format(self, event: Event) -> str | None:
        p = self._prefix(event.build, event)
        red = RED if self.colour else ""
        reset = RESET if self.colour else ""
        if isinstance(event, BuildStarted):
            return f"{p}: output will be in this color." if self.colour else None
        if isinstance(event, StepStarted):
            return f"==> {p}: {event.title}"
        if isinstance(event, StepFinished):
            if event.status == "failed":
                return f"==> {p}: {red}{event.error}{reset}"
            if event.status == "cancelled":
                return f"==> {p}: {event.step} cancelled"
            return None
        if isinstance(event, Message):
            colour = red if event.level == "error" else ""
            return f"    {p}: {colour}{event.text}{reset if colour else ''}"
        if isinstance(event, LogLines):
            start, end = (red, reset) if event.stream == "stderr" else ("", "")
            return "\n".join(f"    {p}: {start}{text}{end}" for text in event.lines)
        if isinstance(event, ResourceChanged):
            if event.state in ("deleting", "deleted", "failed"):
                return f"    {p}: {event.state} {event.kind} {event.resource_id}"
            return None
        if isinstance(event, ArtifactCreated):
            return f"    {p}: AMI: {event.region}: {event.image_id}"
        if isinstance(event, BuildFinished):
            if event.status == "succeeded":
                return f"==> {p}: Build finished in {event.duration:.1f}s"
            what = "cancelled" if event.status == "cancelled" else f"failed: {event.error}"
            return f"==> {p}: {red}Build {what}{reset}"
        return None


class JsonWriter:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        self.out.write(event.to_json() + "\n")
        self.out.flush()


def build_command(args: argparse.Namespace) -> int:
    from amibake.core.model import BuildSpec
    from amibake.core.templates import TemplateError

    if args.parallel_builds < 0:
        raise UsageError("--parallel-builds must be 0 (all) or more")
    # A local cloud the template's data sources started (on first use); the build reuses it.
    started: list[Any] = []
    try:
        resolver = datasource_resolver(args, started, args.latency)
        try:
            spec: BuildSpec = load_template(
                args, warn_undeclared_vars=args.warn_on_undeclared_var, datasources=resolver
            )
        except TemplateError as error:
            for problem in error.problems:
                print(f"amibake: error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            resolver.close()
        # never true with a resolver; a placeholder must never reach the engine
        if spec.unresolved:
            raise UsageError(f"unresolved template values: {', '.join(spec.unresolved)}")
        print_warnings(spec)
        if args.region:
            spec = dataclasses.replace(
                spec,
                builders=tuple(dataclasses.replace(b, region=args.region) for b in spec.builders),
            )
        return asyncio.run(_build(args, spec, started))
    finally:
        for cloud in started:
            cloud.stop()


class Outstanding:
    """What the builds have created and not yet deleted, from their events (for Ctrl-C)."""

    def __init__(self) -> None:
        self.build_ids: dict[str, str] = {}
        self.regions: dict[str, set[str]] = {}
        self.resources: dict[tuple[str, str], tuple[str, str, str]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildStarted):
            self.build_ids[event.build] = event.build_id
            self.regions.setdefault(event.build, set()).add(event.region)
        elif isinstance(event, ResourceChanged):
            self.regions.setdefault(event.build, set()).add(event.region)
            key = (event.build, event.resource_id)
            if event.state in ("deleted", "kept"):
                self.resources.pop(key, None)
            elif event.state in ("created", "deleting"):
                self.resources[key] = (event.kind, event.resource_id, event.region)

    def describe(self) -> str:
        if not self.resources:
            return "nothing left to delete"
        return ", ".join(f"{kind} {rid}" for kind, rid, _ in self.resources.values())

    def sweep_commands(self) -> list[str]:
        commands = []
        for build, build_id in self.build_ids.items():
            regions = " ".join(f"--region {r}" for r in sorted(self.regions.get(build, ())))
            commands.append(f"amibake sweep --build {build_id} {regions}")
        return commands


async def _build(args: argparse.Namespace, spec: Any, started: list[Any] | None = None) -> int:
    from amibake.core.aws import Aws, Target
    from amibake.core.engine.build import (
        BuildResult,
        packer_build_name,
        run_builds,
        select_builders,
    )
    from amibake.core.engine.context import BuildOptions
    from amibake.core.history import BuildRecorder
    from amibake.core.ledger import Ledger

    builders = select_builders(spec, args.only, args.except_)
    ledger = await asyncio.to_thread(Ledger)
    cloud = started[0] if started else None
    if args.local:
        from amibake.core.local.cloud import LocalCloud
        from amibake.core.targets import local_target

        if cloud is None:
            cloud = await asyncio.to_thread(LocalCloud(latency=args.latency).start)
        assert cloud is not None
        target = local_target(cloud)
        ssh_port = cloud.ssh_port
    else:
        target = Target(profile=args.profile, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
        ssh_port = args.ssh_port
        await _recover(args, ledger, target)
    asking = args.on_error == "ask"
    options = BuildOptions(
        target=target,
        on_error=args.on_error,
        decide=None if args.json or not asking else prompt_decision,
        reload=(lambda: reload_template(args)) if asking else None,
        force=args.force,
        ssh_port=ssh_port,
        verify_host_key=not args.no_host_key_check,
        parallel_builds=args.parallel_builds,
        amibake_tags=_amibake_tags(args),
    )
    recorder = BuildRecorder(spec)
    consumer = (
        JsonWriter(sys.stdout)
        if args.json
        else Printer(
            sys.stdout,
            colour=sys.stdout.isatty(),
            timestamps=args.timestamp_ui,
            names={b.name: packer_build_name(spec, b) for b in builders},
        )
    )
    outstanding = Outstanding()

    def emit(event: Event) -> None:
        outstanding(event)
        recorder(event)
        consumer(event)
        if isinstance(event, BuildStarted):
            # the template's warnings open each build's log and NDJSON stream (the app shows
            # them); the human output already has them on stderr
            for warning in spec.warnings:
                notice = Message(build=event.build, text=spec.redact(warning), level="warning")
                recorder(notice)
                if args.json:
                    consumer(notice)

    aws = Aws(target)
    interrupts: list[float] = []

    def interrupted() -> None:
        now = time.monotonic()
        interrupts.append(now)
        if len(interrupts) == 1:
            print("amibake: cancelling; cleaning up what the builds created...", file=sys.stderr)
            runner.cancel()
        elif len(interrupts) == 2 or now - interrupts[-2] > 5:
            print(
                f"amibake: cleanup in progress; left: {outstanding.describe()}. "
                "Press Ctrl-C again within 5 s to leave now.",
                file=sys.stderr,
            )
        else:
            print("amibake: leaving before cleanup finished; to finish it, run:", file=sys.stderr)
            for command in outstanding.sweep_commands():
                print(f"  {command}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(EXIT_CANCELLED)

    runner = asyncio.ensure_future(run_builds(spec, builders, aws, options, emit, ledger=ledger))
    commands = None
    if args.json:
        from amibake.core.engine.provisioners import breakpoint
        from amibake.tui.cli.build_commands import read_commands

        # stdin carries the front end's commands (continue a breakpoint, answer a pause)
        breakpoint.stdin_continues = False
        commands = asyncio.ensure_future(read_commands(consumer))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)
    try:
        results: list[BuildResult] = await runner
    except asyncio.CancelledError:
        results = []
    finally:
        if commands is not None:
            commands.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        aws.close()
        ledger.close()
        if cloud is not None:
            await asyncio.to_thread(cloud.stop)
            if started:
                started.clear()
    # post-processors (manifest included) run in the engine: core/engine/postprocess.py
    if not args.json:
        _summary(results, {b.name: packer_build_name(spec, b) for b in builders})
    statuses = {r.status for r in results}
    if "cancelled" in statuses or (interrupts and not results):
        return EXIT_CANCELLED
    if not results or statuses != {"succeeded"}:
        return EXIT_FAILED
    return EXIT_BUILT


def reload_template(args: argparse.Namespace) -> Any:
    """The template read again from disk, data sources evaluated (a retried step)."""
    started: list[Any] = []
    resolver = datasource_resolver(args, started, args.latency)
    try:
        return load_template(args, warn_undeclared_vars=False, datasources=resolver)
    finally:
        resolver.close()
        for cloud in started:
            cloud.stop()


async def prompt_decision(pause: Any) -> str:
    """Headless --on-error ask: Packer's prompt, with a shell on the instance."""
    from amibake.tui.cli.build_commands import prompt_decision as prompt

    return str(await prompt(pause))


async def _recover(args: argparse.Namespace, ledger: Any, target: Any) -> None:
    """Report builds an earlier run left unfinished; sweep them first with --recover."""
    from amibake.core.aws import Aws
    from amibake.core.sweep import sweep_builds
    from amibake.tui.cli.sweep import recovery_notice

    if not args.recover:
        recovery_notice(ledger, target)
        return
    unfinished = ledger.unfinished_builds(target)
    if not unfinished:
        return
    for build in unfinished:
        print(f"amibake: recovering build {build.build_id}", file=sys.stderr)
    aws = Aws(target)
    try:
        await sweep_builds(
            aws,
            ledger,
            unfinished,
            fallback_region="us-east-1",
            say=lambda text: print(f"  {text}", file=sys.stderr),
        )
    finally:
        aws.close()


def _amibake_tags(args: argparse.Namespace) -> bool:
    """--no-amibake-tags, else the ``[build] tag_artifacts`` setting (default on)."""
    if args.amibake_tags is not None:
        return bool(args.amibake_tags)
    from amibake.core.settings import Settings

    return Settings.load().tag_artifacts


def _summary(results: list[Any], names: dict[str, str]) -> None:
    """Packer's closing lines: the builds that did not succeed (errored or cancelled) under
    their own heading, then the artifacts of the successful ones, or that there are none."""
    if not results:
        return
    unsuccessful = [r for r in results if r.status != "succeeded"]
    if unsuccessful:
        print("\n==> Some builds didn't complete successfully and had errors:")
        for result in unsuccessful:
            name = names.get(result.name, result.name)
            print(f"--> {name}: {result.status}" + (f" ({result.error})" if result.error else ""))
    built = [r for r in results if r.status == "succeeded" and r.artifacts]
    if not built:
        print("\n==> Builds finished but no artifacts were created.")
        return
    print("\n==> Builds finished. The artifacts of successful builds are:")
    for result in built:
        print(f"--> {names.get(result.name, result.name)}: AMIs were created:")
        for region, image_id in sorted(result.artifacts.items()):
            print(f"{region}: {image_id}")
