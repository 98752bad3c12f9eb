"""Run options (issue 12) carried out against the local cloud: real boto3 over HTTP.

What the cloud was asked is recorded with botocore's own ``provide-client-params`` event on the
engine's clients (the parameters exactly as sent); what the cloud holds is read back through
boto3. Packer's behaviour comes from packer-plugin-amazon builder/common: run_config.go,
step_run_source_instance.go, step_iam_instance_profile.go, step_security_group.go.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amibake.core.aws import Aws
from amibake.core.engine.build import BuildResult, planned_steps, run_builds, select_builders
from amibake.core.engine.context import TAG_BUILD_ID, TAG_CREATED_AT
from amibake.core.engine.steps.communicator import NO_COMMUNICATOR
from amibake.core.events import Event, ResourceChanged, StepStarted
from amibake.core.local.cloud import LocalCloud
from amibake.core.sweep import Sweeper
from amibake.core.templates import load
from tests.engine.test_build import Harness, builder, harness, restore_cloud, shell

__all__ = ["harness", "restore_cloud"]

LICENSE = (
    "arn:aws:license-manager:us-east-1:123456789012:license-configuration:"
    "lic-0123456789abcdef0123456789abcdef"
)
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
}


class Recorder:
    """The parameters of each call the engine's boto3 clients send (botocore's event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def attach(self, aws: Aws, service: str, region: str = "us-east-1") -> None:
        client = aws.client(service, region)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append((model.name, json.loads(json.dumps(params, default=str))))

        client.meta.events.register(f"provide-client-params.{service}.*", record)

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [p for name, p in self.calls if name == operation]


async def build(
    harness: Harness,
    template: dict[str, Any],
    recorder: Recorder,
    on_event: Callable[[Event], None] | None = None,
) -> BuildResult:
    spec = load(harness.template(template))
    options = harness.options()
    aws = Aws(options.target)
    recorder.attach(aws, "ec2")
    recorder.attach(aws, "iam")

    def emit(event: Event) -> None:
        json.loads(event.to_json())
        harness.events.append(event)
        if on_event is not None:
            on_event(event)

    try:
        (result,) = await run_builds(spec, select_builders(spec), aws, options, emit)
    finally:
        aws.close()
    return result


def running_instance(ec2: Any, key: str, value: str) -> tuple[dict[str, Any], list[Any]]:
    """The one running instance tagged ``key=value`` (a build's, while it runs) and its
    volumes, as the cloud describes them."""
    (reservation,) = ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{key}", "Values": [value]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    instance = reservation["Instances"][0]
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    return instance, volumes


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def iam_leftovers(cloud: LocalCloud, build_id: str) -> list[str]:
    iam = cloud.client("iam", "us-east-1")
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    profiles = [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]]
    return [n for n in roles + profiles if build_id in n]


