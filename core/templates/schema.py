"""Resolved nodes -> model objects, with AWS validation and Packer-option checks."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as _dt
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar, cast

from amibake.core.model import (
    ENV_VAR_FILE_EXECUTE_COMMAND,
    AccessConfig,
    AmazonEbsBuilder,
    AmiManagementPostProcessor,
    AnsibleLocalProvisioner,
    AnsibleProvisioner,
    AssumeRole,
    AwsPolling,
    BlockDeviceMapping,
    BreakpointProvisioner,
    ChefSoloProvisioner,
    DeregistrationProtection,
    FileProvisioner,
    FrozenMap,
    ManifestPostProcessor,
    MetadataOptions,
    NetworkFilter,
    Placement,
    PolicyDocument,
    PolicyStatement,
    PostProcessor,
    Provisioner,
    PuppetMasterlessProvisioner,
    ShellLocalPostProcessor,
    ShellLocalProvisioner,
    ShellProvisioner,
    SourceAmiFilter,
    SshBastion,
    SshProxy,
)
from amibake.core.owners import EC2_OWNER_ALIASES, OWNER_NAMES
from amibake.core.regions import ALL_REGIONS, is_known_region
from amibake.core.templates.errors import Loc, Problems, join_path, suggest
from amibake.core.templates.evaluate import EvalError
from amibake.core.templates.gotemplate import (
    BUILD_INFO_FIELDS,
    BUILD_TEMPLATE_BLOCKS,
    BUILD_TEMPLATE_OPTIONS,
    GoTemplateError,
    parse_go_template,
)
from amibake.core.templates.nodes import BadNode, Expr, ListNode, Lit, MapNode, Node, Scalar

T = TypeVar("T")

#: Owner names resolved to account ids, and the aliases DescribeImages takes as they are
#: (Packer passes `owners` through): both from core/owners.py, their one home.
OWNER_ALIASES = OWNER_NAMES

#: Every option of Packer's amazon-ebs builder (packer-plugin-amazon builder/ebs Config:
#: AccessConfig, AMIConfig, RunConfig, the SSH/WinRM communicator and the ebs options).
#: Those amibake does not decode yet are reported as "not supported yet"; any other key
#: is unknown, with a "did you mean" taken from this list.
# fmt: off
AMAZON_EBS_OPTIONS = (
    "access_key", "ami_block_device_mappings", "ami_description", "ami_groups", "ami_name",
    "ami_org_arns", "ami_ou_arns", "ami_product_codes", "ami_regions", "ami_users",
    "ami_virtualization_type", "associate_public_ip_address", "assume_role", "availability_zone",
    "aws_polling", "block_duration_minutes", "capacity_reservation_group_arn",
    "capacity_reservation_id", "capacity_reservation_preference", "communicator",
    "custom_endpoint_ec2", "decode_authorization_messages", "deprecate_at",
    "deregistration_protection", "disable_stop_instance", "ebs_optimized", "ena_support",
    "enable_nitro_enclave", "enable_t2_unlimited", "enable_unlimited_credits", "encrypt_boot",
    "fast_launch", "fleet_tag", "fleet_tags", "force_delete_snapshot", "force_deregister",
    "iam_instance_profile", "imds_support", "insecure_skip_tls_verify", "instance_type",
    "kms_key_id", "launch_block_device_mappings", "license_specifications", "max_retries",
    "metadata_options", "mfa_code", "no_ephemeral", "pause_before_connecting", "pause_before_ssm",
    "placement", "profile", "region", "region_kms_key_ids", "run_tag", "run_tags", "run_volume_tag",
    "run_volume_tags", "secret_key", "security_group_filter", "security_group_id",
    "security_group_ids", "session_manager_port", "shared_credentials_file", "shutdown_behavior",
    "skip_ami_run_tags", "skip_create_ami", "skip_credential_validation", "skip_metadata_api_check",
    "skip_profile_validation", "skip_region_validation", "skip_save_build_region",
    "snapshot_copy_duration_minutes", "snapshot_groups", "snapshot_tag", "snapshot_tags",
    "snapshot_users", "source_ami", "source_ami_filter", "spot_allocation_strategy",
    "spot_instance_types", "spot_price", "spot_price_auto_product", "spot_tag", "spot_tags",
    "sriov_support", "ssh_agent_auth", "ssh_bastion_agent_auth", "ssh_bastion_certificate_file",
    "ssh_bastion_host", "ssh_bastion_interactive", "ssh_bastion_password", "ssh_bastion_port",
    "ssh_bastion_private_key_file", "ssh_bastion_username", "ssh_certificate_file", "ssh_ciphers",
    "ssh_clear_authorized_keys", "ssh_disable_agent_forwarding", "ssh_file_transfer_method",
    "ssh_handshake_attempts", "ssh_host", "ssh_interface", "ssh_keep_alive_interval",
    "ssh_key_exchange_algorithms", "ssh_keypair_name", "ssh_local_tunnels", "ssh_password",
    "ssh_port", "ssh_private_key", "ssh_private_key_file", "ssh_proxy_host", "ssh_proxy_password",
    "ssh_proxy_port", "ssh_proxy_username", "ssh_pty", "ssh_public_key", "ssh_read_write_timeout",
    "ssh_remote_tunnels", "ssh_timeout", "ssh_username", "ssh_wait_timeout", "subnet_filter",
    "subnet_id", "tag", "tags", "temporary_iam_instance_profile_policy_document",
    "temporary_key_pair_bits", "temporary_key_pair_name", "temporary_key_pair_type",
    "temporary_security_group_source_cidrs", "temporary_security_group_source_public_ip", "tenancy",
    "token", "user_data", "user_data_file", "vault_aws_engine", "vpc_filter", "vpc_id",
    "windows_password_timeout", "winrm_host", "winrm_insecure", "winrm_no_proxy", "winrm_password",
    "winrm_port", "winrm_timeout", "winrm_use_ntlm", "winrm_use_ssl", "winrm_username",
)
# fmt: on

#: Access options amibake does not carry out: the reason shown with them.
CREDENTIAL_OPTIONS = ("vault_aws_engine",)
# Packer amazon-ebs options amibake does not implement (yet): the reason shown with them.
UNSUPPORTED_BUILDER_OPTIONS: dict[str, str] = dict.fromkeys(AMAZON_EBS_OPTIONS, "")
UNSUPPORTED_BUILDER_OPTIONS.update(
    dict.fromkeys(
        CREDENTIAL_OPTIONS,
        "amibake has no HashiCorp Vault client: use profile, access_key/secret_key or assume_role",
    )
)
# Options of the supported provisioners that amibake does not carry out (yet).
UNSUPPORTED_SHELL_OPTIONS = ("execute_command_file",)
UNSUPPORTED_FILE_OPTIONS: tuple[str, ...] = ()
UNSUPPORTED_SHELL_LOCAL_OPTIONS = ("tempfile_extension",)
UNSUPPORTED_ANSIBLE_OPTIONS = (
    "ansible_ssh_extra_args",
    "local_port",
    "sftp_command",
    "skip_version_check",
    "ssh_authorized_key_file",
    "ssh_host_key_file",
    "ansible_winrm_use_http",
    "use_proxy_with_ssh_agent",
    "adapter_ready_timeout",
    # the key type of Packer's SSH proxy: amibake has no proxy (see `use_proxy`)
    "ansible_proxy_key_type",
    "inventory_file_template",
)
# elevated_*: Windows guests only
UNSUPPORTED_PUPPET_OPTIONS = ("guest_os_type", "elevated_user", "elevated_password")
UNSUPPORTED_CHEF_SOLO_OPTIONS = (
    "config_template",
    "encrypted_data_bag_secret_path",
    "guest_os_type",
    "policy_group",
    "policy_name",
)
UNSUPPORTED_ANSIBLE_LOCAL_OPTIONS = (
    "playbook_paths",
    "galaxy_roles_path",
    "galaxy_collections_path",
)
PROVISIONER_TYPES = (
    "shell",
    "file",
    "shell-local",
    "breakpoint",
    "ansible",
    "ansible-local",
    "chef-solo",
    "puppet-masterless",
)
UNSUPPORTED_PROVISIONERS = (
    "powershell",
    "windows-shell",
    "windows-restart",
    "chef-client",
    "puppet-server",
    "salt-masterless",
    "inspec",
    "converge",
)
POST_PROCESSOR_TYPES = ("manifest", "shell-local", "amazon-ami-management")

AMI_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")
INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9-]+$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_MISSING = object()

#: What a required builder string holds when its value comes from a data source that
#: shape-only validation did not evaluate (``BuildSpec.unresolved`` lists those keys).
UNRESOLVED = "<unresolved>"


def _is_unknown(value: Any) -> bool:
    """Is ``value`` the evaluator's UNKNOWN (an output of a data source not evaluated)?"""
    from amibake.core.templates.evaluate import UNKNOWN

    return value is UNKNOWN


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64): decimal, 0x hex, 0o/0 octal, 0b binary, _ separators."""
    try:
        value = int(text, 0) if not re.fullmatch(r"[-+]?0\d+", text) else int(text, 8)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def parse_duration(text: str) -> float | None:
    """Go duration (``5m``, ``1h30m``, ``250ms``) in seconds; a bare number is seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or not re.fullmatch(r"(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+", text):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(text))


def _describe(node: Node) -> str:
    if isinstance(node, ListNode):
        return "a list"
    if isinstance(node, MapNode):
        return "an object"
    if isinstance(node, Scalar):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "a bool"
        if isinstance(value, int | float):
            return f"the number {value}"
        return f"`{value}`"
    return "an invalid value"


#: Options Packer renamed, and what ``packer fix`` writes instead (packer's fix/ package):
#: Packer rejects the old names ("Deprecated configuration key ... call `packer fix`").
#: (``ssh_wait_timeout`` and ``spot_price_auto_product`` are still read, as the SDK does.)
DEPRECATED_OPTIONS = {
    "ssh_private_ip": '`ssh_interface = "private_ip"`',
    "enhanced_networking": "`ena_support`",
    "shutdown_behaviour": "`shutdown_behavior`",
    "temporary_security_group_source_cidr": "`temporary_security_group_source_cidrs`",
    "ssh_disable_agent": "`ssh_disable_agent_forwarding`",
    "ssh_key_path": "`ssh_private_key_file`",
    "galaxycommand": "`galaxy_command`",
}


#: strconv.ParseBool's spellings of true and false, as mapstructure's weakly typed decoding
#: reads a string given for a boolean option.
GO_TRUE = ("true", "True", "TRUE", "t", "T", "1")
GO_FALSE = ("false", "False", "FALSE", "f", "F", "0")


def is_true(node: Node | None) -> bool:
    """A literal true (``true`` or one of :data:`GO_TRUE`), before the option is read."""
    return isinstance(node, Scalar) and (node.value is True or node.value in GO_TRUE)


