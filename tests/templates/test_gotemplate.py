"""Packer's Go-template language: load-time functions, control flow and run-time fields."""

from __future__ import annotations

import json

import pytest

from amibake.core.templates.gotemplate import PACKER_COMPAT_VERSION, GoTemplateError, render_runtime

from .helpers import json_builder, load_text, problems_of

# ----------------------------------------------------------------- run time


def test_render_runtime_default_shell_execute_command() -> None:
    # Packer's shell provisioner default execute_command
    text = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
    fields = {"Path": "/tmp/script.sh", "Vars": "A='1'"}
    assert render_runtime(text, fields, {}) == "chmod +x /tmp/script.sh; A='1' /tmp/script.sh"


@pytest.mark.parametrize(
    ("sudo", "expected"),
    [(True, "sudo -E chef-solo -c /tmp/solo.rb"), (False, "chef-solo -c /tmp/solo.rb")],
)
def test_render_runtime_if_sudo(sudo: bool, expected: str) -> None:
    # chef-solo's documented default execute_command
    text = "{{if .Sudo}}sudo -E {{end}}chef-solo -c {{.ConfigPath}}"
    assert render_runtime(text, {"Sudo": sudo, "ConfigPath": "/tmp/solo.rb"}, {}) == expected


@pytest.mark.parametrize(
    ("arch", "expected"),
    [("arm64", "A"), ("x86_64", "X"), ("ppc", "other")],
)
def test_render_runtime_else_if_chain(arch: str, expected: str) -> None:
    text = '{{if eq .Arch "arm64"}}A{{else if eq .Arch "x86_64"}}X{{else}}other{{end}}'
    assert render_runtime(text, {"Arch": arch}, {}) == expected


def test_render_runtime_ne_empty_string_as_puppet_templates_use_it() -> None:
    text = '{{if ne .HieraConfigPath ""}}--hiera_config="{{.HieraConfigPath}}" {{end}}x'
    assert render_runtime(text, {"HieraConfigPath": ""}, {}) == "x"
    assert render_runtime(text, {"HieraConfigPath": "/h"}, {}) == '--hiera_config="/h" x'


def test_render_runtime_build_values_and_pipelines() -> None:
    text = "{{ build `ID` }} {{ .SourceAMIName | upper }} {{build `SourceAMI` | clean_ami_name}}"
    out = render_runtime(text, {"SourceAMIName": "ubuntu"}, {"ID": "i-1", "SourceAMI": "a:b"})
    assert out == "i-1 UBUNTU a-b"


def test_render_runtime_trim_markers_and_comments() -> None:
    assert render_runtime("a  {{- .X -}}  b{{/* note */}}", {"X": "-"}, {}) == "a-b"


def test_render_runtime_and_or_not_return_go_values() -> None:
    fields = {"A": "", "B": "b", "T": True}
    assert render_runtime("{{or .A .B}}|{{and .B .A}}|{{not .A}}|{{and .T .B}}", fields, {}) == (
        "b||true|b"
    )


def test_render_runtime_printf() -> None:
    assert render_runtime('{{printf "%s-%d" .N 7}}', {"N": "x"}, {}) == "x-7"


def test_render_runtime_unknown_field_names_what_is_available() -> None:
    with pytest.raises(GoTemplateError) as caught:
        render_runtime("{{ .Pth }}", {"Path": "/p", "Vars": ""}, {})
    assert caught.value.message == (
        "`{{.Pth}}` is not available here; did you mean `Path`? (available: .Path, .Vars)"
    )


def test_render_runtime_unknown_build_value() -> None:
    with pytest.raises(GoTemplateError) as caught:
        render_runtime("{{ build `SorceAMI` }}", {}, {"SourceAMI": "ami-1"})
    assert caught.value.message == (
        "build value `SorceAMI` is not available here; did you mean `SourceAMI`?"
    )


def test_render_runtime_plain_text_is_unchanged() -> None:
    assert render_runtime("no templates", {}, {}) == "no templates"


# ----------------------------------------------------------------- load time


