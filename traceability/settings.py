"""One settings module, configured from the environment (see README, "Configuration")."""

from __future__ import annotations

import datetime
import secrets
from pathlib import Path

import dj_database_url

from recalls.schedule import BEAT_SCHEDULE as RECALLS_BEAT_SCHEDULE
from traceability.env import (
    BASE_DIR,
    VAR_DIR,
    embedded_database_url,
    ensure_embedded_database,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)

# `TRACEABILITY_PROFILE=production` turns on everything `manage.py check --deploy` asks for (HTTPS
# only, HSTS, secure cookies) and refuses to start without a long SECRET_KEY; see README,
# "Production". Any other value (or none) is the development profile.
PROFILE = env_str("TRACEABILITY_PROFILE", "development")
if PROFILE not in {"development", "production"}:
    raise ValueError(f"TRACEABILITY_PROFILE must be development or production, got {PROFILE!r}")
PRODUCTION = PROFILE == "production"
SECRET_KEY_MIN_LENGTH = 50


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if PRODUCTION and (len(configured) < SECRET_KEY_MIN_LENGTH or len(set(configured)) < 5):
        raise ValueError(
            f"The production profile needs SECRET_KEY: at least {SECRET_KEY_MIN_LENGTH} random "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(64))')"
        )
    if configured:
        return configured
    # Local runs keep a generated key under var/ so sessions survive restarts; none is hard-coded.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ValueError("DEBUG must be off in the production profile")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
LOGIN_URL = "pages:sign-in"
LOGIN_REDIRECT_URL = "pages:home"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "common.apps.CommonConfig",
    "providers.apps.ProvidersConfig",
    "signatures.apps.SignaturesConfig",
    "lots.apps.LotsConfig",
    "stock.apps.StockConfig",
    "treatments.apps.TreatmentsConfig",
    "recalls.apps.RecallsConfig",
    "audit.apps.AuditConfig",
    "pages.apps.PagesConfig",
    "interop.apps.InteropConfig",
    "history.apps.HistoryConfig",
    "demo.apps.DemoConfig",
    "ops.apps.OpsConfig",
    "django_htmx",
    "axes",
]

MIDDLEWARE = [
    # First, so every line any other middleware logs carries the request's id.
    "common.request_id.RequestIdMiddleware",
    # The load balancer's probes, answered before the host check and the session (common.health).
    "common.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language); the clinic pages apply a user's own choice.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Each user's roles are read at most once per request (providers.access).
    "providers.access.AccessMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lock-out flagged during the request into the answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "traceability.urls"
WSGI_APPLICATION = "traceability.wsgi.application"

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
                "django.template.context_processors.i18n",
                "pages.context.page_context",
            ],
        },
    },
]

# PostgreSQL only: constraints, row locks and triggers are part of the design.
_database_url = env_str("DATABASE_URL")
USING_EMBEDDED_DATABASE = not _database_url
if USING_EMBEDDED_DATABASE:
    _database_url = embedded_database_url()
    ensure_embedded_database(_database_url)
