"""Wires every app's Router into one API; nothing else lives here."""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from models_mgmt.api import router as models_router
from models_mgmt.services import ModelError

api = NinjaAPI(title="AI Orchestrator", version="1", urls_namespace="api")
api.add_router("/models", models_router)


@api.exception_handler(ModelError)
def model_error(request: HttpRequest, exc: ModelError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)
