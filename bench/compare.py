"""Compare two versions of the code in one run, so that the machine's drift (a shared 2-core VM varies
by more than the effect of one change) hits both alike: a server from each source tree on the same
database and emulators, and N rounds of (direct, A, B) requests in rotating order.

    python bench/compare.py --a /tmp/tree-before [--b .] [--n 2000] [--stream | --ttft] [--path /v1/chat/completions]

Prints the median (and p95/p99) time each server adds over the direct request, the median of the paired
differences B - A, and B's share of A's overhead. `--path /api/models` compares the listing instead
(no direct request then). A tree is any copy of the repository (e.g. `git worktree add` or an rsync of
the working tree with one change reverted)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.harness import KEY, ROOT, Harness, cpu_seconds  # noqa: E402
from bench.measure import PROMPT, percentile  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="source tree A (before)")
    parser.add_argument("--b", default=str(ROOT), help="source tree B (after); this one by default")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--ttft", action="store_true", help="streamed, timed to the first text (as bench/run.py)")
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--model", default="openai/gpt-4o-mini")
    parser.add_argument("--models", type=int, default=500, help="LM Studio models")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="then N requests C at a time to each server: requests/s"
    )
    args = parser.parse_args()
    args.stream = args.stream or args.ttft
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)

    chat = args.path == "/v1/chat/completions"
    gateway_body = json.dumps(
        {"model": args.model, "stream": args.stream, "messages": [{"role": "user", "content": PROMPT}]}
    ).encode()
    direct_body = json.dumps(
        {"model": "gpt-4o-mini", "stream": args.stream, "messages": [{"role": "user", "content": PROMPT}]}
    ).encode()
    harness = Harness(lmstudio_models=args.models, extra_env={"MODEL_STATUS_TTL": "600"})
    with harness as setup:
        servers = {
            "A": harness.start_server(setup, workers=1, root=Path(args.a).resolve()),
            "B": harness.start_server(setup, workers=1, root=Path(args.b).resolve()),
        }
        json_type = {"Content-Type": "application/json"}
        token = {"Authorization": f"Bearer {setup.app['token']}", **json_type}
        clients = {name: httpx.Client(base_url=s.url, headers=token, timeout=60) for name, s in servers.items()}
        clients["direct"] = httpx.Client(
            base_url=f"{setup.openai_url}/v1", headers={"Authorization": f"Bearer {KEY}", **json_type}, timeout=60
        )

        def timed(name: str) -> float:
            client = clients[name]
            if name == "direct":
                request = client.build_request("POST", "/chat/completions", content=direct_body)
            elif chat:
                request = client.build_request("POST", args.path, content=gateway_body)
            else:
                request = client.build_request("GET", args.path)
            started = time.perf_counter()
            response = client.send(request, stream=args.ttft)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"{name} {args.path}: HTTP {response.status_code} {response.text[:300]}")
            if args.ttft:
                first = None
                # Read to the end, so a kept-alive connection stays reusable; timed to the first text.
                for line in response.iter_lines():
                    if first is None and line.startswith("data: {") and '"content":"' in line.replace(" ", ""):
                        chunk = json.loads(line[6:])
                        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                            first = time.perf_counter() - started
                response.close()
                if first is None:
                    raise RuntimeError(f"{name}: a stream without text")
                elapsed = first
            return elapsed

        names = ["direct", "A", "B"] if chat else ["A", "B"]
        times: dict[str, list[float]] = {name: [] for name in names}
        started = time.monotonic()
        cpu: dict[str, float] = {}
        for i in range(args.warmup + args.n):
            if i == args.warmup:
                cpu = {name: cpu_seconds(s.pids) for name, s in servers.items()}
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed = timed(name)
                if i >= args.warmup:
                    times[name].append(elapsed)
        # Server CPU per request: unlike latency, hardly moved by what else the machine is doing.
        cpu = {name: (cpu_seconds(s.pids) - cpu[name]) / args.n for name, s in servers.items()}
        for client in clients.values():
            client.close()
        rates = {}
        if args.concurrency:
            for name in ("A", "B", "A", "B"):  # twice each, alternating: the better of two
                url = servers[name].url
                result = asyncio.run(burst(url, token, gateway_body, args.n, args.concurrency))
                rates[name] = max(rates.get(name, (0.0, 0)), result)

    base = times["direct"] if chat else [0.0] * args.n
    added = {name: [t - d for t, d in zip(times[name], base, strict=True)] for name in ("A", "B")}
    kind = ("time to first text, streamed " if args.ttft else "streamed " if args.stream else "") + args.path
    print(f"{args.n} rounds of {kind} in {time.monotonic() - started:.0f} s; A={args.a} B={args.b}")
    if chat:
        print(f"  direct        median {percentile(times['direct'], 50) * 1000:7.2f} ms")
    label = "added" if chat else "latency"
    for name in ("A", "B"):
        values = added[name]
        print(
            f"  {name} {label:<10} median {percentile(values, 50) * 1000:7.2f} ms  "
            f"p95 {percentile(values, 95) * 1000:7.2f} ms  p99 {percentile(values, 99) * 1000:7.2f} ms"
        )
    print(f"  server CPU per request: A {cpu['A'] * 1000:.2f} ms, B {cpu['B'] * 1000:.2f} ms")
    paired = [b - a for a, b in zip(added["A"], added["B"], strict=True)]
    share = percentile(added["B"], 50) / percentile(added["A"], 50)
    print(f"  B - A paired  median {percentile(paired, 50) * 1000:+7.2f} ms  (B's median is {share:.0%} of A's)")
    for name, (rate, errors) in rates.items():
        print(f"  {name}: {rate:.0f} requests/s with {args.concurrency} in flight, {errors} errors")
    return 0


async def burst(url: str, headers: dict[str, str], body: bytes, n: int, concurrency: int) -> tuple[float, int]:
    """`n` requests, `concurrency` at a time on their own connections: completions per second, errors."""
    errors = 0
    queue = iter(range(n))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in queue:
            response = await client.post(f"{url}/v1/chat/completions", content=body, headers=headers)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return n / (time.perf_counter() - started), errors


if __name__ == "__main__":
    raise SystemExit(main())
