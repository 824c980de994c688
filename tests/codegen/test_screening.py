"""The screener for generated code: escapes are rejected, ordinary programs pass, and the tools
(bandit, ruff) only ever add findings. No test needs the database; the two big corpora run without the
external tools so that the whole file stays fast."""

import builtins
import importlib
import pkgutil
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from codegen import screening
from codegen.screening import (
    ALLOWED_BUILTINS,
    ALLOWED_MODULES,
    FORBIDDEN_BUILTINS,
    Finding,
    backend_policy,
    screen_code,
)
from tests.codegen.corpus.accepted import ACCEPTED
from tests.codegen.corpus.escapes import ESCAPES


def _fast(code: str) -> screening.ScreenResult:
    return screen_code(code, use_bandit=False, use_lint=False)


def _rules(findings: list[Finding], *, blocking: bool | None = None) -> set[str]:
    return {f.rule for f in findings if blocking is None or f.blocking is blocking}


# ---- the corpora -------------------------------------------------------------------------------


def test_corpora_are_large_enough() -> None:
    assert len(ESCAPES) >= 45
    assert len(ACCEPTED) >= 22
    assert len({code for code, _ in ESCAPES.values()}) == len(ESCAPES), "escape programs must be distinct"


@pytest.mark.parametrize(("code", "expected_rules"), list(ESCAPES.values()), ids=list(ESCAPES))
def test_escape_is_rejected(code: str, expected_rules: frozenset[str]) -> None:
    result = _fast(code)
    assert result.passed is False
    assert result.score == 0.0
    blocking = _rules(result.findings, blocking=True)
    assert blocking & expected_rules, f"rejected for {blocking}, expected one of {set(expected_rules)}"
    assert any(f.line is not None for f in result.findings if f.blocking)


