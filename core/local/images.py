"""A realistic, deterministic catalogue of public AMIs for the local cloud.

Pure data: no moto, no boto3. The local cloud loads these records into its EC2
backend so that a build's ``source_ami_filter`` (owner, name wildcard,
architecture, ``most_recent``) behaves as it does against real AWS.

What is modelled, and why:

* Naming follows each publisher's real convention (Canonical, Amazon Linux 2
  and 2023, ECS/EKS-optimised, Debian, Red Hat, Windows, SUSE, Deep Learning,
  AWS Marketplace vendors), with serials at each publisher's cadence from its
  release date up to the end of October 2026 (:data:`CATALOG_END`).
* A serial date is the image's creation date (time of day varies by image and a
  little by region, as copies land at different times), so "the newest by
  CreationDate" is also "the newest serial in the name", which is what
  ``most_recent = true`` users rely on.
* Owners as on AWS: Canonical, Debian and Red Hat images carry no owner alias,
  only their account id; Amazon-published images (Amazon Linux, Windows, ECS,
  EKS, Deep Learning, SUSE) carry the alias ``amazon``; vendor images sold
  through the Marketplace are owned by the Marketplace account and carry the
  alias ``aws-marketplace``.
* Regions differ as on AWS: the same name gets a different image id in every
  region; regions opened recently only hold images published from shortly
  before their launch; smaller regions hold fewer older images and fewer
  Marketplace products. The newest three images of every series are present in
  every region where that series is published at all.
* Deprecation: two years after creation for most publishers (AWS's default for
  public images, and Canonical's own policy), about 90 days for Amazon Linux
  2023, none for Debian and Windows images.

Everything derives from blake2b hashes of fixed strings: the output is the same
on every run and every machine, and never depends on the clock.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

from core.regions import COMMERCIAL_REGIONS

__all__ = [
    "CATALOG_END",
    "OWNER_ACCOUNTS",
    "CatalogImage",
    "catalog_for_region",
    "catalog_regions",
    "matches_owner",
]


@dataclass(frozen=True, slots=True)
class CatalogImage:
    """One public image as DescribeImages would report it in one region."""

    image_id: str
    name: str
    description: str
    owner_id: str
    owner_alias: str | None
    architecture: str
    virtualization_type: str
    root_device_type: str
    root_device_name: str
    creation_date: datetime
    deprecation_time: datetime | None
    platform: str | None
    platform_details: str
    usage_operation: str
    ena_support: bool
    boot_mode: str | None
    image_location: str
    product_codes: tuple[str, ...]
    volume_size: int
    volume_type: str
    default_user: str | None
    public: bool = True


#: Publishing accounts. Marketplace vendors do not publish under their own
#: account: AWS Marketplace owns every listed image (alias ``aws-marketplace``).
OWNER_ACCOUNTS: Mapping[str, str] = MappingProxyType(
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

#: The last day any serial in the catalogue may carry.
CATALOG_END = date(2026, 10, 31)

_ALIAS_OF: Mapping[str, str | None] = MappingProxyType(
    {
        "canonical": None,
        "amazon": "amazon",
        "amazon-ecs": "amazon",
        "amazon-eks": "amazon",
        "amazon-dlami": "amazon",
        "debian": None,
        "redhat": None,
        "microsoft-via-amazon": "amazon",
        "suse-via-amazon": "amazon",
        "aws-marketplace": "aws-marketplace",
        "centos": None,
        "rocky": None,
        "almalinux": None,
    }
)

_ACCOUNT_ID = re.compile(r"\d{12}")

# ---------------------------------------------------------------------------
# Regions: (launch date or None for "before the catalogue starts", tier).
# Tier 0 is us-east-1 (everything), 1 the big regions, 2 the other long-standing
# ones, 3 the opt-in regions. A region of tier t holds series whose max_tier >= t.
# ---------------------------------------------------------------------------

_TIER_DENSITY = (1.0, 0.72, 0.5, 0.42)
"""Share of older images (beyond the newest three of a series) a tier keeps."""

_RETIRED_SHARE = 0.45
"""Further share of images deprecated before CATALOG_END kept: publishers deregister
much of their deprecated history, so most of a catalogue is current."""

_TIER_MARKETPLACE = (1.0, 0.85, 0.65, 0.5)
"""Share of Marketplace products a tier offers."""

_REGION_PROFILES: Mapping[str, tuple[date | None, int]] = MappingProxyType(
    {
        "us-east-1": (None, 0),
        "us-east-2": (date(2016, 10, 17), 1),
        "us-west-2": (None, 1),
        "eu-west-1": (None, 1),
        "eu-central-1": (None, 1),
        "ap-northeast-1": (None, 1),
        "ap-southeast-1": (None, 1),
        "ap-southeast-2": (None, 1),
        "ap-south-1": (date(2016, 6, 27), 1),
        "us-west-1": (None, 2),
        "sa-east-1": (None, 2),
        "ap-northeast-2": (date(2016, 1, 6), 2),
        "ca-central-1": (date(2016, 12, 8), 2),
        "eu-west-2": (date(2016, 12, 13), 2),
        "eu-west-3": (date(2017, 12, 18), 2),
        "eu-north-1": (date(2018, 12, 11), 2),
        "ap-northeast-3": (date(2021, 3, 2), 2),
        "ap-east-1": (date(2019, 4, 24), 3),
        "me-south-1": (date(2019, 7, 29), 3),
        "af-south-1": (date(2020, 4, 22), 3),
        "eu-south-1": (date(2020, 4, 28), 3),
        "ap-southeast-3": (date(2021, 12, 13), 3),
        "me-central-1": (date(2022, 8, 30), 3),
        "eu-central-2": (date(2022, 11, 9), 3),
        "eu-south-2": (date(2022, 11, 16), 3),
        "ap-south-2": (date(2022, 11, 22), 3),
        "ap-southeast-4": (date(2023, 1, 24), 3),
        "il-central-1": (date(2023, 8, 1), 3),
        "ca-west-1": (date(2023, 12, 20), 3),
        "ap-southeast-5": (date(2024, 8, 22), 3),
        "ap-southeast-7": (date(2025, 1, 8), 3),
        "mx-central-1": (date(2025, 1, 14), 3),
        "ap-east-2": (date(2025, 6, 6), 3),
        "ap-southeast-6": (date(2025, 9, 2), 3),
    }
)

# Publishers seed a new region with their recent images, not their whole history.
_NEW_REGION_BACKFILL = timedelta(days=180)
# Images always present wherever their series is published: the newest few.
_ALWAYS_KEPT_RANKS = 3


# ---------------------------------------------------------------------------
# Deterministic helpers
# ---------------------------------------------------------------------------


def _h(*parts: object) -> int:
    """A stable 64-bit integer from the parts (never Python's salted hash())."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _cadence(key: str, start: date, end: date, lo: int, hi: int) -> list[date]:
    """Release dates from start to end, each gap between lo and hi days."""
    end = min(end, CATALOG_END)
    out: list[date] = []
    day = start
    i = 0
    while day <= end:
        out.append(day)
        day += timedelta(days=lo + _h(key, i) % (hi - lo + 1))
        i += 1
    return out


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _uuid(*parts: object) -> str:
    x = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{'89ab'[int(x[16], 16) % 4]}{x[17:20]}-{x[20:32]}"


def _product_code(*parts: object) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = int.from_bytes(
        hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=20).digest(), "big"
    )
    chars = []
    for _ in range(25):
        n, r = divmod(n, 36)
        chars.append(alphabet[r])
    return "".join(chars)


# ---------------------------------------------------------------------------
# Region-independent image specs
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Spec:  # internal and never mutated; not frozen because that makes __init__ slower
    """One image, region-independent, reduced to what the per-region pass needs."""

    name_bytes: bytes
    serial: date
    series: str
    rank: int  # 0 = newest image of its series
    max_tier: int  # published in regions of this tier and lower
    product: str | None  # Marketplace product key, for per-region availability
    midnight: datetime  # 00:00 UTC of the serial's day
    time_of_day: int  # seconds; 00:00-20:00, so with <= 2.5 h of regional lag the day holds
    deprecate_after: int | None  # seconds
    retired: bool  # deprecated before CATALOG_END: publishers deregister many of those
    head: tuple[object, ...]  # CatalogImage fields from name to root_device_name
    tail: tuple[object, ...]  # CatalogImage fields from platform to default_user


_Specs = list[_Spec]


