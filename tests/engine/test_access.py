"""The access options (issue 12) against the local cloud: real boto3 over HTTP.

What the cloud saw comes from its request log (``GET /_amibake/requests``): which
access key signed each request, on which host, and the parameters of each STS call.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Aws, AwsError, Target
from amibake.core.datasources_aws import AwsResolver
from amibake.core.engine.build import run_builds, select_builders
from amibake.core.engine.context import BuildOptions
from amibake.core.events import Event
from amibake.core.ledger import Ledger
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.local.faults import FaultPlan, FaultRule
from amibake.core.templates import load

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
ACCESS_KEY = "AKIATEMPLATEKEY0001"
SECRET_KEY = "tmpl/Secret+Key-value-0001"
TOKEN = "template-session-token-0001"
PROFILE_KEY = "AKIAPROFILEKEY00002"
PROFILE_SECRET = "profile/Secret+Key-0002"
ROLE = "arn:aws:iam::111122223333:role/packer-builder"


def requests_seen(cloud: LocalCloud) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{cloud.endpoint_url}/_amibake/requests", timeout=10) as answer:
        return list(json.loads(answer.read())["requests"])


def forget_requests(cloud: LocalCloud) -> None:
    request = urllib.request.Request(f"{cloud.endpoint_url}/_amibake/requests", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def local(cloud: LocalCloud) -> Iterator[LocalCloud]:
    cloud.set_latency("instant")
    cloud.set_faults(FaultPlan())
    forget_requests(cloud)
    yield cloud
    cloud.set_faults(FaultPlan())


def builder(name: str, **options: Any) -> dict[str, Any]:
    return {
        "type": "amazon-ebs",
        "name": name,
        "region": "us-east-1",
        "instance_type": "t3.micro",
        "ssh_username": "ubuntu",
        "source_ami_filter": {
            "filters": {"name": FOCAL},
            "owners": ["099720109477"],
            "most_recent": True,
        },
        "ami_name": f"access-{name}-{uuid.uuid4().hex[:8]}",
        **options,
    }


def base_target(cloud: LocalCloud, host: str = "localhost") -> Target:
    """The user's target: the local cloud, reached as ``host`` (STS and, unless the
    template says otherwise, EC2)."""
    port = cloud.endpoint_url.rsplit(":", 1)[1]
    return Target(
        endpoint_url=f"http://{host}:{port}",
        access_key_id=FAKE_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )


async def test_template_keys_role_profile_endpoint_and_retries_reach_the_cloud(
    local: LocalCloud, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[builder]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {PROFILE_SECRET}\n"
    )
    ec2_endpoint = local.endpoint_url  # http://127.0.0.1:PORT; the target says localhost
    template = tmp_path / "access.json"
    template.write_text(
        json.dumps(
            {
                "builders": [
                    builder(
                        "keys",
                        access_key=ACCESS_KEY,
                        secret_key=SECRET_KEY,
                        token=TOKEN,
                        assume_role={
                            "role_arn": ROLE,
                            "session_name": "packer-session",
                            "external_id": "ext-42",
                            "duration_seconds": 1800,
                            "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                            "tags": {"team": "images"},
                            "transitive_tag_keys": ["team"],
                        },
                        custom_endpoint_ec2=ec2_endpoint,
                        max_retries=2,
                    ),
                    builder(
                        "profile",
                        profile="builder",
                        shared_credentials_file=str(credentials),
                        skip_region_validation=True,
                        skip_credential_validation=True,
                    ),
                ],
                "provisioners": [
                    {"type": "shell", "inline": [f"echo the key is {SECRET_KEY} and {TOKEN}"]}
                ],
            }
        )
    )
    spec = load(template)
    assert {SECRET_KEY, TOKEN, ACCESS_KEY} <= spec.sensitive_values
    # Two throttled DescribeRegions: max_retries = 2 gives the third attempt its chance.
    local.set_faults(
        FaultPlan(
            rules=(FaultRule(operation="DescribeRegions", error="RequestLimitExceeded", times=2),)
        )
    )
    target = base_target(local)
    options = BuildOptions(target=target, ssh_port=local.ssh_port, console_wait=5.0)
    events: list[Event] = []
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    aws = Aws(target)
    try:
        results = await run_builds(
            spec, select_builders(spec), aws, options, events.append, ledger=ledger
        )
    finally:
        aws.close()
    by_name = {r.name: r for r in results}
    assert {r.status for r in results} == {"succeeded"}, [r.error for r in results]
    seen = requests_seen(local)

    # assume_role: the AssumeRole the cloud answered, signed with the template's keys
    (assume,) = [r for r in seen if r["action"] == "AssumeRole"]
    assert assume["access_key_id"] == ACCESS_KEY and assume["session_token"]
    assert assume["host"].startswith("localhost:")  # STS stays on the target's endpoint
    assert assume["params"] == {
        "RoleArn": ROLE,
        "RoleSessionName": "packer-session",
        "ExternalId": "ext-42",
        "DurationSeconds": "1800",
        "PolicyArns.member.1.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "Tags.member.1.Key": "team",
        "Tags.member.1.Value": "images",
        "TransitiveTagKeys.member.1": "team",
    }
    keys_build = by_name["keys"].build_id
    profile_build = by_name["profile"].build_id
    ec2_keys = {r["access_key_id"] for r in seen if r["service"] == "ec2" and r["session_token"]}
    # EC2 went through the role's temporary keys, to custom_endpoint_ec2 only
    (role_key,) = ec2_keys
    assert role_key not in (ACCESS_KEY, FAKE_ACCESS_KEY, PROFILE_KEY)
    role_requests = [r for r in seen if r["access_key_id"] == role_key]
    assert {r["host"] for r in role_requests if r["service"] == "ec2"} == {
        ec2_endpoint.split("//")[1]
    }
    (identity,) = [r for r in role_requests if r["service"] == "sts"]  # credential validation
    assert identity["action"] == "GetCallerIdentity" and identity["host"].startswith("localhost:")
    assert {"RunInstances", "CreateImage"} <= {r["action"] for r in role_requests}
    # max_retries = 2: three DescribeRegions attempts for the role's build
    assert [r["action"] for r in role_requests].count("DescribeRegions") == 3
    # the profile from the shared credentials file signed the other build, which skipped
    # GetCallerIdentity and DescribeRegions (skip_credential/region_validation)
    profile_requests = [r for r in seen if r["access_key_id"] == PROFILE_KEY]
    assert {"RunInstances", "CreateImage"} <= {r["action"] for r in profile_requests}
    assert not {"GetCallerIdentity", "DescribeRegions"} & {r["action"] for r in profile_requests}
    assert not [r for r in seen if r["access_key_id"] == FAKE_ACCESS_KEY and r["service"] == "ec2"]

    # the AMIs are in the cloud's one account, whatever signed the requests
    ec2 = local.client("ec2", "us-east-1")
    for result in results:
        (image,) = ec2.describe_images(ImageIds=[result.artifacts["us-east-1"]])["Images"]
        assert image["OwnerId"] == local.account_id

    # the ledger knows where each build ran, never a secret
    assert ledger.build(keys_build).target == {  # type: ignore[union-attr]
        "profile": None,
        "endpoint_url": ec2_endpoint,
        "credentials": "template",
        "role_arn": ROLE,
    }
    assert ledger.build(profile_build).target == {  # type: ignore[union-attr]
        "profile": None,  # a loopback cloud: the user's target, one account
        "endpoint_url": target.endpoint_url,
    }
    ledger.close()
    stored = (tmp_path / "ledger.sqlite3").read_bytes()
    text = "\n".join(e.to_json() for e in events)
    for secret in (SECRET_KEY, TOKEN, ACCESS_KEY, PROFILE_SECRET):
        assert secret.encode() not in stored
        assert secret not in text
    assert "the key is <sensitive> and <sensitive>" in text


async def test_decode_authorization_messages_asks_sts(local: LocalCloud) -> None:
    document = {"allowed": False, "context": {"action": "ec2:RunInstances"}}
    encoded = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
    message = (
        "You are not authorized to perform this operation. "
        f"Encoded authorization failure message: {encoded}"
    )
    rule = FaultRule(operation="DescribeRegions", error="UnauthorizedOperation", message=message)
    local.set_faults(FaultPlan(rules=(rule,)))
    plain = Aws(base_target(local, "127.0.0.1"))
    decoding = Aws(
        Target(
            endpoint_url=local.endpoint_url,
            access_key_id=FAKE_ACCESS_KEY,
            secret_access_key=FAKE_SECRET_KEY,
            decode_authorization_messages=True,
        )
    )
    try:
        with pytest.raises(AwsError) as undecoded:
            await plain.call("us-east-1", "DescribeRegions")
        with pytest.raises(AwsError) as decoded:
            await decoding.call("us-east-1", "DescribeRegions")
    finally:
        plain.close()
        decoding.close()
    assert encoded in str(undecoded.value)
    assert decoded.value.code == "UnauthorizedOperation"
    assert str(decoded.value) == (
        "DescribeRegions: UnauthorizedOperation: You are not authorized to perform this "
        f"operation. Authorization failure message: '{json.dumps(document)}'"
    )
    (decode,) = [r for r in requests_seen(local) if r["action"] == "DecodeAuthorizationMessage"]
    assert decode["params"] == {"EncodedMessage": encoded}


def test_max_retries_and_tls_reach_botocore_config(local: LocalCloud) -> None:
    aws = Aws(Target(endpoint_url=local.endpoint_url, max_retries=4, verify_tls=False))
    try:
        client = aws.client("ec2", "us-east-1")
        assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 5}
        assert client._endpoint.http_session._verify is False
    finally:
        aws.close()


def test_a_data_source_uses_its_own_credentials(local: LocalCloud, tmp_path: Path) -> None:
    template = tmp_path / "ds.pkr.hcl"
    template.write_text(
        f"""
