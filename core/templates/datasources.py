"""HCL2 data sources: their schemas, and their evaluation against the current target.

Packer's ``data "TYPE" "NAME" { ... }`` blocks are read raw by the HCL reader
(``RawTemplate.data_sources``, keyed ``TYPE.NAME``) and evaluated here, through
:class:`DataSources`, which the loader hands to the :class:`Scope`:

* **Lazily, once per load, in dependency order.** ``data.TYPE.NAME.attr``
  evaluates that data source the first time anything reads it (a builder, a
  local, another data source); its outputs are cached for the rest of the load.
  The loader then evaluates the ones nothing read, since Packer runs them all.
  A data source that reaches itself again, directly or through locals and other
  data sources, is a located "dependency cycle" error naming the chain.
* **Config first, then the call.** Each type's configuration is decoded with
  the same :class:`~amibake.core.templates.schema.Reader` as builders (typed options,
  located errors, "did you mean", required keys, Packer's own checks such as
  ``owners`` being required for ``amazon-ami``).
* **Shape-only (no resolver).** ``amibake validate`` without
  ``--evaluate-datasources`` works as Packer's ``validate`` does: the config
  is decoded and checked, but nothing is called and every output is
  :data:`~amibake.core.templates.evaluate.UNKNOWN`. Everything computed from an unknown
  value is unknown too; the schema reader accepts an unknown value as "given"
  without checking its type or format. So that ``load()`` can still return a
  :class:`~amibake.core.model.BuildSpec`, a required builder string whose value is
  unknown (``source_ami = data.amazon-ami.x.id``) holds the placeholder
  :data:`~amibake.core.templates.schema.UNRESOLVED`, and ``BuildSpec.unresolved`` lists
  the key path of every unknown value. Such a spec is for validation and
  inspection only: ``amibake build`` always loads with a resolver, and refuses a
  spec whose ``unresolved`` is not empty.
* **With a resolver** (``amibake build``, ``validate --evaluate-datasources``):
  the calls go through a :class:`DataSourceResolver` made from the build's
  target (:class:`amibake.core.datasources_aws.AwsResolver`: the local cloud's endpoint
  or an AWS profile). A failure is one located line naming the data source.

Types: ``amazon-ami`` (DescribeImages with the same filter logic as
``source_ami_filter``), ``amazon-parameterstore`` (SSM GetParameter),
``amazon-secretsmanager`` (GetSecretValue), ``null`` and ``http``. Any other type
is one located "not supported yet" line.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from amibake.core.errors import AmibakeError
from amibake.core.model import AccessConfig, SourceAmiFilter
from amibake.core.templates.errors import Problems, suggest
from amibake.core.templates.evaluate import UNKNOWN, EvalError, Scope
from amibake.core.templates.nodes import BadNode, ListNode, MapNode, Node, Scalar, Section
from amibake.core.templates.schema import Reader, _check_region, _source_ami_filter, decode_access

SUPPORTED_TYPES = (
    "amazon-ami",
    "amazon-parameterstore",
    "amazon-secretsmanager",
    "null",
    "http",
)
HTTP_METHODS = ("HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

#: Packer's AWS access options (AccessConfig) amibake's data sources do not use; the
#: others (profile, keys, assume_role, custom_endpoint_ec2...) are read by
#: :func:`~amibake.core.templates.schema.decode_access` and applied as for builders.
_CREDENTIALS = "amibake's data sources do not use it"
ACCESS_OPTIONS: dict[str, str] = dict.fromkeys(
    ("skip_region_validation", "aws_polling", "polling"), _CREDENTIALS
)
ACCESS_OPTIONS["vault_aws_engine"] = (
    "amibake has no HashiCorp Vault client: use profile, access_key/secret_key or assume_role"
)

#: Each type's outputs (the attributes ``data.TYPE.NAME.<attr>`` may read).
OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "amazon-ami": ("id", "name", "creation_date", "owner", "owner_name", "tags"),
    "amazon-parameterstore": ("value", "version", "arn"),
    "amazon-secretsmanager": ("value", "secret_string", "secret_binary", "version_id"),
    "null": ("output",),
    # Packer's http data source publishes the response headers as `request_headers`
    # (its mapstructure tag); `response_headers` is the name its docs use. Both work.
    "http": ("url", "body", "request_headers", "response_headers"),
}


class DataSourceError(AmibakeError):
    """A data source's call failed; the message names what was asked for."""


