"""The model registry's business logic: live status, discovery, load/unload, failures and alternatives."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from models_mgmt.models import AIModel, LoadState, ModelSource
from orchestrator import hotcache
from orchestrator.celery import app as celery_app
from orchestrator.errors import ServiceError
from orchestrator.failures import FailureCode
from orchestrator.observability import MODEL_LOAD_SECONDS
from orchestrator.text import unstorable_reason
from providers.adapters import ProviderError, RemoteModel
from providers.crypto import DecryptError
from providers.models import ApiKey, Provider
from providers.registry import LOCAL_KINDS, adapter_for, runtime_for
from providers.runtimes import (
    NO_OPTIONS,
    DownloadJob,
    LoadOptions,
    LocalRuntime,
    RuntimeModel,
    Snapshot,
    UpstreamError,
)
from providers.services import (
    apikey_failure_for,
    apikey_for_call,
    apikey_mark_failing,
    apikey_plaintext,
    apikey_usable_get,
    provider_details_visible,
    provider_visible_q,
    providers_visible,
    usable_keys_by_provider,
)


class Status:
    AVAILABLE = "available"
    LOADED = "loaded"
    LOADING = "loading"
    NOT_LOADED = "not_loaded"
    FAILED = "failed"
    NO_KEY = "no_key"
    UNREACHABLE = "unreachable"
    INACTIVE = "inactive"


STATUS_ICONS = {
    Status.AVAILABLE: "🌐",
    Status.LOADED: "✓",
    Status.LOADING: "🔄",
    Status.NOT_LOADED: "○",
    Status.FAILED: "❌",
    Status.NO_KEY: "❌",
    Status.UNREACHABLE: "❌",
    Status.INACTIVE: "❌",
}

LOAD_TASK = "models_mgmt.load_model"

# Why a claim ended without an outcome from its task: its lease ran out, or its worker is known dead.
LOAD_INTERRUPTED = "the load was interrupted (the worker stopped)"
# How often a load waits on a server that reports the model loading already.
UPSTREAM_LOAD_POLL_SECONDS = 0.5


class ModelError(ServiceError):
    """A request about a model that cannot be done."""


class ModelNotFound(ModelError):
    status_code = 404


class ModelNotLocal(ModelError):
    status_code = 400


class LoadOptionsRefused(ModelError):
    status_code = 400


class ModelForbidden(ModelError):
    status_code = 403


class ModelConflict(ModelError):
    status_code = 409


class RuntimeUnavailable(ModelError):
    status_code = 503


@dataclass(frozen=True)
class ModelStatus:
    model: AIModel
    status: str
    reason: str = ""

    @property
    def icon(self) -> str:
        return STATUS_ICONS[self.status]

    @property
    def label(self) -> str:
        return self.status.replace("_", " ")

    @property
    def usable(self) -> bool:
        return self.status in (Status.AVAILABLE, Status.LOADED, Status.NOT_LOADED)


@dataclass(frozen=True)
class Suggestion:
    model: AIModel
    status: ModelStatus
    tier: str
    reason: str


# --- lookup -------------------------------------------------------------------------------------------


def models_visible_q(user: AbstractBaseUser | None) -> Q:
    """The models `user` may see: instance-wide ones on instance-wide providers, and their own (listed by
    their key, named by them, or on their private provider). Never another user's, whoever asks."""
    shared = Q(owner__isnull=True) & provider_visible_q(user, prefix="provider__")
    if user is None or not user.is_authenticated:
        return shared
    # A user's own entry steps aside once the instance-wide list has the same model (one name, one row).
    superseded = AIModel.objects.filter(
        provider=OuterRef("provider"), model_id=OuterRef("model_id"), owner__isnull=True
    )
    return shared | (Q(owner=user) & ~Exists(superseded))


def models_visible(*, user: AbstractBaseUser | None) -> QuerySet[AIModel]:
    return AIModel.objects.select_related("provider", "provider__owner").filter(models_visible_q(user))


def model_get(*, ref: str, user: AbstractBaseUser | None = None) -> AIModel:
    """A model `user` may see, by numeric id or by its public reference `<provider>/<model id>`."""
    if unstorable_reason(ref):
        raise ModelNotFound("No model: the name has characters no model's name has")
    # Per viewer: what one user may see says nothing about another. Forgotten when any model, provider or
    # user row changes, in every process (orchestrator/hotcache.py).
    viewer = user.pk if user is not None and user.is_authenticated else None
    # A copy: a caller may change its model's fields without saving them, and the next caller must not see that.
    return copy.copy(hotcache.get("model", (viewer, ref), lambda: _model_lookup(ref, user)))


def _model_lookup(ref: str, user: AbstractBaseUser | None) -> AIModel:
    queryset = models_visible(user=user)
    found: AIModel | None = None
    if ref.isascii() and ref.isdigit():
        found = queryset.filter(pk=int(ref)).first()
    else:
        provider_name, _, model_id = ref.partition("/")
        if model_id:
            # The instance-wide entry first, then the caller's own.
            found = queryset.filter(provider__name=provider_name, model_id=model_id).order_by("owner_id").first()
    if found is None:
        raise ModelNotFound(f"No model {ref!r}")
    return found


MODEL_ID_MAX = 255


def model_resolve(*, ref: str, user: AbstractBaseUser | None, key_id: int | None = None) -> AIModel:
    """The model a call names, checked against the key the call names (if any). A `<provider>/<model id>`
    of a cloud provider the caller holds a usable key for works on first use, before any listing: it is an
    unsaved model that joins the registry (as the caller's own) once the provider answers with it."""
    key = apikey_usable_get(user=user, key_id=key_id) if key_id is not None else None
    try:
        model = model_get(ref=ref, user=user)
    except ModelNotFound:
        if unstorable_reason(ref):
            raise
        model = _named_model(ref, user, key)
    if key is not None and key.provider_id != model.provider_id:
        raise ModelError(f"Key {key.pk} is for {key.provider.name}, not {model.provider.name}.")
    return model


