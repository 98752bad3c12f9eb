"""HCL2 data sources: shape-only validation, dependency order, cycles (no network).

Evaluation here goes through :class:`MemoryResolver`, an in-memory implementation of
the resolver protocol; the real AWS calls are tested against the local cloud in
tests/local/test_ssm_secrets.py and tests/engine/test_datasources_local.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from amibake.core.errors import AmibakeError
from amibake.core.templates.datasources import secret_value
from amibake.core.templates.schema import UNRESOLVED
from tests.templates.helpers import load_text, problems_of

SOURCE = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = %s
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "demo-ami"
}
build {
  sources = ["source.amazon-ebs.x"]
}
"""

AMI = """
data "amazon-ami" "ubuntu" {
  filters = {
    name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
    virtualization-type = "hvm"
  }
  owners      = ["099720109477"]
  most_recent = true
}
"""


class MemoryResolver:
    """Answers data sources from dicts and counts the calls."""

    def __init__(
        self,
        images: list[dict[str, Any]] | None = None,
        parameters: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.images = images or []
        self.parameters = dict(parameters or {})
        self.secrets = dict(secrets or {})
        self.calls: list[tuple[str, Any]] = []

    def describe_images(self, region: str | None, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("DescribeImages", (region, dict(query))))
        return list(self.images)

    def get_parameter(self, region: str | None, name: str, with_decryption: bool) -> dict[str, Any]:
        self.calls.append(("GetParameter", name))
        if name not in self.parameters:
            raise AmibakeError(f"GetParameter: ParameterNotFound: {name}")
        return {
            "Value": self.parameters[name],
            "Version": 3,
            "ARN": f"arn:aws:ssm:::parameter{name}",
        }

    def get_secret_value(
        self,
        region: str | None,
        secret_id: str,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("GetSecretValue", secret_id))
        return {"SecretString": self.secrets[secret_id], "VersionId": "v-1"}

    def http_request(
        self, url: str, method: str, headers: Mapping[str, str], body: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        self.calls.append(("http", url))
        return 200, {"Content-Type": "text/plain"}, b"hello"


# --------------------------------------------------------------------------- shape only


def test_shape_only_leaves_the_source_ami_unresolved_but_loads() -> None:
    spec = load_text(AMI + SOURCE % "data.amazon-ami.ubuntu.id", "hcl")
    builder = spec.builders[0]
    assert builder.source_ami == UNRESOLVED
    assert spec.unresolved == ("source.amazon-ebs.x.source_ami",)


def test_shape_only_unknown_flows_through_locals_and_strings() -> None:
    text = (
        AMI
        + 'locals { base = "built from ${data.amazon-ami.ubuntu.name}" }\n'
        + SOURCE.replace(
            '  ami_name      = "demo-ami"',
            '  ami_name      = "demo-ami"\n  tags = { Base = local.base, Fixed = "yes" }',
        )
        % '"ami-0123456789abcdef0"'
    )
    spec = load_text(text, "hcl")
    assert spec.unresolved == ("source.amazon-ebs.x.tags.Base",)
    assert dict(spec.builders[0].tags) == {"Fixed": "yes"}


def test_a_spec_without_data_sources_has_nothing_unresolved() -> None:
    spec = load_text(SOURCE % '"ami-0123456789abcdef0"', "hcl")
    assert spec.unresolved == ()


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            'data "amazon-ami" "a" {\n  filters = { name = "x-*" }\n}\n',
            "t.pkr.hcl:1:1: data.amazon-ami.a.owners: `owners` is required",
        ),
        (
            'data "amazon-ami" "a" {\n  owners = ["self"]\n}\n',
            "t.pkr.hcl:1:1: data.amazon-ami.a.filters: `filters` is required",
        ),
        (
            'data "amazon-ami" "a" {\n  owners = ["self"]\n  filters = { name = "x" }\n'
            '  region = "us-esat-1"\n}\n',
            "t.pkr.hcl:4:12: data.amazon-ami.a.region: unknown AWS region `us-esat-1`",
        ),
        (
            'data "amazon-ami" "a" {\n  owners = ["self"]\n  filters = { name = "x" }\n'
            '  most_recent = "maybe"\n}\n',
            "t.pkr.hcl:4:17: data.amazon-ami.a.most_recent: expected true or false",
        ),
        (
            'data "amazon-parameterstore" "p" {\n  with_decryption = true\n}\n',
            "t.pkr.hcl:1:1: data.amazon-parameterstore.p.name: `name` is required",
        ),
        (
            'data "amazon-secretsmanager" "s" {\n  name = "db"\n  vesion_stage = "x"\n}\n',
            "t.pkr.hcl:3:3: data.amazon-secretsmanager.s.vesion_stage: unknown option "
            "`vesion_stage`; did you mean `version_stage`?",
        ),
        (
            'data "amazon-parameterstore" "p" {\n  name = "/x"\n  access_key = "AKIA"\n}\n',
            "t.pkr.hcl:3:16: data.amazon-parameterstore.p.access_key: `access_key` and "
            "`secret_key` must both be either set or not set",
        ),
        (
            'data "null" "n" {\n}\n',
            "t.pkr.hcl:1:1: data.null.n.input: `input` is required",
        ),
        (
            'data "http" "h" {\n  url = "http://127.0.0.1/"\n  method = "FETCH"\n}\n',
            "t.pkr.hcl:3:12: data.http.h.method: expected one of HEAD, GET",
        ),
        (
            'data "http" "h" {\n  request_headers = { Accept = "text/plain" }\n}\n',
            "t.pkr.hcl:1:1: data.http.h.url: `url` is required",
        ),
        (
            'data "consul" "c" {\n  key = "x"\n}\n',
            "t.pkr.hcl:1:6: data.consul.c: data source `consul` is not supported yet",
        ),
        (
            'data "null" {\n  input = "x"\n}\n',
            "t.pkr.hcl:1:1: data: expected two labels",
        ),
        (
            'data "null" "n" {\n  input = "x"\n}\ndata "null" "n" {\n  input = "y"\n}\n',
            "t.pkr.hcl:4:1: data.null.n: data source is defined twice",
        ),
    ],
)
def test_bad_config_is_one_located_problem(block: str, expected: str) -> None:
    problems = problems_of(block + SOURCE % '"ami-0123456789abcdef0"', "hcl")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_bad_data_source_is_reported_once_however_often_it_is_read() -> None:
    text = 'data "amazon-parameterstore" "p" {\n  with_decryption = true\n}\n' + (
        SOURCE.replace('"demo-ami"', '"demo-${data.amazon-parameterstore.p.value}"')
        % "data.amazon-parameterstore.p.value"
    )
    problems = problems_of(text, "hcl")
    assert problems == [
        "t.pkr.hcl:1:1: data.amazon-parameterstore.p.name: `name` is required",
    ]


