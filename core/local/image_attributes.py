"""AMI lifecycle attributes and burstable-instance credits, as EC2 has them and moto lacks.

- ``EnableImageDeprecation`` / ``DisableImageDeprecation``: ``DeprecationTime``, rounded to
  the minute, in the future only.
- ``EnableImageDeregistrationProtection`` / ``DisableImageDeregistrationProtection``:
  ``DeregistrationProtection``; ``DeregisterImage`` refuses a protected AMI, and one whose
  protection had a cooldown for 24 hours after it was disabled.
- ``RegisterImage`` keeps ``BootMode``, ``TpmSupport`` and ``ImdsSupport``;
  ``ModifyImageAttribute`` sets ``ImdsSupport`` (it can only be set, as on AWS) and
  ``Description``; ``CopyImage`` carries them along. ``DescribeImages`` reports them.
- ``CreateImage`` honours ``BlockDeviceMappings`` (root overrides, extra EBS volumes with or
  without a snapshot, ``ephemeralN`` instance stores, ``NoDevice``) and snapshots the
  instance's other attached volumes, as EC2 does; the image carries the instance's
  ``EnaSupport`` / ``SriovNetSupport``, which ``ModifyInstanceAttribute`` sets on a stopped
  instance. ``CopyImage`` copies the extra volumes' snapshots too.
- ``ModifyImageAttribute`` ``ProductCodes``; ``DescribeImageAttribute`` answers
  ``productCodes``, ``sriovNetSupport``, ``deregistrationProtection`` and the rest moto knows;
  ``ModifySnapshotAttribute`` also takes Packer's ``CreateVolumePermission`` form.
- ``CreditSpecification`` given to ``RunInstances`` is what
  ``DescribeInstanceCreditSpecifications`` reports (default: ``standard`` for T2, else
  ``unlimited``) and ``ModifyInstanceCreditSpecification`` changes.

Installed by :func:`amibake.core.local.moto_ext.install`; moto's model code runs under the cloud's
lock, so a launch's credit option is handed from the response to the backend in a
thread-local.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, cast

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse

if TYPE_CHECKING:
    from amibake.core.local.moto_ext import LocalAmi

COOLDOWN = timedelta(hours=24)
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
BURSTABLE_FAMILIES = ("t2", "t3", "t3a", "t4g")
CPU_CREDITS = ("standard", "unlimited")

_launch = threading.local()


# -- images ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _owned_image(backend: EC2Backend, image_id: str | None) -> LocalAmi:
    image = backend.amis.get(image_id or "")
    if image is None:
        raise EC2ClientError("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    if image.owner_id != backend.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for images: [{image_id}]")
    # every image of the local cloud is one: amibake.core.local.moto_ext replaces moto's
    # constructors
    return cast("LocalAmi", image)


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value or "").strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise EC2ClientError(
                "InvalidParameterValue", f"Invalid value '{text}' for DeprecateAt"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # EC2 rounds the seconds to the nearest minute.
    rounded = moment.replace(second=0, microsecond=0)
    if moment.second >= 30:
        rounded += timedelta(minutes=1)
    return rounded.astimezone(UTC)


def _forget_xml(image: Ami) -> None:
    """DescribeImages caches an image's rendering; attribute changes must show."""
    if hasattr(image, "_amibake_xml"):
        del image._amibake_xml