def _named_model(ref: str, user: AbstractBaseUser | None, key: ApiKey | None) -> AIModel:
    provider_name, _, model_id = ref.partition("/")
    provider = providers_visible(user=user).filter(name=provider_name, enabled=True).first()
    if provider is None or provider.is_local or not model_id:
        raise ModelNotFound(f"No model {ref!r}")
    if len(model_id) > MODEL_ID_MAX or not model_id.isprintable() or any(c.isspace() for c in model_id):
        raise ModelNotFound(f"No model {ref!r}: not a model id {provider.get_kind_display()} could have")
    if key is None and apikey_for_call(user=user, provider=provider) is None:
        raise ModelNotFound(
            f"No model {ref!r} yet: add a key for {provider.get_kind_display()} to use models it has not listed"
        )
    owner = provider.owner if provider.owner_id else user
    return AIModel(provider=provider, model_id=model_id, owner=owner, source=ModelSource.NAMED)


def model_remember(*, model: AIModel) -> AIModel:
    """Store a model named on first use, now that its provider answered with it."""
    if model.pk is None:
        row, _ = AIModel.objects.get_or_create(
            provider=model.provider, model_id=model.model_id, owner=model.owner, defaults={"source": model.source}
        )
        model.pk = row.pk
    return model


# --- snapshots of the servers -------------------------------------------------------------------------


def _snapshot_cache_key(provider: Provider) -> str:
    where = hashlib.sha1(provider.effective_base_url.encode()).hexdigest()[:12]
    return f"runtime:snapshot:{provider.pk}:{where}"


def runtime_snapshot(*, provider: Provider, refresh: bool = False, changed_after: datetime | None = None) -> Snapshot:
    """The server's model list, from the cache unless asked to refresh or the cached copy predates a
    change this app made (a load finished in a worker whose cache this process cannot see)."""
    key = _snapshot_cache_key(provider)
    snapshot = None if refresh else _snapshot_cached(key)
    if snapshot is not None and (changed_after is None or snapshot.fetched_at >= changed_after.timestamp()):
        return snapshot
    snapshot = runtime_for(provider).snapshot()
    cache.set_many({key: snapshot, _stamp_key(key): snapshot.fetched_at}, settings.MODEL_STATUS_TTL)
    _SNAPSHOT_COPIES[key] = snapshot
    return snapshot


# This process's copy of each server's last snapshot. The cache holds each snapshot's time under a small
# key of its own: while that time is the copy's, the copy is the snapshot the cache holds, and a listing
# need not unpickle 500 models again. Any process's refresh or forgetting changes or drops the time.
_SNAPSHOT_COPIES: dict[str, Snapshot] = {}


def _stamp_key(key: str) -> str:
    return f"{key}:at"


def _snapshot_cached(key: str) -> Snapshot | None:
    stamp = cache.get(_stamp_key(key))
    if stamp is None:
        return None
    copy = _SNAPSHOT_COPIES.get(key)
    if copy is not None and copy.fetched_at == stamp:
        return copy
    snapshot: Snapshot | None = cache.get(key)
    if snapshot is not None and snapshot.fetched_at == stamp:
        _SNAPSHOT_COPIES[key] = snapshot
    return snapshot


def runtime_snapshot_forget(*, provider: Provider) -> None:
    key = _snapshot_cache_key(provider)
    cache.delete_many([key, _stamp_key(key)])
    _SNAPSHOT_COPIES.pop(key, None)


def _discover(
    provider: Provider, listed: dict[str, RuntimeModel], known: dict[str, AIModel], owner_id: int | None
) -> tuple[list[AIModel], int, int]:
    """Store what the server lists and the registry lacks; refresh what changed. Returns the new rows, the
    number updated and the number left out: a provider keeps at most MAX_MODELS_PER_PROVIDER entries per
    owner, so a server listing 20,000 ids cannot swell every page. Writes only when something differs,
    so a steady refresh costs no write."""
    room = max(0, settings.MAX_MODELS_PER_PROVIDER - len(known))
    unknown = sorted(key for key in listed if key not in known)
    left_out = max(0, len(unknown) - room)
    new = [_model_from_runtime(provider, listed[key], owner_id) for key in unknown[:room]]
    if new:
        AIModel.objects.bulk_create(new, ignore_conflicts=True)
        new = list(
            AIModel.objects.select_related("provider", "provider__owner").filter(
                provider=provider, owner_id=owner_id, model_id__in=[m.model_id for m in new]
            )
        )
    changed = []
    for key, rm in listed.items():
        model = known.get(key)
        if model is not None and _apply_runtime_facts(model, rm):
            changed.append(model)
    if changed:
        AIModel.objects.bulk_update(changed, ["display_name", "model_type", "context_length", "size_bytes", "details"])
    return new, len(changed), left_out


def _model_from_runtime(provider: Provider, rm: RuntimeModel, owner_id: int | None) -> AIModel:
    model = AIModel(provider=provider, model_id=rm.key, source=ModelSource.DISCOVERED, owner_id=owner_id)
    _apply_runtime_facts(model, rm)
    return model


def _apply_runtime_facts(model: AIModel, rm: RuntimeModel) -> bool:
    facts = {
        "model_type": rm.model_type,
        "context_length": rm.max_context_length,
        "size_bytes": rm.size_bytes,
        "details": rm.details,
    }
    if model.source in (ModelSource.DISCOVERED, ModelSource.NAMED):
        facts["display_name"] = rm.display_name
    changed = False
    for name, value in facts.items():
        if value not in (None, "", {}) and getattr(model, name) != value:
            setattr(model, name, value)
            changed = True
    return changed