DATABASES = {
    "default": dj_database_url.parse(
        _database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
# pgtrigger's triggers read this setting inside an exception block; left undefined, every row
# written raises and catches an error, and in a long transaction those aborted subtransactions
# grow slower and slower (the benchmarks measured 10x). Defining it (empty: ignore nothing)
# removes the cost.
# Every cached plan generic: PostgreSQL's own choice planned the statements prepared once per
# connection (common.postgresql.prepared) afresh on every run, as their custom plans looked
# cheaper, and kept most of the cost preparing was to save. The other cached plans are those of
# the triggers' PL/pgSQL, each a lookup by key or an insert, whose plan no value changes; a
# recording's PostgreSQL CPU fell by a third (benchmark_scale's data, docs/performance.md).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    "-c pgtrigger.ignore={} -c plan_cache_mode=force_generic_plan"
)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ValueError("DATABASE_URL must point at PostgreSQL (postgresql://...)")
# Django's PostgreSQL backend, reading timestamps with psycopg's compiled loader (see its doc).
DATABASES["default"]["ENGINE"] = "common.postgresql"
# A streaming replica of DATABASE_URL for reads (docs/replicas.md); unset, everything uses the
# primary. After a write, a browser reads the primary for DATABASE_REPLICA_PIN_SECONDS.
_replica_url = env_str("DATABASE_REPLICA_URL")
DATABASE_REPLICA_PIN_SECONDS = env_float("DATABASE_REPLICA_PIN_SECONDS", 5.0)
if DATABASE_REPLICA_PIN_SECONDS < 0:
    raise ValueError(
        f"DATABASE_REPLICA_PIN_SECONDS must not be negative, got {DATABASE_REPLICA_PIN_SECONDS}"
    )
if _replica_url:
    DATABASES["replica"] = {
        **dj_database_url.parse(
            _replica_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
        ),
        "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
        "TEST": {"MIRROR": "default"},
    }
    if DATABASES["replica"]["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError("DATABASE_REPLICA_URL must point at PostgreSQL (postgresql://...)")
    DATABASES["replica"]["ENGINE"] = DATABASES["default"]["ENGINE"]
    DATABASE_ROUTERS = ["common.db_routing.PrimaryReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"),
        "common.db_routing.ReplicaReadsMiddleware",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id for every new or changed password; the others only read hashes stored before (Django
# rehashes such a password with Argon2 at its next successful check).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Lock-out after repeated wrong passwords (django-axes), on every password check: the admin's and
# any page's sign-in (AxesStandaloneBackend runs before each authenticate()), the API's token
# sign-in, and the password re-entered to sign (common.lockout). The account is locked,
# whatever address the attempts come from: AXES_FAILURE_LIMIT wrong passwords in a row lock it for
# AXES_COOLOFF_MINUTES (a wrong one meanwhile starts the cool-off again); an administrator lifts it
# early in the admin (Axes > Access attempts) or with `manage.py axes_reset_username USERNAME`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks to lock client addresses too. Here the account is what is protected (21 CFR
# 11.300(d)); an address lock would shut out a whole clinic behind one NAT address after a few
# typos. Guessing from one address is slowed by the API throttles instead.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
# Only the lock-out parameters (the account) in its log lines, and no banner on every command.
AXES_VERBOSE = False
AXES_HTTP_RESPONSE_CODE = 403
AXES_LOCKOUT_CALLABLE = "common.lockout.lockout_response"
# Behind a reverse proxy, the client's address is the proxy's unless told where to read it.
AXES_IPWARE_META_PRECEDENCE_ORDER = tuple(env_list("AXES_CLIENT_IP_HEADERS", ["REMOTE_ADDR"]))
if AXES_FAILURE_LIMIT < 1:
    raise ValueError(f"AXES_FAILURE_LIMIT must be at least 1, got {AXES_FAILURE_LIMIT}")

# Throttles count in the cache: per process unless CACHE_URL names a shared Redis.
_cache_url = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(VAR_DIR / "static"))
# whitenoise warns on every request when the directory is missing (before collectstatic ran).
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
# The PostgreSQL client programs for backups (ops.postgres); unset, found by the server's version.
PG_BIN_DIR = env_str("PG_BIN_DIR")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Certificates: uploaded PDFs are checked, hashed and never replaced.
CERTIFICATE_MAX_BYTES = env_int("CERTIFICATE_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CERTIFICATE_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = CERTIFICATE_MAX_BYTES + 1024 * 1024

REST_FRAMEWORK = {
    # Tokens first: a request that is not signed in is told 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # django-rest-knox: only a hash of each token is stored, and it expires (REST_KNOX below);
        # the token, its account and the account's roles are read in one statement.
        "providers.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default: signed in, holding an active role; writes only for quality managers unless
    # a view says otherwise (clinic staff views name their own classes).
    "DEFAULT_PERMISSION_CLASSES": [
        "providers.permissions.HasActiveRole",
        "providers.permissions.QualityManagerWrites",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "common.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Requests per caller and period (second, minute, hour, day); past it a 429 with Retry-After.
    # Anonymous callers are counted by address, signed-in ones by account; the token sign-in has
    # its own tight rate on top of the lock-out.
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.AnonymousRateThrottle",
        "common.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anonymous": env_str("API_THROTTLE_ANONYMOUS", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "1200/minute"),
        "token_obtain": env_str("API_THROTTLE_TOKEN_OBTAIN", "10/minute"),
    },
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0) if env_str("API_NUM_PROXIES") else None,
}
# API tokens: obtained at POST /api/v1/auth/token/ with username and password, stored as a SHA-512
# digest, valid for API_TOKEN_TTL_HOURS, sent as `Authorization: Token <key>`.
API_TOKEN_TTL_HOURS = env_float("API_TOKEN_TTL_HOURS", 10.0)
if API_TOKEN_TTL_HOURS <= 0:
    raise ValueError(f"API_TOKEN_TTL_HOURS must be positive, got {API_TOKEN_TTL_HOURS}")
REST_KNOX = {
    "TOKEN_TTL": datetime.timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": env_int("API_TOKEN_LIMIT_PER_USER", 20),
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Exosome lot traceability API",
    "DESCRIPTION": "Lots, donors, certificates, tests and the release gate.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # The enums hook is drf-spectacular's default; the other documents the 429 and 503 that any
    # request can get.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.openapi.document_any_request_errors",
    ],
    # Swagger UI and Redoc served from the installed sidecar package: everything works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One schema name per choice set that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "LotStatusEnum": "lots.models.LotStatus",
        "AuthorisationStatusEnum": "lots.models.AuthorisationStatus",
        "TissueEnum": "lots.models.Tissue",
        "QcKindEnum": "lots.models.QcKind",
        "QcOutcomeEnum": "lots.models.QcOutcome",
        "CertificateKindEnum": "lots.models.CertificateKind",
        "RecallStatusEnum": "recalls.models.RecallStatus",
        "DispositionKindEnum": "recalls.models.DispositionKind",
        "ContactOutcomeEnum": "recalls.models.ContactOutcome",
        "RouteEnum": "lots.models.Route",
        "HistoryImportKindEnum": "history.models.ImportKind",
        "HistoryImportStatusEnum": "history.models.ImportStatus",
    },
}

PGHISTORY_APPEND_ONLY = True

# Celery: a real broker when configured, otherwise kombu's filesystem transport under var/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    _queue_dir = VAR_DIR / "celery-broker"
    for _sub in ("out", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        # The exchange table; kombu's default is ./control, relative to wherever a process starts.
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule")
)
# Periodic work (Celery beat): each app's own schedule.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    **RECALLS_BEAT_SCHEDULE,
    # Beat's own heartbeat, for the readiness check; one left queued past the next is dropped.
    "health-beat-heartbeat": {
        "task": "common.beat_heartbeat_record",
        "schedule": 60.0,
        "options": {"expires": 55.0},
    },
}
CELERY_TIMEZONE = "UTC"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "traceability@localhost")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)

