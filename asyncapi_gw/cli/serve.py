"""``asyncapi-gw serve FILE...``: run the relay gateway for AsyncAPI documents.

Prints one ``listening on ws://HOST:PORT`` line per client listener and one ``admin listener on
http://HOST:PORT`` line on standard error once they are up, serves until SIGINT or SIGTERM
(then drains: close 1001 to every client), and reloads on SIGHUP
(everything) or when a file it reads changes (what that file holds, once two looks a second
apart agree, so a save in progress is not read half-written): the documents, the credential
files (API keys, JWT secret, public key, JWKS) and the TLS certificate and key. Open
connections are judged again (:mod:`asyncapi_gw.relay.reload`); a file that cannot be loaded
leaves the previous documents or credentials in force, and says so on standard error.
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
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import attrs

from asyncapi_gw.cli.options import add_point_of_view, add_ref_options, point_of_view, ref_policy
from asyncapi_gw.cli.sources import import_source
from asyncapi_gw.cli.workers import Supervisor, die_with_parent, report_ready, worker_count
from asyncapi_gw.errors import AsyncAPIGwError, RelayError
from asyncapi_gw.model import StreamingAPI
from asyncapi_gw.relay import AuthConfig, Relay, RelayConfig, load_auth_config
from asyncapi_gw.relay.auth import Authenticator
from asyncapi_gw.relay.config import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_PRINCIPAL_HEADER,
    DEFAULT_QUOTA_LEASE,
    QuotaStoreFailure,
)
from asyncapi_gw.relay.routing import RouteTable

__all__ = ["JWT_SECRET_ENV", "QUOTA_STORE_ENV", "FileWatch", "register", "run"]

EXIT_OK = 0
EXIT_USAGE = 2
WATCH_INTERVAL = 1.0  # seconds between looks at the watched files
JWT_SECRET_ENV = "ASYNCAPI_GW_JWT_SECRET"  # noqa: S105 - a variable's name, not a secret
"""The HS256 secret, read when no JWT key option is given."""
QUOTA_STORE_ENV = "ASYNCAPI_GW_QUOTA_STORE"
"""The quota store's URL, read when ``--quota-store`` is not given (a password stays out of
the command line)."""
_PASSWORD_ON_COMMAND_LINE = (
    "warning: --quota-store shows the Redis password to every local user (ps, "
    f"/proc/PID/cmdline); use the {QUOTA_STORE_ENV} environment variable"
)
_SECRET_ON_COMMAND_LINE = (
    "warning: --jwt-secret shows the secret to every local user (ps, /proc/PID/cmdline); "
    f"use --jwt-secret-file FILE or the {JWT_SECRET_ENV} environment variable"
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _workers(text: str) -> int:
    try:
        return worker_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _seconds_or_off(text: str) -> float | None:
    """Seconds, where 0 turns the timer off."""
    if text.strip() in ("0", "0.0", "off"):
        return None
    return _seconds(text)


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that states each option's default, unless it has none (off, unset, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "%(default)" not in text
            and not any(default is nothing for nothing in (None, False, argparse.SUPPRESS))
            and default != []
        ):
            text += " (default: %(default)s)"
        return text


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``serve`` command to the CLI's subcommands."""
    p = subparsers.add_parser(
        "serve",
        help="run the relay gateway for AsyncAPI documents",
        description="Relay WebSocket clients to the backends the AsyncAPI documents describe. "
        "Times are in seconds; 0 turns a keepalive or idle timer off.",
        formatter_class=_DefaultsFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="AsyncAPI 2.x or 3.x documents")
    p.add_argument(
        "--context", metavar="C", help="override the API context (only with a single FILE)"
    )
    p.add_argument("--lenient", action="store_true", help="load documents with problems")
    add_point_of_view(p)
    add_ref_options(p)
    listen = p.add_argument_group("listeners")
    listen.add_argument(
        "--host", default="127.0.0.1", metavar="HOST", help="address the ws/wss listeners bind"
    )
    listen.add_argument("--ws-port", type=_port, default=9099, metavar="PORT", help="ws port")
    listen.add_argument("--wss-port", type=_port, default=8099, metavar="PORT", help="wss port")
    listen.add_argument(
        "--port-offset",
        type=int,
        default=0,
        metavar="N",
        help="added to every port (ws, wss, admin)",
    )
    listen.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="worker processes sharing the listeners (SO_REUSEPORT) under one supervisor; "
        "auto: one per CPU this process may use",
    )
    listen.add_argument("--no-ws", action="store_true", help="turn the ws listener off")
    listen.add_argument("--no-wss", action="store_true", help="turn the wss listener off")
    listen.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain) for wss")
    listen.add_argument("--tls-key", metavar="FILE", help="PEM private key for wss")
    listen.add_argument(
        "--admin-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the admin listener (/health, /metrics)",
    )
    listen.add_argument(
        "--admin-port",
        type=_port,
        default=DEFAULT_ADMIN_PORT,
        metavar="PORT",
        help="admin listener's port",
    )
    listen.add_argument("--no-admin", action="store_true", help="turn the admin listener off")
    auth = p.add_argument_group("authentication")
    auth.add_argument("--api-keys", metavar="FILE", help="API keys and what they grant")
    jwt = auth.add_mutually_exclusive_group()
    jwt.add_argument(
        "--jwt-secret-file",
        metavar="FILE",
        help=f"file holding the HS256 shared secret (reloaded; or set {JWT_SECRET_ENV})",
    )
    jwt.add_argument(
        "--jwt-secret",
        metavar="S",
        help="HS256 shared secret on the command line: visible to every local user in ps, "
        "so it warns; prefer --jwt-secret-file",
    )
    jwt.add_argument("--jwt-public-key", metavar="FILE", help="RS256/ES256 PEM public key")
    jwt.add_argument("--jwks", metavar="FILE", help="JWKS file with RS256/ES256 keys")
    auth.add_argument("--jwt-issuer", metavar="I", help="required iss claim")
    auth.add_argument("--jwt-audience", metavar="A", help="required aud claim")
    auth.add_argument(
        "--principal-header",
        nargs="?",
        const=DEFAULT_PRINCIPAL_HEADER,
        metavar="NAME",
        help="tell the backend who the client is in this header "
        f"(NAME defaults to {DEFAULT_PRINCIPAL_HEADER}; a client's copy never passes)",
    )
    limits = p.add_argument_group("limits")
    limits.add_argument(
        "--max-message-size",
        type=_positive_int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="N",
        help="largest message in bytes, compressed or inflated (1 MiB); larger closes 1009",
    )
    limits.add_argument(
        "--no-compression",
        action="store_true",
        help="strip the permessage-deflate offer: messages cross uncompressed",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="more get HTTP 503, counted per instance: each of the --workers takes "
        "N/workers of them, rounded down (default: no limit)",
    )
    limits.add_argument(
        "--principal-quota",
        type=_positive_int,
        metavar="N",
        help="events per principal per throttling unit on every throttled API "
        "(default: the documents' perPrincipal, if any)",
    )
    limits.add_argument(
        "--quota-store",
        metavar="URL",
        help="count API and principal quotas in Redis (redis://[USER:PASSWORD@]HOST:PORT/DB) "
        "across every process and instance that names it; needs the asyncapi-gw[redis] extra "
        f"(default: ${QUOTA_STORE_ENV}, else none: each process counts its own)",
    )
    limits.add_argument(
        "--quota-store-failure",
        choices=[f.value for f in QuotaStoreFailure],
        default=QuotaStoreFailure.LOCAL.value,
        help="while the quota store is unreachable: each process limits on its own (local), "
        "API and principal quotas let everything pass (open), or refuse every event (closed)",
    )
    limits.add_argument(
        "--quota-lease",
        type=_positive_int,
        default=DEFAULT_QUOTA_LEASE,
        metavar="N",
        help="events a process may pass on credit per quota while it waits for the quota store "
        "(the L in the bound limit + W x L), and its first lease; a busy quota leases up to a "
        "tenth of its limit at a time. Capped at a tenth of the limit (at least 1)",
    )
    limits.add_argument(
        "--on-wrong-direction",
        choices=("close", "drop"),
        default="close",
        help="a message against the topic's direction: close 1008, or drop it",
    )
    limits.add_argument(
        "--on-throttle",
        choices=("reply", "close"),
        default="reply",
        help="a message over the quota: WSO2's throttled-out reply and a drop, or close 4003",
    )
    limits.add_argument(
        "--validate-messages",
        action="store_true",
        help="check each message against its topic's payload schema",
    )
    limits.add_argument(
        "--on-invalid",
        choices=("close", "drop"),
        default="close",
        help="an invalid message: close 1007, or drop it",
    )
    timers = p.add_argument_group("timers (seconds)")
    timers.add_argument(
        "--open-timeout",
        type=_seconds,
        default=DEFAULT_OPEN_TIMEOUT,
        metavar="S",
        help="the client's request and the backend's handshake, from the client's connection",
    )
    timers.add_argument(
        "--ping-interval",
        type=_seconds_or_off,
        default=DEFAULT_PING_INTERVAL,
        metavar="S",
        help="keepalive pings to both sides; 0 is off",
    )
    timers.add_argument(
        "--ping-timeout",
        type=_seconds_or_off,
        default=DEFAULT_PING_TIMEOUT,
        metavar="S",
        help="a side silent this long after a ping is lost (close 1011); 0 is off",
    )
    timers.add_argument(
        "--idle-timeout",
        type=_seconds_or_off,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="close (1001) a connection with no message either way for this long; 0 is off",
    )
    timers.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="S",
        help="on shutdown, how long clients get to close before they are cut",
    )
    forwarding = p.add_argument_group("forwarding and logging")
    forwarding.add_argument(
        "--no-forward-query", action="store_true", help="do not pass the client's query on"
    )
    forwarding.add_argument(
        "--forward-header",
        action="append",
        default=[],
        metavar="NAME",
        help="copy this client handshake header to the backend (repeatable)",
    )
    forwarding.add_argument(
        "--access-log",
        metavar="FILE|-",
        help="JSON line per connection; - is stderr (default: no access log)",
    )
    forwarding.add_argument(
        "--no-uvloop", action="store_true", help="use asyncio's default event loop"
    )
    p.set_defaults(handler=run)


