"""`make bench`: the app side by side with LiteLLM's proxy and the bare upstream (issue 11), one web
process against two (issue 16), then the model listing, the cost of a fallback and the chat page's weight,
all measured against loopback emulators in one run and printed as tables.

    python bench/run.py [--n 1000] [--n-stream 500] [--rps-c 50] [--rps-seconds 5] [--c 200] [--workers 2]
                        [--models 500] [--only overhead,stream,rps,streams,listing,fallback,page] [--no-litellm]

The same knobs come from the environment (N=, N_STREAM=, RPS_C=, RPS_SECONDS=, C=, WEB_WORKERS=, MODELS=, ONLY=,
LITELLM=0), so `make bench N=500` works. Everything runs on 127.0.0.1, on ports the OS chooses, in a
temporary VAR_DIR; it stops by itself. The app runs as `make run` runs it (`manage.py serve`); LiteLLM
1.106.2 runs from its own virtual environment (LITELLM_ENV, made by `make bench`)."""

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

from bench import measure, side_by_side  # noqa: E402
from bench.harness import KEY, LITELLM_ENV, LITELLM_MASTER_KEY, LITELLM_VERSION, Harness, litellm_check  # noqa: E402

PEER_STEPS = ("overhead", "stream", "rps", "streams")
STEPS = (*PEER_STEPS, "listing", "fallback", "page")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=_env_int("N", 1000), help="interleaved rounds, non-streamed")
    parser.add_argument("--n-stream", type=int, default=_env_int("N_STREAM", 500), help="interleaved rounds, streamed")
    parser.add_argument("--rps-c", type=int, default=_env_int("RPS_C", 50), help="concurrent clients for requests/s")
    parser.add_argument("--rps-seconds", type=float, default=float(os.environ.get("RPS_SECONDS") or 5))
    parser.add_argument("--c", type=int, default=_env_int("C", 200), help="concurrent streams")
    parser.add_argument("--workers", type=int, default=_env_int("WEB_WORKERS", 2), help="web processes of the 2nd app")
    parser.add_argument("--models", type=int, default=_env_int("MODELS", 500), help="LM Studio models")
    parser.add_argument(
        "--no-litellm",
        action="store_true",
        default=os.environ.get("LITELLM", "1") == "0",
        help="leave LiteLLM out (LITELLM=0)",
    )
    parser.add_argument("--litellm-env", type=Path, default=LITELLM_ENV)
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
    peer_steps = [s for s in args.steps if s in PEER_STEPS]
    with_peer = bool(peer_steps) and not args.no_litellm
    if with_peer:
        litellm_check(args.litellm_env)  # before anything starts: refuse any other version
    started = time.monotonic()
    rows: list[measure.Row] = []
    numbers: dict[str, dict] = {}
    # A long status TTL, so that "from cache" means it during the listing; the other steps use cloud
    # models, whose status needs no LM Studio snapshot.
    extra_env = {"MODEL_STATUS_TTL": "600"}
    if args.settings:
        extra_env["DJANGO_SETTINGS_MODULE"] = args.settings
    harness = Harness(lmstudio_models=args.models, extra_env=extra_env)
    two = peer_steps and args.workers > 1
    print(
        f"Setting up (emulators, migrate, {args.models} LM Studio models; `manage.py serve` with 1"
        f"{f' and {args.workers}' if two else ''} web processes{f', LiteLLM {LITELLM_VERSION}' if with_peer else ''})…",
        flush=True,
    )
    with harness as setup:
        litellm = harness.start_litellm(setup, args.litellm_env) if with_peer else None
        single = harness.start_serve(setup, web_workers=1)
        multi = harness.start_serve(setup, web_workers=args.workers) if two else None
        for server in (single, multi):
            if server is not None:
                harness.wait_ready(server)
        if litellm is not None:
            harness.wait_ready(litellm, health="/health/liveliness")
        print(f"  ready after {time.monotonic() - started:.0f} s", flush=True)
        emulator = [setup.emulator_pid]
        parties = [
            side_by_side.Party("direct", "direct", f"{setup.openai_url}/v1", KEY, "gpt-4o-mini", lambda: emulator)
        ]
        if litellm is not None:
            parties.append(
                side_by_side.Party(
                    "litellm", "LiteLLM", f"{litellm.url}/v1", LITELLM_MASTER_KEY, "gpt-4o-mini", lambda: litellm.pids
                )
            )
        app_urls = {"app1": single.url}
        for key, server in (("app1", single), ("app2", multi)):
            if server is not None:
                web = server  # bound now, not when the lambda runs
                parties.append(
                    side_by_side.Party(
                        key,
                        f"app {server.workers} web",
                        f"{server.url}/v1",
                        setup.app["token"],
                        setup.app["model"],
                        lambda web=web: web.web_pids,
                    )
                )
                app_urls[key] = server.url
        peer_results: dict = {}
        if peer_steps:
            print(f"  side by side: {', '.join(p.label for p in parties)}…", flush=True)
            peer_results = side_by_side.measure(
                parties,
                app_urls,
                n=args.n,
                n_stream=args.n_stream,
                rps_concurrency=args.rps_c,
                rps_seconds=args.rps_seconds,
                c=args.c,
                steps=peer_steps,
            )
            numbers["side_by_side"] = peer_results
        for step in args.steps:
            if step in PEER_STEPS:
                continue
            print(f"  {step}…", flush=True)
            step_started = time.monotonic()
            if step == "listing":
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
    met = missed = 0
    if peer_results:
        sections, web = side_by_side.build(peer_results, parties)
        peer = f"LiteLLM {LITELLM_VERSION} (1 worker, no database)" if with_peer else "no LiteLLM (LITELLM=0)"
        print(
            f"Side by side (issue 11): the OpenAI emulator direct, {peer}, and the app as `make run` starts it "
            f"(manage.py serve) with 1{f' and {args.workers}' if two else ''} web processes; "
            "ratio = app 1 web / LiteLLM."
        )
        print(side_by_side.render(sections, parties, "app/LiteLLM"))
        if web:
            print()
            print(side_by_side.render(web, parties, "2 web/1 web", keys=["app1", "app2"]))
        for line in (line for _, lines in sections + web for line in lines):
            met += line.met is True
            missed += line.met is False
        for key, figures in peer_results.get("streams", {}).items():
            if figures["first_error"]:
                print(f"first stream error ({key}): {figures['first_error']}")
        for key, figures in peer_results.get("rps", {}).items():
            if figures["first_error"]:
                print(f"first requests/s error ({key}): {figures['first_error']}")
        print()
    if rows:
        print(table(rows))
    met += sum(r.met is True for r in rows)
    missed += sum(r.met is False for r in rows)
    print(f"{met} targets met, {missed} not met.")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "numbers": numbers}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
