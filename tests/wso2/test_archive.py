"""Projects on disk: folders and zips as apictl writes them, and hostile zips refused."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import attrs
import pytest

from asyncapi_gw import DocumentError
from asyncapi_gw.wso2 import (
    ArchiveLimits,
    export_project,
    import_project,
    is_project_path,
    read_project,
)


def _zip_of(folder: Path, out: Path, *, prefix: str | None = None) -> Path:
    """``folder`` zipped as apictl does: its files inside one top-level folder."""
    top = folder.name if prefix is None else prefix
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder).as_posix()
                archive.write(path, f"{top}/{relative}" if top else relative)
    return out


def _hostile(tmp_path: Path, market: Path, *extra: tuple[zipfile.ZipInfo | str, bytes]) -> Path:
    out = _zip_of(market, tmp_path / "hostile.zip")
    with zipfile.ZipFile(out, "a") as archive:
        for info, data in extra:
            archive.writestr(info, data)
    return out


def _refused(path: Path, rule: str, limits: ArchiveLimits | None = None) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        read_project(path, **({"limits": limits} if limits else {}))
    assert [p.rule for p in caught.value.problems] == [rule], caught.value
    return caught.value


def test_a_zip_as_apictl_writes_it_imports_as_its_folder_does(market: Path, tmp_path: Path) -> None:
    archive = _zip_of(market, tmp_path / "MarketFeed-1.0.0.zip")
    assert is_project_path(archive)
    assert is_project_path(market)
    assert not is_project_path(market / "api.yaml")
    from_zip = import_project(archive)
    assert from_zip.api == attrs.evolve(import_project(market).api, base_uri=None)
    assert from_zip.project is not None
    assert from_zip.project.folder == "MarketFeed-1.0.0"
    # Problems name the file inside the zip.
    assert from_zip.document is not None
    assert from_zip.document.name == f"{archive}/MarketFeed-1.0.0/Definitions/asyncapi.yaml"


def test_a_zip_without_a_top_level_folder_reads_too(market: Path, tmp_path: Path) -> None:
    archive = _zip_of(market, tmp_path / "flat.zip", prefix="")
    assert import_project(archive).api.name == "MarketFeed"


def test_export_writes_a_zip_with_one_top_level_folder(market: Path, tmp_path: Path) -> None:
    result = import_project(market)
    out = tmp_path / "out.zip"
    export_project(result.api, out, source=result.project)
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
    assert names == [
        "MarketFeed-1.0.0/Definitions/asyncapi.yaml",
        "MarketFeed-1.0.0/api.yaml",
        "MarketFeed-1.0.0/deployment_environments.yaml",
    ]
    assert import_project(out).api == attrs.evolve(result.api, base_uri=None)
    folder = tmp_path / "folder"
    export_project(result.api, folder, source=result.project)
    assert import_project(folder).api.topics == result.api.topics


@pytest.mark.parametrize(
    "name",
    [
        "../evil.yaml",
        "MarketFeed-1.0.0/../../evil",
        "/etc/evil",
        "\\evil",
        "C:/evil",
        "a\\..\\..\\evil",
    ],
)
def test_unsafe_entry_names_are_refused(market: Path, tmp_path: Path, name: str) -> None:
    archive = _hostile(tmp_path, market, (zipfile.ZipInfo(name), b"x"))
    _refused(archive, "project-zip-unsafe-path")


def test_symlink_entries_are_refused(market: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("MarketFeed-1.0.0/Docs/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _refused(_hostile(tmp_path, market, (link, b"/etc/passwd")), "project-zip-symlink")


def _patch_central(archive: Path, name: str, offset: int, value: int, size: int) -> None:
    """Overwrite a field of ``name``'s central directory record (``offset`` from its start)."""
    raw = bytearray(archive.read_bytes())
    start = raw.rindex(name.encode()) - 46  # the file name follows the 46-byte fixed part
    assert raw[start : start + 4] == b"PK\x01\x02"
    raw[start + offset : start + offset + size] = value.to_bytes(size, "little")
    archive.write_bytes(bytes(raw))


