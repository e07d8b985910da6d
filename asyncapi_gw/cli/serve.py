"""``asyncapi-gw serve FILE...``: run the relay gateway for AsyncAPI documents.

Prints one ``listening on ws://HOST:PORT`` line per listener on standard error once they are up,
serves until SIGINT or SIGTERM (then drains: close 1001 to every client), and reloads the
documents on SIGHUP or when a file changes, keeping the connections of unchanged APIs.
Exit codes: 0 after a clean shutdown, 1 for invalid documents, 2 for usage errors, unreadable
files and ports in use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from asyncapi_gw.asyncapi import load_asyncapi
from asyncapi_gw.errors import AsyncAPIGwError, RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay import Relay, RelayConfig, load_auth_config

__all__ = ["register", "run"]

EXIT_OK = 0
EXIT_USAGE = 2
WATCH_INTERVAL = 1.0  # seconds between checks of the documents' modification times


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``serve`` command to the CLI's subcommands."""
    p = subparsers.add_parser(
        "serve",
        help="run the relay gateway for AsyncAPI documents",
        description="Relay WebSocket clients to the backends the AsyncAPI documents describe.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--context", help="override the API context (only with a single FILE)")
    p.add_argument("--lenient", action="store_true", help="load documents with problems")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--ws-port", type=_port, default=9099, help="ws port (default 9099)")
    p.add_argument("--wss-port", type=_port, default=8099, help="wss port (default 8099)")
    p.add_argument("--port-offset", type=int, default=0, help="added to both ports")
    p.add_argument("--no-ws", action="store_true", help="turn the ws listener off")
    p.add_argument("--no-wss", action="store_true", help="turn the wss listener off")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain) for wss")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key for wss")
    p.add_argument("--api-keys", metavar="FILE", help="API keys and what they grant")
    jwt = p.add_mutually_exclusive_group()
    jwt.add_argument("--jwt-secret", metavar="S", help="HS256 shared secret")
    jwt.add_argument("--jwt-public-key", metavar="FILE", help="RS256/ES256 PEM public key")
    jwt.add_argument("--jwks", metavar="FILE", help="JWKS file with RS256/ES256 keys")
    p.add_argument("--jwt-issuer", metavar="I", help="required iss claim")
    p.add_argument("--jwt-audience", metavar="A", help="required aud claim")
    p.add_argument("--max-message-size", type=_positive_int, default=1 << 20, metavar="N")
    p.add_argument("--max-connections", type=_positive_int, metavar="N")
    p.add_argument("--on-wrong-direction", choices=("close", "drop"), default="close")
    p.add_argument("--on-throttle", choices=("reply", "close"), default="reply")
    p.add_argument("--validate-messages", action="store_true")
    p.add_argument("--on-invalid", choices=("close", "drop"), default="close")
    p.add_argument("--no-forward-query", action="store_true")
    p.add_argument(
        "--forward-header",
        action="append",
        default=[],
        metavar="NAME",
        help="copy this client handshake header to the backend (repeatable)",
    )
    p.add_argument("--access-log", metavar="FILE|-", help="JSON line per connection; - is stderr")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's default event loop")
    p.set_defaults(handler=run)


def _usage(message: str) -> int:
    print(f"asyncapi-gw serve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _load(args: argparse.Namespace) -> list[StreamingAPI]:
    return [load_asyncapi(f, context=args.context, lenient=args.lenient) for f in args.files]


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the exit code."""
    if args.context is not None and len(args.files) > 1:
        return _usage("--context applies to a single FILE")
    if (args.tls_cert is None) != (args.tls_key is None):
        return _usage("--tls-cert and --tls-key go together")
    if args.no_ws and (args.no_wss or args.tls_cert is None):
        return _usage("no listener left: give --tls-cert/--tls-key or drop --no-ws")
    apis = _load(args)  # invalid documents raise; the CLI's main maps them to exit codes
    try:
        auth = load_auth_config(
            jwt_secret=args.jwt_secret,
            jwt_public_key_file=args.jwt_public_key,
            jwks_file=args.jwks,
            jwt_issuer=args.jwt_issuer,
            jwt_audience=args.jwt_audience,
            api_keys_file=args.api_keys,
        )
        config = RelayConfig(
            host=args.host,
            ws_port=None if args.no_ws else args.ws_port,
            wss_port=None if args.no_wss else args.wss_port,
            port_offset=args.port_offset,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            auth=auth,
            max_message_size=args.max_message_size,
            max_connections=args.max_connections,
            on_wrong_direction=args.on_wrong_direction,
            on_throttle=args.on_throttle,
            validate_messages=args.validate_messages,
            on_invalid=args.on_invalid,
            forward_query=not args.no_forward_query,
            forward_headers=tuple(args.forward_header),
            access_log=args.access_log,
        )
        relay = Relay(apis, config=config)
    except (RelayError, ValueError) as exc:
        return _usage(str(exc))
    return _run_loop(_serve(relay, args), uvloop=not args.no_uvloop)


def _run_loop(main: Coroutine[Any, Any, int], *, uvloop: bool) -> int:
    if uvloop:
        try:
            import uvloop as fast  # noqa: PLC0415 - optional dependency
        except ImportError:
            pass
        else:
            return fast.run(main)
    return asyncio.run(main)


async def _serve(relay: Relay, args: argparse.Namespace) -> int:
    try:
        await relay.start()
    except RelayError as exc:
        return _usage(str(exc))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    if relay.config.tls_cert is None and not args.no_wss:
        print("wss listener off: no --tls-cert/--tls-key given", file=sys.stderr)
    for scheme, (host, port) in relay.addresses.items():
        shown = f"[{host}]" if ":" in host else host
        print(f"listening on {scheme}://{shown}:{port}", file=sys.stderr, flush=True)
    watcher = asyncio.create_task(_watch(relay, args, reload))
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("shutting down: draining connections", file=sys.stderr, flush=True)
        await relay.close()
    return EXIT_OK


def _mtimes(files: list[str]) -> list[float | None]:
    out: list[float | None] = []
    for name in files:
        try:
            out.append(os.stat(name).st_mtime)
        except OSError:
            out.append(None)
    return out


async def _watch(relay: Relay, args: argparse.Namespace, signalled: asyncio.Event) -> None:
    """Reload on SIGHUP or when a document's modification time changes."""
    seen = _mtimes(args.files)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signalled.wait(), WATCH_INTERVAL)
        now = _mtimes(args.files)
        if now == seen and not signalled.is_set():
            continue
        signalled.clear()
        seen = now
        try:
            relay.reload(_load(args))
        except AsyncAPIGwError as exc:
            print(f"reload failed, still serving the previous APIs: {exc}", file=sys.stderr)
        else:
            print(f"reloaded {len(args.files)} document(s)", file=sys.stderr, flush=True)
