"""Cache backends for the rate limits' counts that never drop a live entry.

Django's file and database caches make room past MAX_ENTRIES by deleting live entries: a random
third of the files, or the first keys in key order. A lockout or a count deleted that way is
forgotten, and a few hundred clients a minute are enough to make it happen. These subclasses
delete only expired entries; past MAX_ENTRIES the cache grows until its entries expire (a
count lives for its rate's period). Redis, the other choice (DJANGO_CACHE_URL=redis://... or
REDIS_URL), culls nothing unless given a maxmemory eviction policy.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.db import connections


class FileCacheKeepingLiveEntries(FileBasedCache):
    """Files, one per entry. Past MAX_ENTRIES, expired files are swept (at most every
    SWEEP_SECONDS per process and thread, since a sweep opens every file); live ones stay."""

    SWEEP_SECONDS = 10.0

    def __init__(self, dir: str, params: dict[str, Any]) -> None:
        super().__init__(dir, params)
        self._next_sweep = 0.0

    def _cull(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        files = self._list_cache_files()
        if len(files) < self._max_entries:
            return
        for name in files:
            try:
                with open(name, "rb") as entry:
                    self._is_expired(entry)  # deletes the file when it has expired
            except FileNotFoundError:  # another process got there first
                pass


class DatabaseCacheKeepingLiveEntries(DatabaseCache):
    """A table (`manage.py createcachetable`). Past MAX_ENTRIES, expired rows are deleted;
    live ones stay."""

    def _cull(self, db: str, cursor: Any, now: Any, num: int) -> None:
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        expires = connection.ops.quote_name("expires")
        cursor.execute(
            f"DELETE FROM {table} WHERE {expires} < %s",
            [connection.ops.adapt_datetimefield_value(now)],
        )
