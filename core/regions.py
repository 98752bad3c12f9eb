"""AWS region names, by partition.

Kept as data rather than asked of botocore at run time so that template
validation works offline and the list is the same everywhere.
"""

from __future__ import annotations

#: Regions of the commercial ``aws`` partition (opt-in regions included).
COMMERCIAL_REGIONS: tuple[str, ...] = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

#: Regions outside the commercial partition: known names, but not served by the local cloud.
OTHER_PARTITION_REGIONS: tuple[str, ...] = (
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
)

ALL_REGIONS: frozenset[str] = frozenset(COMMERCIAL_REGIONS + OTHER_PARTITION_REGIONS)


def is_known_region(name: str) -> bool:
    return name in ALL_REGIONS


def is_commercial_region(name: str) -> bool:
    return name in COMMERCIAL_REGIONS