def _entries_owner(provider: Provider, key: ApiKey | None) -> int | None:
    """Whose entries a listing makes: a private provider's are its owner's; a listing made with a user's own
    key is that user's; only a shared key (staff) or the instance's own server adds instance-wide entries."""
    if provider.owner_id is not None:
        return provider.owner_id
    return key.owner_id if key is not None else None


def models_store_remote(*, provider: Provider, remote: Iterable[RemoteModel], owner_id: int | None) -> SyncResult:
    """Store the models a cloud provider lists (from a key test or Sync) as `owner_id`'s entries."""
    remote = list(remote)
    listed = {
        m.id: RuntimeModel(
            key=m.id,
            display_name=m.display_name or m.id,
            model_type="embedding" if "embed" in m.id else "llm",
            instance_ids=(),
            max_context_length=m.context_length,
            size_bytes=None,
            details=m.details,
        )
        for m in remote
    }
    # An owner's entries need no copy of what the instance-wide list already has.
    shared = set(provider.models.filter(owner__isnull=True).values_list("model_id", flat=True))
    if owner_id is not None:
        listed = {k: v for k, v in listed.items() if k not in shared}
    known = {m.model_id: m for m in provider.models.select_related("provider").filter(owner_id=owner_id)}
    new, updated, left_out = _discover(provider, listed, known, owner_id)
    everything = set(listed) | (shared if owner_id is not None else set())
    missing = sorted(k for k in known if k not in everything)
    total = len({m.id for m in remote})
    return SyncResult(provider.name, True, "", total, len(new), updated, missing, left_out)


# --- status -------------------------------------------------------------------------------------------


def _state_of(
    model: AIModel, snapshot: Snapshot | None, key: ApiKey | None, now: datetime, viewer: AbstractBaseUser | None
) -> ModelStatus:
    def state(status: str, reason: str = "") -> ModelStatus:
        return ModelStatus(model=model, status=status, reason=reason)

    if not model.active:
        return state(Status.INACTIVE, "Switched off by an admin")
    if not model.provider.enabled:
        return state(Status.INACTIVE, f"Provider {model.provider.name} is disabled")
    claim = _load_claim_outcome(model, snapshot, now)
    if claim == ClaimOutcome.HELD:
        since = now - (model.load_started_at or now)
        return state(Status.LOADING, f"Load started {int(since.total_seconds())} s ago")
    if claim == ClaimOutcome.INTERRUPTED:
        return state(Status.FAILED, LOAD_INTERRUPTED)
    # A claim the server has outgrown (it lists the model loaded) says nothing more: the live state below.
    if model.cooldown_until and model.cooldown_until > now:
        detailed = provider_details_visible(user=viewer, provider=model.provider)
        reason = model.last_error if detailed else model.last_error_public
        return state(Status.FAILED, reason or "Recent calls failed; cooling down")
    if not model.is_local:
        if key is None:
            kind = model.provider.get_kind_display()
            return state(Status.NO_KEY, f"No API key for {kind}: add one on the API keys page")
        if key.failing_reason:
            return state(Status.NO_KEY, apikey_failure_for(user=viewer, key=key))
        return state(Status.AVAILABLE)
    if snapshot is None or not snapshot.ok:
        return state(Status.UNREACHABLE, snapshot.error if snapshot else "Not asked yet")
    runtime_model = snapshot.models.get(model.model_id)
    if runtime_model is None:
        return state(Status.FAILED, f"{model.provider.get_kind_display()} no longer lists this model")
    if runtime_model.loaded:
        return state(Status.LOADED)
    if model.load_state == LoadState.FAILED:
        return state(Status.FAILED, model.load_error)
    return state(Status.NOT_LOADED)


class ClaimOutcome:
    HELD = "held"  # a load is under way: 🔄
    LOADED = "loaded"  # the server lists the model loaded, whatever the claim says: release it
    INTERRUPTED = "interrupted"  # the lease ran out: end it as failed


def _load_claim_stale(model: AIModel, now: datetime) -> bool:
    lease = timedelta(seconds=settings.MODEL_LOAD_STALE_SECONDS)
    return model.load_started_at is None or now - model.load_started_at >= lease


def _load_claim_outcome(model: AIModel, snapshot: Snapshot | None, now: datetime) -> str | None:
    """What becomes of a model's load claim (None: it holds none). What the runtime reports wins over the
    claim, and a claim older than its lease has lost its worker: the same rules for every runtime."""
    if model.load_state != LoadState.LOADING:
        return None
    listed = snapshot.models.get(model.model_id) if snapshot is not None and snapshot.ok else None
    # Only an answer given after the claim was made can speak for its load: a cached one from before may
    # show the model loaded when it has been unloaded since, and releasing on it would drop a wanted load.
    after_claim = (
        snapshot is not None
        and model.load_started_at is not None
        and snapshot.fetched_at >= model.load_started_at.timestamp()
    )
    if after_claim and listed is not None and listed.loaded:
        return ClaimOutcome.LOADED
    if _load_claim_stale(model, now):
        return ClaimOutcome.INTERRUPTED
    return ClaimOutcome.HELD


def _load_claim_end(model: AIModel, *, error: str = "", changed_at: datetime | None = None) -> bool:
    """End `model`'s claim (as failed with `error`, else released), unless a newer claim replaced it
    meanwhile. `changed_at` tells other processes that their cached snapshots before it are stale."""
    fields: dict[str, object] = {"load_state": LoadState.FAILED if error else LoadState.IDLE, "load_error": error}
    if changed_at is not None:
        fields["state_changed_at"] = changed_at
    ended = AIModel.objects.filter(pk=model.pk, load_state=LoadState.LOADING, load_task_id=model.load_task_id).update(
        **fields
    )
    if ended:
        for name, value in fields.items():
            setattr(model, name, value)
    return bool(ended)


