"""How the REST API knows who calls: a bearer API token, or the browser's session (with CSRF)."""

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from accounts.services import api_token_authenticate


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(raw=token)
        if user is not None:
            request.user = user
        return user


api_auth = [ApiTokenAuth(), SessionAuth()]


def require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise HttpError(403, "Only staff can do this.")
