"""The local cloud's AMI catalogue: size, determinism, naming, owners, dates."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from amibake.core.local.images import (
    CATALOG_END,
    OWNER_ACCOUNTS,
    CatalogImage,
    catalog_for_region,
    catalog_regions,
    matches_owner,
)
from amibake.core.regions import COMMERCIAL_REGIONS, OTHER_PARTITION_REGIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
CANONICAL = "099720109477"
DEBIAN = "136693071363"
REDHAT = "309956199498"
MARKETPLACE = "679593333241"
SEED_WILDCARD = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
AMI_NAME = re.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}")
END = datetime(CATALOG_END.year, CATALOG_END.month, CATALOG_END.day, 23, 59, 59, tzinfo=UTC)

FINGERPRINT_CODE = """
import dataclasses, hashlib
from amibake.core.local.images import catalog_for_region
digest = hashlib.sha256()
for image in catalog_for_region("us-east-1"):
    digest.update(repr(dataclasses.astuple(image)).encode())
print(digest.hexdigest())
"""


def fingerprint(images: Iterable[CatalogImage]) -> str:
    digest = hashlib.sha256()
    for image in images:
        digest.update(repr(dataclasses.astuple(image)).encode())
    return digest.hexdigest()


def named(images: Iterable[CatalogImage], pattern: str) -> list[CatalogImage]:
    """Images whose name matches; for Ubuntu patterns, Canonical's own images only.

    (The Marketplace relists Ubuntu under the same names plus a listing id; see
    test_marketplace_relists_ubuntu_for_the_seed_filter.)
    """
    return [
        image
        for image in images
        if fnmatch.fnmatchcase(image.name, pattern)
        and (not pattern.startswith("ubuntu") or image.owner_id == CANONICAL)
    ]


@pytest.fixture(scope="module")
def us_east_1() -> tuple[CatalogImage, ...]:
    return catalog_for_region("us-east-1")


# --- size and regions --------------------------------------------------------


def test_regions_are_the_commercial_ones() -> None:
    assert catalog_regions() == COMMERCIAL_REGIONS


def test_us_east_1_holds_at_least_5000_images(us_east_1: tuple[CatalogImage, ...]) -> None:
    assert len(us_east_1) >= 5000


@pytest.mark.parametrize("region", COMMERCIAL_REGIONS)
def test_every_commercial_region_holds_at_least_1000_images(region: str) -> None:
    assert len(catalog_for_region(region)) >= 1000


def test_older_and_newer_regions_hold_fewer_images(us_east_1: tuple[CatalogImage, ...]) -> None:
    us_west_1 = len(catalog_for_region("us-west-1"))
    newest = len(catalog_for_region("ap-southeast-7"))
    assert len(us_east_1) > us_west_1 > newest
    assert 2000 <= us_west_1 <= 4000


@pytest.mark.parametrize("region", [*OTHER_PARTITION_REGIONS, "moon-central-1", ""])
def test_non_commercial_region_is_refused(region: str) -> None:
    with pytest.raises(ValueError, match="commercial"):
        catalog_for_region(region)


# --- determinism and ids -----------------------------------------------------


def test_two_calls_give_equal_catalogues(us_east_1: tuple[CatalogImage, ...]) -> None:
    again = catalog_for_region("us-east-1")
    assert again == us_east_1
    catalog_for_region.cache_clear()
    rebuilt = catalog_for_region("us-east-1")
    assert rebuilt is not us_east_1
    assert rebuilt == us_east_1


def test_catalogue_is_identical_across_processes(us_east_1: tuple[CatalogImage, ...]) -> None:
    expected = fingerprint(us_east_1)
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        result = subprocess.run(
            [sys.executable, "-c", FINGERPRINT_CODE],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert result.stdout.strip() == expected


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-6"])
def test_image_ids_are_well_formed_and_unique(region: str) -> None:
    images = catalog_for_region(region)
    ids = [image.image_id for image in images]
    assert all(re.fullmatch(r"ami-[0-9a-f]{17}", image_id) for image_id in ids)
    assert len(set(ids)) == len(ids)
    names = [image.name for image in images]
    assert len(set(names)) == len(names)


def test_same_name_has_a_different_id_in_each_region(us_east_1: tuple[CatalogImage, ...]) -> None:
    by_name = {image.name: image.image_id for image in us_east_1}
    shared = 0
    for region in ("us-west-2", "eu-west-1", "ap-northeast-1", "sa-east-1"):
        for image in catalog_for_region(region):
            if image.name in by_name:
                shared += 1
                assert image.image_id != by_name[image.name], (region, image.name)
    assert shared > 5000


def test_newest_image_of_a_series_is_in_every_region() -> None:
    # A template's most_recent filter must find the same release everywhere.
    pattern = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
    newest = {
        max(named(catalog_for_region(region), pattern), key=lambda i: i.creation_date).name
        for region in COMMERCIAL_REGIONS
    }
    assert len(newest) == 1


# --- the seed's source filter ------------------------------------------------


def _ubuntu_serial(name: str) -> tuple[str, int]:
    match = re.search(r"-(\d{8})(?:\.(\d+))?$", name)
    assert match, name
    return match.group(1), int(match.group(2) or 0)


@pytest.mark.parametrize(
    ("region", "at_least"), [("us-east-1", 50), ("eu-central-1", 30), ("ca-west-1", 10)]
)
def test_seed_wildcard_matches_many_and_newest_has_newest_serial(
    region: str, at_least: int
) -> None:
    matches = named(catalog_for_region(region), SEED_WILDCARD)
    assert len(matches) >= at_least
    assert {image.owner_id for image in matches} == {CANONICAL}
    assert {image.architecture for image in matches} == {"x86_64"}
    newest = max(matches, key=lambda image: image.creation_date)
    assert _ubuntu_serial(newest.name) == max(_ubuntu_serial(i.name) for i in matches)


def test_marketplace_relists_ubuntu_for_the_seed_filter(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    # The seed filters by owner "aws-marketplace" with a plain Canonical name wildcard.
    listed = [
        image
        for image in us_east_1
        if matches_owner(image, ["aws-marketplace"], "111122223333")
        and fnmatch.fnmatchcase(image.name, SEED_WILDCARD)
    ]
    assert len(listed) >= 5
    assert {image.owner_id for image in listed} == {MARKETPLACE}
    assert {image.default_user for image in listed} == {"ubuntu"}
    assert all(image.product_codes for image in listed)


# --- owners ------------------------------------------------------------------


def owned(images: Iterable[CatalogImage], *owners: str, me: str = "111122223333") -> set[str]:
    return {image.owner_id for image in images if matches_owner(image, owners, me)}


def test_owner_alias_amazon_excludes_canonical_debian_redhat_and_marketplace(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    amazon = [image for image in us_east_1 if matches_owner(image, ["amazon"], "111122223333")]
    assert {image.owner_alias for image in amazon} == {"amazon"}
    owners = {image.owner_id for image in amazon}
    assert OWNER_ACCOUNTS["amazon"] in owners
    assert OWNER_ACCOUNTS["microsoft-via-amazon"] in owners
    assert owners.isdisjoint({CANONICAL, DEBIAN, REDHAT, MARKETPLACE})
    names = [image.name for image in amazon]
    assert any(name.startswith("al2023-ami-") for name in names)
    assert any(name.startswith("Windows_Server-") for name in names)
    assert not any(name.startswith("ubuntu/") for name in names)


def test_owner_alias_marketplace_matches_marketplace_only(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    market = [i for i in us_east_1 if matches_owner(i, ["aws-marketplace"], "111122223333")]
    assert 200 <= len(market) < len(us_east_1) // 5
    assert {image.owner_id for image in market} == {MARKETPLACE}
    assert {image.owner_alias for image in market} == {"aws-marketplace"}
    assert all(len(image.product_codes) == 1 for image in market)
    assert all(re.fullmatch(r"[a-z0-9]{25}", image.product_codes[0]) for image in market)


def test_account_id_owners_and_their_missing_alias(us_east_1: tuple[CatalogImage, ...]) -> None:
    for account in (CANONICAL, DEBIAN, REDHAT):
        images = [i for i in us_east_1 if matches_owner(i, [account], "111122223333")]
        assert len(images) >= 100
        assert {image.owner_id for image in images} == {account}
        assert {image.owner_alias for image in images} == {None}
    assert owned(us_east_1, CANONICAL, "amazon") == owned(us_east_1, "amazon") | {CANONICAL}


def test_owner_self_matches_only_the_callers_account(us_east_1: tuple[CatalogImage, ...]) -> None:
    assert owned(us_east_1, "self") == set()
    assert owned(us_east_1, "self", me=DEBIAN) == {DEBIAN}
    assert owned(us_east_1, "123456789012") == set()


def test_no_owners_matches_everything_and_malformed_owner_is_refused(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    assert all(matches_owner(image, [], "111122223333") for image in us_east_1[:50])
    for bad in ("canonical", "12345", "Amazon"):
        with pytest.raises(ValueError, match="owner"):
            matches_owner(us_east_1[0], [bad], "111122223333")


# --- families, architectures, dates ------------------------------------------

FAMILIES: dict[str, Callable[[CatalogImage], bool]] = {
    "ubuntu-20.04": lambda i: i.owner_id == CANONICAL and "/ubuntu-focal-20.04-" in i.name,
    "ubuntu-22.04": lambda i: (
        i.owner_id == CANONICAL and i.name.startswith("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-")
    ),
    "ubuntu-24.04": lambda i: (
        i.owner_id == CANONICAL
        and i.name.startswith("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-")
    ),
    "amazon-linux-2": lambda i: i.name.startswith("amzn2-ami-"),
    "amazon-linux-2023": lambda i: i.name.startswith("al2023-ami-"),
    "debian-11": lambda i: i.name.startswith("debian-11-"),
    "debian-12": lambda i: i.name.startswith("debian-12-"),
    "rhel-8": lambda i: i.name.startswith("RHEL-8."),
    "rhel-9": lambda i: i.name.startswith("RHEL-9."),
    "marketplace": lambda i: i.owner_alias == "aws-marketplace",
}
CURRENT_FAMILIES = ("ubuntu-22.04", "ubuntu-24.04", "amazon-linux-2023", "debian-12", "rhel-9")


@pytest.mark.parametrize("family", FAMILIES)
def test_family_has_both_architectures_in_us_east_1(
    family: str, us_east_1: tuple[CatalogImage, ...]
) -> None:
    arches = {image.architecture for image in us_east_1 if FAMILIES[family](image)}
    assert {"x86_64", "arm64"} <= arches


@pytest.mark.parametrize("region", COMMERCIAL_REGIONS)
def test_current_families_have_both_architectures_everywhere(region: str) -> None:
    images = catalog_for_region(region)
    for family in CURRENT_FAMILIES:
        arches = {image.architecture for image in images if FAMILIES[family](image)}
        assert {"x86_64", "arm64"} <= arches, family


def test_legacy_images_exist(us_east_1: tuple[CatalogImage, ...]) -> None:
    paravirtual = [i for i in us_east_1 if i.virtualization_type == "paravirtual"]
    instance_store = [i for i in us_east_1 if i.root_device_type == "instance-store"]
    assert paravirtual and instance_store
    assert all(not image.ena_support for image in paravirtual)
    assert any(image.architecture == "i386" for image in us_east_1)
    assert {i.virtualization_type for i in us_east_1} == {"hvm", "paravirtual"}


def test_some_images_are_deprecated_and_most_are_not(us_east_1: tuple[CatalogImage, ...]) -> None:
    deprecated = [i for i in us_east_1 if i.deprecation_time and i.deprecation_time < END]
    current = [i for i in us_east_1 if not i.deprecation_time or i.deprecation_time >= END]
    assert len(deprecated) >= 500
    assert len(current) > len(deprecated)
    assert any(i.deprecation_time is None for i in current)
    assert any(i.deprecation_time is not None for i in current)
    for image in us_east_1:
        if image.deprecation_time is not None:
            assert image.deprecation_time > image.creation_date
            assert image.deprecation_time.second == 0


def test_canonical_deprecates_two_years_after_creation(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    for image in named(us_east_1, "ubuntu/images/*"):
        assert image.deprecation_time is not None
        assert 729 <= (image.deprecation_time - image.creation_date).days <= 730


SERIAL_PATTERNS = (
    # (name pattern, regex for the date in the name, date format)
    # Marketplace relistings of Ubuntu append a listing id after the serial.
    ("ubuntu*/images/*", r"-(\d{8})(?:\.\d+)?(?:-[0-9a-f-]{36})?$", "%Y%m%d"),
    ("amzn2-ami-*", r"-2\.0\.(\d{8})", "%Y%m%d"),
    ("amzn-ami-*", r"-20\d\d\.\d\d\.\d\.(\d{8})", "%Y%m%d"),
    ("al2023-ami-*", r"-2023\.\d+\.(\d{8})", "%Y%m%d"),
    ("debian-*", r"-(\d{8})-\d+$", "%Y%m%d"),
    ("RHEL-*", r"_HVM-(\d{8})-", "%Y%m%d"),
    ("Windows_Server-*", r"-(\d{4}\.\d{2}\.\d{2})$", "%Y.%m.%d"),
    ("amazon-eks-*", r"-v(\d{8})$", "%Y%m%d"),
    ("suse-sles-*", r"-v(\d{8})-", "%Y%m%d"),
)


@pytest.mark.parametrize("region", ["us-east-1", "ap-south-2"])
def test_creation_date_is_the_day_of_the_serial(region: str) -> None:
    checked = 0
    for image in catalog_for_region(region):
        assert image.creation_date.tzinfo is UTC
        assert image.creation_date.date() <= CATALOG_END
        for pattern, regex, fmt in SERIAL_PATTERNS:
            if fnmatch.fnmatchcase(image.name, pattern):
                match = re.search(regex, image.name)
                assert match, image.name
                assert image.creation_date.date() == datetime.strptime(match[1], fmt).date()
                checked += 1
                break
    assert checked >= 900


def test_ubuntu_records_follow_canonical_conventions(us_east_1: tuple[CatalogImage, ...]) -> None:
    noble = named(us_east_1, "ubuntu/images/*/ubuntu-noble-24.04-*")
    assert noble and all("/hvm-ssd-gp3/" in image.name for image in noble)
    for image in named(us_east_1, "ubuntu*/images/*"):
        assert image.owner_id == CANONICAL and image.owner_alias is None
        assert image.root_device_name == "/dev/sda1"
        assert image.default_user == "ubuntu"
        assert image.image_location == f"{CANONICAL}/{image.name}"
        arch = "amd64" if image.architecture == "x86_64" else image.architecture
        assert f"-{arch}-" in image.name
        assert image.description.startswith("Canonical, Ubuntu")
    dated = [i for i in named(us_east_1, SEED_WILDCARD) if i.creation_date.year == 2024]
    assert dated
    for image in dated:
        day = image.creation_date.date().isoformat()
        assert image.description == (
            f"Canonical, Ubuntu, 20.04 LTS, amd64 focal image build on {day}"
        )


def test_root_devices_and_users_by_family(us_east_1: tuple[CatalogImage, ...]) -> None:
    expected = {
        "amazon-linux-2023": ("/dev/xvda", "ec2-user"),
        "amazon-linux-2": ("/dev/xvda", "ec2-user"),
        "debian-12": ("/dev/xvda", "admin"),
        "rhel-9": ("/dev/sda1", "ec2-user"),
    }
    for family, (root, user) in expected.items():
        images = [image for image in us_east_1 if FAMILIES[family](image)]
        assert {(image.root_device_name, image.default_user) for image in images} == {(root, user)}
    rhel = [image for image in us_east_1 if image.owner_id == REDHAT]
    assert {(i.platform_details, i.usage_operation) for i in rhel} == {
        ("Red Hat Enterprise Linux", "RunInstances:0010")
    }


def test_windows_images(us_east_1: tuple[CatalogImage, ...]) -> None:
    windows = named(us_east_1, "Windows_Server-*")
    assert len(windows) >= 100
    assert named(windows, "Windows_Server-2022-English-Full-Base-*")
    assert named(windows, "Windows_Server-2019-English-Core-Base-*")
    assert named(windows, "Windows_Server-2022-English-Full-SQL_2022_Standard-*")
    for image in windows:
        assert image.platform == "windows"
        assert image.default_user is None
        assert image.platform_details.startswith("Windows")
        assert image.usage_operation.startswith("RunInstances:0")
        assert (image.owner_id, image.owner_alias) == (
            OWNER_ACCOUNTS["microsoft-via-amazon"],
            "amazon",
        )
        assert image.root_device_name == "/dev/sda1"
        assert image.volume_size >= 30
    others = [image for image in us_east_1 if not image.name.startswith("Windows_Server-")]
    assert all(image.platform is None and image.default_user for image in others)


def test_records_are_well_typed(us_east_1: tuple[CatalogImage, ...]) -> None:
    for image in us_east_1:
        assert re.fullmatch(r"\d{12}", image.owner_id)
        assert image.owner_alias in (None, "amazon", "aws-marketplace")
        assert image.architecture in ("x86_64", "arm64", "i386")
        assert image.root_device_type in ("ebs", "instance-store")
        assert image.root_device_name in ("/dev/sda1", "/dev/xvda")
        assert image.boot_mode in (None, "uefi", "legacy-bios", "uefi-preferred")
        assert image.volume_type in ("gp2", "gp3", "standard")
        assert image.volume_size > 0
        assert image.public is True
        assert image.image_location.endswith("/" + image.name)
        if image.architecture == "arm64":
            assert image.boot_mode == "uefi"


def test_every_name_is_a_valid_ami_name() -> None:
    for region in COMMERCIAL_REGIONS:
        for image in catalog_for_region(region):
            assert AMI_NAME.fullmatch(image.name), (region, image.name)


def test_serials_run_from_release_to_about_october_2026(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    noble = named(us_east_1, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*")
    days = sorted(image.creation_date.date() for image in noble)
    assert date(2024, 4, 25) <= days[0] < date(2024, 10, 1)
    assert date(2026, 10, 1) <= days[-1] <= CATALOG_END
    assert len(set(days)) == len(days)  # one serial a day at most


# --- series real templates filter for (issue 13) ------------------------------

ISSUE_13_FILTERS = (
    # (owner, name filter) as real templates write them
    (CANONICAL, "ubuntu/images/*ubuntu-bionic-18.04-amd64-server-*"),
    (CANONICAL, "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*"),
    (CANONICAL, "*ubuntu-xenial-16.04-amd64-server-*"),
    (CANONICAL, "ubuntu-pro-server/images/hvm-ssd/ubuntu-bionic-18.04-amd64-pro-server-*"),
    (CANONICAL, "ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-pro-server-*"),
    ("amazon", "amzn2-ami-minimal-hvm-*"),
    ("amazon", "amzn2-ami-minimal-hvm-*-gp2"),
    ("amazon", "amzn2-ami-ecs-hvm-*-x86_64-ebs"),
    ("amazon", "amazon-eks-node-*"),
    ("amazon", "al2023-ami-minimal-2023.*-kernel-6.18-*"),
    ("amazon", "al2023-ami-2023.*-kernel-6.18-arm64"),
    ("amazon", "al2023-ami-2023.*-kernel-6.12-x86_64"),
    ("amazon", "amzn-ami-hvm-2017.09.*-gp2"),
    ("amazon", "amzn-ami-hvm-*-x86_64-gp2"),
    ("amazon", "Windows_Server-2016-English-Full-Base-*"),
    ("amazon", "Windows_Server-2016-Japanese-Full-Base*"),
    ("amazon", "Windows_Server-2022-Spanish-Full-Base-*"),
    ("amazon", "Windows_Server-2025-English-Full-Base-*"),
)


@pytest.mark.parametrize(("owner", "pattern"), ISSUE_13_FILTERS)
def test_real_template_filters_find_a_current_image(
    us_east_1: tuple[CatalogImage, ...], owner: str, pattern: str
) -> None:
    # What most_recent = true picks without include_deprecated, on the catalogue's last day.
    live = [
        image
        for image in us_east_1
        if fnmatch.fnmatchcase(image.name, pattern)
        and matches_owner(image, [owner], "000000000000")
        and (image.deprecation_time is None or image.deprecation_time > END)
    ]
    assert live, pattern


def test_retired_windows_releases_are_absent(us_east_1: tuple[CatalogImage, ...]) -> None:
    for pattern in ("Windows_Server-2012-R2*", "Windows_Server-2012-RTM*", "Windows_Server-2008*"):
        assert not named(us_east_1, pattern)


def test_amazon_linux_1_is_published_only_before_its_end_of_life(
    us_east_1: tuple[CatalogImage, ...],
) -> None:
    al1 = named(us_east_1, "amzn-ami-*")
    assert al1
    assert max(image.creation_date for image in al1).date() <= date(2023, 12, 31)
