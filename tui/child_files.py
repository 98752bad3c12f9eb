"""The files a build's child process reads: a private var-file and, for unsaved text, a copy.

Both are written by :class:`amibake.tui.build_runner.BuildRun` before it starts the child
(``python -m amibake.tui build --json``) and removed when the run is over.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amibake.core.errors import UsageError
from amibake.core.model import BuildSpec

#: The file name suffix that makes the CLI read a template in its format.
SUFFIXES = {"json": ".json", "hcl": ".pkr.hcl", "toml": ".toml"}


def write_var_file(spec: BuildSpec) -> Path | None:
    """The user's variables of ``spec`` (not defaults, not PKR_VAR_*) as a JSON var-file.

    Unlike ``--var`` it is not visible to ``ps``: the file is 0600 in a 0700 directory
    of its own. None when there is nothing to pass.
    """
    values = {
        name: _plain(variable.value)
        for name, variable in spec.variables.items()
        if variable.origin not in ("default", "env") and variable.value is not None
    }
    if not values:
        return None
    directory = Path(tempfile.mkdtemp(prefix="amibake-vars-"))
    path = directory / "variables.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    return path


def hidden_copy(text: str, path: Path | None, source_format: str) -> Path:
    """``text`` in a hidden file next to ``path`` (so relative paths such as ``files/motd``
    resolve), named so the CLI reads it in ``source_format``."""
    suffix = SUFFIXES.get(source_format, ".json")
    base = path.name.removesuffix(suffix) if path else "template"
    directory = path.parent if path else Path.cwd()
    try:
        descriptor, name = tempfile.mkstemp(
            prefix=f".{base}.amibake-", suffix=suffix, dir=directory
        )
    except OSError as error:
        raise UsageError(
            f"cannot write the template to build in {directory}: {error.strerror or error}"
        ) from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(name)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
