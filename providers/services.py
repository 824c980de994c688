"""Who may see and use which provider and key: visibility, the key a call uses, key health.

The plaintext of a key exists only in memory, between a decrypt and the request it authenticates; what is
shown anywhere is `hint`."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils.text import slugify

from orchestrator import hotcache
from orchestrator.errors import ServiceError
from providers import crypto, guard
from providers.models import ApiKey, Provider
from providers.registry import LOCAL_KINDS, spec_of


class KeyNotUsable(ServiceError):
    """A request named a key the caller has no use of (not theirs, not shared, or for another provider)."""

    status_code = 404


def _signed_in(user: AbstractBaseUser | None) -> bool:
    return user is not None and user.is_authenticated


def provider_visible_q(user: AbstractBaseUser | None, prefix: str = "") -> Q:
    """Instance-wide providers, and the caller's own private ones (never another user's, staff included)."""
    owner = f"{prefix}owner"
    if not _signed_in(user):
        return Q(**{f"{owner}__isnull": True})
    return Q(**{f"{owner}__isnull": True}) | Q(**{owner: user})


def providers_visible(*, user: AbstractBaseUser | None) -> QuerySet[Provider]:
    return Provider.objects.filter(provider_visible_q(user)).select_related("owner")


def provider_details_visible(*, user: AbstractBaseUser | None, provider: Provider) -> bool:
    """May `user` read this provider's own words (upstream bodies, exact failures)? A private provider's
    owner may. For an instance-wide cloud provider staff may, and everyone else is told what happened in
    generic words: the failure came from someone's key and request. The instance's own local servers say
    the same to everybody (the admin's server, no user's key or request in its words), so all may read them."""
    if provider.owner_id is not None:
        return _signed_in(user) and provider.owner_id == user.pk
    return provider.is_local or (_signed_in(user) and bool(user.is_staff))


# --- the key a call uses ------------------------------------------------------------------------------


def _usable_keys_q(user: AbstractBaseUser | None) -> Q:
    return Q(owner__isnull=True) | Q(owner=user) if _signed_in(user) else Q(owner__isnull=True)


def apikey_for_call(*, user: AbstractBaseUser | None, provider: Provider, key_id: int | None = None) -> ApiKey | None:
    """The key a call by `user` to `provider` uses: the one named by `key_id` (theirs or shared, for this
    provider), else the user's default key, else the default shared key."""
    # Per caller, provider and named key; forgotten when any key, provider or user row changes, in every
    # process (orchestrator/hotcache.py). A copy, so a caller's changes to its row stay its own.
    caller = user.pk if _signed_in(user) else None
    return copy.copy(
        hotcache.get("key_for_call", (caller, provider.pk, key_id), lambda: _key_for_call(user, provider, key_id))
    )


def _key_for_call(user: AbstractBaseUser | None, provider: Provider, key_id: int | None) -> ApiKey | None:
    keys = ApiKey.objects.filter(provider=provider).filter(_usable_keys_q(user))
    if key_id is not None:
        named = keys.filter(pk=key_id).first()
        if named is None:
            raise KeyNotUsable(f"No key {key_id} of yours (or shared) for {provider.name}.")
        return named
    return _pick(list(keys)).get(provider.pk)


def _pick(rows: list[ApiKey]) -> dict[int, ApiKey]:
    """Per provider: an own key beats a shared one; among those, the default beats the rest, then the newest."""
    chosen: dict[int, ApiKey] = {}
    for row in sorted(rows, key=lambda k: (not k.shared, k.is_default, k.created_at)):
        chosen[row.provider_id] = row  # the last one written per provider wins
    return chosen


def usable_keys_by_provider(*, user: AbstractBaseUser | None) -> dict[int, ApiKey]:
    """One query: for each provider, the key a call by this user would use."""
    return _pick(list(ApiKey.objects.filter(_usable_keys_q(user))))


