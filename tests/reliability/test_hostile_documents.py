"""Hostile documents, end to end: each is refused through ``validate_document``,
``load_asyncapi`` and ``asyncapi-gw validate`` with a typed error naming the cause."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import attrs
import pytest

from asyncapi_gw.asyncapi import import_asyncapi, load_asyncapi, validate_document
from asyncapi_gw.cli.main import main
from asyncapi_gw.errors import AsyncAPIGwError, ConversionError, DocumentError

HEAD = 'asyncapi: 2.6.0\ninfo: {title: t, version: "1"}\n'
CHATROOM = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "chatroom.yaml"


def message(payload: str) -> str:
    return f"channels:\n  /a:\n    publish:\n      message:\n        payload: {payload}\n"


@attrs.frozen(kw_only=True)
class Hostile:
    """A document (written by ``files`` into a folder, root ``main.yaml``) and what it gives."""

    files: Callable[[pathlib.Path], dict[str, bytes]]
    rule: str
    cause: str  # a fragment of the message


def one(text: str | bytes) -> Callable[[pathlib.Path], dict[str, bytes]]:
    raw = text.encode() if isinstance(text, str) else text
    return lambda _: {"main.yaml": raw}


def alias_bomb() -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def alias_tower() -> str:
    """Aliases nesting 100-deep lists 30 times: 3,000 levels from a 6 kB file."""
    lines = [
        f"    L{i}: &L{i} " + "[" * 100 + (f"*L{i - 1}" if i else "1") + "]" * 100
        for i in range(30)
    ]
    return HEAD + "channels: {}\ncomponents:\n  schemas:\n" + "\n".join(lines) + "\n"


def ref_bomb() -> str:
    """40 schemas each referring twice to the next: 2**40 nodes once expanded."""
    schemas = "".join(
        f"    S{i}: {{allOf: [{{$ref: '#/components/schemas/S{i + 1}'}}, "
        f"{{$ref: '#/components/schemas/S{i + 1}'}}]}}\n"
        for i in range(40)
    )
    return (
        HEAD
        + message("{$ref: '#/components/schemas/S0'}")
        + "components:\n  schemas:\n"
        + schemas
        + "    S40: {type: string}\n"
    )


def ref_tower(_: pathlib.Path) -> dict[str, bytes]:
    """20 files each 60 levels deep, chained by $ref: 1,200 levels once resolved."""
    files = {"main.yaml": (HEAD + message("{$ref: 'r0.yaml#/S'}")).encode()}
    for i in range(20):
        target = f"{{$ref: 'r{i + 1}.yaml#/S'}}" if i < 19 else "{type: string}"
        files[f"r{i}.yaml"] = ("S: " + "{properties: {a: " * 30 + target + "}}" * 30).encode()
    return files


def ref_loop(_: pathlib.Path) -> dict[str, bytes]:
    """a -> b -> c -> a, references only: nothing to resolve to."""
    return {
        "main.yaml": (HEAD + message("{$ref: 'a.yaml#/S'}")).encode(),
        "a.yaml": b"S: {$ref: 'b.yaml#/S'}\n",
        "b.yaml": b"S: {$ref: 'c.yaml#/S'}\n",
        "c.yaml": b"S: {$ref: 'a.yaml#/S'}\n",
    }


def in_subfolder(ref: str) -> Callable[[pathlib.Path], dict[str, bytes]]:
    return lambda _: {"main.yaml": (HEAD + message(f"{{$ref: '{ref}'}}")).encode()}


def absolute(tmp_path: pathlib.Path) -> dict[str, bytes]:
    target = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    target.write_text("S: {type: string}\n")
    return {"main.yaml": (HEAD + message(f"{{$ref: '{target}#/S'}}")).encode()}


def file_url(tmp_path: pathlib.Path) -> dict[str, bytes]:
    (tmp_path / "s.yaml").write_text("S: {type: string}\n")
    url = (tmp_path / "s.yaml").as_uri()
    return {"main.yaml": (HEAD + message(f"{{$ref: '{url}#/S'}}")).encode()}


def unsafe_tag(tmp_path: pathlib.Path) -> dict[str, bytes]:
    marker = tmp_path / "constructed"
    return {"main.yaml": f"asyncapi: !!python/object/apply:os.mkdir ['{marker}']\n".encode()}


def duplicate_keys() -> bytes:
    return CHATROOM.read_bytes() + b"info: {title: again, version: '2'}\n"


def ref_to_an_ancestor() -> str:
    """A message, reached first through a channel, whose member refers to ``#/components``
    (found by the fuzzer: resolution re-entered the message while copying it)."""
    return (
        HEAD
        + message("{type: string}").replace(
            "        payload: {type: string}\n", "        $ref: '#/components/messages/M'\n"
        )
        + "components:\n  messages:\n    M:\n      contentType: {$ref: '#/components'}\n"
    )


_ROOT_DEEP = "document-too-deep"
HOSTILE: dict[str, Hostile] = {
    "alias-bomb": Hostile(
        files=one(alias_bomb()),
        rule="document-alias-bomb",
        cause="aliases expand to more than the limit",
    ),
    "alias-tower": Hostile(
        files=one(alias_tower()),
        rule=_ROOT_DEEP,
        cause="aliases and $refs expanded, the document is nested deeper",
    ),
    "100k-deep-flow": Hostile(
        files=one("[" * 100_000 + "]" * 100_000),
        rule=_ROOT_DEEP,
        cause="nested deeper than the limit of 512",
    ),
    "100k-deep-json": Hostile(
        files=one('{"a":' * 100_000 + "1" + "}" * 100_000),
        rule=_ROOT_DEEP,
        cause="nested deeper than the limit of 512",
    ),
    "3k-deep-block": Hostile(
        files=one("".join(" " * i + "a:\n" for i in range(3_000))),
        rule=_ROOT_DEEP,
        cause="nested deeper than the limit of 512",
    ),
    "10k-deep-in-payload": Hostile(
        files=one(HEAD + message("[" * 10_000 + "]" * 10_000)),
        rule=_ROOT_DEEP,
        cause="nesting depth",
    ),
    "50-MB-string": Hostile(
        files=one(HEAD + 'x-s: "' + "x" * 50_000_000 + '"\n'),
        rule="document-too-large",
        cause="larger than the limit",
    ),
    "invalid-utf8": Hostile(
        files=one(HEAD.encode() + b"x-s: caf\xe9\n"),
        rule="document-encoding",
        cause="not valid UTF-8",
    ),
    "nul-byte": Hostile(files=one(HEAD + "x-s: a\x00b\n"), rule="document-encoding", cause="NUL"),
    "python-object-tag": Hostile(files=unsafe_tag, rule="document-unsafe-tag", cause="unsafe tag"),
    "duplicate-key": Hostile(
        files=one(duplicate_keys()), rule="document-duplicate-key", cause="duplicate key 'info'"
    ),
    "ref-bomb": Hostile(
        files=one(ref_bomb()),
        rule="document-too-large",
        cause="$refs expanded, the document is more than the limit",
    ),
    "ref-to-an-ancestor": Hostile(
        files=one(ref_to_an_ancestor()), rule="asyncapi-ref", cause="contains the reference itself"
    ),
    "ref-tower": Hostile(
        files=ref_tower, rule=_ROOT_DEEP, cause="$refs expanded, the document is nested deeper"
    ),
}
# Readable documents whose references are refused: reported, never followed.
REFUSED: dict[str, Hostile] = {
    "ref-loop-through-files": Hostile(
        files=ref_loop, rule="asyncapi-ref", cause="loop that leads nowhere"
    ),
    "ref-absolute-path": Hostile(
        files=absolute, rule="asyncapi-ref", cause="absolute file references are refused"
    ),
    "ref-parent-folder": Hostile(
        files=in_subfolder("../../etc/passwd#/S"),
        rule="asyncapi-ref",
        cause="outside the document's folder",
    ),
    "ref-file-url": Hostile(
        files=file_url, rule="asyncapi-ref", cause="absolute file references are refused"
    ),
    "ref-invalid-url": Hostile(
        files=in_subfolder("http://127.0[.0.1:9/x#/S"),
        rule="asyncapi-ref",
        cause="not a valid URI reference",
    ),
    "ref-http-url": Hostile(
        files=in_subfolder("http://127.0.0.1:9/s.yaml#/S"),
        rule="asyncapi-ref",
        cause="remote references are not followed",
    ),
}


def write(case: Hostile, tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "doc"
    folder.mkdir()
    for name, raw in case.files(tmp_path).items():
        (folder / name).write_bytes(raw)
    return folder / "main.yaml"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_document_is_refused_by_validate_and_load(
    name: str, tmp_path: pathlib.Path
) -> None:
    case = HOSTILE[name]
    path = write(case, tmp_path)
    for call in (validate_document, load_asyncapi, lambda p: import_asyncapi(p, lenient=True)):
        with pytest.raises(DocumentError) as caught:
            call(path)
        [problem] = caught.value.problems
        assert problem.rule == case.rule
        assert case.cause in problem.message
        assert case.cause in str(caught.value)


@pytest.mark.parametrize("name", list(HOSTILE) + list(REFUSED))
def test_hostile_document_through_the_cli(
    name: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = HOSTILE.get(name) or REFUSED[name]
    path = write(case, tmp_path)
    assert main(["validate", "--format", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert any(e["rule"] == case.rule and case.cause in e["message"] for e in report["errors"])
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert case.cause in out
    assert f"[{case.rule}]" in out


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_references_are_reported_not_followed(name: str, tmp_path: pathlib.Path) -> None:
    case = REFUSED[name]
    path = write(case, tmp_path)
    report = validate_document(path)
    refs = [p for p in report.errors if p.rule == case.rule]
    assert refs
    assert all(case.cause in p.message for p in refs)
    assert refs[0].file == str(path)
    assert refs[0].line == 7  # where the $ref is written
    with pytest.raises(AsyncAPIGwError) as caught:
        load_asyncapi(path)
    assert any(p.rule == case.rule for p in caught.value.problems)


def test_python_tag_constructs_nothing(tmp_path: pathlib.Path) -> None:
    path = write(HOSTILE["python-object-tag"], tmp_path)
    for call in (validate_document, load_asyncapi):
        with pytest.raises(DocumentError):
            call(path)
    assert main(["validate", str(path)]) == 1
    assert not (tmp_path / "constructed").exists()


def test_outside_references_are_followed_only_when_allowed(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(REFUSED["ref-absolute-path"], tmp_path)
    assert validate_document(path, allow_outside_refs=True).valid
    api = load_asyncapi(path, allow_outside_refs=True)
    assert api.name == "t"
    assert main(["validate", "--allow-outside-refs", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_cycle_through_several_files_terminates_and_validates(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "doc"
    folder.mkdir()
    (folder / "main.yaml").write_text(HEAD + message("{$ref: 'a.yaml#/S'}"))
    for this, other in (("a", "b"), ("b", "c"), ("c", "a")):
        (folder / f"{this}.yaml").write_text(
            f"S: {{type: object, properties: {{next: {{$ref: '{other}.yaml#/S'}}}}}}\n"
        )
    report = validate_document(folder / "main.yaml")
    assert report.valid, report.errors
    api = load_asyncapi(folder / "main.yaml")
    assert api.name == "t"


def test_a_bom_is_read_like_its_absence(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + CHATROOM.read_bytes())
    assert validate_document(path).valid
    with_bom, without = load_asyncapi(path), load_asyncapi(CHATROOM)
    assert attrs.evolve(with_bom, base_uri=None) == attrs.evolve(without, base_uri=None)
    assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize("depth", [100, 170, 300, 506])
def test_deep_documents_within_the_reading_limit_give_typed_errors(
    depth: int, tmp_path: pathlib.Path
) -> None:
    """Under the 512-level reading limit, deep payloads meet the validator's guard (150) and
    the importer's (200): problems and typed errors, never RecursionError or a panic."""
    path = tmp_path / "deep.yaml"
    pairs = (depth - 6) // 2  # the payload is six levels down; each pair adds two
    path.write_text(HEAD + message("{properties: {a: " * pairs + "{}" + "}}" * pairs))
    report = validate_document(path)
    if depth < 150:
        assert report.valid
        assert load_asyncapi(path).name == "t"
        return
    assert [p.message for p in report.errors if "levels deep" in p.message]
    with pytest.raises(AsyncAPIGwError):
        load_asyncapi(path)
    if depth > 200:
        with pytest.raises(ConversionError, match="at most 200 can be imported"):
            import_asyncapi(path, lenient=True)
    else:
        assert import_asyncapi(path, lenient=True).warnings


@pytest.mark.slow
def test_100k_channels_lose_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wide.yaml"
    channels = "".join(
        f"  /c{i}:\n    publish:\n      message:\n        payload: {{type: string}}\n"
        for i in range(100_000)
    )
    path.write_text(HEAD + "channels:\n" + channels)
    assert validate_document(path).valid
    api = load_asyncapi(path)
    assert len(api.topics) == 100_000
