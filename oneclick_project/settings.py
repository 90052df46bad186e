"""Settings for oneclick, read from the environment (12-factor).

Every variable is documented in the README. Defaults give a development setup that needs no server:
SQLite in WAL mode and django-q2's ORM broker.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable; accepts 1/0, true/false, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def writable_dir(name: str, path: str) -> str:
    """Create the directory `path` (set by `name`) if needed; refuse to start if it cannot be
    written, rather than fail each request that needs it."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot create {path!r}: {exc}") from exc
    if not os.access(path, os.W_OK):
        raise ImproperlyConfigured(f"{name}: {path!r} is not writable by this process")
    return path


def env_float(name: str, default: float) -> float:
    """Read a number from the environment, refusing anything that is not a non-negative number."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {raw!r}")
    return value


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off "
            "(set DJANGO_DEBUG=true for local development)."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get(
        "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else ""
    ).split(",")
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]

INSTALLED_APPS = [
    # django.contrib.admin, its sign-in behind the lockout of every sign-in (purchases/signin.py).
    "oneclick_project.apps.OneclickAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "durable",
    "purchases",
    # After django.contrib.admin and django_q: unregisters django-q2's admin pages, and lets
    # only the engine's functions be enqueued as tasks (oneclick_project/task_allowlist.py).
    "oneclick_project.apps.ProjectConfig",
]

MIDDLEWARE = [
    "oneclick_project.http_metrics.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "oneclick_project.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "oneclick_project.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "oneclick_project.wsgi.application"
ASGI_APPLICATION = "oneclick_project.asgi.application"

# --- Database -----------------------------------------------------------------------------------
# Persistent connections: django-q2's ORM broker polls the database several times a second, and
# opening a connection (a new backend process on PostgreSQL) for each poll would cost more than
# the poll.
CONN_MAX_AGE = int(env_float("DJANGO_CONN_MAX_AGE", 600))
DEFAULT_SQLITE_PATH = BASE_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}"),
        conn_max_age=CONN_MAX_AGE,
        conn_health_checks=True,
    )
}
if os.environ.get("ONECLICK_TEST_DB_NAME"):
    # Lets several test runs share one PostgreSQL server without clobbering each other.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["ONECLICK_TEST_DB_NAME"]}
# A connection pooler between the processes and PostgreSQL: "pgbouncer" (transaction pooling),
# or empty for direct connections. In transaction mode a server connection serves one
# transaction, then another client's: no prepared statements, server-side cursors or session
# state (LISTEN, SET) can outlive a transaction.
DATABASE_POOLER = os.environ.get("DATABASE_POOLER", "").strip().lower()
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(
        f"DATABASE_POOLER must be empty or 'pgbouncer', got {os.environ['DATABASE_POOLER']!r}"
    )
if DATABASE_POOLER and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL")
if DATABASE_POOLER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the statement (server-side binding), so psycopg can prepare
    # each statement once per connection and PostgreSQL stops parsing and planning it again: the
    # workflows' few statements run thousands of times on each persistent connection. Behind a
    # connection pooler that cannot keep prepared statements (PgBouncer in transaction mode
    # before 1.21) it is off, unless DJANGO_DB_PREPARE_THRESHOLD says otherwise.
    _prepare = os.environ.get("DJANGO_DB_PREPARE_THRESHOLD", "off" if DATABASE_POOLER else "1")
    _prepare = _prepare.strip().lower()
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=None if _prepare in ("off", "none", "") else int(_prepare),
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with a finer wait for the write lock (see oneclick_project/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "oneclick_project.sqlite"
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # concurrent writers queue for it instead of failing with "database is locked" when they
    # upgrade a read lock mid-transaction. synchronous=FULL syncs the WAL at every commit: a
    # committed checkpoint or accepted cancel survives the machine losing power, not only a
    # process being killed (NORMAL would lose the last commits then).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    DATABASES["default"]["TEST"] = {
        # A file, not :memory:, so the real worker processes of the crash tests share it.
        "NAME": os.environ.get("ONECLICK_TEST_SQLITE_PATH", str(BASE_DIR / "test_db.sqlite3")),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every sign-in with a password (the shop's page, the admin's, HTTP Basic) goes through this
# backend: failures count per address, and a locked-out address is refused before any hashing.
AUTHENTICATION_BACKENDS = ["purchases.signin.LockoutBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog"
LOGOUT_REDIRECT_URL = "login"

# --- Security (effective when DEBUG is off) -----------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Only a proxy that sets X-Forwarded-Proto itself (overwriting any the client sent) makes the
# header trustworthy; without one, any client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False)
    else None
)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(env_float("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# A failed CSRF check answers JSON under /api/ and the shop's "please try again" page elsewhere.
CSRF_FAILURE_VIEW = "purchases.errors_views.csrf_failure"
# Bodies of the JSON API are tiny; anything large is refused before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024


# --- Throttling and the cache it counts in -----------------------------------------------------
def env_rate(name: str, default: str) -> str | None:
    """A DRF rate ("60/min") from the environment; "off" means no limit."""
    raw = os.environ.get(name, "").strip() or default
    if raw.lower() in {"off", "none", "0"}:
        return None
    number, _, period = raw.partition("/")
    if not number.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
        raise ImproperlyConfigured(f"{name} must be a rate such as 60/min, or off; got {raw!r}")
    return raw


THROTTLE_RATES = {
    "anon": env_rate("ONECLICK_THROTTLE_ANON", "60/min"),
    "user": env_rate("ONECLICK_THROTTLE_USER", "1200/min"),
    "buy": env_rate("ONECLICK_THROTTLE_BUY", "120/min"),
    "cancel": env_rate("ONECLICK_THROTTLE_CANCEL", "120/min"),
    "auth_failure": env_rate("ONECLICK_THROTTLE_AUTH_FAILURES", "10/min"),
    # Saving a card calls the payment provider.
    "payment_method": env_rate("ONECLICK_THROTTLE_PAYMENT_METHOD", "30/min"),
}
# A customer may have this many purchases in their cancel window at once (0: no limit).
ONECLICK_MAX_PENDING_PURCHASES = int(env_float("ONECLICK_MAX_PENDING_PURCHASES", 10))


# Past this many entries the file and database caches sweep their expired entries (never a
# live one: oneclick_project/limits_cache.py).
CACHE_SWEEP_ABOVE_ENTRIES = int(env_float("DJANGO_CACHE_SWEEP_ABOVE", 10000))


def cache_from_url(url: str) -> dict[str, object]:
    """A CACHES entry from a URL: redis://..., file:///dir, db://table or locmem://."""
    scheme, _, rest = url.partition("://")
    if scheme in {"redis", "rediss", "unix"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    sweep = {"OPTIONS": {"MAX_ENTRIES": CACHE_SWEEP_ABOVE_ENTRIES}}
    if scheme == "file":
        backend = "oneclick_project.limits_cache.FileCacheKeepingLiveEntries"
        return {"BACKEND": backend, "LOCATION": rest, **sweep}
    if scheme == "db":
        backend = "oneclick_project.limits_cache.DatabaseCacheKeepingLiveEntries"
        return {"BACKEND": backend, "LOCATION": rest, **sweep}
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ImproperlyConfigured(f"DJANGO_CACHE_URL: unknown scheme in {url!r}")


# Throttles count in the default cache. It must be shared by the processes that serve requests
# (Django's default, local memory, would give each gunicorn process a limit of its own), and
# keep every live count (README, "Where the limits count"): Redis when DJANGO_CACHE_URL names
# one (one count across machines), else files on this machine, which need no server. Never the
# broker's REDIS_URL by default: clearing the cache would flush the task queue with it.
CACHES = {
    "default": cache_from_url(
        os.environ.get("DJANGO_CACHE_URL", "").strip()
        or f"file://{writable_dir('DJANGO_CACHE_URL', str(BASE_DIR / 'var' / 'cache'))}"
    )
}

# --- Metrics (Prometheus) ---------------------------------------------------------------------
# /metrics answers staff, or requests bearing this token.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Every process (gunicorn's, django-q2's, the poller) writes its figures to files here and a
# scrape adds them up. prometheus_client reads the variable when it is first imported, which
# is after the settings in every process of the project.
PROMETHEUS_MULTIPROC_DIR = writable_dir(
    "PROMETHEUS_MULTIPROC_DIR",
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(BASE_DIR / "var" / "metrics")),
)

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request then gets 401 with `WWW-Authenticate: Token`
        # (Basic first would pop a password dialog in browsers).
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # HTTP Basic whose failures are rate-limited per client address, before hashing.
        "purchases.throttling.ThrottledBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Every body is read within a size and a nesting depth (a deeper one is a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "purchases.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "purchases.parsers.LimitedMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "purchases.api_errors.json_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    # How many proxies in front append to X-Forwarded-For: the client address the throttles
    # count is the one the last of them saw. 0: the header is ignored (a client could write it).
    "NUM_PROXIES": int(env_float("DJANGO_NUM_PROXIES", 0)),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "oneclick API",
    "DESCRIPTION": "One-click purchases with an undo window, on a durable workflow engine.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, not a CDN: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- oneclick -----------------------------------------------------------------------------------
