"""`make bench`: the gateway's overhead, 500 concurrent streams, the model listing, the cost of a fallback
and the chat page's weight, measured against loopback emulators and printed as one table.

    python bench/run.py [--n 2000] [--c 500] [--workers 2] [--models 500] [--only overhead,listing]

The same knobs come from the environment (N=, C=, WORKERS=, MODELS=, ONLY=), so `make bench N=500` works.
Everything runs on 127.0.0.1, on ports the OS chooses, in a temporary VAR_DIR; it stops by itself."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure  # noqa: E402
from bench.harness import Harness  # noqa: E402

STEPS = ("overhead", "concurrency", "listing", "fallback", "page")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=_env_int("N", 2000), help="sequential pairs for the overhead")
    parser.add_argument("--c", type=int, default=_env_int("C", 500), help="concurrent streams")
    parser.add_argument("--workers", type=int, default=_env_int("WORKERS", 2), help="uvicorn worker processes")
    parser.add_argument("--models", type=int, default=_env_int("MODELS", 500), help="LM Studio models")
    parser.add_argument("--list-samples", type=int, default=_env_int("LIST_SAMPLES", 300))
    parser.add_argument("--fallback-samples", type=int, default=_env_int("FALLBACK_SAMPLES", 50))
    parser.add_argument("--only", default=os.environ.get("ONLY", ""), help=f"comma-separated subset of {STEPS}")
    parser.add_argument(
        "--settings",
        default=os.environ.get("BENCH_SETTINGS", ""),
        help="another DJANGO_SETTINGS_MODULE for the app, e.g. bench.experiments.async_middleware",
    )
    parser.add_argument("--json", default=os.environ.get("BENCH_JSON", ""), help="also write the numbers here")
    args = parser.parse_args(argv)
    args.steps = [s for s in (args.only.split(",") if args.only else STEPS) if s]
    unknown = set(args.steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; known: {STEPS}")
    return args


def table(rows: list[measure.Row]) -> str:
    header = ("metric", "target", "measured", "verdict")
    width = [max(len(header[0]), *(len(r.metric) for r in rows)), 9, 0, 7]
    width[2] = max(len(header[2]), *(len(r.value) for r in rows))
    line = "+".join("-" * (w + 2) for w in width)
    out = [line, " | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)), line]
    section = None
    for row in rows:
        if row.section != section:
            if section is not None:
                out.append("")
            out.append(f"[{row.section}]")
            section = row.section
        cells = (row.metric, row.target or "-", row.value, row.verdict)
        out.append(" | ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)))
    out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A SIGTERM (or a closed terminal) unwinds like Ctrl-C, so every started process is stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    started = time.monotonic()
    rows: list[measure.Row] = []
    numbers: dict[str, dict] = {}
    # A long status TTL, so that "from cache" means it during the listing; the other steps use cloud
    # models, whose status needs no LM Studio snapshot.
    extra_env = {"MODEL_STATUS_TTL": "600"}
    if args.settings:
        extra_env["DJANGO_SETTINGS_MODULE"] = args.settings
    harness = Harness(lmstudio_models=args.models, extra_env=extra_env)
    print(
        f"Setting up (emulators, migrate, {args.models} LM Studio models, uvicorn with 1 and {args.workers} workers)…"
    )
    with harness as setup:
        single = harness.start_server(setup, workers=1)
        multi = harness.start_server(setup, workers=args.workers) if args.workers > 1 else single
        for step in args.steps:
            print(f"  {step}…", flush=True)
            step_started = time.monotonic()
            if step == "overhead":
                new, numbers["overhead"] = measure.overhead(setup, single, args.n, stream=False)
                more, numbers["overhead_stream"] = measure.overhead(setup, single, args.n, stream=True)
                new += more
                if multi is not single:
                    more, numbers["overhead_multi"] = measure.overhead_multiworker(setup, multi, min(args.n, 200))
                    new += more
            elif step == "concurrency":
                new, numbers[step] = measure.concurrency(setup, multi, args.c)
            elif step == "listing":
                new, numbers[step] = measure.listing(setup, single, args.list_samples)
            elif step == "fallback":
                new, numbers[step] = measure.fallback(setup, single, args.fallback_samples)
            else:
                new, numbers[step] = measure.page_weight(setup, single)
            rows += new
            print(f"    done in {time.monotonic() - step_started:.1f} s", flush=True)
    print()
    print(
        f"AI Orchestrator benchmark - {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, SQLite + local-memory cache (the embedded default)"
        f"{', settings ' + args.settings if args.settings else ''}; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    print(table(rows))
    missed = [r for r in rows if r.met is False]
    print(f"{sum(r.met is True for r in rows)} targets met, {len(missed)} not met.")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "numbers": numbers}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
