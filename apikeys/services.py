"""Provider keys as their owners manage them: store (encrypted), label, replace, make default, delete, test.

Several keys per provider and user, one the default; shared keys (no owner) are managed, tested and their
test results seen by staff only. A key for "another OpenAI-compatible server" names that server by its base
URL: the server becomes a provider private to the user (instance-wide when staff store a shared key), and
a user's URL must pass the outbound guard."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from models_mgmt.services import provider_models_list
from orchestrator.errors import ServiceError
from providers import crypto, guard
from providers.kinds import ProviderKind
from providers.models import ApiKey, Provider
from providers.registry import CLOUD_KINDS
from providers.services import apikey_mark_failing, apikey_plaintext, apikey_seal, provider_visible_q

KEY_MIN_LENGTH, KEY_MAX_LENGTH = 8, 512


class ApiKeyError(ServiceError):
    pass


class ApiKeyNotFound(ApiKeyError):
    status_code = 404


class ApiKeyForbidden(ApiKeyError):
    status_code = 403


@dataclass(frozen=True)
class KeyTestResult:
    ok: bool
    detail: str
    latency_ms: int | None


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
    if not label.isprintable() or any(0xD800 <= ord(ch) <= 0xDFFF for ch in label):
        raise ApiKeyError("The label has characters that cannot be stored (control characters or lone surrogates).")
    return label


def _private_server(user: AbstractBaseUser, base_url: str, label: str, shared: bool) -> Provider:
    """The OpenAI-compatible server at `base_url` for this key: the caller's own (private), or an
    instance-wide one when staff store a shared key. Never another user's."""
    try:
        base_url = guard.validate_base_url(base_url)
    except guard.GuardError as exc:
        raise ApiKeyError(f"The base URL is refused: {exc.message}") from None
    owner = None if shared else user
    if owner is not None and not user.is_staff:
        parts = urlsplit(base_url)
        try:
            # Said now, so the user learns at once; the guard checks again at every connection, which is
            # what protects. A name that does not resolve yet (a VPN not up) is left to that check.
            guard.check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except guard.AddressRefused as exc:
            raise ApiKeyError(f"The base URL is refused: {exc.message}") from None
        except guard.GuardError:
            pass
    existing = Provider.objects.filter(kind=ProviderKind.OPENAI_COMPATIBLE, base_url=base_url, owner=owner).first()
    if existing is not None:
        return existing
    stem = slugify(label or urlsplit(base_url).hostname or "server")[:50] or "server"
    slug, n = stem, 1
    while Provider.objects.filter(name=slug).exists():
        n += 1
        slug = f"{stem}-{n}"
    return Provider.objects.create(kind=ProviderKind.OPENAI_COMPATIBLE, name=slug, base_url=base_url, owner=owner)


def _resolve_provider(user: AbstractBaseUser, name: str, base_url: str, label: str, shared: bool) -> Provider:
    """A provider by name (`openai`, `gemini`, one of the user's servers…) or kind; `openai_compatible` with a
    base URL names a server, created on first use."""
    if name == ProviderKind.OPENAI_COMPATIBLE and base_url:
        return _private_server(user, base_url, label, shared)
    provider = (
        Provider.objects.filter(provider_visible_q(user))
        .filter(Q(name=name) | Q(kind=name, owner__isnull=True))
        .order_by("owner_id", "pk")
        .first()
    )
    if provider is None:
        hint = "an OpenAI-compatible server needs its base URL" if name == ProviderKind.OPENAI_COMPATIBLE else ""
        known = ", ".join(sorted(CLOUD_KINDS))
        raise ApiKeyError(f"Unknown provider {name!r}{' (' + hint + ')' if hint else ''}; one of: {known}.")
    if provider.is_local:
        raise ApiKeyError(f"{provider.get_kind_display()} takes no key here; its token is set in the environment.")
    if shared and provider.owner_id is not None:
        raise ApiKeyError("A shared key cannot be for a private server.")
    return provider


