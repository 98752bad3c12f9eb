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
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TypedDict

from amibake.core.owners import PUBLISHER_ACCOUNTS, owner_matches
from amibake.core.regions import COMMERCIAL_REGIONS

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


#: Publishing accounts (core/owners.py is their one home).
OWNER_ACCOUNTS: Mapping[str, str] = PUBLISHER_ACCOUNTS

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


#: CatalogImage fields from name to root_device_name, and from platform to default_user
_Head = tuple[str, str, str, str | None, str, str, str, str]
_Tail = tuple[str | None, str, str, bool, str | None, str, tuple[str, ...], int, str, str | None]


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
    head: _Head  # CatalogImage fields from name to root_device_name
    tail: _Tail  # CatalogImage fields from platform to default_user


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

# ---------------------------------------------------------------------------
# Series descriptions (data) and the generator that expands them
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Image:
    """What a series' name and description may refer to, for one image."""

    arch: str  # the publisher's spelling (amd64, x86_64, ...)
    day: date
    i: int  # 0 = the series' oldest image
    v: str  # the series' version string for that image (see _Series.version)

    def fields(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "march": _ARCH[self.arch],
            "d": f"{self.day:%Y%m%d}",
            "day": self.day.isoformat(),
            "dotted": f"{self.day:%Y.%m.%d}",
            "v": self.v,
        }


_Text = str | Callable[[_Image], str]


@dataclass(frozen=True, slots=True)
class _Series:
    """One image series as its publisher releases it, one image per date and arch.

    ``name`` and ``description`` are ``str.format`` templates over :meth:`_Image.fields`
    (``{arch}``, ``{march}``, ``{d}`` YYYYMMDD, ``{day}`` ISO date, ``{dotted}``
    YYYY.MM.DD, ``{v}``), or callables
    for the few publishers whose naming changes over time. ``key`` names the series (for
    ranking) and may use ``{arch}``.
    """

    key: str
    name: _Text
    description: _Text
    owner: str
    arches: tuple[str, ...]
    dates: tuple[date, ...]
    root: str
    user: str | None
    volume: int = 8
    vtype: str | Callable[[date], str] = "gp2"
    boot: str | Callable[[str, date], str | None] | None = None
    version: Callable[[date, int], str] | None = None  # (day, index) -> {v}
    max_tier: int = 3
    deprecate_after: int | None = 730
    virtualization: str = "hvm"
    root_type: str = "ebs"
    platform: str | None = None
    platform_details: str = "Linux/UNIX"
    usage_operation: str = "RunInstances"


class _Publisher(TypedDict):
    """_Series fields a publisher's series share (``**`` into _Series)."""

    root: str
    user: str | None


class _OwnedPublisher(_Publisher):
    owner: str


def _text(text: _Text, image: _Image) -> str:
    return text(image) if callable(text) else text.format(**image.fields())


def _expand(out: _Specs, series: Iterable[_Series]) -> None:
    """Every image of every series, arch by arch, oldest first."""
    for s in series:
        for arch in s.arches:
            n = len(s.dates)
            for i, day in enumerate(s.dates):
                image = _Image(arch, day, i, s.version(day, i) if s.version else f"{day:%Y%m%d}")
                _spec(
                    out,
                    name=_text(s.name, image),
                    description=_text(s.description, image),
                    owner=s.owner,
                    architecture=_ARCH[arch],
                    serial=day,
                    series=s.key.replace("{arch}", arch),
                    rank=n - 1 - i,
                    max_tier=s.max_tier,
                    root_device_name=s.root,
                    default_user=s.user,
                    volume_size=s.volume,
                    volume_type=s.vtype(day) if callable(s.vtype) else s.vtype,
                    boot_mode=s.boot(arch, day) if callable(s.boot) else s.boot,
                    deprecate_after=s.deprecate_after,
                    virtualization_type=s.virtualization,
                    root_device_type=s.root_type,
                    ena_support=s.virtualization == "hvm",
                    platform=s.platform,
                    platform_details=s.platform_details,
                    usage_operation=s.usage_operation,
                )


def _dates(key: str, first: str, last: str | date, lo: int, hi: int) -> tuple[date, ...]:
    return tuple(_cadence(key, _d(first), _d(last) if isinstance(last, str) else last, lo, hi))


def _since(dates: Sequence[date], first: str, last: str | None = None) -> tuple[date, ...]:
    lo, hi = _d(first), _d(last) if last else date.max
    return tuple(day for day in dates if lo <= day <= hi)


# Boot modes as publishers set them: arm64 is always UEFI.
def _uefi_arm(arch: str, day: date) -> str | None:
    return "uefi" if arch in ("arm64", "aarch64") else None


def _uefi_preferred(arch: str, day: date) -> str | None:
    return "uefi" if arch in ("arm64", "aarch64") else "uefi-preferred"


def _uefi_preferred_since(since: date) -> Callable[[str, date], str | None]:
    def boot(arch: str, day: date) -> str | None:
        if arch in ("arm64", "aarch64"):
            return "uefi"
        return "uefi-preferred" if day >= since else None

    return boot


def _gp3_since(since: date) -> Callable[[date], str]:
    return lambda day: "gp3" if day >= since else "gp2"


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

