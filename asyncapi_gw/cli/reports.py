"""``asyncapi-gw validate`` results in the formats people and CI systems read.

Pure functions from :class:`~asyncapi_gw.asyncapi.ValidationReport` values to text; the command
line prints them.  Formats:

- ``text``: a headline per file, then ``FILE:LINE:COLUMN: POINTER: MESSAGE [RULE]`` lines;
- ``json``: one JSON object per file and line (``ValidationReport.as_dict`` plus ``file``);
- ``github``: GitHub Actions workflow commands (``::error file=F,line=L,col=C,title=RULE::...``),
  escaped as the Actions runner unescapes them, so that no message can end the command early
  or start another;
- ``sarif``: one SARIF 2.1.0 log with one run covering every file, its rules described;
- ``junit``: JUnit XML, one test case per file (a failure when it is invalid, an error when it
  cannot be checked: unreadable, or a version that is not supported).

Where a problem has no line, the formats give the file alone (no SARIF region, no ``line=``).
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from asyncapi_gw.asyncapi import ValidationReport
from asyncapi_gw.errors import Severity
from asyncapi_gw.schema import SUPPORTED_VERSIONS, VALIDATION_VERSIONS

__all__ = [
    "FORMATS",
    "Verdict",
    "describe_rule",
    "github_lines",
    "json_line",
    "junit_xml",
    "sarif_log",
    "sarif_text",
    "text_lines",
    "verdict",
]

FORMATS = ("text", "json", "github", "sarif", "junit")

TOOL_NAME = "asyncapi-gw"
TOOL_URI = "https://pypi.org/project/asyncapi-gw/"
_UNREADABLE = "document-unreadable"


class Verdict(enum.Enum):
    """What one file's validation comes to; the command line maps it to an exit code."""

    VALID = "valid"
    FAILED_ON_WARNINGS = "failed on warnings"  # valid, but --fail-on warning
    INVALID = "invalid"
    UNSUPPORTED = "not supported"
    UNREADABLE = "cannot be read"


def verdict(report: ValidationReport, *, fail_on_warnings: bool = False) -> Verdict:
    if any(p.rule == _UNREADABLE for p in report.errors):
        return Verdict.UNREADABLE
    if report.supported is False:
        return Verdict.UNSUPPORTED
    if report.errors:
        return Verdict.INVALID
    if fail_on_warnings and report.warnings:
        return Verdict.FAILED_ON_WARNINGS
    return Verdict.VALID


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


_SUPPORTED = ", ".join(
    [f"supported: {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}"]
    + [version for version in VALIDATION_VERSIONS if version not in SUPPORTED_VERSIONS]
)


def _headline(report: ValidationReport, file: str, outcome: Verdict) -> str:
    version = f" AsyncAPI {report.asyncapi}" if report.asyncapi else ""
    if outcome is Verdict.UNSUPPORTED:
        return f"{file}:{version} not supported ({_SUPPORTED})"
    if outcome is Verdict.UNREADABLE:
        return f"{file}: cannot be read"
    counts = []
    if report.errors:
        counts.append(_count(len(report.errors), "error"))
    if report.warnings:
        counts.append(_count(len(report.warnings), "warning"))
    state = "invalid" if report.errors else "valid"
    return f"{file}:{version} {state}" + (f" ({', '.join(counts)})" if counts else "")


def text_lines(report: ValidationReport, file: str) -> Iterator[str]:
    """The ``text`` format of one file: a headline, then each problem indented."""
    yield _headline(report, file, verdict(report))
    for problem in report.errors:
        yield f"  {problem.located(file)}"
    for problem in report.warnings:
        yield f"  warning: {problem.located(file)}"


def json_line(report: ValidationReport, file: str) -> str:
    """The ``json`` format of one file: one line."""
    return json.dumps({**report.as_dict(), "file": file}, ensure_ascii=False)


def _relative(path: str, base: str) -> str | None:
    """``path`` relative to the folder ``base`` (POSIX separators), or ``None`` outside it."""
    absolute = os.path.abspath(os.path.join(base, path))
    if os.path.commonpath([base, absolute]) != base:
        return None
    return Path(os.path.relpath(absolute, base)).as_posix()


# ---------------------------------------------------------------- GitHub Actions

# As the Actions runner unescapes them (ActionCommand): data only \r, \n and %; property values
# also ':' and ','.  '%' goes first so that no escape is read twice.
_DATA_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = (*_DATA_ESCAPES, (":", "%3A"), (",", "%2C"))


def _escape(text: str, escapes: Iterable[tuple[str, str]]) -> str:
    for raw, escaped in escapes:
        text = text.replace(raw, escaped)
    return text


