"""``asyncapi-gw``: validate, export, create, inspect and serve AsyncAPI WebSocket APIs.

Exit codes (one map for every command):

=== =====================================================================================
0   success
1   a document is invalid or cannot be converted (``validate --fail-on warning``: or has
    warnings)
2   a usage error, an unreadable file or an unusable setting
3   a document declares an AsyncAPI version that is not supported
130 interrupted (Ctrl-C); 141: whatever read the output stopped early (a closed pipe)
=== =====================================================================================

When ``validate`` checks several files with different outcomes, the exit code is the first of
2, 3, 1 that applies.  Relative ``$ref``s may lead anywhere under the current directory, as well
as under the document's own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import attrs

from asyncapi_gw.asyncapi import (
    EXPORT_VERSIONS,
    ImportResult,
    ValidationReport,
    convert_asyncapi,
    dump_asyncapi,
)
from asyncapi_gw.asyncapi.convert import POINTS_OF_VIEW, V2_VERSIONS, V3_VERSIONS
from asyncapi_gw.builder import (
    AUTH_CHOICES,
    DEFAULT_TOPIC,
    new_api,
    parse_scope,
    parse_throttling,
    parse_topic,
    secure_topics,
    topic,
)
from asyncapi_gw.cli import demo, reports, serve
from asyncapi_gw.cli.options import (
    WRITE_HELP,
    add_point_of_view,
    add_ref_options,
    point_of_view,
    ref_policy,
)
from asyncapi_gw.cli.sources import document_source, import_source, validate_source
from asyncapi_gw.documents import SourceDocument, dump_document
from asyncapi_gw.errors import (
    AsyncAPIGwError,
    DocumentError,
    Problem,
    RelayError,
    Severity,
    UnsupportedVersionError,
)
from asyncapi_gw.model import PointOfView, StreamingAPI
from asyncapi_gw.relay.routing import RouteTable, backend_template
from asyncapi_gw.wso2 import DEFAULT_WSO2_VERSION, ProjectImport, export_project

__all__ = [
    "EXIT_CLOSED_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNSUPPORTED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, as shells report a reader that went away

# Which code wins when files differ: the most fundamental problem first.
_PRECEDENCE = (EXIT_OK, EXIT_INVALID, EXIT_UNSUPPORTED, EXIT_USAGE)
_VERDICT_EXIT = {
    reports.Verdict.VALID: EXIT_OK,
    reports.Verdict.FAILED_ON_WARNINGS: EXIT_INVALID,
    reports.Verdict.INVALID: EXIT_INVALID,
    reports.Verdict.UNSUPPORTED: EXIT_UNSUPPORTED,
    reports.Verdict.UNREADABLE: EXIT_USAGE,
}

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits with EXIT_USAGE (its default, made explicit) and no traceback."""

    def error(self, message: str) -> Any:  # pragma: no cover - argparse's contract
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _exit_code(error: AsyncAPIGwError) -> int:
    """Unreadable input is a usage problem; an unsupported version has its own code; a
    readable but bad document is invalid."""
    if isinstance(error, UnsupportedVersionError):
        return EXIT_UNSUPPORTED
    if isinstance(error, DocumentError) and any(p.rule in _USAGE_RULES for p in error.problems):
        return EXIT_USAGE
    return EXIT_INVALID


# Unreadable files (and folders that are not API projects), unwritable projects.
_USAGE_RULES = {"document-unreadable", "project-unwritable"}


def _worst(codes: Iterable[int]) -> int:
    return max(codes, key=_PRECEDENCE.index, default=EXIT_OK)


def _report_error(error: AsyncAPIGwError, out: TextIO) -> None:
    """The warnings an error carries (a lenient import's), then the error and its problems."""
    warnings = [p for p in error.problems if p.severity is Severity.WARNING]
    for problem in warnings:
        print(f"warning: {problem}", file=out)
    print(f"error: {error.message}", file=out)
    for problem in error.problems:
        if problem.severity is not Severity.WARNING:
            print(f"  {problem}", file=out)


