"""The typed, frozen build specification every template format loads into.

:func:`core.templates.load` turns a Packer JSON, Packer HCL2 or amibake TOML
template into a :class:`BuildSpec`. Everything here is already interpolated and
validated: the engine never sees ``{{user `x`}}`` or ``var.x``, only values.

Specs are immutable: sequences are tuples and mappings are :class:`FrozenMap`,
so a spec can be shared between the engine, the TUI and the history writer
without anyone changing it under the others' feet.

Units: durations are seconds (``float``), sizes are GiB (``int``) as in the EC2 API.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: Replacement text for sensitive values in any output.
REDACTED = "<sensitive>"


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable mapping that keeps insertion order.

    Equality is that of a ``dict`` (order does not matter), so a spec loaded
    from TOML equals the one loaded from the JSON it was converted from.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def to_dict(self) -> dict[K, V]:
        return dict(self._data)


def freeze(value: Any) -> Any:
    """Deep-convert lists to tuples and dicts to :class:`FrozenMap`."""
    if isinstance(value, Mapping):
        return FrozenMap((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: tuples to lists, mappings to dicts (for JSON output)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- builder


SshInterface = Literal["public_ip", "private_ip", "public_dns", "private_dns"]
ShutdownBehavior = Literal["stop", "terminate"]
KeyPairType = Literal["rsa", "ed25519"]


@dataclass(frozen=True, kw_only=True)
class SourceAmiFilter:
    """``DescribeImages`` query selecting the source AMI.

    ``owners`` holds account IDs or the aliases EC2 itself understands
    (``amazon``, ``aws-marketplace``, ``self``); friendly aliases such as
    ``canonical`` are resolved to account IDs by the loader.
    """

    filters: FrozenMap[str, str] = field(default_factory=FrozenMap)
    owners: tuple[str, ...] = ()
    most_recent: bool = False
    include_deprecated: bool = False


@dataclass(frozen=True, kw_only=True)
class BlockDeviceMapping:
    """One entry of ``launch_block_device_mappings`` (EBS volume of the build instance)."""

    device_name: str
    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    delete_on_termination: bool = True
    encrypted: bool | None = None
    kms_key_id: str | None = None
    snapshot_id: str | None = None
    no_device: bool = False


@dataclass(frozen=True, kw_only=True)
class AwsPolling:
    """Overrides of the waiters' cadence; ``None`` keeps botocore's defaults."""

    delay_seconds: int | None = None
    max_attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class AmazonEbsBuilder:
    """The ``amazon-ebs`` builder: launch, provision, stop, snapshot, register.

    Exactly one of ``source_ami`` and ``source_ami_filter`` is set.
    ``temporary_security_group_source_cidrs`` empty means "let the engine
    decide" (it restricts SSH to the caller's address rather than Packer's
    0.0.0.0/0). ``ssh_interface`` ``None`` means public IP when the instance
    has one, else the private IP.
    """

    name: str = "amazon-ebs"
    type: Literal["amazon-ebs"] = "amazon-ebs"
    region: str
    source_ami: str | None = None
    source_ami_filter: SourceAmiFilter | None = None
    instance_type: str
    ssh_username: str
    ssh_port: int = 22
    ssh_timeout: float = 300.0
    ssh_interface: SshInterface | None = None
    ssh_host: str | None = None
    ssh_keypair_name: str | None = None
    ssh_private_key_file: str | None = None
    # amibake generates ed25519 keys unless told otherwise (Packer defaults to rsa).
    temporary_key_pair_type: KeyPairType = "ed25519"
    #: RSA key size (None: 3072); ed25519 keys ignore it, as in Packer
    temporary_key_pair_bits: int | None = None
    temporary_security_group_source_cidrs: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    subnet_id: str | None = None
    vpc_id: str | None = None
    associate_public_ip_address: bool | None = None
    iam_instance_profile: str | None = None
    user_data: str | None = None
    user_data_file: str | None = None
    launch_block_device_mappings: tuple[BlockDeviceMapping, ...] = ()
    ami_name: str
    ami_description: str | None = None
    tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    run_tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    snapshot_tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    ami_regions: tuple[str, ...] = ()
    ami_users: tuple[str, ...] = ()
    ami_groups: tuple[str, ...] = ()
    encrypt_boot: bool | None = None
    kms_key_id: str | None = None
    force_deregister: bool = False
    force_delete_snapshot: bool = False
    skip_create_ami: bool = False
    #: Packer also puts ``run_tags`` on the AMI and its snapshots unless this is set.
    skip_ami_run_tags: bool = False
    shutdown_behavior: ShutdownBehavior = "stop"
    aws_polling: AwsPolling | None = None

    def matches(self, selector: str) -> bool:
        """Whether an ``only``/``except`` entry names this builder.

        Packer JSON uses the builder name, HCL2 uses ``type.name``; both are accepted.
        """
        return selector in (self.name, f"{self.type}.{self.name}")


# --------------------------------------------------------------------------- provisioners


@dataclass(frozen=True, kw_only=True)
class _ProvisionerCommon:
    """Options every provisioner has. ``except_`` is Packer's ``except``."""

    only: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    #: HCL2: the builders of the ``build`` block this belongs to (empty: every builder).
    builders: tuple[str, ...] = ()
    pause_before: float = 0.0
    max_retries: int = 0
    timeout: float | None = None

    def applies_to(self, builder: AmazonEbsBuilder) -> bool:
        if self.builders and builder.name not in self.builders:
            return False
        if self.only and not any(builder.matches(s) for s in self.only):
            return False
        return not any(builder.matches(s) for s in self.except_)


