"""The singular repeatable tag blocks (``tag``, ``run_tag``, ``snapshot_tag``, ``run_volume_tag``,
``spot_tag``, ``fleet_tag``) merged into their maps as Packer does: packer-plugin-amazon's
builder/common/ami_config.go and run_config.go call ``KeyValues.CopyOn`` (and builder/ebs/builder.go
``NameValues.CopyOn`` for ``run_volume_tag``, whose key field is ``name``). CopyOn writes each block
into the map in order, so a block wins over the map for the same key, and a later block over an
earlier one. The blocks are excluded from the load-time rendering like their maps (builder.go's
InterpolateFilter), so build template data stays for the engine."""

from __future__ import annotations

from amibake.core.model import FrozenMap
from tests.templates.helpers import hcl_builder, json_builder, load_text, problems_of

HCL_TAGS = """
  ami_name = "tag-blocks"
  tags = { Team = "map", Keep = "map" }
  tag {
    key   = "Team"
    value = "block"
  }
  tag {
    key   = "Base"
    value = "{{ .SourceAMIName }}"
  }
  tag {
    key   = "Base"
    value = "later {{ .SourceAMI }}"
  }
  run_tag {
    key   = "Run"
    value = "yes"
  }
  snapshot_tag {
    key   = "Snap"
    value = "{{ .BuildRegion }}"
  }
  run_volume_tag {
    name  = "Vol"
    value = "v"
  }
  run_volume_tags = { Vol = "map", Other = "o" }
"""


def test_hcl_tag_blocks_merge_into_the_maps_blocks_winning() -> None:
    b = load_text(hcl_builder(HCL_TAGS), "hcl").builders[0]
    assert b.tags == FrozenMap({"Team": "block", "Keep": "map", "Base": "later {{ .SourceAMI }}"})
    assert b.run_tags == FrozenMap({"Run": "yes"})
    assert b.snapshot_tags == FrozenMap({"Snap": "{{ .BuildRegion }}"})
    assert b.run_volume_tags == FrozenMap({"Vol": "v", "Other": "o"})


def test_legacy_json_tag_lists_merge_as_well() -> None:
    text = json_builder(
        tags={"A": "1"},
        tag=[{"key": "A", "value": "2"}, {"key": "B", "value": "{{ .SourceAMIOwner }}"}],
        run_tag=[{"key": "R", "value": "r"}],
        snapshot_tag=[{"key": "S", "value": "s"}],
        run_volume_tag=[{"name": "V", "value": "v"}],
    )
    b = load_text(text).builders[0]
    assert b.tags == FrozenMap({"A": "2", "B": "{{ .SourceAMIOwner }}"})
    assert b.run_tags == FrozenMap({"R": "r"})
    assert b.snapshot_tags == FrozenMap({"S": "s"})
    assert b.run_volume_tags == FrozenMap({"V": "v"})


def test_blocks_alone_make_the_map() -> None:
    text = hcl_builder('ami_name = "x-y-z"\n  tag {\n    key   = "K"\n    value = ""\n  }')
    b = load_text(text, "hcl").builders[0]
    assert b.tags == FrozenMap({"K": ""})
    assert b.run_tags == FrozenMap()


def test_tag_block_problems_are_located() -> None:
    problems = problems_of(
        hcl_builder(
            """
  ami_name = "tag-blocks"
  tag {
    value = "no key"
  }
  run_volume_tag {
    key   = "Vol"
    value = "v"
  }
  snapshot_tag {
    key   = "aws:reserved"
    value = "v"
  }
"""
        ),
        "hcl",
    )
    assert problems == [
        "t.pkr.hcl:9:3: source.amazon-ebs.x.tag[0].key: `key` is required",
        # run_volume_tag is a name/value block in the ebs builder (config.NameValues)
        "t.pkr.hcl:12:3: source.amazon-ebs.x.run_volume_tag[0].name: `name` is required",
        "t.pkr.hcl:13:5: source.amazon-ebs.x.run_volume_tag[0].key: unknown option `key`",
        "t.pkr.hcl:16:3: source.amazon-ebs.x.snapshot_tag.aws:reserved: tag keys starting with "
        "`aws:` are reserved by AWS",
    ]
