"""A thin async facade over boto3's EC2 (and STS) clients.

boto3 is synchronous; every call here runs in a bounded thread pool so the
event loop never blocks. Throttling and transient errors are retried by
botocore's own ``adaptive`` retry mode (``standard`` plus a client-side rate
limiter that slows down once EC2 throttles), not by hand. Errors come back as
:class:`AwsError` with AWS's code and a one-line message.

One boto3 session per process and per target, its clients created once: making
a session and its clients costs far more CPU than a build's own calls, and
every :class:`Aws` of the same target (a build's, the app's, a data source's)
shares them. Every call is counted per operation (:data:`CALLS`) for the
benchmarks and the waiters' tests.

Nothing here knows about the local cloud: a target is a profile, optional
explicit credentials and an optional endpoint URL.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from amibake.core import budget
from amibake.core.errors import AmibakeError

if TYPE_CHECKING:
    from amibake.core.model import AssumeRole

_T = TypeVar("_T")

DEFAULT_RETRIES = {"mode": "adaptive", "total_max_attempts": 8}

#: API calls sent by this process, per operation name (every Aws counts here).
CALLS: Counter[str] = Counter()
_CALLS_LOCK = threading.Lock()

#: (target key, region) -> boto3 session; (target key, service, region) -> client.
_SESSIONS: dict[str, Any] = {}
_CLIENTS: dict[tuple[str, str, str], Any] = {}
_SHARED_LOCK = threading.Lock()
#: per event loop: identical Describe* calls in flight -> the one request's answer
_IN_FLIGHT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, asyncio.Future[Any]]]
_IN_FLIGHT = weakref.WeakKeyDictionary()


def count_call(operation: str) -> None:
    with _CALLS_LOCK:
        CALLS[operation] += 1


def target_key(target: Target) -> str:
    """What makes two targets' sessions interchangeable: every field (secrets included,
    kept in memory only) and the AWS_* environment a default chain reads."""
    from dataclasses import asdict

    environment = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k == "HOME"}
    return json.dumps([asdict(target), environment], sort_keys=True, default=str)


class AwsError(AmibakeError):
    """An AWS API call failed; ``code`` is AWS's error code (or a local one for transport)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.aws_message = message


class CredentialsError(AwsError):
    """No usable credentials (none found, expired SSO session, bad profile)."""


@dataclass(frozen=True)
class Target:
    """Where API calls go. Empty fields mean boto3's normal chain (env, profiles, SSO).

    The secret fields never appear in a repr; :func:`amibake.core.engine.access.ledger_record`
    says what of a target may be written down (never a secret).
    """

    profile: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    #: a shared credentials file read instead of ~/.aws/credentials (``shared_credentials_file``)
    credentials_file: str | None = None
    #: EC2 only (``custom_endpoint_ec2``); other services keep ``endpoint_url``
    ec2_endpoint_url: str | None = None
    #: STS AssumeRole on top of the credentials above (``assume_role``)
    assume_role: AssumeRole | None = None
    #: the MFA code a profile's ``mfa_serial`` asks for (``mfa_code``)
    mfa_code: str | None = field(default=None, repr=False)
    #: retries after the first attempt (None: DEFAULT_RETRIES)
    max_retries: int | None = None
    verify_tls: bool = True
    #: leave the EC2 instance-metadata credential provider out of the chain
    skip_metadata_api_check: bool = False
    #: decode "Encoded authorization failure message" with STS DecodeAuthorizationMessage
    decode_authorization_messages: bool = False
    #: "template" when the credentials come from a template (for the ledger; never the secret)
    credentials_source: str | None = None

    @property
    def is_loopback(self) -> bool:
        """True when EC2's endpoint is on this machine (then the caller's address is 127.0.0.1)."""
        endpoint = self.ec2_endpoint_url or self.endpoint_url
        if not endpoint:
            return False
        from urllib.parse import urlsplit

        host = urlsplit(endpoint).hostname or ""
        return host == "localhost" or host.startswith("127.")

    def endpoint_for(self, service: str) -> str | None:
        if service == "ec2" and self.ec2_endpoint_url:
            return self.ec2_endpoint_url
        return self.endpoint_url

    def retries(self) -> dict[str, Any]:
        if self.max_retries is None:
            return dict(DEFAULT_RETRIES)
        return {"mode": "adaptive", "total_max_attempts": self.max_retries + 1}