class Reader:
    """Reads one object: typed getters record the keys they know; ``finish`` flags the rest."""

    def __init__(
        self,
        node: MapNode,
        path: str,
        problems: Problems,
        unsupported: dict[str, str] | None = None,
        deprecated: dict[str, str] | None = None,
    ) -> None:
        self.node = node
        self.path = path
        self.problems = problems
        self.known: set[str] = set()
        self.unsupported = unsupported or {}
        self.deprecated = DEPRECATED_OPTIONS if deprecated is None else deprecated
        #: keys given a value not known yet (shape-only validation): never checked or missing
        self.unknown: set[str] = set()

    def at(self, key: str) -> str:
        return join_path(self.path, key)

    def raw(self, key: str) -> Node | None:
        self.known.add(key)
        node = self.node.entries.get(key)
        if isinstance(node, Scalar) and node.value is None:
            return None  # null means "not set", as in Packer
        if isinstance(node, Scalar) and _is_unknown(node.value):
            self.unknown.add(key)
            return None  # given, but known only once data sources run
        return node

    def bad(self, node: Node, key: str, expected: str) -> None:
        if not isinstance(node, BadNode):
            self.problems.add(node.loc, self.at(key), f"expected {expected}, got {_describe(node)}")

    def missing(self, key: str) -> None:
        if key in self.unknown:
            return
        self.problems.add(self.node.loc, self.at(key), f"`{key}` is required")

    def loc(self, key: str) -> Loc:
        node = self.node.entries.get(key)
        return node.loc if node is not None else self.node.loc

    # The getters are named after the types they read (r.str, r.int, r.bool): inside this class
    # those names are the methods, so annotations spell the builtins as builtins.str etc.
    def str(
        self,
        key: builtins.str,
        *,
        required: builtins.bool = False,
        choices: Iterable[builtins.str] = (),
    ) -> builtins.str | None:
        node = self.raw(key)
        if node is None:
            if required:
                self.missing(key)
            return None
        value = self._scalar_str(node, key)
        if value is None:
            return None
        if not value and not required:
            return None  # Packer: an empty string is the unset zero value
        options = tuple(choices)
        if options and value not in options:
            self.problems.add(
                node.loc,
                self.at(key),
                f"expected one of {', '.join(options)}, got `{value}`{suggest(value, options)}",
            )
            return None
        if required and not value:
            self.problems.add(node.loc, self.at(key), "must not be empty")
            return None
        if not value:
            return None  # Packer: an empty string is the unset zero value
        return value

    def _scalar_str(self, node: Node, key: builtins.str) -> builtins.str | None:
        if isinstance(node, Scalar) and _is_unknown(node.value):
            return None  # an item known only once data sources run
        if isinstance(node, Scalar):
            value = node.value
            if isinstance(value, str):
                return value
            if isinstance(value, bool):
                return "true" if value else "false"  # HCL2's conversion (cty)
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            if isinstance(value, int | float):
                return str(value)
        self.bad(node, key, "a string")
        return None

    def int(
        self,
        key: builtins.str,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int | None:
        node = self.raw(key)
        if node is None:
            return None
        value: builtins.int | None = None
        if isinstance(node, Scalar):
            v = node.value
            if isinstance(v, int) and not isinstance(v, bool):
                value = v
            elif isinstance(v, float) and v.is_integer():
                value = int(v)
            elif isinstance(v, str):
                if v == "":
                    return None  # mapstructure's weak decoding: "" is 0, the unset value
                value = _go_int(v)
        if value is None:
            self.bad(node, key, "a whole number")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            rng = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.problems.add(node.loc, self.at(key), f"expected a number {rng}, got {value}")
            return None
        return value

    def bool(self, key: builtins.str) -> builtins.bool | None:
        node = self.raw(key)
        if node is None:
            return None
        if isinstance(node, Scalar):
            v = node.value
            if isinstance(v, bool):
                return v
            if isinstance(v, str):
                if v in GO_TRUE:
                    return True
                if v in GO_FALSE:
                    return False
                if v == "":
                    return None  # "" is false there, and unset for Packer's trileans
            if isinstance(v, int | float) and not isinstance(v, bool):
                return v != 0
        self.bad(node, key, "true or false")
        return None

    def duration(self, key: builtins.str) -> float | None:
        node = self.raw(key)
        if node is None:
            return None
        if isinstance(node, Scalar):
            v = node.value
            if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
                return float(v)
            if isinstance(v, str):
                if v == "":
                    return None  # unset
                seconds = parse_duration(v)
                if seconds is not None:
                    return seconds
        self.bad(node, key, 'a duration such as "30s", "5m" or "1h30m"')
        return None

    def str_list(self, key: builtins.str) -> tuple[builtins.str, ...] | None:
        node = self.raw(key)
        if node is None:
            return None
        if isinstance(node, MapNode):
            self.bad(node, key, "a list of strings")
            return None
        if isinstance(node, Scalar) and isinstance(node.value, str):
            # mapstructure's StringToSliceHookFunc(","): "a,b" is [a, b], "" is []
            if not node.value:
                return ()
            return tuple(node.value.split(","))
        items = node.items if isinstance(node, ListNode) else [node]
        out: list[builtins.str] = []
        for i, item in enumerate(items):
            value = self._scalar_str(item, f"{key}[{i}]" if isinstance(node, ListNode) else key)
            if value is not None:
                out.append(value)
        return tuple(out)

    def str_map(self, key: builtins.str) -> FrozenMap[builtins.str, builtins.str] | None:
        node = self.raw(key)
        if node is None:
            return None
        if (
            isinstance(node, ListNode)
            and len(node.items) == 1
            and isinstance(node.items[0], MapNode)
        ):
            node = node.items[0]  # written as a block
        if not isinstance(node, MapNode):
            self.bad(node, key, "an object of strings")
            return None
        out: dict[builtins.str, builtins.str] = {}
        for k, item in node.entries.items():
            value = self._scalar_str(item, f"{key}.{k}")
            if value is not None:
                out[k] = value
        return FrozenMap(out)

    def block(self, key: builtins.str, decode: Callable[[Reader], T]) -> T | None:
        node = self.raw(key)
        if node is None:
            return None
        if isinstance(node, ListNode) and len(node.items) == 1:
            node = node.items[0]
        if not isinstance(node, MapNode):
            self.bad(node, key, "a single block/object")
            return None
        reader = Reader(node, self.at(key), self.problems)
        result = decode(reader)
        reader.finish()
        return result

    def blocks(self, key: builtins.str, decode: Callable[[Reader], T | None]) -> tuple[T, ...]:
        node = self.raw(key)
        if node is None:
            return ()
        items = node.items if isinstance(node, ListNode) else [node]
        out: list[T] = []
        for i, item in enumerate(items):
            if not isinstance(item, MapNode):
                self.bad(item, f"{key}[{i}]", "an object")
                continue
            reader = Reader(item, f"{self.at(key)}[{i}]", self.problems)
            result = decode(reader)
            reader.finish()
            if result is not None:
                out.append(result)
        return tuple(out)

    def finish(self) -> None:
        for key in self.node.entries:
            if key in self.known:
                continue
            loc = self.node.key_loc(key)
            if key in self.unsupported:
                reason = self.unsupported[key]
                self.problems.add(
                    loc,
                    self.at(key),
                    f"`{key}` is not supported yet by amibake" + (f" ({reason})" if reason else ""),
                )
            elif key in self.deprecated:
                self.problems.add(
                    loc,
                    self.at(key),
                    f"deprecated configuration key `{key}`: Packer now reads "
                    f"{self.deprecated[key]} instead (what `packer fix` writes)",
                )
            elif key.startswith("_"):
                # Packer reads `_` keys as comments only at the top level of a template
                self.problems.add(
                    loc,
                    self.at(key),
                    f"unknown configuration key `{key}` (`_` comments are allowed only at the "
                    "top level of a template)",
                )
            else:
                names = {*self.known, *self.unsupported}
                self.problems.add(loc, self.at(key), f"unknown option `{key}`{suggest(key, names)}")


def kwargs(**values: Any) -> dict[str, Any]:
    """Drop unset values so the dataclass defaults apply."""
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- builder


def _owner(value: str, loc: Loc, path: str, problems: Problems) -> str | None:
    lowered = value.strip().lower()
    if lowered in OWNER_ALIASES:
        return OWNER_ALIASES[lowered]
    if lowered in EC2_OWNER_ALIASES:
        return lowered
    if ACCOUNT_RE.match(value):
        return value
    hint = suggest(lowered, (*OWNER_ALIASES, *EC2_OWNER_ALIASES))
    problems.add(
        loc,
        path,
        f"`{value}` is not an owner: expected a 12-digit account ID or one of "
        f"{', '.join((*EC2_OWNER_ALIASES, *OWNER_ALIASES))}{hint}",
    )
    return None


def _source_ami_filter(r: Reader) -> SourceAmiFilter | None:
    filters = r.str_map("filters")
    owners_raw = r.str_list("owners")
    owners_node = r.node.entries.get("owners")
    owners = []
    for i, owner in enumerate(owners_raw or ()):
        loc = owners_node.items[i].loc if isinstance(owners_node, ListNode) else r.loc("owners")
        resolved = _owner(owner, loc, r.at(f"owners[{i}]"), r.problems)
        if resolved is not None:
            owners.append(resolved)
    if isinstance(owners_node, BadNode) or (
        isinstance(owners_node, ListNode) and any(isinstance(i, BadNode) for i in owners_node.items)
    ):
        pass  # already reported
    elif owners_raw is not None and not owners_raw:
        r.problems.add(
            r.loc("owners"), r.at("owners"), "at least one owner is required with a filter"
        )
    elif owners_raw is None and "owners" not in r.node.entries:
        r.problems.add(
            r.node.loc,
            r.at("owners"),
            "`owners` is required with a filter (account IDs or aliases)",
        )
    for name, value in (filters or {}).items():
        if not name or not value:
            r.problems.add(
                r.loc("filters"),
                r.at(f"filters.{name}"),
                "filter names and values must not be empty",
            )
    return SourceAmiFilter(
        **kwargs(
            filters=filters,
            owners=tuple(dict.fromkeys(owners)),
            most_recent=r.bool("most_recent"),
            include_deprecated=r.bool("include_deprecated"),
        )
    )


#: Packer's BlockDevice limits (builder/common/block_device.go).
_IOPS_RANGE = (100, 64000)
_IOPS_RANGE_GP3 = (3000, 16000)
_THROUGHPUT_RANGE = (125, 1000)
_IOPS_RATIOS = {"io1": 50, "io2": 500}


def _block_device(r: Reader) -> BlockDeviceMapping | None:
    """One block device mapping, validated as Packer's ``BlockDevice.Prepare``."""
    device = r.str("device_name", required=True)
    volume_size = r.int("volume_size", minimum=1, maximum=65536)
    volume_type = r.str(
        "volume_type", choices=("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
    )
    iops = r.int("iops", minimum=1)
    throughput = r.int("throughput", minimum=1)
    encrypted = r.bool("encrypted")
    kms_key_id = r.str("kms_key_id")
    name = device or "?"
    if kms_key_id is not None and encrypted is False:
        r.problems.add(
            r.loc("kms_key_id"),
            r.at("kms_key_id"),
            f"the device {name} must also have `encrypted = true` when setting a kms_key_id",
        )
    ratio = _IOPS_RATIOS.get(volume_type or "")
    if ratio is not None and volume_size and iops is not None:
        if iops // volume_size > ratio:
            r.problems.add(
                r.loc("iops"),
                r.at("iops"),
                f"{name}: the maximum ratio of provisioned IOPS to requested volume size "
                f"(in GiB) is {ratio}:1 for {volume_type} volumes",
            )
        elif not _IOPS_RANGE[0] <= iops <= _IOPS_RANGE[1]:
            r.problems.add(
                r.loc("iops"),
                r.at("iops"),
                f"IOPS must be between {_IOPS_RANGE[0]} and {_IOPS_RANGE[1]} for device {name}",
            )
    if volume_type == "gp3":
        low, high = _THROUGHPUT_RANGE
        if throughput is not None and not low <= throughput <= high:
            r.problems.add(
                r.loc("throughput"),
                r.at("throughput"),
                f"throughput must be between {_THROUGHPUT_RANGE[0]} and {_THROUGHPUT_RANGE[1]} "
                f"for device {name}",
            )
        if iops is not None and not _IOPS_RANGE_GP3[0] <= iops <= _IOPS_RANGE_GP3[1]:
            r.problems.add(
                r.loc("iops"),
                r.at("iops"),
                f"IOPS must be between {_IOPS_RANGE_GP3[0]} and {_IOPS_RANGE_GP3[1]} "
                f"for device {name}",
            )
    elif throughput is not None:
        r.problems.add(
            r.loc("throughput"),
            r.at("throughput"),
            f"throughput is only valid for gp3 volumes, {name} is of type {volume_type or 'unset'}",
        )
    result = BlockDeviceMapping(
        **kwargs(
            device_name=device or "",
            volume_size=volume_size,
            volume_type=volume_type,
            iops=iops,
            throughput=throughput,
            delete_on_termination=r.bool("delete_on_termination"),
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            snapshot_id=r.str("snapshot_id"),
            no_device=r.bool("no_device"),
            virtual_name=r.str("virtual_name"),
        )
    )
    return result if device else None


def _aws_polling(r: Reader) -> AwsPolling:
    return AwsPolling(
        delay_seconds=r.int("delay_seconds", minimum=1),
        max_attempts=r.int("max_attempts", minimum=1),
    )


def _account_ids(r: Reader, key: str) -> tuple[str, ...] | None:
    """``ami_users`` / ``snapshot_users``: 12-digit account ids."""
    users = r.str_list(key)
    for user in users or ():
        if not ACCOUNT_RE.match(user):
            r.problems.add(r.loc(key), r.at(key), f"`{user}` is not a 12-digit AWS account ID")
    return users


def _groups(r: Reader, key: str, what: str) -> tuple[str, ...] | None:
    """``ami_groups`` / ``snapshot_groups``: EC2 has one group, ``all``."""
    groups = r.str_list(key)
    for group in groups or ():
        if group != "all":
            r.problems.add(
                r.loc(key), r.at(key), f"the only {what} group is `all`, got `{group}`"
            )
    return groups


def _check_tags(r: Reader, key: str, tags: FrozenMap[str, str] | None) -> None:
    if not tags:
        return
    loc = r.loc(key)
    if len(tags) > 50:
        r.problems.add(loc, r.at(key), f"AWS allows at most 50 tags, got {len(tags)}")
    for k, v in tags.items():
        path = r.at(f"{key}.{k}")
        node = r.node.entries.get(key)
        where = node.key_loc(k) if isinstance(node, MapNode) and k in node.entries else loc
        if not 1 <= len(k) <= 128:
            r.problems.add(where, path, f"tag keys must be 1-128 characters, got {len(k)}")
        elif k.lower().startswith("aws:"):
            r.problems.add(where, path, "tag keys starting with `aws:` are reserved by AWS")
        if len(v) > 256:
            r.problems.add(where, path, f"tag values must be at most 256 characters, got {len(v)}")


def _check_region(r: Reader, key: str, value: str | None, index: int | None = None) -> None:
    """An AWS region amibake knows, unless ``skip_region_validation`` (then, as in Packer,
    nothing checks it: a region newer than amibake's list, a partition of its own)."""
    if is_true(r.node.entries.get("skip_region_validation")):
        return
    if value is None or is_known_region(value):
        return
    node = r.node.entries.get(key)
    loc = node.items[index].loc if index is not None and isinstance(node, ListNode) else r.loc(key)
    path = r.at(key if index is None else f"{key}[{index}]")
    r.problems.add(loc, path, f"unknown AWS region `{value}`{suggest(value, ALL_REGIONS)}")


def _check_prefixed(r: Reader, key: str, value: str | None, prefix: str) -> None:
    """A warning for an ID of another form: Packer does not check it (EC2 answers at run time)."""
    if value is not None and not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
        r.problems.warn(
            r.loc(key),
            r.at(key),
            f"`{value}` does not look like an ID of the form `{prefix}-0123456789abcdef0`",
        )


_FIELD_ACTION = re.compile(r"\{\{-?\s*(?:index\s+)?\.([A-Za-z_][A-Za-z0-9_]*)[^}]*?-?\}\}")


def _render_builder_templates(
    body: MapNode, path: str, problems: Problems, render: Callable[[Expr], Any] | None
) -> None:
    """Go-template text in the builder's strings, as Packer's builder interpolates it itself.

    Packer renders every builder option at load except the ones it renders at run time with
    build template data (``ami_description``, ``tags``, ``run_tags``, ``snapshot_tags``). The
    load-time functions (``{{timestamp}}``...) are rendered here for both formats (an HCL
    string still holds them after HCL evaluation); the field actions (``{{ .SourceAMI }}``)
    stay in the run-time options for the engine, and are an error anywhere else.
    """
    for key, node in list(body.entries.items()):
        body.entries[key] = _render_node(
            node,
            join_path(path, key),
            key in BUILD_TEMPLATE_OPTIONS or key in BUILD_TEMPLATE_BLOCKS,
            key,
            problems,
            render,
        )


def _render_node(
    node: Node,
    path: str,
    run_time: bool,
    option: str,
    problems: Problems,
    render: Callable[[Expr], Any] | None,
) -> Node:
    if isinstance(node, MapNode):
        for key, child in list(node.entries.items()):
            node.entries[key] = _render_node(
                child, join_path(path, key), run_time, option, problems, render
            )
        return node
    if isinstance(node, ListNode):
        node.items = [
            _render_node(item, f"{path}[{i}]", run_time, option, problems, render)
            for i, item in enumerate(node.items)
        ]
        return node
    if not (isinstance(node, Scalar) and isinstance(node.value, str) and "{{" in node.value):
        return node
    text = node.value
    for match in _FIELD_ACTION.finditer(text):
        # In the run-time options, a field Packer's build data lacks fails when the build
        # renders it (as in Packer, whose validate does not see it either).
        if not run_time and match.group(1) in BUILD_INFO_FIELDS:
            problems.add(
                node.loc,
                path,
                f"`{match.group(0)}` is known only once the build runs: Packer fills in build "
                f"template data in {', '.join(BUILD_TEMPLATE_OPTIONS)}, not in `{option}`",
            )
            return BadNode(node.loc)
    try:
        expr = parse_go_template(text, node.loc)
    except GoTemplateError as error:
        problems.add(node.loc, path, error.message)
        return BadNode(node.loc)
    if isinstance(expr, Lit) or render is None:
        return node
    try:
        value = render(expr)
    except EvalError as error:
        problems.add(error.loc, path, error.message)
        return BadNode(node.loc)
    return Scalar(str(value), node.loc)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_KMS_ID = r"[a-f0-9]+[a-f0-9-]+$"
_KMS_MRK = r"mrk-[a-f0-9]+[a-f0-9-]+$"
_KMS_ALIAS = r"alias/[a-zA-Z0-9:/_-]+$"
_KMS_ARN = r"^arn:aws(-[a-z]{2}(-gov)?)?:kms:([a-z]{2}-(gov-)?[a-z]+-\d{1})?:(\d{12}):"


def valid_kms_key(key: str) -> bool:
    """A key id, multi-region key id, alias or their ARNs, as Packer's ValidateKmsKey."""
    return any(
        re.match(pattern, key)
        for pattern in (
            "^" + _KMS_ID,
            "^" + _KMS_MRK,
            "^" + _KMS_ALIAS,
            _KMS_ARN + "key/" + _KMS_ID,
            _KMS_ARN + "key/" + _KMS_MRK,
            _KMS_ARN + _KMS_ALIAS,
        )
    )


def _deregistration_protection(r: Reader) -> DeregistrationProtection:
    enabled = r.bool("enabled")
    with_cooldown = bool(r.bool("with_cooldown"))
    # Packer: with_cooldown implies enabled
    return DeregistrationProtection(
        enabled=bool(enabled) or with_cooldown, with_cooldown=with_cooldown
    )


def _ami_options(r: Reader, problems: Problems) -> dict[str, Any]:
    """The AMI group of issue 12, validated as Packer's AMIConfig.Prepare and builder Prepare."""
    # Options decode_builder reads itself, peeked at quietly (their problems are reported there).
    peek = Reader(r.node, r.path, Problems())
    encrypt_boot = peek.bool("encrypt_boot") is True
    kms_key_id = peek.str("kms_key_id")
    ami_regions = peek.str_list("ami_regions") or ()
    shares_ami = bool(peek.str_list("ami_users"))

    ena_support = r.bool("ena_support")
    sriov_support = r.bool("sriov_support")
    spot = bool(peek.str("spot_price")) or bool(peek.str_list("spot_instance_types"))
    if spot and (ena_support is True or sriov_support):
        key = "ena_support" if ena_support is True else "sriov_support"
        problems.add(
            r.loc(key),
            r.at(key),
            "spot instances do not support modification, which is required when either "
            "`ena_support` or `sriov_support` are set; use an AMI that already has SR-IOV or "
            "ENA enabled",
        )
    snapshot_users = _account_ids(r, "snapshot_users")
    snapshot_groups = _groups(r, "snapshot_groups", "snapshot")
    deprecate_at = r.str("deprecate_at")
    if deprecate_at is not None:
        valid = bool(_RFC3339.fullmatch(deprecate_at))
        if valid:
            try:
                _dt.datetime.fromisoformat(deprecate_at.replace("Z", "+00:00"))
            except ValueError:
                valid = False
        if not valid:
            problems.add(
                r.loc("deprecate_at"),
                r.at("deprecate_at"),
                f"deprecate_at is not a valid time: `{deprecate_at}`; expected the format "
                "YYYY-MM-DDTHH:MM:SSZ",
            )
            deprecate_at = None
    org_arns = r.str_list("ami_org_arns")
    ou_arns = r.str_list("ami_ou_arns")
    shares_ami = shares_ami or bool(org_arns) or bool(ou_arns)
    region_keys = r.str_map("region_kms_key_ids")
    keys_loc, keys_path = r.loc("region_kms_key_ids"), r.at("region_kms_key_ids")
    if region_keys:
        for region in region_keys:
            if region not in ami_regions:
                problems.add(
                    keys_loc,
                    join_path(keys_path, region),
                    f"region {region} is in region_kms_key_ids but not in ami_regions",
                )
        for region in dict.fromkeys(ami_regions):
            if region not in region_keys:
                problems.add(
                    r.loc("ami_regions"),
                    r.at("ami_regions"),
                    f"region {region} is in ami_regions but not in region_kms_key_ids",
                )
    if shares_ami and encrypt_boot and kms_key_id is None and not region_keys:
        key = next(k for k in ("ami_users", "ami_org_arns", "ami_ou_arns") if k in r.node.entries)
        problems.add(
            r.loc(key),
            r.at(key),
            "cannot share an AMI encrypted with the default KMS key: set `kms_key_id` "
            "(or `region_kms_key_ids`) to a customer-managed key",
        )
    if snapshot_users and encrypt_boot and kms_key_id is None and not region_keys:
        problems.add(
            r.loc("snapshot_users"),
            r.at("snapshot_users"),
            "cannot share a snapshot encrypted with the default KMS key: set `kms_key_id` "
            "(or `region_kms_key_ids`) to a customer-managed key",
        )
    if region_keys and any(not v for v in region_keys.values()):
        if shares_ami:
            problems.add(
                keys_loc,
                keys_path,
                "cannot share an AMI encrypted with the default KMS key for other regions",
            )
        if snapshot_users:
            problems.add(
                keys_loc, keys_path, "cannot share a snapshot encrypted with the default KMS key"
            )
    if region_keys and any(region_keys.values()) and not encrypt_boot:
        problems.add(
            keys_loc,
            keys_path,
            "if you set either region_kms_key_ids or kms_key_id, encrypt_boot must also be true",
        )
    for where, path, key in (
        *((keys_loc, join_path(keys_path, k), v) for k, v in (region_keys or {}).items() if v),
        *(((r.loc("kms_key_id"), r.at("kms_key_id"), kms_key_id),) if kms_key_id else ()),
    ):
        if not valid_kms_key(key):
            problems.add(
                where, path, f"`{key}` is not a valid KMS key id (an id, `alias/...` or an ARN)"
            )
    skip_save_build_region = r.bool("skip_save_build_region")
    if skip_save_build_region and not [x for x in ami_regions if x != peek.str("region")]:
        problems.warn(
            r.loc("skip_save_build_region"),
            r.at("skip_save_build_region"),
            "with skip_save_build_region and no other region in ami_regions, no AMI is kept",
        )
    imds_support = r.str("imds_support")
    if imds_support is not None and imds_support != "v2.0":
        problems.add(
            r.loc("imds_support"),
            r.at("imds_support"),
            'the only valid imds_support values are "v2.0" or the empty string, '
            f"got `{imds_support}`",
        )
        imds_support = None
    copy_minutes = r.int("snapshot_copy_duration_minutes", minimum=0)
    if copy_minutes == 0:
        copy_minutes = None  # Packer: 0 is a best-effort copy
    if copy_minutes is not None and (copy_minutes < 15 or copy_minutes % 15):
        problems.add(
            r.loc("snapshot_copy_duration_minutes"),
            r.at("snapshot_copy_duration_minutes"),
            "expected a completion duration in 15 minute increments (15, 30, ...), "
            f"got {copy_minutes}",
        )
    return kwargs(
        ami_block_device_mappings=r.blocks("ami_block_device_mappings", _block_device),
        ena_support=ena_support,
        sriov_support=sriov_support,
        snapshot_users=snapshot_users,
        snapshot_groups=snapshot_groups,
        deprecate_at=deprecate_at,
        ami_org_arns=org_arns,
        ami_ou_arns=ou_arns,
        region_kms_key_ids=region_keys,
        skip_save_build_region=skip_save_build_region,
        imds_support=imds_support,
        deregistration_protection=r.block("deregistration_protection", _deregistration_protection),
        ami_virtualization_type=r.str("ami_virtualization_type", choices=("hvm", "paravirtual")),
        ami_product_codes=r.str_list("ami_product_codes"),
        snapshot_copy_duration_minutes=copy_minutes,
    )


# --------------------------------------------------------------------------- run options (issue 12)

#: Packer's IsBurstableInstanceType (run_config.go): T2, T3, T3a and T4g take CPU credits.
BURSTABLE_RE = re.compile(r"^t(2|3a?|4g)\.")


def _metadata_options(r: Reader) -> MetadataOptions:
    return MetadataOptions(
        **kwargs(
            http_endpoint=r.str("http_endpoint", choices=("enabled", "disabled")),
            http_tokens=r.str("http_tokens", choices=("optional", "required")),
            http_put_response_hop_limit=r.int(
                "http_put_response_hop_limit", minimum=1, maximum=64
            ),
            instance_metadata_tags=r.str("instance_metadata_tags", choices=("enabled", "disabled")),
        )
    )


Tenancy = Literal["default", "dedicated", "host"]
_TENANCIES: tuple[Tenancy, ...] = ("default", "dedicated", "host")


def _placement(r: Reader) -> Placement:
    values = kwargs(
        host_resource_group_arn=r.str("host_resource_group_arn"),
        host_id=r.str("host_id"),
        tenancy=r.str("tenancy", choices=_TENANCIES),
    )
    if "host_id" in values and "host_resource_group_arn" in values:
        r.problems.add(
            r.loc("host_id"),
            r.at("host_id"),
            "`host_id` and `host_resource_group_arn` cannot be specified at the same time",
        )
    if ("host_id" in values or "host_resource_group_arn" in values) and values.get(
        "tenancy", "host"
    ) != "host":
        r.problems.add(
            r.loc("tenancy"),
            r.at("tenancy"),
            "the tenancy must be `host` with `host_id` or `host_resource_group_arn`",
        )
    return Placement(**values)


def _statement(r: Reader) -> PolicyStatement:
    return PolicyStatement(
        **kwargs(
            effect=r.str("Effect"),
            action=r.str_list("Action"),
            resource=r.str_list("Resource"),
        )
    )


def _policy_document(r: Reader) -> PolicyDocument:
    return PolicyDocument(
        **kwargs(version=r.str("Version"), statements=r.blocks("Statement", _statement))
    )


def _license_request(r: Reader) -> str | None:
    return r.str("license_configuration_arn", required=True)


def _license(r: Reader) -> str | None:
    return r.block("license_configuration_request", _license_request)


def _run_options(r: Reader, problems: Problems) -> dict[str, Any]:
    """The run options of issue 12, with Packer's validation (builder/common/run_config.go)."""
    communicator = r.str("communicator", choices=("ssh", "winrm", "none"))
    if communicator == "winrm":
        problems.add(
            r.loc("communicator"),
            r.at("communicator"),
            "`communicator = \"winrm\"` is not supported yet by amibake (ssh and none are)",
        )
        communicator = None
    instance_type = _scalar_text(r, "instance_type")
    unlimited = r.bool("enable_unlimited_credits")
    t2_unlimited = r.bool("enable_t2_unlimited")
    if unlimited or t2_unlimited:
        key = "enable_unlimited_credits" if unlimited else "enable_t2_unlimited"
        if instance_type is not None and not BURSTABLE_RE.match(instance_type):
            problems.add(
                r.loc(key),
                r.at(key),
                f"instance type `{instance_type}` does not take unlimited credits "
                "(T2, T3, T3a and T4g do)",
            )
    enclave = r.bool("enable_nitro_enclave")
    if enclave and instance_type is not None and instance_type.startswith("t"):
        problems.add(
            r.loc("enable_nitro_enclave"),
            r.at("enable_nitro_enclave"),
            f"Nitro Enclaves cannot be used with burstable instance types (`{instance_type}`)",
        )
    reservation_id = r.str("capacity_reservation_id")
    reservation_group = r.str("capacity_reservation_group_arn")
    preference = r.str("capacity_reservation_preference", choices=("none", "open"))
    if reservation_id and reservation_group:
        problems.add(
            r.loc("capacity_reservation_group_arn"),
            r.at("capacity_reservation_group_arn"),
            "`capacity_reservation_id` and `capacity_reservation_group_arn` are mutually "
            "exclusive",
        )
    if (reservation_id or reservation_group) and preference:
        problems.add(
            r.loc("capacity_reservation_preference"),
            r.at("capacity_reservation_preference"),
            "`capacity_reservation_preference` cannot be set with a capacity reservation "
            "id or group",
        )
    placement = r.block("placement", _placement)
    tenancy = r.str("tenancy", choices=_TENANCIES)
    if tenancy is not None:
        if placement is not None and placement.tenancy is not None:
            problems.add(
                r.loc("tenancy"),
                r.at("tenancy"),
                "set only one of `placement.tenancy` and `tenancy` (deprecated)",
            )
        else:
            placement = Placement(
                host_resource_group_arn=placement.host_resource_group_arn if placement else None,
                host_id=placement.host_id if placement else None,
                tenancy=cast(Tenancy, tenancy),  # one of _TENANCIES: r.str checked the choices
            )
    run_volume_tags = _tag_map(r, "run_volume_tag", "name")
    security_group_id = r.str("security_group_id")
    if security_group_id is not None and "security_group_ids" in r.node.entries:
        problems.add(
            r.loc("security_group_id"),
            r.at("security_group_id"),
            "set only one of `security_group_id` and `security_group_ids`",
        )
    elif security_group_id is not None and not re.fullmatch(
        r"sg-[0-9a-f]{8,17}", security_group_id
    ):
        problems.warn(  # Packer does not check the form; AWS will answer
            r.loc("security_group_id"),
            r.at("security_group_id"),
            f"expected an ID like `sg-0123456789abcdef0`, got `{security_group_id}`",
        )
    licenses = tuple(
        arn for arn in r.blocks("license_specifications", _license) if arn is not None
    )
    return kwargs(
        communicator=communicator,
        availability_zone=r.str("availability_zone"),
        ebs_optimized=r.bool("ebs_optimized"),
        metadata_options=r.block("metadata_options", _metadata_options),
        placement=placement,
        run_volume_tags=run_volume_tags,
        temporary_iam_instance_profile_policy_document=r.block(
            "temporary_iam_instance_profile_policy_document", _policy_document
        ),
        skip_profile_validation=r.bool("skip_profile_validation"),
        no_ephemeral=r.bool("no_ephemeral"),
        enable_unlimited_credits=bool(unlimited or t2_unlimited) or None,
        capacity_reservation_preference=preference,
        capacity_reservation_id=reservation_id,
        capacity_reservation_group_arn=reservation_group,
        license_specifications=licenses or None,
        enable_nitro_enclave=enclave,
        temporary_security_group_source_public_ip=r.bool(
            "temporary_security_group_source_public_ip"
        ),
        _security_group_id=security_group_id,
    ) | _spot_and_network_options(
        r, problems, instance_type, bool(unlimited or t2_unlimited), enclave
    )


#: EC2's SpotAllocationStrategy values (the SDK's list Packer checks against)
SPOT_ALLOCATION_STRATEGIES = (
    "lowest-price",
    "diversified",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "price-capacity-optimized",
)
_SPOT_PRICE_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


def _tag_map(r: Reader, key: str, field: str = "key") -> FrozenMap[str, str] | None:
    """``spot_tags`` with its singular repeatable block ``spot_tag { key, value }`` (Packer's
    KeyValues.CopyOn: the blocks add to the map, in order, and a block's value wins over the
    map's for the same key). ``run_volume_tag`` names its key ``name`` (config.NameValues)."""
    found = r.str_map(f"{key}s")  # null (an unset variable) is not set
    tags = dict(found or {})
    given = found is not None

    def key_value(b: Reader) -> tuple[str, str] | None:
        name, value = b.str(field, required=True), b.str("value")
        return None if name is None else (name, value or "")

    blocks = r.blocks(key, key_value)
    for name, value in blocks:
        tags[name] = value
    if not tags and not given and not blocks:
        return None
    result = FrozenMap(tags)
    _check_tags(r, f"{key}s" if f"{key}s" in r.node.entries else key, result)
    return result


def _network_filter(r: Reader, *, choose: bool) -> NetworkFilter:
    filters = r.str_map("filters")
    for name, value in (filters or {}).items():
        if not name or not value:
            r.problems.add(
                r.loc("filters"),
                r.at(f"filters.{name}"),
                "filter names and values must not be empty",
            )
    values: dict[str, Any] = kwargs(filters=filters)
    if choose:
        values |= kwargs(most_free=r.bool("most_free"), random=r.bool("random"))
    return NetworkFilter(**values)


def _filter_block(r: Reader, key: str, *, choose: bool = False) -> NetworkFilter | None:
    """A filter block; an empty one (no filters) is unset, as Packer's Empty() says."""
    found = r.block(key, lambda b: _network_filter(b, choose=choose))
    return found if found is not None and found.filters else None


def _spot_and_network_options(
    r: Reader,
    problems: Problems,
    instance_type: str | None,
    unlimited: bool,
    enclave: bool | None,
) -> dict[str, Any]:
    """Spot (step_run_spot_instance.go), network filters (step_network_info.go) and
    ``disable_stop_instance``, validated as Packer's RunConfig.Prepare does."""
    price = r.str("spot_price")
    if price is not None and price != "auto" and not _SPOT_PRICE_RE.fullmatch(price):
        problems.add(
            r.loc("spot_price"),
            r.at("spot_price"),
            f'expected "auto" or a maximum hourly price such as "0.05", got `{price}`',
        )
        price = None
    # Packer's IsSpotInstance: "" and "0" mean on demand
    spot = price is not None and price != "0"
    types = r.str_list("spot_instance_types")
    for name in types or ():
        if not INSTANCE_TYPE_RE.match(name):
            problems.add(
                r.loc("spot_instance_types"),
                r.at("spot_instance_types"),
                f"`{name}` is not an EC2 instance type (expected family.size, e.g. t3.micro)",
            )
    if types and instance_type is not None:
        problems.add(
            r.loc("spot_instance_types"),
            r.at("spot_instance_types"),
            "either `instance_type` or `spot_instance_types` must be specified, not both",
        )
    elif types and not spot:
        # Packer would launch on demand with no instance type at all
        problems.add(
            r.loc("spot_instance_types"),
            r.at("spot_instance_types"),
            '`spot_instance_types` needs `spot_price` ("auto" or a maximum price)',
        )
    spot_tags = _tag_map(r, "spot_tag")
    fleet_tags = _tag_map(r, "fleet_tag")
    for key, tags in (("spot_tags", spot_tags), ("fleet_tags", fleet_tags)):
        if tags is not None and not spot:
            where = key if key in r.node.entries else key[:-1]
            problems.add(
                r.loc(where),
                r.at(where),
                f"`{key}` should not be set when not requesting a spot instance "
                "(set `spot_price`)",
            )
    strategy = r.str("spot_allocation_strategy", choices=SPOT_ALLOCATION_STRATEGIES)
    product = r.str("spot_price_auto_product")
    if product is not None:
        problems.warn(
            r.loc("spot_price_auto_product"),
            r.at("spot_price_auto_product"),
            "`spot_price_auto_product` is deprecated and no longer necessary (Packer ignores it)",
        )
    duration = r.int("block_duration_minutes", minimum=0)
    if duration is not None and duration % 60:
        problems.add(
            r.loc("block_duration_minutes"),
            r.at("block_duration_minutes"),
            f"`block_duration_minutes` must be a multiple of 60, got {duration}",
        )
        duration = None
    if unlimited and price is not None and instance_type and instance_type.startswith("t2."):
        key = "enable_unlimited_credits" if "enable_unlimited_credits" in r.node.entries else (
            "enable_t2_unlimited"
        )
        problems.add(
            r.loc(key), r.at(key), "unlimited credits cannot be used with spot instances (T2)"
        )
    if enclave and price is not None:
        problems.add(
            r.loc("enable_nitro_enclave"),
            r.at("enable_nitro_enclave"),
            "Nitro Enclaves cannot be used with spot instances (`spot_price`)",
        )
    return kwargs(
        spot_price=price if spot else None,
        spot_instance_types=types or None,
        spot_tags=spot_tags,
        fleet_tags=fleet_tags,
        spot_allocation_strategy=strategy,
        spot_price_auto_product=product,
        block_duration_minutes=duration or None,
        vpc_filter=_filter_block(r, "vpc_filter"),
        subnet_filter=_filter_block(r, "subnet_filter", choose=True),
        security_group_filter=_filter_block(r, "security_group_filter"),
        disable_stop_instance=r.bool("disable_stop_instance"),
    )


def _scalar_text(r: Reader, key: str) -> str | None:
    """A string option's text without reading it (another part of the decoder reads it)."""
    node = r.node.entries.get(key)
    if isinstance(node, Scalar) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def _finish_run_options(values: dict[str, Any]) -> None:
    """Fold what Packer folds: ``security_group_id`` into ``security_group_ids``; no SSH user
    with ``communicator = "none"``."""
    if values.get("spot_instance_types") and "instance_type" not in values:
        values["instance_type"] = ""  # the fleet chooses among spot_instance_types
    security_group_id = values.pop("_security_group_id", None)
    if security_group_id is not None and "security_group_ids" not in values:
        values["security_group_ids"] = (security_group_id,)
    if values.get("communicator") == "none":
        values.setdefault("ssh_username", "")


#: ``ssh_*`` options Packer has only for its own use (the generated key pair it passes along).
_INTERNAL_SSH_OPTIONS = {
    "ssh_private_key": "Packer's internal copy of the key: use `ssh_private_key_file`",
    "ssh_public_key": "Packer's internal copy of the key: use `ssh_private_key_file`",
}
_TUNNEL_RE = re.compile(r"(?P<listen>[^:]*):(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>[^:]*)")


def _signed_duration(r: Reader, key: str) -> float | None:
    """A duration where a negative value means "off" (``ssh_keep_alive_interval = "-1s"``)."""
    node = r.node.entries.get(key)
    if isinstance(node, Scalar) and isinstance(node.value, str) and node.value.startswith("-"):
        r.known.add(key)
        if parse_duration(node.value[1:]) is None:
            r.bad(node, key, 'a duration such as "10s" (negative: disabled)')
            return None
        return 0.0
    if isinstance(node, Scalar) and isinstance(node.value, int | float) and node.value < 0:
        r.known.add(key)
        return 0.0
    return r.duration(key)


def _tunnels(r: Reader, key: str) -> tuple[str, ...] | None:
    """``port:host:hostport`` entries, checked as Packer's ParseTunnelArgument does."""
    values = r.str_list(key)
    for value in values or ():
        match = _TUNNEL_RE.fullmatch(value)
        ok = match is not None and all(
            match[p].isdigit() and 0 <= int(match[p]) <= 65535 for p in ("listen", "port")
        )
        if not ok:
            r.problems.add(
                r.loc(key),
                r.at(key),
                f"`{value}` is not a tunnel: expected `port:host:hostport` "
                "(e.g. `8080:localhost:80`)",
            )
    return values


def _algorithms(r: Reader, key: str, supported: Iterable[bytes]) -> tuple[str, ...] | None:
    values = r.str_list(key)
    names = [a.decode() for a in supported]
    for value in values or ():
        if value not in names:
            r.problems.add(
                r.loc(key),
                r.at(key),
                f"`{value}` is not supported yet by amibake's SSH client{suggest(value, names)}",
            )
    return values


def _ssh_options(r: Reader, problems: Problems) -> dict[str, Any]:
    """The SSH communicator's options (Packer's communicator.SSH config), issue 12."""
    from asyncssh.encryption import get_encryption_algs
    from asyncssh.kex import get_kex_algs

    r.unsupported = {**r.unsupported, **_INTERNAL_SSH_OPTIONS}
    entries = r.node.entries

    def given(key: str) -> bool:
        node = entries.get(key)
        return node is not None and not (isinstance(node, Scalar) and node.value in (None, ""))

    interface = r.str(
        "ssh_interface",
        choices=("public_ip", "private_ip", "public_dns", "private_dns", "ipv6", "session_manager"),
    )
    if interface == "session_manager" and not (
        given("iam_instance_profile") or given("temporary_iam_instance_profile_policy_document")
    ):
        problems.add(
            r.loc("ssh_interface"),
            r.at("ssh_interface"),
            "`session_manager` needs `iam_instance_profile` (with AmazonSSMManagedInstanceCore) "
            "or `temporary_iam_instance_profile_policy_document`",
        )
    timeout = r.duration("ssh_timeout")
    wait_timeout = r.duration("ssh_wait_timeout")  # Packer's older name; it wins when set
    attempts = r.int("ssh_handshake_attempts", minimum=0)
    private_key_file = entries.get("ssh_private_key_file")
    key_file = private_key_file.value if isinstance(private_key_file, Scalar) else None
    certificate = r.str("ssh_certificate_file")
    if certificate is not None and not given("ssh_private_key_file"):
        problems.add(
            r.loc("ssh_certificate_file"),
            r.at("ssh_certificate_file"),
            "`ssh_private_key_file` must be specified if `ssh_certificate_file` is specified",
        )
    bastion = None
    bastion_host = r.str("ssh_bastion_host")
    bastion_values = kwargs(
        port=r.int("ssh_bastion_port", minimum=1, maximum=65535),
        username=r.str("ssh_bastion_username"),
        password=r.str("ssh_bastion_password"),
        private_key_file=r.str("ssh_bastion_private_key_file"),
        certificate_file=r.str("ssh_bastion_certificate_file"),
        agent_auth=r.bool("ssh_bastion_agent_auth"),
        interactive=r.bool("ssh_bastion_interactive"),
    )
    if "certificate_file" in bastion_values and "private_key_file" not in bastion_values:
        problems.add(
            r.loc("ssh_bastion_certificate_file"),
            r.at("ssh_bastion_certificate_file"),
            "`ssh_bastion_private_key_file` must be specified if "
            "`ssh_bastion_certificate_file` is specified",
        )
    if bastion_host is not None:
        if "private_key_file" not in bastion_values and isinstance(key_file, str) and key_file:
            # Packer: the bastion uses the instance's key (and certificate) unless told otherwise
            bastion_values["private_key_file"] = key_file
            if certificate is not None:
                bastion_values["certificate_file"] = certificate
        if not (
            bastion_values.get("password")
            or bastion_values.get("private_key_file")
            or bastion_values.get("agent_auth")
        ):
            problems.add(
                r.loc("ssh_bastion_host"),
                r.at("ssh_bastion_host"),
                "`ssh_bastion_password`, `ssh_bastion_private_key_file` or "
                "`ssh_bastion_agent_auth` must be specified",
            )
        bastion = SshBastion(host=bastion_host, **bastion_values)
    proxy = None
    proxy_host = r.str("ssh_proxy_host")
    proxy_values = kwargs(
        port=r.int("ssh_proxy_port", minimum=1, maximum=65535),
        username=r.str("ssh_proxy_username"),
        password=r.str("ssh_proxy_password"),
    )
    if proxy_host is not None:
        proxy = SshProxy(host=proxy_host, **proxy_values)
    if bastion_host is not None and proxy_host is not None:
        problems.add(
            r.loc("ssh_proxy_host"),
            r.at("ssh_proxy_host"),
            "please specify either `ssh_bastion_host` or `ssh_proxy_host`, not both",
        )
    return kwargs(
        ssh_interface=interface,
        ssh_timeout=wait_timeout if wait_timeout is not None else timeout,
        ssh_handshake_attempts=attempts or None,
        ssh_agent_auth=r.bool("ssh_agent_auth"),
        ssh_pty=r.bool("ssh_pty"),
        ssh_password=r.str("ssh_password"),
        ssh_clear_authorized_keys=r.bool("ssh_clear_authorized_keys"),
        pause_before_connecting=r.duration("pause_before_connecting"),
        ssh_keep_alive_interval=_signed_duration(r, "ssh_keep_alive_interval"),
        ssh_read_write_timeout=r.duration("ssh_read_write_timeout") or None,
        temporary_key_pair_name=r.str("temporary_key_pair_name"),
        ssh_certificate_file=certificate,
        ssh_ciphers=_algorithms(r, "ssh_ciphers", get_encryption_algs()),
        ssh_key_exchange_algorithms=_algorithms(r, "ssh_key_exchange_algorithms", get_kex_algs()),
        ssh_file_transfer_method=r.str("ssh_file_transfer_method", choices=("scp", "sftp")),
        ssh_bastion=bastion,
        ssh_proxy=proxy,
        ssh_local_tunnels=_tunnels(r, "ssh_local_tunnels"),
        ssh_remote_tunnels=_tunnels(r, "ssh_remote_tunnels"),
        ssh_disable_agent_forwarding=r.bool("ssh_disable_agent_forwarding"),
        pause_before_ssm=r.duration("pause_before_ssm"),
        session_manager_port=r.int("session_manager_port", minimum=0, maximum=65535) or None,
    )


#: STS's RoleSessionName: 2-64 of these characters.
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


def _assume_role(r: Reader) -> AssumeRole | None:
    role_arn = r.str("role_arn")
    session_name = r.str("session_name")
    if session_name is not None and not _SESSION_NAME_RE.match(session_name):
        r.problems.add(
            r.loc("session_name"),
            r.at("session_name"),
            "a role session name is 2-64 letters, digits and + = , . @ _ -",
        )
    policy = r.str("policy")
    if policy is not None:
        import json

        try:
            json.loads(policy)
        except ValueError:
            r.problems.add(r.loc("policy"), r.at("policy"), "expected an IAM policy (JSON text)")
    tags = r.str_map("tags")
    _check_tags(r, "tags", tags)
    values = kwargs(
        session_name=session_name,
        external_id=r.str("external_id"),
        # AssumeRole's DurationSeconds: 15 minutes to 12 hours
        duration_seconds=r.int("duration_seconds", minimum=900, maximum=43200),
        policy=policy,
        policy_arns=r.str_list("policy_arns"),
        tags=tags,
        transitive_tag_keys=r.str_list("transitive_tag_keys"),
    )
    if role_arn is None:
        if "role_arn" not in r.unknown:
            r.problems.warn(
                r.node.loc, r.at("role_arn"), "`assume_role` without `role_arn` does nothing"
            )
        return None
    return AssumeRole(role_arn=role_arn, **values)


def decode_access(r: Reader) -> AccessConfig:
    """Packer's AccessConfig (builders and amazon-* data sources): profile, keys, role..."""
    access_key = r.str("access_key")
    secret_key = r.str("secret_key")
    if (access_key is None) != (secret_key is None):
        given = "access_key" if access_key is not None else "secret_key"
        if not {"access_key", "secret_key"} & r.unknown:
            r.problems.add(
                r.loc(given),
                r.at(given),
                "`access_key` and `secret_key` must both be either set or not set",
            )
    token = r.str("token")
    if token is not None and access_key is None and "access_key" not in r.unknown:
        r.problems.warn(
            r.loc("token"), r.at("token"), "`token` is used only with `access_key` and `secret_key`"
        )
    endpoint = r.str("custom_endpoint_ec2")
    if endpoint is not None:
        from urllib.parse import urlsplit

        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # a bad port raises
        except ValueError:
            ok = False
        if not ok:
            r.problems.add(
                r.loc("custom_endpoint_ec2"),
                r.at("custom_endpoint_ec2"),
                f"expected an endpoint URL such as https://ec2.example.com, got `{endpoint}`",
            )
            endpoint = None
    max_retries = r.int("max_retries", minimum=0)
    return AccessConfig(
        **kwargs(
            profile=r.str("profile"),
            access_key=access_key,
            secret_key=secret_key,
            token=token,
            shared_credentials_file=r.str("shared_credentials_file"),
            assume_role=r.block("assume_role", _assume_role),
            mfa_code=r.str("mfa_code"),
            custom_endpoint_ec2=endpoint,
            skip_credential_validation=r.bool("skip_credential_validation"),
            skip_metadata_api_check=r.bool("skip_metadata_api_check"),
            # Packer: 0 (unset) means its default
            max_retries=max_retries or None,
            insecure_skip_tls_verify=r.bool("insecure_skip_tls_verify"),
            decode_authorization_messages=r.bool("decode_authorization_messages"),
        )
    )


def _access_options(r: Reader, problems: Problems) -> dict[str, Any]:
    """The builder's access options (issue 12); see amibake.core.engine.access for their effect."""
    access = decode_access(r)
    return kwargs(
        access=None if access.is_default else access,
        skip_region_validation=r.bool("skip_region_validation"),
    )


def decode_builder(
    section_type: str,
    name: str,
    body: MapNode,
    path: str,
    problems: Problems,
    render: Callable[[Expr], Any] | None = None,
) -> AmazonEbsBuilder | None:
    """``render`` evaluates the load-time Go-template functions in the builder's strings."""
    _render_builder_templates(body, path, problems, render)
    r = Reader(body, path, problems, UNSUPPORTED_BUILDER_OPTIONS)
    # the seed's flattened filter keys are folded into source_ami_filter by normalize()
    region = r.str("region", required=True)
    _check_region(r, "region", region)
    source_ami = r.str("source_ami")
    _check_prefixed(r, "source_ami", source_ami, "ami")
    source_filter = r.block("source_ami_filter", _source_ami_filter)

    def given(key: str) -> bool:
        node = body.entries.get(key)
        # Packer: "" is the unset zero value ("A source_ami or source_ami_filter must be ...")
        return node is not None and not (isinstance(node, Scalar) and node.value in (None, ""))

    if (
        source_ami is None
        and source_filter is None
        and not given("source_ami")
        and not given("source_ami_filter")
    ):
        problems.add(
            body.loc, r.at("source_ami"), "`source_ami` or `source_ami_filter` is required"
        )
    # both together are legal: one DescribeImages with the id and the filter (the id
    # must match the filter), as Packer's step_source_ami_info does
    # Packer: "either instance_type or spot_instance_types must be specified".
    instance_type = r.str("instance_type", required="spot_instance_types" not in body.entries)
    if instance_type and not INSTANCE_TYPE_RE.match(instance_type):
        problems.add(
            r.loc("instance_type"),
            r.at("instance_type"),
            f"`{instance_type}` is not an EC2 instance type (expected family.size, e.g. t3.micro)",
        )
    communicator = body.entries.get("communicator")
    # Packer needs ssh_username only for the SSH communicator (winrm/none: "not supported yet")
    ssh_needed = not (isinstance(communicator, Scalar) and communicator.value in ("winrm", "none"))
    ssh_username = r.str("ssh_username", required=ssh_needed)
    ami_name = r.str("ami_name", required=True)
    if ami_name is not None and not AMI_NAME_RE.match(ami_name):
        bad = sorted(set(re.sub(r"[A-Za-z0-9()\[\] ./\-'@_]", "", ami_name)))
        detail = (
            f"found {' '.join(f'`{c}`' for c in bad)}; use clean_resource_name"
            if bad
            else (f"it has {len(ami_name)} characters")
        )
        problems.add(
            r.loc("ami_name"),
            r.at("ami_name"),
            "AMI names must be 3-128 characters of letters, digits, spaces and ( ) [ ] . / - ' @ _ "
            f"({detail})",
        )
    ami_regions = r.str_list("ami_regions")
    for i, region_name in enumerate(ami_regions or ()):
        _check_region(r, "ami_regions", region_name, i)
    cidrs = r.str_list("temporary_security_group_source_cidrs")
    for cidr in cidrs or ():
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.add(
                r.loc("temporary_security_group_source_cidrs"),
                r.at("temporary_security_group_source_cidrs"),
                f"`{cidr}` is not a CIDR block",
            )
    sg_ids = r.str_list("security_group_ids")
    for sg in sg_ids or ():
        if not re.fullmatch(r"sg-[0-9a-f]{8,17}", sg):
            problems.warn(  # Packer does not check the form; AWS will answer
                r.loc("security_group_ids"),
                r.at("security_group_ids"),
                f"expected an ID like `sg-0123456789abcdef0`, got `{sg}`",
            )
    subnet_id = r.str("subnet_id")
    _check_prefixed(r, "subnet_id", subnet_id, "subnet")
    vpc_id = r.str("vpc_id")
    _check_prefixed(r, "vpc_id", vpc_id, "vpc")
    public_ip = r.node.entries.get("associate_public_ip_address")
    if (
        vpc_id
        and not subnet_id
        and r.node.entries.get("subnet_filter") is None
        and (public_ip is None or (isinstance(public_ip, Scalar) and public_ip.value is None))
    ):
        # Packer documents vpc_id as "Requires subnet_id" but launches anyway, into the
        # default VPC's subnet, where the group made in vpc_id cannot go (issue 10); with
        # associate_public_ip_address set it picks a subnet of vpc_id (NetworkInfoStep)
        problems.add(
            r.loc("vpc_id"),
            r.at("vpc_id"),
            "`vpc_id` needs `subnet_id` or `subnet_filter` (the instance would launch in the "
            "default VPC, away from the security group made in `vpc_id`)",
        )
    user_data = r.str("user_data")
    user_data_file = r.str("user_data_file")
    if user_data is not None and user_data_file is not None:
        problems.add(
            r.loc("user_data_file"),
            r.at("user_data_file"),
            "set either `user_data` or `user_data_file`, not both",
        )
    ssh_keypair_name = r.str("ssh_keypair_name")
    ssh_private_key_file = r.str("ssh_private_key_file")
    if (
        ssh_keypair_name is not None
        and ssh_private_key_file is None
        and r.bool("ssh_agent_auth") is not True
    ):
        problems.add(
            r.loc("ssh_keypair_name"),
            r.at("ssh_private_key_file"),
            "`ssh_private_key_file` or `ssh_agent_auth` is required with `ssh_keypair_name`",
        )
    # each map with its singular repeatable block (`tag { key, value }`...)
    tags = _tag_map(r, "tag")
    run_tags = _tag_map(r, "run_tag")
    snapshot_tags = _tag_map(r, "snapshot_tag")
    ami_users = _account_ids(r, "ami_users")
    ami_groups = _groups(r, "ami_groups", "AMI")
    encrypt_boot = r.bool("encrypt_boot")
    kms_key_id = r.str("kms_key_id")
    if kms_key_id is not None and encrypt_boot is not True:
        problems.add(
            r.loc("kms_key_id"), r.at("kms_key_id"), "`kms_key_id` needs `encrypt_boot = true`"
        )
    values = kwargs(
        name=name,
        region=region,
        source_ami=source_ami,
        source_ami_filter=source_filter,
        instance_type=instance_type,
        ssh_username=ssh_username,
        ssh_port=r.int("ssh_port", minimum=1, maximum=65535),
        ssh_host=r.str("ssh_host"),
        ssh_keypair_name=ssh_keypair_name,
        ssh_private_key_file=ssh_private_key_file,
        temporary_key_pair_type=r.str("temporary_key_pair_type", choices=("rsa", "ed25519")),
        # Packer: RSA needs at least 1024 bits; ed25519 keys ignore it.
        temporary_key_pair_bits=r.int("temporary_key_pair_bits", minimum=1024, maximum=16384),
        temporary_security_group_source_cidrs=cidrs,
        security_group_ids=sg_ids,
        subnet_id=subnet_id,
        vpc_id=vpc_id,
        associate_public_ip_address=r.bool("associate_public_ip_address"),
        iam_instance_profile=r.str("iam_instance_profile"),
        user_data=user_data,
        user_data_file=user_data_file,
        launch_block_device_mappings=r.blocks("launch_block_device_mappings", _block_device),
        ami_name=ami_name,
        ami_description=r.str("ami_description"),
        tags=tags,
        run_tags=run_tags,
        snapshot_tags=snapshot_tags,
        ami_regions=ami_regions,
        ami_users=ami_users,
        ami_groups=ami_groups,
        encrypt_boot=encrypt_boot,
        kms_key_id=kms_key_id,
        force_deregister=r.bool("force_deregister"),
        force_delete_snapshot=r.bool("force_delete_snapshot"),
        skip_create_ami=r.bool("skip_create_ami"),
        skip_ami_run_tags=r.bool("skip_ami_run_tags"),
        shutdown_behavior=r.str("shutdown_behavior", choices=("stop", "terminate")),
        aws_polling=r.block("aws_polling", _aws_polling),
        **_run_options(r, problems),
        **_ami_options(r, problems),
        **_ssh_options(r, problems),
        **_access_options(r, problems),
    )
    _finish_run_options(values)
    r.finish()
    for key in ("region", "instance_type", "ssh_username", "ami_name", "source_ami"):
        # shape-only: a data source's output, see amibake.core.templates.datasources
        if key in r.unknown:
            values.setdefault(key, UNRESOLVED)
    if any(values.get(k) is None for k in ("region", "instance_type", "ssh_username", "ami_name")):
        return None
    if values.get("source_ami") is None and values.get("source_ami_filter") is None:
        return None
    return AmazonEbsBuilder(**values)


# --------------------------------------------------------------------------- provisioners


def _common(r: Reader) -> dict[str, Any]:
    only = r.str_list("only")
    except_ = r.str_list("except")
    return kwargs(
        only=only,
        except_=except_,
        pause_before=r.duration("pause_before"),
        max_retries=r.int("max_retries", minimum=0),
        timeout=r.duration("timeout"),
    )


def _int_list(r: Reader, key: str) -> tuple[int, ...] | None:
    """A list of whole numbers (``valid_exit_codes``)."""
    node = r.raw(key)
    if node is None:
        return None
    items = node.items if isinstance(node, ListNode) else [node]
    out = []
    for i, item in enumerate(items):
        value = item.value if isinstance(item, Scalar) else None
        if isinstance(value, str):
            value = _go_int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            r.bad(item, f"{key}[{i}]", "a whole number")
            continue
        out.append(value)
    return tuple(out)


def _env_vars(r: Reader, key: str = "environment_vars") -> tuple[str, ...] | None:
    env_vars = r.str_list(key)
    for var in env_vars or ():
        if "=" not in var or var.startswith("="):
            r.problems.add(r.loc(key), r.at(key), f"expected KEY=value, got `{var}`")
    return env_vars


def _is_null(node: Node) -> bool:
    return isinstance(node, Scalar) and node.value is None


def _shell(r: Reader, body: MapNode, path: str) -> ShellProvisioner | None:
    inline = r.str_list("inline")
    script = r.str("script")
    scripts = r.str_list("scripts")
    choices = (("inline", inline), ("script", script), ("scripts", scripts))
    given = [k for k, v in choices if v is not None]
    use_env_var_file = r.bool("use_env_var_file")
    remote_folder = r.str("remote_folder")
    remote_file = r.str("remote_file")
    values = kwargs(
        inline=inline,
        script=script,
        scripts=scripts,
        environment_vars=_env_vars(r),
        env=r.str_map("env"),
        env_var_format=r.str("env_var_format"),
        use_env_var_file=use_env_var_file,
        execute_command=r.str("execute_command"),
        expect_disconnect=r.bool("expect_disconnect"),
        valid_exit_codes=_int_list(r, "valid_exit_codes"),
        remote_folder=remote_folder,
        remote_file=remote_file,
        remote_path=r.str("remote_path"),
        skip_clean=r.bool("skip_clean"),
        inline_shebang=r.str("inline_shebang"),
        start_retry_timeout=r.duration("start_retry_timeout"),
        pause_after=r.duration("pause_after"),
        binary=r.bool("binary"),
        **_common(r),
    )
    if "execute_command" not in values and use_env_var_file:
        values["execute_command"] = ENV_VAR_FILE_EXECUTE_COMMAND
    if len(given) != 1:
        if not given and not any(k in body.entries for k in ("inline", "script", "scripts")):
            r.problems.add(
                body.loc, path, "a shell provisioner needs one of `inline`, `script` or `scripts`"
            )
        elif len(given) > 1:
            r.problems.add(
                body.loc,
                path,
                f"set only one of `inline`, `script`, `scripts` (got {', '.join(given)})",
            )
        return None
    return ShellProvisioner(**values)


def _file(r: Reader, body: MapNode, path: str) -> FileProvisioner | None:
    source = r.str("source")
    sources = r.str_list("sources")
    content_text = r.str("content")
    destination = r.str("destination", required=True)
    direction = r.str("direction", choices=("upload", "download"))
    all_sources = (*(sources or ()), *((source,) if source else ()))  # Packer appends `source`
    if all_sources and content_text:
        r.problems.add(body.loc, path, "`source`/`sources` conflicts with `content`")
        return None
    if not all_sources and content_text is None:
        if not {"source", "sources", "content"} & r.unknown:
            r.problems.add(
                body.loc, path, "a file provisioner needs `source`, `sources` or `content`"
            )
        return None
    if direction == "download" and content_text is not None:
        r.problems.add(body.loc, path, "`content` can only be uploaded")
        return None
    values = kwargs(
        source=source,
        sources=sources,
        content=content_text,
        destination=destination,
        direction=direction,
        generated=r.bool("generated"),
        **_common(r),
    )
    if destination is None:
        return None
    return FileProvisioner(**values)


def _execute_list(r: Reader, key: str) -> tuple[str, ...] | None:
    value = r.str_list(key)
    if value is not None and not value:
        r.problems.add(r.loc(key), r.at(key), "must not be empty")
        return None
    return value


def _shell_local_values(r: Reader, body: MapNode, path: str) -> dict[str, Any] | None:
    command = r.str("command")
    inline = r.str_list("inline")
    script = r.str("script")
    scripts = r.str_list("scripts")
    values = kwargs(
        command=command,
        inline=inline,
        script=script,
        scripts=scripts,
        environment_vars=_env_vars(r),
        env=r.str_map("env"),
        execute_command=_execute_list(r, "execute_command"),
        inline_shebang=r.str("inline_shebang"),
        valid_exit_codes=_int_list(r, "valid_exit_codes"),
        use_linux_pathing=r.bool("use_linux_pathing"),
        only_on=r.str_list("only_on"),
        env_var_format=r.str("env_var_format"),
    )
    choices = (("command", command), ("inline", inline), ("script", script), ("scripts", scripts))
    given = [k for k, v in choices if v is not None]
    if len(given) != 1:
        if len(given) > 1:
            r.problems.add(
                body.loc, path, f"set only one of `command`, `inline`, `script`, `scripts` "
                f"(got {', '.join(given)})"
            )
        elif not {"command", "inline", "script", "scripts"} & (set(body.entries) | r.unknown):
            r.problems.add(
                body.loc,
                path,
                "shell-local needs one of `command`, `inline`, `script` or `scripts`",
            )
        return None
    return values


def _ansible(r: Reader, body: MapNode, path: str) -> AnsibleProvisioner | None:
    playbook = r.str("playbook_file", required=True)
    use_proxy = r.bool("use_proxy")
    if use_proxy:
        r.problems.add(
            r.loc("use_proxy"),
            r.at("use_proxy"),
            "`use_proxy = true` is not supported yet by amibake (Ansible connects to the "
            "instance directly, as with `use_proxy = false`)",
        )
    values = kwargs(
        playbook_file=playbook,
        command=r.str("command"),
        extra_arguments=r.str_list("extra_arguments"),
        ansible_env_vars=_env_vars(r, "ansible_env_vars"),
        user=r.str("user"),
        groups=r.str_list("groups"),
        empty_groups=r.str_list("empty_groups"),
        host_alias=r.str("host_alias"),
        galaxy_file=r.str("galaxy_file"),
        galaxy_command=r.str("galaxy_command"),
        roles_path=r.str("roles_path"),
        collections_path=r.str("collections_path"),
        galaxy_force_install=r.bool("galaxy_force_install"),
        galaxy_force_with_deps=r.bool("galaxy_force_with_deps"),
        inventory_directory=r.str("inventory_directory"),
        inventory_file=r.str("inventory_file"),
        keep_inventory_file=r.bool("keep_inventory_file"),
        use_proxy=use_proxy,
        use_sftp=r.bool("use_sftp"),
        **_common(r),
    )
    if playbook is None:
        return None
    return AnsibleProvisioner(**values)


def check_ansible_login(
    provisioner: Provisioner | None,
    builders: Iterable[AmazonEbsBuilder],
    loc: Loc,
    path: str,
    problems: Problems,
) -> None:
    """An ``ansible`` provisioner for a builder that logs in without a key file (its
    ``ssh_password`` with no temporary key pair, or ``ssh_agent_auth``): one located line per
    login kind. Packer's adapter proxies those logins; amibake hands Ansible a key file."""
    if not isinstance(provisioner, AnsibleProvisioner):
        return
    keyless: dict[str, list[str]] = {}
    for builder in builders:
        if builder.ssh_private_key_file or not provisioner.applies_to(builder):
            continue
        if builder.ssh_agent_auth:
            keyless.setdefault("ssh_agent_auth", []).append(builder.name)
        elif builder.ssh_password and not builder.temporary_key_pair_name:
            keyless.setdefault("ssh_password", []).append(builder.name)
    for login, names in keyless.items():
        problems.add(
            loc,
            f"{path}.type",
            f"ansible with a builder that logs in with `{login}` "
            f"({', '.join(f'`{n}`' for n in names)}) is not supported yet by amibake "
            "(Ansible gets a key file: the temporary key pair or `ssh_private_key_file`)",
        )


def _decode_one(
    ptype: str, body: MapNode, path: str, problems: Problems
) -> Provisioner | None:
    """One provisioner of a supported type (``override`` already taken out of ``body``)."""
    if ptype == "shell":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_SHELL_OPTIONS, ""))
        result: Provisioner | None = _shell(r, body, path)
    elif ptype == "file":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_FILE_OPTIONS, ""))
        result = _file(r, body, path)
    elif ptype == "shell-local":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_SHELL_LOCAL_OPTIONS, ""))
        values = _shell_local_values(r, body, path)
        common = _common(r)
        result = ShellLocalProvisioner(**values, **common) if values is not None else None
    elif ptype == "breakpoint":
        r = Reader(body, path, problems)
        result = BreakpointProvisioner(
            **kwargs(note=r.str("note"), disable=r.bool("disable"), **_common(r))
        )
    elif ptype == "ansible":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_ANSIBLE_OPTIONS, ""))
        result = _ansible(r, body, path)
    elif ptype == "puppet-masterless":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_PUPPET_OPTIONS, ""))
        result = _puppet(r)
    elif ptype == "chef-solo":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_CHEF_SOLO_OPTIONS, ""))
        result = _chef_solo(r)
    else:
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_ANSIBLE_LOCAL_OPTIONS, ""))
        result = _ansible_local(r, body, path)
    r.finish()
    return result


