"""Targeted extensions of moto's EC2 backend: everything the local cloud adds to moto.

moto gives us a faithful EC2 API surface and state store, but an image build
needs more than it does: states that take time, instances reachable over SSH,
a realistic image catalogue with AWS's owner semantics, and the errors real
builds meet (DependencyViolation, InvalidAMIName.Duplicate, ...). Each of
those is a small wrapper or replacement installed here, in one place, so the
list of what we change in moto is this file, plus :mod:`amibake.core.local.ssm_public`
(AWS's public AMI parameters in moto's SSM store), which :func:`install` installs.

The wrappers call into the running :class:`amibake.core.local.cloud.LocalCloud`
(``_runtime``) for the parts moto knows nothing about: loopback addresses, SSH
servers, sandboxes, timers and image contents. moto's model code runs under
the cloud's lock (see ``LocalCloud.moto_lock``), so the wrappers may touch
moto objects freely.

Tested against the moto range pinned in pyproject.toml.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape as xml_escape

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import DependencyViolationError, EC2ClientError, InvalidAMIIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.general import General
from moto.ec2.utils import (
    Base64EncodedString,
    filter_dict_attribute_mapping,
    generic_filter,
    random_ami_id,
)

from amibake.core.local import image_attributes
from amibake.core.local.images import CatalogImage
from amibake.core.regions import COMMERCIAL_REGIONS

if TYPE_CHECKING:
    from moto.ec2.models.instances import InstanceState


class Runtime(Protocol):
    """What the extensions need from the running local cloud."""

    def catalog(self, region: str) -> Sequence[CatalogImage]: ...
    def restore_region(self, backend: EC2Backend) -> None: ...
    def instances_launched(self, backend: EC2Backend, instances: Sequence[Instance]) -> None: ...
    def instances_starting(self, backend: EC2Backend, instances: Sequence[Instance]) -> None: ...
    def instances_stopping(self, backend: EC2Backend, instances: Sequence[Instance]) -> None: ...
    def instances_terminating(self, backend: EC2Backend, instances: Sequence[Instance]) -> None: ...
    def image_created(self, backend: EC2Backend, image: LocalAmi, instance: Instance) -> None: ...
    def image_copied(
        self, backend: EC2Backend, image: LocalAmi, source: Ami, source_region: str
    ) -> None: ...
    def snapshot_deleted(self, backend: EC2Backend, snapshot_id: str) -> None: ...
    def console_output(self, instance: Instance, latest: bool = False) -> str | None: ...
    def registry_changed(self, backend: EC2Backend) -> None: ...


_runtime: Runtime | None = None
_installed = False

# ----------------------------------------------------------------------------------------------
# Images


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class LocalAmi(Ami):
    """An AMI with the attributes real images carry and moto's ``Ami`` lacks.

    Constructed without ``Ami.__init__`` because that one always invents a
    15 GiB volume and snapshot; ours are given (catalogue image, restored
    image) or created with the instance's real root volume size.
    """

    # Set by amibake.core.local.image_attributes (RegisterImage, CopyImage, CreateImage's mappings,
    # deregistration protection); absent until then, so readers use getattr with a default.
    tpm_support: str | None
    imds_support: str | None
    deregistration_protection: str
    protected_until: datetime | None
    _extra_mappings: list[dict[str, Any]]
    _root_overrides: dict[str, Any]

    def __init__(
        self,
        backend: EC2Backend,
        image_id: str,
        *,
        name: str,
        description: str | None,
        owner_id: str,
        owner_alias: str | None,
        architecture: str | None,
        virtualization_type: str | None = "hvm",
        root_device_type: str = "ebs",
        root_device_name: str = "/dev/xvda",
        creation_date: datetime | None = None,
        deprecation_time: datetime | None = None,
        platform: str | None = None,
        platform_details: str = "Linux/UNIX",
        usage_operation: str = "RunInstances",
        ena_support: bool = True,
        boot_mode: str | None = None,
        image_location: str | None = None,
        product_codes: Iterable[str] = (),
        public: bool = False,
        state: str = "available",
        snapshot: Snapshot | PublisherSnapshot | None = None,
        volume_size: int = 8,
        volume_type: str = "gp3",
        default_user: str | None = "ec2-user",
        source_instance_id: str | None = None,
        source_image_id: str | None = None,
        source_image_region: str | None = None,
    ) -> None:
        self.ec2_backend = backend
        self.id = image_id
        self.state = state
        self.name = name
        self.description = description
        self.image_type = "machine"
        self.image_location = image_location or f"{owner_id}/{name}"
        self.owner_id = owner_id
        self.owner_alias = owner_alias
        self.virtualization_type = virtualization_type
        self.architecture = architecture
        self.kernel_id = None
        self.platform = platform
        self.platform_details = platform_details
        self.usage_operation = usage_operation
        self.ena_support = ena_support
        self.hypervisor = "xen"
        self.root_device_name = root_device_name
        self.root_device_type = root_device_type
        self.sriov = "simple"
        self.creation_date = creation_date or utcnow()
        self._deprecation = deprecation_time
        self._product_codes = tuple(product_codes)
        self.boot_mode = boot_mode  # type: ignore[assignment]  # unset (None) as on EC2 when not chosen
        self.instance_id = source_instance_id
        self.source_image_id = source_image_id
        self.source_image_region = source_image_region
        self.launch_permissions: list[dict[str, str]] = [{"Group": "all"}] if public else []
        self.volume_size = volume_size
        self.volume_type = volume_type
        self.default_user = default_user
        if snapshot is None and root_device_type == "ebs":
            snapshot = _new_snapshot(
                backend, volume_size, f"Created for {image_id}", owner_id, image_id
            )
        self.ebs_snapshot = snapshot

    @property  # type: ignore[override]  # EC2's ProductCodes shape; set from a list of codes
    def product_codes(self) -> list[dict[str, str]]:
        return [{"ProductCodeId": c, "ProductCodeType": "marketplace"} for c in self._product_codes]

    @product_codes.setter
    def product_codes(self, value: Iterable[str]) -> None:
        self._product_codes = tuple(value)

    @property
    def deprecation_time(self) -> str | None:
        return _iso(self._deprecation)

    def is_deprecated(self, now: datetime) -> bool:
        return self._deprecation is not None and self._deprecation <= now

    @property
    def block_device_mappings(self) -> list[dict[str, Any]]:
        snapshot = self.ebs_snapshot
        if snapshot is None:
            return []
        ebs = {
            "SnapshotId": snapshot.id,
            "VolumeSize": self.volume_size,
            "DeleteOnTermination": True,
            "VolumeType": self.volume_type,
            "Encrypted": bool(getattr(snapshot, "encrypted", False)),
        }
        key = kms_key_id_of(snapshot)
        if key is not None:
            ebs["KmsKeyId"] = key
        # CreateImage's BlockDeviceMappings (issue 12): root overrides and extra devices
        ebs.update(image_attributes.root_overrides(self))
        return [
            {"DeviceName": self.root_device_name, "Ebs": ebs},
            *image_attributes.extra_mappings(self),
        ]

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        extra: dict[str, Callable[[], Any]] = {
            "root-device-type": lambda: self.root_device_type,
            "root-device-name": lambda: self.root_device_name,
            "image-type": lambda: self.image_type,
            "description": lambda: self.description,
            "platform-details": lambda: self.platform_details,
            "usage-operation": lambda: self.usage_operation,
            "ena-support": lambda: str(self.ena_support).lower(),
            "boot-mode": lambda: self.boot_mode,
            "hypervisor": lambda: self.hypervisor,
            "creation-date": lambda: _iso(self.creation_date),
            "deprecation-time": lambda: self.deprecation_time,
            "manifest-location": lambda: self.image_location,
            "block-device-mapping.snapshot-id": lambda: (
                self.ebs_snapshot.id if self.ebs_snapshot else None
            ),
            "block-device-mapping.volume-type": lambda: self.volume_type,
            "block-device-mapping.volume-size": lambda: str(self.volume_size),
            "product-code": lambda: list(self._product_codes),
        }
        if filter_name in extra:
            return extra[filter_name]()
        return super().get_filter_value(filter_name, method_name)


def _new_snapshot(
    backend: EC2Backend,
    size: int,
    description: str,
    owner_id: str,
    from_ami: str | None,
    snapshot_id: str | None = None,
) -> Snapshot:
    """A snapshot of ``size`` GiB, its transient volume already gone (as AWS does for AMIs)."""
    zone = f"{backend.region_name}a"
    volume = backend.create_volume(size=size, zone_name=zone)
    snapshot = backend.create_snapshot(volume.id, description, owner_id, from_ami=from_ami)
    backend.delete_volume(volume.id)
    if snapshot_id is not None and snapshot_id != snapshot.id:
        backend.snapshots.pop(snapshot.id)
        snapshot.id = snapshot_id
        backend.snapshots[snapshot_id] = snapshot
    return snapshot


class PublisherSnapshot:
    """The root snapshot of a catalogue image: its publisher's, so only its id is visible.

    Real DescribeSnapshots does not list Canonical's or Amazon's AMI snapshots to
    other accounts, so these are not registered in moto's snapshot table (which
    also keeps thousands of objects out of memory).
    """

    __slots__ = ("id",)
    status = "completed"

    def __init__(self, snapshot_id: str) -> None:
        self.id = snapshot_id


def catalog_ami(backend: EC2Backend, image: CatalogImage) -> LocalAmi:
    snapshot = None
    if image.root_device_type == "ebs":
        # Deterministic, like the image id: "snap-0" + 16 hex digits of the image id's hash.
        digest = hashlib.blake2b(image.image_id.encode(), digest_size=8).hexdigest()
        snapshot = PublisherSnapshot(f"snap-0{digest}")
    return LocalAmi(
        backend,
        image.image_id,
        name=image.name,
        description=image.description,
        owner_id=image.owner_id,
        owner_alias=image.owner_alias,
        architecture=image.architecture,
        virtualization_type=image.virtualization_type,
        root_device_type=image.root_device_type,
        root_device_name=image.root_device_name,
        creation_date=image.creation_date,
        deprecation_time=image.deprecation_time,
        platform=image.platform,
        platform_details=image.platform_details,
        usage_operation=image.usage_operation,
        ena_support=image.ena_support,
        boot_mode=image.boot_mode,
        image_location=image.image_location,
        product_codes=image.product_codes,
        public=image.public,
        snapshot=snapshot,
        volume_size=image.volume_size,
        volume_type=image.volume_type,
        default_user=image.default_user,
    )


def _check_name_free(backend: EC2Backend, name: str | None) -> None:
    """AWS refuses a second image of the same name from one owner in one region."""
    if not name:
        raise EC2ClientError("MissingParameter", "The request must contain the parameter name")
    for image in backend.amis.values():
        if image.owner_id == backend.account_id and image.name == name:
            raise EC2ClientError(
                "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {image.id}"
            )


_AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def _check_name_valid(name: str) -> None:
    if not _AMI_NAME.match(name):
        raise EC2ClientError(
            "InvalidAMIName.Malformed",
            f"AMI names must be between 3 and 128 characters long, and may contain letters, "
            f"numbers, '(', ')', '.', '-', '/' and '_': {name!r}",
        )


def _tags_for(tag_specifications: Iterable[dict[str, Any]], resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in tag_specifications:
        if spec.get("ResourceType") not in ("image", "snapshot"):
            raise EC2ClientError(
                "InvalidParameterValue",
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this "
                "operation.",
            )
        if spec.get("ResourceType") == resource_type:
            for tag in spec.get("Tags", []):
                tags[tag["Key"]] = tag.get("Value", "")
    return tags


def create_image(
    self: EC2Backend,
    instance_id: str,
    name: str,
    description: str,
    tag_specifications: list[dict[str, Any]],
) -> LocalAmi:
    instance = self.get_instance(instance_id)
    if instance.state not in ("running", "stopped"):
        raise EC2ClientError(
            "IncorrectInstanceState",
            f"The instance '{instance_id}' is not in a state from which it can be imaged.",
        )
    _check_name_valid(name or "")
    _check_name_free(self, name)
    image_tags = _tags_for(tag_specifications, "image")
    snapshot_tags = _tags_for(tag_specifications, "snapshot")
    source = self.amis.get(instance.image_id)
    image_id = random_ami_id()
    root_size = 8
    for _device, block in instance.get_block_device_mapping:
        root_size = block.size or root_size
        break
    snapshot = _new_snapshot(
        self,
        root_size,
        f"Created by CreateImage({instance_id}) for {image_id}",
        self.account_id,
        image_id,
    )
    snapshot.status = "pending"
    image = LocalAmi(
        self,
        image_id,
        name=name,
        description=description or None,
        owner_id=self.account_id,
        owner_alias=None,
        architecture=instance.architecture,
        virtualization_type=instance.virtualization_type,
        root_device_name=getattr(source, "root_device_name", "/dev/xvda"),
        platform=instance.platform,
        platform_details=getattr(source, "platform_details", "Linux/UNIX"),
        usage_operation=getattr(source, "usage_operation", "RunInstances"),
        boot_mode=getattr(source, "boot_mode", None),
        state="pending",
        snapshot=snapshot,
        volume_size=root_size,
        default_user=_runtime_user(instance, source),
        source_instance_id=instance.id,
    )
    self.amis[image_id] = image
    if image_tags:
        image.add_tags(image_tags)
    if snapshot_tags:
        snapshot.add_tags(snapshot_tags)
    assert _runtime is not None
    _runtime.image_created(self, image, instance)
    return image


def _runtime_user(instance: Instance, source: Ami | None) -> str | None:
    user: str | None = getattr(instance, "amibake_username", None)
    if user:
        return user
    default: str | None = getattr(source, "default_user", "ec2-user")
    return default


def copy_image_response(self: AmisResponse) -> ActionResult:
    source_image_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    copy_tags = self._get_bool_param("CopyImageTags", False)
    encrypted = self._get_bool_param("Encrypted", False)
    kms_key_id = self._get_param("KmsKeyId")
    tag_specifications = self._get_param("TagSpecifications", [])
    self.error_on_dryrun()
    backend: EC2Backend = self.ec2_backend
    if kms_key_id and not encrypted:
        raise EC2ClientError(
            "InvalidParameterCombination", "KmsKeyId can only be specified with Encrypted=true"
        )
    if source_region not in COMMERCIAL_REGIONS:
        raise EC2ClientError("InvalidRegion", f"Invalid region: {source_region}")
    source_backend = ec2_backends[backend.account_id][source_region]
    source = source_backend.amis.get(source_image_id)
    if source is None:
        raise EC2ClientError(
            "InvalidAMIID.NotFound", f"The image id '[{source_image_id}]' does not exist"
        )
    if source.state != "available":
        raise EC2ClientError(
            "IncorrectState", f"Image {source_image_id} is not in a valid state for copying."
        )
    _check_name_valid(name or "")
    _check_name_free(backend, name)
    image_id = random_ami_id()
    source_size = getattr(source, "volume_size", 8)
    snapshot = _new_snapshot(
        backend,
        source_size,
        f"Copied for DestinationAmi {image_id} from SourceAmi {source_image_id} "
        f"for SourceSnapshot {getattr(source.ebs_snapshot, 'id', '')}",
        backend.account_id,
        image_id,
    )
    snapshot.status = "pending"
    source_encrypted = bool(getattr(source.ebs_snapshot, "encrypted", False))
    if encrypted or source_encrypted:
        # A copy of an encrypted image stays encrypted; without a key, the account's default.
        snapshot.encrypted = True
        snapshot.kms_key_id = kms_key_id or (
            kms_key_id_of(source.ebs_snapshot)
            if source_encrypted and source_region == backend.region_name
            else default_ebs_key(backend)
        )
    image = LocalAmi(
        backend,
        image_id,
        name=name,
        description=description if description is not None else source.description,
        owner_id=backend.account_id,
        owner_alias=None,
        architecture=source.architecture,
        virtualization_type=source.virtualization_type,
        root_device_type=source.root_device_type,
        root_device_name=source.root_device_name,
        platform=source.platform,
        platform_details=getattr(source, "platform_details", "Linux/UNIX"),
        usage_operation=getattr(source, "usage_operation", "RunInstances"),
        boot_mode=getattr(source, "boot_mode", None),
        state="pending",
        snapshot=snapshot,
        volume_size=source_size,
        default_user=getattr(source, "default_user", "ec2-user"),
        source_image_id=source_image_id,
        source_image_region=source_region,
    )
    backend.amis[image_id] = image
    tags: dict[str, str] = {}
    if copy_tags:
        # CopyImageTags copies the user-defined tags of the source image (not its snapshots').
        tags.update({t["key"]: t["value"] for t in source.get_tags()})
    tags.update(_tags_for(tag_specifications, "image"))
    if tags:
        image.add_tags(tags)
    snapshot_tags = _tags_for(tag_specifications, "snapshot")
    if snapshot_tags:
        snapshot.add_tags(snapshot_tags)
    image_attributes.copy_attributes(image, source)  # after the tags: extra snapshots get them
    assert _runtime is not None
    _runtime.image_copied(backend, image, source, source_region)
    return ActionResult({"ImageId": image_id})


def default_ebs_key(backend: EC2Backend) -> str:
    """The ARN of the account's default EBS key (``alias/aws/ebs``) in the backend's region."""
    return f"arn:aws:kms:{backend.region_name}:{backend.account_id}:alias/aws/ebs"


def kms_key_id_of(snapshot: Any) -> str | None:
    return getattr(snapshot, "kms_key_id", None)


def register_image(
    self: EC2Backend, name: str | None = None, description: str | None = None
) -> Ami:
    _check_name_valid(name or "")
    _check_name_free(self, name)
    image = LocalAmi(
        self,
        random_ami_id(),
        name=name or "",
        description=description,
        owner_id=self.account_id,
        owner_alias=None,
        architecture="x86_64",
    )
    self.amis[image.id] = image
    return image


# ----------------------------------------------------------------------------------------------
# DescribeImages: AWS's visibility, owner, deprecation and paging rules over the catalogue


def _encode_token(offset: int, query_key: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{query_key}".encode()).decode()


def _decode_token(token: str, query_key: str) -> int:
    try:
        offset_text, key = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        offset = int(offset_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise EC2ClientError("InvalidParameterValue", f"Invalid NextToken: {token}") from None
    if key != query_key or offset < 0:
        raise EC2ClientError(
            "InvalidParameterValue", "The NextToken does not belong to this request"
        )
    return offset


def _owner_matches(image: Ami, owners: Sequence[str], account_id: str) -> bool:
    """The one owner matcher (core/owners.py); a malformed owner is AWS's error."""
    from amibake.core.owners import owner_matches

    try:
        return owner_matches(image.owner_id, image.owner_alias, owners, account_id)
    except ValueError as error:
        raise EC2ClientError("InvalidUserID.Malformed", str(error)) from None


