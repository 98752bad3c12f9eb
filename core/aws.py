"""A thin async facade over boto3's EC2 (and STS) clients.

boto3 is synchronous; every call here runs in a bounded thread pool so the
event loop never blocks. Throttling and transient errors are retried by
botocore's own ``standard`` retry mode, not by hand. Errors come back as
:class:`AwsError` with AWS's code and a one-line message.

Nothing here knows about the local cloud: a target is a profile, optional
explicit credentials and an optional endpoint URL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from core.errors import AmibakeError

DEFAULT_RETRIES = {"mode": "standard", "total_max_attempts": 8}


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
    """Where API calls go. Empty fields mean boto3's normal chain (env, profiles, SSO)."""

    profile: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @property
    def is_loopback(self) -> bool:
        """True when the endpoint is on this machine (then the caller's address is 127.0.0.1)."""
        if not self.endpoint_url:
            return False
        from urllib.parse import urlsplit

        host = urlsplit(self.endpoint_url).hostname or ""
        return host == "localhost" or host.startswith("127.")


class Aws:
    """EC2/STS clients of one session, one per region, called from asyncio."""

    def __init__(self, target: Target | None = None, *, max_workers: int = 16) -> None:
        self.target = target or Target()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aws")
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def _make_session(self) -> Any:
        import boto3
        from botocore.exceptions import ProfileNotFound

        try:
            return boto3.session.Session(
                profile_name=self.target.profile,
                aws_access_key_id=self.target.access_key_id,
                aws_secret_access_key=self.target.secret_access_key,
            )
        except ProfileNotFound as error:
            raise CredentialsError("session", "ProfileNotFound", str(error)) from None

    def client(self, service: str, region: str) -> Any:
        """The boto3 client for (service, region); created once, thread-safe to share."""
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                from botocore.config import Config

                if self._session is None:
                    self._session = self._make_session()
                client = self._session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.target.endpoint_url,
                    config=Config(
                        retries=DEFAULT_RETRIES,
                        max_pool_connections=32,
                        # botocore's 60 s would hold an unreachable endpoint's caller
                        # (and the process's exit, which joins these threads) for minutes.
                        connect_timeout=2 if self.target.is_loopback else 10,
                    ),
                )
                self._clients[key] = client
        return client

    async def _run(self, operation: str, function: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except AmibakeError:
            raise
        except Exception as error:  # mapped to a one-line user error below
            raise map_error(operation, error) from error

    async def call(self, region: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call an EC2 operation by its API name, e.g. ``call(region, "RunInstances", ...)``."""
        return await self.service_call("ec2", region, operation, **params)

    async def service_call(
        self, service: str, region: str, operation: str, /, **params: Any
    ) -> dict[str, Any]:
        from botocore import xform_name

        def invoke() -> Any:
            client = self.client(service, region)
            return getattr(client, xform_name(operation))(**params)

        return await self._run(operation, invoke)

    async def collect(self, region: str, operation: str, key: str, /, **params: Any) -> list[Any]:
        """All items under ``key`` across every page (botocore's paginator)."""
        from botocore import xform_name

        def invoke() -> list[Any]:
            paginator = self.client("ec2", region).get_paginator(xform_name(operation))
            items: list[Any] = []
            for page in paginator.paginate(**params):
                items.extend(page.get(key, []))
            return items

        return await self._run(operation, invoke)

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
