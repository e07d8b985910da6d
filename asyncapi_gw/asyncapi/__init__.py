"""The AsyncAPI codec: documents in, :class:`~asyncapi_gw.model.StreamingAPI` out, and back."""

from __future__ import annotations

from asyncapi_gw.asyncapi.loader import (
    DEFAULT_EXPORT_VERSION,
    ImportResult,
    ValidationReport,
    dump_asyncapi,
    export_asyncapi,
    import_asyncapi,
    load_asyncapi,
    loads_asyncapi,
    validate_document,
)

__all__ = [
    "DEFAULT_EXPORT_VERSION",
    "ImportResult",
    "ValidationReport",
    "dump_asyncapi",
    "export_asyncapi",
    "import_asyncapi",
    "load_asyncapi",
    "loads_asyncapi",
    "validate_document",
]
