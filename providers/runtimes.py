"""Local-runtime adapters. LM Studio first: its native REST API v1 (0.4+) with a fall-back to v0 (0.3.x).

LM Studio answers HTTP 200 with a junk body to paths it does not know, so the API version is told apart
by the shape of the JSON, never by the status code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.conf import settings
from django.core.cache import cache

from providers import guard
from providers.http import display_url, upstream_client

API_V1 = "v1"
API_V0 = "v0"


class UpstreamError(Exception):
    """A local server did not do what was asked; the message is fit to show a user."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable


class UnloadUnsupported(UpstreamError):
    pass


@dataclass(frozen=True)
class RuntimeModel:
    key: str
    display_name: str
    model_type: str
    instance_ids: tuple[str, ...]
    max_context_length: int | None
    size_bytes: int | None
    details: dict[str, Any] = field(default_factory=dict)
    # A load under way on the server (llama.cpp's router says so; LM Studio's list does not), which a
    # second load request must wait for rather than start again.
    loading: bool = False

    @property
    def loaded(self) -> bool:
        return bool(self.instance_ids)


@dataclass(frozen=True)
class Snapshot:
    """What one server said in answer to one question, and when."""

    ok: bool
    fetched_at: float
    models: dict[str, RuntimeModel] = field(default_factory=dict)
    error: str = ""
    api: str = ""


