"""The AMI catalogue: paged fetch, disk cache, and an in-memory index for fast filtering.

UI-free. The browser asks three things of it:

* :func:`fetch_pages` pages through ``DescribeImages`` for one owner preset via the
  async :class:`amibake.core.aws.Aws` facade, yielding each page as soon as it arrives so the
  first rows show while the rest load.
* :class:`CatalogCache` keeps each (target, region, owner) listing on disk under the
  platformdirs cache dir with the time it was fetched, so reopening is instant and
  the age can be shown.
* :class:`CatalogIndex` answers a filter line, facet toggles and a sort over up to a
  few hundred thousand images in milliseconds. Filter terms:

  - a term with ``*`` or ``?`` is an AWS wildcard matched against the whole name,
    case-sensitively, exactly as DescribeImages' ``name`` filter does;
  - a term starting with ``ami-`` matches image ids by prefix;
  - any other term matches, case-insensitively, anywhere in the name, id, owner or
    description; all terms must match.
  - When plain terms match nothing, they are retried as *fuzzy* subsequences
    ("nblarm" finds "noble ... arm64"), best (tightest) matches first.

Speed comes from C-speed substring tests over one lowercase string per image
(a wildcard is pre-filtered by its longest literal piece before its regex runs),
from walking the rows in display order so no sort follows a filter, and from
narrowing: a query that extends an earlier one only looks at that one's result, and
recent answers are kept, so deleting letters costs nothing. A search runs a chunk of
candidates at a time (:class:`Search`), fuzzy ranking included, so a caller can let keys
and frames in between and drop a search the next key makes stale.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import add
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.core import paths
from amibake.core.owners import owner_label

if TYPE_CHECKING:
    from amibake.core.aws import Aws
    from amibake.core.settings import OwnerPreset

CACHE_VERSION = 2
PAGE_SIZE = 1000
#: How many images :meth:`CatalogCache.load_head` reads: the first screen and a few pages on.
HEAD_ROWS = 300
#: Rows parsed per ``json.loads`` call when a whole listing is read.
_CHUNK = 2000
#: How many result rows the index keeps of recent queries (4 bytes each).
ANSWER_ROWS_KEPT = 2_000_000
ANSWERS_KEPT = 64
#: How many wildcard pieces' rows the index keeps (100 kB each per 100,000 images).
PIECES_KEPT = 16
#: A wildcard's piece is looked for in every name (and kept) when that costs at most
#: PIECE_SCAN_SHARE times testing the rows at hand; a chunk of a search tests its own names.
PIECE_SCAN_SHARE = 4

#: Columns the index can sort by (key -> attribute of ImageRecord).
SORT_KEYS: dict[str, str] = {
    "name": "name",
    "id": "image_id",
    "owner": "owner",
    "arch": "architecture",
    "created": "creation_date",
    "root": "root_device_type",
    "virt": "virtualization_type",
    "deprecation": "deprecation_time",
}

_intern = sys.intern


class ImageRecord:
    """One image, compact: the table's columns as attributes, details as a JSON string."""

    __slots__ = (
        "architecture",
        "creation_date",
        "deprecation_time",
        "description",
        "details",
        "image_id",
        "name",
        "owner_alias",
        "owner_id",
        "root_device_type",
        "virtualization_type",
    )

    def __init__(
        self,
        image_id: str,
        name: str,
        owner_id: str,
        owner_alias: str | None,
        architecture: str,
        creation_date: str,
        root_device_type: str,
        virtualization_type: str,
        deprecation_time: str | None,
        description: str,
        details: str | int,
    ) -> None:
        self.image_id = image_id
        self.name = name
        self.owner_id = _intern(owner_id)
        self.owner_alias = _intern(owner_alias) if owner_alias else None
        self.architecture = _intern(architecture)
        self.creation_date = creation_date
        self.root_device_type = _intern(root_device_type)
        self.virtualization_type = _intern(virtualization_type)
        self.deprecation_time = deprecation_time
        self.description = description
        #: The remaining DescribeImages fields (block devices, tags, ...): a JSON string,
        #: or, once cached, the offset of that JSON in the listing's details file.
        self.details = details

    @property
    def owner(self) -> str:
        """What the owner column shows: the publisher's name, else the alias, else the account."""
        return owner_label(self.owner_id, self.owner_alias)

    def deprecated(self, now: str) -> bool:
        """True when the deprecation time (ISO, UTC) is at or before ``now`` (same format)."""
        return self.deprecation_time is not None and self.deprecation_time <= now

    _COLUMNS = (
        "ImageId",
        "Name",
        "OwnerId",
        "ImageOwnerAlias",
        "Architecture",
        "CreationDate",
        "RootDeviceType",
        "VirtualizationType",
        "DeprecationTime",
        "Description",
    )

    @classmethod
    def from_api(cls, image: dict[str, Any]) -> ImageRecord:
        """From one entry of DescribeImages' ``Images``."""
        rest = {k: v for k, v in image.items() if k not in cls._COLUMNS}
        return cls(
            str(image.get("ImageId", "")),
            str(image.get("Name", "")),
            str(image.get("OwnerId", "")),
            image.get("ImageOwnerAlias"),
            str(image.get("Architecture", "")),
            _iso(image.get("CreationDate")) or "",
            str(image.get("RootDeviceType", "")),
            str(image.get("VirtualizationType", "")),
            _iso(image.get("DeprecationTime")),
            str(image.get("Description", "") or ""),
            json.dumps(rest, default=str, separators=(",", ":")) if rest else "",
        )

    def to_row(self) -> list[Any]:
        return [
            self.image_id,
            self.name,
            self.owner_id,
            self.owner_alias,
            self.architecture,
            self.creation_date,
            self.root_device_type,
            self.virtualization_type,
            self.deprecation_time,
            self.description,
            self.details,
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ImageRecord:
        return cls(*row)

    def to_api(self, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """The image as DescribeImages reports it (what ``UseAsSource`` carries).

        ``details`` supplies the other fields when they live on disk (see
        :meth:`CatalogIndex.image`).
        """
        image: dict[str, Any] = {
            "ImageId": self.image_id,
            "Name": self.name,
            "OwnerId": self.owner_id,
            "Architecture": self.architecture,
            "CreationDate": self.creation_date,
            "RootDeviceType": self.root_device_type,
            "VirtualizationType": self.virtualization_type,
            "Description": self.description,
        }
        if self.owner_alias:
            image["ImageOwnerAlias"] = self.owner_alias
        if self.deprecation_time:
            image["DeprecationTime"] = self.deprecation_time
        if details is not None:
            image.update(details)
        elif isinstance(self.details, str) and self.details:
            image.update(json.loads(self.details))
        return image

    def __repr__(self) -> str:
        return f"ImageRecord({self.image_id} {self.name!r})"


def _iso(value: Any) -> str | None:
    """AWS timestamps as ``YYYY-MM-DDTHH:MM:SS.000Z`` strings (sortable as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    return str(value)


def now_iso() -> str:
    return _iso(datetime.now(UTC)) or ""


# -- Packer's source_ami_filter from an image ----------------------------------------------

# A dated serial and what follows it: -20240101, .20241215.0-x86_64..., -2024.01.15 ...
_SERIAL = re.compile(
    r"(?<=[-_.])(?:20\d{6}(?:\.\d+|T\d+Z?)?|20\d{2}[.-]\d{2}[.-]\d{2}(?:[.-]\d+)?)"
)
_SEMVER_DATE = re.compile(r"(?<=[-_.])\d+\.\d+\.20\d{6}(?:\.\d+)?")


def name_wildcard(name: str) -> str:
    """The AWS wildcard that matches ``name`` and the later images of its series.

    The one such function: the browser's "use as source" and the editor's scaffold both
    use it. The dated serial (``20241023``, ``20240101T1234Z``, ``2.0.20241215.0``,
    ``2024.01.15``) becomes ``*``; a name with no serial is returned unchanged (an exact
    name filter).
    """
    for pattern in (_SEMVER_DATE, _SERIAL):
        match = pattern.search(name)
        if match:
            return name[: match.start()] + "*" + name[match.end() :]
    return name


def source_ami_filter(image: dict[str, Any]) -> dict[str, Any]:
    """Packer's ``source_ami_filter`` block selecting the newest image of ``image``'s series."""
    filters: dict[str, str] = {"name": name_wildcard(str(image.get("Name", "")))}
    for key, api in (
        ("architecture", "Architecture"),
        ("root-device-type", "RootDeviceType"),
        ("virtualization-type", "VirtualizationType"),
    ):
        if image.get(api):
            filters[key] = str(image[api])
    owner = image.get("OwnerId") or image.get("ImageOwnerAlias") or "self"
    return {"filters": filters, "owners": [str(owner)], "most_recent": True}


# -- fetching ------------------------------------------------------------------------------


async def fetch_pages(
    aws: Aws,
    region: str,
    preset: OwnerPreset,
    *,
    include_deprecated: bool = True,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[list[ImageRecord]]:
    """DescribeImages for ``preset`` in ``region``, one list of records per page."""
    params: dict[str, Any] = preset.describe_params()
    params["IncludeDeprecated"] = include_deprecated
    params["MaxResults"] = page_size
    token: str | None = None
    while True:
        call = dict(params)
        if token:
            call["NextToken"] = token
        answer = await aws.call(region, "DescribeImages", **call)
        yield [ImageRecord.from_api(image) for image in answer.get("Images", [])]
        token = answer.get("NextToken")
        if not token:
            return


# -- disk cache ----------------------------------------------------------------------------


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", part) or "_"


def display_order(records: list[ImageRecord]) -> list[ImageRecord]:
    """Newest first, then by name and id: the browser's default order (and the cache's)."""
    ordered = sorted(records, key=lambda r: (r.name, r.image_id))
    ordered.sort(key=lambda r: r.creation_date, reverse=True)
    return ordered


@dataclass
class CachedListing:
    records: list[ImageRecord]
    fetched_at: datetime
    #: Where the records' details live (their ``details`` are offsets into it).
    details_path: Path | None = None
    #: How many images the whole listing holds (more than ``records`` for a head).
    total: int = -1

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = len(self.records)

    @property
    def complete(self) -> bool:
        """False for a head: the first rows only (:meth:`CatalogCache.load_head`)."""
        return len(self.records) >= self.total

    def age_seconds(self, now: datetime | None = None) -> float:
        return max(0.0, ((now or datetime.now(UTC)) - self.fetched_at).total_seconds())


class CatalogCache:
    """Listings on disk, per target, region and owner, under the platformdirs cache dir.

    Two files per listing. ``<owner>.rows.jsonl`` holds the table's columns: a header
    line (version, fetch time, image count), then one JSON array per image, newest
    first (the browser's default order), so the first screen reads only the file's
    head (:meth:`load_head`) and the rest is parsed after, in chunks. ``<owner>.details.jsonl``
    holds the rest of each image, one line each, read only for the image shown in the
    detail panel.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or (paths.cache_dir() / "images")

    def path(self, target: str, region: str, owner: str) -> Path:
        return self.root / _safe(target) / _safe(region) / f"{_safe(owner)}.rows.jsonl"

    @staticmethod
    def details_path_of(rows_path: Path) -> Path:
        return rows_path.with_name(rows_path.name.removesuffix(".rows.jsonl") + ".details.jsonl")

    @staticmethod
    def _header(line: bytes) -> tuple[datetime, int] | None:
        """The fetch time and image count of a rows file's first line (None: another version)."""
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return None
        count = data["count"]
        if not isinstance(count, int) or count < 0:
            return None
        return datetime.fromisoformat(data["fetched_at"]), count

    def load_head(
        self, target: str, region: str, owner: str, rows: int = HEAD_ROWS
    ) -> CachedListing | None:
        """The listing's first ``rows`` images (newest first) and its total, or None.

        Reads only the head of the file: what the first screen needs, in a few
        milliseconds whatever the listing's size. ``complete`` tells whether that was all.
        """
        path = self.path(target, region, owner)
        details = self.details_path_of(path)
        try:
            with open(path, "rb") as handle:
                header = self._header(handle.readline())
                if header is None or not details.exists():
                    return None
                fetched, count = header
                lines = [line for _, line in zip(range(rows), handle, strict=False)]
            records = _records(lines)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if len(records) != min(rows, count):
            return None
        return CachedListing(records, fetched, details, total=count)

    def load(self, target: str, region: str, owner: str) -> CachedListing | None:
        """The whole cached listing, or None when absent, unreadable or of another version.

        Parsed in chunks: a thread running this lets the event loop in between.
        """
        path = self.path(target, region, owner)
        details = self.details_path_of(path)
        try:
            lines = path.read_bytes().splitlines()
            header = self._header(lines[0]) if lines else None
            if header is None or not details.exists():
                return None
            fetched, count = header
            records = _records(lines[1:])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if len(records) != count:
            return None  # cut short
        return CachedListing(records, fetched, details)

    def save(
        self,
        target: str,
        region: str,
        owner: str,
        records: list[ImageRecord],
        fetched_at: datetime | None = None,
    ) -> CachedListing:
        """Write the listing; its records' details become offsets into the details file."""
        path = self.path(target, region, owner)
        details_path = self.details_path_of(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fetched_at = fetched_at or datetime.now(UTC)
        ordered = display_order(records)
        old_details = _DetailsReader.for_records(ordered)
        partial_details = details_path.with_name(f".{details_path.name}.{os.getpid()}.tmp")
        offsets: list[int] = []
        with open(partial_details, "wb") as handle:
            position = 0
            for record in ordered:
                line = old_details.text(record).encode() + b"\n"
                offsets.append(position)
                handle.write(line)
                position += len(line)
        old_details.close()
        header = {
            "version": CACHE_VERSION,
            "fetched_at": fetched_at.isoformat(),
            "count": len(ordered),
        }
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(dumps(header) + "\n")
            for record, offset in zip(ordered, offsets, strict=True):
                row = record.to_row()
                row[-1] = offset
                handle.write(dumps(row) + "\n")
        # Details first: a rows file never points into a details file older than itself.
        os.replace(partial_details, details_path)
        os.replace(partial, path)
        self._legacy(path).unlink(missing_ok=True)
        for record, offset in zip(ordered, offsets, strict=True):
            record.details = offset
        return CachedListing(ordered, fetched_at, details_path)

    @staticmethod
    def _legacy(path: Path) -> Path:
        """The version-1 rows file of the same listing (one JSON document)."""
        return path.with_name(path.name.removesuffix(".rows.jsonl") + ".rows.json")

    def clear(self, target: str, region: str, owner: str) -> None:
        path = self.path(target, region, owner)
        path.unlink(missing_ok=True)
        self._legacy(path).unlink(missing_ok=True)
        self.details_path_of(path).unlink(missing_ok=True)


def _records(lines: Sequence[bytes]) -> list[ImageRecord]:
    """Records from rows-file lines (JSON arrays), parsed ``_CHUNK`` lines per call: fast
    (one ``json.loads`` per chunk) yet never holding the interpreter long at a time."""
    make = ImageRecord
    records: list[ImageRecord] = []
    for start in range(0, len(lines), _CHUNK):
        chunk = json.loads(b"[" + b",".join(lines[start : start + _CHUNK]) + b"]")
        records += [make(*row) for row in chunk]
    return records


class _DetailsReader:
    """Reads a record's details JSON whether it is in memory or in a details file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: Any = None

    @classmethod
    def for_records(cls, records: list[ImageRecord], path: Path | None = None) -> _DetailsReader:
        return cls(path)

    def text(self, record: ImageRecord) -> str:
        details = record.details
        if isinstance(details, str):
            return details or "{}"
        if self.path is None:
            return "{}"
        if self._handle is None:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open between reads
        self._handle.seek(details)
        return self._handle.readline().decode().strip() or "{}"

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def format_age(seconds: float) -> str:
    """``just now``, ``5 min``, ``3 h``, ``2 days``."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


# -- the index -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Facets:
    """Facet toggles: ``None`` means any value."""

    architecture: str | None = None
    virtualization: str | None = None
    root_device: str | None = None
    hide_deprecated: bool = False

    @property
    def active(self) -> bool:
        return bool(
            self.architecture or self.virtualization or self.root_device or self.hide_deprecated
        )


@dataclass(frozen=True)
class QueryResult:
    """Row numbers of the index's records, in display order."""

    rows: list[int]
    #: "all", "match" (substring/wildcard/id terms) or "fuzzy" (no exact match: subsequences).
    mode: str
    total: int


def aws_wildcard(pattern: str) -> str:
    """The regex body of an AWS wildcard (``*`` any run, ``?`` one character)."""
    return "".join(
        "[^\n]*" if ch == "*" else "[^\n]" if ch == "?" else re.escape(ch) for ch in pattern
    )


def _fuzzy_regex(term: str) -> str:
    """Regex of a line holding ``term``'s letters in order; group 1 spans the embedding.

    Possessive "anything but the next letter" finds the leftmost embedding with no
    backtracking, so a match is linear in the line's length.
    """
    parts = []
    for position, ch in enumerate(term):
        escaped = re.escape(ch)
        negated = "\\n" + ("\\" + ch if ch in "\\]^-[" else ch)
        parts.append(f"[^{negated}]*+" + ("(" if position == 0 else "") + escaped)
    return "".join(parts) + ")"


@dataclass
class _Narrowing:
    query: str
    facets: Facets
    sort: str
    descending: bool
    #: Matching rows in display order, as an array: compact, and never walked by the
    #: garbage collector (a list of 2,000,000 kept rows made each full collection,
    #: every few seconds of typing, cost 30 ms).
    rows: Sequence[int]
    mode: str


class CatalogIndex:
    """Fast filter / facet / sort over a list of :class:`ImageRecord`.

    Results keep the display order as they are computed: plain terms are tested while
    walking the rows in the current sort order, so no sort follows a filter.
    """

    def __init__(
        self,
        records: list[ImageRecord] | None = None,
        *,
        details_path: Path | None = None,
        now: str | None = None,
    ) -> None:
        self.now = now or now_iso()
        self.records: list[ImageRecord] = []
        self.details_path = details_path
        self.replace(records or [], details_path)

    # -- building --------------------------------------------------------------------------

    def replace(self, records: list[ImageRecord], details_path: Path | None = None) -> None:
        self.records = records
        self.details_path = details_path
        self._reader = _DetailsReader(details_path)
        self._orders: dict[str, list[int]] = {}
        self._texts: list[str] | None = None
        #: Recent answers by (query, facets, sort, descending), least recently used first:
        #: deleting letters goes back to an answer already computed.
        self._answers: OrderedDict[tuple[str, Facets, str, bool], _Narrowing] = OrderedDict()
        self._answer_rows = 0
        self._created_rank: list[int] | None = None
        self._names: list[str] | None = None
        #: Rows (and a flag per row) whose name holds a wildcard's literal piece, by piece.
        self._pieces: OrderedDict[str, tuple[Sequence[int], bytearray]] = OrderedDict()
        #: The newest unfinished search, a base for the next keystroke's.
        self._partial: Search | None = None
        self._by_id = {r.image_id: i for i, r in enumerate(records)}

    def extend(self, records: Sequence[ImageRecord]) -> None:
        """Add a page of records (derived data is rebuilt lazily)."""
        known = self._by_id
        fresh = [r for r in records if r.image_id not in known]
        combined = self.records + fresh
        self.replace(combined, self.details_path)

    def __len__(self) -> int:
        return len(self.records)

    def row_of(self, image_id: str) -> int | None:
        return self._by_id.get(image_id)

    def details(self, row: int) -> dict[str, Any]:
        """The fields of row ``row`` that are not columns (block devices, tags, ...)."""
        try:
            value = json.loads(self._reader.text(self.records[row]))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def image(self, row: int) -> dict[str, Any]:
        """Row ``row`` as a DescribeImages entry."""
        return self.records[row].to_api(self.details(row))

    def prepare(self) -> CatalogIndex:
        """Build what the first filter keystroke needs (call off the UI thread)."""
        self._text_rows()
        self.order("created", True)
        self._rank_created()
        return self

    def _text_rows(self) -> list[str]:
        if self._texts is None:
            # One line per row (terms never hold whitespace: a newline is as good as a space).
            self._texts = [
                " ".join((r.name, r.image_id, r.owner_alias or "", r.owner_id, r.description))
                .lower()
                .replace("\n", " ")
                for r in self.records
            ]
        return self._texts

    # -- facets ----------------------------------------------------------------------------

    def facet_values(self) -> dict[str, list[str]]:
        """Distinct values of each facet column (for the toggles' cycles)."""
        records = self.records
        return {
            "architecture": sorted({r.architecture for r in records}),
            "virtualization": sorted({r.virtualization_type for r in records}),
            "root_device": sorted({r.root_device_type for r in records}),
        }

    # -- querying --------------------------------------------------------------------------

    def query(
        self,
        text: str = "",
        facets: Facets | None = None,
        sort: str = "created",
        descending: bool = True,
    ) -> QueryResult:
        """The whole answer to a filter line, facets and sort, at once."""
        search = self.search(text, facets, sort, descending)
        search.finish()
        return search.result()

    def search(
        self,
        text: str = "",
        facets: Facets | None = None,
        sort: str = "created",
        descending: bool = True,
    ) -> Search:
        """The answer to a filter line, facets and sort, computed as far as asked.

        :meth:`Search.step` walks the candidates a chunk at a time, so a caller can show
        the first page of matches as soon as it is found and count the rest later. Only
        the newest unfinished search is kept: a later one that narrows it starts from
        what it has not ruled out yet.
        """
        facets = facets or Facets()
        text = " ".join(text.split())
        key = (text, facets, sort, descending)
        known = self._answers.get(key)
        if known is not None:
            self._answers.move_to_end(key)
            return Search(self, key, [], known.rows, known.mode, remembered=True)
        last = self._base_for(text, facets, sort, descending, fuzzy=False)
        candidates = self.order(sort, descending) if last is None else last.rows
        partial = self._partial
        if (
            partial is not None
            and partial.key[1:] == key[1:]
            and partial.mode != "fuzzy"
            and _narrows(partial.key[0], text)
            and partial.remaining < len(candidates)
        ):
            candidates = partial.superset()
        plain = bool(text) and not any(_is_special(t) for t in text.split(" "))
        last_fuzzy = self._base_for(text, facets, sort, descending, fuzzy=True) if plain else None
        if last_fuzzy is not None:
            # No exact match before, none now; the fuzzy matches can only shrink.
            search = Search(self, key, [], [], "fuzzy")
            search.fuzzy = _FuzzyPass(self, text.lower().split(" "), last_fuzzy.rows)
        elif (
            plain
            and partial is not None
            and partial.fuzzy is not None
            and not partial.fuzzy.done
            and partial.key[1:] == key[1:]
            and _narrows(partial.key[0], text)
        ):
            # Typed on while the fuzzy matches of a query this one narrows were being
            # ranked: no exact match there, none here; only what it has not ruled out can
            # match.
            search = Search(self, key, [], [], "fuzzy")
            search.fuzzy = _FuzzyPass(self, text.lower().split(" "), partial.fuzzy.superset())
        elif not text and not facets.active:
            search = Search(self, key, [], candidates, "all")
        else:
            search = Search(self, key, candidates, [], "match" if text else "all", plain=plain)
        if search.done:
            search.finish()  # remembered
        else:
            self._partial = search
        return search

    def _base_for(
        self, text: str, facets: Facets, sort: str, descending: bool, *, fuzzy: bool
    ) -> _Narrowing | None:
        """The smallest remembered answer that ``text`` narrows (same facets and sort).

        ``fuzzy`` picks among fuzzy answers (which only hold when no exact match exists, so
        they narrow only to fuzzy answers), else among exact ones.
        """
        best: _Narrowing | None = None
        for answer in self._answers.values():
            if (
                (answer.mode == "fuzzy") == fuzzy
                and answer.facets == facets
                and answer.sort == sort
                and answer.descending == descending
                and (best is None or len(answer.rows) < len(best.rows))
                and _narrows(answer.query, text)
            ):
                best = answer
        return best

    def _remember(self, answer: _Narrowing) -> None:
        key = (answer.query, answer.facets, answer.sort, answer.descending)
        self._answers[key] = answer
        self._answer_rows += len(answer.rows)
        while len(self._answers) > 1 and (
            self._answer_rows > ANSWER_ROWS_KEPT or len(self._answers) > ANSWERS_KEPT
        ):
            _, dropped = self._answers.popitem(last=False)
            self._answer_rows -= len(dropped.rows)

    def _terms(
        self, terms: list[str], candidates: Sequence[int], sort: str, descending: bool
    ) -> Sequence[int]:
        rows = candidates
        for term in terms:
            if not rows:
                return []
            if "*" in term or "?" in term:
                rows = self._wildcard(term, rows, sort, descending)
            elif term.startswith("ami-"):
                records = self.records
                rows = [i for i in rows if records[i].image_id.startswith(term)]
            else:
                needle = term.lower()
                texts = self._text_rows()
                rows = [i for i in rows if needle in texts[i]]
        return rows

    def _wildcard(
        self, term: str, rows: Sequence[int], sort: str, descending: bool
    ) -> Sequence[int]:
        if not term.strip("*"):
            return rows  # "*" matches every name
        records = self.records
        # Pre-filter with the longest literal piece (a C-speed substring test), then the
        # anchored pattern on what is left: no regex ever backtracks over most names.
        pieces = [piece for piece in re.split(r"[*?]", term) if piece]
        if pieces:
            piece = max(pieces, key=len)
            if self._piece_cost(piece) <= len(rows) * PIECE_SCAN_SHARE:
                holds = self._names_holding(piece)
                rows = [i for i in rows if holds[i]]
            else:  # a chunk of a search: test its names, not the whole listing's
                rows = [i for i in rows if piece in records[i].name]
        if term[0] not in "*?":
            head = pieces[0]
            rows = [i for i in rows if records[i].name.startswith(head)]
        full = re.compile(aws_wildcard(term), re.DOTALL).fullmatch
        return [i for i in rows if full(records[i].name)]

    def _piece_cost(self, piece: str) -> int:
        """How many names :meth:`_names_holding` would look at for ``piece``."""
        if piece in self._pieces:
            return 0
        return min(
            (len(rows) for kept, (rows, _) in self._pieces.items() if kept in piece),
            default=len(self.records),
        )

    def _names_holding(self, piece: str) -> bytearray:
        """A flag per row: does its name hold ``piece`` (case-sensitive)?

        Kept for the last few pieces, as a wildcard being typed keeps its longest piece
        over several keys; a longer piece only looks at the rows of a kept piece within it.
        """
        known = self._pieces.get(piece)
        if known is not None:
            self._pieces.move_to_end(piece)
            return known[1]
        names = self._names
        if names is None:
            names = self._names = [r.name for r in self.records]
        within = min(
            (rows for kept, (rows, _) in self._pieces.items() if kept in piece),
            key=len,
            default=None,
        )
        candidates = range(len(names)) if within is None else within
        rows = [i for i in candidates if piece in names[i]]
        holds = bytearray(len(names))
        for i in rows:
            holds[i] = 1
        self._pieces[piece] = (array("i", rows), holds)
        if len(self._pieces) > PIECES_KEPT:
            self._pieces.popitem(last=False)
        return holds

    def _fuzzy(self, terms: list[str], candidates: list[int] | None = None) -> list[int]:
        """Rows holding each term's letters in order, best match first (all at once; see
        :class:`_FuzzyPass`, which does the same a chunk of candidates at a time)."""
        fuzzy = _FuzzyPass(self, terms, candidates)
        fuzzy.step(len(fuzzy.candidates))
        return fuzzy.rows

    def _rank_created(self) -> list[int]:
        """Each row's position in the newest-first order (the fuzzy ranking's tie-break)."""
        if self._created_rank is None:
            rank = [0] * len(self.records)
            for position, row in enumerate(self.order("created", True)):
                rank[row] = position
            self._created_rank = rank
        return self._created_rank

    def _apply_facets(self, rows: Sequence[int], facets: Facets) -> Sequence[int]:
        if not facets.active or not rows:
            return rows
        records = self.records
        arch, virt, root = facets.architecture, facets.virtualization, facets.root_device
        now = self.now
        hide = facets.hide_deprecated
        out = []
        for i in rows:
            r = records[i]
            if arch and r.architecture != arch:
                continue
            if virt and r.virtualization_type != virt:
                continue
            if root and r.root_device_type != root:
                continue
            if hide and r.deprecation_time is not None and r.deprecation_time <= now:
                continue
            out.append(i)
        return out

    def order(self, sort: str, descending: bool) -> list[int]:
        """All rows sorted by a column (computed once per column and direction).

        Ties keep the records' own order (the cache's: newest first, then by name), so
        the order is the same on every run.
        """
        key = f"{sort}:{descending}"
        cached = self._orders.get(key)
        if cached is None:
            attribute = SORT_KEYS.get(sort, "creation_date")
            records = self.records
            if attribute == "owner":
                values = [r.owner for r in records]
            else:
                values = [getattr(r, attribute) or "" for r in records]
            cached = sorted(range(len(records)), key=values.__getitem__, reverse=descending)
            self._orders[key] = cached
        return cached


class _FuzzyPass:
    """Rows holding each term's letters in order, best match first, a chunk at a time.

    A term's score is the length of its tightest embedding (fzf's first algorithm: the
    leftmost embedding, then shrunk from its end backwards), so "nblarm64" ranks
    "noble-24.04-arm64" far above letters spread over a whole description; a row's score
    is the sum over its terms. Ties go newest first, whatever order the candidates came in.

    The ranking is known only once every candidate is scored: :meth:`step` scores the next
    ones (an exact, whole answer in :attr:`rows` once :attr:`done`), so a caller can let
    keys and frames in between. Names repeat (a series, copies in other regions), so do
    embeddings: each distinct embedding is scored once per pass.
    """

    def __init__(
        self, index: CatalogIndex, terms: list[str], candidates: Sequence[int] | None = None
    ) -> None:
        self.index = index
        self.terms = [term for term in terms if term]
        self.candidates = index.order("created", True) if candidates is None else candidates
        self._position = 0
        #: Each matching row's sort key: score * len(index) + newest-first rank.
        self._keys: list[int] = []
        #: The rows found to match so far, in candidate order.
        self._matched: list[int] = []
        #: The letters every match holds, rarest first (a cheap pre-filter).
        self._letters = sorted({ch for term in self.terms for ch in term}, key=_commonness)
        self._matchers: list[tuple[Any, Any, dict[str, int]]] = [
            (
                re.compile(_fuzzy_regex(term)).match,
                re.compile(_fuzzy_regex(term[::-1])).match,
                {},
            )
            for term in self.terms
        ]
        #: The whole answer once done.
        self.rows: list[int] = []
        self.done = not self.candidates
        if self.done:
            self._rank()

    @property
    def remaining(self) -> int:
        return len(self.candidates) - self._position

    def superset(self) -> list[int]:
        """Every row that can still match (a query this one narrows matches only those)."""
        return [*self._matched, *self.candidates[self._position :]]

    def step(self, count: int) -> None:
        """Score the next ``count`` candidates (ranking all when they are the last)."""
        if self.done:
            return
        index = self.index
        texts = index._text_rows()
        rows = self.candidates[self._position : self._position + count]
        self._position += len(rows)
        for letter in self._letters:
            if not rows:
                break
            rows = [i for i in rows if letter in texts[i]]
        scores = [0] * len(rows)
        for forward, backward, tightest in self._matchers:
            if not rows:
                break
            kept_rows: list[int] = []
            kept_scores: list[int] = []
            for i, base, found in zip(
                rows, scores, map(forward, map(texts.__getitem__, rows)), strict=True
            ):
                if found is None:
                    continue
                embedding = found.group(1)
                score = tightest.get(embedding)
                if score is None:
                    # The reversed embedding starts at its last letter: its end is the
                    # length of the tightest embedding that ends there.
                    tight = backward(embedding[::-1])
                    score = tight.end(1) if tight is not None else len(embedding)
                    tightest[embedding] = score
                kept_rows.append(i)
                kept_scores.append(base + score)
            rows, scores = kept_rows, kept_scores
        if rows:
            rank = index._rank_created()
            size = len(rank)
            self._keys += map(add, map(size.__mul__, scores), map(rank.__getitem__, rows))
            self._matched += rows
        if self._position >= len(self.candidates):
            self._rank()

    def _rank(self) -> None:
        self.done = True
        keys = self._keys
        keys.sort()
        order = self.index.order("created", True)
        size = len(order)
        self.rows = list(map(order.__getitem__, map(size.__rmod__, keys))) if size else []
        self._keys = []


class Search:
    """One query's answer, computed a chunk of candidates at a time (see
    :meth:`CatalogIndex.search`). ``rows`` holds the matches found so far, in display
    order: a prefix of the whole answer, whose first page can be shown at once.

    With no exact match, plain terms are then ranked as fuzzy ones (:attr:`ranking`), again
    a chunk at a time; their ``rows`` are known only once all are ranked.
    """

    def __init__(
        self,
        index: CatalogIndex,
        key: tuple[str, Facets, str, bool],
        candidates: Sequence[int],
        rows: Sequence[int],
        mode: str,
        *,
        plain: bool = False,
        remembered: bool = False,
    ) -> None:
        self.index = index
        self.key = key
        self._candidates = candidates
        self._position = 0
        #: The matches found so far (a list that grows), or the whole answer once known.
        self._found: list[int] = []
        self.rows: Sequence[int] = self._found if candidates else rows
        self.mode = mode
        self._plain = plain
        self._remembered = remembered
        #: The fuzzy ranking under way (mode "fuzzy"), or None.
        self.fuzzy: _FuzzyPass | None = None

    @property
    def done(self) -> bool:
        return self._position >= len(self._candidates) and (self.fuzzy is None or self.fuzzy.done)

    @property
    def ranking(self) -> bool:
        """True while fuzzy matches are being ranked (no row is known before the end)."""
        return self.fuzzy is not None and not self.fuzzy.done

    @property
    def remaining(self) -> int:
        """How many candidates are not looked at yet."""
        return len(self._candidates) - self._position

    def superset(self) -> list[int]:
        """Every row that can still be in the answer, in display order."""
        return [*self.rows, *self._candidates[self._position :]]

    def step(self, count: int) -> None:
        """Look at the next ``count`` candidates (finishing when they are the last)."""
        if self.done:
            return
        if self.fuzzy is not None:
            self.fuzzy.step(count)
            if self.fuzzy.done:
                self._conclude()
            return
        text, facets, sort, descending = self.key
        index = self.index
        chunk = self._candidates[self._position : self._position + count]
        self._position += len(chunk)
        found = index._terms(text.split(" "), chunk, sort, descending) if text else chunk
        self._found += index._apply_facets(found, facets)
        if self._position >= len(self._candidates):
            self._conclude()

    def fill(self, rows: int, chunk: int, seconds: float | None = None) -> None:
        """Step ``chunk`` candidates at a time until ``rows`` matches are found, all are
        seen, fuzzy ranking begins (its first page is known only at its end) or, with
        ``seconds``, that much time has passed (a query matching few images would
        otherwise look at every one before any is shown)."""
        deadline = None if seconds is None else time.perf_counter() + seconds
        while not self.done and not self.ranking and len(self.rows) < rows:
            self.step(chunk)
            if deadline is not None and time.perf_counter() >= deadline:
                return

    def step_for(self, seconds: float, chunk: int) -> None:
        """Step ``chunk`` candidates at a time for about ``seconds`` (or until done)."""
        deadline = time.perf_counter() + seconds
        while not self.done:
            self.step(chunk)
            if time.perf_counter() >= deadline:
                return

    def finish(self) -> None:
        """Look at every remaining candidate; then, with no exact match, at fuzzy ones."""
        if self._position < len(self._candidates):
            self.step(len(self._candidates) - self._position)
        else:
            self._conclude()  # starts the fuzzy ranking if nothing matched
        if self.fuzzy is not None and not self.fuzzy.done:
            self.step(self.fuzzy.remaining)
        self._conclude()

    def _conclude(self) -> None:
        """Every candidate seen: start ranking fuzzy matches if none matched exactly, else
        (or once they are ranked) keep the answer."""
        if self._remembered:
            return
        text, facets, sort, descending = self.key
        index = self.index
        if self.fuzzy is None and not self.rows and self._plain:
            self.fuzzy = _FuzzyPass(index, text.lower().split(" "))
            self.mode = "fuzzy"
        if self.fuzzy is not None:
            if not self.fuzzy.done:
                return  # ranked by later steps
            self.rows = index._apply_facets(self.fuzzy.rows, facets)
        self._remembered = True
        self.rows = array("i", self.rows)
        if index._partial is self:
            index._partial = None
        index._remember(_Narrowing(text, facets, sort, descending, self.rows, self.mode))

    def result(self) -> QueryResult:
        return QueryResult(list(self.rows), self.mode, len(self.index.records))


#: Characters of image names and descriptions, most common first (a rough ranking).
_COMMON = "-.0123/ aeinsutomrd4lbc5h6gp8x97_kvwfyz:jq"


def _commonness(ch: str) -> int:
    """Where ``ch`` ranks among the common characters (rare ones, unlisted, first)."""
    return _COMMON.find(ch)


def _is_special(term: str) -> bool:
    return "*" in term or "?" in term or term.startswith("ami-")


def _narrows(previous: str, current: str) -> bool:
    """True when every image matching ``current`` also matches ``previous``.

    Holds when the user only typed more: earlier terms unchanged, the last one grown
    (a longer plain substring is narrower), or new terms added (all must match).
    Wildcards and id prefixes only narrow when left unchanged.
    """
    if not previous:
        return True
    old_terms = previous.split(" ")
    new_terms = current.split(" ")
    if len(new_terms) < len(old_terms):
        return False
    if old_terms[:-1] != new_terms[: len(old_terms) - 1]:
        return False
    last_old, last_new = old_terms[-1], new_terms[len(old_terms) - 1]
    if _is_special(last_old) or _is_special(last_new):
        return last_old == last_new
    return last_old.lower() in last_new.lower()