ONECLICK_CANCEL_WINDOW_SECONDS = env_float("ONECLICK_CANCEL_WINDOW_SECONDS", 5.0)
# The request that accepts a purchase parks its workflow at the cancel window itself, sparing
# the workers a task per purchase (false: a worker does it).
ONECLICK_EAGER_START = env_bool("ONECLICK_EAGER_START", True)

# --- payments (Stripe's API) and email ----------------------------------------------------------
# A secret key (sk_live_... or sk_test_...). Empty: no card can be saved and no purchase bought.
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
# Another address for Stripe's API: `make run` and the tests point it at a local fake
# (localstripe, development only). Empty: Stripe itself.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").rstrip("/")
# One call to the provider: connect and read timeouts, and the SDK's own quick retries (under
# the same idempotency key) before the step's retries take over.
STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 10.0)
STRIPE_MAX_NETWORK_RETRIES = int(env_float("STRIPE_MAX_NETWORK_RETRIES", 1))
# One attempt to charge is abandoned after this long (its outcome is then unknown: tried again
# under the same key). Above STRIPE_TIMEOUT_SECONDS times the SDK's tries.
ONECLICK_CHARGE_TIMEOUT_SECONDS = env_float("ONECLICK_CHARGE_TIMEOUT_SECONDS", 30.0)
# Prices are charged in this currency, in its minor units (cents for usd).
ONECLICK_CURRENCY = os.environ.get("ONECLICK_CURRENCY", "usd").strip().lower()
# A charge whose outcome is unknown (timeout, connection refused, 5xx, 429) is retried under its
# idempotency key for this long before its purchase waits for an operator (never FAILED).
# Stripe replays a key's first answer for 24 hours: keep this well below that.
ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES = env_float("ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES", 30.0)
if ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES >= 12 * 60:
    raise ImproperlyConfigured(
        "ONECLICK_CHARGE_UNKNOWN_FOR_MINUTES must stay well below Stripe's 24 hours of key replay"
    )
