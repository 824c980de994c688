"""A malformed KEY_ENCRYPTION_KEYS stops the app at start (migrate, serve, check), with the expected format,
instead of a 500 at the first key someone saves."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from providers.crypto import KeyringError, parse_keyring

EXPECTED_FORMAT = (
    "KEY_ENCRYPTION_KEYS is a comma-separated list of 'id:key', newest first: the id letters and digits, the key "
    "32 random bytes in standard base64 (e.g. k2:<new>,k1:<old>). Make one with: "
    ".venv/bin/python -c \"import base64, os; print('k1:' + base64.b64encode(os.urandom(32)).decode())\""
)


@register(Tags.security)
def check_key_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_keyring(settings.KEY_ENCRYPTION_KEYS)
    except KeyringError as exc:
        # The message names the faulty entry by position or id, never the key material.
        return [Error(f"{exc}.", hint=EXPECTED_FORMAT, id="apikeys.E001")]
    return []