def _load_claims_settle(models: Iterable[AIModel], snapshots: dict[int, Snapshot], now: datetime) -> None:
    """Write down the claims a status read found over: a read writes only when a claim ends, once."""
    for model in models:
        snapshot = snapshots.get(model.provider_id)
        outcome = _load_claim_outcome(model, snapshot, now)
        if outcome == ClaimOutcome.LOADED and snapshot is not None:
            # Stamped with the snapshot's time, so the snapshot that showed it stays good in this process.
            changed_at = datetime.fromtimestamp(snapshot.fetched_at, tz=now.tzinfo)
            _load_claim_end(model, changed_at=changed_at)
        elif outcome == ClaimOutcome.INTERRUPTED:
            _load_claim_end(model, error=LOAD_INTERRUPTED)


def _models_with_providers(queryset: QuerySet[AIModel], providers: dict[int, Provider]) -> list[AIModel]:
    """The rows, each given its provider from `providers` (topped up by one query if one is missing): a
    few provider objects shared by 500 rows, where a join would build one per row."""
    models = list(queryset)
    missing = {m.provider_id for m in models} - providers.keys()
    if missing:
        providers.update((p.pk, p) for p in Provider.objects.select_related("owner").filter(pk__in=missing))
    attach = AIModel.provider.field.set_cached_value
    for model in models:
        attach(model, providers[model.provider_id])
    return models


def _keys_with_providers(keys: dict[int, ApiKey], providers: dict[int, Provider]) -> None:
    """Give each key the provider already at hand: a refused key's reason names its provider."""
    attach = ApiKey.provider.field.set_cached_value
    for key in keys.values():
        if key.provider_id in providers:
            attach(key, providers[key.provider_id])


def model_list_with_status(
    *,
    user: AbstractBaseUser | None = None,
    refresh: bool = False,
    models: Iterable[AIModel] | None = None,
    keys: dict[int, ApiKey] | None = None,
) -> list[ModelStatus]:
    """Every model `user` may see (or the given ones) with its live status for them (their keys make cloud
    models available). Each local server is asked at most one question, whatever the number of models;
    new models the servers list are stored on the way. Cloud servers are not asked: a key test or Sync
    lists their models, a call names one, and a failing call marks its model or its key. `keys` (provider
    id -> the key a call would use) spares the query for them when the caller has already read them."""
    return model_listing(user=user, refresh=refresh, models=models, keys=keys).statuses


@dataclass(frozen=True)
class Listing:
    """Statuses with what they were made from besides the rows: the local servers' snapshots and the clock."""

    statuses: list[ModelStatus]
    # For each snapshot read (a local server's, even one with no models yet): the cache key of its time, and
    # that time. While the cache holds the same ones, a listing reads the same snapshots: any process's
    # refresh or forgetting changes or drops them, and so does their TTL running out.
    snapshot_stamps: dict[str, float]
    now: datetime

    def valid_until(self) -> datetime | None:
        """The first moment the clock alone changes a status (or a reason) read at `now`: a cooldown ends,
        a held load's "started N s ago" counts one more second or its lease runs out (`_state_of`). None:
        only a changed row or snapshot can change them."""
        lease = timedelta(seconds=settings.MODEL_LOAD_STALE_SECONDS)
        moments: list[datetime] = []
        for status in self.statuses:
            model = status.model
            if model.cooldown_until is not None and model.cooldown_until > self.now:
                moments.append(model.cooldown_until)
            if model.load_state == LoadState.LOADING:
                started = model.load_started_at
                since = (self.now - started).total_seconds() if started is not None else -1.0
                if since < 0:
                    moments.append(self.now)  # no start, or one in this clock's future: nothing to keep
                else:
                    moments.append(started + timedelta(seconds=int(since) + 1))
                    moments.append(started + lease)
        return min(moments, default=None)


def model_listing(
    *,
    user: AbstractBaseUser | None = None,
    refresh: bool = False,
    models: Iterable[AIModel] | None = None,
    keys: dict[int, ApiKey] | None = None,
) -> Listing:
    """`model_list_with_status`, with the snapshots and the time the statuses were read for."""
    if models is None:
        visible = {p.pk: p for p in providers_visible(user=user)}
        models = _models_with_providers(AIModel.objects.filter(models_visible_q(user)), visible)
        providers: Iterable[Provider] = [p for p in visible.values() if p.enabled]
        discover = True
    else:
        models = list(models)
        providers = {m.provider for m in models}
        discover = False
    by_provider: dict[int, list[AIModel]] = defaultdict(list)
    for model in models:
        by_provider[model.provider_id].append(model)

    snapshots: dict[int, Snapshot] = {}
    snapshot_stamps: dict[str, float] = {}
    for provider in providers:
        if not provider.is_local or not provider.enabled:
            continue
        own = by_provider.get(provider.pk, [])
        stamps = [m.state_changed_at for m in own if m.state_changed_at]
        snapshot = runtime_snapshot(provider=provider, refresh=refresh, changed_after=max(stamps, default=None))
        snapshots[provider.pk] = snapshot
        snapshot_stamps[_stamp_key(_snapshot_cache_key(provider))] = snapshot.fetched_at
        if discover and snapshot.ok:
            new, _, _ = _discover(provider, snapshot.models, {m.model_id: m for m in own}, provider.owner_id)
            models.extend(new)

    if keys is None:
        at_hand = {m.provider_id: m.provider for m in models}
        keys = usable_keys_by_provider(user=user) if any(not p.is_local for p in at_hand.values()) else {}
        _keys_with_providers(keys, at_hand)
    now = timezone.now()
    statuses = [_state_of(m, snapshots.get(m.provider_id), keys.get(m.provider_id), now, user) for m in models]
    _load_claims_settle(models, snapshots, now)
    # Instance-wide providers first, then the caller's own servers, each by name.
    statuses.sort(
        key=lambda s: (s.model.provider.is_private, s.model.provider.name, -s.model.priority, s.model.name.lower())
    )
    return Listing(statuses, snapshot_stamps, now)


