"""The shared test base: a cast of users (alice owns, bob is staff, charlie is an outsider who must be
refused), clients authenticated by API token, and the LM Studio emulator on an OS-chosen port."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from accounts.services import api_token_create
from codegen.sandbox import sandbox_env_prepare
from models_mgmt import listing
from models_mgmt.models import AIModel
from orchestrator import hotcache
from orchestrator.celery import app as celery_app
from providers.kinds import ProviderKind
from providers.models import Provider
from tests.fakes.lmstudio import FakeLMStudio


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they are the slowest, and the quick ones should fail first."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Django deletes the old SQLite test database before creating a new one, but not its write-ahead log
    (WAL mode, see settings): a log left by a killed run could be replayed into the fresh database."""
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and database.get("TEST", {}).get("NAME"):
        if session.config.getoption("reuse_db", default=False):
            return
        name = Path(database["TEST"]["NAME"])
        for suffix in ("-wal", "-shm"):
            name.with_name(name.name + suffix).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest, settings) -> None:  # noqa: ANN001
    """PBKDF2 at full strength costs a third of a second per user; the cast needs no such strength.
    Browser tests keep the default: the server process they log in to must verify the same hash."""
    if request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_real_lm_studio(settings) -> None:  # noqa: ANN001
    """The default LM Studio provider must not find a real server (or a stray emulator) on this machine:
    port 9 (discard) refuses at once. Tests that want one point the provider at an emulator. The same for
    the instance's Ollama and llama.cpp servers."""
    settings.LMSTUDIO_BASE_URL = "http://127.0.0.1:9"
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9"
    settings.LLAMACPP_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _isolated_cache() -> Iterator[None]:
    # The in-process caches too: a rolled-back test leaves no write behind that would empty them.
    cache.clear()
    hotcache.reset_for_tests()
    listing.forget_for_tests()
    yield
    cache.clear()
    hotcache.reset_for_tests()
    listing.forget_for_tests()


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    """Tasks run in-line unless a test starts a real worker (`worker` marker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="bob-password-1", is_staff=True)


@pytest.fixture
def charlie(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("charlie", password="charlie-password-1")


def token_client(user: User) -> Client:
    _, raw = api_token_create(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def alice_api(alice: User) -> Client:
    return token_client(alice)


@pytest.fixture
def bob_api(bob: User) -> Client:
    return token_client(bob)


@pytest.fixture
def alice_web(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_web(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def lmstudio() -> Iterator[FakeLMStudio]:
    with FakeLMStudio() as fake:
        yield fake


@pytest.fixture
def lmstudio_v0() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(api="v0") as fake:
        yield fake


def point_provider_at(fake: FakeLMStudio) -> Provider:
    provider, _ = Provider.objects.update_or_create(
        name="lmstudio", defaults={"kind": ProviderKind.LMSTUDIO, "base_url": fake.url, "enabled": True}
    )
    return provider


@pytest.fixture
def provider(db: None, lmstudio: FakeLMStudio) -> Provider:
    return point_provider_at(lmstudio)


@pytest.fixture
def discovered(provider: Provider) -> dict[str, AIModel]:
    """The emulator's default models, stored as a first listing stores them."""
    from models_mgmt.services import model_list_with_status

    model_list_with_status()
    return {m.model_id: m for m in AIModel.objects.select_related("provider").filter(provider=provider)}


def cloud_provider(name: str = "openai", kind: str | None = None, base_url: str = "") -> Provider:
    """A cloud provider row. Migrations create the usual ones, but a transactional test empties the
    tables for those after it, so tests ask for what they need."""
    provider, _ = Provider.objects.update_or_create(
        name=name, defaults={"kind": kind or name, "base_url": base_url, "enabled": True}
    )
    return provider


@pytest.fixture
def fast_timeouts(settings) -> None:  # noqa: ANN001
    """Upstream timeouts short enough for fault tests: a timeout or stall costs a second, not a minute."""
    settings.COMPLETION_TIMEOUT = 1.0
    settings.COMPLETION_WHOLE_TIMEOUT = 1.0
    settings.COMPLETION_IDLE_TIMEOUT = 0.5
    settings.COMPLETION_RETRIES = 1


# ---- the backend generator's sandbox (issue 15) ------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_env() -> Path:
    """The sandbox's dedicated Python environment, built once per machine (a stamp skips it later)."""
    sandbox_env_prepare(
        env_dir=django_settings.CODEGEN_SANDBOX_ENV, requirements=django_settings.CODEGEN_SANDBOX_REQUIREMENTS
    )
    return django_settings.CODEGEN_SANDBOX_ENV


def logs_in(username: str, password: str) -> bool:
    """Log in through the login page, as a person does (django-axes wants the request that authenticates)."""
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session
