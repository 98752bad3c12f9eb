"""The image table's columns: what each shows of an image, how wide it is, which go first
when the table is narrow, and how a long name is cut to fit.

Used by :class:`amibake.tui.widgets.image_table.ImageTable` (which re-exports ``COLUMNS`` and
``elide_middle``) and the browser's sort cycle.
"""

from __future__ import annotations

from typing import NamedTuple

from amibake.core.catalog import ImageRecord


class Column(NamedTuple):
    key: str  # a amibake.core.catalog.SORT_KEYS key
    label: str
    width: int  # 0: takes the remaining width


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", 0),
    Column("id", "Image id", 21),
    Column("owner", "Owner", 15),
    Column("arch", "Arch", 6),
    Column("created", "Created", 10),
    Column("root", "Root", 4),
    Column("virt", "Virt", 4),
    Column("deprecation", "Depr. on", 10),
)
#: When the name would get narrower than this, columns are dropped in DROP_ORDER.
MIN_NAME_WIDTH = 36
DROP_ORDER = ("virt", "root", "deprecation", "owner", "arch")
GAP = 1


def elide_middle(text: str, width: int) -> str:
    """``text`` in ``width`` cells, cut in the middle when too long: the end of an image name
    (version, serial, date) tells images apart, so its last path segment stays whole when it
    fits, else the end keeps two thirds of the room."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width < 8:
        return text[: width - 1] + "…"
    head_path, _slash, last = text.rpartition("/")
    if head_path and len(last) + 2 <= width:
        # the last path segment (series, version, arch, serial) whole; the path's start before
        return text[: width - len(last) - 2] + "…/" + last
    tail = (width - 1) * 2 // 3
    head = width - 1 - tail
    return text[:head] + "…" + text[len(text) - tail :]


def cell_text(record: ImageRecord, key: str) -> str:
    """What the column ``key`` shows of ``record`` (before it is fitted to its width)."""
    if key == "name":
        return record.name
    if key == "id":
        return record.image_id
    if key == "owner":
        return record.owner
    if key == "arch":
        return record.architecture
    if key == "created":
        return record.creation_date[:10]
    if key == "root":
        return "ebs" if record.root_device_type == "ebs" else "inst"
    if key == "virt":
        return "hvm" if record.virtualization_type == "hvm" else "pv"
    if key == "deprecation":
        return record.deprecation_time[:10] if record.deprecation_time else ""
    return ""
