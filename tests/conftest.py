"""Test-wide isolation: no real AWS, no user directories."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from amibake.core.local.cloud import LocalCloud
from tests.isolation import isolate


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate(tmp_path_factory.mktemp("amibake-home"))
    # No Describe budget for the suite's builds (their build processes inherit this): on the
    # instant profile it would only add waiting. The budget has its own tests
    # (tests/engine/test_waiters.py) and bench_build.py measures it.
    os.environ["AMIBAKE_DESCRIBE_RATE"] = "0"


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
