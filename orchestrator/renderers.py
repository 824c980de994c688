"""JSON bodies written by orjson, with the encodings ninja's own renderer gives (a datetime to the
millisecond with "Z", as Django's encoder writes it), so a response reads the same whichever wrote it."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from ninja.responses import NinjaJSONEncoder

# Datetimes go to the fallback too: orjson would keep microseconds and write "+00:00".
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_FALLBACK = NinjaJSONEncoder().default
CONTENT_TYPE = "application/json; charset=utf-8"


def json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, default=_FALLBACK, option=_OPTIONS)


def json_response(content: bytes, *, status: int = 200) -> HttpResponse:
    """A body already written (by `json_bytes`), sent without a second pass through a response schema."""
    return HttpResponse(content, status=status, content_type=CONTENT_TYPE)
