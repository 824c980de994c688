"""Wires every app's Router into one API; nothing else lives here."""

from django.http import HttpRequest, HttpResponse

from apikeys.api import router as keys_router
from codegen.api import router as codegen_router
from completions.api import router as completions_router
from core.access import docs_guard
from models_mgmt.api import router as models_router
from orchestrator.errors import ServiceError
from orchestrator.openapi import DocumentedErrorsAPI
from usage.api import router as usage_router

api = DocumentedErrorsAPI(title="AI Orchestrator", version="1", urls_namespace="api", docs_decorator=docs_guard)
api.add_router("/models", models_router)
api.add_router("/keys", keys_router)
api.add_router("/completions", completions_router)
# codegen serves /api/codegen/runs and /api/backends: one router, two prefixes in its paths.
api.add_router("", codegen_router)
# usage serves /api/usage and /api/budgets.
api.add_router("", usage_router)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.message}, status=exc.status_code)
    if (retry_after := getattr(exc, "retry_after", None)) is not None:
        response["Retry-After"] = str(retry_after)  # a rate limit or budget says when to come back
    return response
