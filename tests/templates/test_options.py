"""amazon-ebs options as Packer decodes them: weak typing, empty strings, the region from
the environment, and one honest line for what is unknown or not supported yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.core.templates.schema import AMAZON_EBS_OPTIONS

from .helpers import json_builder, load_text, problems_of


def builder(env: dict[str, str] | None = None, **options: object) -> object:
    return load_text(json_builder(**options), env=env or {}).builders[0]


# ----------------------------------------------------------------- weak typing


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("T", True), (1, True)],
)
def test_booleans_from_strings_as_strconv_parsebool(value: object, expected: bool) -> None:
    assert builder(associate_public_ip_address=value).associate_public_ip_address is expected  # type: ignore[attr-defined]


def test_numbers_from_strings() -> None:
    b = builder(
        ssh_port="2222",
        launch_block_device_mappings=[
            {"device_name": "/dev/sda1", "volume_size": "30", "iops": "0x10"}
        ],
    )
    assert b.ssh_port == 2222  # type: ignore[attr-defined]
    assert b.launch_block_device_mappings[0].volume_size == 30  # type: ignore[attr-defined]
    assert b.launch_block_device_mappings[0].iops == 16  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("10000s", 10000.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), (90, 90.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert builder(ssh_timeout=value).ssh_timeout == seconds  # type: ignore[attr-defined]


def test_comma_separated_strings_are_lists() -> None:
    b = builder(ami_users="123456789012,210987654321", ami_regions="us-west-2,eu-west-1")
    assert b.ami_users == ("123456789012", "210987654321")  # type: ignore[attr-defined]
    assert b.ami_regions == ("us-west-2", "eu-west-1")  # type: ignore[attr-defined]


def test_an_empty_string_is_an_empty_list() -> None:
    assert builder(ami_users="").ami_users == ()  # type: ignore[attr-defined]


def test_user_variables_that_expand_to_weak_values() -> None:
    text = json_builder(
        variables={"users": "123456789012,210987654321", "public": "true", "port": "2200"},
        ami_users="{{user `users`}}",
        associate_public_ip_address="{{user `public`}}",
        ssh_port="{{user `port`}}",
    )
    b = load_text(text).builders[0]
    assert b.ami_users == ("123456789012", "210987654321")
    assert b.associate_public_ip_address is True
    assert b.ssh_port == 2200


def test_a_bool_in_a_string_map_is_its_text() -> None:
    assert builder(tags={"Pre_Release": True, "N": 3}).tags == {"Pre_Release": "true", "N": "3"}  # type: ignore[attr-defined]


# ----------------------------------------------------------------- empty strings


def test_empty_optional_strings_are_unset_as_in_packer() -> None:
    b = builder(vpc_id="", subnet_id="", iam_instance_profile="", ssh_interface="")
    assert (b.vpc_id, b.subnet_id, b.iam_instance_profile, b.ssh_interface) == (None,) * 4  # type: ignore[attr-defined]


def test_empty_source_ami_with_a_filter() -> None:
    b = builder(source_ami="", source_ami_filter={"filters": {"name": "u-*"}, "owners": ["self"]})
    assert b.source_ami is None  # type: ignore[attr-defined]
    assert b.source_ami_filter.owners == ("self",)  # type: ignore[attr-defined]


def test_empty_region_comes_from_the_environment() -> None:
    assert builder(region="", env={"AWS_REGION": "eu-west-1"}).region == "eu-west-1"  # type: ignore[attr-defined]
    assert builder(region=None, env={"AWS_DEFAULT_REGION": "us-west-2"}).region == "us-west-2"  # type: ignore[attr-defined]


def test_skip_region_validation_takes_a_region_amibake_does_not_know() -> None:
    """As in Packer (step_pre_validate), ``skip_region_validation`` leaves the region, and
    ami_regions, unchecked: a region newer than amibake's list builds there."""
    options = {"region": "eu-isoe-west-1", "ami_regions": ["eu-isoe-west-1"]}
    assert builder(**options, skip_region_validation=True).region == "eu-isoe-west-1"  # type: ignore[attr-defined]
    problems = problems_of(json_builder(**options))
    assert len(problems) == 2 and all("unknown AWS region `eu-isoe-west-1`" in p for p in problems)


def test_no_region_anywhere_is_one_located_line() -> None:
    assert problems_of(json_builder(region="")) == [
        "t.json:5:17: builders[0].region: no region: set `region` in the builder, AWS_REGION"
        " (or AWS_DEFAULT_REGION), or a `region` in the AWS profile's ~/.aws/config"
    ]


# ----------------------------------------------------------------- source AMI


def test_source_ami_and_source_ami_filter_together_are_kept() -> None:
    b = builder(source_ami_filter={"filters": {"name": "ubuntu-*"}, "owners": ["canonical"]})
    assert b.source_ami == "ami-0123456789abcdef0"  # type: ignore[attr-defined]
    assert b.source_ami_filter.owners == ("099720109477",)  # type: ignore[attr-defined]


def test_owner_alias_microsoft() -> None:
    b = builder(
        source_ami=None, source_ami_filter={"filters": {"name": "W*"}, "owners": ["microsoft"]}
    )
    assert b.source_ami_filter.owners == ("microsoft",)  # type: ignore[attr-defined]


def test_a_source_ami_of_another_form_is_a_warning_as_packer_checks_it_at_run_time() -> None:
    spec = load_text(json_builder(source_ami="ami-sa7608343426b"))
    assert spec.warnings == (
        "t.json:6:21: builders[0].source_ami: `ami-sa7608343426b` does not look like an ID of"
        " the form `ami-0123456789abcdef0`",
    )


