"""Security end to end through a running relay: forged and misused credentials, path tricks,
control characters in forwarded values and the wss listener's TLS floor.  Every attack is
counted; none may succeed (reach a backend, another API, topic, host or path).

Short by default; ``RELIABILITY_SCALE=long pytest -m slow`` widens the path-trick product.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import ssl
import time
from pathlib import Path
from urllib.parse import unquote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from relay_harness import PUB, UPGRADE, api, backend, run
from relay_load import scales
from tls_certificates import self_signed
from websockets.asyncio.client import connect

from asyncapi_gw.model import AuthKind, Endpoint, Operation, SecurityScheme, Topic, TopicOperation
from asyncapi_gw.relay import ApiKeyInfo, AuthConfig, Relay


async def _handshake(port: int, target: str, headers: str = "") -> int:
    """The status a raw upgrade request gets (0 when the relay drops it without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n{UPGRADE}{headers}\r\n".encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return 0
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1])


def _pem(key: rsa.RSAPrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_tokens(private: bytes, public: bytes) -> dict[str, str]:
    now = time.time()
    good = {"sub": "me", "iss": "https://issuer", "aud": "gw", "exp": now + 600}
    other_private, _ = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    valid = jwt.encode(good, private, algorithm="RS256")
    head, body, sig = valid.split(".")
    tampered = _b64(json.dumps({**good, "sub": "admin"}).encode())
    unsigned = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "alg none": f"{unsigned}.{body}.",
        "alg none with the valid signature": f"{unsigned}.{body}.{sig}",
        "alg None (case)": _b64(b'{"alg":"None"}') + f".{body}.",
        "wrong key": jwt.encode(good, other_private, algorithm="RS256"),
        "HS256 keyed with the public key (key confusion)": _hs256(public, good),
        "expired": jwt.encode({**good, "exp": now - 3600}, private, algorithm="RS256"),
        "not yet valid": jwt.encode({**good, "nbf": now + 3600}, private, algorithm="RS256"),
        "wrong issuer": jwt.encode({**good, "iss": "https://evil"}, private, algorithm="RS256"),
        "wrong audience": jwt.encode({**good, "aud": "other"}, private, algorithm="RS256"),
        "no audience": jwt.encode(
            {k: v for k, v in good.items() if k != "aud"}, private, algorithm="RS256"
        ),
        "tampered payload": f"{head}.{tampered}.{sig}",
        "signature stripped": f"{head}.{body}.",
        "two tokens glued": f"{valid}.{valid}",
        "empty": "",
    }


def _hs256(secret: bytes, claims: dict[str, object]) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def test_forged_and_misused_tokens_never_pass() -> None:
    private, public = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    auth = AuthConfig(
        jwt_public_key=public.decode(), jwt_issuer="https://issuer", jwt_audience="gw", leeway=0
    )
    forged = _forged_tokens(private, public)
    valid = jwt.encode(
        {"sub": "me", "iss": "https://issuer", "aud": "gw", "exp": time.time() + 600},
        private,
        algorithm="RS256",
    )

    async def main() -> None:
        async with backend() as b:
            secured = api(b.url, security=(SecurityScheme(name="oauth", kind=AuthKind.OAUTH2),))
            async with Relay([secured], ws_port=0, auth=auth) as relay:
                port = relay.ports["ws"]
                results = {}
                for name, token in forged.items():
                    results[f"{name} (header)"] = await _handshake(
                        port, "/chat/1.0/x", f"Authorization: Bearer {token}\r\n"
                    )
                    results[f"{name} (query)"] = await _handshake(
                        port, f"/chat/1.0/x?access_token={token}"
                    )
                # the valid token in both places at once is ambiguous
                results["valid token in header and query"] = await _handshake(
                    port, f"/chat/1.0/x?access_token={valid}", f"Authorization: Bearer {valid}\r\n"
                )
                results["valid token twice in the header"] = await _handshake(
                    port,
                    "/chat/1.0/x",
                    f"Authorization: Bearer {valid}\r\nAuthorization: Bearer {valid}\r\n",
                )
                assert {k: v for k, v in results.items() if v != 401} == {}
                assert b.paths == []  # zero successes
                # the control: the valid token passes, and never reaches the backend
                assert await _handshake(port, f"/chat/1.0/x?access_token={valid}") == 101
                assert (
                    await _handshake(port, "/chat/1.0/x", f"AUTHORIZATION: Bearer {valid}\r\n")
                    == 101
                )
                await asyncio.sleep(0.1)
                assert b.paths == ["/", "/"]
                assert all(valid not in json.dumps(h) for h in b.headers)

    run(main())


