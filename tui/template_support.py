"""Editor helpers without widgets: HCL highlighting, recent files, scaffolding, validation.

Kept apart from the screen so they can be tested (and reused) on their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.core import paths
from amibake.core.catalog import name_wildcard, source_ami_filter  # noqa: F401 (name_wildcard: re-exported)
from amibake.core.errors import AmibakeError
from amibake.core.templates.errors import Problems

if TYPE_CHECKING:
    from amibake.core.model import BuildSpec

# -- syntax highlighting ---------------------------------------------------------------------

#: tree-sitter-hcl ships no highlight query; this one maps its nodes to Textual's theme names.
HCL_HIGHLIGHTS = """
(comment) @comment
(attribute (identifier) @property)
(block (identifier) @keyword)
(block (string_lit) @string)
(object_elem key: (expression (variable_expr (identifier) @property)))
(function_call (identifier) @function.call)
(variable_expr (identifier) @variable.builtin)
(get_attr (identifier) @property)
(string_lit) @string
(template_literal) @string
(heredoc_template) @string
(numeric_lit) @number
(bool_lit) @boolean
(null_lit) @constant.builtin
(template_interpolation_start) @punctuation.special
(template_interpolation_end) @punctuation.special
["=" ":"] @operator
["(" ")" "[" "]" "{" "}"] @punctuation.bracket
"""


def hcl_language() -> Any | None:
    """The tree-sitter HCL language, or None when the grammar is not installed."""
    try:
        import tree_sitter_hcl
        from tree_sitter import Language
    except ImportError:
        return None
    try:
        return Language(tree_sitter_hcl.language())
    except Exception:
        return None


def template_format(path: Path | None, text: str) -> str:
    from amibake.core.templates import detect_format

    return detect_format(path or Path("template"), text)


# -- recent files ----------------------------------------------------------------------------

RECENT_LIMIT = 10


def recent_file() -> Path:
    return paths.state_dir() / "recent-templates.json"


def recent_templates(settings: Any = None) -> list[Path]:
    """Templates opened or saved lately, newest first (missing files dropped).

    ``settings`` is the app's :class:`amibake.core.settings.Settings` (``app.session.settings``);
    without one (a host app with no settings) a small file in the state dir is used.
    """
    if settings is not None and hasattr(settings, "recent_templates"):
        items: Any = list(settings.recent_templates)
    else:
        try:
            items = json.loads(recent_file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
    if not isinstance(items, list):
        return []
    return [Path(p) for p in items if isinstance(p, str) and Path(p).exists()][:RECENT_LIMIT]


def remember_template(path: Path, settings: Any = None) -> None:
    path = paths.expand_home(path).resolve()
    if settings is not None and hasattr(settings, "remember_template"):
        try:
            settings.remember_template(path)
            settings.save()
        except Exception:
            pass  # remembering is a convenience; never an error for the user
        return
    items = [path, *(p for p in recent_templates() if p.resolve() != path)][:RECENT_LIMIT]
    target = recent_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps([str(p) for p in items], indent=2), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass  # remembering is a convenience; never an error for the user


# -- scaffolding -----------------------------------------------------------------------------



def _field(image: dict[str, Any], *names: str) -> Any:
    for name in names:
        if image.get(name) not in (None, ""):
            return image[name]
    return None


def guess_ssh_username(name: str, platform: str = "") -> str:
    lowered = f"{name} {platform}".lower()
    for marker, user in (
        ("ubuntu", "ubuntu"),
        ("debian", "admin"),
        ("centos", "centos"),
        ("fedora", "fedora"),
        ("suse", "ec2-user"),
        ("rhel", "ec2-user"),
        ("red hat", "ec2-user"),
        ("amzn", "ec2-user"),
        ("al2023", "ec2-user"),
    ):
        if marker in lowered:
            return user
    return "ec2-user"


def _hcl_string(value: str) -> str:
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def scaffold_from_image(image: dict[str, Any], region: str, *, as_filter: bool = True) -> str:
    """A Packer HCL2 template building on ``image`` (a DescribeImages entry) in ``region``."""
    image_id = str(_field(image, "ImageId", "image_id", "id") or "ami-00000000000000000")
    name = str(_field(image, "Name", "name") or image_id)
    owner = str(_field(image, "OwnerId", "owner_id", "owner") or "self")
    arch = str(_field(image, "Architecture", "architecture") or "x86_64")
    platform = str(_field(image, "PlatformDetails", "platform_details", "platform") or "")
    region = str(_field(image, "region", "Region") or region)
    instance_type = "t4g.micro" if arch == "arm64" else "t3.micro"
    user = guess_ssh_username(name, platform)
    if as_filter:
        # the very filter "use as source" previews (amibake.core.catalog.source_ami_filter)
        block = source_ami_filter(
            {
                "Name": name,
                "OwnerId": owner,
                "Architecture": arch,
                "RootDeviceType": _field(image, "RootDeviceType", "root_device_type"),
                "VirtualizationType": _field(image, "VirtualizationType", "virtualization_type"),
            }
        )
        filters: dict[str, str] = block["filters"]
        pad = max(map(len, filters))
        source = (
            "  source_ami_filter {\n"
            "    filters = {\n"
            + "".join(f"      {key:<{pad}} = {_hcl_string(v)}\n" for key, v in filters.items())
            + "    }\n"
            f"    owners      = [{', '.join(_hcl_string(o) for o in block['owners'])}]\n"
            "    most_recent = true\n"
            "  }\n"
        )
    else:
        source = f"  source_ami = {_hcl_string(image_id)}\n"
    return (
        f"# Built on {name} ({image_id}, owner {owner})\n"
        'variable "region" {\n'
        "  type    = string\n"
        f"  default = {_hcl_string(region)}\n"
        "}\n"
        "\n"
        'variable "ami_prefix" {\n'
        "  type    = string\n"
        '  default = "custom"\n'
        "}\n"
        "\n"
        "locals {\n"
        '  stamp = formatdate("YYYYMMDDhhmmss", timestamp())\n'
        "}\n"
        "\n"
        'source "amazon-ebs" "main" {\n'
        "  region        = var.region\n"
        f"  instance_type = {_hcl_string(instance_type)}\n"
        f"  ssh_username  = {_hcl_string(user)}\n"
        '  ami_name      = "${var.ami_prefix}-${local.stamp}"\n'
        f"{source}"
        "  tags = {\n"
        "    Name = var.ami_prefix\n"
        f"    Base = {_hcl_string(image_id)}\n"
        "  }\n"
        "}\n"
        "\n"
        "build {\n"
        '  sources = ["source.amazon-ebs.main"]\n'
        "\n"
        '  provisioner "shell" {\n'
        "    inline = [\n"
        '      "echo \\"provisioning $(hostname) as $(whoami)\\"",\n'
        "    ]\n"
        "  }\n"
        "}\n"
    )


# -- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableField:
    name: str
    default: str | None
    sensitive: bool
    description: str | None
    type: str | None


@dataclass
class Validation:
    """The outcome of loading the editor's text: a spec or problems, and the variables."""

    spec: BuildSpec | None = None
    problems: list[Any] = field(default_factory=list)
    variables: list[VariableField] = field(default_factory=list)
    error: str | None = None  # an error that is not a template problem (unreadable var file...)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.problems and self.error is None