_UBUNTU_EKS = (
    ("1.28", "2023-10-02", "2024-11-26"),
    ("1.29", "2024-01-29", "2025-03-23"),
    ("1.30", "2024-05-28", "2025-07-23"),
    ("1.31", "2024-09-30", "2025-11-26"),
    ("1.32", "2025-01-27", "2026-03-23"),
    ("1.33", "2025-05-29", "2026-07-29"),
    ("1.34", "2025-10-02", "2026-10-31"),
)

_UBUNTU_BOOT = _uefi_preferred_since(date(2023, 5, 1))


def _ubuntu_description(kind: str, version: str, code: str) -> Callable[[_Image], str]:
    # Canonical dropped "LTS ... build on <date>" from descriptions in 2025.
    def describe(image: _Image) -> str:
        if image.day >= date(2025, 1, 1):
            return f"Canonical, Ubuntu{kind}, {version}, {image.arch} {code} image"
        suffix = " minimal" if kind else ""
        return (
            f"Canonical, Ubuntu{kind}, {version} LTS, {image.arch} {code}{suffix} image build on "
            f"{image.day.isoformat()}"
        )

    return describe


def _ubuntu_respin(code: str, label: str) -> Callable[[date, int], str]:
    def serial(day: date, i: int) -> str:
        text = day.strftime("%Y%m%d")
        return text + ".1" if _h("ubuntu-respin", code, label, text) % 9 == 0 else text

    return serial


def _interim_description(version: str, code: str) -> Callable[[_Image], str]:
    def describe(image: _Image) -> str:
        text = f"Canonical, Ubuntu, {version}, {image.arch} {code} image"
        return text if image.day >= date(2025, 1, 1) else f"{text} build on {image.day}"

    return describe


def _canonical() -> Iterator[_Series]:
    ubuntu: _OwnedPublisher = {"owner": "canonical", "root": "/dev/sda1", "user": "ubuntu"}
    arches: tuple[str, ...]  # the tables below mix one- and two-arch series
    for code, version, first, last, store, arches in _UBUNTU_LTS:
        for kind, tree, label in (
            ("", "ubuntu/images", "server"),
            (" Minimal", "ubuntu-minimal/images", "minimal"),
        ):
            yield _Series(
                key=f"ubuntu-{code}-{label}-{{arch}}",
                name=f"{tree}/{store}/ubuntu-{code}-{version}-{{arch}}-{label}-{{v}}",
                description=_ubuntu_description(kind, version, code),
                arches=arches,
                dates=_dates(f"ubuntu-{code}-{label}", first, last, 8, 24),
                version=_ubuntu_respin(code, label),
                vtype="gp3" if store.endswith("gp3") else "gp2",
                boot=_UBUNTU_BOOT,
                **ubuntu,
            )
    for code, version, first, last in _UBUNTU_INTERIM:
        yield _Series(
            key=f"ubuntu-{code}-server-{{arch}}",
            name=f"ubuntu/images/hvm-ssd-gp3/ubuntu-{code}-{version}-{{arch}}-server-{{d}}",
            description=_interim_description(version, code),
            arches=("amd64", "arm64"),
            dates=_dates(f"ubuntu-{code}-server", first, last, 8, 24),
            vtype="gp3",
            boot=_uefi_preferred,
            **ubuntu,
        )
    # Ubuntu EKS node images, one tree per Kubernetes version.
    for k8s, first, last in _UBUNTU_EKS:
        yield _Series(
            key=f"ubuntu-eks-{k8s}-{{arch}}",
            name=f"ubuntu-eks/k8s_{k8s}/images/hvm-ssd/ubuntu-jammy-22.04-{{arch}}-server-{{d}}",
            description=(
                f"Canonical, Ubuntu EKS Node OS (k8s_{k8s}), 22.04 LTS, {{arch}} jammy "
                "image build on {day}"
            ),
            arches=("amd64", "arm64"),
            dates=_dates(f"ubuntu-eks-{k8s}", first, last, 14, 35),
            max_tier=1,
            volume=20,
            boot=_uefi_preferred,
            **ubuntu,
        )
    # Legacy: trusty (paravirtual, instance-store, i386) and xenial.
    trusty = _dates("ubuntu-trusty", "2018-01-09", "2019-05-14", 10, 30)
    for store, virt, root_type, arches, vtype in (
        ("hvm-ssd", "hvm", "ebs", ("amd64",), "gp2"),
        ("ebs-ssd", "paravirtual", "ebs", ("amd64", "i386"), "gp2"),
        ("instance-store", "paravirtual", "instance-store", ("amd64",), "standard"),
    ):
        yield _Series(
            key=f"ubuntu-trusty-{store}-{{arch}}",
            name=f"ubuntu/images/{store}/ubuntu-trusty-14.04-{{arch}}-server-{{d}}",
            description="Canonical, Ubuntu, 14.04 LTS, {arch} trusty image build on {day}",
            arches=arches,
            dates=trusty,
            max_tier=2,
            virtualization=virt,
            root_type=root_type,
            vtype=vtype,
            **ubuntu,
        )
    xenial = _dates("ubuntu-xenial", "2019-01-15", "2021-04-20", 8, 28)
    for store, root_type, arches, vtype in (
        ("hvm-ssd", "ebs", ("amd64", "arm64"), "gp2"),
        ("hvm-instance", "instance-store", ("amd64",), "standard"),
    ):
        yield _Series(
            key=f"ubuntu-xenial-{store}-{{arch}}",
            name=f"ubuntu/images/{store}/ubuntu-xenial-16.04-{{arch}}-server-{{d}}",
            description="Canonical, Ubuntu, 16.04 LTS, {arch} xenial image build on {day}",
            arches=arches,
            dates=xenial,
            max_tier=2,
            root_type=root_type,
            vtype=vtype,
            boot=_uefi_arm,
            **ubuntu,
        )
    yield from _ubuntu_esm_pro_eks()


