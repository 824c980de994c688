import json
import time

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from accounts.services import api_token_authenticate
from codegen import services
from codegen.models import CodegenRun, RunStatus
from models_mgmt.services import model_list_with_status
from orchestrator import observability
from orchestrator.errors import ServiceError


def _bearer_user(request: HttpRequest) -> object | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return api_token_authenticate(raw=token.strip()) if scheme.lower() == "bearer" and token.strip() else None


def _detail(message: str, status: int, **extra: object) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=status)


@csrf_exempt  # bearer-token API: no cookie, so no cross-site request to forge
async def generate(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return _detail("Use POST.", 405)
    user = await sync_to_async(_bearer_user)(request)
    if user is None:
        response = _detail("Missing or invalid API token: send 'Authorization: Bearer <token>'.", 401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return _detail("The body is not JSON.", 400)
    if not isinstance(body, dict):
        return _detail('The body must be a JSON object: {"prompt": "...", "model": "..."}.', 400)
    started = time.monotonic()
    failure: ServiceError | None = None
    with observability.span("codegen.generate", user_id=user.pk) as current:
        trace_id = observability.trace_id_of(current)
        try:
            generated = await services.codegen_generate(
                user=user, prompt=body.get("prompt"), model_ref=body.get("model")
            )
            response = JsonResponse(
                {
                    "code": generated.code,
                    "validation_results": generated.screening.as_dict(),
                    "trace_id": trace_id,
                    "metrics": {
                        "latency_seconds": round(generated.latency_seconds, 3),
                        "quota_remaining": generated.quota_remaining,
                    },
                }
            )
            response["X-Orchestrator-Model"] = generated.model
        except services.RateLimited as exc:
            failure = exc
            response = _detail(exc.message, 429, trace_id=trace_id)
            response["Retry-After"] = str(exc.retry_after)
        except services.CodeRejected as exc:
            failure = exc
            validation = exc.screening.as_dict()
            response = _detail(exc.message, 400, validation_results=validation, model=exc.model, trace_id=trace_id)
            response["X-Orchestrator-Model"] = exc.model
        except ServiceError as exc:
            failure = exc
            response = _detail(exc.message, exc.status_code, trace_id=trace_id)
    elapsed = time.monotonic() - started
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    observability.log.info(
        "codegen.generate",
        trace_id=trace_id,
        user_id=user.pk,
        model=body.get("model") if isinstance(body.get("model"), str) else None,
        outcome=services.codegen_outcome(failure),
        latency_ms=int(elapsed * 1000),
        **observability.prompt_fingerprint(prompt),
    )
    response["X-Trace-Id"] = trace_id
    return response


# --- the page -------------------------------------------------------------------------------------------


def _highlighted(code: str) -> str:
    # Pygments escapes the code itself; nothing of the model's answer reaches the page unescaped.
    return mark_safe(highlight(code, PythonLexer(), HtmlFormatter(nowrap=True)))  # noqa: S308


def _page(request: HttpRequest, **context: object) -> HttpResponse:
    statuses = [s for s in model_list_with_status(user=request.user) if s.model.can_chat and s.model.active]
    return render(request, "codegen/codegen.html", {"statuses": statuses, **_runs_context(request), **context})


def _runs_context(request: HttpRequest) -> dict[str, object]:
    runs = list(CodegenRun.objects.filter(owner=request.user).defer("spec")[:20])
    return {"runs": runs, "runs_busy": any(r.status in (RunStatus.QUEUED, RunStatus.RUNNING) for r in runs)}


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    if request.htmx and request.GET.get("part") == "runs":
        return render(request, "codegen/_runs.html", _runs_context(request))
    return _page(request)


@login_required
@require_POST
async def page_generate(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    prompt, model = request.POST.get("prompt", ""), request.POST.get("model") or None
    context: dict[str, object] = {"prompt": prompt, "selected": model}
    try:
        generated = await services.codegen_generate(user=user, prompt=prompt, model_ref=model)
        context.update(
            code=_highlighted(generated.code),
            raw_code=generated.code,
            screening=generated.screening,
            answered_by=generated.model,
            latency=round(generated.latency_seconds, 2),
        )
    except services.CodeRejected as exc:
        context.update(error=exc.message, screening=exc.screening, answered_by=exc.model)
    except ServiceError as exc:
        context.update(error=exc.message)
    return await sync_to_async(_page)(request, **context)


@login_required
@require_POST
def page_run(request: HttpRequest) -> HttpResponse:
    try:
        run = services.codegen_run_create(
            owner=request.user,
            spec=request.POST.get("spec", ""),
            max_tests_per_endpoint=min(10, max(1, int(request.POST.get("max_tests_per_endpoint") or 3))),
        )
    except (ServiceError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return redirect("codegen")
    messages.success(request, f"Run {run.pk} queued: {run.title}.")
    return redirect("codegen")
