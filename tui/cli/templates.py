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

from amibake.core.errors import UsageError
from amibake.core.model import BuildSpec, FileProvisioner, ShellProvisioner
from amibake.core.templates import TemplateError, convert, format_template
from amibake.tui.cli.options import (
    add_input_options,
    add_target_options,
    datasource_resolver,
    load_template,
)


def print_warnings(spec: BuildSpec) -> None:
    """Each of the template's warnings on stderr, one line each (what Packer only warns about)."""
    for warning in spec.warnings:
        print(f"amibake: warning: {spec.redact(warning)}", file=sys.stderr)


def _print_problems(error: TemplateError) -> int:
    for problem in error.problems:
        print(f"amibake: error: {problem}", file=sys.stderr)
    count = len(error.problems)
    if count > 1:
        print(f"amibake: {count} problems", file=sys.stderr)
    return error.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    started: list[Any] = []  # the local cloud --local started for the data sources, if any
    resolver = _validate_resolver(args, started)
    try:
        spec = load_template(
            args, warn_undeclared_vars=not args.no_warn_undeclared_var, datasources=resolver
        )
    except TemplateError as error:
        return _print_problems(error)
    finally:
        if resolver is not None:
            resolver.close()
        for cloud in started:
            cloud.stop()
    print_warnings(spec)
    names = ", ".join(b.name for b in spec.builders)
    print(
        f"{args.template}: valid ({len(spec.builders)} builder(s): {names}; "
        f"{len(spec.provisioners)} provisioner(s))"
    )
    return 0


def _validate_resolver(args: argparse.Namespace, started: list[Any]) -> Any:
    """With ``--evaluate-datasources``: the target's resolver (Packer's flag of that name)."""
    if not getattr(args, "evaluate_datasources", False):
        return None  # data sources checked by shape only, as Packer's validate does
    return datasource_resolver(args, started, latency="instant")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if hasattr(value, "items") and not isinstance(value, str):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _origin(origin: str) -> str:
    """A variable's origin as inspect shows it: ``var-file vars.pkrvars.hcl``, ``cli``..."""
    kind, _, where = origin.partition(":")
    label = {"auto-var-file": "auto var-file", "cli": "--var", "env": "PKR_VAR_"}.get(kind, kind)
    return f"{label} {where}" if where else label


def _raw_template(path: Path) -> Any:
    """The template before evaluation (a file or a folder), or None if it cannot be read."""
    from amibake.core.templates import read_raw
    from amibake.core.templates.errors import Problems
    from amibake.core.templates.hcl import read_hcl_files
    from amibake.core.templates.loader import TEMPLATE_SUFFIXES, folder_files, read_text

    try:
        if not path.is_dir():
            return read_raw(path)
        sources = [(read_text(f), str(f)) for f in folder_files(path, TEMPLATE_SUFFIXES)]
        return read_hcl_files(sources, Problems())
    except Exception:  # inspect shows the rest: the spec itself loaded
        return None


def _source_names(node: Any) -> list[str]:
    """The references of a build's ``sources = [...]`` when they are written out."""
    from amibake.core.templates.nodes import ExprNode, ListNode, Scalar

    names: list[str] = []
    for item in node.items if isinstance(node, ListNode) else ():
        if isinstance(item, Scalar) and isinstance(item.value, str):
            names.append(item.value.removeprefix("source."))
        elif isinstance(item, ExprNode):
            parts, expr = [], item.expr
            while hasattr(expr, "obj") and hasattr(expr, "name"):
                parts.append(expr.name)
                expr = expr.obj
            parts.append(getattr(expr, "name", "?"))
            names.append(".".join(reversed(parts)).removeprefix("source."))
        else:
            names.append("(computed)")
    return names


def _layout(path: Path) -> list[str]:
    """An HCL2 template's sources, builds and data sources, as written (for inspect)."""
    raw = _raw_template(path)
    if raw is None or raw.format != "hcl":
        return []
    out = ["", "sources:"]
    out += [f"  source.{key}" for key in getattr(raw, "sources", {})] or ["  (none)"]
    builds = getattr(raw, "builds", [])
    if builds:
        out += ["", "builds:"]
    for index, build in enumerate(builds):
        uses = _source_names(build.sources) if build.sources is not None else []
        for use in build.source_uses:
            ref = getattr(use, "ref", None)
            if ref is None:
                uses.append("(dynamic)")
                continue
            named = f" as {use.name}" if getattr(use, "name", None) else ""
            uses.append(ref.removeprefix("source.") + named)
        label = build.name or f"build {index + 1}"
        out.append(f"  {label}: {', '.join(uses) or '(no sources)'}")
    data = getattr(raw, "data_sources", {})
    if data:
        out += ["", "data sources:"]
        out += [f"  data.{key}" for key in data]
    return out


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        # Packer's inspect does not warn about var-file values nobody declared; neither do we
        spec = load_template(args, warn_undeclared_vars=False)
    except TemplateError as error:
        return _print_problems(error)
    print_warnings(spec)
    out: list[str] = [f"template: {args.template} ({spec.source_format})", "", "variables:"]
    if not spec.variables:
        out.append("  (none)")
    for variable in spec.variables.values():
        note = f"  # {variable.description}" if variable.description else ""
        shown = variable.display_value() if variable.sensitive else _show(variable.value)
        out.append(f"  {variable.name} = {shown}  ({_origin(variable.origin)}){note}")
    out += _layout(Path(args.template))
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
        only = f"  (only {', '.join(prov.only)})" if getattr(prov, "only", ()) else ""
        if isinstance(prov, ShellProvisioner):
            what = (
                f"{len(prov.inline)} inline command(s)"
                if prov.inline
                else f"script {prov.script}"
                if prov.script
                else f"scripts {_show(prov.scripts)}"
            )
            out.append(f"  {i + 1}. shell: {what}{only}")
        elif isinstance(prov, FileProvisioner):
            out.append(
                f"  {i + 1}. file: {prov.source} -> {prov.destination} ({prov.direction}){only}"
            )
        else:
            out.append(f"  {i + 1}. {prov.type}{only}")
    if spec.post_processors:
        out += ["", "post-processors:"]
        out += [f"  {p.type}: {getattr(p, 'output', '')}" for p in spec.post_processors]
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
            from amibake.core.templates.writers import has_toml_comments

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
    p = subparsers.add_parser("validate", help="check a template and report every problem")
    p.add_argument("template", metavar="TEMPLATE", help="a template file or a folder of them")
    add_input_options(p)
    p.add_argument(
        "--no-warn-undeclared-var",
        action="store_true",
        help="do not warn about var-file values for variables the template does not declare",
    )
    p.add_argument(
        "--evaluate-datasources",
        action="store_true",
        help="run the template's data sources against the target (default: check their shape)",
    )
    add_target_options(
        p,
        local="with --evaluate-datasources: against the embedded local cloud",
        profile="with --evaluate-datasources: the AWS profile",
        region="with --evaluate-datasources: the region of data sources without one",
    )
    p.set_defaults(handler=cmd_validate)

    p = subparsers.add_parser("inspect", help="show a template's builders, provisioners, variables")
    p.add_argument("template", metavar="TEMPLATE", help="a template file or a folder of them")
    add_input_options(p)
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
