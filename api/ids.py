"""Prefixed, time-sortable KSUIDs (millisecond variant, as Svix uses): `app_2gX...`."""

from __future__ import annotations

import os
import time
from datetime import datetime

EPOCH = 1_400_000_000
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 27
PREFIXES = ("org", "tok", "app", "ep", "evtype", "msg", "msgep", "atmpt", "qtask")


def _encode(raw: bytes) -> str:
    """Base62-encode 20 bytes, zero-padded to 27 characters."""
    number = int.from_bytes(raw, "big")
    chars = []
    while number:
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars)).rjust(BODY_LENGTH, "0")


def _decode(body: str) -> bytes:
    number = 0
    for char in body:
        number = number * 62 + ALPHABET.index(char)
    return number.to_bytes(20, "big")


def _timestamp_bytes(seconds: float) -> bytes:
    # clamped to the 5-byte range, so a far-past or far-future filter date is a valid bound
    return min(max(0, round((seconds - EPOCH) * 256)), 2**40 - 1).to_bytes(5, "big")


def new_id(prefix: str, at: float | None = None) -> str:
    """A new id such as `msg_...`; ids created later sort after earlier ones."""
    seconds = time.time() if at is None else at
    return f"{prefix}_{_encode(_timestamp_bytes(seconds) + os.urandom(15))}"


def boundary_id(prefix: str, moment: datetime, upper: bool = False) -> str:
    """The smallest (or largest) id that a moment can produce: for time-range filters."""
    filler = b"\xff" * 15 if upper else b"\x00" * 15
    return f"{prefix}_{_encode(_timestamp_bytes(moment.timestamp()) + filler)}"


def id_timestamp(value: str) -> float | None:
    """Unix seconds encoded in an id, or None when it is not one of ours."""
    prefix, _, body = value.partition("_")
    if prefix not in PREFIXES or len(body) != BODY_LENGTH or any(c not in ALPHABET for c in body):
        return None
    try:
        raw = _decode(body)
    except (ValueError, OverflowError):
        return None
    return int.from_bytes(raw[:5], "big") / 256 + EPOCH


def is_id(value: str, prefix: str) -> bool:
    """True when value looks like one of our ids with that prefix."""
    return value.startswith(prefix + "_") and id_timestamp(value) is not None