class DataSourceResolver(Protocol):
    """What data sources call: one per load, made from the build's target.

    Methods raise :class:`~amibake.core.errors.AmibakeError` (``AwsError``,
    :class:`DataSourceError`) with a one-line message.
    """

    def describe_images(self, region: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every image DescribeImages returns for ``query`` (all pages)."""
        ...

    def get_parameter(self, region: str | None, name: str, with_decryption: bool) -> dict[str, Any]:
        """SSM GetParameter's ``Parameter``."""
        ...

    def get_secret_value(
        self,
        region: str | None,
        secret_id: str,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> dict[str, Any]:
        """Secrets Manager GetSecretValue's answer."""
        ...

    def http_request(
        self, url: str, method: str, headers: Mapping[str, str], body: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one HTTP request."""
        ...


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class AmiConfig:
    filter: SourceAmiFilter
    region: str | None
    access: AccessConfig | None = None


@dataclass(frozen=True)
class ParameterConfig:
    name: str
    with_decryption: bool
    region: str | None
    access: AccessConfig | None = None


@dataclass(frozen=True)
class SecretConfig:
    name: str
    key: str | None
    version_id: str | None
    version_stage: str
    region: str | None
    access: AccessConfig | None = None


@dataclass(frozen=True)
class NullConfig:
    input: Any


@dataclass(frozen=True)
class HttpConfig:
    url: str
    method: str
    request_headers: Mapping[str, str]
    request_body: str | None


#: the configs of the amazon-* data sources: they carry their own access options
AwsConfig = AmiConfig | ParameterConfig | SecretConfig
Config = AwsConfig | NullConfig | HttpConfig


def _region(r: Reader) -> str | None:
    region = r.str("region")
    _check_region(r, "region", region)
    return region


def _decode_ami(r: Reader) -> AmiConfig | None:
    filters_node = r.node.entries.get("filters")
    spec = _source_ami_filter(r)
    region = _region(r)
    if filters_node is None or (isinstance(filters_node, MapNode) and not filters_node.entries):
        r.problems.add(
            filters_node.loc if filters_node is not None else r.node.loc,
            r.at("filters"),
            '`filters` is required (e.g. filters = { name = "ubuntu/images/*" })',
        )
        return None
    return AmiConfig(spec, region) if spec is not None else None


def _decode_parameter(r: Reader) -> ParameterConfig | None:
    name = r.str("name", required=True)
    with_decryption = r.bool("with_decryption")
    region = _region(r)
    if name is None:
        return None
    return ParameterConfig(name, bool(with_decryption), region)


def _decode_secret(r: Reader) -> SecretConfig | None:
    name = r.str("name", required=True)
    key = r.str("key")
    version_id = r.str("version_id")
    version_stage = r.str("version_stage")
    region = _region(r)
    if name is None:
        return None
    return SecretConfig(
        name, key or None, version_id or None, version_stage or "AWSCURRENT", region
    )


def _decode_null(r: Reader) -> NullConfig | None:
    node = r.raw("input")
    if node is None:
        r.missing("input")
        return None
    value = r.str("input")
    return NullConfig(value) if value is not None else None


def _decode_http(r: Reader) -> HttpConfig | None:
    url = r.str("url", required=True)
    method = r.str("method", choices=HTTP_METHODS)
    headers = r.str_map("request_headers")
    body = r.str("request_body")
    if url is None:
        return None
    return HttpConfig(url, method or "GET", dict(headers or {}), body)


_DECODERS: Mapping[str, Callable[[Reader], Config | None]] = {
    "amazon-ami": _decode_ami,
    "amazon-parameterstore": _decode_parameter,
    "amazon-secretsmanager": _decode_secret,
    "null": _decode_null,
    "http": _decode_http,
}


def decode_config(section: Section, body: MapNode, problems: Problems) -> Config | None:
    """A data source's resolved body -> its typed config (problems reported, located)."""
    unsupported = ACCESS_OPTIONS if section.type.startswith("amazon-") else {}
    r = Reader(body, section.path, problems, unsupported)
    config = _DECODERS[section.type](r)
    if section.type.startswith("amazon-"):
        access = decode_access(r)  # the data source's own access options (issue 12)
        if isinstance(config, AwsConfig) and not access.is_default:
            config = dataclasses.replace(config, access=access)
    r.finish()
    return config


# --------------------------------------------------------------------------- execution


def _ami_outputs(config: AmiConfig, resolver: DataSourceResolver) -> dict[str, Any]:
    from amibake.core.engine.steps.source_ami import choose_image, filter_query

    region = config.region
    images = resolver.describe_images(region, filter_query(config.filter))
    where = region or getattr(resolver, "region", None) or "the default region"
    image = choose_image(images, config.filter, where)
    return {
        "id": image.get("ImageId", ""),
        "name": image.get("Name", ""),
        "creation_date": image.get("CreationDate", ""),
        "owner": image.get("OwnerId", ""),
        "owner_name": image.get("ImageOwnerAlias", ""),
        "tags": {str(t.get("Key")): str(t.get("Value", "")) for t in image.get("Tags") or ()},
    }


def _parameter_outputs(config: ParameterConfig, resolver: DataSourceResolver) -> dict[str, Any]:
    try:
        parameter = resolver.get_parameter(config.region, config.name, config.with_decryption)
    except AmibakeError as error:
        if getattr(error, "code", "") == "ParameterNotFound":
            raise DataSourceError(f'the parameter name "{config.name}" was not found') from None
        raise
    return {
        "value": str(parameter.get("Value", "")),
        "version": str(parameter.get("Version", "")),
        "arn": str(parameter.get("ARN", "")),
    }


def secret_value(secret_string: str, key: str | None) -> str:
    """Packer's rule: a JSON object secret gives ``key``'s value (or its first value)."""
    try:
        data = json.loads(secret_string)
    except ValueError:
        return secret_string
    if not isinstance(data, dict):
        return secret_string
    if not key:
        if not data:
            return ""
        value = next(iter(data.values()))
    elif key in data:
        value = data[key]
    else:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) if isinstance(value, int) else f"{value:.0f}"  # Go's FormatFloat 'f', 0
    raise DataSourceError(
        f"the secret's value of `{key or 'its first key'}` is not a string or number"
    )


def _secret_outputs(config: SecretConfig, resolver: DataSourceResolver) -> dict[str, Any]:
    version = config.version_id or config.version_stage
    try:
        secret = resolver.get_secret_value(
            config.region,
            config.name,
            version_id=config.version_id,
            version_stage=None if config.version_id else config.version_stage,
        )
    except AmibakeError as error:
        if getattr(error, "code", "") == "ResourceNotFoundException":
            raise DataSourceError(
                f'Secrets Manager secret "{config.name}" version "{version}" not found'
            ) from None
        raise
    secret_string = str(secret.get("SecretString") or "")
    binary = secret.get("SecretBinary")
    return {
        "value": secret_value(secret_string, config.key),
        "secret_string": secret_string,
        "secret_binary": base64.b64encode(binary).decode() if binary else "",
        "version_id": str(secret.get("VersionId", "")),
    }


def _http_outputs(config: HttpConfig, resolver: DataSourceResolver) -> dict[str, Any]:
    status, headers, body = resolver.http_request(
        config.url, config.method, config.request_headers, config.request_body
    )
    if not 200 <= status < 300:
        raise DataSourceError(f"{config.method} {config.url} answered HTTP {status}")
    return {
        "url": config.url,
        "body": body.decode("utf-8", "replace"),
        "request_headers": dict(headers),
        "response_headers": dict(headers),
    }


def execute(config: Config, resolver: DataSourceResolver) -> dict[str, Any]:
    """Run one data source; raises AmibakeError (one line) when its call fails."""
    access = getattr(config, "access", None)
    with_access = getattr(resolver, "with_access", None)
    if access is not None and with_access is not None:
        resolver = with_access(access)  # its own credentials/endpoint (issue 12)
    if isinstance(config, NullConfig):
        return {"output": config.input}
    if isinstance(config, AmiConfig):
        return _ami_outputs(config, resolver)
    if isinstance(config, ParameterConfig):
        return _parameter_outputs(config, resolver)
    if isinstance(config, SecretConfig):
        return _secret_outputs(config, resolver)
    return _http_outputs(config, resolver)


def unknown_outputs(data_type: str) -> dict[str, Any]:
    return dict.fromkeys(OUTPUTS.get(data_type, ()), UNKNOWN)


def aws_secret_function(
    resolver: DataSourceResolver | None,
) -> Callable[[str, str | None], Any]:
    """The ``aws_secret(secret_id, version_stage)`` callable behind ``aws_secretsmanager()``.

    Shape-only (no resolver) it answers :data:`UNKNOWN`.
    """

    def aws_secret(secret_id: str, version_stage: str | None = None) -> Any:
        if resolver is None:
            return UNKNOWN
        from amibake.core.templates.functions import FunctionError

        try:
            secret = resolver.get_secret_value(
                None, secret_id, version_stage=version_stage or "AWSCURRENT"
            )
        except AmibakeError as error:  # the function's own located error, one line
            raise FunctionError(" ".join(str(error).split()), 0) from None
        return str(secret.get("SecretString") or "")

    return aws_secret


# --------------------------------------------------------------------------- evaluation


def _has_bad(node: Node) -> bool:
    if isinstance(node, BadNode):
        return True
    if isinstance(node, ListNode):
        return any(_has_bad(n) for n in node.items)
    if isinstance(node, MapNode):
        return any(_has_bad(n) for n in node.entries.values())
    return False


class DataSources:
    """The data sources of one load: their getters for the :class:`Scope`.

    ``resolver`` ``None`` is shape-only validation (outputs unknown).
    """

    def __init__(
        self,
        sections: Mapping[str, Section],
        problems: Problems,
        resolver: DataSourceResolver | None,
    ) -> None:
        self.sections = dict(sections)
        self.problems = problems
        self.resolver = resolver
        self.scope: Scope | None = None
        self._stack: list[str] = []
        #: the data sources' template credentials (the loader redacts them everywhere)
        self.secrets: set[str] = set()

    @property
    def shape_only(self) -> bool:
        return self.resolver is None

    def check_types(self) -> None:
        """One located line per data source of a type amibake does not run."""
        for key, section in list(self.sections.items()):
            if section.type not in SUPPORTED_TYPES:
                self.problems.add(
                    section.type_loc or section.loc,
                    f"data.{key}",
                    f"data source `{section.type}` is not supported yet"
                    f" (supported: {', '.join(SUPPORTED_TYPES)})"
                    f"{suggest(section.type, SUPPORTED_TYPES)}",
                )

    def getters(self) -> dict[str, Callable[[], Any]]:
        return {key: self._getter(key) for key in self.sections}

    def _getter(self, key: str) -> Callable[[], Any]:
        return lambda: self.evaluate(key)

    def evaluate(self, key: str) -> dict[str, Any]:
        """The outputs of ``data.KEY`` (called once, by the Scope, which caches them)."""
        section = self.sections[key]
        where = section.type_loc or section.loc
        if section.type not in SUPPORTED_TYPES:
            raise EvalError(
                where, f"data source `{section.type}` is not supported yet", reported=True
            )
        if key in self._stack:
            chain = " -> ".join(f"data.{k}" for k in [*self._stack[self._stack.index(key) :], key])
            raise EvalError(where, f"dependency cycle: {chain}")
        assert self.scope is not None, "DataSources.scope is set by the loader"
        self._stack.append(key)
        try:
            errors: list[tuple[EvalError, str]] = []
            body = self.scope.resolve(section.body, errors, section.path)
        finally:
            self._stack.pop()
        for error, path in errors:
            self.problems.add(error.loc, path, error.message)
        assert isinstance(body, MapNode)
        before = len(self.problems.items)
        config = decode_config(section, body, self.problems)
        if isinstance(config, AwsConfig) and config.access is not None:
            self.secrets.update(config.access.secrets())
        if errors or _has_bad(body) or len(self.problems.items) > before:
            raise EvalError(where, f"data source `{key}` is invalid", reported=True)
        unknown: list[str] = []
        unknown_paths(body, "", unknown)
        if self.shape_only or unknown:
            return unknown_outputs(section.type)
        if config is None:  # pragma: no cover - a decoder returns None only with a problem
            raise EvalError(where, f"data source `{key}` is invalid", reported=True)
        assert self.resolver is not None
        try:
            return execute(config, self.resolver)
        except AmibakeError as error:
            message = " ".join(str(error).split())
            self.problems.add(where, f"data.{key}", f"data source failed: {message}")
            raise EvalError(where, message, reported=True) from None


def unknown_paths(node: Node, path: str, out: list[str]) -> None:
    """Append the key path of every unknown value under ``node`` (shape-only loads)."""
    if isinstance(node, Scalar) and node.value is UNKNOWN:
        out.append(path)
    elif isinstance(node, ListNode):
        for i, item in enumerate(node.items):
            unknown_paths(item, f"{path}[{i}]", out)
    elif isinstance(node, MapNode):
        for k, item in node.entries.items():
            unknown_paths(item, f"{path}.{k}" if path else k, out)