@functools.cache
def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# ImageLocation starts with "amazon/" for Amazon's images, else the owner's id or alias.
_LOCATION_PREFIX = {
    "canonical": "099720109477",
    "debian": "136693071363",
    "redhat": "309956199498",
    "aws-marketplace": "aws-marketplace",
    "centos": "125523088429",
    "rocky": "792107900819",
    "almalinux": "764336703387",
}


def _spec(
    out: _Specs,
    *,
    name: str,
    description: str,
    owner: str,
    architecture: str,
    serial: date,
    series: str,
    rank: int,
    root_device_name: str,
    default_user: str | None,
    volume_size: int = 8,
    volume_type: str = "gp2",
    max_tier: int = 3,
    product: str | None = None,
    virtualization_type: str = "hvm",
    root_device_type: str = "ebs",
    deprecate_after: int | None = 730,
    platform: str | None = None,
    platform_details: str = "Linux/UNIX",
    usage_operation: str = "RunInstances",
    ena_support: bool = True,
    boot_mode: str | None = None,
    product_codes: tuple[str, ...] = (),
    location_prefix: str | None = None,
) -> None:
    if location_prefix is None:
        location_prefix = _LOCATION_PREFIX.get(owner, "amazon")
    name_bytes = name.encode()
    tod = zlib.crc32(name_bytes)  # stable everywhere, and cheaper than blake2b here
    out.append(
        _Spec(
            name_bytes=name_bytes,
            serial=serial,
            series=series,
            rank=rank,
            max_tier=max_tier,
            product=product,
            midnight=_midnight(serial),
            time_of_day=tod % (20 * 3600),
            deprecate_after=None if deprecate_after is None else deprecate_after * 86400,
            retired=(
                deprecate_after is not None
                and serial + timedelta(days=deprecate_after) < CATALOG_END
            ),
            head=(
                name,
                description,
                OWNER_ACCOUNTS[owner],
                _ALIAS_OF[owner],
                architecture,
                virtualization_type,
                root_device_type,
                root_device_name,
            ),
            tail=(
                platform,
                platform_details,
                usage_operation,
                ena_support,
                boot_mode,
                f"{location_prefix}/{name}",
                product_codes,
                volume_size,
                volume_type,
                default_user,
            ),
        )
    )


def _ranked(dates: Sequence[date]) -> Iterator[tuple[int, date]]:
    """(rank, date) with rank 0 for the newest date."""
    n = len(dates)
    for i, day in enumerate(dates):
        yield n - 1 - i, day


_ARCH = {
    "amd64": "x86_64",
    "arm64": "arm64",
    "i386": "i386",
    "x86_64": "x86_64",
    "aarch64": "arm64",
}


# --- Canonical --------------------------------------------------------------

_UBUNTU_LTS = (
    # codename, version, first serial, last serial, storage path, arches
    ("focal", "20.04", "2020-04-23", "2025-05-29", "hvm-ssd", ("amd64", "arm64")),
    ("jammy", "22.04", "2022-04-21", "2026-10-31", "hvm-ssd", ("amd64", "arm64")),
    ("noble", "24.04", "2024-04-25", "2026-10-31", "hvm-ssd-gp3", ("amd64", "arm64")),
    ("bionic", "18.04", "2020-01-07", "2023-05-31", "hvm-ssd", ("amd64", "arm64")),
    ("resolute", "26.04", "2026-04-23", "2026-10-31", "hvm-ssd-gp3", ("amd64", "arm64")),
)

_UBUNTU_INTERIM = (
    # Nine months of support each; no minimal images, no "LTS" in descriptions.
    ("oracular", "24.10", "2024-10-10", "2025-07-10"),
    ("plucky", "25.04", "2025-04-17", "2026-01-15"),
    ("questing", "25.10", "2025-10-09", "2026-07-09"),
)


def _ubuntu_description(kind: str, version: str, arch: str, code: str, day: date) -> str:
    # Canonical dropped "LTS ... build on <date>" from descriptions in 2025.
    if day >= date(2025, 1, 1):
        return f"Canonical, Ubuntu{kind}, {version}, {arch} {code} image"
    suffix = " minimal" if kind else ""
    return (
        f"Canonical, Ubuntu{kind}, {version} LTS, {arch} {code}{suffix} image build on "
        f"{day.isoformat()}"
    )


def _canonical(out: _Specs) -> None:
    for code, version, first, last, store, arches in _UBUNTU_LTS:
        gp3 = store.endswith("gp3")
        for kind, tree, label in (
            ("", "ubuntu/images", "server"),
            (" Minimal", "ubuntu-minimal/images", "minimal"),
        ):
            if code == "bionic" and kind:
                continue
            dates = _cadence(f"ubuntu-{code}-{label}", _d(first), _d(last), 8, 24)
            for arch in arches:
                series = f"ubuntu-{code}-{label}-{arch}"
                for rank, day in _ranked(dates):
                    serial = day.strftime("%Y%m%d")
                    if _h("ubuntu-respin", code, label, serial) % 9 == 0:
                        serial += ".1"
                    if arch == "arm64":
                        boot = "uefi"
                    elif day >= date(2023, 5, 1):
                        boot = "uefi-preferred"
                    else:
                        boot = None
                    _spec(
                        out,
                        name=f"{tree}/{store}/ubuntu-{code}-{version}-{arch}-{label}-{serial}",
                        description=_ubuntu_description(kind, version, arch, code, day),
                        owner="canonical",
                        architecture=_ARCH[arch],
                        serial=day,
                        series=series,
                        rank=rank,
                        root_device_name="/dev/sda1",
                        default_user="ubuntu",
                        volume_type="gp3" if gp3 else "gp2",
                        boot_mode=boot,
                    )

    for code, version, first, last in _UBUNTU_INTERIM:
        dates = _cadence(f"ubuntu-{code}-server", _d(first), _d(last), 8, 24)
        for arch in ("amd64", "arm64"):
            for rank, day in _ranked(dates):
                serial = day.strftime("%Y%m%d")
                description = (
                    f"Canonical, Ubuntu, {version}, {arch} {code} image"
                    if day >= date(2025, 1, 1)
                    else f"Canonical, Ubuntu, {version}, {arch} {code} image build on {day}"
                )
                _spec(
                    out,
                    name=(
                        f"ubuntu/images/hvm-ssd-gp3/ubuntu-{code}-{version}-{arch}-server-{serial}"
                    ),
                    description=description,
                    owner="canonical",
                    architecture=_ARCH[arch],
                    serial=day,
                    series=f"ubuntu-{code}-server-{arch}",
                    rank=rank,
                    root_device_name="/dev/sda1",
                    default_user="ubuntu",
                    volume_type="gp3",
                    boot_mode="uefi" if arch == "arm64" else "uefi-preferred",
                )

    # Ubuntu EKS node images, one tree per Kubernetes version.
    for k8s, first, last in (
        ("1.28", "2023-10-02", "2024-11-26"),
        ("1.29", "2024-01-29", "2025-03-23"),
        ("1.30", "2024-05-28", "2025-07-23"),
        ("1.31", "2024-09-30", "2025-11-26"),
        ("1.32", "2025-01-27", "2026-03-23"),
        ("1.33", "2025-05-29", "2026-07-29"),
        ("1.34", "2025-10-02", "2026-10-31"),
    ):
        dates = _cadence(f"ubuntu-eks-{k8s}", _d(first), _d(last), 14, 35)
        for arch in ("amd64", "arm64"):
            for rank, day in _ranked(dates):
                serial = day.strftime("%Y%m%d")
                _spec(
                    out,
                    name=(
                        f"ubuntu-eks/k8s_{k8s}/images/hvm-ssd/ubuntu-jammy-22.04-{arch}-"
                        f"server-{serial}"
                    ),
                    description=(
                        f"Canonical, Ubuntu EKS Node OS (k8s_{k8s}), 22.04 LTS, {arch} jammy "
                        f"image build on {day.isoformat()}"
                    ),
                    owner="canonical",
                    architecture=_ARCH[arch],
                    serial=day,
                    series=f"ubuntu-eks-{k8s}-{arch}",
                    rank=rank,
                    max_tier=1,
                    root_device_name="/dev/sda1",
                    default_user="ubuntu",
                    volume_size=20,
                    boot_mode="uefi" if arch == "arm64" else "uefi-preferred",
                )

    # Legacy: trusty (paravirtual, instance-store, i386) and xenial.
    trusty = _cadence("ubuntu-trusty", _d("2018-01-09"), _d("2019-05-14"), 10, 30)
    for store, virt, root_type, arches, vtype in (
        ("hvm-ssd", "hvm", "ebs", ("amd64",), "gp2"),
        ("ebs-ssd", "paravirtual", "ebs", ("amd64", "i386"), "gp2"),
        ("instance-store", "paravirtual", "instance-store", ("amd64",), "standard"),
    ):
        for arch in arches:
            for rank, day in _ranked(trusty):
                serial = day.strftime("%Y%m%d")
                _spec(
                    out,
                    name=f"ubuntu/images/{store}/ubuntu-trusty-14.04-{arch}-server-{serial}",
                    description=(
                        f"Canonical, Ubuntu, 14.04 LTS, {arch} trusty image build on "
                        f"{day.isoformat()}"
                    ),
                    owner="canonical",
                    architecture=_ARCH[arch],
                    serial=day,
                    series=f"ubuntu-trusty-{store}-{arch}",
                    rank=rank,
                    max_tier=2,
                    virtualization_type=virt,
                    root_device_type=root_type,
                    root_device_name="/dev/sda1",
                    default_user="ubuntu",
                    volume_type=vtype,
                    ena_support=virt == "hvm",
                )
    xenial = _cadence("ubuntu-xenial", _d("2019-01-15"), _d("2021-04-20"), 8, 28)
    for store, root_type, arches, vtype in (
        ("hvm-ssd", "ebs", ("amd64", "arm64"), "gp2"),
        ("hvm-instance", "instance-store", ("amd64",), "standard"),
    ):
        for arch in arches:
            for rank, day in _ranked(xenial):
                serial = day.strftime("%Y%m%d")
                _spec(
                    out,
                    name=f"ubuntu/images/{store}/ubuntu-xenial-16.04-{arch}-server-{serial}",
                    description=(
                        f"Canonical, Ubuntu, 16.04 LTS, {arch} xenial image build on "
                        f"{day.isoformat()}"
                    ),
                    owner="canonical",
                    architecture=_ARCH[arch],
                    serial=day,
                    series=f"ubuntu-xenial-{store}-{arch}",
                    rank=rank,
                    max_tier=2,
                    root_device_type=root_type,
                    root_device_name="/dev/sda1",
                    default_user="ubuntu",
                    volume_type=vtype,
                    boot_mode="uefi" if arch == "arm64" else None,
                )


