"""Settings, read from the environment once when the application is built.

Every setting a user may change is listed in the README. The defaults are those of the
embedded demo: a SQLite file under ``instance/``.
"""

from __future__ import annotations

import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a whole number, not {raw!r}") from exc


def _secret_key() -> str | None:
    """SECRET_KEY from the environment, else the file `make run` generated, else None."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    key_file = Path(os.environ.get("SECRET_KEY_FILE", INSTANCE_DIR / "secret_key"))
    if key_file.is_file():
        key = key_file.read_text().strip()
        return key or None
    return None


def database_url() -> str:
    """The SQLAlchemy URL: DATABASE_URL, with PostgreSQL URLs steered to psycopg 3."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'plugboard.db'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str) -> dict:
    """SQLAlchemy engine options. No pre-ping: it costs a round trip per request; a dropped
    connection invalidates the pool on first use instead, and connections are renewed every
    half hour. A server database's pool is sized by DATABASE_POOL_SIZE and
    DATABASE_MAX_OVERFLOW (10 and 10 by default: the ingest batches, the sweep and
    WEBHOOK_CONCURRENCY (8) webhook runs each take one at times; with SQLAlchemy's 5,
    `bench/events.py` saw the pool open and close 705 overflow connections in 45 s, 43 with
    10). PostgreSQL sessions run in UTC."""
    options: dict = {"pool_recycle": 1800}
    if not url.startswith("sqlite"):
        options["pool_size"] = _int("DATABASE_POOL_SIZE", 10)
        options["max_overflow"] = _int("DATABASE_MAX_OVERFLOW", 10)
    if url.startswith("postgresql"):
        # Sessions in UTC, whatever the server's zone: psycopg then returns timestamps
        # with datetime.UTC itself, which UTCDateTime passes through as they are (with a
        # zone such as Etc/UTC each one was converted, 5 % of an ingest worker's time).
        options["connect_args"] = {"options": "-c TimeZone=UTC"}
    return options


