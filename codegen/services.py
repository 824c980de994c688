"""Code generation: ask a model (through the unified completion service) for Python, screen what comes
back, and never run it. Also test-generation runs: an OpenAPI document in, a pytest module out."""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils import timezone
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from codegen.models import CodegenRun, RunStatus
from codegen.screening import ScreenResult, screen_code
from codegen.specs import SpecError, spec_parse, spec_text_of
from completions.services import CompletionResult, completion_collect
from models_mgmt.models import AIModel
from models_mgmt.services import ModelNotFound, Status, model_get, model_list_with_status, model_resolve
from orchestrator import observability
from orchestrator.celery import app as celery_app
from orchestrator.errors import ServiceError
from orchestrator.failures import FailureCode, failure_http_status
from orchestrator.text import unstorable_reason
from providers.adapters import ChatParams
from usage.models import RequestKind

SYSTEM_PROMPT = (
    "You write Python 3.11 code only. Answer with one ```python fenced block and nothing else: no prose, no "
    "shell commands. Use only the standard library's safe modules (typing, dataclasses, datetime, math, re, "
    "json, enum, decimal, uuid, collections, itertools, functools) and pydantic, fastapi, pytest or httpx. "
    "Never read or write files, run processes, open sockets, or use eval/exec."
)
# About four characters a token; half the context is left for the answer.
CHARS_PER_TOKEN = 4


class CodegenError(ServiceError):
    pass


class RateLimited(CodegenError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CodeRejected(CodegenError):
    def __init__(self, message: str, screening: ScreenResult, model: str = "") -> None:
        super().__init__(message)
        self.screening = screening
        self.model = model  # which model wrote the rejected code: worth knowing when choosing another


class UpstreamFailed(CodegenError):
    status_code = 502


class NoModelAvailable(CodegenError):
    status_code = 503


@dataclass(frozen=True)
class Generated:
    code: str
    screening: ScreenResult
    model: str
    latency_seconds: float
    quota_remaining: int
    parts: int


# --- small pieces --------------------------------------------------------------------------------------

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.S)


def extract_code(answer: str) -> str:
    """The code in a model's answer: the Python fenced blocks joined, else any fenced block, else the
    whole answer (a model that obeyed 'code only' and sent no fence)."""
    blocks = FENCE.findall(answer)
    python = [body for lang, body in blocks if lang.lower() in ("python", "py", "python3")]
    chosen = python or [body for _, body in blocks]
    return ("\n\n".join(b.strip("\n") for b in chosen) if chosen else answer.strip()) + "\n"


