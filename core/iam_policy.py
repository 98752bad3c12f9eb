"""The IAM policy amibake needs: one table of the AWS actions the engine calls (issue 10).

``amibake iam-policy`` prints :func:`policy_document` and the README carries it. A test
records the calls a real build makes on the local cloud and checks each is in the table, and
another builds with exactly this policy enforced by the local cloud
(:class:`amibake.core.local.gateway.Gateway`).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["ACTIONS", "Action", "actions_for", "evaluate", "policy_document", "policy_json"]


@dataclass(frozen=True)
class Action:
    """One IAM action: ``service:Name``, the statement (feature) it belongs to, and why."""

    name: str
    feature: str
    why: str


_BUILD = "Build"
_SPOT = "SpotInstances"
_PROFILE = "TemporaryInstanceProfile"
_SSM = "SessionManager"
_DATA = "DataSources"
_AMI_MANAGEMENT = "AmiManagement"

#: Every AWS action the engine, the sweep and the data sources call.
ACTIONS: tuple[Action, ...] = (
    # -- a plain build: credentials, region, source AMI, key pair, group, instance, AMI
    Action("sts:GetCallerIdentity", _BUILD, "the account the build runs in"),
    Action("ec2:DescribeRegions", _BUILD, "validate the region and ami_regions"),
    Action("ec2:DescribeImages", _BUILD, "source_ami(_filter), name conflicts, wait for AMIs"),
    Action("ec2:DescribeInstances", _BUILD, "wait for the instance; find it after a cancel"),
    Action("ec2:DescribeSnapshots", _BUILD, "the AMI's snapshots (tags, cleanup)"),
    Action("ec2:DescribeVolumes", _BUILD, "volumes the instance leaves behind"),
    Action("ec2:DescribeKeyPairs", _BUILD, "find a temporary key pair after a cancel"),
    Action("ec2:DescribeSecurityGroups", _BUILD, "security_group_filter; find the group"),
    Action("ec2:DescribeSubnets", _BUILD, "subnet_filter; the subnet's VPC, zone and CIDR"),
    Action("ec2:DescribeVpcs", _BUILD, "vpc_filter; the default VPC and its CIDR"),
    Action(
        "ec2:DescribeInstanceTypeOfferings",
        _BUILD,
        "associate_public_ip_address without a subnet: zones offering the instance type",
    ),
    Action(
        "ec2:DescribeLaunchTemplates",
        _BUILD,
        "a spot build's launch template after a cancel; AMIs they use (amazon-ami-management)",
    ),
    Action("ec2:ImportKeyPair", _BUILD, "the temporary key pair (generated here)"),
    Action("ec2:DeleteKeyPair", _BUILD, "remove the temporary key pair"),
    Action("ec2:CreateSecurityGroup", _BUILD, "the temporary security group"),
    Action("ec2:AuthorizeSecurityGroupIngress", _BUILD, "its SSH rule"),
    Action("ec2:DeleteSecurityGroup", _BUILD, "remove the temporary security group"),
    Action("ec2:RunInstances", _BUILD, "launch the temporary instance"),
    Action("ec2:GetConsoleOutput", _BUILD, "verify the SSH host key (optional: warns)"),
    Action("ec2:StopInstances", _BUILD, "stop the instance before the image"),
    Action("ec2:TerminateInstances", _BUILD, "remove the temporary instance"),
    Action("ec2:ModifyInstanceAttribute", _BUILD, "ENA / SR-IOV before the image"),
    Action("ec2:CreateImage", _BUILD, "the AMI"),
    Action("ec2:CopyImage", _BUILD, "ami_regions, encrypt_boot"),
    Action("ec2:DeregisterImage", _BUILD, "force_deregister; cleanup of a failed build"),
    Action("ec2:DeleteSnapshot", _BUILD, "force_delete_snapshot; cleanup"),
    Action("ec2:DeleteVolume", _BUILD, "volumes the instance leaves behind"),
    Action("ec2:CreateTags", _BUILD, "tags of every resource"),
    Action("ec2:ModifyImageAttribute", _BUILD, "ami_users, ami_groups, ami_org_arns"),
    Action("ec2:ModifySnapshotAttribute", _BUILD, "snapshot_users, snapshot_groups"),
    Action("ec2:EnableImageDeprecation", _BUILD, "deprecate_at"),
    Action("ec2:EnableImageDeregistrationProtection", _BUILD, "deregistration_protection"),
    Action("ec2:DisableImageDeregistrationProtection", _BUILD, "force_deregister, protected AMI"),
    Action("iam:PassRole", _BUILD, "iam_instance_profile (the instance's role)"),
    Action("iam:GetInstanceProfile", _BUILD, "validate iam_instance_profile"),
    # -- spot_price / spot_instance_types: a launch template and a fleet
    Action("ec2:CreateLaunchTemplate", _SPOT, "the temporary launch template"),
    Action("ec2:DeleteLaunchTemplate", _SPOT, "remove it"),
    Action("ec2:CreateFleet", _SPOT, "the spot request"),
    Action("ec2:DescribeFleets", _SPOT, "the fleet's instance"),
    Action("ec2:DeleteFleets", _SPOT, "remove the fleet"),
    # -- temporary_iam_instance_profile_policy_document
    Action("iam:CreateRole", _PROFILE, "the temporary role"),
    Action("iam:GetRole", _PROFILE, "wait for it"),
    Action("iam:PutRolePolicy", _PROFILE, "its policy document"),
    Action("iam:DeleteRolePolicy", _PROFILE, "cleanup"),
    Action("iam:DeleteRole", _PROFILE, "cleanup"),
    Action("iam:ListRolePolicies", _PROFILE, "cleanup / sweep"),
    Action("iam:ListRoles", _PROFILE, "sweep"),
    Action("iam:CreateInstanceProfile", _PROFILE, "the temporary instance profile"),
    Action("iam:AddRoleToInstanceProfile", _PROFILE, "its role"),
    Action("iam:RemoveRoleFromInstanceProfile", _PROFILE, "cleanup"),
    Action("iam:DeleteInstanceProfile", _PROFILE, "cleanup"),
    Action("iam:ListInstanceProfiles", _PROFILE, "sweep"),
    Action("iam:ListInstanceProfilesForRole", _PROFILE, "cleanup / sweep"),
    # -- ssh_interface = "session_manager"
    Action("ssm:StartSession", _SSM, "the port-forwarding session"),
    Action("ssm:TerminateSession", _SSM, "end it"),
    # -- data sources (amazon-ami, amazon-parameterstore, amazon-secretsmanager)
    Action("ssm:GetParameter", _DATA, "amazon-parameterstore"),
    Action("secretsmanager:GetSecretValue", _DATA, "amazon-secretsmanager"),
    Action("sts:AssumeRole", _DATA, "assume_role (a policy of the role's trust, not this one)"),
    Action("sts:DecodeAuthorizationMessage", _DATA, "decode an encoded authorization failure"),
    # -- the amazon-ami-management post-processor (DescribeImages, DeregisterImage and
    #    DeleteSnapshot are the build's): which of the old AMIs are still in use
    Action("ec2:DescribeLaunchTemplateVersions", _AMI_MANAGEMENT, "their versions' AMIs"),
    Action("autoscaling:DescribeLaunchConfigurations", _AMI_MANAGEMENT, "AMIs they use"),
    Action("ssm:GetParameters", _AMI_MANAGEMENT, "resolve_aliases: resolve:ssm: image aliases"),
)

FEATURES = (_BUILD, _SPOT, _PROFILE, _SSM, _DATA, _AMI_MANAGEMENT)


def actions_for(features: tuple[str, ...] = FEATURES) -> list[str]:
    """The actions of the given features, in the table's order."""
    return [a.name for a in ACTIONS if a.feature in features]


