"""Backend-generator runs: plan, layout, code, validate, repair; the best round is kept."""

from __future__ import annotations

import io
import json
import zipfile
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
from codegen.services import CodegenError, CodeModelClient, CompletionServiceClient, choose_model
from orchestrator import observability
from orchestrator.celery import app as celery_app
from orchestrator.errors import ServiceError

SYSTEM_PROMPT = (
    "You are a careful Python developer who writes FastAPI backends with SQLAlchemy 2 and Pydantic v2. Follow "
    "the requested answer format exactly. Never read or write files, run processes, open sockets, or use os, "
    "sys, subprocess, eval or exec."
)
BACKEND_TASK = "codegen.backend_run"
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


class ArchiveRefused(ServiceError):
    status_code = 409

    def __init__(self, message: str, findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


def _requirements(text: object) -> str:
    if not isinstance(text, str) or len(text.strip()) < MIN_REQUIREMENTS_CHARS:
        raise BackendError(f"The requirements are too short: at least {MIN_REQUIREMENTS_CHARS} characters.")
    if len(text) > settings.CODEGEN_PROMPT_MAX_CHARS:
        raise BackendError(f"The requirements are too long: at most {settings.CODEGEN_PROMPT_MAX_CHARS} characters.")
    return text.strip()


def _plan_prompt(requirements: str) -> str:
    return _prompts.get_template("backend_plan.md.j2").render(requirements=requirements)


def _client(user: AbstractBaseUser, run_model: Any, model_ref: str | None = None) -> CompletionServiceClient:
    model = run_model or choose_model(user=user, ref=model_ref)
    return CompletionServiceClient(user=user, model=model, system=SYSTEM_PROMPT)


def _plan_of(answer: str) -> BackendPlan:
    try:
        return plan_from_answer(answer)
    except PlanError as exc:
        raise BackendError(f"The model's plan is unusable: {exc}") from None


def backend_plan_draft(
    *, user: AbstractBaseUser, requirements: object, model_ref: str | None = None, client: CodeModelClient | None = None
) -> dict[str, Any]:
    """Ask the model for a plan only (the page shows it for editing before a run starts)."""
    text = _requirements(requirements)
    client = client or _client(user, None, model_ref)
    return _plan_of(client.generate(_plan_prompt(text))).model_dump()


def backend_run_create(
    *,
    owner: AbstractBaseUser,
    requirements: object,
    model_ref: str | None = None,
    plan: object = None,
    max_rounds: int = 3,
) -> BackendRun:
    text = _requirements(requirements)
    if not 1 <= max_rounds <= MAX_ROUNDS:
        raise BackendError(f"max_rounds must be between 1 and {MAX_ROUNDS}.")
    checked = None
    if plan is not None:
        try:
            checked = plan_validate(plan).model_dump()
        except PlanError as exc:
            raise BackendError(str(exc)) from None
    model = choose_model(user=owner, ref=model_ref) if model_ref else None
    run = BackendRun.objects.create(owner=owner, requirements=text, model=model, plan=checked, max_rounds=max_rounds)
    # By name from the registry: codegen.tasks imports this module, so importing it here would be a cycle.
    celery_app.tasks[BACKEND_TASK].delay(run.pk)
    return run


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
            client = client or _client(run.owner, run.model)
            if run.plan is None:
                _set_status(run, BackendStatus.PLANNING)
                run.plan = _plan_of(client.generate(_plan_prompt(run.requirements))).model_dump()
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
        except (BackendError, CodegenError) as exc:
            run.status, run.error = BackendStatus.FAILED, exc.message
        except PlanError as exc:
            run.status, run.error = BackendStatus.FAILED, str(exc)
        run.finished_at = timezone.now()
        run.save()
    observability.log.info("codegen.backend", run_id=run.pk, outcome=run.status, rounds=len(run.rounds))
    return run


def backend_run_best(run: BackendRun) -> dict[str, Any] | None:
    return next((r for r in run.rounds if r["number"] == run.best_round), None)


def backend_run_archive(*, run: BackendRun) -> tuple[str, bytes]:
    """The best round as a zip (file name, bytes); only when the screener passed every file of it."""
    best = backend_run_best(run)
    if best is None:
        raise ArchiveRefused("This run has no round to download (yet).")
    if not best["score"]["screener_passed"]:
        blocking = [f for f in best["validation"]["findings"] if f["blocking"]]
        raise ArchiveRefused(
            f"Round {best['number']} was rejected by the screener; it cannot be downloaded.", findings=blocking
        )
    name = (run.plan or {}).get("project_name") or f"backend-{run.pk}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in sorted(best["files"].items()):
            archive.writestr(f"{name}/{path}", content)
    return f"{name}.zip", buffer.getvalue()
