"""``amibake validate | inspect | fmt | convert``: headless template commands.

Exit status 0 when all is well, 2 for a template or usage problem (every
problem printed on its own line as ``file:line:col: key.path: message``).
This module never imports textual.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.model import BuildSpec, FileProvisioner, ShellProvisioner
from core.templates import TemplateError, convert, format_template, load


class _OrderedVars(argparse.Action):
    """Collects --var k=v and --var-file F; Packer applies --var after var files."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(values)
        setattr(namespace, self.dest, items)


def _var(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got `{text}`")
    return name.strip(), value


def _print_problems(error: TemplateError) -> int:
    for problem in error.problems:
        print(f"amibake: error: {problem}", file=sys.stderr)
    count = len(error.problems)
    if count > 1:
        print(f"amibake: {count} problems", file=sys.stderr)
    return error.exit_code


def _load(args: argparse.Namespace) -> BuildSpec:
    return load(
        args.template,
        vars=list(getattr(args, "var", None) or []),
        var_files=list(getattr(args, "var_file", None) or []),
    )


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        spec = _load(args)
    except TemplateError as error:
        return _print_problems(error)
    names = ", ".join(b.name for b in spec.builders)
    print(
        f"{args.template}: valid ({len(spec.builders)} builder(s): {names}; "
        f"{len(spec.provisioners)} provisioner(s))"
    )
    return 0


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if hasattr(value, "items") and not isinstance(value, str):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        spec = _load(args)
    except TemplateError as error:
        return _print_problems(error)
    out: list[str] = [f"template: {args.template} ({spec.source_format})", "", "variables:"]
    if not spec.variables:
        out.append("  (none)")
    for variable in spec.variables.values():
        note = f"  # {variable.description}" if variable.description else ""
        shown = variable.display_value() if variable.sensitive else _show(variable.value)
        out.append(f"  {variable.name} = {shown}{note}")
    out += ["", "builders:"]
    for builder in spec.builders:
        source = builder.source_ami or (
            f"filter {_show(builder.source_ami_filter.filters)} owners "
            f"{_show(builder.source_ami_filter.owners)}"
            if builder.source_ami_filter
            else "?"
        )
        out.append(f"  {builder.name} ({builder.type})")
        out.append(f"    region: {builder.region}  instance_type: {builder.instance_type}")
        out.append(f"    source: {source}")
        out.append(f"    ami_name: {builder.ami_name}")
        out.append(
            f"    ssh: {builder.ssh_username}@:{builder.ssh_port} timeout {builder.ssh_timeout:g}s"
        )
        if builder.tags:
            out.append(f"    tags: {_show(builder.tags)}")
    out += ["", "provisioners:"]
    if not spec.provisioners:
        out.append("  (none)")
    for i, prov in enumerate(spec.provisioners):
        if isinstance(prov, ShellProvisioner):
            what = (
                f"{len(prov.inline)} inline command(s)"
                if prov.inline
                else f"script {prov.script}"
                if prov.script
                else f"scripts {_show(prov.scripts)}"
            )
            out.append(f"  {i + 1}. shell: {what}")
        elif isinstance(prov, FileProvisioner):
            out.append(f"  {i + 1}. file: {prov.source} -> {prov.destination} ({prov.direction})")
    if spec.post_processors:
        out += ["", "post-processors:"]
        out += [f"  {p.type}: {p.output}" for p in spec.post_processors]
    print(spec.redact("\n".join(out)))
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    path = Path(args.template)
    try:
        formatted = format_template(path)
        current = path.read_text(encoding="utf-8-sig")
    except TemplateError as error:
        return _print_problems(error)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    changed = formatted != current
    if args.check:
        if changed:
            print(f"{path}: not formatted", file=sys.stderr)
            return 1
        return 0
    if args.write:
        if path.suffix == ".toml":
            from core.templates.writers import has_toml_comments

            if has_toml_comments(current):
                raise UsageError(f"{path}: fmt --write would drop the file's TOML comments")
        if changed:
            try:
                path.write_text(formatted, encoding="utf-8")
            except OSError as error:
                raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
            print(f"{path}: formatted")
        return 0
    sys.stdout.write(formatted)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    try:
        text = convert(args.template, args.to)
    except TemplateError as error:
        return _print_problems(error)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror or error}") from None
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: Any) -> None:
    def add_vars(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--var",
            action=_OrderedVars,
            type=_var,
            metavar="NAME=VALUE",
            help="set a variable (repeatable; wins over var files)",
        )
        parser.add_argument(
            "--var-file",
            action=_OrderedVars,
            metavar="FILE",
            help="read variables from a JSON, HCL or TOML file (repeatable)",
        )

    p = subparsers.add_parser("validate", help="check a template and report every problem")
    p.add_argument("template", metavar="TEMPLATE")
    add_vars(p)
    p.set_defaults(handler=cmd_validate)

    p = subparsers.add_parser("inspect", help="show a template's builders, provisioners, variables")
    p.add_argument("template", metavar="TEMPLATE")
    add_vars(p)
    p.set_defaults(handler=cmd_inspect)

    p = subparsers.add_parser("fmt", help="print a template in canonical formatting")
    p.add_argument("template", metavar="TEMPLATE")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is not formatted")
    mode.add_argument("--write", action="store_true", help="rewrite the file in place")
    p.set_defaults(handler=cmd_fmt)

    p = subparsers.add_parser("convert", help="convert a template to amibake TOML or Packer JSON")
    p.add_argument("template", metavar="TEMPLATE")
    p.add_argument("--to", choices=("toml", "json"), required=True)
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    p.set_defaults(handler=cmd_convert)