def _visible(image: Ami, account_id: str) -> bool:
    if image.owner_id == account_id or image.is_public:
        return True
    return any(lp.get("UserId") == account_id for lp in image.launch_permissions)


def _name_filter_fast(filters: dict[str, Any]) -> tuple[re.Pattern[str] | None, dict[str, Any]]:
    """Pull the ``name`` filter out for a compiled match (the hot path of catalogue queries)."""
    values = filters.get("name")
    if not values:
        return None, filters
    rest = {k: v for k, v in filters.items() if k != "name"}
    pattern = "|".join(fnmatch.translate(v) for v in values)
    return re.compile(pattern), rest


def describe_images_response(self: AmisResponse) -> str:
    self.error_on_dryrun()
    backend: EC2Backend = self.ec2_backend
    account_id = backend.account_id
    image_ids: list[str] = self._get_param("ImageIds", [])
    owners: list[str] = self._get_param("Owners", [])
    exec_users: list[str] = self._get_param("ExecutableUsers", [])
    filters = self._filters_from_querystring()
    include_deprecated = self._get_bool_param("IncludeDeprecated", False)
    include_disabled = self._get_bool_param("IncludeDisabled", False)
    max_results = self._get_int_param("MaxResults")
    next_token = self._get_param("NextToken")
    if max_results is not None and not 5 <= max_results <= 1000:
        raise EC2ClientError(
            "InvalidParameterValue", "Value for parameter MaxResults must be between 5 and 1000"
        )
    if image_ids and max_results is not None:
        raise EC2ClientError(
            "InvalidParameterCombination",
            "The parameter imageIdsSet cannot be used with the parameter maxResults",
        )

    now = datetime.now(UTC)
    if image_ids:
        malformed = [i for i in image_ids if not re.fullmatch(r"ami-[0-9a-f]{8,17}", i)]
        if malformed:
            raise EC2ClientError(
                "InvalidAMIID.Malformed", f'Invalid id: "{malformed[0]}" (expecting "ami-...")'
            )
        missing = [i for i in image_ids if i not in backend.amis and i not in backend.deleted_amis]
        if missing:
            listed = ", ".join(missing)
            raise EC2ClientError(
                "InvalidAMIID.NotFound", f"The image id '[{listed}]' does not exist"
            )
        images = [backend.amis[i] for i in image_ids if i in backend.amis]
        images = [i for i in images if _visible(i, account_id)]
    else:
        images = [i for i in backend.amis.values() if _visible(i, account_id)]
        if owners:
            images = [i for i in images if _owner_matches(i, owners, account_id)]
        if exec_users:
            users = {account_id if u == "self" else u for u in exec_users}
            images = [
                i
                for i in images
                if i.is_public or any(lp.get("UserId") in users for lp in i.launch_permissions)
            ]
        if not include_deprecated:
            # Owners always see their own deprecated images.
            images = [
                i
                for i in images
                if i.owner_id == account_id
                or not (isinstance(i, LocalAmi) and i.is_deprecated(now))
            ]
        if not include_disabled:
            images = [i for i in images if i.state != "disabled"]
    if filters:
        name_re, rest = _name_filter_fast(filters)
        if name_re is not None:
            images = [i for i in images if i.name and name_re.match(i.name)]
        if rest:
            images = generic_filter(rest, images)

    result: dict[str, Any] = {}
    if max_results is not None or next_token:
        query_key = _query_key(owners, filters, include_deprecated, exec_users)
        offset = _decode_token(next_token, query_key) if next_token else 0
        size = max_results or 1000
        page = images[offset : offset + size]
        if offset + size < len(images):
            result["NextToken"] = _encode_token(offset + size, query_key)
        images = page
    return render_describe_images(backend, images, result.get("NextToken"))


