"""Issue 11's table: the same completions sent straight to the OpenAI emulator ("direct"), through
LiteLLM's proxy and through the app with one and with two web processes, all in one run, against the one
emulator; then the ratios to LiteLLM and to the app's own single web process, with each target's verdict.

- Overhead: N rounds, each sending one request to every party in a rotating order over keep-alive clients;
  a gateway's overhead in a round is its time minus the direct request's time in the same round.
- Streamed: the same, timed to the first chunk with text (TTFT) and to `[DONE]`.
- Requests/s: `concurrency` keep-alive clients sending non-streamed completions back to back for a fixed time.
- Streams: `c` streamed completions started at once on fresh connections; errors and TTFT percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench.harness import RssSampler, cpu_seconds
from bench.measure import _body, _wave, percentile

GATEWAYS = ("litellm", "app1", "app2")


@dataclass
class Party:
    key: str  # "direct", "litellm", "app1", "app2"
    label: str
    base: str  # the OpenAI-style API root, ending in /v1
    token: str
    model: str
    pids: Callable[[], list[int]] = field(default=lambda: [])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    @property
    def url(self) -> str:
        return f"{self.base}/chat/completions"


# --- sequential, interleaved ------------------------------------------------------------------------------


def _timed(client: httpx.Client, party: Party, body: bytes, stream: bool) -> tuple[float, float]:
    """One completion: (time to the first text, time to the end). Non-streamed: both are the whole
    response. Anything but a complete answer stops the benchmark: figures over errors would be wrong."""
    started = time.perf_counter()
    first = None
    with client.stream("POST", party.url, content=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{party.label}: HTTP {response.status_code} {response.read()[:300]!r}")
        if stream:
            done = False
            # Read to the end (not only to [DONE]), so the connection stays reusable where it is kept alive.
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    continue
                if first is None:
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise RuntimeError(f"{party.label}: {str(chunk['error'])[:300]}")
                    if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                        first = time.perf_counter() - started
            end = time.perf_counter() - started
            if not done or first is None:
                raise RuntimeError(f"{party.label}: stream without text or without [DONE]")
            return first, end
        content = response.read()
    end = time.perf_counter() - started
    choices = json.loads(content).get("choices") or [{}]
    if not (choices[0].get("message") or {}).get("content"):
        raise RuntimeError(f"{party.label}: no text in {content[:300]!r}")
    return end, end


def interleaved(parties: list[Party], n: int, *, stream: bool, warmup: int) -> dict[str, dict[str, list[float]]]:
    """N rounds, one request per party per round in rotating order (each party goes first, second...
    equally often). Returns per party the per-round `first` (TTFT) and `total` times."""
    bodies = {p.key: _body(p.model, stream) for p in parties}
    clients = {p.key: httpx.Client(headers=p.headers, timeout=60) for p in parties}
    times = {p.key: {"first": [], "total": []} for p in parties}
    try:
        for i in range(warmup + n):
            shift = i % len(parties)
            order = parties[shift:] + parties[:shift]
            if (i // len(parties)) % 2:
                order.reverse()
            for party in order:
                first, total = _timed(clients[party.key], party, bodies[party.key], stream)
                if i >= warmup:
                    times[party.key]["first"].append(first)
                    times[party.key]["total"].append(total)
    finally:
        for client in clients.values():
            client.close()
    return times


def overheads(times: dict[str, dict[str, list[float]]], what: str) -> dict[str, dict[str, float]]:
    """Per gateway: median, p95, p99 of (gateway - direct) in the same round, and the median times."""
    direct = times["direct"][what]
    out: dict[str, dict[str, float]] = {"direct": {"median_time": percentile(direct, 50)}}
    for key, series in times.items():
        if key == "direct":
            continue
        diffs = [g - d for g, d in zip(series[what], direct, strict=True)]
        out[key] = {
            "median": percentile(diffs, 50),
            "p95": percentile(diffs, 95),
            "p99": percentile(diffs, 99),
            "median_time": percentile(series[what], 50),
        }
    return out


def healthz(base_url: str, n: int) -> float:
    """Median of GET /healthz: the app's floor (uvicorn + Django's request cycle, no database, no upstream)."""
    times = []
    with httpx.Client(base_url=base_url) as client:
        for i in range(n + 50):
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            if i >= 50:
                times.append(time.perf_counter() - started)
    return percentile(times, 50)


# --- requests/s at a fixed concurrency ----------------------------------------------------------------------


class _Connection:
    """A minimal HTTP/1.1 keep-alive client for the requests/s step: one prepared request written as bytes,
    the response read by Content-Length (or chunks). httpx costs the load generator several times the CPU per
    request, and on 2 shared cores the generator, not the server, would then set the ceiling."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in fields:
            body = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
            body = b"".join(chunks)
        else:
            body = await self.reader.read()
        if (
            fields.get("connection", "").lower() == "close"
            or "content-length" not in fields
            and "chunked" not in str(fields.get("transfer-encoding"))
        ):
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _load(party: Party, concurrency: int, warm: float, seconds: float) -> dict[str, float | int | str]:
    """`concurrency` clients, each on its own keep-alive connection, sending non-streamed completions back to
    back: `warm` seconds to reach a steady state, then a window of `seconds`. Counted are the completions that
    end inside the window, so requests in flight at its start and at its end weigh alike (cutting off only at
    the end would understate a slow server most). The server's CPU time is read at both edges of the window."""
    body = _body(party.model, False)
    ends: list[float] = []
    errors: list[float] = []
    first_error = ""
    pids = party.pids()
    start = time.perf_counter() + warm
    stop = start + seconds

    async def worker() -> None:
        nonlocal first_error
        connection = _Connection(party.url, party.headers, body)
        try:
            while time.perf_counter() < stop:
                try:
                    status, content = await asyncio.wait_for(connection.send(), 60)
                    ok = status == 200 and b'"content"' in content
                    detail = f"HTTP {status} {content[:120]!r}"
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                    await connection.close()
                (ends if ok else errors).append(time.perf_counter())
                if not ok:
                    first_error = first_error or detail[:200]
        finally:
            await connection.close()

    async def cpu_at_edges() -> tuple[float, float]:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        before = cpu_seconds(pids)
        await asyncio.sleep(max(0.0, stop - time.perf_counter()))
        return before, cpu_seconds(pids)

    edges = asyncio.ensure_future(cpu_at_edges())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    before, after = await edges
    completed = sum(start <= t < stop for t in ends)
    return {
        "rps": completed / seconds,
        "completed": completed,
        "errors": sum(start <= t < stop for t in errors),
        "errors_outside_window": sum(not start <= t < stop for t in errors),
        "first_error": first_error,
        "cpu_per_request": (after - before) / completed if completed else float("nan"),
    }