# Email: the console in development; SMTP configured from the environment in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env_float("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT_SECONDS", 10.0)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "oneclick <shop@oneclick.invalid>")

# --- durable engine -----------------------------------------------------------------------------
DURABLE = {
    # A worker that dies holds its runs for at most this long before another takes them over.
    "LEASE_SECONDS": env_float("DURABLE_LEASE_SECONDS", 15.0),
    # How often the poller looks for runs whose wake-up time has come or whose lease expired.
    "POLL_INTERVAL_SECONDS": env_float("DURABLE_POLL_INTERVAL_SECONDS", 0.1),
    # A run enqueued but not picked up for this long is enqueued again (its task was lost).
    "REDELIVER_AFTER_SECONDS": env_float("DURABLE_REDELIVER_AFTER_SECONDS", 30.0),
    # A run started eagerly that stopped before a plain step with nothing written, by a process
    # that died before advancing it after its commit, waits this long for the poller.
    "EAGER_GRACE_SECONDS": env_float("DURABLE_EAGER_GRACE_SECONDS", 2.0),
    # `prune_workflows` deletes the checkpoints and workflow signals of runs finished this long ago.
    "RETENTION_DAYS": env_float("DURABLE_RETENTION_DAYS", 30.0),
    # Pollers (and, through a probe task, django-q2 workers) write a heartbeat this often...
    "HEARTBEAT_SECONDS": env_float("DURABLE_HEARTBEAT_SECONDS", 5.0),
    # ...and /readyz fails when none is newer than this.
    "HEALTH_STALE_SECONDS": env_float("DURABLE_HEALTH_STALE_SECONDS", 30.0),
    # /readyz fails while an active run's wake-up time passed this long ago (overdue). The poller
    # enqueues a due run within POLL_INTERVAL_SECONDS and an eager start is due only after
    # EAGER_GRACE_SECONDS, so a healthy engine stays well inside it.
    "OVERDUE_SECONDS": env_float("DURABLE_OVERDUE_SECONDS", 5.0),
    # Plain steps' calls in flight at once per worker process (each waits on a thread of its own).
    "STEPS_IN_FLIGHT": int(env_float("DURABLE_STEPS_IN_FLIGHT", 128)),
    # Behind a transaction pooler the engine keeps no session state and polls for tasks.
    "TRANSACTION_POOLER": DATABASE_POOLER == "pgbouncer",
    # Extra modules that register workflows, imported by every process at start-up.
    "WORKFLOW_MODULES": [
        name.strip()
        for name in os.environ.get("DURABLE_WORKFLOW_MODULES", "").split(",")
        if name.strip()
    ],
}

