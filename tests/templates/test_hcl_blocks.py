"""HCL2 blocks read as Packer reads them: builds, dynamic blocks, variables, packer {}."""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.core.engine.context import BuildContext
from amibake.core.engine.provisioners.common import packer_env
from amibake.core.model import ManifestPostProcessor, ShellProvisioner
from amibake.core.templates.errors import Problems
from amibake.core.templates.evaluate import Scope
from amibake.core.templates.gotemplate import PACKER_COMPAT_VERSION
from amibake.core.templates.hcl import expand_dynamic, read_hcl, version_satisfies
from tests.templates.helpers import NOW, load_text, problems_of

SOURCE = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-${source.name}"
}
"""


def shell(spec: object, index: int) -> ShellProvisioner:
    provisioner = spec.provisioners[index]  # type: ignore[attr-defined]
    assert isinstance(provisioner, ShellProvisioner)
    return provisioner


# --------------------------------------------------------------------------- builds


def test_short_source_reference_without_the_source_prefix() -> None:
    # issue 18: `sources = ["amazon-ebs.example"]` is valid Packer
    spec = load_text(SOURCE + 'build {\n  sources = ["amazon-ebs.x"]\n}\n', "hcl")
    assert [b.name for b in spec.builders] == ["x"]


def test_provisioners_apply_only_to_the_builders_of_their_build_block() -> None:
    text = (
        SOURCE
        + """
source "amazon-ebs" "y" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-y"
}
build {
  name    = "first"
  sources = ["source.amazon-ebs.x"]
  provisioner "shell" { inline = ["echo first"] }
  post-processor "manifest" { output = "first.json" }
}
build {
  name        = "second"
  description = "the other one"
  sources     = ["amazon-ebs.y"]
  provisioner "shell" { inline = ["echo second"] }
}
"""
    )
    spec = load_text(text, "hcl")
    x, y = spec.builders
    assert [p.inline for p in spec.provisioners_for(x)] == [("echo first",)]
    assert [p.inline for p in spec.provisioners_for(y)] == [("echo second",)]
    (manifest,) = spec.post_processors
    assert isinstance(manifest, ManifestPostProcessor)
    assert manifest.applies_to(x) and not manifest.applies_to(y)


def test_two_builds_using_one_source_get_distinct_builder_names() -> None:
    text = (
        SOURCE
        + """
build {
  name    = "a"
  sources = ["source.amazon-ebs.x"]
  provisioner "shell" { inline = ["echo a"] }
}
build {
  name    = "b"
  sources = ["source.amazon-ebs.x"]
  provisioner "shell" {
    inline = ["echo b ${source.name}"]
    only   = ["amazon-ebs.x"]
  }
}
"""
    )
    spec = load_text(text, "hcl")
    first, second = spec.builders
    assert (first.name, second.name) == ("x", "b.x")
    # source.name is the source's local name in both, as in Packer
    assert first.ami_name == second.ami_name == "ami-x"
    assert [p.inline for p in spec.provisioners_for(first)] == [("echo a",)]
    assert [p.inline for p in spec.provisioners_for(second)] == [("echo b x",)]
    assert shell(spec, 1).only == ("b.x",)


def test_build_level_source_blocks_name_builders_and_add_settings() -> None:
    text = (
        SOURCE
        + """
