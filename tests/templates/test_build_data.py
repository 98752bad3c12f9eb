"""``{{ build `X` }}`` (HCL ``${build.X}``) in provisioner options, filled in when the
provisioner runs as Packer does (hcl2template/types.hcl_provisioner.go re-decodes an HCL
provisioner with ``build.*`` set; a legacy one's fields are rendered with the build's data)."""

from __future__ import annotations

import json

import pytest

from amibake.core.model import FileProvisioner, ShellProvisioner
from amibake.core.templates.gotemplate import GoTemplateError, render_build_data
from tests.templates.helpers import hcl_builder, json_builder, load_text, problems_of

BUILD = {"ID": "i-0abc", "Host": "127.0.0.5", "User": "ubuntu", "SSHPrivateKey": "KEY"}


def test_build_actions_are_filled_in() -> None:
    assert render_build_data('echo {{ build `ID` }} {{build "User"}}', BUILD) == (
        "echo i-0abc ubuntu"
    )
    assert render_build_data("{{ build `Host` | upper }}", BUILD) == "127.0.0.5"
    assert render_build_data('{{ if eq (build `User`) "ubuntu" }}yes{{ end }}', BUILD) == "yes"


@pytest.mark.parametrize(
    "text",
    [
        "no template",
        "echo {{ .Path }} {{ build `ID` }}",  # fields: execute_command renders it with them
        "jinja {{ build_dir }}",  # not the build function
        "{{ unclosed build",  # not a Go template
        "{{ upper `x` }}",  # no build value: kept as loaded
    ],
)
def test_other_text_is_kept(text: str) -> None:
    assert render_build_data(text, BUILD) == text


def test_an_unknown_build_value_is_an_error() -> None:
    with pytest.raises(GoTemplateError, match="build value `Nope` is not available"):
        render_build_data("{{ build `Nope` }}", BUILD)


def test_hcl_build_variables_load_as_build_actions() -> None:
    text = hcl_builder('ami_name = "abc"').replace(
        'sources = ["source.amazon-ebs.x"]',
        """sources = ["source.amazon-ebs.x"]
  provisioner "shell" {
    inline           = ["echo ${build.ID} ${build.User}"]
    environment_vars = ["X=${build.Host}"]
  }
  provisioner "file" {
    content     = build.SSHPrivateKey
    destination = "/tmp/${build.ID}"
  }""",
    )
    shell, file = load_text(text, "hcl").provisioners
    assert isinstance(shell, ShellProvisioner) and isinstance(file, FileProvisioner)
    assert render_build_data(shell.inline[0], BUILD) == "echo i-0abc ubuntu"
    assert render_build_data(shell.environment_vars[0], BUILD) == "X=127.0.0.5"
    assert file.content is not None and render_build_data(file.content, BUILD) == "KEY"
    assert render_build_data(file.destination, BUILD) == "/tmp/i-0abc"


def test_legacy_json_keeps_build_actions_for_run_time() -> None:
    doc = json.loads(json_builder())
    doc["provisioners"] = [{"type": "shell", "inline": ["echo {{ build `ID` }}"]}]
    (shell,) = load_text(json.dumps(doc)).provisioners
    assert isinstance(shell, ShellProvisioner)
    assert render_build_data(shell.inline[0], BUILD) == "echo i-0abc"


def hcl_inline(expr: str) -> str:
    return hcl_builder('ami_name = "abc"').replace(
        'sources = ["source.amazon-ebs.x"]',
        f'sources = ["source.amazon-ebs.x"]\n  provisioner "shell" {{\n    inline = [{expr}]\n  }}',
    )


def test_build_values_pass_through_join_and_format() -> None:
    (shell,) = load_text(
        hcl_inline('join(" ", [build.ID, "x"]), format("%s@%s", build.User, build.Host)'), "hcl"
    ).provisioners
    assert isinstance(shell, ShellProvisioner)
    assert [render_build_data(line, BUILD) for line in shell.inline] == [
        "i-0abc x",
        "ubuntu@127.0.0.5",
    ]


@pytest.mark.parametrize(
    ("expr", "column", "function", "value"),
    [
        ("upper(build.Host)", 15, "upper", "Host"),
        ('"${length(build.ID)}"', 18, "length", "ID"),
        ("trimspace(build.SSHPrivateKey)", 15, "trimspace", "SSHPrivateKey"),
    ],
)
def test_a_function_of_a_build_value_is_a_located_error(
    expr: str, column: int, function: str, value: str
) -> None:
    # Packer evaluates it when the provisioner runs; amibake knows the value only then
    assert problems_of(hcl_inline(expr), "hcl") == [
        f"t.pkr.hcl:12:{column}: build.provisioner[0].inline[0]: {function}() over "
        f"`build.{value}`: a function of a value known only when the provisioner runs is "
        "not supported yet"
    ]