def test_a_reference_to_an_undefined_data_source_is_located() -> None:
    problems = problems_of(AMI + SOURCE % "data.amazon-ami.ubunut.id", "hcl")
    assert len(problems) == 1
    assert problems[0].startswith("t.pkr.hcl:13:19: source.amazon-ebs.x.source_ami: ")
    assert "undefined data source `data.amazon-ami.ubunut`" in problems[0]
    assert "did you mean `amazon-ami.ubuntu`" in problems[0]


# --------------------------------------------------------------------------- evaluation


# hashicorp/packer hcl2template/testdata/datasources/recursive.pkr.hcl, with its expected values
RECURSIVE = """
data "null" "foo" {
  input = "chocolate"
}
data "null" "yummy" {
  input = "${data.null.bang.output}-and-sprinkles"
}
data "null" "bar" {
  input = "vanilla"
}
data "null" "baz" {
  input = "${data.null.foo.output}-${data.null.bar.output}-swirl"
}
data "null" "bang" {
  input = "${data.null.baz.output}-with-marshmallows"
}
"""


def test_data_sources_are_evaluated_in_dependency_order() -> None:
    text = RECURSIVE + SOURCE.replace('"demo-ami"', "data.null.yummy.output") % (
        '"ami-0123456789abcdef0"'
    )
    spec = load_text(text, "hcl", datasources=MemoryResolver())
    assert spec.builders[0].ami_name == "chocolate-vanilla-swirl-with-marshmallows-and-sprinkles"
    assert spec.unresolved == ()