def test_api_keys_of_the_wrong_environment_and_header_tricks_never_pass() -> None:
    keys = {
        "prod-key": ApiKeyInfo(environment="production"),
        "sand-key": ApiKeyInfo(environment="sandbox"),
    }
    auth = AuthConfig(api_keys=keys)
    scheme = (SecurityScheme(name="key", kind=AuthKind.API_KEY),)

    async def main() -> None:
        async with backend() as prod, backend() as sand, backend() as solo:
            both = api(prod.url, security=scheme, sandbox_endpoint=Endpoint(url=sand.url))
            prod_only = api(solo.url, name="Solo", context="/solo", security=scheme)
            async with Relay([both, prod_only], ws_port=0, auth=auth) as relay:
                port = relay.ports["ws"]
                attacks = {
                    "sandbox key, API without sandbox": ("/solo/1.0/x?apikey=sand-key", ""),
                    "sandbox key in header, API without sandbox": (
                        "/solo/1.0/x",
                        "apikey: sand-key\r\n",
                    ),
                    "key in header and query": (
                        "/chat/1.0/x?apikey=prod-key",
                        "apikey: prod-key\r\n",
                    ),
                    "key twice in the query": ("/chat/1.0/x?apikey=prod-key&apikey=prod-key", ""),
                    "key twice in headers": (
                        "/chat/1.0/x",
                        "apikey: prod-key\r\nApiKey: prod-key\r\n",
                    ),
                    "good and bad key in headers": (
                        "/chat/1.0/x",
                        "apikey: nope\r\nAPIKEY: prod-key\r\n",
                    ),
                    "key and bearer token": (
                        "/chat/1.0/x?apikey=prod-key",
                        "Authorization: Bearer x\r\n",
                    ),
                    "name with a dash": ("/chat/1.0/x", "api-key: prod-key\r\n"),
                    "name with an underscore": ("/chat/1.0/x", "api_key: prod-key\r\n"),
                    "query name in capitals": ("/chat/1.0/x?APIKEY=prod-key", ""),
                    "key with a suffix": ("/chat/1.0/x?apikey=prod-key%00", ""),
                    "key with a trailing space": ("/chat/1.0/x?apikey=prod-key%20", ""),
                    "no key": ("/chat/1.0/x", ""),
                }
                results = {n: await _handshake(port, t, h) for n, (t, h) in attacks.items()}
                assert {n: s for n, s in results.items() if s == 101} == {}
                assert all(s in (400, 401, 403) for s in results.values()), results
                assert prod.paths == sand.paths == solo.paths == []
                # controls: header names are case-insensitive; keys pick their environment
                assert await _handshake(port, "/chat/1.0/x", "APIKEY: prod-key\r\n") == 101
                assert await _handshake(port, "/chat/1.0/x?apikey=sand-key") == 101
                await asyncio.sleep(0.1)
                assert (len(prod.paths), len(sand.paths), solo.paths) == (1, 1, [])
                forwarded = prod.headers + sand.headers
                assert all("apikey" not in {k.lower() for k in h} for h in forwarded)

    run(main())


_TRICKS = [
    "",
    "/",
    "//",
    ".",
    "..",
    "%2e",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2f",
    "%2F",
    "%5c",
    "\\\\",
    "%00",
    "%0a",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%252e%252e",
    "%252f",
    ";",
    "..;",
    "%20",
    "@127.0.0.1:1",
    "?",
    "#",
    "%3f",
    "%23",
    "admin",
    "a",
]


def _targets(depth: int) -> list[str]:
    out = []
    for combo in itertools.product(_TRICKS, repeat=depth):
        joined = "".join(combo)
        out += [
            f"/chat/1.0/rooms/{joined}",
            f"/chat/1.0/rooms/{joined}/x",
            f"/chat/1.0/{joined}/admin/1.0/x",
            f"/chat{joined}/1.0/rooms/a",
            f"/chat/1.0{joined}/rooms/a",
            f"/{joined}/admin/1.0/x",
            f"/chat/1.0/rooms/a{joined}",
        ]
    return sorted(set(out))


@pytest.mark.parametrize("depth", scales(1, 2))
def test_path_tricks_reach_no_other_api_topic_host_or_path(depth: int) -> None:
    mapping = "/rooms/{uri.var.roomId}"
    rooms = Topic(
        name="/rooms/{roomId}",
        publish=TopicOperation(operation=Operation.PUBLISH, uri_mapping=mapping),
        subscribe=TopicOperation(operation=Operation.SUBSCRIBE, uri_mapping=mapping),
    )
    targets = _targets(depth)

    async def main() -> None:
        async with backend() as chat, backend() as admin:
            apis = [
                api(chat.url, topics=(rooms,)),
                api(
                    admin.url,
                    name="Admin",
                    context="/admin",
                    topics=(Topic(name="/secret", publish=PUB),),
                ),
            ]
            async with Relay(apis, ws_port=0, ping_interval=None) as relay:
                port = relay.ports["ws"]
                gate = asyncio.Semaphore(50)

                async def one(target: str) -> tuple[str, int]:
                    async with gate:
                        return target, await _handshake(port, target)

                results = dict(await asyncio.gather(*(one(t) for t in targets)))
                await asyncio.sleep(0.2)
                assert admin.paths == []  # no trick reached the other API's backend
                for path in chat.paths:  # nor left the topic's mapped path
                    match = re.fullmatch(r"/rooms/([^/?#]+)", path.split("?", 1)[0])
                    assert match, path
                    segment = unquote(match.group(1))
                    assert segment not in (".", ".."), path
                    assert not re.search(r"[\x00-\x1f]", segment), path
                    assert "%00" not in path.split("?", 1)[0].lower()  # the query is verbatim
                accepted = [t for t, s in results.items() if s == 101]
                assert len(accepted) == len(chat.paths)
                print(
                    f"\npath tricks: {len(targets)} targets, {len(accepted)} relayed within "
                    f"/rooms/<one segment>, {len(targets) - len(accepted)} refused"
                )

    run(main(), timeout=600)


