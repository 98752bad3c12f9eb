from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from amibake.core.model import BuildSpec
from amibake.core.templates import TemplateError, loads

FIXTURES = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2023, 3, 15, 13, 20, 5, tzinfo=dt.UTC)  # unix 1678886405


def fixed_uuid() -> str:
    return "00000000-0000-4000-8000-000000000000"


def load_text(text: str, fmt: str = "json", **kwargs: Any) -> BuildSpec:
    kwargs.setdefault("env", {})
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("uuid_factory", fixed_uuid)
    return loads(text, file=f"t.{'pkr.hcl' if fmt == 'hcl' else fmt}", format=fmt, **kwargs)


def problems_of(text: str, fmt: str = "json", **kwargs: Any) -> list[str]:
    try:
        load_text(text, fmt, **kwargs)
    except TemplateError as error:
        return [str(p) for p in error.problems]
    raise AssertionError("expected a TemplateError")


def json_builder(**options: Any) -> str:
    import json

    builder = {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "source_ami": "ami-0123456789abcdef0",
        "instance_type": "t2.micro",
        "ssh_username": "ubuntu",
        "ami_name": "test-ami",
    }
    variables = options.pop("variables", None)
    builder.update(options)
    doc: dict[str, Any] = {"builders": [builder]}
    if variables is not None:
        doc["variables"] = variables
    return json.dumps(doc, indent=2)


HCL_HEAD = """
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
"""
HCL_TAIL = """}
build {
  sources = ["source.amazon-ebs.x"]
}
"""


def hcl_builder(lines: str, prelude: str = "") -> str:
    """An HCL template whose source gets ``lines`` (must set ami_name)."""
    return prelude + HCL_HEAD + lines + "\n" + HCL_TAIL