def github_lines(report: ValidationReport, file: str, base: str) -> Iterator[str]:
    """One workflow command per problem: ``::error`` or ``::warning`` with the file relative to
    ``base`` (the working directory, which is the checkout in a workflow), line, column and the
    rule as the title."""
    for problem in (*report.errors, *report.warnings):
        path = problem.file or file
        properties = {"file": _relative(path, base) or path}
        if problem.line is not None:
            properties["line"] = str(problem.line)
            if problem.column is not None:
                properties["col"] = str(problem.column)
        properties["title"] = problem.rule
        command = "error" if problem.severity is Severity.ERROR else "warning"
        joined = ",".join(f"{k}={_escape(v, _PROPERTY_ESCAPES)}" for k, v in properties.items())
        message = f"{problem.pointer or '/'}: {problem.message}"
        yield f"::{command} {joined}::{_escape(message, _DATA_ESCAPES)}"


# ---------------------------------------------------------------- rules

_OFFICIAL_RULES = {
    "asyncapi2-server-security": "Server security requirements name schemes defined in "
    "components.securitySchemes, and oauth2 scopes defined in one of the scheme's flows.",
    "asyncapi2-server-variables": "The {variables} of a server URL and its variables object "
    "match, both ways.",
    "asyncapi2-channel-parameters": "The {parameters} of a channel name and its parameters "
    "object match, both ways.",
    "asyncapi2-channel-servers": "The servers a channel names are defined in servers.",
    "asyncapi2-channel-no-query-nor-fragment": "Channel names hold no '?' or '#'.",
    "asyncapi2-operation-operationId-uniqueness": "Every operationId is unique (the last trait "
    "giving one wins over the operation's own).",
    "asyncapi2-operation-security": "Operation security requirements name defined schemes and "
    "scopes.",
    "asyncapi2-message-examples": "Message examples match the message's payload and headers "
    "schemas.",
    "asyncapi2-message-messageId-uniqueness": "Every messageId is unique.",
    "asyncapi2-tags-uniqueness": "No tag name appears twice in one tags list.",
    "asyncapi2-schemas": "Payloads in an AsyncAPI or JSON Schema format are valid Schema Objects.",
    "asyncapi2-schema-default": "A schema's default value matches the schema.",
    "asyncapi2-schema-examples": "A schema's examples match the schema.",
    "asyncapi2-message-examples-custom-format": "Example payloads of messages with an explicit "
    "schemaFormat match the payload.",
}
_SPECIFICATION_RULES = {
    "asyncapi2-components-keys": "Keys of the components maps match ^[a-zA-Z0-9.\\-_]+$.",
    "asyncapi2-server-names": "Keys of servers match ^[A-Za-z0-9_\\-]+$.",
    "asyncapi2-security-requirement-scopes": "A security requirement of a scheme that is not "
    "oauth2 or openIdConnect lists no scopes.",
    "asyncapi2-schema-discriminator": "A schema's discriminator is one of its properties and "
    "required.",
    "asyncapi2-message-trait-examples": "Message trait examples have a message example's shape.",
}
_SPECIFICATION_HELP = (
    "A rule the AsyncAPI 2.x specification states that neither its JSON Schema nor the official "
    "parser checks; reported as a warning, so that documents the official parser accepts stay "
    "valid."
)
_OFFICIAL_HELP = (
    "A semantic rule of the official AsyncAPI parser's v2 ruleset "
    "(@asyncapi/parser), applied after the JSON Schema."
)
_SPEC_URI = "https://www.asyncapi.com/docs/reference/specification/v2.6.0"

_OUR_RULES: dict[str, tuple[str, str, str | None]] = {
    "asyncapi-schema": (
        "The document matches the official AsyncAPI JSON Schema of the version it declares.",
        "Each 2.x version's schema comes from the official @asyncapi/specs package and is "
        "applied offline, as the official parser applies it.",
        _SPEC_URI,
    ),
    "asyncapi-binding": (
        "Bindings match the official binding schema of their bindingVersion.",
        "A binding without a bindingVersion is checked against the latest bundled schema, "
        "and its problems are warnings.",
        "https://github.com/asyncapi/bindings",
    ),
    "asyncapi-ref": (
        "Every $ref resolves under the reference policy.",
        "Local pointers always resolve; relative files resolve under the document's folder "
        "(and, from the command line, the current directory); absolute paths and file: URLs "
        "only with --allow-outside-refs; nothing is fetched from the network.",
        None,
    ),
    "asyncapi-ref-placement": (
        "A $ref stands only where the specification allows a Reference Object.",
        "Elsewhere (a message example, a tag, ...) the official parser reads it as a property, "
        "not a reference.",
        _SPEC_URI,
    ),
    "asyncapi-version": (
        "The document declares an AsyncAPI version that is supported.",
        f"The 'asyncapi' field names the specification version; {_SUPPORTED}.",
        None,
    ),
}


def describe_rule(rule: str) -> tuple[str, str, str | None]:
    """(short description, help text, help URI or ``None``) of a rule id."""
    if rule in _OUR_RULES:
        return _OUR_RULES[rule]
    if rule in _OFFICIAL_RULES:
        return _OFFICIAL_RULES[rule], _OFFICIAL_HELP, None
    if rule in _SPECIFICATION_RULES:
        return _SPECIFICATION_RULES[rule], _SPECIFICATION_HELP, _SPEC_URI
    if rule.startswith("document-"):
        what = rule.removeprefix("document-").replace("-", " ")
        return (
            f"The file can be read as one YAML or JSON document ({what}).",
            "Syntax, encoding, duplicate keys, tags, aliases and size or nesting limits.",
            None,
        )
    return rule, rule, None


