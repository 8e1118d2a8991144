"""Endpoint schemas: aliases, dedupe, URL / secret / header rules, absent-versus-null, output."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from serializers.endpoints import (
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretRotateIn,
    check_headers,
    check_secret,
    check_url,
)

KEY = base64.b64encode(b"s" * 32).decode()


def test_load_endpoint_in_aliases_and_dedupes() -> None:
    data = EndpointIn().load(
        {
            "url": "http://localhost:9000/x",
            "filterTypes": ["a", "a", "b"],
            "channels": ["c", "c"],
            "secret": KEY,
        }
    )
    assert data["event_types"] == ["a", "b"] and data["channels"] == ["c"]
    assert data["secret"] == "whsec_" + KEY and data["disabled"] is False
    both = EndpointIn().load({"url": "https://x.io", "filterTypes": ["old"], "eventTypes": ["new"]})
    assert both["event_types"] == ["new"]


@pytest.mark.parametrize(
    "url", ["https://example.com", "http://127.0.0.1:8080/hook?a=1", "http://[::1]:80/", "http://h"]
)
def test_check_url_accepts_http_urls(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    ("url", "msg"),
    [
        ("ftp://x.io", "schemes"),
        ("javascript:alert(1)", "schemes"),
        ("http://", "valid"),
        ("https://a b.io", "valid"),
        ("http://x.io/\x00", "valid"),
        ("http://[::1", "valid"),
    ],
)
def test_check_url_rejects(url: str, msg: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        check_url(url)
    assert msg in str(excinfo.value)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + "A" * 31,
        "whsec_" + "!" * 40,
        "whsk_" + base64.b64encode(b"k" * 20).decode(),  # an Ed25519 key is 32 or 64 bytes
        "whsec_" + KEY[:-1] + "*",
        "whsec_" + base64.b64encode(b"x" * 22).decode(),
    ],  # 32 characters but only 22 bytes
)
def test_check_secret_rejects(secret: str) -> None:
    with pytest.raises(ValidationError):
        check_secret(secret)


def test_check_secret_accepts_prefixed_and_bare() -> None:
    check_secret("whsec_" + KEY)
    check_secret(KEY)


@pytest.mark.parametrize(
    "headers",
    [
        {"Keep-Alive": "x"},
        {"X-Goog-A": "x"},
        {"x-gfe-b": "x"},
        {"X-Azure-Ref": "x"},
        {"x-fd-x": "x"},
        {"Webhook-Id": "x"},
        {"é": "x"},
        {"X-A": "é"},
        {"X-A": "a\rb"},
    ],
)
def test_check_headers_rejects(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        check_headers(headers)


def test_load_headers_patch_allows_null_values() -> None:
    assert EndpointHeadersPatchIn().load({"headers": {"X-A": None}}) == {
        "headers": {"X-A": None},
        "delete_headers": [],
    }


def test_load_endpoint_patch_keeps_absent_and_null_apart() -> None:
    assert EndpointPatch().load({}) == {}
    assert EndpointPatch().load({"filterTypes": None, "channels": None}) == {
        "event_types": None,
        "channels": None,
    }
    with pytest.raises(ValidationError):
        EndpointPatch().load({"eventTypes": []})


def test_load_rotate_defaults_and_normalizes_key() -> None:
    assert EndpointSecretRotateIn().load({}) == {"key": None, "grace_period_seconds": None}
    assert EndpointSecretRotateIn().load({"key": KEY})["key"] == "whsec_" + KEY


def test_dump_endpoint_out_emits_legacy_filter_types() -> None:
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    endpoint = SimpleNamespace(
        id="ep_1",
        uid=None,
        url="https://x.io",
        description="",
        throttle_rate=None,
        disabled=False,
        event_types=["a"],
        channels=None,
        metadata_={},
        created_at=moment,
        updated_at=moment,
        secret="whsec_never",
        headers={"Authorization": "never"},
    )
    body = EndpointOut().dump(endpoint)
    assert body["eventTypes"] == body["filterTypes"] == ["a"] and body["version"] == 1
    assert {"id", "url", "description", "metadata", "createdAt", "updatedAt"} <= set(body)
    assert "secret" not in body and "headers" not in body