def error_message(payload: Any) -> str | None:
    """LM Studio reports errors as {"error": {"message": ...}} or, in older builds, {"error": "..."}."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or err)
        if isinstance(err, str):
            return err
    return None


def _parse_v1(payload: Any) -> dict[str, RuntimeModel] | None:
    if not (isinstance(payload, dict) and isinstance(payload.get("models"), list)):
        return None
    models: dict[str, RuntimeModel] = {}
    for item in payload["models"]:
        if not isinstance(item, dict) or not item.get("key"):
            continue
        quant = item.get("quantization")
        details = {
            "publisher": item.get("publisher"),
            "architecture": item.get("architecture"),
            "params": item.get("params_string"),
            "quantization": quant.get("name") if isinstance(quant, dict) else quant,
            "format": item.get("format"),
        }
        instances = item.get("loaded_instances") or []
        models[item["key"]] = RuntimeModel(
            key=item["key"],
            display_name=item.get("display_name") or item["key"],
            model_type=item.get("type") or "",
            instance_ids=tuple(str(i["id"]) for i in instances if isinstance(i, dict) and i.get("id")),
            max_context_length=item.get("max_context_length"),
            size_bytes=item.get("size_bytes"),
            details={k: v for k, v in details.items() if v},
        )
    return models


def _parse_v0(payload: Any) -> dict[str, RuntimeModel] | None:
    if not (isinstance(payload, dict) and isinstance(payload.get("data"), list)):
        return None
    models: dict[str, RuntimeModel] = {}
    for item in payload["data"]:
        if not isinstance(item, dict) or not item.get("id") or "state" not in item:
            continue
        details = {
            "publisher": item.get("publisher"),
            "architecture": item.get("arch"),
            "quantization": item.get("quantization"),
            "format": item.get("compatibility_type"),
        }
        models[item["id"]] = RuntimeModel(
            key=item["id"],
            display_name=item["id"],
            model_type=item.get("type") or "",
            # v0 names no instances; the model's own id is what a chat request addresses.
            instance_ids=(item["id"],) if item.get("state") == "loaded" else (),
            max_context_length=item.get("max_context_length"),
            size_bytes=None,
            details={k: v for k, v in details.items() if v},
        )
    return models


_PARSERS = {API_V1: ("/api/v1/models", _parse_v1), API_V0: ("/api/v0/models", _parse_v0)}


class LocalRuntime(Protocol):
    """What a local model server does for the registry: one question for the whole model list (`snapshot`),
    and loading or unloading one model. Errors are `UpstreamError`s with a message fit to show."""

    def __init__(self, *, base_url: str, token: str | None, guarded: bool) -> None: ...

    def snapshot(self) -> Snapshot: ...

    def load(self, key: str, *, timeout: float) -> None: ...

    def unload(self, instance_ids: tuple[str, ...]) -> None: ...


class LMStudioRuntime:
    def __init__(self, *, base_url: str, token: str | None, guarded: bool) -> None:
        self.base_url = base_url
        # Shown in messages: never with credentials an instance-wide URL may carry.
        self.where = display_url(base_url)
        self.client = upstream_client(self.base_url, guarded=guarded)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def _api_cache_key(self) -> str:
        return f"lmstudio:api:{self.base_url}"

    def _request(self, method: str, path: str, *, json: Any = None, timeout: float | None = None) -> Any:
        request_timeout = (
            httpx.Timeout(timeout, connect=settings.UPSTREAM_CONNECT_TIMEOUT) if timeout else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = self.client.request(method, path, json=json, headers=self.headers, timeout=request_timeout)
        except guard.BlockedByGuard as exc:
            raise UpstreamError(exc.message, retryable=False) from None
        except httpx.ConnectError:
            raise UpstreamError(f"LM Studio unreachable at {self.where} (connection refused)") from None
        except httpx.TimeoutException:
            raise UpstreamError(f"LM Studio at {self.where} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"LM Studio at {self.where} failed: {type(exc).__name__}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            detail = error_message(payload) or response.reason_phrase
            raise UpstreamError(
                f"LM Studio answered {response.status_code}: {detail}",
                status_code=response.status_code,
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        if payload is None:
            raise UpstreamError(f"LM Studio at {self.where} sent a reply that is not JSON")
        return payload

    def snapshot(self) -> Snapshot:
        """One question to the server: the API version it last spoke is asked first, so a steady
        refresh is one request; the other version is tried only when the answer has the wrong shape."""
        known = cache.get(self._api_cache_key)
        order = [API_V1, API_V0] if known != API_V0 else [API_V0, API_V1]
        try:
            for api in order:
                path, parse = _PARSERS[api]
                payload = self._request("GET", path)
                models = parse(payload)
                if models is not None:
                    cache.set(self._api_cache_key, api, None)
                    return Snapshot(ok=True, fetched_at=time.time(), models=models, api=api)
        except UpstreamError as exc:
            return Snapshot(ok=False, fetched_at=time.time(), error=exc.message)
        return Snapshot(
            ok=False,
            fetched_at=time.time(),
            error=f"The server at {self.where} does not speak LM Studio's model API (v1 or v0)",
        )

    def api_version(self) -> str:
        api = cache.get(self._api_cache_key)
        if api is None:
            snap = self.snapshot()
            if not snap.ok:
                raise UpstreamError(snap.error)
            api = snap.api
        return api

    def load(self, key: str, *, timeout: float) -> None:
        """Blocks until the model is in memory or the load failed."""
        if self.api_version() == API_V1:
            try:
                payload = self._request("POST", "/api/v1/models/load", json={"model": key}, timeout=timeout)
            except UpstreamError as exc:
                if exc.status_code is None:
                    raise
                # LM Studio answered and refused (out of memory, unknown model): asking again will not help.
                raise UpstreamError(exc.message, status_code=exc.status_code, retryable=False) from None
            if error_message(payload) or not (payload.get("instance_id") or payload.get("status") == "loaded"):
                raise UpstreamError(
                    f"LM Studio did not load {key}: {error_message(payload) or 'unexpected reply'}",
                    retryable=False,
                )
            return
        self._load_v0(key, timeout=timeout)

    def _load_v0(self, key: str, *, timeout: float) -> None:
        # v0 has no load endpoint: a one-token chat request makes LM Studio load the model just in time.
        deadline = time.monotonic() + timeout
        body = {"model": key, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "stream": False}
        payload = self._request("POST", "/v1/chat/completions", json=body, timeout=timeout)
        if error_message(payload):
            raise UpstreamError(f"LM Studio did not load {key}: {error_message(payload)}", retryable=False)
        while True:
            model = self.snapshot().models.get(key)
            if model is not None and model.loaded:
                return
            if time.monotonic() >= deadline:
                raise UpstreamError(f"{key} was not loaded within {timeout:.0f} s")
            time.sleep(0.5)

    def unload(self, instance_ids: tuple[str, ...]) -> None:
        if self.api_version() != API_V1:
            raise UnloadUnsupported(
                "This LM Studio speaks API v0, which cannot unload models: unload it in LM Studio "
                "(or upgrade to LM Studio 0.4+).",
                retryable=False,
            )
        for instance_id in instance_ids:
            self._request("POST", "/api/v1/models/unload", json={"instance_id": instance_id})