#: Packer's pattern (builder/common/errors.go) for the encoded part of an authorization error.
_ENCODED_FAILURE = re.compile(
    r"(?i)(.*) Encoded authorization failure message: ([\w-]+) ?( .*)?", re.S
)


class Aws:
    """EC2/STS clients of one session, one per region, called from asyncio."""

    def __init__(self, target: Target | None = None, *, max_workers: int = 16) -> None:
        self.target = target or Target()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aws")
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None
        self._key = target_key(self.target)
        #: the access options this client was made for (amibake.core.engine.access.builder_aws)
        self.access: Any = None
        #: the target those options refined
        self.base_target: Target | None = None

    def _make_session(self, region: str) -> Any:
        """boto3's session for the target: its profile or keys, then the template's extras
        (credentials file, no instance metadata, MFA code, AssumeRole)."""
        import boto3
        import botocore.session
        from botocore.exceptions import ProfileNotFound

        target = self.target
        core = botocore.session.Session()
        if target.credentials_file:
            path = os.path.expanduser(target.credentials_file)
            core.set_config_variable("credentials_file", path)
        try:
            session = boto3.session.Session(
                botocore_session=core,
                profile_name=target.profile,
                aws_access_key_id=target.access_key_id,
                aws_secret_access_key=target.secret_access_key,
                aws_session_token=target.session_token,
            )
            if target.skip_metadata_api_check or target.mfa_code:
                resolver = core.get_component("credential_provider")
                if target.skip_metadata_api_check:
                    resolver.remove("iam-role")
                if target.mfa_code:
                    # a profile with role_arn + mfa_serial asks for the code: answer it
                    code = target.mfa_code
                    provider = resolver.get_provider("assume-role")
                    provider._prompter = lambda _prompt: code
            if target.endpoint_for("sts"):
                # a profile's role_arn is assumed at the target's STS (the local cloud's),
                # never at AWS's public endpoint botocore would pick
                self._profile_roles_at(core, target, region)
        except ProfileNotFound as error:
            raise CredentialsError("session", "ProfileNotFound", str(error)) from None
        if target.assume_role is not None:
            self._assume_role(session, target.assume_role, region)
        return session

    @staticmethod
    def _profile_roles_at(core: Any, target: Target, region: str) -> None:
        """The STS client of botocore's assume-role provider (a profile with ``role_arn``)
        made for the target's STS endpoint, in the build's region, with its TLS setting."""
        provider = core.get_component("credential_provider").get_provider("assume-role")
        creator = provider._client_creator

        def sts_client(service: str, **kwargs: Any) -> Any:
            kwargs.setdefault("endpoint_url", target.endpoint_for(service))
            kwargs.setdefault("region_name", region)
            kwargs.setdefault("verify", target.verify_tls)
            return creator(service, **kwargs)

        provider._client_creator = sts_client

    def _config(self) -> Any:
        from botocore.config import Config

        return Config(
            retries=self.target.retries(),
            # as many connections as worker threads: none is opened and then discarded
            max_pool_connections=max(32, self._executor._max_workers),
            # botocore's 60 s would hold an unreachable endpoint's caller
            # (and the process's exit, which joins these threads) for minutes.
            connect_timeout=2 if self.target.is_loopback else 10,
        )

    def _assume_role(self, session: Any, role: AssumeRole, region: str) -> None:
        """Replace the session's credentials by the role's (refreshed before they expire)."""
        from botocore.credentials import AssumeRoleCredentialFetcher, RefreshableCredentials
        from botocore.exceptions import BotoCoreError, ClientError

        core = session._session
        source = core.get_credentials()
        if source is None:
            raise CredentialsError(
                "AssumeRole",
                "NoCredentials",
                f"no AWS credentials to assume role {role.role_arn} with",
            )
        extra: dict[str, Any] = {}
        if role.session_name:
            extra["RoleSessionName"] = role.session_name
        if role.external_id:
            extra["ExternalId"] = role.external_id
        if role.duration_seconds:
            extra["DurationSeconds"] = role.duration_seconds
        if role.policy:
            extra["Policy"] = role.policy
        if role.policy_arns:
            extra["PolicyArns"] = [{"arn": arn} for arn in role.policy_arns]
        if role.tags:
            extra["Tags"] = [{"Key": k, "Value": v} for k, v in role.tags.items()]
        if role.transitive_tag_keys:
            extra["TransitiveTagKeys"] = list(role.transitive_tag_keys)

        def sts_client(service: str, **kwargs: Any) -> Any:
            return core.create_client(
                service,
                region_name=region,
                endpoint_url=self.target.endpoint_for(service),
                verify=self.target.verify_tls,
                config=self._config(),
                **kwargs,
            )

        fetcher = AssumeRoleCredentialFetcher(
            sts_client, source, role.role_arn, extra_args=extra or None
        )
        try:
            metadata = fetcher.fetch_credentials()
        except (ClientError, BotoCoreError) as error:
            mapped = map_error("AssumeRole", error)
            raise CredentialsError(
                "AssumeRole",
                mapped.code,
                f"cannot assume role {role.role_arn}: {mapped.aws_message}",
            ) from None
        core._credentials = RefreshableCredentials.create_from_metadata(
            metadata, refresh_using=fetcher.fetch_credentials, method="assume-role"
        )

    def client(self, service: str, region: str) -> Any:
        """The boto3 client for (service, region); created once, thread-safe to share."""
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        shared = (self._key, service, region)
        with _SHARED_LOCK:
            client = _CLIENTS.get(shared)
            if client is None:
                if self._session is None:
                    self._session = _SESSIONS.get(self._key)
                if self._session is None:
                    self._session = _SESSIONS[self._key] = self._make_session(region)
                client = _CLIENTS[shared] = self._session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.target.endpoint_for(service),
                    verify=self.target.verify_tls,
                    config=self._config(),
                )
        with self._lock:
            self._clients[key] = client
        return client

    async def _run(self, operation: str, function: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except AmibakeError:
            raise
        except Exception as error:  # mapped to a one-line user error below
            mapped = map_error(operation, error)
            if self.target.decode_authorization_messages and mapped.code == "UnauthorizedOperation":
                mapped = await loop.run_in_executor(self._executor, self._decoded, mapped)
            raise mapped from error

    def _decoded(self, error: AwsError) -> AwsError:
        """Packer's decode_authorization_messages: the encoded part of an
        UnauthorizedOperation message replaced by STS DecodeAuthorizationMessage's answer."""
        match = _ENCODED_FAILURE.match(error.aws_message)
        if match is None:
            return error
        try:
            region = next(iter(self._clients))[1] if self._clients else "us-east-1"
            answer = self.client("sts", region).decode_authorization_message(
                EncodedMessage=match.group(2)
            )
        except Exception:  # as Packer: keep the encoded message when decoding fails
            return error
        decoded = str(answer.get("DecodedMessage", ""))
        message = (
            f"{match.group(1)} Authorization failure message: '{decoded}'{match.group(3) or ''}"
        )
        return AwsError(error.operation, error.code, message)

    async def call(self, region: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call an EC2 operation by its API name, e.g. ``call(region, "RunInstances", ...)``."""
        return await self.service_call("ec2", region, operation, **params)

    async def service_call(
        self, service: str, region: str, operation: str, /, **params: Any
    ) -> dict[str, Any]:
        from botocore import xform_name

        flight = None
        if operation.startswith("Describe"):
            # identical reads in flight at once (20 builds of one template looking up the
            # same source AMI and regions) share one request
            try:
                flight = (self._key, service, region, operation, json.dumps(params, sort_keys=True))
            except TypeError:
                flight = None

        def invoke() -> dict[str, Any]:
            client = self.client(service, region)
            answer: dict[str, Any] = getattr(client, xform_name(operation))(**params)
            return answer

        if flight is None:
            if operation.startswith("Describe"):
                return await self._described(region, operation, invoke)
            count_call(operation)
            return await self._run(operation, invoke)
        return await self._shared(flight, lambda: self._described(region, operation, invoke))

    async def _described(self, region: str, operation: str, function: Callable[[], _T]) -> _T:
        """A Describe* call: a build's waits for its turn in the region's budget (issue 16)."""
        await budget.spend(self._key, region)
        count_call(operation)
        return await self._run(operation, function)

    async def _shared(self, flight: Any, start: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """One request for identical reads in flight at once (also while waiting their turn)."""
        loop = asyncio.get_running_loop()
        flights = _IN_FLIGHT.setdefault(loop, {})
        task = flights.get(flight)
        if task is not None:
            shared: _T = copy.deepcopy(await asyncio.shield(task))
            return shared
        # a task of its own: a caller's cancellation must not cancel the others' answer
        task = flights[flight] = loop.create_task(start())

        def landed(done: asyncio.Task[Any]) -> None:
            if flights.get(flight) is done:
                del flights[flight]
            if not done.cancelled():
                done.exception()  # retrieved here; every caller still gets it raised

        task.add_done_callback(landed)
        answer: _T = await asyncio.shield(task)
        return answer

    async def collect(self, region: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        """All items under ``key`` across every page (botocore's paginator)."""
        from botocore import xform_name

        def invoke() -> list[Any]:
            paginator = self.client("ec2", region).get_paginator(xform_name(operation))
            items: list[Any] = []
            for page in paginator.paginate(**params):
                items.extend(page.get(key, []))
            return items

        if not operation.startswith("Describe"):
            count_call(operation)
            return await self._run(operation, invoke)
        try:  # 20 builds of one template looking up their source AMI: one request
            query = json.dumps(params, sort_keys=True)
            flight = (self._key, "collect", region, operation, key, query)
        except TypeError:
            return await self._described(region, operation, invoke)
        return await self._shared(flight, lambda: self._described(region, operation, invoke))

    async def caller_identity(self, region: str) -> dict[str, Any]:
        return await self.service_call("sts", region, "GetCallerIdentity")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def map_error(operation: str, error: Exception) -> AwsError:
    """A botocore exception as a one-line AwsError."""
    from botocore import exceptions as bx

    if isinstance(error, bx.ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = " ".join(str(info.get("Message", "")).split()) or "no message"
        if code in (
            "AuthFailure",
            "UnrecognizedClientException",
            "ExpiredToken",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
        ):
            return CredentialsError(operation, code, message)
        return AwsError(operation, code, message)
    if isinstance(error, bx.NoCredentialsError):
        return CredentialsError(
            operation,
            "NoCredentials",
            "no AWS credentials found (set AWS_PROFILE, run 'aws configure' or 'aws sso login', "
            "or use --local)",
        )
    if isinstance(
        error, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError)
    ):
        return CredentialsError(
            operation, "SSOSessionExpired", "the SSO session has expired: run 'aws sso login'"
        )
    if isinstance(error, bx.EndpointConnectionError):
        return AwsError(
            operation, "EndpointUnreachable", f"cannot reach {error.kwargs.get('endpoint_url')}"
        )
    if isinstance(error, bx.ParamValidationError):
        return AwsError(operation, "InvalidParameter", " ".join(str(error).split()))
    if isinstance(error, bx.BotoCoreError):
        return AwsError(operation, type(error).__name__, " ".join(str(error).split()))
    return AwsError(operation, type(error).__name__, " ".join(str(error).split()) or "failed")
