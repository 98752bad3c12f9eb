"""HCL2's JSON syntax (``*.pkr.json``): Packer's documented examples read as their HCL twins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amibake.core.templates import TemplateError, load, loads
from amibake.core.templates.errors import Problems
from amibake.core.templates.hcl import read_hcl_files
from amibake.core.templates.loader import detect_format
from tests.templates.helpers import NOW, fixed_uuid

# Packer's "JSON Configuration Syntax" page, written for amazon-ebs: labels as nested
# keys, strings as templates, "//" comments, arrays of objects for ordered blocks.
TEMPLATE: dict[str, Any] = {
    "//": "Packer's JSON syntax: this property is a comment",
    "packer": {"required_plugins": {"amazon": {"version": ">= 1.2.0", "source": "x/amazon"}}},
    "variable": {
        "region": {"type": "string", "default": "us-east-1"},
        "users": {
            "type": "list(string)",
            "default": ["alice", "bob"],
            "validation": {
                "condition": "${length(var.users) > 0}",
                "error_message": "At least one user is needed.",
            },
        },
    },
    "locals": {"prefix": "web-${var.region}", "size": "t3.micro"},
    "source": {
        "amazon-ebs": {
            "web": {
                "//": "a comment inside a block body",
                "region": "${var.region}",
                "source_ami": "ami-0123456789abcdef0",
                "instance_type": "${local.size}",
                "ssh_username": "ubuntu",
                "ami_name": "${local.prefix}-{{timestamp}}",
                "tags": {"Users": '${join(",", var.users)}', "Literal": "$${not.a.ref}"},
                "launch_block_device_mappings": [
                    {"device_name": "/dev/sda1", "volume_size": 20},
                    {"device_name": "/dev/sdb", "volume_size": 30},
                ],
            }
        }
    },
    "build": {
        "sources": ["source.amazon-ebs.web"],
        "provisioner": [
            {"shell": {"inline": ["echo first ${source.name}"]}},
            {"file": {"source": "a.txt", "destination": "/tmp/a.txt"}},
            {"shell": {"inline": ["echo third"]}},
        ],
        "dynamic": {
            "provisioner": {
                "for_each": "${var.users}",
                "iterator": "user",
                "labels": ["shell"],
                "content": {"inline": ["useradd ${user.value}"]},
            }
        },
    },
}

HCL_TWIN = """
variable "region" {
  type    = string
  default = "us-east-1"
}
variable "users" {
  type    = list(string)
  default = ["alice", "bob"]
  validation {
    condition     = length(var.users) > 0
    error_message = "At least one user is needed."
  }
}
locals {
  prefix = "web-${var.region}"
  size   = "t3.micro"
}
source "amazon-ebs" "web" {
  region        = var.region
  source_ami    = "ami-0123456789abcdef0"
  instance_type = local.size
  ssh_username  = "ubuntu"
  ami_name      = "${local.prefix}-{{timestamp}}"
  tags = { Users = join(",", var.users), Literal = "$${not.a.ref}" }
  launch_block_device_mappings {
    device_name = "/dev/sda1"
    volume_size = 20
  }
  launch_block_device_mappings {
    device_name = "/dev/sdb"
    volume_size = 30
  }
}
build {
  sources = ["source.amazon-ebs.web"]
  provisioner "shell" { inline = ["echo first ${source.name}"] }
  provisioner "file" {
    source      = "a.txt"
    destination = "/tmp/a.txt"
  }
  provisioner "shell" { inline = ["echo third"] }
  dynamic "provisioner" {
    for_each = var.users
    iterator = user
    labels   = ["shell"]
    content { inline = ["useradd ${user.value}"] }
  }
}
"""

KW: dict[str, Any] = {"env": {}, "now": NOW, "uuid_factory": fixed_uuid}


def _load(text: str, file: str, **kwargs: Any) -> Any:
    return loads(text, file=file, format="hcl", **KW, **kwargs)


def test_pkr_json_suffix_is_hcl_and_plain_json_is_legacy() -> None:
    assert detect_format(Path("web.pkr.json"), "{}") == "hcl"
    assert detect_format(Path("web.json"), "{}") == "json"


def test_json_syntax_reads_as_its_hcl_twin() -> None:
    from_json = _load(json.dumps(TEMPLATE, indent=2), "web.pkr.json")
    from_hcl = _load(HCL_TWIN, "web.pkr.hcl")
    builder = from_json.builders[0]
    assert builder.name == "web"
    assert builder.region == "us-east-1"
    assert builder.instance_type == "t3.micro"
    assert builder.ami_name == "web-us-east-1-1678886405"
    assert dict(builder.tags) == {"Users": "alice,bob", "Literal": "${not.a.ref}"}
    assert [m.volume_size for m in builder.launch_block_device_mappings] == [20, 30]
    kinds = [(p.type, getattr(p, "inline", None)) for p in from_json.provisioners]
    assert kinds == [
        ("shell", ("echo first web",)),
        ("file", None),
        ("shell", ("echo third",)),
        ("shell", ("useradd alice",)),
        ("shell", ("useradd bob",)),
    ]
    assert from_json.builders == from_hcl.builders
    assert from_json.provisioners == from_hcl.provisioners


def test_variable_validation_runs_in_json_syntax() -> None:
    with pytest.raises(TemplateError) as caught:
        _load(json.dumps(TEMPLATE), "web.pkr.json", vars={"users": "[]"})
    assert [p.message for p in caught.value.problems] == ["At least one user is needed."]


def test_repeated_block_keys_merge_as_in_packers_fixture() -> None:
    # packer's command/test-fixtures/build-only/template.pkr.json repeats "file" keys
    text = """{
      "source": {
        "amazon-ebs": {"a": {"region": "us-east-1", "source_ami": "ami-0123456789abcdef0",
                             "instance_type": "t3.micro", "ssh_username": "u",
                             "ami_name": "ami-a"}},
        "amazon-ebs": {"b": {"region": "us-east-1", "source_ami": "ami-0123456789abcdef0",
                             "instance_type": "t3.micro", "ssh_username": "u",
                             "ami_name": "ami-b"}}
      },
      "build": {"name": "both", "sources": ["sources.amazon-ebs.a", "sources.amazon-ebs.b"]}
    }"""
    spec = _load(text, "x.pkr.json")
    assert [b.name for b in spec.builders] == ["a", "b"]


def test_a_json_file_in_a_folder_joins_the_hcl_files(tmp_path: Path) -> None:
    (tmp_path / "variables.pkr.hcl").write_text('variable "region" { default = "eu-west-1" }\n')
    source = {"source": TEMPLATE["source"], "locals": TEMPLATE["locals"]}
    (tmp_path / "source.pkr.json").write_text(json.dumps(source, indent=2))
    (tmp_path / "variables2.pkr.json").write_text(
        json.dumps({"variable": {"users": TEMPLATE["variable"]["users"]}})
    )
    (tmp_path / "build.pkr.hcl").write_text('build { sources = ["source.amazon-ebs.web"] }\n')
    spec = load(tmp_path, **KW)
    assert spec.builders[0].region == "eu-west-1"
    assert spec.builders[0].ami_name == "web-eu-west-1-1678886405"


def test_a_single_pkr_json_file_given_directly(tmp_path: Path) -> None:
    path = tmp_path / "web.pkr.json"
    path.write_text(json.dumps(TEMPLATE))
    assert load(path, **KW).builders[0].name == "web"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", "x.pkr.json:1:1: the root of a .pkr.json file must be a JSON object"),
        (
            '{"variable": {"a": "oops"}}',
            "x.pkr.json:1:21: variable.a: a `variable` block is written as a JSON object",
        ),
        (
            '{"source": ["x"]}',
            "x.pkr.json:1:14: source: a `source` block is written as a JSON object keyed by the"
            " block's labels",
        ),
        (
            '{"sourse": {}}',
            "x.pkr.json:1:12: sourse: unknown block type `sourse`; did you mean `source`?",
        ),
        (
            '{"variable": {"a": {"type": 3}}}',
            'x.pkr.json:1:29: variable.a.type: a type is written as a string in JSON, e.g. "list',
        ),
        (
            '{"locals": {"a": "${var.}"}}',
            "x.pkr.json:1:",
        ),
        (
            '{"locals": {"a": {"k": 1, "k": 2}}}',
            "x.pkr.json:1:27: k: duplicate key (it is already set above in this object)",
        ),
        ('{"locals": {', "x.pkr.json:1:13: invalid JSON: "),
    ],
)
def test_json_syntax_errors_are_located(text: str, expected: str) -> None:
    problems = Problems()
    read_hcl_files([(text, "x.pkr.json")], problems)
    assert problems, text
    assert str(problems.items[0]).startswith(expected), [str(p) for p in problems.items]