def _tag(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{xml_escape(str(value))}</{name}>"


def _image_xml(backend: EC2Backend, image: Ami) -> str:
    """One ``<item>`` of DescribeImages, element names as in the EC2 API model.

    moto's generic serializer costs about 2.5 ms an image; catalogue queries
    return thousands, so images are rendered here, and a catalogue image's
    fragment is cached until its state, tags or permissions change.
    """
    tags = backend.tags.get(image.id) or {}
    extra = image_attributes.image_xml_tags(image)
    key = (
        image.state,
        tuple(sorted(tags.items())),
        repr(image.launch_permissions),
        repr((extra, image.description, getattr(image, "deprecation_time", None))),
    )
    cached = getattr(image, "_amibake_xml", None)
    if cached is not None and cached[0] == key:
        text: str = cached[1]
        return text
    parts = [
        "<item>",
        _tag("imageId", image.id),
        _tag("imageLocation", image.image_location),
        _tag("imageState", image.state),
        _tag("imageOwnerId", image.owner_id),
        _tag("creationDate", _iso(image.creation_date)),
        _tag("isPublic", image.is_public),
    ]
    codes = getattr(image, "_product_codes", ())
    if codes:
        parts.append("<productCodes>")
        for code in codes:
            parts.append(f"<item>{_tag('productCode', code)}<type>marketplace</type></item>")
        parts.append("</productCodes>")
    parts += [
        _tag("architecture", image.architecture),
        _tag("imageType", image.image_type),
        _tag("platform", image.platform),
        _tag("platformDetails", getattr(image, "platform_details", None)),
        _tag("usageOperation", getattr(image, "usage_operation", None)),
        _tag("imageOwnerAlias", image.owner_alias),
        _tag("name", image.name),
        _tag("description", image.description),
        _tag("rootDeviceType", image.root_device_type),
        _tag("rootDeviceName", image.root_device_name),
    ]
    mappings = image.block_device_mappings
    if mappings:
        parts.append("<blockDeviceMapping>")
        for mapping in mappings:
            if "Ebs" not in mapping:  # an instance store (virtualName) or a NoDevice
                parts.append(
                    "<item>"
                    + _tag("deviceName", mapping["DeviceName"])
                    + _tag("virtualName", mapping.get("VirtualName"))
                    + _tag("noDevice", mapping.get("NoDevice"))
                    + "</item>"
                )
                continue
            ebs = mapping["Ebs"]
            parts.append(
                "<item>"
                + _tag("deviceName", mapping["DeviceName"])
                + "<ebs>"
                + _tag("snapshotId", ebs.get("SnapshotId"))
                + _tag("volumeSize", ebs.get("VolumeSize"))
                + _tag("deleteOnTermination", ebs.get("DeleteOnTermination"))
                + _tag("volumeType", ebs.get("VolumeType"))
                + _tag("iops", ebs.get("Iops"))
                + _tag("throughput", ebs.get("Throughput"))
                + _tag("encrypted", ebs.get("Encrypted", False))
                + _tag("kmsKeyId", ebs.get("KmsKeyId"))
                + "</ebs></item>"
            )
        parts.append("</blockDeviceMapping>")
    parts.append(_tag("virtualizationType", image.virtualization_type))
    if tags:
        parts.append("<tagSet>")
        for tag_key, tag_value in sorted(tags.items()):
            parts.append(f"<item>{_tag('key', tag_key)}{_tag('value', tag_value)}</item>")
        parts.append("</tagSet>")
    parts += [
        _tag("hypervisor", image.hypervisor),
        _tag("enaSupport", getattr(image, "ena_support", None)),
        _tag("sriovNetSupport", image.sriov),
        _tag("bootMode", image.boot_mode),
        _tag("deprecationTime", getattr(image, "deprecation_time", None)),
        _tag("sourceInstanceId", image.instance_id),
        _tag("sourceImageId", getattr(image, "source_image_id", None)),
        _tag("sourceImageRegion", getattr(image, "source_image_region", None)),
        *(_tag(name, value) for name, value in extra),
        "</item>",
    ]
    fragment = "".join(parts)
    image._amibake_xml = (key, fragment)  # type: ignore[attr-defined]  # amibake's cache on moto's Ami
    return fragment


def render_describe_images(
    backend: EC2Backend, images: Sequence[Ami], next_token: str | None
) -> str:
    body = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">',
        f"<requestId>{uuid.uuid4()}</requestId>",
        "<imagesSet>",
    ]
    body.extend(_image_xml(backend, image) for image in images)
    body.append("</imagesSet>")
    if next_token:
        body.append(_tag("nextToken", next_token))
    body.append("</DescribeImagesResponse>")
    return "".join(body)