def throughput(party: Party, concurrency: int, seconds: float, warm: float = 2.0) -> dict[str, float | int | str]:
    return asyncio.run(_load(party, concurrency, warm, seconds))


# --- concurrent streams ------------------------------------------------------------------------------------


def streams(party: Party, c: int) -> dict[str, float | int | str]:
    body = _body(party.model, True)
    asyncio.run(_wave(party.url, party.headers, body, 20))
    pids = party.pids()
    cpu = cpu_seconds(pids)
    with RssSampler(pids) as rss:
        outcomes, wall = asyncio.run(_wave(party.url, party.headers, body, c))
    cpu = cpu_seconds(pids) - cpu
    ok = [o for o in outcomes if o.ok]
    ttfts = [o.ttft for o in ok if o.ttft is not None]
    return {
        "errors": len(outcomes) - len(ok),
        "n": len(outcomes),
        "first_error": next((o.error for o in outcomes if not o.ok), ""),
        "ttft_p50": percentile(ttfts, 50),
        "ttft_p95": percentile(ttfts, 95),
        "ttft_p99": percentile(ttfts, 99),
        "wall": wall,
        "cpu_per_completion": cpu / len(ok) if ok else float("nan"),
        "peak_rss_mib": rss.peak_kib / 1024,
        "processes": len(pids),
    }


# --- the table ---------------------------------------------------------------------------------------------


@dataclass
class Line:
    metric: str
    cells: dict[str, str]  # party key -> text
    ratio: str = ""  # app 1 web / LiteLLM (or app 2 web / app 1 web in the issue-16 section)
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "NOT MET")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _ratio(a: float, b: float) -> float | None:
    return a / b if b and b > 0 and a == a and b == b else None


