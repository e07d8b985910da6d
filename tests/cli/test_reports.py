"""``validate --format sarif|junit|github``, each checked by its consumer's rules.

SARIF against the official SARIF 2.1.0 JSON Schema (``data/``, see its README); JUnit XML read
by ``junitparser``; GitHub workflow commands parsed the way the Actions runner parses them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import junitparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncapi_gw.asyncapi import ValidationReport
from asyncapi_gw.asyncapi.rules import RULE_NAMES
from asyncapi_gw.cli import main
from asyncapi_gw.cli.reports import (
    describe_rule,
    github_lines,
    junit_xml,
    sarif_log,
)
from asyncapi_gw.errors import Problem, Severity, ValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
# A message no output format may pass through raw: control characters, an XML CDATA end,
# markup, a workflow command of its own on a new line, escapes that look already escaped.
HOSTILE = 'a\x01b\x1f]]><tag attr="x">&amp; %0A %25 ,:: \r\n::error::injected\ttab \ud7ff'


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a valid, an invalid (hostile channel name), an unsupported and
    a warning-only document; a missing file; and a document outside the directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "api").mkdir()
    shutil.copy(FIXTURES / "chatroom.yaml", tmp_path / "api" / "chat.yaml")
    (tmp_path / "api" / "bad doc.yaml").write_text(
        "asyncapi: 2.6.0\n"
        "info: {title: Bad}\n"
        'channels:\n  "a?\\x01]]><&b":\n    subscribe:\n      message: {payload: {}}\n'
    )
    (tmp_path / "api" / "v4.yaml").write_text("asyncapi: 4.0.0\ninfo: {title: T, version: '1'}\n")
    (tmp_path / "api" / "warn.yaml").write_text(
        "asyncapi: 2.6.0\ninfo: {title: W, version: '1'}\nchannels:\n  /a:\n"
        "    bindings: {ws: {method: PUT}}\n    subscribe: {message: {payload: {}}}\n"
    )
    return tmp_path


FILES = ["api/chat.yaml", "api/bad doc.yaml", "api/v4.yaml", "api/warn.yaml", "api/missing.yaml"]


# ---------------------------------------------------------------- SARIF


def test_sarif_is_one_valid_run_covering_every_file(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "other.yaml"
    outside.write_text("asyncapi: 2.6.0\ninfo: {title: O}\nchannels: {}\n")
    code, out, _ = run(capsys, "validate", "--format", "sarif", *FILES, str(outside))
    assert code == 2  # a missing file
    log = json.loads(out)
    jsonschema.Draft202012Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(log)
    assert log["version"] == "2.1.0"
    [run_] = log["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "asyncapi-gw"
    assert driver["version"]
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["help"]["text"]
        levels = {r["level"] for r in run_["results"] if r["ruleId"] == rule["id"]}
        expected = "error" if "error" in levels else "warning"
        assert rule["defaultConfiguration"]["level"] == expected
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.as_uri() + "/"
    uris = [a["location"]["uri"] for a in run_["artifacts"]]
    assert uris[:5] == [
        "api/chat.yaml",
        "api/bad%20doc.yaml",
        "api/v4.yaml",
        "api/warn.yaml",
        "api/missing.yaml",
    ]
    assert uris[5] == outside.as_uri()
    results = run_["results"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        [location] = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert run_["artifacts"][artifact["index"]]["location"]["uri"] == artifact["uri"]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_file.setdefault(uri, []).append(result)
    assert "api/chat.yaml" not in by_file
    bad = by_file["api/bad%20doc.yaml"]
    assert {r["ruleId"] for r in bad} == {
        "asyncapi-schema",
        "asyncapi2-channel-no-query-nor-fragment",
    }
    assert all(r["level"] == "error" for r in bad)
    named = next(r for r in bad if r["ruleId"] == "asyncapi2-channel-no-query-nor-fragment")
    region = named["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (4, 3)
    assert "\x01]]><&b" in named["message"]["text"]
    [unsupported] = by_file["api/v4.yaml"]
    assert (unsupported["ruleId"], unsupported["level"]) == ("asyncapi-version", "error")
    [warning] = by_file["api/warn.yaml"]
    assert (warning["ruleId"], warning["level"]) == ("asyncapi-binding", "warning")
    [missing] = by_file["api/missing.yaml"]
    assert missing["ruleId"] == "document-unreadable"
    assert "region" not in missing["locations"][0]["physicalLocation"]  # no line: no region
    [other] = by_file[outside.as_uri()]
    assert "uriBaseId" not in other["locations"][0]["physicalLocation"]["artifactLocation"]


def test_sarif_of_valid_files_has_no_results(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, _ = run(capsys, "validate", "--format", "sarif", "api/chat.yaml")
    assert code == 0
    log = json.loads(out)
    jsonschema.Draft202012Validator(SARIF_SCHEMA).validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []


def test_every_rule_is_described() -> None:
    for rule in (
        *RULE_NAMES,
        "asyncapi-schema",
        "asyncapi-binding",
        "asyncapi-ref",
        "asyncapi-ref-placement",
        "asyncapi-version",
        "document-syntax",
    ):
        short, text, _ = describe_rule(rule)
        assert short != rule
        assert text != rule


@pytest.mark.skipif(
    not os.environ.get("SARIF_MULTITOOL"),
    reason="set SARIF_MULTITOOL to the SARIF Multitool (npm "
    "@microsoft/sarif-multitool-linux) to check with Microsoft's validator",
)
def test_the_sarif_multitool_accepts_the_log(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    _, out, _ = run(capsys, "validate", "--format", "sarif", *FILES)
    log = project / "out.sarif"
    log.write_text(out, encoding="utf-8")
    report = project / "validation.sarif"
    subprocess.run(
        [os.environ["SARIF_MULTITOOL"], "validate", str(log), "-o", str(report), "--quiet"],
        check=False,
        capture_output=True,
        timeout=120,
    )
    findings = json.loads(report.read_text(encoding="utf-8-sig"))["runs"][0]["results"]
    assert [r for r in findings if r.get("level", "warning") == "error"] == []


# ---------------------------------------------------------------- JUnit


def _cases(xml: str) -> dict[str, junitparser.TestCase]:
    path_free = junitparser.JUnitXml.fromstring(xml)
    return {case.name: case for suite in path_free for case in suite}


def test_junit_has_one_test_case_per_file_read_by_junitparser(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, _ = run(capsys, "validate", "--format", "junit", *FILES)
    assert code == 2
    ET.fromstring(out.encode())  # well-formed, with the hostile channel name inside
    xml = junitparser.JUnitXml.fromstring(out)
    [suite] = list(xml)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 1, 2, 0)
    assert (xml.tests, xml.failures, xml.errors) == (5, 1, 2)
    cases = _cases(out)
    assert list(cases) == FILES
    assert cases["api/chat.yaml"].is_passed
    assert cases["api/warn.yaml"].is_passed
    assert "warning: api/warn.yaml:5:" in (cases["api/warn.yaml"].system_out or "")
    [failure] = cases["api/bad doc.yaml"].result
    assert isinstance(failure, junitparser.Failure)
    lines = (failure.text or "").splitlines()
    assert failure.message == f"api/bad doc.yaml: AsyncAPI 2.6.0 invalid ({len(lines)} errors)"
    assert any(line.startswith("api/bad doc.yaml:4:3: /channels/") for line in lines)
    assert "\\u0001]]><&b" in (failure.text or "")  # a control character XML cannot hold
    for name, rule in (
        ("api/v4.yaml", "asyncapi-version"),
        ("api/missing.yaml", "document-unreadable"),
    ):
        [error] = cases[name].result
        assert isinstance(error, junitparser.Error)
        assert error.type == rule


def test_junit_fails_on_warnings_when_asked(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, _ = run(
        capsys, "validate", "--format", "junit", "--fail-on", "warning", "api/warn.yaml"
    )
    assert code == 1
    [failure] = _cases(out)["api/warn.yaml"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.type == "asyncapi-binding"
    assert "warning: api/warn.yaml:5:" in (failure.text or "")


def _report(message: str, file: str = "doc.yaml", **problem: Any) -> ValidationReport:
    found = Problem(pointer="/x", message=message, rule="asyncapi-schema", **problem)
    return ValidationReport(file=file, asyncapi="2.6.0", errors=(found,))


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(_TEXT, _TEXT)
def test_junit_is_well_formed_for_any_message_and_file(message: str, file: str) -> None:
    xml = junit_xml([(_report(message, file or "f"), file or "f")])
    root = ET.fromstring(xml.encode())
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("type") == "asyncapi-schema"
    [case] = _cases(xml).values()
    assert not case.is_passed


# ---------------------------------------------------------------- GitHub Actions


def _escapes(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return list(pairs)


# The Actions runner's unescaping (ActionCommand.UnescapeData / UnescapeProperty): each
# replacement in turn, '%25' last.
_RUNNER_DATA = _escapes(("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
_RUNNER_PROPERTY = _escapes(("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))


def _unescape(text: str, mappings: list[tuple[str, str]]) -> str:
    for token, replacement in mappings:
        text = text.replace(replacement, token)
    return text


def parse_command(line: str) -> tuple[str, dict[str, str], str] | None:
    """What the Actions runner reads from one output line (``ActionCommand.TryParseV2``)."""
    line = line.lstrip()
    if not line.startswith("::"):
        return None
    end = line.find("::", 2)
    if end < 0:
        return None
    info = line[2:end]
    name, _, rest = info.partition(" ")
    properties = {}
    for item in rest.strip().split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep and key and value:
            properties[key] = _unescape(value, _RUNNER_PROPERTY)
    return name, properties, _unescape(line[end + 2 :], _RUNNER_DATA)


def test_github_annotations(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, out, _ = run(capsys, "validate", "--format", "github", *FILES)
    assert code == 2
    commands = [parse_command(line) for line in out.splitlines()]
    assert None not in commands
    by_file: dict[str, list[tuple[str, dict[str, str], str]]] = {}
    for command in commands:
        assert command is not None
        by_file.setdefault(command[1]["file"], []).append(command)
    assert "api/chat.yaml" not in by_file
    bad = by_file["api/bad doc.yaml"]
    assert {c[0] for c in bad} == {"error"}
    named = next(c for c in bad if c[1]["title"] == "asyncapi2-channel-no-query-nor-fragment")
    assert (named[1]["line"], named[1]["col"]) == ("4", "3")
    assert "a?\x01]]><&b" in named[2]
    [(kind, properties, _)] = by_file["api/warn.yaml"]
    assert (kind, properties["title"]) == ("warning", "asyncapi-binding")
    [(kind, properties, _)] = by_file["api/missing.yaml"]
    assert kind == "error"
    assert "line" not in properties  # no line known: the file alone


# A file name in a folder under the working directory, which the annotation keeps as it is.
_NAME = _TEXT.filter(lambda name: "/" not in name and name not in ("", ".", ".."))


@given(_TEXT, _NAME, st.sampled_from([Severity.ERROR, Severity.WARNING]))
def test_github_commands_round_trip_any_message_and_file(
    message: str, name: str, severity: Severity
) -> None:
    file = f"api/{name}"
    found = Problem(
        pointer="/p", message=message, rule="r", line=3, column=4, severity=severity, file=file
    )
    report = ValidationReport(file=file, asyncapi="2.6.0", errors=(), warnings=(found,))
    [line] = github_lines(report, file, "/work")
    assert "\n" not in line
    assert "\r" not in line
    parsed = parse_command(line)
    assert parsed is not None
    kind, properties, data = parsed
    assert kind == severity.value
    assert properties == {"file": file, "line": "3", "col": "4", "title": "r"}
    assert data == f"/p: {message}"


def test_github_hostile_message_cannot_start_a_command() -> None:
    [line] = github_lines(_report(HOSTILE, "x,y:z.yaml", line=1, column=2), "x,y:z.yaml", "/")
    # One line; the data may hold "::" (the runner reads the first separator only), but no
    # line break that could start a command of its own.
    assert "\n" not in line
    assert "\r" not in line
    assert line.index("::", 2) == line.index(",title=asyncapi-schema::") + len(
        ",title=asyncapi-schema"
    )
    parsed = parse_command(line)
    assert parsed is not None
    assert parsed[1]["file"] == "x,y:z.yaml"
    assert parsed[2] == f"/x: {HOSTILE}"


def test_sarif_keeps_hostile_text_exactly() -> None:
    log = sarif_log([(_report(HOSTILE), "doc.yaml")], version="0", base="/")
    jsonschema.Draft202012Validator(SARIF_SCHEMA).validate(log)
    text = json.dumps(log)
    assert json.loads(text)["runs"][0]["results"][0]["message"]["text"] == f"/x: {HOSTILE}"


def test_the_command_line_module_runs_each_format() -> None:
    for fmt in ("github", "sarif", "junit"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "asyncapi_gw",
                "validate",
                "--format",
                fmt,
                str(FIXTURES / "chatroom.yaml"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr


def test_a_hostile_channel_name_cannot_forge_lines_of_the_text_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A channel name is raw text in a pointer and in some messages: a line break in it would
    # start a problem line of its own (a forged "warning:" or "error" that CI greps for).
    doc = tmp_path / "doc.yaml"
    doc.write_text(
        "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nservers: {}\nchannels:\n"
        '  "a?\\n  fake.yaml:1:1: /: forged [x]\\r\\u2028b":\n'
        "    servers: [nope]\n    subscribe: {message: {payload: {type: strin}}}\n"
    )
    code, out, _ = run(capsys, "validate", str(doc))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 1 + len([line for line in lines if line.startswith(f"  {doc}:")])
    assert "forged" in out
    assert not any(line.lstrip().startswith("fake.yaml") for line in lines)
    assert "\u2028" not in out
    assert "\r" not in out


def test_problem_line_is_one_line_whatever_it_holds() -> None:
    problem = Problem(pointer="/a\nb\x00", message=f"m\r\n{HOSTILE}\u2028\u2029\x85", rule="r")
    line = problem.located("f")
    assert len(line.splitlines()) == 1
    assert line.startswith("f: /a\\nb\\u0000: m\\r\\n")
    # str() and the error that carries it write it the same way: one line per problem
    assert str(problem) == problem.located("<document>")
    assert len(str(ValidationError("invalid", [problem, problem])).splitlines()) == 3