# --- Amazon Linux -----------------------------------------------------------


_AL2023_MINORS = tuple(
    _d(s)
    for s in (
        "2023-03-15",
        "2023-06-29",
        "2023-09-20",
        "2023-12-11",
        "2024-03-19",
        "2024-06-24",
        "2024-09-23",
        "2025-03-31",
        "2025-07-07",
        "2025-09-29",
        "2026-03-30",
        "2026-09-28",
    )
)


def _al2023_minor(day: date) -> int:
    """The 2023.M minor version current on that day."""
    return sum(1 for start in _AL2023_MINORS if day >= start) - 1


def _amazon_linux(out: _Specs) -> None:
    # Amazon Linux 2: 2.0.YYYYMMDD.N, until its end of life (2026-06-30).
    al2 = _cadence("amzn2", _d("2020-01-13"), _d("2026-06-30"), 10, 35)
    al2_variants = (
        # (name template, description template, arch, first day, volume, vtype)
        (
            "amzn2-ami-hvm-{v}-x86_64-gp2",
            "Amazon Linux 2 AMI {v} x86_64 HVM gp2",
            "x86_64",
            "2020-01-01",
            8,
            "gp2",
        ),
        (
            "amzn2-ami-hvm-{v}-x86_64-ebs",
            "Amazon Linux 2 AMI {v} x86_64 HVM ebs",
            "x86_64",
            "2020-01-01",
            8,
            "standard",
        ),
        (
            "amzn2-ami-hvm-{v}-arm64-gp2",
            "Amazon Linux 2 AMI {v} arm64 HVM gp2",
            "arm64",
            "2020-01-01",
            8,
            "gp2",
        ),
        (
            "amzn2-ami-kernel-5.10-hvm-{v}-x86_64-gp2",
            "Amazon Linux 2 Kernel 5.10 AMI {v} x86_64 HVM gp2",
            "x86_64",
            "2021-11-01",
            8,
            "gp2",
        ),
        (
            "amzn2-ami-kernel-5.10-hvm-{v}-arm64-gp2",
            "Amazon Linux 2 Kernel 5.10 AMI {v} arm64 HVM gp2",
            "arm64",
            "2021-11-01",
            8,
            "gp2",
        ),
        (
            "amzn2-ami-minimal-hvm-{v}-x86_64-ebs",
            "Amazon Linux 2 AMI {v} x86_64 Minimal HVM ebs",
            "x86_64",
            "2020-01-01",
            2,
            "standard",
        ),
        (
            "amzn2-ami-minimal-hvm-{v}-arm64-ebs",
            "Amazon Linux 2 AMI {v} arm64 Minimal HVM ebs",
            "arm64",
            "2020-01-01",
            2,
            "standard",
        ),
    )
    for tmpl, desc, arch, first, size, vtype in al2_variants:
        since = _d(first)
        dates = [d for d in al2 if d >= since]
        for rank, day in _ranked(dates):
            n = 1 if _h("amzn2-respin", day) % 10 == 0 else 0
            v = f"2.0.{day:%Y%m%d}.{n}"
            _spec(
                out,
                name=tmpl.format(v=v),
                description=desc.format(v=v),
                owner="amazon",
                architecture=arch,
                serial=day,
                series=tmpl,
                rank=rank,
                root_device_name="/dev/xvda",
                default_user="ec2-user",
                volume_size=size,
                volume_type=vtype,
                boot_mode="uefi" if arch == "arm64" else None,
            )

    # Amazon Linux 2023: 2023.M.YYYYMMDD.N, kernel 6.1, and 6.12 from 2023.7.
    al2023 = _cadence("al2023", _d("2023-03-15"), CATALOG_END, 7, 21)
    for kernel, first in (("6.1", "2023-03-15"), ("6.12", "2025-04-14")):
        since = _d(first)
        dates = [d for d in al2023 if d >= since]
        for minimal in (False, True):
            for arch in ("x86_64", "arm64"):
                series = f"al2023-{kernel}-{minimal}-{arch}"
                for rank, day in _ranked(dates):
                    n = 1 if _h("al2023-respin", day) % 11 == 0 else 0
                    v = f"2023.{_al2023_minor(day)}.{day:%Y%m%d}.{n}"
                    kind = "-minimal" if minimal else ""
                    _spec(
                        out,
                        name=f"al2023-ami{kind}-{v}-kernel-{kernel}-{arch}",
                        description=(
                            f"Amazon Linux 2023 AMI {v} {arch} {'Minimal ' if minimal else ''}"
                            f"HVM kernel-{kernel}"
                        ),
                        owner="amazon",
                        architecture=arch,
                        serial=day,
                        series=series,
                        rank=rank,
                        root_device_name="/dev/xvda",
                        default_user="ec2-user",
                        volume_size=2 if minimal else 8,
                        volume_type="gp3",
                        boot_mode="uefi" if arch == "arm64" else "uefi-preferred",
                        deprecate_after=90,
                    )

    # The first-generation Amazon Linux AMI: paravirtual, instance-store (S3) and HVM.
    al1 = _cadence("amzn1", _d("2019-01-10"), _d("2023-12-15"), 20, 45)
    for kind, virt, root_type, suffix, desc_kind, vtype, root in (
        ("hvm", "hvm", "ebs", "x86_64-gp2", "x86_64 HVM gp2", "gp2", "/dev/xvda"),
        ("hvm", "hvm", "ebs", "x86_64-ebs", "x86_64 HVM EBS", "standard", "/dev/xvda"),
        ("hvm", "hvm", "instance-store", "x86_64-s3", "x86_64 HVM S3", "standard", "/dev/xvda"),
        ("pv", "paravirtual", "ebs", "x86_64-ebs", "x86_64 PV EBS", "standard", "/dev/sda1"),
        (
            "pv",
            "paravirtual",
            "instance-store",
            "x86_64-s3",
            "x86_64 PV S3",
            "standard",
            "/dev/sda1",
        ),
        (
            "minimal-hvm",
            "hvm",
            "ebs",
            "x86_64-ebs",
            "x86_64 Minimal HVM EBS",
            "standard",
            "/dev/xvda",
        ),
        (
            "minimal-pv",
            "paravirtual",
            "ebs",
            "x86_64-ebs",
            "x86_64 Minimal PV EBS",
            "standard",
            "/dev/sda1",
        ),
    ):
        series = f"amzn-ami-{kind}-{suffix}"
        for rank, day in _ranked(al1):
            n = _h("amzn1-respin", day) % 3 // 2
            v = f"2018.03.0.{day:%Y%m%d}.{n}"
            _spec(
                out,
                name=f"amzn-ami-{kind}-{v}-{suffix}",
                description=f"Amazon Linux AMI {v} {desc_kind}",
                owner="amazon",
                architecture="x86_64",
                serial=day,
                series=series,
                rank=rank,
                max_tier=2,
                virtualization_type=virt,
                root_device_type=root_type,
                root_device_name=root,
                default_user="ec2-user",
                volume_type=vtype,
                ena_support=virt == "hvm",
            )

    # ECS-optimised (published by the ECS account, alias amazon).
    ecs2 = _cadence("ecs-al2", _d("2020-06-04"), _d("2026-06-30"), 12, 30)
    for tmpl, desc_arch, arch, first in (
        ("amzn2-ami-ecs-hvm-2.0.{d}-x86_64-ebs", "x86_64", "x86_64", "2020-01-01"),
        ("amzn2-ami-ecs-hvm-2.0.{d}-arm64-ebs", "arm64", "arm64", "2020-01-01"),
        ("amzn2-ami-ecs-kernel-5.10-hvm-2.0.{d}-x86_64-ebs", "x86_64", "x86_64", "2022-03-01"),
        ("amzn2-ami-ecs-kernel-5.10-hvm-2.0.{d}-arm64-ebs", "arm64", "arm64", "2022-03-01"),
    ):
        since = _d(first)
        dates = [d for d in ecs2 if d >= since]
        for rank, day in _ranked(dates):
            _spec(
                out,
                name=tmpl.format(d=f"{day:%Y%m%d}"),
                description=f"Amazon Linux AMI 2.0.{day:%Y%m%d} {desc_arch} ECS HVM GP2",
                owner="amazon-ecs",
                architecture=arch,
                serial=day,
                series=tmpl,
                rank=rank,
                root_device_name="/dev/xvda",
                default_user="ec2-user",
                volume_size=30,
                boot_mode="uefi" if arch == "arm64" else None,
            )
    ecs2023 = _cadence("ecs-al2023", _d("2023-06-08"), CATALOG_END, 12, 30)
    for kind, arch in (("ecs", "x86_64"), ("ecs", "arm64"), ("ecs-gpu", "x86_64")):
        series = f"al2023-ami-{kind}-{arch}"
        for rank, day in _ranked(ecs2023):
            _spec(
                out,
                name=f"al2023-ami-{kind}-hvm-2023.0.{day:%Y%m%d}-kernel-6.1-{arch}",
                description=f"Amazon Linux AMI 2023.0.{day:%Y%m%d} {arch} ECS HVM EBS",
                owner="amazon-ecs",
                architecture=arch,
                serial=day,
                series=series,
                rank=rank,
                root_device_name="/dev/xvda",
                default_user="ec2-user",
                volume_size=30,
                volume_type="gp3",
                boot_mode="uefi" if arch == "arm64" else "uefi-preferred",
            )

    # EKS-optimised nodes: every release covers the Kubernetes versions in support.
    k8s_versions = (
        ("1.24", "2022-11-15"),
        ("1.25", "2023-02-21"),
        ("1.26", "2023-04-11"),
        ("1.27", "2023-05-24"),
        ("1.28", "2023-09-26"),
        ("1.29", "2024-01-23"),
        ("1.30", "2024-05-23"),
        ("1.31", "2024-09-26"),
        ("1.32", "2025-01-23"),
        ("1.33", "2025-05-29"),
        ("1.34", "2025-10-02"),
    )
    releases = _cadence("eks", _d("2023-01-10"), CATALOG_END, 14, 35)
    per_series: dict[str, list[tuple[date, str, str, str, str]]] = {}
    for day in releases:
        for k8s, released in k8s_versions:
            start = _d(released)
            if not start <= day < start + timedelta(days=425):
                continue
            variants = []
            if day < date(2025, 11, 26) and k8s <= "1.32":
                variants += [
                    (f"amazon-eks-node-{k8s}-v{day:%Y%m%d}", "x86_64", "AmazonLinux2"),
                    (f"amazon-eks-arm64-node-{k8s}-v{day:%Y%m%d}", "arm64", "AmazonLinux2"),
                ]
            if day >= date(2024, 2, 29):
                for arch in ("x86_64", "arm64"):
                    variants.append(
                        (
                            f"amazon-eks-node-al2023-{arch}-standard-{k8s}-v{day:%Y%m%d}",
                            arch,
                            "AmazonLinux2023",
                        )
                    )
            for name, arch, base in variants:
                series = f"eks-{base}-{arch}-{k8s}"
                per_series.setdefault(series, []).append((day, name, arch, base, k8s))
    for series, items in per_series.items():
        for rank, (day, name, arch, base, k8s) in zip(
            range(len(items) - 1, -1, -1), items, strict=True
        ):
            _spec(
                out,
                name=name,
                description=f"EKS Kubernetes Worker AMI with {base} image, (k8s: {k8s})",
                owner="amazon-eks",
                architecture=arch,
                serial=day,
                series=series,
                rank=rank,
                max_tier=2,
                root_device_name="/dev/xvda",
                default_user="ec2-user",
                volume_size=20,
                volume_type="gp3" if base.endswith("2023") else "gp2",
                boot_mode="uefi" if arch == "arm64" else None,
            )

    # AWS Deep Learning AMIs (names with spaces and parentheses, as on AWS).
    dl_desc = (
        "Supported EC2 instances: G4dn, G5, G6, Gr6, G6e, P4d, P4de, P5, P5e, P5en. "
        "Release notes: https://docs.aws.amazon.com/dlami/latest/devguide/"
        "appendix-ami-release-notes.html"
    )
    dl = _cadence("dlami", _d("2023-06-13"), CATALOG_END, 9, 24)
    pytorch = (
        ("2.0.1", "2023-06-01"),
        ("2.1.0", "2023-10-20"),
        ("2.2.0", "2024-02-07"),
        ("2.3.0", "2024-05-10"),
        ("2.4.1", "2024-09-20"),
        ("2.5.1", "2024-11-25"),
        ("2.6.0", "2025-02-20"),
        ("2.7", "2025-05-15"),
        ("2.8", "2025-08-20"),
        ("2.9", "2026-01-15"),
    )
    for label, os_name, arch, first, last, root, user in (
        (
            "Base OSS Nvidia Driver GPU AMI",
            "Ubuntu 20.04",
            "x86_64",
            "2023-06-01",
            "2025-05-31",
            "/dev/sda1",
            "ubuntu",
        ),
        (
            "Base OSS Nvidia Driver GPU AMI",
            "Ubuntu 22.04",
            "x86_64",
            "2023-06-01",
            "2026-10-31",
            "/dev/sda1",
            "ubuntu",
        ),
        (
            "Base OSS Nvidia Driver GPU AMI",
            "Ubuntu 24.04",
            "x86_64",
            "2025-01-15",
            "2026-10-31",
            "/dev/sda1",
            "ubuntu",
        ),
        (
            "Base OSS Nvidia Driver GPU AMI",
            "Amazon Linux 2",
            "x86_64",
            "2023-06-01",
            "2025-06-30",
            "/dev/xvda",
            "ec2-user",
        ),
        (
            "Base OSS Nvidia Driver GPU AMI",
            "Amazon Linux 2023",
            "x86_64",
            "2024-06-01",
            "2026-10-31",
            "/dev/xvda",
            "ec2-user",
        ),
        (
            "ARM64 Base OSS Nvidia Driver GPU AMI",
            "Ubuntu 22.04",
            "arm64",
            "2024-01-10",
            "2026-10-31",
            "/dev/sda1",
            "ubuntu",
        ),
        (
            "OSS Nvidia Driver AMI GPU PyTorch {pt}",
            "Ubuntu 22.04",
            "x86_64",
            "2023-06-01",
            "2026-10-31",
            "/dev/sda1",
            "ubuntu",
        ),
    ):
        lo, hi = _d(first), _d(last)
        dates = [d for d in dl if lo <= d <= hi]
        series = f"dlami-{label}-{os_name}-{arch}"
        for rank, day in _ranked(dates):
            pt = [v for v, since in pytorch if day >= _d(since)][-1]
            _spec(
                out,
                name=f"Deep Learning {label.format(pt=pt)} ({os_name}) {day:%Y%m%d}",
                description=dl_desc,
                owner="amazon-dlami",
                architecture=arch,
                serial=day,
                series=series,
                rank=rank,
                max_tier=1,
                root_device_name=root,
                default_user=user,
                volume_size=75,
                volume_type="gp3",
                boot_mode="uefi" if arch == "arm64" else None,
            )


