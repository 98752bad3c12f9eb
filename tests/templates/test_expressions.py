"""HCL2 expression forms: `for`, splats, template directives, and unknown values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from amibake.core.templates.errors import Loc
from amibake.core.templates.evaluate import UNKNOWN, EvalError, Scope
from amibake.core.templates.hclexpr import HclSyntaxError, parse_expression, parse_template
from amibake.core.templates.nodes import ExprNode

from .helpers import NOW, fixed_uuid, hcl_builder, load_text, problems_of

VARS: dict[str, Any] = {
    "m": {"b": "2", "a": "1", "c": ""},
    "l": ["x", "y", "z"],
    "objs": [{"id": "i-1", "tags": {"Name": "a"}}, {"id": "i-2", "tags": {"Name": "b"}}],
    "users": {"amy": {"role": "admin"}, "bob": {"role": "dev"}, "cat": {"role": "admin"}},
    "yes": True,
    "unknown": UNKNOWN,
    "unknown_list": ["a", UNKNOWN],
}


def scope() -> Scope:
    return Scope(
        variables={name: (lambda v=value: v) for name, value in VARS.items()},
        locals_={},
        now=NOW,
        env={},
        uuid_factory=fixed_uuid,
        template_dir=Path("/nonexistent"),
    )


def ev(text: str) -> Any:
    return scope().eval(parse_expression(text, Loc("t.pkr.hcl", 1, 1)))


def error_of(text: str) -> str:
    with pytest.raises((EvalError, HclSyntaxError)) as info:
        ev(text)
    return f"{info.value.loc}: {info.value.message}"


def hcl_desc(expr: str) -> Any:
    prelude = 'variable "l" {\n  default = ["x", "y"]\n}\n'
    text = hcl_builder(f'ami_name = "nnn"\n  ami_description = {expr}', prelude)
    return load_text(text, "hcl").builders[0].ami_description


# --------------------------------------------------------------------------- for


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[for s in var.l : upper(s)]", ["X", "Y", "Z"]),
        ('[for i, s in var.l : "${i}:${s}"]', ["0:x", "1:y", "2:z"]),
        ("[for k, v in var.m : k]", ["a", "b", "c"]),  # objects iterate in key order
        ('[for k, v in var.m : v if v != ""]', ["1", "2"]),
        ("{for s in var.l : s => upper(s)}", {"x": "X", "y": "Y", "z": "Z"}),
        ('{for k, v in var.m : v => k if v != ""}', {"1": "a", "2": "b"}),
        (
            "{for name, u in var.users : u.role => name...}",
            {"admin": ["amy", "cat"], "dev": ["bob"]},
        ),
        ("[for o in var.objs : o.tags.Name]", ["a", "b"]),
        ("[for xs in [[1, 2], [3]] : [for x in xs : x * 10]]", [[10, 20], [30]]),
        ('length([for s in var.l : s if s != "y"])', 2),
        ("[for s in [] : s]", []),
    ],
)
def test_for_expressions(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_for_errors_are_located() -> None:
    assert error_of('{for s in ["a", "a"] : s => 1}') == (
        "t.pkr.hcl:1:24: duplicate object key `a` in a `for` expression; add `...` after the value"
        " to group the values by key"
    )
    assert error_of('[for s in "abc" : s]') == (
        "t.pkr.hcl:1:11: a `for` expression needs a list or an object to iterate over, got a string"
    )
    assert error_of("[for item in var.l : iten]") == (
        "t.pkr.hcl:1:22: unknown name `iten`; did you mean `item`?"
    )
    assert (
        error_of("[for s in var.l : s if 1]") == "t.pkr.hcl:1:24: expected true or false, got `1`"
    )


# --------------------------------------------------------------------------- splat


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("var.objs[*].id", ["i-1", "i-2"]),
        ("var.objs.*.id", ["i-1", "i-2"]),
        ("var.objs[*].tags.Name", ["a", "b"]),
        ('var.objs[*].tags["Name"]', ["a", "b"]),
        ("var.l[*]", ["x", "y", "z"]),
        ("length(var.objs[*].id)", 2),
        ("var.users.amy[*].role", ["admin"]),  # a single value acts as a one-element list
        ("null[*]", []),
        ("[[1, 2], [3, 4]][*][0]", [1, 3]),
    ],
)
def test_splat_expressions(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_a_list_in_a_directive_body_is_a_located_error() -> None:
    assert error_of('"%{ if true }${var.l}%{ endif }"') == (
        "t.pkr.hcl:1:16: cannot use a list as a string (in a string template)"
    )


def test_splat_error_is_located() -> None:
    assert error_of("var.objs[*].nope") == "t.pkr.hcl:1:12: no attribute `nope`"


# --------------------------------------------------------------------------- directives


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"x%{ if var.yes }yes%{ else }no%{ endif }"', "xyes"),
        ('"x%{ if !var.yes }yes%{ endif }"', "x"),
        ('"%{ for s in var.l }${s},%{ endfor }"', "x,y,z,"),
        ('"%{ for i, s in var.l }${i}=${s} %{ endfor }"', "0=x 1=y 2=z "),
        ('"%{ for k, v in var.m }${k}${v}%{ endfor }"', "a1b2c"),
        ('"a %{~ if true ~} b %{~ endif ~} c"', "abc"),
        ('"%{ if true }${1 + 1}%{ endif }"', "2"),
        ('"%%{ if } $${x}"', "%{ if } ${x}"),
        ('"%{ for s in var.l }%{ if s != "y" }${s}%{ endif }%{ endfor }"', "xz"),
    ],
)
def test_template_directives_in_quoted_strings(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_directives_in_heredocs_with_strip_markers() -> None:
    heredoc = (
        "<<EOT\n"
        "%{ for s in var.l ~}\n"
        "item ${s}\n"
        "%{ endfor ~}\n"
        "%{ if length(var.l) > 1 ~}\n"
        "many\n"
        "%{~ else ~}\n"
        "one\n"
        "%{~ endif }\n"
        "EOT"
    )
    assert hcl_desc(heredoc) == "item x\nitem y\nmany\n"
    assert hcl_desc('<<-EOT\n    ${~ "a" ~}   \n    b\n    EOT') == "ab\n"


def test_parse_template_understands_directives() -> None:
    expr = parse_template("%{ for k, v in m }${k}=${v};%{ endfor }", Loc("f.tpl", 1, 1))
    s = scope()
    with s.bound({"m": {"b": 2, "a": 1}}):
        assert s.eval(expr) == "a=1;b=2;"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a\n%{ if true }b", "f.tpl:2:1: `%{ if }` without a matching `%{ endif }`"),
        ("a %{ endif }", "f.tpl:1:3: `%{ endif }` without a matching `%{ if }`"),
        ("%{ for x in y }", "f.tpl:1:1: `%{ for }` without a matching `%{ endfor }`"),
        ("%{ endfor }", "f.tpl:1:1: `%{ endfor }` without a matching `%{ for }`"),
        ("%{ else }", "f.tpl:1:1: `%{ else }` without a matching `%{ if }`"),
        ("%{ if true }%{ endfor }", "f.tpl:1:13: `%{ endfor }` without a matching `%{ for }`"),
        (
            "%{ while x }",
            "f.tpl:1:1: invalid template directive `%{while x}`: expected if, else, endif, for or"
            " endfor",
        ),
        ("%{ if true ", "f.tpl:1:1: unclosed `%{` (missing `}`)"),
    ],
)
def test_directive_errors_are_located(template: str, expected: str) -> None:
    with pytest.raises(HclSyntaxError) as info:
        parse_template(template, Loc("f.tpl", 1, 1))
    assert f"{info.value.loc}: {info.value.message}" == expected


def test_directive_error_in_a_quoted_string_is_a_template_problem() -> None:
    text = hcl_builder('ami_name = "a%{ if true }b"')
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:7:14: source.amazon-ebs.x.ami_name: `%{ if }` without a matching `%{ endif }`"
    ]


def test_for_and_splat_in_a_real_template() -> None:
    text = hcl_builder(
        'ami_name = "web"\n'
        '  ami_regions = [for r in ["eu-west-1", "us-west-2"] : r if r != "us-west-2"]\n'
        '  tags = {for k in ["a", "b"] : upper(k) => "${k}%{ if k == "a" }!%{ endif }"}'
    )
    builder = load_text(text, "hcl").builders[0]
    assert builder.ami_regions == ("eu-west-1",)
    assert dict(builder.tags) == {"A": "a!", "B": "b"}


# --------------------------------------------------------------------------- unknown values


@pytest.mark.parametrize(
    "expr",
    [
        "var.unknown",
        "var.unknown.id",
        "var.unknown[0]",
        "var.l[var.unknown]",
        '"ami-${var.unknown}"',
        "upper(var.unknown)",
        'join(",", var.unknown_list)',
        "var.unknown == 1",
        "var.unknown + 1",
        "-var.unknown",
        "!var.unknown",
        "var.unknown && true",
        "var.unknown ? 1 : 2",
        "{(var.unknown) = 1}",
        "[for s in var.unknown : s]",
        "[for s in var.l : s if var.unknown]",
        "{for s in var.l : var.unknown => s}",
        "var.unknown[*].id",
        '"%{ if var.unknown }a%{ endif }"',
        '"%{ for s in var.unknown }a%{ endfor }"',
        '"%{ for s in var.l }${var.unknown}%{ endfor }"',
        "can(var.unknown)",
        'try(var.unknown, "fallback")',
        "try(var.unknown_list, [])",
        "max(var.unknown_list...)",
        "var.unknown...",
        "convert(var.unknown, string)",
    ],
)
def test_unknown_propagates(expr: str) -> None:
    if expr == "var.unknown...":
        expr = "concat(var.unknown...)"
    assert ev(expr) is UNKNOWN


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[var.unknown, 1]", [UNKNOWN, 1]),  # a list keeps its known elements
        ("[var.unknown][*].id", [UNKNOWN]),
        ("{a = var.unknown}", {"a": UNKNOWN}),
        ("false && var.unknown", False),  # amibake short-circuits && and ||
        ('try(nope.x, var.unknown, "z")', UNKNOWN),
        ("can(nope.x)", False),
        ("true ? 1 : var.unknown", 1),
    ],
)
def test_unknown_only_where_it_flows(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_unknown_is_a_singleton_with_a_clear_repr() -> None:
    assert repr(UNKNOWN) == "UNKNOWN"
    assert copy.deepcopy({"a": [UNKNOWN]})["a"][0] is UNKNOWN
    assert type(UNKNOWN)() is UNKNOWN


def test_unknown_becomes_a_scalar_node() -> None:
    s = scope()
    errors: list[tuple[EvalError, str]] = []
    node = s.resolve(
        ExprNode(parse_expression("var.unknown", Loc("t", 1, 1)), Loc("t", 1, 1)), errors
    )
    assert errors == []
    assert getattr(node, "value", None) is UNKNOWN


def test_try_leaves_no_failure_behind() -> None:
    s = scope()
    s._locals = {"bad": ExprNode(parse_expression("1 + {}", Loc("t", 3, 1)), Loc("t", 3, 1))}  # type: ignore[assignment]
    assert s.eval(parse_expression('try(local.bad, "ok")', Loc("t", 1, 1))) == "ok"
    with pytest.raises(EvalError) as info:
        s.eval(parse_expression("local.bad", Loc("t", 2, 1)))
    assert not info.value.reported  # reported where it happens, not swallowed by try()


def test_a_for_expression_may_span_lines() -> None:
    text = hcl_builder(
        'ami_name = "nnn"\n'
        "  ami_regions = sort([\n"
        '    for r in keys({us-west-2 = 1, eu = 2}) :\n'
        '    replace(r, "eu", "eu-west-1")\n'
        "  ])",
    )
    assert load_text(text, "hcl").builders[0].ami_regions == ("eu-west-1", "us-west-2")
