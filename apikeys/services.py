"""Provider keys: store (encrypted), replace, delete, test, and pick the one a call uses.

The plaintext exists only in memory, between a decrypt and the request it authenticates; what is shown
anywhere is `hint`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from apikeys import crypto
from apikeys.models import ApiKey
from models_mgmt.models import LOCAL_KINDS, Provider, ProviderKind
from orchestrator.errors import ServiceError

KEY_MIN_LENGTH, KEY_MAX_LENGTH = 8, 512


class ApiKeyError(ServiceError):
    pass


class ApiKeyNotFound(ApiKeyError):
    status_code = 404


class ApiKeyForbidden(ApiKeyError):
    status_code = 403


class ApiKeyConflict(ApiKeyError):
    status_code = 409


@dataclass(frozen=True)
class KeyTestResult:
    ok: bool
    detail: str
    latency_ms: int | None


def mask(raw: str) -> str:
    return f"{raw[:3]}…{raw[-4:]}"


def _clean_secret(raw: str) -> str:
    if not raw:
        raise ApiKeyError("The key is empty.")
    if any(ch.isspace() for ch in raw):
        raise ApiKeyError("The key contains white space; paste it without spaces or line breaks.")
    if not (KEY_MIN_LENGTH <= len(raw) <= KEY_MAX_LENGTH):
        raise ApiKeyError(f"A key is {KEY_MIN_LENGTH} to {KEY_MAX_LENGTH} characters long; this one is {len(raw)}.")
    if not raw.isascii() or not raw.isprintable():
        raise ApiKeyError("The key has characters no provider uses in keys.")
    return raw


def _clean_label(label: str, default: str) -> str:
    label = (label or "").strip() or default
    if len(label) > 100:
        raise ApiKeyError("The label is longer than 100 characters.")
    return label


CLOUD_KIND_NAMES = [k.value for k in ProviderKind if k not in LOCAL_KINDS]


def _resolve_provider(name: str, base_url: str, label: str) -> Provider:
    """A provider by name (`openai`, `gemini`…) or kind; `openai_compatible` with a base URL names a server
    of the user's own, created on first use."""
    if name == ProviderKind.OPENAI_COMPATIBLE and base_url:
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            raise ApiKeyError("The base URL is not an http(s) URL.") from None
        base_url = base_url.rstrip("/")
        existing = Provider.objects.filter(kind=ProviderKind.OPENAI_COMPATIBLE, base_url=base_url).first()
        if existing:
            return existing
        stem = slugify(label or urlsplit(base_url).hostname or "server")[:50] or "server"
        slug, n = stem, 1
        while Provider.objects.filter(name=slug).exists():
            n += 1
            slug = f"{stem}-{n}"
        return Provider.objects.create(kind=ProviderKind.OPENAI_COMPATIBLE, name=slug, base_url=base_url)
    provider = Provider.objects.filter(Q(name=name) | Q(kind=name)).order_by("pk").first()
    if provider is None:
        hint = "an OpenAI-compatible server needs its base URL" if name == ProviderKind.OPENAI_COMPATIBLE else ""
        known = ", ".join(CLOUD_KIND_NAMES)
        raise ApiKeyError(f"Unknown provider {name!r}{' (' + hint + ')' if hint else ''}; one of: {known}.")
    if provider.is_local:
        raise ApiKeyError("LM Studio takes no key here; set LMSTUDIO_API_TOKEN in the environment.")
    return provider


