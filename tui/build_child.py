"""A run's child process (``python -m amibake.tui build --json``): its command line, its
environment, and its output read back as events.

:class:`amibake.tui.build_runner.BuildRun` starts the child with :func:`child_command` and
:func:`child_environment` and folds what :func:`event_batches` yields into its states.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from amibake.core.events import Event, event_from_dict

if TYPE_CHECKING:
    import asyncio

    from amibake.core.aws import Target

#: Bytes read from the child's stdout at a time; a ``log_lines`` event can be far larger
#: than one read (it is reassembled), and many small events arrive in one read.
READ_CHUNK = 1 << 20


def child_command(
    template: Path,
    *,
    on_error: str,
    force: bool,
    only: Sequence[str],
    ssh_port: int | None,
    profile: str | None,
    var_file: Path | None,
) -> list[str]:
    """The child's command line for building ``template`` (``only``: the builders chosen,
    empty for all of them)."""
    argv = [sys.executable, "-m", "amibake.tui", "build", "--json", "--on-error", on_error]
    if force:
        argv.append("--force")
    for name in only:
        argv += ["--only", name]
    if ssh_port is not None:
        argv += ["--ssh-port", str(ssh_port)]
    if profile:
        argv += ["--profile", profile]
    if var_file is not None:
        argv += ["--var-file", str(var_file)]
    argv.append(str(template))
    return argv


def child_environment(
    target: Target, region: str | None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's environment: ours (AMIBAKE_HOME...) with AWS_* set for the target.

    A target with its own keys (the local cloud) gets nothing of our AWS set-up: no
    stray credentials, profile, config file or endpoint. The variables the user set
    (editor form, rerun) go in a private var-file (tui/child_files.py), not here:
    legacy JSON templates read no ``PKR_VAR_*``, as in Packer.
    """
    env = dict(os.environ if base is None else base)
    if target.access_key_id:
        for name in [n for n in env if n.startswith("AWS_")]:
            del env[name]
        env["AWS_ACCESS_KEY_ID"] = target.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = target.secret_access_key or ""
        env["AWS_CONFIG_FILE"] = os.devnull
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    if target.endpoint_url:
        env["AWS_ENDPOINT_URL"] = target.endpoint_url
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return env


async def event_batches(stdout: asyncio.StreamReader) -> AsyncIterator[list[Event]]:
    """The events of the child's stdout, one batch per read of complete lines."""
    buffer = bytearray()
    while chunk := await stdout.read(READ_CHUNK):
        buffer += chunk
        end = buffer.rfind(b"\n")
        if end < 0:
            continue  # inside one large event
        complete = bytes(buffer[:end])
        del buffer[: end + 1]
        yield _decode(complete.split(b"\n"))
    if buffer.strip():
        yield _decode([bytes(buffer)])


def _decode(raw_lines: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for raw in raw_lines:
        try:
            events.append(event_from_dict(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            continue  # not an event (a stray print): the child's stderr has its words
    return events


async def collect_stderr(stderr: asyncio.StreamReader, into: deque[str]) -> None:
    """The child's non-blank stderr lines, appended to ``into`` (bounded by its caller)."""
    while line := await stderr.readline():
        text = line.decode("utf-8", "replace").strip()
        if text:
            into.append(text)
