"""JSON pointers (RFC 6901): escaping reference tokens and joining them into pointers.

This module imports nothing else of the package.
"""

from __future__ import annotations

__all__ = ["escape_token", "pointer_to", "unescape_token"]


def escape_token(token: object) -> str:
    """``token`` as a reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_token(token: str) -> str:
    """The key or index a reference token names; the inverse of :func:`escape_token`."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer_to(*parts: object) -> str:
    """The pointer through ``parts`` from the root (``""`` for none)."""
    return "".join("/" + escape_token(part) for part in parts)