data "amazon-ami" "focal" {{
  filters = {{ name = "{FOCAL}" }}
  owners = ["099720109477"]
  most_recent = true
  access_key = "{ACCESS_KEY}"
  secret_key = "{SECRET_KEY}"
}}
source "amazon-ebs" "x" {{
  region = "us-east-1"
  instance_type = "t3.micro"
  ssh_username = "ubuntu"
  source_ami = data.amazon-ami.focal.id
  ami_name = "ds-access"
}}
build {{ sources = ["source.amazon-ebs.x"] }}
"""
    )
    resolver = AwsResolver(base_target(local, "127.0.0.1"), "us-east-1", local=True)
    try:
        spec = load(template, datasources=resolver)
    finally:
        resolver.close()
    assert spec.builders[0].source_ami.startswith("ami-")
    assert SECRET_KEY in spec.sensitive_values
    (describe,) = [r for r in requests_seen(local) if r["action"] == "DescribeImages"]
    assert describe["access_key_id"] == ACCESS_KEY


def test_cli_build_with_template_keys_keeps_them_out_of_every_record(tmp_path: Path) -> None:
    """`amibake build --local --json` and `amibake inspect`: the template's keys are in no
    event, no history file, not in the ledger and not in inspect's output."""
    template = tmp_path / "keys.json"
    template.write_text(
        json.dumps(
            {
                "builders": [
                    builder(
                        "cli",
                        access_key=ACCESS_KEY,
                        secret_key=SECRET_KEY,
                        token=TOKEN,
                        assume_role={"role_arn": ROLE, "session_name": "cli"},
                    )
                ],
                "provisioners": [{"type": "shell", "inline": [f"echo {SECRET_KEY}"]}],
            }
        )
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AMIBAKE_HOME"] = str(home)
    command = [sys.executable, "-m", "amibake.tui"]
    build = subprocess.run(
        [*command, "build", "--local", "--latency", "instant", "--json", str(template)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    inspect = subprocess.run(
        [*command, "inspect", str(template)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inspect.returncode == 0, inspect.stderr
    events = [json.loads(line) for line in build.stdout.splitlines()]
    assert events[-1]["type"] == "build_finished" and events[-1]["status"] == "succeeded"
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite3" for p in files)
    assert any(p.name == "events.ndjson" for p in files)
    for secret in (SECRET_KEY, TOKEN, ACCESS_KEY):
        assert secret not in build.stdout and secret not in build.stderr
        assert secret not in inspect.stdout and secret not in inspect.stderr
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


async def test_mfa_code_answers_the_profiles_mfa_serial(
    local: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mfa_code`` is the code a profile's ``mfa_serial`` asks for when that profile assumes
    a role (Packer's AssumeRoleTokenProvider): STS sees the device and the code, and the
    build runs on the role's keys. The role is assumed at the target's STS endpoint."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    serial = "arn:aws:iam::111122223333:mfa/builder"
    config = tmp_path / "config"
    config.write_text(
        "[profile mfa]\n"
        f"role_arn = {ROLE}\nsource_profile = base\nmfa_serial = {serial}\n"
        "role_session_name = mfa-session\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[base]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {PROFILE_SECRET}\n"
    )
    template = tmp_path / "mfa.json"
    template.write_text(
        json.dumps(
            {
                "builders": [
                    builder(
                        "mfa",
                        profile="mfa",
                        shared_credentials_file=str(credentials),
                        mfa_code="246810",
                        communicator="none",
                    )
                ]
            }
        )
    )
    spec = load(template)
    assert "246810" in spec.sensitive_values
    target = base_target(local)
    options = BuildOptions(target=target, ssh_port=local.ssh_port, console_wait=5.0)
    events: list[Event] = []
    aws = Aws(target)
    try:
        (result,) = await run_builds(spec, select_builders(spec), aws, options, events.append)
    finally:
        aws.close()
    assert result.status == "succeeded", result.error
    seen = requests_seen(local)
    (assume,) = [r for r in seen if r["action"] == "AssumeRole"]
    # signed by the source profile's keys, at the target's endpoint, with the device and code
    assert assume["access_key_id"] == PROFILE_KEY
    assert assume["host"].startswith("localhost:")
    assert assume["params"]["SerialNumber"] == serial
    assert assume["params"]["TokenCode"] == "246810"
    assert assume["params"]["RoleArn"] == ROLE
    assert assume["params"]["RoleSessionName"] == "mfa-session"
    # the build itself ran on the role's temporary keys
    role_keys = {r["access_key_id"] for r in seen if r["service"] == "ec2" and r["session_token"]}
    (role_key,) = role_keys
    assert role_key not in (PROFILE_KEY, FAKE_ACCESS_KEY)
    actions = {r["action"] for r in seen if r["access_key_id"] == role_key}
    assert {"RunInstances", "CreateImage"} <= actions
    assert not [r for r in seen if r["access_key_id"] == PROFILE_KEY and r["service"] == "ec2"]
    assert "246810" not in "\n".join(e.to_json() for e in events)
