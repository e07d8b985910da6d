"""YAML 1.2 scalars through validation, import and export (fixtures/streetlights.yaml).

Documents mean what the official parser's YAML reader (YAML 1.2 core schema) says: ``on``, ``off``,
``yes``, ``no``, ``1_000`` and ``2024-01-01`` are strings, ``0755`` is 755.  An unchanged scalar
is exported as it was written, so YAML 1.1 readers (PyYAML's safe_load) and YAML 1.2 readers
read the export as they read the source; a new string that either would misread is quoted.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import attrs
import pytest
import yaml
from javascript_yaml import read_with_javascript, same_reading

from asyncapi_gw.asyncapi import dump_asyncapi, load_asyncapi, loads_asyncapi, validate_document
from asyncapi_gw.documents import parse_document, read_document

STREETLIGHTS = Path(__file__).resolve().parents[2] / "fixtures" / "streetlights.yaml"
MINIMAL = """\
asyncapi: 2.6.0
info: {title: Lights, version: 1.0.0}
channels:
  /lights:
    publish:
      message:
        payload: {type: string, enum: %s}
"""


def test_the_streetlights_pattern_is_valid() -> None:
    report = validate_document(STREETLIGHTS)
    assert report.errors == ()
    data = read_document(STREETLIGHTS).data
    message = data["channels"]["/lights/{lightId}/turn"]["publish"]["message"]
    assert message["payload"]["properties"]["command"]["enum"] == ["on", "off"]
    assert message["examples"][0]["payload"]["command"] == "on"
    assert (data["x-file-mode"], data["x-batch"], data["x-answers"]) == (755, "1_000", ["y", "n"])


def test_on_off_yes_no_are_four_values() -> None:
    assert validate_document(parse_document(MINIMAL % "[on, off, yes, no]")).errors == ()


def test_an_example_outside_an_on_off_enum_is_still_refused() -> None:
    text = STREETLIGHTS.read_text(encoding="utf-8").replace("command: on", "command: dim")
    report = validate_document(parse_document(text))
    assert [p.rule for p in report.errors] == ["asyncapi2-message-examples"]
    message = report.errors[0].message
    assert "dim" in message
    assert "on" in message
    assert "true" not in message.lower()  # the enum holds strings, not booleans


# The scalars whose lines an unchanged export must keep byte for byte.
KEPT_LINES = [
    "  x-released: 2024-01-01",
    "            command: on",
    "            mode: yes",
    "            day: 2024-01-01",
    "                on:",
    "              on: true",
    "              - on",
    "              - off",
    "              - yes",
    "              - no",
    "x-file-mode: 0755",
    "x-batch: 1_000",
    "- y",
    "- n",
]


def test_an_unchanged_export_writes_scalars_as_they_were_written() -> None:
    exported = dump_asyncapi(load_asyncapi(STREETLIGHTS))
    lines = exported.splitlines()
    for line in KEPT_LINES:
        assert line in lines
    assert "'" not in exported


def test_yaml11_and_yaml12_readers_read_the_export_as_they_read_the_source() -> None:
    source = STREETLIGHTS.read_text(encoding="utf-8")
    exported = dump_asyncapi(load_asyncapi(STREETLIGHTS))
    assert yaml.safe_load(exported) == yaml.safe_load(source)
    assert yaml.safe_load(exported)["x-file-mode"] == 493  # as YAML 1.1 reads the source
    assert parse_document(exported).data == read_document(STREETLIGHTS).data


def test_the_official_readers_read_the_export_as_they_read_the_source() -> None:
    source = STREETLIGHTS.read_text(encoding="utf-8")
    exported = dump_asyncapi(load_asyncapi(STREETLIGHTS))
    (official, jsyaml), (official_export, jsyaml_export) = read_with_javascript([source, exported])
    assert same_reading(official_export, official)
    assert same_reading(jsyaml_export, jsyaml)


def test_json_export_holds_the_values() -> None:
    exported = json.loads(dump_asyncapi(load_asyncapi(STREETLIGHTS), fmt="json"))
    assert exported == read_document(STREETLIGHTS).data
    assert exported["x-file-mode"] == 755


def test_copies_of_the_model_export_alike() -> None:
    api = load_asyncapi(STREETLIGHTS)
    expected = dump_asyncapi(api)
    for other in (copy.copy(api), attrs.evolve(api, version="1.0.0")):
        assert dump_asyncapi(other) == expected


def test_a_changed_api_keeps_what_did_not_change() -> None:
    api = load_asyncapi(STREETLIGHTS)
    status = api.topics[1]
    api = attrs.evolve(api, topics=(api.topics[0], attrs.evolve(status, description="on")))
    lines = dump_asyncapi(api).splitlines()
    assert "    description: 'on'" in lines
    for line in KEPT_LINES:
        assert line in lines


def test_new_strings_that_a_reader_would_type_are_quoted() -> None:
    api = load_asyncapi(STREETLIGHTS)
    api = attrs.evolve(api, version="2024-01-01", description="yes")
    exported = dump_asyncapi(api)
    assert "  version: '2024-01-01'" in exported.splitlines()
    assert "  description: 'yes'" in exported.splitlines()
    assert yaml.safe_load(exported)["info"]["version"] == "2024-01-01"
    assert "x-released: 2024-01-01" in exported


@pytest.mark.parametrize("name", ["yes", "2024-01-01", "on"])
def test_a_channel_key_keeps_its_style_when_another_channel_changes(name: str) -> None:
    api = loads_asyncapi(
        "asyncapi: 2.6.0\ninfo: {title: Lights, version: 1.0.0}\nchannels:\n"
        f"  {name}:\n    publish: {{}}\n  /other:\n    publish: {{}}\n"
    )
    assert [t.name for t in api.topics] == [name, "/other"]
    changed = attrs.evolve(api.topics[1], description="changed")
    exported = dump_asyncapi(attrs.evolve(api, topics=(api.topics[0], changed)))
    assert f"  {name}:" in exported.splitlines()
    assert parse_document(exported).data["channels"][name] == {"publish": {}}