_UBUNTU_ESM = (
    # Canonical keeps refreshing the images of LTS releases in Expanded Security Maintenance:
    # codename, version, first ESM serial, arches, with minimal images (same span as the LTS)
    ("xenial", "16.04", "2021-05-18", ("amd64", "arm64"), ("2019-01-15", "2021-04-20")),
    ("bionic", "18.04", "2023-06-27", ("amd64", "arm64"), None),
)

_UBUNTU_PRO = (
    # codename, version, first serial, storage path, arches
    ("xenial", "16.04", "2021-01-14", "hvm-ssd", ("amd64",)),
    ("bionic", "18.04", "2021-01-14", "hvm-ssd", ("amd64", "arm64")),
    ("focal", "20.04", "2021-01-14", "hvm-ssd", ("amd64", "arm64")),
    ("jammy", "22.04", "2022-04-21", "hvm-ssd", ("amd64", "arm64")),
    ("noble", "24.04", "2024-04-25", "hvm-ssd-gp3", ("amd64", "arm64")),
)

_UBUNTU_EKS_OLDER = (
    # Before jammy: bionic node images up to Kubernetes 1.21, focal from 1.22.
    ("bionic", "18.04", "1.19", "2020-11-10", "2021-12-20"),
    ("bionic", "18.04", "1.20", "2021-05-20", "2022-06-30"),
    ("bionic", "18.04", "1.21", "2021-07-26", "2022-10-31"),
    ("focal", "20.04", "1.22", "2022-04-05", "2023-06-30"),
    ("focal", "20.04", "1.23", "2022-08-17", "2023-10-31"),
    ("focal", "20.04", "1.24", "2022-11-22", "2024-01-31"),
    ("focal", "20.04", "1.25", "2023-02-27", "2024-05-01"),
    ("focal", "20.04", "1.26", "2023-04-17", "2024-06-11"),
    ("focal", "20.04", "1.27", "2023-05-30", "2024-07-24"),
    ("focal", "20.04", "1.28", "2023-10-02", "2024-11-26"),
    ("focal", "20.04", "1.29", "2024-01-29", "2025-03-23"),
)


