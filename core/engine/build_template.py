"""Packer's "build template data": ``{{ .SourceAMIName }}`` and friends, filled in at run time.

Packer's amazon-ebs builder renders ``ami_description``, ``tags``, ``run_tags``
and ``snapshot_tags`` (keys and values) itself, once the source AMI is known,
with a ``BuildInfoTemplate`` (builder/common/interpolate_build_info.go) as the
template's data. The load-time functions of those strings (``{{timestamp}}``,
``{{user `x`}}``...) are rendered when the template is read; the field actions
stay in the text until here. ``.BuildRegion`` is the build region, also for the
tags of region copies, as Packer has it.

Only the Go-template forms these fields use are understood: a field
(``.SourceAMI``, ``.SourceAMITags.Name``), ``index .SourceAMITags "key"``, and
the functions ``clean_resource_name``, ``lower``, ``upper`` applied by call or pipe.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from core.errors import AmibakeError

#: The fields of Packer's BuildInfoTemplate.
BUILD_INFO_FIELDS = (
    "BuildRegion",
    "SourceAMI",
    "SourceAMICreationDate",
    "SourceAMIName",
    "SourceAMIOwner",
    "SourceAMIOwnerName",
    "SourceAMITags",
)
#: The builder options Packer renders with that data (the rest are rendered at load).
BUILD_TEMPLATE_OPTIONS = ("ami_description", "tags", "run_tags", "snapshot_tags")

_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|[^\s|()]+|\|')
_FUNCTIONS = {
    "clean_resource_name": lambda s: re.sub(r"[^A-Za-z0-9()\[\] ./\-'@_]", "-", s),
    "lower": str.lower,
    "upper": str.upper,
}


class BuildTemplateError(AmibakeError):
    """A build-template action that cannot be rendered (one line)."""


def build_info(region: str, image: Mapping[str, Any] | None) -> dict[str, Any]:
    """Packer's BuildInfoTemplate for a build in ``region`` from the source ``image``."""
    if image is None:
        return {"BuildRegion": region}
    return {
        "BuildRegion": region,
        "SourceAMI": image.get("ImageId", ""),
        "SourceAMICreationDate": image.get("CreationDate", ""),
        "SourceAMIName": image.get("Name", ""),
        "SourceAMIOwner": image.get("OwnerId", ""),
        "SourceAMIOwnerName": image.get("ImageOwnerAlias", ""),
        "SourceAMITags": {t["Key"]: t.get("Value", "") for t in image.get("Tags", [])},
    }


def check_build_template(text: str) -> str | None:
    """Why ``text`` cannot be rendered with build template data, or None (used at load)."""
    try:
        render_build_template(
            text, {f: ({} if f == "SourceAMITags" else "") for f in BUILD_INFO_FIELDS}
        )
    except BuildTemplateError as error:
        return str(error)
    return None


def render_build_template(text: str, info: Mapping[str, Any]) -> str:
    """``text`` with every ``{{ ... }}`` action rendered from ``info``."""
    if "{{" not in text:
        return text
    return _ACTION.sub(lambda m: _action(m.group(1), info), text)


def _action(body: str, info: Mapping[str, Any]) -> str:
    words = _WORD.findall(body.strip())
    if not words:
        raise BuildTemplateError("empty `{{ }}` action")
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            commands.append([])
        else:
            commands[-1].append(word)
    value: str | None = None
    for command in commands:
        if not command:
            raise BuildTemplateError(f"nothing after `|` in `{{{{{body}}}}}`")
        value = _command(command, value, info, body)
    assert value is not None
    return value


def _command(words: list[str], piped: str | None, info: Mapping[str, Any], body: str) -> str:
    head, args = words[0], words[1:]
    if head.startswith("."):
        if args or piped is not None:
            raise BuildTemplateError(f"cannot read `{{{{{body}}}}}`")
        return _field(head, info)
    if head == "index":
        if len(args) != 2 or piped is not None:
            raise BuildTemplateError(
                '`index` takes a map and a key, e.g. index .SourceAMITags "Name"'
            )
        mapping = _value(args[0], info)
        if not isinstance(mapping, dict):
            raise BuildTemplateError(f"`index`: `{args[0]}` is not a map")
        return str(mapping.get(_literal(args[1]), ""))
    function = _FUNCTIONS.get(head)
    if function is None:
        known = ", ".join(_FUNCTIONS)
        raise BuildTemplateError(
            f"`{head}` cannot be used in build template data (only fields like .SourceAMIName "
            f"and {known})"
        )
    operands = [_text(_value(a, info)) for a in args]
    if piped is not None:
        operands.append(piped)
    if len(operands) != 1:
        raise BuildTemplateError(f"`{head}` takes 1 argument, got {len(operands)}")
    return str(function(operands[0]))


def _literal(word: str) -> str:
    if word[:1] in ('"', "`"):
        return word[1:-1]
    raise BuildTemplateError(f"expected a quoted key, got `{word}`")


def _value(word: str, info: Mapping[str, Any]) -> Any:
    if word.startswith("."):
        parts = word[1:].split(".")
        return _lookup(parts, info, word)
    return _literal(word)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _field(word: str, info: Mapping[str, Any]) -> str:
    return _text(_lookup(word[1:].split("."), info, word))


def _lookup(parts: list[str], info: Mapping[str, Any], word: str) -> Any:
    name = parts[0]
    if name not in BUILD_INFO_FIELDS:
        close = difflib.get_close_matches(name, BUILD_INFO_FIELDS, n=1)
        hint = f"; did you mean `.{close[0]}`?" if close else ""
        raise BuildTemplateError(
            f"`{word}` is not build template data{hint} "
            f"(known: {', '.join('.' + f for f in BUILD_INFO_FIELDS)})"
        )
    value = info.get(name, {} if name == "SourceAMITags" else "")
    if len(parts) == 1:
        return value
    if name != "SourceAMITags" or len(parts) != 2:
        raise BuildTemplateError(f"`{word}`: only .SourceAMITags has keys (.SourceAMITags.Name)")
    # A missing tag is the zero value of Go's map[string]string: the empty string.
    return value.get(parts[1], "")
