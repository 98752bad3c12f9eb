"""Owners: one home for publisher ids and aliases, one matcher the local cloud's two
DescribeImages paths share (the catalogue and the moto extension)."""

from __future__ import annotations

import botocore.exceptions
import pytest

from amibake.core.local.cloud import LocalCloud
from amibake.core.owners import EC2_OWNER_ALIASES, OWNER_NAMES, PUBLISHER_ACCOUNTS, owner_matches
from amibake.core.settings import BUILTIN_OWNER_PRESETS
from amibake.core.templates import schema

CANONICAL = "099720109477"


def test_the_facts_live_in_one_place() -> None:
    assert OWNER_NAMES["canonical"] == OWNER_NAMES["aws-canonical"] == CANONICAL
    assert PUBLISHER_ACCOUNTS["canonical"] == CANONICAL
    assert schema.OWNER_ALIASES is OWNER_NAMES and schema.EC2_OWNER_ALIASES is EC2_OWNER_ALIASES
    presets = {p.key: p.owners for p in BUILTIN_OWNER_PRESETS}
    assert presets["canonical"] == (CANONICAL,)
    assert presets["debian"] == (PUBLISHER_ACCOUNTS["debian"],)


def test_owner_matches_follows_describe_images() -> None:
    me = "111122223333"
    assert owner_matches(CANONICAL, None, [], me)  # no owners: no restriction
    assert owner_matches(CANONICAL, None, [CANONICAL], me)
    assert not owner_matches(CANONICAL, None, ["amazon"], me)  # Canonical has no alias
    assert owner_matches("137112412989", "amazon", ["amazon"], me)
    assert not owner_matches("137112412989", "amazon", ["137112412989"[:-1] + "0"], me)
    assert owner_matches(me, None, ["self"], me)
    assert owner_matches("679593333241", "aws-backup-vault", ["aws-backup-vault"], me)
    for bad in ("canonical", "12345", "Amazon"):
        with pytest.raises(ValueError, match="owner"):
            owner_matches(CANONICAL, None, [bad], me)


def test_both_describe_images_paths_agree(cloud: LocalCloud) -> None:
    ec2 = cloud.client("ec2", "us-east-1")
    canonical = ec2.describe_images(Owners=[CANONICAL], MaxResults=5)["Images"]
    assert canonical and {i["OwnerId"] for i in canonical} == {CANONICAL}
    assert not any(i.get("ImageOwnerAlias") for i in canonical)
    assert ec2.describe_images(Owners=["aws-backup-vault"])["Images"] == []
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_images(Owners=["not-an-owner"])
    assert caught.value.response["Error"]["Code"] == "InvalidUserID.Malformed"
