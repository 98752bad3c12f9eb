"""Template problems: every one carries file:line:col, a key path and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from amibake.core.errors import AmibakeError


@dataclass(frozen=True, slots=True)
class Loc:
    """A position in a template file; ``line`` and ``col`` count from 1."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake. ``str()`` is ``file:line:col: key.path: message`` on one line."""

    loc: Loc
    path: str
    message: str

    @property
    def file(self) -> str:
        return self.loc.file

    @property
    def line(self) -> int:
        return self.loc.line

    @property
    def col(self) -> int:
        return self.loc.col

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # always one line
        if self.path:
            path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.path)
            return f"{self.loc}: {path}: {message}"
        return f"{self.loc}: {message}"


class TemplateError(AmibakeError):
    """A template (or a variable file) has one or more problems; exit status 2.

    ``problems`` lists them all, in file order. ``str()`` is one line: the first
    problem, plus how many more there are.
    """

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(
            sorted(set(problems), key=lambda p: (p.loc.file, p.loc.line, p.loc.col, p.path))
        )
        if not self.problems:
            raise ValueError("TemplateError needs at least one problem")
        first = str(self.problems[0])
        extra = len(self.problems) - 1
        if extra:
            first += f" (and {extra} more problem{'s' if extra > 1 else ''})"
        super().__init__(first)

    def report(self) -> str:
        """All problems, one per line."""
        return "\n".join(str(p) for p in self.problems)


class Problems:
    """Collects problems while a template is read, so all are reported at once.

    ``warnings`` are things Packer also only warns about (a var-file setting a
    variable the template does not declare, a skipped builder of another type):
    they never fail a load and travel on as :attr:`BuildSpec.warnings`.
    """

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, loc: Loc, path: str, message: str) -> None:
        self.items.append(Problem(loc, path, message))

    def warn(self, loc: Loc, path: str, message: str) -> None:
        problem = Problem(loc, path, message)
        if problem not in self.warnings:
            self.warnings.append(problem)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise TemplateError(self.items)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean `x`?)``-style hint, or an empty string."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean `{matches[0]}`?" if matches else ""


def join_path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key
