"""Templates shipped with amibake: the seed that started it all, and a demo for the local cloud.

``seed.json`` is the seed's Packer template verbatim: on the local cloud its
``apt-get`` provisioner fails inside the sandbox (no network, no root), which
shows a clean failure and a full cleanup. ``demo.pkr.hcl`` provisions only what
the sandbox allows, so it builds an AMI end to end.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent


def examples() -> dict[str, Path]:
    """Shipped templates by file name."""
    return {
        p.name: p for p in sorted(EXAMPLES_DIR.iterdir()) if p.suffix in (".json", ".hcl", ".toml")
    }
