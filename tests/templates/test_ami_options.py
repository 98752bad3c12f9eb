"""The AMI options group of amazon-ebs (issue 12), decoded and validated as Packer's
AMIConfig.Prepare and BlockDevice.Prepare do (packer-plugin-amazon builder/common)."""

from __future__ import annotations

from typing import Any

import pytest

from amibake.core.model import BlockDeviceMapping, DeregistrationProtection

from .helpers import HCL_HEAD, HCL_TAIL, json_builder, load_text, problems_of

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def builder(**options: object) -> Any:
    return load_text(json_builder(**options)).builders[0]


def problems(**options: object) -> list[str]:
    return problems_of(json_builder(**options))


def test_every_ami_option_decodes() -> None:
    b = builder(
        ami_block_device_mappings=[
            {"device_name": "/dev/sdb", "volume_size": 10, "volume_type": "gp3", "iops": 3000},
            {"device_name": "/dev/sdc", "virtual_name": "ephemeral0"},
            {"device_name": "/dev/sdd", "no_device": True},
            {"device_name": "/dev/sde", "snapshot_id": "snap-0123456789abcdef0"},
        ],
        ena_support=True,
        sriov_support="true",
        snapshot_users=["123456789012"],
        snapshot_groups="all",
        deprecate_at="2030-01-02T03:04:05Z",
        ami_org_arns=["arn:aws:organizations::123456789012:organization/o-abcdefghij"],
        ami_ou_arns=["arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdef3456"],
        ami_regions=["us-west-2", "eu-west-1"],
        encrypt_boot=True,
        kms_key_id=KEY,
        region_kms_key_ids={"us-west-2": "alias/west", "eu-west-1": KEY},
        skip_save_build_region=True,
        imds_support="v2.0",
        deregistration_protection={"with_cooldown": True},
        ami_virtualization_type="hvm",
        ami_product_codes=["abcdefghijklmnopqrstuvwxy"],
        snapshot_copy_duration_minutes=30,
    )
    assert b.ami_block_device_mappings == (
        BlockDeviceMapping(device_name="/dev/sdb", volume_size=10, volume_type="gp3", iops=3000),
        BlockDeviceMapping(device_name="/dev/sdc", virtual_name="ephemeral0"),
        BlockDeviceMapping(device_name="/dev/sdd", no_device=True),
        BlockDeviceMapping(device_name="/dev/sde", snapshot_id="snap-0123456789abcdef0"),
    )
    assert (b.ena_support, b.sriov_support) == (True, True)
    assert b.snapshot_users == ("123456789012",)
    assert b.snapshot_groups == ("all",)
    assert b.deprecate_at == "2030-01-02T03:04:05Z"
    assert b.ami_org_arns[0].endswith("o-abcdefghij")
    assert b.ami_ou_arns[0].endswith("ou-ab12-cdef3456")
    assert dict(b.region_kms_key_ids) == {"us-west-2": "alias/west", "eu-west-1": KEY}
    assert b.skip_save_build_region is True
    assert b.imds_support == "v2.0"
    # Packer: with_cooldown implies enabled
    assert b.deregistration_protection == DeregistrationProtection(enabled=True, with_cooldown=True)
    assert b.ami_virtualization_type == "hvm"
    assert b.ami_product_codes == ("abcdefghijklmnopqrstuvwxy",)
    assert b.snapshot_copy_duration_minutes == 30


def test_hcl_blocks() -> None:
    text = (
        HCL_HEAD
        + """
  ami_name = "x-ami"
  ena_support = false
  deregistration_protection {
    enabled = true
  }
  ami_block_device_mappings {
    device_name           = "/dev/sdf"
    volume_size           = 20
    delete_on_termination = true
  }
  ami_block_device_mappings {
    device_name = "/dev/sdg"
    no_device   = true
  }
"""
        + HCL_TAIL
    )
    b = load_text(text, "hcl").builders[0]
    assert b.ena_support is False  # a trilean: false disables ENA, unset leaves it
    assert b.deregistration_protection == DeregistrationProtection(enabled=True)
    assert [
        (m.device_name, m.volume_size, m.delete_on_termination) for m in b.ami_block_device_mappings
    ] == [("/dev/sdf", 20, True), ("/dev/sdg", None, False)]


