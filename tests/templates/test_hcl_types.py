"""Variable type constraints with Packer's (go-cty's) conversions."""

from __future__ import annotations

from typing import Any

import pytest

from amibake.core.templates.errors import Loc
from amibake.core.templates.evaluate import EvalError
from amibake.core.templates.hclexpr import HclSyntaxError
from amibake.core.templates.hcltypes import convert, type_from_text
from tests.templates.helpers import load_text, problems_of

LOC = Loc("t", 1, 1)


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("string", 12, "12"),
        ("string", 1.5, "1.5"),
        ("string", True, "true"),
        ("number", "30", 30),
        ("number", "2.5", 2.5),
        ("bool", "true", True),
        ("bool", "0", False),
        ("any", [1, "a"], [1, "a"]),
        ("list(string)", [1, True], ["1", "true"]),
        ("set(string)", ["b", "a", "b"], ["a", "b"]),
        ("map(number)", {"a": "1"}, {"a": 1}),
        ("tuple([string, number])", [1, "2"], ["1", 2]),
        ("object({ a = string, b = number })", {"a": 1, "b": "2", "extra": 0}, {"a": "1", "b": 2}),
        ("object({ a = string, b = optional(number) })", {"a": "x"}, {"a": "x", "b": None}),
        (
            'object({ a = optional(string, "d"), b = optional(list(number), [1]) })',
            {},
            {"a": "d", "b": [1]},
        ),
        ("list(object({ n = string }))", [{"n": 1}], [{"n": "1"}]),
        ("string", None, None),
    ],
)
def test_conversions(type_: str, value: Any, expected: Any) -> None:
    assert convert(value, type_from_text(type_, LOC), LOC) == expected


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("number", "abc", 'expected a number, got "abc"'),
        ("number", True, "expected a number, got bool true"),
        ("bool", "yes", 'expected a bool, got "yes"'),
        ("bool", "True", "expected a bool: write `true` in lower case, not `True`"),
        ("string", ["a"], "expected a string, got a list"),
        ("list(string)", {"a": 1}, "expected a list (list(string)), got an object"),
        ("list(number)", ["1", "x"], 'expected a number at `[1]`, got "x"'),
        ("map(string)", ["a"], "expected a map (map(string)), got a list"),
        ("tuple([string])", ["a", "b"], "expected a tuple of 1 elements, got 2"),
        (
            "object({ a = string, b = number })",
            {"a": "x"},
            "attribute `b` is required (type object({a = string, b = number}))",
        ),
    ],
)
def test_conversion_errors(type_: str, value: Any, message: str) -> None:
    with pytest.raises(EvalError) as caught:
        convert(value, type_from_text(type_, LOC), LOC)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "strin",
            "`strin` is not a type: use string, number, bool, any, list(...), set(...),"
            " map(...), object({...}) or tuple([...])",
        ),
        ("list", "the `list` type constraint needs an argument, e.g. `list(string)`"),
        ("list(string, number)", "`list(...)` takes one element type"),
        ("optional(string)", "`optional(...)` is only allowed for an attribute of object({...})"),
        ("object(string)", "`object(...)` takes attribute types: object({ a = string })"),
    ],
)
def test_bad_type_constraints(text: str, message: str) -> None:
    with pytest.raises(HclSyntaxError) as caught:
        type_from_text(text, LOC)
    assert caught.value.message == message


TEMPLATE = """
variable "v" {
  type = %s
  %s
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t2.micro"
  ssh_username  = "ubuntu"
  ami_name      = "ami-x"
}
build {
  sources = ["amazon-ebs.x"]
}
"""


def value_of(type_: str, default: str = "", **kwargs: Any) -> Any:
    return load_text(TEMPLATE % (type_, default), "hcl", **kwargs).variables["v"].value


def test_defaults_and_command_line_values_are_converted() -> None:
    assert value_of("number", 'default = "8"') == 8
    assert value_of("string", "default = 8") == "8"
    assert value_of("list(number)", "", vars={"v": '["1", 2]'}) == (1, 2)
    assert value_of("bool", "", vars={"v": "true"}) is True
    assert value_of("map(string)", "", env={"PKR_VAR_v": "{ a = 1 }"}) == {"a": "1"}
    # string / number variables take the -var text as it is, then convert it
    assert value_of("number", "", vars={"v": "42"}) == 42
    assert value_of("string", "", vars={"v": "[1]"}) == "[1]"


def test_without_a_type_the_default_gives_it() -> None:
    # Packer: `default = 5` makes the variable a number, so -var text becomes one
    assert (
        load_text(TEMPLATE.replace("type = %s\n", "") % "default = 5", "hcl", vars={"v": "7"})
        .variables["v"]
        .value
        == 7
    )
    assert problems_of(
        TEMPLATE.replace("type = %s\n", "") % "default = 5", "hcl", vars={"v": "x"}
    ) == ['<command line>:1:1: var.v: expected a number, got "x"']


def test_bad_values_are_located_errors() -> None:
    assert problems_of(TEMPLATE % ("number", 'default = "many"'), "hcl") == [
        't.pkr.hcl:4:13: var.v: expected a number, got "many"'
    ]
    assert problems_of(TEMPLATE % ("list(string)", ""), "hcl", vars={"v": "[1"}) != []
    assert problems_of(TEMPLATE % ("strin", 'default = "x"'), "hcl") == [
        "t.pkr.hcl:3:10: variable.v.type: `strin` is not a type: use string, number, bool, any,"
        " list(...), set(...), map(...), object({...}) or tuple([...])"
    ]
