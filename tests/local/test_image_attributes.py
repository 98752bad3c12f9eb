"""AMI lifecycle attributes, CPU credits and the instance's authorized_keys, as EC2 has them.

Real boto3 over HTTP against the local cloud; real asyncssh against its instances.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
import pytest
from botocore.exceptions import ClientError

from amibake.core.local.cloud import LocalCloud
from tests.local.conftest import Launched, wait_state


def register(ec2: Any, **extra: Any) -> str:
    name = f"attributes-{uuid.uuid4().hex[:10]}"
    return str(ec2.register_image(Name=name, **extra)["ImageId"])


def describe(ec2: Any, image_id: str) -> dict[str, Any]:
    return dict(ec2.describe_images(ImageIds=[image_id])["Images"][0])


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_register_image_keeps_boot_mode_tpm_and_imds_support(ec2: Any) -> None:
    image_id = register(ec2, BootMode="uefi", TpmSupport="v2.0", ImdsSupport="v2.0")
    image = describe(ec2, image_id)
    assert (image["BootMode"], image["TpmSupport"], image["ImdsSupport"]) == (
        "uefi",
        "v2.0",
        "v2.0",
    )
    attribute = ec2.describe_image_attribute(ImageId=image_id, Attribute="tpmSupport")
    assert attribute["TpmSupport"] == {"Value": "v2.0"}
    plain = describe(ec2, register(ec2))
    assert "ImdsSupport" not in plain and "TpmSupport" not in plain
    with pytest.raises(ClientError) as caught:
        register(ec2, BootMode="bios")
    assert error_code(caught) == "InvalidParameterValue"


def test_imds_support_is_set_through_modify_image_attribute(ec2: Any) -> None:
    image_id = register(ec2)
    ec2.modify_image_attribute(ImageId=image_id, ImdsSupport={"Value": "v2.0"})
    assert describe(ec2, image_id)["ImdsSupport"] == "v2.0"
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "now described"})
    assert describe(ec2, image_id)["Description"] == "now described"


def test_deprecation_is_enabled_rounded_to_the_minute_and_disabled(ec2: Any) -> None:
    image_id = register(ec2)
    when = (datetime.now(UTC) + timedelta(days=30)).replace(second=40, microsecond=0)
    assert ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=when)["Return"] is True
    expected = (when.replace(second=0) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert describe(ec2, image_id)["DeprecationTime"] == expected
    assert ec2.disable_image_deprecation(ImageId=image_id)["Return"] is True
    assert "DeprecationTime" not in describe(ec2, image_id)
    with pytest.raises(ClientError) as caught:
        ec2.enable_image_deprecation(
            ImageId=image_id, DeprecateAt=datetime.now(UTC) - timedelta(days=1)
        )
    assert error_code(caught) == "InvalidParameterValue"


def test_deregistration_protection_refuses_deregister_until_disabled(ec2: Any) -> None:
    image_id = register(ec2)
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    assert describe(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    with pytest.raises(ClientError) as caught:
        ec2.deregister_image(ImageId=image_id)
    assert error_code(caught) == "OperationNotPermitted"
    assert describe(ec2, image_id)["State"] == "available"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    assert describe(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []


def test_protection_with_cooldown_holds_after_it_is_disabled(ec2: Any) -> None:
    image_id = register(ec2)
    ec2.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=True)
    assert describe(ec2, image_id)["DeregistrationProtection"] == "enabled-with-cooldown"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    with pytest.raises(ClientError) as caught:
        ec2.deregister_image(ImageId=image_id)
    assert error_code(caught) == "OperationNotPermitted"
    assert "cooldown" in caught.value.response["Error"]["Message"]


def test_only_the_owner_changes_an_images_lifecycle(ec2: Any) -> None:
    public = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as caught:
        ec2.enable_image_deregistration_protection(ImageId=public)
    assert error_code(caught) == "AuthFailure"
    with pytest.raises(ClientError) as caught:
        ec2.disable_image_deprecation(ImageId="ami-0123456789abcdef0")
    assert error_code(caught) == "InvalidAMIID.NotFound"


def credits(ec2: Any, instance_id: str) -> str:
    found = ec2.describe_instance_credit_specifications(InstanceIds=[instance_id])
    (entry,) = found["InstanceCreditSpecifications"]
    return str(entry["CpuCredits"])


def test_credit_specification_given_at_launch_is_reported_and_modified(
    ec2: Any, launch: Any
) -> None:
    standard = launch(CreditSpecification={"CpuCredits": "standard"})
    default_t3 = launch()
    default_t2 = launch(InstanceType="t2.micro")
    assert credits(ec2, standard.id) == "standard"
    assert credits(ec2, default_t3.id) == "unlimited"
    assert credits(ec2, default_t2.id) == "standard"
    changed = ec2.modify_instance_credit_specification(
        InstanceCreditSpecifications=[
            {"InstanceId": standard.id, "CpuCredits": "unlimited"},
            {"InstanceId": "i-0123456789abcdef0", "CpuCredits": "unlimited"},
        ]
    )
    assert changed["SuccessfulInstanceCreditSpecifications"] == [{"InstanceId": standard.id}]
    (failed,) = changed["UnsuccessfulInstanceCreditSpecifications"]
    assert failed["InstanceId"] == "i-0123456789abcdef0"
    assert credits(ec2, standard.id) == "unlimited"


async def test_the_launch_key_is_in_the_default_users_authorized_keys(
    ec2: Any, launch: Any
) -> None:
    instance: Launched = launch()
    wait_state(ec2, instance.id, "running")
    public = instance.key.export_public_key("openssh").decode().split()[:2]
    async with await instance.connect_when_ready() as conn:
        listing = await conn.run("cat ~/.ssh/authorized_keys", check=True)
        assert [line.split()[:2] for line in str(listing.stdout).splitlines()] == [public]
        # sshd reads the file at each login: emptied, it lets no key in.
        await conn.run(": > ~/.ssh/authorized_keys", check=True)
    with pytest.raises(asyncssh.PermissionDenied):
        await instance.connect()


async def test_rsa_logins_use_sha2_signatures_never_ssh_rsa(
    ec2: Any, cloud: LocalCloud, unique: str
) -> None:
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    key_name = f"rsa-{unique}"
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=key.export_public_key("openssh"))
    from tests.local.conftest import newest_image

    response = ec2.run_instances(
        ImageId=newest_image(ec2)["ImageId"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        KeyName=key_name,
    )
    instance = Launched(ec2, cloud, response["Instances"][0], key, "ubuntu")
    try:
        wait_state(ec2, instance.id, "running")
        async with await instance.connect_when_ready() as conn:
            assert (await conn.run("echo sha2", check=True)).stdout == "sha2\n"
        # A client that signs with SHA-1 (ssh-rsa) is refused, as by OpenSSH 8.8+.
        with pytest.raises(asyncssh.PermissionDenied):
            await instance.connect(signature_algs=["ssh-rsa"])
    finally:
        ec2.terminate_instances(InstanceIds=[instance.id])
        ec2.delete_key_pair(KeyName=key_name)
