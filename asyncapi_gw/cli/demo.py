"""``asyncapi-gw demo [FILE]``: the relay at work, in one command.

Starts an echo backend and the relay on free loopback ports, connects a client through the
relay, relays one message each way, prints what happened and stops
(:func:`asyncapi_gw.relay.demo.run_demo`). Without FILE it uses the bundled example
(``asyncapi_gw/examples/chatroom.yaml``, the same ChatRoom API as ``fixtures/chatroom.yaml``).
Exit codes: 0 once the message came back; 2 when a port is in use or the demo could not
relay (the reason on standard error); a document that cannot be loaded exits as in every
command (1, 2 or 3).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import resources
from typing import Any

from asyncapi_gw.asyncapi import import_asyncapi
from asyncapi_gw.cli.options import add_point_of_view, add_ref_options, point_of_view, ref_policy
from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay.demo import run_demo

__all__ = ["register", "run"]

EXIT_OK = 0
EXIT_USAGE = 2
BUNDLED = "chatroom.yaml"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``demo`` command to the CLI's subcommands."""
    p = subparsers.add_parser(
        "demo",
        help="relay a message each way through the gateway, with a built-in echo backend",
        description="Start an echo backend and the relay on the loopback, connect a client "
        "through the relay, send one message and get it back, print what happened and exit.",
    )
    p.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="an AsyncAPI document (default: the bundled ChatRoom example)",
    )
    p.add_argument("--context", metavar="C", help="override the API context")
    add_point_of_view(p)
    add_ref_options(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="PORT",
        help="the relay's ws port (default: 0, a free port)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up after this many seconds (default: %(default)s)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; the exit code."""
    if args.file is None:
        with resources.as_file(resources.files("asyncapi_gw") / "examples" / BUNDLED) as path:
            api = _load(str(path), args)
        source = f"the bundled example ({BUNDLED})"
    else:
        api = _load(args.file, args)
        source = args.file
    try:
        report = asyncio.run(run_demo(api, host=args.host, port=args.port, timeout=args.timeout))
    except RelayError as exc:
        print(f"asyncapi-gw demo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"API       {report.api}, from {source}")
    print(f"gateway   {report.gateway_url}  (the relay; the client connects here)")
    print(f"topic     {report.topic}")
    print(f"backend   {report.backend_url}  (the URL the topic mapped to, as the echo backend")
    print(f"          received it; the document declares {report.declared_backend})")
    print(f"client    authenticated with {report.credential}")
    print(f"sent      client -> relay -> backend: {report.sent}")
    print(f"received  backend -> relay -> client: {report.received}")
    print("done: one message relayed each way; the relay and the backend are stopped")
    return EXIT_OK


def _load(file: str, args: argparse.Namespace) -> StreamingAPI:
    return import_asyncapi(
        file,
        context=args.context,
        point_of_view=point_of_view(args.point_of_view),
        **ref_policy(args),
    ).api
