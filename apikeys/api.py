from django.http import HttpRequest
from ninja import Router, Status

from accounts.auth import api_auth
from apikeys import services
from apikeys.schemas import KeyIn, KeyOut, KeyPatch, KeyTestOut
from models_mgmt.schemas import ErrorOut

router = Router(tags=["keys"], auth=api_auth)
ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


@router.get("", response=list[KeyOut], summary="Your keys and the shared ones (masked)")
def list_keys(request: HttpRequest) -> list[KeyOut]:
    return [KeyOut.of(k, request.user) for k in services.apikeys_visible(user=request.user)]


@router.post("", response={201: KeyOut, **ERRORS}, summary="Store a key (encrypted)")
def create_key(request: HttpRequest, payload: KeyIn) -> Status[KeyOut]:
    key = services.apikey_create(user=request.user, **payload.dict())
    return Status(201, KeyOut.of(key, request.user))


@router.get("/{int:key_id}", response={200: KeyOut, 404: ErrorOut})
def get_key(request: HttpRequest, key_id: int) -> KeyOut:
    return KeyOut.of(services.apikey_get(user=request.user, key_id=key_id), request.user)


@router.patch("/{int:key_id}", response={200: KeyOut, **ERRORS}, summary="Rename, or replace the key")
def update_key(request: HttpRequest, key_id: int, payload: KeyPatch) -> KeyOut:
    return KeyOut.of(services.apikey_update(user=request.user, key_id=key_id, **payload.dict()), request.user)


@router.delete("/{int:key_id}", response={204: None, 403: ErrorOut, 404: ErrorOut})
def delete_key(request: HttpRequest, key_id: int) -> Status[None]:
    services.apikey_delete(user=request.user, key_id=key_id)
    return Status(204, None)


@router.post(
    "/{int:key_id}/default", response={200: KeyOut, 403: ErrorOut, 404: ErrorOut}, summary="Make this key the default"
)
def make_default(request: HttpRequest, key_id: int) -> KeyOut:
    return KeyOut.of(services.apikey_make_default(user=request.user, key_id=key_id), request.user)


@router.post(
    "/{int:key_id}/test",
    response={200: KeyTestOut, 403: ErrorOut, 404: ErrorOut},
    summary="Try the key on the provider (shared keys: staff)",
)
def test_key(request: HttpRequest, key_id: int) -> KeyTestOut:
    result = services.apikey_test(user=request.user, key_id=key_id)
    return KeyTestOut(ok=result.ok, detail=result.detail, latency_ms=result.latency_ms)
