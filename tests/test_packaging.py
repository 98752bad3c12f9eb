"""Installed names: core/ and tui/ are the packages amibake.core and amibake.tui, and only that.

The folders stay at the top of the repository; pyproject.toml maps them (setuptools
``package-dir``). Nothing may load a file under its folder name as well (``core.x`` next to
``amibake.core.x`` would be two copies of one module, with two sets of globals), and the wheel
must install no top-level ``core`` or ``tui`` that another project's package could collide with.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("core", "tui")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Imports every module of both packages (but `python -m` entry points), then prints the names
# in sys.modules whose first part is an old top-level name, and how many amibake.* it holds.
PROBE = """
import importlib, pkgutil, sys
import amibake.core, amibake.tui
import amibake.tui.app, amibake.core.engine
for package in (amibake.core, amibake.tui):
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("core", "tui"))))
print(sum(m.startswith("amibake.") for m in sys.modules))
"""


def package_folders() -> list[str]:
    return sorted(
        ".".join(("amibake", *init.parent.relative_to(ROOT).parts))
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    )


def test_every_package_folder_is_listed_in_pyproject() -> None:
    # setuptools cannot discover packages under a mapped name: a new folder must be listed.
    assert PYPROJECT["tool"]["setuptools"]["packages"] == package_folders()
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {
        "amibake.core": "core",
        "amibake.tui": "tui",
    }


def test_no_module_is_imported_under_its_folder_name() -> None:
    # Run from the repository root, where `import core` would find the folder: a leftover
    # old-style import anywhere loads a second copy and shows up here.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-1500:]
    old, count = result.stdout.splitlines()
    assert old == ""
    assert int(count) > 100  # the walk really imported both packages


def old_names_in(source: str, where: str) -> list[str]:
    """Imports, module-name strings and ``-m`` arguments that use a folder name as a module."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"(core|tui)(\.\w+)+(:\w+)?", node.value):
                names = [node.value]
        elif isinstance(node, (ast.List, ast.Tuple)):
            values: list[object] = [
                e.value if isinstance(e, ast.Constant) else None for e in node.elts
            ]
            names = [b for a, b in itertools.pairwise(values) if a == "-m" and isinstance(b, str)]
        found += [
            f"{where}:{getattr(node, 'lineno', 0)}: {name}"
            for name in names
            if name.split(".")[0] in FOLDERS
        ]
    return found


def test_no_code_names_a_module_by_its_folder_name() -> None:
    # Lazy imports inside functions are not run by the probe above: read every file instead.
    files = [
        path
        for folder in (*FOLDERS, "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "__pycache__" not in path.parts
    ]
    assert len(files) > 100
    hits = [
        hit for path in files for hit in old_names_in(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert hits == []


def test_the_check_sees_old_names() -> None:
    sample = (
        "from core.model import BuildSpec\nimport tui.cli\n"
        'patch("core.aws.Target")\nargv = [sys.executable, "-m", "tui", "build"]\n'
        'from amibake.core import model\nimport amibake.tui.cli\nSEED = ROOT / "core" / "x"\n'
    )
    hits = [hit.split(": ", 1)[1] for hit in old_names_in(sample, "sample.py")]
    # (one string: a list of these names would be seen by the check itself)
    assert " ".join(sorted(hits)) == "core.aws.Target core.model tui tui.cli"


def test_this_test_run_has_no_folder_names_either() -> None:
    assert [m for m in sys.modules if m.split(".")[0] in FOLDERS] == []


def test_the_folder_names_are_not_installed() -> None:
    # Outside the checkout nothing answers to `core` or `tui` (an install from before the
    # rename would); amibake.* is found through the editable install.
    probe = (
        "import importlib.util as u; "
        "print(u.find_spec('core'), u.find_spec('tui'), u.find_spec('amibake.core').origin)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, check=True
    )
    core_spec, tui_spec, origin = result.stdout.split()
    assert (core_spec, tui_spec) == ("None", "None")
    assert Path(origin).resolve() == ROOT / "core" / "__init__.py"


def test_the_wheel_installs_only_amibake(tmp_path: Path) -> None:
    setuptools = importlib.util.find_spec("setuptools")
    if setuptools is None:
        pytest.skip("setuptools is not installed in this venv (`.ci/setup dev` installs it)")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-build-isolation", "--no-index"),
            *("--wheel-dir", str(tmp_path / "dist"), str(src)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-1500:]
    (wheel,) = (tmp_path / "dist").glob("amibake-*.whl")
    version = PYPROJECT["project"]["version"]
    dist_info = f"amibake-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"amibake", dist_info}
    # Every file of the folders (modules, .tcss, examples and their data) and nothing else.
    expected = {
        "amibake/" + path.relative_to(ROOT).as_posix()
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert {name for name in names if not name.startswith(dist_info)} == expected
    assert "amibake/core/examples/files/motd" in expected
    assert "amibake = amibake.tui.cli:main" in entry_points