def _plain(r: Reader, node: Node, key: str) -> Any:
    """A node as plain JSON-able Python (chef-solo's free-form ``json``)."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, ListNode):
        return [_plain(r, item, f"{key}[{i}]") for i, item in enumerate(node.items)]
    if isinstance(node, MapNode):
        return {k: _plain(r, v, f"{key}.{k}") for k, v in node.entries.items()}
    r.bad(node, key, "a JSON value")
    return None


def _puppet(r: Reader) -> PuppetMasterlessProvisioner | None:
    manifest = r.str("manifest_file", required=True)
    values = kwargs(
        manifest_file=manifest,
        manifest_dir=r.str("manifest_dir"),
        module_paths=r.str_list("module_paths"),
        hiera_config_path=r.str("hiera_config_path"),
        facter=r.str_map("facter"),
        extra_arguments=r.str_list("extra_arguments"),
        execute_command=r.str("execute_command"),
        ignore_exit_codes=r.bool("ignore_exit_codes"),
        prevent_sudo=r.bool("prevent_sudo"),
        puppet_bin_dir=r.str("puppet_bin_dir"),
        staging_directory=r.str("staging_directory"),
        working_directory=r.str("working_directory"),
        clean_staging_directory=r.bool("clean_staging_directory"),
        **_common(r),
    )
    return PuppetMasterlessProvisioner(**values) if manifest is not None else None


def _chef_solo(r: Reader) -> ChefSoloProvisioner:
    node = r.raw("json")
    data = _plain(r, node, "json") if node is not None else None
    if node is not None and data is not None and not isinstance(data, dict):
        r.bad(node, "json", "an object")
        data = None
    json_string = r.str("json_string")
    if json_string:  # Packer unmarshals it over `json`: its top-level keys win
        try:
            parsed = json.loads(json_string)
        except ValueError as error:
            parsed = error
        if isinstance(parsed, dict):
            data = {**(data or {}), **parsed}
        else:
            detail = f": {parsed}" if isinstance(parsed, ValueError) else ""
            r.problems.add(
                r.loc("json_string"),
                r.at("json_string"),
                f"`json_string` must be a JSON object{detail}",
            )
    values = kwargs(
        cookbook_paths=r.str_list("cookbook_paths"),
        remote_cookbook_paths=r.str_list("remote_cookbook_paths"),
        roles_path=r.str("roles_path"),
        data_bags_path=r.str("data_bags_path"),
        environments_path=r.str("environments_path"),
        chef_environment=r.str("chef_environment"),
        chef_license=r.str("chef_license"),
        json=json.dumps(data, sort_keys=True) if data is not None else None,
        run_list=r.str_list("run_list"),
        prevent_sudo=r.bool("prevent_sudo"),
        skip_install=r.bool("skip_install"),
        install_command=r.str("install_command"),
        execute_command=r.str("execute_command"),
        staging_directory=r.str("staging_directory"),
        version=r.str("version"),
        **_common(r),
    )
    return ChefSoloProvisioner(**values)


def _ansible_local(r: Reader, body: MapNode, path: str) -> AnsibleLocalProvisioner | None:
    playbook = r.str("playbook_file")
    playbooks = r.str_list("playbook_files")
    values = kwargs(
        playbook_file=playbook,
        playbook_files=playbooks,
        playbook_dir=r.str("playbook_dir"),
        command=r.str("command"),
        extra_arguments=r.str_list("extra_arguments"),
        inventory_groups=r.str_list("inventory_groups"),
        inventory_file=r.str("inventory_file"),
        role_paths=r.str_list("role_paths"),
        collection_paths=r.str_list("collection_paths"),
        group_vars=r.str("group_vars"),
        host_vars=r.str("host_vars"),
        galaxy_file=r.str("galaxy_file"),
        galaxy_command=r.str("galaxy_command"),
        galaxy_force_install=r.bool("galaxy_force_install"),
        staging_directory=r.str("staging_directory"),
        clean_staging_directory=r.bool("clean_staging_directory"),
        **_common(r),
    )
    # Packer: an empty `playbook_file` / `playbook_files` counts as not set
    if playbook and playbooks:
        r.problems.add(body.loc, path, "set only one of `playbook_file` and `playbook_files`")
        return None
    if not playbook and not playbooks:
        keys = ("playbook_file", "playbook_files")
        said = any(p.path.startswith(tuple(r.at(k) for k in keys)) for p in r.problems.items)
        if not said and not set(keys) & r.unknown:
            r.problems.add(
                body.loc,
                f"{path}.playbook_file",
                "`playbook_file` or `playbook_files` is required",
            )
        return None
    return AnsibleLocalProvisioner(**values)


#: Meta-arguments of an HCL2 provisioner block (Packer's hcl2template decodeProvisioner); a
#: JSON provisioner has none of them (its keys all go to the provisioner's own options).
HCL_PROVISIONER_META = ("name", "continue_on_error")


def decode_provisioner(
    ptype: str,
    body: MapNode,
    path: str,
    type_loc: Loc,
    problems: Problems,
    *,
    hcl: bool = False,
    builders: Sequence[str] | None = None,
) -> Provisioner | None:
    """One provisioner. ``builders``: the template's builder names (legacy JSON), against
    which ``override`` keys are checked, as Packer's template validation does."""
    meta: dict[str, Any] = {}
    if hcl:  # the block's own arguments, read apart from the provisioner's options
        given, body = _split(body, HCL_PROVISIONER_META)
        if given.entries:
            r = Reader(given, path, problems)
            meta = kwargs(name=r.str("name"), continue_on_error=r.bool("continue_on_error"))
    decoded = _decode_provisioner(ptype, body, path, type_loc, problems, builders)
    if decoded is None or not meta:
        return decoded
    variants = {k: dataclasses.replace(v, **meta) for k, v in decoded.overrides.items()}
    # mypy checks replace() on the Provisioner union against every member at once
    return dataclasses.replace(decoded, overrides=FrozenMap(variants), **meta)  # type: ignore[arg-type]