build {
  name = "roles"
  source "source.amazon-ebs.x" { name = "consul" }
  source "amazon-ebs.x" {
    name      = "nomad"
    subnet_id = "subnet-0123456789abcdef0"
  }
  provisioner "shell" { inline = ["echo ${source.name} and ${source.type}"] }
}
"""
    )
    spec = load_text(text, "hcl")
    consul, nomad = spec.builders
    assert (consul.name, consul.ami_name, consul.subnet_id) == ("consul", "ami-consul", None)
    assert (nomad.name, nomad.subnet_id) == ("nomad", "subnet-0123456789abcdef0")
    # Packer's documented example: each builder's own name and type
    assert [p.inline for p in spec.provisioners_for(consul)] == [("echo consul and amazon-ebs",)]
    assert [p.inline for p in spec.provisioners_for(nomad)] == [("echo nomad and amazon-ebs",)]


def test_a_build_level_source_block_cannot_set_an_option_twice() -> None:
    text = SOURCE + 'build {\n  source "amazon-ebs.x" {\n    instance_type = "t3.small"\n  }\n}\n'
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:11:5: build.source.amazon-ebs.x.instance_type: `instance_type` is already set"
        " in source `amazon-ebs.x` (at t.pkr.hcl:5:3); a build-level source block cannot"
        " override it (as in Packer)"
    ]


def test_sources_computed_from_locals() -> None:
    text = (
        SOURCE
        + 'locals { which = ["x"] }\n'
        + 'build {\n  sources = [for s in local.which : "amazon-ebs.${s}"]\n}\n'
    )
    spec = load_text(text, "hcl")
    assert [b.name for b in spec.builders] == ["x"]
    text = SOURCE + 'locals { which = ["amazon-ebs.x"] }\nbuild {\n  sources = local.which\n}\n'
    assert [b.name for b in load_text(text, "hcl").builders] == ["x"]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            'build {\n  sources = ["nope"]\n}\n',
            "t.pkr.hcl:10:14: build.sources: invalid source reference `nope`: expected "
            "`source.TYPE.NAME` or `TYPE.NAME`, e.g. source.amazon-ebs.example",
        ),
        (
            'build {\n  name = "b"\n}\n',
            "t.pkr.hcl:9:1: build.sources: a build block must use at least one source",
        ),
        (
            'build {\n  sources = ["amazon-ebs.x"]\n  provisioner "shell" {}\n'
            '  provisioner "shell" { inline = ["a"] }\n'
            '  error-cleanup-provisioner "shell" { inline = ["a"] }\n'
            '  error-cleanup-provisioner "shell" { inline = ["b"] }\n}\n',
            "t.pkr.hcl:14:3: error-cleanup-provisioner: only one error-cleanup-provisioner is"
            " allowed",
        ),
    ],
)
def test_build_mistakes_are_located(build: str, expected: str) -> None:
    assert expected in problems_of(SOURCE + build, "hcl")


def test_post_processors_chain_and_hcp_registry_warning() -> None:
    text = (
        SOURCE
        + """
build {
  sources = ["amazon-ebs.x"]
  hcp_packer_registry {
    bucket_name = "golden"
  }
  post-processors {
    post-processor "manifest" { output = "a.json" }
    post-processor "manifest" { output = "b.json" }
  }
}
"""
    )
    spec = load_text(text, "hcl")
    assert [p.output for p in spec.post_processors] == ["a.json", "b.json"]
    assert spec.warnings == (
        "t.pkr.hcl:12:3: build.hcp_packer_registry: hcp_packer_registry ignored: there is no HCP"
        " here",
    )


# --------------------------------------------------------------------------- dynamic blocks


def test_dynamic_block_in_a_source_from_a_variable() -> None:
    text = """
variable "disks" {
  type    = list(object({ name = string, size = optional(number, 8) }))
  default = [{ name = "/dev/sdb" }, { name = "/dev/sdc", size = "20" }]
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "disks"
  dynamic "launch_block_device_mappings" {
    for_each = var.disks
    iterator = disk
    content {
      device_name = disk.value.name
      volume_size = disk.value.size
    }
  }
  dynamic "aws_polling" {
    for_each = []
    content {
      delay_seconds = 1
    }
  }
}
build {
  sources = ["amazon-ebs.x"]
}
"""
    (builder,) = load_text(text, "hcl").builders
    assert [(m.device_name, m.volume_size) for m in builder.launch_block_device_mappings] == [
        ("/dev/sdb", 8),
        ("/dev/sdc", 20),
    ]
    assert builder.aws_polling is None  # an empty for_each makes no block


def test_dynamic_provisioners_with_labels_as_in_amazon_ecs_ami() -> None:
    text = (
        SOURCE
        + """
locals { motd_files = ["10-banner", "20-news"] }
build {
  sources = ["amazon-ebs.x"]
  dynamic "provisioner" {
    for_each = local.motd_files
    labels   = ["shell"]
    content {
      inline = ["install ${provisioner.key} ${provisioner.value}"]
    }
  }
}
"""
    )
    spec = load_text(text, "hcl")
    assert [p.inline for p in spec.provisioners] == [
        ("install 0 10-banner",),
        ("install 1 20-news",),
    ]


def test_dynamic_post_processors_over_a_map() -> None:
    text = (
        SOURCE
        + """
build {
  sources = ["amazon-ebs.x"]
  dynamic "post-processors" {
    for_each = { a = "one", b = "two" }
    content {
      post-processor "manifest" {
        output = "${post-processors.key}-${post-processors.value}.json"
      }
    }
  }
  dynamic "post-processor" {
    for_each = []
    labels   = ["manifest"]
    content {}
  }
}
"""
    )
    spec = load_text(text, "hcl")
    assert [p.output for p in spec.post_processors] == ["a-one.json", "b-two.json"]


def test_nested_dynamic_blocks() -> None:
    text = """