# --- Debian -----------------------------------------------------------------


def _debian(out: _Specs) -> None:
    for major, code_first, last, backports in (
        ("10", "2019-07-10", "2024-06-30", True),
        ("11", "2021-08-15", "2026-08-31", True),
        ("12", "2023-06-10", "2026-10-31", True),
        ("13", "2025-08-09", "2026-10-31", False),
    ):
        dates = _cadence(f"debian-{major}", _d(code_first), _d(last), 14, 42)
        flavours = ("", "backports-") if backports else ("",)
        for flavour in flavours:
            for arch in ("amd64", "arm64"):
                series = f"debian-{major}-{flavour}{arch}"
                for rank, day in _ranked(dates):
                    # One build counter for all Debian cloud images, as their pipeline ids.
                    build = 1080 + (day - date(2021, 8, 1)).days * 3 // 5 + int(major) % 3
                    serial = f"{day:%Y%m%d}-{build}"
                    if arch == "arm64":
                        boot = "uefi"
                    elif int(major) >= 12:
                        boot = "uefi-preferred"
                    else:
                        boot = None
                    _spec(
                        out,
                        name=f"debian-{major}-{flavour}{arch}-{serial}",
                        description=(f"Debian {major}{' backports' if flavour else ''} ({serial})"),
                        owner="debian",
                        architecture=_ARCH[arch],
                        serial=day,
                        series=series,
                        rank=rank,
                        root_device_name="/dev/xvda",
                        default_user="admin",
                        volume_type="gp3" if int(major) >= 12 else "gp2",
                        boot_mode=boot,
                        deprecate_after=None,
                    )


