"""Settings: the environment is read here, once. Everything has a default that runs on one machine
with nothing else installed (SQLite, local-memory cache, a file-system Celery broker)."""

import base64
import secrets
import time
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret(name: str) -> str:
    """A secret generated once into the git-ignored var/ folder, so a fresh clone runs without setup
    and restarts keep sessions valid."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret("secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "core",
    "accounts",
    "providers",
    "models_mgmt",
    "apikeys",
    "completions",
    "gateway",
    "chat",
    "codegen",
    "usage",
    "axes",  # login throttling; kept last so its admin sits beside the app's own
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.GZipExceptEventStreamMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.StorableTextMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns its lockout exception into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
ASGI_APPLICATION = "orchestrator.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.middleware.csp_nonce",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # WAL with synchronous=NORMAL: a commit appends to the write-ahead log without waiting for the disk (the
    # log is synced at checkpoints), and readers never wait for the writer nor the writer for readers. The
    # database cannot be corrupted this way; what an OS crash or power cut may lose is the last commits
    # before it (never on a mere process crash). The default (a rollback journal, synchronous=FULL) made
    # every usage write wait for several fsyncs. IMMEDIATE: a transaction takes the write lock when it
    # begins, so it waits (up to `timeout`) for another writer, instead of failing with "database is locked"
    # when a read inside it tries to become a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "orch",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the apps' static folders: `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- Celery -------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = Path(env.str("CELERY_FS_BROKER_DIR", default=str(VAR_DIR / "broker")))
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.2,
    }
    # The file-system transport has no fan-out exchanges, so remote control cannot work on it.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False

# --- Provider keys --------------------------------------------------------------------------------------
# "id:base64-32-bytes" entries, newest first. Never derived from SECRET_KEY, so leaking one does not leak both.
KEY_ENCRYPTION_KEYS = env.str("KEY_ENCRYPTION_KEYS", default="")
KEY_ENCRYPTION_KEYS_FILE = VAR_DIR / "encryption_keys"
if not KEY_ENCRYPTION_KEYS:
    if not KEY_ENCRYPTION_KEYS_FILE.exists():
        KEY_ENCRYPTION_KEYS_FILE.write_text(f"k{int(time.time())}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        KEY_ENCRYPTION_KEYS_FILE.chmod(0o600)
    KEY_ENCRYPTION_KEYS = KEY_ENCRYPTION_KEYS_FILE.read_text().strip()
    KEY_ENCRYPTION_KEYS_FROM_FILE = True
else:
    KEY_ENCRYPTION_KEYS_FROM_FILE = False

# --- Models and local runtimes -------------------------------------------------------------------------
LMSTUDIO_BASE_URL = env.str("LMSTUDIO_BASE_URL", default="http://localhost:1234")
LMSTUDIO_API_TOKEN = env.str("LMSTUDIO_API_TOKEN", default="")
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="http://localhost:11434")
OLLAMA_API_TOKEN = env.str("OLLAMA_API_TOKEN", default="")  # for an Ollama behind a proxy that wants one
# How long Ollama keeps a model the app loaded in memory once idle: a duration ("30m", "2h"), seconds ("600"),
# or "-1" for until it is unloaded.
OLLAMA_KEEP_ALIVE = env.str("OLLAMA_KEEP_ALIVE", default="30m")
LLAMACPP_BASE_URL = env.str("LLAMACPP_BASE_URL", default="http://localhost:8080")
LLAMACPP_API_KEY = env.str("LLAMACPP_API_KEY", default="")  # llama-server --api-key
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="https://api.anthropic.com")
GEMINI_BASE_URL = env.str("GEMINI_BASE_URL", default="https://generativelanguage.googleapis.com")
MISTRAL_BASE_URL = env.str("MISTRAL_BASE_URL", default="https://api.mistral.ai/v1")
GENSPARK_BASE_URL = env.str("GENSPARK_BASE_URL", default="https://www.genspark.ai/api/llm_proxy/v1")

# Providers with owners: how many models one provider may list (per owner), and which internal addresses a
# user's own server may still point at (CIDRs or host names, e.g. "192.168.1.0/24,gpu.lan"); settings- and
# staff-defined providers may point anywhere.
MAX_MODELS_PER_PROVIDER = env.int("MAX_MODELS_PER_PROVIDER", default=2000)
PRIVATE_UPSTREAM_ALLOWLIST = env.list("PRIVATE_UPSTREAM_ALLOWLIST", default=[])

MODEL_STATUS_TTL = env.float("MODEL_STATUS_TTL", default=10.0)
MODEL_ALLOWED_FAILS = env.int("MODEL_ALLOWED_FAILS", default=3)
MODEL_COOLDOWN_SECONDS = env.float("MODEL_COOLDOWN_SECONDS", default=30.0)
MODEL_LOAD_TIMEOUT = env.float("MODEL_LOAD_TIMEOUT", default=300.0)
# A load claim's lease: a claim this old has lost its worker (longer than the slowest real load).
MODEL_LOAD_STALE_SECONDS = env.float("MODEL_LOAD_STALE_SECONDS", default=600.0)
UPSTREAM_CONNECT_TIMEOUT = env.float("UPSTREAM_CONNECT_TIMEOUT", default=5.0)
UPSTREAM_READ_TIMEOUT = env.float("UPSTREAM_READ_TIMEOUT", default=10.0)
COMPLETION_TIMEOUT = env.float("COMPLETION_TIMEOUT", default=60.0)  # to the first byte of an answer
COMPLETION_IDLE_TIMEOUT = env.float("COMPLETION_IDLE_TIMEOUT", default=30.0)  # between two stream chunks
# For a whole answer asked for in one response (a caller that does not stream): the generation comes first.
COMPLETION_WHOLE_TIMEOUT = env.float("COMPLETION_WHOLE_TIMEOUT", default=600.0)
COMPLETION_RETRIES = env.int("COMPLETION_RETRIES", default=1)
COMPLETION_MAX_RETRY_WAIT = env.float("COMPLETION_MAX_RETRY_WAIT", default=10.0)  # a longer retry-after falls back
COMPLETION_DEFAULT_MAX_TOKENS = env.int("COMPLETION_DEFAULT_MAX_TOKENS", default=1024)
CODEGEN_DEFAULT_MODEL = env.str("CODEGEN_DEFAULT_MODEL", default="")  # <provider>/<model id>
CODEGEN_RATE_LIMIT = env.int("CODEGEN_RATE_LIMIT", default=3)  # requests per user per window
CODEGEN_RATE_WINDOW_SECONDS = env.int("CODEGEN_RATE_WINDOW_SECONDS", default=60)
CODEGEN_PROMPT_MIN_CHARS = env.int("CODEGEN_PROMPT_MIN_CHARS", default=10)
CODEGEN_PROMPT_MAX_CHARS = env.int("CODEGEN_PROMPT_MAX_CHARS", default=50_000)
CODEGEN_ASSUMED_CONTEXT_TOKENS = env.int("CODEGEN_ASSUMED_CONTEXT_TOKENS", default=8192)  # when a model says none
FALLBACK_ORDER = env.list("FALLBACK_ORDER", default=["external", "loaded", "local"])
ALLOW_LOCAL_TO_CLOUD_FALLBACK = env.bool("ALLOW_LOCAL_TO_CLOUD_FALLBACK", default=True)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # structlog has already rendered the event as one JSON object; print it as it is.
        "json": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "events": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "orchestrator.events": {"handlers": ["events"], "level": LOG_LEVEL, "propagate": False},
    },
}

# Backend generator (issue 15): generated projects' tests run in a bubblewrap sandbox on a dedicated,
# read-only Python environment that `make run`/`make test` build from requirements-sandbox.txt.
CODEGEN_SANDBOX_ENV = Path(env.str("CODEGEN_SANDBOX_ENV", default=str(VAR_DIR / "sandbox-env")))
CODEGEN_SANDBOX_REQUIREMENTS = BASE_DIR / "requirements-sandbox.txt"
CODEGEN_SANDBOX_WALL_SECONDS = env.float("CODEGEN_SANDBOX_WALL_SECONDS", default=120.0)

# --- Login throttling and deployment (issue 10) ------------------------------------------------------------
# django-axes counts failed logins per username+IP, for the app's login and the admin's alike (both go
# through authenticate()). Staff unlock in the admin (Axes > Access attempts: delete the row) or with
# `manage.py axes_reset_username <name>`.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# A locked-out client that keeps guessing does not extend its own lockout: the limit is the point, and a
# user who mistyped once more should not have to wait again from zero.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False
# Axes says "running database handler" at INFO on every failed login; its warnings (masked) are enough.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# Behind a TLS-terminating proxy (all off by default, for a laptop; README "Production" has the .env):
# SECURE_PROXY_SSL_HEADER trusts the proxy's X-Forwarded-Proto, so set it only when a proxy strips that
# header from clients.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# /healthz and /readyz answer plain HTTP: supervisors and load balancers probe them from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
# METRICS_TOKEN: /metrics then wants "Authorization: Bearer <token>"; METRICS_ALLOWED_IPS: or comes from these.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# The API's docs and OpenAPI document are public by default (a laptop); true: logged-in users only.
API_DOCS_LOGIN_REQUIRED = env.bool("API_DOCS_LOGIN_REQUIRED", default=False)
# Test-generation specs: the biggest document accepted, and how deep JSON or YAML may nest.
CODEGEN_SPEC_MAX_BYTES = env.int("CODEGEN_SPEC_MAX_BYTES", default=1_000_000)
CODEGEN_SPEC_MAX_DEPTH = env.int("CODEGEN_SPEC_MAX_DEPTH", default=64)

# Usage and budgets (usage/): the largest max_tokens a request may ask for, whatever the model's context.
MAX_COMPLETION_TOKENS = env.int("MAX_COMPLETION_TOKENS", default=32_768)
# How long a process keeps a user's limits before reading them again (a staff change reaches the other
# processes within this; with Redis the change is seen at once).
USAGE_LIMITS_CACHE_SECONDS = env.int("USAGE_LIMITS_CACHE_SECONDS", default=30)
