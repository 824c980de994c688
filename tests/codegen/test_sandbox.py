"""The sandbox itself: generated tests that try to get out, or to exhaust the machine, are stopped and
reported. Each test here runs a real bubblewrap sandbox on the dedicated environment."""

import os
import re
import shutil
from pathlib import Path

import pytest

from codegen import sandbox
from codegen.sandbox import SandboxLimits, SandboxReport, sandbox_run_tests

APP = {
    "app/__init__.py": "",
    "app/main.py": (
        "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n"
        '@app.get("/ping")\ndef ping() -> dict[str, str]:\n    return {"ping": "pong"}\n'
    ),
    "tests/__init__.py": "",
}


def _run(env: Path, test_body: str, **limits: float) -> SandboxReport:
    files = {**APP, "tests/test_it.py": test_body}
    return sandbox_run_tests(files=files, env_dir=env, limits=SandboxLimits(**limits))  # type: ignore[arg-type]


def _only_case(report: SandboxReport) -> str:
    assert report.ran, report.reason
    assert len(report.cases) == 1, report.output
    assert report.cases[0].outcome == "failed", report.cases[0]
    return report.cases[0].output


def test_a_good_project_passes(sandbox_env: Path) -> None:
    body = (
        "from fastapi.testclient import TestClient\n\nfrom app.main import app\n\n\n"
        "def test_ping() -> None:\n"
        '    assert TestClient(app).get("/ping").json() == {"ping": "pong"}\n'
    )
    report = _run(sandbox_env, body)
    assert (report.passed, report.failed, report.errors, report.stopped) == (1, 0, 0, "")
    assert report.all_passed


def test_the_network_is_unreachable(sandbox_env: Path) -> None:
    body = "import socket\n\n\ndef test_net() -> None:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
    assert "Network is unreachable" in _only_case(_run(sandbox_env, body))


def test_loopback_of_the_host_is_not_reachable(sandbox_env: Path) -> None:
    # A separate network namespace has its own (down) loopback: the app's own port is not there.
    body = "import socket\n\n\ndef test_lo() -> None:\n    socket.create_connection(('127.0.0.1', 8000), timeout=3)\n"
    output = _only_case(_run(sandbox_env, body))
    assert "Errno" in output


def test_writes_outside_the_project_directory_fail(sandbox_env: Path, tmp_path: Path) -> None:
    sentinel = tmp_path / "escaped.txt"
    body = (
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('path', [{str(sentinel)!r}, '/usr/escaped', '/escaped', '{sandbox_env}/x'])\n"
        "def test_write(path: str) -> None:\n"
        "    with open(path, 'w') as handle:\n"
        "        handle.write('out')\n"
    )
    report = _run(sandbox_env, body)
    assert report.failed == 4 and report.passed == 0, report.output
    assert all(("Read-only file system" in c.output or "No such file" in c.output) for c in report.cases)
    assert not sentinel.exists()


def test_the_project_directory_and_tmp_are_writable(sandbox_env: Path) -> None:
    body = (
        "def test_write() -> None:\n"
        "    for path in ('data.db', '/tmp/scratch'):\n"
        "        with open(path, 'w') as handle:\n"
        "            handle.write('ok')\n"
    )
    assert _run(sandbox_env, body).all_passed


def test_forking_without_end_is_refused_at_the_process_limit(sandbox_env: Path) -> None:
    body = (
        "import os\nimport time\n\n\n"
        "def test_fork() -> None:\n"
        "    children = 0\n"
        "    try:\n"
        "        while True:\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(60)\n"
        "                os._exit(0)\n"
        "            children += 1\n"
        "    except BlockingIOError:\n"
        "        raise AssertionError(f'fork refused after {children} children') from None\n"
    )
    output = _only_case(_run(sandbox_env, body, processes=32, wall_seconds=60))
    children = int(re.search(r"fork refused after (\d+) children", output).group(1))  # type: ignore[union-attr]
    assert 0 < children < 32


