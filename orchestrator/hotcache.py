"""In-process caches for what every gateway call reads (token -> user, model ref -> model, the caller's key and
its plaintext), dropped AT ONCE in every process when any of the rows they come from changes.

How every process learns of a change: one *generation* shared by all processes. Any INSERT, UPDATE or DELETE
of the tables the caches read from (seen by a database execute wrapper installed on every connection, so
`QuerySet.update()`, the admin and the Celery worker are covered as well as `save()`) bumps it, once when the
statement runs and again when its transaction commits. For tables where only whether a row exists is cached
(`watch_rows`), inserts and deletes bump it, updates do not. Every cached read first compares the generation with
the one its entries were made under, and starts afresh when it moved. The generation lives

- in Redis (`INCR` one key) when REDIS_URL is set: one GET per check, so two machines agree too;
- otherwise in the length of a (sparse) file in VAR_DIR, which a bump grows by one: a check is one
  `stat()`, and it sees the Celery worker's writes as well as the other web processes'.

Decrypted keys live in these dictionaries only: never in Redis, the Django cache or a log. Every key here
names the owner it was read for, so one user's entry never answers another."""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import redis
import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

T = TypeVar("T")
log = structlog.get_logger("orchestrator.hotcache")

REDIS_KEY = "orch:hotcache:generation"
FILE_NAME = "hotcache-generation"
_ABSENT = object()


class Miss(Exception):
    """Raised instead of reading the database while `cached_only()` is in force."""


class _Store:
    """The entries made under one generation."""

    __slots__ = ("marker", "entries", "serial")

    def __init__(self, marker: Hashable) -> None:
        self.marker = marker
        self.entries: dict[Hashable, Any] = {}
        self.serial = next(_serials)  # never reused: a number handed out by generation() names this store only


class _FileGeneration:
    """The generation is the file's length. A bump lengthens it by one under an exclusive lock (so no two
    bumps from different processes count once), without writing anything: the file stays sparse, no
    bigger on disk after a billion bumps than after one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def marker(self) -> Hashable:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size)

    def bump(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, os.fstat(fd).st_size + 1)
        finally:
            os.close(fd)  # releases the lock


class _RedisGeneration:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def marker(self) -> Hashable:
        return self.client.get(REDIS_KEY)

    def bump(self) -> None:
        self.client.incr(REDIS_KEY)


_generation: _FileGeneration | _RedisGeneration | None = None
_serials = itertools.count(1)
_store = _Store(marker=_ABSENT)  # matches no marker: the first read checks
_lock = threading.Lock()
# Set by `checked()` for one request: the store whose generation was checked at its start.
_checked: ContextVar[_Store | None] = ContextVar("hotcache_checked", default=None)
_cached_only: ContextVar[bool] = ContextVar("hotcache_cached_only", default=False)


def _backend() -> _FileGeneration | _RedisGeneration:
    global _generation
    if _generation is None:
        with _lock:
            if _generation is None:
                redis_url = getattr(settings, "REDIS_URL", "")
                _generation = (
                    _RedisGeneration(redis_url) if redis_url else _FileGeneration(settings.VAR_DIR / FILE_NAME)
                )
    return _generation


def _current() -> _Store | None:
    """The store valid now, or None when the generation cannot be read (then nothing is cached)."""
    global _store
    store = _store
    if _checked.get() is store:
        return store
    try:
        marker = _backend().marker()
    except (OSError, redis.RedisError) as exc:
        log.warning("hotcache.generation_unreadable", error=type(exc).__name__)
        return None
    if marker != store.marker:
        store = _Store(marker)
        _store = store
    return store


def get(namespace: str, key: Hashable, load: Callable[[], T]) -> T:
    """The cached value for (namespace, key), made by `load()` on a miss (which may read the database).
    `load` raising means nothing is cached: negative answers are asked again every time."""
    store = _current()
    full = (namespace, key)
    if store is not None:
        value = store.entries.get(full, _ABSENT)
        if value is not _ABSENT:
            return value
    if _cached_only.get():
        raise Miss(namespace)
    value = load()
    if store is not None:
        # Made under the generation checked above: a bump since then replaced `store`, so this is dropped.
        store.entries[full] = value
    return value


def generation() -> int | None:
    """A number that stays the same while none of the watched rows changed, in this process or any other;
    None when the generation cannot be read (then nothing may be kept). For a cache kept outside these
    dictionaries (bounded, say): an entry made under one number answers only while generation() still gives it.
    Read it BEFORE reading the rows the entry is made from, so a change made meanwhile leaves a number that
    no longer matches."""
    store = _current()
    return None if store is None else store.serial


def bump() -> None:
    """Something the caches read from changed: forget everything here, and tell every other process."""
    global _store
    _store = _Store(marker=_ABSENT)
    try:
        _backend().bump()
    except (OSError, redis.RedisError) as exc:
        log.error("hotcache.bump_failed", error=type(exc).__name__)


@contextmanager
def checked() -> Iterator[None]:
    """For one request: check the generation once, at its start, rather than at every read."""
    store = _current()
    token = _checked.set(store)
    try:
        yield
    finally:
        _checked.reset(token)


@contextmanager
def cached_only() -> Iterator[None]:
    """Reads that are not in the caches raise `Miss` instead of asking the database."""
    token = _cached_only.set(True)
    try:
        yield
    finally:
        _cached_only.reset(token)


async def run(fn: Callable[..., T], *args: Any, here: bool = True) -> T:
    """`fn(*args)` on the event loop when all it reads is in the caches (no thread hop: the hop costs as much
    as a query); otherwise in the database thread. `fn` must do nothing irreversible before its first
    database access, since a miss runs it again from the start there. `here=False`: straight to the thread
    (for work that may block on something other than the database, such as asking a model server)."""
    if here:
        try:
            with cached_only():
                return fn(*args)
        except (Miss, SynchronousOnlyOperation):
            pass  # Django refuses database access on the event loop's thread before it happens
    return await sync_to_async(_healed(fn))(*args)


def heal_connections() -> None:
    """Close this thread's database connections that failed and no longer work (the server restarted), so
    the next query reconnects. Django does this at each request's start and end; the hot path has neither,
    so its database thread calls this before its work."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()