def description(template: str, variables: dict[str, object] | None = None) -> str | None:
    text = json_builder(ami_description=template, variables=variables or {"v": "val"})
    return load_text(text, env={"E": "e"}).builders[0].ami_description


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{if eq (user `v`) "val"}}yes{{else}}no{{end}}', "yes"),
        ('{{if ne (user `v`) "val"}}yes{{else}}no{{end}}', "no"),
        ("{{if user `v`}}set{{end}}", "set"),
        ("{{if user `empty`}}set{{else}}unset{{end}}", "unset"),
        ('{{if and (eq (user `v`) "val") (not (user `empty`))}}both{{end}}', "both"),
        ('{{if or (eq (user `v`) "x") (eq (user `v`) "val")}}one{{end}}', "one"),
        ('{{if eq (user `v`) "a"}}A{{else if eq (user `v`) "val"}}V{{else}}O{{end}}', "V"),
        ('{{if eq (user `v`) "a" "b" "val"}}any{{end}}', "any"),
        ("a {{- ` b ` -}}  c", "a b c"),
        ("x{{/* a comment */}}y", "xy"),
        ("{{packer_version}}", PACKER_COMPAT_VERSION),
        ('{{replace "a" "b" 1 "aaa"}}', "baa"),
        ('{{replace "a" "b" 2 "aaa"}}', "bba"),
        ('{{replace "a" "b" -1 (user `v`)}}', "vbl"),
        ('{{replace_all "a" "b" (user `v`)}}', "vbl"),
        ("{{user `v` | upper | lower}}", "val"),
        ('{{split "a-b-c" "-" 2}}', "c"),
        ("{{isotime `2006-01-02` | clean_ami_name}}", "2023-03-15"),
        ('{{ printf "%s-%s" (user `v`) "x" }}', "val-x"),
        ("{{env `E`}}", "e"),
    ],
)
def test_load_time_go_templates(template: str, expected: str) -> None:
    assert description(template, {"v": "val", "empty": ""}) == expected


def test_sed_is_gone_from_packer_and_says_so() -> None:
    assert problems_of(json_builder(ami_name='{{sed "s/a/b/" "abc"}}')) == [
        "t.json:9:19: builders[0].ami_name: `sed`: template function `sed` is deprecated in"
        " Packer; use `replace` or `replace_all`"
    ]


def test_unclosed_if_is_located() -> None:
    assert problems_of(json_builder(ami_name="{{if user `x`}}a")) == [
        "t.json:9:19: builders[0].ami_name: `{{if}}` without `{{end}}`"
    ]


def test_unsupported_range_is_one_not_supported_yet_line() -> None:
    assert problems_of(json_builder(ami_name="{{range .X}}a{{end}}")) == [
        "t.json:9:19: builders[0].ami_name: `{{range}}` is not supported yet by amibake"
    ]


def provisioner_spec(provisioner: dict[str, object], variables: dict[str, object]) -> object:
    doc = json.loads(json_builder(variables=variables))
    doc["provisioners"] = [provisioner]
    return load_text(json.dumps(doc)).provisioners[0]


def test_execute_command_keeps_run_time_fields_and_resolves_user_now() -> None:
    shell = provisioner_spec(
        {
            "type": "shell",
            "inline": ["echo"],
            "execute_command": "{{if .Sudo}}sudo {{end}}{{user `bin`}}/run {{ .Vars }} {{.Path}}",
        },
        {"bin": "/opt/bin"},
    )
    command = shell.execute_command  # type: ignore[attr-defined]
    assert command == "{{if .Sudo}}sudo {{end}}/opt/bin/run {{ .Vars }} {{.Path}}"
    assert render_runtime(command, {"Sudo": True, "Vars": "A=1", "Path": "/p"}, {}) == (
        "sudo /opt/bin/run A=1 /p"
    )


def test_user_inside_a_run_time_condition_becomes_a_literal() -> None:
    shell = provisioner_spec(
        {
            "type": "shell",
            "inline": ["echo"],
            "execute_command": "{{if eq .Path (user `p`)}}same{{else}}other{{end}}",
        },
        {"p": "/tmp/x"},
    )
    command = shell.execute_command  # type: ignore[attr-defined]
    assert command == "{{if eq .Path `/tmp/x`}}same{{else}}other{{end}}"
    assert render_runtime(command, {"Path": "/tmp/x"}, {}) == "same"


