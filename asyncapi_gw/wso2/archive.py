"""Reading and writing WSO2 API projects on disk: a folder, or a ``.zip`` as ``apictl`` writes it.

This is the project codec's thin I/O shell: it turns a folder or a zip into
:class:`ProjectFiles` (file paths relative to the project's root, and their bytes) and back;
:mod:`asyncapi_gw.wso2.project` does the rest without I/O.

A zip is untrusted input.  Each of these is refused with a :class:`DocumentError` whose problem
names the rule, before anything is decompressed past the limits:

``project-zip-unsafe-path``
    an entry whose name is absolute (``/x``, ``\\x``, ``C:x``), climbs out (a ``..`` segment),
    holds a NUL or is empty.
``project-zip-symlink``
    an entry that is a symbolic link.
``project-zip-encrypted``
    an encrypted entry.
``project-zip-duplicate``
    two entries that collide when extracted: the same name, in any case (as Windows and
    macOS compare names), or a file where another entry needs a folder.
``project-zip-too-many-files``
    more than ``ArchiveLimits.max_files`` entries.
``project-zip-too-large``
    more than ``ArchiveLimits.max_file_bytes`` in one file or ``max_total_bytes`` in all,
    counted on what decompression really yields, not on what the headers claim.
``project-zip-bomb``
    an entry that decompresses to more than ``max_ratio`` times its compressed size (past the
    first ``ratio_floor`` bytes).
``project-zip-invalid``
    not a readable zip, or an entry whose data does not match its header (a size or checksum
    that lies: nothing is inflated past the size the header declares).

A folder is read the same way, with the same limits; a symbolic link inside it is refused too
(``project-symlink``), so that a project cannot make the reader leave it.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import attrs

from asyncapi_gw.errors import DocumentError, Problem
from asyncapi_gw.wso2.project import API_FILES, ProjectFiles, missing_api_error

__all__ = [
    "DEFAULT_ARCHIVE_LIMITS",
    "ArchiveLimits",
    "is_project_path",
    "read_project",
    "write_project",
]

_CHUNK = 64 * 1024
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a file header; an empty zip's end record
_DRIVE = re.compile(r"^[A-Za-z]:")


@attrs.frozen(kw_only=True)
class ArchiveLimits:
    """What a project may hold: files, bytes per file and in all, and the compression ratio."""

    max_files: int = 1_000
    max_file_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 100
    ratio_floor: int = 1024 * 1024  # smaller entries are not judged by their ratio


DEFAULT_ARCHIVE_LIMITS = ArchiveLimits()


def is_project_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a project rather than a document: a folder, or a zip file."""
    if os.path.isdir(path):
        return True
    try:
        with open(path, "rb") as stream:
            return stream.read(4) in _ZIP_SIGNATURES
    except OSError:
        return False


def _refuse(rule: str, message: str, name: str, pointer: str = "") -> DocumentError:
    return DocumentError(
        f"{name}: {message}", [Problem(pointer=pointer, message=message, rule=rule, file=name)]
    )


def read_project(
    path: str | os.PathLike[str], *, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS
) -> ProjectFiles:
    """The files of the project at ``path`` (a folder or a zip), checked against ``limits``."""
    name = os.fspath(path)
    if os.path.isdir(name):
        if not any(os.path.isfile(os.path.join(name, path)) for path in API_FILES):
            raise missing_api_error(name, folder=True)  # nothing else is read
        return ProjectFiles(
            files=dict(_read_folder(Path(name), name, limits)),
            name=name,
            directory=Path(os.path.abspath(name)).as_uri(),
        )
    try:
        archive = zipfile.ZipFile(name)
    except FileNotFoundError:
        raise _refuse("document-unreadable", "cannot open the file: no such file", name) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _refuse("document-unreadable", f"cannot open the file: {reason}", name) from None
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise _refuse("project-zip-invalid", f"not a readable zip: {exc}", name) from None
    with archive:
        files = _read_zip(archive, name, limits)
    folder, files = _strip_folder(files, name)
    return ProjectFiles(files=files, name=name, folder=folder)


def _safe_name(raw: str, name: str) -> str:
    entry = raw.replace("\\", "/")
    parts = PurePosixPath(entry).parts
    if (
        not entry.strip("/")
        or "\x00" in entry
        or entry.startswith("/")
        or _DRIVE.match(entry)
        or ".." in parts
    ):
        raise _refuse(
            "project-zip-unsafe-path",
            f"entry {raw!r} is absolute or leads outside the project",
            name,
        )
    return entry