# --- Red Hat ----------------------------------------------------------------

_RHEL_MINORS = (
    # release, GA date, images published until
    ("7.9", "2020-09-29", "2024-06-30"),
    ("8.2", "2020-04-28", "2021-01-31"),
    ("8.3", "2020-11-03", "2021-07-31"),
    ("8.4", "2021-05-18", "2022-01-31"),
    ("8.5", "2021-11-09", "2022-07-31"),
    ("8.6", "2022-05-10", "2023-01-31"),
    ("8.7", "2022-11-09", "2023-07-31"),
    ("8.8", "2023-05-16", "2024-01-31"),
    ("8.9", "2023-11-14", "2024-07-31"),
    ("8.10", "2024-05-22", "2026-10-31"),
    ("9.0", "2022-05-17", "2023-01-31"),
    ("9.1", "2022-11-15", "2023-07-31"),
    ("9.2", "2023-05-10", "2024-01-31"),
    ("9.3", "2023-11-07", "2024-06-30"),
    ("9.4", "2024-04-30", "2025-01-31"),
    ("9.5", "2024-11-12", "2025-07-31"),
    ("9.6", "2025-05-20", "2026-01-31"),
    ("9.7", "2025-11-12", "2026-07-31"),
    ("9.8", "2026-05-19", "2026-10-31"),
    ("10.0", "2025-05-20", "2026-01-31"),
    ("10.1", "2025-11-12", "2026-07-31"),
    ("10.2", "2026-05-19", "2026-10-31"),
)


def _redhat(out: _Specs) -> None:
    for release, ga, last in _RHEL_MINORS:
        dates = _cadence(f"rhel-{release}", _d(ga), _d(last), 18, 50)
        label = release if release.startswith("7.") else f"{release}.0"
        arches = ("x86_64",) if release.startswith("7.") else ("x86_64", "arm64")
        major = int(release.split(".")[0])
        for arch in arches:
            build = _h("rhel-build", release, arch) % 6
            series = f"rhel-{release}-{arch}"
            for i, (rank, day) in enumerate(_ranked(dates)):
                if i:
                    build += 1 + _h("rhel-step", release, arch, i) % 9
                disk = "GP3" if day >= date(2022, 9, 1) and major >= 8 else "GP2"
                if arch == "arm64":
                    boot = "uefi"
                elif major >= 9:
                    boot = "uefi-preferred"
                else:
                    boot = None
                _spec(
                    out,
                    name=f"RHEL-{label}_HVM-{day:%Y%m%d}-{arch}-{build}-Hourly2-{disk}",
                    description="Provided by Red Hat, Inc.",
                    owner="redhat",
                    architecture=arch,
                    serial=day,
                    series=series,
                    rank=rank,
                    root_device_name="/dev/sda1",
                    default_user="ec2-user",
                    volume_size=10,
                    volume_type=disk.lower(),
                    platform_details="Red Hat Enterprise Linux",
                    usage_operation="RunInstances:0010",
                    boot_mode=boot,
                )


# --- Windows ----------------------------------------------------------------

_SQL = {
    "Standard": ("Windows with SQL Server Standard", "RunInstances:0006"),
    "Enterprise": ("Windows with SQL Server Enterprise", "RunInstances:0102"),
    "Web": ("Windows with SQL Server Web", "RunInstances:0202"),
    "Express": ("Windows", "RunInstances:0002"),
}


def _patch_wednesday(year: int, month: int) -> date:
    """Amazon's Windows AMIs follow Patch Tuesday by a day."""
    first = date(year, month, 1)
    first_tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    return first_tuesday + timedelta(days=8)


def _windows(out: _Specs) -> None:
    months = []
    y, m = 2025, 1
    while True:
        day = _patch_wednesday(y, m)
        if day > CATALOG_END:
            break
        months.append(day)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    editions: dict[str, tuple[str, ...]] = {
        "2016": ("Full-Base", "Core-Base", "Full-SQL_2017_Standard", "Full-SQL_2019_Standard"),
        "2019": (
            "Full-Base",
            "Core-Base",
            "Full-ContainersLatest",
            "Full-ECS_Optimized",
            "Full-SQL_2019_Standard",
            "Full-SQL_2019_Enterprise",
            "Full-SQL_2019_Express",
            "Full-SQL_2019_Web",
            "Full-SQL_2022_Standard",
        ),
        "2022": (
            "Full-Base",
            "Core-Base",
            "Full-ContainersLatest",
            "Full-ECS_Optimized",
            "Full-SQL_2022_Standard",
            "Full-SQL_2022_Enterprise",
            "Full-SQL_2022_Express",
            "Full-SQL_2022_Web",
            "Full-SQL_2019_Standard",
        ),
        "2025": ("Full-Base", "Core-Base", "Full-SQL_2022_Standard", "Full-SQL_2022_Enterprise"),
    }
    languages = ("Japanese", "German", "French", "Korean", "Chinese_Simplified")
    for year, eds in editions.items():
        dates = [d for d in months if year != "2025" or d >= date(2024, 11, 13)]
        variants = [("English", ed, 3) for ed in eds]
        if year in ("2019", "2022", "2025"):
            variants += [(lang, "Full-Base", 1) for lang in languages]
        for lang, edition, max_tier in variants:
            series = f"Windows_Server-{year}-{lang}-{edition}"
            kind = edition.split("-")[0]
            if "-SQL_" in edition:
                _, sql_year, sql_edition = edition.split("-")[1].split("_")
                details, usage = _SQL[sql_edition]
                desc = (
                    f"Microsoft Windows Server {year} {kind} Locale {lang} with SQL "
                    f"{sql_edition} {sql_year} AMI provided by Amazon"
                )
                size = 50
            else:
                details, usage = "Windows", "RunInstances:0002"
                extra = {"ContainersLatest": " with Containers", "ECS_Optimized": " ECS Optimized"}
                desc = (
                    f"Microsoft Windows Server {year}{extra.get(edition.split('-')[1], '')} "
                    f"{kind} Locale {lang} AMI provided by Amazon"
                )
                size = 30
            for rank, day in _ranked(dates):
                _spec(
                    out,
                    name=f"{series}-{day:%Y.%m.%d}",
                    description=desc,
                    owner="microsoft-via-amazon",
                    architecture="x86_64",
                    serial=day,
                    series=series,
                    rank=rank,
                    max_tier=max_tier,
                    root_device_name="/dev/sda1",
                    default_user=None,
                    volume_size=size,
                    volume_type="gp3" if day >= date(2024, 7, 1) else "gp2",
                    platform="windows",
                    platform_details=details,
                    usage_operation=usage,
                    boot_mode="uefi-preferred" if year == "2025" else None,
                    deprecate_after=None,
                )


