"""Error messages, asserted as exact text with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.core.errors import UsageError
from amibake.core.templates import TemplateError, load

from .helpers import hcl_builder, json_builder, problems_of

BAD_JSON = """{
  "variables": {"region": "us-east-1"},
  "builders": [
    {
      "type": "amazon-ebs",
      "region": "{{user `regoin`}}",
      "source_ami_filter": {"filters": {"name": "x*"}},
      "instnce_type": "t2.micro",
      "ssh_username": "ubuntu",
      "ami_name": "bad name!",
      "winrm_port": 5986,
      "ssh_port": "abc"
    }
  ]
}
"""


def test_all_json_problems_at_once() -> None:
    assert problems_of(BAD_JSON) == [
        "t.json:4:5: builders[0].instance_type: `instance_type` is required",
        # Packer: an undeclared user variable is "" (a warning names `region`), and an empty
        # region comes from AWS_REGION, unset here
        "t.json:6:17: builders[0].region: no region: set `region` in the builder, AWS_REGION"
        " (or AWS_DEFAULT_REGION), or a `region` in the AWS profile's ~/.aws/config",
        "t.json:7:28: builders[0].source_ami_filter.owners: `owners` is required with a filter"
        " (account IDs or aliases)",
        "t.json:8:7: builders[0].instnce_type: unknown option `instnce_type`;"
        " did you mean `instance_type`?",
        "t.json:10:19: builders[0].ami_name: AMI names must be 3-128 characters of letters,"
        " digits, spaces and ( ) [ ] . / - ' @ _ (found `!`; use clean_resource_name)",
        "t.json:11:7: builders[0].winrm_port: `winrm_port` is not supported yet by amibake",
        "t.json:12:19: builders[0].ssh_port: expected a whole number, got `abc`",
    ]


def test_template_error_str_is_one_line() -> None:
    with pytest.raises(TemplateError) as caught:
        from .helpers import load_text

        load_text(BAD_JSON)
    error = caught.value
    assert error.exit_code == 2
    assert str(error) == (
        "t.json:4:5: builders[0].instance_type: `instance_type` is required (and 6 more problems)"
    )
    assert len(error.report().splitlines()) == 7


BAD_HCL = """variable "region" {
  default = "us-east-1"
}
source "amazon-ebs" "x" {
  region        = var.regoin
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ok-${timestampp()}"
  tags = { "aws:x" = "y" }
}
build {
  sources = ["source.amazon-ebs.x"]
  provisioner "chef-client" {}
}
"""


def test_all_hcl_problems_at_once() -> None:
    assert problems_of(BAD_HCL, "hcl") == [
        "t.pkr.hcl:5:19: source.amazon-ebs.x.region: undefined variable `regoin`;"
        " did you mean `region`?",
        "t.pkr.hcl:9:25: source.amazon-ebs.x.ami_name: unknown function `timestampp()`;"
        " did you mean `timestamp`?",
        "t.pkr.hcl:10:12: source.amazon-ebs.x.tags.aws:x: tag keys starting with `aws:` are"
        " reserved by AWS",
        "t.pkr.hcl:14:15: build.provisioner[0].type: provisioner `chef-client` is not supported"
        " yet by amibake (supported: shell, file, shell-local, breakpoint, ansible, ansible-local,"
        " chef-solo, puppet-masterless)",
    ]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("x = {\n", "hcl", "t.pkr.hcl:2:1: invalid HCL: unexpected end of file"),
        (
            '{\n "builders": [\n  {"type": "amazon-ebs",}\n ]\n}\n',
            "json",
            "t.json:3:25: invalid JSON: expected a key in double quotes, found `}`",
        ),
        ("[[builders]]\ntype = \n", "toml", "t.toml:2:8: invalid TOML: Invalid value"),
        (
            '{"builders": [], "builders": []}',
            "json",
            "t.json:1:18: builders: duplicate key (it is already set above in this object)",
        ),
    ],
)
def test_syntax_errors(text: str, fmt: str, expected: str) -> None:
    assert expected in problems_of(text, fmt)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"region": "us-east-9"},
            "t.json:5:17: builders[0].region: unknown AWS region `us-east-9`;"
            " did you mean `us-east-2`?",
        ),
        (
            {"instance_type": "micro"},
            "t.json:7:24: builders[0].instance_type: `micro` is not an EC2 instance type"
            " (expected family.size, e.g. t3.micro)",
        ),
        (
            {"ami_name": "ab"},
            "t.json:9:19: builders[0].ami_name: AMI names must be 3-128 characters of letters,"
            " digits, spaces and ( ) [ ] . / - ' @ _ (it has 2 characters)",
        ),
        (
            {"tags": {"k" * 129: "v"}},
            f"t.json:11:9: builders[0].tags.{'k' * 129}: tag keys must be 1-128 characters,"
            " got 129",
        ),
        (
            {"tags": {"k": "v" * 257}},
            "t.json:11:9: builders[0].tags.k: tag values must be at most 256 characters, got 257",
        ),
        (
            {"source_ami": None, "source_ami_filter": {"filters": {"name": "x"}, "owners": []}},
            "t.json:14:19: builders[0].source_ami_filter.owners: at least one owner is required"
            " with a filter",
        ),
        (
            {"source_ami": None, "source_ami_filter": {"owners": ["canonicall"]}},
            "t.json:12:11: builders[0].source_ami_filter.owners[0]: `canonicall` is not an owner:"
            " expected a 12-digit account ID or one of amazon, aws-marketplace, aws-backup-vault,"
            " microsoft, self, canonical, aws-canonical, debian, redhat; did you mean `canonical`?",
        ),
        (
            {"ssh_interface": "public"},
            "t.json:10:24: builders[0].ssh_interface: expected one of public_ip, private_ip,"
            " public_dns, private_dns, ipv6, session_manager, got `public`;"
            " did you mean `public_ip`?",
        ),
        (
            {"ssh_timeout": "5 minutes"},
            't.json:10:22: builders[0].ssh_timeout: expected a duration such as "30s", "5m" or'
            ' "1h30m", got `5 minutes`',
        ),
        (
            {"source_ami": None},
            "t.json:3:5: builders[0].source_ami: `source_ami` or `source_ami_filter` is required",
        ),
        (
            {"access_key": "AKIA"},
            "t.json:10:21: builders[0].access_key: `access_key` and `secret_key` must both be"
            " either set or not set",
        ),
        (
            {"type": "docker"},
            "t.json:4:15: builders: no amazon-ebs build in this template: builder types docker"
            " are not supported yet by amibake",
        ),
    ],
)
def test_validation_messages(options: dict[str, object], expected: str) -> None:
    assert expected in problems_of(json_builder(**options))


def test_flattened_filter_needs_an_owner() -> None:
    assert problems_of(json_builder(source_ami=None, source_ami_filter_name="ubuntu-*")) == [
        "t.json:10:7: builders[0].source_ami_filter_type: `source_ami_filter_type` (the AMI"
        " owner, e.g. amazon or canonical) is required with `source_ami_filter_name`"
    ]


def test_unsupported_go_template_function() -> None:
    assert problems_of(json_builder(ami_name="{{vault `a` `b`}}")) == [
        "t.json:9:19: builders[0].ami_name: `vault`: Vault lookups are not supported yet by"
        " amibake",
    ]
    assert problems_of(json_builder(ami_name="{{timestmp}}")) == [
        "t.json:9:19: builders[0].ami_name: unknown function `timestmp`; did you mean `timestamp`?",
    ]


def test_required_variable_is_reported_once() -> None:
    text = json_builder(ami_name="{{user `name`}}", variables={"name": None})
    assert problems_of(text) == [
        "t.json:13:5: var.name: variable `name` has no value: set it with --var name=..."
        " or a --var-file"  # Packer's legacy JSON reads no PKR_VAR_
    ]


def test_hcl_unsupported_constructs() -> None:
    text = hcl_builder('ami_name = "x-${provider::aws::arn_parse("x")}"')
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:7:17: source.amazon-ebs.x.ami_name: provider functions (`a::b::c()`) are not"
        " supported",
    ]


def test_hcl_missing_source_reference() -> None:
    text = hcl_builder('ami_name = "abc"').replace('amazon-ebs.x"]', 'amazon-ebs.y"]')
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:10:14: build.sources: no source `source.amazon-ebs.y` is defined;"
        " did you mean `amazon-ebs.x`?"
    ]


def test_toml_unknown_key_has_line() -> None:
    text = (
        '[[builders]]\ntype = "amazon-ebs"\nregion = "us-east-1"\ninstance_type = "t2.micro"\n'
        'ssh_username = "u"\nsource_ami = "ami-12345678"\nami_name = "abc"\nssh_timout = "5m"\n'
    )
    assert problems_of(text, "toml") == [
        "t.toml:8:1: builders[0].ssh_timout: unknown option `ssh_timout`;"
        " did you mean `ssh_timeout`?"
    ]


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load(tmp_path / "missing.json")
    assert (
        str(caught.value) == f"cannot read {tmp_path / 'missing.json'}: No such file or directory"
    )
    assert caught.value.exit_code == 2


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(b'{"a":\n "\xff"}')
    with pytest.raises(TemplateError) as caught:
        load(path)
    assert str(caught.value) == f"{path}:2:3: the file is not UTF-8 text"
