"""Encryption of provider keys at rest: AES-256-GCM, a random 96-bit nonce per encryption, and associated
data naming the row's owner and provider, so a ciphertext copied to another row does not decrypt.

A stored value is a versioned token naming the encryption key it was made with:
    v1:<key id>:<base64url(nonce + ciphertext-and-tag)>
Keys come from KEY_ENCRYPTION_KEYS ("id:base64,id:base64", newest first); rotation re-encrypts under the
newest while the older ones still decrypt what they made."""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12


class KeyringError(Exception):
    """KEY_ENCRYPTION_KEYS is not usable; the message names the fault, never a key."""


class DecryptError(Exception):
    """A stored key cannot be read back. The message is safe to show: it holds no key material."""


def parse_keyring(spec: str) -> list[tuple[str, bytes]]:
    keyring: list[tuple[str, bytes]] = []
    for position, entry in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id or not key_id.isalnum():
            raise KeyringError(f"KEY_ENCRYPTION_KEYS entry {position + 1} is not 'id:base64-key'")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"KEY_ENCRYPTION_KEYS key {key_id!r} is not base64") from None
        if len(secret) != 32:
            raise KeyringError(f"KEY_ENCRYPTION_KEYS key {key_id!r} is {len(secret)} bytes; AES-256 needs 32")
        if any(known == key_id for known, _ in keyring):
            raise KeyringError(f"KEY_ENCRYPTION_KEYS names key {key_id!r} twice")
        keyring.append((key_id, secret))
    if not keyring:
        raise KeyringError("KEY_ENCRYPTION_KEYS is empty")
    return keyring


@lru_cache(maxsize=8)
def _keyring(spec: str) -> tuple[tuple[str, AESGCM], ...]:
    return tuple((key_id, AESGCM(secret)) for key_id, secret in parse_keyring(spec))


def _current_keyring() -> tuple[tuple[str, AESGCM], ...]:
    from django.conf import settings

    return _keyring(settings.KEY_ENCRYPTION_KEYS)


def associated_data(owner_id: int | None, provider_id: int) -> bytes:
    return f"{owner_id if owner_id is not None else 'shared'}:{provider_id}".encode()


def encrypt(plaintext: str, *, aad: bytes) -> str:
    key_id, cipher = _current_keyring()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode(), aad)
    return f"{VERSION}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def token_key_id(token: str) -> str | None:
    parts = token.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else None


def decrypt(token: str, *, aad: bytes) -> str:
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptError("The stored key is not in a known format; re-enter this key.")
    _, key_id, encoded = parts
    cipher = dict(_current_keyring()).get(key_id)
    if cipher is None:
        raise DecryptError(
            f"The stored key was encrypted with key {key_id!r}, which KEY_ENCRYPTION_KEYS no longer holds; "
            "re-enter this key."
        )
    try:
        blob = base64.urlsafe_b64decode(encoded)
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode()
    except (InvalidTag, ValueError, binascii.Error):
        raise DecryptError("The stored key failed its integrity check; re-enter this key.") from None


def is_current(token: str) -> bool:
    return token_key_id(token) == _current_keyring()[0][0]