def test_allocating_without_end_hits_the_memory_limit(sandbox_env: Path) -> None:
    body = "def test_grow() -> None:\n    blocks = []\n    while True:\n        blocks.append(bytearray(16 << 20))\n"
    assert "MemoryError" in _only_case(_run(sandbox_env, body, memory_bytes=512 << 20))


def test_printing_without_end_is_stopped(sandbox_env: Path) -> None:
    # pytest captures a test's output into a file: the file-size limit ends the test, and pytest's report
    # of what it captured then runs into the output limit.
    body = "def test_print() -> None:\n    while True:\n        print('x' * 4096)\n"
    report = _run(sandbox_env, body, file_bytes=4 << 20, output_bytes=64 << 10)
    assert report.ran
    assert report.stopped in {f"file-size limit ({4 << 20} bytes)", f"output limit ({64 << 10} bytes)"}
    assert len(report.output) <= 64 << 10
    assert not report.all_passed


def test_output_beyond_the_limit_stops_the_run(sandbox_env: Path) -> None:
    # Output that reaches the pipe (pytest's own report of many long failures) is cut at the limit.
    body = "import pytest\n\n\n@pytest.mark.parametrize('n', range(200))\ndef test_long(n: int) -> None:\n"
    body += "    assert 'a' * 3000 == 'b' * 3000\n"
    report = _run(sandbox_env, body, output_bytes=4000)
    assert report.stopped == "output limit (4000 bytes)"
    assert len(report.output) <= 4000
    assert not report.all_passed


def test_spinning_hits_the_cpu_limit(sandbox_env: Path) -> None:
    body = "def test_spin() -> None:\n    while True:\n        pass\n"
    report = _run(sandbox_env, body, cpu_seconds=2, wall_seconds=60)
    assert report.stopped == "CPU-time limit (2 s)"
    assert not report.all_passed


def test_sleeping_hits_the_wall_clock_limit(sandbox_env: Path) -> None:
    body = "import time\n\n\ndef test_sleep() -> None:\n    time.sleep(600)\n"
    report = _run(sandbox_env, body, wall_seconds=3)
    assert report.stopped == "wall-clock limit (3 s)"
    assert not report.all_passed


def test_without_bwrap_nothing_runs(sandbox_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    report = _run(sandbox_env, "def test_x() -> None:\n    raise SystemExit('must not run')\n")
    assert report.ran is False
    assert "bubblewrap" in report.reason and "static" in report.reason


def test_without_the_environment_nothing_runs(tmp_path: Path) -> None:
    report = _run(tmp_path / "missing-env", "def test_x() -> None:\n    pass\n")
    assert report.ran is False
    assert "make run" in report.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC binds non-root users; the cgroup is root's limit")
def test_as_root_without_a_pids_cgroup_nothing_runs(
    sandbox_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "CGROUP_ROOTS", (tmp_path / "no-cgroup",))
    report = _run(sandbox_env, "def test_x() -> None:\n    raise SystemExit('must not run')\n")
    assert report.ran is False
    assert report.reason == sandbox.NO_PROCESS_LIMIT


def test_a_forged_report_does_not_count_as_passed(sandbox_env: Path) -> None:
    # The report directory is writable from inside; pytest's exit status has to agree with what it says.
    body = (
        "import atexit\n\n\n"
        "def forge() -> None:\n"
        "    with open('/report/junit.xml', 'w') as handle:\n"
        "        handle.write('<testsuites><testsuite>'\n"
        '                     \'<testcase classname="t" name="ok"/></testsuite></testsuites>\')\n\n\n'
        "atexit.register(forge)\n\n\n"
        "def test_fails() -> None:\n"
        "    raise AssertionError('really failed')\n"
    )
    report = _run(sandbox_env, body)
    assert report.ran and report.exit_code == 1
    assert (report.passed, report.failed) == (1, 0), "the forged file was read"
    assert report.all_passed is False