# --- SUSE (on-demand images are published by Amazon) ------------------------


def _suse(out: _Specs) -> None:
    for sp, first, last in (
        ("sp3", "2021-06-22", "2022-12-31"),
        ("sp4", "2022-06-21", "2023-12-31"),
        ("sp5", "2023-06-20", "2024-12-31"),
        ("sp6", "2024-06-25", "2025-12-31"),
        ("sp7", "2025-06-17", "2026-10-31"),
    ):
        dates = _cadence(f"suse-{sp}", _d(first), _d(last), 20, 45)
        for product, arch in (("sles", "x86_64"), ("sles", "arm64"), ("sles-sap", "x86_64")):
            series = f"suse-{product}-15-{sp}-{arch}"
            title = (
                "SUSE Linux Enterprise Server for SAP Applications"
                if product.endswith("sap")
                else "SUSE Linux Enterprise Server"
            )
            for rank, day in _ranked(dates):
                _spec(
                    out,
                    name=f"suse-{product}-15-{sp}-v{day:%Y%m%d}-hvm-ssd-{arch}",
                    description=f"{title} 15 {sp.upper()} (HVM, 64-bit, SSD-Backed)",
                    owner="suse-via-amazon",
                    architecture=arch,
                    serial=day,
                    series=series,
                    rank=rank,
                    max_tier=3 if product == "sles" else 1,
                    root_device_name="/dev/sda1",
                    default_user="ec2-user",
                    volume_size=10,
                    volume_type="gp3",
                    platform_details="SUSE Linux",
                    usage_operation="RunInstances:000g",
                    boot_mode="uefi" if arch == "arm64" else "legacy-bios",
                )


# --- AWS Marketplace and community publishers -------------------------------


@dataclass(frozen=True, slots=True)
class _Product:
    key: str
    releases: tuple[tuple[str, str], ...]  # (version, first day)
    arches: tuple[str, ...]
    name: Callable[[str, str, date, int], str]  # (version, arch, day, build) -> name
    description: Callable[[str, str, date, int], str]
    user: str | None
    root: str = "/dev/xvda"
    volume: int = 10
    lo: int = 21
    hi: int = 60
    respins: bool = True  # False: one build per release (names carry no date)
    last: str = "2026-10-31"
    owner: str = "aws-marketplace"
    max_tier: int = 3


def _bitnami(app: str, title: str, releases: tuple[tuple[str, str], ...]) -> _Product:
    def debian(day: date) -> str:
        return "12" if day >= date(2023, 9, 1) else "11"

    def revision(version: str, day: date, build: int) -> str:
        # Bitnami dropped the "-0" package revision from names in mid-2024.
        if day >= date(2024, 7, 1):
            return f"{version}-r{build:02d}"
        return f"{version}-0-r{build:02d}"

    return _Product(
        key=f"bitnami-{app}",
        releases=releases,
        arches=("x86_64",),
        name=lambda v, a, d, b: (
            f"bitnami-{app}-{revision(v, d, b)}-linux-debian-{debian(d)}-{a}-hvm-ebs-nami"
        ),
        description=lambda v, a, d, b: (
            f"Bitnami package for {title} {revision(v, d, b)} on Debian {debian(d)}"
        ),
        user="bitnami",
        lo=30,
        hi=75,
    )