# --- failures and cooldowns ---------------------------------------------------------------------------


def model_status(
    *,
    model: AIModel,
    user: AbstractBaseUser | None = None,
    refresh: bool = False,
    keys: dict[int, ApiKey] | None = None,
) -> ModelStatus:
    return model_list_with_status(user=user, refresh=refresh, models=[model], keys=keys)[0]


# What a failure says something about. A refused or spent key is that key's (its owner's) problem, and a
# bad request the caller's: neither may cool a model down for everybody. The rest is the upstream's state,
# shared by everyone who reaches the model through the same base URL.
KEY_FAULTS = frozenset({FailureCode.AUTH, FailureCode.QUOTA})
CALLER_FAULTS = frozenset({FailureCode.BAD_REQUEST, FailureCode.CONTEXT, FailureCode.BLOCKED})


def health_record_failure(*, model: AIModel, error: ProviderError, key_id: int | None) -> None:
    """Attribute a failed call to what failed: the key that was refused, or the model behind its base URL."""
    if error.code in KEY_FAULTS and key_id is not None:
        apikey_mark_failing(key_id=key_id, reason=error.message)
        return
    if error.code in CALLER_FAULTS or model.pk is None:
        return  # a model named on first use has no entry to mark until it has answered once
    model_record_failure(
        model=model, reason=error.message, public_reason=error.public_message, retryable=error.retryable
    )


def model_record_failure(*, model: AIModel, reason: str, retryable: bool, public_reason: str = "") -> None:
    """Count a failure; at MODEL_ALLOWED_FAILS in a row, or at once when retrying cannot help, the model
    cools down so that nobody sends it work for MODEL_COOLDOWN_SECONDS. `reason` holds the upstream's own
    words (shown to staff and the provider's owner), `public_reason` the generic ones everyone else sees."""
    with transaction.atomic():
        row = AIModel.objects.select_for_update().get(pk=model.pk)
        row.failure_count += 1
        row.last_error = reason
        row.last_error_public = (public_reason or "Recent calls failed")[:300]
        if not retryable or row.failure_count >= settings.MODEL_ALLOWED_FAILS:
            row.cooldown_until = timezone.now() + timedelta(seconds=settings.MODEL_COOLDOWN_SECONDS)
        row.save(update_fields=["failure_count", "last_error", "last_error_public", "cooldown_until"])
    model.failure_count, model.last_error, model.cooldown_until = row.failure_count, row.last_error, row.cooldown_until
    model.last_error_public = row.last_error_public


def model_record_success(*, model: AIModel) -> None:
    if model.pk is not None and (model.failure_count or model.cooldown_until):
        AIModel.objects.filter(pk=model.pk).update(
            failure_count=0, cooldown_until=None, last_error="", last_error_public=""
        )
        model.failure_count, model.cooldown_until, model.last_error, model.last_error_public = 0, None, "", ""


def model_failures_reset(*, user: AbstractBaseUser | None = None) -> int:
    """Forget the failures, cooldowns and failed loads the caller may see, the refusals of their keys, and
    the cached answers of those servers. Staff (or no user: a management task) reset the instance-wide
    models and shared keys too; anyone else resets only their own models and keys."""
    if user is None:
        models, keys, providers = AIModel.objects.all(), ApiKey.objects.all(), Provider.objects.all()
    elif user.is_staff:
        models = AIModel.objects.filter(models_visible_q(user))
        keys = ApiKey.objects.filter(Q(owner__isnull=True) | Q(owner=user))
        providers = providers_visible(user=user)
    else:
        models = AIModel.objects.filter(Q(owner=user) | Q(provider__owner=user))
        keys = ApiKey.objects.filter(owner=user)
        providers = Provider.objects.filter(owner=user)
    failing = Q(failure_count__gt=0) | Q(cooldown_until__isnull=False) | Q(load_state=LoadState.FAILED)
    count = models.filter(failing).update(
        failure_count=0,
        cooldown_until=None,
        last_error="",
        last_error_public="",
        load_error="",
        load_state=LoadState.IDLE,
    )
    keys.exclude(failing_reason="").update(failing_reason="")
    for provider in providers:
        runtime_snapshot_forget(provider=provider)
    return count


# --- load and unload ----------------------------------------------------------------------------------


def _require_local(model: AIModel) -> None:
    if not model.is_local:
        raise ModelNotLocal(f"{model.ref} is a cloud model; only local models are loaded")
    if not model.active or not model.provider.enabled:
        raise ModelConflict(f"{model.ref} is switched off")


