"""Run options (issue 12): decoded with Packer's types, defaults and checks (run_config.go)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amibake.core.model import MetadataOptions, Placement
from amibake.core.templates import TemplateError, load


def builder(**extra: Any) -> dict[str, Any]:
    return {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami": "ami-0123456789abcdef0",
        "ami_name": "run-options",
        **extra,
    }


def load_builder(tmp_path: Path, **extra: Any) -> Any:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder(**extra)]}, indent=1))
    return load(path).builders[0]


def error_of(tmp_path: Path, **extra: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        load_builder(tmp_path, **extra)
    return str(caught.value)


def test_packer_defaults(tmp_path: Path) -> None:
    b = load_builder(tmp_path)
    assert b.communicator == "ssh"
    assert b.metadata_options == MetadataOptions(
        http_endpoint="enabled",
        http_tokens="optional",
        http_put_response_hop_limit=1,
        instance_metadata_tags="disabled",
    )
    assert b.placement == Placement()
    assert not b.ebs_optimized and not b.enable_unlimited_credits


def test_options_decode(tmp_path: Path) -> None:
    b = load_builder(
        tmp_path,
        tenancy="host",
        placement={"host_resource_group_arn": "arn:aws:resource-groups:x"},
        security_group_id="sg-0123456789abcdef0",
        enable_t2_unlimited=True,
        capacity_reservation_id="cr-0123456789abcdef0",
    )
    assert b.placement == Placement(
        host_resource_group_arn="arn:aws:resource-groups:x", tenancy="host"
    )
    assert b.security_group_ids == ("sg-0123456789abcdef0",)
    assert b.enable_unlimited_credits is True
    assert b.capacity_reservation_id == "cr-0123456789abcdef0"


def test_communicator_none_needs_no_ssh_username(tmp_path: Path) -> None:
    body = builder(communicator="none")
    del body["ssh_username"]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [body]}))
    assert load(path).builders[0].communicator == "none"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"communicator": "winrm"}, '`communicator = "winrm"` is not supported yet by amibake'),
        ({"metadata_options": {"http_tokens": "maybe"}}, "expected one of optional, required"),
        ({"metadata_options": {"http_put_response_hop_limit": 65}}, "between 1 and 64"),
        ({"placement": {"tenancy": "shared"}}, "expected one of default, dedicated, host"),
        (
            {"placement": {"host_id": "h-1", "host_resource_group_arn": "arn:x"}},
            "cannot be specified at the same time",
        ),
        ({"placement": {"host_id": "h-1", "tenancy": "dedicated"}}, "must be `host`"),
        (
            {"placement": {"tenancy": "host"}, "tenancy": "host"},
            "set only one of `placement.tenancy` and `tenancy` (deprecated)",
        ),
        ({"instance_type": "m5.large", "enable_unlimited_credits": True}, "unlimited credits"),
        ({"enable_nitro_enclave": True}, "Nitro Enclaves cannot be used with burstable"),
        (
            {"capacity_reservation_id": "cr-1", "capacity_reservation_group_arn": "arn:x"},
            "mutually exclusive",
        ),
        (
            {"capacity_reservation_id": "cr-1", "capacity_reservation_preference": "open"},
            "cannot be set with a capacity reservation",
        ),
        ({"capacity_reservation_preference": "always"}, "expected one of none, open"),
        (
            {
                "security_group_id": "sg-0123456789abcdef0",
                "security_group_ids": ["sg-0123456789abcdef1"],
            },
            "set only one of `security_group_id` and `security_group_ids`",
        ),
        ({"run_volume_tags": {"aws:x": "y"}}, "reserved by AWS"),
        ({"spot_price": "soon"}, 'expected "auto" or a maximum hourly price'),
    ],
)
def test_located_errors(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    text = error_of(tmp_path, **extra)
    assert message in text
    first = text.splitlines()[0]
    assert first.startswith(str(tmp_path / "t.json") + ":")
