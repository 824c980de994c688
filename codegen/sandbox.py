"""The OS sandbox in which a generated project's own tests run: bubblewrap, nothing else.

What the sandboxed process gets: no network and no other namespace of the host (`--unshare-all`), no
capabilities, a read-only root with /usr and the dedicated Python environment (built from
requirements-sandbox.txt by `prepare_sandbox`, never from what the project asks for), its project copy as
its only writable directory besides a size-limited /tmp, and limits on CPU time, address space, file
size, processes, output and wall-clock time. Without bwrap (or that environment) nothing is run: the
caller is told why and validates statically only.

Process count: RLIMIT_NPROC does not bind processes of the host's root user, whatever the namespace, so
when the app runs as root the sandbox is also put in a pids cgroup of its own where one can be made.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import venv
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

PROJECT_MOUNT = "/project"
REPORT_MOUNT = "/report"
STAMP_NAME = ".requirements-sha256"
CASE_OUTPUT_CHARS = 2_000
# Where a pids cgroup may be made: the v1 pids hierarchy, or the v2 unified one.
CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
NO_PROCESS_LIMIT = (
    "the app runs as root and cannot make a pids cgroup, so the sandbox could not limit processes:"
    " generated tests are not run, validation is static only"
)


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30
    processes: int = 64
    file_bytes: int = 16 << 20
    tmp_bytes: int = 64 << 20
    output_bytes: int = 256 << 10
    wall_seconds: float = 120.0


@dataclass
class TestCase:
    name: str
    outcome: str  # passed | failed | error | skipped
    output: str = ""


@dataclass
class SandboxReport:
    """What happened. `ran` is False when nothing was run (and `reason` says why)."""

    ran: bool
    reason: str = ""
    stopped: str = ""  # the limit that ended the run early, if one did
    exit_code: int | None = None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    cases: list[TestCase] = field(default_factory=list)
    output: str = ""

    @property
    def all_passed(self) -> bool:
        # pytest's own exit status must agree with the report file, which the tests could have written to.
        clean = self.ran and not self.stopped and self.exit_code == 0
        return clean and self.passed > 0 and self.failed == 0 and self.errors == 0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["all_passed"] = self.all_passed
        return data


# ---- the dedicated environment ----------------------------------------------------------------------


def _requirements_digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def sandbox_env_ready(*, env_dir: Path, requirements: Path) -> bool:
    stamp = env_dir / STAMP_NAME
    return (
        (env_dir / "bin" / "python").exists()
        and stamp.exists()
        and stamp.read_text().strip() == _requirements_digest(requirements)
    )


def sandbox_env_prepare(*, env_dir: Path, requirements: Path) -> bool:
    """Build the environment from the pinned file; a no-op when the stamp matches. True if it built."""
    if sandbox_env_ready(env_dir=env_dir, requirements=requirements):
        return False
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "-r", str(requirements)], check=True)
    # pip and setuptools are not needed at run time; without them the environment holds only the allowed packages.
    subprocess.run([*pip, "uninstall", "--quiet", "--yes", "setuptools", "pip"], check=True)
    (env_dir / STAMP_NAME).write_text(_requirements_digest(requirements) + "\n")
    return True


def _base_prefix(env_dir: Path) -> Path | None:
    """The interpreter installation the environment was made from (pyvenv.cfg's `home` is its bin/)."""
    try:
        for line in (env_dir / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).resolve().parent
    except OSError:
        return None
    return None


def sandbox_unavailable_reason(*, env_dir: Path) -> str:
    """Why generated tests cannot be run here; empty when they can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: generated tests cannot be run, validation is static only"
    if not (env_dir / "bin" / "python").exists():
        return f"the sandbox's Python environment is missing ({env_dir}); run `make run` or `make test` to prepare it"
    return ""


# ---- running -----------------------------------------------------------------------------------------


def _bwrap_argv(*, env_dir: Path, project: Path, report: Path, limits: SandboxLimits) -> list[str]:
    env_dir = env_dir.resolve()
    argv = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    # The private /tmp comes before the environment's bind mounts: the app (and so the environment) may itself
    # live below the host's /tmp, and a tmpfs mounted later would hide it.
    argv += ["--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    base = _base_prefix(env_dir)
    if base is not None and not str(base).startswith("/usr/"):
        argv += ["--ro-bind", str(base), str(base)]
    argv += [
        "--ro-bind",
        str(env_dir),
        str(env_dir),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        str(project),
        PROJECT_MOUNT,
        "--bind",
        str(report),
        REPORT_MOUNT,
        "--remount-ro",
        "/",
        "--chdir",
        PROJECT_MOUNT,
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "PATH",
        f"{env_dir}/bin:/usr/bin",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--setenv",
        "PYTHONHASHSEED",
        "0",
        str(env_dir / "bin" / "python"),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--color=no",
        f"--junitxml={REPORT_MOUNT}/junit.xml",
        "tests",
    ]
    return argv


@contextlib.contextmanager
def _pids_cgroup(limit: int) -> Iterator[Path | None]:
    """A pids cgroup with `limit` for the run, when this process may make one (it runs as root and a
    pids hierarchy is mounted); None otherwise, and RLIMIT_NPROC has to do."""
    if os.geteuid() != 0:
        yield None
        return
    group: Path | None = None
    for root in CGROUP_ROOTS:
        controllers = root / "cgroup.controllers"
        usable = root.name == "pids" or (controllers.exists() and "pids" in controllers.read_text().split())
        if not usable:
            continue
        candidate = root / f"orchestrator-sandbox-{uuid.uuid4().hex[:12]}"
        try:
            candidate.mkdir()
            (candidate / "pids.max").write_text(str(limit))
        except OSError:
            with contextlib.suppress(OSError):
                candidate.rmdir()
            continue
        group = candidate
        break
    try:
        yield group
    finally:
        if group is not None:
            _remove_cgroup(group)


def _remove_cgroup(group: Path) -> None:
    # The kernel frees the group once its last process is reaped; killed processes may take a moment.
    deadline = time.monotonic() + 5
    while True:
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
        with contextlib.suppress(OSError, ValueError):
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)


def _preexec(limits: SandboxLimits, cgroup: Path | None) -> None:
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    # SIGXCPU at the soft limit says why; SIGKILL a second later if it is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _collect_output(process: subprocess.Popen[bytes], limits: SandboxLimits) -> tuple[bytes, str]:
    """Read the sandbox's output until it ends, stopping it at the output or wall-clock limit."""
    assert process.stdout is not None
    chunks: list[bytes] = []
    size = 0
    stopped = ""
    deadline = time.monotonic() + limits.wall_seconds
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped = f"wall-clock limit ({limits.wall_seconds:g} s)"
                break
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limits.output_bytes:
                stopped = f"output limit ({limits.output_bytes} bytes)"
                break
    if stopped:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return b"".join(chunks)[: limits.output_bytes], stopped


def _cases(junit: Path) -> list[TestCase]:
    try:
        root = ElementTree.parse(junit).getroot()  # noqa: S314 - written by pytest in our sandbox, size-limited
    except (OSError, ElementTree.ParseError):
        return []
    cases: list[TestCase] = []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        outcome, output = "passed", ""
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                output = ((child.get("message") or "") + "\n" + (child.text or "")).strip()
                break
        cases.append(TestCase(name=name, outcome=outcome, output=output[:CASE_OUTPUT_CHARS]))
    return cases


def _stop_reason(exit_code: int, limits: SandboxLimits) -> str:
    """The limit behind a run that ended by a signal (bwrap reports a child's signal as 128 + its number)."""
    number = -exit_code if exit_code < 0 else exit_code - 128 if exit_code > 128 else 0
    if number == signal.SIGXCPU:
        return f"CPU-time limit ({limits.cpu_seconds} s)"
    if number == signal.SIGXFSZ:
        return f"file-size limit ({limits.file_bytes} bytes)"
    with contextlib.suppress(ValueError):
        return f"killed by {signal.Signals(number).name}" if number else ""
    return f"killed by signal {number}"


def sandbox_run_tests(*, files: Mapping[str, str], env_dir: Path, limits: SandboxLimits | None = None) -> SandboxReport:
    """Write the project to a private directory and run its `tests/` with pytest inside bubblewrap."""
    limits = limits or SandboxLimits()
    reason = sandbox_unavailable_reason(env_dir=env_dir)
    if reason:
        return SandboxReport(ran=False, reason=reason)
    with tempfile.TemporaryDirectory(prefix="orchestrator-sandbox-") as workdir:
        project = Path(workdir) / "project"
        report = Path(workdir) / "report"
        report.mkdir()
        for relative, content in files.items():
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        (project / "tests").mkdir(exist_ok=True)
        argv = _bwrap_argv(env_dir=env_dir, project=project, report=report, limits=limits)
        with _pids_cgroup(limits.processes) as cgroup:
            if cgroup is None and os.geteuid() == 0:
                return SandboxReport(ran=False, reason=NO_PROCESS_LIMIT)
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                preexec_fn=lambda: _preexec(limits, cgroup),  # noqa: PLW1509 - limits must be set before exec
            )
            try:
                output, stopped = _collect_output(process, limits)
            finally:
                if process.stdout is not None:
                    process.stdout.close()
                exit_code = process.wait()
        cases = _cases(report / "junit.xml")
    text = output.decode("utf-8", errors="replace")
    if not stopped:
        stopped = _stop_reason(exit_code, limits)
    return SandboxReport(
        ran=True,
        stopped=stopped,
        exit_code=exit_code,
        passed=sum(case.outcome == "passed" for case in cases),
        failed=sum(case.outcome == "failed" for case in cases),
        errors=sum(case.outcome == "error" for case in cases),
        cases=cases,
        output=text[-CASE_OUTPUT_CHARS * 4 :],
    )
