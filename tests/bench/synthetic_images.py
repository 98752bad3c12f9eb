"""100,000 realistic DescribeImages entries, from the local cloud's catalogue data (no server).

The catalogues of several regions are combined; every region has its own image ids,
so names repeat (as when an account copies images around) but ids do not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from amibake.core.local.images import CatalogImage, catalog_for_region, catalog_regions


def api_image(image: CatalogImage) -> dict[str, Any]:
    """A CatalogImage the way DescribeImages reports it."""
    entry: dict[str, Any] = {
        "ImageId": image.image_id,
        "Name": image.name,
        "Description": image.description,
        "OwnerId": image.owner_id,
        "Architecture": image.architecture,
        "VirtualizationType": image.virtualization_type,
        "RootDeviceType": image.root_device_type,
        "RootDeviceName": image.root_device_name,
        "CreationDate": image.creation_date.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "PlatformDetails": image.platform_details,
        "UsageOperation": image.usage_operation,
        "EnaSupport": image.ena_support,
        "Public": image.public,
        "State": "available",
        "ImageType": "machine",
        "Hypervisor": "xen",
        "ImageLocation": image.image_location,
        "BlockDeviceMappings": [
            {
                "DeviceName": image.root_device_name,
                "Ebs": {
                    "DeleteOnTermination": True,
                    "SnapshotId": "snap-" + image.image_id[4:],
                    "VolumeSize": image.volume_size,
                    "VolumeType": image.volume_type,
                    "Encrypted": False,
                },
            }
        ],
    }
    if image.owner_alias:
        entry["ImageOwnerAlias"] = image.owner_alias
    if image.deprecation_time:
        entry["DeprecationTime"] = image.deprecation_time.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if image.platform:
        entry["Platform"] = image.platform
    if image.boot_mode:
        entry["BootMode"] = image.boot_mode
    return entry


def synthetic_images(count: int = 100_000) -> list[dict[str, Any]]:
    """``count`` images: every region's catalogue, then again with fresh ids until enough."""
    images: list[dict[str, Any]] = []
    for copy in range(100):
        for region in catalog_regions():
            for image in catalog_for_region(region):
                entry = api_image(image)
                if copy:
                    digest = hashlib.blake2b(f"{image.image_id}/{copy}".encode(), digest_size=9)
                    entry["ImageId"] = "ami-" + digest.hexdigest()[:17]
                images.append(entry)
                if len(images) >= count:
                    return images
    raise RuntimeError(f"could not make {count} images")
