"""The backend generator's pipeline, run by the Celery task: plan (unless given), layout, the model's files,
validation, repair rounds; the best round is kept, not the last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from codegen.backends.answer import files_from_answer
from codegen.backends.layout import layout_render
from codegen.backends.plan import BackendPlan, PlanError, plan_from_answer, plan_validate
from codegen.backends.validation import project_validate, round_rank
from codegen.models import BackendRun, BackendStatus
from codegen.sandbox import SandboxLimits, sandbox_unavailable_reason
from codegen.services import CodeModelClient, CompletionServiceClient, choose_model
from models_mgmt.models import AIModel
from orchestrator import observability
from orchestrator.errors import ServiceError
from orchestrator.text import unstorable_reason
from usage.models import RequestKind

SYSTEM_PROMPT = (
    "You are a careful Python developer who writes FastAPI backends with SQLAlchemy 2 and Pydantic v2. Follow "
    "the requested answer format exactly. Never read or write files, run processes, open sockets, or use os, "
    "sys, subprocess, eval or exec."
)
MIN_REQUIREMENTS_CHARS = 10
MAX_ROUNDS = 5
# How much of a failing test's output goes back to the model.
REPAIR_OUTPUT_CHARS = 1500

_prompts = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "prompts"),
    undefined=StrictUndefined,
    autoescape=False,  # prompts for a model, not HTML
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


class BackendError(ServiceError):
    pass


def requirements_check(text: object) -> str:
    if not isinstance(text, str) or len(text.strip()) < MIN_REQUIREMENTS_CHARS:
        raise BackendError(f"The requirements are too short: at least {MIN_REQUIREMENTS_CHARS} characters.")
    if len(text) > settings.CODEGEN_PROMPT_MAX_CHARS:
        raise BackendError(f"The requirements are too long: at most {settings.CODEGEN_PROMPT_MAX_CHARS} characters.")
    if reason := unstorable_reason(text):
        raise BackendError(f"The requirements contain {reason}.")
    return text.strip()


def plan_prompt(requirements: str) -> str:
    return _prompts.get_template("backend_plan.md.j2").render(requirements=requirements)


def model_client(
    user: AbstractBaseUser, run_model: AIModel | None, model_ref: str | None = None
) -> CompletionServiceClient:
    model = run_model or choose_model(user=user, ref=model_ref)
    return CompletionServiceClient(user=user, model=model, system=SYSTEM_PROMPT, kind=RequestKind.BACKEND)


def plan_of_answer(answer: str) -> BackendPlan:
    try:
        return plan_from_answer(answer)
    except PlanError as exc:
        raise BackendError(f"The model's plan is unusable: {exc}") from None


def _set_status(run: BackendRun, status: str) -> None:
    run.status = status
    run.save(update_fields=["status", "plan", "rounds", "best_round"])


def _repair_prompt(number: int, files: dict[str, str], validation: dict[str, Any]) -> str:
    findings = [f for f in validation["findings"] if not f["rule"].endswith("-unavailable")]
    tests = validation["tests"]
    failing = [
        {**case, "output": case["output"][:REPAIR_OUTPUT_CHARS]}
        for case in tests.get("cases", [])
        if case["outcome"] in {"failed", "error"}
    ]
    tests_note = tests.get("stopped") or ("" if tests.get("ran") else tests.get("reason", ""))
    concerned = {f["path"] for f in findings if f["path"]}
    concerned |= {path for path in files if any(path in problem for problem in validation["imports"])}
    if failing or tests.get("stopped") or (not tests.get("ran") and validation["score"]["screener_passed"]):
        # Failing tests concern both sides: the tests and the endpoints they call.
        concerned |= {p for p in files if p.startswith(("app/routers/", "tests/test_"))}
    shown = {path: files[path] for path in sorted(concerned) if path in files}
    return _prompts.get_template("backend_repair.md.j2").render(
        number=number,
        findings=findings,
        imports=validation["imports"],
        tests_note=tests_note,
        failing=failing,
        files=shown,
    )


def _failure_reason(best: dict[str, Any]) -> str:
    validation, number = best["validation"], best["number"]
    if not validation["score"]["screener_passed"]:
        blocking = [f for f in validation["findings"] if f["blocking"]]
        named = "; ".join(
            f"{f['path']}{':' + str(f['line']) if f['line'] else ''} {f['rule']}: {f['message']}" for f in blocking[:5]
        )
        return f"Round {number}, the best, was rejected by the screener: {named or 'no Python files'}"
    tests = validation["tests"]
    if not tests.get("ran"):
        return f"Round {number}, the best: the tests did not run ({tests.get('reason', 'unknown reason')})."
    if tests.get("stopped"):
        return f"Round {number}, the best: the sandbox stopped the tests at its {tests['stopped']}."
    bad = [c["name"] for c in tests.get("cases", []) if c["outcome"] in {"failed", "error"}]
    if not tests.get("passed") and not bad:
        return f"Round {number}, the best: pytest collected no tests."
    return f"Round {number}, the best: {len(bad)} test(s) failed: {', '.join(bad[:5])}"


def _round(number: int, files: dict[str, str], validation: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    return {
        "number": number,
        "files": files,
        "changed": changed,
        "validation": validation,
        "score": validation["score"],
    }


def _best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    # max() keeps the first of equals: an earlier round wins a tie.
    return max(rounds, key=lambda r: round_rank(r["score"]))


def backend_run_execute(
    *, run_id: int, client: CodeModelClient | None = None, limits: SandboxLimits | None = None
) -> BackendRun:
    """The whole pipeline. Any failure ends the run `failed` with the reason; rounds already made stay."""
    run = BackendRun.objects.select_related("owner", "model__provider").get(pk=run_id)
    if run.status != BackendStatus.QUEUED:
        return run
    run.started_at = timezone.now()
    env_dir = settings.CODEGEN_SANDBOX_ENV
    limits = limits or SandboxLimits(wall_seconds=settings.CODEGEN_SANDBOX_WALL_SECONDS)
    with observability.span("codegen.backend", run_id=run.pk, user_id=run.owner_id):
        try:
            client = client or model_client(run.owner, run.model)
            if run.plan is None:
                _set_status(run, BackendStatus.PLANNING)
                run.plan = plan_of_answer(client.generate(plan_prompt(run.requirements))).model_dump()
            plan = plan_validate(run.plan)
            _set_status(run, BackendStatus.GENERATING)
            layout = layout_render(plan=plan, requirements=run.requirements)
            prompt = _prompts.get_template("backend_code.md.j2").render(
                plan_json=json.dumps(run.plan, indent=2),
                layout={p: c for p, c in layout.items() if p.endswith(".py") and c},
            )
            answer = files_from_answer(client.generate(prompt))
            if not answer.files:
                raise BackendError(
                    "The model's answer held no files (expected a `### <path>` line followed by a fenced block"
                    " for each)." + (f" Refused: {'; '.join(answer.refused[:5])}" if answer.refused else "")
                )
            files = {**layout, **answer.files}
            for number in range(1, run.max_rounds + 1):
                _set_status(run, BackendStatus.VALIDATING)
                validation = project_validate(files=files, env_dir=env_dir, limits=limits)
                validation["refused_files"] = answer.refused
                run.rounds = [*run.rounds, _round(number, files, validation, sorted(answer.files))]
                run.best_round = _best(run.rounds)["number"]
                run.save(update_fields=["rounds", "best_round"])
                if validation["score"]["all_passed"] or number == run.max_rounds:
                    break
                if validation["score"]["screener_passed"] and sandbox_unavailable_reason(env_dir=env_dir):
                    break  # no repair can make the sandbox appear
                _set_status(run, BackendStatus.REPAIRING)
                answer = files_from_answer(client.generate(_repair_prompt(number, files, validation)))
                if not answer.files:
                    break  # the same files again would score the same
                files = {**files, **answer.files}
            best = _best(run.rounds)
            run.answered_by = getattr(client, "answered_by", "") or ""
            if best["score"]["all_passed"]:
                run.status = BackendStatus.FINISHED
            else:
                run.status, run.error = BackendStatus.FAILED, _failure_reason(best)
        except ServiceError as exc:  # the model call, the model choice, the plan: said to the user as is
            run.status, run.error = BackendStatus.FAILED, exc.message
        except PlanError as exc:
            run.status, run.error = BackendStatus.FAILED, str(exc)
        except Exception:
            # A bug must not leave the run "validating" forever; the details go to the log, not the page.
            observability.log.exception("codegen.backend.crashed", run_id=run.pk)
            run.status, run.error = BackendStatus.FAILED, "The run failed unexpectedly; the server log has the details."
        run.finished_at = timezone.now()
        run.save()
    observability.log.info("codegen.backend", run_id=run.pk, outcome=run.status, rounds=len(run.rounds))
    return run
