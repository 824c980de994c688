"""JSON bodies written by orjson, with the encodings ninja's own renderer gives (a datetime to the
millisecond with "Z", as Django's encoder writes it), so a response reads the same whichever wrote it."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from django.http import HttpResponse
from django.utils.text import compress_string
from ninja.responses import NinjaJSONEncoder

# Datetimes go to the fallback too: orjson would keep microseconds and write "+00:00".
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_FALLBACK = NinjaJSONEncoder().default
CONTENT_TYPE = "application/json; charset=utf-8"


def json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, default=_FALLBACK, option=_OPTIONS)


def json_response(content: bytes, *, status: int = 200, sent_again: SentAgain | None = None) -> HttpResponse:
    """A body already written (by `json_bytes`), sent without a second pass through a response schema.
    `sent_again`: the same body, kept to be sent many times; the GZip middleware compresses it once for all."""
    response = HttpResponse(content, status=status, content_type=CONTENT_TYPE)
    if sent_again is not None:
        response.sent_again = sent_again
    return response


class SentAgain:
    """A body sent to many requests unchanged (a kept listing: 200 KiB), with its gzip made at the first
    request that accepts it and reused by the later ones (core.middleware.GZipExceptEventStreamMiddleware).
    Compressing 200 KiB takes over a millisecond, a quarter of such a request. The random bytes Django adds
    against BREACH are drawn once per body: each new content gets new ones, and a kept one tells an observer
    nothing, since it does not change between the requests that share it."""

    __slots__ = ("content", "_gzipped", "_lock")

    def __init__(self, content: bytes) -> None:
        self.content = content
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def gzipped(self, max_random_bytes: int) -> bytes:
        if self._gzipped is None:
            with self._lock:
                if self._gzipped is None:
                    self._gzipped = compress_string(self.content, max_random_bytes=max_random_bytes)
        return self._gzipped