DEFAULT_EXECUTE_COMMAND = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"


@dataclass(frozen=True, kw_only=True)
class ShellProvisioner(_ProvisionerCommon):
    """Runs commands over SSH: exactly one of ``inline``, ``script``, ``scripts`` is set.

    ``execute_command`` keeps Packer's run-time placeholders ``{{ .Path }}`` and
    ``{{ .Vars }}``; the engine substitutes them. ``environment_vars`` are
    ``KEY=value`` strings.
    """

    type: Literal["shell"] = "shell"
    inline: tuple[str, ...] = ()
    script: str | None = None
    scripts: tuple[str, ...] = ()
    environment_vars: tuple[str, ...] = ()
    execute_command: str = DEFAULT_EXECUTE_COMMAND
    expect_disconnect: bool = False


@dataclass(frozen=True, kw_only=True)
class FileProvisioner(_ProvisionerCommon):
    """Copies ``source`` to ``destination`` (upload: local -> instance, download: reverse)."""

    type: Literal["file"] = "file"
    source: str
    destination: str
    direction: Literal["upload", "download"] = "upload"


Provisioner = ShellProvisioner | FileProvisioner


@dataclass(frozen=True, kw_only=True)
class ManifestPostProcessor:
    """Writes the artifacts of the build as Packer's ``manifest`` post-processor does."""

    type: Literal["manifest"] = "manifest"
    output: str = "packer-manifest.json"
    strip_path: bool = False
    strip_time: bool = False
    custom_data: FrozenMap[str, str] = field(default_factory=FrozenMap)
    only: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    #: HCL2: the builders of the ``build`` block this belongs to (empty: every builder).
    builders: tuple[str, ...] = ()

    def applies_to(self, builder: AmazonEbsBuilder) -> bool:
        """Whether this runs for ``builder``: its build block's, and ``only``/``except``."""
        if self.builders and builder.name not in self.builders:
            return False
        if self.only and not any(builder.matches(s) for s in self.only):
            return False
        return not any(builder.matches(s) for s in self.except_)


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True, kw_only=True)
class Variable:
    """A user variable after precedence is applied.

    ``origin`` says where the value came from: ``default``, ``env``
    (``PKR_VAR_name``), ``var-file:<path>`` or ``cli``. ``value`` is frozen
    (tuples, FrozenMap); it is ``None`` only for a nullable variable left unset.
    """

    name: str
    value: Any
    sensitive: bool = False
    # metadata, not part of equality: Packer JSON cannot carry it across a conversion
    description: str | None = field(default=None, compare=False)
    type: str | None = field(default=None, compare=False)
    origin: str = "default"

    def display_value(self) -> str:
        """The value as ``inspect`` shows it: ``<sensitive>`` for sensitive variables."""
        if self.sensitive:
            return REDACTED
        return repr(self.value) if not isinstance(self.value, str) else self.value


