"""What a FILE argument of the command line names: an AsyncAPI document, or a WSO2 API Manager
API project (a folder, or a zip as ``apictl`` writes it).  Every command that reads a document
reads a project the same way."""

from __future__ import annotations

from typing import Any

from asyncapi_gw.asyncapi import ImportResult, ValidationReport, import_asyncapi, validate_document
from asyncapi_gw.documents import SourceDocument
from asyncapi_gw.model import PointOfView
from asyncapi_gw.wso2 import (
    ProjectImport,
    definition_document,
    import_project,
    is_project_path,
    read_project,
    validate_project,
)

__all__ = ["document_source", "import_source", "validate_source"]


def document_source(file: str) -> str | SourceDocument:
    """The AsyncAPI document ``file`` names: itself, or a project's definition."""
    if not is_project_path(file):
        return file
    return definition_document(read_project(file))[1]


def import_source(
    file: str,
    *,
    context: str | None,
    lenient: bool,
    point_of_view: PointOfView | None,
    policy: dict[str, Any],
) -> ImportResult | ProjectImport:
    """The API ``file`` describes, with the warnings met (a project's are located in its
    api.yaml or its definition)."""
    load = import_project if is_project_path(file) else import_asyncapi
    return load(file, context=context, lenient=lenient, point_of_view=point_of_view, **policy)


def validate_source(file: str, policy: dict[str, Any]) -> ValidationReport:
    """The verdict on a document, or on a project's api.yaml and definition together."""
    check = validate_project if is_project_path(file) else validate_document
    return check(file, **policy)