def rate_limit_take(*, user: AbstractBaseUser, units: int = 1) -> int:
    """Count `units` upstream calls (a request, each part of a chunked prompt, a test-generation run) in the
    user's current window; the units left. The counter lives in the cache, so with Redis every process
    shares it, and `incr` is atomic there (and under local memory's lock)."""
    window = settings.CODEGEN_RATE_WINDOW_SECONDS
    now = time.time()
    start = int(now // window * window)
    key = f"codegen:rate:{user.pk}:{start}"
    cache.add(key, 0, timeout=window + 5)
    used = cache.incr(key, units)
    if used > settings.CODEGEN_RATE_LIMIT:
        if units > 1:
            cache.decr(key, units)  # refused whole: what was left stays for a smaller request
        raise RateLimited(
            f"At most {settings.CODEGEN_RATE_LIMIT} code generations per {window} s; try again shortly.",
            retry_after=max(1, int(start + window - now + 0.999)),
        )
    return settings.CODEGEN_RATE_LIMIT - used


def validate_prompt(prompt: object) -> str:
    if not isinstance(prompt, str):
        raise CodegenError("'prompt' must be a string.")
    # Checked before the rate limit counts the request: a prompt that cannot be sent costs no quota.
    if reason := unstorable_reason(prompt):
        raise CodegenError(f"The prompt contains {reason}.")
    text = prompt.strip()
    if len(text) < settings.CODEGEN_PROMPT_MIN_CHARS:
        raise CodegenError(f"The prompt is too short: at least {settings.CODEGEN_PROMPT_MIN_CHARS} characters.")
    if len(text) > settings.CODEGEN_PROMPT_MAX_CHARS:
        raise CodegenError(f"The prompt is too long: at most {settings.CODEGEN_PROMPT_MAX_CHARS} characters.")
    return text


def validate_model_ref(ref: object) -> str | None:
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        raise CodegenError("'model' must be a string: '<provider>/<model id>' or a model's numeric id.")
    return ref


def choose_model(*, user: AbstractBaseUser, ref: str | None, named: bool = True) -> AIModel:
    """The model asked for; else CODEGEN_DEFAULT_MODEL; else the best usable chat model (loaded local,
    then cloud, then one that needs a load). `named`: a cloud model not listed yet may be named (it joins
    the registry once it answers); a run stored before it calls the model needs one that is registered."""
    find = model_resolve if named else model_get
    for candidate in (ref, settings.CODEGEN_DEFAULT_MODEL):
        if candidate:
            try:
                return find(ref=candidate, user=user)
            except ModelNotFound:
                if candidate == ref:
                    raise
    preference = {Status.LOADED: 0, Status.AVAILABLE: 1, Status.NOT_LOADED: 2}
    usable = [s for s in model_list_with_status(user=user) if s.status in preference and s.model.can_chat]
    if not usable:
        raise NoModelAvailable("No model is available for code generation: load a local model or add a key.")
    best = min(usable, key=lambda s: (preference[s.status], -s.model.priority, s.model.name.lower()))
    return best.model


def split_prompt(prompt: str, max_chars: int) -> list[str]:
    """Parts that each fit the model's context: split at paragraphs, then lines, never mid-line unless a
    single line is itself too long."""
    if len(prompt) <= max_chars:
        return [prompt]
    parts: list[str] = []
    current = ""
    for piece in re.split(r"(\n\s*\n)", prompt):
        while len(piece) > max_chars:
            cut = piece.rfind("\n", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if current:
                parts.append(current)
                current = ""
            parts.append(piece[:cut])
            piece = piece[cut:]
        if len(current) + len(piece) > max_chars and current.strip():
            parts.append(current)
            current = ""
        current += piece
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _prompt_budget(model: AIModel) -> int:
    context = model.context_length or settings.CODEGEN_ASSUMED_CONTEXT_TOKENS
    return max(1000, context * CHARS_PER_TOKEN // 2)


def _blocking(screening: ScreenResult) -> str:
    found = [f"line {f.line}: {f.message}" if f.line else f.message for f in screening.findings if f.blocking]
    return "; ".join(found[:10])


def _upstream_error(result: CompletionResult) -> CodegenError:
    failure = result.failure
    if failure is None:
        return UpstreamFailed("The model could not answer: unknown error")
    if failure.code is FailureCode.OVER_BUDGET and failure.budget is not None:
        return RateLimited(failure.message, retry_after=failure.budget.retry_after)
    message = f"The model could not answer: {failure.message}"
    if failure_http_status(failure.code, earlier=result.fallback_codes, partial=bool(result.text)) == 503:
        return NoModelAvailable(message)
    return UpstreamFailed(message)


# --- /llm-codegen/generate ------------------------------------------------------------------------------


def codegen_outcome(exc: BaseException | None) -> str:
    """The `outcome` label of llm_codegen_requests_total (and of the log line) for how a request ended."""
    if exc is None:
        return "ok"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, CodeRejected):
        return "rejected"
    if isinstance(exc, ServiceError) and exc.status_code < 500:
        return "invalid"
    return "upstream_failed"


async def codegen_generate(*, user: AbstractBaseUser, prompt: object, model_ref: object) -> Generated:
    """Generate and screen; every call, from the API or the page, is counted in llm_codegen_*."""
    started = time.monotonic()
    failure: BaseException | None = None
    try:
        return await _generate(user=user, prompt=prompt, model_ref=model_ref)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        observability.CODEGEN_REQUESTS.labels(codegen_outcome(failure)).inc()
        observability.CODEGEN_LATENCY.observe(time.monotonic() - started)


async def _generate(*, user: AbstractBaseUser, prompt: object, model_ref: object) -> Generated:
    started = time.monotonic()
    text = validate_prompt(prompt)
    ref = validate_model_ref(model_ref)
    remaining = await sync_to_async(rate_limit_take)(user=user)
    model = await sync_to_async(choose_model)(user=user, ref=ref)
    parts = split_prompt(text, _prompt_budget(model))
    if len(parts) > 1:
        # Every upstream call counts: the first part was counted above, the others count now, before any.
        remaining = await sync_to_async(rate_limit_take)(user=user, units=len(parts) - 1)
    codes: list[str] = []
    answered_by = model.ref
    for index, part in enumerate(parts, start=1):
        ask = part if len(parts) == 1 else f"Part {index} of {len(parts)} of a larger request:\n\n{part}"
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ask}]
        result = await completion_collect(
            user=user, model=model, messages=messages, params=ChatParams(), kind=RequestKind.CODEGEN
        )
        if not result.ok:
            raise _upstream_error(result)
        answered_by = result.model or answered_by
        codes.append(extract_code(result.text))
    code = "\n\n".join(c.strip("\n") for c in codes) + "\n"
    screening = await sync_to_async(screen_code)(code)
    if not screening.passed:
        raise CodeRejected(
            f"The code {answered_by} wrote was rejected by the screener: " + _blocking(screening),
            screening,
            answered_by,
        )
    return Generated(code, screening, answered_by, time.monotonic() - started, remaining, len(parts))


