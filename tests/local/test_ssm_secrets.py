"""SSM and Secrets Manager on the local cloud: AWS's public AMI parameters, users' own values.

Everything through real boto3 over HTTP, as any client would call them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amibake.core.local.cloud import LocalCloud
from amibake.core.local.images import catalog_for_region
from amibake.core.local.ssm_public import public_parameters

UBUNTU_NOBLE = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"


def newest(region: str, owner: str, prefix: str, suffix: str = "") -> Any:
    matches = [
        i
        for i in catalog_for_region(region)
        if i.owner_id == owner and i.name.startswith(prefix) and i.name.endswith(suffix)
    ]
    return max(matches, key=lambda i: i.creation_date)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_public_ubuntu_parameter_is_the_newest_image_ec2_knows(
    cloud: LocalCloud, region: str
) -> None:
    ssm = cloud.client("ssm", region)
    value = ssm.get_parameter(Name=UBUNTU_NOBLE)["Parameter"]["Value"]
    expected = newest(
        region, "099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-"
    )
    assert value == expected.image_id
    (image,) = cloud.client("ec2", region).describe_images(ImageIds=[value])["Images"]
    assert image["Name"] == expected.name
    assert image["State"] == "available"


def test_the_code_name_form_answers_the_same_image(cloud: LocalCloud) -> None:
    ssm = cloud.client("ssm", "us-east-1")
    by_version = ssm.get_parameter(Name=UBUNTU_NOBLE)["Parameter"]["Value"]
    by_code = ssm.get_parameter(Name=UBUNTU_NOBLE.replace("/24.04/", "/noble/"))
    assert by_code["Parameter"]["Value"] == by_version
    gp2 = ssm.get_parameter(
        Name="/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id"
    )["Parameter"]
    expected = newest(
        "us-east-1", "099720109477", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-"
    )
    assert gp2["Value"] == expected.image_id
    assert gp2["DataType"] == "aws:ec2:image"


@pytest.mark.parametrize(
    ("name", "owner", "prefix", "suffix"),
    [
        (  # kernel-default is the 6.1 kernel, not 6.12
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "137112412989",
            "al2023-ami-2023.",
            "-kernel-6.1-x86_64",
        ),
        (
            "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-6.12-arm64",
            "137112412989",
            "al2023-ami-minimal-2023.",
            "-kernel-6.12-arm64",
        ),
        (
            "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2",
            "137112412989",
            "amzn2-ami-hvm-2.0.",
            "-x86_64-gp2",
        ),
        ("/aws/service/debian/release/12/latest/amd64", "136693071363", "debian-12-amd64-", ""),
        (
            "/aws/service/debian/release/bookworm/latest/arm64",
            "136693071363",
            "debian-12-arm64-",
            "",
        ),
        (
            "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base",
            "801119661308",
            "Windows_Server-2022-English-Full-Base-",
            "",
        ),
        (
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/recommended/image_id",
            "602401143452",
            "amazon-eks-node-1.32-v",
            "",
        ),
        (
            "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id",
            "591542846629",
            "amzn2-ami-ecs-hvm-2.0.",
            "-x86_64-ebs",
        ),
    ],
)
def test_public_parameters_of_each_publisher(
    cloud: LocalCloud, name: str, owner: str, prefix: str, suffix: str
) -> None:
    value = cloud.client("ssm", "us-east-1").get_parameter(Name=name)["Parameter"]["Value"]
    assert value == newest("us-east-1", owner, prefix, suffix).image_id


def test_get_parameters_and_by_path(cloud: LocalCloud) -> None:
    ssm = cloud.client("ssm", "us-east-1")
    found = ssm.get_parameters(Names=[UBUNTU_NOBLE, "/aws/service/no/such/parameter"])
    assert [p["Name"] for p in found["Parameters"]] == [UBUNTU_NOBLE]
    assert found["InvalidParameters"] == ["/aws/service/no/such/parameter"]
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/aws/service/debian/release/12/latest"
    )
    names = sorted(p["Name"] for page in pages for p in page["Parameters"])
    assert names == [
        "/aws/service/debian/release/12/latest/amd64",
        "/aws/service/debian/release/12/latest/arm64",
    ]


def test_an_unknown_public_parameter_is_parameter_not_found(cloud: LocalCloud) -> None:
    with pytest.raises(ClientError) as raised:
        cloud.client("ssm", "us-east-1").get_parameter(
            Name="/aws/service/canonical/ubuntu/server/99.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
        )
    assert raised.value.response["Error"]["Code"] == "ParameterNotFound"


def test_users_own_parameters_and_secrets(cloud: LocalCloud) -> None:
    unique = uuid.uuid4().hex[:8]
    ssm = cloud.client("ssm", "us-west-2")
    ssm.put_parameter(Name=f"/team/{unique}/ami", Value="ami-0123456789abcdef0", Type="String")
    ssm.put_parameter(Name=f"/team/{unique}/token", Value="s3cret", Type="SecureString")
    plain = ssm.get_parameter(Name=f"/team/{unique}/token", WithDecryption=True)["Parameter"]
    assert plain["Value"] == "s3cret"
    assert ssm.get_parameter(Name=f"/team/{unique}/ami")["Parameter"]["Version"] == 1

    secrets = cloud.client("secretsmanager", "us-west-2")
    secrets.create_secret(Name=f"db-{unique}", SecretString='{"user": "admin"}')
    answer = secrets.get_secret_value(SecretId=f"db-{unique}")
    assert answer["SecretString"] == '{"user": "admin"}'
    assert "AWSCURRENT" in answer["VersionStages"]


def test_public_parameters_are_computed_per_region_from_the_catalogue() -> None:
    east = public_parameters("us-east-1")
    west = public_parameters("eu-west-1")
    assert UBUNTU_NOBLE in east and UBUNTU_NOBLE in west
    assert east[UBUNTU_NOBLE][0] != west[UBUNTU_NOBLE][0]  # one id per region, as on AWS
    ids = {i.image_id for i in catalog_for_region("us-east-1")}
    names = {i.name for i in catalog_for_region("us-east-1")}
    for name, (value, _modified) in east.items():
        assert name.startswith("/aws/service/")
        assert value in (names if name.endswith("/image_name") else ids), name
