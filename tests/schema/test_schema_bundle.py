"""The vendored schemas: provenance checksums and how they are found."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest

from asyncapi_gw.schema import SUPPORTED_VERSIONS, schema_root
from asyncapi_gw.schema.bundle import binding_schema_uri, binding_versions

CHECKOUT_SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas"


def test_schema_root_is_the_checkout_folder() -> None:
    assert schema_root() == CHECKOUT_SCHEMAS
    for version in SUPPORTED_VERSIONS:
        assert (schema_root() / f"{version}.json").is_file()


def test_vendored_files_match_provenance() -> None:
    provenance = json.loads((CHECKOUT_SCHEMAS / "PROVENANCE.json").read_text())
    assert provenance["package"] == "@asyncapi/specs"
    listed = provenance["sha256"]
    on_disk = {
        p.relative_to(CHECKOUT_SCHEMAS).as_posix()
        for p in CHECKOUT_SCHEMAS.rglob("*")
        if p.is_file() and p.name not in ("PROVENANCE.json", "README.md")
    }
    assert on_disk == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((CHECKOUT_SCHEMAS / name).read_bytes()).hexdigest() == digest, name
    assert set(SUPPORTED_VERSIONS) <= set(provenance["versions"])


@pytest.mark.parametrize(
    ("protocol", "kind", "version", "expected"),
    [
        ("ws", "channel", "0.1.0", "http://asyncapi.com/bindings/websockets/0.1.0/channel.json"),
        (
            "websockets",
            "channel",
            "0.1.0",
            "http://asyncapi.com/bindings/websockets/0.1.0/channel.json",
        ),
        ("kafka", "server", "0.3.0", "http://asyncapi.com/bindings/kafka/0.3.0/server.json"),
        ("ws", "server", "0.1.0", None),
        ("ws", "channel", "9.9.9", None),
        ("nosuchprotocol", "channel", "0.1.0", None),
    ],
)
def test_binding_schema_choice(
    protocol: str, kind: str, version: str, expected: str | None
) -> None:
    assert binding_schema_uri(protocol, kind, version) == expected


@pytest.mark.parametrize(
    ("protocol", "kind", "expected"),
    [
        ("ws", "channel", ("0.1.0",)),
        ("kafka", "server", ("0.3.0", "0.4.0", "0.5.0")),
        ("kafka", "message", ("0.1.0", "0.3.0", "0.4.0", "0.5.0")),
        ("ws", "server", ()),
        ("nosuchprotocol", "channel", ()),
    ],
)
def test_binding_versions_oldest_first(protocol: str, kind: str, expected: tuple[str, ...]) -> None:
    assert binding_versions(protocol, kind) == expected