def enable_image_deprecation(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    deprecate_at = self._get_param("DeprecateAt")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    moment = _moment(deprecate_at)
    if moment <= _now():
        raise EC2ClientError("InvalidParameterValue", "The DeprecateAt date must be in the future.")
    if moment > _now() + timedelta(days=3653):
        raise EC2ClientError(
            "InvalidParameterValue", "The DeprecateAt date can be at most 10 years from now."
        )
    image._deprecation = moment
    _forget_xml(image)
    return ActionResult({"Return": True})


def disable_image_deprecation(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    image._deprecation = None
    _forget_xml(image)
    return ActionResult({"Return": True})


def enable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    with_cooldown = self._get_bool_param("WithCooldown", False)
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    image.deregistration_protection = (
        "enabled-with-cooldown" if with_cooldown else "enabled-without-cooldown"
    )
    image.protected_until = None
    _forget_xml(image)
    return ActionResult({"Return": "true"})


def disable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    if getattr(image, "deregistration_protection", None) == "enabled-with-cooldown":
        image.protected_until = _now() + COOLDOWN
    image.deregistration_protection = "disabled"
    _forget_xml(image)
    return ActionResult({"Return": "true"})


def check_deregistrable(image: Ami | None) -> None:
    """Raise as EC2 does when ``image`` is protected from deregistration."""
    if image is None:
        return
    state = getattr(image, "deregistration_protection", None)
    until = getattr(image, "protected_until", None)
    if state in ("enabled-with-cooldown", "enabled-without-cooldown"):
        raise EC2ClientError(
            "OperationNotPermitted",
            f"The AMI {image.id} has deregistration protection enabled. "
            "Disable it before you deregister the AMI.",
        )
    if until is not None and until > _now():
        stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise EC2ClientError(
            "OperationNotPermitted",
            f"The AMI {image.id} is protected from deregistration until {stamp} "
            "(deregistration protection cooldown).",
        )


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {name} is invalid. Valid values: {', '.join(choices)}.",
        )


def register_image(self: AmisResponse) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    boot_mode = self._get_param("BootMode")
    tpm_support = self._get_param("TpmSupport")
    imds_support = self._get_param("ImdsSupport")
    _check_choice("BootMode", boot_mode, BOOT_MODES)
    _check_choice("TpmSupport", tpm_support, ("v2.0",))
    _check_choice("ImdsSupport", imds_support, ("v2.0",))
    if tpm_support and boot_mode != "uefi":
        raise EC2ClientError(
            "InvalidParameterCombination", "TpmSupport requires BootMode set to uefi."
        )
    self.error_on_dryrun()
    image = self.ec2_backend.register_image(name, description)
    image.boot_mode = boot_mode
    image.tpm_support = tpm_support
    image.imds_support = imds_support
    return ActionResult({"ImageId": image.id})


def _wrap_modify_image_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def modify_image_attribute(self: AmisResponse) -> Any:
        imds = self._get_param("ImdsSupport")
        description = self._get_param("Description")
        attribute = self._get_param("Attribute")
        value = self._get_param("Value")
        codes = self._get_param("ProductCodes")
        if attribute == "imdsSupport" and imds is None:
            imds = {"Value": value}
        if attribute == "description" and description is None:
            description = {"Value": value}
        if codes:
            self.error_on_dryrun()
            image = _owned_image(self.ec2_backend, self._get_param("ImageId"))
            # EC2 adds product codes; it never removes one.
            known = list(getattr(image, "_product_codes", ()))
            image.product_codes = known + [c for c in codes if c not in known]
            _forget_xml(image)
            if imds is None and description is None and not self._get_param("LaunchPermission"):
                return EmptyResult()
        if imds is None and description is None:
            return original(self)
        self.error_on_dryrun()
        image = _owned_image(self.ec2_backend, self._get_param("ImageId"))
        if imds is not None:
            _check_choice("ImdsSupport", (imds or {}).get("Value"), ("v2.0",))
            image.imds_support = "v2.0"
        if description is not None:
            image.description = (description or {}).get("Value") or None
        _forget_xml(image)
        return EmptyResult()

    return modify_image_attribute


def copy_attributes(image: LocalAmi, source: Ami) -> None:
    """CopyImage keeps the source's boot mode, NitroTPM, IMDS and ENA support and SR-IOV,
    and copies its extra volumes' snapshots (encrypted like the root's copy)."""
    image.tpm_support = getattr(source, "tpm_support", None)
    image.imds_support = getattr(source, "imds_support", None)
    image.ena_support = getattr(source, "ena_support", True)
    image.sriov = getattr(source, "sriov", "simple")
    root = image.ebs_snapshot
    copies: list[dict[str, Any]] = []
    for mapping in extra_mappings(source):
        ebs = dict(mapping.get("Ebs") or {})
        if ebs.get("SnapshotId"):
            encrypted = bool(getattr(root, "encrypted", False)) or bool(ebs.get("Encrypted"))
            key = getattr(root, "kms_key_id", None) if encrypted else None
            snapshot = _volume_snapshot(
                image.ec2_backend,
                int(ebs.get("VolumeSize") or 8),
                f"Copied for DestinationAmi {image.id} from SourceAmi {source.id} "
                f"for SourceSnapshot {ebs['SnapshotId']}",
                image.id,
                encrypted,
                key,
            )
            for tag in getattr(root, "get_tags", list)():
                snapshot.add_tags({tag["key"]: tag["value"]})
            ebs["SnapshotId"] = snapshot.id
            ebs["Encrypted"] = encrypted
            if key:
                ebs["KmsKeyId"] = key
            mapping = {**mapping, "Ebs": ebs}
        copies.append(mapping)
    image._extra_mappings = copies


# -- block device mappings of images -------------------------------------------------------


def extra_mappings(image: Ami) -> list[dict[str, Any]]:
    """The image's mappings besides its root volume, in the API's shape."""
    return list(getattr(image, "_extra_mappings", ()))


def root_overrides(image: Ami) -> dict[str, Any]:
    """What CreateImage's mapping of the root device changed (DeleteOnTermination...)."""
    return dict(getattr(image, "_root_overrides", {}))


def _volume_snapshot(
    backend: EC2Backend,
    size: int,
    description: str,
    image_id: str,
    encrypted: bool = False,
    kms_key_id: str | None = None,
) -> Any:
    """A snapshot of ``size`` GiB whose transient volume is already gone (as for AMIs)."""
    volume = backend.create_volume(size=size, zone_name=f"{backend.region_name}a")
    snapshot = backend.create_snapshot(volume.id, description, backend.account_id, image_id)
    backend.delete_volume(volume.id)
    if encrypted:
        snapshot.encrypted = True
        snapshot.kms_key_id = kms_key_id or (
            f"arn:aws:kms:{backend.region_name}:{backend.account_id}:alias/aws/ebs"
        )
    return snapshot


_VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")


def _apply_mappings(
    backend: EC2Backend,
    image: LocalAmi,
    instance: Instance,
    requested: list[dict[str, Any]],
    snapshot_tags: dict[str, str],
) -> None:
    """EC2's CreateImage mappings: the instance's volumes, overridden or suppressed by the
    request's mappings, plus the request's new devices (instance stores, empty volumes,
    volumes from a snapshot)."""
    root_name = image.root_device_name
    by_device = {m.get("DeviceName"): m for m in requested if m.get("DeviceName")}
    extras: list[dict[str, Any]] = []
    for mapping in requested:
        ebs = mapping.get("Ebs") or {}
        if ebs.get("VolumeType") and ebs["VolumeType"] not in _VOLUME_TYPES:
            raise EC2ClientError(
                "InvalidParameterValue", f"Value ({ebs['VolumeType']}) for VolumeType is invalid."
            )
        if ebs.get("SnapshotId") and backend.snapshots.get(ebs["SnapshotId"]) is None:
            raise EC2ClientError(
                "InvalidSnapshot.NotFound", f"The snapshot '{ebs['SnapshotId']}' does not exist."
            )
        virtual = mapping.get("VirtualName")
        if virtual is not None and not re.fullmatch(r"ephemeral\d+", virtual):
            raise EC2ClientError(
                "InvalidParameterValue", f"Value ({virtual}) for VirtualName is invalid."
            )
    root = by_device.get(root_name)
    if root is not None:
        ebs = root.get("Ebs") or {}
        size = ebs.get("VolumeSize")
        if size is not None:
            if int(size) < image.volume_size:
                raise EC2ClientError(
                    "InvalidBlockDeviceMapping",
                    f"Volume of size {image.volume_size}GB is smaller than snapshot "
                    f"'{image.ebs_snapshot.id}', expect size >= {image.volume_size}GB",
                )
            image.volume_size = int(size)
        if ebs.get("VolumeType"):
            image.volume_type = ebs["VolumeType"]
        image._root_overrides = {
            k: ebs[k] for k in ("DeleteOnTermination", "Iops", "Throughput") if k in ebs
        }
    # The instance's other EBS volumes: EC2 snapshots each, unless a mapping says NoDevice.
    seen: set[str | None] = {root_name}
    for device, block in instance.get_block_device_mapping:
        if device in seen or device == instance.root_device_name:
            continue
        seen.add(device)
        asked = by_device.get(device, {})
        if "NoDevice" in asked:
            continue
        asked_ebs = asked.get("Ebs") or {}
        size = int(asked_ebs.get("VolumeSize") or block.size or 8)
        encrypted = bool(getattr(block, "encrypted", False))
        snapshot = _volume_snapshot(
            backend,
            size,
            f"Created by CreateImage({instance.id}) for {image.id}",
            image.id,
            encrypted,
            getattr(block, "kms_key_id", None),
        )
        if snapshot_tags:
            snapshot.add_tags(snapshot_tags)
        extras.append(
            {
                "DeviceName": device,
                "Ebs": {
                    "SnapshotId": snapshot.id,
                    "VolumeSize": size,
                    "DeleteOnTermination": bool(asked_ebs.get("DeleteOnTermination", False)),
                    "VolumeType": asked_ebs.get("VolumeType")
                    or getattr(block, "volume_type", None)
                    or "gp3",
                    "Encrypted": encrypted,
                },
            }
        )
    for mapping in requested:
        wanted = mapping.get("DeviceName")
        if wanted in seen:
            continue
        seen.add(wanted)
        if "NoDevice" in mapping:
            extras.append({"DeviceName": wanted, "NoDevice": ""})
        elif mapping.get("VirtualName"):
            extras.append({"DeviceName": wanted, "VirtualName": mapping["VirtualName"]})
        elif mapping.get("Ebs") is not None:
            ebs = dict(mapping["Ebs"])
            source = backend.snapshots.get(ebs.get("SnapshotId") or "")
            if source is None and not ebs.get("VolumeSize"):
                raise EC2ClientError(
                    "InvalidBlockDeviceMapping",
                    f"The device {wanted} needs a VolumeSize or a SnapshotId.",
                )
            out: dict[str, Any] = {
                "VolumeSize": int(ebs.get("VolumeSize") or source.volume.size),  # type: ignore[union-attr]  # source is set when VolumeSize is not (checked above)
                "DeleteOnTermination": bool(ebs.get("DeleteOnTermination", False)),
                "VolumeType": ebs.get("VolumeType") or "gp2",
                "Encrypted": bool(ebs.get("Encrypted", getattr(source, "encrypted", False))),
            }
            if source is not None:
                out["SnapshotId"] = source.id
            for key in ("Iops", "Throughput", "KmsKeyId"):
                if key in ebs:
                    out[key] = ebs[key]
            extras.append({"DeviceName": wanted, "Ebs": out})
    image._extra_mappings = extras


def create_image_response(self: AmisResponse) -> ActionResult:
    """CreateImage with its ``BlockDeviceMappings`` (moto drops them)."""
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    instance_id = self._get_param("InstanceId")
    tag_specifications = self._get_param("TagSpecifications", []) or []
    requested = self._get_param("BlockDeviceMappings", []) or []
    self.error_on_dryrun()
    backend: EC2Backend = self.ec2_backend
    # amibake.core.local.moto_ext.create_image, in place of moto's: a LocalAmi
    image = cast(
        "LocalAmi",
        backend.create_image(instance_id, name, description, tag_specifications=tag_specifications),
    )
    instance = backend.get_instance(instance_id)
    snapshot_tags: dict[str, str] = {}
    for spec in tag_specifications:
        if spec.get("ResourceType") == "snapshot":
            snapshot_tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
    try:
        _apply_mappings(backend, image, instance, list(requested), snapshot_tags)
    except EC2ClientError:
        backend.amis.pop(image.id, None)  # EC2 creates nothing for a refused request
        if image.ebs_snapshot is not None:
            backend.snapshots.pop(image.ebs_snapshot.id, None)
        raise
    ena = getattr(instance, "amibake_ena_support", None)
    if ena is not None:
        image.ena_support = ena
    sriov = getattr(instance, "amibake_sriov_net_support", None)
    if sriov is not None:
        image.sriov = sriov
    return ActionResult({"ImageId": image.id})


# -- attributes of instances, images and snapshots -------------------------------------------


def _wrap_modify_instance_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def modify_instance_attribute(self: InstanceResponse) -> Any:
        ena = self._get_param("EnaSupport")
        sriov = self._get_param("SriovNetSupport")
        attribute = self._get_param("Attribute")
        if attribute == "enaSupport":
            ena = {"Value": self._get_param("Value")}
        if attribute == "sriovNetSupport":
            sriov = {"Value": self._get_param("Value")}
        if ena is None and sriov is None:
            return original(self)
        self.error_on_dryrun()
        (instance,) = self.ec2_backend.get_multi_instances_by_id([self._get_param("InstanceId")])
        if instance.state != "stopped":
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"The instance '{instance.id}' is not in the 'stopped' state.",
            )
        if ena is not None:
            value = (ena or {}).get("Value")
            instance.amibake_ena_support = str(value).lower() in ("true", "1")
        if sriov is not None:
            value = (sriov or {}).get("Value")
            _check_choice("SriovNetSupport", value, ("simple",))
            instance.amibake_sriov_net_support = value
        return EmptyResult()

    return modify_instance_attribute


