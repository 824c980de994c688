"""Local-runtime adapters: LM Studio (native REST API v1, 0.4+, with a fall-back to v0, 0.3.x), Ollama and
llama.cpp's llama-server in router mode. Each answers one refresh with as few requests as its API allows
(LM Studio 1, Ollama 2, llama.cpp 1) and reports errors in the server's own words.

LM Studio answers HTTP 200 with a junk body to paths it does not know, so the API version is told apart
by the shape of the JSON, never by the status code; the others' replies are checked for shape too."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

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


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model, as far as the server lets the caller choose; None = the server's default.
    Each runtime says which of these it takes (`load_options`); the others are refused before a load."""

    context_length: int | None = None
    eval_batch_size: int | None = None
    flash_attention: bool | None = None
    num_experts: int | None = None
    offload_kv_cache_to_gpu: bool | None = None

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


NO_OPTIONS = LoadOptions()


@dataclass(frozen=True)
class DownloadJob:
    """A model download the server runs: where it stands, in the server's own terms."""

    job_id: str
    status: str  # downloading | paused | completed | failed | already_downloaded
    downloaded_bytes: int | None = None
    total_size_bytes: int | None = None
    bytes_per_second: float | None = None
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "already_downloaded")


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

    # The LoadOptions fields this server lets a load choose.
    load_options: frozenset[str]
    # Whether it downloads models when asked (`download`, `download_status`); else those raise.
    can_download: bool

    def __init__(self, *, base_url: str, token: str | None, guarded: bool) -> None: ...

    def snapshot(self) -> Snapshot: ...

    def load(self, key: str, *, timeout: float, options: LoadOptions = NO_OPTIONS) -> None: ...

    def unload(self, instance_ids: tuple[str, ...]) -> None: ...

    def download(self, model: str) -> DownloadJob: ...

    def download_status(self, job_id: str) -> DownloadJob: ...


