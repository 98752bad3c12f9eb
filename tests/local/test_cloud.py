"""The local cloud through real boto3 over HTTP and a real asyncssh client."""

from __future__ import annotations

import re
import time
from typing import Any

import asyncssh
import pytest
from botocore.exceptions import ClientError

from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.regions import COMMERCIAL_REGIONS

from .conftest import (
    CANONICAL,
    FOCAL_WILDCARD,
    image_state,
    instance_state,
    newest_image,
    wait_image,
    wait_state,
)


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


# -- catalogue, owners, regions -----------------------------------------------------------------


def test_describe_regions_lists_the_commercial_regions_only(ec2: Any) -> None:
    names = {r["RegionName"] for r in ec2.describe_regions()["Regions"]}
    assert "us-east-1" in names and "eu-west-1" in names
    assert not any(n.startswith(("cn-", "us-gov-")) for n in names)
    assert names <= set(COMMERCIAL_REGIONS)


def test_us_east_1_holds_thousands_of_images(ec2: Any) -> None:
    images = ec2.describe_images(IncludeDeprecated=True)["Images"]
    assert len(images) >= 5000
    families = (
        "ubuntu/images/",
        "amzn2-ami-",
        "al2023-ami-",
        "debian-1",
        "RHEL-",
        "Windows_Server-",
    )
    for prefix in families:
        assert any(i["Name"].startswith(prefix) for i in images), prefix


def test_owner_alias_amazon_matches_only_amazon_images(ec2: Any) -> None:
    amazon = ec2.describe_images(Owners=["amazon"])["Images"]
    assert amazon
    assert {i["ImageOwnerAlias"] for i in amazon} == {"amazon"}
    canonical_ids = {i["ImageId"] for i in ec2.describe_images(Owners=[CANONICAL])["Images"]}
    assert canonical_ids and not canonical_ids & {i["ImageId"] for i in amazon}
    by_filter = ec2.describe_images(Filters=[{"Name": "owner-alias", "Values": ["amazon"]}])
    assert {i["ImageId"] for i in by_filter["Images"]} == {i["ImageId"] for i in amazon}


def test_marketplace_and_account_owners(ec2: Any) -> None:
    market = ec2.describe_images(Owners=["aws-marketplace"])["Images"]
    assert market and {i["ImageOwnerAlias"] for i in market} == {"aws-marketplace"}
    assert all(i.get("ProductCodes") for i in market)
    debian = ec2.describe_images(Owners=["136693071363"])["Images"]
    assert debian and all(i["Name"].startswith("debian-") for i in debian)
    assert all("ImageOwnerAlias" not in i for i in debian)
    redhat = ec2.describe_images(Owners=["309956199498"])["Images"]
    assert redhat and all(i["Name"].startswith("RHEL-") for i in redhat)


def test_self_owner_sees_only_our_images(ec2: Any) -> None:
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert all(i["OwnerId"] == "123456789012" for i in mine)


def test_seed_wildcard_finds_focal_images(ec2: Any) -> None:
    current = ec2.describe_images(
        Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [FOCAL_WILDCARD]}]
    )["Images"]
    images = ec2.describe_images(
        Owners=[CANONICAL],
        Filters=[{"Name": "name", "Values": [FOCAL_WILDCARD]}],
        IncludeDeprecated=True,
    )["Images"]
    assert len(current) >= 5
    assert len(images) > 20
    pattern = re.compile(r"^ubuntu/images/hvm-ssd/ubuntu-focal-20\.04-amd64-server-\d{8}(\.\d+)?$")
    assert all(pattern.match(i["Name"]) for i in images)
    assert {i["Architecture"] for i in images} == {"x86_64"}
    newest = max(images, key=lambda i: i["CreationDate"])
    assert newest["Name"] == max(i["Name"] for i in images)