def _wrap_describe_image_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def describe_image_attribute(self: AmisResponse) -> Any:
        attribute = self._get_param("Attribute")
        image_id = self._get_param("ImageId")
        if attribute == "productCodes":
            image = _owned_image(self.ec2_backend, image_id)
            codes = getattr(image, "_product_codes", ())
            return ActionResult(
                {
                    "ImageId": image_id,
                    "ProductCodes": [
                        {"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in codes
                    ],
                }
            )
        if attribute == "deregistrationProtection":
            image = _owned_image(self.ec2_backend, image_id)
            state = getattr(image, "deregistration_protection", None) or "disabled"
            return ActionResult({"ImageId": image_id, "DeregistrationProtection": {"Value": state}})
        return original(self)

    return describe_image_attribute


def _wrap_modify_snapshot_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def modify_snapshot_attribute(self: Any) -> Any:
        permission = self._get_param("CreateVolumePermission") or {}
        if self._get_param("OperationType") or not permission:
            return original(self)
        self.error_on_dryrun()
        snapshot_id = self._get_param("SnapshotId")
        for operation, method in (
            ("Add", self.ec2_backend.add_create_volume_permission),
            ("Remove", self.ec2_backend.remove_create_volume_permission),
        ):
            entries = permission.get(operation) or []
            users = [e["UserId"] for e in entries if e.get("UserId")]
            groups = [e["Group"] for e in entries if e.get("Group")]
            if users or groups:
                method(snapshot_id, user_ids=users, groups=groups)
        return EmptyResult()

    return modify_snapshot_attribute


def image_xml_tags(image: Ami) -> list[tuple[str, object]]:
    """The extra elements of a DescribeImages ``<item>``, in the API model's names."""
    return [
        ("deregistrationProtection", getattr(image, "deregistration_protection", None)),
        ("tpmSupport", getattr(image, "tpm_support", None)),
        ("imdsSupport", getattr(image, "imds_support", None)),
    ]


# -- instances ---------------------------------------------------------------------------------


def is_burstable(instance_type: str) -> bool:
    return instance_type.split(".")[0] in BURSTABLE_FAMILIES


def cpu_credits(instance: Instance) -> str:
    chosen = getattr(instance, "amibake_cpu_credits", None)
    if chosen:
        return str(chosen)
    return "standard" if instance.instance_type.startswith("t2.") else "unlimited"


def _wrap_run_instances_response(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def run_instances(self: InstanceResponse) -> Any:
        specification = self._get_param("CreditSpecification") or {}
        credits = specification.get("CpuCredits") if isinstance(specification, dict) else None
        _check_choice("CpuCredits", credits, CPU_CREDITS)
        _launch.cpu_credits = credits
        try:
            return original(self)
        finally:
            _launch.cpu_credits = None

    return run_instances


def launched(instances: list[Instance]) -> None:
    """Called by the RunInstances backend wrapper: the launch's CreditSpecification."""
    credits = getattr(_launch, "cpu_credits", None)
    if credits:
        for instance in instances:
            instance.amibake_cpu_credits = credits  # type: ignore[attr-defined]  # amibake's mark on moto's Instance


def _instances(backend: InstanceBackend, instance_ids: list[str]) -> list[Instance]:
    if instance_ids:
        return list(backend.get_multi_instances_by_id(instance_ids))
    return [i for i in backend.all_instances() if i.state not in ("terminated", "shutting-down")]


def describe_instance_credit_specifications(self: InstanceResponse) -> ActionResult:
    instance_ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    instances = _instances(self.ec2_backend, instance_ids)
    return ActionResult(
        {
            "InstanceCreditSpecifications": [
                {"InstanceId": i.id, "CpuCredits": cpu_credits(i)}
                for i in instances
                if is_burstable(i.instance_type)
            ]
        }
    )


def modify_instance_credit_specification(self: InstanceResponse) -> ActionResult:
    specifications = self._get_param("InstanceCreditSpecifications", []) or []
    self.error_on_dryrun()
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for specification in specifications:
        instance_id = specification.get("InstanceId")
        credits = specification.get("CpuCredits")
        try:
            _check_choice("CpuCredits", credits, CPU_CREDITS)
            (instance,) = self.ec2_backend.get_multi_instances_by_id([instance_id])
            if not is_burstable(instance.instance_type):
                raise EC2ClientError(
                    "InvalidInstanceType",
                    f"The instance type {instance.instance_type} does not support CPU credits.",
                )
        except EC2ClientError as error:
            failed.append(
                {
                    "InstanceId": instance_id,
                    "Error": {"Code": error.code, "Message": error.message},
                }
            )
            continue
        instance.amibake_cpu_credits = credits
        done.append({"InstanceId": instance_id})
    return ActionResult(
        {
            "SuccessfulInstanceCreditSpecifications": done,
            "UnsuccessfulInstanceCreditSpecifications": failed,
        }
    )


def install(ami_class: type[Ami]) -> None:
    """Patch moto's response classes (once, from ``moto_ext.install``)."""
    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]  # a new EC2 action on moto's responses
    AmisResponse.disable_image_deprecation = disable_image_deprecation  # type: ignore[attr-defined]  # a new EC2 action on moto's responses
    AmisResponse.enable_image_deregistration_protection = (  # type: ignore[attr-defined]  # a new EC2 action on moto's responses
        enable_image_deregistration_protection
    )
    AmisResponse.disable_image_deregistration_protection = (  # type: ignore[attr-defined]  # a new EC2 action on moto's responses
        disable_image_deregistration_protection
    )
    AmisResponse.register_image = register_image  # type: ignore[method-assign]  # patching moto's method
    AmisResponse.create_image = create_image_response  # type: ignore[method-assign]  # patching moto's method
    AmisResponse.describe_image_attribute = _wrap_describe_image_attribute(  # type: ignore[method-assign]  # patching moto's method
        AmisResponse.describe_image_attribute
    )
    InstanceResponse.modify_instance_attribute = _wrap_modify_instance_attribute(  # type: ignore[method-assign]  # patching moto's method
        InstanceResponse.modify_instance_attribute
    )
    ElasticBlockStore.modify_snapshot_attribute = _wrap_modify_snapshot_attribute(  # type: ignore[method-assign]  # patching moto's method
        ElasticBlockStore.modify_snapshot_attribute
    )
    AmisResponse.modify_image_attribute = _wrap_modify_image_attribute(  # type: ignore[method-assign]  # patching moto's method
        AmisResponse.modify_image_attribute
    )
    InstanceResponse.run_instances = _wrap_run_instances_response(  # type: ignore[method-assign]  # patching moto's method
        InstanceResponse.run_instances
    )
    InstanceResponse.describe_instance_credit_specifications = (  # type: ignore[method-assign]  # patching moto's method
        describe_instance_credit_specifications
    )
    InstanceResponse.modify_instance_credit_specification = (  # type: ignore[attr-defined]  # a new EC2 action on moto's responses
        modify_instance_credit_specification
    )
    # DescribeImageAttribute reads these names (moto's spelling).
    ami_class.tmp = property(lambda self: getattr(self, "tpm_support", None))  # type: ignore[attr-defined]  # moto's response templates read it
    ami_class.imds = property(lambda self: getattr(self, "imds_support", None))  # type: ignore[attr-defined]  # moto's response templates read it
