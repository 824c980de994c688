"""Why a completion failed: one code per cause, from the provider adapters up to the REST API and the
OpenAI-compatible gateway, and the one place those codes become HTTP statuses.

The codes live here, below every app, because they are raised at the bottom (a provider adapter, the
model registry, the budget check) and read at the top (chat, the REST API, the gateway, codegen). They are
a `StrEnum`: on the wire, in the database and in metrics they are the same strings as ever."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class FailureCode(StrEnum):
    # What a provider's answer (or its absence) said; raised by the adapters as `ProviderError.code`.
    AUTH = "auth"
    NOT_FOUND = "not_found"
    CONTEXT = "context_length"
    BAD_REQUEST = "bad_request"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    SERVER = "server_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    BAD_RESPONSE = "bad_response"
    STREAM_CUT = "stream_cut"
    STALLED = "stalled"
    BLOCKED = "blocked"  # the outbound guard refused the address: nothing was sent
    # Why a model could not be asked at all; the first five are the registry's unusable model states.
    NO_KEY = "no_key"
    UNREACHABLE = "unreachable"
    INACTIVE = "inactive"
    FAILED = "failed"  # cooling down after failures, or its load was interrupted
    NOT_LOADED = "not_loaded"
    LOAD_FAILED = "load_failed"
    KEY_UNREADABLE = "key_unreadable"
    # The caller's budget on this instance refused the request before any model was asked.
    OVER_BUDGET = "over_budget"

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self]


# The HTTP status of a completion that ended with a code. 503: nothing could be asked (or the upstream
# says it is busy); 502: an upstream was asked and failed; 504: it did not answer in time; 400: the request
# itself was refused; 404: the provider does not have the model; 429: a limit, ours or the provider's.
HTTP_STATUS: dict[FailureCode, int] = {
    FailureCode.AUTH: 502,  # our provider key was refused: not the caller's credentials
    FailureCode.NOT_FOUND: 404,
    FailureCode.CONTEXT: 400,
    FailureCode.BAD_REQUEST: 400,
    FailureCode.QUOTA: 429,
    FailureCode.RATE_LIMITED: 429,
    FailureCode.SERVER: 502,
    FailureCode.OVERLOADED: 503,
    FailureCode.TIMEOUT: 504,
    FailureCode.CONNECT: 502,
    FailureCode.BAD_RESPONSE: 502,
    FailureCode.STREAM_CUT: 502,
    FailureCode.STALLED: 504,
    FailureCode.BLOCKED: 503,
    FailureCode.NO_KEY: 503,
    FailureCode.UNREACHABLE: 503,
    FailureCode.INACTIVE: 503,
    FailureCode.FAILED: 503,
    FailureCode.NOT_LOADED: 503,
    FailureCode.LOAD_FAILED: 503,
    FailureCode.KEY_UNREADABLE: 503,
    FailureCode.OVER_BUDGET: 429,
}

RATE_LIMITS = frozenset({FailureCode.RATE_LIMITED, FailureCode.QUOTA})


def failure_http_status(code: FailureCode, *, earlier: Iterable[str] = (), partial: bool = False) -> int:
    """The status for a completion that ended with `code` after fallbacks that failed with `earlier`.

    Text already sent makes any failure a 502 (a partial answer is not a whole one). A provider's limit is
    a 429 only when every model tried was limited: had another failed otherwise, waiting would not help,
    so it is a 503. "No such model" is a 404 only for the model asked for, not for a fallback's."""
    earlier = list(earlier)
    if partial:
        return 502
    if code in RATE_LIMITS and not all(c in RATE_LIMITS for c in earlier):
        return 503
    if code is FailureCode.NOT_FOUND and earlier:
        return 502
    return code.http_status