def test_encrypted_entries_are_refused(market: Path, tmp_path: Path) -> None:
    archive = _hostile(tmp_path, market, ("MarketFeed-1.0.0/secret", b"x"))
    _patch_central(archive, "MarketFeed-1.0.0/secret", 8, 0x1, 2)  # general purpose flags
    _refused(archive, "project-zip-encrypted")


def test_duplicate_entries_are_refused(market: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = _hostile(tmp_path, market, ("MarketFeed-1.0.0/api.yaml", b"type: api\n"))
    _refused(archive, "project-zip-duplicate")


def test_too_many_files_are_refused(market: Path, tmp_path: Path) -> None:
    many = [(f"MarketFeed-1.0.0/Docs/{i}.md", b"") for i in range(20)]
    archive = _hostile(tmp_path, market, *many)
    _refused(archive, "project-zip-too-many-files", ArchiveLimits(max_files=10))


def test_too_many_bytes_are_refused(market: Path, tmp_path: Path) -> None:
    archive = _hostile(tmp_path, market, ("MarketFeed-1.0.0/Docs/big.md", os.urandom(50_000)))
    _refused(archive, "project-zip-too-large", ArchiveLimits(max_file_bytes=40_000))
    _refused(archive, "project-zip-too-large", ArchiveLimits(max_total_bytes=50_000))


def test_compression_bombs_are_refused_before_they_inflate(market: Path, tmp_path: Path) -> None:
    bomb = zipfile.ZipInfo("MarketFeed-1.0.0/Docs/bomb.txt")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    archive = _hostile(tmp_path, market, (bomb, b"\0" * (8 * 1024 * 1024)))
    error = _refused(archive, "project-zip-bomb")
    assert "100 times" in error.problems[0].message


def test_an_entry_inflating_past_its_header_is_refused(market: Path, tmp_path: Path) -> None:
    name = "MarketFeed-1.0.0/Docs/liar.txt"
    archive = _hostile(tmp_path, market, (name, b"a" * 100_000))
    _patch_central(archive, name, 24, 10, 4)  # claims 10 bytes uncompressed
    error = _refused(archive, "project-zip-invalid")
    assert "liar.txt" in error.message


def test_not_a_zip_and_more_than_one_folder_are_refused(market: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    _refused(broken, "project-zip-invalid")
    two = _hostile(tmp_path, market, ("Other-1.0.0/api.yaml", b"type: api\n"))
    _refused(two, "project-layout")


def test_a_folder_with_a_symlink_is_refused(market: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (market / "Docs").mkdir()
    (market / "Docs" / "link.md").symlink_to(secret)
    _refused(market, "project-symlink")


def test_a_folder_that_is_no_project_is_unreadable(tmp_path: Path) -> None:
    error = _refused(tmp_path, "document-unreadable")
    assert "api.yaml" in error.message


@pytest.mark.parametrize(
    "entry",
    [
        "MarketFeed-1.0.0/API.yaml",  # api.yaml on a case-insensitive file system
        "MarketFeed-1.0.0/definitions/asyncapi.yaml",
        "MarketFeed-1.0.0/Definitions",  # a file where the project has a folder
    ],
)
def test_entries_that_collide_when_extracted_are_refused(
    market: Path, tmp_path: Path, entry: str
) -> None:
    """Which of two colliding entries an extractor keeps depends on the file system and the
    order; a project whose meaning depends on that is refused."""
    archive = _hostile(tmp_path, market, (entry, b"type: api\n"))
    _refused(archive, "project-zip-duplicate")


def test_an_empty_zip_is_a_project_without_api_yaml(tmp_path: Path) -> None:
    """An empty zip starts with the end-of-archive record, not a file header: still a zip,
    and WSO2's own complaint, not a YAML document with NUL characters."""
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    assert is_project_path(empty)
    with pytest.raises(DocumentError) as caught:
        import_project(empty)
    assert [p.rule for p in caught.value.problems] == ["wso2-missing-api"]


def test_a_folder_entry_written_with_backslashes_is_a_folder(market: Path, tmp_path: Path) -> None:
    """Windows zip tools may write ``Docs\\`` for a folder: no file of that name is read."""
    archive = _hostile(tmp_path, market, ("MarketFeed-1.0.0\\Docs\\", b""))
    assert "Docs/" not in read_project(archive).files