def _rtext(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _against_litellm(metric: str, cells: dict[str, str], app: float, peer: float | None, op: str, bound: float) -> Line:
    """A target row: app 1 web's figure over LiteLLM's, compared with `bound` (`op` "<=" or ">=")."""
    if peer is None:
        return Line(metric, cells, "no peer", f"{op} {bound:g}x LiteLLM", None)
    r = _ratio(app, peer)
    met = None if r is None else (r <= bound if op == "<=" else r >= bound)
    return Line(metric, cells, _rtext(r), f"{op} {bound:g}x LiteLLM", met)


# Two web processes must be "no worse" than one; this much is the VM's run-to-run noise, not a regression.
TOLERANCE = 0.10


def build(results: dict, parties: list[Party]) -> tuple[list[tuple[str, list[Line]]], list[tuple[str, list[Line]]]]:
    """(issue 11's sections, issue 16's section) as lists of lines."""
    keys = [p.key for p in parties]
    has_peer = "litellm" in keys
    sections: list[tuple[str, list[Line]]] = []
    web: list[Line] = []

    def cells(values: dict[str, str]) -> dict[str, str]:
        return {k: values.get(k, "-") for k in keys}

    def peer(value: dict[str, float], name: str) -> float | None:
        return value.get("litellm", {}).get(name) if has_peer else None

    def two_vs_one(metric: str, one: float, two: float, *, higher_is_better: bool = False, text=_ms) -> None:  # noqa: ANN001
        if "app2" not in keys:
            return
        r = _ratio(two, one)
        if higher_is_better:
            met = None if r is None else r >= 1 - TOLERANCE
            target = f">= {1 - TOLERANCE:g}x 1 web"
        else:
            met = None if r is None else r <= 1 + TOLERANCE
            target = f"<= {1 + TOLERANCE:g}x 1 web"
        web.append(Line(metric, {"app1": text(one), "app2": text(two)}, _rtext(r), target, met))

    if "plain" in results:
        o = results["plain"]
        n = results["n"]
        lines = [
            Line("median time", cells({k: _ms(o[k]["median_time"]) for k in keys})),
            Line(
                "GET /healthz on the app, median",
                cells({k: _ms(results["healthz"][k]) for k in keys if k in results["healthz"]}),
            ),
        ]
        for q, bound in (("median", 0.2), ("p95", None), ("p99", 0.5)):
            row = cells({k: _ms(o[k][q]) for k in GATEWAYS if k in keys})
            if bound is None:
                r = _ratio(o["app1"][q], peer(o, q)) if has_peer else None
                lines.append(Line(f"overhead {q}", row, _rtext(r)))
            else:
                lines.append(_against_litellm(f"overhead {q}", row, o["app1"][q], peer(o, q), "<=", bound))
        sections.append((f"Overhead per request, non-streamed ({n} interleaved rounds, keep-alive)", lines))
        if "app2" in keys:
            two_vs_one("overhead median", o["app1"]["median"], o["app2"]["median"])
            two_vs_one("overhead p99", o["app1"]["p99"], o["app2"]["p99"])

    if "first" in results:
        f, d = results["first"], results["done"]
        n = results["n_stream"]
        lines = [Line("median time to first text", cells({k: _ms(f[k]["median_time"]) for k in keys}))]
        row = cells({k: _ms(f[k]["median"]) for k in GATEWAYS if k in keys})
        lines.append(_against_litellm("TTFT overhead median", row, f["app1"]["median"], peer(f, "median"), "<=", 0.2))
        row = cells({k: _ms(f[k]["p99"]) for k in GATEWAYS if k in keys})
        r = _ratio(f["app1"]["p99"], peer(f, "p99")) if has_peer else None
        lines.append(Line("TTFT overhead p99", row, _rtext(r)))
        row = cells({k: _ms(d[k]["median"]) for k in GATEWAYS if k in keys})
        r = _ratio(d["app1"]["median"], peer(d, "median")) if has_peer else None
        lines.append(Line("overhead to [DONE], median", row, _rtext(r)))
        sections.append((f"Streamed ({n} interleaved rounds, keep-alive)", lines))
        if "app2" in keys:
            two_vs_one("TTFT overhead median", f["app1"]["median"], f["app2"]["median"])

    if "rps" in results:
        t = results["rps"]
        c, s = results["rps_concurrency"], results["rps_seconds"]
        row = cells({k: f"{t[k]['rps']:.0f}" for k in keys})
        peer_rps = t["litellm"]["rps"] if has_peer else None
        lines = [_against_litellm("requests/s", row, t["app1"]["rps"], peer_rps, ">=", 2)]
        errors = {k: f"{t[k]['errors']} + {t[k]['errors_outside_window']}" for k in keys}
        lines.append(Line("errors (in the window + outside it)", cells(errors)))
        lines.append(
            Line(
                "server CPU per request (direct: emulator's)",
                cells({k: _ms(t[k]["cpu_per_request"]) for k in keys}),
            )
        )
        title = f"Requests/s, {c} concurrent keep-alive clients, non-streamed ({s:g} s window after 2 s at load)"
        sections.append((title, lines))
        if "app2" in keys:
            two_vs_one(
                f"requests/s at {c} concurrent",
                t["app1"]["rps"],
                t["app2"]["rps"],
                higher_is_better=True,
                text=lambda v: f"{v:.0f}",
            )

    if "streams" in results:
        w = results["streams"]
        c = results["streams_c"]
        lines = []
        errors = cells({k: f"{w[k]['errors']} of {w[k]['n']}" for k in keys})
        lines.append(Line("errors", errors, "", "0 (app 1 web)", w["app1"]["errors"] == 0))
        row = cells({k: _ms(w[k]["ttft_p50"]) for k in keys})
        peer_ttft = w["litellm"]["ttft_p50"] if has_peer else None
        lines.append(_against_litellm("TTFT p50", row, w["app1"]["ttft_p50"], peer_ttft, "<=", 0.6))
        for q in ("p95", "p99"):
            lines.append(Line(f"TTFT {q}", cells({k: _ms(w[k][f"ttft_{q}"]) for k in keys})))
        lines.append(Line("wall time of the wave", cells({k: f"{w[k]['wall']:.2f} s" for k in keys})))
        cpu = cells({k: _ms(w[k]["cpu_per_completion"]) for k in keys})
        lines.append(Line("server CPU per completion (direct: emulator's)", cpu))
        rss = {k: f"{w[k]['peak_rss_mib']:.0f} MiB ({w[k]['processes']})" for k in keys if k != "direct"}
        lines.append(Line("peak RSS of the server (processes)", cells(rss)))
        sections.append((f"{c} concurrent streams, fresh connections", lines))
        if "app2" in keys:
            two_vs_one(f"{c} streams: TTFT p50", w["app1"]["ttft_p50"], w["app2"]["ttft_p50"])
            e1, e2 = w["app1"]["errors"], w["app2"]["errors"]
            web.append(Line(f"{c} streams: errors", {"app1": str(e1), "app2": str(e2)}, "", "<= 1 web's", e2 <= e1))
    return sections, [("1 vs 2 web processes (issue 16): app 2 web / app 1 web", web)] if web else []


def render(sections: list[tuple[str, list[Line]]], parties: list[Party], ratio_header: str, keys=None) -> str:  # noqa: ANN001
    keys = keys or [p.key for p in parties]
    labels = {p.key: p.label for p in parties}
    header = ["metric", *(labels[k] for k in keys), ratio_header, "target", "verdict"]
    rows = [
        [line.metric, *(line.cells.get(k, "-") for k in keys), line.ratio or "-", line.target or "-", line.verdict]
        for _, lines in sections
        for line in lines
    ]
    width = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    rule = "-+-".join("-" * w for w in width)
    out = [" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)), rule]
    for title, lines in sections:
        out.append(f"[{title}]")
        for line in lines:
            cells = [line.metric, *(line.cells.get(k, "-") for k in keys)]
            cells += [line.ratio or "-", line.target or "-", line.verdict]
            out.append(" | ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)))
    return "\n".join(out)


def measure(
    parties: list[Party],
    app_urls: dict[str, str],
    *,
    n: int,
    n_stream: int,
    rps_concurrency: int,
    rps_seconds: float,
    c: int,
    steps: list[str],
    log: Callable[[str], None] = print,
) -> dict:
    """Runs the selected steps ("overhead", "stream", "rps", "streams") and returns the raw figures."""
    results: dict = {"n": n, "n_stream": n_stream}
    if "overhead" in steps:
        started = time.monotonic()
        times = interleaved(parties, n, stream=False, warmup=max(20, n // 10))
        results["plain"] = overheads(times, "total")
        results["healthz"] = {k: healthz(url, max(100, n // 4)) for k, url in app_urls.items()}
        log(f"    overhead, non-streamed: {time.monotonic() - started:.1f} s")
    if "stream" in steps:
        started = time.monotonic()
        times = interleaved(parties, n_stream, stream=True, warmup=max(20, n_stream // 10))
        results["first"] = overheads(times, "first")
        results["done"] = overheads(times, "total")
        log(f"    overhead, streamed: {time.monotonic() - started:.1f} s")
    if "rps" in steps:
        started = time.monotonic()
        results["rps"] = {p.key: throughput(p, rps_concurrency, rps_seconds) for p in parties}
        results["rps_concurrency"], results["rps_seconds"] = rps_concurrency, rps_seconds
        log(f"    requests/s: {time.monotonic() - started:.1f} s")
    if "streams" in steps:
        started = time.monotonic()
        results["streams"] = {p.key: streams(p, c) for p in parties}
        results["streams_c"] = c
        log(f"    {c} streams: {time.monotonic() - started:.1f} s")
    return results