def _query_key(
    owners: Sequence[str], filters: dict[str, Any], deprecated: bool, users: Sequence[str]
) -> str:
    text = repr(
        (
            sorted(owners),
            sorted((k, tuple(v)) for k, v in filters.items()),
            deprecated,
            sorted(users),
        )
    )
    return format(binascii.crc32(text.encode()), "08x")


# ----------------------------------------------------------------------------------------------
# Instances


def _instance_type_arches(instance_type: str) -> list[str] | None:
    info = INSTANCE_TYPES.get(instance_type)
    if info is None:
        return None
    return list(info.get("ProcessorInfo", {}).get("SupportedArchitectures", []))


def _wrap_run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def run_instances(
        self: EC2Backend,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: list[str],
        **kwargs: Any,
    ) -> Any:
        if not image_id:
            raise EC2ClientError(
                "MissingParameter", "The request must contain the parameter ImageId"
            )
        if not re.fullmatch(r"ami-[0-9a-f]{8,17}", image_id):
            raise EC2ClientError("InvalidAMIID.Malformed", f'Invalid id: "{image_id}"')
        image = self.amis.get(image_id)
        if image is None or not _visible(image, self.account_id):
            if image_id in self.deleted_amis:
                raise EC2ClientError(
                    "InvalidAMIID.Unavailable",
                    f"The image id '[{image_id}]' is no longer available",
                )
            raise EC2ClientError(
                "InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist"
            )
        if image.state != "available":
            raise EC2ClientError(
                "InvalidAMIID.Unavailable",
                f"The image id '[{image_id}]' is not available (state: {image.state})",
            )
        instance_type = kwargs.get("instance_type") or "m1.small"
        arches = _instance_type_arches(instance_type)
        if arches is None:
            raise EC2ClientError(
                "InvalidParameterValue", f"Invalid value '{instance_type}' for InstanceType."
            )
        if image.architecture and image.architecture not in arches:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"The architecture '{'/'.join(arches)}' of the specified instance type does not "
                f"match the architecture '{image.architecture}' of the specified AMI. Specify an "
                "instance type and an AMI that have matching architectures, and try again.",
            )
        key_name = kwargs.get("key_name")
        if key_name and key_name not in self.key_pairs:
            raise EC2ClientError(
                "InvalidKeyPair.NotFound", f"The key pair '{key_name}' does not exist"
            )
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        for instance in reservation.instances:
            instance.architecture = image.architecture or instance.architecture
            instance.platform = image.platform
            instance._state.name, instance._state.code = "pending", 0
        image_attributes.launched(reservation.instances)
        assert _runtime is not None
        _runtime.instances_launched(self, reservation.instances)
        return reservation

    return run_instances


