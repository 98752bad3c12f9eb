"""Packer legacy JSON templates read as Packer reads them: comments, root keys, other
builder types, only/except, undeclared user variables, and the corpus of real templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amibake.core.templates.gotemplate import PACKER_COMPAT_VERSION

from .helpers import load_text, problems_of

EBS = {
    "type": "amazon-ebs",
    "region": "us-east-1",
    "source_ami": "ami-0123456789abcdef0",
    "instance_type": "t3.micro",
    "ssh_username": "ubuntu",
    "ami_name": "test-ami",
}


def template(**root: Any) -> str:
    root.setdefault("builders", [dict(EBS)])
    return json.dumps(root, indent=2)


def test_root_underscore_keys_are_comments() -> None:
    spec = load_text(template(_comment="built nightly", _author={"a": 1}))
    assert spec.builders[0].ami_name == "test-ami"
    assert spec.warnings == ()


def test_underscore_key_inside_a_builder_is_an_error_as_in_packer_1_6_6() -> None:
    assert problems_of(template(builders=[{**EBS, "_comment": "x"}])) == [
        "t.json:10:7: builders[0]._comment: unknown configuration key `_comment` (`_` comments"
        " are allowed only at the top level of a template)"
    ]


def test_underscore_key_inside_a_provisioner_is_an_error() -> None:
    text = template(provisioners=[{"type": "shell", "inline": ["true"], "_note": "x"}])
    assert problems_of(text) == [
        "t.json:8:7: provisioners[0]._note: unknown configuration key `_note` (`_` comments"
        " are allowed only at the top level of a template)"
    ]


def test_description_is_accepted() -> None:
    assert load_text(template(description="A web server")).builders


def test_min_packer_version_met() -> None:
    assert load_text(template(min_packer_version="1.5.0")).builders


def test_min_packer_version_newer_than_amibake_claims_is_a_warning() -> None:
    assert load_text(template(min_packer_version="99.1.0")).warnings == (
        "t.json:2:25: min_packer_version: this template needs Packer 99.1.0 or newer; amibake is"
        f" compatible with Packer {PACKER_COMPAT_VERSION}",
    )


def test_min_packer_version_that_is_not_a_version() -> None:
    assert problems_of(template(min_packer_version="soon")) == [
        't.json:2:25: min_packer_version: `soon` is not a version (expected e.g. "1.7.0")'
    ]


def test_push_is_ignored_with_one_warning() -> None:
    spec = load_text(template(push={"name": "org/app", "vcs": True}))
    assert spec.warnings == (
        "t.json:2:3: push: `push` is ignored: it configured Atlas, which Packer itself no"
        " longer has",
    )


def test_sensitive_variables_still_work() -> None:
    text = template(
        variables={"pw": "s3cret"},
        **{"sensitive-variables": ["pw"]},
        builders=[{**EBS, "ami_description": "{{user `pw`}}"}],
    )
    assert "s3cret" in load_text(text).sensitive_values


# ----------------------------------------------------------------- other builder types


def test_other_builder_types_are_skipped_with_one_warning_each() -> None:
    text = template(
        builders=[{"type": "docker", "image": "ubuntu"}, dict(EBS), {"type": "googlecompute"}]
    )
    spec = load_text(text)
    assert [b.type for b in spec.builders] == ["amazon-ebs"]
    assert spec.warnings == (
        "t.json:4:15: builders[0].type: skipping docker: amibake builds amazon-ebs",
        "t.json:16:15: builders[2].type: skipping googlecompute: amibake builds amazon-ebs",
    )


def test_no_amazon_ebs_builder_left() -> None:
    text = template(builders=[{"type": "docker"}, {"type": "azure-arm"}])
    assert problems_of(text) == [
        "t.json:4:15: builders: no amazon-ebs build in this template: builder types docker,"
        " azure-arm are not supported yet by amibake"
    ]


def test_a_typo_of_amazon_ebs_is_not_skipped() -> None:
    assert problems_of(template(builders=[{**EBS, "type": "amazon-eb"}])) == [
        "t.json:4:15: builders[0].type: unknown builder type `amazon-eb`; did you mean"
        " `amazon-ebs`?"
    ]


def test_entries_bound_to_skipped_builders_are_skipped_not_decoded() -> None:
    text = template(
        builders=[{"type": "docker", "image": "x"}, dict(EBS)],
        provisioners=[
            {"type": "chef-solo", "only": ["docker"]},
            {"type": "shell", "inline": ["echo ebs"], "except": ["docker"]},
            {"type": "shell", "inline": ["echo all"]},
        ],
        **{
            "post-processors": [
                [
                    {"type": "docker-tag", "repository": "r", "only": ["docker"]},
                    {"type": "docker-push", "only": ["docker"]},
                ],
                {"type": "manifest"},
            ]
        },
    )
    spec = load_text(text)
    assert [p.inline for p in spec.provisioners] == [("echo ebs",), ("echo all",)]  # type: ignore[union-attr]
    assert len(spec.post_processors) == 1
    assert [w.split(": ", 2)[2] for w in spec.warnings[1:]] == [
        "skipping chef-solo: it runs only for docker, which amibake skips",
        "skipping docker-tag: it runs only for docker, which amibake skips",
        "skipping docker-push: it runs only for docker, which amibake skips",
    ]


def test_except_naming_every_amazon_ebs_builder_skips_the_entry() -> None:
    text = template(
        builders=[{"type": "docker"}, {**EBS, "name": "web"}],
        provisioners=[{"type": "ansible", "except": ["web"]}],
    )
    assert load_text(text).provisioners == ()


def test_unsupported_post_processor_for_amazon_ebs_is_one_line() -> None:
    text = template(**{"post-processors": [[{"type": "compress"}, {"type": "manifest"}]]})
    assert problems_of(text) == [
        "t.json:5:17: post-processors[0][0].type: post-processor `compress` is not supported"
        " yet by amibake (supported: manifest, shell-local, amazon-ami-management)"
    ]


# ----------------------------------------------------------------- user variables


def test_undeclared_user_variable_is_empty_as_in_packer() -> None:
    text = template(builders=[{**EBS, "ami_description": "x{{user `undeclared`}}y"}])
    assert load_text(text).builders[0].ami_description == "xy"


def test_undeclared_user_variable_set_by_a_var_file(tmp_path: Path) -> None:
    var_file = tmp_path / "vars.json"
    var_file.write_text('{"extra": "from-file", "other": null}')
    text = template(builders=[{**EBS, "ami_description": "{{user `extra`}}-{{user `other`}}"}])
    spec = load_text(text, var_files=[var_file])
    assert spec.builders[0].ami_description == "from-file-"


def test_templated_builder_name() -> None:
    text = template(variables={"n": "web"}, builders=[{**EBS, "name": "{{user `n`}}-1"}])
    assert load_text(text).builders[0].name == "web-1"


# ----------------------------------------------------------------- the corpus

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

# Plausible -var values on top of tests/templates/test_corpus.py's RUNS: these templates
# default instance_type to "" and expect it from the command line.


def test_an_undeclared_user_variable_like_a_declared_one_warns_unless_it_is_set() -> None:
    """``{{user `x`}}`` of an undeclared variable is "" in Packer unless --var or a var-file
    sets it; a name close to a declared one is worth a warning, only when nothing sets it."""
    text = template(
        variables={"version": "1"},
        builders=[{**EBS, "ami_name": "web-{{user `versoin`}}"}],
    )
    spec = load_text(text)
    assert spec.builders[0].ami_name == "web-"
    (warning,) = spec.warnings
    assert warning.endswith(
        "user `versoin`: `versoin` is not declared in `variables`: it is empty unless --var or "
        "--var-file sets it; did you mean `version`?"
    )
    spec = load_text(text, vars={"versoin": "2"})
    assert spec.builders[0].ami_name == "web-2" and spec.warnings == ()


def test_a_missing_local_file_warns_unless_a_provisioner_generates_it() -> None:
    """The sources a file provisioner uploads are checked as Packer's validate does, but not
    one an earlier provisioner generates (``generated``) nor one downloaded."""
    upload = {"type": "file", "source": "no-such-file.txt", "destination": "/tmp/x"}
    (warning,) = load_text(template(provisioners=[upload])).warnings
    assert "provisioners[0].source: `no-such-file.txt` is not there" in warning
    for other in ({"generated": True}, {"generated": "true"}, {"direction": "download"}):
        assert load_text(template(provisioners=[{**upload, **other}])).warnings == (), other


def test_a_home_of_no_user_here_is_a_missing_file_not_a_crash() -> None:
    """``~nosuchuser/...`` cannot be expanded here (pathlib raises): it is a path that is not
    there, like any other (found by tests/templates/test_fuzz.py)."""
    upload = {"type": "file", "source": "~no-such-user-here/x.txt", "destination": "/tmp/x"}
    (warning,) = load_text(template(provisioners=[upload])).warnings
    assert "`~no-such-user-here/x.txt` is not there" in warning
