"""Salted password and server-key hashes.

One format for both UI passwords and server keys, so a hash names its own algorithm and cost and
old hashes keep verifying when the default cost rises. PBKDF2-SHA256 from the standard library:
no native dependency, and hashlib releases the GIL while it works (we verify in pool threads).

``overc-passwd`` (:mod:`overc.passwd`) prints a hash for ``[ui] users``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

ALGORITHM = "pbkdf2_sha256"
PASSWORD_ITERATIONS = 240_000
# Server keys are machine credentials that every server process verifies on first contact
# (and again after a restart): at 60,000 iterations 1,000 servers cost a worker process a
# minute of CPU before it could serve them (bench/ingest.py). 2,000 iterations (~1 ms) keep the
# stored hash salted and stretched while a restart with 10,000 servers costs ~10 s of CPU.
# Long random keys are what protects a server; UI passwords keep the full cost.
KEY_ITERATIONS = 2_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, iterations: int = PASSWORD_ITERATIONS) -> str:
    """A self-describing salted hash: ``pbkdf2_sha256$<iterations>$<salt>$<hash>``."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against a hash made by :func:`hash_secret`."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != ALGORITHM:
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", secret.encode("utf-8"), _unb64(salt), int(iterations)
        )
        return hmac.compare_digest(digest, _unb64(expected))
    except (ValueError, TypeError):
        return False


def is_hash(text: str) -> bool:
    """Whether ``text`` looks like a hash we made (config validation)."""
    parts = text.split("$")
    return len(parts) == 4 and parts[0] == ALGORITHM and parts[1].isdigit()