def _read_zip(archive: zipfile.ZipFile, name: str, limits: ArchiveLimits) -> dict[str, bytes]:
    entries = archive.infolist()
    if len(entries) > limits.max_files:
        raise _refuse(
            "project-zip-too-many-files",
            f"{len(entries)} entries; a project may hold at most {limits.max_files}",
            name,
        )
    seen: dict[str, bool] = {}  # each entry's case-folded path: whether it is a folder
    named = []
    for info in entries:
        entry = _safe_name(info.filename, name)
        named.append((info, entry))
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(
                "project-zip-symlink", f"entry {info.filename!r} is a symbolic link", name
            )
        if info.flag_bits & 0x1:
            raise _refuse("project-zip-encrypted", f"entry {info.filename!r} is encrypted", name)
        _check_collision(seen, entry, info.filename, name)
    files: dict[str, bytes] = {}
    total = 0
    for info, entry in named:
        if entry.endswith("/"):  # a folder, whichever separator the zip wrote
            continue
        data = _inflate(archive, info, name, limits, limits.max_total_bytes - total)
        total += len(data)
        files[entry] = data
    return files


def _check_collision(seen: dict[str, bool], entry: str, raw: str, name: str) -> None:
    """Refuse an entry that another one would overwrite, or be overwritten by, when the zip
    is extracted: the same path (in any case, as Windows and macOS compare them), or a file
    where another entry needs a folder."""
    parts = entry.rstrip("/").casefold().split("/")
    is_dir = entry.endswith("/")
    path = "/".join(parts)
    clash = path in seen and not (is_dir and seen[path])
    clash = clash or any(seen.get("/".join(parts[:i])) is False for i in range(1, len(parts)))
    if clash:
        raise _refuse(
            "project-zip-duplicate",
            f"entry {raw!r} collides with another entry when extracted (the same path in "
            "some case, or a file where a folder is)",
            name,
        )
    for i in range(1, len(parts)):
        seen.setdefault("/".join(parts[:i]), True)
    seen[path] = is_dir


def _inflate(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    name: str,
    limits: ArchiveLimits,
    budget: int,
) -> bytes:
    """An entry's bytes, decompressed a chunk at a time and stopped at the first limit."""
    out = io.BytesIO()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
                size = out.tell()  # zipfile itself stops at the size the header declares
                if size > limits.max_file_bytes or size > budget:
                    raise _refuse(
                        "project-zip-too-large",
                        f"entry {info.filename!r} inflates past the limit of "
                        f"{min(limits.max_file_bytes, budget)} bytes",
                        name,
                    )
                if size > limits.ratio_floor and size > limits.max_ratio * max(
                    info.compress_size, 1
                ):
                    raise _refuse(
                        "project-zip-bomb",
                        f"entry {info.filename!r} inflates more than {limits.max_ratio} times "
                        "its compressed size",
                        name,
                    )
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise _refuse(
            "project-zip-invalid", f"entry {info.filename!r} cannot be read: {exc}", name
        ) from None
    return out.getvalue()


def _strip_folder(files: dict[str, bytes], name: str) -> tuple[str, dict[str, bytes]]:
    """The one top-level folder apictl puts a project in, and the files relative to it."""
    if not files or any("/" not in path for path in files):
        return "", files
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) != 1:
        listed = ", ".join(sorted(tops)[:5])
        raise _refuse(
            "project-layout",
            f"a project zip holds one top-level folder or the project's files, not {listed}",
            name,
        )
    (folder,) = tops
    return folder, {path.split("/", 1)[1]: data for path, data in files.items()}


def _read_folder(root: Path, name: str, limits: ArchiveLimits) -> Iterator[tuple[str, bytes]]:
    count = total = 0
    for directory, subdirs, filenames in os.walk(root):
        subdirs.sort()
        for entry in (*subdirs, *sorted(filenames)):
            full = Path(directory, entry)
            relative = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise _refuse(
                    "project-symlink", f"{relative} is a symbolic link; projects hold files", name
                )
            if entry in subdirs:
                continue
            count += 1
            if count > limits.max_files:
                raise _refuse(
                    "project-zip-too-many-files",
                    f"more than {limits.max_files} files in the project",
                    name,
                )
            data = _read_file(
                full, relative, name, min(limits.max_file_bytes, limits.max_total_bytes - total)
            )
            total += len(data)
            yield relative, data


def _read_file(path: Path, relative: str, name: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _refuse("document-unreadable", f"cannot read {relative}: {reason}", name) from None
    if len(data) > limit:
        raise _refuse(
            "project-zip-too-large", f"{relative} is larger than the limit of {limit} bytes", name
        )
    return data


def write_project(project: ProjectFiles, out: str | os.PathLike[str]) -> None:
    """Write ``project`` as a zip (``out`` ends in ``.zip``; its files inside
    ``project.folder``, as apictl writes them) or into the folder ``out``."""
    target = os.fspath(out)
    try:
        if target.lower().endswith(".zip"):
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path, data in project.files.items():
                    entry = f"{project.folder}/{path}" if project.folder else path
                    archive.writestr(entry, data)
            return
        for path, data in project.files.items():
            full = Path(target, path)
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _refuse("project-unwritable", f"cannot write the project: {reason}", target) from None