def _ubuntu_esm_pro_eks() -> Iterator[_Series]:
    """Ubuntu 16.04/18.04 in ESM, Ubuntu Pro, and the EKS images before jammy (issue 13)."""
    ubuntu: _OwnedPublisher = {"owner": "canonical", "root": "/dev/sda1", "user": "ubuntu"}
    arches: tuple[str, ...]  # the tables below mix one- and two-arch series
    for code, version, first, arches, minimal in _UBUNTU_ESM:
        yield _Series(
            key=f"ubuntu-{code}-server-esm-{{arch}}",
            name=f"ubuntu/images/hvm-ssd/ubuntu-{code}-{version}-{{arch}}-server-{{d}}",
            description=_ubuntu_description("", version, code),
            arches=arches,
            dates=_dates(f"ubuntu-{code}-esm", first, CATALOG_END, 28, 63),
            max_tier=2,
            boot=_uefi_arm,
            **ubuntu,
        )
        if minimal is not None:
            yield _Series(
                key=f"ubuntu-{code}-minimal-{{arch}}",
                name=f"ubuntu-minimal/images/hvm-ssd/ubuntu-{code}-{version}-{{arch}}-minimal-{{d}}",
                description=_ubuntu_description(" Minimal", version, code),
                arches=arches,
                dates=_dates(f"ubuntu-{code}-minimal", *minimal, 8, 24),
                max_tier=2,
                boot=_uefi_arm,
                **ubuntu,
            )
    for code, version, first, store, arches in _UBUNTU_PRO:
        yield _Series(
            key=f"ubuntu-pro-{code}-{{arch}}",
            name=f"ubuntu-pro-server/images/{store}/ubuntu-{code}-{version}-{{arch}}-pro-server-{{d}}",
            description=(
                f"Canonical, Ubuntu Pro, {version} LTS, {{arch}} {code} image build on {{day}}"
            ),
            arches=arches,
            dates=_dates(f"ubuntu-pro-{code}", first, CATALOG_END, 20, 45),
            max_tier=2,
            vtype="gp3" if store.endswith("gp3") else "gp2",
            boot=_UBUNTU_BOOT,
            platform_details="Ubuntu Pro",
            usage_operation="RunInstances:0g00",
            **ubuntu,
        )
    for code, version, k8s, first, last in _UBUNTU_EKS_OLDER:
        yield _Series(
            key=f"ubuntu-eks-{code}-{k8s}-{{arch}}",
            name=(
                f"ubuntu-eks/k8s_{k8s}/images/hvm-ssd/ubuntu-{code}-{version}-{{arch}}-server-{{d}}"
            ),
            description=(
                f"Canonical, Ubuntu EKS Node OS (k8s_{k8s}), {version} LTS, {{arch}} {code} "
                "image build on {day}"
            ),
            arches=("amd64", "arm64"),
            dates=_dates(f"ubuntu-eks-{code}-{k8s}", first, last, 14, 35),
            max_tier=1,
            volume=20,
            boot=_uefi_arm,
            **ubuntu,
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


def _al2_version(day: date, i: int) -> str:
    return f"2.0.{day:%Y%m%d}.{1 if _h('amzn2-respin', day) % 10 == 0 else 0}"


def _al2023_version(day: date, i: int) -> str:
    n = 1 if _h("al2023-respin", day) % 11 == 0 else 0
    return f"2023.{_al2023_minor(day)}.{day:%Y%m%d}.{n}"


def _al1_version(day: date, i: int) -> str:
    return f"2018.03.0.{day:%Y%m%d}.{_h('amzn1-respin', day) % 3 // 2}"


_AL2_VARIANTS = (
    # name ({v} = 2.0.YYYYMMDD.N), arch, first day, volume, volume type
    ("amzn2-ami-hvm-{v}-x86_64-gp2", "x86_64", "2020-01-01", 8, "gp2"),
    ("amzn2-ami-hvm-{v}-x86_64-ebs", "x86_64", "2020-01-01", 8, "standard"),
    ("amzn2-ami-hvm-{v}-arm64-gp2", "arm64", "2020-01-01", 8, "gp2"),
    ("amzn2-ami-kernel-5.10-hvm-{v}-x86_64-gp2", "x86_64", "2021-11-01", 8, "gp2"),
    ("amzn2-ami-kernel-5.10-hvm-{v}-arm64-gp2", "arm64", "2021-11-01", 8, "gp2"),
    ("amzn2-ami-minimal-hvm-{v}-x86_64-ebs", "x86_64", "2020-01-01", 2, "standard"),
    ("amzn2-ami-minimal-hvm-{v}-arm64-ebs", "arm64", "2020-01-01", 2, "standard"),
    ("amzn2-ami-minimal-hvm-{v}-x86_64-gp2", "x86_64", "2020-01-01", 2, "gp2"),
    ("amzn2-ami-minimal-hvm-{v}-arm64-gp2", "arm64", "2020-01-01", 2, "gp2"),
)


def _al2_description(name: str) -> str:
    """The description Amazon gives a name, e.g. for ``amzn2-ami-kernel-5.10-hvm-{v}-arm64-gp2``:
    ``Amazon Linux 2 Kernel 5.10 AMI {v} arm64 HVM gp2``."""
    head, _, tail = name.partition("-hvm-{v}-")
    arch, volume = tail.split("-")
    kernel = head.removeprefix("amzn2-ami").removeprefix("-kernel-")
    minimal = kernel == "-minimal"
    kernel = "" if minimal or not kernel else f" Kernel {kernel}"
    return f"Amazon Linux 2{kernel} AMI {{v}} {arch} {'Minimal ' if minimal else ''}HVM {volume}"


_AL1_VARIANTS = (
    # kind, virtualization, root device type, suffix, description tail, volume type, root
    ("hvm", "hvm", "ebs", "x86_64-gp2", "x86_64 HVM gp2", "gp2", "/dev/xvda"),
    ("hvm", "hvm", "ebs", "x86_64-ebs", "x86_64 HVM EBS", "standard", "/dev/xvda"),
    ("hvm", "hvm", "instance-store", "x86_64-s3", "x86_64 HVM S3", "standard", "/dev/xvda"),
    ("pv", "paravirtual", "ebs", "x86_64-ebs", "x86_64 PV EBS", "standard", "/dev/sda1"),
    ("pv", "paravirtual", "instance-store", "x86_64-s3", "x86_64 PV S3", "standard", "/dev/sda1"),
    ("minimal-hvm", "hvm", "ebs", "x86_64-ebs", "x86_64 Minimal HVM EBS", "standard", "/dev/xvda"),
    ("minimal-pv", "paravirtual", "ebs", "x86_64-ebs", "x86_64 Minimal PV EBS", "standard",
     "/dev/sda1"),
)  # fmt: skip

_AL1_OLDER = (
    # release, first image, last image
    ("2016.09", "2016-09-27", "2017-04-03"),
    ("2017.03", "2017-04-04", "2017-09-30"),
    ("2017.09", "2017-10-01", "2018-04-10"),
    ("2018.03", "2018-04-11", "2018-12-20"),
)


def _al1_older_version(release: str, first: date) -> Callable[[date, int], str]:
    # A point release (.1) about two months after each release, as Amazon Linux had.
    def version(day: date, i: int) -> str:
        point = 1 if day - first >= timedelta(days=60) and release != "2018.03" else 0
        return f"{release}.{point}.{day:%Y%m%d}"

    return version


_ECS_AL2_VARIANTS = (
    ("amzn2-ami-ecs-hvm-2.0.{d}-x86_64-ebs", "x86_64", "2020-01-01"),
    ("amzn2-ami-ecs-hvm-2.0.{d}-arm64-ebs", "arm64", "2020-01-01"),
    ("amzn2-ami-ecs-kernel-5.10-hvm-2.0.{d}-x86_64-ebs", "x86_64", "2022-03-01"),
    ("amzn2-ami-ecs-kernel-5.10-hvm-2.0.{d}-arm64-ebs", "arm64", "2022-03-01"),
    ("amzn2-ami-ecs-gpu-hvm-2.0.{d}-x86_64-ebs", "x86_64", "2020-01-01"),
)

_K8S_VERSIONS = (
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

_DLAMI = (
    # label ({v} = the PyTorch version of the day), OS, arch, first, last, root, user
    ("Base OSS Nvidia Driver GPU AMI", "Ubuntu 20.04", "x86_64", "2023-06-01", "2025-05-31",
     "/dev/sda1", "ubuntu"),
    ("Base OSS Nvidia Driver GPU AMI", "Ubuntu 22.04", "x86_64", "2023-06-01", "2026-10-31",
     "/dev/sda1", "ubuntu"),
    ("Base OSS Nvidia Driver GPU AMI", "Ubuntu 24.04", "x86_64", "2025-01-15", "2026-10-31",
     "/dev/sda1", "ubuntu"),
    ("Base OSS Nvidia Driver GPU AMI", "Amazon Linux 2", "x86_64", "2023-06-01", "2025-06-30",
     "/dev/xvda", "ec2-user"),
    ("Base OSS Nvidia Driver GPU AMI", "Amazon Linux 2023", "x86_64", "2024-06-01", "2026-10-31",
     "/dev/xvda", "ec2-user"),
    ("ARM64 Base OSS Nvidia Driver GPU AMI", "Ubuntu 22.04", "arm64", "2024-01-10", "2026-10-31",
     "/dev/sda1", "ubuntu"),
    ("OSS Nvidia Driver AMI GPU PyTorch {v}", "Ubuntu 22.04", "x86_64", "2023-06-01", "2026-10-31",
     "/dev/sda1", "ubuntu"),
)  # fmt: skip

_PYTORCH = (
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

_DLAMI_DESCRIPTION = (
    "Supported EC2 instances: G4dn, G5, G6, Gr6, G6e, P4d, P4de, P5, P5e, P5en. "
    "Release notes: https://docs.aws.amazon.com/dlami/latest/devguide/"
    "appendix-ami-release-notes.html"
)


def _pytorch(day: date, i: int) -> str:
    return [v for v, since in _PYTORCH if day >= _d(since)][-1]


def _eks_series() -> Iterator[_Series]:
    """EKS-optimised nodes: every release covers the Kubernetes versions in support."""
    per_series: dict[tuple[str, str, str, str], list[date]] = {}
    for day in _cadence("eks", _d("2023-01-10"), CATALOG_END, 14, 35):
        for k8s, released in _K8S_VERSIONS:
            start = _d(released)
            if not start <= day < start + timedelta(days=425):
                continue
            variants = []
            if day < date(2025, 11, 26) and k8s <= "1.32":
                variants += [
                    (f"amazon-eks-node-{k8s}-v{{d}}", "x86_64", "AmazonLinux2"),
                    (f"amazon-eks-arm64-node-{k8s}-v{{d}}", "arm64", "AmazonLinux2"),
                ]
            if day >= date(2024, 2, 29):
                for arch in ("x86_64", "arm64"):
                    variants.append(
                        (f"amazon-eks-node-al2023-{arch}-standard-{k8s}-v{{d}}", arch,
                         "AmazonLinux2023")
                    )  # fmt: skip
            for name, arch, base in variants:
                per_series.setdefault((name, arch, base, k8s), []).append(day)
    for (name, arch, base, k8s), days in per_series.items():
        yield _Series(
            key=f"eks-{base}-{arch}-{k8s}",
            name=name,
            description=f"EKS Kubernetes Worker AMI with {base} image, (k8s: {k8s})",
            owner="amazon-eks",
            arches=(arch,),
            dates=tuple(days),
            max_tier=2,
            root="/dev/xvda",
            user="ec2-user",
            volume=20,
            vtype="gp3" if base.endswith("2023") else "gp2",
            boot=_uefi_arm,
        )


def _amazon_linux() -> Iterator[_Series]:
    amazon: _Publisher = {"root": "/dev/xvda", "user": "ec2-user"}
    # Amazon Linux 2: 2.0.YYYYMMDD.N, until its end of life (2026-06-30).
    al2 = _dates("amzn2", "2020-01-13", "2026-06-30", 10, 35)
    for name, arch, first, size, vtype in _AL2_VARIANTS:
        yield _Series(
            key=name,
            name=name,
            description=_al2_description(name),
            owner="amazon",
            arches=(arch,),
            dates=_since(al2, first),
            version=_al2_version,
            volume=size,
            vtype=vtype,
            boot=_uefi_arm,
            **amazon,
        )
    # Amazon Linux 2023: 2023.M.YYYYMMDD.N, kernel 6.1, 6.12 from 2023.7, 6.18 from 2023.10.
    al2023 = _dates("al2023", "2023-03-15", CATALOG_END, 7, 21)
    for kernel, first in (("6.1", "2023-03-15"), ("6.12", "2025-04-14"), ("6.18", "2026-03-30")):
        for minimal in (False, True):
            for arch in ("x86_64", "arm64"):
                kind = "-minimal" if minimal else ""
                yield _Series(
                    key=f"al2023-{kernel}-{minimal}-{arch}",
                    name=f"al2023-ami{kind}-{{v}}-kernel-{kernel}-{arch}",
                    description=(
                        f"Amazon Linux 2023 AMI {{v}} {arch} {'Minimal ' if minimal else ''}"
                        f"HVM kernel-{kernel}"
                    ),
                    owner="amazon",
                    arches=(arch,),
                    dates=_since(al2023, first),
                    version=_al2023_version,
                    volume=2 if minimal else 8,
                    vtype="gp3",
                    boot=_uefi_preferred,
                    deprecate_after=90,
                    **amazon,
                )
    # The first-generation Amazon Linux AMI: paravirtual, instance-store (S3) and HVM.
    def al1(
        key_suffix: str, dates: tuple[date, ...], version: Callable[[date, int], str]
    ) -> Iterator[_Series]:
        for kind, virt, root_type, suffix, desc_kind, vtype, root in _AL1_VARIANTS:
            yield _Series(
                key=f"amzn-ami-{kind}-{suffix}{key_suffix}",
                name=f"amzn-ami-{kind}-{{v}}-{suffix}",
                description=f"Amazon Linux AMI {{v}} {desc_kind}",
                owner="amazon",
                arches=("x86_64",),
                dates=dates,
                version=version,
                max_tier=2,
                virtualization=virt,
                root_type=root_type,
                root=root,
                user="ec2-user",
                vtype=vtype,
            )

    yield from al1("", _dates("amzn1", "2019-01-10", "2023-12-15", 20, 45), _al1_version)
    # Older Amazon Linux AMI releases, made before AMIs could carry a deprecation time (2021),
    # so none has one: AWS still lists them.
    for release, first, last in _AL1_OLDER:
        dates = _dates(f"amzn1-{release}", first, last, 14, 40)
        for series in al1(f"-{release}", dates, _al1_older_version(release, _d(first))):
            yield replace(series, deprecate_after=None)
    # ECS-optimised (published by the ECS account, alias amazon).
    ecs2 = _dates("ecs-al2", "2020-06-04", "2026-06-30", 12, 30)
    for name, arch, first in _ECS_AL2_VARIANTS:
        yield _Series(
            key=name,
            name=name,
            description=f"Amazon Linux AMI 2.0.{{d}} {arch} ECS HVM GP2",
            owner="amazon-ecs",
            arches=(arch,),
            dates=_since(ecs2, first),
            volume=30,
            boot=_uefi_arm,
            **amazon,
        )
    ecs2023 = _dates("ecs-al2023", "2023-06-08", CATALOG_END, 12, 30)
    for kind, arch in (("ecs", "x86_64"), ("ecs", "arm64"), ("ecs-gpu", "x86_64")):
        yield _Series(
            key=f"al2023-ami-{kind}-{arch}",
            name=f"al2023-ami-{kind}-hvm-2023.0.{{d}}-kernel-6.1-{arch}",
            description=f"Amazon Linux AMI 2023.0.{{d}} {arch} ECS HVM EBS",
            owner="amazon-ecs",
            arches=(arch,),
            dates=ecs2023,
            volume=30,
            vtype="gp3",
            boot=_uefi_preferred,
            **amazon,
        )
    yield from _eks_series()
    # AWS Deep Learning AMIs (names with spaces and parentheses, as on AWS).
    dl = _dates("dlami", "2023-06-13", CATALOG_END, 9, 24)
    for label, os_name, arch, first, last, root, user in _DLAMI:
        yield _Series(
            key=f"dlami-{label}-{os_name}-{arch}",
            name=f"Deep Learning {label} ({os_name}) {{d}}",
            description=_DLAMI_DESCRIPTION.replace("{", "{{").replace("}", "}}"),
            owner="amazon-dlami",
            arches=(arch,),
            dates=_since(dl, first, last),
            version=_pytorch,
            max_tier=1,
            root=root,
            user=user,
            volume=75,
            vtype="gp3",
            boot=_uefi_arm,
        )


# --- Debian -----------------------------------------------------------------

_DEBIAN_RELEASES = (
    # major, first serial, last serial, backports images
    ("10", "2019-07-10", "2024-06-30", True),
    ("11", "2021-08-15", "2026-08-31", True),
    ("12", "2023-06-10", "2026-10-31", True),
    ("13", "2025-08-09", "2026-10-31", False),
)


def _debian_serial(major: str) -> Callable[[date, int], str]:
    def serial(day: date, i: int) -> str:
        # One build counter for all Debian cloud images, as their pipeline ids.
        build = 1080 + (day - date(2021, 8, 1)).days * 3 // 5 + int(major) % 3
        return f"{day:%Y%m%d}-{build}"

    return serial


def _debian() -> Iterator[_Series]:
    for major, first, last, backports in _DEBIAN_RELEASES:
        dates = _dates(f"debian-{major}", first, last, 14, 42)
        for flavour in ("", "backports-") if backports else ("",):
            yield _Series(
                key=f"debian-{major}-{flavour}{{arch}}",
                name=f"debian-{major}-{flavour}{{arch}}-{{v}}",
                description=f"Debian {major}{' backports' if flavour else ''} ({{v}})",
                owner="debian",
                arches=("amd64", "arm64"),
                dates=dates,
                version=_debian_serial(major),
                root="/dev/xvda",
                user="admin",
                vtype="gp3" if int(major) >= 12 else "gp2",
                boot=_uefi_preferred if int(major) >= 12 else _uefi_arm,
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


def _rhel_name(release: str, major: int) -> Callable[[_Image], str]:
    label = release if major == 7 else f"{release}.0"

    def name(image: _Image) -> str:
        # Red Hat's build number grows by a few with every image of the series.
        build = _h("rhel-build", release, image.arch) % 6
        build += sum(1 + _h("rhel-step", release, image.arch, j) % 9 for j in range(1, image.i + 1))
        disk = "GP3" if image.day >= date(2022, 9, 1) and major >= 8 else "GP2"
        return f"RHEL-{label}_HVM-{image.day:%Y%m%d}-{image.arch}-{build}-Hourly2-{disk}"

    return name


def _redhat() -> Iterator[_Series]:
    for release, ga, last in _RHEL_MINORS:
        major = int(release.split(".")[0])
        yield _Series(
            key=f"rhel-{release}-{{arch}}",
            name=_rhel_name(release, major),
            description="Provided by Red Hat, Inc.",
            owner="redhat",
            arches=("x86_64",) if major == 7 else ("x86_64", "arm64"),
            dates=_dates(f"rhel-{release}", ga, last, 18, 50),
            root="/dev/sda1",
            user="ec2-user",
            volume=10,
            vtype=_gp3_since(date(2022, 9, 1)) if major >= 8 else "gp2",
            boot=_uefi_preferred if major >= 9 else _uefi_arm,
            platform_details="Red Hat Enterprise Linux",
            usage_operation="RunInstances:0010",
        )


# --- Windows ----------------------------------------------------------------

_SQL = {
    "Standard": ("Windows with SQL Server Standard", "RunInstances:0006"),
    "Enterprise": ("Windows with SQL Server Enterprise", "RunInstances:0102"),
    "Web": ("Windows with SQL Server Web", "RunInstances:0202"),
    "Express": ("Windows", "RunInstances:0002"),
}

#: Editions by Windows Server year. Retired releases (2012 R2 and older) are absent, as on AWS.
_WINDOWS_EDITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
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
)
_WINDOWS_LANGUAGES = (
    "Japanese",
    "German",
    "French",
    "Korean",
    "Chinese_Simplified",
    # added in issue 13, with 2016 in every language
    "Chinese_Traditional",
    "Spanish",
    "Italian",
    "Portuguese_Brazil",
    "Russian",
    "Dutch",
    "Swedish",
    "Turkish",
    "Polish",
)


def _patch_wednesday(year: int, month: int) -> date:
    """Amazon's Windows AMIs follow Patch Tuesday by a day."""
    first = date(year, month, 1)
    first_tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    return first_tuesday + timedelta(days=8)


def _patch_wednesdays(year: int, month: int) -> tuple[date, ...]:
    """Every month's Windows release from year-month up to CATALOG_END."""
    months = []
    while (day := _patch_wednesday(year, month)) <= CATALOG_END:
        months.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def _windows_series(year: str, lang: str, edition: str, max_tier: int, dates: tuple[date, ...]
                    ) -> _Series:  # fmt: skip
    series = f"Windows_Server-{year}-{lang}-{edition}"
    kind = edition.split("-")[0]
    if "-SQL_" in edition:
        _, sql_year, sql_edition = edition.split("-")[1].split("_")
        details, usage = _SQL[sql_edition]
        description = (
            f"Microsoft Windows Server {year} {kind} Locale {lang} with SQL "
            f"{sql_edition} {sql_year} AMI provided by Amazon"
        )
        size = 50
    else:
        details, usage = "Windows", "RunInstances:0002"
        extra = {"ContainersLatest": " with Containers", "ECS_Optimized": " ECS Optimized"}
        description = (
            f"Microsoft Windows Server {year}{extra.get(edition.split('-')[1], '')} "
            f"{kind} Locale {lang} AMI provided by Amazon"
        )
        size = 30
    return _Series(
        key=series,
        name=series + "-{dotted}",
        description=description,
        owner="microsoft-via-amazon",
        arches=("x86_64",),
        dates=dates,
        version=None,
        max_tier=max_tier,
        root="/dev/sda1",
        user=None,
        volume=size,
        vtype=_gp3_since(date(2024, 7, 1)),
        platform="windows",
        platform_details=details,
        usage_operation=usage,
        boot="uefi-preferred" if year == "2025" else None,
        deprecate_after=None,
    )


def _windows() -> Iterator[_Series]:
    months = _patch_wednesdays(2025, 1)
    for year, editions in _WINDOWS_EDITIONS.items():
        dates = months if year != "2025" else _since(months, "2024-11-13")
        variants = [("English", edition, 3) for edition in editions]
        variants += [(lang, "Full-Base", 1) for lang in _WINDOWS_LANGUAGES]
        for lang, edition, max_tier in variants:
            yield _windows_series(year, lang, edition, max_tier, dates)


# --- SUSE (on-demand images are published by Amazon) ------------------------


def _suse() -> Iterator[_Series]:
    for sp, first, last in (
        ("sp3", "2021-06-22", "2022-12-31"),
        ("sp4", "2022-06-21", "2023-12-31"),
        ("sp5", "2023-06-20", "2024-12-31"),
        ("sp6", "2024-06-25", "2025-12-31"),
        ("sp7", "2025-06-17", "2026-10-31"),
    ):
        dates = _dates(f"suse-{sp}", first, last, 20, 45)
        for product, arch in (("sles", "x86_64"), ("sles", "arm64"), ("sles-sap", "x86_64")):
            title = (
                "SUSE Linux Enterprise Server for SAP Applications"
                if product.endswith("sap")
                else "SUSE Linux Enterprise Server"
            )
            yield _Series(
                key=f"suse-{product}-15-{sp}-{arch}",
                name=f"suse-{product}-15-{sp}-v{{d}}-hvm-ssd-{arch}",
                description=f"{title} 15 {sp.upper()} (HVM, 64-bit, SSD-Backed)",
                owner="suse-via-amazon",
                arches=(arch,),
                dates=dates,
                max_tier=3 if product == "sles" else 1,
                root="/dev/sda1",
                user="ec2-user",
                volume=10,
                vtype="gp3",
                platform_details="SUSE Linux",
                usage_operation="RunInstances:000g",
                boot="uefi" if arch == "arm64" else "legacy-bios",
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

    def rocky(major: str, releases: tuple[tuple[str, str], ...], owner: str) -> _Product:
        def name(v: str, a: str, d: date, b: int) -> str:
            return f"Rocky-{major}-EC2-Base-{v}-{d:%Y%m%d}.{b % 2}.{arch_alt(a)}"

        return _Product(
            key=f"rocky-{major}" if owner == "aws-marketplace" else f"community-rocky-{major}",
            releases=releases,
            arches=("x86_64", "arm64"),
            name=name,
            description=name,
            user="rocky",
            lo=30,
            hi=90,
            owner=owner,
        )

    def almalinux_9(releases: tuple[tuple[str, str], ...], owner: str) -> _Product:
        return _Product(
            key="almalinux-9" if owner == "aws-marketplace" else "community-almalinux-9",
            releases=releases,
            arches=("x86_64", "arm64"),
            name=lambda v, a, d, b: f"AlmaLinux OS {v}.{d:%Y%m%d} {arch_alt(a)}",
            description=lambda v, a, d, b: f"Official AlmaLinux OS {v} {arch_alt(a)} image",
            user="ec2-user",
            lo=30,
            hi=70,
            owner=owner,
        )

    def centos_stream(major: str, since: str) -> _Product:
        def name(v: str, a: str, d: date, b: int) -> str:
            return f"CentOS-Stream-ec2-{major}-{d:%Y%m%d}.0.{arch_alt(a)}"

        return _Product(
            key=f"centos-stream-{major}",
            releases=((major, since),),
            arches=("x86_64", "arm64"),
            name=name,
            description=name,
            user="ec2-user",
            root="/dev/sda1",
            lo=30,
            hi=70,
        )

    rocky_9 = (
        ("9.0", "2022-07-14"),
        ("9.1", "2022-11-26"),
        ("9.2", "2023-05-16"),
        ("9.3", "2023-11-13"),
        ("9.4", "2024-05-09"),
        ("9.5", "2024-11-19"),
        ("9.6", "2025-06-04"),
        ("9.7", "2025-11-25"),
    )
    almalinux_9_releases = (
        ("9.1", "2022-11-17"),
        ("9.2", "2023-05-11"),
        ("9.3", "2023-11-14"),
        ("9.4", "2024-05-07"),
        ("9.5", "2024-11-19"),
        ("9.6", "2025-05-21"),
        ("9.7", "2025-11-18"),
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
        centos_stream("9", "2022-01-10"),
        centos_stream("10", "2024-12-12"),
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
        rocky("9", rocky_9, "aws-marketplace"),
        rocky(
            "8",
            (
                ("8.7", "2022-11-14"),
                ("8.8", "2023-05-22"),
                ("8.9", "2023-11-19"),
                ("8.10", "2024-05-30"),
            ),
            "aws-marketplace",
        ),
        almalinux_9(almalinux_9_releases, "aws-marketplace"),
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
        rocky("9", rocky_9[3:], "rocky"),  # from 9.3
        almalinux_9(almalinux_9_releases[2:], "almalinux"),  # from 9.3
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
    for family in (_canonical, _amazon_linux, _debian, _redhat, _windows, _suse):
        _expand(out, family())
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
    # A commercial region added to amibake.core.regions later is treated as a new opt-in one.
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
        # one starred tuple (the same bytecode): mypy matches it field by field
        out.append(CatalogImage(*(image_id, *spec.head, created, deprecation, *spec.tail)))
    return tuple(out)


def matches_owner(image: CatalogImage, owners: Sequence[str], self_account: str) -> bool:
    """DescribeImages ``Owners`` semantics for one image
    (:func:`amibake.core.owners.owner_matches`)."""
    return owner_matches(image.owner_id, image.owner_alias, owners, self_account)
