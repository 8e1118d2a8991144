"""Configuration: defaults, environment overrides and fail-fast messages."""

from __future__ import annotations

import ipaddress

import pytest

from api.config import ConfigError, load_config


def test_load_config_production_without_secret_or_database_fails() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"HERALD_ENV": "production"})
    assert "HERALD_SECRET_KEY" in info.value.message and "DATABASE_URL" in info.value.message
    assert "\n" not in str(info.value.code)


def test_load_config_production_with_settings_starts() -> None:
    config = load_config(
        environ={
            "HERALD_ENV": "production",
            "HERALD_SECRET_KEY": "s3cret",
            "DATABASE_URL": "postgres://u@db/herald",
            "REDIS_URL": "redis://r:6379/0",
            "PORT": "9000",
            "WEB_CONCURRENCY": "4",
        }
    )
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/herald"
    assert (config["PORT"], config["WEB_CONCURRENCY"]) == (9000, 4)
    assert config["WHITELIST_SUBNETS"] == []
    assert config["RETRY_SCHEDULE"] == [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_load_config_development_allows_loopback() -> None:
    config = load_config(environ={"HERALD_ENV": "development"})
    assert ipaddress.ip_network("127.0.0.0/8") in config["WHITELIST_SUBNETS"]
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


def test_load_config_reads_herald_variables() -> None:
    config = load_config(
        environ={
            "HERALD_ENV": "testing",
            "HERALD_RETRY_SCHEDULE": "1, 2,3",
            "HERALD_WHITELIST_SUBNETS": "10.0.0.0/8",
            "HERALD_REQUEST_TIMEOUT": "2.5",
        }
    )
    assert config["RETRY_SCHEDULE"] == [1, 2, 3]
    assert config["WHITELIST_SUBNETS"] == [ipaddress.ip_network("10.0.0.0/8")]
    assert config["REQUEST_TIMEOUT"] == 2.5


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"HERALD_ENV": "staging"}, "HERALD_ENV"),
        ({"HERALD_ENV": "testing", "HERALD_RETRY_SCHEDULE": "5,soon"}, "HERALD_RETRY_SCHEDULE"),
        ({"HERALD_ENV": "testing", "HERALD_WHITELIST_SUBNETS": "10.0.0/99"}, "WHITELIST"),
        ({"HERALD_ENV": "testing", "PORT": "eighty"}, "PORT"),
    ],
)
def test_load_config_bad_value_names_the_setting(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert needle in info.value.message


def test_load_config_sizes_the_postgresql_pool_and_delivery_knobs() -> None:
    config = load_config(
        environ={
            "HERALD_ENV": "testing",
            "HERALD_DB_POOL_SIZE": "12",
            "HERALD_DB_MAX_OVERFLOW": "5",
            "HERALD_ENDPOINT_CONCURRENCY": "8",
            "HERALD_DELIVERY_CONCURRENCY": "100",
            "HERALD_DB_PING_AFTER_IDLE": "2.5",
        }
    )
    options = config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (12, 5)
    assert "pool_pre_ping" not in options and config["DB_PING_AFTER_IDLE"] == 2.5
    assert (config["ENDPOINT_CONCURRENCY"], config["DELIVERY_CONCURRENCY"]) == (8, 100)


def test_load_config_sqlite_gets_no_pool_sizes() -> None:
    config = load_config(environ={"HERALD_ENV": "development"})
    assert "pool_size" not in config["SQLALCHEMY_ENGINE_OPTIONS"]
