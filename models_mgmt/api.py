from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from ninja import errors as ninja_errors
from ninja.errors import HttpError
from pydantic import Field, ValidationError

from accounts.auth import api_auth, require_staff
from models_mgmt import services
from models_mgmt.listing import models_listing_body
from models_mgmt.schemas import (
    AlternativeOut,
    DownloadIn,
    DownloadOut,
    ErrorOut,
    LoadIn,
    LoadOut,
    ModelOut,
    ResetOut,
    ServerIn,
    ServerOut,
    SyncOut,
    SyncProviderOut,
)
from orchestrator.renderers import json_response
from providers.http import display_url
from providers.runtimes import LoadOptions
from providers.services import provider_local_server_add

router = Router(tags=["models"], auth=api_auth)


class ListParams(Schema):
    refresh: bool = False


class WaitParams(Schema):
    timeout: float = Field(60, ge=1, le=600, description="Seconds to wait, 1 to 600.")


@router.get("", response=list[ModelOut], summary="All models with their live status")
def list_models(request: HttpRequest, params: Query[ListParams]) -> HttpResponse:
    # Plain rows written once: ninja would build 500 ModelOut and validate them all again. `response=`
    # still documents the body, and the tests hold the rows to that schema. The body is kept per user while
    # nothing it was made from changes (models_mgmt/listing.py).
    body = models_listing_body(user=request.user, refresh=params.refresh)
    return json_response(body.content, sent_again=body)


@router.post(
    "/failures/reset",
    response={200: ResetOut},
    summary="Forget the failures you may see: your own models and keys; staff also the instance-wide ones",
)
def reset_failures(request: HttpRequest) -> ResetOut:
    return ResetOut(reset=services.model_failures_reset(user=request.user))


@router.post("/sync", response={200: SyncOut, 403: ErrorOut}, summary="Discover models from every server (staff)")
def sync_models(request: HttpRequest) -> SyncOut:
    require_staff(request)
    return SyncOut(providers=[SyncProviderOut.of(r) for r in services.models_sync(user=request.user)])


@router.post(
    "/servers",
    response={201: ServerOut, 400: ErrorOut},
    summary="Add a local model server (LM Studio, Ollama, llama.cpp): yours, or instance-wide when staff add it",
)
def add_server(request: HttpRequest, payload: ServerIn) -> Status[ServerOut]:
    server = provider_local_server_add(
        user=request.user, kind=payload.kind, base_url=payload.base_url, name=payload.name
    )
    return Status(
        201,
        ServerOut(name=server.name, kind=server.kind, base_url=display_url(server.base_url), private=server.is_private),
    )


@router.post(
    "/downloads",
    response={202: DownloadOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Have a local server download a model (staff; a private server: its owner); follow the job",
)
def download_model(request: HttpRequest, payload: DownloadIn) -> Status[DownloadOut]:
    provider = services.local_provider_get(name=payload.provider, user=request.user)
    job = services.model_download_start(provider=provider, model=payload.model, user=request.user)
    return Status(202, DownloadOut.of(provider.name, job))


@router.get(
    "/downloads/{provider}/{job_id}",
    response={200: DownloadOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Where a download stands; once completed, the model is listed",
)
def download_status(request: HttpRequest, provider: str, job_id: str) -> DownloadOut:
    server = services.local_provider_get(name=provider, user=request.user)
    return DownloadOut.of(
        server.name, services.model_download_status(provider=server, job_id=job_id, user=request.user)
    )


@router.get("/{path:ref}/status", response={200: ModelOut, 404: ErrorOut}, summary="One model's status")
def model_status(request: HttpRequest, ref: str, params: Query[ListParams]) -> ModelOut:
    model = services.model_get(ref=ref, user=request.user)
    return ModelOut.of(services.model_status(model=model, user=request.user, refresh=params.refresh))


def _load_options(request: HttpRequest) -> LoadOptions:
    """The body is optional (a bare POST loads with the server's defaults), which Ninja's body parameters
    cannot say; so it is read here, with Ninja's own 422 for a wrong one. Only a JSON body holds options."""
    if request.content_type != "application/json" or not request.body.strip():
        return LoadOptions()
    try:
        options = LoadIn.model_validate_json(request.body)
    except ValidationError as exc:
        raise ninja_errors.ValidationError(
            [{"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        ) from None
    return LoadOptions(**options.model_dump(exclude_none=True))


LOAD_BODY = {"content": {"application/json": {"schema": LoadIn.model_json_schema()}}, "required": False}


@router.post(
    "/{path:ref}/load",
    response={200: LoadOut, 202: LoadOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Start loading a local model (202), or 200 if it is loaded; an optional body chooses load options",
    openapi_extra={"requestBody": LOAD_BODY},
)
def load_model(request: HttpRequest, ref: str) -> Status[LoadOut]:
    model = services.model_get(ref=ref, user=request.user)
    state = services.model_load_start(model=model, options=_load_options(request))
    return Status(200 if state == services.Status.LOADED else 202, LoadOut(status=state, model=model.ref))


@router.post(
    "/{path:ref}/load/cancel",
    response={200: ModelOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Cancel a load (staff): the model shows its live state again",
)
def cancel_load(request: HttpRequest, ref: str) -> ModelOut:
    require_staff(request)
    model = services.model_get(ref=ref, user=request.user)
    services.model_load_cancel(model=model)
    return ModelOut.of(services.model_status(model=model, user=request.user))


@router.post(
    "/{path:ref}/wait",
    response={200: ModelOut, 404: ErrorOut, 409: ModelOut, 504: ModelOut},
    summary="Wait for a load: 200 loaded, 409 failed or not loading, 504 still loading",
)
async def wait_for_load(request: HttpRequest, ref: str, params: Query[WaitParams]) -> Status[ModelOut]:
    model = await sync_to_async(services.model_get)(ref=ref, user=request.user)
    status = await services.model_wait_for_load(model_id=model.pk, timeout=params.timeout)
    code = {services.Status.LOADED: 200, services.Status.LOADING: 504}.get(status.status, 409)
    return Status(code, ModelOut.of(status))


@router.post(
    "/{path:ref}/unload",
    response={200: ModelOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Unload every instance of a local model (staff; a private server's models: its owner)",
)
def unload_model(request: HttpRequest, ref: str) -> ModelOut:
    model = services.model_get(ref=ref, user=request.user)
    services.model_unload(model=model, user=request.user)
    return ModelOut.of(services.model_status(model=model, user=request.user))


@router.get(
    "/{path:ref}/alternative",
    response={200: AlternativeOut, 404: ErrorOut},
    summary="The model to use instead of this one, and why",
)
def suggest_alternative(request: HttpRequest, ref: str) -> AlternativeOut:
    model = services.model_get(ref=ref, user=request.user)
    suggestion = services.model_suggest_alternative(model=model, user=request.user)
    if suggestion is None:
        raise HttpError(404, f"No usable alternative to {model.ref} right now.")
    return AlternativeOut.of(suggestion)
