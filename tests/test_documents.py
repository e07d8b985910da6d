"""Reading and writing YAML/JSON documents: data, positions, limits and hostile input."""

from __future__ import annotations

import copy as copy_module
import json
import math
import pathlib
import pickle
import types
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from javascript_yaml import as_javascript, read_with_javascript, same_reading

from asyncapi_gw import documents
from asyncapi_gw.documents import (
    DEFAULT_LIMITS,
    Limits,
    SourceDocument,
    document_from_data,
    dump_document,
    parse_document,
    read_document,
)
from asyncapi_gw.errors import DocumentError, Problem


@pytest.fixture(params=["libyaml", "pure"], autouse=True)
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with PyYAML's C parser (when built) and with its pure-Python one."""
    if request.param == "pure":
        monkeypatch.setattr(documents, "_parser_factory", documents._PurePythonParser)
    elif documents._parser_factory is documents._PurePythonParser:
        pytest.skip("PyYAML built without libyaml")
    return str(request.param)


def problem_of(text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Problem:
    with pytest.raises(DocumentError) as caught:
        parse_document(text, name="doc.yaml", limits=limits)
    (problem,) = caught.value.problems
    assert problem.file == "doc.yaml"
    return problem


def same(a: Any, b: Any) -> bool:
    """Equality that tells bool from int, 1 from 1.0 and key orders apart (without recursion)."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if list(x) != list(y):
                return False
            todo.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            todo.extend(zip(x, y, strict=True))
        elif x != y and not (isinstance(x, float) and math.isnan(x) and math.isnan(y)):
            return False
    return True


# --- format and scalars -------------------------------------------------------------------


def test_yaml_document() -> None:
    doc = parse_document("asyncapi: 2.6.0\ninfo:\n  title: Chat\n", name="a.yaml")
    assert doc == SourceDocument(
        data={"asyncapi": "2.6.0", "info": {"title": "Chat"}},
        name="a.yaml",
        uri=None,
        format="yaml",
    )


@pytest.mark.parametrize(
    "text", ['{"a": [1, 2.5, true, null, "x"]}', ' \n\t{"a": [1, 2.5, true, null, "x"]}']
)
def test_json_document(text: str) -> None:
    doc = parse_document(text, uri="file:///x.json")
    assert same(doc.data, {"a": [1, 2.5, True, None, "x"]})
    assert doc.format == "json"
    assert doc.uri == "file:///x.json"


def test_json_array_root_and_yaml_scalar_root() -> None:
    assert parse_document("[1]").data == [1]
    assert parse_document("hello").data == "hello"


# Plain scalars as the YAML 1.2 core schema reads them, which is what the official parser's YAML
# reader (@stoplight/yaml, over @stoplight/yaml-ast-parser) reads: ours. js-yaml 4, which the
# official parser depends on but does not read documents with, differs where its column says.
# test_the_official_readers_agree_with_the_table runs both JavaScript readers on this table.
SAME = object()
DATE = object()  # js-yaml's default schema reads a timestamp as a Date
YAML12_PLAIN: list[tuple[str, Any, Any]] = [
    # text, ours (YAML 1.2 core; @stoplight/yaml), js-yaml 4 (DEFAULT_SCHEMA)
    ("on", "on", SAME),
    ("Off", "Off", SAME),
    ("yes", "yes", SAME),
    ("NO", "NO", SAME),
    ("y", "y", SAME),
    ("n", "n", SAME),
    ("true", True, SAME),
    ("True", True, SAME),
    ("FALSE", False, SAME),
    ("tRUE", "tRUE", SAME),
    ("~", None, SAME),
    ("null", None, SAME),
    ("NULL", None, SAME),
    ("nUll", "nUll", SAME),
    ("12", 12, SAME),
    ("+12", 12, SAME),
    ("-0", 0, SAME),
    ("0755", 755, SAME),
    ("09", 9, SAME),
    ("0o17", 15, SAME),
    ("0O17", "0O17", SAME),
    ("-0o7", "-0o7", -7),
    ("0x1F", 31, SAME),
    ("0X1F", "0X1F", SAME),
    ("-0x1F", "-0x1F", -31),
    ("0b101", "0b101", 5),
    ("1_000", "1_000", SAME),
    ("1_000.5", "1_000.5", SAME),
    ("1:20", "1:20", SAME),
    ("190:20:30.5", "190:20:30.5", SAME),
    ("1.5", 1.5, SAME),
    ("1.", 1.0, SAME),
    ("1e3", 1000.0, SAME),
    ("1.0e+3", 1000.0, SAME),
    ("+1E-3", 0.001, SAME),
    (".5", 0.5, SAME),
    ("-.5", -0.5, "-.5"),
    ("+.5", 0.5, "+.5"),
    (".", ".", SAME),
    ("1e", "1e", SAME),
    (".inf", math.inf, SAME),
    ("-.Inf", -math.inf, SAME),
    ("+.INF", math.inf, SAME),
    (".NaN", math.nan, SAME),
    ("-.nan", "-.nan", SAME),
    (".Nan", ".Nan", SAME),
    ("NaN", "NaN", SAME),
    ("Infinity", "Infinity", SAME),
    ("2024-01-01", "2024-01-01", DATE),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00", DATE),
    ("=", "=", SAME),
    ("<<", "<<", SAME),
    ("plain text", "plain text", SAME),
]


@pytest.mark.parametrize(("source", "value", "js_yaml"), YAML12_PLAIN)
def test_plain_scalars_resolve_by_the_yaml_1_2_core_schema(
    source: str, value: Any, js_yaml: Any
) -> None:
    assert same(parse_document(f"v: {source}\n").data, {"v": value})


def test_the_official_readers_agree_with_the_table() -> None:
    readings = read_with_javascript([f"v: {source}\n" for source, _, _ in YAML12_PLAIN])
    for (source, value, js_yaml), (official, jsyaml) in zip(YAML12_PLAIN, readings, strict=True):
        assert same_reading(official, {"v": as_javascript(value)}), source
        if js_yaml is DATE:
            assert isinstance(jsyaml["v"], tuple), source
            assert jsyaml["v"][0] == "date", source
        else:
            expected = value if js_yaml is SAME else js_yaml
            assert same_reading(jsyaml, {"v": as_javascript(expected)}), source


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'12'", "12"),
        ('"yes"', "yes"),
        ("'on'", "on"),
        ("!!str 12", "12"),
        ("!!str true", "true"),
        ("!!int '12'", 12),
        ("!!int 0755", 755),
        ("!!int 0x1F", 31),
        ("!!float '1'", 1.0),
        ("!!float 1e3", 1000.0),
        ("!!float .inf", math.inf),
        ("!!bool 'true'", True),
        ("!!null ''", None),
        ("!!binary aGk=", "aGk="),
        ("!!timestamp 2020-01-01", "2020-01-01"),
    ],
)
def test_explicit_tags(source: str, value: Any) -> None:
    assert same(parse_document(f"v: {source}\n").data, {"v": value})


def test_yaml_nan() -> None:
    assert math.isnan(parse_document("v: .nan").data["v"])


@pytest.mark.parametrize(
    ("source", "key"),
    [("200", "200"), ("1.0", "1.0"), ("~", "~"), ("true", "true"), ("0x10", "0x10"), ("'a'", "a")],
)
def test_yaml_keys_are_strings_as_written(source: str, key: str) -> None:
    assert parse_document(f"{source}: v").data == {key: "v"}


def test_key_order_is_source_order() -> None:
    assert list(parse_document("z: 1\na: 2\nm: 3").data) == ["z", "a", "m"]
    assert list(parse_document('{"z": 1, "a": 2, "m": 3}').data) == ["z", "a", "m"]


def test_aliases_resolve() -> None:
    data = parse_document("a: &x {k: [1]}\nb: *x\nc: &s text\nd: *s\n*s : key\n").data
    assert data == {"a": {"k": [1]}, "b": {"k": [1]}, "c": "text", "d": "text", "text": "key"}


def test_anchor_may_be_redefined() -> None:
    assert parse_document("a: &x 1\nb: &x 2\nc: *x").data == {"a": 1, "b": 2, "c": 2}


def test_alias_to_number_as_key_keeps_its_spelling() -> None:
    assert parse_document("a: &n 0x10\n*n : v").data == {"a": 16, "0x10": "v"}


# --- merge keys ----------------------------------------------------------------------------


def test_merge_key_own_keys_win() -> None:
    data = parse_document("b: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n  z: 4\n").data
    assert data["m"] == {"x": 1, "y": 3, "z": 4}
    assert list(data["m"]) == ["x", "y", "z"]


def test_merge_list_earlier_wins() -> None:
    text = "a: &a {k: a}\nb: &b {k: b, j: b}\nm:\n  <<: [*a, *b]\n"
    assert parse_document(text).data["m"] == {"k": "a", "j": "b"}


def test_merged_key_positions() -> None:
    doc = parse_document("b: &b\n  x: 1\nm:\n  <<: *b\n  y: 3\n")
    assert doc.locate("/m/x") == (2, 3)
    assert doc.locate("/m/y") == (5, 3)


@pytest.mark.parametrize("value", ["1", "[1]", "[]", "[{a: 1}, 2]"])
def test_bad_merge(value: str) -> None:
    problem = problem_of(f"m:\n  <<: {value}\n")
    assert problem.rule == "document-bad-merge"
    assert problem.line == 2


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert parse_document("'<<': 1").data == {"<<": 1}


# --- positions -----------------------------------------------------------------------------

YAML_TEXT = """\
asyncapi: 2.6.0
channels:
  /rooms/{id}:
    subscribe:
      message:
        payload: {type: object, required: [a, b]}
  a~b:
    x: 1
tags:
  - name: one
  - name: two
    description: second
"""


@pytest.mark.parametrize(
    ("pointer", "position"),
    [
        ("", (1, 1)),
        ("/asyncapi", (1, 1)),
        ("/channels", (2, 1)),
        ("/channels/~1rooms~1{id}", (3, 3)),
        ("/channels/~1rooms~1{id}/subscribe/message/payload", (6, 9)),
        ("/channels/~1rooms~1{id}/subscribe/message/payload/type", (6, 19)),
        ("/channels/~1rooms~1{id}/subscribe/message/payload/required/1", (6, 47)),
        ("/channels/a~0b/x", (8, 5)),
        ("/tags/0", (10, 5)),
        ("/tags/1", (11, 5)),
        ("/tags/1/description", (12, 5)),
        # missing: nearest existing ancestor
        ("/tags/2", (9, 1)),
        ("/tags/01", (9, 1)),
        ("/tags/x", (9, 1)),
        ("/tags/1/nope/deeper", (11, 5)),
        ("/nope", (1, 1)),
        ("/asyncapi/deeper", (1, 1)),
        ("not a pointer", (1, 1)),
    ],
)
def test_yaml_positions(pointer: str, position: tuple[int, int]) -> None:
    assert parse_document(YAML_TEXT).locate(pointer) == position


JSON_TEXT = """\
{
  "asyncapi": "2.6.0",
  "channels": {
    "/rooms/{id}": {"subscribe": {"message": {"payload": {"type": "object"}}}},
    "a~b": {"x": [1, {"y": "\\"]}"}, [3]]}
  },
  "empty": {},
  "list": []
}
"""


@pytest.mark.parametrize(
    ("pointer", "position"),
    [
        ("", (1, 1)),
        ("/asyncapi", (2, 3)),
        ("/channels", (3, 3)),
        ("/channels/~1rooms~1{id}", (4, 5)),
        ("/channels/~1rooms~1{id}/subscribe/message/payload/type", (4, 59)),
        ("/channels/a~0b/x", (5, 13)),
        ("/channels/a~0b/x/0", (5, 19)),
        ("/channels/a~0b/x/1/y", (5, 23)),
        ("/channels/a~0b/x/2", (5, 37)),
        ("/channels/a~0b/x/2/0", (5, 38)),
        ("/empty", (7, 3)),
        ("/empty/x", (7, 3)),
        ("/list/0", (8, 3)),
        ("/nope", (1, 1)),
    ],
)
def test_json_positions(pointer: str, position: tuple[int, int]) -> None:
    assert parse_document(JSON_TEXT).locate(pointer) == position


def test_positions_count_characters_not_bytes() -> None:
    assert parse_document("é: 1\nk: {ü: 1, x: 2}").locate("/k/x") == (2, 11)
    assert parse_document('{"é": 1, "x": 2}').locate("/x") == (1, 10)


def test_aliased_collection_positions_point_at_the_anchor() -> None:
    doc = parse_document("a: &x\n  k: 1\nb: *x\n")
    assert doc.locate("/b") == (3, 1)
    assert doc.locate("/b/k") == (2, 3)


def test_no_positions_for_data() -> None:
    doc = document_from_data({"a": 1}, name="built")
    assert doc.locate("") is None
    assert doc.locate("/a") is None
    assert (doc.name, doc.uri) == ("built", None)


def test_positions_survive_a_mutated_tree() -> None:
    doc = parse_document("a: [1, 2]\n")
    doc.data["a"].append(3)
    assert doc.locate("/a/2") == (1, 1)


def test_json_positions_after_the_data_changed() -> None:
    doc = parse_document('{"a": [1, {"b": 2}], "c": {"d": 3}, "e": 4}')
    doc.data["a"].pop()
    doc.data["c"] = [5]
    del doc.data["e"]
    assert doc.locate("/a/0") == (1, 8)
    assert doc.locate("/a/1/b") == (1, 2)
    assert doc.locate("/c/0") == (1, 22)


# --- errors --------------------------------------------------------------------------------


def test_yaml_syntax_error_has_position() -> None:
    problem = problem_of("a:\n  b: [1, 2\n")
    assert problem.rule == "document-syntax"
    assert problem.line is not None
    assert problem.line >= 2


def test_yaml_bad_indentation() -> None:
    problem = problem_of("a: 1\n b: 2\n")
    assert (problem.rule, problem.line) == ("document-syntax", 2)


def test_json_syntax_error_has_position() -> None:
    problem = problem_of('{"a": 1,\n "b": }')
    assert (problem.rule, problem.line, problem.column) == ("document-syntax", 2, 7)


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[-Infinity]"])
def test_json_non_numbers_refused(text: str) -> None:
    assert problem_of(text).rule == "document-syntax"


def test_json_that_is_yaml_flow_is_still_json() -> None:
    assert problem_of("{a: 1}").rule == "document-syntax"


@pytest.mark.parametrize(
    "text",
    [
        "v: !!int abc",
        "v: !!float x",
        "v: !!bool maybe",
        "v: !!int ''",
        # YAML 1.1 forms that the YAML 1.2 core schema does not have
        "v: !!bool yes",
        "v: !!int 1_000",
        "v: !!int 0b101",
        "v: !!float 1:20.5",
    ],
)
def test_scalar_that_does_not_fit_its_tag(text: str) -> None:
    problem = problem_of(text)
    assert (problem.rule, problem.pointer, problem.line, problem.column) == (
        "document-syntax",
        "/v",
        1,
        4,
    )


def test_yaml_duplicate_key() -> None:
    problem = problem_of("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert (problem.rule, problem.pointer, problem.line, problem.column) == (
        "document-duplicate-key",
        "/a/b",
        4,
        3,
    )


def test_yaml_duplicate_key_spelled_differently() -> None:
    assert problem_of("1: a\n'1': b\n").rule == "document-duplicate-key"


def test_yaml_duplicate_key_in_flow_mapping_in_list() -> None:
    problem = problem_of("l:\n  - x\n  - {k: 1, k: 2}\n")
    assert (problem.pointer, problem.line, problem.column) == ("/l/1/k", 3, 12)


def test_yaml_duplicate_merge_key() -> None:
    assert problem_of("a: &a {x: 1}\nm:\n  <<: *a\n  <<: *a\n").rule == "document-duplicate-key"


def test_json_duplicate_key() -> None:
    problem = problem_of('{"a": {"b": 1, "c": [{"d": 1}, {"d": 2, "d": 3}]}}')
    assert (problem.rule, problem.pointer, problem.line, problem.column) == (
        "document-duplicate-key",
        "/a/c/1/d",
        1,
        41,
    )


def test_json_duplicate_key_written_with_escapes() -> None:
    problem = problem_of('{\n"a": 1,\n"\\u0061": 2}')
    assert (problem.pointer, problem.line, problem.column) == ("/a", 3, 1)


@pytest.mark.parametrize(
    "text",
    ["? [a]\n: 1\n", "x: {[a]: 1}\n", "- ? [a]\n  : 1\n", "? {a: 1}\n: 1\n", "a: &s [1]\n*s : 2\n"],
)
def test_complex_key(text: str) -> None:
    assert problem_of(text).rule == "document-complex-key"


@pytest.mark.parametrize("text", ["a: 1\n---\nb: 2\n", "--- a\n--- b\n", "a\n...\n---\nb\n"])
def test_multiple_documents(text: str) -> None:
    problem = problem_of(text)
    assert problem.rule == "document-multiple-documents"
    assert problem.line is not None


def test_one_explicit_document_is_fine() -> None:
    assert parse_document("%YAML 1.1\n---\na: 1\n...\n").data == {"a": 1}


@pytest.mark.parametrize(
    "text", ["", "   \n\n", "# only a comment\n", "---\n", "--- \n...\n", b"", b"\xef\xbb\xbf"]
)
def test_empty(text: str | bytes) -> None:
    assert problem_of(text).rule == "document-empty"


def test_null_document_is_not_empty() -> None:
    assert parse_document("null").data is None


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object:os.system x",
        "a: !!python/object/apply:os.system ['true']",
        "a: !!python/name:os.system",
        "!!python/object:__main__.X {a: 1}",
        "a: !<tag:yaml.org,2002:python/object/new:os.system> [x]",
        "a: !!python/tuple [1, 2]",
    ],
)
def test_python_tags_are_refused(text: str) -> None:
    problem = problem_of(text)
    assert problem.rule == "document-unsafe-tag"
    assert "unsafe tag" in problem.message


@pytest.mark.parametrize(
    "text",
    ["a: !custom x", "a: !!set {x}", "a: !!omap [{a: 1}]", "a: !!seq {x: 1}", "a: !!map [1]"],
)
def test_other_tags_are_refused(text: str) -> None:
    problem = problem_of(text)
    assert (problem.rule, problem.pointer) == ("document-unsafe-tag", "/a")


def test_undefined_alias() -> None:
    problem = problem_of("a: 1\nb: *nope\n")
    assert (problem.rule, problem.pointer, problem.line, problem.column) == (
        "document-bad-alias",
        "/b",
        2,
        4,
    )


def test_recursive_alias() -> None:
    problem = problem_of("a: &x\n  b: [*x]\n")
    assert problem.rule == "document-bad-alias"
    assert "contains it" in problem.message


# --- encodings -----------------------------------------------------------------------------


def test_utf8_bom_is_skipped() -> None:
    assert parse_document(b"\xef\xbb\xbfa: 1").data == {"a": 1}
    assert parse_document(b'\xef\xbb\xbf{"a": 1}').format == "json"
    assert parse_document("\ufeffa: 1").data == {"a": 1}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-be", "utf-32-le"])
def test_utf16_and_utf32_with_bom(encoding: str) -> None:
    raw = "\ufeffa: é\n".encode(encoding)
    assert parse_document(raw).data == {"a": "é"}


def test_utf16_without_bom_is_refused() -> None:
    assert problem_of("a: 1".encode("utf-16-le")).rule == "document-encoding"


def test_invalid_utf8_names_offset_line_and_column() -> None:
    problem = problem_of(b"a: 1\nbb: \xc3\x28\n")
    assert (problem.rule, problem.line, problem.column) == ("document-encoding", 2, 5)
    assert "byte offset 9" in problem.message


def test_invalid_utf16() -> None:
    assert problem_of(b"\xff\xfea\x00\x00\xd8").rule == "document-encoding"


@pytest.mark.parametrize("text", ["a: 1\nb: x\x00y\n", b"a: 1\nb: x\x00y\n", '{"a":\n "x\x00"}'])
def test_nul_is_refused(text: str | bytes) -> None:
    problem = problem_of(text)
    assert (problem.rule, problem.line) == ("document-encoding", 2)


@pytest.mark.parametrize(
    "text", ["a: \ud800", '["\\ud800"]', '{"k": {"\\udc00": 1}}', 'a: "\\ud800"']
)
def test_unpaired_surrogates_are_refused(text: str) -> None:
    assert problem_of(text).rule in {"document-encoding", "document-syntax"}


def test_paired_surrogate_escape_is_fine() -> None:
    assert parse_document('["\\ud83d\\ude00"]').data == ["\U0001f600"]


@pytest.mark.parametrize("text", ["a: \x07", "a: \x1b[31m"])
def test_control_characters_are_refused(text: str) -> None:
    assert problem_of(text).rule == "document-syntax"


# --- files ---------------------------------------------------------------------------------


def test_read_document(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "api file.yaml"
    path.write_bytes(b"\xef\xbb\xbfa:\n  b: 1\n")
    doc = read_document(path)
    assert doc.data == {"a": {"b": 1}}
    assert doc.name == str(path)
    assert doc.uri == path.as_uri()
    assert doc.uri is not None
    assert doc.uri.startswith("file:///")
    assert doc.locate("/a/b") == (2, 3)


def test_read_document_relative_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text('{"a": 1}')
    doc = read_document("a.json")
    assert (doc.name, doc.uri, doc.format) == ("a.json", (tmp_path / "a.json").as_uri(), "json")


def test_read_errors_name_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(DocumentError) as caught:
        read_document(path)
    assert caught.value.problems[0].file == str(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_path(tmp_path: pathlib.Path, make: str) -> None:
    path = tmp_path / "x.yaml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(DocumentError) as caught:
        read_document(path)
    (problem,) = caught.value.problems
    assert problem.rule == "document-unreadable"
    assert problem.file == str(path)


def test_file_over_the_byte_limit(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 2000)
    with pytest.raises(DocumentError) as caught:
        read_document(path, limits=Limits(max_bytes=1000))
    assert caught.value.problems[0].rule == "document-too-large"


# --- hostile input -------------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb() -> None:
    problem = problem_of(billion_laughs())
    assert problem.rule == "document-alias-bomb"
    assert problem.line is not None


def test_alias_bomb_through_merge_keys() -> None:
    keys = ", ".join(f"k{i}: {i}" for i in range(1000))
    lines = [f"m0: &m0 {{{keys}}}"]
    lines += [f"m{i}: {{<<: [{', '.join(['*m0'] * 1)}]}}" for i in range(1, 200)]
    assert problem_of("\n".join(lines), Limits(max_nodes=100_000)).rule == "document-alias-bomb"


def test_aliases_within_the_budget_are_fine() -> None:
    data = parse_document(billion_laughs(3)).data
    assert len(data["l3"]) == 10
    assert data["l3"][0][0][0] == ["lol"] * 10


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "a: " + "[" * 100_000,
        "a: " + "{a: " * 100_000,
        "- " * 100_000 + "x",
    ],
    ids=["json-open", "json-closed", "json-objects", "yaml-flow", "yaml-flow-map", "yaml-block"],
)
def test_deep_nesting(text: str) -> None:
    assert problem_of(text).rule == "document-too-deep"


def test_depth_limit_is_exact() -> None:
    limits = Limits(max_depth=3)
    assert parse_document("[[[1]]]", limits=limits).data == [[[1]]]
    assert parse_document("a: {b: [1]}", limits=limits).data == {"a": {"b": [1]}}
    assert problem_of("[[[[1]]]]", limits).rule == "document-too-deep"
    assert problem_of("a: {b: [[1]]}", limits).rule == "document-too-deep"


def test_node_limit_without_aliases() -> None:
    limits = Limits(max_nodes=100)
    assert problem_of("[" + ",".join(["1"] * 200) + "]", limits).rule == "document-too-large"
    assert problem_of("- 1\n" * 200, limits).rule == "document-too-large"


def test_50_mb_string_is_refused() -> None:
    huge = "a: " + "x" * (50 * 1024 * 1024)
    assert problem_of(huge).rule == "document-too-large"
    assert problem_of(huge.encode()).rule == "document-too-large"


def test_byte_limit_counts_utf8_bytes() -> None:
    text = "a: " + "é" * 600
    assert problem_of(text, Limits(max_bytes=1000)).rule == "document-too-large"
    assert parse_document(text, limits=Limits(max_bytes=1300)).data == {"a": "é" * 600}


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=0)


# --- from data, to text --------------------------------------------------------------------


def test_document_from_data_copies_to_plain_data() -> None:
    inner: dict[str, Any] = {"k": (1, 2)}
    source = types.MappingProxyType({"a": inner, "b": [True, None, 1.5, "s"]})
    doc = document_from_data(source)
    assert doc.data == {"a": {"k": [1, 2]}, "b": [True, None, 1.5, "s"]}
    assert type(doc.data) is dict
    inner["k"] = ()
    assert doc.data["a"]["k"] == [1, 2]


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ({"a": {1: "x"}}, "/a/1"),
        ({"a": [b"bytes"]}, "/a/0"),
        ({"a": {"b": {1, 2}}}, "/a/b"),
        ({"a/b": object()}, "/a~1b"),
        ({"s": "\ud800"}, "/s"),
    ],
)
def test_document_from_data_refuses_other_data(data: dict[str, Any], pointer: str) -> None:
    with pytest.raises(DocumentError) as caught:
        document_from_data(data)
    (problem,) = caught.value.problems
    assert (problem.rule, problem.pointer) == ("document-unrepresentable", pointer)


def test_cycles_are_refused() -> None:
    data: dict[str, Any] = {"a": []}
    data["a"].append(data)
    with pytest.raises(DocumentError) as caught:
        dump_document(data)
    assert caught.value.problems[0].pointer == "/a/0"


def test_shared_subtrees_are_not_cycles() -> None:
    shared = {"x": 1}
    assert dump_document({"a": shared, "b": [shared]}) == "a:\n  x: 1\nb:\n- x: 1\n"


def test_dump_yaml_shape() -> None:
    data = {
        "b": "ünïcödé",
        "a": ["1.0", "yes", "null", "2020-01-01", "0x10", "~", ""],
        "w": "w " * 200,
    }
    text = dump_document(data)
    assert text.splitlines()[:3] == ["b: ünïcödé", "a:", "- '1.0'"]
    assert "- 'yes'" in text
    assert "- '2020-01-01'" in text
    assert "- '0x10'" in text
    assert len(text.splitlines()) == 10
    assert parse_document(text).data == data


def test_dump_multiline_strings_as_literal_blocks() -> None:
    text = dump_document({"description": "line one\nline two\n"})
    assert text == "description: |\n  line one\n  line two\n"


def test_dump_json() -> None:
    assert dump_document({"é": [1, None]}, "json") == '{\n  "é": [\n    1,\n    null\n  ]\n}\n'


def test_dump_json_refuses_nan() -> None:
    with pytest.raises(DocumentError):
        dump_document({"a": math.nan}, "json")


def test_dump_unknown_format() -> None:
    with pytest.raises(ValueError, match="xml"):
        dump_document({}, "xml")


def test_dump_deep_data_without_recursion() -> None:
    data: Any = 1
    for _ in range(500):
        data = {"a": [data]}
    with pytest.raises(DocumentError):
        dump_document(data)
    data = 1
    for _ in range(255):
        data = {"a": [data]}
    assert same(parse_document(dump_document(data)).data, data)
    assert same(parse_document(dump_document(data, "json")).data, data)


# --- YAML 1.2 reading, written back for YAML 1.1 and YAML 1.2 readers ----------------------

# Plain scalars that a YAML 1.1 reader (PyYAML; y and n are YAML 1.1 booleans too) reads as
# something else than the YAML 1.2 core schema does.
MISREAD_BY_YAML11 = [
    "on",
    "Off",
    "yes",
    "NO",
    "y",
    "N",
    "2024-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "0755",
    "-012",
    "09",
    "0o17",
    "1_000",
    "1_000.5",
    "0b101",
    "1:20",
    "190:20:30.5",
    "1e3",
    "1.0e3",
    "-.5",
    "+.5",
]
UNREADABLE_BY_YAML11 = ["=", "<<"]  # PyYAML's safe_load refuses them as values
TEXT_KEYS = {text for text, value, _ in YAML12_PLAIN if isinstance(value, str)}


def yaml11(text: str) -> Any:
    return yaml.safe_load(text)


@pytest.mark.parametrize("text", MISREAD_BY_YAML11 + UNREADABLE_BY_YAML11)
def test_an_unchanged_plain_scalar_is_written_as_it_was_read(text: str) -> None:
    source = f"v: {text}\nlist:\n- {text}\n- [{text}]\n"
    doc = parse_document(source)
    assert dump_document(doc.styled_data()) == f"v: {text}\nlist:\n- {text}\n- - {text}\n"
    assert dump_document(doc.data) != dump_document(doc.styled_data())


@pytest.mark.parametrize(
    "text", [*MISREAD_BY_YAML11, "=", "true", "~", "null", "12", "0x1F", "1.5", ".inf", "200"]
)
def test_an_unchanged_plain_key_is_written_as_it_was_read(text: str) -> None:
    source = f"{text}: v\nm:\n  {text}: v\n"
    data = parse_document(source).styled_data()
    assert list(data) == [text, "m"]
    assert dump_document(data) == source


def test_readers_read_an_export_as_they_read_the_source() -> None:
    source = "".join(f"k{i}: {text}\n{text}: k{i}\n" for i, text in enumerate(MISREAD_BY_YAML11))
    exported = dump_document(parse_document(source).styled_data())
    assert same(parse_document(exported).data, parse_document(source).data)
    assert yaml11(exported) == yaml11(source)


def test_the_official_readers_read_an_export_as_they_read_the_source() -> None:
    # Keys only where the official reader's key is the text: it spells a number key as
    # JavaScript writes the number (0755: is "755"); ours keeps the text.
    source = "".join(
        f"k{i}: {text}\n" + (f"{text}: k{i}\n" if text != "<<" and text in TEXT_KEYS else "")
        for i, text in enumerate(MISREAD_BY_YAML11 + UNREADABLE_BY_YAML11)
    )
    exported = dump_document(parse_document(source).styled_data())
    (official, jsyaml), (official_export, jsyaml_export) = read_with_javascript([source, exported])
    assert same_reading(official_export, official)
    assert same_reading(jsyaml_export, jsyaml)
    assert same_reading(official, as_javascript(parse_document(source).data))


@pytest.mark.parametrize(
    "text",
    dict.fromkeys(
        [
            *MISREAD_BY_YAML11,
            *UNREADABLE_BY_YAML11,
            *(text for text, value, _ in YAML12_PLAIN if not isinstance(value, str)),
        ]
    ),
)
def test_a_new_string_that_a_reader_types_is_quoted(text: str) -> None:
    exported = dump_document({"v": text, text: "k", "list": [text]})
    assert exported.count(f"'{text}'") == 3
    assert same(parse_document(exported).data, {"v": text, text: "k", "list": [text]})
    assert yaml11(exported) == {"v": text, text: "k", "list": [text]}


def test_a_new_value_replacing_a_plain_scalar_is_written_as_new() -> None:
    data = parse_document("v: on\nw: 0755\n").styled_data()
    data["v"] = "on"
    data["w"] = 755
    assert dump_document(data) == "v: 'on'\nw: 755\n"


def test_numbers_keep_their_text_only_when_yaml11_reads_it_otherwise() -> None:
    data = parse_document("a: 0x1F\nb: +12\nc: 1.50\nd: 00\ne: 0755\nf: 1e3\n").styled_data()
    assert dump_document(data) == "a: 31\nb: 12\nc: 1.5\nd: 0\ne: 0755\nf: 1e3\n"


def test_styled_data_is_still_plain_data() -> None:
    doc = parse_document("a: on\nb: 0755\nc: 1e3\non: x\n")
    assert same(doc.data, {"a": "on", "b": 755, "c": 1000.0, "on": "x"})
    data = doc.styled_data()
    assert data == doc.data
    assert [type(v) for v in data.values()] != [str, int, float, str]
    assert (hash(data["a"]), hash(data["b"]), hash(data["c"])) == (hash("on"), 755, 1000.0)
    assert (repr(data["a"]), repr(data["b"]), repr(data["c"])) == ("'on'", "755", "1000.0")
    assert (f"{data['a']}", f"{data['b']:04d}", str(data["c"])) == ("on", "0755", "1000.0")
    assert json.dumps(data) == '{"a": "on", "b": 755, "c": 1000.0, "on": "x"}'
    assert dump_document(data, "json") == (
        '{\n  "a": "on",\n  "b": 755,\n  "c": 1000.0,\n  "on": "x"\n}\n'
    )
    for copy in (
        pickle.loads(pickle.dumps(data)),  # noqa: S301 - our own data
        pickle.loads(pickle.dumps(data, protocol=0)),  # noqa: S301
        copy_module.deepcopy(data),
    ):
        assert same(copy, data)
        assert dump_document(copy) == dump_document(data) == "a: on\nb: 0755\nc: 1e3\non: x\n"
    # As plain JSON data (what validators are given) they are plain values again.
    assert same(document_from_data(data).data, doc.data)
    assert same(json.loads(json.dumps(data)), doc.data)


def test_aliases_and_merges_keep_the_styles() -> None:
    source = (
        "a: &s on\nb: *s\n*s : k\n"
        "l: &l [yes, 0755]\nm: *l\n"
        "base: &b {off: 1e3, k: y, q: 2024-01-01}\n"
        "merged:\n  <<: *b\n  k: 12\n  q: '2024-01-01'\n"
    )
    doc = parse_document(source)
    styled = doc.styled_data()
    assert styled == doc.data
    assert styled["l"] is styled["m"]  # shared, as in the data
    assert dump_document(styled) == (
        "a: on\nb: on\non: k\nl:\n- yes\n- 0755\nm:\n- yes\n- 0755\n"
        "base:\n  off: 1e3\n  k: y\n  q: 2024-01-01\n"
        "merged:\n  off: 1e3\n  k: 12\n  q: '2024-01-01'\n"
    )


def test_styles_stand_only_for_the_values_they_were_read_as() -> None:
    doc = parse_document("v: on\nl: [on, off]\n")
    doc.data["v"] = "yes"
    doc.data["l"].insert(0, "off")
    assert dump_document(doc.styled_data()) == "v: 'yes'\nl:\n- 'off'\n- 'on'\n- 'off'\n"
    assert dump_document(parse_document("v: on\n").styled_data()) == "v: on\n"


def test_the_reader_cannot_read_an_integer_too_long_for_python() -> None:
    problem = problem_of("v: " + "1" * 5000)
    assert (problem.rule, problem.line, problem.column) == ("document-syntax", 1, 4)
    assert "digits" in problem.message
    assert len(problem.message) < 200


# --- properties ----------------------------------------------------------------------------

AWKWARD = st.sampled_from(
    [
        "",
        " ",
        "~",
        "null",
        "yes",
        "No",
        "on",
        "1.0",
        "1e3",
        "0x1F",
        "0o7",
        "012",
        "1_0",
        "1:30",
        ".inf",
        "-.NaN",
        "2020-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "<<",
        "=",
        "- x",
        "? x",
        "a: b",
        "#c",
        "&a",
        "*a",
        "!t",
        "|",
        ">",
        "%",
        "@",
        "`",
        "'",
        '"',
        "\n",
        "\r\n",
        " \n ",
        "a\n",
        "\ta",
        "a ",
        "\x85",
        "\u2028",
        "\ufeff",
        "\x00",
        "\x7f",
        "é",
        "\U0001f600",
        "---",
        "...",
        "{",
        "[",
        "}",
        ",",
        "\\",
    ]
)
TEXT = st.one_of(
    AWKWARD, st.text(st.characters(exclude_categories=["Cs"])), st.lists(AWKWARD).map("".join)
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(TEXT, children, max_size=5)
    ),
    max_leaves=30,
)
CONTAINERS = st.one_of(
    st.lists(JSON_VALUES, max_size=5), st.dictionaries(TEXT, JSON_VALUES, max_size=5)
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=JSON_VALUES)
def test_yaml_round_trip(data: Any) -> None:
    assert same(parse_document(dump_document(data)).data, data)


# Texts that YAML 1.1, YAML 1.2 or both read as something else than a string, and pieces of them.
AMBIGUOUS = st.one_of(
    st.sampled_from([*MISREAD_BY_YAML11, *UNREADABLE_BY_YAML11, *(t for t, _, _ in YAML12_PLAIN)]),
    st.text(alphabet="0123456789_:.+-eEoxbTtyYnN~=<", min_size=1, max_size=8),
)
SCALAR_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), AMBIGUOUS, TEXT
)


def same_for_yaml11(a: Any, b: Any) -> bool:
    """Equality of two safe_load readings, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_for_yaml11(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(SCALAR_VALUES, min_size=1, max_size=4), keys=st.lists(AMBIGUOUS, max_size=3))
def test_new_scalars_read_back_the_same_with_yaml12_and_yaml11(
    values: list[Any], keys: list[str]
) -> None:
    data = {"list": values, **dict.fromkeys(keys, "v")}
    text = dump_document(data)
    assert same(parse_document(text).data, data)
    assert same_for_yaml11(yaml11(text), data)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=AMBIGUOUS)
@example(text="0x_")
def test_a_plain_scalar_reads_alike_after_export(text: str) -> None:
    source = f"v: {text}\n{text}: k\n"
    try:
        doc = parse_document(source)
    except DocumentError:
        assume(False)
    assume(list(doc.data) == ["v", text] and not isinstance(doc.data["v"], dict | list))
    exported = dump_document(doc.styled_data())
    assert same(parse_document(exported).data, doc.data)
    try:
        before = yaml11(source)
    except (yaml.YAMLError, ValueError) as refused:  # PyYAML raises ValueError on `0x_`
        with pytest.raises(type(refused)):
            yaml11(exported)
    else:
        assert same_for_yaml11(yaml11(exported), before)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=CONTAINERS.filter(lambda d: "Infinity" not in json.dumps(d)))
