"""The browser's loading machinery: one region's listing for an owner preset, into a
:class:`amibake.core.catalog.CatalogIndex`.

:class:`ImageListingScreen` is the base of :class:`amibake.tui.screens.browser.BrowserScreen`: it
shows the head of the disk cache at once, reads the rest in a thread, or fetches the
listing page by page (``r``) and caches it; the browser filters and shows what it holds
through :meth:`ImageListingScreen._apply`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, cast

from textual import work
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ProgressBar

from amibake.core.catalog import CachedListing, CatalogIndex, fetch_pages
from amibake.core.errors import AmibakeError
from amibake.tui.collector import freeze_long_lived, pause_collections, resume_collections
from amibake.tui.widgets.image_table import ImageTable

if TYPE_CHECKING:
    from amibake.core.catalog import CatalogCache
    from amibake.tui.session import Session


class BrowserHost(Protocol):
    """What the browser needs of the app that shows it (the app is never imported here)."""

    session: Session
    catalog_cache: CatalogCache
    now_override: str | None

    def report_error(self, title: str, message: str, *, modal: bool = False) -> None: ...

    def save_settings(self) -> None: ...

    def switch_region(self, region: str) -> None: ...


def _read_index(
    cache: CatalogCache, key: tuple[str, str, str], now: str | None
) -> CatalogIndex | None:
    """(in a thread) The whole cached listing, indexed and ready to filter."""
    listing = cache.load(*key)
    if listing is None:
        return None
    return CatalogIndex(listing.records, details_path=listing.details_path, now=now).prepare()


class ImageListingScreen(Screen[None]):
    """A screen over one listing of images, loaded from the cache or from AWS."""

    loading_images: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = CatalogIndex()
        self.fetched_at: datetime | None = None
        self.from_cache = False
        self.loaded_key: tuple[str, str, str] | None = None
        self._status_note = ""
        self.settled_at: float | None = None

    @property
    def amibake(self) -> BrowserHost:
        """The app, typed by what the browser uses of it."""
        return cast("BrowserHost", self.app)

    def _listing_key(self) -> tuple[str, str, str]:
        session = self.amibake.session
        return (session.target_name, session.region, session.settings.owner)

    def start_loading(self, refresh: bool = False) -> None:
        session = self.amibake.session
        if not session.ready:
            self._set_status("starting the local cloud…")
            return
        head = None if refresh else self._show_cached_head()
        self.load_images(refresh, head)

    def _show_cached_head(self) -> CachedListing | None:
        """The head of the cached listing, shown at once (None: nothing cached).

        The first screen needs the newest rows only: a few milliseconds to read whatever
        the listing's size, so it is done here, before the screen's next paint; the whole
        listing is read after, in :meth:`load_images` (filtering works on the head meanwhile).
        """
        key = self._listing_key()
        head = self.amibake.catalog_cache.load_head(*key)
        if head is None:
            return None
        self.loaded_key = key
        self.fetched_at = head.fetched_at
        self.from_cache = True
        self.index = CatalogIndex(
            head.records, details_path=head.details_path, now=self.amibake.now_override
        )
        self._status_note = "" if head.complete else f"reading {head.total:,} from the cache…"
        self._apply()
        return head

    @work(exclusive=True, group="images", exit_on_error=False)
    async def load_images(self, refresh: bool = False, head: CachedListing | None = None) -> None:
        session = self.amibake.session
        key = self._listing_key()
        target, region, owner = key
        cache: CatalogCache = self.amibake.catalog_cache
        now = self.amibake.now_override
        if head is not None and await self._load_cached(cache, key, now, head):
            return
        self.loading_images = True
        self.from_cache = False
        self.fetched_at = None  # nothing fetched yet: the status says loading, not an age
        self._status_note = "loading…"
        self.index = CatalogIndex(now=now)
        self.loaded_key = key
        self._apply()
        preset = session.settings.owner_preset(owner)
        try:
            pages = 0
            async for page in fetch_pages(session.aws(), region, preset):
                pages += 1
                self.index.extend(page)
                self._status_note = f"loading… page {pages}"
                self._apply()
            self.fetched_at = datetime.now(UTC)
            listing = await asyncio.to_thread(cache.save, target, region, owner, self.index.records)
            self.index = CatalogIndex(listing.records, details_path=listing.details_path, now=now)
            self._status_note = ""
            self._apply()
            await self._settle(self.index)
        except AmibakeError as error:
            self._load_failed(str(error))
        except Exception as error:  # never a traceback on screen
            self._load_failed(f"{type(error).__name__}: {error}")
        finally:
            self.loading_images = False

    async def _load_cached(
        self,
        cache: CatalogCache,
        key: tuple[str, str, str],
        now: str | None,
        head: CachedListing,
    ) -> bool:
        """The rest of the cached listing whose ``head`` is shown: read and indexed in a
        thread once the head is on screen. False when it cannot be read any more."""
        if not head.complete:
            table = self.query_one(ImageTable)
            await table.wait_painted(timeout=0.5)
            pause_collections()  # no collections over the listing's objects while they are made
            try:
                index = await asyncio.to_thread(_read_index, cache, key, now)
            finally:
                freeze_long_lived()  # what is loaded now lives long: out of later collections
                resume_collections()
            if index is None:  # replaced or damaged since its head was read
                return False
            self.index = index
            self._status_note = ""
            self._apply()
        await self._settle(self.index)
        return True

    def _load_failed(self, reason: str) -> None:
        self._status_note = "load failed"
        self.loading_images = False  # the table says so too, not "Loading…"
        self.amibake.report_error("Could not list images", reason)
        self._apply()

    async def _settle(self, index: CatalogIndex) -> None:
        """After the first paint: build the filter's search text, then keep the garbage
        collector off the listing's objects (a full collection over 100,000 records
        would otherwise stall a keystroke now and then)."""
        await asyncio.to_thread(index.prepare)
        freeze_long_lived()
        #: When the listing became fully searchable (perf_counter; the benchmark's figure).
        self.settled_at = time.perf_counter()

    def watch_loading_images(self, loading: bool) -> None:
        self.query_one("#progress", ProgressBar).display = loading

    # -- what the screen shows (BrowserScreen) ---------------------------------------------

    def _apply(self, keep: bool = True) -> None:
        """Show what the index holds now."""
        raise NotImplementedError

    def _set_status(self, text: str) -> None:
        raise NotImplementedError
