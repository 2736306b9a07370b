"""Settings, read from the environment.

``python manage.py serve`` translates its flags into the ``S2_*`` variables below
before the server process imports this module, so that every process of one
server sees the same configuration.

Environment variables:

* ``DATABASE_URL`` -- any URL understood by dj-database-url (``sqlite:///path``,
  ``postgres://…``). Default: ``s2.sqlite3`` inside ``S2_LOCAL_ROOT`` when set,
  otherwise ``db.sqlite3`` beside ``manage.py``.
* ``S2_STORAGE`` -- ``memory`` (default), ``local`` or ``s3``; ``S2_LOCAL_ROOT``,
  ``S2_BUCKET`` and ``S2_PATH`` complete it.
* ``S2_CORS`` -- ``0`` disables CORS headers (``serve --no-cors``).
* ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS`` (comma separated).
* ``AWS_*`` -- S3 credentials and endpoint, read by django-storages and boto3.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_first(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "insecure-development-key-set-DJANGO_SECRET_KEY-in-production"
)
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")]

S2_STORAGE = os.environ.get("S2_STORAGE", "memory")
S2_LOCAL_ROOT = os.environ.get("S2_LOCAL_ROOT") or None
S2_BUCKET = os.environ.get("S2_BUCKET") or None
S2_PATH = os.environ.get("S2_PATH", "")
S2_CORS = _env_bool("S2_CORS", True)
# The record log: how long a flush may wait to batch appends (0: flush as soon as the
# previous flush is done), and the server-wide budget of in-flight append bytes.
S2_FLUSH_INTERVAL_MS = float(
    os.environ.get("S2_FLUSH_INTERVAL_MS", "50" if S2_STORAGE == "s3" else "0")
)
S2_APPEND_INFLIGHT_BYTES = int(os.environ.get("S2_APPEND_INFLIGHT_BYTES", str(128 * 1024 * 1024)))
# Background tasks (README "Background tasks"): pass intervals in seconds (each ±10 %),
# the garbage-collection grace period, and the compaction target size.
S2_DELETION_INTERVAL_S = float(os.environ.get("S2_DELETION_INTERVAL_S", "60"))
S2_TRIM_INTERVAL_S = float(os.environ.get("S2_TRIM_INTERVAL_S", "60"))
S2_RETENTION_INTERVAL_S = float(os.environ.get("S2_RETENTION_INTERVAL_S", "60"))
S2_DELETE_ON_EMPTY_INTERVAL_S = float(os.environ.get("S2_DELETE_ON_EMPTY_INTERVAL_S", "60"))
S2_GC_INTERVAL_S = float(os.environ.get("S2_GC_INTERVAL_S", "60"))
S2_GC_GRACE_S = float(os.environ.get("S2_GC_GRACE_S", "60"))
S2_ORPHAN_SWEEP_INTERVAL_S = float(os.environ.get("S2_ORPHAN_SWEEP_INTERVAL_S", "3600"))
S2_COMPACTION_INTERVAL_S = float(os.environ.get("S2_COMPACTION_INTERVAL_S", "60"))
S2_COMPACTION_TARGET_BYTES = int(os.environ.get("S2_COMPACTION_TARGET_BYTES", str(8 * 1024 * 1024)))
S2_COMPACTION_EXPIRY_SLACK_MS = int(os.environ.get("S2_COMPACTION_EXPIRY_SLACK_MS", "60000"))

INSTALLED_APPS = [
    # ``s2site`` comes first so that its ``runserver`` replaces Django's.
    "s2site",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "storagecore",
    "basins",
    "streams",
]

# No CommonMiddleware (APPEND_SLASH redirects) and no GZip: the wire format of the
# API is fixed by the spec (§12). Sessions, CSRF and messages serve the admin only;
# API views are CSRF-exempt and authenticate nobody through sessions.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
APPEND_SLASH = False

ROOT_URLCONF = "s2site.urls"
ASGI_APPLICATION = "s2site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


# FULL: a commit survives power loss. The throw-away database of in-memory mode
# (nothing persists there anyway) runs with OFF.
_SQLITE_SYNCHRONOUS = {"OFF": "OFF", "NORMAL": "NORMAL"}.get(
    os.environ.get("S2_SQLITE_SYNCHRONOUS", "FULL").upper(), "FULL"
)


def _database() -> dict[str, object]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        root = Path(S2_LOCAL_ROOT) if S2_LOCAL_ROOT else BASE_DIR
        url = f"sqlite:///{root / ('s2.sqlite3' if S2_LOCAL_ROOT else 'db.sqlite3')}"
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=600))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL with synchronous=FULL: a committed transaction survives power loss.
        config["OPTIONS"] = {
            "init_command": (
                f"PRAGMA journal_mode=WAL;PRAGMA synchronous={_SQLITE_SYNCHRONOUS};"
                "PRAGMA busy_timeout=30000;"
            ),
            "transaction_mode": "IMMEDIATE",
        }
        config["CONN_MAX_AGE"] = 0
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Unary API bodies may be up to 2 MiB; the HTTP edge enforces that limit itself
# and answers with the S2 error, so Django's own limit must not fire first.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only needed for `collectstatic`; the admin's files are served from the apps directly.
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# S3 mode (serve --bucket): segments go to a django-storages S3Storage (s2site.s3), which
# reads the AWS_* settings; these fill them from boto3's own environment variables.
AWS_S3_ENDPOINT_URL = _env_first("AWS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
AWS_S3_REGION_NAME = _env_first("AWS_S3_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
# Path-style requests for custom endpoints (MinIO, moto, ...), as most S3-compatible servers need.
AWS_S3_ADDRESSING_STYLE = os.environ.get("AWS_S3_ADDRESSING_STYLE") or (
    "path" if AWS_S3_ENDPOINT_URL else None
)
if S2_BUCKET:
    STORAGES["s2"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": S2_BUCKET},
    }
# Serve the admin's static files straight from the installed apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["s2site.api.responses.CompactJSONRenderer"],
    "EXCEPTION_HANDLER": "s2site.api.errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "s2site.api.responses.FirstRendererNegotiation",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("S2_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
