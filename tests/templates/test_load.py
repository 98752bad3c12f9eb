"""Loading the seed and the realistic fixtures into the model."""

from __future__ import annotations

import datetime as dt

import pytest

from amibake.core.model import (
    AmazonEbsBuilder,
    AwsPolling,
    BlockDeviceMapping,
    BuildSpec,
    FileProvisioner,
    FrozenMap,
    ManifestPostProcessor,
    ShellProvisioner,
    SourceAmiFilter,
)
from amibake.core.templates import load

from .helpers import FIXTURES, NOW, fixed_uuid, hcl_builder, json_builder, load_text


def test_seed_loads() -> None:
    spec = load(FIXTURES / "seed.json", env={}, now=NOW)
    assert spec.source_format == "json"
    (builder,) = spec.builders
    assert builder == AmazonEbsBuilder(
        name="amazon-ebs",
        region="us-east-1",
        source_ami_filter=SourceAmiFilter(
            filters=FrozenMap({"name": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"}),
            owners=("aws-marketplace",),
            most_recent=True,
        ),
        instance_type="t2.micro",
        ssh_username="ubuntu",
        ami_name="my-nginx-ami-1678886405",
        tags=FrozenMap({"Name": "my-nginx-ami", "BuildTool": "Packer"}),
    )
    assert spec.provisioners == (
        ShellProvisioner(inline=("sudo apt-get update", "sudo apt-get install -y nginx")),
    )
    assert spec.variables["aws_region"].value == "us-east-1"
    assert spec.build_time == NOW


def test_seed_fixture_is_the_seed_verbatim() -> None:
    seed_doc = FIXTURES.parent.parent.parent.parent / "shared" / "seed" / "000_99508bd13f89c97c.txt"
    if not seed_doc.exists():
        pytest.skip("the shared seed document is not next to the repository")
    assert (FIXTURES / "seed.json").read_text().strip() in seed_doc.read_text()


def expected_full(ami_name: str, description: str, tags: dict[str, str]) -> AmazonEbsBuilder:
    return AmazonEbsBuilder(
        name="web",
        region="eu-west-1",
        source_ami_filter=SourceAmiFilter(
            filters=FrozenMap(
                {
                    "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
                    "virtualization-type": "hvm",
                    "root-device-type": "ebs",
                }
            ),
            owners=("099720109477", "amazon", "123456789012"),
            most_recent=True,
            include_deprecated=False,
        ),
        instance_type="t3.micro",
        ssh_username="ubuntu",
        ssh_port=2222,
        ssh_timeout=600.0,
        ssh_interface="private_ip",
        ssh_host="127.0.0.1",
        ssh_keypair_name="builder-key",
        ssh_private_key_file="~/.ssh/builder.pem",
        temporary_key_pair_type="ed25519",
        temporary_security_group_source_cidrs=("203.0.113.0/24", "198.51.100.7/32"),
        security_group_ids=("sg-0123456789abcdef0",),
        subnet_id="subnet-0123456789abcdef0",
        vpc_id="vpc-0123456789abcdef0",
        associate_public_ip_address=True,
        iam_instance_profile="packer-builder",
        user_data="#!/bin/sh\necho web > /etc/build-name\n",
        launch_block_device_mappings=(
            BlockDeviceMapping(
                device_name="/dev/sda1",
                volume_size=16,
                volume_type="gp3",
                iops=3000,
                throughput=125,
                delete_on_termination=True,
                encrypted=True,
                kms_key_id="alias/ebs",
            ),
            BlockDeviceMapping(device_name="/dev/sdb", no_device=True),
        ),
        ami_name=ami_name,
        ami_description=description,
        tags=FrozenMap(tags),
        run_tags=FrozenMap({"Purpose": "build"}),
        snapshot_tags=FrozenMap({"Name": "web-snapshot"}),
        ami_regions=("eu-west-2", "us-east-1"),
        ami_users=("210987654321",),
        ami_groups=("all",),
        encrypt_boot=True,
        kms_key_id="alias/ami",
        force_deregister=True,
        force_delete_snapshot=True,
        skip_create_ami=False,
        shutdown_behavior="terminate",
        aws_polling=AwsPolling(delay_seconds=5, max_attempts=120),
    )


def test_full_json() -> None:
    spec = load(
        FIXTURES / "full.json",
        vars={"required_var": "hello"},
        env={"HOME": "/home/builder"},
        now=NOW,
        uuid_factory=fixed_uuid,
    )
    assert spec.builders == (
        expected_full(
            "web-2023-03-15-1678886405",
            "Web server built at 2023-03-15T13:20:05Z",
            {"Name": "WEB", "BuiltBy": "amibake", "Uuid": fixed_uuid()},
        ),
    )
    file_p, shell_p, script_p, scripts_p = spec.provisioners
    assert file_p == FileProvisioner(
        source="files/nginx.conf", destination="/tmp/nginx.conf", pause_before=5.0
    )
    assert shell_p == ShellProvisioner(
        inline=("sudo apt-get update", "echo hello"),
        environment_vars=("DB_PASSWORD=s3cr3t-pa55", "HOME_DIR=/home/builder"),
        execute_command="sudo -E sh -c '{{ .Vars }} {{ .Path }}'",
        expect_disconnect=True,
        max_retries=3,
        timeout=900.0,
        only=("web",),
    )
    assert script_p == ShellProvisioner(script="scripts/setup.sh", except_=("web",))
    assert scripts_p == ShellProvisioner(scripts=("scripts/a.sh", "scripts/b.sh"))
    assert spec.post_processors == (
        ManifestPostProcessor(
            output="manifest.json", strip_path=True, custom_data=FrozenMap({"commit": "abc123"})
        ),
    )
    assert spec.error_cleanup_provisioner == ShellProvisioner(inline=("echo build failed",))
    assert spec.sensitive_values == frozenset({"s3cr3t-pa55"})
    assert spec.variables["db_password"].sensitive
    assert spec.variables["required_var"].origin == "cli"
    builder = spec.builders[0]
    assert [p.applies_to(builder) for p in spec.provisioners] == [True, True, False, True]


def test_full_hcl() -> None:
    spec = load(
        FIXTURES / "full.pkr.hcl",
        vars=[("required_var", "hello")],
        env={},
        now=NOW,
        uuid_factory=fixed_uuid,
    )
    assert spec.source_format == "hcl"
    assert spec.builders == (
        expected_full(
            "web-20230315132005",
            f"Web server {fixed_uuid()}",
            {"Name": "WEB", "BuiltBy": "amibake"},
        ),
    )
    assert spec.provisioners[1] == ShellProvisioner(
        inline=("sudo apt-get update", "echo hello"),
        environment_vars=("DB_PASSWORD=s3cr3t-pa55",),
        execute_command="sudo -E sh -c '{{ .Vars }} {{ .Path }}'",
        expect_disconnect=True,
        max_retries=3,
        timeout=900.0,
        only=("amazon-ebs.web",),
    )
    builder = spec.builders[0]
    # `except = ["amazon-ebs.web"]` leaves that provisioner no build to run in: Packer never
    # starts it, so it is not part of the spec.
    assert len(spec.provisioners) == 3
    assert not any(getattr(p, "script", None) == "scripts/setup.sh" for p in spec.provisioners)
    assert spec.provisioners_for(builder) == spec.provisioners
    assert spec.variables["volume_size"].value == 16
    assert spec.variables["ami_regions"].value == ("eu-west-2", "us-east-1")
    assert spec.variables["region"].description == "Where to build"
    assert spec.sensitive_values == frozenset({"s3cr3t-pa55"})


def test_spec_is_immutable_and_hashable() -> None:
    spec = load(FIXTURES / "seed.json", env={}, now=NOW)
    with pytest.raises(AttributeError):
        spec.builders[0].region = "x"  # type: ignore[misc]
    assert hash(spec.builders[0]) == hash(spec.builders[0])
    assert isinstance(spec, BuildSpec)


@pytest.mark.parametrize(
    ("alias", "account"),
    [
        ("canonical", "099720109477"),
        ("aws-canonical", "099720109477"),
        ("debian", "136693071363"),
        ("redhat", "309956199498"),
        ("amazon", "amazon"),
        ("aws-marketplace", "aws-marketplace"),
        ("self", "self"),
        ("123456789012", "123456789012"),
    ],
)
def test_owner_aliases(alias: str, account: str) -> None:
    spec = load_text(
        json_builder(
            source_ami=None, source_ami_filter_name="debian-*", source_ami_filter_type=alias
        )
    )
    assert spec.builders[0].source_ami_filter is not None
    assert spec.builders[0].source_ami_filter.owners == (account,)


def test_one_timestamp_per_run() -> None:
    text = hcl_builder(
        'ami_name = "a-${formatdate("hhmmss", timestamp())}"\n'
        '  ami_description = "${timestamp()} ${timestamp()}"'
    )
    spec = load_text(text, "hcl", now=None)
    builder = spec.builders[0]
    stamp = spec.build_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert builder.ami_description == f"{stamp} {stamp}"
    assert builder.ami_name == "a-" + spec.build_time.strftime("%H%M%S")
    assert spec.build_time.tzinfo == dt.UTC


def test_multiple_builders_and_only() -> None:
    import json

    doc = json.loads(json_builder(name="a"))
    second = dict(doc["builders"][0], name="b", region="us-west-2")
    doc["builders"].append(second)
    doc["provisioners"] = [{"type": "shell", "inline": ["x"], "only": ["b"]}]
    spec = load_text(json.dumps(doc))
    assert [b.name for b in spec.builders] == ["a", "b"]
    assert spec.provisioners_for(spec.builder("a")) == ()
    assert len(spec.provisioners_for(spec.builder("b"))) == 1


def test_null_option_means_unset() -> None:
    spec = load_text(json_builder(subnet_id=None, ssh_port=None))
    assert spec.builders[0].subnet_id is None
    assert spec.builders[0].ssh_port == 22


def test_weakly_typed_strings_like_packer() -> None:
    spec = load_text(
        json_builder(
            ssh_port="{{user `port`}}",
            encrypt_boot="true",
            variables={"port": "2200"},
        )
    )
    assert spec.builders[0].ssh_port == 2200
    assert spec.builders[0].encrypt_boot is True


def test_hcl_build_source_block_override() -> None:
    # Packer merges the build-level block into the source (hcl.MergeBodies): it may add
    # settings, not set one twice (see test_hcl_blocks for that error).
    text = hcl_builder('ami_name = "${source.name}-ami"').replace(
        'sources = ["source.amazon-ebs.x"]',
        'source "source.amazon-ebs.x" {\n    name = "renamed"\n'
        '    subnet_id = "subnet-0123456789abcdef0"\n  }',
    )
    spec = load_text(text, "hcl")
    assert spec.builders[0].name == "renamed"
    assert spec.builders[0].subnet_id == "subnet-0123456789abcdef0"
    assert spec.builders[0].ami_name == "renamed-ami"


def test_toml_native_format() -> None:
    text = """
[variables]
region = "us-west-2"
[variables.token]
default = "tok-123456"
sensitive = true

[locals]
stamp = "${formatdate(\\"YYYY\\", timestamp())}"

[[builders]]
type = "amazon-ebs"
name = "native"
region = "${var.region}"
source_ami = "ami-0123456789abcdef0"
instance_type = "t3.micro"
ssh_username = "ec2-user"
ami_name = "native-${local.stamp}"
ami_description = "costs $${literal}"
ssh_timeout = 90
[builders.tags]
Token = "${var.token}"

[[provisioners]]
type = "shell"
inline = ["echo ${var.token}"]
"""
    spec = load_text(text, "toml")
    builder = spec.builders[0]
    assert builder.name == "native"
    assert builder.region == "us-west-2"
    assert builder.ami_name == "native-2023"
    assert builder.ami_description == "costs ${literal}"
    assert builder.ssh_timeout == 90.0
    assert spec.redact(spec.provisioners[0].inline[0]) == "echo <sensitive>"
