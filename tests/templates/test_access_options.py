"""The Access option group (issue 12): parsing, Packer's checks, secrets, the target they make."""

from __future__ import annotations

import json

import pytest

from amibake.core.aws import Target
from amibake.core.engine.access import access_target, describe_access, endpoint_url
from amibake.core.model import AccessConfig, AssumeRole, FrozenMap
from tests.templates.helpers import hcl_builder, json_builder, load_text, problems_of

LOCAL = Target(endpoint_url="http://127.0.0.1:5000", access_key_id="t", secret_access_key="t")


def test_every_access_option_from_legacy_json() -> None:
    spec = load_text(
        json_builder(
            profile="ignored-when-keys",
            access_key="AKIAEXAMPLE",
            secret_key="wJalrXUtnFEMI/K7MDENG",
            token="FwoGZXIvYXdzEXAMPLE",
            shared_credentials_file="~/creds",
            mfa_code="123456",
            custom_endpoint_ec2="https://ec2.example.com",
            skip_credential_validation=True,
            skip_metadata_api_check="true",  # weak typing, as mapstructure decodes
            max_retries="3",
            insecure_skip_tls_verify=True,
            decode_authorization_messages=True,
            skip_region_validation=True,
            assume_role={
                "role_arn": "arn:aws:iam::111122223333:role/r",
                "session_name": "packer",
                "external_id": "ext",
                "duration_seconds": 3600,
                "policy": json.dumps({"Version": "2012-10-17", "Statement": []}),
                "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                "tags": {"team": "images"},
                "transitive_tag_keys": ["team"],
            },
        )
    )
    (builder,) = spec.builders
    assert builder.skip_region_validation
    assert builder.access == AccessConfig(
        profile="ignored-when-keys",
        access_key="AKIAEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG",
        token="FwoGZXIvYXdzEXAMPLE",
        shared_credentials_file="~/creds",
        mfa_code="123456",
        custom_endpoint_ec2="https://ec2.example.com",
        skip_credential_validation=True,
        skip_metadata_api_check=True,
        max_retries=3,
        insecure_skip_tls_verify=True,
        decode_authorization_messages=True,
        assume_role=AssumeRole(
            role_arn="arn:aws:iam::111122223333:role/r",
            session_name="packer",
            external_id="ext",
            duration_seconds=3600,
            policy='{"Version": "2012-10-17", "Statement": []}',
            policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
            tags=FrozenMap({"team": "images"}),
            transitive_tag_keys=("team",),
        ),
    )
    # template credentials are secrets: redacted from every output, never in a repr
    assert {"AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "FwoGZXIvYXdzEXAMPLE", "123456"} <= (
        spec.sensitive_values
    )
    assert "wJalrXUtnFEMI" not in repr(builder)
    assert spec.redact("key wJalrXUtnFEMI/K7MDENG") == "key <sensitive>"


def test_assume_role_block_and_profile_in_hcl2() -> None:
    spec = load_text(
        hcl_builder(
            """
  ami_name = "x-ami"
  profile  = "prod"
  assume_role {
    role_arn     = "arn:aws:iam::111122223333:role/r"
    session_name = "sess"
    tags = { a = "b" }
  }
""",
        ),
        "hcl",
    )
    access = spec.builders[0].access
    assert access.profile == "prod" and access.secrets() == ()
    assert access.assume_role == AssumeRole(
        role_arn="arn:aws:iam::111122223333:role/r", session_name="sess", tags=FrozenMap({"a": "b"})
    )
    assert spec.sensitive_values == frozenset()


