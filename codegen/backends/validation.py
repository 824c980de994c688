"""Validating one round's files: the screener on every Python file (with the backend profile), Bandit
and ruff over the tree, an import check of the project's own modules, and only when the screener passed
them all, the project's own tests in the sandbox."""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codegen.backends.layout import PACKAGE
from codegen.sandbox import SandboxLimits, sandbox_run_tests
from codegen.screening import Finding, backend_policy, run_tools_tree, screen_code, screen_result


def package_modules(files: Mapping[str, str]) -> frozenset[str]:
    """The project package's modules, dotted and relative to it: {"db", "routers", "routers.items"}."""
    modules: set[str] = set()
    for path in files:
        if path.startswith(f"{PACKAGE}/") and path.endswith(".py"):
            dotted = path[len(PACKAGE) + 1 : -3].replace("/", ".")
            dotted = dotted.removesuffix("__init__").rstrip(".")
            parts = dotted.split(".") if dotted else []
            modules.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(modules)


def _import_problems(code: str, modules: frozenset[str]) -> list[str]:
    """Imports of the project's own package that name no module it has (they would fail at import)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []  # the screener reports it
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted_names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            dotted_names = [node.module]
        else:
            continue
        for dotted in dotted_names:
            top, _, rest = dotted.partition(".")
            if top == PACKAGE and rest and rest not in modules:
                problems.append(f"line {node.lineno}: imports {dotted}, which the project does not have")
    return problems


def _finding_dict(path: str, finding: Finding) -> dict[str, Any]:
    return {
        "path": path,
        "rule": finding.rule,
        "message": finding.message,
        "line": finding.line,
        "blocking": finding.blocking,
    }


def project_validate(*, files: Mapping[str, str], env_dir: Path, limits: SandboxLimits | None = None) -> dict[str, Any]:
    """The validation of one round, as stored: per-file verdicts, every finding, the import check, the
    tests (or why they did not run) and the score the rounds are ranked by."""
    modules = package_modules(files)
    policy = backend_policy(PACKAGE, modules)
    python = {path: code for path, code in files.items() if path.endswith(".py")}
    per_file: dict[str, list[Finding]] = {
        path: list(screen_code(code, use_bandit=False, use_lint=False, policy=policy).findings)
        for path, code in python.items()
    }
    with tempfile.TemporaryDirectory(prefix="orchestrator-backend-") as workdir:
        root = Path(workdir)
        for path, code in python.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        tool_findings = run_tools_tree(root)
    tool_notes = [_finding_dict("", f) for f in tool_findings.pop("", [])]
    screener: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    for path in sorted(python):
        result = screen_result(per_file[path] + tool_findings.get(path, []))
        screener[path] = {"passed": result.passed, "score": result.score}
        findings += [_finding_dict(path, f) for f in result.findings]
    imports = [f"{path}: {problem}" for path in sorted(python) for problem in _import_problems(python[path], modules)]
    screener_passed = all(entry["passed"] for entry in screener.values()) and bool(python)
    has_tests = any(p.startswith("tests/") and p.rsplit("/", 1)[-1].startswith("test_") for p in python)
    if not screener_passed:
        tests: dict[str, Any] = {"ran": False, "reason": "not run: the screener rejected the project (see findings)"}
    elif not has_tests:
        tests = {"ran": False, "reason": "not run: the project has no tests (tests/test_*.py)"}
    else:
        tests = sandbox_run_tests(files=files, env_dir=env_dir, limits=limits).as_dict()
    blocking = sum(1 for f in findings if f["blocking"])
    score = {
        "screener_passed": screener_passed,
        "blocking": blocking,
        "findings": len(findings),
        "imports": len(imports),
        "tests_ran": bool(tests.get("ran")),
        "tests_passed": int(tests.get("passed", 0)),
        "tests_failed": int(tests.get("failed", 0)),
        "tests_errors": int(tests.get("errors", 0)),
        "all_passed": bool(tests.get("all_passed")) and screener_passed,
    }
    return {
        "screener": screener,
        "findings": findings,
        # ruff's findings again on their own: style, which lowers the score but never blocks.
        "lint": [f for f in findings if f["rule"].startswith("lint:")],
        "tool_notes": tool_notes,
        "imports": imports,
        "tests": tests,
        "score": score,
    }


def round_rank(score: Mapping[str, Any]) -> tuple[int, int, int, int, int, int]:
    """Higher is better: safe first, then all tests green, more passing, fewer failing, fewer findings."""
    return (
        int(score["screener_passed"]),
        int(score["all_passed"]),
        score["tests_passed"],
        -(score["tests_failed"] + score["tests_errors"]),
        -score["blocking"],
        -(score["findings"] + score["imports"]),
    )
