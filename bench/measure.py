"""The measurements of the app alone, each a function of a running `Setup` that returns rows for the table;
the side-by-side ones (issue 11) are in bench/side_by_side.py."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx

from bench.harness import Server, Setup

PROMPT = "Please repeat these words: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"


@dataclass
class Row:
    section: str
    metric: str
    target: str  # "" when the issue sets none
    value: str
    met: bool | None = None  # None: no target

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "NOT MET")


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _body(model: str, stream: bool) -> bytes:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}).encode()


# --- concurrent streams (used by bench/side_by_side.py) ---------------------------------------------------


@dataclass
class StreamOutcome:
    ok: bool
    ttft: float | None = None
    total: float = 0.0
    tokens: int = 0
    error: str = ""


async def _one_stream(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes) -> StreamOutcome:
    started = time.perf_counter()
    ttft, tokens = None, 0
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            if response.status_code != 200:
                text = (await response.aread())[:200]
                return StreamOutcome(False, error=f"HTTP {response.status_code} {text!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    return StreamOutcome(True, ttft, time.perf_counter() - started, tokens)
                chunk = json.loads(data)
                if "error" in chunk:
                    return StreamOutcome(False, error=str(chunk["error"])[:200])
                for choice in chunk.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        tokens += 1
                        if ttft is None:
                            ttft = time.perf_counter() - started
        return StreamOutcome(False, error="stream ended without [DONE]")
    except httpx.HTTPError as exc:
        return StreamOutcome(False, error=f"{type(exc).__name__}: {exc}"[:200])


async def _wave(url: str, headers: dict[str, str], body: bytes, n: int) -> tuple[list[StreamOutcome], float]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    timeout = httpx.Timeout(120, connect=60, pool=120)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(_one_stream(client, url, headers, body) for _ in range(n)))
        return list(outcomes), time.perf_counter() - started


# --- 3. model status listing ---------------------------------------------------------------------------


def listing(setup: Setup, server: Server, samples: int, refreshes: int = 10) -> tuple[list[Row], dict]:
    """GET /api/models with ~500 LM Studio models: latency when the server's answer is cached, and how
    many requests one refresh sends to LM Studio."""
    headers = {"Authorization": f"Bearer {setup.app['token']}"}
    expected = setup.app["models"]
    # Each worker has its own cache: new connections (spread over the workers) warm them all.
    for _ in range(4 * server.workers):
        httpx.get(f"{server.url}/api/models", headers=headers, timeout=60).raise_for_status()
    path = "/api/v1/models"
    times, refresh_times = [], []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        client.get("/api/models").raise_for_status()
        before = setup.upstream_count(setup.lmstudio_url, path)
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get("/api/models")
            times.append(time.perf_counter() - started)
            if response.status_code != 200 or len(response.json()) != expected:
                raise RuntimeError(f"/api/models: HTTP {response.status_code}, {len(response.content)} bytes")
        from_cache_upstream = setup.upstream_count(setup.lmstudio_url, path) - before
        before = setup.upstream_count(setup.lmstudio_url, path)
        for _ in range(refreshes):
            started = time.perf_counter()
            client.get("/api/models", params={"refresh": "1"}).raise_for_status()
            refresh_times.append(time.perf_counter() - started)
        per_refresh = (setup.upstream_count(setup.lmstudio_url, path) - before) / refreshes
        size = len(response.content)
    p50, p99 = percentile(times, 50), percentile(times, 99)
    section = f"Status listing (GET /api/models, {expected} models, {samples} requests)"
    rows = [
        Row(section, "p50 from cache", "<= 15 ms", ms(p50), p50 <= 0.015),
        Row(section, "p99 from cache", "", ms(p99)),
        Row(section, "upstream requests while cached", "0", str(from_cache_upstream), from_cache_upstream == 0),
        Row(section, "p50 with ?refresh=1", "", ms(percentile(refresh_times, 50))),
        Row(section, "upstream requests per refresh", "1", f"{per_refresh:g}", per_refresh == 1),
        Row(section, "response size", "", f"{size / 1024:.0f} KiB"),
    ]
    return rows, {"p50": p50, "p99": p99, "per_refresh": per_refresh}


# --- 4. fallback ---------------------------------------------------------------------------------------


def _ttft(client: httpx.Client, model: str) -> tuple[float, str, int]:
    """Time to the first text of one streamed completion; the answering model and the fallbacks taken."""
    started = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", content=_body(model, True)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{model}: HTTP {response.status_code} {response.read()[:300]!r}")
        first, fallbacks, answered = None, 0, ""
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            info = chunk.get("orchestrator")
            if info:
                fallbacks, answered = len(info["fallbacks"]), info["model"]
            if first is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{model}: no text")
    return first, answered, fallbacks


def fallback(setup: Setup, server: Server, samples: int) -> tuple[list[Row], dict]:
    """Time to first token (streamed) when the requested model answers, when its server refuses the
    connection for the first time (retried once, then the suggested alternative), and when it is already
    cooling down after refusals (straight to the alternative)."""
    headers = {"Authorization": f"Bearer {setup.app['token']}", "Content-Type": "application/json"}
    primary, refused = setup.app["model"], setup.app["refused_model"]
    answered, first_refusal, cooling = [], [], []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for _ in range(5):
            _ttft(client, primary)
        for _ in range(samples):
            answered.append(_ttft(client, primary)[0])
        for _ in range(max(3, samples // 5)):
            # Forget the failures (staff call), then warm this worker's LM Studio snapshot again: the
            # reset drops it, and a real refusal would find it cached.
            client.post("/api/models/failures/reset").raise_for_status()
            client.get("/api/models").raise_for_status()
            seconds, model, taken = _ttft(client, refused)
            if taken != 1:
                raise RuntimeError(f"expected one fallback, got {taken} (answered by {model})")
            first_refusal.append(seconds)
        # Enough refusals in a row (MODEL_ALLOWED_FAILS) put the model in its cooldown.
        for _ in range(3):
            _ttft(client, refused)
        for _ in range(samples):
            seconds, model, taken = _ttft(client, refused)
            if taken != 1:
                raise RuntimeError(f"expected one fallback, got {taken} (answered by {model})")
            cooling.append(seconds)
        client.post("/api/models/failures/reset").raise_for_status()
    a50, r50, c50 = (percentile(v, 50) for v in (answered, first_refusal, cooling))
    section = "Fallback (streamed, time to first token)"
    rows = [
        Row(section, f"primary answers, p50 ({len(answered)})", "", ms(a50)),
        Row(section, f"primary refused, first time, p50 ({len(first_refusal)})", "", ms(r50)),
        Row(section, "  cost of the fallback", "", f"+{ms(r50 - a50)}"),
        Row(section, f"primary cooling down, p50 ({len(cooling)})", "", ms(c50)),
        Row(section, "  cost of the fallback", "", f"+{ms(c50 - a50)}"),
    ]
    return rows, {"answered": a50, "first_refusal": r50, "cooling": c50}


# --- 5. chat page weight -------------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")
        elif tag == "link" and values.get("href") and {"stylesheet", "icon"} & set((values.get("rel") or "").split()):
            self.urls.append(values["href"] or "")


def _wire_bytes(response: httpx.Response) -> int:
    """Bytes on the wire: status line, headers and the body as sent (compressed if it was)."""
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n".encode()) + 2
    head += sum(len(name) + len(value) + 4 for name, value in response.headers.raw)
    return head + response.num_bytes_downloaded


def page_weight(setup: Setup, server: Server) -> tuple[list[Row], dict]:
    """Log in, then load the chat page and what it links (CSS, JS, icon) as a first visit would."""
    browser_headers = {"Accept-Encoding": "gzip, deflate", "User-Agent": "bench"}
    with httpx.Client(base_url=server.url, headers=browser_headers, timeout=30) as client:
        login = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        if token is None:
            raise RuntimeError("no CSRF token on the login page")
        done = client.post(
            "/accounts/login/",
            data={
                "username": setup.app["username"],
                "password": setup.app["password"],
                "csrfmiddlewaretoken": token[1],
            },
        )
        if done.status_code != 302:
            raise RuntimeError(f"login failed: HTTP {done.status_code}")
        page = client.get("/")
        if page.status_code != 200:
            raise RuntimeError(f"chat page: HTTP {page.status_code}")
        parser = _Assets()
        parser.feed(page.text)
        responses = [("/", page)] + [(url, client.get(url)) for url in parser.urls]
    wire = gz = raw = 0
    compressed = []
    parts = []
    for url, response in responses:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        wire += _wire_bytes(response)
        raw += len(response.content)
        head = _wire_bytes(response) - response.num_bytes_downloaded
        gz += head + len(gzip.compress(response.content, 6))
        if response.headers.get("content-encoding"):
            compressed.append(url)
        parts.append(f"{url.rsplit('/', 1)[-1] or 'page'} {response.num_bytes_downloaded / 1024:.1f}")
    section = f"Chat page, first load ({len(responses)} requests: page + {len(responses) - 1} assets)"
    rows = [
        Row(section, "bytes transferred", "<= 100 KB", f"{wire / 1000:.1f} KB", wire <= 100_000),
        Row(section, "compressed responses", "", f"{len(compressed)} of {len(responses)}"),
        Row(section, "same, if gzip-compressed", "", f"{gz / 1000:.1f} KB"),
        Row(section, "bodies (KiB)", "", ", ".join(parts)),
    ]
    return rows, {"wire": wire, "gzip": gz, "raw": raw, "compressed": compressed}
