"""amibake.core.catalog: wildcard/fuzzy filtering, facets, sorting, narrowing, the disk cache."""

from __future__ import annotations

import fnmatch
import random
from pathlib import Path

from amibake.core.catalog import (
    CatalogCache,
    CatalogIndex,
    Facets,
    ImageRecord,
    name_wildcard,
    source_ami_filter,
)
from amibake.core.local.images import catalog_for_region
from tests.bench.synthetic_images import api_image


def records() -> list[ImageRecord]:
    return [ImageRecord.from_api(api_image(i)) for i in catalog_for_region("eu-west-1")]


def test_wildcards_follow_aws_semantics() -> None:
    index = CatalogIndex(records())
    for pattern in (
        "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*",
        "*-arm64-*",
        "debian-1?-*",
    ):
        names = [index.records[r].name for r in index.query(pattern).rows]
        expected = [r.name for r in index.records if fnmatch.fnmatchcase(r.name, pattern)]
        assert names and sorted(names) == sorted(expected)
    # case-sensitive and anchored, as AWS's name filter
    assert index.query("UBUNTU/*").rows == []
    assert index.query("images/*").rows == []


def test_narrowing_gives_the_same_answer_as_a_fresh_query() -> None:
    index = CatalogIndex(records())

    def fresh(text: str, facets: Facets | None = None, sort: str = "created") -> list[int]:
        return CatalogIndex(index.records, now=index.now).query(text, facets, sort).rows

    typed = [*"ubuntu jammy arm", *["<"] * 9, *"focal", *["<"] * 20, *"nblarm6"]
    text = ""
    for key in typed:
        text = text[:-1] if key == "<" else text + key
        assert index.query(text).rows == fresh(text), text
    # deleting, changing facets or sort starts over correctly
    for text, facets, sort in [
        ("ubuntu", Facets(), "name"),
        ("ubuntu", Facets(architecture="arm64"), "name"),
        ("ubuntu j", Facets(hide_deprecated=True), "id"),
        ("ubuntu jammy", Facets(hide_deprecated=True), "id"),
        ("ubuntu", Facets(), "name"),
    ]:
        assert index.query(text, facets, sort).rows == fresh(text, facets, sort)


def test_deleting_letters_reuses_earlier_answers() -> None:
    index = CatalogIndex(records())
    first = index.search("ubuntu noble")
    first.finish()
    index.query("ubuntu noble arm64")
    again = index.search("ubuntu noble")
    assert again.done and again.rows is first.rows  # no new scan


def test_sorting_and_facets() -> None:
    index = CatalogIndex(records())
    rows = index.query("", sort="name", descending=False).rows
    names = [index.records[r].name for r in rows]
    assert names == sorted(names)
    rows = index.query("", Facets(architecture="arm64", root_device="ebs")).rows
    assert rows and all(index.records[r].architecture == "arm64" for r in rows)
    dates = [index.records[r].creation_date for r in rows]
    assert dates == sorted(dates, reverse=True)


def test_fuzzy_only_when_nothing_matches() -> None:
    index = CatalogIndex(records())
    assert index.query("jammy").mode == "match"
    result = index.query("jmmyarm")
    assert result.mode == "fuzzy" and result.rows
    assert index.query("zzzzqqqq").rows == []


def test_fuzzy_results_are_ranked_by_match_quality() -> None:
    index = CatalogIndex(records())
    result = index.query("nblarm64")
    assert result.mode == "fuzzy"
    names = [index.records[r].name for r in result.rows]
    # noble arm64 images first, although newer images of other series match too
    noble_arm = [n for n in names if "noble" in n and "arm64" in n]
    assert noble_arm and names[: len(noble_arm)] == noble_arm
    assert any("noble" not in n for n in names)
    # equally good matches keep the newest first
    top = [r for r in result.rows if index.records[r].name in noble_arm]
    dates = [index.records[r].creation_date for r in top]
    assert dates == sorted(dates, reverse=True)


def test_name_wildcard_and_source_filter() -> None:
    assert (
        name_wildcard("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20240112")
        == "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*"
    )
    assert name_wildcard("amzn2-ami-hvm-2.0.20241215.0-x86_64-gp2") == "amzn2-ami-hvm-*-x86_64-gp2"
    assert name_wildcard("no-serial-here") == "no-serial-here"
    for record in random.Random(3).sample(records(), 200):
        block = source_ami_filter(record.to_api())
        assert fnmatch.fnmatchcase(record.name, block["filters"]["name"])
        assert block["owners"] == [record.owner_id] and block["most_recent"] is True


