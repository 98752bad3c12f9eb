"""Where amibake keeps its files (platformdirs), with one override for tests.

Setting ``AMIBAKE_HOME`` puts every directory below that one folder, so a test
run or a demo never touches the user's real config, cache, data or state.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "amibake"


def expand_home(path: str | Path) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; ``~someone`` of no user on this
    machine stays as written (pathlib's ``expanduser`` raises on it): a path like any other,
    which then is not there."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def _root_override() -> Path | None:
    value = os.environ.get("AMIBAKE_HOME")
    return expand_home(value) if value else None


def _dir(kind: str) -> Path:
    root = _root_override()
    if root is not None:
        return root / kind
    getter = {
        "config": platformdirs.user_config_path,
        "cache": platformdirs.user_cache_path,
        "data": platformdirs.user_data_path,
        "state": platformdirs.user_state_path,
    }[kind]
    return getter(APP_NAME, appauthor=False)


def config_dir() -> Path:
    return _dir("config")


def cache_dir() -> Path:
    return _dir("cache")


def data_dir() -> Path:
    return _dir("data")


def state_dir() -> Path:
    return _dir("state")


def local_cloud_dir() -> Path:
    """Default home of the local cloud: instance filesystems, AMI contents, its registry."""
    return data_dir() / "local-cloud"
