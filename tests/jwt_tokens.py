"""JWTs minted for the tests, independently of the relay's JWT library (PyJWT)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def hs256(secret: str, claims: dict[str, Any]) -> str:
    """A compact HS256 JWT minted by hand (independently of PyJWT)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