source "amazon-ebs" "x" {
  dynamic "outer" {
    for_each = { a = ["1", "2"], b = [] }
    iterator = o
    content {
      name = o.key
      dynamic "inner" {
        for_each = o.value
        content {
          v = "${o.key}${inner.value}"
        }
      }
    }
  }
}
build {
  sources = ["amazon-ebs.x"]
}
"""
    problems = Problems()
    raw = read_hcl(text, "t.pkr.hcl", problems)
    assert raw is not None and not problems
    scope = Scope(
        variables={}, locals_={}, now=NOW, env={}, uuid_factory=None, template_dir=Path(".")
    )
    errors: list = []
    body = expand_dynamic(raw.builders[0].body, scope.node_value, errors)
    assert errors == []
    assert scope.node_value(body) == {
        "outer": [{"name": "a", "inner": [{"v": "a1"}, {"v": "a2"}]}, {"name": "b"}]
    }


def test_dynamic_mistakes_are_located() -> None:
    text = (
        SOURCE
        + """
build {
  sources = ["amazon-ebs.x"]
  dynamic "provisioner" {
    for_each = "not a list"
    labels   = ["shell"]
    content {}
  }
  dynamic "provisioner" {
    for_each = [1]
    content {}
  }
}
"""
    )
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:13:16: build.provisioner.for_each: `for_each` needs a list, set or map, got str",
        't.pkr.hcl:17:3: build.dynamic.provisioner.labels: a dynamic "provisioner" needs `labels ='
        ' ["..."]` (the provisioner\'s type)',
    ]


# --------------------------------------------------------------------------- contextual variables


def test_build_variables_in_provisioners_stay_for_the_run() -> None:
    text = (
        SOURCE
        + """
build {
  name    = "my-build-name"
  sources = ["null.first-example", "amazon-ebs.x"]
  provisioner "shell" {
    environment_vars = ["TESTVAR=${build.PackerRunUUID}"]
    inline = ["echo build.name is ${build.name}.", "echo ${build.ID} ${build.SSHPublicKey}"]
  }
}
source "null" "first-example" { communicator = "none" }
"""
    )
    spec = load_text(text, "hcl")
    provisioner = shell(spec, 0)
    assert provisioner.environment_vars == ("TESTVAR={{ build `PackerRunUUID` }}",)
    assert provisioner.inline == (
        "echo build.name is my-build-name.",
        "echo {{ build `ID` }} {{ build `SSHPublicKey` }}",
    )
    assert [b.name for b in spec.builders] == ["x"]


def test_build_variables_outside_a_build_and_packer_version() -> None:
    text = SOURCE.replace('"ami-${source.name}"', '"ami-${build.ID}"') + (
        'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    )
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:7:26: source.amazon-ebs.x.ami_name: `build.ID` is only available in a build"
        " block's provisioners and post-processors"
    ]
    text = SOURCE.replace('"ami-${source.name}"', '"ami-${packer.version}"') + (
        'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    )
    assert load_text(text, "hcl").builders[0].ami_name == f"ami-{PACKER_COMPAT_VERSION}"


# --------------------------------------------------------------------------- packer {}


@pytest.mark.parametrize(
    ("constraint", "ok"),
    [
        (">= 1.7.0", True),
        (">= 1.7.0, < 2.0.0", True),
        ("~> 1.15", True),
        ("~> 1.9", True),
        ("~> 1.9.3", False),
        ("!= 1.16.0", False),
        ("> 1.16", False),
        ("= 1.16.0", True),
        ("1.16.0", True),
        ("< 1.10", False),
    ],
)
def test_required_version_constraints(constraint: str, ok: bool) -> None:
    assert PACKER_COMPAT_VERSION == "1.16.0"
    assert version_satisfies(PACKER_COMPAT_VERSION, constraint) is ok


def test_packer_block() -> None:
    head = """