SourceFormat = Literal["json", "hcl", "toml"]


def _sensitive_strings(values: Iterable[str]) -> tuple[str, ...]:
    """Strings to hide, longest first so a value containing another is hidden whole.

    A multi-line value also contributes each of its lines of 4+ visible
    characters: the engine streams output line by line, so a secret key file
    arrives one line at a time and must still be hidden. Shorter lines (``}``)
    would blank unrelated output and carry no secret worth hiding on their own.

    A value may also come back the way a shell quoted or escaped it (the engine
    passes environment_vars through ``shlex.quote``; ``set -x`` prints
    ``'it'\''s'``; ``printf %q`` prints ``it\'s``), so those forms are hidden too.
    """
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        for form in _shell_forms(value):
            out.add(form)
        if "\n" in value:
            for line in value.splitlines():
                if len(line.strip()) >= 4:
                    out.update(_shell_forms(line.strip()))
    return tuple(sorted(out, key=lambda s: (-len(s), s)))


def _shell_forms(value: str) -> set[str]:
    import re
    import shlex

    forms = {value, shlex.quote(value)}
    # POSIX single-quote escaping of a lone quote, and backslash escaping (printf %q, bash -x).
    forms.add(value.replace("'", "'\\''"))
    forms.add(re.sub(r"([^A-Za-z0-9_@%+=:,./-])", r"\\\1", value))
    return {f for f in forms if f}


def redact(text: str, sensitive_values: Iterable[str]) -> str:
    """Replace each sensitive value (and each long line of a multi-line one) by ``<sensitive>``."""
    for secret in _sensitive_strings(sensitive_values):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """Everything one build run needs, from one template.

    ``build_time`` is the single timestamp of the run: every ``{{timestamp}}``
    / ``timestamp()`` of the template saw this instant. ``sensitive_values``
    holds the string forms of sensitive variables' values; pass any text meant
    for humans or logs through :meth:`redact`.

    ``source_file`` and ``source_format`` do not take part in equality, so a
    template and its TOML conversion load into equal specs.
    """

    variables: FrozenMap[str, Variable] = field(default_factory=FrozenMap)
    builders: tuple[AmazonEbsBuilder, ...]
    provisioners: tuple[Provisioner, ...] = ()
    post_processors: tuple[ManifestPostProcessor, ...] = ()
    error_cleanup_provisioner: Provisioner | None = None
    sensitive_values: frozenset[str] = frozenset()
    build_time: _dt.datetime
    source_file: Path | None = field(default=None, compare=False)
    source_format: SourceFormat = field(default="json", compare=False)
    #: One-line ``file:line:col: path: message`` warnings (what Packer only warns about).
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: Key paths whose values come from data sources not evaluated (``validate`` without
    #: ``--evaluate-datasources``); those fields hold placeholders. Such a spec never builds.
    unresolved: tuple[str, ...] = field(default=(), compare=False)

    def redact(self, text: str) -> str:
        return redact(text, self.sensitive_values)

    def builder(self, name: str) -> AmazonEbsBuilder:
        for builder in self.builders:
            if builder.matches(name):
                return builder
        raise KeyError(name)

    def provisioners_for(self, builder: AmazonEbsBuilder) -> tuple[Provisioner, ...]:
        """Provisioners to run for ``builder``, honouring ``only`` / ``except``."""
        return tuple(p for p in self.provisioners if p.applies_to(builder))
