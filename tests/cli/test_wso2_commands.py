"""Every command that takes a document takes a WSO2 API project (a folder or a zip)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from asyncapi_gw.cli import main
from asyncapi_gw.documents import parse_document

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MARKET = FIXTURES / "wso2" / "MarketFeed-1.0.0"
CHATS = FIXTURES / "wso2" / "Chats-2.0.0"
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return out


def test_validate_a_project_folder_and_zip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "validate", str(MARKET), str(_zip(CHATS, tmp_path / "c.zip")))
    assert code == 0
    assert "AsyncAPI 2.0.0 valid" in out
    assert "AsyncAPI 3.0.0 valid" in out


def test_validate_locates_api_yaml_problems(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = Path(shutil.copytree(MARKET, tmp_path / "p"))
    api_yaml = project / "api.yaml"
    api_yaml.write_text(api_yaml.read_text().replace("verb: PUBLISH", "verb: SEND", 1))
    code, out, _ = run(capsys, "validate", "--format", "json", str(project))
    assert code == 1
    report = json.loads(out)
    error = report["errors"][0]
    assert error["rule"] == "wso2-verb"
    assert error["file"].endswith("p/api.yaml")
    assert error["line"] is not None


def test_inspect_a_zip_shows_the_projects_context_and_endpoints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "inspect", "--format", "json", str(_zip(MARKET, tmp_path / "m.zip")))
    assert code == 0
    info = json.loads(out)
    assert info["context"] == "/market"
    assert info["gateway_urls"][0] == "ws://localhost:9099/market/1.0.0"
    orders = next(t for t in info["topics"] if t["name"] == "/orders/{account}")
    assert orders["backend_url"] == "ws://localhost:7070/orders?account={uri.var.account}"


def test_export_a_project_unchanged_gives_equal_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out.zip"
    code, _, err = run(capsys, "export", str(MARKET), "--wso2-project", str(out))
    assert code == 0, err
    with zipfile.ZipFile(out) as archive:
        for name in ("api.yaml", "Definitions/asyncapi.yaml", "deployment_environments.yaml"):
            written = archive.read(f"MarketFeed-1.0.0/{name}")
            assert parse_document(written).data == parse_document((MARKET / name).read_bytes()).data


def test_export_a_document_as_a_47_project(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "chats"
    code, _, err = run(
        capsys,
        "export",
        str(FIXTURES / "wso2-chats.yaml"),
        "--context",
        "/chats",
        "--wso2-project",
        str(out),
        "--wso2-version",
        "4.7",
    )
    assert code == 0, err
    meta = parse_document((out / "api.yaml").read_bytes()).data
    assert meta["version"] == "v4.7.0"
    assert meta["data"]["context"] == "/chats"
    assert (
        parse_document((out / "Definitions" / "asyncapi.yaml").read_bytes()).data["asyncapi"]
        == "3.0.0"
    )
    assert run(capsys, "validate", str(out))[0] == 0


def test_export_options_that_do_not_fit_a_project(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "export", str(MARKET), "--wso2-version", "4.6")
    assert code == 2
    assert "--wso2-project" in err
    code, _, err = run(
        capsys,
        "export",
        str(MARKET),
        "--wso2-project",
        str(tmp_path / "x"),
        "--asyncapi-version",
        "2.6.0",
    )
    assert code == 2
    code, _, err = run(
        capsys,
        "export",
        str(MARKET),
        "--wso2-project",
        str(tmp_path / "x"),
        "--wso2-version",
        "3.2",
    )
    assert code == 3
    assert "4.x" in err


def test_a_hostile_zip_is_refused_with_its_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hostile = _zip(MARKET, tmp_path / "hostile.zip")
    with zipfile.ZipFile(hostile, "a") as archive:
        archive.writestr("../../etc/cron.d/evil", b"* * * * * root true\n")
    for command in ("validate", "inspect", "export"):
        code, out, err = run(capsys, command, str(hostile))
        assert code == 1, command
        assert "project-zip-unsafe-path" in out + err


@pytest.fixture
def path_backend() -> Iterator[str]:
    """A backend that answers each connection with the path it was asked for."""

    def answer(ws: ServerConnection) -> None:
        ws.send(ws.request.path if ws.request else "?")
        for _message in ws:
            pass

    server: Server
    with serve(answer, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        thread.join(5)


def _listening(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 65536).decode()
            if not chunk:
                break
            seen += chunk
            if found := LISTENING.search(seen):
                return int(found.group(1))
    raise AssertionError(f"serve did not listen: {seen}")


def test_serve_a_project_zip_with_its_context_and_endpoints(
    tmp_path: Path, path_backend: str
) -> None:
    project = Path(shutil.copytree(MARKET, tmp_path / "MarketFeed-1.0.0"))
    api_yaml = project / "api.yaml"
    api_yaml.write_text(api_yaml.read_text().replace("ws://localhost:7070", f"{path_backend}/live"))
    archive = _zip(project, tmp_path / "MarketFeed.zip")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncapi_gw",
            "serve",
            str(archive),
            "--host",
            "127.0.0.1",
            "--ws-port",
            "0",
            "--admin-port",
            "0",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        port = _listening(proc)
        # /status is open (authType None) and has no URL mapping: the endpoint as it is.
        with connect(f"ws://127.0.0.1:{port}/market/1.0.0/status") as ws:
            assert ws.recv(5) == "/live"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            if proc.stderr:
                proc.stderr.close()


def test_convert_a_projects_definition_as_wso2_reads_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "convert", str(CHATS), "--to", "2.6.0")
    assert code == 0, err
    converted = json.loads(out)  # the definition's own format: asyncapi.json
    assert set(converted["channels"]["/chat"]) >= {"publish", "subscribe"}
    assert "publish" not in converted["channels"]["/notifications"]  # receive = SUBSCRIBE
    code, out, _ = run(capsys, "export", str(CHATS), "--asyncapi-version", "3.0.0")
    assert code == 0
    assert json.loads(out)["info"]["title"] == "Chats"