def model_load_start(*, model: AIModel, options: LoadOptions = NO_OPTIONS) -> str:
    """Start loading a local model in the worker and answer at once: "loaded" if it already is,
    else "loading". Two requests while a load runs start one load (with the first one's options).
    Options the model's server cannot take are refused before anything starts."""
    _require_local(model)
    refused = sorted(set(options.given()) - model.provider.load_options)
    if refused:
        takes = ", ".join(sorted(model.provider.load_options)) or "none"
        raise LoadOptionsRefused(
            f"{model.provider.get_kind_display()} takes no load option {', '.join(refused)} (it takes: {takes})"
        )
    current = model_status(model=model)
    if current.status == Status.LOADED:
        return Status.LOADED
    if current.status == Status.UNREACHABLE:
        raise RuntimeUnavailable(current.reason)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MODEL_LOAD_STALE_SECONDS)
    # The task id is chosen here, so the claim names its task before any worker can see the message.
    task_id = str(uuid.uuid4())
    claimed = (
        AIModel.objects.filter(pk=model.pk)
        .exclude(load_state=LoadState.LOADING, load_started_at__gt=stale)
        .update(load_state=LoadState.LOADING, load_started_at=now, load_error="", load_task_id=task_id, load_worker="")
    )
    if claimed:
        # By name: the task module imports this one.
        given = options.given()
        celery_app.tasks[LOAD_TASK].apply_async((model.pk, given) if given else (model.pk,), task_id=task_id)
    model.refresh_from_db(
        fields=["load_state", "load_started_at", "load_error", "load_task_id", "load_worker", "state_changed_at"]
    )
    return Status.LOADING


def model_load_run(*, model_id: int, task_id: str, worker: str = "", options: dict | None = None) -> None:
    """The slow part of a load, run by the worker: ask the server and record how it went. Idempotent: it
    runs only for the claim that names `task_id` (a message delivered again after its claim ended, was
    cancelled or replaced does nothing), and a model the server holds already, or is loading already, is
    not loaded a second time. `worker` ("<node>#<life>") is written on the claim for the worker-start check;
    `options` are the load options the claim was made with."""
    model = AIModel.objects.select_related("provider").get(pk=model_id)
    if model.load_state != LoadState.LOADING or model.load_task_id != task_id:
        return  # ended, cancelled or replaced while queued: nobody wants this load any more
    AIModel.objects.filter(pk=model.pk, load_task_id=task_id).update(load_worker=worker)
    runtime = runtime_for(model.provider)
    started = time.monotonic()
    try:
        _load_once(runtime, model.model_id, timeout=settings.MODEL_LOAD_TIMEOUT, options=LoadOptions(**(options or {})))
    except UpstreamError as exc:
        MODEL_LOAD_SECONDS.labels(model.ref, "failed").observe(time.monotonic() - started)
        ended = AIModel.objects.filter(pk=model.pk, load_state=LoadState.LOADING, load_task_id=task_id).update(
            load_state=LoadState.FAILED, load_error=exc.message, state_changed_at=timezone.now()
        )
        if ended:  # a cancelled or replaced claim's failure is nobody's news
            # A refused connection is the server's state, not the model's: it does not earn a cooldown.
            model_record_failure(model=model, reason=f"Load failed: {exc.message}", retryable=exc.retryable)
    else:
        # Recorded whoever holds the claim now: the model is in memory, which ends any claim.
        MODEL_LOAD_SECONDS.labels(model.ref, "loaded").observe(time.monotonic() - started)
        AIModel.objects.filter(pk=model.pk).update(
            load_state=LoadState.IDLE,
            load_error="",
            state_changed_at=timezone.now(),
            failure_count=0,
            cooldown_until=None,
            last_error="",
        )
    runtime_snapshot_forget(provider=model.provider)


def _load_once(runtime: LocalRuntime, key: str, *, timeout: float, options: LoadOptions = NO_OPTIONS) -> None:
    """Load `key` unless the server holds it already; wait for a load the server reports under way
    instead of starting another (a task run again after a crash must not load a second copy)."""
    deadline = time.monotonic() + timeout
    snapshot = runtime.snapshot()
    listed = snapshot.models.get(key) if snapshot.ok else None
    if listed is None or not (listed.loaded or listed.loading):
        runtime.load(key, timeout=timeout, options=options)
        return
    while not listed.loaded:
        if time.monotonic() >= deadline:
            raise UpstreamError(f"{key} was not loaded within {timeout:.0f} s")
        time.sleep(UPSTREAM_LOAD_POLL_SECONDS)  # polling a server with a deadline: it has no push
        snapshot = runtime.snapshot()
        listed = snapshot.models.get(key) if snapshot.ok else None
        if listed is None or not (listed.loaded or listed.loading):
            raise UpstreamError(f"The server's own load of {key} ended without loading it")


def model_load_cancel(*, model: AIModel) -> None:
    """Drop the load claim on `model` (staff): the model shows its live state again at once. A load the
    server is already doing cannot be called back; if it finishes, the model shows as loaded."""
    if not model.is_local:
        raise ModelNotLocal(f"{model.ref} is a cloud model; only local models are loaded")
    cancelled = AIModel.objects.filter(pk=model.pk, load_state=LoadState.LOADING).update(
        load_state=LoadState.IDLE, load_error=""
    )
    if cancelled:
        runtime_snapshot_forget(provider=model.provider)
    model.refresh_from_db(fields=["load_state", "load_error", "load_task_id", "load_worker"])


def model_load_claims_recover(*, worker: str) -> int:
    """Run when a worker starts (`worker` is "<node>#<life>"): end the claims whose task cannot be running,
    namely those an earlier life of this node held (a node name is live once at a time, so its tasks died
    with it) and those past their lease, whoever held them. Each becomes loaded if its server lists the
    model loaded, failed with LOAD_INTERRUPTED otherwise. Claims another live node holds, or that no
    worker has started yet (their message may still be queued), are left to their task or their lease.
    Returns the number of claims ended."""
    node = worker.partition("#")[0]
    now = timezone.now()
    dead = Q(load_worker__startswith=f"{node}#") & ~Q(load_worker=worker)
    stale = Q(load_started_at__isnull=True) | Q(
        load_started_at__lte=now - timedelta(seconds=settings.MODEL_LOAD_STALE_SECONDS)
    )
    claims = AIModel.objects.select_related("provider").filter(Q(load_state=LoadState.LOADING) & (dead | stale))
    snapshots: dict[int, Snapshot] = {}
    ended = 0
    for model in claims:
        if model.provider_id not in snapshots:
            snapshots[model.provider_id] = runtime_snapshot(provider=model.provider, refresh=True)
        snapshot = snapshots[model.provider_id]
        listed = snapshot.models.get(model.model_id) if snapshot.ok else None
        if listed is not None and listed.loaded:
            ended += _load_claim_end(model, changed_at=datetime.fromtimestamp(snapshot.fetched_at, tz=now.tzinfo))
        else:
            ended += _load_claim_end(model, error=LOAD_INTERRUPTED)
    return ended