# ---------------------------------------------------------------- validate


def _check(file: str, policy: dict[str, Any]) -> ValidationReport:
    try:
        return validate_source(file, policy)
    except DocumentError as exc:
        problems = exc.problems or (Problem(pointer="", message=exc.message, rule="document"),)
        return ValidationReport(file=file, asyncapi=None, errors=problems, supported=None)


def _validate(args: argparse.Namespace) -> int:
    policy = ref_policy(args)
    fail_on_warnings = args.fail_on == "warning"
    base = os.getcwd()
    checked: list[tuple[ValidationReport, str]] = []
    codes = []
    for file in args.files:
        report = _check(file, policy)
        codes.append(_VERDICT_EXIT[reports.verdict(report, fail_on_warnings=fail_on_warnings)])
        if args.format == "text":
            print("\n".join(reports.text_lines(report, file)))
        elif args.format == "json":
            print(reports.json_line(report, file))
        elif args.format == "github":
            for line in reports.github_lines(report, file, base):
                print(line)
        else:
            checked.append((report, file))
    if args.format == "sarif":
        sys.stdout.write(reports.sarif_text(checked, version=_version(), base=base))
    elif args.format == "junit":
        sys.stdout.write(reports.junit_xml(checked, fail_on_warnings=fail_on_warnings))
    return _worst(codes)


# ---------------------------------------------------------------- import helpers


def _import(
    args: argparse.Namespace, file: str, policy: dict[str, Any], reading: str | None
) -> ImportResult | ProjectImport:
    result = import_source(
        file,
        context=args.context,
        lenient=args.lenient,
        point_of_view=point_of_view(reading),
        policy=policy,
    )
    for warning in result.warnings:
        print(f"warning: {warning.located(file)}", file=sys.stderr)
    return result


def _write(text: str, output: str | None) -> int:
    if output is None or output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# ---------------------------------------------------------------- export


def _export(args: argparse.Namespace) -> int:
    policy = ref_policy(args)
    imported = _import(args, args.file, policy, args.input_point_of_view)
    if args.wso2_project is not None:
        return _export_project(args, imported, policy)
    if args.wso2_version is not None:
        print("asyncapi-gw export: error: --wso2-version needs --wso2-project", file=sys.stderr)
        return EXIT_USAGE
    fmt = args.format or (
        imported.document.format
        if isinstance(imported, ProjectImport) and imported.document
        else _input_format(args.file)
    )
    warnings: list[Problem] = []
    text = dump_asyncapi(
        imported.api,
        asyncapi_version=args.asyncapi_version,
        point_of_view=point_of_view(args.point_of_view),
        fmt=fmt,
        lenient=args.lenient,
        warnings=warnings,
        source_document=imported.document,
        **policy,
    )
    # The output's problems are located in the input; those the import reported already are
    # not repeated.
    seen = {attrs.evolve(w, severity=Severity.WARNING) for w in imported.warnings}
    for warning in dict.fromkeys(warnings):
        if attrs.evolve(warning, severity=Severity.WARNING) not in seen:
            print(f"warning: {warning.located(args.file)}", file=sys.stderr)
    return _write(text, args.output)


