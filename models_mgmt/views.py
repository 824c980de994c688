from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from models_mgmt import services
from models_mgmt.models import AIModel
from providers.models import Provider
from providers.registry import LOCAL_KINDS
from providers.runtimes import DownloadJob, LoadOptions
from providers.services import ServerRefused, provider_local_server_add


def _table(request: HttpRequest, *, refresh: bool = False, status: int = 200) -> HttpResponse:
    statuses = services.model_list_with_status(user=request.user, refresh=refresh)
    if request.htmx:
        return render(request, "models_mgmt/_table.html", {"statuses": statuses}, status=status)
    servers = services.download_servers(user=request.user)
    kinds = [(kind, Provider(kind=kind).get_kind_display()) for kind in sorted(LOCAL_KINDS)]
    context = {"statuses": statuses, "download_servers": servers, "server_kinds": kinds}
    return render(request, "models_mgmt/models.html", context, status=status)


def _row(request: HttpRequest, model: AIModel, *, error: str = "") -> HttpResponse:
    status = services.model_status(model=model, user=request.user)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("models")
    return render(request, "models_mgmt/_row.html", {"s": status, "error": error})


def _model(request: HttpRequest, pk: int) -> AIModel:
    return get_object_or_404(services.models_visible(user=request.user), pk=pk)


@login_required
@require_GET
def models_page(request: HttpRequest) -> HttpResponse:
    return _table(request, refresh=request.GET.get("refresh") == "1")


@login_required
@require_GET
def model_row(request: HttpRequest, pk: int) -> HttpResponse:
    return _row(request, _model(request, pk))


def _act(request: HttpRequest, pk: int, action: Callable[[AIModel], object]) -> HttpResponse:
    model = _model(request, pk)
    try:
        action(model)
    except services.ModelError as exc:
        return _row(request, model, error=exc.message)
    return _row(request, model)


def _load_options(request: HttpRequest) -> LoadOptions:
    raw = request.POST.get("context_length", "").strip()
    if not raw:
        return LoadOptions()
    if not (raw.isascii() and raw.isdigit()) or not 64 <= int(raw) <= 10_000_000:
        raise services.LoadOptionsRefused("The context length is a whole number of tokens, 64 or more.")
    return LoadOptions(context_length=int(raw))


@login_required
@require_POST
def model_load(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda m: services.model_load_start(model=m, options=_load_options(request)))


@staff_member_required
@require_POST
def model_load_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda m: services.model_load_cancel(model=m))


@login_required
@require_POST
def model_unload(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda m: services.model_unload(model=m, user=request.user))


@staff_member_required
@require_POST
def model_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    active = request.POST.get("active") == "1"
    return _act(request, pk, lambda m: services.model_set_active(model=m, active=active))


@login_required
@require_POST
def failures_reset(request: HttpRequest) -> HttpResponse:
    count = services.model_failures_reset(user=request.user)
    messages.success(request, f"Forgot the failures of {count} model(s).")
    return _table(request, refresh=True) if request.htmx else redirect("models")


@staff_member_required
@require_POST
def models_sync(request: HttpRequest) -> HttpResponse:
    for result in services.models_sync(user=request.user):
        if result.ok:
            missing = f", {len(result.missing)} no longer listed" if result.missing else ""
            counts = f"{result.listed} listed, {result.added} new, {result.updated} updated{missing}"
            messages.success(request, f"{result.provider}: {counts}.")
        else:
            messages.error(request, f"{result.provider}: {result.error}")
    return _table(request) if request.htmx else redirect("models")


def _download(request: HttpRequest, provider: str, job: Callable[[Provider], DownloadJob]) -> HttpResponse:
    """The download's progress block: it polls itself until the job ends; then the table shows the model."""
    context: dict[str, object] = {"provider": provider}
    try:
        server = services.local_provider_get(name=provider, user=request.user)
        context["job"] = job(server)
    except services.ModelError as exc:
        context["error"] = exc.message
    else:
        context["progress"] = services.job_progress(context["job"])
        if context["job"].finished:
            context["statuses"] = services.model_list_with_status(user=request.user, refresh=True)
    return render(request, "models_mgmt/_download.html", context)


@login_required
@require_POST
def model_download(request: HttpRequest) -> HttpResponse:
    model = request.POST.get("model", "")
    return _download(
        request,
        request.POST.get("provider", ""),
        lambda server: services.model_download_start(provider=server, model=model, user=request.user),
    )


@login_required
@require_GET
def model_download_status(request: HttpRequest, provider: str, job_id: str) -> HttpResponse:
    return _download(
        request,
        provider,
        lambda server: services.model_download_status(provider=server, job_id=job_id, user=request.user),
    )


@login_required
@require_POST
def server_add(request: HttpRequest) -> HttpResponse:
    try:
        server = provider_local_server_add(
            user=request.user,
            kind=request.POST.get("kind", ""),
            base_url=request.POST.get("base_url", "").strip(),
            name=request.POST.get("name", "").strip(),
        )
    except ServerRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Added {server.get_kind_display()} server {server.name}; its models are listed below."
        )
    return redirect(f"{reverse('models')}?refresh=1")
