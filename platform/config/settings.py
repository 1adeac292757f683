"""Mica's settings, read from the environment (every variable is listed in the README).

With no configuration at all the site runs for a newcomer: SQLite under ``var/``, a broker on
the file system, files under ``var/``. Production sets ``DATABASE_URL`` (PostgreSQL),
``CELERY_BROKER_URL`` (Redis) and ``SECRET_KEY``; ``DEBUG`` is off unless asked for.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str
from .object_storage import object_storages

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("MICA_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "mica-insecure-development-key-only-for-debug"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "mica.core",
    "mica.accounts",
    "mica.challenges",
    "mica.datasets",
    "mica.submissions",
    "mica.evaluations",
    "mica.leaderboards",
    "mica.annotations",
    "mica.forum",
    "mica.notifications",
    "mica.downloads",
    "mica.bundles",
    "mica.uploads",
    "mica.algorithms",
    "mica.sites",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Inside the header middleware, so that its refusals carry the same headers as any page.
    "mica.core.middleware.refuse_nul_characters",
    # Last, so that it sees the lockout flag the login views' authentication set.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "platform" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mica.notifications.context_processors.unread_count",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'mica.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        # A kept connection that the database dropped (restart, failover) is replaced, not used.
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Axes first: it refuses a locked-out username or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "mica.accounts.backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "core:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    # Public media: previews of anonymized images only. Hidden data never goes here.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("MEDIA_ROOT", str(VAR_DIR / "media")), "base_url": "/media/"},
    },
    # Private files (ground truth, submissions, uploads): no URL; served only by views that check access.
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("PRIVATE_ROOT", str(VAR_DIR / "private")), "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}
MEDIA_URL = "/media/"
MEDIA_ROOT = STORAGES["default"]["OPTIONS"]["location"]
# Object storage (S3, MinIO): with a bucket named, every stored file goes there and web and
# workers share no disk; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
MICA_S3_BUCKET = env_str("MICA_S3_BUCKET", "")
if MICA_S3_BUCKET:
    STORAGES.update(object_storages(
        MICA_S3_BUCKET, endpoint_url=env_str("MICA_S3_ENDPOINT_URL", "") or None,
        region=env_str("MICA_S3_REGION", "us-east-1"),
        presigned_seconds=env_int("MICA_PRESIGNED_URL_SECONDS", 300, minimum=10),
    ))
# A worker's local copies of stored files, for the engines, when storage is not on its disk.
MICA_WORKER_CACHE_DIR = Path(env_str("MICA_WORKER_CACHE_DIR", str(VAR_DIR / "cache")))
MICA_WORKER_CACHE_BYTES = env_int("MICA_WORKER_CACHE_BYTES", 20 * 1024**3, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# E-mail: printed to the console unless EMAIL_URL (smtp://user:password@host:port, smtp+tls://
# for STARTTLS, smtps:// for TLS) or EMAIL_HOST names an SMTP server. Mail is sent by workers
# only (mica.notifications), never from a request.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mica@localhost")
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    from urllib.parse import unquote, urlsplit

    _mail = urlsplit(EMAIL_URL)
    if _mail.scheme not in ("smtp", "smtp+tls", "smtps") or not _mail.hostname:
        raise ImproperlyConfigured("EMAIL_URL must look like smtp://user:password@host:port (or smtp+tls://, smtps://)")
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname
    EMAIL_PORT = _mail.port or (465 if _mail.scheme == "smtps" else 587 if _mail.scheme == "smtp+tls" else 25)
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _mail.scheme == "smtp+tls"
    EMAIL_USE_SSL = _mail.scheme == "smtps"
else:
    EMAIL_HOST = env_str("EMAIL_HOST", "")
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                            else "django.core.mail.backends.console.EmailBackend")
    EMAIL_HOST = EMAIL_HOST or "localhost"
    EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
# The site's address as e-mails link to it (no trailing slash).
MICA_SITE_URL = env_str("MICA_SITE_URL", "http://localhost:8000")
# A notification the mail server refused is sent again after this many seconds, doubling each time.
MICA_MAIL_RETRY_SECONDS = env_int("MICA_MAIL_RETRY_SECONDS", 60, minimum=1)
# Participants are told a phase opens or closes this many hours before it does.
MICA_PHASE_REMINDER_HOURS = env_int("MICA_PHASE_REMINDER_HOURS", 24, minimum=1)
# The forum against spam: accounts younger than this many hours cannot post, and nobody posts
# more than MICA_FORUM_POSTS_PER_HOUR times an hour (organizers excepted); images per post and size.
MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = env_int("MICA_FORUM_MIN_ACCOUNT_AGE_HOURS", 24, minimum=0)
MICA_FORUM_POSTS_PER_HOUR = env_int("MICA_FORUM_POSTS_PER_HOUR", 20, minimum=1)
MICA_FORUM_IMAGE_BYTES = env_int("MICA_FORUM_IMAGE_BYTES", 4 * 1024 * 1024, minimum=1)
MICA_FORUM_IMAGE_PIXELS = env_int("MICA_FORUM_IMAGE_PIXELS", 4096 * 4096, minimum=1)

# Celery: tasks acknowledged only once done, and requeued if the worker dies under them.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis has no consumer acknowledgements: an unacknowledged task returns to its queue only
    # after this many seconds (and a worker restart, or kombu's restore about every 100 s). Keep
    # it longer than any scoring run, or a slow task is handed to a second worker while the first
    # still runs. A crashed run does not wait for it: its lease runs out (MICA_LEASE_SECONDS) and
    # the sweep sends the work again. RabbitMQ (amqp://) returns a dead worker's message at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing fails fast when the broker is down: the row stays in the outbox for the sweep.
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "mica.core.tasks.sweep",
                          "schedule": float(env_int("MICA_SWEEP_SECONDS", 30, minimum=1))},
    "phase-reminders": {"task": "mica.notifications.tasks.send_phase_reminders", "schedule": 600.0},
}

# Leased work (ingest, validation, evaluations): a worker holds its row under a lease that it
# renews while it works; a dead worker's lease runs out after this many seconds, and the sweep
# hands the work to another worker.
MICA_LEASE_SECONDS = env_int("MICA_LEASE_SECONDS", 60, minimum=2)
# Work that took its worker down this many times is failed rather than retried.
MICA_MAX_ATTEMPTS = env_int("MICA_MAX_ATTEMPTS", 3, minimum=1)
# Work still running this many seconds after a worker started it is failed with a reason.
# Work waiting in the queue is never failed for waiting.
MICA_WORK_TIME_LIMIT = env_int("MICA_WORK_TIME_LIMIT", 3600, minimum=1)
# A board's refreshes start at most this often (seconds apart); a board whose refresh is quick is
# refreshed sooner (mica.leaderboards.models.BoardRefresh), and requests in between coalesce.
MICA_BOARD_REFRESH_SECONDS = env_int("MICA_BOARD_REFRESH_SECONDS", 60, minimum=0)
# Waiting work is sent again after this many seconds (doubling each time), for a message the
# broker lost.
MICA_REDISPATCH_SECONDS = env_int("MICA_REDISPATCH_SECONDS", 600, minimum=1)
# Prediction CSVs up to this size are validated in the upload's request; larger files and
# every .zip are validated by a worker while the submission shows "validating".
MICA_INLINE_VALIDATION_BYTES = env_int("MICA_INLINE_VALIDATION_BYTES", 1024 * 1024, minimum=0)
# Threads each worker process gives torch (0: torch's default, one per core).
MICA_TORCH_THREADS = env_int("MICA_TORCH_THREADS", 0, minimum=0)
MICA_MAX_SUBMISSION_BYTES = env_int("MICA_MAX_SUBMISSION_BYTES", 200 * 1024 * 1024, minimum=1)
# A challenge bundle (mica.bundles) may inflate to at most this many bytes, all files together.
MICA_MAX_BUNDLE_BYTES = env_int("MICA_MAX_BUNDLE_BYTES", 1024 * 1024 * 1024, minimum=1)
# The hospitals' DICOMweb servers organizers may pull studies from (base URLs); none: no pulling.
MICA_DICOMWEB_SOURCES = env_list("MICA_DICOMWEB_SOURCES")
# Resumable (tus) uploads: the largest file, the bytes one user's unfinished uploads may hold,
# and how long an upload that receives nothing is kept.
MICA_UPLOAD_MAX_BYTES = env_int("MICA_UPLOAD_MAX_BYTES", 20 * 1024**3, minimum=1)
MICA_UPLOAD_QUOTA_BYTES = env_int("MICA_UPLOAD_QUOTA_BYTES", 40 * 1024**3, minimum=1)
MICA_UPLOAD_EXPIRY_SECONDS = env_int("MICA_UPLOAD_EXPIRY_SECONDS", 24 * 3600, minimum=60)
# The bytes a browser sends per request: what a dropped connection costs at most.
MICA_UPLOAD_CHUNK_BYTES = env_int("MICA_UPLOAD_CHUNK_BYTES", 8 * 1024**2, minimum=1024)
# Teams' containers run in this sandbox (evaluator.containers); their logs are kept up to this size.
MICA_CONTAINER_BACKEND = env_str("MICA_CONTAINER_BACKEND", "bwrap")
MICA_CONTAINER_LOG_BYTES = env_int("MICA_CONTAINER_LOG_BYTES", 64 * 1024, minimum=0)
# What one run may leave in /output: its files' bytes, and its files and folders (a run over a
# cap fails and what it wrote is deleted; they keep a container from filling a worker's disk).
MICA_CONTAINER_OUTPUT_BYTES = env_int("MICA_CONTAINER_OUTPUT_BYTES", 2 * 1024**3, minimum=1)
MICA_CONTAINER_OUTPUT_FILES = env_int("MICA_CONTAINER_OUTPUT_FILES", 50_000, minimum=1)
# Bootstrap resamples of each evaluation's 95% intervals, and of a leaderboard's rank stability
# and pairwise tests (computed by workers, stored, never on a page view).
MICA_INTERVAL_RESAMPLES = env_int("MICA_INTERVAL_RESAMPLES", 2000, minimum=100)
MICA_RANKING_RESAMPLES = env_int("MICA_RANKING_RESAMPLES", 1000, minimum=100)
# A significance ranking tests every pair of teams again in each bootstrap sample of its rank
# stability (a 1,400-team AUC board: about a second a sample): its samples stop at about this many
# seconds of the worker's time, and at no fewer than 20 (the statistics page says how many).
MICA_SIGNIFICANCE_STABILITY_SECONDS = env_int("MICA_SIGNIFICANCE_STABILITY_SECONDS", 120, minimum=1)

# A cache every process shares: the token endpoint's failure counters live there. Redis when
# there is one (CACHE_URL, else the broker's Redis); the database otherwise (`make demo`).
_REDIS_SCHEMES = ("redis://", "rediss://")
CACHE_URL = env_str("CACHE_URL") or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(_REDIS_SCHEMES) else "")
if CACHE_URL and not CACHE_URL.startswith(_REDIS_SCHEMES):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} is not a Redis URL (redis://host:port/db)")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "mica-cache"}}
else:
    # `migrate` creates its table (mica.accounts runs createcachetable after migrating).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "mica_cache"}}

# Brute-force protection. The log-in form, the admin log-in and the token endpoint all go through
# Django's authenticate(): django-axes counts failures per username and per address in the
# database, and after MICA_LOGIN_FAILURE_LIMIT of either refuses even the right password for
# MICA_LOGIN_COOLOFF seconds. The token endpoint also counts its failures in the cache (429 with
# Retry-After). Behind MICA_PROXY_COUNT trusted proxies the client address is read from
# X-Forwarded-For; with none, from the connection (a client cannot forge its address).
MICA_LOGIN_FAILURE_LIMIT = env_int("MICA_LOGIN_FAILURE_LIMIT", 10, minimum=1)
MICA_LOGIN_COOLOFF = env_int("MICA_LOGIN_COOLOFF", 900, minimum=1)
MICA_PROXY_COUNT = env_int("MICA_PROXY_COUNT", 0, minimum=0)
AXES_FAILURE_LIMIT = MICA_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=MICA_LOGIN_COOLOFF)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "mica.accounts.addresses.client_address"

# API tokens are refused once older than this many seconds; the client asks for a new one.
MICA_TOKEN_TTL = env_int("MICA_TOKEN_TTL", 30 * 24 * 3600, minimum=1)

# The site workers' API (mica.sites) answers each site token at most this many requests per
# window (counted in the token's own row, so every web process shares the count); past it, 429
# with Retry-After, which the site worker honours. The default leaves room for several workers
# of a site polling every 5 s and beating every MICA_LEASE_SECONDS / 3.
MICA_SITE_API_REQUESTS = env_int("MICA_SITE_API_REQUESTS", 120, minimum=1)
MICA_SITE_API_WINDOW_SECONDS = env_int("MICA_SITE_API_WINDOW_SECONDS", 60, minimum=1)
# A job at a site may run this long (its worker beating) before the sweep fails it; the site's
# own hardware scores a whole test set, so it gets a day rather than MICA_WORK_TIME_LIMIT.
MICA_SITE_JOB_TIME_LIMIT = env_int("MICA_SITE_JOB_TIME_LIMIT", 24 * 3600, minimum=1)

REST_FRAMEWORK = {
    # Token authentication first: a request without credentials is answered 401 with a
    # WWW-Authenticate header (DRF takes it from the first class), not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mica.accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The browsable API only while developing: production answers JSON.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.MicaAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mica API",
    "DESCRIPTION": "Challenges, submissions and leaderboards of a Mica site.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: the docs work without reaching a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"ReleaseKindEnum": "mica.downloads.models.DataRelease.Kind",
                            "SiteJobStatusEnum": "mica.sites.models.SiteJob.Status"},
}

# Content-Security-Policy: scripts, styles and images from this site only (no inline code, no
# remote images), no framing. The API docs page loosens it for Swagger UI (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Production hardening; `manage.py check --deploy` is clean with DEBUG off and HTTPS in front.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