def _export_project(
    args: argparse.Namespace, imported: ImportResult | ProjectImport, policy: dict[str, Any]
) -> int:
    """``export --wso2-project OUT``: api.yaml and the definition WSO2 API Manager imports."""
    refused = [
        flag
        for flag, value in (
            ("--asyncapi-version", args.asyncapi_version),
            ("--point-of-view", args.point_of_view),
            ("--format", args.format),
            ("--output", args.output),
        )
        if value is not None
    ]
    if refused:
        print(
            f"asyncapi-gw export: error: {', '.join(refused)} cannot be used with "
            "--wso2-project: the WSO2 version decides the definition",
            file=sys.stderr,
        )
        return EXIT_USAGE
    warnings: list[Problem] = []
    export_project(
        imported.api,
        args.wso2_project,
        source=imported.project if isinstance(imported, ProjectImport) else None,
        version=args.wso2_version,
        lenient=args.lenient,
        warnings=warnings,
        **policy,
    )
    seen = {attrs.evolve(w, severity=Severity.WARNING) for w in imported.warnings}
    for warning in dict.fromkeys(warnings):
        if attrs.evolve(warning, severity=Severity.WARNING) not in seen:
            print(f"warning: {warning.located(args.file)}", file=sys.stderr)
    return EXIT_OK


def _input_format(file: str) -> str:
    return "json" if file.lower().endswith(".json") else "yaml"


# ---------------------------------------------------------------- convert


def _convert(args: argparse.Namespace) -> int:
    source = document_source(args.file)
    project = source if isinstance(source, SourceDocument) else None
    result = convert_asyncapi(
        source,
        args.to,
        point_of_view=args.point_of_view or ("application" if project is None else "client"),
        lossy=args.lossy,
        **ref_policy(args),
    )
    for warning in result.warnings:
        print(f"warning: {warning.located(args.file)}", file=sys.stderr)
    fmt = args.format or (project.format if project else None)
    text = dump_document(result.data, fmt or _input_format(args.file))
    return _write(text, args.output)


# ---------------------------------------------------------------- new


def _new(args: argparse.Namespace) -> int:
    if args.per_principal is not None and args.throttling is None:
        print("asyncapi-gw new: error: --per-principal needs --throttling", file=sys.stderr)
        return EXIT_USAGE
    topics = secure_topics(
        [parse_topic(spec) for spec in args.topic] or [topic(DEFAULT_TOPIC)],
        auth=args.auth,
        scopes=[parse_scope(spec) for spec in args.scope],
        open_topics=args.open_topic,
    )
    api = new_api(
        name=args.name,
        version=args.version,
        endpoint=args.endpoint,
        context=args.context,
        sandbox_endpoint=args.sandbox_endpoint,
        topics=topics,
        auth=args.auth,
        description=args.description,
        throttling=None
        if args.throttling is None
        else parse_throttling(args.throttling, args.per_principal),
    )
    try:  # write only what `serve` loads as written
        RouteTable.from_apis([api])
    except RelayError as exc:
        print(f"asyncapi-gw new: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = dump_asyncapi(
        api,
        asyncapi_version=args.asyncapi_version,
        point_of_view=point_of_view(args.point_of_view),
        fmt=args.format,
    )
    return _write(text, args.output)


# ---------------------------------------------------------------- inspect


def _describe(api: StreamingAPI, host: str, ws_port: int, wss_port: int) -> dict[str, Any]:
    return {
        "name": api.name,
        "version": api.version,
        "context": api.context,
        "gateway_path": api.gateway_path,
        "description": api.description,
        "asyncapi": api.asyncapi_version,
        "point_of_view": api.point_of_view.value if api.point_of_view else None,
        "production_endpoint": api.production_endpoint.url if api.production_endpoint else None,
        "sandbox_endpoint": api.sandbox_endpoint.url if api.sandbox_endpoint else None,
        "gateway_urls": [
            f"ws://{host}:{ws_port}{api.gateway_path}",
            f"wss://{host}:{wss_port}{api.gateway_path}",
        ],
        "security": [
            {"name": s.name, "kind": s.kind.value, "scopes": list(s.scopes)} for s in api.security
        ],
        "throttling": (
            {"events": api.throttling.events, "per": api.throttling.unit.value}
            if api.throttling
            else None
        ),
        "topics": [
            {
                "name": t.name,
                "kind": t.kind.value,
                "operations": [op.operation.value for op in t.operations],
                "parameters": [p.name for p in t.parameters],
                "scopes": list(t.scopes),
                "auth_type": t.auth_type.value if t.auth_type else None,
                "url_mapping": next(
                    (op.uri_mapping for op in t.operations if op.uri_mapping), None
                ),
                "gateway_url": f"ws://{host}:{ws_port}{api.gateway_path}{t.path}",
                "backend_url": (
                    backend_template(api.production_endpoint, t)
                    if api.production_endpoint
                    else None
                ),
            }
            for t in api.topics
        ],
    }