def test_no_access_options_leave_the_target_alone() -> None:
    (builder,) = load_text(json_builder()).builders
    assert builder.access.is_default and not builder.skip_region_validation
    assert access_target(LOCAL, builder.access) is LOCAL


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"access_key": "AKIA"},
            "t.json:10:21: builders[0].access_key: `access_key` and `secret_key` must both be "
            "either set or not set",
        ),
        (
            {"secret_key": "s"},
            "t.json:10:21: builders[0].secret_key: `access_key` and `secret_key` must both be "
            "either set or not set",
        ),
        (
            {"assume_role": {"role_arn": "arn:aws:iam::1:role/r", "duration_seconds": 60}},
            "t.json:12:29: builders[0].assume_role.duration_seconds: expected a number between "
            "900 and 43200, got 60",
        ),
        (
            {"assume_role": {"role_arn": "arn:aws:iam::1:role/r", "session_name": "a b"}},
            "t.json:12:25: builders[0].assume_role.session_name: a role session name is 2-64 "
            "letters, digits and + = , . @ _ -",
        ),
        (
            {"assume_role": {"role_arn": "arn:aws:iam::1:role/r", "policy": "{not json"}},
            "t.json:12:19: builders[0].assume_role.policy: expected an IAM policy (JSON text)",
        ),
        (
            {"assume_role": {"role_arn": "arn:aws:iam::1:role/r", "rolearn": "x"}},
            "t.json:12:9: builders[0].assume_role.rolearn: unknown option `rolearn`; did you "
            "mean `role_arn`?",
        ),
        (
            {"custom_endpoint_ec2": "https://:99999"},
            "t.json:10:30: builders[0].custom_endpoint_ec2: expected an endpoint URL such as "
            "https://ec2.example.com, got `https://:99999`",
        ),
        (
            {"max_retries": -1},
            "t.json:10:22: builders[0].max_retries: expected a number >= 0, got -1",
        ),
        (
            {"vault_aws_engine": {"name": "r"}},
            "t.json:10:7: builders[0].vault_aws_engine: `vault_aws_engine` is not supported yet "
            "by amibake (amibake has no HashiCorp Vault client: use profile, "
            "access_key/secret_key or assume_role)",
        ),
    ],
)
def test_packer_checks_are_located_one_liners(options: dict[str, object], expected: str) -> None:
    assert problems_of(json_builder(**options)) == [expected]


def test_assume_role_without_role_arn_and_a_lone_token_are_warnings() -> None:
    spec = load_text(json_builder(token="t0k3n-value", assume_role={"session_name": "sess"}))
    assert spec.builders[0].access.assume_role is None
    assert spec.warnings == (
        "t.json:10:16: builders[0].token: `token` is used only with `access_key` and `secret_key`",
        "t.json:11:22: builders[0].assume_role.role_arn: `assume_role` without `role_arn` "
        "does nothing",
    )


def test_data_source_access_options_are_read_and_secret() -> None:
    text = """
data "amazon-parameterstore" "p" {
  name       = "/x"
  access_key = "AKIADATASOURCE"
  secret_key = "ds-secret-value"
  assume_role { role_arn = "arn:aws:iam::1:role/r" }
  custom_endpoint_ec2 = "ec2.example.com"
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "x-ami"
}
build { sources = ["source.amazon-ebs.x"] }
"""
    spec = load_text(text, "hcl")  # shape-only: decoded and checked, nothing called
    assert {"AKIADATASOURCE", "ds-secret-value"} <= spec.sensitive_values
    bad = text.replace('  secret_key = "ds-secret-value"\n', "")
    assert problems_of(bad, "hcl") == [
        "t.pkr.hcl:4:16: data.amazon-parameterstore.p.access_key: `access_key` and `secret_key` "
        "must both be either set or not set"
    ]


# ------------------------------------------------------------------ the target they make


def test_template_keys_replace_the_targets_credentials_but_not_its_endpoint() -> None:
    access = AccessConfig(access_key="AK", secret_key="SK", token="TK", max_retries=4)
    target = access_target(LOCAL, access, environ={})
    assert (target.access_key_id, target.secret_access_key, target.session_token) == (
        "AK",
        "SK",
        "TK",
    )
    assert target.endpoint_url == LOCAL.endpoint_url and target.profile is None
    assert target.credentials_source == "template" and target.max_retries == 4
    assert "SK" not in repr(target) and "TK" not in repr(target)


def test_packer_prefers_environment_keys_to_a_profile() -> None:
    access = AccessConfig(profile="prod", shared_credentials_file="/tmp/creds")
    env = {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "ENVSECRET"}
    from_env = access_target(Target(), access, environ=env)
    assert from_env.access_key_id == "ENVKEY" and from_env.profile is None
    assert from_env.credentials_source == "environment"
    from_profile = access_target(LOCAL, access, environ={})
    assert from_profile.profile == "prod" and from_profile.access_key_id is None
    assert from_profile.credentials_file == "/tmp/creds"
    assert from_profile.endpoint_url == LOCAL.endpoint_url
    assert describe_access(from_profile) == "Access: profile prod, credentials file /tmp/creds"


def test_custom_endpoint_ec2_applies_to_ec2_only() -> None:
    assert endpoint_url("ec2.example.com") == "https://ec2.example.com"
    target = access_target(
        Target(profile="p"),
        AccessConfig(custom_endpoint_ec2="http://127.0.0.1:9", insecure_skip_tls_verify=True),
    )
    assert target.endpoint_for("ec2") == "http://127.0.0.1:9"
    assert target.endpoint_for("sts") is None
    assert target.is_loopback and target.verify_tls is False and target.profile == "p"
