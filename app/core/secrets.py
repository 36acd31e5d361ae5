"""Bearer secrets: generation and the hashes we store instead of them.

API keys and participant tokens carry 256 bits of randomness, so a plain SHA-256 is
enough to make a stolen database useless (slow password hashes add nothing at that
entropy). Enrollment codes are short enough to type on a phone, so their hash is keyed
with the server secret: a leaked table cannot be brute-forced offline without it.
"""

import hashlib
import hmac
import secrets

STAFF_KEY_PREFIX = "ksk_"
PARTICIPANT_TOKEN_PREFIX = "kpt_"  # noqa: S105
# Crockford's base32 without I, L, O, U: nothing to confuse when read out or typed.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ENROLLMENT_CODE_LENGTH = 10


def new_staff_key() -> str:
    return STAFF_KEY_PREFIX + secrets.token_urlsafe(32)


def new_participant_token() -> str:
    return PARTICIPANT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_enrollment_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(ENROLLMENT_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_enrollment_code(code: str) -> str:
    """Accept what a person types: any case, spaces or dashes, O for 0, I/L for 1."""
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def hash_enrollment_code(code: str, secret_key: str) -> str:
    normalized = normalize_enrollment_code(code)
    return hmac.new(secret_key.encode(), normalized.encode(), hashlib.sha256).hexdigest()