def test_control_characters_never_reach_the_backend_raw() -> None:
    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=0, forward_headers=["X-Tenant"]) as relay,
        ):
            port = relay.ports["ws"]
            attacks = {
                "CRLF in a query value": ("/chat/1.0/x?q=a%0d%0aX-Evil:%201", ""),
                "LF in a query value": ("/chat/1.0/x?q=a%0aX-Evil:%201", ""),
                "NUL in a query value": ("/chat/1.0/x?q=a%00b", ""),
                "raw CR in the target": ("/chat/1.0/x?q=a\rX-Evil: 1", ""),
                "raw TAB in the target": ("/chat/1.0/x?q=a\tb", ""),
                "raw DEL in the target": ("/chat/1.0/x?q=a\x7fb", ""),
                "NUL in a forwarded header": ("/chat/1.0/x", "X-Tenant: a\x00b\r\n"),
                "bare CR in a forwarded header": ("/chat/1.0/x", "X-Tenant: a\rX-Evil: 1\r\n"),
                "obs-fold in a forwarded header": (
                    "/chat/1.0/x",
                    "X-Tenant: a\r\n X-Evil: 1\r\n",
                ),
                "ESC in a forwarded header": ("/chat/1.0/x", "X-Tenant: a\x1b[31mb\r\n"),
                "spoofed X-Forwarded-For": ("/chat/1.0/x", "X-Forwarded-For: 10.0.0.1\r\n"),
                "spoofed Host": ("/chat/1.0/x", "X-Forwarded-Host: evil\r\n"),
            }
            results = {n: await _handshake(port, t, h) for n, (t, h) in attacks.items()}
            await asyncio.sleep(0.2)
            for headers in b.headers:
                assert not {k.lower() for k in headers} & {"x-evil"}, headers
                for name, value in headers.items():
                    assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", name + value), (
                        name,
                        value,
                    )
                assert headers.get("X-Forwarded-For") == "127.0.0.1"
                assert headers.get("X-Forwarded-Host", "x") == "x"
            for path in b.paths:
                assert not re.search(r"[\x00-\x20\x7f]", path), path
            print(f"\ncontrol characters: {results}")

    run(main())


_MODERN = re.compile(r"^(TLS_AES|TLS_CHACHA20|ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20))")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_wss_listener_speaks_only_tls_1_2_and_up_with_modern_ciphers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)

    def context(maximum: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = maximum
        ctx.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
        return ctx

    async def attempt(port: int, ctx: ssl.SSLContext) -> str | None:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=ctx), 10
            )
        except (ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError):
            return None
        cipher = writer.get_extra_info("cipher")
        writer.close()
        return f"{cipher[1]} {cipher[0]}"

    weak = [
        (ssl.TLSVersion.TLSv1, None),
        (ssl.TLSVersion.TLSv1_1, None),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384"),
        (ssl.TLSVersion.TLSv1_2, "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-DES-CBC3-SHA:DES-CBC3-SHA:RC4-SHA:NULL:eNULL:aNULL"),
    ]

    async def main() -> None:
        async with (
            backend() as b,
            Relay([api(b.url)], ws_port=None, wss_port=0, tls_cert=cert, tls_key=key) as relay,
        ):
            port = relay.ports["wss"]
            weak_results = [await attempt(port, context(v, c)) for v, c in weak]
            assert weak_results == [None] * len(weak)
            strong = [
                await attempt(
                    port, context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
                ),
                await attempt(port, context(ssl.TLSVersion.TLSv1_2)),
                await attempt(port, context(ssl.TLSVersion.MAXIMUM_SUPPORTED)),
            ]
            assert all(s is not None and _MODERN.match(s.split()[1]) for s in strong), strong
            ctx = context(ssl.TLSVersion.MAXIMUM_SUPPORTED)
            async with connect(f"wss://127.0.0.1:{port}/chat/1.0/x", ssl=ctx, open_timeout=5) as ws:
                await ws.send("over tls")
                assert await ws.recv() == "over tls"
            print(f"\nTLS: refused {len(weak)} weak offers, accepted {strong}")

    run(main())
