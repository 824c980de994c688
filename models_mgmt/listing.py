"""The body of `GET /api/models`, kept per user between requests while nothing it was made from has changed.

A body is made from the rows (models, providers, keys, the user: `orchestrator.hotcache` watches those tables,
and any write to them in any process moves its generation), the local servers' snapshots (each one's time is
under a cache key of its own, which any process's refresh changes and the TTL drops) and the clock (a cooldown
ends, a held load counts its seconds). A kept body answers only while all three say the same: the same
generation, the same snapshot times, and a clock before the first moment a status would change by itself.
So it is never staler than a listing made afresh, and nothing it was made from is skipped, only re-done.

Each body is kept under the user it was made for (their models, their keys' failures, the reasons they may
read): one user's body never answers another. Kept in this process's memory only, for the last few users."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils import timezone

from models_mgmt import services
from models_mgmt.schemas import ModelOut
from orchestrator import hotcache
from orchestrator.renderers import SentAgain, json_bytes

# A body of 500 models is about 200 KiB: a bound on the memory, and more users than poll the listing at once.
MAX_KEPT = 64


@dataclass(frozen=True)
class _Kept:
    generation: int
    snapshot_stamps: dict[str, float]
    valid_until: datetime | None
    body: SentAgain


_kept: OrderedDict[int | None, _Kept] = OrderedDict()
_lock = threading.Lock()


def models_listing_body(*, user: AbstractBaseUser | None, refresh: bool = False) -> SentAgain:
    """The listing's JSON body for `user`: every model they may see with its live status (`ModelOut` rows)."""
    viewer = user.pk if user is not None and user.is_authenticated else None
    # Read before the rows: a write from now on moves it, and what is kept under this one is never served.
    generation = hotcache.generation()
    if not refresh and generation is not None:
        body = _kept_body(viewer, generation)
        if body is not None:
            return body
    listing = services.model_listing(user=user, refresh=refresh)
    body = SentAgain(json_bytes([ModelOut.row(s) for s in listing.statuses]))
    if generation is not None:
        _keep(viewer, _Kept(generation, listing.snapshot_stamps, listing.valid_until(), body))
    return body


def _kept_body(viewer: int | None, generation: int) -> SentAgain | None:
    with _lock:
        kept = _kept.get(viewer)
        if kept is not None:
            _kept.move_to_end(viewer)
    if kept is None or kept.generation != generation:
        return None
    if kept.valid_until is not None and timezone.now() >= kept.valid_until:
        return None
    if kept.snapshot_stamps and cache.get_many(list(kept.snapshot_stamps)) != kept.snapshot_stamps:
        return None
    return kept.body


def _keep(viewer: int | None, kept: _Kept) -> None:
    with _lock:
        _kept[viewer] = kept
        _kept.move_to_end(viewer)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)


def forget_for_tests() -> None:
    with _lock:
        _kept.clear()
