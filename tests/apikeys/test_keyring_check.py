"""A malformed KEY_ENCRYPTION_KEYS is a system-check error at start, with the expected format, never a 500
later; the error never repeats key material."""

import base64
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from tests.processes import BASE_DIR, app_env

GOOD = base64.b64encode(bytes(range(32))).decode()
SHORT = base64.b64encode(b"sixteen byte key").decode()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "empty"),
        (GOOD, "entry 1 is not 'id:base64-key'"),
        (f"k-1:{GOOD}", "entry 1 is not 'id:base64-key'"),
        ("k1:not base64!", "'k1' is not base64"),
        (f"k1:{SHORT}", "'k1' is 16 bytes; AES-256 needs 32"),
        (f"k1:{GOOD},k1:{GOOD}", "names key 'k1' twice"),
    ],
)
def test_malformed_keyring_is_an_error_naming_the_format(settings, value: str, says: str) -> None:  # noqa: ANN001
    settings.KEY_ENCRYPTION_KEYS = value
    errors = [m for m in run_checks() if m.id == "apikeys.E001"]
    assert len(errors) == 1 and says in errors[0].msg
    assert "comma-separated list of 'id:key'" in errors[0].hint and "32 random bytes" in errors[0].hint
    assert GOOD not in errors[0].msg + errors[0].hint and SHORT not in errors[0].msg + errors[0].hint


def test_a_good_keyring_passes(settings) -> None:  # noqa: ANN001
    settings.KEY_ENCRYPTION_KEYS = f"k2:{GOOD}, k1:{base64.b64encode(bytes(32)).decode()}"
    assert not [m for m in run_checks() if m.id == "apikeys.E001"]


@pytest.mark.django_db
def test_the_app_refuses_to_start_with_a_malformed_keyring() -> None:
    env = app_env(KEY_ENCRYPTION_KEYS=f"k1:{SHORT}")
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "apikeys.E001" in done.stderr and "AES-256 needs 32" in done.stderr and SHORT not in done.stderr
