"""Issue 10, "ready for real AWS": the local cloud's realism switched on (security groups
enforced by the instances' sshd, an IAM policy enforced by the gateway, fingerprints that
appear late on the console and ``Latest`` answered as AWS does), and the engine through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amibake.core.engine.steps.security_group import ssh_permission
from amibake.core.events import LogLines, Message
from amibake.core.iam_policy import ACTIONS, evaluate, policy_document
from amibake.core.local.cloud import LocalCloud
from amibake.core.local.faults import FaultPlan
from tests.engine.test_build import Harness, builder, shell

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"


@pytest.fixture
def realistic(cloud: LocalCloud, tmp_path: Path) -> Iterator[Harness]:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    yield Harness(cloud, tmp_path)
    cloud.enforce_security_groups = False
    cloud.iam_policy = None
    cloud.fingerprint_delay = 0.0


def said(harness: Harness) -> list[str]:
    out: list[str] = []
    for event in harness.events:
        if isinstance(event, Message):
            out.append(event.text)
        elif isinstance(event, LogLines):
            out.extend(event.lines)
    return out


def actions_seen(cloud: LocalCloud) -> set[str]:
    assert cloud.gateway is not None
    return {f"{r['service']}:{r['action']}" for r in cloud.gateway.requests if r["action"]}


def focal_image(ec2: Any) -> str:
    images = ec2.describe_images(
        Owners=["099720109477"], Filters=[{"Name": "name", "Values": [FOCAL]}]
    )["Images"]
    return str(max(images, key=lambda i: i["CreationDate"])["ImageId"])


# -- the temporary group's rule ----------------------------------------


def test_ipv6_blocks_go_into_ipv6_ranges() -> None:
    rule = ssh_permission(22, ["203.0.113.7/32", "2001:db8::/64"])
    assert rule["IpRanges"] == [{"CidrIp": "203.0.113.7/32", "Description": "amibake SSH"}]
    assert rule["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/64", "Description": "amibake SSH"}]
    assert "IpRanges" not in ssh_permission(22, ["::/0"])


def test_checkip_is_asked_without_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import http.server
    import threading

    from amibake.core.engine.steps import security_group

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"2001:db8::7\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # a proxy that does not exist: asked through it, the lookup would fail
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    try:
        answer = security_group.ask_checkip(f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
    assert answer == "2001:db8::7"


# -- the IAM policy table ----------------------------------------


def test_the_policy_lists_each_action_once_and_evaluates_like_iam() -> None:
    names = [a.name for a in ACTIONS]
    assert len(names) == len(set(names))
    document = policy_document()
    assert document["Version"] == "2012-10-17"
    assert evaluate(document, "ec2:RunInstances")
    assert not evaluate(document, "ec2:DeleteVpc")
    deny = {
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["ec2:GetConsole*"], "Resource": "*"},
        ]
    }
    assert evaluate(deny, "ec2:RunInstances")
    assert not evaluate(deny, "ec2:GetConsoleOutput")


def test_iam_policy_command_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    from amibake.tui.cli import main

    assert main(["iam-policy", "--only", "Build"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [s["Sid"] for s in printed["Statement"]] == ["AmibakeBuild"]
    assert "ec2:GetConsoleOutput" in printed["Statement"][0]["Action"]


# -- Latest and late fingerprints on the console ----------------------------------------


async def test_console_latest_as_aws_answers_it(realistic: Harness) -> None:
    cloud = realistic.cloud
    cloud.fingerprint_delay = 1.0
    ec2 = realistic.client()
    image = focal_image(ec2)
    launched = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    old = ec2.run_instances(ImageId=image, InstanceType="t2.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    try:
        # not on Nitro: EC2 refuses Latest
        with pytest.raises(ClientError) as refused:
            ec2.get_console_output(InstanceId=old, Latest=True)
        assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
        deadline = time.monotonic() + 30
        latest = ""
        while "BEGIN SSH HOST KEY FINGERPRINTS" not in latest:
            assert time.monotonic() < deadline, "fingerprints never appeared with Latest"
            latest = ec2.get_console_output(InstanceId=launched, Latest=True).get("Output", "")
            time.sleep(0.2)
        # the buffered output (no Latest) is the boot transition's: no fingerprints
        buffered = ec2.get_console_output(InstanceId=launched).get("Output", "")
        assert "Cloud-init" in buffered
        assert "BEGIN SSH HOST KEY" not in buffered
    finally:
        ec2.terminate_instances(InstanceIds=[launched, old])


# -- one build with everything on ----------------------------------------


async def test_a_build_under_the_published_policy_and_enforced_groups(
    realistic: Harness,
) -> None:
    """Security groups enforced, exactly the published policy (its Build statement), the
    fingerprints late on the console, SSH to the private address: the build verifies the
    host key (Latest), admits the VPC's CIDR and makes no call outside the policy."""
    cloud = realistic.cloud
    cloud.enforce_security_groups = True
    cloud.fingerprint_delay = 1.0
    cloud.iam_policy = policy_document(("Build",))
    assert cloud.gateway is not None
    cloud.gateway.requests.clear()
    template = realistic.template(
        {
            "builders": [builder(ssh_interface="private_ip")],
            "provisioners": [shell("echo provisioned")],
        }
    )
    (result,) = await realistic.build(template)
    assert result.status == "succeeded", result.error
    messages = said(realistic)
    assert any("admitting 172.31.0.0/16, 127.0.0.1/32" in m for m in messages), messages
    assert any("verified against the console output" in m for m in messages)
    seen = actions_seen(cloud)
    assert "ec2:GetConsoleOutput" in seen
    assert seen <= {a.name for a in ACTIONS} | {"sts:GetCallerIdentity"}


