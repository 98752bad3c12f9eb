"""The suite's realism switches are on (issue 10): every build and sweep of tests/reliability
signs with an identity held to the published IAM policy, and the instances' sshd refuses
sources their security groups do not admit. These tests fail if either switch is off, so
the rest of the suite cannot silently run without them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from botocore.exceptions import ClientError

from amibake.core.iam_policy import policy_document
from amibake.core.ledger import Ledger
from amibake.core.local.cloud import LocalCloud
from tests.local.conftest import newest_image, wait_for, wait_state

from .conftest import BUILD_ACCESS_KEY, cli_env, leftovers, start_build, template


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"]["Code"])


def test_the_build_identity_may_make_only_the_published_policys_calls(
    as_on_aws: LocalCloud, tmp_path: Path
) -> None:
    cloud = as_on_aws
    # The CLI processes of the suite sign with the bound identity...
    assert cli_env(cloud, tmp_path)["AWS_ACCESS_KEY_ID"] == BUILD_ACCESS_KEY
    assert cloud.policy_for(BUILD_ACCESS_KEY) == policy_document()
    build_ec2 = cloud.client("ec2", access_key_id=BUILD_ACCESS_KEY)
    build_iam = cloud.client("iam", access_key_id=BUILD_ACCESS_KEY)
    # ... which may make the calls of the policy ...
    assert build_ec2.describe_regions()["Regions"]
    build_iam.list_instance_profiles()
    # ... and no other: AWS's answers, EC2's and IAM's
    assert error_code(build_ec2.create_vpc, CidrBlock="10.99.0.0/16") == "UnauthorizedOperation"
    assert error_code(build_ec2.describe_addresses) == "UnauthorizedOperation"
    assert error_code(build_iam.create_user, UserName="mallory") == "AccessDenied"
    # The tests' own identity (setup, counting) is the account's administrator.
    admin = cloud.client("ec2")
    vpc = admin.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    admin.delete_vpc(VpcId=vpc)


def test_a_call_the_policy_denies_fails_a_cli_build_in_one_line_and_leaves_nothing(
    quick_cloud: LocalCloud, tmp_path: Path
) -> None:
    """The real `amibake build` process is held to its identity's policy: with RunInstances
    denied, the build fails on that call with AWS's answer, in one line, and cleans up the
    key pair and group it had made."""
    cloud = quick_cloud
    policy = policy_document()
    policy["Statement"].append({"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"})
    cloud.identity_policies[BUILD_ACCESS_KEY] = policy
    home = tmp_path / "home"
    build = start_build(cloud, home, template(tmp_path, regions=False))
    try:
        status = build.finish()
    finally:
        if build.process.poll() is None:
            build.process.kill()
    (finished,) = [e for e in build.events if e["type"] == "build_finished"]
    assert status != 0 and finished["status"] == "failed"
    error = str(finished.get("error") or "")
    assert "RunInstances" in error or "not authorized" in error, finished
    assert "\n" not in error and "Traceback" not in error
    assert build.build_id is not None
    assert leftovers(cloud, build.build_id, ("us-east-1",)) == {}
    assert cloud.gateway is not None
    signers = {r["access_key_id"] for r in cloud.gateway.requests if r["action"] == "ImportKeyPair"}
    assert BUILD_ACCESS_KEY in signers
    ledger = Ledger(home / "state" / "ledger.sqlite3")
    try:
        assert ledger.unfinished_builds() == []
    finally:
        ledger.close()


async def test_the_instances_sshd_admits_only_what_the_groups_admit(
    as_on_aws: LocalCloud,
) -> None:
    cloud = as_on_aws
    ec2 = cloud.client("ec2")
    name = f"gate-{uuid.uuid4().hex[:8]}"
    group = ec2.create_security_group(GroupName=name, Description="admits nothing yet")["GroupId"]
    key = asyncssh.generate_private_key("ssh-ed25519")
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.export_public_key())
    instance_id = ec2.run_instances(
        ImageId=newest_image(ec2)["ImageId"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        KeyName=name,
        SecurityGroupIds=[group],
    )["Instances"][0]["InstanceId"]
    try:
        wait_state(ec2, instance_id, "running")
        endpoint = wait_for(lambda: cloud.instance_ssh_endpoint(instance_id), what="its sshd")
        rule = {
            "IpProtocol": "tcp",
            "FromPort": cloud.ssh_port,
            "ToPort": cloud.ssh_port,
            "IpRanges": [{"CidrIp": "127.0.0.0/8"}],
        }

        async def connect() -> asyncssh.SSHClientConnection:
            return await asyncssh.connect(
                endpoint[0],
                port=endpoint[1],
                username="ubuntu",
                client_keys=[key],
                known_hosts=None,
                connect_timeout=10,
            )

        # Admitted: the SSH session opens (waiting for the sshd to be up)...
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
        deadline = time.monotonic() + 20
        while True:
            try:
                async with await connect() as conn:
                    assert (await conn.run("echo in")).stdout == "in\n"
                break
            except (OSError, asyncssh.Error):
                assert time.monotonic() < deadline, "the admitted source never got in"
                await asyncio.sleep(0.1)
        # ... not admitted any more: the connection is dropped before SSH begins.
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])
        with pytest.raises((OSError, asyncssh.Error)) as refused:
            await connect()
        assert not isinstance(refused.value, asyncssh.PermissionDenied)
    finally:
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_state(ec2, instance_id, "terminated")
        ec2.delete_security_group(GroupId=group)
        ec2.delete_key_pair(KeyName=name)
