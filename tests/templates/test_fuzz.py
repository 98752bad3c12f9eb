"""Every input yields a BuildSpec or a TemplateError whose problems all have a location."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amibake.core.model import BuildSpec
from amibake.core.templates import TemplateError, loads

FIXTURES = Path(__file__).parent / "fixtures"
SEED = (FIXTURES / "seed.json").read_text()
FULL_JSON = (FIXTURES / "full.json").read_text()
FULL_HCL = (FIXTURES / "full.pkr.hcl").read_text()
NOW = dt.datetime(2023, 3, 15, 13, 20, tzinfo=dt.UTC)
SETTINGS = settings(
    max_examples=int(os.environ.get("AMIBAKE_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = [
    "type",
    "region",
    "source_ami",
    "source_ami_filter",
    "source_ami_filter_name",
    "source_ami_filter_type",
    "instance_type",
    "ssh_username",
    "ssh_port",
    "ssh_timeout",
    "ami_name",
    "tags",
    "owners",
    "filters",
    "inline",
    "script",
    "scripts",
    "variables",
    "builders",
    "provisioners",
    "post-processors",
    "launch_block_device_mappings",
    "aws_polling",
    "only",
    "except",
    "instnce_type",
    "spot_price",
    "name",
    "user_data",
]
SNIPPETS = [
    "{{user `aws_region`}}",
    "{{timestamp}}",
    "{{uuid}}",
    '{{isotime "2006"}}',
    "{{env `X`}}",
    "{{build_name}}",
    "{{timestamp | clean_resource_name}}",
    "{{user `nope`}}",
    "{{",
    "}}",
    "{{ .Path }}",
    "{{bogus}}",
    "${var.x}",
    "${",
    "%{",
    "$${",
    "\\u00e9",
    "ami-12345678",
    "us-east-1",
    "t2.micro",
    "canonical",
    "",
    "a" * 200,
    "\x00",
    "\n",
]


def check(text: str, fmt: str) -> None:
    try:
        spec = loads(text, file="t", format=fmt, env={"X": "1"}, now=NOW)
    except TemplateError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.loc.file
            assert problem.loc.line >= 1 and problem.loc.col >= 1
            assert "\n" not in str(problem)
        return
    assert isinstance(spec, BuildSpec)


def mutate_bytes(text: str, data: st.DataObject) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "dup"]))
        i = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        if op == "delete" and chars:
            del chars[i : i + data.draw(st.integers(1, 8))]
        elif op == "insert":
            chars[i:i] = data.draw(st.sampled_from(SNIPPETS + list('{}[]",:=\\`$%')))
        elif op == "replace" and chars:
            chars[i] = data.draw(st.characters())
        elif op == "dup" and chars:
            j = data.draw(st.integers(i, min(i + 40, len(chars))))
            chars[j:j] = chars[i:j]
    return "".join(chars)


@SETTINGS
@given(data=st.data(), base=st.sampled_from([SEED, FULL_JSON]))
def test_mutated_json_bytes(data: st.DataObject, base: str) -> None:
    check(mutate_bytes(base, data), "json")


@SETTINGS
@given(data=st.data())
def test_mutated_hcl_bytes(data: st.DataObject) -> None:
    check(mutate_bytes(FULL_HCL, data), "hcl")


@SETTINGS
@given(data=st.data())
def test_mutated_toml_bytes(data: st.DataObject) -> None:
    from amibake.core.templates.errors import Problems
    from amibake.core.templates.loader import parse_raw
    from amibake.core.templates.writers import to_toml

    raw = parse_raw(FULL_JSON, "full.json", "json", Problems())
    assert raw is not None
    check(mutate_bytes(to_toml(raw), data), "toml")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(SNIPPETS),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=20,
)


@SETTINGS
@given(data=st.data())
def test_mutated_seed_structure(data: st.DataObject) -> None:
    """Replace, add or delete keys and values anywhere in the seed's JSON tree."""
    doc = json.loads(SEED)

    def walk(node: object, depth: int) -> object:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                choice = data.draw(st.integers(0, 9))
                if choice == 0:
                    continue  # drop the key
                if choice == 1:
                    key = data.draw(st.sampled_from(KEYS))
                if choice == 2:
                    value = data.draw(json_values)
                out[key] = walk(value, depth + 1)
            if data.draw(st.integers(0, 6)) == 0:
                out[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
            return out
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node if data.draw(st.integers(0, 8)) != 0]
        if isinstance(node, str) and data.draw(st.integers(0, 5)) == 0:
            return node + data.draw(st.sampled_from(SNIPPETS))
        return node

    check(json.dumps(walk(doc, 0)), "json")


@SETTINGS
@given(doc=json_values)
def test_generated_json(doc: object) -> None:
    check(json.dumps(doc), "json")


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    for fmt in ("json", "hcl", "toml"):
        check(text, fmt)
