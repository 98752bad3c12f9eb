"""Packer's HCL2 function library: one table, Packer's documented examples as expectations."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from amibake.core.templates.errors import Loc
from amibake.core.templates.evaluate import EvalError, Scope
from amibake.core.templates.functions import REGISTRY
from amibake.core.templates.hclexpr import parse_expression

from .helpers import NOW, fixed_uuid, hcl_builder, load_text, problems_of

PACKER_FUNCTIONS = {
    # hcl2template/functions.go, every name in its table
    "abs",
    "abspath",
    "alltrue",
    "anytrue",
    "aws_secretsmanager",
    "aws_secretsmanager_raw",
    "basename",
    "base64decode",
    "base64encode",
    "base64gzip",
    "bcrypt",
    "can",
    "ceil",
    "chomp",
    "chunklist",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "consul_key",
    "contains",
    "convert",
    "csvdecode",
    "dirname",
    "distinct",
    "element",
    "endswith",
    "file",
    "filebase64",
    "fileexists",
    "fileset",
    "flatten",
    "floor",
    "format",
    "formatdate",
    "formatlist",
    "indent",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "legacy_isotime",
    "legacy_strftime",
    "length",
    "log",
    "lookup",
    "lower",
    "max",
    "md5",
    "merge",
    "min",
    "parseint",
    "pathexpand",
    "pow",
    "range",
    "reverse",
    "replace",
    "regex",
    "regexall",
    "regex_replace",
    "rfc3339_parse",
    "rsadecrypt",
    "setintersection",
    "setproduct",
    "setunion",
    "sha1",
    "sha256",
    "sha512",
    "signum",
    "slice",
    "sort",
    "split",
    "startswith",
    "strcontains",
    "strrev",
    "substr",
    "sum",
    "textdecodebase64",
    "textencodebase64",
    "timestamp",
    "timeadd",
    "title",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "unix_timestamp_parse",
    "upper",
    "urlencode",
    "uuidv4",
    "uuidv5",
    "values",
    "vault",
    "yamldecode",
    "yamlencode",
    "zipmap",
    "templatefile",
}


def scope(tmp: Path | None = None, **kwargs: Any) -> Scope:
    return Scope(
        variables={},
        locals_={},
        now=NOW,
        env={"HOME": "/home/builder"},
        uuid_factory=fixed_uuid,
        template_dir=tmp or Path("/nonexistent"),
        cwd=tmp,
        **kwargs,
    )


def ev(text: str, tmp: Path | None = None, **kwargs: Any) -> Any:
    return scope(tmp, **kwargs).eval(parse_expression(text, Loc("t.pkr.hcl", 1, 1)))


def error_of(text: str, tmp: Path | None = None, **kwargs: Any) -> str:
    with pytest.raises(EvalError) as info:
        ev(text, tmp, **kwargs)
    return f"{info.value.loc}: {info.value.message}"


def test_the_registry_holds_exactly_packers_table_plus_marked_extras() -> None:
    packer = {name for name, fn in REGISTRY.items() if not fn.extra}
    assert packer == PACKER_FUNCTIONS
    extras = {name for name, fn in REGISTRY.items() if fn.extra}
    assert extras == {
        "clean_resource_name",
        "env",
        "go_replace",
        "isotime",
        "tonumber",
        "tostring",
        "unix_timestamp",
    }


# Packer's (and go-cty's) documented examples, one or more per function.
EXAMPLES: list[tuple[str, Any]] = [
    # strings
    ('chomp("hello\\n")', "hello"),
    ('chomp("hello\\r\\n")', "hello"),
    ('chomp("hello\\n\\n")', "hello"),
    ('endswith("hello world", "world")', True),
    ('endswith("hello world", "hello")', False),
    ('format("Hello, %s!", "Ander")', "Hello, Ander!"),
    ('format("There are %d lights", 4)', "There are 4 lights"),
    (
        'format("%-5s|%5.2f|%03d|%v|%#v|%q|%t", "ab", 3.14159, 7, [1, "a"], "x", "q", true)',
        'ab   | 3.14|007|[1,"a"]|"x"|"q"|true',
    ),
    ('format("%[2]s %[1]s", "a", "b")', "b a"),
    (
        'formatlist("Hello, %s!", ["Valentina", "Ander", "Olivia", "Sam"])',
        ["Hello, Valentina!", "Hello, Ander!", "Hello, Olivia!", "Hello, Sam!"],
    ),
    (
        'formatlist("%s, %s!", "Salutations", ["Valentina", "Ander"])',
        ["Salutations, Valentina!", "Salutations, Ander!"],
    ),
    ('indent(2, "[\\n  foo,\\n  bar,\\n]\\n")', "[\n    foo,\n    bar,\n  ]\n"),
    ('join(", ", ["foo", "bar", "baz"])', "foo, bar, baz"),
    ('join(", ", ["foo"], ["bar"])', "foo, bar"),
    ('lower("HELLO")', "hello"),
    ('regex("[a-z]+", "53453453.345345aaabbbccc23454")', "aaabbbccc"),
    (
        'regex("(\\\\d\\\\d\\\\d\\\\d)-(\\\\d\\\\d)-(\\\\d\\\\d)", "2019-02-01")',
        ["2019", "02", "01"],
    ),
    (
        'regex("^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?", "https://terraform.io/docs/")',
        {"scheme": "https", "authority": "terraform.io"},
    ),
    ('regexall("[a-z]+", "1234abcd5678efgh9")', ["abcd", "efgh"]),
    ('length(regexall("[a-z]+", "1234abcd5678efgh9"))', 2),
    ('length(regexall("[a-z]+", "123456789")) > 0', False),
    ('regex_replace("hello world", "o", "0")', "hell0 w0rld"),
    ('regex_replace("hello world", "(o)", "[$1]")', "hell[o] w[o]rld"),
    ('regex_replace("2019-02-01", "(?P<y>\\\\d+)-(?P<m>\\\\d+)-\\\\d+", "$${m}/$${y}")', "02/2019"),
    ('replace("1 + 2 + 3", "+", "-")', "1 - 2 - 3"),
    ('replace("a/b/", "/b/", "x")', "ax"),  # plain text, unlike Terraform's /regex/
    ('split(",", "foo,bar,baz")', ["foo", "bar", "baz"]),
    ('split(",", "foo")', ["foo"]),
    ('split(",", "")', [""]),
    ('startswith("hello world", "hello")', True),
    ('strcontains("hello world", "wor")', True),
    ('strcontains("hello world", "cat")', False),
    ('strrev("hello")', "olleh"),
    ('substr("hello world", 1, 4)', "ello"),
    ('substr("hello world", -5, -1)', "world"),
    ('substr("hello world", 6, 10)', "world"),
    ('title("hello world")', "Hello World"),
    ('trim("?!hello?!", "!?")', "hello"),
    ('trim("   hello! world.!  ", "! ")', "hello! world."),
    ('trimprefix("helloworld", "hello")', "world"),
    ('trimprefix("helloworld", "cat")', "helloworld"),
    ('trimspace("  hello\\n\\n")', "hello"),
    ('trimsuffix("helloworld", "world")', "hello"),
    ('upper("hello")', "HELLO"),
    # numbers
    ("abs(23)", 23),
    ("abs(0)", 0),
    ("abs(-12.4)", 12.4),
    ("ceil(5)", 5),
    ("ceil(5.1)", 6),
    ("floor(4.9)", 4),
    ("log(50, 10)", pytest.approx(1.6989700043360185)),
    ("log(16, 2)", 4),
    ("max(12, 54, 3)", 54),
    ("max([12, 54, 3]...)", 54),
    ("min(12, 54, 3)", 3),
    ('parseint("100", 10)', 100),
    ('parseint("FF", 16)', 255),
    ('parseint("-10", 16)', -16),
    ('parseint("11111111", 2)', 255),
    ('parseint("aA", 62)', 656),
    ("pow(3, 2)", 9),
    ("pow(4, 0)", 1),
    ("signum(-13)", -1),
    ("signum(0)", 0),
    ("signum(344)", 1),
    # collections
    ("alltrue([true, true])", True),
    ('alltrue(["true", true])', True),
    ("alltrue([true, false])", False),
    ("alltrue([])", True),
    ("anytrue([true, false])", True),
    ("anytrue([])", False),
    ('chunklist(["a", "b", "c", "d", "e"], 2)', [["a", "b"], ["c", "d"], ["e"]]),
    ('chunklist(["a", "b", "c", "d", "e"], 1)', [["a"], ["b"], ["c"], ["d"], ["e"]]),
    ('coalesce("a", "b")', "a"),
    ('coalesce("", "b")', "b"),
    ("coalesce(1, 2)", 1),
    ('coalesce(["", "b"]...)', "b"),
    ('coalescelist(["a", "b"], ["c", "d"])', ["a", "b"]),
    ('coalescelist([], ["c", "d"])', ["c", "d"]),
    ('compact(["a", "", "b", "c"])', ["a", "b", "c"]),
    ('concat(["a", ""], ["b", "c"])', ["a", "", "b", "c"]),
    ('contains(["a", "b", "c"], "a")', True),
    ('contains(["a", "b", "c"], "d")', False),
    ('contains([1, 2], "1")', False),
    ('distinct(["a", "b", "a", "c", "d", "b"])', ["a", "b", "c", "d"]),
    ('element(["a", "b", "c"], 1)', "b"),
    ('element(["a", "b", "c"], 3)', "a"),
    ('flatten([["a", "b"], [], ["c"]])', ["a", "b", "c"]),
    ('flatten([[["a", "b"], []], ["c"]])', ["a", "b", "c"]),
    ('index(["a", "b", "c"], "b")', 1),
    ("keys({a=1, c=2, d=3})", ["a", "c", "d"]),
    ("keys({d=1, a=2})", ["a", "d"]),
    ("length([])", 0),
    ('length(["a", "b"])', 2),
    ('length({"a" = "b"})', 1),
    ('length("hello")', 5),
    ('length("👾🕹️")', 3),  # cty counts grapheme clusters; amibake counts code points
    ('lookup({a="ay", b="bee"}, "a", "what?")', "ay"),
    ('lookup({a="ay", b="bee"}, "c", "what?")', "what?"),
    ('merge({a="b", c="d"}, {e="f", c="z"})', {"a": "b", "c": "z", "e": "f"}),
    ('merge({a="b"}, {a=[1,2], c="z"}, {d=3})', {"a": [1, 2], "c": "z", "d": 3}),
    ("range(3)", [0, 1, 2]),
    ("range(0)", []),
    ("range(1, 4)", [1, 2, 3]),
    ("range(1, 8, 2)", [1, 3, 5, 7]),
    ("range(1, 4, 0.5)", [1, 1.5, 2, 2.5, 3, 3.5]),
    ("range(4, 1)", [4, 3, 2]),
    ("range(10, 5, -2)", [10, 8, 6]),
    ("reverse([1, 2, 3])", [3, 2, 1]),
    ('setintersection(["a", "b"], ["b", "c"], ["b", "d"])', ["b"]),
    (
        'setproduct(["development", "staging", "production"], ["app1", "app2"])',
        [
            ["development", "app1"],
            ["development", "app2"],
            ["staging", "app1"],
            ["staging", "app2"],
            ["production", "app1"],
            ["production", "app2"],
        ],
    ),
    ('setunion(["a", "b"], ["b", "c"], ["d"])', ["a", "b", "c", "d"]),
    ('slice(["a", "b", "c", "d"], 1, 3)', ["b", "c"]),
    ('sort(["e", "d", "a", "x"])', ["a", "d", "e", "x"]),
    ("sum([10, 13, 6, 4.5])", 33.5),
    ("sum([1, 2])", 3),
    ("values({a=3, c=2, d=1})", [3, 2, 1]),
    ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
    # encoding
    ('base64decode("SGVsbG8gV29ybGQ=")', "Hello World"),
    ('base64encode("Hello World")', "SGVsbG8gV29ybGQ="),
    (
        'csvdecode("a,b,c\\n1,2,3\\n4,5,6")',
        [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "5", "c": "6"}],
    ),
    ('jsondecode("{\\"hello\\": \\"world\\"}")', {"hello": "world"}),
    ('jsondecode("true")', True),
    ('jsondecode("[1, 2.5, 3.0]")', [1, 2.5, 3]),
    ('jsonencode({"hello"="world"})', '{"hello":"world"}'),
    (
        'jsonencode({b=[1, 2.5, true, null], a="<&>"})',
        '{"a":"\\u003c\\u0026\\u003e","b":[1,2.5,true,null]}',
    ),
    ('textencodebase64("Hello World", "UTF-16LE")', "SABlAGwAbABvACAAVwBvAHIAbABkAA=="),
    ('textdecodebase64("SABlAGwAbABvACAAVwBvAHIAbABkAA==", "UTF-16LE")', "Hello World"),
    ('urlencode("Hello World!")', "Hello+World%21"),
    ('urlencode("☃")', "%E2%98%83"),
    (
        '"http://example.com/search?q=${urlencode("terraform urlencode")}"',
        "http://example.com/search?q=terraform+urlencode",
    ),
    ('yamldecode("hello: world")', {"hello": "world"}),
    ('yamldecode("true")', True),
    ('yamldecode("{a: &foo [1, 2, 3], b: *foo}")', {"a": [1, 2, 3], "b": [1, 2, 3]}),
    (
        'yamldecode("{a: &foo [1, {c: d}], b: *foo}")',
        {"a": [1, {"c": "d"}], "b": [1, {"c": "d"}]},
    ),
    ('yamldecode("on: yes")', {"on": "yes"}),  # YAML 1.2, as go-cty-yaml
    ('yamlencode({"a":"b", "c":"d"})', '"a": "b"\n"c": "d"\n'),
    ('yamlencode({"foo":[1, 2, 3], "bar": "baz"})', '"bar": "baz"\n"foo":\n- 1\n- 2\n- 3\n'),
    (
        'yamlencode({"foo":[1, {"a":"b","c":"d"}, 3], "bar": "baz"})',
        '"bar": "baz"\n"foo":\n- 1\n- "a": "b"\n  "c": "d"\n- 3\n',
    ),
    # hashes
    ('md5("hello world")', "5eb63bbbe01eeed093cb22bb8f5acdc3"),
    ('sha1("hello world")', "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"),
    ('sha256("hello world")', "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
    (
        'sha512("hello world")',
        "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f"
        "989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f",
    ),
    # network
    ('cidrhost("10.12.112.0/20", 16)', "10.12.112.16"),
    ('cidrhost("10.12.112.0/20", 268)', "10.12.113.12"),
    ('cidrhost("10.12.112.0/20", -1)', "10.12.127.255"),
    ('cidrhost("fd00:fd12:3456:7890:00a2::/72", 34)', "fd00:fd12:3456:7890::22"),
    ('cidrnetmask("172.16.0.0/12")', "255.240.0.0"),
    ('cidrsubnet("172.16.0.0/12", 4, 2)', "172.18.0.0/16"),
    ('cidrsubnet("10.1.2.0/24", 4, 15)', "10.1.2.240/28"),
    ('cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)', "fd00:fd12:3456:7800:a200::/72"),
    (
        'cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)',
        ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"],
    ),
    (
        'cidrsubnets("fd00:fd12:3456:7890::/56", 16, 16, 16, 32)',
        [
            "fd00:fd12:3456:7800::/72",
            "fd00:fd12:3456:7800:100::/72",
            "fd00:fd12:3456:7800:200::/72",
            "fd00:fd12:3456:7800:300::/88",
        ],
    ),
    # time (NOW is 2023-03-15T13:20:05Z)
    ("timestamp()", "2023-03-15T13:20:05Z"),
    ('formatdate("DD MMM YYYY hh:mm ZZZ", "2018-01-02T23:12:01Z")', "02 Jan 2018 23:12 UTC"),
    (
        'formatdate("EEEE, DD-MMM-YY hh:mm:ss ZZZ", "2018-01-02T23:12:01Z")',
        "Tuesday, 02-Jan-18 23:12:01 UTC",
    ),
    (
        'formatdate("EEE, DD MMM YYYY hh:mm:ss ZZZ", "2018-01-02T23:12:01-08:00")',
        "Tue, 02 Jan 2018 23:12:01 -0800",
    ),
    ('formatdate("MMM DD, YYYY", "2018-01-02T23:12:01Z")', "Jan 02, 2018"),
    ('formatdate("HH:mmaa", "2018-01-02T23:12:01Z")', "11:12pm"),
    ('formatdate("h\'h\'mm", "2018-01-02T23:12:01-08:00")', "23h12"),
    ('formatdate("Z ZZZZ ZZZZZ", "2018-01-02T23:12:01Z")', "Z +0000 +00:00"),
    ('timeadd("2017-11-22T00:00:00Z", "10m")', "2017-11-22T00:10:00Z"),
    ('timeadd("2017-11-22T00:00:00Z", "-1h30m")', "2017-11-21T22:30:00Z"),
    ('timeadd("2017-11-22T00:00:00+02:00", "1.5h")', "2017-11-22T01:30:00+02:00"),
    ("legacy_isotime()", "2023-03-15T13:20:05Z"),
    ('legacy_isotime("2006-01-02")', "2023-03-15"),
    ('legacy_isotime("Jan _2 03:04PM MST")', "Mar 15 01:20PM UTC"),
    ('legacy_strftime("%Y-%m-%d %H:%M:%S %a %b %j")', "2023-03-15 13:20:05 Wed Mar 074"),
    ('rfc3339_parse("2023-07-25T23:43:16Z").unix', 1690328596),
    ('rfc3339_parse("2023-07-25T23:43:16-05:00").hour', 23),
    ('rfc3339_parse("2023-07-25 23:43:16.5Z").weekday_name', "Tuesday"),
    ("unix_timestamp_parse(1690328596).rfc3339", "2023-07-25T23:43:16Z"),
    ("unix_timestamp_parse(1690328596).iso_week", 30),
    # ids
    ("uuidv4()", fixed_uuid()),
    ('uuidv5("dns", "www.terraform.io")', "a5008fae-b28c-5ba5-96cd-82b4c53552d6"),
    ('uuidv5("url", "https://www.terraform.io/")', "9db6f67c-dd95-5ea0-aa5b-e70e5c5f7cf5"),
    ('uuidv5("oid", "1.3.6.1.4")', "af9d40a5-7a36-5c07-b23a-851cd99fbfa5"),
    ('uuidv5("x500", "CN=Example,C=GB")', "84e09961-4aa4-57f8-95b7-03edb1073253"),
    (
        'uuidv5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.terraform.io")',
        "a5008fae-b28c-5ba5-96cd-82b4c53552d6",
    ),
    # type conversion
    ('convert("1", number)', 1),
    ("convert([1, 2], list(string))", ["1", "2"]),
    ("convert(true, string)", "true"),
    ('try(jsondecode("{"), "fallback")', "fallback"),
    ('try(jsondecode("{\\"a\\": 1}").a, 2)', 1),
    ('can(regex("^ami-", "ami-123"))', True),
    ('can(regex("^ami-", "foo"))', False),
    # files with no file system
    ('basename("foo/bar/baz.txt")', "baz.txt"),
    ('basename("foo/bar/")', "bar"),
    ('dirname("foo/bar/baz.txt")', "foo/bar"),
    ('dirname("baz.txt")', "."),
    ('pathexpand("~/.ssh/id_rsa")', "/home/builder/.ssh/id_rsa"),
    ('pathexpand("/etc/resolv.conf")', "/etc/resolv.conf"),
    ('abspath("/a/b/../c")', "/a/c"),
    # amibake extras kept for Packer JSON
    ('clean_resource_name("a:b*c (d)")', "a-b-c (d)"),
    ("unix_timestamp()", "1678886405"),
    ('isotime("2006-01-02")', "2023-03-15"),
    # Packer JSON's `replace old new n src` (Go's strings.Replace) with a computed count
    ('go_replace("a-b-c-d", "-", "+", 2)', "a+b+c-d"),
    ('go_replace("a-b", "-", "+", -1)', "a+b"),
    ('go_replace("ab", "", "_", 2)', "_a_b"),
]


@pytest.mark.parametrize(("expr", "expected"), EXAMPLES, ids=[e for e, _ in EXAMPLES])
def test_documented_examples(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_every_packer_function_has_an_example_or_a_dedicated_test() -> None:
    covered = {name for name in REGISTRY if any(f"{name}(" in e for e, _ in EXAMPLES)}
    dedicated = {
        "aws_secretsmanager",
        "aws_secretsmanager_raw",
        "base64gzip",
        "bcrypt",
        "consul_key",
        "vault",
        "file",
        "filebase64",
        "fileexists",
        "fileset",
        "templatefile",
        "rsadecrypt",
        "tonumber",
        "tostring",
        "env",
    }
    assert set(REGISTRY) - covered - dedicated == set()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("upper(1, 2)", "t.pkr.hcl:1:1: upper(): takes 1 argument, got 2"),
        ("timestamp(1)", "t.pkr.hcl:1:1: timestamp(): takes 0 arguments, got 1"),
        ("cidrsubnets()", "t.pkr.hcl:1:1: cidrsubnets(): takes at least 1 argument, got 0"),
        ("upperr(1)", "t.pkr.hcl:1:1: unknown function `upperr()`; did you mean `upper`?"),
        (
            'formatdate("YYYY", "yesterday")',
            "t.pkr.hcl:1:20: formatdate(): `yesterday` is not a valid RFC3339 timestamp",
        ),
        (
            'formatdate("YYYY", "2018-01-02")',
            "t.pkr.hcl:1:20: formatdate(): `2018-01-02` is not a valid RFC3339 timestamp",
        ),
        (
            'formatdate("Q", "2018-01-02T23:12:01Z")',
            "t.pkr.hcl:1:12: formatdate(): invalid date format verb `Q`",
        ),
        (
            'timeadd("2017-11-22T00:00:00Z", "10 minutes")',
            "t.pkr.hcl:1:33: timeadd(): invalid duration `10 minutes`",
        ),
        (
            'cidrsubnet("172.16.0.0/12", 4, 16)',
            "t.pkr.hcl:1:32: cidrsubnet(): prefix extension of 4 does not accommodate a subnet"
            " numbered 16",
        ),
        (
            'cidrhost("10.0.0.0/30", 4)',
            "t.pkr.hcl:1:25: cidrhost(): prefix of 30 does not accommodate a host numbered 4",
        ),
        (
            'cidrnetmask("not-a-cidr")',
            "t.pkr.hcl:1:13: cidrnetmask(): invalid CIDR expression `not-a-cidr`",
        ),
        (
            'regex("[a-z]+", "123")',
            "t.pkr.hcl:1:1: regex(): pattern did not match any part of the given string",
        ),
        (
            'regex("(", "x")',
            "t.pkr.hcl:1:7: regex(): invalid regular expression pattern: missing closing ): `(`",
        ),
        ('index(["a"], "b")', "t.pkr.hcl:1:1: index(): item not found"),
        (
            "element([], 0)",
            "t.pkr.hcl:1:9: element(): cannot use element function with an empty list",
        ),
        (
            'coalesce("", null)',
            "t.pkr.hcl:1:1: coalesce(): no non-null, non-empty-string arguments",
        ),
        ('lookup({a=1}, "b")', "t.pkr.hcl:1:15: lookup(): the given object has no attribute `b`"),
        (
            'zipmap(["a"], [])',
            "t.pkr.hcl:1:1: zipmap(): number of keys (1) does not match number of values (0)",
        ),
        (
            'jsondecode("{")',
            "t.pkr.hcl:1:12: jsondecode(): invalid JSON: Expecting property name enclosed in double"
            " quotes at line 1, column 2",
        ),
        (
            'yamldecode("a: 1\\n---\\nb: 2")',
            "t.pkr.hcl:1:12: yamldecode(): the given YAML contains more than one document",
        ),
        ('base64decode("%%%")', "t.pkr.hcl:1:14: base64decode(): failed to decode base64 data"),
        (
            'parseint("12", 1)',
            "t.pkr.hcl:1:16: parseint(): base must be a whole number between 2 and 62 inclusive",
        ),
        (
            'parseint("xyz", 10)',
            "t.pkr.hcl:1:10: parseint(): cannot parse `xyz` as a base 10 integer",
        ),
        (
            'uuidv5("nope", "x")',
            "t.pkr.hcl:1:8: uuidv5(): namespace `nope` is not supported: use dns, url, oid, x500 or"
            " a UUID",
        ),
        (
            'textencodebase64("x", "not-an-encoding")',
            "t.pkr.hcl:1:23: textencodebase64(): `not-an-encoding` is not a supported IANA encoding"
            " name or alias",
        ),
        ('upper(["a"])', "t.pkr.hcl:1:7: upper(): string required, got list"),
        ('abs("x")', "t.pkr.hcl:1:5: abs(): a number is required, got `x`"),
        ("sum([])", "t.pkr.hcl:1:5: sum(): cannot sum an empty list"),
        ("range(1, 2, 0)", "t.pkr.hcl:1:1: range(): step must not be zero"),
        (
            'formatlist("%s %s", ["a"], ["b", "c"])',
            "t.pkr.hcl:1:28: formatlist(): argument 3 has length 2, which is inconsistent with the"
            " length 1 of an earlier argument",
        ),
        (
            'format("%d", 1.5)',
            "t.pkr.hcl:1:1: format(): unsupported value for %d: the number has a fractional part",
        ),
        (
            'try(jsondecode("{"), regex("a", "b"))',
            "t.pkr.hcl:1:1: try(): no expression succeeded; the first failed at line 1:"
            " jsondecode(): invalid JSON: Expecting property name enclosed in double quotes"
            " at line 1, column 2",
        ),
        ('convert("x", number)', 't.pkr.hcl:1:9: expected a number, got "x"'),
        (
            'vault("/secret/data/x", "key")',
            "t.pkr.hcl:1:1: `vault()` is not supported yet: amibake has no Vault connection",
        ),
        (
            'consul_key("a/b")',
            "t.pkr.hcl:1:1: `consul_key()` is not supported yet: amibake has no Consul connection",
        ),
        (
            'aws_secretsmanager("app/db", "password")',
            "t.pkr.hcl:1:1: aws_secretsmanager(): no AWS target to read secrets from",
        ),
        (
            'aws_secretsmanager_raw("app/db")',
            "t.pkr.hcl:1:1: aws_secretsmanager_raw(): no AWS target to read secrets from",
        ),
        ("upper([]...)", "t.pkr.hcl:1:1: upper(): takes 1 argument, got 0"),
        ('upper("a"...)', "t.pkr.hcl:1:1: `...` needs a list as the last argument"),
    ],
)
def test_errors_are_one_located_line(expr: str, expected: str) -> None:
    message = error_of(expr)
    assert "\n" not in message
    assert message == expected


def test_a_function_error_in_a_template_is_a_located_problem() -> None:
    text = hcl_builder('ami_name = "x-${cidrsubnet("10.0.0.0/8", 30, 1)}"')
    assert problems_of(text, "hcl") == [
        "t.pkr.hcl:7:42: source.amazon-ebs.x.ami_name: cidrsubnet(): insufficient address space"
        " to extend prefix of 8 by 30"
    ]


def test_functions_in_a_real_template() -> None:
    text = hcl_builder(
        'ami_name = "web-${formatdate("YYYYMMDD", timestamp())}-${substr(sha256("x"), 0, 8)}"\n'
        '  tags = merge({Name = upper("web")}, zipmap(["Os"], [title("ubuntu")]))'
    )
    spec = load_text(text, "hcl")
    builder = spec.builders[0]
    assert builder.ami_name == "web-20230315-2d711642"
    assert dict(builder.tags) == {"Name": "WEB", "Os": "Ubuntu"}


# --------------------------------------------------------------------------- files


def test_file_functions_resolve_against_the_template_directory(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "hello.txt").write_text("Hello\n")
    (tmp_path / "files" / "world.txt").write_text("World\n")
    (tmp_path / "files" / "sub").mkdir()
    (tmp_path / "files" / "sub" / "deep.txt").write_text("deep")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    (tmp_path / "bin.dat").write_bytes(b"\xff\x00")
    assert ev('file("files/hello.txt")', tmp_path) == "Hello\n"
    assert ev(f'file("{tmp_path}/files/world.txt")', tmp_path) == "World\n"
    assert ev('fileexists("files/hello.txt")', tmp_path) is True
    assert ev('fileexists("files/nope.txt")', tmp_path) is False
    assert ev('fileset(path.root, "files/*.txt")', tmp_path) == [
        "files/hello.txt",
        "files/world.txt",
    ]
    assert ev('fileset(path.root, "files/{hello,world}.txt")', tmp_path) == [
        "files/hello.txt",
        "files/world.txt",
    ]
    assert ev('fileset(path.root, "{files,other}/*.txt")', tmp_path) == [
        "files/hello.txt",
        "files/world.txt",
        "other/x.txt",
    ]
    assert ev('fileset("files", "**/*.txt")', tmp_path) == [
        "hello.txt",
        "sub/deep.txt",
        "world.txt",
    ]
    assert ev('fileset("files", "?????.txt")', tmp_path) == ["hello.txt", "world.txt"]
    assert ev('filebase64("bin.dat")', tmp_path) == base64.b64encode(b"\xff\x00").decode()
    assert ev('base64gzip("test")') == "H4sIAAAAAAACAytJLS4BAAx+f9gEAAAA"
    assert error_of('file("nope.txt")', tmp_path) == (
        f"t.pkr.hcl:1:6: file(): no file exists at {tmp_path}/nope.txt"
    )
    assert error_of('file("bin.dat")', tmp_path) == (
        f"t.pkr.hcl:1:6: file(): contents of {tmp_path}/bin.dat are not valid UTF-8; use"
        " filebase64 to obtain the Base64 encoded contents"
    )
    assert error_of('fileexists("files")', tmp_path) == (
        f"t.pkr.hcl:1:12: fileexists(): {tmp_path}/files is not a regular file"
    )


def test_templatefile_renders_interpolations_and_directives(tmp_path: Path) -> None:
    (tmp_path / "backends.tftpl").write_text(
        "%{ for addr in ip_addrs ~}\nbackend ${addr}:${port}\n%{ endfor ~}\n"
    )
    assert (
        ev(
            'templatefile("backends.tftpl", { port = 8080, ip_addrs = ["10.0.0.1", "10.0.0.2"] })',
            tmp_path,
        )
        == "backend 10.0.0.1:8080\nbackend 10.0.0.2:8080\n"
    )
    (tmp_path / "config.tftpl").write_text(
        "%{ for config_key, config_value in config }\n"
        "set ${config_key} = ${config_value}\n%{ endfor ~}"
    )
    assert (
        ev(
            'templatefile("config.tftpl", { config = { x = "y", foo = "bar", key = "value" } })',
            tmp_path,
        )
        == "\nset foo = bar\n\nset key = value\n\nset x = y\n"
    )
    (tmp_path / "single.tftpl").write_text("${jsonencode(v)}")
    assert ev('templatefile("single.tftpl", {v = [1, "a"]})', tmp_path) == '[1,"a"]'
    (tmp_path / "missing.tftpl").write_text("line\n${nope}")
    assert error_of('templatefile("missing.tftpl", {})', tmp_path) == (
        f"t.pkr.hcl:1:31: templatefile(): vars map does not contain key `nope`, referenced at "
        f"{tmp_path}/missing.tftpl:2:3"
    )
    (tmp_path / "rec.tftpl").write_text('${templatefile("rec.tftpl", {})}')
    assert error_of('templatefile("rec.tftpl", {})', tmp_path) == (
        f"{tmp_path}/rec.tftpl:1:3: templatefile(): cannot recursively call templatefile from"
        " inside templatefile call"
    )
    (tmp_path / "bad.tftpl").write_text("a\n%{ if x }b")
    assert error_of('templatefile("bad.tftpl", {x = true})', tmp_path) == (
        f"{tmp_path}/bad.tftpl:2:1: `%{{ if }}` without a matching `%{{ endif }}`"
    )


# --------------------------------------------------------------------------- secrets, crypto


def test_aws_secretsmanager_reads_through_the_context() -> None:
    secrets = {
        "plain": "hunter2",
        "one": '{"password": "p1"}',
        "many": '{"user": "admin", "port": 5432}',
    }
    calls: list[tuple[str, str | None]] = []

    def aws_secret(secret_id: str, stage: str | None) -> str:
        calls.append((secret_id, stage))
        return secrets[secret_id]

    assert ev('aws_secretsmanager("plain", null)', aws_secret=aws_secret) == "hunter2"
    assert ev('aws_secretsmanager("one", null)', aws_secret=aws_secret) == "p1"
    assert ev('aws_secretsmanager("many", "user")', aws_secret=aws_secret) == "admin"
    assert ev('aws_secretsmanager("many", "port")', aws_secret=aws_secret) == "5432"
    assert ev('aws_secretsmanager_raw("many")', aws_secret=aws_secret) == secrets["many"]
    assert calls[0] == ("plain", "AWSCURRENT")
    assert error_of('aws_secretsmanager("many", null)', aws_secret=aws_secret) == (
        "t.pkr.hcl:1:1: aws_secretsmanager(): secret has multiple values and no key was set"
    )
    assert error_of('aws_secretsmanager("many", "nope")', aws_secret=aws_secret) == (
        "t.pkr.hcl:1:28: aws_secretsmanager(): no secret found for key `nope`"
    )


def test_rsadecrypt_round_trip() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    cipher = base64.b64encode(key.public_key().encrypt(b"s3cret", padding.PKCS1v15())).decode()
    s = scope()
    s._variables = {"pem": lambda: pem, "c": lambda: cipher}  # type: ignore[assignment]
    assert s.eval(parse_expression("rsadecrypt(var.c, var.pem)", Loc("t", 1, 1))) == "s3cret"
    assert error_of('rsadecrypt("eA==", "not a key")') == (
        "t.pkr.hcl:1:20: rsadecrypt(): invalid private key: not a PEM-encoded RSA private key"
    )


@pytest.mark.skipif(importlib.util.find_spec("bcrypt") is None, reason="bcrypt not installed")
def test_bcrypt_hash_verifies() -> None:
    import bcrypt  # type: ignore[import-not-found]

    hashed = ev('bcrypt("hello world", 5)')
    assert hashed.startswith("$2a$05$")
    assert bcrypt.checkpw(b"hello world", hashed.encode())


@pytest.mark.skipif(importlib.util.find_spec("bcrypt") is not None, reason="bcrypt installed")
def test_bcrypt_without_the_library_is_one_clear_line() -> None:
    assert error_of('bcrypt("x")') == (
        "t.pkr.hcl:1:1: bcrypt(): needs the `bcrypt` Python package, which is not installed"
    )


def test_extras_env_tostring_tonumber() -> None:
    s = Scope(
        variables={},
        locals_={},
        now=dt.datetime(2023, 3, 15, tzinfo=dt.UTC),
        env={"X": "1"},
        uuid_factory=fixed_uuid,
        template_dir=Path("/"),
    )
    assert s.eval(parse_expression('env("X")', Loc("t", 1, 1))) == "1"
    assert s.eval(parse_expression('env("NOPE")', Loc("t", 1, 1))) == ""
    assert ev("tostring(12)") == "12"
    assert ev("tostring(null)") is None
    assert ev('tonumber("1.5")') == 1.5


# --------------------------------------------------------------------------- Go regexp (RE2) syntax


def hcl_str(text: str) -> str:
    """``text`` as an HCL quoted string (``${``/``%{`` doubled, control characters as ``\\u``)."""
    body = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or c == "\x7f" else c
        for c in text
    )
    return '"' + body.replace("${", "$${").replace("%{", "%%{") + '"'


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        # POSIX classes inside brackets (RE2 syntax doc: ASCII only), every one of the 14
        ("^[[:alnum:]]+$", "aZ09", True),
        ("^[[:alnum:]]+$", "a-b", False),
        ("^[[:alpha:]]+$", "aZ", True),
        ("^[[:alpha:]]+$", "é", False),
        ("^[[:ascii:]]+$", "\x00~", True),
        ("^[[:ascii:]]+$", "é", False),
        ("^[[:blank:]]+$", " \t", True),
        ("^[[:blank:]]+$", "\n", False),
        ("^[[:cntrl:]]+$", "\x01\x7f", True),
        ("^[[:cntrl:]]+$", " ", False),
        ("^[[:digit:]]+$", "0189", True),
        ("^[[:digit:]]+$", "\u0661", False),
        ("^[[:graph:]]+$", "!~a", True),
        ("^[[:graph:]]+$", " ", False),
        ("^[[:lower:]]+$", "az", True),
        ("^[[:lower:]]+$", "A", False),
        ("^[[:print:]]+$", " ~", True),
        ("^[[:print:]]+$", "\t", False),
        ("^[[:punct:]]+$", "!/:@[`{~", True),
        ("^[[:punct:]]+$", "a", False),
        ("^[[:space:]]+$", " \t\n\v\f\r", True),
        ("^[[:space:]]+$", "x", False),
        ("^[[:upper:]]+$", "AZ", True),
        ("^[[:upper:]]+$", "a", False),
        ("^[[:word:]]+$", "a_Z9", True),
        ("^[[:word:]]+$", "-", False),
        ("^[[:xdigit:]]+$", "09afAF", True),
        ("^[[:xdigit:]]+$", "g", False),
        # negated: [[:^alpha:]], [^[:space:]]; mixed with other items
        ("^[[:^alpha:]]+$", "12-", True),
        ("^[[:^alpha:]]+$", "1a", False),
        ("^[^[:space:]]+$", "abc", True),
        ("^[^[:space:]]+$", "a c", False),
        ("^[a-f[:digit:]]+$", "ab12", True),
        ("^[a-f[:digit:]]+$", "ab1[", False),
        ("^[x[:^digit:]]+$", "x-", True),
        ("^[x[:^digit:]]+$", "x1", False),
        ("^[^x[:^digit:]]+$", "12", True),
        ("^[^x[:^digit:]]+$", "1x", False),
        ("^[:alpha:]+$", "ahp:", True),  # outside a bracket: a plain class of its letters
        # escapes in brackets
        ("^[\\]]$", "]", True),
        ("^[]a]+$", "]a", True),
        ("^[\\[\\\\-]+$", "[\\-", True),
        ("^[a-]+$", "a-", True),
        ("^[--/]+$", "-./", True),
        # Perl classes are ASCII, \s has no \v
        ("^\\d+$", "\u0661\u0662", False),
        ("^\\w+$", "é", False),
        ("^\\s$", "\v", False),
        ("^[\\d\\s]+$", "1 2", True),
        ("\\bfoo\\b", "a foo.", True),
        ("\\bfoo\\b", "éfooé", True),
        # anchors: $ is the very end unless (?m); \A, \z
        ("^vpc-[[:alnum:]]{8,}$", "vpc-0123456789abcdef0\n", False),
        ("a$", "a\n", False),
        ("(?m)a$", "a\nb", True),
        ("(?m:a$)", "a\nb", True),
        ("\\Aab\\z", "ab", True),
        ("\\Aab\\z", "ab\n", False),
        ("^*a$*", "ba", True),  # Go lets an assertion take a repetition
        # \Q...\E literal text
        ("^\\Qa.b*\\E$", "a.b*", True),
        ("^\\Qa.b*\\E$", "a.bbb", False),
        ("^\\Qab\\E+$", "abbb", True),
        ("^\\Q[[:x:]]", "[[:x:]]", True),
        # Unicode general categories
        ("^\\pL+$", "héllo", True),
        ("^\\p{L}+$", "h3", False),
        ("^\\p{Lu}\\p{Ll}+$", "Émile", True),
        ("^\\PL+$", "12", True),
        ("^\\p{Nd}+$", "\u0661\u0662", True),
        ("^\\p{^N}+$", "ab", True),
        ("^[\\p{Lu}\\d]+$", "É1", True),
        # flags apply to the rest of their group, across alternatives
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "AB", False),
        ("(?i)vpc-[[:xdigit:]]+", "VPC-ABC", True),
        ("(?i)a(?-i)b", "Ab", True),
        ("(?i)a(?-i)b", "AB", False),
        ("(?s)a.b", "a\nb", True),
        ("a.b", "a\nb", False),
        # other spellings
        ("^x{,2}$", "x{,2}", True),  # not a repeat count in Go: literal
        ("^\\x{41}\\x42\\101$", "ABA", True),
        ("(?<word>[a-z]+)", "abc", True),
    ],
)
def test_go_regex_syntax(pattern: str, text: str, matches: bool) -> None:
    assert ev(f"length(regexall({hcl_str(pattern)}, {hcl_str(text)})) > 0") is matches


def test_go_regex_results() -> None:
    assert ev('regex("[[:alpha:]]+", "123abc456")') == "abc"
    assert ev('regex("(?<y>[[:digit:]]{4})-(?P<m>\\\\d\\\\d)", "on 2019-02")') == {
        "y": "2019",
        "m": "02",
    }
    assert ev('regexall("[[:upper:]][[:lower:]]*", "HelloBigWorld")') == ["Hello", "Big", "World"]
    assert ev('regex_replace("a1b22", "[[:digit:]]+$", "#")') == "a1b#"
    assert ev('regex_replace("a.b.c", "\\\\Q.\\\\E", "-")') == "a-b-c"


def test_go_regex_syntax_leaks_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    # Python alone warns "Possible nested set" / "Possible set difference" for these
    assert ev('can(regex("^[[:alnum:]][[:punct:]]{2}$", "a!!"))') is True
    assert ev('can(regex("[a--c]&&[~~]", "x"))') is False
    assert [str(w.message) for w in recwarn.list] == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(", "missing closing ): `(`"),
        ("a)", "unexpected ): `a)`"),
        ("[a", "missing closing ]: `[a`"),
        ("[z-a]", "invalid character class range: `z-a`"),
        ("[a--]", "invalid character class range: `a--`"),
        ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
        ("a**", "invalid nested repetition operator: `**`"),
        ("a*+", "invalid nested repetition operator: `*+`"),
        ("*", "missing argument to repetition operator: `*`"),
        ("x{1001}", "invalid repeat count: `{1001}`"),
        ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
        ("(?<=a)b", "invalid or unsupported Perl syntax: `(?<`"),
        ("(a)\\1", "invalid escape sequence: `\\1`"),
        ("a\\Z", "invalid escape sequence: `\\Z`"),
        ("\\k", "invalid escape sequence: `\\k`"),
        ("\\p{Greek}", "Unicode class `\\p{Greek}` is not supported yet (general categories only)"),
        ("(?U)a+", "the ungreedy flag `U` is not supported yet"),
    ],
)
def test_go_regex_bad_pattern_is_one_located_line(pattern: str, message: str) -> None:
    assert error_of(f'regex({hcl_str(pattern)}, "x")') == (
        f"t.pkr.hcl:1:7: regex(): invalid regular expression pattern: {message}"
    )
    assert error_of(f'regex_replace("x", {hcl_str(pattern)}, "y")') == (
        f"t.pkr.hcl:1:20: regex_replace(): invalid regular expression pattern: {message}"
    )
    assert ev(f'can(regex({hcl_str(pattern)}, "x"))') is False


VPC_VALIDATED = """
variable "vpc_id" {
  type    = string
  default = "%s"
  validation {
    condition     = can(regex("^vpc-[[:alnum:]]{8,}$", var.vpc_id))
    error_message = "The vpc_id must be a valid VPC ID of the form 'vpc-xxxxxxxx'."
  }
}
"""


def test_teleport_style_vpc_validation_reads_go_regex_syntax() -> None:
    # gravitational/teleport's Packer variables validate ids with POSIX classes in RE2 syntax
    lines = 'ami_name = "xyz"\n  vpc_id = var.vpc_id\n  subnet_id = "subnet-0123456789abcdef0"'
    spec = load_text(hcl_builder(lines, VPC_VALIDATED % "vpc-0123456789abcdef0"), "hcl")
    assert spec.variables["vpc_id"].value == "vpc-0123456789abcdef0"
    assert problems_of(hcl_builder(lines, VPC_VALIDATED % "vpc-12"), "hcl") == [
        "t.pkr.hcl:4:13: var.vpc_id: The vpc_id must be a valid VPC ID of the form 'vpc-xxxxxxxx'."
    ]