packer {
  required_version = "%s"
  required_plugins {
    amazon = {
      version = ">= 1.2.8"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
"""
    tail = SOURCE + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    assert load_text(head % ">= 1.7.0" + tail, "hcl").builders
    # A version pin is a warning: amibake is not Packer, the pin says nothing of what it builds.
    assert load_text(head % ">= 2.0.0" + tail, "hcl").warnings == (
        f"t.pkr.hcl:3:3: packer.required_version: this template requires Packer >= 2.0.0;"
        f" amibake reads templates as Packer {PACKER_COMPAT_VERSION} does",
    )
    assert problems_of(head % "later" + tail, "hcl") == [
        "t.pkr.hcl:3:3: packer.required_version: malformed version constraint `later`"
    ]


# --------------------------------------------------------------------------- variables & locals


VALIDATED = """
variable "ami_prefix" {
  type    = string
  default = "%s"
  validation {
    condition     = length(var.ami_prefix) > 3 && substr(var.ami_prefix, 0, 4) == "ami-"
    error_message = "The ami_prefix value must start with \\"ami-\\"."
  }
}
"""


def test_variable_validation_passes_and_fails_with_the_authors_message() -> None:
    tail = SOURCE + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    spec = load_text(VALIDATED % "ami-web" + tail, "hcl")
    assert spec.variables["ami_prefix"].value == "ami-web"
    assert problems_of(VALIDATED % "web" + tail, "hcl") == [
        't.pkr.hcl:4:13: var.ami_prefix: The ami_prefix value must start with "ami-".'
    ]
    # a value from the command line is checked too, located there
    assert problems_of(VALIDATED % "ami-ok" + tail, "hcl", vars={"ami_prefix": "x"}) == [
        '<command line>:1:1: var.ami_prefix: The ami_prefix value must start with "ami-".'
    ]


@pytest.mark.parametrize(
    ("validation", "expected"),
    [
        (
            'condition = var.other != ""\n    error_message = "Bad."',
            "t.pkr.hcl:6:17: variable.v.validation.condition: the condition of variable `v` can"
            " only refer to the variable itself, as var.v",
        ),
        (
            'condition = true\n    error_message = "Bad."',
            "t.pkr.hcl:6:17: variable.v.validation.condition: the condition must refer to var.v",
        ),
        (
            'condition = var.v != ""\n    error_message = "not a sentence"',
            "t.pkr.hcl:7:5: variable.v.validation.error_message: the error message must be a full"
            " sentence: starting with an upper-case letter and ending with a period, question"
            " mark or exclamation mark",
        ),
        (
            'condition = var.v != ""',
            "t.pkr.hcl:5:3: variable.v.validation.error_message: `error_message` is required",
        ),
    ],
)
def test_validation_block_mistakes(validation: str, expected: str) -> None:
    text = (
        'variable "other" {\n  default = "x"\n}\nvariable "v" {\n  validation {\n    '
        + validation
        + '\n  }\n  default = "y"\n}\n'
        + SOURCE
        + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    )
    problems = problems_of(text, "hcl")
    assert expected in problems, problems


def test_a_condition_may_bind_names_in_for_expressions_and_splats() -> None:
    """The names a ``for`` expression binds, and a splat's element, are the condition's own:
    only its reads of other variables are refused (and still are inside a ``for``)."""
    variable = """
variable "tags" {
  type    = map(string)
  default = %s
  validation {
    condition = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256]) && (
      length([for i in range(2) : format("1.%%02d", i)]) == 2) && (
      length(var.tags[*]) >= 0)
    error_message = "Tag keys are at most 128 characters and values 256."
  }
}
"""
    tail = SOURCE + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    spec = load_text(variable % '{ Name = "web" }' + tail, "hcl")
    assert dict(spec.variables["tags"].value) == {"Name": "web"}
    long = "x" * 300
    assert problems_of(variable % f'{{ Name = "{long}" }}' + tail, "hcl") == [
        "t.pkr.hcl:4:13: var.tags: Tag keys are at most 128 characters and values 256."
    ]
    outside = variable.replace("length(v) <= 256", "length(v) <= var.limit")
    problems = problems_of(
        'variable "limit" {\n  default = 256\n}\n' + outside % "{}" + tail, "hcl"
    )
    assert any("can only refer to the variable itself, as var.tags" in p for p in problems)


def test_sensitive_local_block_and_nullable() -> None:
    text = (
        """
local "secret" {
  expression = "hunter2-${var.suffix}"
  sensitive  = true
}
variable "suffix" {
  default  = "x"
  nullable = false
}
"""
        + SOURCE.replace('"ami-${source.name}"', '"ami-${local.secret}"')
        + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    )
    spec = load_text(text, "hcl")
    assert "hunter2-x" in spec.sensitive_values
    assert spec.redact(spec.builders[0].ami_name) == "ami-<sensitive>"
    assert any("`nullable` is a Terraform argument" in w for w in spec.warnings)
    assert problems_of(text.replace('default  = "x"', "default  = null"), "hcl")[0].endswith(
        "variable `suffix` must not be null (nullable = false)"
    )


def test_local_block_needs_an_expression_and_locals_are_unique() -> None:
    text = (
        'local "a" {\n  sensitive = true\n}\nlocals {\n  b = 1\n}\nlocal "b" {\n'
        "  expression = 2\n}\n" + SOURCE + 'build {\n  sources = ["amazon-ebs.x"]\n}\n'
    )
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:1:1: local.a.expression: `expression` is required",
        "t.pkr.hcl:7:1: local.b: local is defined twice (first at t.pkr.hcl:5:3)",
    ]


def test_a_named_build_prefixes_packers_run_name() -> None:
    """packer/build.go CoreBuild.Name: ``<build name>.<source ref>``, e.g. ``web.amazon-ebs.x``;
    headless output and the summary print it."""
    import io

    from amibake.core.engine.build import packer_build_name
    from amibake.core.events import StepStarted
    from amibake.tui.cli.build import Printer

    source = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "img"
}
"""
    named = load_text(source + 'build {\n  name = "web"\n  sources = ["amazon-ebs.x"]\n}\n', "hcl")
    plain = load_text(source + 'build { sources = ["source.amazon-ebs.x"] }\n', "hcl")
    assert named.builders[0].packer_name == "web.amazon-ebs.x"
    assert plain.builders[0].packer_name == "amazon-ebs.x"
    (builder,) = named.builders
    names = {builder.name: packer_build_name(named, builder)}
    assert names == {"x": "web.amazon-ebs.x"}
    out = io.StringIO()
    Printer(out, colour=False, timestamps=False, names=names)(
        StepStarted(build="x", step="instance", title="Launching the instance")
    )
    assert out.getvalue() == "==> web.amazon-ebs.x: Launching the instance\n"


@pytest.mark.parametrize(
    ("default", "col"),
    [("data.amazon-ami.ubuntu.id", 13), ('"${local.a}-x"', 16), ("var.b", 13)],
)
def test_variable_defaults_cannot_use_variables_or_data_sources(default: str, col: int) -> None:
    """Packer decodes defaults with only `env()` (decodeInputVariables): HCL's error."""
    text = f"""
locals {{ a = "x" }}
variable "ami" {{
  default = {default}
}}
source "amazon-ebs" "x" {{
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "img-${{var.ami}}"
}}
build {{ sources = ["source.amazon-ebs.x"] }}
"""
    assert problems_of(text, "hcl") == [
        f"t.pkr.hcl:4:{col}: variable.ami.default: Variables not allowed: Variables may not be"
        " used here."
    ]
    assert load_text(text.replace(default, 'env("HOME")'), "hcl", env={"HOME": "/h"})


def test_build_name_is_the_source_label_whatever_the_build_calls_it() -> None:
    """Packer's ``packer_build_name`` (``{{ build_name }}``, PACKER_BUILD_NAME) is the source
    block's own label (hcl2template SourceUseBlock.builderVariables), while ``source.name``
    is the name the build block gives it; two sources of one label stay two builders."""
    text = """
source "docker" "base" {
  image = "ubuntu"
}
source "amazon-ebs" "base" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-${source.name}-{{ build_name }}"
  tags          = { B = "{{ build_name }}", N = "${source.name}" }
}
build {
  name = "first"
  sources = ["source.docker.base", "source.amazon-ebs.base"]
}
build {
  source "amazon-ebs.base" {
    name = "ubuntu"
  }
}
"""
    spec = load_text(text, "hcl")
    first, renamed = spec.builders
    assert (first.build_name or first.name, dict(first.tags)["B"]) == ("base", "base")
    assert renamed.name == "ubuntu" and renamed.build_name == "base"
    assert dict(renamed.tags) == {"B": "base", "N": "ubuntu"}
    assert renamed.ami_name == "ami-ubuntu-base"
    # ... and what its provisioners are given
    context = BuildContext(
        spec=spec, builder=renamed, aws=None, options=None, emit_event=lambda event: None
    )  # type: ignore[arg-type]  # packer_env reads the builder only
    assert packer_env(context) == {"PACKER_BUILD_NAME": "base", "PACKER_BUILDER_TYPE": "amazon-ebs"}
