"""The typed, frozen build specification every template format loads into.

:func:`amibake.core.templates.load` turns a Packer JSON, Packer HCL2 or amibake TOML
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


SshInterface = Literal[
    "public_ip", "private_ip", "public_dns", "private_dns", "ipv6", "session_manager"
]
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
    """One entry of ``launch_block_device_mappings`` or ``ami_block_device_mappings``.

    As Packer's BlockDevice: ``delete_on_termination`` defaults to false; ``no_device``
    suppresses the device; a ``virtual_name`` (``ephemeralN``) maps an instance store.
    """

    device_name: str
    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    delete_on_termination: bool = False
    encrypted: bool | None = None
    kms_key_id: str | None = None
    snapshot_id: str | None = None
    no_device: bool = False
    virtual_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class AwsPolling:
    """Overrides of the waiters' cadence; ``None`` keeps botocore's defaults."""

    delay_seconds: int | None = None
    max_attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class DeregistrationProtection:
    """``deregistration_protection``: ``with_cooldown`` implies ``enabled`` (as in Packer)."""

    enabled: bool = False
    with_cooldown: bool = False


@dataclass(frozen=True, kw_only=True)
class MetadataOptions:
    """``metadata_options``: the instance metadata service, with Packer's defaults."""

    http_endpoint: Literal["enabled", "disabled"] = "enabled"
    http_tokens: Literal["optional", "required"] = "optional"
    http_put_response_hop_limit: int = 1
    instance_metadata_tags: Literal["enabled", "disabled"] = "disabled"


@dataclass(frozen=True, kw_only=True)
class Placement:
    """``placement`` (and the deprecated top-level ``tenancy``, folded in here)."""

    host_resource_group_arn: str | None = None
    host_id: str | None = None
    tenancy: Literal["default", "dedicated", "host"] | None = None


