"""Every interpolation function, in both syntaxes, and variable precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import fixed_uuid, hcl_builder, json_builder, load_text, problems_of


def json_desc(template: str, **kwargs: object) -> str:
    spec = load_text(json_builder(ami_description=template, **kwargs), env={"ENV_X": "from-env"})
    value = spec.builders[0].ami_description
    assert value is not None
    return value


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{user `v`}}", "val"),
        ("{{ user `v` }}", "val"),
        ('{{user "v"}}', "val"),
        ("{{timestamp}}", "1678886405"),
        ("{{uuid}}", fixed_uuid()),
        ('{{isotime "2006-01-02 15:04:05"}}', "2023-03-15 13:20:05"),
        ('{{isotime "Jan _2 03PM MST"}}', "Mar 15 01PM UTC"),
        ("{{isotime}}", "2023-03-15T13:20:05Z"),
        ("{{env `ENV_X`}}", "from-env"),
        ("x{{env `UNSET_X`}}", "x"),
        ("{{build_name}}", "amazon-ebs"),
        ("{{build_type}}", "amazon-ebs"),
        ("{{clean_resource_name `a:b*c (d)`}}", "a-b-c (d)"),
        ('{{isotime "2006-01-02T15:04" | clean_resource_name}}', "2023-03-15T13-20"),
        ("{{timestamp | clean_resource_name}}", "1678886405"),
        ("{{upper `abc`}} {{lower `DEF`}}", "ABC def"),
        ('{{replace_all "-" "_" "a-b-c"}}', "a_b_c"),
        ('{{replace "-" "_" -1 "a-b"}}', "a_b"),
        ('{{split "a,b,c" "," 1}}', "b"),
        ("{{ .Path }} kept", "{{ .Path }} kept"),
        ("plain", "plain"),
    ],
)
def test_json_functions(template: str, expected: str) -> None:
    assert json_desc(template, variables={"v": "val"}) == expected


def test_json_pwd_and_template_dir(tmp_path: Path) -> None:
    from amibake.core.templates import load

    path = tmp_path / "t.json"
    path.write_text(json_builder(ami_description="{{template_dir}}|{{pwd}}"))
    spec = load(path, env={})
    assert spec.builders[0].ami_description == f"{tmp_path.resolve()}|{os.getcwd()}"


def test_json_user_variable_referencing_env_and_other_variables() -> None:
    spec = load_text(
        json_builder(
            ami_description="{{user `b`}}",
            variables={"a": "{{env `ENV_X`}}", "b": "{{user `a`}}-x"},
        ),
        env={"ENV_X": "e"},
    )
    assert spec.builders[0].ami_description == "e-x"


def hcl_desc(expr: str, prelude: str = "") -> str:
    text = hcl_builder(f'ami_name = "n-${{source.name}}"\n  ami_description = {expr}', prelude)
    spec = load_text(text, "hcl", env={"ENV_X": "from-env"})
    value = spec.builders[0].ami_description
    assert value is not None
    return value


PRELUDE = """
variable "v" {
  default = "val"
}
variable "l" {
  type    = list(string)
  default = ["a", "b"]
}
locals {
  loc  = "${var.v}-local"
  both = "${local.loc}+"
}
"""


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("var.v", "val"),
        ('"${var.v}!"', "val!"),
        ("local.both", "val-local+"),
        ("timestamp()", "2023-03-15T13:20:05Z"),
        ('formatdate("YYYY-MM-DD hh:mm:ss", timestamp())', "2023-03-15 13:20:05"),
        (
            'formatdate("DD MMM YY, H:m AA \'at\' EEE ZZZZZ", "2023-03-05T07:08:09Z")',
            "05 Mar 23, 7:8 AM at Sun +00:00",  # cty: ZZZZZ is the offset; only Z says "Z"
        ),
        ("uuidv4()", fixed_uuid()),
        ('env("ENV_X")', "from-env"),
        ('clean_resource_name("a:b")', "a-b"),
        ('upper("x")', "X"),
        ('replace("a-b", "-", "_")', "a_b"),
        ('join(",", var.l)', "a,b"),
        ('split(",", "x,y")[1]', "y"),
        ('format("%s-%d", "a", 7)', "a-7"),
        ("var.l[0]", "a"),
        ('length(var.l) == 2 ? "two" : "other"', "two"),
        ('"${1 + 2 * 3}"', "7"),
        ('"$${literal}"', "${literal}"),
        ('"tab\\tquote\\""', 'tab\tquote"'),
        ('lookup({a = "1"}, "b", "dflt")', "dflt"),
        ("source.name", "x"),
        ('coalesce("", "c")', "c"),
        ('trimspace("  s ")', "s"),
        ("<<EOT\nline ${var.v}\nEOT", "line val\n"),
        ("<<-EOT\n    indented\n      more\n    EOT", "indented\n  more\n"),
    ],
)
def test_hcl_functions(expr: str, expected: str) -> None:
    assert hcl_desc(expr, PRELUDE) == expected


# --------------------------------------------------------------------------- precedence

PRECEDENCE = json_builder(ami_description="{{user `v`}}", variables={"v": "default"})


def desc(**kwargs: object) -> str:
    value = load_text(PRECEDENCE, **kwargs).builders[0].ami_description
    assert value is not None
    return value


def test_precedence_default() -> None:
    assert desc() == "default"


def test_precedence_env_over_default() -> None:
    prelude = 'variable "v" {\n  default = "default"\n}\n'
    text = hcl_builder('ami_name = "name"\n  ami_description = var.v', prelude)
    spec = load_text(text, "hcl", env={"PKR_VAR_v": "env"})
    assert spec.builders[0].ami_description == "env"
    assert desc(env={"PKR_VAR_v": "env"}) == "default"  # Packer's legacy JSON reads no PKR_VAR_


def test_precedence_var_file_over_env(tmp_path: Path) -> None:
    first = tmp_path / "a.json"
    first.write_text('{"v": "file-a"}')
    second = tmp_path / "b.pkrvars.hcl"
    second.write_text('v = "file-b"\n')
    assert desc(env={"PKR_VAR_v": "env"}, var_files=[first]) == "file-a"
    assert desc(env={"PKR_VAR_v": "env"}, var_files=[first, second]) == "file-b"
    assert desc(var_files=[second, first]) == "file-a"


def test_precedence_cli_over_everything(tmp_path: Path) -> None:
    var_file = tmp_path / "vars.toml"
    var_file.write_text('v = "toml-file"\n')
    assert desc(env={"PKR_VAR_v": "env"}, var_files=[var_file], vars={"v": "cli"}) == "cli"
    assert desc(vars=[("v", "one"), ("v", "two")]) == "two"


def test_typed_cli_values_for_hcl() -> None:
    prelude = 'variable "n" {\n  type = number\n}\nvariable "l" {\n  type = list(string)\n}\n'
    text = hcl_builder('ami_name = "n-${var.n + 1}"\n  ami_regions = var.l', prelude)
    spec = load_text(text, "hcl", vars={"n": "41", "l": '["eu-west-1"]'})
    assert spec.builders[0].ami_name == "n-42"
    assert spec.builders[0].ami_regions == ("eu-west-1",)
    assert spec.variables["n"].value == 41


def test_unknown_cli_variable() -> None:
    text = hcl_builder('ami_name = "name"', 'variable "v" {\n  default = "d"\n}\n')
    assert problems_of(text, "hcl", vars=[("v", "ok"), ("vv", "1")]) == [
        "<command line>:1:2: --var vv: `vv` is not a variable of the template; did you mean `v`?"
    ]
    # Packer's legacy JSON takes it as a user variable
    assert desc(vars=[("v", "ok"), ("vv", "1")]) == "ok"