# --- django-q2 ----------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER: dict[str, object] = {
    "name": os.environ.get("Q_CLUSTER_NAME", "oneclick"),
    "workers": int(env_float("Q_WORKERS", 2)),
    "recycle": int(env_float("Q_RECYCLE", 5000)),
    "bulk": int(env_float("Q_BULK", 4)),
    # A task's own work (plain steps' calls run beside the tasks, in each worker's step pool).
    "timeout": int(env_float("Q_TIMEOUT_SECONDS", 60)),
    "retry": 2 * int(env_float("Q_TIMEOUT_SECONDS", 60)),
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "poll": env_float("Q_POLL_SECONDS", 0.05),
    "label": "Task queue",
}
# Function paths a django-q2 task may name besides the engine's own (any other is refused at
# enqueue: oneclick_project/task_allowlist.py). Set by whoever deploys, never typed by staff.
Q_TASK_ALLOWLIST = [
    path.strip() for path in os.environ.get("Q_TASK_ALLOWLIST", "").split(",") if path.strip()
]
# Without Redis the queue is a table of the database. Its broker: "prompt", the engine's
# (durable.transport.broker: woken by each enqueue), or "stock", django-q2's own (polls every
# Q_POLL_SECONDS,
# and the engine then relies on none of django-q2's internals).
ORM_BROKERS = {
    "prompt": "durable.transport.broker.PromptORMBroker",
    "stock": "django_q.brokers.orm.ORM",
}
DURABLE_BROKER = os.environ.get("DURABLE_BROKER", "").strip().lower() or "prompt"
if DURABLE_BROKER not in ORM_BROKERS:
    raise ImproperlyConfigured(
        f"DURABLE_BROKER must be 'prompt' or 'stock', got {os.environ['DURABLE_BROKER']!r}"
    )
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = ORM_BROKERS[DURABLE_BROKER]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # django-q2 logs three INFO lines per heartbeat probe: DEBUG lines instead.
    "filters": {"demote_probes": {"()": "durable.ops.logfilters.DemoteProbeTasks"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"filters": ["demote_probes"]},
        # The SDK logs every request at INFO.
        "stripe": {"level": "WARNING"},
    },
}
