"""Work that may wait until the response has gone out (bookkeeping the caller does not wait for), but
is never dropped: it runs in the request's own task, after its last byte, and that task is waited for
when the server shuts down normally.

Only a server that says so (the gateway's ASGI hot path, with `collecting()`) defers; everywhere else
(Django views, Celery, tests) `now_or_after_response` simply runs the work at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Work = Callable[[], Awaitable[object]]
_pending: ContextVar[list[Work] | None] = ContextVar("deferred_pending", default=None)


async def now_or_after_response(work: Work) -> None:
    """Run `work` now, or (inside `collecting()`) once the response is out. Shielded either way: a client
    that goes away cancels the request, not its bookkeeping."""
    pending = _pending.get()
    if pending is None:
        await asyncio.shield(work())
    else:
        pending.append(work)


def call_after_response(fn: Callable[[], object]) -> None:
    """`fn()` (quick, synchronous bookkeeping: metrics, a span, a log line) now, or (inside `collecting()`)
    once the response is out, in order with the rest."""
    pending = _pending.get()
    if pending is None:
        fn()
        return

    async def work() -> None:
        fn()

    pending.append(work)


@contextmanager
def collecting() -> Iterator[list[Work]]:
    pending: list[Work] = []
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


async def run(pending: list[Work]) -> None:
    """Everything deferred, in order; shielded, so a cancelled request still finishes it."""

    async def all_of_it() -> None:
        while pending:
            await pending.pop(0)()

    await asyncio.shield(all_of_it())