def test_images_carry_real_attributes(ec2: Any) -> None:
    image = newest_image(ec2)
    assert image["RootDeviceType"] == "ebs"
    assert image["VirtualizationType"] == "hvm"
    assert image["Public"] is True
    assert image["DeprecationTime"] > image["CreationDate"]
    ebs = image["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["SnapshotId"].startswith("snap-") and ebs["VolumeSize"] >= 8


def test_facet_filters(ec2: Any) -> None:
    arm = ec2.describe_images(
        Owners=["amazon"],
        Filters=[
            {"Name": "architecture", "Values": ["arm64"]},
            {"Name": "root-device-type", "Values": ["ebs"]},
        ],
    )["Images"]
    assert arm and {i["Architecture"] for i in arm} == {"arm64"}
    windows = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "platform", "Values": ["windows"]}]
    )
    assert windows["Images"] and all(i["Name"].startswith("Windows") for i in windows["Images"])


def test_deprecated_images_hidden_unless_asked(ec2: Any) -> None:
    visible = ec2.describe_images(Owners=[CANONICAL])["Images"]
    everything = ec2.describe_images(Owners=[CANONICAL], IncludeDeprecated=True)["Images"]
    assert len(everything) > len(visible)
    hidden = {i["ImageId"] for i in everything} - {i["ImageId"] for i in visible}
    one = next(iter(hidden))
    # Asked for by id, a deprecated image is returned.
    assert ec2.describe_images(ImageIds=[one])["Images"][0]["ImageId"] == one


def test_describe_images_pages(ec2: Any) -> None:
    paginator = ec2.get_paginator("describe_images")
    pages = list(paginator.paginate(Owners=["amazon"], PaginationConfig={"PageSize": 500}))
    assert len(pages) > 1
    paged = [i["ImageId"] for p in pages for i in p["Images"]]
    whole = [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]]
    assert paged == whole


def test_images_differ_per_region(cloud: LocalCloud) -> None:
    east = cloud.client("ec2", "us-east-1")
    west = cloud.client("ec2", "eu-west-1")
    name = newest_image(east)["Name"]
    east_id = east.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"][0]
    west_id = west.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"][0]
    assert east_id["ImageId"] != west_id["ImageId"]


# -- launching, SSH, images ---------------------------------------------------------------------


async def test_round_trip_files_survive_into_a_new_image(
    ec2: Any, launch: Any, unique: str, cloud: LocalCloud
) -> None:
    builder = launch()
    described = builder.describe()
    address = described["PublicIpAddress"]
    assert address.startswith("127.")
    # the private address is another loopback address (issue 10), served by the same sshd
    private = described["PrivateIpAddress"]
    assert private.startswith("127.")
    assert (private != address) == cloud.per_instance_addresses
    assert described["PublicDnsName"] == address
    wait_state(ec2, builder.id, "running")
    async with await builder.connect_when_ready() as conn:
        # /opt is root's on a cloud image (overlay roots); the fallback sandbox lets us write it
        make = "sudo install -d -o ubuntu /opt/app" if cloud.overlay_mode else "mkdir -p /opt/app"
        result = await conn.run(
            f"echo baked > ~/marker && {make} && echo v1 > /opt/app/version && whoami"
        )
        assert result.exit_status == 0, result.stderr
        assert result.stdout.strip() in ("ubuntu", "root")

    ec2.stop_instances(InstanceIds=[builder.id])
    wait_state(ec2, builder.id, "stopped")
    image_id = ec2.create_image(
        InstanceId=builder.id,
        Name=f"round-trip-{unique}",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "baked"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "Purpose", "Value": "root"}]},
        ],
    )["ImageId"]
    wait_image(ec2, image_id)
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert {"Key": "Name", "Value": "baked"} in image["Tags"]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert snapshot["State"] == "completed"
    assert {"Key": "Purpose", "Value": "root"} in snapshot["Tags"]

    child = launch(image_id)
    wait_state(ec2, child.id, "running")
    async with await child.connect_when_ready() as conn:
        result = await conn.run("cat ~/marker /opt/app/version")
        assert result.stdout.split() == ["baked", "v1"]

    ec2.terminate_instances(InstanceIds=[builder.id, child.id])
    wait_state(ec2, child.id, "terminated")
    ec2.deregister_image(ImageId=image_id)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


