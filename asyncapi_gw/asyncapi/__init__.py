"""The AsyncAPI codec: documents in, :class:`~asyncapi_gw.model.StreamingAPI` out, and back;
and document-level conversion between AsyncAPI 2.x and 3.x."""

from __future__ import annotations

from asyncapi_gw.asyncapi.convert import Conversion
from asyncapi_gw.asyncapi.loader import (
    DEFAULT_EXPORT_VERSION,
    EXPORT_VERSIONS,
    ImportResult,
    ValidationReport,
    convert_asyncapi,
    dump_asyncapi,
    export_asyncapi,
    import_asyncapi,
    load_asyncapi,
    loads_asyncapi,
    validate_document,
)

__all__ = [
    "DEFAULT_EXPORT_VERSION",
    "EXPORT_VERSIONS",
    "Conversion",
    "ImportResult",
    "ValidationReport",
    "convert_asyncapi",
    "dump_asyncapi",
    "export_asyncapi",
    "import_asyncapi",
    "load_asyncapi",
    "loads_asyncapi",
    "validate_document",
]
