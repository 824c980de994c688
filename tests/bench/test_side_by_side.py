"""The benchmark's own parts that decide what it measures: which LiteLLM it agrees to run (issue 11 pins
1.106.2; 1.107.0 was a compromised release) and the minimal HTTP client of the requests/s step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import LITELLM_VERSION, litellm_check
from bench.side_by_side import _Connection, overheads
from tests.fakes.openai import FakeOpenAI

KEY = "test-key-1234"


def fake_env(root: Path, version: str) -> Path:
    """A directory shaped like a virtual environment whose python reports `version` for litellm."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho {version}\n")
    python.chmod(0o755)
    return root


def test_the_compromised_release_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="1.107.0, a compromised release"):
        litellm_check(fake_env(tmp_path, "1.107.0"))


def test_any_other_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"holds LiteLLM 1.106.3; the benchmark needs {LITELLM_VERSION}"):
        litellm_check(fake_env(tmp_path, "1.106.3"))


def test_an_environment_without_litellm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"holds LiteLLM \(none\)"):
        litellm_check(fake_env(tmp_path, ""))


def test_a_missing_environment_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="make bench"):
        litellm_check(tmp_path / "nothing")


def test_the_pinned_version_is_accepted(tmp_path: Path) -> None:
    env = fake_env(tmp_path, LITELLM_VERSION)
    assert litellm_check(env) == env / "bin" / "python"


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(keys={KEY})
    fake.start()
    yield fake
    fake.stop()


def test_the_minimal_client_reads_answers_and_errors_over_one_connection(openai: FakeOpenAI) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}).encode()
    url = f"{openai.url}/v1/chat/completions"

    async def run() -> list[tuple[int, bytes]]:
        good = _Connection(url, {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}, body)
        bad = _Connection(url, {"Authorization": "Bearer wrong", "Content-Type": "application/json"}, body)
        try:
            first = await good.send()
            writer = good.writer
            second = await good.send()
            assert good.writer is writer  # kept alive: the second request went over the same connection
            return [first, second, await bad.send()]
        finally:
            await good.close()
            await bad.close()

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(run())
    assert (s1, s2, s3) == (200, 200, 401)
    assert json.loads(b1)["choices"][0]["message"]["content"] == "Echo from gpt-4o-mini: hello there"
    assert json.loads(b2)["choices"][0]["message"]["content"] == "Echo from gpt-4o-mini: hello there"
    assert json.loads(b3)["error"]["code"] == "invalid_api_key"
    assert openai.count(path="/v1/chat/completions") == 3


def test_overhead_is_paired_round_by_round() -> None:
    times = {
        "direct": {"total": [1.0, 5.0, 1.0]},
        "litellm": {"total": [3.0, 7.0, 3.5]},  # +2, +2, +2.5
        "app1": {"total": [2.0, 9.0, 2.0]},  # +1, +4, +1
    }
    out = overheads(times, "total")
    assert out["litellm"]["median"] == 2.0
    assert out["app1"]["median"] == 1.0
    assert out["app1"]["median_time"] == 2.0
    assert out["direct"]["median_time"] == 1.0