# --- test-generation runs -------------------------------------------------------------------------------


class CodeModelClient(Protocol):
    """What a run needs from a model; pluggable, so a run can be driven by something other than the
    completion service (another service, a recorded answer in a test)."""

    def generate(self, prompt: str) -> str: ...

    async def agenerate(self, prompt: str) -> str: ...


class CompletionServiceClient:
    """The default client: the unified completion service, with its fallback and loading."""

    def __init__(
        self, *, user: AbstractBaseUser, model: AIModel, system: str = SYSTEM_PROMPT, kind: str = RequestKind.TESTGEN
    ) -> None:
        self.user, self.model, self.system, self.kind = user, model, system, kind
        self.answered_by = ""

    async def agenerate(self, prompt: str) -> str:
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]
        result = await completion_collect(
            user=self.user, model=self.model, messages=messages, params=ChatParams(), kind=self.kind
        )
        if not result.ok:
            raise _upstream_error(result)
        self.answered_by = result.model or self.model.ref
        return result.text

    def generate(self, prompt: str) -> str:
        return async_to_sync(self.agenerate)(prompt)


def parse_spec(raw: object) -> dict[str, Any]:
    """An OpenAPI document given as an object, JSON text or YAML text (limits and loader: codegen/specs.py)."""
    try:
        return spec_parse(text=spec_text_of(raw=raw))
    except SpecError as exc:
        raise CodegenError(exc.message) from None


HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def _schema_summary(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return "{" + ", ".join(f"{k}: {v.get('type', '?')}" for k, v in schema["properties"].items()) + "}"
    if schema.get("type") == "array":
        return f"array of {_schema_summary(schema.get('items')) or 'items'}"
    return str(schema.get("type", ""))


def plan_from_spec(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoints to test: method, path, summary, parameters, request and response schemas."""
    plan = []
    for path, item in spec["paths"].items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            body = (operation.get("requestBody") or {}).get("content", {})
            body_schema = next((c.get("schema") for c in body.values() if isinstance(c, dict)), None)
            responses = {}
            for code, response in (operation.get("responses") or {}).items():
                content = (response or {}).get("content", {}) if isinstance(response, dict) else {}
                schema = next((c.get("schema") for c in content.values() if isinstance(c, dict)), None)
                responses[str(code)] = _schema_summary(schema)
            plan.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary") or operation.get("operationId") or "",
                    "parameters": [
                        {"name": p.get("name"), "location": p.get("in"), "required": bool(p.get("required"))}
                        for p in operation.get("parameters", []) + item.get("parameters", [])
                        if isinstance(p, dict)
                    ],
                    "request_schema": _schema_summary(body_schema),
                    "responses": responses,
                }
            )
    return plan


_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "prompts"),
    undefined=StrictUndefined,
    autoescape=False,  # a prompt for a model, not HTML
    keep_trailing_newline=True,
)


def render_tests_prompt(*, spec: dict[str, Any], plan: list[dict[str, Any]], max_tests: int) -> str:
    info = spec.get("info") or {}
    return _templates.get_template("tests.md.j2").render(
        title=info.get("title") or "API",
        version=info.get("version") or "",
        description=(info.get("description") or "")[:2000],
        endpoints=plan,
        max_tests=max_tests,
    )


def validate_test_module(code: str) -> ScreenResult:
    """A generated test module must parse, define at least one `test_` function and pass the screener."""
    screening = screen_code(code)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return screening  # the screener has already reported the syntax error
    has_tests = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in ast.walk(tree)
    )
    if not has_tests:
        raise CodegenError("The model's answer defines no test function (no `def test_...`).")
    return screening


RUN_TASK = "codegen.run"


def codegen_run_create(
    *, owner: AbstractBaseUser, spec: object, max_tests_per_endpoint: int = 3, model_ref: str | None = None
) -> CodegenRun:
    text = spec_text_of(raw=spec)
    document = spec_parse(text=text)
    model = choose_model(user=owner, ref=model_ref, named=False) if model_ref else None
    # A run calls a model as a generation does, so it counts against the same limit (after the checks
    # above: a spec that cannot run costs nothing).
    rate_limit_take(user=owner)
    run = CodegenRun.objects.create(
        owner=owner,
        spec=text,  # as sent: parsed again when the run starts, never stored expanded
        title=str((document.get("info") or {}).get("title") or "API")[:200],
        options={"max_tests_per_endpoint": max_tests_per_endpoint},
        model=model,
    )
    # By name: the task module imports this one (registered in CodegenConfig.ready).
    celery_app.tasks[RUN_TASK].delay(run.pk)
    return run


def codegen_run_execute(*, run_id: int, client: CodeModelClient | None = None) -> CodegenRun:
    """Plan, prompt, generate, validate, store. Any failure ends the run `failed` with the reason; a run
    never finishes with made-up output."""
    run = CodegenRun.objects.select_related("owner", "model__provider").get(pk=run_id)
    if run.status != RunStatus.QUEUED:
        return run
    run.status, run.started_at = RunStatus.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at"])
    with observability.span("codegen.run", run_id=run.pk, user_id=run.owner_id) as current:
        run.trace_id = observability.trace_id_of(current)
        try:
            document = spec_parse(text=run.spec)
            run.plan = plan_from_spec(document)
            prompt = render_tests_prompt(
                spec=document, plan=run.plan, max_tests=int(run.options.get("max_tests_per_endpoint", 3))
            )
            if client is None:
                model = run.model or choose_model(user=run.owner, ref=None)
                client = CompletionServiceClient(user=run.owner, model=model)
            code = extract_code(client.generate(prompt))
            screening = validate_test_module(code)
            run.validation = screening.as_dict()
            if not screening.passed:
                raise CodegenError("The generated tests were rejected by the screener: " + _blocking(screening))
            run.artifact = code
            run.answered_by = getattr(client, "answered_by", "")
            run.status = RunStatus.FINISHED
        except (CodegenError, SpecError) as exc:
            run.status, run.error = RunStatus.FAILED, exc.message
        run.finished_at = timezone.now()
        run.save()
    observability.log.info("codegen.run", run_id=run.pk, outcome=run.status, error=run.error[:200])
    return run
