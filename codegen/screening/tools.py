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
    for result in results:
        test_id = str(result.get("test_id", "B000"))
        if test_id == "B101":
            continue  # assert is how pytest tests assert
        severity = str(result.get("issue_severity", "")).upper()
        findings.append(
            Finding(
                f"bandit:{test_id}",
                f"{result.get('issue_text', '')} (severity {severity.lower()})",
                result.get("line_number"),
                severity in {"MEDIUM", "HIGH"},
            )
        )
    return findings


def run_ruff(code: str) -> list[Finding]:
    command = tool_command("ruff")
    if command is None:
        return [Finding("lint-unavailable", "ruff is not installed; the code was not linted", None, False)]
    argv = [*command, "check", "--output-format", "json", "--no-cache", "--isolated", "--select", "E,F,W,B,UP"]
    try:
        items = json.loads(run_tool([*argv, "--stdin-filename", "generated.py", "-"], code) or "[]")
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return [Finding("lint-unavailable", f"ruff could not run: {error}", None, False)]
    findings: list[Finding] = []
    for item in items if isinstance(items, list) else []:
        location = item.get("location") or {}
        findings.append(
            Finding(f"lint:{item.get('code') or 'syntax'}", str(item.get("message", "")), location.get("row"), False)
        )
    return findings