def _split(body: MapNode, keys: Sequence[str]) -> tuple[MapNode, MapNode]:
    """``body``'s entries of ``keys``, and the others, each an object of its own."""

    def part(wanted: bool) -> MapNode:
        entries = {k: v for k, v in body.entries.items() if (k in keys) == wanted}
        locs = {k: v for k, v in body.key_locs.items() if k in entries}
        return MapNode(entries, body.loc, locs)

    return part(True), part(False)


def _decode_provisioner(
    ptype: str,
    body: MapNode,
    path: str,
    type_loc: Loc,
    problems: Problems,
    builders: Sequence[str] | None = None,
) -> Provisioner | None:
    if ptype not in PROVISIONER_TYPES:
        hint = suggest(ptype, PROVISIONER_TYPES)
        if ptype in UNSUPPORTED_PROVISIONERS or not hint:
            # a Packer provisioner (or a plugin's) that amibake does not run
            problems.add(
                type_loc,
                f"{path}.type",
                f"provisioner `{ptype}` is not supported yet by amibake "
                f"(supported: {', '.join(PROVISIONER_TYPES)})",
            )
        else:
            problems.add(type_loc, f"{path}.type", f"unknown provisioner type `{ptype}`{hint}")
        return None
    override = body.entries.get("override")
    if override is not None:
        # Packer's per-builder `override`: the same provisioner with some options replaced
        _, body = _split(body, ("override",))
    # The options alone are checked only for a builder with no override: Packer merges
    # each builder's override first (packer/core.go), so `inline` may come from it alone.
    own = Problems()
    base = _decode_one(ptype, body, path, own)
    if override is None or _is_null(override) or not isinstance(override, MapNode):
        problems.items += own.items
        problems.warnings += [w for w in own.warnings if w not in problems.warnings]
        if override is not None and not _is_null(override) and not isinstance(override, BadNode):
            problems.add(
                override.loc, f"{path}.override", "expected an object of builder names"
            )
        return base
    variants = {}
    for name, node in override.entries.items():
        if builders is not None and name not in builders:
            problems.add(
                override.key_loc(name),
                f"{path}.override.{name}",
                f"no builder is named `{name}`{suggest(name, builders)}",
            )
            continue
        if isinstance(node, ListNode) and len(node.items) == 1:
            node = node.items[0]
        if not isinstance(node, MapNode):
            if not isinstance(node, BadNode):
                problems.add(node.loc, f"{path}.override.{name}", "expected an object")
            continue
        merged = MapNode(
            {**body.entries, **node.entries}, body.loc, {**body.key_locs, **node.key_locs}
        )
        variant = _decode_one(ptype, merged, f"{path}.override.{name}", problems)
        if variant is not None:
            variants[name] = variant
    runs_alone = builders is None or any(
        b not in override.entries and _selected(body, b) for b in builders
    )
    if runs_alone:
        problems.items += own.items
    problems.warnings += [w for w in own.warnings if w not in problems.warnings]
    if base is None:
        if runs_alone or not variants:
            return None
        base = next(iter(variants.values()))  # never run as is: every builder has its own
    # mypy checks replace() on the Provisioner union against every member's `overrides` at once
    return dataclasses.replace(base, overrides=FrozenMap(variants))  # type: ignore[arg-type]  # variants have base's class (same ptype)