def test_data_sources_locals_and_variables_depend_on_each_other() -> None:
    text = (
        'variable "release" {\n  default = "24.04"\n}\n'
        'locals {\n  path = "/aws/service/canonical/ubuntu/server/${var.release}/stable/current"\n'
        "  ami = data.amazon-parameterstore.ubuntu.value\n}\n"
        'data "amazon-parameterstore" "ubuntu" {\n'
        '  name = "${local.path}/amd64/hvm/ebs-gp3/ami-id"\n}\n' + SOURCE % "local.ami"
    )
    resolver = MemoryResolver(
        parameters={
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id": (
                "ami-0aaaaaaaaaaaaaaaa"
            )
        }
    )
    spec = load_text(text, "hcl", datasources=resolver)
    assert spec.builders[0].source_ami == "ami-0aaaaaaaaaaaaaaaa"


def test_each_data_source_runs_once_per_load() -> None:
    text = (
        'data "amazon-parameterstore" "p" {\n  name = "/ami"\n}\n'
        + SOURCE.replace('"demo-ami"', '"from-${data.amazon-parameterstore.p.value}"')
        % "data.amazon-parameterstore.p.value"
    )
    resolver = MemoryResolver(parameters={"/ami": "ami-0bbbbbbbbbbbbbbbb"})
    spec = load_text(text, "hcl", datasources=resolver)
    assert spec.builders[0].ami_name == "from-ami-0bbbbbbbbbbbbbbbb"
    assert resolver.calls == [("GetParameter", "/ami")]


def test_unused_data_sources_still_run() -> None:
    text = 'data "amazon-parameterstore" "p" {\n  name = "/unused"\n}\n' + SOURCE % (
        '"ami-0123456789abcdef0"'
    )
    resolver = MemoryResolver(parameters={"/unused": "x"})
    load_text(text, "hcl", datasources=resolver)
    assert resolver.calls == [("GetParameter", "/unused")]


def test_a_dependency_cycle_is_one_located_problem() -> None:
    # hashicorp/packer hcl2template/testdata/datasources/dependency_cycle.pkr.hcl
    text = (
        'data "null" "gummy" {\n  input = "${data.null.bear.output}"\n}\n'
        'data "null" "bear" {\n  input = "${data.null.gummy.output}"\n}\n'
    ) + SOURCE % '"ami-0123456789abcdef0"'
    for resolver in (None, MemoryResolver()):
        problems = problems_of(text, "hcl", datasources=resolver)
        assert len(problems) == 1, problems
        assert (
            "dependency cycle: data.null.gummy -> data.null.bear -> data.null.gummy"
            in (problems[0])
        )
        assert problems[0].startswith("t.pkr.hcl:1:6: data.null.bear.input: ")


def test_a_cycle_through_a_local_is_detected() -> None:
    text = (
        "locals {\n  name = data.null.n.output\n}\n"
        'data "null" "n" {\n  input = local.name\n}\n' + SOURCE % '"ami-0123456789abcdef0"'
    )
    problems = problems_of(text, "hcl", datasources=MemoryResolver())
    assert len(problems) == 1, problems
    assert "cycle" in problems[0] or "refers to itself" in problems[0]


