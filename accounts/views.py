from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from accounts import services
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


@login_required
@require_POST
def password_change(request: HttpRequest) -> HttpResponse:
    try:
        services.user_password_change(
            user=request.user,
            old_password=request.POST.get("old_password", ""),
            new_password=request.POST.get("new_password", ""),
            again=request.POST.get("new_password_again", ""),
        )
    except services.AccountError as exc:
        messages.error(request, f"Password not changed: {exc.message}")
        return _settings_page(request, status=exc.status_code)
    # Other sessions of this user end; this one stays logged in.
    update_session_auth_hash(request, request.user)
    messages.success(request, "Password changed.")
    return redirect("settings")


def _users_page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    try:
        users = services.user_list(by=request.user)
    except services.AccountForbidden:
        raise Http404("No such page.") from None
    return render(request, "accounts/users.html", {"users": users}, status=status)


@login_required
@require_GET
def users_page(request: HttpRequest) -> HttpResponse:
    return _users_page(request)


@login_required
@require_POST
def user_create(request: HttpRequest) -> HttpResponse:
    try:
        user = services.user_create(
            by=request.user,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
            again=request.POST.get("password_again", ""),
            is_staff=request.POST.get("is_staff") == "1",
        )
    except services.AccountError as exc:
        if not request.user.is_staff:
            raise Http404("No such page.") from None
        messages.error(request, f"User not created: {exc.message}")
        return _users_page(request, status=exc.status_code)
    messages.success(request, f"User “{user.get_username()}” created.")
    return redirect("users")


@login_required
@require_POST
def user_password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        user = services.user_password_reset(
            by=request.user,
            user_id=user_id,
            password=request.POST.get("password", ""),
            again=request.POST.get("password_again", ""),
        )
    except services.AccountError as exc:
        if not request.user.is_staff or isinstance(exc, services.AccountNotFound):
            raise Http404("No such page.") from None
        messages.error(request, f"Password not reset: {exc.message}")
        return _users_page(request, status=exc.status_code)
    messages.success(request, f"New password set for “{user.get_username()}”.")
    return redirect("users")