def from_environment() -> dict:
    """Build the Flask config mapping from the environment."""
    heartbeat = _int("OCPP_HEARTBEAT_INTERVAL", 300)
    # Behind HTTPS: both cookies that sign a user in go over HTTPS only.
    secure_cookies = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    url = database_url()
    return {
        "SECRET_KEY": _secret_key(),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "API_PAGE_SIZE_MAX": _int("API_PAGE_SIZE_MAX", 100),
        # How long a process may trust a token it checked, for reads (0: check every time).
        "API_TOKEN_CACHE_SECONDS": _int("API_TOKEN_CACHE_SECONDS", 10),
        # How many reverse proxies (nginx) stand before the app; their X-Forwarded-*
        # headers are believed only then.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # Redis between worker processes and hosts (live events, calls to charge points);
        # without it, everything stays within one process.
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        # OCPP: the heartbeat interval an accepted charge point is given, the wait a pending
        # or rejected one is told to keep before booting again, how long a silent socket is
        # kept (default: two heartbeats and a minute), how long a call to a charge point
        # waits for its answer, and after how many missed heartbeats it shows as stale.
        "OCPP_HEARTBEAT_INTERVAL": heartbeat,
        "OCPP_BOOT_RETRY_INTERVAL": _int("OCPP_BOOT_RETRY_INTERVAL", 60),
        "OCPP_IDLE_TIMEOUT": _int("OCPP_IDLE_TIMEOUT", 2 * heartbeat + 60),
        "OCPP_CALL_TIMEOUT": _int("OCPP_CALL_TIMEOUT", 30),
        "OCPP_STALE_FACTOR": _int("OCPP_STALE_FACTOR", 2),
        # The highest connectorId a charge point may report (connectors are numbered from
        # 1), and how far ahead of this server's clock an event time may be before it is
        # taken as a wrong clock (the event is then dated when received).
        "OCPP_MAX_CONNECTORS": _int("OCPP_MAX_CONNECTORS", 32),
        # After a connect or a BootNotification, how long a connection stays up before
        # Plugboard asks (TriggerMessage) for the status of each connector not reported
        # since; and how often it pings a socket (a dead one closes after two missed
        # pongs).
        "OCPP_STATUS_SETTLE_SECONDS": _int("OCPP_STATUS_SETTLE_SECONDS", 10),
        "OCPP_PING_INTERVAL": _int("OCPP_PING_INTERVAL", 30),
        "OCPP_MAX_FUTURE_SECONDS": _int("OCPP_MAX_FUTURE_SECONDS", 900),
        # Vendors whose DataTransfer messages are Accepted (comma-separated vendorIds);
        # any other gets UnknownVendorId. Every message is recorded either way.
        "OCPP_DATA_TRANSFER_VENDORS": frozenset(
            v.strip()
            for v in os.environ.get("OCPP_DATA_TRANSFER_VENDORS", "").split(",")
            if v.strip()
        ),
        # Days sampled meter values are kept (`flask --app wsgi prune` removes older ones).
        "METER_VALUES_RETENTION_DAYS": _int("METER_VALUES_RETENTION_DAYS", 90),
        # Events for integrations are kept this many days (the stream resumes within them;
        # a disabled webhook endpoint catches up within them).
        "EVENTS_RETENTION_DAYS": _int("EVENTS_RETENTION_DAYS", 7),
        # Webhooks: addresses allowed besides public ones (comma-separated networks, e.g.
        # "10.0.0.0/8,127.0.0.1/32"), the wait for a receiver, the first retry's wait
        # (doubled after each failure, at most an hour), when a failing endpoint is
        # disabled, and how many endpoints one worker delivers to at once.
        "WEBHOOK_ALLOWED_NETWORKS": [
            net.strip()
            for net in os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",")
            if net.strip()
        ],
        "WEBHOOK_TIMEOUT_SECONDS": _int("WEBHOOK_TIMEOUT_SECONDS", 10),
        "WEBHOOK_RETRY_SECONDS": _int("WEBHOOK_RETRY_SECONDS", 10),
        "WEBHOOK_DISABLE_AFTER_HOURS": _int("WEBHOOK_DISABLE_AFTER_HOURS", 24),
        "WEBHOOK_CONCURRENCY": _int("WEBHOOK_CONCURRENCY", 8),
        # Incidents: how often the sweep looks for hold-downs that passed (the rules are on
        # the Incident rules page).
        "INCIDENT_SWEEP_SECONDS": _int("INCIDENT_SWEEP_SECONDS", 10),
        # The incident digest by e-mail: only with SMTP_URL (smtp://user:pass@host:port, or
        # smtps://), every DIGEST_MINUTES, from MAIL_FROM.
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "DIGEST_MINUTES": _int("DIGEST_MINUTES", 60),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Plugboard <plugboard@localhost>"),
        # Webhook delivery, the incident sweep, pruning and digests run in the web workers
        # (dashboard/clock.py); 0 turns them off in this process.
        "BACKGROUND_JOBS": os.environ.get("BACKGROUND_JOBS", "1") == "1",
        # /metrics (Prometheus) answers requests that carry this bearer token; unset: off.
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        # Forms and htmx send the token in a header set on <body>; API clients use Bearer tokens.
        "WTF_CSRF_HEADERS": ["X-CSRFToken", "X-CSRF-Token"],
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Failed sign-ins allowed per account and per address (Flask-Limiter syntax); the
        # counters live in RATELIMIT_STORAGE_URI (memory: per process).
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # While that storage (Redis) is unreachable, count in this process's memory instead
        # of failing the sign-in, and go back to it when it answers again.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "5 per minute"),
        "LOGIN_LIMIT_PER_ADDRESS": os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "20 per minute"),
        # The OCPP endpoint agrees to "ocpp1.6" only, and refuses frames over 64 KiB.
        "SOCK_SERVER_OPTIONS": {
            "subprotocols": ["ocpp1.6"],
            "max_message_size": _int("OCPP_MAX_MESSAGE_SIZE", 64 * 1024),
            "ping_interval": _int("OCPP_PING_INTERVAL", 30) or None,
        },
    }
