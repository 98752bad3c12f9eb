"""Session credentials that expire mid-build (issue 10, item 10).

Credentials with a session token that nothing refreshes (``AWS_SESSION_TOKEN`` pasted from a
console, an STS call made by hand) stop working at their expiry, builds or not. botocore
knows the expiry of refreshable credentials only; for environment credentials the AWS CLI's
convention ``AWS_CREDENTIAL_EXPIRATION`` tells it (botocore reads it too). amibake warns at
the start when they expire before the build can plausibly finish; when they expire anyway,
the runner's cleanup says what is left and the ``amibake sweep`` command to run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from amibake.core.engine.context import BuildContext

#: The codes AWS answers once the credentials have expired.
EXPIRED_CODES: frozenset[str] = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
)

#: How long a build plausibly takes: a base, and more for each region the AMI is copied to.
PLAUSIBLE_BUILD = timedelta(minutes=45)
PER_COPY_REGION = timedelta(minutes=15)


def credentials_expiry(
    credentials: Any, environ: Mapping[str, str] | None = None
) -> datetime | None:
    """When these credentials stop working for good, or None (unknown, or refreshed by
    botocore as they go: assume-role, SSO, instance roles)."""
    if credentials is None:
        return None
    environ = os.environ if environ is None else environ
    method = getattr(credentials, "method", None)
    expiry = getattr(credentials, "_expiry_time", None)
    if method == "env" and isinstance(expiry, datetime):
        return expiry.astimezone(UTC)  # botocore read AWS_CREDENTIAL_EXPIRATION: not renewable
    if expiry is not None or not getattr(credentials, "token", None):
        return None  # refreshable, or long-term keys
    text = environ.get("AWS_CREDENTIAL_EXPIRATION")
    if method != "env" or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plausible_duration(ctx: BuildContext) -> timedelta:
    copies = {r for r in ctx.builder.ami_regions if r != ctx.region}
    return PLAUSIBLE_BUILD + PER_COPY_REGION * len(copies)


async def warn_if_expiring(ctx: BuildContext, now: datetime | None = None) -> None:
    """The start-of-build warning (nothing when the expiry is unknown or far enough)."""

    def current() -> Any:
        # making the client may call STS (assume_role): off the event loop
        client = ctx.aws.client("ec2", ctx.region)
        return client._request_signer._credentials  # botocore keeps them there

    try:
        credentials = await asyncio.to_thread(current)
    except Exception:  # no credentials yet: the first call says so
        return
    expiry = credentials_expiry(credentials)
    if expiry is None:
        return
    now = now or datetime.now(UTC)
    needed = plausible_duration(ctx)
    if expiry - now >= needed:
        return
    left = max(int((expiry - now).total_seconds() // 60), 0)
    ctx.say(
        f"The AWS session credentials expire in {left} min (at {expiry:%H:%M:%S} UTC) and are "
        f"not refreshable; a build can take {int(needed.total_seconds() // 60)} min: if they "
        "expire first, its cleanup fails and 'amibake sweep' must finish it with new ones",
        "warning",
    )


def expired(error: BaseException | None) -> bool:
    """Whether ``error`` (or one inside a group) says the credentials expired."""
    if error is None:
        return False
    if isinstance(error, BaseExceptionGroup):
        return any(expired(e) for e in error.exceptions)
    return getattr(error, "code", None) in EXPIRED_CODES


def left_behind(ctx: BuildContext) -> tuple[str, str]:
    """What the build's ledger still holds, as text, and the sweep command that finishes it."""
    build = ctx.ledger.build(ctx.build_id) if ctx.ledger is not None else None
    regions = {ctx.region}
    parts: list[str] = []
    if build is not None:
        for resource in build.outstanding:
            if resource.state == "kept" or (
                ctx.outcome == "succeeded" and resource.kind in ("image", "snapshot")
            ):
                continue
            regions.add(resource.region)
            name = resource.resource_id or f"{resource.token} (maybe)"
            parts.append(f"{resource.kind} {name} in {resource.region}")
    elif ctx.instance_id:
        parts.append(f"instance {ctx.instance_id} in {ctx.region}")
    where = " ".join(f"--region {r}" for r in sorted(regions))
    return (", ".join(parts) or "nothing known"), f"amibake sweep --build {ctx.build_id} {where}"