def policy_document(features: tuple[str, ...] = FEATURES) -> dict[str, Any]:
    """The identity policy amibake needs: one statement per feature (``Resource: *``, as
    EC2's describe calls and the create calls with tags cannot be scoped further)."""
    statements = []
    for feature in features:
        names = actions_for((feature,))
        if names:
            statements.append(
                {
                    "Sid": f"Amibake{feature}",
                    "Effect": "Allow",
                    "Action": names,
                    "Resource": "*",
                }
            )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(features: tuple[str, ...] = FEATURES) -> str:
    return json.dumps(policy_document(features), indent=2) + "\n"


def evaluate(document: dict[str, Any], action: str) -> bool:
    """Does an identity policy allow ``action`` (``service:Name``)? An explicit Deny wins;
    no matching Allow is an implicit deny. Resources and conditions are not evaluated."""
    allowed = False
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        patterns = statement.get("Action", [])
        if isinstance(patterns, str):
            patterns = [patterns]
        if "NotAction" in statement:
            excluded = statement["NotAction"]
            excluded = [excluded] if isinstance(excluded, str) else excluded
            matches = not _matches(excluded, action)
        else:
            matches = _matches(patterns, action)
        if not matches:
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _matches(patterns: list[str], action: str) -> bool:
    wanted = action.lower()
    return any(fnmatch.fnmatchcase(wanted, p.lower()) for p in patterns)
