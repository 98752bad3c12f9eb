"""EC2 Fleet spot launches in the local cloud, as AWS does them.

moto's CreateFleet launches a spot instance from a few fields of the launch template only: it
drops the security groups (``SecurityGroupIds`` and ``NetworkInterfaces``), the metadata
options, the instance profile, the block devices, the placement and the credit option, and
the instance has no ``SpotInstanceRequestId``. Here the spot request of a fleet launches its
instance from the whole launch template version (with the fleet's override for it), the way
RunInstances would launch it, through the same backend (so the instance gets its sandbox and
its loopback address like any other), then links the instance to its request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.types import Base64EncodedString
from moto.ec2.models.instances import Instance
from moto.ec2.models.spot_requests import SpotInstanceRequest
from moto.ec2.utils import convert_tag_spec, parse_user_data

_installed = False


def run_instances_arguments(data: dict[str, Any], region: str) -> dict[str, Any]:
    """RunInstances keyword arguments (moto's backend form) from launch template data."""
    nics = [dict(nic) for nic in data.get("NetworkInterfaces") or []]
    kwargs: dict[str, Any] = {
        "instance_type": data.get("InstanceType") or "m1.small",
        "is_instance_type_default": not data.get("InstanceType"),
        "placement": (data.get("Placement") or {}).get("AvailabilityZone"),
        "region_name": region,
        "subnet_id": data.get("SubnetId"),
        "key_name": data.get("KeyName"),
        "security_group_ids": list(data.get("SecurityGroupIds") or []),
        "nics": nics,
        "tags": convert_tag_spec(data.get("TagSpecifications") or []),
        "ebs_optimized": bool(data.get("EbsOptimized")),
        "instance_market_options": (data.get("InstanceMarketOptions") or {}).get("MarketType"),
        "instance_initiated_shutdown_behavior": data.get("InstanceInitiatedShutdownBehavior"),
        "metadata_options": {k: str(v) for k, v in (data.get("MetadataOptions") or {}).items()},
        "lifecycle": "spot",
        "client_token": None,
    }
    mappings = []
    for mapping in data.get("BlockDeviceMappings") or []:
        ebs = dict(mapping.get("Ebs") or {})
        ebs.setdefault("DeleteOnTermination", False)
        ebs.setdefault("Encrypted", False)
        mappings.append(
            {
                "DeviceName": mapping.get("DeviceName"),
                "VirtualName": mapping.get("VirtualName"),
                "NoDevice": mapping.get("NoDevice"),
                "Ebs": ebs,
            }
        )
    if mappings:
        kwargs["block_device_mappings"] = mappings
    return kwargs


def launch_from_template(request: SpotInstanceRequest) -> Instance:
    """Launch the spot request's instance from its fleet's launch template version."""
    spec = request.launch_spec
    assert spec is not None and spec.launch_template_spec
    backend = request.ec2_backend
    reference = spec.launch_template_spec
    template = backend.get_launch_template(reference["LaunchTemplateId"])
    version = reference.get("Version") or template.default_version_number
    data = dict(template.get_version(int(version)).data)
    data.update(spec.overrides or {})
    arguments = run_instances_arguments(data, backend.region_name)
    arguments["spot_fleet_id"] = request.spot_fleet_id
    user_data = data.get("UserData") or None
    if user_data is not None and not isinstance(user_data, Base64EncodedString):
        user_data = parse_user_data(user_data)
    reservation = backend.run_instances(data.get("ImageId"), 1, user_data, [], **arguments)
    instance: Instance = reservation.instances[0]
    if not instance.security_groups:
        # launched through a network interface: the instance shows its interface's groups
        for nic in arguments["nics"]:
            for group_id in nic.get("Groups") or []:
                group = backend.get_security_group_from_id(group_id)
                if group is not None:
                    instance.security_groups.append(group)
    instance.add_tags(
        {
            "aws:ec2launchtemplate:id": template.id,
            "aws:ec2launchtemplate:version": str(version),
        }
    )
    if request.spot_fleet_id:
        instance.add_tags({"aws:ec2:fleet-id": request.spot_fleet_id})
    profile = data.get("IamInstanceProfile") or {}
    if profile.get("Name") or profile.get("Arn"):
        backend.associate_iam_instance_profile(
            instance_id=instance.id,
            iam_instance_profile_name=profile.get("Name"),
            iam_instance_profile_arn=profile.get("Arn"),
        )
    credits = (data.get("CreditSpecification") or {}).get("CpuCredits")
    if credits:
        instance.amibake_cpu_credits = credits  # type: ignore[attr-defined]  # amibake's mark on moto's Instance
    instance.spot_instance_request_id = request.id  # type: ignore[attr-defined]  # amibake's mark on moto's Instance: its spot request
    # an instant fleet's spot request is a one-time request
    request.type = "one-time"
    return instance


def _wrap_launch_instance(
    original: Callable[[SpotInstanceRequest], Instance],
) -> Callable[[SpotInstanceRequest], Instance]:
    def launch_instance(self: SpotInstanceRequest) -> Instance:
        spec = self.launch_spec
        if spec is None or not spec.launch_template_spec:
            return original(self)  # RequestSpotInstances / RequestSpotFleet: moto's own
        return launch_from_template(self)

    return launch_instance


def install() -> None:
    """Patch moto's spot requests once (inert for requests without a launch template)."""
    global _installed
    if _installed:
        return
    _installed = True
    SpotInstanceRequest.launch_instance = _wrap_launch_instance(  # type: ignore[method-assign,assignment]  # patching moto's method
        SpotInstanceRequest.launch_instance
    )
