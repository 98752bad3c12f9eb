"""Resolved nodes -> model objects, with AWS validation and Packer-option checks."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from core.engine.build_template import BUILD_INFO_FIELDS, BUILD_TEMPLATE_OPTIONS
from core.model import (
    AmazonEbsBuilder,
    AwsPolling,
    BlockDeviceMapping,
    FileProvisioner,
    FrozenMap,
    ManifestPostProcessor,
    Provisioner,
    ShellProvisioner,
    SourceAmiFilter,
)
from core.regions import ALL_REGIONS, is_known_region
from core.templates.errors import Loc, Problems, join_path, suggest
from core.templates.evaluate import EvalError
from core.templates.gotemplate import GoTemplateError, parse_go_template
from core.templates.nodes import BadNode, Expr, ListNode, Lit, MapNode, Node, Scalar

T = TypeVar("T")

OWNER_ALIASES = {
    "canonical": "099720109477",
    "aws-canonical": "099720109477",
    "debian": "136693071363",
    "redhat": "309956199498",
}
#: Owner aliases DescribeImages takes as they are (Packer passes `owners` through; its docs
#: name amazon, aws-marketplace and microsoft; `self` is the caller's account).
EC2_OWNER_ALIASES = ("amazon", "aws-marketplace", "microsoft", "self")

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

#: Credential options: boto3's credential chain serves today; issue 12 implements them.
CREDENTIAL_OPTIONS = (
    "access_key",
    "secret_key",
    "token",
    "profile",
    "shared_credentials_file",
    "assume_role",
    "mfa_code",
    "vault_aws_engine",
    "custom_endpoint_ec2",
    "skip_credential_validation",
    "skip_metadata_api_check",
    "insecure_skip_tls_verify",
    "decode_authorization_messages",
)
# Packer amazon-ebs options amibake does not implement (yet): the reason shown with them.
UNSUPPORTED_BUILDER_OPTIONS: dict[str, str] = dict.fromkeys(AMAZON_EBS_OPTIONS, "")
UNSUPPORTED_BUILDER_OPTIONS.update(
    dict.fromkeys(
        CREDENTIAL_OPTIONS, "amibake uses boto3's credential chain: environment, profiles, SSO"
    )
)
UNSUPPORTED_SHELL_OPTIONS = (
    "binary",
    "remote_folder",
    "remote_file",
    "remote_path",
    "skip_clean",
    "start_retry_timeout",
    "env",
    "env_var_format",
    "inline_shebang",
    "valid_exit_codes",
    "use_env_var_file",
    "override",
    "pause_after",
    "execute_command_file",
)
UNSUPPORTED_FILE_OPTIONS = ("sources", "generated", "content", "override", "pause_after")
PROVISIONER_TYPES = ("shell", "file")
UNSUPPORTED_PROVISIONERS = (
    "ansible",
    "ansible-local",
    "shell-local",
    "powershell",
    "windows-shell",
    "windows-restart",
    "breakpoint",
    "chef-solo",
    "chef-client",
    "puppet-masterless",
    "puppet-server",
    "salt-masterless",
    "inspec",
    "converge",
)

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
    from core.templates.evaluate import UNKNOWN

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


class Reader:
    """Reads one object: typed getters record the keys they know; ``finish`` flags the rest."""

    def __init__(
        self,
        node: MapNode,
        path: str,
        problems: Problems,
        unsupported: dict[str, str] | None = None,
    ) -> None:
        self.node = node
        self.path = path
        self.problems = problems
        self.known: set[str] = set()
        self.unsupported = unsupported or {}
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

    def str(self, key: str, *, required: bool = False, choices: Iterable[str] = ()) -> Any:
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

    def _scalar_str(self, node: Node, key: str) -> str | None:
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

    def int(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> Any:
        node = self.raw(key)
        if node is None:
            return None
        value: int | None = None
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

    def bool(self, key: str) -> Any:
        node = self.raw(key)
        if node is None:
            return None
        if isinstance(node, Scalar):
            v = node.value
            if isinstance(v, bool):
                return v
            if isinstance(v, str):
                # strconv.ParseBool, as mapstructure's weakly typed decoding uses it
                if v in ("true", "True", "TRUE", "t", "T", "1"):
                    return True
                if v in ("false", "False", "FALSE", "f", "F", "0"):
                    return False
                if v == "":
                    return None  # "" is false there, and unset for Packer's trileans
            if isinstance(v, int | float) and not isinstance(v, bool):
                return v != 0
        self.bad(node, key, "true or false")
        return None

    def duration(self, key: str) -> Any:
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

    def str_list(self, key: str) -> tuple[str, ...] | None:
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
        out = []
        for i, item in enumerate(items):
            value = self._scalar_str(item, f"{key}[{i}]" if isinstance(node, ListNode) else key)
            if value is not None:
                out.append(value)
        return tuple(out)

    def str_map(self, key: str) -> FrozenMap[str, str] | None:
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
        out = {}
        for k, item in node.entries.items():
            value = self._scalar_str(item, f"{key}.{k}")
            if value is not None:
                out[k] = value
        return FrozenMap(out)

    def block(self, key: str, decode: Callable[[Reader], T]) -> T | None:
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

    def blocks(self, key: str, decode: Callable[[Reader], T]) -> tuple[T, ...]:
        node = self.raw(key)
        if node is None:
            return ()
        items = node.items if isinstance(node, ListNode) else [node]
        out = []
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


#: BlockDevice options of the plugin (builder/common/block_device.go) amibake does not decode.
UNSUPPORTED_BLOCK_DEVICE_OPTIONS = {"virtual_name": ""}


def _block_device(r: Reader) -> BlockDeviceMapping | None:
    r.unsupported = {**UNSUPPORTED_BLOCK_DEVICE_OPTIONS, **r.unsupported}
    device = r.str("device_name", required=True)
    result = BlockDeviceMapping(
        **kwargs(
            device_name=device or "",
            volume_size=r.int("volume_size", minimum=1, maximum=65536),
            volume_type=r.str(
                "volume_type", choices=("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
            ),
            iops=r.int("iops", minimum=1),
            throughput=r.int("throughput", minimum=1),
            delete_on_termination=r.bool("delete_on_termination"),
            encrypted=r.bool("encrypted"),
            kms_key_id=r.str("kms_key_id"),
            snapshot_id=r.str("snapshot_id"),
            no_device=r.bool("no_device"),
        )
    )
    return result if device else None


def _aws_polling(r: Reader) -> AwsPolling:
    return AwsPolling(
        delay_seconds=r.int("delay_seconds", minimum=1),
        max_attempts=r.int("max_attempts", minimum=1),
    )


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
            node, join_path(path, key), key in BUILD_TEMPLATE_OPTIONS, key, problems, render
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
        return node is not None and not (isinstance(node, Scalar) and node.value is None)

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
            problems.add(
                r.loc("security_group_ids"),
                r.at("security_group_ids"),
                f"expected an ID like `sg-0123456789abcdef0`, got `{sg}`",
            )
    subnet_id = r.str("subnet_id")
    _check_prefixed(r, "subnet_id", subnet_id, "subnet")
    vpc_id = r.str("vpc_id")
    _check_prefixed(r, "vpc_id", vpc_id, "vpc")
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
    if ssh_keypair_name is not None and ssh_private_key_file is None:
        problems.add(
            r.loc("ssh_keypair_name"),
            r.at("ssh_private_key_file"),
            "`ssh_private_key_file` is required with `ssh_keypair_name`",
        )
    tags = r.str_map("tags")
    run_tags = r.str_map("run_tags")
    snapshot_tags = r.str_map("snapshot_tags")
    for key, value in (("tags", tags), ("run_tags", run_tags), ("snapshot_tags", snapshot_tags)):
        _check_tags(r, key, value)
    ami_users = r.str_list("ami_users")
    for user in ami_users or ():
        if not ACCOUNT_RE.match(user):
            problems.add(
                r.loc("ami_users"), r.at("ami_users"), f"`{user}` is not a 12-digit AWS account ID"
            )
    ami_groups = r.str_list("ami_groups")
    for group in ami_groups or ():
        if group != "all":
            problems.add(
                r.loc("ami_groups"),
                r.at("ami_groups"),
                f"the only AMI group is `all`, got `{group}`",
            )
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
        ssh_timeout=r.duration("ssh_timeout"),
        ssh_interface=r.str(
            "ssh_interface", choices=("public_ip", "private_ip", "public_dns", "private_dns")
        ),
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
    )
    r.finish()
    for key in ("region", "instance_type", "ssh_username", "ami_name", "source_ami"):
        if key in r.unknown:  # shape-only: a data source's output, see core.templates.datasources
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


def decode_provisioner(
    ptype: str, body: MapNode, path: str, type_loc: Loc, problems: Problems
) -> Provisioner | None:
    if ptype == "shell":
        r = Reader(
            body,
            path,
            problems,
            dict.fromkeys(UNSUPPORTED_SHELL_OPTIONS, ""),
        )
        inline = r.str_list("inline")
        script = r.str("script")
        scripts = r.str_list("scripts")
        given = [
            k
            for k, v in (("inline", inline), ("script", script), ("scripts", scripts))
            if v is not None
        ]
        env_vars = r.str_list("environment_vars")
        for var in env_vars or ():
            if "=" not in var or var.startswith("="):
                problems.add(
                    r.loc("environment_vars"),
                    r.at("environment_vars"),
                    f"expected KEY=value, got `{var}`",
                )
        values = kwargs(
            inline=inline,
            script=script,
            scripts=scripts,
            environment_vars=env_vars,
            execute_command=r.str("execute_command"),
            expect_disconnect=r.bool("expect_disconnect"),
            **_common(r),
        )
        r.finish()
        if len(given) != 1:
            if not given and not any(k in body.entries for k in ("inline", "script", "scripts")):
                problems.add(
                    body.loc,
                    path,
                    "a shell provisioner needs one of `inline`, `script` or `scripts`",
                )
            elif len(given) > 1:
                problems.add(
                    body.loc,
                    path,
                    f"set only one of `inline`, `script`, `scripts` (got {', '.join(given)})",
                )
            return None
        return ShellProvisioner(**values)
    if ptype == "file":
        r = Reader(
            body,
            path,
            problems,
            dict.fromkeys(UNSUPPORTED_FILE_OPTIONS, ""),
        )
        # `content` or `sources` (not supported yet) stand in for `source`, as in Packer
        source = r.str("source", required=not {"content", "sources"} & set(body.entries))
        destination = r.str("destination", required=True)
        values = kwargs(
            source=source,
            destination=destination,
            direction=r.str("direction", choices=("upload", "download")),
            **_common(r),
        )
        r.finish()
        if source is None or destination is None:
            return None
        return FileProvisioner(**values)
    hint = suggest(ptype, PROVISIONER_TYPES)
    if ptype in UNSUPPORTED_PROVISIONERS or not hint:
        # a Packer provisioner (or a plugin's) that amibake does not run
        problems.add(
            type_loc,
            f"{path}.type",
            f"provisioner `{ptype}` is not supported yet by amibake (supported: shell, file)",
        )
    else:
        problems.add(type_loc, f"{path}.type", f"unknown provisioner type `{ptype}`{hint}")
    return None


def decode_post_processor(
    ptype: str, body: MapNode, path: str, type_loc: Loc, problems: Problems
) -> ManifestPostProcessor | None:
    if ptype != "manifest":
        hint = suggest(ptype, ("manifest",))
        problems.add(
            type_loc,
            f"{path}.type",
            f"unknown post-processor type `{ptype}`{hint}"
            if hint
            else f"post-processor `{ptype}` is not supported yet by amibake (supported: manifest)",
        )
        return None
    r = Reader(body, path, problems, {"keep_input_artifact": ""})
    values = kwargs(
        output=r.str("output"),
        strip_path=r.bool("strip_path"),
        strip_time=r.bool("strip_time"),
        custom_data=r.str_map("custom_data"),
        only=r.str_list("only"),
        except_=r.str_list("except"),
    )
    r.finish()
    return ManifestPostProcessor(**values)
