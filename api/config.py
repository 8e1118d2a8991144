"""Configuration: defaults per environment, then HERALD_* variables and conventional names."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "testing", "production")
DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
LOOPBACK_SUBNETS = "127.0.0.0/8,::1/128"


def herald_version() -> str:
    """Herald's version from pyproject.toml (no installed distribution needed)."""
    try:
        with open(ROOT / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0"


class ConfigError(SystemExit):
    """Bad configuration: exits with a one-line message saying what to set."""

    def __init__(self, message: str) -> None:
        super().__init__(f"herald: configuration error: {message}")
        self.message = message


BASE: dict[str, Any] = {
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "REDIS_URL": None,
    "PORT": 8000,
    "WEB_CONCURRENCY": None,  # gunicorn.conf.py: one gevent worker per core (at least 2) unless set
    "MAX_CONTENT_LENGTH": 1024 * 1024 + 16 * 1024,  # 1 MiB payload plus the message envelope
    "RETRY_SCHEDULE": DEFAULT_RETRY_SCHEDULE,
    "WHITELIST_SUBNETS": "",
    "REQUEST_TIMEOUT": 15.0,
    "DISPATCH_INTERVAL": 2.0,
    "LEASE_SECONDS": 10,  # renewed while a delivery is being sent (api/services/delivery/leases.py)
    "ENDPOINT_DISABLE_AFTER": 5 * 24 * 3600,
    "AUTH_CACHE_SECONDS": 30,
    # where browsers reach Herald (app portal links); None: the host the request came in on
    "PUBLIC_URL": None,
    "DB_POOL_SIZE": 20,  # kept open: a worker's threads would otherwise reconnect constantly
    "DB_MAX_OVERFLOW": 20,
    "DB_PING_AFTER_IDLE": 1.0,
    "ENDPOINT_CONCURRENCY": 4,
    "DELIVERY_CONCURRENCY": 64,  # deliveries one worker process sends at once (pump.py)
    "LOG_JSON": False,
    "LOG_LEVEL": "INFO",
    "JSON_SORT_KEYS": False,
    # who may frame the consumer portal (/portal/): CSP frame-ancestors sources; `*` lets any
    # site embed it (svix-react's <AppPortal>); operators should name their product's origins
    "PORTAL_FRAME_ANCESTORS": "*",
    # Prometheus /metrics (api/metrics.py): off, token:<bearer> or bind:<host:port>
    "METRICS": "off",
    "METRICS_DIR": None,  # None: <HERALD_RUN_DIR or var/run>/metrics
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "development": {
        "SECRET_KEY": "dev-not-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{ROOT / 'var' / 'herald.db'}",
        "REDIS_URL": f"unix://{ROOT / 'var' / 'redis.sock'}",
        "WHITELIST_SUBNETS": LOOPBACK_SUBNETS,
    },
    "testing": {
        "SECRET_KEY": "testing-not-secret",
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:5432/herald_test",
        "REDIS_URL": "redis://127.0.0.1:6379/1",
        "WHITELIST_SUBNETS": LOOPBACK_SUBNETS,
    },
    "production": {},
}


def normalize_database_url(url: str) -> str:
    """Map the conventional postgres:// spellings onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_retry_schedule(value: str | list[int] | tuple[int, ...]) -> list[int]:
    """Parse "5,300,1800" (or a list) into seconds; an empty string means no retries."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = [part.strip() for part in str(value).split(",") if part.strip()]
    try:
        seconds = [int(item) for item in items]
    except ValueError:
        raise ConfigError(
            f"HERALD_RETRY_SCHEDULE must be comma-separated whole seconds, got {value!r}"
        ) from None
    if any(s < 0 for s in seconds):
        raise ConfigError("HERALD_RETRY_SCHEDULE must not contain negative delays")
    return seconds


def parse_subnets(value: str | list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse HERALD_WHITELIST_SUBNETS (comma-separated CIDRs)."""
    items = value if isinstance(value, list) else [p.strip() for p in str(value).split(",")]
    try:
        return [ipaddress.ip_network(item, strict=False) for item in items if item]
    except ValueError as exc:
        raise ConfigError(f"HERALD_WHITELIST_SUBNETS has an invalid CIDR: {exc}") from None


def parse_frame_ancestors(value: str) -> str:
    """HERALD_PORTAL_FRAME_ANCESTORS: space-separated CSP sources (`*`, `'self'`, `'none'`,
    `https://app.example.com`); a `;` or `,` would end or break the policy."""
    sources = str(value).split()
    if not sources or any(c in value for c in ";,") or any(ord(c) < 0x20 for c in value):
        raise ConfigError(
            "HERALD_PORTAL_FRAME_ANCESTORS must be space-separated CSP sources such as "
            f"\"'self' https://app.example.com\" (or *), got {value!r}"
        )
    return " ".join(sources)


def parse_public_url(value: str | None) -> str | None:
    """HERALD_PUBLIC_URL: an http(s) URL (scheme and host, maybe a path), without a trailing
    slash; empty means unset."""
    if not value:
        return None
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"HERALD_PUBLIC_URL must be an http(s) URL such as https://webhooks.example.com, "
            f"got {value!r}"
        )
    return str(value).strip().rstrip("/")


def parse_metrics(value: str) -> tuple[str, str | None, tuple[str, int] | None]:
    """HERALD_METRICS: `off`, `token:<bearer>` or `bind:<host:port>`; returns (mode, token,
    (host, port))."""
    text = str(value or "off").strip()
    mode, _, arg = text.partition(":")
    if mode == "off" and not arg:
        return "off", None, None
    if mode == "token" and len(arg) >= 16 and not any(c.isspace() for c in arg):
        return "token", arg, None
    if mode == "bind":
        host, _, port = arg.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return "bind", None, (host.strip("[]"), int(port))
    raise ConfigError(
        "HERALD_METRICS must be off, token:<a bearer secret of 16+ characters> or "
        f"bind:<host:port> (e.g. bind:127.0.0.1:9100), got {text[:40]!r}"
    )


def metrics_dir(config: Mapping[str, Any]) -> str:
    """The prometheus_client multiprocess directory: HERALD_METRICS_DIR, else a `metrics`
    folder in HERALD_RUN_DIR (var/run by default, as gunicorn.conf.py's runtime files)."""
    if config.get("METRICS_DIR"):
        return str(config["METRICS_DIR"])
    return str(Path(config.get("RUN_DIR") or ROOT / "var" / "run") / "metrics")


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read HERALD_* (prefix stripped) and the conventional unprefixed names."""
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if key.startswith("HERALD_") and key not in ("HERALD_ENV", "HERALD_BIND"):
            values[key[len("HERALD_") :]] = raw
    if environ.get("DATABASE_URL"):
        values["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    for key in ("REDIS_URL", "PORT", "WEB_CONCURRENCY"):
        if environ.get(key):
            values[key] = environ[key]
    return values


def _coerce(config: dict[str, Any]) -> None:
    """Turn strings from the environment into the types the app uses; fail on bad values."""
    for key, kind in (
        ("PORT", int),
        ("WEB_CONCURRENCY", int),
        ("MAX_CONTENT_LENGTH", int),
        ("LEASE_SECONDS", int),
        ("AUTH_CACHE_SECONDS", int),
        ("DB_POOL_SIZE", int),
        ("DB_MAX_OVERFLOW", int),
        ("DB_PING_AFTER_IDLE", float),
        ("ENDPOINT_CONCURRENCY", int),
        ("DELIVERY_CONCURRENCY", int),
        ("ENDPOINT_DISABLE_AFTER", int),
        ("REQUEST_TIMEOUT", float),
        ("DISPATCH_INTERVAL", float),
    ):
        if config[key] is None:  # unset and without a default (WEB_CONCURRENCY)
            continue
        try:
            config[key] = kind(config[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {config[key]!r}") from None
    if isinstance(config["LOG_JSON"], str):
        config["LOG_JSON"] = config["LOG_JSON"].lower() in ("1", "true", "yes", "on")
    config["RETRY_SCHEDULE"] = parse_retry_schedule(config["RETRY_SCHEDULE"])
    config["WHITELIST_SUBNETS"] = parse_subnets(config["WHITELIST_SUBNETS"])
    config["PUBLIC_URL"] = parse_public_url(config["PUBLIC_URL"])
    config["PORTAL_FRAME_ANCESTORS"] = parse_frame_ancestors(config["PORTAL_FRAME_ANCESTORS"])
    config["METRICS"], config["METRICS_TOKEN"], config["METRICS_BIND"] = parse_metrics(
        config["METRICS"]
    )
    config["METRICS_DIR"] = metrics_dir(config)
    if config["SQLALCHEMY_DATABASE_URI"]:
        config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
            config["SQLALCHEMY_DATABASE_URI"]
        )
    if str(config["SQLALCHEMY_DATABASE_URI"] or "").startswith("postgresql"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **config["SQLALCHEMY_ENGINE_OPTIONS"],
            "pool_size": config["DB_POOL_SIZE"],
            "max_overflow": config["DB_MAX_OVERFLOW"],
        }


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build the effective configuration: defaults < environment < explicit overrides."""
    environ = os.environ if environ is None else environ
    env = (overrides or {}).get("ENV") or environ.get("HERALD_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"HERALD_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    config: dict[str, Any] = {**BASE, **DEFAULTS[env], **_from_environ(environ)}
    config.update(overrides or {})
    config["ENV"] = env
    config["TESTING"] = env == "testing" or bool(config.get("TESTING"))
    if env == "production":
        missing = [
            name
            for name, key in (
                ("HERALD_SECRET_KEY", "SECRET_KEY"),
                ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
            )
            if not config.get(key)
        ]
        if missing:
            raise ConfigError(f"production needs {' and '.join(missing)} set in the environment")
        if not config.get("REDIS_URL"):
            config["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    _coerce(config)
    _check_redis_url(config.get("REDIS_URL"))
    return config


def _check_redis_url(url: str | None) -> None:
    """A malformed sentinel:// REDIS_URL fails at boot with the reason (api/redis_url.py)."""
    from api.redis_url import RedisURLError, parse_sentinel

    try:
        parse_sentinel(url or "")
    except RedisURLError as exc:
        raise ConfigError(str(exc)) from None
