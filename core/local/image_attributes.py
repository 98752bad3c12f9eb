"""AMI lifecycle attributes and burstable-instance credits, as EC2 has them and moto lacks.

- ``EnableImageDeprecation`` / ``DisableImageDeprecation``: ``DeprecationTime``, rounded to
  the minute, in the future only.
- ``EnableImageDeregistrationProtection`` / ``DisableImageDeregistrationProtection``:
  ``DeregistrationProtection``; ``DeregisterImage`` refuses a protected AMI, and one whose
  protection had a cooldown for 24 hours after it was disabled.
- ``RegisterImage`` keeps ``BootMode``, ``TpmSupport`` and ``ImdsSupport``;
  ``ModifyImageAttribute`` sets ``ImdsSupport`` (it can only be set, as on AWS) and
  ``Description``; ``CopyImage`` carries them along. ``DescribeImages`` reports them.
- ``CreditSpecification`` given to ``RunInstances`` is what
  ``DescribeInstanceCreditSpecifications`` reports (default: ``standard`` for T2, else
  ``unlimited``) and ``ModifyInstanceCreditSpecification`` changes.

Installed by :func:`core.local.moto_ext.install`; moto's model code runs under the cloud's
lock, so a launch's credit option is handed from the response to the backend in a
thread-local.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.instances import InstanceResponse

COOLDOWN = timedelta(hours=24)
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
BURSTABLE_FAMILIES = ("t2", "t3", "t3a", "t4g")
CPU_CREDITS = ("standard", "unlimited")

_launch = threading.local()


# -- images ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _owned_image(backend: EC2Backend, image_id: str | None) -> Ami:
    image = backend.amis.get(image_id or "")
    if image is None:
        raise EC2ClientError("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    if image.owner_id != backend.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for images: [{image_id}]")
    return image


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
        del image._amibake_xml  # type: ignore[attr-defined]


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
    image._deprecation = moment  # type: ignore[attr-defined]
    _forget_xml(image)
    return ActionResult({"Return": True})


def disable_image_deprecation(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    image._deprecation = None  # type: ignore[attr-defined]
    _forget_xml(image)
    return ActionResult({"Return": True})


def enable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    with_cooldown = self._get_bool_param("WithCooldown", False)
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    image.deregistration_protection = (  # type: ignore[attr-defined]
        "enabled-with-cooldown" if with_cooldown else "enabled-without-cooldown"
    )
    image.protected_until = None  # type: ignore[attr-defined]
    _forget_xml(image)
    return ActionResult({"Return": "true"})


def disable_image_deregistration_protection(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    image = _owned_image(self.ec2_backend, image_id)
    if getattr(image, "deregistration_protection", None) == "enabled-with-cooldown":
        image.protected_until = _now() + COOLDOWN  # type: ignore[attr-defined]
    image.deregistration_protection = "disabled"  # type: ignore[attr-defined]
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
    image.tpm_support = tpm_support  # type: ignore[attr-defined]
    image.imds_support = imds_support  # type: ignore[attr-defined]
    return ActionResult({"ImageId": image.id})


def _wrap_modify_image_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def modify_image_attribute(self: AmisResponse) -> Any:
        imds = self._get_param("ImdsSupport")
        description = self._get_param("Description")
        attribute = self._get_param("Attribute")
        value = self._get_param("Value")
        if attribute == "imdsSupport" and imds is None:
            imds = {"Value": value}
        if attribute == "description" and description is None:
            description = {"Value": value}
        if imds is None and description is None:
            return original(self)
        self.error_on_dryrun()
        image = _owned_image(self.ec2_backend, self._get_param("ImageId"))
        if imds is not None:
            _check_choice("ImdsSupport", (imds or {}).get("Value"), ("v2.0",))
            image.imds_support = "v2.0"  # type: ignore[attr-defined]
        if description is not None:
            image.description = (description or {}).get("Value") or None
        _forget_xml(image)
        return EmptyResult()

    return modify_image_attribute


def copy_attributes(image: Ami, source: Ami) -> None:
    """CopyImage keeps the source's boot mode, NitroTPM and IMDS support."""
    image.tpm_support = getattr(source, "tpm_support", None)  # type: ignore[attr-defined]
    image.imds_support = getattr(source, "imds_support", None)  # type: ignore[attr-defined]


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
            instance.amibake_cpu_credits = credits  # type: ignore[attr-defined]


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
        instance.amibake_cpu_credits = credits  # type: ignore[attr-defined]
        done.append({"InstanceId": instance_id})
    return ActionResult(
        {
            "SuccessfulInstanceCreditSpecifications": done,
            "UnsuccessfulInstanceCreditSpecifications": failed,
        }
    )


def install(ami_class: type[Ami]) -> None:
    """Patch moto's response classes (once, from ``moto_ext.install``)."""
    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.disable_image_deprecation = disable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.enable_image_deregistration_protection = (  # type: ignore[attr-defined]
        enable_image_deregistration_protection
    )
    AmisResponse.disable_image_deregistration_protection = (  # type: ignore[attr-defined]
        disable_image_deregistration_protection
    )
    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    AmisResponse.modify_image_attribute = _wrap_modify_image_attribute(  # type: ignore[method-assign]
        AmisResponse.modify_image_attribute
    )
    InstanceResponse.run_instances = _wrap_run_instances_response(  # type: ignore[method-assign]
        InstanceResponse.run_instances
    )
    InstanceResponse.describe_instance_credit_specifications = (  # type: ignore[method-assign]
        describe_instance_credit_specifications
    )
    InstanceResponse.modify_instance_credit_specification = (  # type: ignore[attr-defined]
        modify_instance_credit_specification
    )
    # DescribeImageAttribute reads these names (moto's spelling).
    ami_class.tmp = property(lambda self: getattr(self, "tpm_support", None))  # type: ignore[attr-defined]
    ami_class.imds = property(lambda self: getattr(self, "imds_support", None))  # type: ignore[attr-defined]