def apikeys_visible(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """The user's own keys and the shared ones (shown by hint; only staff change or test those)."""
    return ApiKey.objects.select_related("provider", "owner").filter(Q(owner=user) | Q(owner__isnull=True))


def apikey_get(*, user: AbstractBaseUser, key_id: int, for_change: bool = False) -> ApiKey:
    key = apikeys_visible(user=user).filter(pk=key_id).first()
    if key is None:
        raise ApiKeyNotFound("No such key.")
    if for_change and key.shared and not user.is_staff:
        raise ApiKeyForbidden("Only staff can change, test or make default shared keys.")
    return key


def _siblings(key: ApiKey) -> QuerySet[ApiKey]:
    """The keys among which `key` may be the default: same provider, same owner (or all shared)."""
    owner = Q(owner__isnull=True) if key.owner_id is None else Q(owner_id=key.owner_id)
    return ApiKey.objects.filter(owner, provider_id=key.provider_id)


def apikey_create(
    *,
    user: AbstractBaseUser,
    provider: str,
    key: str,
    label: str = "",
    base_url: str = "",
    shared: bool = False,
    make_default: bool | None = None,
) -> ApiKey:
    """Store a key. The owner's first key for a provider becomes the default; a later one only when asked."""
    if shared and not user.is_staff:
        raise ApiKeyForbidden("Only staff can store shared keys.")
    raw = _clean_secret(key)
    with transaction.atomic():
        target = _resolve_provider(user, provider, base_url, label, shared)
        label = _clean_label(label, target.get_kind_display())
        row = ApiKey(owner=None if shared else user, provider=target, label=label)
        apikey_seal(row, raw)
        siblings = _siblings(row).select_for_update()
        first = not siblings.exists()
        row.is_default = first or bool(make_default)
        if row.is_default and not first:
            siblings.update(is_default=False)
        row.save()
    return row


def apikey_update(
    *,
    user: AbstractBaseUser,
    key_id: int,
    label: str | None = None,
    key: str | None = None,
    is_default: bool | None = None,
) -> ApiKey:
    row = apikey_get(user=user, key_id=key_id, for_change=True)
    if label is not None:
        row.label = _clean_label(label, row.provider.get_kind_display())
    if key is not None:
        apikey_seal(row, _clean_secret(key))
        # A new key has not been tested and has not been refused yet.
        row.failing_reason, row.last_test_ok, row.last_tested_at, row.last_test_detail = "", None, None, ""
        row.last_test_latency_ms = None
    with transaction.atomic():
        if is_default:
            _siblings(row).exclude(pk=row.pk).update(is_default=False)
            row.is_default = True
        row.save()
    return row


def apikey_make_default(*, user: AbstractBaseUser, key_id: int) -> ApiKey:
    return apikey_update(user=user, key_id=key_id, is_default=True)


def apikey_delete(*, user: AbstractBaseUser, key_id: int) -> None:
    """Delete a key; when it was the default, the newest remaining key of the same owner takes over, so a
    rotation (add, test, make default, delete the old one) never leaves the owner without a default."""
    row = apikey_get(user=user, key_id=key_id, for_change=True)
    with transaction.atomic():
        siblings = _siblings(row).exclude(pk=row.pk)
        row.delete()
        if row.is_default:
            heir = siblings.order_by("-created_at").first()
            if heir is not None:
                siblings.filter(pk=heir.pk).update(is_default=True)


def apikey_test(*, user: AbstractBaseUser, key_id: int) -> KeyTestResult:
    """Call the provider's cheapest authenticated endpoint with the key; record and return the outcome.
    On success the provider's models are stored for whoever the key serves (the one listing service)."""
    row = apikey_get(user=user, key_id=key_id, for_change=True)
    listing = provider_models_list(provider=row.provider, key=row)
    result = KeyTestResult(listing.ok, listing.detail, listing.latency_ms)
    if listing.ok:
        row.failing_reason = ""
    elif listing.auth_refused:
        row.failing_reason = listing.detail
        apikey_mark_failing(key_id=row.pk, reason=listing.detail)
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
        apikey_seal(row, raw)
        ApiKey.objects.filter(pk=row.pk).update(secret=row.secret)
        rotated += 1
    return rotated, current, unreadable
