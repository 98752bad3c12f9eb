"""Packer's ``file`` provisioner: ``sources``/``content`` up, files or directories down."""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import (
    ProvisionError,
    communicator,
    ignore,
    local_path,
    with_build_data,
)
from amibake.core.model import FileProvisioner


async def run_file(ctx: BuildContext, number: int, provisioner: FileProvisioner) -> None:
    provisioner = with_build_data(ctx, provisioner, f"file provisioner {number}")
    if provisioner.direction == "download":
        for source in provisioner.all_sources:
            await _download(ctx, number, source, provisioner.destination)
        return
    if provisioner.content is not None:
        comm = await communicator(ctx)
        destination = provisioner.destination
        ctx.say(f"Uploading content ({len(provisioner.content.encode())} bytes) to {destination}")
        await _mkdir(ctx, [posixpath.dirname(destination.rstrip("/")) or "."])
        await comm.upload(provisioner.content.encode(), destination)
        return
    for text in provisioner.all_sources:
        await upload_local(ctx, number, text, provisioner.destination)


async def _mkdir(ctx: BuildContext, directories: list[str]) -> None:
    wanted = [d for d in dict.fromkeys(directories) if d not in ("", ".", "/")]
    if wanted:
        comm = await communicator(ctx)
        quoted = " ".join(shlex.quote(d) for d in wanted)
        await comm.run(f"mkdir -p {quoted}", on_stdout=ignore, on_stderr=ignore)


async def upload_local(ctx: BuildContext, number: int, text: str, destination: str) -> None:
    comm = await communicator(ctx)
    source = local_path(ctx, text)
    if source.is_dir():
        # Packer's rule: "dir/" uploads the contents, "dir" uploads the directory itself.
        base = destination.rstrip("/") or "/"
        if not text.endswith("/"):
            base = f"{base.rstrip('/')}/{source.name}"
        files = sorted(p for p in source.rglob("*") if p.is_file())
        ctx.say(f"Uploading {len(files)} file(s) from {source} to {base}")
        directories = [base] + [
            f"{base}/{p.relative_to(source).parent.as_posix()}".rstrip("/.") for p in files
        ]
        await _mkdir(ctx, directories)
        for path in files:
            await comm.upload(path, f"{base}/{path.relative_to(source).as_posix()}")
        return
    if not source.is_file():
        raise ProvisionError(f"file provisioner {number}: no such file {source}")
    if destination.endswith("/"):
        destination += source.name
    ctx.say(f"Uploading {source} to {destination}")
    await comm.upload(source, destination)


async def _download(ctx: BuildContext, number: int, source: str, destination: str) -> None:
    comm = await communicator(ctx)
    target = local_path(ctx, destination, write=True)
    if source.endswith("/"):
        # a directory: its contents go into the destination directory
        listing: list[str] = []
        result = await comm.run(
            f"cd {shlex.quote(source)} && find . -type f",
            on_stdout=lambda lines: listing.extend(lines),
            on_stderr=ignore,
            batch=True,
        )
        if result.exit_status != 0:
            raise ProvisionError(f"file provisioner {number}: no such directory {source}")
        ctx.say(f"Downloading {len(listing)} file(s) from {source} to {target}")
        for relative in sorted(line.removeprefix("./") for line in listing if line.strip()):
            local = target / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            await comm.download(f"{source}{relative}", local)
        return
    if destination.endswith("/"):
        target = target / posixpath.basename(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    ctx.say(f"Downloading {source} to {target}")
    await comm.download(source, Path(target))