def test_defaults_as_packer() -> None:
    b = builder(launch_block_device_mappings=[{"device_name": "/dev/sda1", "volume_size": 9}])
    # Packer's BlockDevice: delete_on_termination defaults to false
    assert b.launch_block_device_mappings[0].delete_on_termination is False
    assert b.ena_support is None
    assert b.sriov_support is False
    assert b.deregistration_protection is None
    assert b.snapshot_copy_duration_minutes is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"ami_users": ["123456789012"], "encrypt_boot": True},
            "ami_users: cannot share an AMI encrypted with the default KMS key",
        ),
        (
            {"ami_org_arns": ["arn:aws:organizations::1:organization/o-1"], "encrypt_boot": True},
            "ami_org_arns: cannot share an AMI encrypted with the default KMS key",
        ),
        (
            {"snapshot_users": ["123456789012"], "encrypt_boot": True},
            "snapshot_users: cannot share a snapshot encrypted with the default KMS key",
        ),
        (
            {
                "ami_users": ["123456789012"],
                "encrypt_boot": True,
                "kms_key_id": KEY,
                "ami_regions": ["us-west-2"],
                "region_kms_key_ids": {"us-west-2": ""},
            },
            "region_kms_key_ids: cannot share an AMI encrypted with the default KMS key for "
            "other regions",
        ),
        (
            {
                "ami_regions": ["us-west-2"],
                "region_kms_key_ids": {"eu-west-1": KEY},
                "encrypt_boot": True,
            },
            "region eu-west-1 is in region_kms_key_ids but not in ami_regions",
        ),
        (
            {
                "ami_regions": ["us-west-2", "eu-west-1"],
                "region_kms_key_ids": {"us-west-2": KEY},
                "encrypt_boot": True,
            },
            "ami_regions: region eu-west-1 is in ami_regions but not in region_kms_key_ids",
        ),
        (
            {"ami_regions": ["us-west-2"], "region_kms_key_ids": {"us-west-2": KEY}},
            "encrypt_boot must also be true",
        ),
        (
            {"encrypt_boot": True, "kms_key_id": "my-key"},
            "kms_key_id: `my-key` is not a valid KMS key id",
        ),
        ({"imds_support": "v1.0"}, 'the only valid imds_support values are "v2.0"'),
        ({"deprecate_at": "2030-01-02"}, "deprecate_at is not a valid time: `2030-01-02`"),
        ({"deprecate_at": "2030-13-02T00:00:00Z"}, "deprecate_at is not a valid time"),
        ({"snapshot_groups": ["admins"]}, "the only snapshot group is `all`"),
        ({"snapshot_users": ["me"]}, "`me` is not a 12-digit AWS account ID"),
        ({"ami_virtualization_type": "pv"}, "expected one of hvm, paravirtual"),
        ({"snapshot_copy_duration_minutes": 20}, "15 minute increments"),
        (
            {"ena_support": True, "spot_price": "auto"},
            "ena_support: spot instances do not support modification",
        ),
        (
            {
                "ami_block_device_mappings": [
                    {"device_name": "/dev/sdb", "volume_type": "gp2", "throughput": 200}
                ]
            },
            "throughput is only valid for gp3 volumes, /dev/sdb is of type gp2",
        ),
        (
            {
                "ami_block_device_mappings": [
                    {
                        "device_name": "/dev/sdb",
                        "volume_type": "io1",
                        "volume_size": 10,
                        "iops": 1000,
                    }
                ]
            },
            "/dev/sdb: the maximum ratio of provisioned IOPS to requested volume size (in GiB) "
            "is 50:1 for io1 volumes",
        ),
        (
            {
                "ami_block_device_mappings": [
                    {"device_name": "/dev/sdb", "volume_type": "gp3", "iops": 100}
                ]
            },
            "IOPS must be between 3000 and 16000 for device /dev/sdb",
        ),
        (
            {
                "launch_block_device_mappings": [
                    {"device_name": "/dev/sdb", "encrypted": False, "kms_key_id": "alias/x"}
                ]
            },
            "the device /dev/sdb must also have `encrypted = true` when setting a kms_key_id",
        ),
        ({"ami_block_device_mappings": [{"volume_size": 10}]}, "`device_name` is required"),
    ],
)
def test_packer_rejects(options: dict[str, object], message: str) -> None:
    found = problems(**options)
    assert any(message in p for p in found), found
    assert all(p.startswith("t.json:") for p in found)  # every problem is located


def test_a_customer_managed_key_makes_sharing_legal() -> None:
    b = builder(
        ami_users=["123456789012"],
        snapshot_users=["123456789012"],
        encrypt_boot=True,
        kms_key_id="alias/shared",
    )
    assert b.kms_key_id == "alias/shared"


def test_skip_save_build_region_without_other_regions_warns() -> None:
    spec = load_text(json_builder(skip_save_build_region=True))
    assert any("no AMI is kept" in w for w in spec.warnings)


@pytest.mark.parametrize("option", ["tpm_support", "boot_mode", "uefi_data"])
def test_options_of_other_builders_are_unknown(option: str) -> None:
    # tpm_support/boot_mode/uefi_data belong to amazon-ebssurrogate/instance, not amazon-ebs
    (found,) = problems(**{option: "x"})
    assert f"unknown option `{option}`" in found
