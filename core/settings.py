"""User settings and recent state, in one TOML file under the config dir.

Read with :mod:`tomllib`, written with :mod:`tomli_w`. A file that cannot be read
(bad TOML, wrong types) gives a one-line message in :attr:`Settings.load_error`
and the defaults; such a file is never overwritten, so the user can fix it by
hand and lose nothing (:meth:`Settings.save` becomes a no-op until it loads).

The file::

    theme = "textual-dark"

    [session]
    target = "local"            # or "profile:NAME"
    region = "us-east-1"
    latency = "fast"            # the local cloud's latency profile
    owner = "canonical"         # an owner preset key, or an account id

    [regions]
    favourites = ["us-east-1", "eu-west-1"]   # number keys 1..9 in the region picker

    [owners]                    # extra owner presets: key = [owner ids or aliases]
    my-team = ["111122223333"]

    [recent]
    templates = ["/home/me/app.pkr.hcl"]

    [keymap]                    # binding id = keys (Textual key names, comma separated)
    "browser.filter" = "f,slash"

    [build]
    tag_artifacts = true        # amibake:* tags on the AMIs and snapshots (--no-amibake-tags)

    [editor]
    tab_indents = false         # tab indents in the editor instead of moving to the next pane

    [local]
    instance_network = false    # local instances share this machine's network (apt mirrors)
    own_process = false         # the app runs the local cloud in a process of its own
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from amibake.core import paths
from amibake.core.owners import PUBLISHER_ACCOUNTS

SETTINGS_FILE = "settings.toml"
MAX_RECENT_TEMPLATES = 10
LOCAL_TARGET = "local"
DEFAULT_FAVOURITES = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1")


@dataclass(frozen=True)
class OwnerPreset:
    """An entry of the browser's owner selector: ``Owners=`` values plus an optional name filter."""

    key: str
    label: str
    owners: tuple[str, ...]
    #: DescribeImages filters added to the owner (e.g. Windows images among Amazon's).
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def describe_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"Owners": list(self.owners)}
        if self.filters:
            params["Filters"] = [{"Name": n, "Values": list(v)} for n, v in self.filters]
        return params


#: Built-in presets, in the order the browser shows them.
BUILTIN_OWNER_PRESETS: tuple[OwnerPreset, ...] = (
    OwnerPreset("amazon", "Amazon", ("amazon",)),
    OwnerPreset("canonical", "Canonical", (PUBLISHER_ACCOUNTS["canonical"],)),
    OwnerPreset("debian", "Debian", (PUBLISHER_ACCOUNTS["debian"],)),
    OwnerPreset("redhat", "Red Hat", (PUBLISHER_ACCOUNTS["redhat"],)),
    OwnerPreset("microsoft", "Microsoft (via Amazon)", ("amazon",), (("platform", ("windows",)),)),
    OwnerPreset("marketplace", "Marketplace", ("aws-marketplace",)),
    OwnerPreset("self", "Self", ("self",)),
)


class SettingsError(ValueError):
    """The settings file is not what it should be (message is one line)."""


