"""convert: JSON/HCL -> TOML/JSON -> an equal model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from amibake.core.templates import TemplateError, convert, load
from amibake.core.templates.errors import Loc, Problems

from .helpers import FIXTURES, NOW, fixed_uuid, load_text

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


# -- the newer expression nodes convert (HCL syntax) or give one located line -----------------

NEW_NODES_HCL = """
variable "users" {
  type    = list(object({ name = string }))
  default = [{ name = "alice" }, { name = "bob" }]
}
locals {
  names   = [for u in var.users : upper(u.name) if u.name != ""]
  by_name = { for i, u in var.users : u.name => i }
  splat   = var.users[*].name
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "img-%{ if length(var.users) > 1 }many%{ else }one%{ endif }"
  ami_description = "%{ for u in var.users }${u.name};%{ endfor }"
}
build {
  sources = ["source.amazon-ebs.x"]
  provisioner "shell" { inline = local.names }
}
"""


def test_for_splat_and_template_directives_print_as_hcl() -> None:
    from amibake.core.templates.hclexpr import parse_expression, parse_template
    from amibake.core.templates.writers import hcl_expr

    here = Loc("t", 1, 1)
    for text in (
        '[for u in var.users : upper(u.name) if u.name != ""]',
        "{for i, u in var.users : u.name => i}",
        "{for u in var.users : u.name => u...}",
        "var.users[*].name",
        "var.users[*]",
    ):
        printed = hcl_expr(parse_expression(text, here))
        assert hcl_expr(parse_expression(printed, here)) == printed
    directive = parse_template(
        "a%{ if x }b%{ else }c%{ endif }%{ for k, v in m }${v}%{ endfor }", here
    )
    assert hcl_expr(directive) == (
        '"a%{ if x }b%{ else }c%{ endif }%{ for k, v in m }${v}%{ endfor }"'
    )


def test_new_nodes_convert_to_toml_and_load_back_the_same() -> None:
    from amibake.core.templates.hcl import read_hcl
    from amibake.core.templates.writers import to_toml

    problems = Problems()
    raw = read_hcl(NEW_NODES_HCL, "t.pkr.hcl", problems)
    assert raw is not None and not problems
    toml_text = to_toml(raw)
    original = load_text(NEW_NODES_HCL, "hcl")
    converted = load_text(toml_text, "toml")
    assert converted.builders[0].ami_name == original.builders[0].ami_name == "img-many"
    assert converted.builders[0].ami_description == "alice;bob;"
    assert converted.provisioners[0].inline == original.provisioners[0].inline == ("ALICE", "BOB")


def test_new_nodes_to_packer_json_are_one_located_line_each() -> None:
    from amibake.core.templates.hcl import read_hcl
    from amibake.core.templates.writers import to_json

    problems = Problems()
    raw = read_hcl(NEW_NODES_HCL, "t.pkr.hcl", problems)
    assert raw is not None
    with pytest.raises(TemplateError) as caught:
        to_json(raw)
    lines = [str(p) for p in caught.value.problems]
    assert lines and all(line.startswith("t.pkr.hcl:") for line in lines), lines
    unwritable = [line for line in lines if line.endswith("cannot be written as Packer JSON")]
    assert any("%{ for u in var.users }" in line for line in unwritable), lines
    assert any("%{ if length(var.users) > 1 }" in line for line in unwritable), lines


@pytest.mark.parametrize("to", ["json", "toml"])
def test_a_converted_template_keeps_which_builds_run_a_provisioner(tmp_path: Path, to: str) -> None:
    """HCL2 binds a provisioner to its build block's sources (and one using
    ``${source.name}`` is a copy per source): the written template says so with ``only``,
    so each builder runs what it ran before (amazon-ecs-ami's 13 sources)."""
    source = """
source "amazon-ebs" "%s" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-%s"
}
"""
    text = (
        source % ("al2", "al2")
        + source % ("al2023", "al2023")
        + """
build {
  sources = ["source.amazon-ebs.al2", "source.amazon-ebs.al2023"]
  provisioner "shell" { inline = ["echo ${source.name}"] }
  provisioner "shell" { inline = ["echo everyone"] }
}
build {
  sources = ["source.amazon-ebs.al2"]
  provisioner "shell" { inline = ["echo al2 only"] }
}
"""
    )
    original = tmp_path / "t.pkr.hcl"
    original.write_text(text)
    out = tmp_path / f"converted.{to}"
    out.write_text(convert(original, to))
    before, after = load_fixed(original), load_fixed(out)

    def runs(spec) -> dict[str, list[tuple[str, ...]]]:  # type: ignore[no-untyped-def]
        return {
            b.name: [p.inline for p in spec.provisioners_for(b)]  # type: ignore[union-attr]
            for b in spec.builders
        }

    assert runs(before) == {
        "al2": [("echo al2",), ("echo everyone",)],
        "al2023": [("echo al2023",), ("echo everyone",)],
        "al2-2": [("echo al2 only",)],  # a second build block: a second build, as in Packer
    }
    assert runs(after) == runs(before)
