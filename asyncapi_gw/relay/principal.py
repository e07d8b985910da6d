"""Who a relayed connection serves, as the access log, the quotas and the backend see it. Pure.

A principal is named by its credential's holder, never by the credential:

- a bearer JWT: its ``sub`` claim;
- an API key: the key's ``name`` in the keys file (else ``key-`` and a fingerprint);
- no credential (an open API or topic), or a JWT without ``sub``: nobody in particular; such
  clients are told apart by their source address (``address:<ip>``) for quotas.

The principal header, when the relay is configured to send one, carries a JSON object (ASCII
only): ``{"auth": "oauth2"|"api_key"|"none", "principal": NAME-or-null, "scopes": [...]}``
with the scopes sorted. The relay sets it on the backend request and never copies a client's
header of that name.
"""

from __future__ import annotations

import json

from asyncapi_gw.relay.auth import Principal

__all__ = ["DEFAULT_HEADER", "auth_label", "header_value", "quota_key"]

DEFAULT_HEADER = "X-Asyncapi-Gw-Principal"
"""The principal header's usual name; a client's header of this name never reaches a backend,
whether or not the relay sends one."""


def auth_label(principal: Principal) -> str:
    """``oauth2``, ``api_key`` or ``none`` (anonymous)."""
    return "none" if principal.kind is None else principal.kind.value


def quota_key(principal: Principal, peer: str) -> str:
    """The principal's quota bucket: its kind and name, else its source address ``peer``."""
    if principal.kind is not None and principal.subject is not None:
        return f"{principal.kind.value}:{principal.subject}"
    return f"address:{peer}"


def header_value(principal: Principal) -> str:
    """The principal header's value (see the module's docstring)."""
    return json.dumps(
        {
            "auth": auth_label(principal),
            "principal": principal.subject,
            "scopes": sorted(principal.scopes),
        },
        separators=(",", ":"),
        ensure_ascii=True,
    )