def _products() -> tuple[_Product, ...]:
    def arch_alt(arch: str) -> str:
        return "aarch64" if arch == "arm64" else arch

    def amd(arch: str) -> str:
        return "arm64" if arch == "arm64" else "amd64"

    def canonical_listing(code: str, version: str, since: str, last: str) -> _Product:
        # Canonical also lists Ubuntu in the Marketplace: same names as its own images, plus the
        # listing id the Marketplace appends (so a seed-style filter with owner aws-marketplace
        # and the plain name wildcard finds them).
        disk = "hvm-ssd-gp3" if version >= "24.04" else "hvm-ssd"
        return _Product(
            key=f"canonical-ubuntu-{code}",
            releases=((version, since),),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: (
                f"ubuntu/images/{disk}/ubuntu-{code}-{v}-{amd(a)}-server-{d:%Y%m%d}"
            ),
            description=lambda v, a, d, b: (
                f"Canonical, Ubuntu, {v} LTS, {amd(a)} {code} image build on {d:%Y-%m-%d}"
            ),
            user="ubuntu",
            root="/dev/sda1",
            volume=8,
            lo=14,
            hi=35,
            last=last,
        )

    return (
        canonical_listing("focal", "20.04", "2023-01-10", "2025-05-29"),
        canonical_listing("jammy", "22.04", "2023-01-12", "2026-10-20"),
        canonical_listing("noble", "24.04", "2024-04-25", "2026-10-27"),
        _bitnami(
            "wordpress",
            "WordPress",
            (
                ("6.1.1", "2022-12-01"),
                ("6.2.0", "2023-03-30"),
                ("6.3.1", "2023-08-30"),
                ("6.4.2", "2023-12-07"),
                ("6.4.3", "2024-02-01"),
                ("6.5.3", "2024-05-10"),
                ("6.6.1", "2024-07-25"),
                ("6.6.2", "2024-09-11"),
                ("6.7.1", "2024-11-22"),
                ("6.7.2", "2025-02-12"),
                ("6.8.1", "2025-05-01"),
                ("6.8.2", "2025-07-16"),
                ("6.8.3", "2025-10-01"),
                ("6.9.0", "2026-04-10"),
            ),
        ),
        _bitnami(
            "nginx",
            "NGINX Open Source",
            (
                ("1.24.0", "2023-04-20"),
                ("1.25.3", "2023-11-01"),
                ("1.26.1", "2024-06-01"),
                ("1.27.2", "2024-10-05"),
                ("1.28.0", "2025-04-25"),
                ("1.29.1", "2025-09-01"),
            ),
        ),
        _bitnami(
            "lampstack",
            "LAMP",
            (
                ("8.1.17", "2023-03-20"),
                ("8.2.12", "2023-11-01"),
                ("8.2.15", "2024-01-20"),
                ("8.3.8", "2024-06-10"),
                ("8.3.13", "2024-11-01"),
                ("8.4.5", "2025-03-20"),
                ("8.4.11", "2025-07-10"),
                ("8.4.14", "2025-11-01"),
            ),
        ),
        _bitnami(
            "jenkins",
            "Jenkins",
            (
                ("2.401.1", "2023-06-01"),
                ("2.426.1", "2023-11-20"),
                ("2.440.1", "2024-02-20"),
                ("2.452.2", "2024-06-15"),
                ("2.462.3", "2024-10-05"),
                ("2.479.1", "2024-11-30"),
                ("2.492.1", "2025-03-01"),
                ("2.504.1", "2025-05-20"),
                ("2.516.2", "2025-08-25"),
                ("2.528.1", "2025-11-01"),
            ),
        ),
        _bitnami(
            "mariadb",
            "MariaDB",
            (
                ("10.11.4", "2023-06-10"),
                ("11.2.2", "2023-11-25"),
                ("11.4.2", "2024-06-01"),
                ("11.4.4", "2024-11-10"),
                ("11.4.5", "2025-02-10"),
                ("11.8.2", "2025-06-10"),
                ("11.8.3", "2025-08-10"),
            ),
        ),
        _bitnami(
            "redis",
            "Redis",
            (
                ("7.0.11", "2023-05-01"),
                ("7.2.3", "2023-11-01"),
                ("7.2.4", "2024-01-15"),
                ("7.4.0", "2024-08-01"),
                ("7.4.2", "2025-01-10"),
                ("8.0.2", "2025-05-30"),
                ("8.2.1", "2025-08-20"),
            ),
        ),
        _bitnami(
            "postgresql",
            "PostgreSQL",
            (
                ("15.3.0", "2023-05-15"),
                ("16.1.0", "2023-11-15"),
                ("16.2.0", "2024-02-10"),
                ("16.4.0", "2024-08-10"),
                ("17.2.0", "2024-11-25"),
                ("17.5.0", "2025-05-10"),
                ("17.6.0", "2025-08-20"),
                ("18.0.0", "2025-10-01"),
            ),
        ),
        _bitnami(
            "node",
            "Node.js",
            (
                ("18.16.1", "2023-06-25"),
                ("20.10.0", "2023-11-25"),
                ("20.11.1", "2024-02-20"),
                ("20.17.0", "2024-08-25"),
                ("22.11.0", "2024-11-01"),
                ("22.16.0", "2025-05-25"),
                ("24.10.0", "2025-10-25"),
            ),
        ),
        _bitnami(
            "moodle",
            "Moodle LMS",
            (
                ("4.2.1", "2023-06-20"),
                ("4.3.3", "2024-02-15"),
                ("4.4.1", "2024-06-15"),
                ("4.5.1", "2024-12-10"),
                ("5.0.1", "2025-06-15"),
                ("5.1.0", "2025-10-10"),
            ),
        ),
        _Product(
            key="centos-stream-9",
            releases=(("9", "2022-01-10"),),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"CentOS-Stream-ec2-9-{d:%Y%m%d}.0.{arch_alt(a)}",
            description=lambda v, a, d, b: f"CentOS-Stream-ec2-9-{d:%Y%m%d}.0.{arch_alt(a)}",
            user="ec2-user",
            root="/dev/sda1",
            lo=30,
            hi=70,
        ),
        _Product(
            key="centos-stream-10",
            releases=(("10", "2024-12-12"),),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"CentOS-Stream-ec2-10-{d:%Y%m%d}.0.{arch_alt(a)}",
            description=lambda v, a, d, b: f"CentOS-Stream-ec2-10-{d:%Y%m%d}.0.{arch_alt(a)}",
            user="ec2-user",
            root="/dev/sda1",
            lo=30,
            hi=70,
        ),
        _Product(
            key="centos-7",
            releases=(("2111", "2021-12-10"),),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"CentOS-7-{v}-{d:%Y%m%d}_{b % 3 + 1}.{arch_alt(a)}",
            description=lambda v, a, d, b: f"CentOS-7-{v}-{d:%Y%m%d}_{b % 3 + 1}.{arch_alt(a)}",
            user="centos",
            root="/dev/sda1",
            lo=45,
            hi=120,
            last="2024-06-30",
        ),
        _Product(
            key="rocky-9",
            releases=(
                ("9.0", "2022-07-14"),
                ("9.1", "2022-11-26"),
                ("9.2", "2023-05-16"),
                ("9.3", "2023-11-13"),
                ("9.4", "2024-05-09"),
                ("9.5", "2024-11-19"),
                ("9.6", "2025-06-04"),
                ("9.7", "2025-11-25"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"Rocky-9-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            description=lambda v, a, d, b: f"Rocky-9-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            user="rocky",
            lo=30,
            hi=90,
        ),
        _Product(
            key="rocky-8",
            releases=(
                ("8.7", "2022-11-14"),
                ("8.8", "2023-05-22"),
                ("8.9", "2023-11-19"),
                ("8.10", "2024-05-30"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"Rocky-8-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            description=lambda v, a, d, b: f"Rocky-8-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            user="rocky",
            lo=30,
            hi=90,
        ),
        _Product(
            key="almalinux-9",
            releases=(
                ("9.1", "2022-11-17"),
                ("9.2", "2023-05-11"),
                ("9.3", "2023-11-14"),
                ("9.4", "2024-05-07"),
                ("9.5", "2024-11-19"),
                ("9.6", "2025-05-21"),
                ("9.7", "2025-11-18"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"AlmaLinux OS {v}.{d:%Y%m%d} {arch_alt(a)}",
            description=lambda v, a, d, b: f"Official AlmaLinux OS {v} {arch_alt(a)} image",
            user="ec2-user",
            lo=30,
            hi=70,
        ),
        _Product(
            key="openvpn-as",
            releases=(
                ("2.11.3", "2023-03-15"),
                ("2.12.1", "2023-07-10"),
                ("2.12.3", "2023-11-20"),
                ("2.13.1", "2024-03-12"),
                ("2.14.0", "2024-09-18"),
                ("2.14.3", "2025-03-20"),
                ("3.0.1", "2025-08-28"),
            ),
            arches=("x86_64",),
            name=lambda v, a, d, b: f"OpenVPN Access Server {v}",
            description=lambda v, a, d, b: f"OpenVPN Access Server {v} on Ubuntu",
            user="openvpnas",
            root="/dev/sda1",
            volume=8,
            respins=False,
        ),
        _Product(
            key="kali",
            releases=tuple(
                (f"{y}.{q}.0", f"{y}-{3 * q - 1:02d}-2{q}")
                for y in (2023, 2024, 2025, 2026)
                for q in (1, 2, 3, 4)
                if (y, q) <= (2026, 3)
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"kali-last-snapshot-{amd(a)}-{v}",
            description=lambda v, a, d, b: f"Kali Linux kali-last-snapshot {v} {amd(a)}",
            user="kali",
            volume=12,
            respins=False,
        ),
        _Product(
            key="freebsd",
            releases=(
                ("13.2-RELEASE", "2023-04-11"),
                ("14.0-RELEASE", "2023-11-20"),
                ("14.1-RELEASE", "2024-06-04"),
                ("14.2-RELEASE", "2024-12-03"),
                ("14.3-RELEASE", "2025-06-10"),
                ("15.0-RELEASE", "2025-12-02"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"FreeBSD {v}{f'-p{b - 1}' if b > 1 else ''}-{amd(a)}",
            description=lambda v, a, d, b: f"FreeBSD/{amd(a)} {v}{f'-p{b - 1}' if b > 1 else ''}",
            user="ec2-user",
            root="/dev/sda1",
            volume=6,
            lo=30,
            hi=75,
        ),
        _Product(
            key="fortigate",
            releases=(
                ("7.2.5 build1517", "2023-06-20"),
                ("7.4.1 build2463", "2023-09-05"),
                ("7.4.3 build2573", "2024-02-14"),
                ("7.4.4 build2662", "2024-05-20"),
                ("7.6.0 build3401", "2024-07-30"),
                ("7.6.1 build3462", "2024-11-20"),
                ("7.6.3 build3510", "2025-04-15"),
                ("7.6.4 build3596", "2025-09-10"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: (
                f"FortiGate-VM{'ARM64' if a == 'arm64' else '64'}-AWSONDEMAND "
                f"{v.split()[1]} ({v.split()[0]}) GA"
            ),
            description=lambda v, a, d, b: f"FortiGate-VM {v.split()[0]} on-demand",
            user="admin",
            root="/dev/sda1",
            volume=2,
            respins=False,
        ),
        _Product(
            key="f5-bigip-best",
            releases=(
                ("16.1.4-0.0.4", "2023-06-20"),
                ("17.1.0.1-0.0.4", "2023-04-07"),
                ("17.1.1-0.2.6", "2023-10-12"),
                ("17.1.1.3-0.0.11", "2024-03-15"),
                ("17.1.2-0.0.8", "2024-10-10"),
                ("17.5.0-0.0.15", "2025-02-20"),
                ("17.5.1-0.0.7", "2025-07-15"),
            ),
            arches=("x86_64",),
            name=lambda v, a, d, b: (
                f"F5 BIGIP-{v} PAYG-Best Plus 25Mbps-{d:%y%m%d}{_h('f5', v, d) % 240000:06d}"
            ),
            description=lambda v, a, d, b: (
                f"F5 BIGIP-{v} PAYG-Best Plus 25Mbps-{d:%y%m%d}{_h('f5', v, d) % 240000:06d}"
            ),
            user="admin",
            volume=82,
            respins=False,
            max_tier=2,
        ),
        _Product(
            key="pa-vm",
            releases=(
                ("10.1.11", "2023-08-10"),
                ("10.2.7-h3", "2024-01-20"),
                ("11.0.3", "2023-09-15"),
                ("11.1.2-h3", "2024-04-10"),
                ("11.1.4-h7", "2024-11-05"),
                ("11.2.3", "2024-10-01"),
                ("11.2.5", "2025-03-01"),
                ("11.2.7", "2025-08-01"),
            ),
            arches=("x86_64",),
            name=lambda v, a, d, b: f"PA-VM-AWS-{v}",
            description=lambda v, a, d, b: f"PA-VM-AWS-{v}",
            user="admin",
            volume=60,
            respins=False,
            max_tier=2,
        ),
        _Product(
            key="pfsense-plus",
            releases=(
                ("23.01", "2023-02-15"),
                ("23.05.1", "2023-06-28"),
                ("23.09.1", "2023-11-20"),
                ("24.03", "2024-04-25"),
                ("24.11", "2024-11-25"),
                ("25.07", "2025-07-24"),
            ),
            arches=("x86_64",),
            name=lambda v, a, d, b: f"pfSense-plus-ec2-{v}-RELEASE-amd64",
            description=lambda v, a, d, b: f"Netgate pfSense Plus {v}",
            user="admin",
            volume=8,
            respins=False,
        ),
        _Product(
            key="suse-sles-sap-byos",
            releases=(
                ("sp4", "2022-06-21"),
                ("sp5", "2023-06-20"),
                ("sp6", "2024-06-25"),
                ("sp7", "2025-06-17"),
            ),
            arches=("x86_64",),
            name=lambda v, a, d, b: f"suse-sles-sap-15-{v}-byos-v{d:%Y%m%d}-hvm-ssd-{a}",
            description=lambda v, a, d, b: (
                f"SUSE Linux Enterprise Server for SAP Applications 15 {v.upper()} BYOS "
                "(HVM, 64-bit, SSD-Backed)"
            ),
            user="ec2-user",
            root="/dev/sda1",
            lo=30,
            hi=75,
            max_tier=2,
        ),
        # The same distributions' community images, published under their own
        # accounts with no alias and no product code.
        _Product(
            key="community-rocky-9",
            releases=(
                ("9.3", "2023-11-13"),
                ("9.4", "2024-05-09"),
                ("9.5", "2024-11-19"),
                ("9.6", "2025-06-04"),
                ("9.7", "2025-11-25"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"Rocky-9-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            description=lambda v, a, d, b: f"Rocky-9-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}",
            user="rocky",
            lo=30,
            hi=90,
            owner="rocky",
        ),
        _Product(
            key="community-almalinux-9",
            releases=(
                ("9.3", "2023-11-14"),
                ("9.4", "2024-05-07"),
                ("9.5", "2024-11-19"),
                ("9.6", "2025-05-21"),
                ("9.7", "2025-11-18"),
            ),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"AlmaLinux OS {v}.{d:%Y%m%d} {arch_alt(a)}",
            description=lambda v, a, d, b: f"Official AlmaLinux OS {v} {arch_alt(a)} image",
            user="ec2-user",
            lo=30,
            hi=70,
            owner="almalinux",
        ),
        _Product(
            key="community-centos-stream-9",
            releases=(("9", "2022-01-10"),),
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"CentOS Stream 9 {arch_alt(a)} {d:%Y%m%d}.0",
            description=lambda v, a, d, b: f"CentOS Stream 9 {arch_alt(a)} {d:%Y%m%d}.0",
            user="ec2-user",
            root="/dev/sda1",
            lo=30,
            hi=70,
            owner="centos",
        ),
    )


def _marketplace(out: _Specs) -> None:
    for product in _products():
        marketplace = product.owner == "aws-marketplace"
        releases = [(v, _d(since)) for v, since in product.releases]
        releases.sort(key=lambda r: r[1])
        # One build at each release, respins in between at the product's cadence.
        days: dict[date, str] = {}
        for i, (version, since) in enumerate(releases):
            until = (
                releases[i + 1][1] - timedelta(days=1)
                if i + 1 < len(releases)
                else _d(product.last)
            )
            if not product.respins:
                days[since] = version
                continue
            for day in _cadence(f"{product.key}-{version}", since, until, product.lo, product.hi):
                days[day] = version
        ordered = sorted(days.items())
        code = (_product_code("product-code", product.key),) if marketplace else ()
        for arch in product.arches:
            series = f"{product.key}-{arch}"
            builds: dict[str, int] = {}
            for rank, (day, version) in zip(range(len(ordered) - 1, -1, -1), ordered, strict=True):
                builds[version] = builds.get(version, 0) + 1
                build = builds[version]
                name = product.name(version, arch, day, build)
                if marketplace:
                    # The Marketplace appends the listing's product id to every name.
                    name = f"{name}-{_uuid('listing', product.key, arch)}"
                _spec(
                    out,
                    name=name,
                    description=product.description(version, arch, day, build),
                    owner=product.owner,
                    architecture=arch,
                    serial=day,
                    series=series,
                    rank=rank,
                    max_tier=product.max_tier,
                    product=product.key,
                    root_device_name=product.root,
                    default_user=product.user,
                    volume_size=product.volume,
                    volume_type="gp3" if day >= date(2024, 1, 1) else "gp2",
                    boot_mode="uefi" if arch == "arm64" else None,
                    product_codes=code,
                )


@functools.cache
def _global_specs() -> tuple[_Spec, ...]:
    out: _Specs = []
    _canonical(out)
    _amazon_linux(out)
    _debian(out)
    _redhat(out)
    _windows(out)
    _suse(out)
    _marketplace(out)
    names = {spec.head[0] for spec in out}
    if len(names) != len(out):  # a generator bug, never a user error
        raise AssertionError("duplicate AMI names in the catalogue")
    return tuple(out)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def catalog_regions() -> tuple[str, ...]:
    """The regions that have a catalogue: the commercial ones."""
    return COMMERCIAL_REGIONS


@functools.cache
def catalog_for_region(region: str) -> tuple[CatalogImage, ...]:
    """Every public catalogue image of ``region``, in a fixed order.

    Raises ValueError for a region outside the commercial partition.
    """
    if region not in COMMERCIAL_REGIONS:
        raise ValueError(
            f"no AMI catalogue for region {region!r}: the local cloud serves the commercial "
            "regions only"
        )
    # A commercial region added to core.regions later is treated as a new opt-in one.
    launch, tier = _REGION_PROFILES.get(region, (date(2025, 1, 1), 3))
    density = int(_TIER_DENSITY[tier] * 0xFFFFFFFF)
    density_retired = int(_TIER_DENSITY[tier] * _RETIRED_SHARE * 0xFFFFFFFF)
    offered = int(_TIER_MARKETPLACE[tier] * 0xFFFFFFFF)
    earliest = launch - _NEW_REGION_BACKFILL if launch is not None else date.min
    products: dict[str, bool] = {}
    seen_ids: set[str] = set()
    prefix = f"{region}\x1f".encode()
    blake2b = hashlib.blake2b
    out: list[CatalogImage] = []
    for spec in _global_specs():
        if spec.max_tier < tier or spec.serial < earliest:
            continue
        if spec.product is not None:
            ok = products.get(spec.product)
            if ok is None:
                ok = products[spec.product] = (
                    tier == 0 or _h("offered", region, spec.product) & 0xFFFFFFFF < offered
                )
            if not ok:
                continue
        digest = blake2b(prefix + spec.name_bytes, digest_size=16).hexdigest()
        if spec.rank >= _ALWAYS_KEPT_RANKS and int(digest[16:24], 16) >= (
            density_retired if spec.retired else density
        ):
            continue
        image_id = "ami-0" + digest[:16]
        salt = 0
        while image_id in seen_ids:  # astronomically unlikely; keeps ids unique anyway
            salt += 1
            image_id = (
                "ami-0"
                + blake2b(prefix + spec.name_bytes + b"#%d" % salt, digest_size=8).hexdigest()
            )
        seen_ids.add(image_id)
        # Copies land in each region a little apart: up to 2.5 hours of lag.
        seconds = spec.time_of_day + int(digest[24:32], 16) % 9000
        created = spec.midnight + timedelta(seconds=seconds)
        deprecation = (
            None
            if spec.deprecate_after is None
            # AWS keeps deprecation times to the minute.
            else spec.midnight + timedelta(seconds=seconds - seconds % 60 + spec.deprecate_after)
        )
        out.append(CatalogImage(image_id, *spec.head, created, deprecation, *spec.tail))
    return tuple(out)


def matches_owner(image: CatalogImage, owners: Sequence[str], self_account: str) -> bool:
    """DescribeImages ``Owners`` semantics for one image.

    ``amazon`` and ``aws-marketplace`` match the owner alias only (so Canonical's
    images, which have none, are matched by their account id alone), ``self``
    matches ``self_account``, and a 12-digit id matches the owner id. An empty
    ``owners`` places no restriction. Anything else is rejected with ValueError,
    as AWS rejects it (InvalidUserID.Malformed).
    """
    if not owners:
        return True
    matched = False
    for owner in owners:
        if owner in ("amazon", "aws-marketplace"):
            matched = matched or image.owner_alias == owner
        elif owner == "self":
            matched = matched or image.owner_id == self_account
        elif _ACCOUNT_ID.fullmatch(owner):
            matched = matched or image.owner_id == owner
        else:
            raise ValueError(
                f"Invalid owner {owner!r}: expected self, amazon, "
                "aws-marketplace or a 12-digit account id"
            )
    return matched