def _usage(message: str) -> int:
    print(f"asyncapi-gw serve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _load(args: argparse.Namespace) -> list[StreamingAPI]:
    apis = []
    policy = ref_policy(args)
    for file in args.files:
        result = import_source(
            file,
            context=args.context,
            lenient=args.lenient,
            point_of_view=point_of_view(args.point_of_view),
            policy=policy,
        )
        for warning in result.warnings:
            print(f"warning: {warning.located(file)}", file=sys.stderr)
        apis.append(result.api)
    return apis


def _load_auth(args: argparse.Namespace) -> AuthConfig:
    """The credentials the options name, read now; :class:`RelayError` when a file cannot be
    read or its key material cannot be used."""
    secret = args.jwt_secret
    if not (args.jwt_secret_file or args.jwt_public_key or args.jwks or secret):
        secret = os.environ.get(JWT_SECRET_ENV) or None
    config = load_auth_config(
        jwt_secret=secret,
        jwt_secret_file=args.jwt_secret_file,
        jwt_public_key_file=args.jwt_public_key,
        jwks_file=args.jwks,
        jwt_issuer=args.jwt_issuer,
        jwt_audience=args.jwt_audience,
        api_keys_file=args.api_keys,
    )
    Authenticator(config)  # a short secret or a weak key is refused now, not at the next reload
    return config


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the exit code. A SIGHUP before the reload handler (or
    the supervisor's) is ignored: the files are read now anyway. The supervisor passes SIGHUP
    on only to workers that serve."""
    if not hasattr(signal, "SIGHUP"):
        return _run(args)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGHUP, previous)


def _run(args: argparse.Namespace) -> int:
    if args.context is not None and len(args.files) > 1:
        return _usage("--context applies to a single FILE")
    if args.no_ws and (args.no_wss or args.tls_cert is None):
        return _usage("no listener left: give --tls-cert/--tls-key or drop --no-ws")
    if args.max_connections is not None and args.max_connections < args.workers:
        return _usage(
            f"--max-connections is per instance: give each of the {args.workers} "
            "workers at least one"
        )
    if args.jwt_secret is not None:
        print(_SECRET_ON_COMMAND_LINE, file=sys.stderr)
    if args.quota_store is None:
        args.quota_store = os.environ.get(QUOTA_STORE_ENV) or None
    elif urlsplit(args.quota_store).password is not None:
        print(_PASSWORD_ON_COMMAND_LINE, file=sys.stderr)
    apis = _load(args)  # invalid documents raise; the CLI's main maps them to exit codes
    try:
        config = _config(args)
        relay = Relay(apis, config=config)
    except (RelayError, ValueError) as exc:
        return _usage(str(exc))
    if args.workers == 1:
        return _run_loop(_serve(relay, args), uvloop=not args.no_uvloop)
    if config.tls_cert is None and not args.no_wss:
        print("wss listener off: no --tls-cert/--tls-key given", file=sys.stderr)
    if config.quota_store is None and any(api.throttling is not None for api in apis):
        print(
            f"warning: without --quota-store, API and principal quotas are counted per worker: "
            f"this instance passes up to {args.workers} x each limit; --quota-store "
            "redis://HOST:PORT/DB counts them for every worker and instance",
            file=sys.stderr,
        )
    listeners = {
        scheme: (config.host, port)
        for scheme, port in (("ws", config.ws_bind_port), ("wss", config.wss_bind_port))
        if port is not None
    }
    supervisor = Supervisor(
        _worker,
        (args,),
        workers=args.workers,
        listeners=listeners,
        admin=None
        if config.admin_bind_port is None
        else (config.admin_host, config.admin_bind_port),
        drain_timeout=config.drain_timeout,
    )
    return asyncio.run(supervisor.run())


def _config(args: argparse.Namespace) -> RelayConfig:
    """The relay configuration the options give (a worker's ``--max-connections`` share is
    the instance's divided by the workers, rounded down)."""
    max_connections = args.max_connections
    if max_connections is not None:
        max_connections //= args.workers
    return RelayConfig(
        host=args.host,
        ws_port=None if args.no_ws else args.ws_port,
        wss_port=None if args.no_wss else args.wss_port,
        port_offset=args.port_offset,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        admin_host=args.admin_host,
        admin_port=None if args.no_admin else args.admin_port,
        auth=_load_auth(args),
        principal_header=args.principal_header,
        max_message_size=args.max_message_size,
        compression=not args.no_compression,
        max_connections=max_connections,
        principal_quota=args.principal_quota,
        on_wrong_direction=args.on_wrong_direction,
        on_throttle=args.on_throttle,
        validate_messages=args.validate_messages,
        on_invalid=args.on_invalid,
        open_timeout=args.open_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        idle_timeout=args.idle_timeout,
        drain_timeout=args.drain_timeout,
        forward_query=not args.no_forward_query,
        forward_headers=tuple(args.forward_header),
        access_log=args.access_log,
        quota_store=args.quota_store,
        quota_store_failure=args.quota_store_failure,
        quota_lease=args.quota_lease,
    )


def _worker(args: argparse.Namespace, ports: dict[str, int], channel: Connection) -> None:
    """One worker of ``--workers N`` (in a process of its own): the listeners on the ports the
    supervisor holds, shared with ``SO_REUSEPORT``; its own admin listener on a free loopback
    port, for the supervisor only. SIGTERM drains it; SIGINT is the supervisor's to act on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    try:
        apis = _load(args)
        config = attrs.evolve(
            _config(args),
            ws_port=ports.get("ws"),
            wss_port=ports.get("wss"),
            port_offset=0,
            admin_host="127.0.0.1",
            admin_port=0,
            reuse_port=True,
        )
        relay = Relay(apis, config=config)
    except AsyncAPIGwError as exc:
        _say(f"asyncapi-gw serve: error: {exc}")
        sys.exit(EXIT_USAGE)
    sys.exit(_run_loop(_serve(relay, args, channel=channel), uvloop=not args.no_uvloop))


def _run_loop(main: Coroutine[Any, Any, int], *, uvloop: bool) -> int:
    if uvloop:
        try:
            import uvloop as fast  # noqa: PLC0415 - optional dependency
        except ImportError:
            pass
        else:
            return fast.run(main)
    return asyncio.run(main)


async def _serve(
    relay: Relay, args: argparse.Namespace, *, channel: Connection | None = None
) -> int:
    """Serve until stopped; a worker (with a ``channel`` to its supervisor) reports there
    instead of on standard error, and only SIGTERM stops it."""
    try:
        await relay.start()
    except RelayError as exc:
        return _usage(str(exc))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    stops = (signal.SIGTERM,) if channel is not None else (signal.SIGINT, signal.SIGTERM)
    for sig in stops:
        loop.add_signal_handler(sig, stop.set)
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    if channel is not None:
        report_ready(channel, relay.ports["admin"])
        return await _until(stop, relay, args, reload, stops, quiet=True)
    if relay.config.tls_cert is None and not args.no_wss:
        print("wss listener off: no --tls-cert/--tls-key given", file=sys.stderr)
    for scheme, (host, port) in relay.addresses.items():
        shown = f"[{host}]" if ":" in host else host
        if scheme == "admin":
            print(
                f"admin listener on http://{shown}:{port} (/health, /metrics)",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(f"listening on {scheme}://{shown}:{port}", file=sys.stderr, flush=True)
    return await _until(stop, relay, args, reload, stops, quiet=False)


async def _until(
    stop: asyncio.Event,
    relay: Relay,
    args: argparse.Namespace,
    reload: asyncio.Event,
    stops: tuple[signal.Signals, ...],
    *,
    quiet: bool,
) -> int:
    """Watch for reloads until ``stop``, then drain the relay."""
    watcher = asyncio.create_task(_watch(relay, args, reload))
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        loop = asyncio.get_running_loop()
        for sig in stops:
            loop.remove_signal_handler(sig)
        if not quiet:
            print("shutting down: draining connections", file=sys.stderr, flush=True)
        await relay.close()
    return EXIT_OK


DOCUMENTS, CREDENTIALS, TLS = "documents", "credentials", "TLS certificate"
FileState = tuple[int, int, int] | None  # modification time (ns), size, inode; None: absent


def _state(name: str) -> FileState:
    try:
        found = os.stat(name)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size, found.st_ino


class FileWatch:
    """Which groups of files changed since they were last loaded, once the change has settled:
    a group is due when its files differ from the loaded state and two looks in a row agree
    (a file being written is not read half-done). Pure but for ``os.stat``."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = {name: files for name, files in groups.items() if files}
        self._loaded = self._look()
        self._last = self._loaded

    def _look(self) -> dict[str, list[FileState]]:
        return {name: [_state(f) for f in files] for name, files in self.groups.items()}

    def due(self) -> list[str]:
        """The groups to reload now (they count as loaded from here on)."""
        now = self._look()
        found = [g for g in self.groups if self._loaded[g] != now[g] == self._last[g]]
        self._last = now
        for group in found:
            self._loaded[group] = now[group]
        return found

    def everything(self) -> list[str]:
        """Every group (SIGHUP): all count as loaded as they are now."""
        self._loaded = self._last = self._look()
        return list(self.groups)


def _watched(args: argparse.Namespace) -> FileWatch:
    credentials = [args.api_keys, args.jwt_secret_file, args.jwt_public_key, args.jwks]
    return FileWatch(
        {
            DOCUMENTS: list(args.files),
            CREDENTIALS: [f for f in credentials if f is not None],
            TLS: [f for f in (args.tls_cert, args.tls_key) if f is not None],
        }
    )


def _say(message: str) -> None:
    """One line on standard error in one write: the lines of several workers never mix. A
    standard error that is gone (a closed pipe) does not stop the relay."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()


def _reload(relay: Relay, args: argparse.Namespace, groups: list[str]) -> None:
    """Load the ``groups`` of files again and apply what loads; say what happened."""
    apis = auth = None
    if DOCUMENTS in groups:
        try:
            apis = _load(args)
            RouteTable.from_apis(apis)  # the relay refuses clashes: say so before reloading
        except AsyncAPIGwError as exc:
            _say(f"reload failed, still serving the previous APIs: {exc}")
            apis = None  # the credentials may still reload: a revoked key must not wait
    if CREDENTIALS in groups:
        try:
            auth = _load_auth(args)
        except RelayError as exc:
            _say(f"credential reload failed, still using the previous credentials: {exc}")
    if apis is not None or auth is not None:
        what = [f"{len(args.files)} document(s)"] if apis is not None else []
        what += ["the credentials"] if auth is not None else []
        try:
            report = relay.reload(apis, auth=auth)
        except RelayError as exc:
            _say(f"reload failed, still serving the previous APIs and credentials: {exc}")
        else:
            _say(f"reloaded {' and '.join(what)}: {report.describe()}")
    if TLS in groups:
        try:
            relay.reload_tls()
        except RelayError as exc:
            _say(f"TLS reload failed, still using the previous certificate: {exc}")
        else:
            _say("reloaded the TLS certificate: new wss connections use it")


async def _watch(relay: Relay, args: argparse.Namespace, signalled: asyncio.Event) -> None:
    """Reload everything on SIGHUP, and a group of files when one of them changed."""
    watch = _watched(args)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signalled.wait(), WATCH_INTERVAL)
        if signalled.is_set():
            signalled.clear()
            groups = watch.everything()
        else:
            groups = watch.due()
        if groups:
            _reload(relay, args, groups)