async def test_a_group_that_does_not_admit_us_stops_ssh(realistic: Harness) -> None:
    cloud = realistic.cloud
    cloud.enforce_security_groups = True
    template = realistic.template(
        {
            "builders": [
                builder(
                    temporary_security_group_source_cidrs=["10.9.0.0/16", "2001:db8::/64"],
                    ssh_timeout="4s",
                )
            ],
            "provisioners": [shell("true")],
        }
    )
    (result,) = await realistic.build(template)
    assert result.status == "failed"
    assert result.error is not None and "SSH" in result.error
    assert any("from 10.9.0.0/16, 2001:db8::/64" in m for m in said(realistic))
    assert realistic.leftovers(result.build_id) == {}


async def test_a_denied_console_degrades_to_an_unverified_host_key(realistic: Harness) -> None:
    cloud = realistic.cloud
    policy = policy_document(("Build",))
    policy["Statement"].append(
        {"Effect": "Deny", "Action": "ec2:GetConsoleOutput", "Resource": "*"}
    )
    cloud.iam_policy = policy
    template = realistic.template({"builders": [builder()], "provisioners": [shell("true")]})
    (result,) = await realistic.build(template)
    assert result.status == "succeeded", result.error
    assert any("GetConsoleOutput is denied" in m for m in said(realistic))


# -- network selection ----------------------------------------


def test_vpc_id_without_a_subnet_is_rejected_at_load(tmp_path: Path) -> None:
    from amibake.core.templates import TemplateError, load

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder(vpc_id="vpc-0123456789abcdef0")]}))
    with pytest.raises(TemplateError) as caught:
        load(path)
    (problem,) = [str(p) for p in caught.value.problems]
    assert "t.json:" in problem and "`vpc_id` needs `subnet_id` or `subnet_filter`" in problem
    path.write_text(
        json.dumps(
            {
                "builders": [
                    builder(vpc_id="vpc-0123456789abcdef0", subnet_id="subnet-0123456789abcdef0")
                ]
            }
        )
    )
    load(path)


async def test_no_default_vpc_says_to_set_a_subnet(realistic: Harness) -> None:
    cloud = realistic.cloud
    cloud.set_default_vpc(False, "us-east-1")
    try:
        template = realistic.template({"builders": [builder()]})
        (result,) = await realistic.build(template)
    finally:
        cloud.set_default_vpc(True, "us-east-1")
    assert result.status == "failed"
    assert result.error is not None and "\n" not in result.error
    assert "has no default VPC: set subnet_id or subnet_filter" in result.error
    assert realistic.leftovers(result.build_id) == {}