# ----------------------------------------------------------------- option messages


@pytest.mark.parametrize("key", ["windows_password_timeout", "winrm_port"])
def test_valid_options_not_implemented_are_not_supported_yet(key: str) -> None:
    assert problems_of(json_builder(**{key: "x"})) == [
        f"t.json:10:7: builders[0].{key}: `{key}` is not supported yet by amibake"
    ]


def test_credential_options_are_not_supported_yet_with_the_reason() -> None:
    assert problems_of(json_builder(vault_aws_engine={"name": "r"})) == [
        "t.json:10:7: builders[0].vault_aws_engine: `vault_aws_engine` is not supported yet by"
        " amibake (amibake has no HashiCorp Vault client: use profile, access_key/secret_key or"
        " assume_role)"
    ]


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("boot_mode", ""),
        ("tpm_support", "; did you mean `imds_support`?"),
        ("uefi_data", "; did you mean `user_data`?"),
        ("ami_skip_build_region", "; did you mean `skip_save_build_region`?"),
        ("source_ami_filter_owners", "; did you mean `source_ami_filter`?"),
        ("ssh_host_port", "; did you mean `ssh_port`?"),
        ("ssh_username_prefix", "; did you mean `ssh_username`?"),
        ("snapshot_copy_completion_timeout", "; did you mean `snapshot_copy_duration_minutes`?"),
    ],
)
def test_keys_that_are_not_amazon_ebs_options_are_unknown(key: str, hint: str) -> None:
    assert problems_of(json_builder(**{key: "x"})) == [
        f"t.json:10:7: builders[0].{key}: unknown option `{key}`{hint}"
    ]


def test_the_option_list_comes_from_the_plugin() -> None:
    for key in ("ami_name", "ssh_username", "winrm_password", "fast_launch", "skip_ami_run_tags"):
        assert key in AMAZON_EBS_OPTIONS
    for key in ("boot_mode", "tpm_support", "uefi_data", "ssh_host_port"):
        assert key not in AMAZON_EBS_OPTIONS


def test_winrm_builder_needs_no_ssh_username_only_one_line_for_the_communicator() -> None:
    text = json_builder(ssh_username=None, communicator="winrm", winrm_username="Administrator")
    assert problems_of(text) == [
        't.json:10:23: builders[0].communicator: `communicator = "winrm"` is not supported yet'
        " by amibake (ssh and none are)",
        "t.json:11:7: builders[0].winrm_username: `winrm_username` is not supported yet by amibake",
    ]


def test_third_party_provisioner_is_not_supported_yet() -> None:
    import json

    doc = json.loads(json_builder())
    doc["provisioners"] = [{"type": "goss", "tests": ["a.yaml"]}, {"type": "shel"}]
    assert problems_of(json.dumps(doc, indent=2)) == [
        "t.json:14:15: provisioners[0].type: provisioner `goss` is not supported yet by amibake"
        " (supported: shell, file, shell-local, breakpoint, ansible, ansible-local, chef-solo,"
        " puppet-masterless)",
        "t.json:20:15: provisioners[1].type: unknown provisioner type `shel`; did you mean"
        " `shell`?",
    ]


def test_empty_region_comes_from_the_aws_profile_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-east-2\n\n[profile build]\nregion = ap-south-1\n"
        "\n[profile bare]\noutput = json\n"
    )
    env = {"AWS_CONFIG_FILE": str(config)}
    assert builder(region="", env=env).region == "us-east-2"  # type: ignore[attr-defined]
    with_profile = {**env, "AWS_PROFILE": "build"}
    assert builder(region=None, env=with_profile).region == "ap-south-1"  # type: ignore[attr-defined]
    # the builder's `profile` option names the profile (Packer's AccessConfig.Profile)
    assert builder(region="", profile="build", env=env).region == "ap-south-1"  # type: ignore[attr-defined]
    # $HOME/.aws/config when AWS_CONFIG_FILE is unset
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = eu-north-1\n")
    assert builder(region="", env={"HOME": str(tmp_path)}).region == "eu-north-1"  # type: ignore[attr-defined]
    assert problems_of(json_builder(region=""), env={**env, "AWS_PROFILE": "bare"})[0].endswith(
        "no region: set `region` in the builder, AWS_REGION (or AWS_DEFAULT_REGION), or a"
        " `region` in the AWS profile's ~/.aws/config"
    )


@pytest.mark.parametrize(
    ("key", "instead"),
    [
        ("ssh_private_ip", '`ssh_interface = "private_ip"`'),
        ("enhanced_networking", "`ena_support`"),
        ("shutdown_behaviour", "`shutdown_behavior`"),
    ],
)
def test_a_deprecated_key_says_what_packer_fix_writes(key: str, instead: str) -> None:
    """Packer rejects the options its fixers rename; the line says what replaces them."""
    (problem,) = problems_of(json_builder(**{key: "true"}))
    assert (
        f"builders[0].{key}: deprecated configuration key `{key}`: Packer now reads {instead}"
        in (problem)
    )


def test_the_manifests_old_filename_is_deprecated() -> None:
    text = json_builder()
    doc = __import__("json").loads(text)
    doc["post-processors"] = [{"type": "manifest", "filename": "m.json"}]
    (problem,) = problems_of(__import__("json").dumps(doc))
    assert "post-processors[0].filename: deprecated configuration key `filename`" in problem
    assert "`output`" in problem