def apikey_usable_get(*, user: AbstractBaseUser | None, key_id: int) -> ApiKey:
    """A key the caller may name in a request (their own or a shared one)."""
    key = ApiKey.objects.select_related("provider").filter(_usable_keys_q(user), pk=key_id).first()
    if key is None:
        raise KeyNotUsable(f"No key {key_id} of yours (or shared).")
    return key


def apikey_plaintext(key: ApiKey) -> str:
    """The key itself, for the request it authenticates; raises crypto.DecryptError with a safe message."""
    aad = crypto.associated_data(key.owner_id, key.provider_id)
    # Kept in this process's memory only, under the ciphertext and its owner: a changed key has a new ciphertext.
    return hotcache.get("plaintext", (key.secret, aad), lambda: crypto.decrypt(key.secret, aad=aad))


def apikey_seal(key: ApiKey, raw: str) -> None:
    key.secret = crypto.encrypt(raw, aad=crypto.associated_data(key.owner_id, key.provider_id))
    key.hint = f"{raw[:3]}…{raw[-4:]}"


# --- key health: a refused key marks that key, for its owner, never the model ---------------------------


def apikey_mark_failing(*, key_id: int, reason: str) -> None:
    ApiKey.objects.filter(pk=key_id).update(failing_reason=reason)


def apikey_mark_working(*, key: ApiKey) -> None:
    if key.failing_reason:
        ApiKey.objects.filter(pk=key.pk).update(failing_reason="")
        key.failing_reason = ""


def apikey_failure_for(*, user: AbstractBaseUser | None, key: ApiKey) -> str:
    """Why `key` is refused, in words fit for `user`: the provider's own for the key's owner (and staff for a
    shared key), generic for anyone else who uses a shared key."""
    if not key.failing_reason:
        return ""
    label = key.provider.get_kind_display()
    mine = (key.owner_id is not None and _signed_in(user) and key.owner_id == user.pk) or (
        key.shared and _signed_in(user) and user.is_staff
    )
    if mine:
        return f"The {label} key {key.hint} was refused: {key.failing_reason}"
    return f"The shared {label} key was refused by the provider; ask an admin to check it."


# --- local servers added on the page -------------------------------------------------------------------

MAX_OWN_SERVERS = 20  # per user: each is asked at every refresh of its owner's pages


class ServerRefused(ServiceError):
    """A local server that cannot be added as given."""


def provider_local_server_add(*, user: AbstractBaseUser, kind: str, base_url: str, name: str = "") -> Provider:
    """Add a local model server (LM Studio, Ollama, llama.cpp). Staff add instance-wide ones; anyone else a
    private one, whose URL passes the outbound guard now (and at every connection, which is what protects)."""
    if kind not in LOCAL_KINDS:
        raise ServerRefused(f"Not a local server kind: {kind!r} (one of {', '.join(sorted(LOCAL_KINDS))})")
    try:
        base_url = guard.validate_base_url(base_url)
    except guard.GuardError as exc:
        raise ServerRefused(f"The base URL is refused: {exc.message}") from None
    owner = None if user.is_staff else user
    if owner is not None:
        if Provider.objects.filter(owner=owner).count() >= MAX_OWN_SERVERS:
            raise ServerRefused(f"You have {MAX_OWN_SERVERS} servers already; remove one first.")
        parts = urlsplit(base_url)
        try:
            guard.check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except guard.AddressRefused as exc:
            raise ServerRefused(f"The base URL is refused: {exc.message}") from None
        except guard.GuardError:
            pass  # a name that does not resolve yet is left to the connection-time check
    existing = Provider.objects.filter(kind=kind, base_url=base_url, owner=owner).first()
    if existing is not None:
        return existing
    stem = slugify(name or f"{spec_of(kind).kind.value}-{urlsplit(base_url).hostname or 'server'}")[:50] or kind
    slug, n = stem, 1
    while Provider.objects.filter(name=slug).exists():
        n += 1
        slug = f"{stem}-{n}"
    return Provider.objects.create(kind=kind, name=slug, base_url=base_url, owner=owner)
