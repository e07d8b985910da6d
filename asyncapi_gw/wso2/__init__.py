"""WSO2 API Manager API projects (``apictl export api`` / ``apictl import api``): a folder or a
zip with ``api.yaml`` and ``Definitions/asyncapi.yaml``, imported as an API and exported from one.

:func:`import_project` and :func:`export_project` read and write projects on disk (a folder, or
a zip); :mod:`asyncapi_gw.wso2.project` holds the pure codec, :mod:`asyncapi_gw.wso2.archive`
the folder and zip I/O with its safety limits.
"""

from __future__ import annotations

import os

from asyncapi_gw.asyncapi import ValidationReport
from asyncapi_gw.errors import Problem
from asyncapi_gw.model import PointOfView, StreamingAPI
from asyncapi_gw.wso2.archive import (
    DEFAULT_ARCHIVE_LIMITS,
    ArchiveLimits,
    is_project_path,
    read_project,
    write_project,
)
from asyncapi_gw.wso2.project import (
    DEFAULT_WSO2_VERSION,
    Project,
    ProjectFiles,
    ProjectImport,
    check_project,
    decode_project,
    definition_document,
    encode_project,
    wso2_version,
)

__all__ = [
    "DEFAULT_ARCHIVE_LIMITS",
    "DEFAULT_WSO2_VERSION",
    "ArchiveLimits",
    "Project",
    "ProjectFiles",
    "ProjectImport",
    "check_project",
    "decode_project",
    "definition_document",
    "encode_project",
    "export_project",
    "import_project",
    "is_project_path",
    "read_project",
    "validate_project",
    "write_project",
    "wso2_version",
]


def import_project(
    path: str | os.PathLike[str],
    *,
    context: str | None = None,
    lenient: bool = False,
    point_of_view: PointOfView | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
    limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
) -> ProjectImport:
    """Import the project at ``path`` (a folder or a zip); see :func:`decode_project`."""
    return decode_project(
        read_project(path, limits=limits),
        context=context,
        lenient=lenient,
        point_of_view=point_of_view,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )


def validate_project(
    path: str | os.PathLike[str],
    *,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
    limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
) -> ValidationReport:
    """The verdict on the project at ``path``; see :func:`check_project`."""
    return check_project(
        read_project(path, limits=limits),
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )


def export_project(
    api: StreamingAPI,
    out: str | os.PathLike[str],
    *,
    source: Project | None = None,
    version: str | None = None,
    lenient: bool = False,
    warnings: list[Problem] | None = None,
    allow_remote_refs: bool = False,
    allow_outside_refs: bool = False,
    ref_root: str | None = None,
) -> ProjectFiles:
    """Write ``api`` as a project to ``out`` (a zip when it ends in ``.zip``, else a folder)
    and return what was written; see :func:`encode_project`."""
    files = encode_project(
        api,
        source=source,
        version=version,
        lenient=lenient,
        warnings=warnings,
        allow_remote_refs=allow_remote_refs,
        allow_outside_refs=allow_outside_refs,
        ref_root=ref_root,
    )
    write_project(files, out)
    return files