async def test_ssh_accepts_only_the_instance_key_and_user(ec2: Any, launch: Any) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    async with await instance.connect_when_ready() as conn:
        result = await conn.run("echo out; echo err >&2; exit 3")
        assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 3)
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    address = instance.describe()["PublicIpAddress"]
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            address,
            port=instance.ssh_port(),
            username="ubuntu",
            client_keys=[stranger],
            known_hosts=None,
        )
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            address,
            port=instance.ssh_port(),
            username="root",
            client_keys=[instance.key],
            known_hosts=None,
        )


async def test_console_output_carries_the_real_host_key_fingerprint(ec2: Any, launch: Any) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    # botocore decodes the base64 of GetConsoleOutput itself.
    output = ec2.get_console_output(InstanceId=instance.id)["Output"]
    block = re.search(
        r"-----BEGIN SSH HOST KEY FINGERPRINTS-----\n(.*?)-----END SSH HOST KEY FINGERPRINTS-----",
        output,
        re.S,
    )
    assert block is not None
    async with await instance.connect_when_ready() as conn:
        server_key = conn.get_server_host_key()
    assert server_key is not None
    assert server_key.get_fingerprint("sha256") in block.group(1)


async def test_sandbox_refuses_writes_outside_the_instance(
    ec2: Any, launch: Any, cloud: LocalCloud
) -> None:
    if not cloud.isolated:
        pytest.skip("bubblewrap is not available: commands are not isolated here")
    instance = launch()
    wait_state(ec2, instance.id, "running")
    async with await instance.connect_when_ready() as conn:
        result = await conn.run("touch /etc/amibake-escape")
        assert result.exit_status != 0
        assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr
    assert not __import__("os").path.exists("/etc/amibake-escape")


async def test_sftp_uploads_into_home(ec2: Any, launch: Any) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    async with await instance.connect_when_ready() as conn:
        target = "/home/ubuntu/uploaded.txt"
        async with conn.start_sftp_client() as sftp, sftp.open(target, "w") as f:
            await f.write("from sftp\n")
        result = await conn.run("cat ~/uploaded.txt")
        assert result.stdout == "from sftp\n"


# -- AWS semantics builds depend on ---------------------------------------------------------------


def test_security_group_in_use_is_a_dependency_violation(
    ec2: Any, launch: Any, unique: str
) -> None:
    group = ec2.create_security_group(GroupName=f"sg-{unique}", Description="test")["GroupId"]
    instance = launch(SecurityGroupIds=[group])
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupId=group)
    assert error_code(excinfo) == "DependencyViolation"
    ec2.terminate_instances(InstanceIds=[instance.id])
    wait_state(ec2, instance.id, "terminated")
    ec2.delete_security_group(GroupId=group)


def test_duplicate_ami_names_are_refused(ec2: Any, launch: Any, unique: str) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    name = f"dup-{unique}"
    first = ec2.create_image(InstanceId=instance.id, Name=name)["ImageId"]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_image(InstanceId=instance.id, Name=name)
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"
    assert first in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ec2.register_image(Name=name, RootDeviceName="/dev/xvda")
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"
    wait_image(ec2, first)
    with pytest.raises(ClientError) as excinfo:
        ec2.copy_image(SourceImageId=first, SourceRegion="us-east-1", Name=name)
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"


