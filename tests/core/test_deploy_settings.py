"""Production settings come from the environment: with the documented .env.production.example,
`check --deploy` is clean; without it (a laptop), Django's deploy warnings are there, as they should be."""

import subprocess
import sys

import pytest

from tests.processes import BASE_DIR, app_env

pytestmark = pytest.mark.django_db  # app_env names the test database
EXAMPLE = BASE_DIR / ".env.production.example"


def _example() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_production_example_passes_check_deploy() -> None:
    done = _check_deploy(**_example())
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_a_laptop_setup_is_warned_about() -> None:
    done = _check_deploy(DEBUG="false")
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


def test_the_example_turns_each_setting_on(settings) -> None:  # noqa: ANN001
    example = _example()
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "BEHIND_TLS_PROXY"):
        assert example[name] == "true"
    assert int(example["SECURE_HSTS_SECONDS"]) >= 31_536_000
    assert example["CSRF_TRUSTED_ORIGINS"].startswith("https://") and example["METRICS_TOKEN"]
