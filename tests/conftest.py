"""Test-wide isolation: no real AWS, no user directories."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Every amibake directory (config, cache, data, state) goes under a temporary root,
    # and nothing from the developer's AWS set-up can point boto3 at a real account.
    os.environ["AMIBAKE_HOME"] = str(tmp_path_factory.mktemp("amibake-home"))
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