@dataclass
class Settings:
    """Everything amibake remembers between runs. Mutate, then :meth:`save`."""

    path: Path
    theme: str = "textual-dark"
    target: str | None = None
    region: str = "us-east-1"
    latency: str = "fast"
    owner: str = "canonical"
    favourite_regions: list[str] = field(default_factory=lambda: list(DEFAULT_FAVOURITES))
    owner_presets: dict[str, list[str]] = field(default_factory=dict)
    recent_templates: list[str] = field(default_factory=list)
    keymap: dict[str, str] = field(default_factory=dict)
    #: amibake's own ``amibake:*`` tags on the AMIs and snapshots it builds (the temporary
    #: resources always carry them); ``amibake build --no-amibake-tags`` turns them off too.
    tag_artifacts: bool = True
    #: local instances share the host's network (``amibake local serve --instance-network``)
    instance_network: bool = False
    #: the app runs the local cloud as ``amibake local serve`` in a process of its own
    #: ([local] own_process): moto's work then has its own interpreter, not the UI's
    local_own_process: bool = False
    #: ``tab`` in the editor indents instead of moving the focus ([editor] tab_indents)
    editor_tab_indents: bool = False
    #: One line when the file could not be read; the defaults are in use and save() is off.
    load_error: str | None = None

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def default_path() -> Path:
        return paths.config_dir() / SETTINGS_FILE

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The settings in ``path`` (default: the config dir's file); never raises."""
        path = path or cls.default_path()
        settings = cls(path=path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return settings
        except OSError as error:
            settings.load_error = f"cannot read {path}: {error.strerror or error}"
            return settings
        try:
            data = tomllib.loads(raw.decode("utf-8"))
            settings._apply(data)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, SettingsError) as error:
            fresh = cls(path=path)
            fresh.load_error = (
                f"{path} is not valid ({' '.join(str(error).split())}); "
                "using defaults and leaving the file untouched"
            )
            return fresh
        return settings

    def _apply(self, data: dict[str, Any]) -> None:
        self.theme = _get(data, "theme", str, self.theme)
        session = _table(data, "session")
        self.target = _get(session, "target", str, None, where="session")
        self.region = _get(session, "region", str, self.region, where="session")
        self.latency = _get(session, "latency", str, self.latency, where="session")
        self.owner = _get(session, "owner", str, self.owner, where="session")
        regions = _table(data, "regions")
        self.favourite_regions = _str_list(regions, "favourites", self.favourite_regions, "regions")
        owners = _table(data, "owners")
        self.owner_presets = {
            key: _str_list(owners, key, [], "owners") for key in owners if key != "__order__"
        }
        recent = _table(data, "recent")
        self.recent_templates = _str_list(recent, "templates", [], "recent")
        keymap = _table(data, "keymap")
        self.keymap = {key: _get(keymap, key, str, "", where="keymap") for key in keymap}
        build = _table(data, "build")
        self.tag_artifacts = _get(build, "tag_artifacts", bool, True, where="build")
        local = _table(data, "local")
        self.instance_network = _get(local, "instance_network", bool, False, where="local")
        self.local_own_process = _get(local, "own_process", bool, False, where="local")
        editor = _table(data, "editor")
        self.editor_tab_indents = _get(editor, "tab_indents", bool, False, where="editor")

    # -- writing ---------------------------------------------------------------------------

    def to_toml(self) -> dict[str, Any]:
        session: dict[str, Any] = {
            "region": self.region,
            "latency": self.latency,
            "owner": self.owner,
        }
        if self.target:
            session["target"] = self.target
        data: dict[str, Any] = {
            "theme": self.theme,
            "session": session,
            "regions": {"favourites": list(self.favourite_regions)},
        }
        if self.owner_presets:
            data["owners"] = {k: list(v) for k, v in self.owner_presets.items()}
        data["recent"] = {"templates": list(self.recent_templates)}
        if self.keymap:
            data["keymap"] = dict(self.keymap)
        if not self.tag_artifacts:
            data["build"] = {"tag_artifacts": False}
        local: dict[str, Any] = {}
        if self.instance_network:
            local["instance_network"] = True
        if self.local_own_process:
            local["own_process"] = True
        if local:
            data["local"] = local
        if self.editor_tab_indents:
            data["editor"] = {"tab_indents": True}
        return data

    def save(self) -> bool:
        """Write the file atomically. False (and nothing written) if it was unreadable at load."""
        if self.load_error is not None:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(tomli_w.dumps(self.to_toml()), encoding="utf-8")
        os.replace(partial, self.path)
        return True

    # -- conveniences ----------------------------------------------------------------------

    def remember_template(self, path: str | Path) -> None:
        """Put ``path`` first in the recent templates (deduplicated, bounded)."""
        text = str(paths.expand_home(path).resolve())
        self.recent_templates = [text] + [p for p in self.recent_templates if p != text]
        del self.recent_templates[MAX_RECENT_TEMPLATES:]

    def all_owner_presets(self) -> list[OwnerPreset]:
        """The built-in presets followed by the user's own from ``[owners]``."""
        presets = list(BUILTIN_OWNER_PRESETS)
        for key, owners in self.owner_presets.items():
            if owners:
                presets.append(OwnerPreset(key, key, tuple(owners)))
        return presets

    def owner_preset(self, key: str) -> OwnerPreset:
        """The preset called ``key``; an account id (or alias) becomes a one-owner preset."""
        for preset in self.all_owner_presets():
            if preset.key == key:
                return preset
        return OwnerPreset(key, key, (key,))


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(f"[{key}] must be a table")
    return value


def _get(
    data: dict[str, Any], key: str, kind: type, default: Any, *, where: str | None = None
) -> Any:
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, kind):
        name = f"{where}.{key}" if where else key
        raise SettingsError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _str_list(data: dict[str, Any], key: str, default: list[str], where: str) -> list[str]:
    value = _get(data, key, list, default, where=where)
    if not all(isinstance(item, str) for item in value):
        raise SettingsError(f"{where}.{key} must be a list of strings")
    return list(value)