def test_json_round_trip(data: Any) -> None:
    doc = parse_document(dump_document(data, "json"))
    assert doc.format == "json"
    assert same(doc.data, data)


YAMLISH = st.lists(
    st.sampled_from(
        [
            "a",
            "b",
            ":",
            " ",
            "  ",
            "\n",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&x",
            "*x",
            "<<",
            "? ",
            "!!str",
            "!t",
            "'",
            '"',
            "#",
            "---",
            "...",
            "|",
            ">",
            "\t",
            "1",
            "0x",
            "é",
            "%YAML 1.1",
            "\\",
            "\x00",
            "\ufeff",
        ]
    )
).map("".join)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(st.text(), YAMLISH, st.binary(), YAMLISH.map(str.encode)))
def test_arbitrary_input_raises_only_document_error(text: str | bytes) -> None:
    try:
        doc = parse_document(text)
    except DocumentError as exc:
        problems: tuple[Problem | None, ...] = exc.problems
    else:
        problems = (None,)
        doc.locate("")
        doc.locate("/a/0")
    assert len(problems) == 1


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tag=st.sampled_from(["!!int", "!!float", "!!bool", "!!null", "!!str", "!!timestamp", "!"]),
    value=st.one_of(AWKWARD, st.text(st.sampled_from("0123456789_:.+-xobeE")), TEXT),
)
def test_explicit_tags_raise_only_document_error(tag: str, value: str) -> None:
    rules: set[str] = set()
    try:
        parse_document(f"v: {tag} {json.dumps(value)}\n")
    except DocumentError as exc:
        rules = {problem.rule for problem in exc.problems}
    assert rules <= {"document-syntax", "document-encoding"}


def test_yaml_dump_writes_emoji_as_they_are() -> None:
    data = {"description": "Street lights \U0001f303\nat night\n", "x": "\U0001f600"}
    text = dump_document(data)
    assert "\U0001f303" in text
    assert "\\U0001F303" not in text
    assert "description: |" in text
    assert parse_document(text).data == data
    awkward = {"x": "\x85\U0001f303"}  # PyYAML's own emitter cannot keep a NEL
    assert parse_document(dump_document(awkward)).data == awkward


def test_yaml_dump_falls_back_when_the_readable_emitter_garbles_keys() -> None:
    data = {" ": None, "\x85": None, "\U00010000": None}
    assert parse_document(dump_document(data)).data == data