def test_copy_image_copies_tags_and_is_pending_for_a_while(
    cloud: LocalCloud, ec2: Any, launch: Any, unique: str, latency: Any
) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    source = ec2.create_image(
        InstanceId=instance.id,
        Name=f"copy-src-{unique}",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Team", "Value": "bake"}]}],
    )["ImageId"]
    wait_image(ec2, source)
    latency("fast")
    west = cloud.client("ec2", "us-west-2")
    copy_id = west.copy_image(
        SourceImageId=source, SourceRegion="us-east-1", Name=f"copy-{unique}", CopyImageTags=True
    )["ImageId"]
    assert image_state(west, copy_id) == "pending"
    copied = west.describe_images(ImageIds=[copy_id])["Images"][0]
    assert {"Key": "Team", "Value": "bake"} in copied["Tags"]
    wait_image(west, copy_id)
    plain = west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name=f"plain-{unique}")
    assert not west.describe_images(ImageIds=[plain["ImageId"]])["Images"][0].get("Tags")


def test_copy_image_encrypts_with_the_given_or_default_key(
    cloud: LocalCloud, ec2: Any, launch: Any, unique: str
) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    source = ec2.create_image(InstanceId=instance.id, Name=f"enc-src-{unique}")["ImageId"]
    wait_image(ec2, source)
    assert ebs_of(ec2, source)["Encrypted"] is False
    key = "arn:aws:kms:us-east-1:123456789012:key/0000aaaa-1111-2222-3333-444455556666"
    with pytest.raises(ClientError) as excinfo:
        ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="xyz", KmsKeyId=key)
    assert error_code(excinfo) == "InvalidParameterCombination"
    mine = ec2.copy_image(
        SourceImageId=source,
        SourceRegion="us-east-1",
        Name=f"enc-{unique}",
        Encrypted=True,
        KmsKeyId=key,
    )["ImageId"]
    wait_image(ec2, mine)
    assert ebs_of(ec2, mine)["Encrypted"] is True and ebs_of(ec2, mine)["KmsKeyId"] == key
    snapshot_id = ebs_of(ec2, mine)["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["Encrypted"]
    # a copy of an encrypted image elsewhere stays encrypted, with that region's default key
    west = cloud.client("ec2", "us-west-2")
    copy = west.copy_image(SourceImageId=mine, SourceRegion="us-east-1", Name=f"enc-{unique}")
    wait_image(west, copy["ImageId"])
    ebs = ebs_of(west, copy["ImageId"])
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"].endswith(":alias/aws/ebs")
    assert ":us-west-2:" in ebs["KmsKeyId"]


def ebs_of(ec2: Any, image_id: str) -> dict[str, Any]:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]


def test_create_image_snapshot_tags_with_pending_states(
    ec2: Any, launch: Any, unique: str, latency: Any
) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    latency("fast")
    image_id = ec2.create_image(
        InstanceId=instance.id,
        Name=f"pending-{unique}",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "pending"
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert snapshot["State"] == "pending"
    assert snapshot["Tags"] == [{"Key": "k", "Value": "v"}]
    wait_image(ec2, image_id)
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["State"] == "completed"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
        ({"ImageId": "not-an-ami"}, "InvalidAMIID.Malformed"),
        ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound"),
        ({"InstanceType": "t9.mega"}, "InvalidParameterValue"),
        ({"InstanceType": "t4g.micro"}, "InvalidParameterValue"),  # arm64 type, x86_64 image
    ],
)
def test_run_instances_rejects_bad_input_with_aws_codes(
    ec2: Any, overrides: dict[str, str], code: str
) -> None:
    params = {
        "ImageId": newest_image(ec2)["ImageId"],
        "InstanceType": "t3.micro",
        "MinCount": 1,
        "MaxCount": 1,
    }
    params.update(overrides)
    with pytest.raises(ClientError) as excinfo:
        ec2.run_instances(**params)
    assert error_code(excinfo) == code


# -- latency ------------------------------------------------------------------------------------


