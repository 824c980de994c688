"""Metrics (Prometheus), structured logs (structlog, JSON) and traces (OpenTelemetry) for every model call.

Prompts are logged as length and hash only; keys and tokens never. Trace ids come from OpenTelemetry
spans, in-process; spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# --- metrics ---------------------------------------------------------------------------------------------
# The codegen names are the ones existing dashboards already use; keep them.
CODEGEN_REQUESTS = Counter("llm_codegen_requests_total", "Code generation requests", ["outcome"])
CODEGEN_LATENCY = Histogram(
    "llm_codegen_latency_seconds", "Code generation latency", buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
)
COMPLETIONS = Counter("llm_completion_requests_total", "Model calls", ["provider", "model", "outcome"])
COMPLETION_LATENCY = Histogram(
    "llm_completion_latency_seconds",
    "Model call latency, to the last token",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "llm_completion_ttft_seconds",
    "Time to the first token",
    ["provider", "model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FALLBACKS = Counter("llm_fallbacks_total", "Fallbacks from one model to another", ["from_model", "to_model", "reason"])
# Usage (usage/services.py): no user in any label; a private provider's calls count under "private".
TOKENS = Counter("llm_tokens_total", "Tokens used by model calls", ["provider", "model", "outcome", "direction"])
COST = Counter(
    "llm_cost_usd_total", "Cost of model calls in USD, at the price table's prices", ["provider", "model", "outcome"]
)
MODEL_LOAD_SECONDS = Histogram(
    "llm_model_load_seconds",
    "Local model load time",
    ["model", "outcome"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
MODEL_STATUS = Gauge(
    "llm_model_status", "1 for the status each model is in", ["model", "status"], multiprocess_mode="mostrecent"
)


def metrics_exposition() -> tuple[bytes, str]:
    """The metrics page. With PROMETHEUS_MULTIPROC_DIR set (the run command sets it), every process's
    numbers (web workers and the Celery worker) are gathered, not only this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def reason_label(code: str) -> str:
    # Bounded label values: an error code, never a free-text message.
    return (code or "unknown")[:40]


# --- traces ------------------------------------------------------------------------------------------------
_tracer_ready = False
_tracer: trace.Tracer | None = None


def setup_tracing() -> None:
    """Once per process: an in-process tracer provider, exporting over OTLP only if configured."""
    global _tracer_ready
    if _tracer_ready:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "ai-orchestrator"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer_ready = True


def tracer() -> trace.Tracer:
    # Made once: getting a tracer builds a new one each time (its scope, its attributes), on every model call.
    global _tracer
    if _tracer is None:
        setup_tracing()
        _tracer = trace.get_tracer("orchestrator")
    return _tracer


def trace_id_of(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    with tracer().start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None}) as s:
        structlog.contextvars.bind_contextvars(trace_id=trace_id_of(s))
        yield s


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


# --- logs --------------------------------------------------------------------------------------------------


def prompt_fingerprint(text: str) -> dict[str, object]:
    """What a log may say about a prompt: its length and a hash, never the words."""
    # surrogatepass: a prompt with a lone surrogate (refused as input) must still be loggable.
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return {"prompt_chars": len(text), "prompt_sha256": digest}


def setup_logging(level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("orchestrator.events")