@dataclass(frozen=True, kw_only=True)
class PolicyStatement:
    effect: str = "Allow"
    action: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PolicyDocument:
    """``temporary_iam_instance_profile_policy_document``: the temporary role's inline policy."""

    version: str = "2012-10-17"
    statements: tuple[PolicyStatement, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AssumeRole:
    """``assume_role``: the STS AssumeRole the build's credentials go through (Packer's
    AssumeRoleConfig). Empty values are not sent."""

    role_arn: str
    session_name: str | None = None
    external_id: str | None = None
    duration_seconds: int | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    transitive_tag_keys: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AccessConfig:
    """Packer's AccessConfig: how a builder (or an amazon-* data source) reaches AWS.

    Every field unset means "the build's target" (``--local``, ``--profile``, the app's
    target). ``access_key``/``secret_key``/``token``/``mfa_code`` are secrets: they join
    ``BuildSpec.sensitive_values`` and are never written anywhere.
    """

    profile: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    shared_credentials_file: str | None = None
    assume_role: AssumeRole | None = None
    mfa_code: str | None = field(default=None, repr=False)
    custom_endpoint_ec2: str | None = None
    skip_credential_validation: bool = False
    skip_metadata_api_check: bool = False
    #: retries after the first attempt (None: amibake's default, botocore standard mode)
    max_retries: int | None = None
    insecure_skip_tls_verify: bool = False
    decode_authorization_messages: bool = False

    def secrets(self) -> tuple[str, ...]:
        """The values to redact from every output."""
        return tuple(
            v for v in (self.access_key, self.secret_key, self.token, self.mfa_code) if v
        )

    @property
    def is_default(self) -> bool:
        return self == AccessConfig()


@dataclass(frozen=True, kw_only=True)
class SshBastion:
    """``ssh_bastion_*``: the host the SSH connection hops through (a direct-tcpip tunnel).

    As in Packer, ``private_key_file``/``certificate_file`` default to the instance's
    ``ssh_private_key_file``/``ssh_certificate_file`` (the loader fills them in).
    """

    host: str
    port: int = 22
    username: str | None = None
    password: str | None = None
    private_key_file: str | None = None
    certificate_file: str | None = None
    agent_auth: bool = False
    interactive: bool = False


@dataclass(frozen=True, kw_only=True)
class SshProxy:
    """``ssh_proxy_*``: a SOCKS5 proxy the SSH connection goes through."""

    host: str
    port: int = 1080
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, kw_only=True)
class NetworkFilter:
    """``vpc_filter``, ``subnet_filter``, ``security_group_filter``: EC2 filters (a value with
    commas is several values, as Packer reads it); for subnets, how to choose among several."""

    filters: FrozenMap[str, str] = field(default_factory=FrozenMap)
    #: subnets only: the one with the most free addresses (wins over ``random``)
    most_free: bool = False
    #: subnets only: any one of those matching
    random: bool = False


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
    # --- AMI options (issue 12)
    ami_block_device_mappings: tuple[BlockDeviceMapping, ...] = ()
    #: Packer's trilean: None leaves the instance's ENA attribute as it is
    ena_support: bool | None = None
    sriov_support: bool = False
    snapshot_users: tuple[str, ...] = ()
    snapshot_groups: tuple[str, ...] = ()
    #: RFC 3339 text, as in the template
    deprecate_at: str | None = None
    ami_org_arns: tuple[str, ...] = ()
    ami_ou_arns: tuple[str, ...] = ()
    #: region -> KMS key ("" is the region's default EBS key)
    region_kms_key_ids: FrozenMap[str, str] = field(default_factory=FrozenMap)
    skip_save_build_region: bool = False
    imds_support: Literal["v2.0"] | None = None
    deregistration_protection: DeregistrationProtection | None = None
    ami_virtualization_type: Literal["hvm", "paravirtual"] | None = None
    ami_product_codes: tuple[str, ...] = ()
    snapshot_copy_duration_minutes: int | None = None

    # --- run options (issue 12)
    #: "none": no key pair, no SSH rule, no connection (and no provisioners, as in Packer)
    communicator: Literal["ssh", "none"] = "ssh"
    availability_zone: str | None = None
    ebs_optimized: bool = False
    metadata_options: MetadataOptions = field(default_factory=MetadataOptions)
    placement: Placement = field(default_factory=Placement)
    run_volume_tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    temporary_iam_instance_profile_policy_document: PolicyDocument | None = None
    #: Packer checks that ``iam_instance_profile`` exists (GetInstanceProfile) unless set.
    skip_profile_validation: bool = False
    no_ephemeral: bool = False
    #: also set by ``enable_t2_unlimited``; burstable types get "standard" otherwise (Packer)
    enable_unlimited_credits: bool = False
    #: "none" unless a reservation id or group is given (Packer's default)
    capacity_reservation_preference: Literal["none", "open"] | None = None
    capacity_reservation_id: str | None = None
    capacity_reservation_group_arn: str | None = None
    #: license configuration ARNs
    license_specifications: tuple[str, ...] = ()
    enable_nitro_enclave: bool = False
    #: the temporary security group admits the caller's public address (amibake's default)
    temporary_security_group_source_public_ip: bool = False
    #: a spot instance through a temporary launch template and an "instant" EC2 Fleet:
    #: "auto" (up to the on-demand price) or a maximum hourly price; None: on demand
    spot_price: str | None = None
    #: launch one of these (``instance_type`` is then empty), the fleet's overrides
    spot_instance_types: tuple[str, ...] = ()
    #: on the launch template and the spot instance request
    spot_tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    fleet_tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    spot_allocation_strategy: str | None = None
    #: deprecated by Packer (a warning): kept, not sent
    spot_price_auto_product: str | None = None
    #: spot blocks (no longer offered by AWS): sent as Packer sends it; 0 is unset
    block_duration_minutes: int = 0
    vpc_filter: NetworkFilter | None = None
    subnet_filter: NetworkFilter | None = None
    security_group_filter: NetworkFilter | None = None
    #: the provisioners stop the instance; the build only waits for "stopped"
    disable_stop_instance: bool = False

    # --- access options (issue 12)
    access: AccessConfig = field(default_factory=AccessConfig)
    #: skip checking the build region and ami_regions with DescribeRegions
    skip_region_validation: bool = False

    # --- SSH options (issue 12)
    #: authenticate with the local SSH agent; no temporary key pair is created
    ssh_agent_auth: bool = False
    ssh_pty: bool = False
    ssh_password: str | None = None
    #: remove the temporary key from ~/.ssh/authorized_keys after provisioning
    ssh_clear_authorized_keys: bool = False
    #: after the first successful connection: disconnect, wait this long, connect again
    pause_before_connecting: float = 0.0
    #: failed SSH handshakes (after TCP connected) tolerated; None: a 10 s window of refusals
    ssh_handshake_attempts: int | None = None
    #: seconds between keepalives; 0 disables them (Packer: a negative duration)
    ssh_keep_alive_interval: float = 5.0
    #: a connection silent for this long is dead (None: never)
    ssh_read_write_timeout: float | None = None
    #: name of the temporary key pair (None: ``amibake_<build id>``)
    temporary_key_pair_name: str | None = None
    ssh_certificate_file: str | None = None
    ssh_ciphers: tuple[str, ...] = ()
    ssh_key_exchange_algorithms: tuple[str, ...] = ()
    # amibake's default is SFTP (Packer's is scp; OpenSSH's own scp speaks SFTP since 9.0)
    ssh_file_transfer_method: Literal["sftp", "scp"] = "sftp"
    ssh_bastion: SshBastion | None = None
    ssh_proxy: SshProxy | None = None
    #: ``port:host:hostport``: listen on localhost:port here, forward through the instance
    ssh_local_tunnels: tuple[str, ...] = ()
    #: ``port:host:hostport``: listen on the instance's localhost:port, forward to here
    ssh_remote_tunnels: tuple[str, ...] = ()
    ssh_disable_agent_forwarding: bool = False
    #: ``ssh_interface = "session_manager"``: wait before starting the session, local port.
    #: Packer's docs say 10s by default, but RunConfig.Prepare sets none: no wait (the source).
    pause_before_ssm: float = 0.0
    session_manager_port: int | None = None
    # --- HCL2 build naming (issue 18)
    #: the name Packer gives this run: ``<build name>.amazon-ebs.<source>`` in a named HCL2
    #: build, ``amazon-ebs.<source>`` in an unnamed one; "" for legacy JSON and TOML
    packer_name: str = field(default="", compare=False)  # display only: not part of equality
    #: Packer's ``packer_build_name`` (``{{ build_name }}``, PACKER_BUILD_NAME): in HCL2 the
    #: source block's own label, whatever name the build block gives it; "" = ``name``
    build_name: str = field(default="", compare=False)

    def ssh_secrets(self) -> tuple[str, ...]:
        """The SSH passwords of the template (issue 12): redacted everywhere, like credentials."""
        values = (
            self.ssh_password,
            self.ssh_bastion.password if self.ssh_bastion else None,
            self.ssh_proxy.password if self.ssh_proxy else None,
        )
        return tuple(v for v in values if v)

    def matches(self, selector: str) -> bool:
        """Whether an ``only``/``except`` entry names this builder.

        Packer JSON uses the builder name, HCL2 uses ``type.name``; both are accepted.
        """
        return selector in (self.name, f"{self.type}.{self.name}")


