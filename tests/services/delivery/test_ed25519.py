"""Ed25519 `whsk_` keys (signing.py, on the `cryptography` package): RFC 8032's test vectors,
the `v1a` entries of the signature headers, key parsing and the `whpk_` public key."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.services.delivery import signing

# RFC 8032 section 7.1, TEST 1 to 3: (secret key, public key, message, signature), hex
RFC_8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
        "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]
SEED = bytes.fromhex(RFC_8032[0][0])
PUBLIC = bytes.fromhex(RFC_8032[0][1])
WHSK = "whsk_" + base64.b64encode(SEED + PUBLIC).decode()
WHSEC = "whsec_" + base64.b64encode(b"s" * 24).decode()


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC_8032)
def test_whsk_signature_is_rfc_8032s_over_the_signed_content(
    seed: str, public: str, message: str, signature: str
) -> None:
    """signing.sign signs `{id}.{timestamp}.{body}`: pick id/timestamp/body so that text is the
    RFC's message... it cannot be empty, so check the primitive through a public key instead."""
    secret = signing.asymmetric_secret(bytes.fromhex(seed))
    assert (
        signing.verification_key(secret)
        == "whpk_" + base64.b64encode(bytes.fromhex(public)).decode()
    )
    assert signing._private_key(secret).sign(bytes.fromhex(message)).hex() == signature


def test_sign_whsk_secret_gives_a_v1a_entry_that_verifies() -> None:
    entry = signing.sign("msg_1", 1700000000, b'{"a":1}', WHSK)
    assert entry.startswith("v1a,")
    Ed25519PublicKey.from_public_bytes(PUBLIC).verify(
        base64.b64decode(entry[4:]), b'msg_1.1700000000.{"a":1}'
    )


def test_webhook_headers_sign_with_each_key_in_its_scheme() -> None:
    headers = signing.webhook_headers("msg_1", 1700000000, b"{}", [WHSK, WHSEC])
    entries = headers["webhook-signature"].split()
    assert [e.split(",")[0] for e in entries] == ["v1a", "v1"]
    assert entries[1] == signing.sign("msg_1", 1700000000, b"{}", WHSEC)
    assert headers["svix-signature"] == headers["webhook-signature"]


def test_asymmetric_secret_from_seed_adds_public_key() -> None:
    assert signing.asymmetric_secret(SEED) == WHSK
    assert signing.asymmetric_secret(SEED + PUBLIC) == WHSK


@pytest.mark.parametrize("raw", [SEED + bytes(32), SEED[:31], SEED + PUBLIC + b"x"])
def test_asymmetric_secret_refuses_mismatched_or_misshaped_keys(raw: bytes) -> None:
    with pytest.raises(ValueError):
        signing.asymmetric_secret(raw)


def test_verification_key_is_public_key_of_whsk_and_hmac_secret_itself() -> None:
    assert signing.verification_key(WHSK) == "whpk_" + base64.b64encode(PUBLIC).decode()
    assert signing.verification_key(WHSEC) == WHSEC


def test_generate_asymmetric_secret_is_a_fresh_valid_pair() -> None:
    first, second = signing.generate_asymmetric_secret(), signing.generate_asymmetric_secret()
    assert first != second and first.startswith("whsk_")
    public = base64.b64decode(signing.verification_key(first)[5:])
    entry = signing.sign("msg_2", 1700000001, b"[]", first)
    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(entry[4:]), b"msg_2.1700000001.[]"
    )