# Recalls: how long the signed acknowledgement link in a recall e-mail stays valid.
RECALL_ACK_LINK_MAX_AGE_DAYS = env_int("RECALL_ACK_LINK_MAX_AGE_DAYS", 30)

# Recall notice delivery (recalls.delivery). A delivery task is killed after its time limit; a
# notice claimed longer ago than the lease is taken to belong to a dead worker and is queued again,
# so the lease must outlast the time limit (or a live delivery would be duplicated).
RECALL_DELIVERY_TIME_LIMIT_SECONDS = 60
RECALL_DELIVERY_LEASE_SECONDS = env_int("RECALL_DELIVERY_LEASE_SECONDS", 120)
if RECALL_DELIVERY_LEASE_SECONDS <= RECALL_DELIVERY_TIME_LIMIT_SECONDS:
    raise ValueError(
        f"RECALL_DELIVERY_LEASE_SECONDS must be longer than the delivery time limit "
        f"({RECALL_DELIVERY_TIME_LIMIT_SECONDS} s), got {RECALL_DELIVERY_LEASE_SECONDS}"
    )
# A notice is retried for as long as its channel keeps failing inside its delivery window,
# counted from its first failed attempt, so it outlives any outage shorter than the window (DESIGN
# rule 10): hours for class I and II recalls. The delay before attempt n+1 is the backoff doubled
# n-1 times, at most the maximum, plus a jitter of up to RECALL_DELIVERY_JITTER of it: jitter
# only ever adds.
RECALL_DELIVERY_WINDOW_HOURS = env_float("RECALL_DELIVERY_WINDOW_HOURS", 72.0)
RECALL_DELIVERY_WINDOW_HOURS_CLASS_III = env_float("RECALL_DELIVERY_WINDOW_HOURS_CLASS_III", 24.0)
for _name, _hours in (
    ("RECALL_DELIVERY_WINDOW_HOURS", RECALL_DELIVERY_WINDOW_HOURS),
    ("RECALL_DELIVERY_WINDOW_HOURS_CLASS_III", RECALL_DELIVERY_WINDOW_HOURS_CLASS_III),
):
    if _hours <= 0:
        raise ValueError(f"{_name} must be a positive number of hours, got {_hours}")
