"""The local cloud in a process of its own (`amibake local serve` as a child), as the app
starts it with ``[local] own_process``: boto3 reaches it, its latency changes, it stops."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
import pytest

from amibake.core.errors import LocalCloudError
from amibake.core.local.account import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from amibake.core.local.process import LocalCloudProcess


def ec2(endpoint: str) -> Any:
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
    )


def test_a_cloud_process_serves_changes_latency_and_stops() -> None:
    cloud = LocalCloudProcess(latency="instant").start()
    try:
        assert cloud.running
        assert cloud.endpoint_url.startswith("http://127.")
        assert cloud.ssh_port > 0
        client = ec2(cloud.endpoint_url)
        regions = client.describe_regions()["Regions"]
        assert "us-east-1" in {r["RegionName"] for r in regions}
        images = client.describe_images(Owners=["099720109477"])["Images"]
        assert images and all(i["OwnerId"] == "099720109477" for i in images)
        assert cloud.status()["latency"]["name"] == "instant"
        cloud.set_latency("fast")
        assert cloud.status()["latency"]["name"] == "fast"
    finally:
        cloud.stop()
    assert not cloud.running
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        ec2(cloud.endpoint_url).describe_regions()
    cloud.stop()  # idempotent


def test_a_process_that_cannot_start_says_why_in_one_line() -> None:
    with pytest.raises(LocalCloudError) as raised:
        LocalCloudProcess(latency="no-such-profile").start()
    assert "ended" in raised.value.message and "\n" not in raised.value.message
