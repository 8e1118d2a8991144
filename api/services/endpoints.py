"""Endpoints: CRUD, upsert, signing-secret get/rotate and custom headers (one commit each)."""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.errors import BadRequest, Conflict, NotFound, Unprocessable
from api.extensions import db
from api.models import Application, Delivery, Endpoint
from api.models.common import utcnow
from api.pagination import Page, paginate
from api.services import operational_events
from api.services.delivery import outbox, signing
from api.services.event_types import check_event_types
from api.services.lookup import get_app_endpoint, get_application, get_endpoint
from api.services.operational_events import ENDPOINT_CREATED

logger = logging.getLogger(__name__)

ENDPOINT_CONFLICT = "An endpoint with that id or uid already exists"
UID_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,256}$")
FIELDS = (
    "url",
    "description",
    "uid",
    "throttle_rate",
    "disabled",
    "event_types",
    "channels",
    "metadata_",
)
SENSITIVE_HEADERS = frozenset(
    (
        "x-auth-token",
        "x-api-key",
        "www-authenticate",
        "authorization",
        "proxy-authenticate",
        "proxy-authorization",
    )
)
MAX_OLD_KEYS = 10
DEFAULT_GRACE_SECONDS = 86400


def generate_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _signing_secret(value: str | None, loc: list[str | int], like: str | None = None) -> str:
    """The secret to store: a given `whsk_` key in its 64-byte form (422 at `loc` when its
    public half is not its seed's), another given one as it is; none given: a new secret
    of `like`'s kind (Ed25519 for a `whsk_` one, else HMAC)."""
    if not value:
        asymmetric = like is not None and signing.is_asymmetric(like)
        return signing.generate_asymmetric_secret() if asymmetric else generate_secret()
    if not signing.is_asymmetric(value):
        return value
    raw = base64.b64decode(value[len(signing.ASYMMETRIC_PREFIX) :])
    try:
        return signing.asymmetric_secret(raw)
    except ValueError as exc:
        raise Unprocessable.at(loc, f"Invalid Ed25519 key: {exc}.") from None


def get_endpoint_secret(org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str) -> str:
    """What the owner verifies with: the HMAC secret, or the `whpk_` key of a `whsk_` one."""
    endpoint = get_app_endpoint(org_id, app_id_or_uid, endpoint_id_or_uid)
    return signing.verification_key(endpoint.secret)


def _check(org_id: str, app: Application, data: dict[str, Any], current: Endpoint | None) -> None:
    """Event types must be live; the uid must be free within the app."""
    if data.get("event_types") and not app.internal:  # operational: checked by its service
        check_event_types(org_id, data["event_types"])
    uid = data.get("uid")
    if uid is not None:
        other = db.session.scalar(
            select(Endpoint).where(Endpoint.app_id == app.id, Endpoint.uid == uid)
        )
        if other is not None and other is not current:
            raise Conflict(ENDPOINT_CONFLICT)


def _apply(endpoint: Endpoint, data: dict[str, Any]) -> None:
    enabling = data.get("disabled") is False and bool(endpoint.disabled)
    for name in FIELDS:
        if name in data:
            value = data[name]
            setattr(endpoint, name, {} if name == "metadata_" and value is None else value)
    if enabling:  # re-enabled: restart the auto-disable clock
        endpoint.first_failure_at = None


def _commit(events: Callable[[], None] | None = None) -> None:
    """Commit the change with its operational `events` staged in the same transaction."""
    try:
        db.session.flush()  # ids assigned, constraints checked: then the events
        if events is not None:
            events()
        db.session.commit()
    except IntegrityError:  # a concurrent request took the uid
        db.session.rollback()
        raise Conflict(ENDPOINT_CONFLICT) from None


def _new_endpoint(app: Application, data: dict[str, Any]) -> Endpoint:
    endpoint = Endpoint(
        app_id=app.id,
        secret=_signing_secret(data.get("secret"), ["body", "secret"]),
        headers=merge_headers({}, data.get("headers") or {}),
        old_keys=[],
    )
    db.session.add(endpoint)
    return endpoint


def create_endpoint(org_id: str, app_id_or_uid: str, data: dict[str, Any]) -> Endpoint:
    """Create an endpoint; a secret is generated unless `data["secret"]` is given."""
    app = get_application(org_id, app_id_or_uid)
    _check(org_id, app, data, None)
    endpoint = _new_endpoint(app, data)
    _apply(endpoint, data)
    _commit(lambda: operational_events.emit_endpoint_event(ENDPOINT_CREATED, app, endpoint))
    logger.info("endpoint.created", extra={"app_id": app.id, "endpoint_id": endpoint.id})
    return endpoint


def list_endpoints(
    org_id: str, app_id_or_uid: str, limit: int, iterator: str | None, order: str | None = None
) -> Page:
    """One page of the app's endpoints, newest first unless `order=ascending`."""
    app = get_application(org_id, app_id_or_uid)
    query = select(Endpoint).where(Endpoint.app_id == app.id)
    return paginate(query, Endpoint.id, limit, iterator, descending=order != "ascending")


