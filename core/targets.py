"""Where amibake can work: the embedded local cloud and every AWS profile. UI-free.

:func:`list_targets` reads the profiles boto3 itself sees (``~/.aws/config`` and
``~/.aws/credentials``, or the files ``AWS_CONFIG_FILE`` and
``AWS_SHARED_CREDENTIALS_FILE`` name). :func:`check_credentials` asks STS who the
caller is and turns every way that fails into one line the user can act on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.core.aws import Aws, AwsError, CredentialsError, Target
from amibake.core.settings import LOCAL_TARGET

if TYPE_CHECKING:
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.local.process import LocalCloudProcess

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class TargetInfo:
    """One entry of the target picker."""

    #: ``"local"`` or ``"profile:NAME"`` (what the settings remember).
    key: str
    label: str
    profile: str | None = None
    #: The profile's own region setting, if any.
    region: str | None = None
    #: "local", "sso", "keys" (static keys in the credentials file), "role", "process", "other".
    kind: str = "other"
    #: False when the profile cannot sign a request now, as far as the files tell (offline):
    #: no source of credentials, or an SSO sign-in that is missing or expired.
    usable: bool = True
    #: Why not, in one line that says what to do (empty when usable).
    problem: str = ""

    @property
    def is_local(self) -> bool:
        return self.key == LOCAL_TARGET


def local_target(cloud: LocalCloud | LocalCloudProcess) -> Target:
    """The :class:`Target` of a running local cloud: its endpoint and its fake credentials.

    The one place that builds it (the app's session, ``amibake build --local`` and the
    data-source resolver all use this).
    """
    from amibake.core.local.account import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

    return Target(
        endpoint_url=cloud.endpoint_url,
        access_key_id=FAKE_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )


LOCAL = TargetInfo(LOCAL_TARGET, "Local cloud (embedded, no AWS account)", kind="local")


def _session(profile: str | None = None) -> Any:
    import boto3

    return boto3.session.Session(profile_name=profile)


def _profile_kind(config: dict[str, Any]) -> str:
    if "sso_session" in config or "sso_start_url" in config or "sso_account_id" in config:
        return "sso"
    if "aws_access_key_id" in config:
        return "keys"
    if "role_arn" in config:
        return "role"
    if "credential_process" in config:
        return "process"
    return "other"


#: Keys of a profile that give it credentials (static keys, SSO, a role, a process, a token file).
_CREDENTIAL_SOURCES = (
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "role_arn",
    "credential_process",
    "web_identity_token_file",
)


def profile_has_credentials(config: dict[str, Any]) -> bool:
    """True when a profile's merged config/credentials entry names a source of credentials.

    Offline on purpose (the picker must not call STS or the instance metadata service):
    a profile with only a region, or a key id without its secret, is marked unusable.
    """
    if config.get("aws_access_key_id") and config.get("aws_secret_access_key"):
        return True
    return any(config.get(key) for key in _CREDENTIAL_SOURCES)


def sso_cache_dir() -> Path:
    """Where the AWS CLI (``aws sso login``) leaves SSO tokens and botocore reads them."""
    return Path.home() / ".aws" / "sso" / "cache"


def _expiry(value: object) -> datetime | None:
    """An ``expiresAt`` of the token cache ("2026-01-01T00:00:00Z", older CLIs "...UTC")."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("UTC"):
        text = text[:-3].strip() + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def sso_problem(
    name: str,
    config: dict[str, Any],
    sso_sessions: dict[str, dict[str, Any]],
    *,
    now: datetime | None = None,
    cache_dir: Path | None = None,
) -> str:
    """Why an SSO profile cannot sign in now ("" when its cached token is good).

    As botocore looks it up: the token file is ``sha1(session name)`` for an
    ``sso_session`` profile, ``sha1(sso_start_url)`` for a legacy one. An expired token
    of an ``sso-session`` still works while its refresh token's client registration
    lasts (botocore refreshes it); a legacy one does not.
    """
    login = f"run 'aws sso login --profile {name}'"
    session_name = config.get("sso_session")
    if session_name:
        if session_name not in sso_sessions:
            return f"its sso-session '{session_name}' is not in the config"
        key = str(session_name)
    elif config.get("sso_start_url"):
        key = str(config["sso_start_url"])
    else:
        return "no sso_start_url or sso_session in its config"
    path = (cache_dir or sso_cache_dir()) / (hashlib.sha1(key.encode()).hexdigest() + ".json")
    try:
        token = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"not signed in to SSO: {login}"
    if not isinstance(token, dict) or not token.get("accessToken"):
        return f"not signed in to SSO: {login}"
    expires = _expiry(token.get("expiresAt"))
    moment = now or datetime.now(UTC)
    if expires is not None and expires > moment:
        return ""
    registration = _expiry(token.get("registrationExpiresAt"))
    refreshable = (
        bool(session_name)
        and bool(token.get("refreshToken"))
        and bool(token.get("clientId"))
        and bool(token.get("clientSecret"))
        and registration is not None
        and registration > moment
    )
    if refreshable:
        return ""
    return f"SSO session expired: {login}"


