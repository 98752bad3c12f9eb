"""core/ never imports the UI: importing every core module leaves textual and rich out.

Imports only ever add to ``sys.modules``, so one fresh interpreter importing all
of core proves no single module pulls the UI in; on a failure each module is
re-checked alone to name the culprit.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import amibake.core

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
ui = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]
ui += [m for m in sys.modules if m.split('.')[:2] == ['amibake', 'tui']]
print(' '.join(sorted(ui)))
"""


def core_modules() -> list[str]:
    return ["amibake.core"] + [
        info.name
        for info in pkgutil.walk_packages(amibake.core.__path__, prefix="amibake.core.")
    ]


def leaked_by(*modules: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, *modules], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"import failed: {result.stderr.strip()[-800:]}"
    return result.stdout.strip()


def test_core_has_modules() -> None:
    # Guards the test below against walking an empty package and passing vacuously.
    assert "amibake.core.local.cloud" in core_modules()


def test_no_core_module_imports_the_ui() -> None:
    modules = core_modules()
    if leaked_by(*modules):
        culprits = {name: leaked_by(name) for name in modules}
        assert {k: v for k, v in culprits.items() if v} == {}


def test_the_check_detects_a_ui_import() -> None:
    # The probe itself must be able to fail: importing textual is seen.
    assert "textual" in leaked_by("textual").split()
