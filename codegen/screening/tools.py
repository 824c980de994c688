"""The external tools: Bandit (a second opinion on safety) and ruff (style). Both read the code on
stdin and only parse it; neither can let through what the allowlist rejects."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from codegen.screening.scoring import Finding

TOOL_TIMEOUT_SECONDS = 20


def tool_command(name: str) -> list[str] | None:
    """The tool installed next to this interpreter (the venv's bin/), else `python -m tool`."""
    executable = Path(sys.executable).with_name(name)
    if executable.exists():
        return [str(executable)]
    if importlib.util.find_spec(name) is not None:
        return [sys.executable, "-m", name]
    return None


def run_tool(command: list[str], code: str) -> str:
    # A fixed argv; the code goes in on stdin and the tools only parse it.
    completed = subprocess.run(
        command,
        input=code,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return completed.stdout


def run_bandit(code: str) -> list[Finding]:
    command = tool_command("bandit")
    if command is None:
        message = "bandit is not installed; only the allowlist judged this code"
        return [Finding("bandit-unavailable", message, None, False)]
    try:
        report = json.loads(run_tool([*command, "-q", "--ignore-nosec", "-f", "json", "-"], code))
        results = report["results"]
        errors = report.get("errors") or []
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as error:
        return [Finding("bandit-unavailable", f"bandit could not run: {error}", None, False)]
    findings: list[Finding] = []
    if errors:
        findings.append(Finding("bandit-unavailable", f"bandit reported errors: {errors}", None, False))
    return findings + [_bandit_finding(result) for result in results if result.get("test_id") != "B101"]


def _bandit_finding(result: dict[str, object]) -> Finding:
    # (B101, assert, is left out by the callers: it is how pytest tests assert.)
    severity = str(result.get("issue_severity", "")).upper()
    line = result.get("line_number")
    return Finding(
        f"bandit:{result.get('test_id', 'B000')}",
        f"{result.get('issue_text', '')} (severity {severity.lower()})",
        line if isinstance(line, int) else None,
        severity in {"MEDIUM", "HIGH"},
    )


def run_ruff(code: str) -> list[Finding]:
    command = tool_command("ruff")
    if command is None:
        return [Finding("lint-unavailable", "ruff is not installed; the code was not linted", None, False)]
    argv = [*command, "check", "--output-format", "json", "--no-cache", "--isolated", "--select", "E,F,W,B,UP"]
    try:
        items = json.loads(run_tool([*argv, "--stdin-filename", "generated.py", "-"], code) or "[]")
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return [Finding("lint-unavailable", f"ruff could not run: {error}", None, False)]
    return [_ruff_finding(item) for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _ruff_finding(item: dict[str, object]) -> Finding:
    location = item.get("location")
    row = location.get("row") if isinstance(location, dict) else None
    return Finding(f"lint:{item.get('code') or 'syntax'}", str(item.get("message", "")), row, False)


def _relative(root: Path, filename: object) -> str:
    try:
        return Path(str(filename)).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(filename)


def run_tools_tree(root: Path) -> dict[str, list[Finding]]:
    """Bandit and ruff over a whole project directory in one run each (a project of many files would
    otherwise start two processes per file): findings by path relative to `root`. A tool that cannot run
    is reported under the key ""."""
    found: dict[str, list[Finding]] = {}
    bandit, ruff = tool_command("bandit"), tool_command("ruff")
    if bandit is None or ruff is None:
        found[""] = [
            Finding("bandit-unavailable" if bandit is None else "lint-unavailable", "not installed", None, False)
        ]
    if bandit is not None:
        try:
            report = json.loads(run_tool([*bandit, "-q", "--ignore-nosec", "-f", "json", "-r", str(root)], ""))
            for result in report["results"]:
                if result.get("test_id") != "B101":
                    found.setdefault(_relative(root, result.get("filename")), []).append(_bandit_finding(result))
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as error:
            found.setdefault("", []).append(
                Finding("bandit-unavailable", f"bandit could not run: {error}", None, False)
            )
    if ruff is not None:
        argv = [*ruff, "check", "--output-format", "json", "--no-cache", "--isolated", "--select", "E,F,W,B,UP"]
        try:
            items = json.loads(run_tool([*argv, str(root)], "") or "[]")
            for item in items if isinstance(items, list) else []:
                found.setdefault(_relative(root, item.get("filename")), []).append(_ruff_finding(item))
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            found.setdefault("", []).append(Finding("lint-unavailable", f"ruff could not run: {error}", None, False))
    return found
