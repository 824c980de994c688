from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from codegen import services
from codegen.backends.services import ArchiveRefused, backend_run_archive, backend_run_create
from codegen.models import BackendRun, CodegenRun
from codegen.schemas import (
    ArchiveRefusedOut,
    BackendCreatedOut,
    BackendIn,
    BackendOut,
    RunCreatedOut,
    RunIn,
    RunOut,
)
from models_mgmt.schemas import ErrorOut

router = Router(tags=["codegen"], auth=api_auth)


def _run(request: HttpRequest, run_id: int) -> CodegenRun:
    run = CodegenRun.objects.filter(pk=run_id, owner=request.user).first()
    if run is None:
        raise Http404("No such run.")
    return run


@router.post(
    "/codegen/runs",
    response={202: RunCreatedOut, 400: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    summary="Generate tests from OpenAPI",
)
def create_run(request: HttpRequest, payload: RunIn) -> Status[RunCreatedOut]:
    run = services.codegen_run_create(
        owner=request.user,
        spec=payload.spec,
        max_tests_per_endpoint=payload.max_tests_per_endpoint,
        model_ref=payload.model,
    )
    return Status(202, RunCreatedOut(id=run.pk, status=run.status))


@router.get("/codegen/runs", response=list[RunOut], summary="Your runs, newest first")
def list_runs(request: HttpRequest) -> list[RunOut]:
    return [RunOut.of(r) for r in CodegenRun.objects.filter(owner=request.user).defer("spec")[:50]]


@router.get("/codegen/runs/{int:run_id}", response={200: RunOut, 404: ErrorOut})
def get_run(request: HttpRequest, run_id: int) -> RunOut:
    return RunOut.of(_run(request, run_id))


@router.get("/codegen/runs/{int:run_id}/artifact", response={404: ErrorOut}, summary="The generated module")
def get_artifact(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    if not run.artifact:
        raise Http404("This run has no artifact (yet).")
    response = HttpResponse(run.artifact, content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="generated_{run.pk}.py"'
    return response


# ---- the backend generator -------------------------------------------------------------------------


def _backend(request: HttpRequest, run_id: int) -> BackendRun:
    run = BackendRun.objects.filter(pk=run_id, owner=request.user).first()
    if run is None:
        raise Http404("No such backend run.")
    return run


@router.post(
    "/backends",
    response={202: BackendCreatedOut, 400: ErrorOut, 404: ErrorOut},
    summary="Generate a FastAPI backend from requirements",
)
def create_backend(request: HttpRequest, payload: BackendIn) -> Status[BackendCreatedOut]:
    run = backend_run_create(
        owner=request.user,
        requirements=payload.requirements,
        model_ref=payload.model,
        plan=payload.plan,
        max_rounds=payload.max_rounds,
    )
    return Status(202, BackendCreatedOut(id=run.pk, status=run.status))


@router.get("/backends", response=list[BackendOut], summary="Your backend runs, newest first")
def list_backends(request: HttpRequest) -> list[BackendOut]:
    return [BackendOut.of(r) for r in BackendRun.objects.filter(owner=request.user)[:20]]


@router.get("/backends/{int:run_id}", response={200: BackendOut, 404: ErrorOut})
def get_backend(request: HttpRequest, run_id: int) -> BackendOut:
    return BackendOut.of(_backend(request, run_id))


@router.get(
    "/backends/{int:run_id}/archive",
    response={404: ErrorOut, 409: ArchiveRefusedOut},
    summary="The best round as a zip (only when it passed the screener)",
)
def get_backend_archive(request: HttpRequest, run_id: int) -> HttpResponse | Status[ArchiveRefusedOut]:
    try:
        name, data = backend_run_archive(run=_backend(request, run_id))
    except ArchiveRefused as exc:
        return Status(409, ArchiveRefusedOut(detail=exc.message, findings=exc.findings))
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
