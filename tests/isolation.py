"""Keep a test run, a benchmark or a screenshot script away from the user's set-up."""

from __future__ import annotations

import os
from pathlib import Path


def isolate(home: Path) -> None:
    """Every amibake directory (config, cache, data, state) under ``home``, and nothing from
    the developer's AWS set-up (variables, profiles, instance metadata) able to point boto3
    at a real account."""
    os.environ["AMIBAKE_HOME"] = str(home)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
