"""The local cloud: an embedded EC2 emulation (moto on loopback) with a realistic AMI catalogue.

In-process use is one call: ``LocalCloud(...).start()`` (or ``with LocalCloud() as cloud``);
see :mod:`amibake.core.local.cloud`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amibake.core.local.cloud import LocalCloud

__all__ = ["LocalCloud", "start_local_cloud"]


def start_local_cloud(**options: Any) -> LocalCloud:
    """Start a local cloud in this process and return it (``stop()`` it when done)."""
    from amibake.core.local.cloud import LocalCloud

    return LocalCloud(**options).start()


def __getattr__(name: str) -> Any:
    if name == "LocalCloud":
        from amibake.core.local.cloud import LocalCloud

        return LocalCloud
    raise AttributeError(name)