def profile_problem(
    name: str,
    profiles: dict[str, dict[str, Any]],
    sso_sessions: dict[str, dict[str, Any]],
    *,
    now: datetime | None = None,
    cache_dir: Path | None = None,
    seen: frozenset[str] = frozenset(),
) -> str:
    """Why profile ``name`` cannot sign a request now, read from the files only ("" if it can).

    No network: static keys, a credential process or a web-identity token file count as
    usable; an SSO profile needs a cached token that has not expired; a role takes the
    state of its ``source_profile``.
    """
    config = profiles.get(name)
    if config is None:
        return "not in the AWS config or credentials file"
    if config.get("aws_access_key_id") and config.get("aws_secret_access_key"):
        return ""
    if config.get("role_arn"):
        source = config.get("source_profile")
        if config.get("credential_source") or config.get("web_identity_token_file"):
            return ""
        if not source:
            return "role_arn without source_profile or credential_source"
        if source in seen or source == name:
            return ""  # botocore reads a role's own keys here; a loop is its error to give
        inner = profile_problem(
            str(source),
            profiles,
            sso_sessions,
            now=now,
            cache_dir=cache_dir,
            seen=seen | {name},
        )
        return f"its source profile '{source}': {inner}" if inner else ""
    if _profile_kind(config) == "sso":
        return sso_problem(name, config, sso_sessions, now=now, cache_dir=cache_dir)
    if profile_has_credentials(config):
        return ""
    if config.get("aws_access_key_id"):
        return "aws_access_key_id without aws_secret_access_key"
    return "no credentials in its config"


def list_targets(*, now: datetime | None = None) -> list[TargetInfo]:
    """The local cloud first, then every profile boto3 knows, sorted by name.

    Each profile says whether it can sign a request now (:func:`profile_problem`, no
    network). Never raises: a config file boto3 cannot parse yields just the local cloud.
    """
    targets = [LOCAL]
    try:
        session = _session()
        profiles = sorted(session.available_profiles)
        full_config = session._session.full_config
        full = full_config.get("profiles", {})
        sso_sessions = full_config.get("sso_sessions", {})
    except Exception:  # a broken ~/.aws/config must not break the picker
        return targets
    for name in profiles:
        config = full.get(name, {})
        kind = _profile_kind(config)
        region = config.get("region")
        label = f"AWS profile {name}" + (f" ({kind})" if kind in ("sso", "role") else "")
        try:
            problem = profile_problem(name, full, sso_sessions, now=now)
        except Exception:  # an odd entry: let STS say what is wrong when it is chosen
            problem = ""
        targets.append(
            TargetInfo(f"profile:{name}", label, name, region, kind, not problem, problem)
        )
    return targets


def has_aws_credentials(targets: list[TargetInfo] | None = None) -> bool:
    """True when the environment or any profile could supply credentials (no network)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or os.environ.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return True
    targets = list_targets() if targets is None else targets
    return any(not target.is_local for target in targets)


def default_target(remembered: str | None, targets: list[TargetInfo] | None = None) -> str:
    """The target to preselect: the remembered one if it still exists; else AWS_PROFILE or
    ``default`` when there are credentials; else the local cloud."""
    targets = list_targets() if targets is None else targets
    keys = {target.key for target in targets}
    if remembered and remembered in keys:
        return remembered
    if not has_aws_credentials(targets):
        return LOCAL_TARGET
    wanted = os.environ.get("AWS_PROFILE") or "default"
    if f"profile:{wanted}" in keys:
        return f"profile:{wanted}"
    profiles = [target.key for target in targets if not target.is_local]
    return profiles[0] if profiles else LOCAL_TARGET


def profile_region(profile: str | None) -> str | None:
    """The region a profile is configured with, if any."""
    try:
        region = _session(profile).region_name
        return str(region) if region else None
    except Exception:
        return None


async def check_credentials(aws: Aws, region: str) -> str:
    """The account id behind ``aws``'s target; :class:`CredentialsError` with a clear line if not.

    For a profile the message names it: no usable credentials, an expired SSO
    session (run ``aws sso login --profile NAME``), or credentials AWS refuses.
    """
    profile = aws.target.profile
    who = f"profile '{profile}'" if profile else "the default AWS credentials"
    try:
        identity = await aws.caller_identity(region)
    except CredentialsError as error:
        if error.code == "NoCredentials":
            raise CredentialsError(
                "GetCallerIdentity",
                "NoCredentials",
                f"{who} has no usable credentials"
                + (f" (check it in {_config_files()})" if profile else "")
                + ", or use the local cloud",
            ) from None
        if error.code == "SSOSessionExpired":
            login = f"aws sso login --profile {profile}" if profile else "aws sso login"
            raise CredentialsError(
                "GetCallerIdentity",
                "SSOSessionExpired",
                f"the SSO session of {who} has expired: run '{login}'",
            ) from None
        if error.code == "ProfileNotFound":
            raise
        raise CredentialsError(
            "GetCallerIdentity", error.code, f"AWS refused {who}: {error.aws_message}"
        ) from None
    return str(identity.get("Account", ""))


def _config_files() -> str:
    config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return f"{config} and {credentials}"


async def list_regions(aws: Aws, region: str) -> list[str]:
    """Region names from DescribeRegions (sorted)."""
    answer = await aws.call(region, "DescribeRegions")
    names = sorted(str(r["RegionName"]) for r in answer.get("Regions", []) if r.get("RegionName"))
    if not names:
        raise AwsError("DescribeRegions", "NoRegions", "the endpoint listed no regions")
    return names
