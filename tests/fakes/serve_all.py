"""Every emulator at once, for trying the whole app by hand without LM Studio or provider accounts:

    python -m tests.fakes.serve_all            # LM Studio on 1234, the clouds on 8101-8104

It prints the environment to give `make run` so the app talks to them, and the key they accept."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeServer
from tests.fakes.cloud import CloudFake
from tests.fakes.gemini import FakeGemini
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai import FakeOpenAI

KEY = "test-key-1234"
PROVIDERS = ("lmstudio", "openai", "anthropic", "gemini", "mistral")  # in the order the servers are made


def _chunk_delay(value: str) -> tuple[str | None, float]:
    """`0.2` (every emulator) or `openai=0.2` (one)."""
    name, _, seconds = value.rpartition("=")
    if name and name not in PROVIDERS:
        raise argparse.ArgumentTypeError(f"unknown emulator {name!r}; one of {', '.join(PROVIDERS)}")
    try:
        delay = float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{seconds!r} is not a number of seconds") from None
    if not 0 <= delay <= 10:
        raise argparse.ArgumentTypeError("a chunk delay is between 0 and 10 seconds")
    return (name or None), delay


def configure(servers: list[FakeServer], *, code_mode: bool, delays: dict[str | None, float]) -> None:
    """Code mode for all; each emulator's chunk delay: its own (`openai=0.3`), else the general one, else none."""
    for name, server in zip(PROVIDERS, servers, strict=True):
        delay = delays.get(name, delays.get(None, 0.0))
        if isinstance(server, FakeLMStudio):
            server.code_mode, server.stream_chunk_delay = code_mode, delay
        elif isinstance(server, CloudFake):
            server.code_mode, server.chunk_delay = code_mode, delay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the LM Studio and cloud-provider emulators together.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lmstudio-port", type=int, default=1234)
    parser.add_argument("--first-cloud-port", type=int, default=8101)
    parser.add_argument("--load-delay", type=float, default=3.0, help="seconds an LM Studio load takes")
    parser.add_argument(
        "--no-code-mode",
        dest="code_mode",
        action="store_false",
        help="echo every prompt, even one asking for code (by default such a prompt gets a fenced Python answer)",
    )
    parser.add_argument(
        "--chunk-delay",
        action="append",
        default=[],
        type=_chunk_delay,
        metavar="[PROVIDER=]SECONDS",
        help="seconds between streamed chunks, for every emulator or one (lmstudio, openai, anthropic, gemini, "
        "mistral); repeatable. A delay makes streaming and Stop visible in the chat.",
    )
    args = parser.parse_args(argv)

    port = args.first_cloud_port
    # (environment variable, emulator, what goes after its URL in a base URL)
    clouds: list[tuple[str, FakeServer, str]] = [
        ("OPENAI_BASE_URL", FakeOpenAI(keys={KEY}, host=args.host, port=port), "/v1"),
        ("ANTHROPIC_BASE_URL", FakeAnthropic(keys={KEY}, host=args.host, port=port + 1), ""),
        ("GEMINI_BASE_URL", FakeGemini(keys={KEY}, host=args.host, port=port + 2), ""),
        ("MISTRAL_BASE_URL", FakeMistral(keys={KEY}, host=args.host, port=port + 3), "/v1"),
    ]
    lmstudio = FakeLMStudio(host=args.host, port=args.lmstudio_port)
    lmstudio.load_delay = args.load_delay
    servers = [lmstudio, *(server for _, server, _ in clouds)]
    configure(servers, code_mode=args.code_mode, delays=dict(args.chunk_delay))
    try:
        for server in servers:
            server.start()
    except OSError as exc:
        for server in servers:
            server.stop()
        parser.exit(1, f"Cannot listen: {exc}\n")

    lines = [f"LMSTUDIO_BASE_URL={lmstudio.url}"] + [f"{name}={server.url}{suffix}" for name, server, suffix in clouds]
    print("Emulators running. Start the app with:\n\n  " + " ".join(lines) + " make run\n")
    print(
        f"Every cloud emulator accepts the key {KEY!r}; any other key is refused as the provider would. "
        + ("A prompt asking for code gets Python code (--no-code-mode echoes). " if args.code_mode else "")
        + "Ctrl-C stops them.",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    # Inherited from a shell that ignores SIGINT (background job, nohup, CI), Ctrl-C would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
