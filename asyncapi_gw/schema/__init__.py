"""The official AsyncAPI schemas, offline validation against them, and ``$ref`` resolution.

The only place of the package that imports ``jsonschema`` and ``referencing``.
"""

from __future__ import annotations

from asyncapi_gw.schema.bundle import SUPPORTED_VERSIONS, VALIDATION_VERSIONS, schema_root
from asyncapi_gw.schema.refs import NOWHERE, Resolved, node_at, resolve_refs
from asyncapi_gw.schema.validation import (
    is_uri_reference,
    misplaced_refs,
    validate_asyncapi,
    validate_binding,
    validate_instance,
)

__all__ = [
    "NOWHERE",
    "SUPPORTED_VERSIONS",
    "VALIDATION_VERSIONS",
    "Resolved",
    "is_uri_reference",
    "misplaced_refs",
    "node_at",
    "resolve_refs",
    "schema_root",
    "validate_asyncapi",
    "validate_binding",
    "validate_instance",
]