_READINGS = {
    PointOfView.APPLICATION: "send = clients subscribe, receive = clients publish",
    PointOfView.CLIENT: "send = clients publish, receive = clients subscribe; WSO2's reading",
}


def _inspect(args: argparse.Namespace) -> int:
    api = _import(args, args.file, ref_policy(args), args.point_of_view).api
    info = _describe(api, "localhost", 9099, 8099)
    if args.format == "json":
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return EXIT_OK
    lines = [
        f"name:        {info['name']}",
        f"version:     {info['version']}",
        f"context:     {info['context']}",
        f"asyncapi:    {info['asyncapi'] or '-'}",
        *(
            [f"point of view: {api.point_of_view.value} ({_READINGS[api.point_of_view]})"]
            if api.point_of_view
            else []
        ),
        f"production:  {info['production_endpoint'] or '-'}",
        f"sandbox:     {info['sandbox_endpoint'] or '-'}",
        "security:    "
        + (", ".join(f"{s['name']} ({s['kind']})" for s in info["security"]) or "none"),
        "gateway:     " + "  ".join(info["gateway_urls"]),
        "topics:",
    ]
    for t in info["topics"]:
        ops = "+".join("pub" if o == "publish" else "sub" for o in t["operations"])
        lines.append(f"  {t['name']}  [{ops}]")
        if t["parameters"]:
            lines.append(f"    parameters: {', '.join(t['parameters'])}")
        if t["scopes"]:
            lines.append(f"    scopes:     {', '.join(t['scopes'])}")
        if t["auth_type"]:
            lines.append(f"    auth type:  {t['auth_type']}")
        lines.append(f"    gateway:    {t['gateway_url']}")
        lines.append(f"    backend:    {t['backend_url'] or '-'}")
    print("\n".join(lines))
    return EXIT_OK


# ---------------------------------------------------------------- parser


def _add_load_options(parser: argparse.ArgumentParser, *, context: bool = True) -> None:
    if context:
        parser.add_argument("--context", help="override the API context (gateway path prefix)")
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="import what can be represented and report the problems as warnings",
    )
    add_ref_options(parser)


