"""The generated catalogue is pinned: image ids, names, owners and dates never move.

Users keep AMI ids in templates and notes, and snapshots show them, so a change to the
catalogue generator must leave every published record as it was. Series added later are
listed in ``ADDED_SINCE_PIN`` (name patterns): the pin covers everything else, in order.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib

from amibake.core.local.images import CatalogImage, catalog_for_region, catalog_regions

PINNED_COUNT = 94965
PINNED_SHA256 = "32e49930cb96127e288d32a375f05721b7b91f0fd3ac1d57484ae556da4f26f6"

#: Name patterns of the series added after the pin (issue 13). Nothing else may change.
ADDED_SINCE_PIN: tuple[str, ...] = (
    # Ubuntu 16.04/18.04: ESM refreshes after the pinned serials, minimal images, Pro, EKS
    "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-*-server-20230[6-9]*",
    "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-*-server-20231*",
    "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-*-server-202[4-6]*",
    "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-*-server-20210[5-9]*",
    "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-*-server-20211*",
    "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-*-server-202[2-6]*",
    "ubuntu-minimal/images/hvm-ssd/ubuntu-bionic-*",
    "ubuntu-minimal/images/hvm-ssd/ubuntu-xenial-*",
    "ubuntu-pro-server/images/*",
    "ubuntu-eks/k8s_*/images/hvm-ssd/ubuntu-bionic-*",
    "ubuntu-eks/k8s_*/images/hvm-ssd/ubuntu-focal-*",
    # Amazon Linux 2 minimal gp2, AL2023 kernel 6.18, older Amazon Linux AMI releases, ECS GPU
    "amzn2-ami-minimal-hvm-*-gp2",
    "al2023-ami-*-kernel-6.18-*",
    "amzn-ami-*-2016.09.*",
    "amzn-ami-*-2017.0[39].*",
    "amzn-ami-*-2018.03.0.2018*",
    "amzn2-ami-ecs-gpu-hvm-*",
    # Windows Server 2016 in every language, and more languages for every year
    "Windows_Server-2016-Japanese-*",
    "Windows_Server-2016-German-*",
    "Windows_Server-2016-French-*",
    "Windows_Server-2016-Korean-*",
    "Windows_Server-2016-Chinese_Simplified-*",
    "Windows_Server-*-Chinese_Traditional-*",
    "Windows_Server-*-Spanish-*",
    "Windows_Server-*-Italian-*",
    "Windows_Server-*-Portuguese_Brazil-*",
    "Windows_Server-*-Russian-*",
    "Windows_Server-*-Dutch-*",
    "Windows_Server-*-Swedish-*",
    "Windows_Server-*-Turkish-*",
    "Windows_Server-*-Polish-*",
)


FIELDS = tuple(field.name for field in dataclasses.fields(CatalogImage))


def _record(image: CatalogImage) -> bytes:
    # The same text as repr(dataclasses.astuple(image)), without its deep copies.
    return repr(tuple(getattr(image, name) for name in FIELDS)).encode()


def _added(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in ADDED_SINCE_PIN)


def test_every_pinned_record_is_unchanged_in_every_region() -> None:
    digest = hashlib.sha256()
    count = 0
    for region in catalog_regions():
        for image in catalog_for_region(region):
            if _added(image.name):
                continue
            digest.update(region.encode() + b"\x1f" + _record(image))
            count += 1
    assert count == PINNED_COUNT
    assert digest.hexdigest() == PINNED_SHA256
