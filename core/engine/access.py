"""A builder's (or data source's) access options applied to the build's target.

The target is what the user chose: the local cloud, an AWS profile, the app's
target. A template's access options (Packer's AccessConfig) refine it, as
Packer's ``AccessConfig.Session()`` does:

* credentials, in Packer's order: the template's ``access_key``/``secret_key``
  (+ ``token``); else the environment's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
  when the template names a ``profile`` or ``shared_credentials_file`` (Packer's
  chain puts the environment before the shared files); else that ``profile`` in
  that ``shared_credentials_file``; else the target's own credentials;
* then ``assume_role`` (STS AssumeRole with those credentials) and ``mfa_code``
  (the code a profile's ``mfa_serial`` asks for);
* ``custom_endpoint_ec2`` replaces the EC2 endpoint only (STS keeps the target's);
* ``max_retries``, ``insecure_skip_tls_verify``, ``skip_metadata_api_check`` and
  ``decode_authorization_messages`` go to the boto3 clients.

On the local cloud every credential is accepted (as moto does) and every request
lands in the cloud's one account, so a template's keys, profile or role work there
unchanged. The ledger records where a build ran (profile, endpoint, role ARN, and
that the credentials came from the template) and never a secret: see
:func:`ledger_record`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from amibake.core.aws import Aws, Target
from amibake.core.model import AccessConfig, AmazonEbsBuilder


def endpoint_url(text: str) -> str:
    """``custom_endpoint_ec2`` as a URL: the Go SDK adds ``https://`` to a bare host."""
    return text if "://" in text else f"https://{text}"


def access_target(
    base: Target, access: AccessConfig, environ: Mapping[str, str] | None = None
) -> Target:
    """``base`` with ``access`` applied (``base`` itself when ``access`` sets nothing)."""
    if access.is_default:
        return base
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    if access.access_key and access.secret_key:
        changes.update(
            profile=None,
            access_key_id=access.access_key,
            secret_access_key=access.secret_key,
            session_token=access.token,
            credentials_file=None,
            credentials_source="template",
        )
    elif access.profile or access.shared_credentials_file:
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            # Packer's chain: static keys, then the environment, then the shared files
            changes.update(
                profile=None,
                access_key_id=key,
                secret_access_key=secret,
                session_token=env.get("AWS_SESSION_TOKEN"),
                credentials_source="environment",
            )
        else:
            changes.update(
                profile=access.profile or base.profile,
                access_key_id=None,
                secret_access_key=None,
                session_token=None,
                credentials_file=access.shared_credentials_file,
                credentials_source=None,
            )
    if access.custom_endpoint_ec2:
        changes["ec2_endpoint_url"] = endpoint_url(access.custom_endpoint_ec2)
    if access.assume_role is not None:
        changes["assume_role"] = access.assume_role
    if access.mfa_code:
        changes["mfa_code"] = access.mfa_code
    if access.max_retries is not None:
        changes["max_retries"] = access.max_retries
    if access.insecure_skip_tls_verify:
        changes["verify_tls"] = False
    if access.skip_metadata_api_check:
        changes["skip_metadata_api_check"] = True
    if access.decode_authorization_messages:
        changes["decode_authorization_messages"] = True
    return replace(base, **changes)


def builder_aws(aws: Aws, builder: AmazonEbsBuilder) -> Aws | None:
    """A new :class:`Aws` for ``builder`` when its access options change ``aws``'s target
    (the caller closes it), else None (the build uses ``aws`` as it is)."""
    if builder.access.is_default or getattr(aws, "access", None) == builder.access:
        return None
    own = Aws(access_target(aws.target, builder.access))
    own.access = builder.access
    own.base_target = aws.target
    return own


def ledger_record(aws: Aws) -> dict[str, Any]:
    """Where a build ran, for the ledger and a later sweep: never a secret.

    ``endpoint_url`` is EC2's (where the resources are). On a local cloud (a loopback
    endpoint, one account whatever the credentials) the profile is the one the user
    chose, so sweeping the local cloud finds the build. ``credentials`` says the keys
    came from the template (or the environment) and ``role_arn`` names an assumed role:
    a sweep of real AWS needs credentials for that account through the normal chain.
    """
    target = aws.target
    base: Target = getattr(aws, "base_target", None) or target
    record: dict[str, Any] = {
        "profile": base.profile if target.is_loopback else target.profile,
        "endpoint_url": target.ec2_endpoint_url or target.endpoint_url,
    }
    if target.credentials_source:
        record["credentials"] = target.credentials_source
    if target.assume_role is not None:
        record["role_arn"] = target.assume_role.role_arn
    return record


def describe_access(target: Target) -> str | None:
    """One line saying where a build's credentials come from, when the template chose."""
    parts = []
    if target.credentials_source == "template":
        parts.append("the template's access_key")
    elif target.credentials_source == "environment":
        parts.append("AWS_ACCESS_KEY_ID from the environment (Packer prefers it to `profile`)")
    elif target.profile:
        parts.append(f"profile {target.profile}")
    if target.credentials_file:
        parts.append(f"credentials file {target.credentials_file}")
    if target.assume_role is not None:
        parts.append(f"assuming role {target.assume_role.role_arn}")
    if target.ec2_endpoint_url:
        parts.append(f"EC2 endpoint {target.ec2_endpoint_url}")
    return ("Access: " + ", ".join(parts)) if parts else None
