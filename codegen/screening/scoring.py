"""Findings and how they add up to a verdict and a score.

A blocking finding rejects the code (score 0); non-blocking ones (lint, Bandit's low-severity notes)
only lower the score, down to a floor, so style never decides whether code is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

LINT_PENALTY = 0.05
LINT_SCORE_FLOOR = 0.5


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    line: int | None
    blocking: bool


@dataclass(frozen=True)
class ScreenResult:
    passed: bool
    score: float
    findings: list[Finding]

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "score": self.score,
            "issues_count": len(self.findings),
            "issues": [{"rule": f.rule, "message": f.message, "line": f.line} for f in self.findings],
        }


# Tools that could not run are reported, but do not cost the code points.
UNAVAILABLE_RULES = frozenset({"bandit-unavailable", "lint-unavailable"})


def screen_result(findings: list[Finding]) -> ScreenResult:
    unique = list(dict.fromkeys(findings))
    unique.sort(key=lambda f: (not f.blocking, f.line or 0, f.rule))
    passed = not any(f.blocking for f in unique)
    if not passed:
        score = 0.0
    else:
        penalised = sum(1 for f in unique if f.rule not in UNAVAILABLE_RULES)
        score = round(max(LINT_SCORE_FLOOR, 1.0 - LINT_PENALTY * penalised), 4)
    return ScreenResult(passed=passed, score=score, findings=unique)
