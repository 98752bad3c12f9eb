"""Image owners: the well-known publishers' account ids, the aliases EC2 takes, one matcher.

The one home of these facts: the template schema resolves a template's ``owners``
with :data:`OWNER_NAMES`, the browser's owner presets and the local cloud's
catalogue use :data:`PUBLISHER_ACCOUNTS`, and both DescribeImages implementations
of the local cloud (the catalogue and the moto extension) filter with
:func:`owner_matches`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

#: Publishing accounts of the well-known image series. Marketplace vendors do not publish
#: under their own account: AWS Marketplace owns every listed image (``aws-marketplace``).
PUBLISHER_ACCOUNTS: Mapping[str, str] = MappingProxyType(
    {
        "canonical": "099720109477",
        "amazon": "137112412989",
        "amazon-ecs": "591542846629",
        "amazon-eks": "602401143452",
        "amazon-dlami": "898082745236",
        "debian": "136693071363",
        "redhat": "309956199498",
        "microsoft-via-amazon": "801119661308",
        "suse-via-amazon": "013907871322",
        "aws-marketplace": "679593333241",
        "centos": "125523088429",
        "rocky": "792107900819",
        "almalinux": "764336703387",
    }
)

#: Names a template may give in ``owners`` for a publisher without an EC2 alias: amibake
#: resolves them to the account id (Packer passes owners through; these are conveniences).
OWNER_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "canonical": PUBLISHER_ACCOUNTS["canonical"],
        "aws-canonical": PUBLISHER_ACCOUNTS["canonical"],
        "debian": PUBLISHER_ACCOUNTS["debian"],
        "redhat": PUBLISHER_ACCOUNTS["redhat"],
    }
)

#: Owner aliases DescribeImages matches against an image's ``ImageOwnerAlias``.
#: ``microsoft`` is one Packer's docs name; no image carries it today, so it matches none.
IMAGE_OWNER_ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault", "microsoft")

#: Every alias DescribeImages takes as it is in ``Owners`` (``self``: the caller's account).
EC2_OWNER_ALIASES = (*IMAGE_OWNER_ALIASES, "self")

_ACCOUNT_ID = re.compile(r"\d{12}")


def is_account_id(value: str) -> bool:
    """A 12-digit AWS account id."""
    return _ACCOUNT_ID.fullmatch(value) is not None


def owner_matches(
    owner_id: str, owner_alias: str | None, owners: Sequence[str], self_account: str
) -> bool:
    """DescribeImages ``Owners`` semantics for one image (``owner_id``, ``owner_alias``).

    An alias matches the image's owner alias only (Canonical's images, which have none,
    are matched by their account id alone), ``self`` matches ``self_account``, and a
    12-digit id matches the owner id. Empty ``owners`` place no restriction. Anything
    else raises ValueError, as AWS refuses it (``InvalidUserID.Malformed``).
    """
    if not owners:
        return True
    matched = False
    for owner in owners:
        if owner in IMAGE_OWNER_ALIASES:
            matched = matched or owner_alias == owner
        elif owner == "self":
            matched = matched or owner_id == self_account
        elif is_account_id(owner):
            matched = matched or owner_id == owner
        else:
            raise ValueError(
                f"Invalid owner {owner!r}: expected self, "
                f"{', '.join(IMAGE_OWNER_ALIASES)} or a 12-digit account id"
            )
    return matched


#: Display names of the publishing accounts (the browser's Owner column and detail panel).
PUBLISHER_LABELS: Mapping[str, str] = MappingProxyType(
    {
        PUBLISHER_ACCOUNTS["canonical"]: "Canonical",
        PUBLISHER_ACCOUNTS["amazon"]: "Amazon",
        PUBLISHER_ACCOUNTS["amazon-ecs"]: "Amazon ECS",
        PUBLISHER_ACCOUNTS["amazon-eks"]: "Amazon EKS",
        PUBLISHER_ACCOUNTS["amazon-dlami"]: "Amazon DLAMI",
        PUBLISHER_ACCOUNTS["debian"]: "Debian",
        PUBLISHER_ACCOUNTS["redhat"]: "Red Hat",
        PUBLISHER_ACCOUNTS["microsoft-via-amazon"]: "Microsoft",
        PUBLISHER_ACCOUNTS["suse-via-amazon"]: "SUSE",
        PUBLISHER_ACCOUNTS["aws-marketplace"]: "Marketplace",
        PUBLISHER_ACCOUNTS["centos"]: "CentOS",
        PUBLISHER_ACCOUNTS["rocky"]: "Rocky Linux",
        PUBLISHER_ACCOUNTS["almalinux"]: "AlmaLinux",
    }
)


def owner_label(owner_id: str, owner_alias: str | None) -> str:
    """What a person calls an image's owner: the publisher's name, else its EC2 alias, else
    the account id (``Canonical`` for 099720109477, which has no EC2 alias)."""
    return PUBLISHER_LABELS.get(owner_id) or owner_alias or owner_id