async def model_wait_for_load(*, model_id: int, timeout: float, poll_interval: float = 0.25) -> ModelStatus:
    """Wait until a load ends (loaded or failed) or `timeout` seconds pass; the last status either way.
    Waits on the database, which the worker writes, so it asks the server only when the load ended."""
    deadline = time.monotonic() + timeout

    def current() -> ModelStatus:
        return model_status(model=AIModel.objects.select_related("provider").get(pk=model_id))

    while True:
        status = await sync_to_async(current)()
        remaining = deadline - time.monotonic()
        if status.status != Status.LOADING or remaining <= 0:
            return status
        await asyncio.sleep(min(poll_interval, remaining))


def _require_manager(user: AbstractBaseUser | None, provider: Provider) -> None:
    """What changes a server for everybody (unload, download) is staff's on the instance's own servers
    (another user may be using them) and the owner's on a private one. No user: a management task."""
    if user is not None and not (user.is_staff or provider.owner_id == user.pk):
        raise ModelForbidden("Only staff can do this.")  # the words of every staff-only refusal


def model_unload(*, model: AIModel, user: AbstractBaseUser | None = None) -> None:
    """Unload every instance of the model the server holds (LM Studio may hold `key`, `key:2`, …)."""
    _require_manager(user, model.provider)
    _require_local(model)
    snapshot = runtime_snapshot(provider=model.provider, refresh=True)
    if not snapshot.ok:
        raise RuntimeUnavailable(snapshot.error)
    runtime_model = snapshot.models.get(model.model_id)
    if runtime_model is None or not runtime_model.loaded:
        return
    try:
        runtime_for(model.provider).unload(runtime_model.instance_ids)
    except UpstreamError as exc:
        if exc.retryable:
            raise RuntimeUnavailable(exc.message) from None
        raise ModelConflict(exc.message) from None
    finally:
        model.state_changed_at = timezone.now()
        AIModel.objects.filter(pk=model.pk).update(state_changed_at=model.state_changed_at)
        runtime_snapshot_forget(provider=model.provider)


# --- downloads ----------------------------------------------------------------------------------------

DOWNLOAD_REF_MAX = 500


def job_progress(job: DownloadJob) -> float | None:
    if job.status in ("completed", "already_downloaded"):
        return 1.0
    if job.total_size_bytes and job.downloaded_bytes is not None:
        return max(0.0, min(1.0, job.downloaded_bytes / job.total_size_bytes))
    return None


def local_provider_get(*, name: str, user: AbstractBaseUser | None) -> Provider:
    provider = providers_visible(user=user).filter(name=name).first()
    if provider is None or not provider.is_local:
        raise ModelNotFound(f"No local server {name!r}")
    return provider


def _upstream_refusal(exc: UpstreamError) -> ModelError:
    if exc.status_code == 404:
        return ModelNotFound(exc.message)
    return RuntimeUnavailable(exc.message) if exc.retryable else ModelConflict(exc.message)


def download_servers(*, user: AbstractBaseUser | None) -> list[Provider]:
    """The enabled local servers `user` may have download models: those that can, that they manage."""
    servers = providers_visible(user=user).filter(enabled=True)
    is_staff = bool(user is not None and user.is_staff)
    return [
        p
        for p in servers
        if p.is_local and p.can_download and (is_staff or (user is not None and p.owner_id == user.pk))
    ]


def model_download_start(*, provider: Provider, model: str, user: AbstractBaseUser | None) -> DownloadJob:
    """Ask the server to download `model` (a catalogue id or a Hugging Face URL, as the server takes it);
    the job answers at once and `model_download_status` follows it."""
    _require_manager(user, provider)
    model = model.strip()
    if not model or len(model) > DOWNLOAD_REF_MAX or not model.isprintable() or any(c.isspace() for c in model):
        raise ModelError("Name the model to download: a catalogue id like qwen/qwen3-4b, or a URL")
    if not provider.enabled:
        raise ModelConflict(f"Provider {provider.name} is disabled")
    try:
        job = runtime_for(provider).download(model)
    except UpstreamError as exc:
        raise _upstream_refusal(exc) from None
    if job.finished:
        _sync_local(provider)
    return job


def model_download_status(*, provider: Provider, job_id: str, user: AbstractBaseUser | None) -> DownloadJob:
    """Where a download stands; once it has completed, the new model is listed (stored) at once."""
    _require_manager(user, provider)
    if not job_id or len(job_id) > 200 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in job_id):
        raise ModelNotFound(f"No download {job_id!r}")
    try:
        job = runtime_for(provider).download_status(job_id)
    except UpstreamError as exc:
        raise _upstream_refusal(exc) from None
    if job.status == "completed":
        _sync_local(provider)
    return job


# --- discovery ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    provider: str
    ok: bool
    error: str
    listed: int
    added: int
    updated: int
    missing: list[str]
    left_out: int = 0


@dataclass(frozen=True)
class ListingResult:
    """What listing a cloud provider's models with one key gave: a key test and a Sync both are this."""

    ok: bool
    detail: str
    latency_ms: int | None
    auth_refused: bool = False
    sync: SyncResult | None = None