@pytest.mark.parametrize("code", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_ordinary_program_is_accepted(code: str) -> None:
    result = _fast(code)
    assert result.passed is True, [(f.rule, f.message, f.line) for f in result.findings]
    assert result.findings == []
    assert result.score == 1.0


# ---- targeted behaviour -------------------------------------------------------------------------


def test_shadowed_builtin_names_are_fine_where_they_cannot_fall_back_to_builtins() -> None:
    # A parameter or function local named `input`/`dir` never reaches the builtin; a module-level use does.
    local = "def solve(input: str) -> int:\n    for dir in input.split():\n        print(dir)\n    return 0\n"
    assert _fast(local).passed
    assert not _fast("data = input\n").passed
    # A class body looks names up in globals and builtins after its own namespace.
    assert not _fast("class A:\n    open = 1\n    del open\n    x = open\n").passed


def test_data_strings_that_name_builtins_are_accepted() -> None:
    code = (
        "from typing import Literal\n\n"
        'Mode = Literal["open", "closed", "exec", "eval"]\n'
        'DEFAULT: Mode = "open"\n'
        'COLUMNS = "a,b,expected"\n'
    )
    assert _fast(code).passed


def test_string_sinks_check_the_raw_and_the_normalised_spelling() -> None:
    # getattr-style lookups do not NFKC-normalise, but a fullwidth dunder is still not something to allow.
    result = _fast('class A:\n    pass\nprint(hasattr(A(), "__\\uff43lass__"))\n')
    assert "string-attribute" in _rules(result.findings, blocking=True)
    assert _fast('class A:\n    x = 1\nprint(hasattr(A(), "x"))\n').passed


def test_type_call_with_one_argument_is_allowed() -> None:
    assert _fast("print(type(3).__name__)\n").passed
    assert not _fast('Dyn = type("Dyn", (), {})\n').passed


def test_undefined_call_is_rejected_but_defined_names_may_be_called() -> None:
    assert _fast("def helper() -> int:\n    return 1\n\nprint(helper())\n").passed
    assert "call-not-allowed" in _rules(_fast("print(helper())\n").findings)


def test_every_builtin_is_classified() -> None:
    assert not ALLOWED_BUILTINS & FORBIDDEN_BUILTINS
    unclassified = {
        name
        for name in dir(builtins)
        if name not in ALLOWED_BUILTINS | FORBIDDEN_BUILTINS
        and name not in {"True", "False", "None", "Ellipsis", "NotImplemented"}
        and not (name.startswith("__") and name.endswith("__"))  # dunder names have their own rule
    }
    assert not unclassified, "a new builtin must be put on one of the two lists"


def _allowed_submodules(package: types.ModuleType) -> Iterator[types.ModuleType]:
    """Every submodule the screener lets code import, found without importing the refused ones."""
    for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        if not _fast(f"import {info.name}\n").passed:
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue  # optional dependencies (pydantic.mypy needs mypy)
        yield module
        if info.ispkg:
            yield from _allowed_submodules(module)


def _importable_allowed_modules() -> Iterator[types.ModuleType]:
    for top, policy in ALLOWED_MODULES.items():
        try:
            module = importlib.import_module(top)
        except ImportError:
            continue  # fastapi/starlette need not be installed where the screener runs
        yield module
        if policy.submodules is None and hasattr(module, "__path__"):
            yield from _allowed_submodules(module)
        for sub in policy.submodules or ():
            yield importlib.import_module(f"{top}.{sub}")


# Importing every submodule and reading every attribute trips the libraries' own deprecation warnings
# (starlette.status, starlette.middleware.wsgi ...), which say nothing about the screener.
@pytest.mark.filterwarnings("ignore")
def test_allowed_modules_do_not_leak_forbidden_modules() -> None:
    """Whatever module an allowed module happens to import (typing.sys, enum.bltns, random._os ...) is
    either itself allowed or unreachable through it. Computed from the installed libraries, so a new
    Python or library version that exposes something new fails here instead of in production."""
    leaks = []
    for module in _importable_allowed_modules():
        for attr in dir(module):
            if attr.startswith("__"):
                continue
            value = getattr(module, attr, None)
            if not isinstance(value, types.ModuleType):
                continue
            reachable = _fast(f"import {module.__name__}\nx = {module.__name__}.{attr}\n").passed
            if reachable and not _fast(f"import {value.__name__}\n").passed:
                leaks.append(f"{module.__name__}.{attr} -> {value.__name__}")
    assert not leaks


@pytest.mark.filterwarnings("ignore")
def test_allowed_modules_do_not_re_export_forbidden_builtins() -> None:
    dangerous = {id(getattr(builtins, name)): name for name in FORBIDDEN_BUILTINS if hasattr(builtins, name)}
    exposed = [
        f"{module.__name__}.{attr} is {dangerous[id(getattr(module, attr))]}"
        for module in _importable_allowed_modules()
        for attr in dir(module)
        if not attr.startswith("__")
        and id(getattr(module, attr, None)) in dangerous
        and _fast(f"import {module.__name__}\nx = {module.__name__}.{attr}\n").passed
    ]
    assert not exposed


# ---- result shape and score --------------------------------------------------------------------


def test_as_dict_shape() -> None:
    result = _fast('import os\nprint(eval("1"))\n')
    data = result.as_dict()
    assert set(data) == {"passed", "score", "issues_count", "issues"}
    assert data["passed"] is False and data["score"] == 0.0
    assert data["issues_count"] == len(result.findings) == len(data["issues"]) >= 2
    for issue in data["issues"]:
        assert set(issue) == {"rule", "message", "line"}
        assert isinstance(issue["rule"], str) and isinstance(issue["message"], str)
    assert {
        "rule": "import-not-allowed",
        "message": "import of 'os': module 'os' is not on the allowlist",
        "line": 1,
    } in data["issues"]


def test_clean_code_scores_one_with_both_tools() -> None:
    result = screen_code("def add(a: int, b: int) -> int:\n    return a + b\n")
    assert result.passed is True
    assert result.findings == []
    assert result.score == 1.0


def test_lint_findings_lower_the_score_without_blocking() -> None:
    result = screen_code("import json\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n", use_bandit=False)
    assert result.passed is True
    assert "lint:F401" in _rules(result.findings, blocking=False)
    assert not _rules(result.findings, blocking=True)
    assert result.score == pytest.approx(0.95)


def test_score_has_a_floor_while_passing() -> None:
    noisy = "".join(f"value_{i} = {i}   \n" for i in range(30))  # trailing whitespace on every line
    result = screen_code(noisy, use_bandit=False)
    assert result.passed is True
    assert len(_rules(result.findings)) >= 1 and len(result.findings) >= 30
    assert result.score == 0.5


def test_syntax_error_is_one_blocking_finding_with_its_line() -> None:
    result = screen_code("x = 1\ndef broken(:\n    pass\n")
    assert result.passed is False and result.score == 0.0
    assert [(f.rule, f.line, f.blocking) for f in result.findings] == [("syntax-error", 2, True)]


@pytest.mark.parametrize(
    "code",
    ["return 42\n", "print('a')\0\n", "def f():\n    nonlocal x\n"],
    ids=["compile-time", "null-byte", "symtable"],
)
def test_code_python_would_not_compile_is_a_syntax_error(code: str) -> None:
    result = _fast(code)
    assert _rules(result.findings) == {"syntax-error"}
    assert result.passed is False


def test_oversized_code_is_refused_without_parsing() -> None:
    result = _fast("x = 1\n" * (screening.MAX_CODE_CHARS // 6 + 1))
    assert _rules(result.findings) == {"too-large"}


# ---- bandit -----------------------------------------------------------------------------------

SHELL_CODE = "import subprocess\n\n\ndef run(cmd: str) -> None:\n    subprocess.call(cmd, shell=True)\n"


def test_bandit_findings_are_merged() -> None:
    result = screen_code(SHELL_CODE, use_lint=False)
    assert result.passed is False
    blocking = _rules(result.findings, blocking=True)
    assert "import-not-allowed" in blocking
    assert "bandit:B602" in blocking  # shell=True with a variable: HIGH severity
    assert "bandit:B404" in _rules(result.findings, blocking=False)  # importing subprocess: LOW


def test_low_severity_bandit_findings_only_lower_the_score() -> None:
    result = screen_code("import random\n\nprint(random.random())\n", use_lint=False)
    assert result.passed is True
    assert "bandit:B311" in _rules(result.findings, blocking=False)
    assert result.score < 1.0


def test_severity_alone_never_lets_code_through() -> None:
    # bandit sees nothing wrong here; the allowlist still rejects it.
    code = 'import typing\n\ntyping.sys.modules["os"].getcwd()\n'
    result = screen_code(code, use_lint=False)
    assert not any(f.rule.startswith("bandit:") for f in result.findings)
    assert result.passed is False


def test_use_bandit_false_skips_bandit() -> None:
    result = screen_code(SHELL_CODE, use_bandit=False, use_lint=False)
    assert not any(f.rule.startswith("bandit") for f in result.findings)
    assert result.passed is False


def test_missing_tools_are_reported_but_never_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening.tools, "tool_command", lambda name: None)
    result = screen_code("def add(a: int, b: int) -> int:\n    return a + b\n")
    assert result.passed is True
    assert _rules(result.findings) == {"bandit-unavailable", "lint-unavailable"}
    assert not any(f.blocking for f in result.findings)
    assert result.score == 1.0


def test_broken_tools_are_reported_but_never_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening.tools, "tool_command", lambda name: ["/nonexistent/tool"])
    result = screen_code("def add(a: int, b: int) -> int:\n    return a + b\n")
    assert result.passed is True
    assert _rules(result.findings) == {"bandit-unavailable", "lint-unavailable"}


def test_tools_cannot_rescue_rejected_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening.tools, "tool_command", lambda name: None)
    assert screen_code('print(open("/etc/passwd").read())\n').passed is False


