"""Standard Webhooks signing: HMAC-SHA256 over `{msg_id}.{timestamp}.{body}`, `v1,<base64>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The raw HMAC key of a `whsec_...` (or unprefixed base64) secret."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(msg_id: str, timestamp: int, body: bytes | str, secret: str) -> str:
    """One signature entry `v1,<base64 HMAC-SHA256>` of the exact body bytes."""
    payload = body.encode() if isinstance(body, str) else body
    to_sign = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def live_keys(
    secret: str, old_keys: Iterable[dict[str, str]] | None, now: datetime | None = None
) -> list[str]:
    """The current key first, then every old key whose grace period has not expired."""
    moment = now or datetime.now(UTC)
    keys = [secret]
    for entry in old_keys or ():
        key, expiration = entry.get("key"), entry.get("expiration")
        if not key or key in keys:
            continue
        if expiration and _parse_iso(expiration) <= moment:
            continue
        keys.append(key)
    return keys


def _parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (a trailing Z allowed) as an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def signature_header(msg_id: str, timestamp: int, body: bytes, keys: Sequence[str]) -> str:
    """Space-separated signatures, one per live key (current first)."""
    return " ".join(sign(msg_id, timestamp, body, key) for key in keys)


def webhook_headers(
    msg_id: str, timestamp: int, body: bytes, keys: Sequence[str]
) -> dict[str, str]:
    """Both header families (svix-* and webhook-*) with identical values."""
    signature = signature_header(msg_id, timestamp, body, keys)
    headers: dict[str, str] = {}
    for family in ("svix", "webhook"):
        headers[f"{family}-id"] = msg_id
        headers[f"{family}-timestamp"] = str(timestamp)
        headers[f"{family}-signature"] = signature
    return headers
