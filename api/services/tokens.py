"""Organizations and API tokens: create, hash, verify; application-scoped portal tokens
(`appsk_…`): create, verify, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from api.extensions import db
from api.models import ApiToken, Application, AppPortalToken, Organization
from api.models.common import utcnow

TOKEN_PREFIX = "hrld_"
APP_TOKEN_PREFIX = "appsk_"
EXPIRED_KEPT_SECONDS = 24 * 3600  # expired portal tokens are deleted this long after expiry


@dataclass(frozen=True)
class Principal:
    """Who is calling: the org a valid token belongs to and, for an app portal token, the one
    application it may act on (by id or uid), what it may do there and until when."""

    org_id: str
    token_id: str
    app_id: str | None = None
    app_uid: str | None = None
    capabilities: frozenset[str] = frozenset()
    feature_flags: frozenset[str] = frozenset()
    expires_at: datetime | None = None

    @property
    def is_app_token(self) -> bool:
        """Whether this is an application-scoped (app portal) token."""
        return self.app_id is not None


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are high-entropy, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_or_create_org(name: str) -> Organization:
    """The org with that name, created if missing (not committed)."""
    org = db.session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        org = Organization(name=name)
        db.session.add(org)
        db.session.flush()
    return org


def create_token(org_name: str) -> tuple[Organization, str]:
    """Create a token for the org (creating the org if needed); returns the plain token once."""
    org = get_or_create_org(org_name)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(org_id=org.id, token_hash=hash_token(plain)))
    db.session.commit()
    return org, plain


# digest -> (principal, expiry on the monotonic clock); valid tokens only, bounded in size.
_CACHE: dict[str, tuple[Principal, float]] = {}
_CACHE_MAX = 4096


def authenticate(token: str) -> Principal | None:
    """The principal for a plain token, or None. The lookup is by hash; the final comparison
    is constant-time so response timing does not reveal how much of a hash matched.

    Valid org tokens are remembered for AUTH_CACHE_SECONDS (a query saved on every request);
    a deleted one therefore keeps working at most that long in each process. App portal
    tokens are never cached: expiry, expire-all and logout take effect on the next request
    in every process (one indexed query per request, joined with its application's uid).
    """
    digest = hash_token(token)
    if token.startswith(APP_TOKEN_PREFIX):
        return _authenticate_app_token(digest)
    ttl = current_app.config.get("AUTH_CACHE_SECONDS", 0)
    cached = _CACHE.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        _CACHE.pop(digest, None)
        return None
    principal = Principal(org_id=row.org_id, token_id=row.id)
    if ttl > 0:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[digest] = (principal, time.monotonic() + ttl)
    return principal


def _authenticate_app_token(digest: str) -> Principal | None:
    """The principal of a live app portal token (not expired), or None."""
    row = db.session.execute(
        select(
            AppPortalToken.id,
            AppPortalToken.org_id,
            AppPortalToken.app_id,
            AppPortalToken.token_hash,
            AppPortalToken.capabilities,
            AppPortalToken.feature_flags,
            AppPortalToken.expires_at,
            Application.uid,
        )
        .join(Application, Application.id == AppPortalToken.app_id)
        .where(AppPortalToken.token_hash == digest)
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.expires_at <= utcnow():
        return None
    return Principal(
        org_id=row.org_id,
        token_id=row.id,
        app_id=row.app_id,
        app_uid=row.uid,
        capabilities=frozenset(row.capabilities),
        feature_flags=frozenset(row.feature_flags),
        expires_at=row.expires_at,
    )


def create_app_token(
    app: Application,
    capabilities: Sequence[str],
    feature_flags: Sequence[str],
    expiry_seconds: int,
    session_id: str | None = None,
) -> tuple[AppPortalToken, str]:
    """Create a portal token for the application (committed); returns the plain token once.
    The application's tokens that expired a day ago or more are deleted on the way."""
    now = utcnow()
    db.session.execute(
        delete(AppPortalToken).where(
            AppPortalToken.app_id == app.id,
            AppPortalToken.expires_at < now - timedelta(seconds=EXPIRED_KEPT_SECONDS),
        )
    )
    plain = APP_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AppPortalToken(
        org_id=app.org_id,
        app_id=app.id,
        token_hash=hash_token(plain),
        capabilities=list(capabilities),
        feature_flags=list(feature_flags),
        session_id=session_id,
        expires_at=now + timedelta(seconds=expiry_seconds),
    )
    db.session.add(row)
    db.session.commit()
    return row, plain


def revoke_app_token(token_id: str) -> None:
    """Delete one portal token (logout): it gets 401 from the next request on."""
    db.session.execute(delete(AppPortalToken).where(AppPortalToken.id == token_id))
    db.session.commit()


def expire_app_tokens(
    app_id: str, expiry_seconds: int = 0, session_ids: Iterable[str] | None = None
) -> int:
    """Make the application's portal tokens (only those of `session_ids`, when given) expire
    within `expiry_seconds` (0: now; a token expiring sooner keeps its time). Returns how
    many tokens were shortened."""
    deadline = utcnow() + timedelta(seconds=expiry_seconds)
    query = update(AppPortalToken).where(
        AppPortalToken.app_id == app_id, AppPortalToken.expires_at > deadline
    )
    wanted = list(session_ids or ())
    if wanted:
        query = query.where(AppPortalToken.session_id.in_(wanted))
    result = db.session.execute(
        query.values(expires_at=deadline), execution_options={"synchronize_session": False}
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
