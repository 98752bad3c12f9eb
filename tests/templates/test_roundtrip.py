"""convert: JSON/HCL -> TOML/JSON -> an equal model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from core.templates import TemplateError, convert, load

from .helpers import FIXTURES, NOW, fixed_uuid

VARS = {"required_var": "hello"}


def load_fixed(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return load(path, env={"HOME": "/home/b"}, now=NOW, uuid_factory=fixed_uuid, **kwargs)


@pytest.mark.parametrize(
    ("name", "to"),
    [
        ("seed.json", "toml"),
        ("seed.json", "json"),
        ("full.json", "toml"),
        ("full.json", "json"),
        ("full.pkr.hcl", "toml"),
        ("simple.pkr.hcl", "json"),
        ("simple.pkr.hcl", "toml"),
    ],
)
def test_round_trip(tmp_path: Path, name: str, to: str) -> None:
    source = FIXTURES / name
    # copy next to the output so path.root / template_dir stay the same
    original = tmp_path / name
    original.write_text(source.read_text())
    vars_ = VARS if name.startswith("full") else {}
    out = tmp_path / f"converted.{to}"
    try:
        out.write_text(convert(original, to))
    except TemplateError as error:
        pytest.fail(error.report())
    before = load_fixed(original, vars=vars_)
    after = load_fixed(out, vars=vars_)
    assert after == before
    assert after.source_format == to
    # and once more: the conversion of a conversion is stable
    assert convert(out, to) == out.read_text()


def test_toml_output_shape(tmp_path: Path) -> None:
    doc = tomllib.loads(convert(FIXTURES / "seed.json", "toml"))
    assert doc["variables"] == {
        "aws_region": "us-east-1",
        "source_ami_filter_name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*",
    }
    (builder,) = doc["builders"]
    assert builder["ami_name"] == "my-nginx-ami-${unix_timestamp()}"
    assert builder["region"] == "${var.aws_region}"
    assert builder["source_ami_filter"] == {
        "filters": {"name": "${var.source_ami_filter_name}"},
        "owners": ["aws-marketplace"],
        "most_recent": True,
    }


def test_sensitive_survives_conversion() -> None:
    doc = tomllib.loads(convert(FIXTURES / "full.json", "toml"))
    assert doc["variables"]["db_password"] == {"default": "s3cr3t-pa55", "sensitive": True}


def test_hcl_to_json_rejects_what_packer_json_cannot_express(tmp_path: Path) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        (FIXTURES / "full.pkr.hcl")
        .read_text()
        .replace(
            'ami_description = "Web server ${uuidv4()}"',
            'ami_description = "${length(var.ami_regions) > 1 ? "multi" : "single"}"',
        )
    )
    with pytest.raises(TemplateError) as caught:
        convert(path, "json")
    messages = [str(p) for p in caught.value.problems]
    assert messages == [
        f"{path}:27:1: var.ami_regions: Packer JSON variables are strings; a list or object"
        " default cannot be written",
        f"{path}:89:24: source.amazon-ebs.web.ami_description:"
        ' `(length(var.ami_regions) > 1) ? "multi" : "single"` cannot be written as Packer JSON',
    ]
