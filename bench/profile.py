"""Where a gateway request spends its time: a single-worker uvicorn under py-spy while N sequential
non-streamed (or streamed, --stream) completions go through it, or N `GET /api/models` (--listing);
prints the heaviest frames.

    python bench/profile.py [--n 2000] [--stream | --listing] [--raw out.txt] [--top 45]

py-spy samples every thread (the request thread Django's sync middleware runs in, too) without
instrumenting anything; --nonblocking keeps it from pausing the server for each sample."""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.harness import Harness  # noqa: E402
from bench.measure import PROMPT  # noqa: E402


def summarize(raw: Path, top: int) -> str:
    """py-spy's raw (collapsed) stacks as inclusive and self percentages per function."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";")]
        # py-spy names the thread first ("thread (0x...)" / process): skip anything that is not a frame.
        frames = [f for f in frames if "(" in f and not f.startswith(("process ", "thread "))]
        for frame in set(frames):
            inclusive[_short(frame)] += n
        if frames:
            own[_short(frames[-1])] += n
    out = [f"{total} samples"]
    out.append("\ninclusive %  function")
    out += [f"{100 * n / total:10.1f}  {name}" for name, n in inclusive.most_common(top)]
    out.append("\nself %       function")
    out += [f"{100 * n / total:10.1f}  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)" so lines of one function add up
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--listing", action="store_true", help="profile GET /api/models instead")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--raw", default="", help="keep py-spy's raw output here")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)  # unwind, so every started process is stopped
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    raw = out_dir / "raw.txt"
    harness = Harness(lmstudio_models=500)
    with harness as setup:
        wrap = [py_spy, "record", "--nonblocking", "--threads", "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--"]
        server = harness.start_server(setup, workers=1, wrap=wrap)
        body = json.dumps(
            {"model": setup.app["model"], "stream": args.stream, "messages": [{"role": "user", "content": PROMPT}]}
        )
        headers = {"Authorization": f"Bearer {setup.app['token']}", "Content-Type": "application/json"}
        started = time.perf_counter()
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for _ in range(args.n):
                if args.listing:
                    request = client.build_request("GET", "/api/models")
                else:
                    request = client.build_request("POST", "/v1/chat/completions", content=body)
                response = client.send(request)
                if response.status_code != 200:
                    raise RuntimeError(response.text[:300])
        elapsed = time.perf_counter() - started
        server.process.popen.send_signal(signal.SIGINT)  # py-spy writes its file when its target ends
        server.process.popen.wait(timeout=60)
    print(f"{args.n} requests in {elapsed:.1f} s ({1000 * elapsed / args.n:.2f} ms each, client included)")
    print(summarize(raw, args.top))
    if args.raw:
        shutil.copy(raw, args.raw)
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
