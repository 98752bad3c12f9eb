"""The data-source resolver of a build's target: the local cloud or an AWS profile.

:class:`AwsResolver` answers :class:`amibake.core.templates.datasources.DataSourceResolver`
with synchronous boto3 calls (data sources are evaluated while the template
loads, before any event loop runs), through the same clients, endpoint and
retry settings as the engine (:class:`amibake.core.aws.Aws`). Errors are the engine's
one-line :class:`~amibake.core.aws.AwsError`.

``http`` data sources make a real GET on AWS targets. On the local cloud, which
has no internet, only loopback URLs are fetched; any other URL is a clear error
naming it, and so is any failure to connect.

The target may be given lazily (a callable): ``amibake build --local`` starts the
local cloud only when a data source actually needs it.
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from amibake.core.aws import Aws, Target, map_error
from amibake.core.model import AccessConfig
from amibake.core.templates.datasources import DataSourceError

HTTP_TIMEOUT = 30.0


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AwsResolver:
    """Data sources against one target; ``region`` is the default for those without one.

    ``local``: the target is the local cloud (no internet for ``http``). Call
    :meth:`close` when the load is done.
    """

    def __init__(
        self,
        target: Target | Callable[[], Target],
        region: str,
        *,
        local: bool = False,
    ) -> None:
        self._target = target
        self.region = region
        self.local = local
        self._aws: Aws | None = None
        self._children: dict[AccessConfig, AwsResolver] = {}

    @property
    def aws(self) -> Aws:
        if self._aws is None:
            self._aws = Aws(self.target(), max_workers=1)
        return self._aws

    def target(self) -> Target:
        return self._target() if callable(self._target) else self._target

    def with_access(self, access: AccessConfig) -> AwsResolver:
        """The resolver of a data source with its own access options (profile, keys, role,
        custom_endpoint_ec2...), applied to this one's target as for a builder."""
        if access.is_default:
            return self
        child = self._children.get(access)
        if child is None:
            from amibake.core.engine.access import access_target

            def target() -> Target:
                return access_target(self.target(), access)

            child = AwsResolver(target, self.region, local=self.local)
            self._children[access] = child
        return child

    def close(self) -> None:
        if self._aws is not None:
            self._aws.close()
            self._aws = None
        for child in self._children.values():
            child.close()
        self._children.clear()

    def _call(self, service: str, region: str | None, operation: str, **params: Any) -> Any:
        from botocore import xform_name

        client = self.aws.client(service, region or self.region)
        try:
            return getattr(client, xform_name(operation))(**params)
        except Exception as error:  # one line, as the engine reports AWS errors
            raise map_error(operation, error) from None

    def describe_images(self, region: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        client = self.aws.client("ec2", region or self.region)
        images: list[dict[str, Any]] = []
        try:
            for page in client.get_paginator("describe_images").paginate(**query):
                images.extend(page.get("Images", []))
        except Exception as error:
            raise map_error("DescribeImages", error) from None
        return images

    def get_parameter(self, region: str | None, name: str, with_decryption: bool) -> dict[str, Any]:
        answer = self._call(
            "ssm", region, "GetParameter", Name=name, WithDecryption=with_decryption
        )
        return dict(answer.get("Parameter", {}))

    def get_secret_value(
        self,
        region: str | None,
        secret_id: str,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"SecretId": secret_id}
        if version_id:
            params["VersionId"] = version_id
        if version_stage:
            params["VersionStage"] = version_stage
        return dict(self._call("secretsmanager", region, "GetSecretValue", **params))

    def http_request(
        self, url: str, method: str, headers: Mapping[str, str], body: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise DataSourceError(f"cannot request {url}: only http and https URLs can be fetched")
        if self.local and not _is_loopback_url(url):
            raise DataSourceError(
                f"cannot request {url}: the local cloud has no internet access "
                "(only loopback URLs can be fetched)"
            )
        request = urllib.request.Request(
            url,
            data=body.encode() if body is not None else None,
            headers=dict(headers),
            method=method,
        )
        # No proxies: a loopback URL must not be sent elsewhere by an environment proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT) as response:
                return response.status, _headers(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _headers(error.headers), error.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise DataSourceError(f"cannot request {url}: {reason}") from None


def _headers(message: Any) -> dict[str, str]:
    """Response headers, repeated ones joined with ", " (RFC 2616, as Packer does)."""
    out: dict[str, str] = {}
    for key in message.keys() if message is not None else ():
        if key not in out:
            out[key] = ", ".join(message.get_all(key) or [])
    return out


def resolver_for(
    *,
    local_cloud: Any = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> AwsResolver:
    """The resolver for a headless command's target.

    ``local_cloud``: a started :class:`~amibake.core.local.cloud.LocalCloud`, or a
    callable starting one on first use. Otherwise a profile (boto3's chain when
    ``None``) and an optional endpoint. ``region`` defaults to the profile's or
    the environment's region, else ``us-east-1``.
    """
    if local_cloud is not None:
        from amibake.core.targets import local_target

        def target_of_cloud() -> Target:
            return local_target(local_cloud() if callable(local_cloud) else local_cloud)

        return AwsResolver(target_of_cloud, region or "us-east-1", local=True)
    if region is None:
        from amibake.core.targets import DEFAULT_REGION, profile_region

        region = profile_region(profile) or DEFAULT_REGION
    return AwsResolver(Target(profile=profile, endpoint_url=endpoint_url), region)