async def test_fast_profile_states_take_time_and_ssh_waits(
    ec2: Any, launch: Any, latency: Any, cloud: LocalCloud
) -> None:
    latency("fast")
    started = time.monotonic()
    instance = launch()
    assert instance_state(ec2, instance.id) == "pending"
    with pytest.raises(OSError):
        # SSH refuses connections until the instance is ready.
        await instance.connect()
    wait_state(ec2, instance.id, "running", timeout=10)
    assert time.monotonic() - started >= cloud.latency.boot * 0.9
    conn = await instance.connect_when_ready(timeout=10)
    assert time.monotonic() - started >= (cloud.latency.boot + cloud.latency.ssh_ready) * 0.9
    conn.close()
    ec2.stop_instances(InstanceIds=[instance.id])
    assert instance_state(ec2, instance.id) == "stopping"
    wait_state(ec2, instance.id, "stopped", timeout=10)
    ec2.start_instances(InstanceIds=[instance.id])
    assert instance_state(ec2, instance.id) == "pending"
    wait_state(ec2, instance.id, "running", timeout=10)
    ec2.terminate_instances(InstanceIds=[instance.id])
    assert instance_state(ec2, instance.id) == "shutting-down"
    wait_state(ec2, instance.id, "terminated", timeout=10)


# -- faults -------------------------------------------------------------------------------------


@pytest.fixture
def faults(cloud: LocalCloud) -> Any:
    yield cloud.set_faults
    cloud.set_faults(FaultPlan())


@pytest.mark.parametrize(
    ("code", "status"),
    [("RequestLimitExceeded", 503), ("InternalError", 500), ("Unavailable", 503)],
)
def test_error_fault_on_nth_call(cloud: LocalCloud, faults: Any, code: str, status: int) -> None:
    faults(FaultPlan([FaultRule(operation="DescribeRegions", error=code, nth=2)]))
    ec2 = cloud.client("ec2", retries={"total_max_attempts": 1, "mode": "standard"})
    ec2.describe_regions()
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_regions()
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    ec2.describe_regions()  # the third call is not hit


def test_botocore_standard_retries_ride_out_throttling(cloud: LocalCloud, faults: Any) -> None:
    faults(FaultPlan([FaultRule(operation="ec2:*", error="RequestLimitExceeded", times=2)]))
    ec2 = cloud.client("ec2", retries={"total_max_attempts": 5, "mode": "standard"})
    regions = ec2.describe_regions()["Regions"]
    assert regions
    assert cloud.faults.fired()[0]["fired"] == 2


def test_probability_fault_is_reproducible(cloud: LocalCloud, faults: Any) -> None:
    def run() -> list[bool]:
        faults(
            FaultPlan(
                [FaultRule(operation="DescribeRegions", error="InternalError", probability=0.5)],
                seed=3,
            )
        )
        ec2 = cloud.client("ec2", retries={"total_max_attempts": 1, "mode": "standard"})
        outcomes = []
        for _ in range(20):
            try:
                ec2.describe_regions()
                outcomes.append(True)
            except ClientError:
                outcomes.append(False)
        return outcomes

    first, second = run(), run()
    assert first == second
    assert True in first and False in first


def test_delay_fault_slows_the_call(cloud: LocalCloud, faults: Any) -> None:
    faults(FaultPlan([FaultRule(operation="DescribeRegions", delay=0.4)]))
    ec2 = cloud.client("ec2")
    started = time.monotonic()
    ec2.describe_regions()
    assert time.monotonic() - started >= 0.4


async def test_ssh_drop_fault_cuts_the_connection(
    ec2: Any, launch: Any, cloud: LocalCloud, faults: Any
) -> None:
    instance = launch()
    wait_state(ec2, instance.id, "running")
    conn = await instance.connect_when_ready()
    conn.close()
    faults(FaultPlan([FaultRule(operation="ssh", drop_after_bytes=1000)]))
    conn = await instance.connect()
    try:
        result = await conn.run("head -c 200000 /dev/zero | tr '\\0' x", timeout=10)
        delivered, status = len(result.stdout or ""), result.exit_status
    except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError):
        delivered, status = 0, None
    finally:
        conn.close()
    # Cut mid-command: no exit status, and at most the allowed bytes came through.
    assert status is None
    assert delivered <= 1000