# ---- the code is never run ----------------------------------------------------------------------


def test_screening_never_executes_the_code(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    code = (
        "from pathlib import Path\n"
        f"Path({str(target)!r}).write_text('module level')\n"
        f"open({str(target)!r}, 'w').write('builtin open')\n"
        "class Payload:\n"
        "    def __init_subclass__(cls) -> None:\n"
        f"        open({str(target)!r}, 'w').write('class creation')\n"
        "class Trigger(Payload):\n"
        "    pass\n"
        "def test_runs_under_pytest() -> None:\n"
        f"    open({str(target)!r}, 'w').write('test body')\n"
    )
    result = screen_code(code)  # with bandit and ruff: they only parse, too
    assert result.passed is False
    assert not target.exists()


# ---- profiles: pure standard-library helpers, the backend generator's extra modules ---------------


@pytest.mark.parametrize("module", ["unicodedata", "difflib", "ipaddress", "struct"])
def test_pure_standard_library_helpers_are_accepted(module: str) -> None:
    assert _fast(f"import {module}\n\nprint({module}.__name__)\n").passed


def test_unicodedata_normalises_text() -> None:
    code = 'import unicodedata\n\n\ndef fold(text: str) -> str:\n    return unicodedata.normalize("NFKC", text)\n'
    assert _fast(code).findings == []


def test_sqlalchemy_and_the_own_package_only_in_the_backend_profile() -> None:
    code = (
        "from sqlalchemy import String, select\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n"
        "from app.db import Base\n"
        "from app.routers import items\n\n\n"
        "class Item(Base):\n"
        '    __tablename__ = "items"\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    name: Mapped[str] = mapped_column(String(100))\n\n\n"
        "QUERY = select(Item)\n"
    )
    policy = backend_policy("app", frozenset({"db", "routers", "routers.items"}))
    default = _rules(_fast(code).findings, blocking=True)
    assert "import-not-allowed" in default
    backend = screen_code(code, use_bandit=False, use_lint=False, policy=policy)
    assert backend.passed, backend.findings
    assert not screen_code("import other_app\n", use_bandit=False, use_lint=False, policy=policy).passed
    raw_sql = screen_code("from sqlalchemy import text\n", use_bandit=False, use_lint=False, policy=policy)
    assert "import-not-allowed" in _rules(raw_sql.findings, blocking=True)
    assert not screen_code("from app.db import os\n", use_bandit=False, use_lint=False, policy=policy).passed
