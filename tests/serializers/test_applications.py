"""Application schemas: defaults, aliases, absent-versus-null, metadata limits, output keys."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from serializers.applications import ApplicationIn, ApplicationOut, ApplicationPatch


def test_load_application_in_applies_defaults() -> None:
    assert ApplicationIn().load({"name": "A", "unknown": 1}) == {
        "name": "A",
        "uid": None,
        "throttle_rate": None,
        "metadata_": {},
    }


def test_load_application_in_maps_legacy_rate_limit() -> None:
    assert ApplicationIn().load({"name": "A", "rateLimit": 4})["throttle_rate"] == 4
    both = ApplicationIn().load({"name": "A", "rateLimit": 4, "throttleRate": 9})
    assert both["throttle_rate"] == 9


def test_load_application_in_metadata_limit_is_4096_bytes() -> None:
    # {"k": "..."} is 9 bytes of JSON around the value
    ApplicationIn().load({"name": "A", "metadata": {"k": "v" * (4096 - 9)}})
    with pytest.raises(ValidationError) as excinfo:
        ApplicationIn().load({"name": "A", "metadata": {"k": "v" * (4096 - 8)}})
    assert "metadata" in excinfo.value.messages


@pytest.mark.parametrize("uid", ["app_x", "", "a/b", "x" * 257])
def test_load_application_in_rejects_bad_uid(uid: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ApplicationIn().load({"name": "A", "uid": uid})
    assert "uid" in excinfo.value.messages


def test_load_application_patch_keeps_absent_and_null_apart() -> None:
    assert ApplicationPatch().load({}) == {}
    assert ApplicationPatch().load({"uid": None, "throttleRate": None}) == {
        "uid": None,
        "throttle_rate": None,
    }


def test_dump_application_out_has_sdk_required_keys() -> None:
    moment = datetime(2024, 5, 1, 12, tzinfo=UTC)
    app = SimpleNamespace(
        id="app_1",
        uid=None,
        name="A",
        throttle_rate=None,
        metadata_={},
        created_at=moment,
        updated_at=moment.replace(tzinfo=None),
    )
    body = ApplicationOut().dump(app)
    assert {"id", "name", "createdAt", "updatedAt", "metadata"} <= set(body)
    assert body["createdAt"] == body["updatedAt"] == "2024-05-01T12:00:00Z"
