"""Issue 10, item 6: the KMS key of each region's encrypted copy, against the local cloud.

``region_kms_key_ids[region]`` when given (tests/engine/test_ami_options.py); otherwise
``kms_key_id`` where it can work: in the build region, and in the other regions when it is a
multi-region key (``mrk-...``; an ARN is pointed at the destination region, where its replica
has the same id). Packer's step_ami_region_copy.go copies with ``RegionKeyIds[region]`` and
so with the region's default key whenever the map lacks it; amibake keeps a multi-region key,
and says so when a single-region key leaves a copy on the default key.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from amibake.core.engine.build import BuildResult, run_builds, select_builders
from amibake.core.engine.context import BuildContext
from amibake.core.engine.steps.images import default_key_note, region_key
from amibake.core.events import Event, Message
from amibake.core.templates import load
from tests.engine.test_ami_options import RecordingAws
from tests.engine.test_build import Harness, builder, harness, shell

__all__ = ["harness"]

MRK_ARN = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
MRK_ARN_WEST = "arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
MRK_ID = "mrk-f4224f9362ac4ed2b32a6bc77cf43510"
SINGLE = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def encrypted(name: str, key: str) -> dict[str, Any]:
    return builder(name, ami_regions=["us-west-2"], encrypt_boot=True, kms_key_id=key)


async def build_all(harness: Harness, template: Path) -> tuple[list[BuildResult], RecordingAws]:
    """Every builder of the template in one run, the engine's calls recorded."""
    spec = load(template)
    opts = harness.options()
    aws = RecordingAws(opts.target)

    def emit(event: Event) -> None:
        json.loads(event.to_json())
        harness.events.append(event)

    try:
        results = await run_builds(spec, select_builders(spec), aws, opts, emit)
    finally:
        aws.close()
    return list(results), aws


async def test_each_regions_copy_carries_the_key_that_works_there(harness: Harness) -> None:
    builders = [
        encrypted("mrk-arn", MRK_ARN),
        encrypted("single", SINGLE),
    ]
    template = harness.template({"builders": builders, "provisioners": [shell("true")]})
    results, aws = await build_all(harness, template)
    by_name = {r.name.rsplit(".", 1)[-1]: r for r in results}
    assert [(r.status, r.error) for r in results] == [("succeeded", None)] * 2
    expected: dict[str, dict[str, str | None]] = {
        "mrk-arn": {"us-east-1": MRK_ARN, "us-west-2": MRK_ARN_WEST},
        "single": {"us-east-1": SINGLE, "us-west-2": None},  # the region's default key
    }
    # the KmsKeyId each CopyImage request carried, per builder and region
    names = {b["ami_name"]: b["name"] for b in builders}
    sent: dict[str, dict[str, str | None]] = {}
    for region, operation, params in aws.seen:
        if operation == "CopyImage":
            assert params["Encrypted"] is True
            sent.setdefault(names[params["Name"]], {})[region] = params.get("KmsKeyId")
    assert sent == expected
    # ... and what the cloud made of it: each copy's snapshot under that key
    for name, keys in expected.items():
        assert set(by_name[name].artifacts) == {"us-east-1", "us-west-2"}
        for region in by_name[name].artifacts:
            (snapshot_id,) = by_name[name].snapshots[region]
            ec2 = harness.client(region)
            snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
            assert snapshot["Encrypted"] is True
            key = keys[region]
            if key is None:
                assert snapshot["KmsKeyId"].endswith(":alias/aws/ebs")
                assert f":{region}:" in snapshot["KmsKeyId"]
            else:
                assert snapshot["KmsKeyId"] == key
    # the single-region key's fall-back is said, once, as a warning; the others say nothing
    notes = [e for e in harness.events if isinstance(e, Message) and "single-region" in e.text]
    assert [(n.level, n.text) for n in notes] == [
        (
            "warning",
            f"kms_key_id {SINGLE} is a single-region key: the copy in us-west-2 is encrypted "
            "with us-west-2's default EBS key (set region_kms_key_ids, or use a multi-region "
            "mrk- key)",
        )
    ]


def context(kms_key_id: str | None, **region_keys: str) -> BuildContext:
    builder = SimpleNamespace(
        kms_key_id=kms_key_id,
        region_kms_key_ids={k.replace("_", "-"): v for k, v in region_keys.items()},
    )
    return cast(BuildContext, SimpleNamespace(builder=builder, region="us-east-1"))


def test_which_key_each_region_gets() -> None:
    """region_key's rule without a build (the build above shows it reaching the cloud)."""
    bare = context(MRK_ID)
    assert [region_key(bare, r) for r in ("us-east-1", "eu-west-1")] == [MRK_ID, MRK_ID]
    assert default_key_note(bare, "eu-west-1") is None
    # a region's own key wins, "" is its default key, even over a multi-region key
    mapped = context(MRK_ID, us_east_1="alias/east", us_west_2="")
    assert [region_key(mapped, r) for r in ("us-east-1", "us-west-2")] == ["alias/east", None]
    assert default_key_note(mapped, "us-west-2") is None  # the user chose the default
    # an alias or a plain key id names a key of the build region only
    for key in ("alias/mine", "1234abcd-12ab-34cd-56ef-1234567890ab"):
        single = context(key)
        assert (region_key(single, "us-east-1"), region_key(single, "eu-west-1")) == (key, None)
        assert "single-region key" in (default_key_note(single, "eu-west-1") or "")
    # no key at all: the default key everywhere, nothing to say
    assert region_key(context(None), "eu-west-1") is None
    assert default_key_note(context(None), "eu-west-1") is None
    gov = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef"
    assert region_key(context(gov), "us-gov-east-1") == gov.replace("west", "east")
