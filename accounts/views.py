from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from accounts.services import TokenError, api_token_create, api_token_revoke


def _settings_page(request: HttpRequest, *, new_token: str = "", status: int = 200) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/settings.html", {"tokens": tokens, "new_token": new_token}, status=status)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    return _settings_page(request)


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        _, raw = api_token_create(user=request.user, name=request.POST.get("name", ""))
    except TokenError as exc:
        messages.error(request, str(exc))
        return _settings_page(request, status=400)
    # Rendered in this response only; the page never shows it again, and no cache (browser, proxy) keeps it.
    response = _settings_page(request, new_token=raw)
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if api_token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked.")
    else:
        messages.error(request, "No such token.")
    return redirect("settings")