def _selected(body: MapNode, builder: str) -> bool:
    """Do a legacy JSON provisioner's literal ``only``/``except`` let it run for ``builder``?"""

    def names(key: str) -> list[str]:
        node = body.entries.get(key)
        items = node.items if isinstance(node, ListNode) else []
        return [i.value for i in items if isinstance(i, Scalar) and isinstance(i.value, str)]

    only, except_ = names("only"), names("except")
    return (not only or builder in only) and builder not in except_


def _manifest(r: Reader) -> ManifestPostProcessor:
    return ManifestPostProcessor(
        **kwargs(
            output=r.str("output"),
            strip_path=r.bool("strip_path"),
            strip_time=r.bool("strip_time"),
            custom_data=r.str_map("custom_data"),
            only=r.str_list("only"),
            except_=r.str_list("except"),
        )
    )


def _ami_management(r: Reader, body: MapNode, path: str) -> AmiManagementPostProcessor | None:
    identifier = r.str("identifier")
    tags = r.str_map("tags")
    keep_releases = r.int("keep_releases", minimum=1)
    keep_days = r.int("keep_days", minimum=1)
    values = kwargs(
        identifier=identifier,
        tags=tags,
        keep_releases=keep_releases,
        keep_days=keep_days,
        regions=r.str_list("regions"),
        dry_run=r.bool("dry_run"),
        resolve_aliases=r.bool("resolve_aliases"),
        only=r.str_list("only"),
        except_=r.str_list("except"),
    )
    if keep_releases is None and keep_days is None:
        if not {"keep_releases", "keep_days"} & (set(body.entries) | r.unknown):
            r.problems.add(body.loc, path, "set `keep_releases` or `keep_days`")
        return None
    if keep_releases is not None and keep_days is not None:
        r.problems.add(body.loc, path, "set only one of `keep_releases` and `keep_days`")
        return None
    if not identifier and not tags:
        if not {"identifier", "tags"} & (set(body.entries) | r.unknown):
            r.problems.add(body.loc, path, "set `identifier` or `tags` (the AMIs to manage)")
        return None
    return AmiManagementPostProcessor(**values)


