"""``asyncapi-gw serve`` as a user runs it: a real process, signals, stderr and exit codes."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from serve_process import (
    ADMIN,
    LISTENING,
    CountingBackend,
    Serve,
    document,
    http_get,
    own_ports,
    send_until,
)
from tls_certificates import self_signed
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from asyncapi_gw.cli.serve import JWT_SECRET_ENV, QUOTA_STORE_ENV, FileWatch


def _run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "serve", *own_ports(args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_serves_relays_and_exits_0_on_sigterm(tmp_path: Path, echo_backend: str) -> None:
    doc = document(tmp_path, echo_backend)
    log = tmp_path / "access.log"
    server = Serve(str(doc), "--host", "127.0.0.1", "--ws-port", "0", "--access-log", str(log))
    try:
        found = server.wait_for(LISTENING)
        assert found.group(1, 2) == ("ws", "127.0.0.1")
        assert any("wss listener off" in line for line in server.lines)
        port = int(found.group(3))
        admin = server.wait_for(ADMIN)
        assert admin.group(1) == "127.0.0.1"  # loopback by default
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/room") as ws:
            ws.send("through the CLI")
            assert ws.recv(5) == "through the CLI"
        assert http_get(port, "/health").startswith(b"HTTP/1.1 404 ")  # not on the client listener
        assert http_get(int(admin.group(2)), "/health").startswith(b"HTTP/1.1 200 ")
    finally:
        assert server.stop() == 0
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["api"] == "Echo"
    assert entry["close_code"] == 1000


def test_sigint_is_a_clean_shutdown(tmp_path: Path) -> None:
    server = Serve(str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0")
    server.wait_for(LISTENING)
    assert server.stop(signal.SIGINT) == 0


def test_sighup_reloads_the_documents(tmp_path: Path, echo_backend: str) -> None:
    doc = document(tmp_path, echo_backend)
    server = Serve(str(doc), "--ws-port", "0")
    try:
        port = int(server.wait_for(LISTENING).group(3))
        document(tmp_path, echo_backend, title="Renamed")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(re.compile("reloaded"))
        with connect(f"ws://127.0.0.1:{port}/renamed/1.0/x") as ws:
            ws.send("new context")
            assert ws.recv(5) == "new context"
    finally:
        assert server.stop() == 0


def test_wss_listener_and_port_offset(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = Serve(
        str(document(tmp_path, "ws://127.0.0.1:9")),
        "--ws-port",
        "0",
        "--wss-port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    )
    try:
        first = server.wait_for(LISTENING)
        second = server.wait_for(LISTENING)
        assert {first.group(1), second.group(1)} == {"ws", "wss"}
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("option", ["--ws-port", "--admin-port"])
def test_port_in_use_is_exit_2(tmp_path: Path, option: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run(
            str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0", option, str(port)
        )
    assert done.returncode == 2
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_states_every_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for stated in [
        "--max-message-size N largest message in bytes",
        "(default: 1048576)",
        "--open-timeout S",
        "(default: 10.0)",
        "--ping-interval S keepalive pings to both sides; 0 is off (default: 20.0)",
        "--ping-timeout S",
        "--idle-timeout S",
        "(default: 600.0)",
        "--admin-port PORT admin listener's port (default: 9098)",
        "--admin-host HOST",
        "--port-offset N added to every port (ws, wss, admin) (default: 0)",
        "--on-throttle {reply,close}",
        "(default: reply)",
        # options without a value by default say what that means
        "--max-connections N more get HTTP 503, counted per instance",
        "rounded down (default: no limit)",
        "--workers N|auto worker processes",
        "(default: the documents' perPrincipal, if any)",
        "(default: no access log)",
    ]:
        assert stated in text, stated
    # and generically: every option with a default states it
    from asyncapi_gw.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices["serve"]
    shown = " ".join(serve.format_help().split())
    for action in serve._actions:
        default = action.default
        if not action.option_strings or any(
            default is nothing for nothing in (None, False, argparse.SUPPRESS)
        ):
            continue
        if default == []:
            continue
        assert f"(default: {default})" in shown, action.dest


def test_timers_are_set_from_the_command_line(tmp_path: Path, echo_backend: str) -> None:
    """An idle timeout of 0.5 s closes a silent connection (1001); pings off are off."""
    doc = document(tmp_path, echo_backend)
    server = Serve(
        str(doc),
        "--ws-port",
        "0",
        "--idle-timeout",
        "0.5",
        "--ping-interval",
        "0",
        "--open-timeout",
        "2",
    )
    try:
        port = int(server.wait_for(LISTENING).group(3))
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/room") as ws:
            ws.send("one")
            assert ws.recv(5) == "one"
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                ws.recv(10)
            assert ws.close_code == 1001
            assert ws.close_reason == "idle timeout"
            assert time.monotonic() - started < 5
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.json", "b.json", "--context", "/x"], "--context applies to a single FILE"),
        (["{doc}", "--tls-cert", "c.pem"], "tls_cert and tls_key go together"),
        (["{doc}", "--tls-key", "k.pem"], "tls_cert and tls_key go together"),
        (["{doc}", "--ws-port", "70000"], "not between 0 and 65535"),
        (["{doc}", "--jwt-secret", "s", "--jwks", "k.json"], "not allowed with"),
        (["{doc}", "--jwt-secret", "s", "--jwt-secret-file", "f"], "not allowed with"),
        (["{doc}", "--jwt-secret-file", "missing"], "JWT secret file missing"),
        (["{doc}", "--jwt-secret", "short"], "at least 32 bytes"),
        (["missing.yaml"], ""),
        (["{doc}", "--api-keys", "missing.json"], "API key file"),
        (["{doc}", "--idle-timeout", "-1"], "positive number of seconds"),
        (["{doc}", "--open-timeout", "0"], "positive number of seconds"),
        (["{doc}", "--principal-header", "bad name"], "principal_header"),
        (["{doc}", "--quota-store", "http://127.0.0.1:6379"], "redis://HOST:PORT/DB"),
        (["{doc}", "--quota-store", "redis://127.0.0.1:6379/zero"], "redis://HOST:PORT/DB"),
        (["{doc}", "--quota-store", "redis://127.0.0.1:99999/0"], "not a URL"),
        (["{doc}", "--quota-store-failure", "maybe"], "invalid choice"),
    ],
)
def test_usage_errors_are_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    doc = str(document(tmp_path, "ws://127.0.0.1:9"))
    done = _run(*(a.replace("{doc}", doc) for a in args), "--ws-port", "0")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_quota_store_url_is_shown_without_its_password(tmp_path: Path) -> None:
    doc = str(document(tmp_path, "ws://127.0.0.1:9"))
    env = {**os.environ, QUOTA_STORE_ENV: "redis://gw:s3cret@127.0.0.1:6379/zero"}
    done = _run(doc, "--ws-port", "0", env=env)
    assert done.returncode == 2, done.stderr
    assert "not 'redis://gw:***@127.0.0.1:6379/zero'" in done.stderr
    assert "s3cret" not in done.stderr


def test_unwritable_access_log_is_exit_2_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "no-such-dir" / "access.log"
    done = _run(
        str(document(tmp_path, "ws://127.0.0.1:9")), "--ws-port", "0", "--access-log", str(log)
    )
    assert done.returncode == 2, done.stderr
    assert f"cannot open the access log {log}" in done.stderr
    assert "cannot listen" not in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_document_is_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"asyncapi": "2.6.0", "info": {"title": "X"}, "channels": {}}))
    done = _run(str(bad), "--ws-port", "0")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_refs_may_lead_anywhere_under_the_working_directory() -> None:
    # The AsyncAPI specification's multi-file layout: service/asyncapi.yaml -> ../common/...
    project = Path(__file__).resolve().parents[2] / "fixtures" / "multi-file"
    server = Serve("chat-service/asyncapi.yaml", "--ws-port", "0", cwd=project)
    try:
        server.wait_for(LISTENING)
    finally:
        assert server.stop() == 0
    # From inside the service's folder, ../common is outside: refused without the flag.
    done = _run("asyncapi.yaml", "--ws-port", "0", cwd=project / "chat-service")
    assert done.returncode == 1, done.stderr
    assert "--allow-outside-refs" in done.stderr
    assert "Traceback" not in done.stderr


# --- reloading credentials and documents ------------------------------------------------------

RELOADED = re.compile(r"^reloaded (.*)$")


def _keys(path: Path, *keys: str) -> Path:
    path.write_text(json.dumps({key: {} for key in keys}))
    return path


@contextlib.contextmanager
def _serving_keys(
    tmp_path: Path, backend: str, *keys: str, options: tuple[str, ...] = ()
) -> Iterator[tuple[Serve, Path, str]]:
    """``serve`` of an API-key API with ``keys`` in a keys file: the server, the keys file and
    the URL that takes a key at its end; stopped (exit 0) at the end."""
    doc = document(tmp_path, backend, security="key")
    keys_file = _keys(tmp_path / "keys.json", *keys)
    server = Serve(str(doc), "--ws-port", "0", "--api-keys", str(keys_file), *options)
    try:
        url = f"ws://127.0.0.1:{server.wait_for(LISTENING).group(3)}/echo/1.0/x?apikey="
        yield server, keys_file, url
    finally:
        assert server.stop() == 0


def _closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait (up to 10 s a message) for the relay to close ``ws``: the code and reason."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            ws.recv(10)
    frame = ws.protocol.close_rcvd
    return (frame.code, frame.reason) if frame else (None, None)


def test_sighup_reloads_api_keys_a_revoked_key_closes_4001_and_is_refused(
    tmp_path: Path, echo_backend: str
) -> None:
    log = tmp_path / "access.log"
    serving = _serving_keys(
        tmp_path, echo_backend, "alice-key", "bob-key", options=("--access-log", str(log))
    )
    with serving as (server, keys, url):
        with connect(url + "alice-key") as alice, connect(url + "bob-key") as bob:
            _keys(keys, "bob-key")
            server.proc.send_signal(signal.SIGHUP)
            line = server.wait_for(RELOADED).group(1)
            assert line == (
                "1 document(s) and the credentials: 1 connection kept, "
                "1 closed: 1 with 4001 reload: API key revoked"
            )
            assert _closed_with(alice) == (4001, "reload: API key revoked")
            bob.send("still here")
            assert bob.recv(5) == "still here"
        with pytest.raises(InvalidStatus) as refused:
            connect(url + "alice-key")
        assert refused.value.response.status_code == 401
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e.get("close_reason") for e in entries if e.get("close_code") == 4001] == [
        "reload: API key revoked"
    ]
    assert "alice-key" not in log.read_text()


def test_a_broken_credentials_file_keeps_the_previous_credentials(
    tmp_path: Path, echo_backend: str
) -> None:
    with _serving_keys(tmp_path, echo_backend, "alice-key") as (server, keys, url):
        with connect(url + "alice-key") as alice:
            keys.write_text('{"bob-key": {"scopes": "not a list"}}')
            server.proc.send_signal(signal.SIGHUP)
            failed = server.wait_for(re.compile("credential reload failed.*"))
            assert "still using the previous credentials" in failed.group(0)
            assert "API key file" in failed.group(0)
            assert "bob-key" not in failed.group(0)
            alice.send("kept")
            assert alice.recv(5) == "kept"
        with connect(url + "alice-key") as again:
            again.send("still accepted")
            assert again.recv(5) == "still accepted"


def test_the_watcher_reloads_a_saved_keys_file_without_a_signal(
    tmp_path: Path, echo_backend: str
) -> None:
    with _serving_keys(tmp_path, echo_backend, "alice-key") as (server, keys, url):
        with connect(url + "alice-key") as alice:
            _keys(keys, "bob-key")
            line = server.wait_for(RELOADED).group(1)
            assert line.startswith("the credentials: 0 connections kept, 1 closed")
            assert _closed_with(alice) == (4001, "reload: API key revoked")
        with connect(url + "bob-key") as bob:
            bob.send("new key")
            assert bob.recv(5) == "new key"


def test_a_plain_save_of_the_document_keeps_its_connections(
    tmp_path: Path, echo_backend: str
) -> None:
    doc = document(tmp_path, echo_backend)
    server = Serve(str(doc), "--ws-port", "0")
    try:
        url = f"ws://127.0.0.1:{server.wait_for(LISTENING).group(3)}/echo/1.0/x"
        with connect(url) as ws:
            document(tmp_path, echo_backend, description="a description added")
            assert server.wait_for(RELOADED).group(1) == "1 document(s): 1 connection kept"
            ws.send("still relayed")
            assert ws.recv(5) == "still relayed"
    finally:
        assert server.stop() == 0


def _hs256(secret: str, claims: dict[str, object] | None = None) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = json.dumps({"sub": "me"} if claims is None else claims).encode()
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(body)
    signature = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return f"{head}.{b64(signature)}"


@pytest.mark.parametrize("given", ["file", "environment", "command line"])
def test_the_jwt_secret_from_a_file_the_environment_or_the_command_line(
    tmp_path: Path, echo_backend: str, given: str
) -> None:
    secret = "s" * 40
    doc = document(tmp_path, echo_backend, security="token")
    args = [str(doc), "--ws-port", "0"]
    env = {k: v for k, v in os.environ.items() if k != JWT_SECRET_ENV}
    if given == "file":
        (tmp_path / "secret").write_text(secret + "\n")
        args += ["--jwt-secret-file", str(tmp_path / "secret")]
    elif given == "environment":
        env[JWT_SECRET_ENV] = secret
    else:
        args += ["--jwt-secret", secret]
    server = Serve(*args, env=env)
    try:
        port = server.wait_for(LISTENING).group(3)
        warned = any("--jwt-secret shows the secret" in line for line in server.lines)
        assert warned is (given == "command line")
        with connect(f"ws://127.0.0.1:{port}/echo/1.0/x?access_token={_hs256(secret)}") as ws:
            ws.send("signed")
            assert ws.recv(5) == "signed"
    finally:
        assert server.stop() == 0


def test_a_rotated_secret_file_closes_the_old_tokens_connections(
    tmp_path: Path, echo_backend: str
) -> None:
    old, new = "o" * 40, "n" * 40
    secret = tmp_path / "secret"
    secret.write_text(old)
    doc = document(tmp_path, echo_backend, security="token")
    server = Serve(str(doc), "--ws-port", "0", "--jwt-secret-file", str(secret))
    try:
        url = f"ws://127.0.0.1:{server.wait_for(LISTENING).group(3)}/echo/1.0/x?access_token="
        with connect(url + _hs256(old)) as ws:
            secret.write_text(new)
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for(RELOADED)
            reason = "reload: the token's signing key is no longer accepted"
            assert _closed_with(ws) == (4001, reason)
        with connect(url + _hs256(new)) as ws:
            ws.send("rotated")
            assert ws.recv(5) == "rotated"
    finally:
        assert server.stop() == 0


def test_file_watch_reloads_a_group_once_its_change_has_settled(tmp_path: Path) -> None:
    doc, keys = tmp_path / "doc.json", tmp_path / "keys.json"
    doc.write_text("{}")
    keys.write_text("{}")
    watch = FileWatch({"documents": [str(doc)], "credentials": [str(keys)], "TLS": []})
    assert watch.groups == {"documents": [str(doc)], "credentials": [str(keys)]}
    assert watch.due() == []
    keys.write_text('{"half": ')  # a save in progress
    assert watch.due() == []  # seen once: not yet
    keys.write_text('{"half": {}}')
    assert watch.due() == []  # changed again: still not settled
    assert watch.due() == ["credentials"]
    assert watch.due() == []
    keys.unlink()
    doc.write_text('{"x": 1}')
    assert watch.due() == []
    assert watch.due() == ["documents", "credentials"]
    assert watch.everything() == ["documents", "credentials"]
    assert watch.due() == []


def _served_certificate(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der)


def test_sighup_reloads_the_tls_certificate_and_keeps_it_when_broken(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cert, key = self_signed(first)
    doc = document(tmp_path, "ws://127.0.0.1:9")
    args = ("--ws-port", "0", "--wss-port", "0", "--tls-cert", cert, "--tls-key", key)
    server = Serve(str(doc), *args)
    try:
        found = [server.wait_for(LISTENING), server.wait_for(LISTENING)]
        port = next(int(f.group(3)) for f in found if f.group(1) == "wss")
        assert _served_certificate(port) == Path(cert).read_text()
        new_cert, new_key = self_signed(second)
        Path(cert).write_text(Path(new_cert).read_text())
        Path(key).write_text(Path(new_key).read_text())
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(re.compile("reloaded the TLS certificate"))
        assert _served_certificate(port) == Path(new_cert).read_text()
        Path(key).write_text("not a key")
        server.proc.send_signal(signal.SIGHUP)
        failed = server.wait_for(re.compile("TLS reload failed.*"))
        assert "still using the previous certificate" in failed.group(0)
        assert _served_certificate(port) == Path(new_cert).read_text()
    finally:
        assert server.stop() == 0


def test_an_api_from_new_serves_without_hand_edits(tmp_path: Path, echo_backend: str) -> None:
    """``new`` with scopes, an open topic and a per-principal quota, then ``serve``: each
    setting takes effect as written."""
    doc = tmp_path / "chats.yaml"
    created = subprocess.run(
        [sys.executable, "-m", "asyncapi_gw", "new", "--name", "Chats", "--version", "1",
         "--endpoint", echo_backend, "--auth", "oauth2",
         "--topic", "/rooms/{roomId}", "--topic", "/news",
         "--scope", "/rooms/{roomId}=chat:write", "--open-topic", "/news",
         "--throttling", "100/minute", "--per-principal", "2", "-o", str(doc)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = "k" * 32
    server = Serve(str(doc), "--ws-port", "0", "--jwt-secret", secret)
    try:
        base = f"ws://127.0.0.1:{int(server.wait_for(LISTENING).group(3))}/chats/1"
        with connect(f"{base}/news") as ws:  # open: no credential
            ws.send("news")
            assert ws.recv(5) == "news"
        for claims, status in [(None, 401), ({"sub": "bob", "scope": "chat:read"}, 403)]:
            query = "" if claims is None else f"?access_token={_hs256(secret, claims)}"
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{base}/rooms/1{query}")
            assert refused.value.response.status_code == status
        token = _hs256(secret, {"sub": "alice", "scope": "chat:write"})
        with connect(f"{base}/rooms/1?access_token={token}") as ws:
            answers = []
            for n in range(3):
                ws.send(f"m{n}")
                answers.append(ws.recv(5))
        assert answers == ["m0", "m1", "Error code: 4003 reason: Websocket frame throttled out"]
    finally:
        assert server.stop() == 0


def test_a_document_the_relay_refuses_does_not_hold_back_a_key_revocation(
    tmp_path: Path, echo_backend: str
) -> None:
    """SIGHUP after a key was revoked and the document gained two topics that match the same
    paths: the APIs stay as they were, and the revocation still applies."""
    with _serving_keys(tmp_path, echo_backend, "alice-key", "bob-key") as (server, keys, url):
        with connect(url + "alice-key") as alice, connect(url + "bob-key") as bob:
            _keys(keys, "bob-key")
            doc = tmp_path / "echo.json"
            document = json.loads(doc.read_text())
            document["channels"] = {"/a/{x}": {"publish": {}}, "/a/{y}": {"publish": {}}}
            doc.write_text(json.dumps(document))
            server.proc.send_signal(signal.SIGHUP)
            failed = server.wait_for(re.compile("reload failed.*"))
            assert "still serving the previous APIs" in failed.group(0)
            assert server.wait_for(RELOADED).group(1) == (
                "the credentials: 1 connection kept, 1 closed: 1 with 4001 reload: API key revoked"
            )
            assert _closed_with(alice) == (4001, "reload: API key revoked")
            bob.send("still here")
            assert bob.recv(5) == "still here"
        with pytest.raises(InvalidStatus) as refused:
            connect(url + "alice-key")
        assert refused.value.response.status_code == 401


def test_relay_processes_sharing_redis_hold_a_per_api_quota_within_the_bound(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Three ``serve`` processes share one Redis and one API's 200-a-second quota, two clients
    each sending as fast as they get answers: what the backend receives in every second stays
    within the documented bound, limit + processes * lease, and the limit is used."""
    limit, lease, processes = 200, 10, 3
    with CountingBackend() as backend:
        doc = backend.throttled_document(tmp_path, limit)
        relays = [
            Serve(str(doc), "--ws-port", "0", "--quota-store", redis_server.url,
                  "--quota-lease", str(lease))
            for _ in range(processes)
        ]  # fmt: skip
        try:
            ports = [int(r.wait_for(LISTENING).group(3)) for r in relays]
            throttled = send_until(ports * 2, 3.5)
        finally:
            for relay in relays:
                assert relay.stop() == 0
    counts = backend.per_second()
    print(f"per-second passes {counts}, limit {limit}, overshoot {max(counts) - limit}")
    assert throttled > 0
    assert max(counts) <= limit + processes * lease
    assert min(counts) >= limit - processes * lease  # no process sat on unused leases


