"""Spot, network-filter and ``disable_stop_instance`` options (issue 12), decoded and checked
as Packer's RunConfig.Prepare does (packer-plugin-amazon builder/common/run_config.go)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amibake.core.engine.build import planned_steps
from amibake.core.model import FrozenMap, NetworkFilter
from amibake.core.templates import TemplateError, load
from tests.templates.helpers import hcl_builder, load_text


def builder(**extra: Any) -> dict[str, Any]:
    base = {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami": "ami-0123456789abcdef0",
        "ami_name": "spot-options",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def load_spec(tmp_path: Path, **extra: Any) -> Any:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder(**extra)]}, indent=1))
    return load(path)


def errors_of(tmp_path: Path, **extra: Any) -> list[str]:
    with pytest.raises(TemplateError) as caught:
        load_spec(tmp_path, **extra)
    return [str(p) for p in caught.value.problems]


def test_spot_options_decode(tmp_path: Path) -> None:
    spec = load_spec(
        tmp_path,
        instance_type=None,
        spot_price="auto",
        spot_instance_types=["t3.small", "t3a.small"],
        spot_tags={"a": "1"},
        spot_tag=[{"key": "b", "value": "2"}],
        fleet_tags={"f": "3"},
        spot_allocation_strategy="price-capacity-optimized",
        block_duration_minutes=120,
        disable_stop_instance=True,
    )
    b = spec.builders[0]
    assert b.instance_type == ""  # the fleet chooses among spot_instance_types
    assert b.spot_price == "auto"
    assert b.spot_instance_types == ("t3.small", "t3a.small")
    assert b.spot_tags == FrozenMap({"a": "1", "b": "2"})
    assert b.fleet_tags == FrozenMap({"f": "3"})
    assert b.spot_allocation_strategy == "price-capacity-optimized"
    assert b.block_duration_minutes == 120
    assert b.disable_stop_instance is True
    names = [name for name, _ in planned_steps(spec, b)]
    assert "spot" in names and "instance" not in names
    assert "stop" not in names  # a spot instance is not stopped (Packer skips the step)


def test_spot_price_zero_means_on_demand(tmp_path: Path) -> None:
    # Packer's IsSpotInstance: "" and "0" are on demand (corpus: rosco's "aws_spot_price": "0")
    spec = load_spec(tmp_path, spot_price="0", spot_price_auto_product="")
    b = spec.builders[0]
    assert b.spot_price is None
    names = [name for name, _ in planned_steps(spec, b)]
    assert "instance" in names and "spot" not in names and "stop" in names


def test_spot_price_auto_product_is_a_deprecation_warning(tmp_path: Path) -> None:
    spec = load_spec(tmp_path, spot_price="auto", spot_price_auto_product="Linux/UNIX")
    (warning,) = spec.warnings
    assert warning.startswith(f"{tmp_path / 't.json'}:")  # located: file:line:col
    assert "spot_price_auto_product" in warning and "deprecated" in warning


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"spot_price": "auto", "spot_instance_types": ["t3.small"]},
            "either `instance_type` or `spot_instance_types` must be specified, not both",
        ),
        (
            {"instance_type": None, "spot_instance_types": ["t3.small"]},
            '`spot_instance_types` needs `spot_price` ("auto" or a maximum price)',
        ),
        ({"spot_tags": {"a": "b"}}, "`spot_tags` should not be set when not requesting a spot"),
        (
            {"spot_price": "0", "fleet_tags": {"a": "b"}},
            "`fleet_tags` should not be set when not requesting a spot",
        ),
        ({"spot_price": "cheap"}, 'expected "auto" or a maximum hourly price'),
        (
            {"spot_price": "auto", "block_duration_minutes": 90},
            "`block_duration_minutes` must be a multiple of 60, got 90",
        ),
        (
            {"spot_price": "auto", "spot_allocation_strategy": "cheapest"},
            "expected one of lowest-price, diversified",
        ),
        (
            {"spot_price": "0.1", "instance_type": "t2.micro", "enable_unlimited_credits": True},
            "unlimited credits cannot be used with spot instances (T2)",
        ),
        (
            {"spot_price": "0.1", "instance_type": "m5.large", "enable_nitro_enclave": True},
            "Nitro Enclaves cannot be used with spot instances",
        ),
        (
            {"spot_price": "auto", "instance_type": None, "spot_instance_types": ["big"]},
            "`big` is not an EC2 instance type",
        ),
    ],
)
def test_spot_checks_are_located(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    errors = errors_of(tmp_path, **options)
    assert any(message in e for e in errors), errors
    assert all(e.startswith(str(tmp_path / "t.json") + ":") for e in errors), errors


def test_network_filters_decode(tmp_path: Path) -> None:
    b = load_spec(
        tmp_path,
        vpc_filter={"filters": {"tag:Name": "build", "isDefault": "false"}},
        subnet_filter={"filters": {"tag:Name": "a,b"}, "most_free": True, "random": "true"},
        security_group_filter={"filters": {"group-name": "ssh"}},
    ).builders[0]
    assert b.vpc_filter == NetworkFilter(
        filters=FrozenMap({"tag:Name": "build", "isDefault": "false"})
    )
    assert b.subnet_filter == NetworkFilter(
        filters=FrozenMap({"tag:Name": "a,b"}), most_free=True, random=True
    )
    assert b.security_group_filter == NetworkFilter(filters=FrozenMap({"group-name": "ssh"}))


def test_network_filter_errors(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        vpc_filter={"filters": {"tag:Name": ""}, "most_free": True},
        subnet_filter={"filters": {"a": "b"}, "most_free": "often"},
    )
    assert any(
        "vpc_filter.filters.tag:Name: filter names and values must not be empty" in e
        for e in errors
    )
    assert any("vpc_filter.most_free" in e for e in errors), errors  # subnets only
    assert any("subnet_filter.most_free: expected true or false" in e for e in errors), errors


def test_empty_filter_is_unset_and_the_plan_has_no_network_step(tmp_path: Path) -> None:
    spec = load_spec(tmp_path, subnet_filter={"filters": {}}, vpc_filter={})
    b = spec.builders[0]
    assert b.subnet_filter is None and b.vpc_filter is None
    assert "network" not in [name for name, _ in planned_steps(spec, b)]
    spec = load_spec(tmp_path, subnet_filter={"filters": {"tag:Name": "x"}, "random": True})
    assert "network" in [name for name, _ in planned_steps(spec, spec.builders[0])]


def test_hcl_blocks() -> None:
    spec = load_text(
        hcl_builder(
            """
  ami_name   = "hcl-spot"
  spot_price = "auto"
  spot_tag {
    key   = "team"
    value = "bakers"
  }
  fleet_tag {
    key   = "k"
    value = "v"
  }
  subnet_filter {
    filters = {
      "tag:Name" = "AMI Build"
    }
    random = true
  }
  disable_stop_instance = true
"""
        ),
        "hcl",
    )
    b = spec.builders[0]
    assert b.spot_tags == FrozenMap({"team": "bakers"})
    assert b.fleet_tags == FrozenMap({"k": "v"})
    assert b.subnet_filter == NetworkFilter(
        filters=FrozenMap({"tag:Name": "AMI Build"}), random=True
    )
    assert b.disable_stop_instance is True