def decode_post_processor(
    ptype: str, body: MapNode, path: str, type_loc: Loc, problems: Problems, *, hcl: bool = False
) -> PostProcessor | None:
    name = ""
    if hcl and "name" in body.entries:  # an HCL2 block's own `name` (Packer shows it)
        given, body = _split(body, ("name",))
        name = Reader(given, path, problems).str("name") or ""
    post = _decode_post_processor(ptype, body, path, type_loc, problems)
    if post is None or not name:
        return post
    return dataclasses.replace(post, name=name)


def _decode_post_processor(
    ptype: str, body: MapNode, path: str, type_loc: Loc, problems: Problems
) -> PostProcessor | None:
    if ptype not in POST_PROCESSOR_TYPES:
        hint = suggest(ptype, POST_PROCESSOR_TYPES)
        problems.add(
            type_loc,
            f"{path}.type",
            f"unknown post-processor type `{ptype}`{hint}"
            if hint
            else f"post-processor `{ptype}` is not supported yet by amibake "
            f"(supported: {', '.join(POST_PROCESSOR_TYPES)})",
        )
        return None
    result: PostProcessor | None
    if ptype == "manifest":
        r = Reader(body, path, problems, {"keep_input_artifact": ""}, {"filename": "`output`"})
        result = _manifest(r)
    elif ptype == "shell-local":
        r = Reader(body, path, problems, dict.fromkeys(UNSUPPORTED_SHELL_LOCAL_OPTIONS, ""))
        values = _shell_local_values(r, body, path)
        extra = kwargs(
            keep_input_artifact=r.bool("keep_input_artifact"),
            only=r.str_list("only"),
            except_=r.str_list("except"),
        )
        result = ShellLocalPostProcessor(**values, **extra) if values is not None else None
    else:
        r = Reader(body, path, problems, {"keep_input_artifact": ""})
        result = _ami_management(r, body, path)
    r.finish()
    return result