def validate_text(
    text: str,
    *,
    file: str,
    fmt: str,
    template_dir: Path,
    variables: dict[str, str] | None = None,
) -> Validation:
    """Parse, interpolate and validate ``text`` as the engine would; never raises."""
    from amibake.core.templates import loads
    from amibake.core.templates.loader import parse_raw

    result = Validation()
    declared = Problems()
    try:
        raw = parse_raw(text, file, fmt, declared)
    except Exception:  # the full load below reports the problem with its position
        raw = None
    result.variables = _variable_fields(raw)
    values = _known_values(result.variables, variables)
    return _loaded(
        result,
        lambda: loads(text, file=file, format=fmt, vars=values, template_dir=template_dir),
    )


def _variable_fields(raw: Any) -> list[VariableField]:
    """The editor's variable form rows for a raw template (none when it did not parse)."""
    from amibake.core.templates.nodes import Scalar

    fields: list[VariableField] = []
    if raw is None:
        return fields
    for name, decl in raw.variables.items():
        default = None
        if decl.has_default and decl.default is not None:
            value = decl.default.value if isinstance(decl.default, Scalar) else None
            default = "" if value is None else str(value)
            if isinstance(value, bool):
                default = "true" if value else "false"
        fields.append(VariableField(name, default, decl.sensitive, decl.description, decl.type))
    return fields


