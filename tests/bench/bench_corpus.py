"""How far each real-world template of ``../shared/corpus`` gets, on the local cloud.

Run with ``.venv/bin/python tests/bench/bench_corpus.py [NAME-PREFIX ...]`` (skips when the
corpus folder is absent). For every entry it prints one row:

* ``validate``: ``valid``, or the distinct "not supported yet" causes that stop it;
* ``build``: for a valid template, one builder of it built on the local cloud (``instant``
  profile), with the local cloud's own default VPC, subnet and security group given to its
  subnet/VPC/security-group variables: the last step reached and, when it failed, why
  (e.g. the first provisioner that needs root or the network, which the sandbox lacks).

The variables and companion files are those of ``tests/templates/test_corpus.py``. The table
is printed in Markdown, ready for the README.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, for tests.templates

from amibake.core.aws import Aws, Target
from amibake.core.engine.build import run_builds
from amibake.core.engine.context import BuildOptions
from amibake.core.events import Event, LogLines, StepFinished, StepStarted
from amibake.core.local.cloud import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, LocalCloud
from amibake.core.templates import TemplateError, load
from tests.templates.test_corpus import (
    CORPUS,
    ENV,
    NOT_SUPPORTED_YET,
    RUNS,
    corpus_entries,
    entry_path,
)

#: Variables that hold a subnet, VPC or security group id (not e.g. a source CIDR).
NETWORK_VARIABLE = re.compile(r"(subnet|vpc|security_group)(_ids?)?$", re.I)


def local_network_ids(cloud: LocalCloud, region: str) -> dict[str, str]:
    ec2 = cloud.client("ec2", region)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ][0]
    group = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]
    return {"vpc": vpc["VpcId"], "subnet": subnet["SubnetId"], "security_group": group["GroupId"]}


def local_value(name: str, ids: dict[str, str], type_: str | None = None) -> str | None:
    """The local cloud's id for a network variable; a list variable gets a one-id list (in
    the syntax ``--var`` takes for it, as ``packer build -var 'x=["sg-..."]'``)."""
    lowered = name.lower()
    for key in ("subnet", "vpc", "security_group"):
        if key in lowered:
            if type_ is not None and type_.replace(" ", "").startswith(("list(", "set(")):
                return json.dumps([ids[key]])
            return ids[key]
    return None


#: Entries whose source AMI comes from a variable: that variable gets an image of the local
#: catalogue like the one the authors build from (the newest match of (name pattern, owner)).
#: A variable that feeds ``source_ami_filter``'s name gets the image's name, else its id;
#: ``env:NAME`` is an environment variable the template reads with ``env``.
SOURCE_IMAGES: dict[str, dict[str, tuple[str, str, str]]] = {
    # Travis CI's worker and bastion images start from Ubuntu (trusty for the bastion: the
    # local catalogue's oldest Ubuntu is xenial, which stands in for it)
    "03-travis-packer-templates-worker.json": {
        "env:TRAVIS_WORKER_AMI": (
            "id",
            "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            "099720109477",
        ),
    },
    "04-travis-packer-templates-internal-bastion.json": {
        "env:UBUNTU_TRUSTY_AMI": (
            "id",
            "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            "099720109477",
        ),
    },
    # Shine Solutions' AEM images log in as ec2-user: Amazon Linux 2
    "11-packer-aem-generic.json": {
        "source_ami": ("id", "amzn2-ami-hvm-2.0.*-x86_64-gp2", "amazon"),
    },
    # rosco's multi-EBS template logs in as `ubuntu` (the bench's aws_ssh_username)
    "15-rosco-aws-multi-ebs.json": {
        "aws_source_ami": (
            "id",
            "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
            "099720109477",
        ),
    },
    # the ECS-optimized AL2 build filters owner "amazon" by the minimal AL2 image's name
    "30-amazon-ecs-ami": {
        "source_ami_al2": ("name", "amzn2-ami-minimal-hvm-2.0.*-x86_64-ebs", "amazon"),
    },
    # HashiCorp's c2m logs in as `admin`: a Debian image
    "50-hashicorp-c2m": {
        "aws_source_ami": ("id", "debian-12-amd64-*", "136693071363"),
    },
}


def ensure_instance_profile(cloud: LocalCloud, name: str | None) -> None:
    """The instance profile a template names, made in the local cloud's account when absent
    (the author's account has it; Packer, like amibake, checks that it exists)."""
    if not name or name.startswith("arn:"):
        return
    iam = cloud.client("iam", "us-east-1")
    try:
        iam.get_instance_profile(InstanceProfileName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_instance_profile(InstanceProfileName=name)


def local_source_images(cloud: LocalCloud, name: str, region: str) -> dict[str, str]:
    """The variables of :data:`SOURCE_IMAGES` for ``name``, from the local catalogue."""
    ec2 = cloud.client("ec2", region)
    values: dict[str, str] = {}
    for variable, (field, pattern, owner) in SOURCE_IMAGES.get(name, {}).items():
        images = ec2.describe_images(
            Owners=[owner], Filters=[{"Name": "name", "Values": [pattern]}]
        )["Images"]
        newest = max(images, key=lambda image: image["CreationDate"])
        values[variable] = newest["ImageId"] if field == "id" else newest["Name"]
    return values


def validate(
    name: str,
    scratch: Path,
    extra: dict[str, str] | None = None,
    cloud: Any = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Load the entry; with ``cloud``, its data sources run against the local cloud."""
    from amibake.core.datasources_aws import resolver_for

    var_files, variables = RUNS.get(name, ((), {}))
    resolver = resolver_for(local_cloud=cloud) if cloud is not None else None
    try:
        return load(
            entry_path(name, scratch),
            vars=list({**variables, **(extra or {})}.items()),
            var_files=[CORPUS / f for f in var_files],
            env={**ENV, **(env or {})},
            datasources=resolver,
        )
    finally:
        if resolver is not None:
            resolver.close()


async def build_one(spec: Any, cloud: LocalCloud) -> str:
    builder = spec.builders[0]
    target = Target(
        endpoint_url=cloud.endpoint_url,
        access_key_id=FAKE_ACCESS_KEY,
        secret_access_key=FAKE_SECRET_KEY,
    )
    steps: list[str] = []
    errors: list[str] = []
    last_lines: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted):
            steps.append(event.title)
        elif isinstance(event, StepFinished) and event.error:
            errors.append(event.error)
        elif isinstance(event, LogLines):
            last_lines[:] = (last_lines + list(event.lines))[-3:]

    aws = Aws(target)
    try:
        options = BuildOptions(target=target, ssh_port=cloud.ssh_port)
        results = await run_builds(spec, (builder,), aws, options, on_event)
    finally:
        aws.close()
    result = results[0]
    if result.status == "succeeded":
        return f"built ({len(steps)} steps)"
    reached = steps[-1] if steps else "nothing"
    why = (result.error or (errors[-1] if errors else "")).splitlines()[0][:120]
    return f"stopped at {reached}: {why}"


def main(prefixes: list[str]) -> int:
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0
    names = [n for n in corpus_entries() if not prefixes or n.startswith(tuple(prefixes))]
    rows: list[tuple[str, str, str]] = []
    with (
        tempfile.TemporaryDirectory() as scratch_dir,
        LocalCloud(latency="instant", data_dir=Path(scratch_dir) / "cloud") as cloud,
    ):
        # a developer's machine has a `default` profile (templates may name it): here, one
        # with the local cloud's keys, and no other AWS configuration of this machine
        credentials = Path(scratch_dir) / "credentials"
        credentials.write_text(
            f"[default]\naws_access_key_id = {FAKE_ACCESS_KEY}\n"
            f"aws_secret_access_key = {FAKE_SECRET_KEY}\n"
        )
        (Path(scratch_dir) / "config").write_text("")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
        os.environ["AWS_CONFIG_FILE"] = str(Path(scratch_dir) / "config")
        for index, name in enumerate(names):
            scratch = Path(scratch_dir) / f"e{index}"
            try:
                spec = validate(name, scratch / "a")
            except TemplateError as error:
                causes = sorted(
                    {p.message for p in error.problems if NOT_SUPPORTED_YET in p.message}
                )
                others = [p for p in error.problems if NOT_SUPPORTED_YET not in p.message]
                status = "; ".join(causes) if not others else f"INVALID: {others[0]}"
                rows.append((name, status, ""))
                continue
            region = spec.builders[0].region
            ids = local_network_ids(cloud, region)
            networked = {
                v.name: value
                for v in spec.variables.values()
                if NETWORK_VARIABLE.search(v.name)
                and (value := local_value(v.name, ids, v.type)) is not None
            }
            images = local_source_images(cloud, name, region)
            networked.update({k: v for k, v in images.items() if not k.startswith("env:")})
            env = {k[4:]: v for k, v in images.items() if k.startswith("env:")}
            try:
                spec = validate(name, scratch / "b", networked, cloud, env)
                ensure_instance_profile(cloud, spec.builders[0].iam_instance_profile)
                outcome = asyncio.run(build_one(spec, cloud))
            except TemplateError as error:
                outcome = f"not built: {error}"
            except Exception as error:  # the table reports it; the next entry still runs
                outcome = f"not built: {type(error).__name__}: {error}"
            rows.append((name, "valid", outcome))
            print(f"{name}: {outcome}", file=sys.stderr)
    print("| template | validate | build on the local cloud (first builder) |")
    print("|---|---|---|")
    for name, status, outcome in rows:
        print(f"| `{name}` | {status} | {outcome} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
