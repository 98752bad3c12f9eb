"""Test-wide isolation: no real AWS, no user directories."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from core.local.cloud import LocalCloud


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


@pytest.fixture(scope="session")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, _isolated_environment: None
) -> Iterator[LocalCloud]:
    """One local cloud for the whole run (moto's state is per process), on the instant profile.

    Tests that change its latency or faults restore them (see the ``latency`` and ``faults``
    fixtures).
    """
    data_dir = tmp_path_factory.mktemp("local-cloud")
    with LocalCloud(latency="instant", data_dir=data_dir) as running:
        yield running