def test_the_quota_store_from_the_environment_or_the_command_line_with_a_warning(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A Redis password on the command line is every local user's to read, as a JWT secret
    is: serve warns and takes the URL from ASYNCAPI_GW_QUOTA_STORE instead."""
    assert redis_server.command("ACL", "SETUSER", "gw", "on", ">s3cret", "~*", "+@all") == "+OK"
    url = f"redis://gw:s3cret@127.0.0.1:{redis_server.port}/0"
    doc = str(document(tmp_path, "ws://127.0.0.1:9"))
    env = {k: v for k, v in os.environ.items() if k != QUOTA_STORE_ENV}
    for args, extra in (((doc, "--quota-store", url), {}), ((doc,), {QUOTA_STORE_ENV: url})):
        server = Serve(*args, "--ws-port", "0", env={**env, **extra})
        try:
            admin = int(server.wait_for(ADMIN).group(2))
            metrics = http_get(admin, "/metrics", whole=True).decode()
            assert "asyncapi_gw_quota_store_up 1" in metrics
            server.wait_for(LISTENING)
        finally:
            server.stop()
        warned = [line for line in server.lines if line.startswith("warning: --quota-store")]
        assert len(warned) == (1 if "--quota-store" in args else 0), server.lines
        assert all(QUOTA_STORE_ENV in line and "s3cret" not in line for line in warned)