async def test_one_build_carries_out_the_run_options(harness: Harness) -> None:
    template = {
        "builders": [
            builder(
                communicator="none",
                ssh_username=None,
                instance_type="t3.micro",
                availability_zone="us-east-1b",
                ebs_optimized=True,
                metadata_options={
                    "http_tokens": "required",
                    "http_put_response_hop_limit": 2,
                    "instance_metadata_tags": "enabled",
                },
                placement={"tenancy": "dedicated"},
                run_tags={"Team": "bakers"},
                run_volume_tags={"Disk": "{{ .SourceAMI }}"},
                no_ephemeral=True,
                enable_t2_unlimited=True,
                capacity_reservation_preference="open",
                license_specifications=[
                    {"license_configuration_request": {"license_configuration_arn": LICENSE}}
                ],
                temporary_iam_instance_profile_policy_document=POLICY,
            )
        ]
    }
    del template["builders"][0]["ssh_username"]
    recorder = Recorder()
    seen: dict[str, Any] = {}
    cloud = harness.cloud

    def on_event(event: Event) -> None:
        # While the instance runs: what the cloud holds for it and its temporary profile.
        if isinstance(event, StepStarted) and event.step == "stop" and not seen:
            ec2, iam = cloud.client("ec2"), cloud.client("iam")
            instance_id = recorder.params("TerminateInstances") or None
            assert instance_id is None
            seen["instance"], seen["volumes"] = running_instance(ec2, "Team", "bakers")
            profile = seen["instance"]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
            seen["profile"] = iam.get_instance_profile(InstanceProfileName=profile)
            seen["policy"] = iam.get_role_policy(RoleName=profile, PolicyName=profile)

    result = await build(harness, template, recorder, on_event)
    assert result.status == "succeeded", result.error

    # communicator none: no key pair, no connection, a group without an SSH rule
    steps = [e.step for e in harness.events if isinstance(e, StepStarted)]
    assert "ssh" not in steps
    assert not recorder.params("ImportKeyPair")
    assert not recorder.params("AuthorizeSecurityGroupIngress")
    assert len(recorder.params("CreateSecurityGroup")) == 1

    (run,) = recorder.params("RunInstances")
    assert "KeyName" not in run
    assert run["EbsOptimized"] is True
    assert run["Placement"] == {"AvailabilityZone": "us-east-1b", "Tenancy": "dedicated"}
    assert run["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 2,
        "InstanceMetadataTags": "enabled",
    }
    assert run["CreditSpecification"] == {"CpuCredits": "unlimited"}
    assert run["EnclaveOptions"] == {"Enabled": False}
    assert run["CapacityReservationSpecification"] == {"CapacityReservationPreference": "open"}
    assert run["LicenseSpecifications"] == [{"LicenseConfigurationArn": LICENSE}]
    assert run["IamInstanceProfile"] == {"Name": f"amibake_{result.build_id}"}
    no_devices = [m["DeviceName"] for m in run["BlockDeviceMappings"] if "NoDevice" in m]
    assert no_devices == [f"xvdc{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    by_type = {s["ResourceType"]: tags_of(s) for s in run["TagSpecifications"]}
    assert by_type["network-interface"]["Team"] == "bakers"
    assert by_type["volume"]["Disk"].startswith("ami-")
    assert "Team" not in by_type["volume"]

    # what the cloud held while the instance ran
    instance = seen["instance"]
    assert instance["EbsOptimized"] is True
    assert instance["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert instance["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert all(tags_of(v)["Disk"].startswith("ami-") for v in seen["volumes"])
    roles = seen["profile"]["InstanceProfile"]["Roles"]
    assert [r["RoleName"] for r in roles] == [f"amibake_{result.build_id}"]
    assert "ec2.amazonaws.com" in json.dumps(roles[0]["AssumeRolePolicyDocument"])
    document = seen["policy"]["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == POLICY
    (created,) = recorder.params("CreateRole")
    assert tags_of(created)["Team"] == "bakers"
    assert tags_of(created)[TAG_BUILD_ID] == result.build_id

    # cleanup in order, nothing left (the AMI and its snapshot are the artifacts)
    iam_calls = [
        name
        for name, _ in recorder.calls
        if name
        in (
            "RemoveRoleFromInstanceProfile",
            "DeleteRolePolicy",
            "DeleteRole",
            "DeleteInstanceProfile",
            "TerminateInstances",
        )
    ]
    assert iam_calls.index("TerminateInstances") < iam_calls.index("DeleteRole")
    assert iam_calls.index("DeleteRole") < iam_calls.index("DeleteInstanceProfile")
    assert iam_leftovers(harness.cloud, result.build_id) == []
    left = harness.leftovers(result.build_id)
    assert set(left) <= {"images", "snapshots"}
    for kind in ("role", "instance-profile"):
        states = [
            e.state for e in harness.events if isinstance(e, ResourceChanged) and e.kind == kind
        ]
        assert states == ["creating", "created", "deleting", "deleted"]


async def test_communicator_none_with_provisioners_fails_before_creating_anything(
    harness: Harness,
) -> None:
    template = {"builders": [builder(communicator="none")], "provisioners": [shell("true")]}
    del template["builders"][0]["ssh_username"]
    recorder = Recorder()
    result = await build(harness, template, recorder)
    assert result.status == "failed"
    assert result.error == NO_COMMUNICATOR
    created = [n for n, _ in recorder.calls if n.startswith(("Create", "Run", "Import"))]
    assert created == []


async def test_the_instance_profile_must_exist_unless_validation_is_skipped(
    harness: Harness, cloud: LocalCloud
) -> None:
    # Packer's StepIamInstanceProfile asks GetInstanceProfile before anything is created.
    name = f"missing-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    missing = await build(harness, {"builders": [builder(iam_instance_profile=name)]}, recorder)
    assert missing.status == "failed"
    assert missing.error is not None and f"couldn't find the instance profile '{name}'" in (
        missing.error
    )
    assert [p["InstanceProfileName"] for p in recorder.params("GetInstanceProfile")] == [name]
    assert not [n for n, _ in recorder.calls if n.startswith(("Create", "Run"))]

    cloud.client("iam", "us-east-1").create_instance_profile(InstanceProfileName=name)
    skipped = Recorder()
    found = await build(
        harness,
        {"builders": [builder(iam_instance_profile=name, skip_profile_validation=True)]},
        skipped,
    )
    assert found.status == "succeeded", found.error
    assert skipped.params("GetInstanceProfile") == []
    (launch,) = skipped.params("RunInstances")
    assert launch["IamInstanceProfile"] == {"Name": name}


def test_the_plan_skips_ssh_steps_with_communicator_none(tmp_path: Path) -> None:
    body = builder(communicator="none")
    del body["ssh_username"]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [body]}))
    spec = load(path)
    names = [name for name, _ in planned_steps(spec, spec.builders[0])]
    assert "ssh" not in names and "communicator" not in names
    assert "iam-profile" not in names  # no policy document


