"""The backend generator's pages: requirements and model in, a plan to read and edit, then a run page
that follows the pipeline step by step (htmx polling) and shows every round's files, findings and tests."""

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from codegen.backends.services import backend_plan_draft, backend_run_best, backend_run_create
from codegen.models import BackendRun, BackendStatus
from codegen.sandbox import sandbox_unavailable_reason
from models_mgmt.services import model_list_with_status
from orchestrator.errors import ServiceError

STEPS = [
    (BackendStatus.PLANNING, "Plan"),
    (BackendStatus.GENERATING, "Code"),
    (BackendStatus.VALIDATING, "Validate"),
    (BackendStatus.REPAIRING, "Repair"),
]
TERMINAL = {BackendStatus.FINISHED, BackendStatus.FAILED}


def _highlighted(path: str, code: str) -> str:
    try:
        lexer = get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    # Pygments escapes the text itself; nothing the model wrote reaches the page unescaped.
    return mark_safe(highlight(code, lexer, HtmlFormatter(nowrap=True)))  # noqa: S308


def _page(request: HttpRequest, status: int = 200, **context: object) -> HttpResponse:
    statuses = [s for s in model_list_with_status(user=request.user) if s.model.can_chat and s.model.active]
    runs = BackendRun.objects.filter(owner=request.user)[:20]
    sandbox = sandbox_unavailable_reason(env_dir=settings.CODEGEN_SANDBOX_ENV)
    context = {"statuses": statuses, "runs": runs, "sandbox_reason": sandbox, **context}
    return render(request, "codegen/backends.html", context, status=status)


@login_required
@require_GET
def backends_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def backends_plan(request: HttpRequest) -> HttpResponse:
    requirements, model = request.POST.get("requirements", ""), request.POST.get("model") or None
    try:
        plan = backend_plan_draft(user=request.user, requirements=requirements, model_ref=model)
    except ServiceError as exc:
        return _page(request, exc.status_code, requirements=requirements, selected=model, error=exc.message)
    return _page(request, requirements=requirements, selected=model, plan_json=json.dumps(plan, indent=2))


@login_required
@require_POST
def backends_start(request: HttpRequest) -> HttpResponse:
    post = request.POST
    requirements, model, plan = post.get("requirements", ""), post.get("model") or None, post.get("plan", "")
    try:
        run = backend_run_create(
            owner=request.user,
            requirements=requirements,
            model_ref=model,
            plan=plan if plan.strip() else None,
            max_rounds=int(post.get("max_rounds") or 3),
        )
    except (ServiceError, ValueError) as exc:
        # The edited plan comes back as typed, so nothing is lost to a typo.
        error = getattr(exc, "message", "max_rounds must be a number between 1 and 5.")
        status = getattr(exc, "status_code", 400)
        return _page(request, status, requirements=requirements, selected=model, plan_json=plan, error=error)
    return redirect("backend-run", run_id=run.pk)


def _steps(run: BackendRun) -> list[dict[str, str]]:
    order = [status for status, _ in STEPS]
    current = order.index(run.status) if run.status in order else (len(order) if run.status in TERMINAL else -1)
    steps = []
    for index, (status, label) in enumerate(STEPS):
        state = "done" if index < current else "current" if index == current else "todo"
        if status == BackendStatus.PLANNING and run.status not in order and run.rounds and state == "todo":
            state = "done"
        steps.append({"label": label, "state": state})
    return steps


def _round_view(entry: dict[str, Any], best: int | None) -> dict[str, Any]:
    validation = entry["validation"]
    findings: dict[str, list[dict[str, Any]]] = {}
    for finding in validation["findings"]:
        findings.setdefault(finding["path"], []).append(finding)
    files = [
        {
            "path": path,
            "lines": len(content.splitlines()),
            "depth": path.count("/"),
            "code": _highlighted(path, content),
            "findings": findings.get(path, []),
            "blocking": any(f["blocking"] for f in findings.get(path, [])),
        }
        for path, content in sorted(entry["files"].items())
    ]
    return {**entry, "is_best": entry["number"] == best, "file_views": files, "tests": validation["tests"]}


@login_required
@require_GET
def backend_run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(BackendRun, pk=run_id, owner=request.user)
    best = backend_run_best(run)
    context = {
        "run": run,
        "busy": run.status not in TERMINAL,
        "steps": _steps(run),
        "rounds": [_round_view(r, run.best_round) for r in run.rounds],
        "archive": bool(best and best["score"]["screener_passed"]),
        "project_name": (run.plan or {}).get("project_name", ""),
        "plan_json": json.dumps(run.plan, indent=2) if run.plan else "",
    }
    template = "codegen/_backend_run.html" if request.htmx else "codegen/backend_run.html"
    return render(request, template, context)