def _known_values(
    fields: list[VariableField], variables: dict[str, str] | None
) -> list[tuple[str, str]]:
    known = {v.name for v in fields}
    return [(k, v) for k, v in (variables or {}).items() if v != "" and k in known]


def _loaded(result: Validation, load: Any) -> Validation:
    from amibake.core.templates import TemplateError

    try:
        result.spec = load()
    except TemplateError as error:
        result.problems = list(error.problems)
    except AmibakeError as error:
        result.error = str(error)
    except Exception as error:  # a bug in a loader must not take the editor down
        result.error = f"internal error: {type(error).__name__}: {error}"
    return result


# -- folder templates ------------------------------------------------------------------------


def template_folder_of(path: Path) -> Path | None:
    """The folder template the editor opens for ``path``, or None for a single file.

    A folder is one (Packer reads all its ``*.pkr.hcl`` / ``*.pkr.json`` as one
    template); so is a template file next to other template files, which alone
    would miss what they declare.
    """
    from amibake.core.templates.loader import TEMPLATE_SUFFIXES, folder_files

    if path.is_dir():
        return path
    if not path.name.endswith(TEMPLATE_SUFFIXES) or not path.parent.is_dir():
        return None
    try:
        siblings = folder_files(path.parent, TEMPLATE_SUFFIXES)
    except AmibakeError:
        return None
    return path.parent if len(siblings) > 1 else None


def folder_template_files(folder: Path) -> list[Path]:
    """The files of a folder template, in the order Packer reads them."""
    from amibake.core.templates.loader import TEMPLATE_SUFFIXES, folder_files

    return folder_files(folder, TEMPLATE_SUFFIXES)


def validate_folder(
    folder: Path,
    *,
    unsaved: dict[Path, str],
    variables: dict[str, str] | None = None,
) -> Validation:
    """:func:`validate_text` for a folder template, ``unsaved`` texts read instead of files."""
    from amibake.core.templates import load
    from amibake.core.templates.loader import read_text

    result = Validation()
    try:
        from amibake.core.templates.hcl import read_hcl_files

        sources = [
            (unsaved[f] if f in unsaved else read_text(f), str(f))
            for f in folder_template_files(folder)
        ]
        raw = read_hcl_files(sources, Problems())
    except Exception:  # the full load below reports the problem with its position
        raw = None
    result.variables = _variable_fields(raw)
    values = _known_values(result.variables, variables)
    texts: dict[str | os.PathLike[str], str] = {path: text for path, text in unsaved.items()}
    return _loaded(result, lambda: load(folder, vars=values, unsaved=texts))


def preview_lines(spec: Any) -> list[tuple[str, str]]:
    """(label, value) pairs showing what the template resolves to, secrets redacted."""
    lines: list[tuple[str, str]] = []
    for builder in spec.builders:
        prefix = f"{builder.name}." if len(spec.builders) > 1 else ""
        lines.append((f"{prefix}ami_name", builder.ami_name))
        lines.append((f"{prefix}region", builder.region))
        if builder.source_ami:
            lines.append((f"{prefix}source_ami", builder.source_ami))
        elif builder.source_ami_filter is not None:
            filt = builder.source_ami_filter
            name = filt.filters.get("name", "")
            owners = ", ".join(filt.owners)
            lines.append((f"{prefix}source", f"{name} (owners {owners})"))
        lines.append((f"{prefix}instance_type", builder.instance_type))
        lines.append((f"{prefix}ssh_username", builder.ssh_username))
        if builder.ami_regions:
            lines.append((f"{prefix}ami_regions", ", ".join(builder.ami_regions)))
        provisioners = spec.provisioners_for(builder)
        if provisioners:
            kinds = ", ".join(p.type for p in provisioners)
            lines.append((f"{prefix}provisioners", kinds))
    for variable in spec.variables.values():
        lines.append((f"var.{variable.name}", variable.display_value()))
    return [(label, spec.redact(str(value))) for label, value in lines]
