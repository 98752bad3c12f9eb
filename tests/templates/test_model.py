"""The model's helpers: redaction, freezing, selectors."""

from __future__ import annotations

import datetime as dt

from amibake.core.model import (
    REDACTED,
    AmazonEbsBuilder,
    BuildSpec,
    FrozenMap,
    ShellProvisioner,
    freeze,
    redact,
    thaw,
)
from amibake.core.templates.schema import parse_duration

from .helpers import json_builder, load_text

KEY = "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEE\n}\n-----END KEY-----"


def test_redact_whole_and_multiline_values() -> None:
    assert redact("token=abc123 and abc123", {"abc123"}) == f"token={REDACTED} and {REDACTED}"
    # a multi-line secret is hidden whole, and line by line when output arrives in lines
    assert redact(f"key:\n{KEY}\n", {KEY}) == f"key:\n{REDACTED}\n"
    assert redact("got DDDDEEEE from stream", {KEY}) == f"got {REDACTED} from stream"
    # short lines of a secret ("}") are not hidden everywhere
    assert redact("{ }", {KEY}) == "{ }"
    assert redact("nothing here", set()) == "nothing here"


def test_redact_prefers_longest_value() -> None:
    assert redact("pass-long", {"pass", "pass-long"}) == REDACTED


def test_spec_redact_uses_sensitive_variables() -> None:
    spec = load_text(
        '{"variables": {"pw": "hunter22"}, "sensitive-variables": ["pw"],'
        + json_builder(ami_description="{{user `pw`}}")[1:]
    )
    assert spec.sensitive_values == frozenset({"hunter22"})
    assert spec.redact(f"desc {spec.builders[0].ami_description}") == f"desc {REDACTED}"
    assert spec.variables["pw"].display_value() == REDACTED


def test_frozen_map() -> None:
    a = FrozenMap({"x": 1, "y": 2})
    b = FrozenMap([("y", 2), ("x", 1)])
    assert a == b and hash(a) == hash(b)
    assert a == {"x": 1, "y": 2}
    assert list(a) == ["x", "y"]
    assert thaw(freeze({"a": [1, {"b": 2}]})) == {"a": [1, {"b": 2}]}
    assert freeze({"a": [1]}) == FrozenMap({"a": (1,)})


def test_selectors() -> None:
    builder = AmazonEbsBuilder(
        name="web",
        region="us-east-1",
        source_ami="ami-12345678",
        instance_type="t3.micro",
        ssh_username="u",
        ami_name="abc",
    )
    assert builder.matches("web") and builder.matches("amazon-ebs.web")
    assert not builder.matches("db")
    assert ShellProvisioner(inline=("x",), only=("amazon-ebs.web",)).applies_to(builder)
    assert not ShellProvisioner(inline=("x",), except_=("web",)).applies_to(builder)
    spec = BuildSpec(builders=(builder,), build_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert spec.builder("amazon-ebs.web") is builder


def test_durations() -> None:
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration("42") == 42
    assert parse_duration("5 minutes") is None
    assert parse_duration("") is None