class HTTPRuntime:
    """What every local server's runtime shares: one HTTP client (guarded for a user's own server), the
    optional bearer token, and errors turned into messages in the server's own words."""

    label = "The server"
    load_options: frozenset[str] = frozenset()
    can_download = False

    def __init__(self, *, base_url: str, token: str | None, guarded: bool) -> None:
        self.base_url = base_url
        # Shown in messages: never with credentials an instance-wide URL may carry.
        self.where = display_url(base_url)
        self.client = upstream_client(self.base_url, guarded=guarded)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _request(self, method: str, path: str, *, json: Any = None, timeout: float | None = None) -> Any:
        request_timeout = (
            httpx.Timeout(timeout, connect=settings.UPSTREAM_CONNECT_TIMEOUT) if timeout else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = self.client.request(method, path, json=json, headers=self.headers, timeout=request_timeout)
        except guard.BlockedByGuard as exc:
            raise UpstreamError(exc.message, retryable=False) from None
        except httpx.ConnectError:
            raise UpstreamError(f"{self.label} unreachable at {self.where} (connection refused)") from None
        except httpx.TimeoutException:
            raise UpstreamError(f"{self.label} at {self.where} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{self.label} at {self.where} failed: {type(exc).__name__}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            detail = error_message(payload) or response.reason_phrase
            raise UpstreamError(
                f"{self.label} answered {response.status_code}: {detail}",
                status_code=response.status_code,
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        if payload is None:
            raise UpstreamError(f"{self.label} at {self.where} sent a reply that is not JSON")
        return payload

    def download(self, model: str) -> DownloadJob:
        raise UpstreamError(f"{self.label} does not download models from here", retryable=False)

    def download_status(self, job_id: str) -> DownloadJob:
        raise UpstreamError(f"{self.label} does not download models from here", retryable=False)

    def _refused(self, exc: UpstreamError) -> UpstreamError:
        """A load the server answered and refused (unknown model, out of memory): asking again will not help."""
        if exc.status_code is None:
            return exc
        return UpstreamError(exc.message, status_code=exc.status_code, retryable=False)


class LMStudioRuntime(HTTPRuntime):
    label = "LM Studio"
    can_download = True  # API v1: POST /api/v1/models/download, then the job's status
    # What POST /api/v1/models/load takes besides the model (API v1 only: v0 loads by a chat request).
    load_options = frozenset(
        {"context_length", "eval_batch_size", "flash_attention", "num_experts", "offload_kv_cache_to_gpu"}
    )

    @property
    def _api_cache_key(self) -> str:
        return f"lmstudio:api:{self.base_url}"

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

    def load(self, key: str, *, timeout: float, options: LoadOptions = NO_OPTIONS) -> None:
        """Blocks until the model is in memory or the load failed."""
        if self.api_version() == API_V1:
            body = {"model": key, **options.given()}
            try:
                payload = self._request("POST", "/api/v1/models/load", json=body, timeout=timeout)
            except UpstreamError as exc:
                raise self._refused(exc) from None
            if error_message(payload) or not (payload.get("instance_id") or payload.get("status") == "loaded"):
                raise UpstreamError(
                    f"LM Studio did not load {key}: {error_message(payload) or 'unexpected reply'}",
                    retryable=False,
                )
            return
        if options.given():
            raise UpstreamError(
                "This LM Studio speaks API v0, which loads a model by a first request and takes no load options "
                "(LM Studio 0.4+ does).",
                retryable=False,
            )
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

    def _job(self, payload: Any, job_id: str = "") -> DownloadJob:
        if not isinstance(payload, dict) or not (payload.get("job_id") or job_id or payload.get("status")):
            raise UpstreamError(f"LM Studio at {self.where} sent an unexpected download reply", retryable=False)

        def number(name: str) -> Any:
            value = payload.get(name)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        return DownloadJob(
            job_id=str(payload.get("job_id") or job_id),
            status=str(payload.get("status") or "downloading"),
            downloaded_bytes=number("downloaded_bytes"),
            total_size_bytes=number("total_size_bytes"),
            bytes_per_second=number("bytes_per_second"),
            error=error_message(payload) or str(payload.get("message") or ""),
        )

    def download(self, model: str) -> DownloadJob:
        """Start a download (API v1 only): LM Studio answers with a job to follow, or says it has the model."""
        if self.api_version() != API_V1:
            raise UpstreamError(
                "This LM Studio speaks API v0, which cannot download models (0.4+ can)", retryable=False
            )
        try:
            return self._job(self._request("POST", "/api/v1/models/download", json={"model": model}))
        except UpstreamError as exc:
            raise self._refused(exc) from None

    def download_status(self, job_id: str) -> DownloadJob:
        return self._job(self._request("GET", f"/api/v1/models/download/status/{quote(job_id, safe='')}"), job_id)

    def unload(self, instance_ids: tuple[str, ...]) -> None:
        if self.api_version() != API_V1:
            raise UnloadUnsupported(
                "This LM Studio speaks API v0, which cannot unload models: unload it in LM Studio "
                "(or upgrade to LM Studio 0.4+).",
                retryable=False,
            )
        for instance_id in instance_ids:
            self._request("POST", "/api/v1/models/unload", json={"instance_id": instance_id})


# --- Ollama -------------------------------------------------------------------------------------------


def _ollama_models(payload: Any) -> list[dict[str, Any]] | None:
    """Both /api/tags and /api/ps answer {"models": [...]} (an empty server may say null)."""
    if not isinstance(payload, dict) or "models" not in payload:
        return None
    models = payload["models"] or []
    return [m for m in models if isinstance(m, dict) and m.get("name")] if isinstance(models, list) else None


class OllamaRuntime(HTTPRuntime):
    """Ollama: what is downloaded (`GET /api/tags`) and what is in memory (`GET /api/ps`) are two questions,
    so a refresh costs two requests. A load is a prompt-less generate request, which returns once the model
    is in memory; an unload is the same with keep_alive 0."""

    label = "Ollama"
    load_options = frozenset({"context_length"})  # Ollama's num_ctx

    def snapshot(self) -> Snapshot:
        try:
            downloaded = _ollama_models(self._request("GET", "/api/tags"))
            running = _ollama_models(self._request("GET", "/api/ps")) if downloaded is not None else None
        except UpstreamError as exc:
            return Snapshot(ok=False, fetched_at=time.time(), error=exc.message)
        if downloaded is None or running is None:
            return Snapshot(
                ok=False, fetched_at=time.time(), error=f"The server at {self.where} does not speak Ollama's API"
            )
        in_memory = {m["name"]: m for m in running}
        models: dict[str, RuntimeModel] = {}
        for item in downloaded:
            name = str(item["name"])
            facts = item.get("details") if isinstance(item.get("details"), dict) else {}
            family = str(facts.get("family") or "")
            loaded = in_memory.get(name)
            details = {
                "architecture": family,
                "params": facts.get("parameter_size"),
                "quantization": facts.get("quantization_level"),
                "format": facts.get("format"),
            }
            models[name] = RuntimeModel(
                key=name,
                display_name=name,
                # Ollama names no model type; its embedding models are BERT-family ones.
                model_type="embedding" if "bert" in family else "llm",
                instance_ids=(name,) if loaded is not None else (),
                max_context_length=(loaded or {}).get("context_length"),
                size_bytes=item.get("size"),
                details={k: v for k, v in details.items() if v},
            )
        return Snapshot(ok=True, fetched_at=time.time(), models=models, api="ollama")

    def _generate(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        payload = self._request("POST", "/api/generate", json={**body, "stream": False}, timeout=timeout)
        if not isinstance(payload, dict):
            raise UpstreamError(f"Ollama at {self.where} sent an unexpected reply", retryable=False)
        if error_message(payload):
            raise UpstreamError(f"Ollama answered: {error_message(payload)}", retryable=False)
        return payload

    def load(self, key: str, *, timeout: float, options: LoadOptions = NO_OPTIONS) -> None:
        """Blocks until Ollama has the model in memory (done_reason "load") or refused it."""
        keep_alive: int | str = settings.OLLAMA_KEEP_ALIVE
        if isinstance(keep_alive, str) and keep_alive.lstrip("-").isdigit():
            keep_alive = int(keep_alive)  # Ollama reads a number as seconds; "600" as a string has no unit it knows
        body: dict[str, Any] = {"model": key, "keep_alive": keep_alive}
        if options.context_length is not None:
            body["options"] = {"num_ctx": options.context_length}
        try:
            payload = self._generate(body, timeout=timeout)
        except UpstreamError as exc:
            raise self._refused(exc) from None
        if not payload.get("done"):
            raise UpstreamError(f"Ollama did not load {key}: unexpected reply", retryable=False)

    def unload(self, instance_ids: tuple[str, ...]) -> None:
        for name in instance_ids:
            self._generate({"model": name, "keep_alive": 0})


# --- llama.cpp (llama-server in router mode) ----------------------------------------------------------

LLAMACPP_LOADED = frozenset({"loaded", "sleeping"})  # a sleeping model wakes on the next request by itself


def _llamacpp_entries(payload: Any) -> list[dict[str, Any]] | None:
    if not (isinstance(payload, dict) and isinstance(payload.get("data"), list)):
        return None
    return [m for m in payload["data"] if isinstance(m, dict) and m.get("id")]


def _llamacpp_state(item: dict[str, Any]) -> dict[str, Any]:
    # A llama-server started with one model (-m, no router) lists it without a status: always in memory.
    status = item.get("status")
    return status if isinstance(status, dict) else {"value": "loaded"}


class LlamaCppRuntime(HTTPRuntime):
    """llama.cpp's llama-server in router mode (`--models-dir`): `GET /models` lists every model with its
    state in one request. Loads are NOT blocking there (`{"success": true}` at once), so `load` polls the
    list until the model is loaded or its process died; `--models-max` may evict models behind our back,
    which the next refresh shows."""

    label = "llama.cpp"
    poll_interval = 0.25
    unload_timeout = 30.0

    def _entries(self) -> list[dict[str, Any]]:
        entries = _llamacpp_entries(self._request("GET", "/models"))
        if entries is None:
            raise UpstreamError(f"The server at {self.where} does not speak llama-server's model API")
        return entries

    def snapshot(self) -> Snapshot:
        try:
            entries = self._entries()
        except UpstreamError as exc:
            return Snapshot(ok=False, fetched_at=time.time(), error=exc.message)
        models: dict[str, RuntimeModel] = {}
        for item in entries:
            key = str(item["id"])
            state = _llamacpp_state(item)
            models[key] = RuntimeModel(
                key=key,
                display_name=key,
                model_type="llm",
                instance_ids=(key,) if state.get("value") in LLAMACPP_LOADED else (),
                max_context_length=None,
                size_bytes=None,
                details={k: v for k, v in {"source": item.get("source"), "state": state.get("value")}.items() if v},
            )
        return Snapshot(ok=True, fetched_at=time.time(), models=models, api="router")

    def load(self, key: str, *, timeout: float, options: LoadOptions = NO_OPTIONS) -> None:
        # No load options here: a model's settings live in llama-server's own flags or its --models-preset.
        deadline = time.monotonic() + timeout
        try:
            self._request("POST", "/models/load", json={"model": key})
        except UpstreamError as exc:
            # "model is already running": someone else started it; wait for it like for our own load.
            if "already running" not in exc.message:
                raise self._refused(exc) from None
        while True:
            entry = next((e for e in self._entries() if str(e["id"]) == key), None)
            if entry is None:
                raise UpstreamError(f"llama.cpp no longer lists {key}", retryable=False)
            state = _llamacpp_state(entry)
            if state.get("value") in LLAMACPP_LOADED:
                return
            if state.get("failed"):
                # The router says no more than this; the model process's log holds the details.
                raise UpstreamError(
                    f"llama.cpp could not load {key}: its model process exited with code {state.get('exit_code')}",
                    retryable=False,
                )
            if state.get("value") not in ("loading", "downloading"):  # a model from Hugging Face downloads first
                raise UpstreamError(f"llama.cpp stopped loading {key} (now {state.get('value')})", retryable=False)
            if time.monotonic() >= deadline:
                raise UpstreamError(f"{key} was not loaded within {timeout:.0f} s")
            time.sleep(self.poll_interval)

    def unload(self, instance_ids: tuple[str, ...]) -> None:
        entries = {str(e["id"]): e for e in self._entries()}
        for key in instance_ids:
            if not isinstance(entries.get(key, {}).get("status"), dict):
                raise UnloadUnsupported(
                    f"This llama-server serves {key} alone (started with -m, not in router mode): it cannot "
                    "unload it. Start it with --models-dir to load and unload models from here.",
                    retryable=False,
                )
            self._request("POST", "/models/unload", json={"model": key})
        # Like a load, an unload is answered before it is done: the model process is still ending.
        self._wait_until(lambda entries: all(not self._is_loaded(entries, key) for key in instance_ids))

    @staticmethod
    def _is_loaded(entries: dict[str, dict[str, Any]], key: str) -> bool:
        return key in entries and _llamacpp_state(entries[key]).get("value") in LLAMACPP_LOADED

    def _wait_until(self, done: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        deadline = time.monotonic() + self.unload_timeout
        while not done({str(e["id"]): e for e in self._entries()}):
            if time.monotonic() >= deadline:
                raise UpstreamError(f"llama.cpp did not unload within {self.unload_timeout:.0f} s")
            time.sleep(self.poll_interval)