def test_amazon_ami_outputs_the_newest_match() -> None:
    images = [
        {
            "ImageId": "ami-0000000000000aaa1",
            "Name": "ubuntu-old",
            "CreationDate": "2024-01-01T00:00:00.000Z",
            "OwnerId": "099720109477",
        },
        {
            "ImageId": "ami-0000000000000bbb2",
            "Name": "ubuntu-new",
            "CreationDate": "2026-01-01T00:00:00.000Z",
            "OwnerId": "099720109477",
            "Tags": [{"Key": "Release", "Value": "noble"}],
        },
    ]
    text = (
        AMI
        + SOURCE.replace(
            '  ami_name      = "demo-ami"',
            '  ami_name      = "demo-ami"\n  tags = data.amazon-ami.ubuntu.tags',
        )
        % "data.amazon-ami.ubuntu.id"
    )
    resolver = MemoryResolver(images=images)
    spec = load_text(text, "hcl", datasources=resolver)
    assert spec.builders[0].source_ami == "ami-0000000000000bbb2"
    assert dict(spec.builders[0].tags) == {"Release": "noble"}
    ((_, (region, query)),) = resolver.calls
    assert region is None  # the resolver's default region
    assert query["Owners"] == ["099720109477"]
    assert {"Name": "virtualization-type", "Values": ["hvm"]} in query["Filters"]


def test_a_failed_call_is_a_located_line_naming_the_data_source() -> None:
    text = 'data "amazon-parameterstore" "p" {\n  name = "/missing"\n}\n' + SOURCE % (
        "data.amazon-parameterstore.p.value"
    )
    problems = problems_of(text, "hcl", datasources=MemoryResolver())
    assert problems == [
        "t.pkr.hcl:1:6: data.amazon-parameterstore.p: data source failed: "
        "GetParameter: ParameterNotFound: /missing"
    ]


def test_an_ami_filter_matching_several_images_without_most_recent_fails() -> None:
    images = [
        {"ImageId": f"ami-00000000000000{i}a", "Name": f"n{i}", "CreationDate": f"202{i}"}
        for i in range(2)
    ]
    text = AMI.replace("most_recent = true", "") + SOURCE % "data.amazon-ami.ubuntu.id"
    problems = problems_of(text, "hcl", datasources=MemoryResolver(images=images))
    assert len(problems) == 1
    assert "2 AMIs match filter" in problems[0] and "most_recent = true" in problems[0]


@pytest.mark.parametrize(
    ("secret", "key", "value"),
    [
        ('{"password": "hunter2", "user": "admin"}', "user", "admin"),
        ('{"password": "hunter2"}', None, "hunter2"),
        ('{"port": 5432}', "port", "5432"),
        ('{"password": "hunter2"}', "missing", ""),
        ("plain text", "ignored", "plain text"),
    ],
)
def test_secret_values_follow_packer(secret: str, key: str | None, value: str) -> None:
    assert secret_value(secret, key) == value


def test_secretsmanager_outputs() -> None:
    text = (
        'data "amazon-secretsmanager" "db" {\n  name = "prod/db"\n  key = "user"\n}\n'
        + SOURCE.replace('"demo-ami"', '"ami-${data.amazon-secretsmanager.db.value}"')
        % '"ami-0123456789abcdef0"'
    )
    resolver = MemoryResolver(secrets={"prod/db": '{"user": "admin", "password": "x"}'})
    spec = load_text(text, "hcl", datasources=resolver)
    assert spec.builders[0].ami_name == "ami-admin"


def test_aws_secretsmanager_reads_through_the_resolver_or_stays_unknown() -> None:
    text = SOURCE.replace('"demo-ami"', '"ami-${aws_secretsmanager("prod/db", "user")}"') % (
        '"ami-0123456789abcdef0"'
    )
    shape_only = load_text(text, "hcl")
    assert shape_only.unresolved == ("source.amazon-ebs.x.ami_name",)
    assert shape_only.builders[0].ami_name == UNRESOLVED
    resolver = MemoryResolver(secrets={"prod/db": '{"user": "admin", "password": "x"}'})
    assert load_text(text, "hcl", datasources=resolver).builders[0].ami_name == "ami-admin"
