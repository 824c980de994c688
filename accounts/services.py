import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken
from orchestrator import hotcache
from orchestrator.errors import ServiceError

TOKEN_PREFIX = "orch_"
# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenError(Exception):
    pass


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """A new token; the plaintext is returned here and never again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("Give the token a name of 1 to 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], token_hash=_digest(raw))
    return token, raw


def api_token_authenticate(*, raw: str) -> AbstractBaseUser | None:
    """The active user a token belongs to, or None. Served from the in-process cache, which forgets a token
    as soon as any process deletes it or changes its user (orchestrator/hotcache.py)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(raw)
    try:
        token = hotcache.get("api_token", digest, lambda: _active_token(digest))
    except _NoToken:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user


class _NoToken(Exception):
    """No such token, or its user is switched off: not cached, asked again every time."""


def _active_token(digest: str) -> ApiToken:
    token = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    if token is None or not token.user.is_active:
        raise _NoToken
    return token


def api_token_revoke(*, user: AbstractBaseUser, token_id: int) -> bool:
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=user).delete()
    return bool(deleted)


# --- passwords and users ------------------------------------------------------------------------------


class AccountError(ServiceError):
    pass


class AccountForbidden(AccountError):
    status_code = 403


class AccountNotFound(AccountError):
    status_code = 404


def _check_password(password: str, again: str, user: AbstractBaseUser | None) -> None:
    if password != again:
        raise AccountError("The two new passwords differ.")
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None


def user_password_change(*, user: AbstractBaseUser, old_password: str, new_password: str, again: str) -> None:
    """The user's own password; the current one is asked so that an open session alone cannot change it."""
    if not user.check_password(old_password):
        raise AccountError("The current password is wrong.")
    _check_password(new_password, again, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])


def _require_staff(by: AbstractBaseUser) -> None:
    if not by.is_staff:
        raise AccountForbidden("Only staff can manage users.")


def user_list(*, by: AbstractBaseUser) -> QuerySet:
    _require_staff(by)
    return get_user_model().objects.order_by("username")


def user_create(*, by: AbstractBaseUser, username: str, password: str, again: str, is_staff: bool = False) -> Any:
    """A new account, made by staff. Only a superuser makes staff: staff cannot widen their own circle."""
    _require_staff(by)
    if is_staff and not by.is_superuser:
        raise AccountForbidden("Only a superuser can make staff accounts.")
    User = get_user_model()
    username = username.strip()
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.run_validators(username)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None
    if not username or len(username) > 150:
        raise AccountError("A user name is 1 to 150 characters.")
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise AccountError(f"The user name “{username}” is taken.")
    _check_password(password, again, User(**{User.USERNAME_FIELD: username}))
    user = User(**{User.USERNAME_FIELD: username}, is_staff=is_staff)
    user.set_password(password)
    user.save()
    return user


def user_password_reset(*, by: AbstractBaseUser, user_id: int, password: str, again: str) -> Any:
    """Staff set a new password for a user who lost theirs. A staff or superuser account's password is
    reset only by a superuser, or a staff member could take over an account with more rights."""
    _require_staff(by)
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise AccountNotFound("No such user.")
    if (user.is_staff or user.is_superuser) and not by.is_superuser and user.pk != by.pk:
        raise AccountForbidden("Only a superuser can reset the password of a staff account.")
    _check_password(password, again, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