# ---------------------------------------------------------------- SARIF

_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_ROOT_ID = "%SRCROOT%"


def _artifact(path: str, base: str) -> dict[str, Any]:
    relative = _relative(path, base)
    if relative is not None:
        return {"uri": quote(os.fsencode(relative)), "uriBaseId": _ROOT_ID}
    return {"uri": Path(os.path.abspath(path)).as_uri()}


def sarif_log(
    reports: Sequence[tuple[ValidationReport, str]], *, version: str, base: str
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``(report, file)`` pairs: one run, every rule that fired described
    once, every file an artifact, paths relative to ``base`` (``%SRCROOT%``) when under it."""
    rules: dict[str, int] = {}
    levels: dict[str, set[str]] = {}
    artifacts: dict[str, int] = {}
    results: list[dict[str, Any]] = []

    def artifact_index(path: str) -> int:
        return artifacts.setdefault(path, len(artifacts))

    for report, file in reports:
        artifact_index(file)
        for problem in (*report.errors, *report.warnings):
            path = problem.file or file
            location: dict[str, Any] = {
                "artifactLocation": {**_artifact(path, base), "index": artifact_index(path)},
            }
            if problem.line is not None:
                location["region"] = {"startLine": problem.line, "startColumn": problem.column or 1}
            level = "error" if problem.severity is Severity.ERROR else "warning"
            levels.setdefault(problem.rule, set()).add(level)
            results.append(
                {
                    "ruleId": problem.rule,
                    "ruleIndex": rules.setdefault(problem.rule, len(rules)),
                    "level": level,
                    "message": {"text": f"{problem.pointer or '/'}: {problem.message}"},
                    "locations": [{"physicalLocation": location}],
                    "properties": {"pointer": problem.pointer},
                }
            )
    descriptors = []
    for rule in rules:
        short, text, uri = describe_rule(rule)
        descriptor: dict[str, Any] = {
            "id": rule,
            "shortDescription": {"text": short},
            "help": {"text": text},
            # A rule whose every result here is a warning is a warning rule.
            "defaultConfiguration": {"level": "error" if "error" in levels[rule] else "warning"},
        }
        if uri is not None:
            descriptor["helpUri"] = uri
        descriptors.append(descriptor)
    base_uri = Path(base).as_uri().rstrip("/") + "/"
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": version,
                        "informationUri": TOOL_URI,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {_ROOT_ID: {"uri": base_uri}},
                "artifacts": [{"location": _artifact(path, base)} for path in artifacts],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


# ---------------------------------------------------------------- JUnit

# Characters XML 1.0 cannot hold at all, not even as references; written as \uXXXX instead.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def junit_xml(
    reports: Sequence[tuple[ValidationReport, str]], *, fail_on_warnings: bool = False
) -> str:
    """JUnit XML: one test suite, one test case per file.  An invalid file (or, with
    ``fail_on_warnings``, one with warnings) has a ``failure`` listing its problems; a file that
    cannot be checked (unreadable, unsupported version) an ``error``; warnings otherwise go to
    ``system-out``."""
    suite = ET.Element("testsuite", name=f"{TOOL_NAME} validate")
    failures = errors = 0
    for report, file in reports:
        outcome = verdict(report, fail_on_warnings=fail_on_warnings)
        case = ET.SubElement(
            suite, "testcase", name=_xml_text(file), classname=f"{TOOL_NAME}.validate", time="0"
        )
        lines = [p.located(file) for p in report.errors]
        notes = [f"warning: {p.located(file)}" for p in report.warnings]
        if outcome is Verdict.FAILED_ON_WARNINGS:
            lines, notes = notes, []
        if outcome in (Verdict.UNREADABLE, Verdict.UNSUPPORTED):
            kind = "error"
            errors += 1
        elif outcome is not Verdict.VALID:
            kind = "failure"
            failures += 1
        else:
            kind = ""
        if kind:
            first = (report.errors or report.warnings)[0]
            element = ET.SubElement(
                case, kind, type=first.rule, message=_xml_text(_headline(report, file, outcome))
            )
            element.text = _xml_text("\n".join(lines))
        if notes:
            ET.SubElement(case, "system-out").text = _xml_text("\n".join(notes))
    counts = {
        "tests": str(len(reports)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": "0",
    }
    suite.attrib.update(counts)
    root = ET.Element(
        "testsuites",
        name=f"{TOOL_NAME} validate",
        tests=counts["tests"],
        failures=counts["failures"],
        errors=counts["errors"],
    )
    root.append(suite)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def sarif_text(reports: Sequence[tuple[ValidationReport, str]], *, version: str, base: str) -> str:
    return (
        json.dumps(sarif_log(reports, version=version, base=base), ensure_ascii=False, indent=2)
        + "\n"
    )