def upsert_endpoint(
    org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str, data: dict[str, Any]
) -> tuple[Endpoint, bool]:
    """Replace the endpoint's fields, or create it (new id and secret); a path value that is
    not an `ep_` id becomes the uid unless the body has one. Returns (endpoint, created)."""
    app = get_application(org_id, app_id_or_uid)
    try:
        endpoint: Endpoint | None = get_endpoint(app, endpoint_id_or_uid)
    except NotFound:
        endpoint = None
    path_uid = None if endpoint_id_or_uid.startswith("ep_") else endpoint_id_or_uid
    if path_uid is not None and not UID_RE.fullmatch(path_uid):
        raise Unprocessable.at(["path", "endpoint_id"], "Not a valid id or uid.")
    data = dict(data)
    if data.get("uid") is None and path_uid is not None:
        data["uid"] = path_uid
    _check(org_id, app, data, endpoint)
    created = endpoint is None
    was_disabled = endpoint is not None and endpoint.disabled
    if endpoint is None:
        endpoint = _new_endpoint(app, data)
    _apply(endpoint, data)
    if created:
        _commit(lambda: operational_events.emit_endpoint_event(ENDPOINT_CREATED, app, endpoint))
    else:
        _commit(lambda: operational_events.emit_endpoint_changed(app, endpoint, was_disabled))
    return endpoint, created


def patch_endpoint(
    org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str, data: dict[str, Any]
) -> Endpoint:
    """Update only the fields present (null clears uid, throttleRate, eventTypes, channels)."""
    app = get_application(org_id, app_id_or_uid)
    endpoint = get_endpoint(app, endpoint_id_or_uid)
    was_disabled = endpoint.disabled
    _check(org_id, app, data, endpoint)
    _apply(endpoint, data)
    _commit(lambda: operational_events.emit_endpoint_changed(app, endpoint, was_disabled))
    return endpoint


def delete_endpoint(org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str) -> None:
    """Delete the endpoint (its deliveries and attempts cascade)."""
    app = get_application(org_id, app_id_or_uid)
    endpoint = get_endpoint(app, endpoint_id_or_uid)
    outbox.delete_deliveries(Delivery.endpoint_id == endpoint.id)
    db.session.delete(endpoint)
    operational_events.emit_endpoint_event(operational_events.ENDPOINT_DELETED, app, endpoint)
    db.session.commit()
    logger.info("endpoint.deleted", extra={"endpoint_id": endpoint.id})


def _expiration(old_key: dict[str, str]) -> datetime:
    try:
        moment = datetime.fromisoformat(old_key["expiration"])
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)  # unreadable: treat as expired
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rotate_endpoint_secret(
    org_id: str,
    app_id_or_uid: str,
    endpoint_id_or_uid: str,
    key: str | None = None,
    grace_period_seconds: int | None = None,
) -> str:
    """Make `key` (or a new secret of the current one's kind) current; the old one stays valid
    for the grace period. Returns what the owner verifies with (`get_endpoint_secret`).

    Expired old keys are pruned; more than 10 live old keys is 400 `limit_reached`.
    """
    endpoint = get_app_endpoint(org_id, app_id_or_uid, endpoint_id_or_uid)
    secret = _signing_secret(key, ["body", "key"], like=endpoint.secret)
    grace = DEFAULT_GRACE_SECONDS if grace_period_seconds is None else grace_period_seconds
    now = utcnow()
    live = [k for k in endpoint.old_keys if _expiration(k) > now]
    if grace > 0:
        if len(live) >= MAX_OLD_KEYS:
            raise BadRequest(
                "limit_reached",
                "You can only rotate a key 10 times; please wait for old keys to expire "
                "or rotate with gracePeriodSeconds=0.",
            )
        expires = (now + timedelta(seconds=grace)).isoformat()
        live = [{"key": endpoint.secret, "expiration": expires}, *live]
    endpoint.old_keys = live
    endpoint.secret = secret
    db.session.commit()
    logger.info("endpoint.secret_rotated", extra={"endpoint_id": endpoint.id, "grace": grace})
    return signing.verification_key(secret)


def split_headers(headers: dict[str, str]) -> dict[str, Any]:
    """`{"headers": non-sensitive headers, "sensitive": names whose values are withheld}`."""
    visible = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return {"headers": visible, "sensitive": sorted(set(headers) - set(visible))}


def merge_headers(
    current: dict[str, str], changes: dict[str, str | None], remove: list[str] | None = None
) -> dict[str, str]:
    """Header names are case-insensitive: a change replaces any spelling; None deletes."""
    merged = dict(current)
    for name in [*(remove or []), *changes]:
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
    merged.update({k: v for k, v in changes.items() if v is not None})
    return merged


def get_endpoint_headers(
    org_id: str, app_id_or_uid: str, endpoint_id_or_uid: str
) -> dict[str, Any]:
    """The endpoint's custom headers, sensitive values withheld."""
    return split_headers(get_app_endpoint(org_id, app_id_or_uid, endpoint_id_or_uid).headers)


def update_endpoint_headers(
    org_id: str,
    app_id_or_uid: str,
    endpoint_id_or_uid: str,
    headers: dict[str, str | None],
    remove: list[str] | None = None,
    replace: bool = False,
) -> None:
    """Replace (`replace=True`) or merge the endpoint's custom headers."""
    endpoint = get_app_endpoint(org_id, app_id_or_uid, endpoint_id_or_uid)
    endpoint.headers = merge_headers({} if replace else endpoint.headers, headers, remove)
    db.session.commit()