RECALL_DELIVERY_BACKOFF_SECONDS = env_float("RECALL_DELIVERY_BACKOFF_SECONDS", 30.0)
RECALL_DELIVERY_BACKOFF_MAX_SECONDS = env_float("RECALL_DELIVERY_BACKOFF_MAX_SECONDS", 600.0)
RECALL_DELIVERY_JITTER = 0.25
if not 0 < RECALL_DELIVERY_BACKOFF_SECONDS <= RECALL_DELIVERY_BACKOFF_MAX_SECONDS:
    raise ValueError(
        "RECALL_DELIVERY_BACKOFF_SECONDS must be positive and at most "
        "RECALL_DELIVERY_BACKOFF_MAX_SECONDS"
    )
if RECALL_DELIVERY_BACKOFF_MAX_SECONDS * (1 + RECALL_DELIVERY_JITTER) > 3000:
    # A broker holds a delayed message for its visibility timeout (Redis: one hour) at most.
    raise ValueError("RECALL_DELIVERY_BACKOFF_MAX_SECONDS must be at most 2400 (40 minutes)")
# A webhook endpoint's previous secret still signs (beside the new one) this long after a rotation,
# so its receiver can switch without losing a notice.
RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS = env_float("RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS", 24.0)
RECALL_WEBHOOK_TIMEOUT_SECONDS = env_int("RECALL_WEBHOOK_TIMEOUT_SECONDS", 10)
# Reminders (every 15 minutes) for notices whose clinic has not acknowledged; after this many
# reminders the network quality managers are told as well.
RECALL_REMINDER_AFTER_HOURS = env_int("RECALL_REMINDER_AFTER_HOURS", 24)
RECALL_ESCALATE_AFTER_REMINDERS = env_int("RECALL_ESCALATE_AFTER_REMINDERS", 2)

# Health endpoints (common.health): /health/live answers while the process runs; /health/ready
# checks the database, the broker, the worker's heartbeat and beat's, and answers 503 when a
# required one fails (the others show "warn"): a web-only deployment is ready without a worker.
HEALTH_CHECK_NAMES = ("database", "broker", "worker", "beat")
HEALTH_REQUIRED_CHECKS = env_list("HEALTH_REQUIRED_CHECKS", ["database", "broker"])
if not set(HEALTH_REQUIRED_CHECKS) <= set(HEALTH_CHECK_NAMES):
    raise ValueError(
        f"HEALTH_REQUIRED_CHECKS may name {', '.join(HEALTH_CHECK_NAMES)}, "
        f"got {', '.join(HEALTH_REQUIRED_CHECKS)}"
    )
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
# The worker writes its heartbeat every HEALTH_WORKER_HEARTBEAT_SECONDS; beat's comes every
# minute (CELERY_BEAT_SCHEDULE) through a worker. Each is stale after a few missed beats.
HEALTH_WORKER_HEARTBEAT_SECONDS = 30.0
HEALTH_WORKER_MAX_AGE_SECONDS = 120.0
HEALTH_BEAT_MAX_AGE_SECONDS = 300.0

# One JSON object per line in production, for a log collector; readable lines in development.
# Every line written while a request is served (and by the tasks it queued) carries its id.
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "text")
if LOG_FORMAT not in {"json", "text"}:
    raise ValueError(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "common.request_id.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "common.logging_json.JsonFormatter"},
        "text": {
            "()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            "defaults": {"request_id": "-"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # The PDF recall report: WeasyPrint logs every layout step and fontTools every glyph subset
    # at INFO; keep their warnings only.
    "loggers": {
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# HTTPS. The development profile serves plain HTTP unless told otherwise; the production profile
# serves HTTPS only (check --deploy passes with no warning), each setting still overridable.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
# Set only behind a proxy that terminates TLS and always sets this header (nginx, a load balancer).
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
