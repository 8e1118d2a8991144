"""Event type schemas: JSON Schema validation, feature flags, absent-versus-null."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from serializers.event_types import EventTypeIn, EventTypePatch, check_schemas


def test_load_event_type_in_applies_defaults() -> None:
    assert EventTypeIn().load({"name": "a.b", "description": "d"}) == {
        "name": "a.b",
        "description": "d",
        "archived": False,
        "deprecated": False,
        "schemas": None,
        "group_name": None,
        "feature_flag": None,
    }


def test_load_event_type_in_folds_feature_flags() -> None:
    data = EventTypeIn().load({"name": "a", "description": "d", "featureFlags": ["beta"]})
    assert data["feature_flag"] == "beta" and "feature_flags" not in data
    explicit = EventTypeIn().load(
        {"name": "a", "description": "d", "featureFlag": "x", "featureFlags": ["y"]}
    )
    assert explicit["feature_flag"] == "x"


@pytest.mark.parametrize(
    "schemas",
    [{"1": True}, {"1": {}}, {"1": {"type": "object", "required": ["id"]}}, None],
)
def test_check_schemas_accepts_draft7(schemas: dict[str, Any] | None) -> None:
    check_schemas(schemas)


@pytest.mark.parametrize(
    "schemas",
    [
        {"1": 3},
        {"1": {"type": "nope"}},
        {"1": {"required": "id"}},
        {"1": {"pattern": "["}},
        {"1": {"enum": ["\x00"]}},
        {"1": {"title": "\udc00"}},
    ],
)
def test_check_schemas_rejects_invalid(schemas: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        check_schemas(schemas)


def test_load_event_type_patch_keeps_absent_and_null_apart() -> None:
    assert EventTypePatch().load({}) == {}
    assert EventTypePatch().load({"schemas": None}) == {"schemas": None}