def test_build_values_are_kept_for_run_time() -> None:
    shell = provisioner_spec(
        {"type": "shell", "inline": ["echo {{ build `ID` }} {{ build `SSHPrivateKey` }}"]}, {}
    )
    assert shell.inline == ("echo {{ build `ID` }} {{ build `SSHPrivateKey` }}",)  # type: ignore[attr-defined]


def test_provision_renders_execute_command_with_the_run_time_renderer() -> None:
    from amibake.core.engine.steps.provision import ProvisionError, render_execute_command

    command = render_execute_command(
        "{{if .Vars}}env {{.Vars}} {{end}}bash {{.Path}} {{build `ID`}}",
        "/tmp/s.sh",
        "",
        {"ID": "i-1"},
    )
    assert command == "bash /tmp/s.sh i-1"
    with pytest.raises(ProvisionError) as caught:
        render_execute_command("{{ .Sudo }}", "/tmp/s.sh", "A=1")
    assert str(caught.value).startswith("execute_command: `{{.Sudo}}` is not available here")


# -- one renderer for run-time Go templates (provisioner fields and build template data) -----


def test_runtime_renders_packers_build_info_with_go_semantics() -> None:
    from amibake.core.templates.gotemplate import build_info

    image = {
        "ImageId": "ami-0123456789abcdef0",
        "Name": "focal",
        "OwnerId": "099720109477",
        "Tags": [{"Key": "Name", "Value": "base"}],
    }
    info = build_info("eu-west-1", image)
    assert render_runtime("{{ .SourceAMITags.Name }}@{{ .BuildRegion }}", info, {}) == (
        "base@eu-west-1"
    )
    # text/template's default missingkey: a missing map key prints "<no value>", is false
    # in {{if}}, and `index` gives the map's zero value ""
    assert render_runtime("{{ .SourceAMITags.Gone }}", info, {}) == "<no value>"
    assert render_runtime("{{if .SourceAMITags.Gone}}y{{else}}n{{end}}", info, {}) == "n"
    assert render_runtime('[{{ index .SourceAMITags "Gone" }}]', info, {}) == "[]"
    assert render_runtime("{{ len .SourceAMITags }}", info, {}) == "1"
    assert render_runtime("{{ .SourceAMITags }}", info, {}) == "map[Name:base]"
    with pytest.raises(GoTemplateError, match="did you mean `SourceAMIName`"):
        render_runtime("{{ .SourceAmiName }}", info, {})
    with pytest.raises(GoTemplateError, match="cannot read field `X` of str"):
        render_runtime("{{ .SourceAMI.X }}", info, {})


def test_runtime_index_of_a_list_and_print() -> None:
    assert render_runtime("{{ index .L 1 }}", {"L": ["a", "b"]}, {}) == "b"
    with pytest.raises(GoTemplateError, match="index out of range: 5"):
        render_runtime("{{ index .L 5 }}", {"L": ["a"]}, {})
    assert render_runtime('{{ print 1 2 "x" 3 }}', {}, {}) == "1 2x3"


def test_go_template_errors_are_amibake_errors() -> None:
    from amibake.core.errors import AmibakeError

    assert issubclass(GoTemplateError, AmibakeError)


def test_legacy_replace_with_a_computed_source_and_count() -> None:
    from tests.templates.helpers import json_builder, load_text

    text = json_builder(
        variables={"name": "a.b.c.d", "n": "2"},
        ami_name="{{ user `name` | replace `.` `-` 2 }}",
        ami_description="{{ replace `.` `_` -1 (user `name`) }}",
    )
    spec = load_text(text)
    assert spec.builders[0].ami_name == "a-b-c.d"
    assert spec.builders[0].ami_description == "a_b_c_d"


def test_legacy_strftime_is_go_strftime_at_the_builds_start() -> None:
    from tests.templates.helpers import json_builder, load_text

    spec = load_text(json_builder(ami_name='ami-{{ strftime "%Y%m%d-%H%M%S" }}'))
    assert spec.builders[0].ami_name == "ami-20230315-132005"