def test_cache_round_trip_keeps_details_on_disk(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path)
    original = records()[:500]
    by_id = {r.image_id: r.to_api() for r in original}
    listing = cache.save("profile:dev", "eu-west-1", "canonical", list(original))
    assert all(isinstance(r.details, int) for r in listing.records)
    loaded = cache.load("profile:dev", "eu-west-1", "canonical")
    assert loaded is not None and len(loaded.records) == 500
    index = CatalogIndex(loaded.records, details_path=loaded.details_path)
    for row in range(0, 500, 37):
        image = index.image(row)
        assert image == by_id[image["ImageId"]]
    assert cache.load("profile:dev", "eu-west-1", "amazon") is None
    # the head: the first rows of the same order, and the listing's size
    head = cache.load_head("profile:dev", "eu-west-1", "canonical", rows=40)
    assert head is not None and not head.complete and head.total == 500
    assert [r.image_id for r in head.records] == [r.image_id for r in loaded.records[:40]]
    assert head.records[7].to_api() == loaded.records[7].to_api()
    whole = cache.load_head("profile:dev", "eu-west-1", "canonical", rows=500)
    assert whole is not None and whole.complete and len(whole.records) == 500
    rows = cache.path("profile:dev", "eu-west-1", "canonical")
    valid = rows.read_text()
    first_row = valid.index("\n") + 1
    cut_short = valid[: valid.index("\n", first_row + 100_000) + 1]
    for broken, head_broken in (
        ("{not json", True),
        ("[]", True),
        ("", True),
        (valid.replace('"fetched_at":"', '"fetched_at":"not a date'), True),
        (valid.replace('"version":2', '"version":1'), True),
        (valid[:first_row] + "[1," + valid[first_row + 1 :], True),  # a row of another shape
        (cut_short, False),  # only reading the whole file sees it
    ):
        assert broken != valid
        rows.write_text(broken)
        assert cache.load("profile:dev", "eu-west-1", "canonical") is None, broken[:60]
        head = cache.load_head("profile:dev", "eu-west-1", "canonical", rows=40)
        assert (head is None) == head_broken, broken[:60]


def test_every_prefix_of_odd_filters_is_answered() -> None:
    index = CatalogIndex(records())
    for text in ("*", "?", "**", "*jammy-22.04-arm64-server-*", "ami-", "[", "a\\b", "(.*)", "ü"):
        typed = ""
        for ch in text:
            typed += ch
            rows = index.query(typed).rows
            assert all(0 <= r < len(index) for r in rows)
    assert len(index.query("*").rows) == len(index)
    assert CatalogIndex([]).query("*").rows == []


def test_a_search_in_steps_shows_a_prefix_then_the_same_answer() -> None:
    index = CatalogIndex(records())

    def fresh(text: str, facets: Facets | None = None) -> list[int]:
        return CatalogIndex(index.records, now=index.now).query(text, facets).rows

    # a first page, then the rest: the page is the answer's start, the end the whole answer
    for text, facets in [
        ("ubuntu", None),
        ("*-arm64-*", None),
        ("ami-0", Facets(architecture="x86_64")),
        ("", Facets(hide_deprecated=True)),
        ("nblarm", None),  # no exact match: fuzzy, known only once every row was seen
    ]:
        search = index.search(text, facets)
        search.fill(25, chunk=100)
        page = list(search.rows)
        expected = fresh(text, facets)
        if search.mode != "fuzzy":
            assert page == expected[: len(page)] and (len(page) >= 25 or search.done)
        search.finish()
        assert search.done and list(search.rows) == expected, text
        assert index.query(text, facets).rows == expected  # remembered
    # keys typed while the previous search is unfinished: each narrows what it left
    typed = ""
    for ch in "debian bookworm arm":
        typed += ch
        search = index.search(typed)
        search.step(300)
        assert search.rows == fresh(typed)[: len(search.rows)], typed
    search.finish()
    assert list(search.rows) == fresh(typed)


