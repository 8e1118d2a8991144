"""Organizations and API tokens: create, hash, verify."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from api.extensions import db
from api.models import ApiToken, Organization

TOKEN_PREFIX = "hrld_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the org a valid token belongs to."""

    org_id: str
    token_id: str


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

    Valid tokens are remembered for AUTH_CACHE_SECONDS (a query saved on every request);
    a deleted token therefore keeps working at most that long in each process.
    """
    digest = hash_token(token)
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