def provider_models_list(*, provider: Provider, key: ApiKey) -> ListingResult:
    """Ask `provider` for its models with `key` (its cheapest authenticated call; a proxy with no model list
    gets a 1-token call instead) and store them as entries of the key's owner, or instance-wide for a
    shared key. The one way models of a cloud provider are listed: key tests and Sync both come here."""
    try:
        adapter = adapter_for(provider, apikey_plaintext(key))
    except DecryptError as exc:
        return ListingResult(False, str(exc), None)
    started = time.monotonic()
    try:
        try:
            remote = async_to_sync(adapter.list_models)()
        except ProviderError as exc:
            if exc.code != FailureCode.NOT_FOUND:
                raise
            async_to_sync(adapter.check_key)()
            remote = []
    except ProviderError as exc:
        latency = int((time.monotonic() - started) * 1000)
        return ListingResult(False, exc.message, latency, auth_refused=exc.code in KEY_FAULTS)
    latency = int((time.monotonic() - started) * 1000)
    result = models_store_remote(provider=provider, remote=remote, owner_id=_entries_owner(provider, key))
    cut = f"; {result.left_out} left out: MAX_MODELS_PER_PROVIDER reached" if result.left_out else ""
    detail = f"Key works: {result.listed} models listed ({result.added} new{cut})."
    return ListingResult(True, detail, latency, sync=result)


def models_sync(*, user: AbstractBaseUser | None = None) -> list[SyncResult]:
    """Ask every enabled server `user` may see for its models now and store what is new: local servers
    always, cloud providers for which `user` (or a shared key) has a key."""
    results = []
    for provider in providers_visible(user=user).filter(enabled=True):
        if not provider.is_local:
            key = apikey_for_call(user=user, provider=provider)
            if key is None:
                continue  # nothing to ask with; its models stay as they are
            listing = provider_models_list(provider=provider, key=key)
            if listing.ok and listing.sync is not None:
                results.append(listing.sync)
            else:
                if listing.auth_refused:
                    apikey_mark_failing(key_id=key.pk, reason=listing.detail)
                results.append(SyncResult(provider.name, False, listing.detail, 0, 0, 0, []))
            continue
        results.append(_sync_local(provider))
    return results


def _sync_local(provider: Provider) -> SyncResult:
    """Ask a local server for its models now and store what is new."""
    snapshot = runtime_snapshot(provider=provider, refresh=True)
    if not snapshot.ok:
        return SyncResult(provider.name, False, snapshot.error, 0, 0, 0, [])
    known = {m.model_id: m for m in provider.models.select_related("provider").filter(owner_id=provider.owner_id)}
    new, updated, left_out = _discover(provider, snapshot.models, known, provider.owner_id)
    missing = sorted(key for key in known if key not in snapshot.models)
    return SyncResult(provider.name, True, "", len(snapshot.models), len(new), updated, missing, left_out)


# --- alternatives -------------------------------------------------------------------------------------

TIER_REASONS = {
    "external": "a cloud model with a working key answers at once",
    "loaded": "a local model already in memory answers at once",
    "local": "a local model that must be loaded first",
}


def _tier_of(status: ModelStatus) -> str | None:
    if status.status == Status.AVAILABLE:
        return "external"
    if status.model.is_local and status.status == Status.LOADED:
        return "loaded"
    if status.model.is_local and status.status == Status.NOT_LOADED:
        return "local"
    return None


def model_suggest_alternative(
    *,
    model: AIModel,
    user: AbstractBaseUser | None = None,
    statuses: list[ModelStatus] | None = None,
    exclude: Iterable[int] = (),
) -> Suggestion | None:
    """The model to use instead of `model`: tiers in FALLBACK_ORDER (cloud available, local loaded,
    local needing a load), never `model` itself nor one failing or cooling down; within a tier by
    priority, then name. A local model's prompt goes to the cloud only if ALLOW_LOCAL_TO_CLOUD_FALLBACK."""
    skip = {model.pk, *exclude}
    order = [tier for tier in settings.FALLBACK_ORDER if tier in TIER_REASONS]
    if model.is_local and not settings.ALLOW_LOCAL_TO_CLOUD_FALLBACK:
        order = [tier for tier in order if tier != "external"]
    if statuses is None and order[:1] == ["external"]:
        # The first tier holds cloud models only, whose status needs no server's answer: when one of them
        # qualifies it wins whatever the local models' state, so those (maybe hundreds) are not read.
        cloud = models_visible(user=user).exclude(provider__kind__in=list(LOCAL_KINDS))
        found = _best_alternative(model_list_with_status(user=user, models=cloud), order, skip)
        if found is not None:
            return found
    if statuses is None:
        statuses = model_list_with_status(user=user)
    return _best_alternative(statuses, order, skip)


def _best_alternative(statuses: Iterable[ModelStatus], order: list[str], skip: set[int]) -> Suggestion | None:
    ranked: list[tuple[int, int, int, str, ModelStatus, str]] = []
    for status in statuses:
        candidate = status.model
        tier = _tier_of(status)
        if candidate.pk in skip or tier not in order or not candidate.can_chat:
            continue
        key = (order.index(tier), -candidate.priority, -candidate.provider.priority, candidate.name.lower())
        ranked.append((*key, status, tier))
    if not ranked:
        return None
    *_, best, tier = min(ranked, key=lambda row: row[:4])
    return Suggestion(
        model=best.model,
        status=best,
        tier=tier,
        reason=f"{best.model.name}: {TIER_REASONS[tier]}",
    )


def model_set_active(*, model: AIModel, active: bool) -> None:
    AIModel.objects.filter(pk=model.pk).update(active=active)
    model.active = active
