"""Every emulator at once, for trying the whole app by hand without LM Studio or provider accounts:

    python -m tests.fakes.serve_all            # LM Studio on 1234, the clouds on 8101-8104

It prints the environment to give `make run` so the app talks to them, and the key they accept."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeServer
from tests.fakes.gemini import FakeGemini
from tests.fakes.lmstudio import FakeLMStudio
from tests.fakes.mistral import FakeMistral
from tests.fakes.openai import FakeOpenAI

KEY = "test-key-1234"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the LM Studio and cloud-provider emulators together.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lmstudio-port", type=int, default=1234)
    parser.add_argument("--first-cloud-port", type=int, default=8101)
    parser.add_argument("--load-delay", type=float, default=3.0, help="seconds an LM Studio load takes")
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
        "Ctrl-C stops them.",
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