# --------------------------------------------------------------------------- provisioners


@dataclass(frozen=True, kw_only=True)
class _Scoped:
    """Which builders a provisioner or post-processor runs for. ``except_`` is Packer's
    ``except``."""

    only: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    #: HCL2: the builders of the ``build`` block this belongs to (empty: every builder).
    builders: tuple[str, ...] = ()
    #: HCL2's ``name`` of a provisioner or post-processor block: shown in the build log.
    name: str = ""

    def applies_to(self, builder: AmazonEbsBuilder) -> bool:
        """Whether this runs for ``builder``: its build block's, and ``only``/``except``."""
        if self.builders and builder.name not in self.builders:
            return False
        if self.only and not any(builder.matches(s) for s in self.only):
            return False
        return not any(builder.matches(s) for s in self.except_)


@dataclass(frozen=True, kw_only=True)
class _ProvisionerCommon(_Scoped):
    """Options every provisioner has."""

    pause_before: float = 0.0
    max_retries: int = 0
    timeout: float | None = None
    #: HCL2's ``continue_on_error`` (Packer 1.16): a failure, once ``max_retries`` are spent,
    #: is said and the build goes on.
    continue_on_error: bool = False


@dataclass(frozen=True, kw_only=True)
class ShellLocalOptions:
    """What Packer's ``shell-local`` provisioner and post-processor share (both run on the
    user's machine, with Packer's environment)."""

    command: str | None = None
    inline: tuple[str, ...] = ()
    script: str | None = None
    scripts: tuple[str, ...] = ()
    environment_vars: tuple[str, ...] = ()
    env: FrozenMap[str, str] = field(default_factory=FrozenMap)
    #: Packer's default ``["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]``
    execute_command: tuple[str, ...] = ("/bin/sh", "-c", "{{.Vars}} {{.Script}}")
    inline_shebang: str = "/bin/sh -e"
    valid_exit_codes: tuple[int, ...] = (0,)
    use_linux_pathing: bool = False
    only_on: tuple[str, ...] = ()
    #: how each variable enters ``{{ .Vars }}`` (Packer's default off Windows)
    env_var_format: str = "%s='%s' "


