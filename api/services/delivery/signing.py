"""Standard Webhooks signing of `{msg_id}.{timestamp}.{body}`: HMAC-SHA256 (`whsec_` secrets,
`v1,<base64>`) or Ed25519 (`whsk_` secrets, `v1a,<base64>`; the owner reads the `whpk_` key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"
ASYMMETRIC_PREFIX = "whsk_"  # base64 of the 64-byte seed + public key, as Svix stores it
PUBLIC_PREFIX = "whpk_"  # base64 of the 32-byte public key


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def secret_bytes(secret: str) -> bytes:
    """The raw HMAC key of a `whsec_...` (or unprefixed base64) secret."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return _b64decode(raw)


def _public_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed (the `cryptography` package)."""
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def is_asymmetric(secret: str) -> bool:
    """Whether the secret is an Ed25519 key (`whsk_`)."""
    return secret.startswith(ASYMMETRIC_PREFIX)


def asymmetric_secret(raw: bytes) -> str:
    """The stored `whsk_` form of a 32-byte seed or of a 64-byte seed + public key;
    ValueError when the public key is not the seed's."""
    if len(raw) not in (32, 64):
        raise ValueError("an Ed25519 key is a 32-byte seed or the 64-byte seed + public key")
    public = _public_key(raw[:32])
    if len(raw) == 64 and not hmac.compare_digest(raw[32:], public):
        raise ValueError("the key's last 32 bytes are not the public key of its seed")
    return ASYMMETRIC_PREFIX + base64.b64encode(raw[:32] + public).decode()


def generate_asymmetric_secret() -> str:
    """A new Ed25519 key pair as a `whsk_` secret."""
    return asymmetric_secret(secrets.token_bytes(32))


def verification_key(secret: str) -> str:
    """What an endpoint's owner verifies with: the `whpk_` public key of a `whsk_` secret (the
    private key is never shown), the secret itself for HMAC."""
    if not is_asymmetric(secret):
        return secret
    public = _b64decode(secret[len(ASYMMETRIC_PREFIX) :])[32:]
    return PUBLIC_PREFIX + base64.b64encode(public).decode()


@lru_cache(maxsize=1024)
def _private_key(secret: str) -> Ed25519PrivateKey:
    """The signing key of a `whsk_` secret (parsed once per process and key)."""
    return Ed25519PrivateKey.from_private_bytes(_b64decode(secret[len(ASYMMETRIC_PREFIX) :])[:32])


def sign(msg_id: str, timestamp: int, body: bytes | str, secret: str) -> str:
    """One signature entry of the exact body bytes: `v1,<base64 HMAC-SHA256>`, or
    `v1a,<base64 Ed25519 signature>` for a `whsk_` secret."""
    payload = body.encode() if isinstance(body, str) else body
    to_sign = f"{msg_id}.{timestamp}.".encode() + payload
    if is_asymmetric(secret):
        key = _private_key(secret)
        return "v1a," + base64.b64encode(key.sign(to_sign)).decode()
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