def apikeys_visible(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """The user's own keys and the shared ones (shown by hint; only staff change those)."""
    return ApiKey.objects.select_related("provider", "owner").filter(Q(owner=user) | Q(owner__isnull=True))


def apikey_get(*, user: AbstractBaseUser, key_id: int, for_change: bool = False) -> ApiKey:
    key = apikeys_visible(user=user).filter(pk=key_id).first()
    if key is None:
        raise ApiKeyNotFound("No such key.")
    if for_change and key.shared and not user.is_staff:
        raise ApiKeyForbidden("Only staff can change shared keys.")
    return key


def _seal(key: ApiKey, raw: str) -> None:
    key.secret = crypto.encrypt(raw, aad=crypto.associated_data(key.owner_id, key.provider_id))
    key.hint = mask(raw)


def apikey_create(
    *, user: AbstractBaseUser, provider: str, key: str, label: str = "", base_url: str = "", shared: bool = False
) -> ApiKey:
    if shared and not user.is_staff:
        raise ApiKeyForbidden("Only staff can store shared keys.")
    raw = _clean_secret(key)
    with transaction.atomic():
        target = _resolve_provider(provider, base_url, label)
        row = ApiKey(
            owner=None if shared else user,
            provider=target,
            label=_clean_label(label, target.get_kind_display()),
        )
        _seal(row, raw)
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            whose = "A shared key" if shared else "You already have a key"
            raise ApiKeyConflict(f"{whose} for {target.name} exists; replace it instead.") from None
    return row


def apikey_update(*, user: AbstractBaseUser, key_id: int, label: str | None = None, key: str | None = None) -> ApiKey:
    row = apikey_get(user=user, key_id=key_id, for_change=True)
    if label is not None:
        row.label = _clean_label(label, row.provider.get_kind_display())
    if key is not None:
        _seal(row, _clean_secret(key))
        # A new key has not been tested and has not been refused yet.
        row.failing_reason, row.last_test_ok, row.last_tested_at, row.last_test_detail = "", None, None, ""
        row.last_test_latency_ms = None
    row.save()
    return row


def apikey_delete(*, user: AbstractBaseUser, key_id: int) -> None:
    apikey_get(user=user, key_id=key_id, for_change=True).delete()


def apikey_plaintext(key: ApiKey) -> str:
    """The key itself, for the request it authenticates; raises crypto.DecryptError with a safe message."""
    return crypto.decrypt(key.secret, aad=crypto.associated_data(key.owner_id, key.provider_id))


def apikey_for_call(*, user: AbstractBaseUser | None, provider: Provider) -> ApiKey | None:
    """The user's own key for the provider, else the shared one."""
    keys = ApiKey.objects.filter(provider=provider).filter(
        Q(owner__isnull=True) | Q(owner=user) if user is not None and user.is_authenticated else Q(owner__isnull=True)
    )
    return min(keys, key=lambda k: k.shared, default=None)


def usable_keys_by_provider(*, user: AbstractBaseUser | None) -> dict[int, ApiKey]:
    """One query: for each provider, the key a call by this user would use."""
    rows = ApiKey.objects.filter(
        Q(owner__isnull=True) | Q(owner=user) if user is not None and user.is_authenticated else Q(owner__isnull=True)
    )
    chosen: dict[int, ApiKey] = {}
    for row in sorted(rows, key=lambda k: not k.shared):  # own keys last, so they win
        chosen[row.provider_id] = row
    return chosen


def apikey_mark_refused(*, key: ApiKey, reason: str) -> None:
    ApiKey.objects.filter(pk=key.pk).update(failing_reason=reason)


def apikey_test(*, user: AbstractBaseUser, key_id: int) -> KeyTestResult:
    """Call the provider's cheapest authenticated endpoint with the key; record and return the outcome.
    On success the provider's models are stored, so they show up as cloud models."""
    from completions.adapters import ProviderError, adapter_for
    from models_mgmt.services import models_store_remote

    row = apikey_get(user=user, key_id=key_id)
    try:
        raw = apikey_plaintext(row)
    except crypto.DecryptError as exc:
        result = KeyTestResult(False, exc.args[0], None)
    else:
        adapter = adapter_for(row.provider, raw)
        started = time.monotonic()
        try:
            try:
                remote = async_to_sync(adapter.list_models)()
            except ProviderError as exc:
                if exc.code != "not_found":
                    raise
                async_to_sync(adapter.check_key)()  # a proxy with no model list (Genspark): a 1-token call
                remote = []
        except ProviderError as exc:
            result = KeyTestResult(False, exc.message, int((time.monotonic() - started) * 1000))
            row.failing_reason = exc.message if exc.code == "auth" else row.failing_reason
        else:
            latency = int((time.monotonic() - started) * 1000)
            added, _ = models_store_remote(provider=row.provider, remote=remote)
            result = KeyTestResult(True, f"Key works: {len(remote)} models listed ({added} new).", latency)
            row.failing_reason = ""
    row.last_tested_at = timezone.now()
    row.last_test_ok, row.last_test_detail, row.last_test_latency_ms = result.ok, result.detail, result.latency_ms
    row.save(
        update_fields=["last_tested_at", "last_test_ok", "last_test_detail", "last_test_latency_ms", "failing_reason"]
    )
    return result


def apikeys_rotate() -> tuple[int, int, list[int]]:
    """Re-encrypt every key under the newest encryption key: (re-encrypted, already current, unreadable ids)."""
    rotated, current, unreadable = 0, 0, []
    for row in ApiKey.objects.all():
        if crypto.is_current(row.secret):
            current += 1
            continue
        try:
            raw = apikey_plaintext(row)
        except crypto.DecryptError:
            unreadable.append(row.pk)
            continue
        _seal(row, raw)
        ApiKey.objects.filter(pk=row.pk).update(secret=row.secret)
        rotated += 1
    return rotated, current, unreadable