def test_a_search_can_stop_after_a_time_and_go_on_later() -> None:
    """``fill`` with a time bound (zero here: one chunk) and ``step_for`` stop with the
    search unfinished and its found rows a prefix of the answer; finishing gives the
    whole answer, for a wildcard matching few names too (each chunk tests its own)."""
    index = CatalogIndex(records())
    for text in ("*jammy*minimal*", "*no-such-name*", "ubuntu zzz"):
        expected = CatalogIndex(index.records, now=index.now).query(text).rows
        search = index.search(text)
        search.fill(len(index), chunk=100, seconds=0)
        assert not search.done and search.remaining == len(index) - 100, text
        assert search.rows == expected[: len(search.rows)], text
        search.step_for(0, 100)
        assert search.remaining == len(index) - 200, text
        search.finish()
        assert list(search.rows) == expected, text


def test_a_wildcard_typed_key_by_key_answers_as_fresh_queries() -> None:
    index = CatalogIndex(records())
    typed = ""
    for ch in "*jammy*arm64*2024*":
        typed += ch
        fresh = CatalogIndex(index.records, now=index.now).query(typed).rows
        assert index.query(typed).rows == fresh, typed
    names = [index.records[r].name for r in index.query(typed).rows]
    assert names and all(fnmatch.fnmatchcase(n, typed) for n in names)


def _reference_fuzzy(index: CatalogIndex, text: str) -> list[int]:
    """Fuzzy ranking by its definition, one row at a time: every term's letters in order;
    a term scores the length of its tightest embedding (the leftmost one, shrunk from its
    end backwards); lower sums first, ties newest first."""

    def score(line: str, term: str) -> int | None:
        start = end = -1
        for ch in term:
            end = line.find(ch, end + 1)
            if end < 0:
                return None
            start = end if start < 0 else start
        begin = end + 1
        for ch in reversed(term):
            begin = line.rfind(ch, 0, begin)
        return end + 1 - begin

    keyed = []
    for position, row in enumerate(index.order("created", True)):
        r = index.records[row]
        line = " ".join((r.name, r.image_id, r.owner_alias or "", r.owner_id, r.description))
        scores = [score(line.lower(), term) for term in text.lower().split()]
        if all(s is not None for s in scores):
            keyed.append((sum(s for s in scores if s is not None), position, row))
    return [row for _, _, row in sorted(keyed)]


def test_fuzzy_ranking_is_computed_in_steps_and_matches_its_definition() -> None:
    shuffled = records()
    random.Random(7).shuffle(shuffled)  # the records' order is not the newest-first order
    index = CatalogIndex(shuffled)
    for text in ("nblarm64", "jmy arm", "amzn2x86", "rhl9 gp3"):
        expected = _reference_fuzzy(index, text)
        assert expected, text
        search = index.search(text)
        search.fill(25, chunk=100)  # stops when the ranking begins: no page before its end
        assert search.ranking and search.mode == "fuzzy" and search.rows == [], text
        steps = 0
        while not search.done:
            search.step(100)
            steps += 1
        assert steps > 1 and list(search.rows) == expected, text
        assert index.query(text).rows == expected  # remembered
        # one more letter narrows from the remembered fuzzy answer, again in steps
        longer = index.search(text + "4")
        assert longer.ranking
        longer.finish()
        assert list(longer.rows) == _reference_fuzzy(index, text + "4"), text
    assert index.query("qqqxxzz").rows == []


def test_a_key_typed_while_fuzzy_matches_rank_narrows_from_what_is_left() -> None:
    index = CatalogIndex(records())
    first = index.search("nb")
    first.fill(25, chunk=100)
    first.step(300)
    assert first.ranking
    # "nbl" narrows "nb": no exact match either, and only rows "nb" has not ruled out can
    # match; the unfinished ranking is dropped (the last query wins)
    second = index.search("nbl")
    assert second.ranking and second.fuzzy is not None
    assert len(second.fuzzy.candidates) < len(index)
    second.finish()
    assert list(second.rows) == _reference_fuzzy(index, "nbl")
    fresh = CatalogIndex(index.records, now=index.now)
    for text in ("nbl arm", "nbl arm64"):  # on from a finished fuzzy answer, and fresh
        assert index.query(text).rows == fresh.query(text).rows == _reference_fuzzy(index, text)
