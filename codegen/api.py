from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from accounts.auth import api_auth
from codegen import services
from codegen.models import CodegenRun
from codegen.schemas import RunCreatedOut, RunIn, RunOut
from models_mgmt.schemas import ErrorOut

router = Router(tags=["codegen"], auth=api_auth)


def _run(request: HttpRequest, run_id: int) -> CodegenRun:
    run = CodegenRun.objects.filter(pk=run_id, owner=request.user).first()
    if run is None:
        raise Http404("No such run.")
    return run


@router.post(
    "/runs", response={202: RunCreatedOut, 400: ErrorOut, 404: ErrorOut}, summary="Generate tests from OpenAPI"
)
def create_run(request: HttpRequest, payload: RunIn) -> Status[RunCreatedOut]:
    run = services.codegen_run_create(
        owner=request.user,
        spec=payload.spec,
        max_tests_per_endpoint=payload.max_tests_per_endpoint,
        model_ref=payload.model,
    )
    return Status(202, RunCreatedOut(id=run.pk, status=run.status))


@router.get("/runs", response=list[RunOut], summary="Your runs, newest first")
def list_runs(request: HttpRequest) -> list[RunOut]:
    return [RunOut.of(r) for r in CodegenRun.objects.filter(owner=request.user).defer("spec")[:50]]


@router.get("/runs/{int:run_id}", response={200: RunOut, 404: ErrorOut})
def get_run(request: HttpRequest, run_id: int) -> RunOut:
    return RunOut.of(_run(request, run_id))


@router.get("/runs/{int:run_id}/artifact", response={404: ErrorOut}, summary="The generated module")
def get_artifact(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    if not run.artifact:
        raise Http404("This run has no artifact (yet).")
    response = HttpResponse(run.artifact, content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="generated_{run.pk}.py"'
    return response
