"""How templates come in: folders, var-files, auto var-files and Packer's variable precedence.

Expectations follow Packer's source (hcl2template ``Parse`` / ``collectInputVariableValues``,
command ``Meta.Core`` for legacy JSON): defaults < PKR_VAR_ < *.auto.pkrvars.hcl (lexical) <
*.auto.pkrvars.json (lexical) < -var-file in order < -var (a map: the last of a name wins).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.core.errors import UsageError
from amibake.core.model import BuildSpec
from amibake.core.templates import TemplateError, load
from amibake.core.templates.loader import AUTO_VAR_SUFFIXES, TEMPLATE_SUFFIXES, folder_files
from amibake.tui.cli import main

from .helpers import NOW, fixed_uuid, json_builder

VARIABLES = 'variable "v" {\n  type    = string\n  default = "default"\n}\n'
MAIN = """source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-${var.v}"
}

build {
  sources = ["source.amazon-ebs.x"]
}
"""


def folder(tmp_path: Path, **files: str) -> Path:
    """A folder template: ``variables.pkr.hcl`` + ``main.pkr.hcl``, plus ``files``."""
    root = tmp_path / "tpl"
    root.mkdir()
    (root / "variables.pkr.hcl").write_text(VARIABLES)
    (root / "main.pkr.hcl").write_text(MAIN)
    for name, text in files.items():
        (root / name.replace("__", ".")).write_text(text)
    return root


def load_dir(path: Path, **kwargs: object) -> BuildSpec:
    kwargs.setdefault("env", {})
    return load(path, now=NOW, uuid_factory=fixed_uuid, **kwargs)  # type: ignore[arg-type]


def value(path: Path, **kwargs: object) -> tuple[str, str]:
    spec = load_dir(path, **kwargs)
    return spec.builders[0].ami_name, spec.variables["v"].origin


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- folders


def test_folder_files_in_packer_order(tmp_path: Path) -> None:
    for name in (
        "b.pkr.hcl",
        "a.pkr.json",
        "a.pkr.hcl",
        "c.auto.pkrvars.json",
        "z.auto.pkrvars.hcl",
        "a.auto.pkrvars.hcl",
        "x.pkrvars.hcl",
        "notes.hcl",
        "legacy.json",
    ):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.pkr.hcl").mkdir()  # folders are not read
    names = [p.name for p in folder_files(tmp_path, TEMPLATE_SUFFIXES)]
    assert names == ["a.pkr.hcl", "b.pkr.hcl", "a.pkr.json"]
    names = [p.name for p in folder_files(tmp_path, AUTO_VAR_SUFFIXES)]
    assert names == ["a.auto.pkrvars.hcl", "z.auto.pkrvars.hcl", "c.auto.pkrvars.json"]


def test_folder_is_one_template(tmp_path: Path) -> None:
    root = folder(tmp_path)
    spec = load_dir(root)
    assert spec.builders[0].ami_name == "ami-default"
    assert spec.source_file == root
    assert spec.source_format == "hcl"


def test_folder_problem_points_to_its_file(tmp_path: Path) -> None:
    root = folder(tmp_path)
    (root / "main.pkr.hcl").write_text(MAIN.replace("t2.micro", "tiny"))
    with pytest.raises(TemplateError) as caught:
        load_dir(root)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(root / "main.pkr.hcl"), 4)


def test_folder_without_templates_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "vars.auto.pkrvars.hcl").write_text('v = "x"\n')
    with pytest.raises(UsageError) as caught:
        load_dir(tmp_path)
    assert str(caught.value) == f"{tmp_path}: no *.pkr.hcl or *.pkr.json file in this folder"


def test_unsaved_text_replaces_the_file(tmp_path: Path) -> None:
    root = folder(tmp_path)
    edited = MAIN.replace('"ami-${var.v}"', '"edited-${var.v}"')
    spec = load_dir(root, unsaved={root / "main.pkr.hcl": edited})
    assert spec.builders[0].ami_name == "edited-default"


def test_auto_var_files_only_in_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "single"
    root.mkdir()
    path = write(root / "t.pkr.hcl", VARIABLES + MAIN)
    write(root / "v.auto.pkrvars.hcl", 'v = "auto"\n')
    assert value(path) == ("ami-default", "default")  # packer build FILE reads no auto var-file


# --------------------------------------------------------------------------- precedence


def test_env_over_default(tmp_path: Path) -> None:
    assert value(folder(tmp_path), env={"PKR_VAR_v": "env"}) == ("ami-env", "env")


def test_auto_var_file_over_env(tmp_path: Path) -> None:
    root = folder(tmp_path, a__auto__pkrvars__hcl='v = "auto"\n')
    auto = root / "a.auto.pkrvars.hcl"
    assert value(root, env={"PKR_VAR_v": "env"}) == ("ami-auto", f"auto-var-file:{auto}")


def test_auto_var_files_in_lexical_order_hcl_then_json(tmp_path: Path) -> None:
    root = folder(
        tmp_path,
        a__auto__pkrvars__hcl='v = "a-hcl"\n',
        b__auto__pkrvars__hcl='v = "b-hcl"\n',
    )
    assert value(root)[0] == "ami-b-hcl"
    # Packer reads every *.auto.pkrvars.hcl, then every *.auto.pkrvars.json
    write(root / "0.auto.pkrvars.json", '{"v": "json"}')
    assert value(root) == ("ami-json", f"auto-var-file:{root / '0.auto.pkrvars.json'}")


def test_var_file_over_auto_var_file(tmp_path: Path) -> None:
    root = folder(tmp_path, z__auto__pkrvars__hcl='v = "auto"\n')
    given = write(tmp_path / "given.pkrvars.hcl", 'v = "given"\n')
    assert value(root, var_files=[given]) == ("ami-given", f"var-file:{given}")


def test_var_files_in_order(tmp_path: Path) -> None:
    root = folder(tmp_path)
    first = write(tmp_path / "first.pkrvars.hcl", 'v = "first"\n')
    second = write(tmp_path / "second.json", '{"v": "second"}')
    assert value(root, var_files=[first, second])[0] == "ami-second"
    assert value(root, var_files=[second, first])[0] == "ami-first"


def test_var_over_everything(tmp_path: Path) -> None:
    root = folder(tmp_path, a__auto__pkrvars__hcl='v = "auto"\n')
    given = write(tmp_path / "given.pkrvars.hcl", 'v = "given"\n')
    kwargs = {"env": {"PKR_VAR_v": "env"}, "var_files": [given]}
    assert value(root, vars=[("v", "cli")], **kwargs) == ("ami-cli", "cli")
    assert value(root, vars=[("v", "one"), ("v", "two")])[0] == "ami-two"


def test_var_wins_over_a_later_var_file_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Packer applies -var after every -var-file, whatever their order on its command line."""
    root = folder(tmp_path)
    given = write(tmp_path / "given.pkrvars.hcl", 'v = "given"\n')
    code = main(["inspect", str(root), "--var", "v=cli", "--var-file", str(given)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "  v = cli  (--var)" in out


# --------------------------------------------------------------------------- undeclared


def test_var_file_with_undeclared_variable_warns(tmp_path: Path) -> None:
    root = folder(tmp_path, a__auto__pkrvars__hcl='v = "auto"\nregoin = "x"\n')
    given = write(tmp_path / "given.json", '{\n  "other": 1\n}')
    spec = load_dir(root, var_files=[given])
    assert spec.builders[0].ami_name == "ami-auto"
    assert spec.warnings == (
        f"{root / 'a.auto.pkrvars.hcl'}:2:10: regoin: undefined variable: `regoin` is set but"
        " the template does not declare it",
        f"{given}:2:12: other: undefined variable: `other` is set but the template does not"
        " declare it",
    )
    assert load_dir(root, var_files=[given], warn_undeclared_vars=False).warnings == ()


def test_undeclared_var_is_an_error_in_hcl(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        load_dir(folder(tmp_path), vars=[("vv", "1"), ("vv", "2")])
    assert [str(p) for p in caught.value.problems] == [
        "<command line>:1:1: --var vv: `vv` is not a variable of the template; did you mean `v`?"
    ]


def test_legacy_json_takes_undeclared_variables_and_no_pkr_var(tmp_path: Path) -> None:
    """Packer's legacy core: -var and var-file values are user variables, declared or not."""
    path = write(
        tmp_path / "t.json",
        json_builder(ami_name="{{user `v`}}-{{user `extra`}}", variables={"v": "default"}),
    )
    spec = load_dir(path, env={"PKR_VAR_v": "env"}, vars=[("extra", "cli")])
    assert spec.builders[0].ami_name == "default-cli"
    assert spec.warnings == ()
    given = write(tmp_path / "vars.json", '{"extra": "file"}')
    assert load_dir(path, var_files=[given]).builders[0].ami_name == "default-file"


def test_legacy_json_missing_variable_names_no_pkr_var(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", json_builder(ami_name="{{user `v`}}", variables={"v": None}))
    with pytest.raises(TemplateError) as caught:
        load_dir(path, env={"PKR_VAR_v": "env"})
    assert "set it with --var v=... or a --var-file" in str(caught.value)


# --------------------------------------------------------------------------- commands


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _no_pkr_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("PKR_VAR_")]:
        monkeypatch.delenv(name)


def test_validate_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = folder(tmp_path)
    code, out, err = run(capsys, "validate", str(root))
    assert (code, err) == (0, "")
    assert out == f"{root}: valid (1 builder(s): x; 0 provisioner(s))\n"


def test_validate_prints_warnings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = folder(tmp_path, x__auto__pkrvars__hcl='nope = "x"\n')
    code, out, err = run(capsys, "validate", str(root))
    assert code == 0
    assert out.endswith(": valid (1 builder(s): x; 0 provisioner(s))\n")
    assert err == (
        f"amibake: warning: {root / 'x.auto.pkrvars.hcl'}:1:8: nope: undefined variable: `nope`"
        " is set but the template does not declare it\n"
    )
    code, _, err = run(capsys, "validate", "--no-warn-undeclared-var", str(root))
    assert (code, err) == (0, "")


def test_validate_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "validate", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"amibake: error: {tmp_path}: no *.pkr.hcl or *.pkr.json file in this folder\n"


def test_validate_undeclared_var_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "validate", str(folder(tmp_path)), "--var", "w=1")
    assert (code, out) == (2, "")
    assert err == (
        "amibake: error: <command line>:1:1: --var w: `w` is not a variable of the template\n"
    )


def test_inspect_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = folder(
        tmp_path,
        extra__pkr__hcl='variable "region" {\n  default = "eu-west-1"\n}\n'
        'variable "token" {\n  sensitive = true\n}\n'
        'data "null" "n" {\n  input = "hello"\n}\n'
        'build {\n  name = "second"\n  source "amazon-ebs.x" {\n    name = "y"\n'
        "    ami_description = data.null.n.output\n  }\n}\n",
        a__auto__pkrvars__hcl='token = "s3cret"\nunused = 1\n',
    )
    given = write(tmp_path / "given.json", '{"v": "given"}')
    code, out, err = run(capsys, "inspect", str(root), "--var-file", str(given))
    assert (code, err) == (0, "")  # inspect, like Packer's, does not warn about `unused`
    assert out.splitlines()[:18] == [
        f"template: {root} (hcl)",
        "",
        "variables:",
        "  region = eu-west-1  (default)",
        f"  token = <sensitive>  (auto var-file {root / 'a.auto.pkrvars.hcl'})",
        f"  v = given  (var-file {given})",
        "",
        "sources:",
        "  source.amazon-ebs.x",
        "",
        "builds:",
        "  second: amazon-ebs.x as y",  # extra.pkr.hcl is read before main.pkr.hcl
        "  build 2: amazon-ebs.x",
        "",
        "data sources:",
        "  data.null.n",
        "",
        "builders:",
    ]
    assert "  x (amazon-ebs)" in out and "  y (amazon-ebs)" in out
    assert "    ami_name: ami-given" in out
    assert "s3cret" not in out


def test_build_folder_with_problems_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = folder(tmp_path, w__auto__pkrvars__hcl='nope = "x"\n')
    (root / "variables.pkr.hcl").write_text('variable "v" {\n  type = string\n}\n')
    code, out, err = run(capsys, "build", str(root), "--local")
    assert (code, out) == (2, "")
    # packer build warns about undeclared var-file values only with -warn-on-undeclared-var
    assert err == (
        f"amibake: error: {root / 'variables.pkr.hcl'}:1:1: var.v: variable `v` has no value:"
        " set it with --var v=..., a --var-file or PKR_VAR_v\n"
    )


# --------------------------------------------------------------------------- untyped variables

# Packer (hcl2template decodeVariableBlock): a variable without `type` takes its default's
# go-cty type, and a -var / PKR_VAR_ value for a type other than string/number (or none) is
# parsed as HCL, then converted to that type, like a var-file value.
UNTYPED = """variable "extra_tags" {
  default = { Team = "platform" }
}
variable "zones" {
  default = ["a", "b"]
}
variable "size" {
  default = 8
}
variable "debug" {
  default = false
}
variable "name" {
  default = "x"
}
variable "empty" {
  default = []
}
variable "split" {
  default = split(",", "a,b")
}
"""
UNTYPED_MAIN = """source "amazon-ebs" "a" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-${var.size}"
  tags          = var.extra_tags
}

build {
  sources = ["source.amazon-ebs.a"]
}
"""


def untyped(tmp_path: Path) -> Path:
    root = tmp_path / "untyped"
    root.mkdir(parents=True)
    (root / "variables.pkr.hcl").write_text(UNTYPED)
    (root / "main.pkr.hcl").write_text(UNTYPED_MAIN)
    return root


def untyped_problems(tmp_path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(TemplateError) as caught:
        load_dir(untyped(tmp_path), **kwargs)
    return [str(p) for p in caught.value.problems]


def test_untyped_object_default_takes_var_as_hcl(tmp_path: Path) -> None:
    spec = load_dir(untyped(tmp_path), vars=[("extra_tags", '{Team="data"}')])
    assert dict(spec.builders[0].tags) == {"Team": "data"}
    assert spec.variables["extra_tags"].origin == "cli"


def test_untyped_object_default_takes_pkr_var_as_hcl(tmp_path: Path) -> None:
    spec = load_dir(untyped(tmp_path), env={"PKR_VAR_extra_tags": '{ Team = "data" }'})
    assert dict(spec.builders[0].tags) == {"Team": "data"}


def test_untyped_object_default_drops_extra_attributes_like_go_cty(tmp_path: Path) -> None:
    """The default's type is object({Team = string}): go-cty keeps only its attributes."""
    spec = load_dir(untyped(tmp_path), vars=[("extra_tags", '{Team="d", Owner="me"}')])
    assert dict(spec.builders[0].tags) == {"Team": "d"}


def test_untyped_list_number_bool_defaults(tmp_path: Path) -> None:
    spec = load_dir(
        untyped(tmp_path),
        vars=[("zones", '["c", "d"]'), ("size", "10"), ("debug", "true")],
        env={"PKR_VAR_split": '["x", "y", "z"]'},
    )
    values = {name: v.value for name, v in spec.variables.items()}
    assert values["zones"] == ("c", "d")
    assert values["size"] == 10 and spec.builders[0].ami_name == "ami-10"
    assert values["debug"] is True
    assert values["split"] == ("x", "y", "z")  # split() makes a list(string): any length


def test_untyped_string_and_empty_defaults_keep_the_text(tmp_path: Path) -> None:
    """A string default makes a string variable; `[]` / `{}` / null leave it untyped: the
    -var text is the value (Packer's expressionFromVariableDefinition)."""
    spec = load_dir(untyped(tmp_path), vars=[("name", "{a=1}"), ("empty", '["a"]')])
    assert spec.variables["name"].value == "{a=1}"
    assert spec.variables["empty"].value == '["a"]'


def test_untyped_var_file_value_takes_the_default_type(tmp_path: Path) -> None:
    given = write(tmp_path / "v.pkrvars.hcl", 'extra_tags = { Team = "data", Owner = "me" }\n')
    assert dict(load_dir(untyped(tmp_path), var_files=[given]).builders[0].tags) == {"Team": "data"}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "extra_tags",
            "[1]",
            "var.extra_tags: expected an object (object({Team = string})), got a list"
            " (`extra_tags` has no `type`: it takes its default's)",
        ),
        (
            "extra_tags",
            '{Owner="me"}',
            "var.extra_tags: attribute `Team` is required (type object({Team = string}))"
            " (`extra_tags` has no `type`: it takes its default's)",
        ),
        (
            "zones",
            '["c"]',
            "var.zones: expected a tuple of 2 elements, got 1"
            " (`zones` has no `type`: it takes its default's, tuple([string, string]))",
        ),
        ("size", "abc", 'var.size: expected a number, got "abc"'),
    ],
)
def test_untyped_value_of_the_wrong_shape_is_one_located_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    assert untyped_problems(tmp_path, vars=[(name, text)]) == [f"<command line>:1:1: {expected}"]


def test_untyped_bad_pkr_var_is_one_located_line(tmp_path: Path) -> None:
    assert untyped_problems(tmp_path, env={"PKR_VAR_zones": "[1, 2, 3]"}) == [
        "<env PKR_VAR_zones>:1:1: var.zones: expected a tuple of 2 elements, got 3"
        " (`zones` has no `type`: it takes its default's, tuple([string, string]))"
    ]
    [problem] = untyped_problems(tmp_path / "2", vars=[("extra_tags", "{Team=")])
    assert problem.startswith("<command line>:1:") and "var.extra_tags: " in problem