def _healed(fn: Callable[..., T]) -> Callable[..., T]:
    def call(*args: Any) -> T:
        heal_connections()
        return fn(*args)

    return call


def reset_for_tests() -> None:
    """Forget the backend (settings may have changed) and every entry."""
    global _generation, _store
    _generation = None
    _store = _Store(marker=_ABSENT)


# --- noticing writes ---------------------------------------------------------------------------------------

_WATCHED: frozenset[str] = frozenset()
# Tables where only a row's coming or going matters to a cached answer (whether it exists), not its contents.
_WATCHED_ROWS: frozenset[str] = frozenset()
_WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"?([\w.]+)"?', re.IGNORECASE)
# Bookkeeping writes no cached answer depends on (they happen on every use, so must not empty the caches).
_IGNORED = re.compile(r'^\s*UPDATE\s+"?\w+"?\s+SET\s+"?(?:last_used_at|last_login)"?\s*=\s*%s\s+WHERE', re.IGNORECASE)
# The first characters a write can start with: every other statement (SELECT, SAVEPOINT, RELEASE...) is
# passed over without a regex, since this runs for every query of every process.
_WRITE_STARTS = frozenset("IiUuDdTt \t\r\n")


def watch(tables: set[str]) -> None:
    """Bump on any write to `tables` (added to those already watched: each app names the tables it caches)."""
    global _WATCHED
    _WATCHED = _WATCHED | {t.lower() for t in tables}


def watch_rows(tables: set[str]) -> None:
    """Also bump on inserting or deleting rows of `tables` (not on updating them: a cached answer says only
    whether a row is there)."""
    global _WATCHED_ROWS
    _WATCHED_ROWS = _WATCHED_ROWS | {t.lower() for t in tables}


def _touches_watched(sql: str) -> bool:
    if sql[:1] not in _WRITE_STARTS:
        return False
    found = _WRITE.match(sql)
    if not found:
        return False
    table = found.group(2).lower()
    if table in _WATCHED:
        return not _IGNORED.match(sql)
    return table in _WATCHED_ROWS and found.group(1)[0] not in "Uu"


def _execute_wrapper(connection: BaseDatabaseWrapper) -> Callable[..., Any]:
    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
        result = execute(sql, params, many, context)
        if isinstance(sql, str) and _touches_watched(sql):
            bump()
            if connection.in_atomic_block:
                # Again once committed: a process that re-read the old row in between forgets it then.
                connection.on_commit(bump)
        return result

    return wrapper


def install(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """For the `connection_created` signal: every database connection of every process reports its writes.
    The signal comes at every (re)connection of the same wrapper object, hence the flag."""
    if not getattr(connection, "_hotcache_installed", False):
        connection.execute_wrappers.append(_execute_wrapper(connection))
        connection._hotcache_installed = True
