"""Errors a user can cause, each carrying a one-line message.

Anything raised from ``core`` that a user could trigger with bad input or a bad
environment derives from :class:`AmibakeError`; front ends print ``str(error)``
and never a traceback.
"""

from __future__ import annotations


class AmibakeError(Exception):
    """Base for user-facing errors. ``str()`` is a single line fit for a terminal."""

    #: process exit status a CLI should use when this error ends a command
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AmibakeError):
    """Bad flags, bad arguments, unusable paths."""

    exit_code = 2


class LocalCloudError(AmibakeError):
    """The embedded local cloud could not start or do what it was asked."""

    exit_code = 1