DEFAULT_EXECUTE_COMMAND = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
#: Packer's execute_command when ``use_env_var_file`` is set.
ENV_VAR_FILE_EXECUTE_COMMAND = "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"


@dataclass(frozen=True, kw_only=True)
class ShellProvisioner(_ProvisionerCommon):
    """Runs commands over SSH: exactly one of ``inline``, ``script``, ``scripts`` is set.

    ``execute_command`` keeps Packer's run-time placeholders ``{{ .Path }}``,
    ``{{ .Vars }}`` and ``{{ .EnvVarFile }}``; the engine substitutes them.
    ``environment_vars`` are ``KEY=value`` strings, ``env`` a map (both as in Packer).
    ``execute_command`` / ``env_var_format`` ``None``: Packer's default for ``use_env_var_file``.
    ``remote_path`` ``None``: ``remote_folder``/``remote_file`` (``remote_file`` ``None``:
    ``script_<random 0-9998>.sh``, as Packer names it).
    """

    type: Literal["shell"] = "shell"
    inline: tuple[str, ...] = ()
    script: str | None = None
    scripts: tuple[str, ...] = ()
    environment_vars: tuple[str, ...] = ()
    env: FrozenMap[str, str] = field(default_factory=FrozenMap)
    env_var_format: str | None = None
    use_env_var_file: bool = False
    execute_command: str | None = DEFAULT_EXECUTE_COMMAND
    expect_disconnect: bool = False
    valid_exit_codes: tuple[int, ...] = (0,)
    remote_folder: str = "/tmp"
    remote_file: str | None = None
    remote_path: str | None = None
    skip_clean: bool = False
    #: ``None``: ``/bin/sh -e``, written only when the inline commands have no ``#!`` of their own
    inline_shebang: str | None = None
    start_retry_timeout: float = 300.0
    pause_after: float = 0.0
    #: keep the scripts' bytes as they are (else CRLF line endings become LF, as in Packer)
    binary: bool = False
    overrides: FrozenMap[str, ShellProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class FileProvisioner(_ProvisionerCommon):
    """Copies ``sources`` (or ``content``) to ``destination`` (upload) or back (download).

    :attr:`all_sources` is ``sources`` then ``source`` (Packer appends ``source``).
    ``generated``: the source is created during the build (it may not exist yet).
    """

    type: Literal["file"] = "file"
    source: str = ""
    sources: tuple[str, ...] = ()
    content: str | None = None
    destination: str
    direction: Literal["upload", "download"] = "upload"
    generated: bool = False
    overrides: FrozenMap[str, FileProvisioner] = field(default_factory=FrozenMap)

    @property
    def all_sources(self) -> tuple[str, ...]:
        return (*self.sources, *((self.source,) if self.source else ()))


@dataclass(frozen=True, kw_only=True)
class ShellLocalProvisioner(_ProvisionerCommon, ShellLocalOptions):
    """Packer's ``shell-local``: runs on the user's machine, with Packer's environment."""

    type: Literal["shell-local"] = "shell-local"
    overrides: FrozenMap[str, ShellLocalProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class BreakpointProvisioner(_ProvisionerCommon):
    """Packer's ``breakpoint``: pauses the build until the user continues."""

    type: Literal["breakpoint"] = "breakpoint"
    note: str = ""
    disable: bool = False
    overrides: FrozenMap[str, BreakpointProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class AnsibleProvisioner(_ProvisionerCommon):
    """Packer's ``ansible``: ``ansible-playbook`` on the user's machine against the instance.

    amibake connects Ansible straight to the instance over SSH with the build's key
    (``use_proxy = false`` in Packer's terms); there is no local SSH proxy.
    """

    type: Literal["ansible"] = "ansible"
    playbook_file: str
    command: str = "ansible-playbook"
    extra_arguments: tuple[str, ...] = ()
    ansible_env_vars: tuple[str, ...] = ()
    user: str | None = None
    groups: tuple[str, ...] = ()
    empty_groups: tuple[str, ...] = ()
    host_alias: str = "default"
    galaxy_file: str | None = None
    galaxy_command: str = "ansible-galaxy"
    roles_path: str | None = None
    collections_path: str | None = None
    galaxy_force_install: bool = False
    #: ``--force-with-deps`` for ``ansible-galaxy``
    galaxy_force_with_deps: bool = False
    inventory_directory: str | None = None
    #: the user's own inventory, given to Ansible as is (none is written then)
    inventory_file: str | None = None
    keep_inventory_file: bool = False
    use_proxy: bool | None = None
    #: false (Packer's default): ``ANSIBLE_SCP_IF_SSH=True`` joins the environment.
    use_sftp: bool = False
    overrides: FrozenMap[str, AnsibleProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class PuppetMasterlessProvisioner(_ProvisionerCommon):
    """Packer's ``puppet-masterless``: upload the manifests and modules, ``puppet apply``."""

    type: Literal["puppet-masterless"] = "puppet-masterless"
    manifest_file: str
    manifest_dir: str | None = None
    module_paths: tuple[str, ...] = ()
    hiera_config_path: str | None = None
    facter: FrozenMap[str, str] = field(default_factory=FrozenMap)
    extra_arguments: tuple[str, ...] = ()
    execute_command: str | None = None
    ignore_exit_codes: bool = False
    prevent_sudo: bool = False
    puppet_bin_dir: str = ""
    staging_directory: str = "/tmp/packer-puppet-masterless"
    working_directory: str | None = None
    clean_staging_directory: bool = False
    overrides: FrozenMap[str, PuppetMasterlessProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class ChefSoloProvisioner(_ProvisionerCommon):
    """Packer's ``chef-solo``: upload cookbooks, write solo.rb and node.json, run chef-solo."""

    type: Literal["chef-solo"] = "chef-solo"
    cookbook_paths: tuple[str, ...] = ()
    remote_cookbook_paths: tuple[str, ...] = ()
    roles_path: str | None = None
    data_bags_path: str | None = None
    environments_path: str | None = None
    chef_environment: str | None = None
    chef_license: str | None = None
    #: ``json``, as JSON text (any JSON object)
    json: str = "{}"
    run_list: tuple[str, ...] = ()
    prevent_sudo: bool = False
    skip_install: bool = False
    install_command: str | None = None
    execute_command: str | None = None
    staging_directory: str = "/tmp/packer-chef-solo"
    version: str = ""
    overrides: FrozenMap[str, ChefSoloProvisioner] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class AnsibleLocalProvisioner(_ProvisionerCommon):
    """Packer's ``ansible-local``: upload the playbook, run ansible-playbook on the instance.

    Exactly one of ``playbook_file`` and ``playbook_files`` is set (the latter run in order).
    """

    type: Literal["ansible-local"] = "ansible-local"
    playbook_file: str = ""
    playbook_files: tuple[str, ...] = ()
    playbook_dir: str | None = None
    command: str = "ANSIBLE_FORCE_COLOR=1 PYTHONUNBUFFERED=1 ansible-playbook"
    extra_arguments: tuple[str, ...] = ()
    inventory_groups: tuple[str, ...] = ()
    inventory_file: str | None = None
    role_paths: tuple[str, ...] = ()
    #: local collection directories, uploaded to ``<staging>/collections``
    collection_paths: tuple[str, ...] = ()
    group_vars: str | None = None
    host_vars: str | None = None
    galaxy_file: str | None = None
    galaxy_command: str = "ansible-galaxy"
    #: ``-f`` for ``ansible-galaxy``
    galaxy_force_install: bool = False
    #: ``None``: /tmp/packer-provisioner-ansible-local/<random uuid>, as in Packer
    staging_directory: str | None = None
    clean_staging_directory: bool = False
    overrides: FrozenMap[str, AnsibleLocalProvisioner] = field(default_factory=FrozenMap)


Provisioner = (
    ShellProvisioner
    | FileProvisioner
    | ShellLocalProvisioner
    | BreakpointProvisioner
    | AnsibleProvisioner
    | PuppetMasterlessProvisioner
    | ChefSoloProvisioner
    | AnsibleLocalProvisioner
)


@dataclass(frozen=True, kw_only=True)
class ManifestPostProcessor(_Scoped):
    """Writes the artifacts of the build as Packer's ``manifest`` post-processor does."""

    type: Literal["manifest"] = "manifest"
    output: str = "packer-manifest.json"
    strip_path: bool = False
    strip_time: bool = False
    custom_data: FrozenMap[str, str] = field(default_factory=FrozenMap)


@dataclass(frozen=True, kw_only=True)
class ShellLocalPostProcessor(_Scoped, ShellLocalOptions):
    """Packer's ``shell-local`` post-processor: runs on the user's machine after the build."""

    type: Literal["shell-local"] = "shell-local"
    keep_input_artifact: bool | None = None


@dataclass(frozen=True, kw_only=True)
class AmiManagementPostProcessor(_Scoped):
    """``amazon-ami-management`` (wata727's plugin): in each region, keep the newest
    ``keep_releases`` (or those younger than ``keep_days``) of the AMIs carrying
    ``identifier`` in their ``Amazon_AMI_Management_Identifier`` tag, or else every one of
    ``tags`` (plugin 1.4); an AMI still in use is kept."""

    type: Literal["amazon-ami-management"] = "amazon-ami-management"
    identifier: str = ""
    tags: FrozenMap[str, str] = field(default_factory=FrozenMap)
    keep_releases: int | None = None
    keep_days: int | None = None
    regions: tuple[str, ...] = ()
    dry_run: bool = False
    #: a launch template version's ``resolve:ssm:`` image is resolved to the AMI it names
    resolve_aliases: bool = False
    tag_key: str = "Amazon_AMI_Management_Identifier"

    def tag_filters(self) -> list[dict[str, Any]]:
        """The DescribeImages filters that find the managed AMIs (``identifier`` first)."""
        if self.identifier:
            return [{"Name": f"tag:{self.tag_key}", "Values": [self.identifier]}]
        return [{"Name": f"tag:{k}", "Values": [v]} for k, v in self.tags.items()]


PostProcessor = ManifestPostProcessor | ShellLocalPostProcessor | AmiManagementPostProcessor


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
    post_processors: tuple[PostProcessor, ...] = ()
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
        return tuple(
            p.overrides.get(builder.name, p)  # Packer's per-builder `override`
            for p in self.provisioners
            if p.applies_to(builder)
        )
