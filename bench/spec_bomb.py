"""A "billion laughs" OpenAPI spec: what reading it cost before (PyYAML's safe_load, then the JSONField's
expansion) and what it costs now (codegen.specs refuses the first alias).

    .venv/bin/python bench/spec_bomb.py [--levels 6]

Each level multiplies the expansion by nine: 6 levels is a 462-byte spec that expands to 4,782,969 strings;
7 levels (516 bytes) took 150 s and 1.3 GB here, so it is not the default. Timings are under tracemalloc,
which slows the "before" path; the orders of magnitude are the point."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402

from codegen.specs import SpecError, spec_parse  # noqa: E402


def bomb(levels: int) -> str:
    lines = ["openapi: 3.0.0", "info: {title: lol, version: '1'}", "x0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    lines.append(f"paths: {{/lol: {{get: {{summary: *a{levels}}}}}}}")
    return "\n".join(lines)


def measured(step: Callable[[], str]) -> tuple[float, int, str]:
    tracemalloc.start()
    started = time.perf_counter()
    outcome = step()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak, outcome


def before(text: str) -> str:
    stored = json.dumps(yaml.safe_load(text))  # what CodegenRun.spec (a JSONField) held
    return f"stored {len(stored) / 1e6:.1f} MB"


def after(text: str) -> str:
    try:
        spec_parse(text=text)
    except SpecError as exc:
        return f"refused ({exc.message}), stored nothing"
    return "accepted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, default=6)
    text = bomb(parser.parse_args().levels)
    print(f"spec: {len(text.encode())} bytes")
    for name, step in (("before", before), ("after", after)):
        elapsed, peak, outcome = measured(lambda step=step: step(text))
        print(f"{name:>6}: {elapsed * 1000:9.1f} ms, peak {peak / 1e6:8.2f} MB allocated, {outcome}")


if __name__ == "__main__":
    main()