def _version() -> str:
    try:
        return metadata.version("asyncapi-gw")
    except metadata.PackageNotFoundError:  # a plain checkout, not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asyncapi-gw",
        description="Import, validate, convert, create, export and serve AsyncAPI 2.x and 3.x "
        "WebSocket APIs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="validate AsyncAPI documents")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument(
        "--format",
        choices=reports.FORMATS,
        default="text",
        help="text (default); json (one object per file and line); github (GitHub Actions "
        "annotations); sarif (SARIF 2.1.0); junit (JUnit XML)",
    )
    validate.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="exit 1 on errors only (default), or on warnings too",
    )
    add_ref_options(validate)
    validate.set_defaults(handler=_validate)

    export = commands.add_parser("export", help="import a document and write it back out")
    export.add_argument("file", metavar="FILE")
    export.add_argument("--asyncapi-version", choices=EXPORT_VERSIONS)
    add_point_of_view(export, help_text=WRITE_HELP)
    add_point_of_view(export, flag="--input-point-of-view")
    export.add_argument(
        "--format", choices=("yaml", "json"), help="output format (default: the input's)"
    )
    export.add_argument("-o", "--output", metavar="OUT")
    export.add_argument(
        "--wso2-project",
        metavar="OUT[.zip]",
        help="write a WSO2 API Manager API project (api.yaml and Definitions/asyncapi.yaml) "
        "into the folder OUT, or the zip OUT.zip, for apictl import api",
    )
    export.add_argument(
        "--wso2-version",
        metavar="4.x",
        help="the API Manager version the project is for: up to 4.6 an AsyncAPI 2.x "
        "definition, from 4.7 on AsyncAPI 3.0.0 as 4.7 reads it (default: a project's own "
        f"version, else {DEFAULT_WSO2_VERSION})",
    )
    _add_load_options(export)
    export.set_defaults(handler=_export)

    converter = commands.add_parser(
        "convert",
        help="convert a document between AsyncAPI 2.x and 3.x",
        description="Convert an AsyncAPI 2.0-2.6 or 3.0-3.1 document to another version. "
        "What the target cannot hold is carried in x-asyncapi-gw-v2-*/v3-* extensions or "
        "refused (exit 1) unless --lossy.",
    )
    converter.add_argument("file", metavar="FILE")
    converter.add_argument(
        "--to",
        required=True,
        choices=(*V2_VERSIONS, *V3_VERSIONS),
        metavar="VERSION",
        help="target version: 2.0.0-2.6.0, 3.0.0, 3.1.0",
    )
    converter.add_argument(
        "--lossy",
        action="store_true",
        help="drop what the target cannot hold, with a warning per field",
    )
    converter.add_argument(
        "--point-of-view",
        choices=POINTS_OF_VIEW,
        help="3.x operations from the application's side (publish = receive; the default) "
        "or the client's (publish = send; the default for a WSO2 API project, as API Manager "
        "reads its definitions)",
    )
    converter.add_argument(
        "--format", choices=("yaml", "json"), help="output format (default: the input's)"
    )
    converter.add_argument("-o", "--output", metavar="OUT")
    add_ref_options(converter)
    converter.set_defaults(handler=_convert)

    new = commands.add_parser("new", help="create an AsyncAPI document for a new API")
    new.add_argument("--name", required=True)
    new.add_argument("--version", required=True)
    new.add_argument("--endpoint", required=True, help="production backend, ws:// or wss://")
    new.add_argument("--context")
    new.add_argument("--sandbox-endpoint")
    new.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME[:pub|:sub|:pubsub][=URL_MAPPING]",
        help="a topic (repeatable); none gives the default topic /* with pub and sub; "
        "the mapping names a path parameter as {uri.var.NAME}, e.g. /rooms/{id}=/r/{uri.var.id}",
    )
    new.add_argument("--auth", choices=AUTH_CHOICES, default="none")
    new.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="TOPIC=SCOPE",
        help="require SCOPE on TOPIC (repeatable; any one of a topic's scopes admits)",
    )
    new.add_argument(
        "--open-topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="let clients without credentials use TOPIC (x-auth-type: None; repeatable)",
    )
    new.add_argument(
        "--throttling",
        metavar="EVENTS/UNIT",
        help="event quota per connection and per API, e.g. 100/minute (second, minute, day)",
    )
    new.add_argument(
        "--per-principal",
        type=int,
        metavar="EVENTS",
        help="with --throttling: events per principal (API key, JWT subject, or client "
        "address) in the same unit",
    )
    new.add_argument("--description")
    new.add_argument("--asyncapi-version", choices=EXPORT_VERSIONS)
    add_point_of_view(new, help_text=WRITE_HELP)
    new.add_argument("--format", choices=("yaml", "json"), default="yaml")
    new.add_argument("-o", "--output", metavar="OUT")
    new.set_defaults(handler=_new)

    inspect = commands.add_parser("inspect", help="show an API's gateway URLs and topics")
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    add_point_of_view(inspect)
    _add_load_options(inspect)
    inspect.set_defaults(handler=_inspect)

    serve.register(commands)
    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except AsyncAPIGwError as exc:
        _report_error(exc, sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as the shell's own tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
