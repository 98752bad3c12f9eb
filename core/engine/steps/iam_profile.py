"""The temporary IAM instance profile of ``temporary_iam_instance_profile_policy_document``.

As Packer's StepIamInstanceProfile: an instance profile and a role (trusted by EC2) named
alike, the policy document as the role's inline policy, the role added to the profile.
Cleanup undoes it in reverse: remove the role from the profile, delete the inline policy,
the role, then the profile. Every create is journaled first, and everything carries
amibake's tags, so a sweep finds what a killed build left.
"""

from __future__ import annotations

import json
from typing import Any

from amibake.core.aws import AwsError
from amibake.core.engine.context import BuildContext
from amibake.core.engine.retry import CreateCall
from amibake.core.engine.runner import Step
from amibake.core.model import PolicyDocument

#: IAM is global: its calls go through the build region's endpoint.
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
_PROFILE_ATTRIBUTE = "_amibake_temporary_instance_profile"


def instance_profile_name(ctx: BuildContext) -> str | None:
    """The profile the instance launches with: the template's, else the temporary one."""
    return ctx.builder.iam_instance_profile or getattr(ctx, _PROFILE_ATTRIBUTE, None)


def policy_json(document: PolicyDocument) -> str:
    """The document as IAM takes it (Packer marshals the same Version/Statement shape)."""
    return json.dumps(
        {
            "Version": document.version,
            "Statement": [
                {"Effect": s.effect, "Action": list(s.action), "Resource": list(s.resource)}
                for s in document.statements
            ],
        }
    )


class IamInstanceProfileStep(Step):
    name = "iam-profile"
    title = "Creating a temporary IAM instance profile"

    def __init__(self) -> None:
        self.profile: str | None = None
        self.role: str | None = None
        self.policy: str | None = None
        self.attached = False

    def applies(self, ctx: BuildContext) -> bool:
        builder = ctx.builder
        return (
            builder.temporary_iam_instance_profile_policy_document is not None
            and not builder.iam_instance_profile
        )

    async def _iam(self, ctx: BuildContext, operation: str, **params: Any) -> dict[str, Any]:
        return await ctx.aws.service_call("iam", ctx.region, operation, **params)

    def _tags(self, ctx: BuildContext) -> list[dict[str, str]]:
        # Packer tags the profile and the role with run_tags; amibake adds its own.
        spec = ctx.tag_specification("iam", ctx.render_tags(ctx.builder.run_tags))
        return list(spec["Tags"])

    async def run(self, ctx: BuildContext) -> None:
        document = ctx.builder.temporary_iam_instance_profile_policy_document
        assert document is not None
        name = f"amibake_{ctx.build_id}"
        tags = self._tags(ctx)
        row = await ctx.intend("instance-profile", name)
        self.profile = name  # set before the call: a cancel in flight still deletes by name

        # Create calls run as CreateCalls: a cancel in flight waits for their answer before
        # cleanup deletes by name (a delete sent first would leave them behind; issue 10).
        async def create_profile(row: int | None = row) -> None:
            await self._iam(ctx, "CreateInstanceProfile", InstanceProfileName=name, Tags=tags)
            await ctx.created(row, "instance-profile", name)

        await CreateCall().send(create_profile())
        row = await ctx.intend("role", name)
        self.role = name

        async def create_role(row: int | None = row) -> None:
            await self._iam(
                ctx,
                "CreateRole",
                RoleName=name,
                Description="Temporary role for amibake",
                AssumeRolePolicyDocument=TRUST_POLICY,
                Tags=tags,
            )
            await ctx.created(row, "role", name)

        await CreateCall().send(create_role())
        self.policy = name
        await self._iam(
            ctx,
            "PutRolePolicy",
            RoleName=name,
            PolicyName=name,
            PolicyDocument=policy_json(document),
        )
        self.attached = True
        await self._iam(ctx, "AddRoleToInstanceProfile", InstanceProfileName=name, RoleName=name)
        setattr(ctx, _PROFILE_ATTRIBUTE, name)
        ctx.say(f"Temporary instance profile {name} with role {name} and its policy")

    async def cleanup(self, ctx: BuildContext) -> None:
        if self.profile is None and self.role is None:
            return
        if self.attached and self.profile and self.role:
            await self._quietly(
                ctx,
                "RemoveRoleFromInstanceProfile",
                InstanceProfileName=self.profile,
                RoleName=self.role,
            )
            self.attached = False
        if self.role is not None:
            ctx.resource("role", self.role, "deleting")
            await delete_role(ctx.aws, ctx.region, self.role)
            await ctx.deleted("role", self.role)
            self.role = self.policy = None
        if self.profile is not None:
            ctx.resource("instance-profile", self.profile, "deleting")
            await delete_instance_profile(ctx.aws, ctx.region, self.profile)
            await ctx.deleted("instance-profile", self.profile)
            self.profile = None

    async def _quietly(self, ctx: BuildContext, operation: str, **params: Any) -> None:
        try:
            await self._iam(ctx, operation, **params)
        except AwsError as error:
            if error.code != "NoSuchEntity":
                raise


async def delete_role(aws: Any, region: str, role: str) -> None:
    """Delete a role with what holds it: its inline policies and its instance profiles."""

    async def call(operation: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await aws.service_call("iam", region, operation, **params)
        return answer

    try:
        profiles = await call("ListInstanceProfilesForRole", RoleName=role)
        for profile in profiles.get("InstanceProfiles", []):
            await call(
                "RemoveRoleFromInstanceProfile",
                InstanceProfileName=profile["InstanceProfileName"],
                RoleName=role,
            )
        policies = await call("ListRolePolicies", RoleName=role)
        for policy in policies.get("PolicyNames", []):
            await call("DeleteRolePolicy", RoleName=role, PolicyName=policy)
        await call("DeleteRole", RoleName=role)
    except AwsError as error:
        if error.code != "NoSuchEntity":
            raise


async def delete_instance_profile(aws: Any, region: str, profile: str) -> None:
    """Delete an instance profile, first removing any role still in it."""
    try:
        found = await aws.service_call(
            "iam", region, "GetInstanceProfile", InstanceProfileName=profile
        )
        for role in found["InstanceProfile"].get("Roles", []):
            await aws.service_call(
                "iam",
                region,
                "RemoveRoleFromInstanceProfile",
                InstanceProfileName=profile,
                RoleName=role["RoleName"],
            )
        await aws.service_call("iam", region, "DeleteInstanceProfile", InstanceProfileName=profile)
    except AwsError as error:
        if error.code != "NoSuchEntity":
            raise
