"""Nothing the SDK can send is silently ignored: every query parameter and request-body field
the Svix spec gives an operation Herald answers is in Herald's own schema for it (implemented)
or in REFUSED (answered with 422 naming it).

The spec's request fields are kept in `tests/data/svix_request_fields.json`, extracted from
`../shared/svix/openapi-cloud.json`; where that spec is present the extract is checked against it
(`UPDATE_SVIX_EXTRACT=1` rewrites it), so a field added to the spec later fails this test until
Herald implements or refuses it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "svix" / "openapi-cloud.json"
EXTRACT = ROOT / "tests" / "data" / "svix_request_fields.json"
METHODS = ("get", "post", "put", "patch", "delete")

# (METHOD, normalised path, "query" | "body", field) -> why Herald refuses it with 422.
REFUSED: dict[tuple[str, str, str, str], str] = {}


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def _resolve(doc: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """A schema with its $ref followed (also through a one-item allOf/anyOf/oneOf, as a
    nullable nested object is written)."""
    while schema:
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
            continue
        parts = [p for key in ("allOf", "anyOf", "oneOf") for p in schema.get(key, [])]
        refs = [p for p in parts if "$ref" in p or "properties" in p]
        if len(refs) == 1 and "properties" not in schema:
            schema = refs[0]
            continue
        break
    return schema or {}


def body_fields(doc: dict[str, Any], schema: dict[str, Any] | None, depth: int = 2) -> Any:
    """{field: nested fields or None} of a request body schema (objects 2 levels deep)."""
    schema = _resolve(doc, schema)
    found: dict[str, Any] = {}
    for part in schema.get("allOf", []):
        found.update(body_fields(doc, part, depth))
    for name, prop in schema.get("properties", {}).items():
        inner = _resolve(doc, prop)
        nested = depth > 1 and "properties" in inner
        found[name] = body_fields(doc, inner, depth - 1) if nested else None
    return found


def request_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """{"METHOD /path": {"query": [...], "body": {...}}} of every operation of an OpenAPI doc."""
    out = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            out[f"{method.upper()} {normalise(path)}"] = {
                "query": sorted(p["name"] for p in op.get("parameters", []) if p["in"] == "query"),
                "body": body_fields(doc, body.get("schema")),
            }
    return dict(sorted(out.items()))


def _missing(spec: Any, ours: Any, prefix: str = "") -> list[str]:
    gaps = []
    for name, nested in (spec or {}).items():
        if name not in (ours or {}):
            gaps.append(prefix + name)
        elif nested:
            gaps += _missing(nested, ours[name], f"{prefix}{name}.")
    return gaps


@pytest.fixture(scope="module")
def svix() -> dict[str, Any]:
    return json.loads(EXTRACT.read_text())


@pytest.fixture
def herald(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return request_fields(client.get("/api/v1/openapi.json").get_json())


@pytest.mark.skipif(not SPEC.exists(), reason="the Svix spec is not beside the checkout")
def test_the_extract_is_the_specs() -> None:
    fresh = request_fields(json.loads(SPEC.read_text()))
    if os.environ.get("UPDATE_SVIX_EXTRACT"):
        EXTRACT.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    assert json.loads(EXTRACT.read_text()) == fresh, "run with UPDATE_SVIX_EXTRACT=1"


def test_every_spec_field_of_heralds_operations_is_implemented_or_refused(
    svix: dict[str, Any], herald: dict[str, Any]
) -> None:
    answered = [op for op in herald if op in svix]
    assert len(answered) >= 30  # the audit walks Herald's routes, not an empty list
    gaps = []
    for op in answered:
        method, path = op.split(" ", 1)
        for name in sorted(set(svix[op]["query"]) - set(herald[op]["query"])):
            if (method, path, "query", name) not in REFUSED:
                gaps.append(f"{op} ?{name}")
        for name in _missing(svix[op]["body"], herald[op]["body"]):
            if (method, path, "body", name) not in REFUSED:
                gaps.append(f"{op} body.{name}")
    assert gaps == [], "implement these or add them to REFUSED (with a 422): " + ", ".join(gaps)


@pytest.mark.parametrize("key", sorted(REFUSED), ids=lambda k: " ".join(k))
def test_each_refused_field_gets_422_naming_it(
    client: FlaskClient, auth_headers: dict[str, str], key: tuple[str, str, str, str]
) -> None:
    method, path, where, name = key
    url = path.replace("{}", "x")
    if where == "query":
        response = client.open(f"{url}?{name}=1", method=method, headers=auth_headers, json={})
    else:
        response = client.open(url, method=method, headers=auth_headers, json={name: 1})
    assert response.status_code == 422 and name in json.dumps(response.get_json())
