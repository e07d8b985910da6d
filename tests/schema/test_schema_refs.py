"""$ref resolution: local and relative refs, cycles, the policy, origins."""

from __future__ import annotations

import pathlib
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from asyncapi_gw.documents import SourceDocument, document_from_data, read_document
from asyncapi_gw.errors import DocumentError
from asyncapi_gw.schema import Resolved, resolve_refs, validate_asyncapi

REFS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "refs"


class Loader:
    """A ``load`` that reads files and counts the reads."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def __call__(self, uri: str) -> SourceDocument:
        self.reads.append(uri)
        if not uri.startswith("file://"):
            raise DocumentError(f"cannot read {uri}")
        return read_document(unquote(urlsplit(uri).path))


def resolve(name: str, **policy: bool) -> tuple[Resolved, Loader]:
    loader = Loader()
    return resolve_refs(read_document(REFS / name), load=loader, **policy), loader


def test_relative_files_local_refs_and_cycles() -> None:
    resolved, loader = resolve("main.yaml")
    assert resolved.problems == ()
    data = resolved.data
    channel = data["channels"]["/rooms/{roomId}"]
    assert channel["parameters"]["roomId"] is data["components"]["parameters"]["roomId"]
    chat = channel["publish"]["message"]
    assert chat["name"] == "chat"
    assert chat["payload"]["properties"]["text"] == {"type": "string"}
    # A cycle across two files ends in a $ref that closes it.
    node = channel["subscribe"]["message"]["payload"]
    tree = node["properties"]["children"]["items"]
    assert tree["properties"]["root"] == {"$ref": "node.yaml#/Node"}
    assert data["components"]["messages"]["Tree"]["payload"] is node
    # A local cycle.
    local = data["components"]["schemas"]["Local"]
    assert local["properties"]["next"] == {"$ref": "#/components/schemas/Local"}
    # Each other file is read once.
    assert sorted(pathlib.Path(u).name for u in loader.reads) == [
        "messages.yaml",
        "node.yaml",
        "tree.yaml",
    ]
    assert validate_asyncapi(data, "2.6.0") == []


def test_input_is_not_changed() -> None:
    doc = read_document(REFS / "main.yaml")
    before = repr(doc.data)
    resolve_refs(doc, load=Loader())
    assert repr(doc.data) == before


def test_origin_follows_refs_into_other_files() -> None:
    resolved, _ = resolve("main.yaml")
    doc, pointer = resolved.origin(
        "/channels/~1rooms~1{roomId}/publish/message/payload/properties/text/type"
    )
    assert pathlib.Path(doc.name or "").name == "messages.yaml"
    assert pointer == "/Text/properties/text/type"
    assert doc.locate(pointer) == (9, 7)
    doc, pointer = resolved.origin(
        "/channels/~1rooms~1{roomId}/subscribe/message/payload/properties/children/items"
        "/properties/root/$ref"
    )
    assert pathlib.Path(doc.name or "").name == "tree.yaml"
    assert pointer == "/Tree/properties/root/$ref"
    doc, pointer = resolved.origin("/info/version")
    assert (pathlib.Path(doc.name or "").name, pointer) == ("main.yaml", "/info/version")
    # A pointer past the data keeps its tail.
    doc, pointer = resolved.origin("/channels/~1rooms~1{roomId}/publish/message/nope/x")
    assert pointer == "/ChatMessage/nope/x"


def test_parent_folder_is_refused_unless_allowed() -> None:
    resolved, loader = resolve("nested/escape.yaml")
    assert loader.reads == []
    [problem] = resolved.problems
    assert problem.rule == "asyncapi-ref"
    assert problem.pointer == "/channels/~1a/publish/message"
    assert "outside the document's folder" in problem.message
    assert "allow_outside_refs=True" in problem.message
    message = resolved.data["channels"]["/a"]["publish"]["message"]
    assert message == {"$ref": "../messages.yaml#/ChatMessage"}
    allowed, _ = resolve("nested/escape.yaml", allow_outside=True)
    assert allowed.problems == ()
    assert allowed.data["channels"]["/a"]["publish"]["message"]["name"] == "chat"


def test_broken_and_refused_refs() -> None:
    resolved, loader = resolve("broken.yaml")
    found = {p.pointer.split("/")[2]: p.message for p in resolved.problems}
    assert set(found) == {
        "~1missing-pointer",
        "~1missing-file",
        "~1remote",
        "~1file-url",
        "~1absolute",
    }
    assert found["~1missing-pointer"].startswith(
        '$ref "#/components/messages/Nope": "/components/messages/Nope" is not a JSON pointer '
        "to a node"
    )
    assert "cannot read" in found["~1missing-file"]
    assert "remote references are not followed: nothing is fetched" in found["~1remote"]
    assert "allow_remote_refs" not in found["~1remote"]
    assert "absolute file references are refused" in found["~1file-url"]
    assert "absolute file references are refused" in found["~1absolute"]
    assert [pathlib.Path(u).name for u in loader.reads] == ["nowhere.yaml"]
    for channel in resolved.data["channels"].values():
        assert set(channel["publish"]["message"]) == {"$ref"}


def test_remote_allowed_goes_to_the_loader() -> None:
    resolved, loader = resolve("broken.yaml", allow_remote=True)
    assert "http://example.com/messages.yaml" in loader.reads
    remote = [p for p in resolved.problems if "~1remote" in p.pointer]
    assert "cannot read http://example.com/messages.yaml" in remote[0].message


def test_document_without_location() -> None:
    doc = document_from_data(
        {
            "a": {"$ref": "#/b"},
            "b": [1, {"$ref": "#/b/0"}],
            "c": {"$ref": "other.yaml"},
            "d": {"$ref": "#/e"},
            "e": {"$ref": "#/d"},
        }
    )
    resolved = resolve_refs(doc, load=Loader())
    assert resolved.data["a"] == [1, 1]
    assert resolved.data["a"] is resolved.data["b"]
    messages = {p.pointer: p.message for p in resolved.problems}
    assert "has no location" in messages["/c"]
    assert "loop" in messages["/d"]


def test_deep_and_wide_documents_do_not_recurse() -> None:
    node: dict[str, Any] = {"leaf": True}
    for _ in range(3000):
        node = {"n": node}
    data = {"deep": node, "refs": [{"$ref": "#/deep"} for _ in range(20000)]}
    doc = SourceDocument(data=data, name=None, uri=None, format="json")
    resolved = resolve_refs(doc, load=Loader())
    assert resolved.problems == ()
    assert all(r is resolved.data["deep"] for r in resolved.data["refs"])


@pytest.mark.parametrize("pointer", ["", "/refs/3/n/n"])
def test_origin_of_root_document_pointers(pointer: str) -> None:
    data = {"deep": {"n": {"n": 1}}, "refs": [{"$ref": "#/deep"} for _ in range(5)]}
    doc = document_from_data(data)
    resolved = resolve_refs(doc, load=Loader())
    origin, where = resolved.origin(pointer)
    assert origin is doc
    assert where == ("" if not pointer else "/deep/n/n")


def test_ref_root_lets_relative_refs_reach_a_shared_folder(tmp_path: pathlib.Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "messages.yaml").write_text("Hello: {payload: {type: string}}\n")
    doc = tmp_path / "service" / "asyncapi.yaml"
    doc.write_text("m: {$ref: '../common/messages.yaml#/Hello'}\n")
    refused = resolve_refs(read_document(doc), load=Loader())
    [problem] = refused.problems
    assert "outside the document's folder;" in problem.message
    resolved = resolve_refs(read_document(doc), load=Loader(), ref_root=tmp_path)
    assert resolved.problems == ()
    assert resolved.data["m"] == {"payload": {"type": "string"}}
    # A root that holds neither the document nor the file changes nothing but the wording.
    elsewhere = resolve_refs(read_document(doc), load=Loader(), ref_root=tmp_path / "service")
    [problem] = elsewhere.problems
    assert f"and outside {tmp_path / 'service'};" in problem.message
