"""Key encryption: AES-256-GCM, bound to owner and provider, versioned by key id, rotatable."""

import base64
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apikeys.services import apikey_create, apikey_plaintext
from providers import crypto
from providers.models import ApiKey
from tests.conftest import cloud_provider

KEY_A = "ka:" + base64.b64encode(b"a" * 32).decode()
KEY_B = "kb:" + base64.b64encode(b"b" * 32).decode()
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def keyring(settings) -> None:
    settings.KEY_ENCRYPTION_KEYS = KEY_A


def test_round_trip_and_token_format() -> None:
    aad = crypto.associated_data(7, 3)
    token = crypto.encrypt(SECRET, aad=aad)
    assert token.startswith("v1:ka:") and SECRET not in token
    assert crypto.decrypt(token, aad=aad) == SECRET


def test_every_encryption_uses_a_fresh_nonce() -> None:
    aad = crypto.associated_data(7, 3)
    assert crypto.encrypt(SECRET, aad=aad) != crypto.encrypt(SECRET, aad=aad)


def test_a_flipped_byte_is_detected() -> None:
    aad = crypto.associated_data(7, 3)
    version, key_id, body = crypto.encrypt(SECRET, aad=aad).split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[20] ^= 0x01
    tampered = f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(crypto.DecryptError) as caught:
        crypto.decrypt(tampered, aad=aad)
    assert "re-enter" in str(caught.value) and SECRET not in str(caught.value)


def test_a_ciphertext_moved_to_another_owner_or_provider_fails() -> None:
    token = crypto.encrypt(SECRET, aad=crypto.associated_data(7, 3))
    for other in (crypto.associated_data(8, 3), crypto.associated_data(7, 4), crypto.associated_data(None, 3)):
        with pytest.raises(crypto.DecryptError):
            crypto.decrypt(token, aad=other)


def test_unknown_format_and_missing_key_are_explicit(settings) -> None:
    aad = crypto.associated_data(1, 1)
    with pytest.raises(crypto.DecryptError, match="known format"):
        crypto.decrypt(SECRET, aad=aad)  # a plaintext that slipped in is never returned as is
    token = crypto.encrypt(SECRET, aad=aad)
    settings.KEY_ENCRYPTION_KEYS = KEY_B
    with pytest.raises(crypto.DecryptError, match="'ka'.*no longer holds"):
        crypto.decrypt(token, aad=aad)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("nokey", "not 'id:base64-key'"),
        ("k1:!!!", "not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "AES-256 needs 32"),
        (f"{KEY_A},{KEY_A}", "twice"),
    ],
)
def test_bad_keyrings_are_named_without_the_key(spec: str, message: str) -> None:
    with pytest.raises(crypto.KeyringError, match=message) as caught:
        crypto.parse_keyring(spec)
    assert base64.b64encode(b"a" * 32).decode() not in str(caught.value)


@pytest.mark.django_db
def test_rotation_with_two_keys(settings, alice: object) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    cloud_provider("anthropic")
    other = apikey_create(user=alice, provider="anthropic", key="sk-ant-" + "x" * 20)
    settings.KEY_ENCRYPTION_KEYS = f"{KEY_B},{KEY_A}"  # newest first; the old one still decrypts
    assert apikey_plaintext(ApiKey.objects.get(pk=key.pk)) == SECRET
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 2 key(s); 0 already used the newest key." in out.getvalue()
    settings.KEY_ENCRYPTION_KEYS = KEY_B  # the old key can go now
    assert apikey_plaintext(ApiKey.objects.get(pk=key.pk)) == SECRET
    assert ApiKey.objects.get(pk=other.pk).secret.startswith("v1:kb:")
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 0 key(s); 2 already used the newest key." in out.getvalue()


@pytest.mark.django_db
def test_rotation_reports_keys_nobody_can_read(settings, alice: object) -> None:
    key = apikey_create(user=alice, provider="openai", key=SECRET)
    settings.KEY_ENCRYPTION_KEYS = KEY_B
    with pytest.raises(CommandError, match=f"ids {key.pk}"):
        call_command("rotate_encryption_keys", stdout=StringIO())


def test_generated_keyring_file_is_valid_and_private(settings) -> None:
    path = settings.KEY_ENCRYPTION_KEYS_FILE
    if path.exists():
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        crypto.parse_keyring(path.read_text().strip())