async def test_sweep_finds_and_deletes_temporary_iam_resources(
    cloud: LocalCloud, harness: Harness
) -> None:
    build_id = f"20240101-000000-{uuid.uuid4().hex[:6]}"
    name = f"amibake_{build_id}"
    tags = [
        {"Key": TAG_BUILD_ID, "Value": build_id},
        {"Key": TAG_CREATED_AT, "Value": "2024-01-01T00:00:00Z"},
    ]
    iam = cloud.client("iam", "us-east-1")
    iam.create_instance_profile(InstanceProfileName=name, Tags=tags)
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(POLICY),
        Tags=tags,
    )
    iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(POLICY))
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    # someone else's role with a similar name but no amibake tag is left alone
    other = f"amibake_other_{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=other, AssumeRolePolicyDocument=json.dumps(POLICY))
    aws = Aws(harness.options().target)
    try:
        report = await Sweeper(aws, build_id=build_id).sweep(["us-east-1", "eu-west-1"])
    finally:
        aws.close()
    assert sorted((o.kind, o.resource_id) for o in report.deleted) == [
        ("instance-profile", name),
        ("role", name),
    ]
    assert iam_leftovers(cloud, build_id) == []
    assert other in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    iam.delete_role(RoleName=other)


@pytest.mark.parametrize("endpoint", ["disabled"])
def test_metadata_endpoint_disabled_is_sent(endpoint: str, tmp_path: Path) -> None:
    from amibake.core.engine.steps.instance import run_option_parameters

    body = builder(metadata_options={"http_endpoint": endpoint}, instance_type="m5.large")
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [body]}))
    spec = load(path)

    class Ctx:
        builder = spec.builders[0]

    params = run_option_parameters(Ctx())  # type: ignore[arg-type]
    assert params["MetadataOptions"] == {"HttpEndpoint": "disabled"}
    assert "CreditSpecification" not in params  # m5 is not burstable
    assert params["CapacityReservationSpecification"] == {"CapacityReservationPreference": "none"}
