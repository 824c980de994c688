"""Backend-generator runs as the API and the page see them: draft a plan, start a run, download the best
round. The pipeline itself is in `pipeline.py`, run by the Celery task."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from codegen.backends.pipeline import (
    MAX_ROUNDS,
    BackendError,
    model_client,
    plan_of_answer,
    plan_prompt,
    requirements_check,
)
from codegen.backends.plan import PlanError, plan_validate
from codegen.models import BackendRun
from codegen.services import CodeModelClient, choose_model
from codegen.tasks import backend_run_task
from orchestrator.errors import ServiceError


class ArchiveRefused(ServiceError):
    status_code = 409

    def __init__(self, message: str, findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


def backend_plan_draft(
    *, user: AbstractBaseUser, requirements: object, model_ref: str | None = None, client: CodeModelClient | None = None
) -> dict[str, Any]:
    """Ask the model for a plan only (the page shows it for editing before a run starts)."""
    text = requirements_check(requirements)
    client = client or model_client(user, None, model_ref)
    return plan_of_answer(client.generate(plan_prompt(text))).model_dump()


def backend_run_create(
    *,
    owner: AbstractBaseUser,
    requirements: object,
    model_ref: str | None = None,
    plan: object = None,
    max_rounds: int = 3,
) -> BackendRun:
    text = requirements_check(requirements)
    if not 1 <= max_rounds <= MAX_ROUNDS:
        raise BackendError(f"max_rounds must be between 1 and {MAX_ROUNDS}.")
    checked = None
    if plan is not None:
        try:
            checked = plan_validate(plan).model_dump()
        except PlanError as exc:
            raise BackendError(str(exc)) from None
    model = choose_model(user=owner, ref=model_ref, named=False) if model_ref else None
    run = BackendRun.objects.create(owner=owner, requirements=text, model=model, plan=checked, max_rounds=max_rounds)
    backend_run_task.delay(run.pk)
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