def _wrap_transition(
    original: Callable[..., list[tuple[Instance, InstanceState]]],
    allowed_from: tuple[str, ...],
    new_state: tuple[str, int],
    hook: str,
    verb: str,
) -> Callable[..., list[tuple[Instance, InstanceState]]]:
    @wraps(original)
    def transition(self: EC2Backend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
        instances = self.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            if instance.state not in allowed_from and instance.state != new_state[0]:
                raise EC2ClientError(
                    "IncorrectInstanceState",
                    f"The instance '{instance.id}' is not in a state from which it can be {verb}.",
                )
        # Instances already on their way there are reported, not re-driven.
        moving = [i for i in instances if i.state != new_state[0]]
        results = original(self, [i.id for i in moving]) if moving else []
        for instance, _previous in results:
            instance._state.name, instance._state.code = new_state
        assert _runtime is not None
        getattr(_runtime, hook)(self, [i for i, _ in results])
        already = [(i, i._state) for i in instances if i not in moving]
        return list(results) + already

    return transition


def _wrap_terminate(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def terminate_instances(self: EC2Backend, instance_ids: list[str]) -> Any:
        instances = self.get_multi_instances_by_id(instance_ids)
        moving = [i for i in instances if i.state not in ("shutting-down", "terminated")]
        results = original(self, [i.id for i in moving]) if moving else []
        for instance, _previous in results:
            instance._state.name, instance._state.code = "shutting-down", 32
        assert _runtime is not None
        _runtime.instances_terminating(self, [i for i, _ in results])
        already = [(i, i._state) for i in instances if i not in moving]
        return list(results) + already

    return terminate_instances


def _wrap_delete_security_group(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def delete_security_group(
        self: EC2Backend, name: str | None = None, group_id: str | None = None
    ) -> Any:
        group = self.get_security_group_by_name_or_id(group_id or name or "")
        if group is not None:
            for reservation in self.reservations.values():
                for instance in reservation.instances:
                    if instance.state == "terminated":
                        continue
                    if any(sg.id == group.id for sg in instance.security_groups):
                        raise DependencyViolationError(
                            f"resource {group.id} has a dependent object"
                        )
        return original(self, name=name, group_id=group_id)

    return delete_security_group


def _wrap_delete_snapshot(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def delete_snapshot(self: EC2Backend, snapshot_id: str) -> Any:
        result = original(self, snapshot_id)
        assert _runtime is not None
        _runtime.snapshot_deleted(self, snapshot_id)
        return result

    return delete_snapshot


def _wrap_deregister(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def deregister_image(self: EC2Backend, ami_id: str) -> Any:
        image_attributes.check_deregistrable(self.amis.get(ami_id))
        result = original(self, ami_id)
        assert _runtime is not None
        _runtime.registry_changed(self)
        return result

    return deregister_image


#: instance families built before the Nitro system (GetConsoleOutput Latest unsupported)
XEN_FAMILIES = frozenset(
    {"c1", "c3", "c4", "cc2", "d2", "f1", "g2", "g3", "g3s", "h1", "i2", "i3"}
    | {"m1", "m2", "m3", "m4", "p2", "p3", "r3", "r4", "t1", "t2", "x1", "x1e"}
)


def nitro_instance_type(instance_type: str) -> bool:
    return instance_type.split(".", 1)[0] not in XEN_FAMILIES


def console_output_response(self: General) -> ActionResult:
    instance_id = self._get_param("InstanceId")
    instance = self.ec2_backend.get_instance(instance_id)
    assert _runtime is not None
    latest = str(self._get_param("Latest") or "").lower() == "true"
    if latest and not nitro_instance_type(instance.instance_type):
        # AWS answers Latest only for instances on the Nitro system
        raise EC2ClientError(
            "UnsupportedOperation",
            "This instance type does not support retrieving the latest console output.",
        )
    text = _runtime.console_output(instance, latest)
    result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
    if text is not None:
        result["Output"] = Base64EncodedString.from_raw_string(text)
    return ActionResult(result)


def _public_dns_name(self: Instance) -> str | None:
    address = getattr(self, "amibake_public_address", None) or getattr(
        self, "amibake_address", None
    )
    if address is not None:
        return address if self.public_ip else None
    name: str | None = _ORIGINAL_PUBLIC_DNS.fget(self)  # type: ignore[attr-defined]  # moto's property, read on the class
    return name


def _private_dns_name(self: Instance) -> str:
    address: str | None = getattr(self, "amibake_address", None)
    if address is not None:
        return address
    name: str = _ORIGINAL_PRIVATE_DNS.fget(self)  # type: ignore[attr-defined]  # moto's property, read on the class
    return name


_ORIGINAL_PUBLIC_DNS = Instance.public_dns_name
_ORIGINAL_PRIVATE_DNS = Instance.private_dns_name


def _snapshot_progress(self: Snapshot) -> str:
    return "100%" if self.status == "completed" else getattr(self, "amibake_progress", "0%")


def _describe_regions(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def describe_regions(self: EC2Backend, region_names: list[str] | None = None) -> Any:
        regions = [r for r in original(self, region_names) if r.name in COMMERCIAL_REGIONS]
        if region_names:
            unknown = sorted(set(region_names) - {r.name for r in regions})
            if unknown:
                raise EC2ClientError("InvalidParameterValue", f"Invalid region: {unknown[0]}")
        return regions

    return describe_regions


def _wrap_backend_init(original: Callable[..., None]) -> Callable[..., None]:
    @wraps(original)
    def __init__(self: EC2Backend, region_name: str, account_id: str) -> None:
        original(self, region_name, account_id)
        if _runtime is not None and region_name in COMMERCIAL_REGIONS:
            for image in _runtime.catalog(region_name):
                self.amis[image.image_id] = catalog_ami(self, image)
            _runtime.restore_region(self)

    return __init__


def _wrap_describe_images(original: Callable[..., list[Ami]]) -> Callable[..., list[Ami]]:
    """Images by id straight from the backend's dict (issue 16): moto's RunInstances looks its
    AMI up by id, and its Instance by an ``image-id`` filter, each a scan of every image of
    the region (6,000 and more here). Anything else is moto's own search."""

    @wraps(original)
    def describe_images(
        self: AmiBackend,
        ami_ids: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        exec_users: list[str] | None = None,
        owners: list[str] | None = None,
    ) -> list[Ami]:
        wanted: list[str] | None = None
        if not exec_users and not owners:
            if ami_ids and not filters:
                wanted = list(ami_ids)
            elif not ami_ids and filters and set(filters) == {"image-id"}:
                value = filters["image-id"]
                wanted = [value] if isinstance(value, str) else [str(v) for v in value]
        if wanted is None or not all(
            i.startswith("ami-") and "*" not in i and "?" not in i for i in wanted
        ):
            return original(self, ami_ids, filters, exec_users, owners)
        images = [self.amis[i] for i in dict.fromkeys(wanted) if i in self.amis]
        if ami_ids and not images and not any(i in self.deleted_amis for i in wanted):
            raise InvalidAMIIdError(ami_ids)
        return images

    return describe_images


def _wrap_reboot(original: Callable[..., Any]) -> Callable[..., Any]:
    """RebootInstances: the machine behind each running instance restarts (issue 13)."""

    def reboot_instances(self: InstanceBackend, instance_ids: list[str]) -> Any:
        result = original(self, instance_ids)
        hook = getattr(_runtime, "instances_rebooting", None)
        running = [i for i in result if i.state == "running"]
        if hook is not None and running:
            hook(self, running)
        return result

    return reboot_instances


def install(runtime: Runtime) -> None:
    """Point the extensions at ``runtime``; patches moto's classes the first time."""
    global _runtime, _installed
    _runtime = runtime
    if _installed:
        return
    _installed = True
    # DescribeInstances filters real clients use that moto does not map yet.
    filter_dict_attribute_mapping.setdefault("client-token", "client_token")
    # moto's default images are years old and the same in every region: ours replace them.
    AmiBackend._load_amis = lambda self: None  # type: ignore[method-assign]  # patching moto's method
    EC2Backend.__init__ = _wrap_backend_init(EC2Backend.__init__)  # type: ignore[method-assign]  # patching moto's method
    AmiBackend.create_image = create_image  # type: ignore[method-assign,assignment]  # patching moto's method
    AmiBackend.register_image = register_image  # type: ignore[method-assign,assignment]  # patching moto's method
    AmiBackend.deregister_image = _wrap_deregister(AmiBackend.deregister_image)  # type: ignore[method-assign]  # patching moto's method
    AmisResponse.copy_image = copy_image_response  # type: ignore[method-assign]  # patching moto's method
    AmisResponse.describe_images = describe_images_response  # type: ignore[method-assign,assignment]  # patching moto's method: our XML
    AmiBackend.describe_images = _wrap_describe_images(AmiBackend.describe_images)  # type: ignore[method-assign]  # patching moto's method
    General.get_console_output = console_output_response  # type: ignore[method-assign]  # patching moto's method
    InstanceBackend.run_instances = _wrap_run_instances(InstanceBackend.run_instances)  # type: ignore[method-assign]  # patching moto's method
    InstanceBackend.start_instances = _wrap_transition(  # type: ignore[method-assign]  # patching moto's method
        InstanceBackend.start_instances,
        ("stopped",),
        ("pending", 0),
        "instances_starting",
        "started",
    )
    InstanceBackend.stop_instances = _wrap_transition(  # type: ignore[method-assign]  # patching moto's method
        InstanceBackend.stop_instances,
        ("pending", "running"),
        ("stopping", 64),
        "instances_stopping",
        "stopped",
    )
    InstanceBackend.terminate_instances = _wrap_terminate(InstanceBackend.terminate_instances)  # type: ignore[method-assign]  # patching moto's method
    InstanceBackend.reboot_instances = _wrap_reboot(InstanceBackend.reboot_instances)  # type: ignore[method-assign]  # patching moto's method
    SecurityGroupBackend.delete_security_group = _wrap_delete_security_group(  # type: ignore[method-assign]  # patching moto's method
        SecurityGroupBackend.delete_security_group
    )
    EBSBackend.delete_snapshot = _wrap_delete_snapshot(EBSBackend.delete_snapshot)  # type: ignore[method-assign]  # patching moto's method
    RegionsAndZonesBackend.describe_regions = _describe_regions(  # type: ignore[method-assign]  # patching moto's method
        RegionsAndZonesBackend.describe_regions
    )
    Instance.public_dns_name = property(_public_dns_name)  # type: ignore[assignment,method-assign]  # patching moto's property
    Instance.private_dns_name = property(_private_dns_name)  # type: ignore[assignment,method-assign]  # patching moto's property
    Snapshot.progress = property(_snapshot_progress)  # type: ignore[assignment,method-assign]  # patching moto's property
    image_attributes.install(LocalAmi)
    # AWS's public AMI parameters (/aws/service/...), pointing at our catalogue's images.
    from amibake.core.local import ssm_public

    ssm_public.install()
    # EC2 Fleet spot launches from the whole launch template (the spot step's fleets).
    from amibake.core.local import fleets

    fleets.install()


def uninstall() -> None:
    """Detach the runtime and forget every region (the patches stay, inert without a runtime)."""
    global _runtime
    _runtime = None
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.ssm.models import ssm_backends

    every: tuple[dict[str, Any], ...] = (ec2_backends, ssm_backends, secretsmanager_backends)
    for backends in every:
        for account in list(backends.values()):
            account.clear()


def restore_snapshot(
    backend: EC2Backend, snapshot_id: str, size: int, description: str, from_ami: str | None
) -> Snapshot:
    """Re-create a persisted snapshot under its old id."""
    return _new_snapshot(backend, size, description, backend.account_id, from_ami, snapshot_id)
