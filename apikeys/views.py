from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apikeys import services
from providers.registry import CLOUD_KINDS
from providers.services import providers_visible


def _page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    # Per provider: your keys first (the default on top), then the shared ones.
    keys = sorted(
        services.apikeys_visible(user=request.user),
        key=lambda k: (k.provider.is_private, k.provider.name, k.shared, not k.is_default, k.created_at),
    )
    groups = [(provider, list(rows)) for provider, rows in groupby(keys, key=lambda k: k.provider)]
    providers = (
        providers_visible(user=request.user)
        .filter(kind__in=sorted(CLOUD_KINDS), enabled=True)
        .order_by("owner", "name")
    )
    context = {"groups": groups, "providers": providers, "form": request.POST if status != 200 else {}}
    return render(request, "apikeys/keys.html", context, status=status)


@login_required
@require_GET
def keys_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    try:
        key = services.apikey_create(
            user=request.user,
            provider=request.POST.get("provider", ""),
            key=request.POST.get("key", ""),
            label=request.POST.get("label", ""),
            base_url=request.POST.get("base_url", "").strip(),
            shared=request.POST.get("shared") == "1",
            make_default=request.POST.get("make_default") == "1",
        )
    except services.ApiKeyError as exc:
        messages.error(request, exc.message)
        return _page(request, status=exc.status_code)
    messages.success(
        request, f"Stored the {key.provider.get_kind_display()} key {key.hint}. Test it to list its models."
    )
    return redirect("api-keys")


@login_required
@require_POST
def key_update(request: HttpRequest, key_id: int) -> HttpResponse:
    new_key = request.POST.get("key", "")
    try:
        key = services.apikey_update(
            user=request.user, key_id=key_id, label=request.POST.get("label"), key=new_key or None
        )
    except services.ApiKeyError as exc:
        messages.error(request, exc.message)
        return _page(request, status=exc.status_code)
    messages.success(request, f"Saved {key.label} ({key.hint}).")
    return redirect("api-keys")


@login_required
@require_POST
def key_make_default(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = services.apikey_make_default(user=request.user, key_id=key_id)
    except services.ApiKeyError as exc:
        messages.error(request, exc.message)
        return _page(request, status=exc.status_code)
    messages.success(request, f"{key.label} ({key.hint}) is now the default {key.provider.name} key.")
    return redirect("api-keys")


@login_required
@require_POST
def key_delete(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        services.apikey_delete(user=request.user, key_id=key_id)
    except services.ApiKeyError as exc:
        messages.error(request, exc.message)
        return _page(request, status=exc.status_code)
    messages.success(request, "Key deleted.")
    return redirect("api-keys")


@login_required
@require_POST
def key_test(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        result = services.apikey_test(user=request.user, key_id=key_id)
    except services.ApiKeyError as exc:
        return HttpResponse(exc.message, status=exc.status_code)
    key = services.apikey_get(user=request.user, key_id=key_id)
    if not request.htmx:
        (messages.success if result.ok else messages.error)(request, result.detail)
        return redirect("api-keys")
    return render(request, "apikeys/_test_result.html", {"key": key})
