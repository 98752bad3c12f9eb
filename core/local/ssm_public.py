"""AWS's public SSM parameters for AMIs, computed from the local cloud's own catalogue.

AWS publishes, in every region, SSM parameters that name the current image of
each series (``/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/
hvm/ebs-gp3/ami-id``, ``/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-
default-x86_64`` ...). Templates read them through ``data "amazon-parameterstore"``
and ``{{resolve:ssm:...}}``-style lookups, so the local cloud answers them too:
each parameter points at the newest image of its series in the local catalogue
of that region (:func:`amibake.core.local.images.catalog_for_region`), so its value is an
id DescribeImages knows there.

Names follow each publisher's documented scheme:

* Canonical: ``/aws/service/canonical/ubuntu/{server,server-minimal}/<release>/
  stable/current/<arch>/hvm/<ebs-gp3|ebs-gp2|ebs-io1|ebs-standard|instance-store>/ami-id``
  where ``<release>`` is the version (``22.04``) or the code name (``jammy``),
  plus ``stable/<serial>/...`` for every serial, and the EKS images under
  ``/aws/service/canonical/ubuntu/eks/<release>/<k8s>/stable/current/...``;
* Amazon Linux: ``/aws/service/ami-amazon-linux-latest/<name without version>``
  (``al2023-ami-kernel-default-x86_64``, ``al2023-ami-kernel-6.12-arm64``,
  ``al2023-ami-minimal-kernel-default-x86_64``, ``amzn2-ami-hvm-x86_64-gp2``,
  ``amzn2-ami-kernel-5.10-hvm-arm64-gp2``, ``amzn-ami-hvm-x86_64-gp2`` ...);
  ``kernel-default`` is the 6.1 kernel;
* Debian: ``/aws/service/debian/release/<n|codename>/latest/<amd64|arm64>`` and
  ``/aws/service/debian/release/<n>/<serial>/<arch>``;
* Windows: ``/aws/service/ami-windows-latest/<name without its date>``;
* EKS optimized: ``/aws/service/eks/optimized-ami/<k8s>/<amazon-linux-2|amazon-
  linux-2-arm64>/recommended/{image_id,image_name}`` and ``amazon-linux-2023/
  <arch>/standard/recommended/{image_id,image_name}``;
* ECS optimized: ``/aws/service/ecs/optimized-ami/amazon-linux-2[/kernel-5.10]
  [/arm64]/recommended/{image_id,image_name}``.

Pure data (no moto): :func:`public_parameters` is computed once per region and
cached. :func:`install` hooks it into moto's SSM parameter store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from amibake.core.local.images import OWNER_ACCOUNTS, CatalogImage, catalog_for_region

PREFIX = "/aws/service/"

_UBUNTU_CODES = {
    "14.04": "trusty",
    "16.04": "xenial",
    "18.04": "bionic",
    "20.04": "focal",
    "22.04": "jammy",
    "24.04": "noble",
    "24.10": "oracular",
    "25.04": "plucky",
    "25.10": "questing",
    "26.04": "resolute",
}
_DEBIAN_CODES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"}
_UBUNTU_VOLUME = {
    "hvm-ssd-gp3": ("hvm", "ebs-gp3"),
    "hvm-ssd": ("hvm", "ebs-gp2"),
    "hvm-io1": ("hvm", "ebs-io1"),
    "ebs-ssd": ("pv", "ebs-gp2"),
    "hvm-instance": ("hvm", "instance-store"),
    "instance-store": ("pv", "instance-store"),
}

_UBUNTU = re.compile(
    r"^ubuntu(?P<minimal>-minimal)?/images/(?P<store>[a-z0-9-]+)/ubuntu-(?P<code>[a-z]+)-"
    r"(?P<version>\d+\.\d+)-(?P<arch>amd64|arm64|i386)-(?:server|minimal)-(?P<serial>\d{8}(?:\.\d+)?)$"
)
_UBUNTU_EKS = re.compile(
    r"^ubuntu-eks/k8s_(?P<k8s>[\d.]+)/images/(?P<store>[a-z0-9-]+)/ubuntu-(?P<code>[a-z]+)-"
    r"(?P<version>\d+\.\d+)-(?P<arch>amd64|arm64)-server-(?P<serial>\d{8}(?:\.\d+)?)$"
)
_AL2023 = re.compile(
    r"^al2023-ami-(?P<minimal>minimal-)?2023\.[\d.]+-kernel-(?P<kernel>[\d.]+)-(?P<arch>x86_64|arm64)$"
)
_AMZN2 = re.compile(
    r"^amzn2-ami-(?P<minimal>minimal-)?(?P<kernel>kernel-[\d.]+-)?hvm-2\.0\.[\d.]+-"
    r"(?P<arch>x86_64|arm64)-(?P<volume>gp2|ebs)$"
)
_AMZN1 = re.compile(
    r"^amzn-ami-(?P<minimal>minimal-)?(?P<virt>hvm|pv)-2018\.03\.[\d.]+-x86_64-(?P<volume>gp2|ebs|s3)$"
)
_DEBIAN = re.compile(r"^debian-(?P<n>\d+)-(?P<arch>amd64|arm64)-(?P<serial>\d{8}-\d+)$")
_WINDOWS = re.compile(r"^(?P<series>Windows_Server-.+)-\d{4}\.\d{2}\.\d{2}$")
_EKS_AL2 = re.compile(r"^amazon-eks-(?P<arm>arm64-)?node-(?P<k8s>\d+\.\d+)-v\d{8}$")
_EKS_AL2023 = re.compile(
    r"^amazon-eks-node-al2023-(?P<arch>x86_64|arm64)-(?P<flavour>standard|nvidia|neuron)-"
    r"(?P<k8s>\d+\.\d+)-v\d{8}$"
)
_ECS_AL2 = re.compile(
    r"^amzn2-ami-ecs-(?P<kernel>kernel-[\d.]+-)?hvm-2\.0\.\d{8}-(?P<arch>x86_64|arm64)-ebs$"
)

#: (parameter name, what it answers): ``"id"`` the image id, ``"name"`` its name.
Names = list[tuple[str, str]]


def _canonical(image: CatalogImage) -> Names:
    out: Names = []
    base = f"{PREFIX}canonical/ubuntu"
    m = _UBUNTU.match(image.name)
    if m is not None and m["store"] in _UBUNTU_VOLUME:
        virt, volume = _UBUNTU_VOLUME[m["store"]]
        kind = "server-minimal" if m["minimal"] else "server"
        for release in (m["version"], m["code"]):
            for serial in ("current", m["serial"]):
                out.append(
                    (
                        f"{base}/{kind}/{release}/stable/{serial}/{m['arch']}/{virt}/{volume}/ami-id",
                        "id",
                    )
                )
        return out
    m = _UBUNTU_EKS.match(image.name)
    if m is not None and m["store"] in _UBUNTU_VOLUME:
        virt, volume = _UBUNTU_VOLUME[m["store"]]
        for release in (m["version"], m["code"]):
            out.append(
                (
                    f"{base}/eks/{release}/{m['k8s']}/stable/current/{m['arch']}/{virt}/{volume}/ami-id",
                    "id",
                )
            )
    return out


def _amazon(image: CatalogImage) -> Names:
    base = f"{PREFIX}ami-amazon-linux-latest/"
    m = _AL2023.match(image.name)
    if m is not None:
        minimal = m["minimal"] or ""
        names = [f"{base}al2023-ami-{minimal}kernel-{m['kernel']}-{m['arch']}"]
        if m["kernel"] == "6.1":
            names.append(f"{base}al2023-ami-{minimal}kernel-default-{m['arch']}")
        return [(n, "id") for n in names]
    m = _AMZN2.match(image.name)
    if m is not None:
        variant = f"{m['minimal'] or ''}{m['kernel'] or ''}"
        return [(f"{base}amzn2-ami-{variant}hvm-{m['arch']}-{m['volume']}", "id")]
    m = _AMZN1.match(image.name)
    if m is not None:
        return [(f"{base}amzn-ami-{m['minimal'] or ''}{m['virt']}-x86_64-{m['volume']}", "id")]
    m = _WINDOWS.match(image.name)
    if m is not None:
        return [(f"{PREFIX}ami-windows-latest/{m['series']}", "id")]
    return []


def _debian(image: CatalogImage) -> Names:
    m = _DEBIAN.match(image.name)
    if m is None:
        return []
    base = f"{PREFIX}debian/release"
    out = [
        (f"{base}/{m['n']}/latest/{m['arch']}", "id"),
        (f"{base}/{m['n']}/{m['serial']}/{m['arch']}", "id"),
    ]
    code = _DEBIAN_CODES.get(m["n"])
    if code:
        out.append((f"{base}/{code}/latest/{m['arch']}", "id"))
    return out


def _eks(image: CatalogImage) -> Names:
    base = f"{PREFIX}eks/optimized-ami"
    m = _EKS_AL2.match(image.name)
    if m is not None:
        family = "amazon-linux-2-arm64" if m["arm"] else "amazon-linux-2"
        prefix = f"{base}/{m['k8s']}/{family}/recommended"
    else:
        m = _EKS_AL2023.match(image.name)
        if m is None:
            return []
        prefix = f"{base}/{m['k8s']}/amazon-linux-2023/{m['arch']}/{m['flavour']}/recommended"
    return [(f"{prefix}/image_id", "id"), (f"{prefix}/image_name", "name")]


def _ecs(image: CatalogImage) -> Names:
    m = _ECS_AL2.match(image.name)
    if m is None:
        return []
    parts = ["amazon-linux-2"]
    if m["kernel"]:
        parts.append(m["kernel"].rstrip("-"))
    if m["arch"] == "arm64":
        parts.append("arm64")
    prefix = f"{PREFIX}ecs/optimized-ami/{'/'.join(parts)}/recommended"
    return [(f"{prefix}/image_id", "id"), (f"{prefix}/image_name", "name")]


_BY_OWNER: Mapping[str, Callable[[CatalogImage], Names]] = {
    OWNER_ACCOUNTS["canonical"]: _canonical,
    OWNER_ACCOUNTS["amazon"]: _amazon,
    OWNER_ACCOUNTS["microsoft-via-amazon"]: _amazon,
    OWNER_ACCOUNTS["debian"]: _debian,
    OWNER_ACCOUNTS["amazon-eks"]: _eks,
    OWNER_ACCOUNTS["amazon-ecs"]: _ecs,
}


@functools.lru_cache(maxsize=64)
def public_parameters(region: str) -> Mapping[str, tuple[str, datetime]]:
    """``{parameter name: (value, last modified)}`` for ``region``: each the newest match."""
    best: dict[str, tuple[datetime, str, str]] = {}
    for image in catalog_for_region(region):
        names_of = _BY_OWNER.get(image.owner_id)
        if names_of is None:
            continue
        for name, what in names_of(image):
            current = best.get(name)
            if current is None or image.creation_date > current[0]:
                value = image.image_id if what == "id" else image.name
                best[name] = (image.creation_date, value, image.image_id)
    return {name: (value, created) for name, (created, value, _) in sorted(best.items())}


# --------------------------------------------------------------------------- moto


_installed = False


def install() -> None:
    """Serve :func:`public_parameters` from moto's SSM backend (once per process).

    moto loads its own, fixed ``/aws/service/ami-amazon-linux-latest`` and ECS
    parameters, whose ids no local region holds: ours replace them. Other
    ``/aws/service/`` trees moto has (regions, services) stay as they are.
    """
    global _installed
    if _installed:
        return
    _installed = True
    from moto.ssm.models import Parameter, ParameterDict

    original = ParameterDict._check_loading_status

    def check_loading_status(self: ParameterDict, key: str) -> None:
        key = str(key or "")
        if key.startswith(PREFIX[:-1]) and not getattr(self, "amibake_public_loaded", False):
            self.amibake_public_loaded = True  # type: ignore[attr-defined]  # amibake's mark on moto's ParameterDict
            self.latest_amis_loaded = True  # moto's own fixed ones would shadow ours
            self.latest_ecs_amis_loaded = True
            try:
                parameters = public_parameters(self.region_name)
            except ValueError:  # not a commercial region: nothing published
                parameters = {}
            store: Any = super(ParameterDict, self)
            for name, (value, modified) in parameters.items():
                store.__getitem__(name).append(
                    Parameter(  # type: ignore[abstract]  # moto builds it so too: CloudFormationModel's abstract methods are unused here
                        account_id=self.account_id,
                        name=name,
                        value=value,
                        parameter_type="String",
                        description=None,
                        allowed_pattern=None,
                        keyid=None,
                        last_modified_date=modified,
                        version=1,
                        data_type="aws:ec2:image" if value.startswith("ami-") else "text",
                    )
                )
        original(self, key)

    ParameterDict._check_loading_status = check_loading_status  # type: ignore[method-assign]  # patching moto's method
