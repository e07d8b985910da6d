"""Handshake authentication: JWTs, API keys, credential placement, scopes, key configuration."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import (
    AuthKind,
    AuthType,
    Environment,
    Operation,
    SecurityScheme,
    StreamingAPI,
    Topic,
    TopicOperation,
)
from asyncapi_gw.relay.auth import (
    ApiKeyInfo,
    AuthConfig,
    Authenticator,
    Principal,
    Rejection,
)
from asyncapi_gw.relay.credentials import load_auth_config

NOW = 1_700_000_000.0
SECRET = "s" * 40
OTHER_SECRET = "t" * 40

OAUTH2 = SecurityScheme(name="oauth", kind=AuthKind.OAUTH2)
API_KEY = SecurityScheme(name="key", kind=AuthKind.API_KEY)
SCOPED = Topic(
    name="/rooms",
    publish=TopicOperation(operation=Operation.PUBLISH, scopes=("chat:write",)),
    subscribe=TopicOperation(operation=Operation.SUBSCRIBE, scopes=("chat:read",)),
)
UNSCOPED = Topic(name="/news", subscribe=TopicOperation(operation=Operation.SUBSCRIBE))


def make_api(*schemes: SecurityScheme) -> StreamingAPI:
    return StreamingAPI(
        name="Chat", version="1.0", context="/chat", topics=(SCOPED, UNSCOPED), security=schemes
    )


BOTH = make_api(OAUTH2, API_KEY)


@attrs.frozen
class Keys:
    rsa_key: rsa.RSAPrivateKey
    rsa_other: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey

    def pem(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.decode()


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa_other=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_int(value: int, size: int = 0) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


SigningKey = bytes | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def sign(header: Mapping[str, Any], claims: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWS minted here, independently of PyJWT: HMAC-SHA256 for bytes (any bytes,
    PEM text included), RSASSA-PKCS1-v1_5 SHA-256 for RSA, raw r||s ECDSA P-256 for EC."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    data = signing_input.encode()
    if isinstance(key, bytes):
        signature = hmac.new(key, data, hashlib.sha256).digest()
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64(signature)}"


def token(
    claims: Mapping[str, Any], key: str | SigningKey = SECRET, alg: str = "HS256", **header: Any
) -> str:
    secret = key.encode() if isinstance(key, str) else key
    return sign({"alg": alg, "typ": "JWT", **header}, claims, secret)


def auth(
    authenticator: Authenticator,
    *,
    headers: list[tuple[str, str]] | None = None,
    query: list[tuple[str, str]] | None = None,
    api: StreamingAPI = BOTH,
    topic: Topic = UNSCOPED,
    now: float = NOW,
) -> Principal | Rejection:
    return authenticator.authenticate(
        api=api, topic=topic, headers=headers or [], query=query or [], now=now
    )


def bearer(authenticator: Authenticator, tok: str, **kwargs: Any) -> Principal | Rejection:
    return auth(authenticator, headers=[("Authorization", f"Bearer {tok}")], **kwargs)


def rejected(outcome: Principal | Rejection, status: int = 401) -> str:
    assert isinstance(outcome, Rejection), outcome
    assert outcome.status == status, outcome
    return outcome.reason


HS = Authenticator(AuthConfig(jwt_secret=SECRET))
GOOD = {"sub": "alice", "exp": NOW + 600, "scope": "chat:read"}


# --- JWT: algorithms and keys -----------------------------------------------------------------


def test_hs256_token_gives_its_principal() -> None:
    principal = bearer(HS, token(GOOD))
    assert principal == Principal(
        kind=AuthKind.OAUTH2,
        subject="alice",
        scopes=frozenset({"chat:read"}),
        environment="production",
        expires_at=NOW + 600 + 30,
        credential_id=hashlib.sha256(b"HS256:" + SECRET.encode()).digest(),
    )
    assert SECRET not in repr(principal)


def test_rs256_and_es256_tokens_verify_with_a_pem_key(keys: Keys) -> None:
    rs = Authenticator(AuthConfig(jwt_public_key=keys.pem(keys.rsa_key)))
    es = Authenticator(AuthConfig(jwt_public_key=keys.pem(keys.ec_key)))
    assert isinstance(bearer(rs, token(GOOD, keys.rsa_key, "RS256")), Principal)
    assert isinstance(bearer(es, token(GOOD, keys.ec_key, "ES256")), Principal)
    # Each key verifies only its own algorithm.
    rejected(bearer(rs, token(GOOD, keys.ec_key, "ES256")))
    rejected(bearer(es, token(GOOD, keys.rsa_key, "RS256")))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(alg: str) -> None:
    unsigned = (
        f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{b64(json.dumps(GOOD).encode())}."
    )
    assert "algorithm" in rejected(bearer(HS, unsigned))


def test_unsigned_token_without_alg_is_refused() -> None:
    unsigned = f"{b64(b'{}')}.{b64(json.dumps(GOOD).encode())}."
    rejected(bearer(HS, unsigned))


@pytest.mark.parametrize("alg", ["HS512", "HS384", "PS256", "RS512", "ES384"])
def test_algorithms_outside_the_allow_list_are_refused(alg: str) -> None:
    forged = sign({"alg": alg, "typ": "JWT"}, GOOD, SECRET.encode())
    assert "algorithm" in rejected(bearer(HS, forged))


def test_non_string_alg_is_refused() -> None:
    forged = sign({"alg": ["HS256"]}, GOOD, SECRET.encode())
    rejected(bearer(HS, forged))


def test_wrong_secret_and_wrong_rsa_key_fail_the_signature(keys: Keys) -> None:
    assert rejected(bearer(HS, token(GOOD, OTHER_SECRET))) == "invalid token signature"
    rs = Authenticator(AuthConfig(jwt_public_key=keys.pem(keys.rsa_key)))
    assert rejected(bearer(rs, token(GOOD, keys.rsa_other, "RS256"))) == "invalid token signature"


def test_hs256_signed_with_the_rsa_public_key_is_refused(keys: Keys) -> None:
    pem = keys.pem(keys.rsa_key)
    forged = sign({"alg": "HS256", "typ": "JWT"}, GOOD, pem.encode())
    rs = Authenticator(AuthConfig(jwt_public_key=pem))
    assert "does not match" in rejected(bearer(rs, forged))
    jwks = Authenticator(AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "a")]}))
    rejected(bearer(jwks, sign({"alg": "HS256", "kid": "a"}, GOOD, pem.encode())))


def test_tampered_payload_fails_the_signature() -> None:
    head, _, sig = token(GOOD).split(".")
    raised = b64(json.dumps({**GOOD, "scope": "chat:read chat:admin"}).encode())
    assert rejected(bearer(HS, f"{head}.{raised}.{sig}")) == "invalid token signature"


def test_tampered_header_fails_the_signature() -> None:
    _, body, sig = token(GOOD).split(".")
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "x"}).encode())
    rejected(bearer(HS, f"{head}.{body}.{sig}"))


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "a.b",
        "a.b.c",
        "!!!.@@@.###",
        "e30.e30",
        "eyJhbGciOiJIUzI1NiJ9.%%%%.abc",
        "eyJhbGciOiJIUzI1NiJ9.e30.a.b",
        "....",
        "x" * 100_000,
        "eyJ" + "a" * 10_000 + ".e30.sig",
        "é.é.é",
    ],
)
def test_malformed_tokens_are_refused(bad: str) -> None:
    rejected(bearer(HS, bad))
    rejected(auth(HS, query=[("access_token", bad)]))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "kid": ["a"]},
        {"alg": "HS256", "kid": {"a": 1}},
        {"alg": "HS256", "crit": ["exp"], "exp": 1},
        {"alg": "HS256", "b64": False, "crit": ["b64"]},
    ],
)
def test_validly_signed_tokens_with_bad_headers_are_refused(
    header: dict[str, Any], keys: Keys
) -> None:
    jwks = Authenticator(AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "a")]}))
    for authenticator in (HS, jwks):
        rejected(bearer(authenticator, sign(header, GOOD, SECRET.encode())))


def test_header_that_is_not_an_object_is_refused() -> None:
    assert rejected(bearer(HS, f"{b64(b'[]')}.{b64(b'{}')}.sig")) == "malformed bearer token"


def test_signature_valid_but_payload_not_an_object_is_refused() -> None:
    forged = sign({"alg": "HS256"}, GOOD, SECRET.encode())
    head, _, _ = forged.split(".")
    signing_input = f"{head}.{b64(b'[1, 2]')}"
    sig = b64(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())
    assert rejected(bearer(HS, f"{signing_input}.{sig}")) == "malformed bearer token"


def test_es256_signature_of_the_wrong_length_is_refused(keys: Keys) -> None:
    es = Authenticator(AuthConfig(jwt_public_key=keys.pem(keys.ec_key)))
    head, body, _ = token(GOOD, keys.ec_key, "ES256").split(".")
    assert rejected(bearer(es, f"{head}.{body}.{b64(b'short')}")) == "invalid token signature"


# --- JWT: claims ------------------------------------------------------------------------------


def test_expiry_is_checked_with_the_leeway() -> None:
    strict = Authenticator(AuthConfig(jwt_secret=SECRET, leeway=0))
    tok = token({"exp": NOW})
    assert rejected(bearer(strict, tok)) == "token expired"
    assert isinstance(bearer(strict, tok, now=NOW - 1), Principal)
    # The default leeway (30 s) admits a token that expired 29 s ago, not 30 s ago.
    assert isinstance(bearer(HS, tok, now=NOW + 29), Principal)
    assert rejected(bearer(HS, tok, now=NOW + 30)) == "token expired"


def test_not_before_in_the_future_is_refused() -> None:
    tok = token({"nbf": NOW + 60})
    assert rejected(bearer(HS, tok)) == "token not yet valid"
    assert isinstance(bearer(HS, tok, now=NOW + 31), Principal)  # within the leeway


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": 10**400},
        {"nbf": [1]},
        {"iat": "now"},
        {"sub": 42},
        {"scope": 42},
        {"scope": {"chat:read": True}},
        {"scope": ["chat:read", None]},
        {"scp": {"chat:read": True}},
        {"scp": ["chat:read", 3]},
    ],
)
def test_malformed_claims_are_refused(claims: dict[str, Any]) -> None:
    reason = rejected(bearer(HS, sign({"alg": "HS256"}, claims, SECRET.encode())))
    assert f"malformed '{next(iter(claims))}' claim" in reason


def test_a_scope_list_grants_the_topic_and_a_token_without_it_is_403() -> None:
    """Identity providers that write ``scope`` as a JSON list (Okta's ``scp``, Keycloak's and
    Auth0's options) get the same answer as a space-separated string."""
    for claims in ({"scope": ["chat:write"]}, {"scp": "x chat:write"}, {"scope": "chat:write"}):
        assert isinstance(bearer(HS, token(claims), topic=SCOPED), Principal), claims
    for claims in ({"scope": ["chat:admin"]}, {"scp": []}, {"scope": ""}, {}):
        rejected(bearer(HS, token(claims), topic=SCOPED), 403)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    strict = Authenticator(
        AuthConfig(jwt_secret=SECRET, jwt_issuer="https://idp", jwt_audience="gw")
    )
    good = {"iss": "https://idp", "aud": "gw"}
    assert isinstance(bearer(strict, token(good)), Principal)
    assert isinstance(bearer(strict, token({**good, "aud": ["other", "gw"]})), Principal)
    assert rejected(bearer(strict, token({**good, "iss": "https://evil"}))) == (
        "token issuer not accepted"
    )
    assert rejected(bearer(strict, token({"aud": "gw"}))) == "token issuer not accepted"
    assert rejected(bearer(strict, token({**good, "aud": "other"}))) == (
        "token audience not accepted"
    )
    assert rejected(bearer(strict, token({"iss": "https://idp"}))) == "token audience not accepted"
    # Not configured: not checked.
    assert isinstance(bearer(HS, token({"iss": "anyone", "aud": "anything"})), Principal)


def test_token_without_exp_never_expires() -> None:
    principal = bearer(HS, token({"sub": "svc"}))
    assert isinstance(principal, Principal)
    assert principal.expires_at is None


def test_scopes_from_scope_and_scp() -> None:
    cases: dict[str, tuple[dict[str, object], set[str]]] = {
        "scope": ({"scope": "a  b c"}, {"a", "b", "c"}),
        "scope list": ({"scope": ["a", "b", ""]}, {"a", "b"}),
        "scp list": ({"scp": ["a", "b"]}, {"a", "b"}),
        "scp string": ({"scp": "a b"}, {"a", "b"}),
        "both": ({"scope": "a", "scp": ["b"]}, {"a", "b"}),
        "both lists": ({"scope": ["a"], "scp": ["b", "c"]}, {"a", "b", "c"}),
        "none": ({}, set()),
    }
    for name, (claims, expected) in cases.items():
        principal = bearer(HS, token(claims))
        assert isinstance(principal, Principal), name
        assert principal.scopes == expected, name


@pytest.mark.parametrize(
    ("keytype", "environment"),
    [
        ("SANDBOX", Environment.SANDBOX),
        ("sandbox", Environment.SANDBOX),
        ("SandBox", Environment.SANDBOX),
        ("PRODUCTION", Environment.PRODUCTION),
        (None, Environment.PRODUCTION),
        (7, Environment.PRODUCTION),
    ],
)
def test_keytype_selects_the_environment(keytype: object, environment: Environment) -> None:
    claims: dict[str, object] = {} if keytype is None else {"keytype": keytype}
    principal = bearer(HS, token(claims))
    assert isinstance(principal, Principal)
    assert principal.environment is environment


# --- JWKS -------------------------------------------------------------------------------------


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None) -> dict[str, Any]:
    """The public JWK of ``key``, built by hand from its numbers."""
    data: dict[str, Any]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        data = {"kty": "RSA", "n": b64_int(numbers.n), "e": b64_int(numbers.e)}
    else:
        point = key.public_key().public_numbers()
        data = {"kty": "EC", "crv": "P-256", "x": b64_int(point.x, 32), "y": b64_int(point.y, 32)}
    if kid is not None:
        data["kid"] = kid
    return data


def test_jwks_selects_the_key_by_kid(keys: Keys) -> None:
    authenticator = Authenticator(
        AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "r1"), jwk(keys.ec_key, "e1")]})
    )
    assert isinstance(
        bearer(authenticator, token(GOOD, keys.rsa_key, "RS256", kid="r1")), Principal
    )
    assert isinstance(bearer(authenticator, token(GOOD, keys.ec_key, "ES256", kid="e1")), Principal)
    # The right algorithm under the other kid, an unknown kid, no kid: refused.
    assert "does not match" in rejected(
        bearer(authenticator, token(GOOD, keys.rsa_key, "RS256", kid="e1"))
    )
    assert rejected(bearer(authenticator, token(GOOD, keys.rsa_key, "RS256", kid="zz"))) == (
        "unknown token key id"
    )
    assert rejected(bearer(authenticator, token(GOOD, keys.rsa_key, "RS256"))) == (
        "unknown token key id"
    )


def test_jwks_with_two_rsa_keys_does_not_mix_them(keys: Keys) -> None:
    authenticator = Authenticator(
        AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "one"), jwk(keys.rsa_other, "two")]})
    )
    assert isinstance(
        bearer(authenticator, token(GOOD, keys.rsa_other, "RS256", kid="two")), Principal
    )
    assert rejected(bearer(authenticator, token(GOOD, keys.rsa_other, "RS256", kid="one"))) == (
        "invalid token signature"
    )


def test_jwks_sole_key_serves_tokens_without_kid(keys: Keys) -> None:
    authenticator = Authenticator(AuthConfig(jwks={"keys": [jwk(keys.ec_key, "e1")]}))
    assert isinstance(bearer(authenticator, token(GOOD, keys.ec_key, "ES256")), Principal)


def test_jwks_skips_keys_not_for_es256_or_rs256_signatures(keys: Keys) -> None:
    enc = {**jwk(keys.rsa_other, "enc"), "use": "enc"}
    ps = {**jwk(keys.rsa_other, "ps"), "alg": "PS256"}
    oct_key = {"kty": "oct", "k": b64(SECRET.encode()), "kid": "hs"}
    authenticator = Authenticator(
        AuthConfig(jwks={"keys": [enc, ps, oct_key, jwk(keys.rsa_key, "r")]})
    )
    assert isinstance(bearer(authenticator, token(GOOD, keys.rsa_key, "RS256", kid="r")), Principal)
    # A symmetric key in a JWKS is not used: an HS256 token naming it is refused.
    assert rejected(bearer(authenticator, token(GOOD, SECRET, kid="hs"))) == "unknown token key id"


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({}, "'keys' list"),
        ({"keys": "x"}, "'keys' list"),
        ({"keys": []}, "no RSA or P-256 EC signing key"),
        ({"keys": [1]}, "must be an object"),
        ({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": 5}]}, "'kid' must be a string"),
        ({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}, "JWKS key #1"),
        ({"keys": [{"kty": ["RSA"]}]}, "no RSA or P-256 EC signing key"),
        ({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}, "no RSA or P-256"),
    ],
)
def test_bad_jwks_is_a_relay_error(jwks: dict[str, Any], message: str) -> None:
    with pytest.raises(RelayError, match=message):
        Authenticator(AuthConfig(jwks=jwks))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
JWK_FIELDS = st.fixed_dictionaries(
    {"kty": st.sampled_from(["RSA", "EC", "oct", "OKP"]) | JSON},
    optional={
        name: st.text(alphabet="AQab-_", max_size=12) | JSON
        for name in ("n", "e", "crv", "x", "y", "kid", "use", "alg", "d")
    },
)


@settings(max_examples=200, deadline=None)
@given(jwks=st.one_of(JSON, st.fixed_dictionaries({"keys": st.lists(JWK_FIELDS, max_size=3)})))
def test_arbitrary_jwks_gives_an_authenticator_or_a_relay_error(jwks: Any) -> None:
    with contextlib.suppress(RelayError):
        Authenticator(AuthConfig(jwks=jwks))


def test_jwks_must_be_an_object() -> None:
    with pytest.raises(RelayError, match="'keys' list"):
        AuthConfig(jwks=[1, 2])  # type: ignore[arg-type]


def test_jwks_duplicate_kid_and_private_keys_are_refused(keys: Keys) -> None:
    with pytest.raises(RelayError, match="not unique"):
        Authenticator(AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "k"), jwk(keys.rsa_other, "k")]}))
    private = {**jwk(keys.rsa_key, "p"), "d": b64_int(keys.rsa_key.private_numbers().d)}
    with pytest.raises(RelayError, match="private key material"):
        Authenticator(AuthConfig(jwks={"keys": [private]}))


# --- key configuration ------------------------------------------------------------------------


def test_two_jwt_key_sources_are_a_relay_error(keys: Keys) -> None:
    with pytest.raises(RelayError, match="a JWT secret and a JWKS"):
        AuthConfig(jwt_secret=SECRET, jwks={"keys": []})
    with pytest.raises(RelayError, match="one JWT key source"):
        AuthConfig(jwt_secret=SECRET, jwt_public_key=keys.pem(keys.rsa_key))


@pytest.mark.parametrize("leeway", [-1, 301, float("nan"), True])
def test_bad_leeway_is_a_relay_error(leeway: float) -> None:
    with pytest.raises(RelayError, match="leeway"):
        AuthConfig(leeway=leeway)


def test_weak_or_wrong_key_material_is_a_relay_error(keys: Keys) -> None:
    with pytest.raises(RelayError, match="at least 32 bytes"):
        Authenticator(AuthConfig(jwt_secret="short"))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    with pytest.raises(RelayError, match="1024 bits"):
        Authenticator(AuthConfig(jwt_public_key=keys.pem(small)))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(RelayError, match="P-256"):
        Authenticator(AuthConfig(jwt_public_key=keys.pem(p384)))
    private_pem = keys.rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(RelayError, match="not a PEM public key"):
        Authenticator(AuthConfig(jwt_public_key=private_pem))
    with pytest.raises(RelayError, match="not a PEM public key"):
        Authenticator(AuthConfig(jwt_public_key="hello"))


def test_secrets_stay_out_of_repr() -> None:
    config = AuthConfig(jwt_secret=SECRET, api_keys={"k-123456": ApiKeyInfo()})
    assert SECRET not in repr(config)
    assert "k-123456" not in repr(config)


def test_no_jwt_key_refuses_every_token_and_says_why() -> None:
    keyless = Authenticator(AuthConfig(api_keys={"k": ApiKeyInfo()}))
    assert "no key is configured" in rejected(bearer(keyless, token(GOOD)))
    (warning,) = keyless.config_warnings(make_api(OAUTH2))
    assert "no JWT key is configured" in warning
    assert "'Chat' 1.0" in warning
    assert keyless.config_warnings(make_api(API_KEY)) == ()
    nothing = Authenticator(AuthConfig())
    assert len(nothing.config_warnings(BOTH)) == 2
    assert "no API keys" in rejected(auth(nothing, headers=[("apikey", "k")]))
    assert nothing.config_warnings(make_api()) == ()


# --- API keys ---------------------------------------------------------------------------------


KEYS_DATA = {
    "prod-key": {"name": "reporting", "scopes": ["chat:read"], "environment": "production"},
    "sandbox-key": {"scopes": ["chat:write"], "environment": "sandbox"},
    "bare-key": None,
}


def check_api_keys(authenticator: Authenticator) -> None:
    prod = auth(authenticator, headers=[("apikey", "prod-key")], topic=SCOPED)
    assert prod == Principal(
        kind=AuthKind.API_KEY,
        subject="reporting",  # the key's name, never the key
        scopes=frozenset({"chat:read"}),
        environment="production",
        credential_id=hashlib.sha256(b"prod-key").digest(),  # the key's digest, not the key
    )
    sandbox = auth(authenticator, query=[("apikey", "sandbox-key")], topic=SCOPED)
    assert sandbox == Principal(
        kind=AuthKind.API_KEY,
        subject="key-" + hashlib.sha256(b"sandbox-key").hexdigest()[:12],  # unnamed: a digest
        scopes=frozenset({"chat:write"}),
        environment="sandbox",
        credential_id=hashlib.sha256(b"sandbox-key").digest(),
    )
    bare = auth(authenticator, headers=[("apikey", "bare-key")])
    assert isinstance(bare, Principal)
    assert bare.environment is Environment.PRODUCTION
    assert bare.scopes == frozenset()
    rejected(auth(authenticator, headers=[("apikey", "bare-key")], topic=SCOPED), 403)
    assert rejected(auth(authenticator, headers=[("apikey", "nope")])) == "invalid API key"
    assert rejected(auth(authenticator, headers=[("apikey", "")])) == "invalid API key"
    assert rejected(auth(authenticator, headers=[("apikey", "PROD-KEY")])) == "invalid API key"


def test_api_keys_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(KEYS_DATA))
    check_api_keys(Authenticator(load_auth_config(api_keys_file=path)))


def test_api_keys_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "prod-key:\n  name: reporting\n  scopes: [chat:read]\n  environment: production\n"
        "sandbox-key:\n  scopes:\n    - chat:write\n  environment: sandbox\n"
        "bare-key:\n"
    )
    check_api_keys(Authenticator(load_auth_config(api_keys_file=path)))


def test_api_keys_from_a_callable() -> None:
    seen: list[str] = []

    def lookup(key: str) -> ApiKeyInfo | None:
        seen.append(key)
        return infos.get(key)

    infos = {
        "prod-key": ApiKeyInfo(
            scopes=frozenset({"chat:read"}), environment="production", name="reporting"
        ),
        "sandbox-key": ApiKeyInfo(scopes=frozenset({"chat:write"}), environment="sandbox"),
        "bare-key": ApiKeyInfo(),
    }

    check_api_keys(Authenticator(AuthConfig(api_keys=lookup)))
    assert "prod-key" in seen


def test_api_key_info_checks_its_environment() -> None:
    with pytest.raises(ValueError, match="production"):
        ApiKeyInfo(environment="staging")
    assert ApiKeyInfo(environment="sandbox").environment is Environment.SANDBOX
    assert ApiKeyInfo().environment is Environment.PRODUCTION


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('["k"]', "must map each key"),
        ('{"k": {"scopes": "chat:read"}}', "entry #1: 'scopes' must be a list"),
        ('{"a": {}, "k": {"environment": "staging"}}', "entry #2: 'environment'"),
        ('{"k": {"enviroment": "sandbox"}}', "unknown field"),
        ('{"k": {"name": ""}}', "'name' must be a non-empty string"),
        ('{"k": {"name": 7}}', "'name' must be a non-empty string"),
        ('{"k": [1]}', "must be a mapping"),
        ('{"": {}}', "non-empty string"),
        ("{not json", "API key file"),
    ],
)
def test_bad_api_key_file_is_a_relay_error(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(data)
    with pytest.raises(RelayError, match=message):
        load_auth_config(api_keys_file=path)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("k: {}\nk: {environment: sandbox}\n", "document-duplicate-key"),
        ("", "document-empty"),
        ("k: [unclosed\n", "document-syntax"),
    ],
)
def test_unreadable_yaml_key_file_is_a_relay_error(tmp_path: Path, text: str, rule: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(RelayError, match="API key file") as info:
        load_auth_config(api_keys_file=path)
    assert [problem.rule for problem in info.value.problems] == [rule]


def test_bad_api_key_file_names_no_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"super-secret-key": {"environment": "staging"}}')
    with pytest.raises(RelayError, match="entry #1") as info:
        load_auth_config(api_keys_file=path)
    assert "super-secret-key" not in str(info.value)


def test_missing_files_are_relay_errors(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    with pytest.raises(RelayError, match="API key file"):
        load_auth_config(api_keys_file=absent)
    with pytest.raises(RelayError, match="JWKS file"):
        load_auth_config(jwks_file=absent)
    with pytest.raises(RelayError, match="JWT public key file"):
        load_auth_config(jwt_public_key_file=absent)


def test_key_files_load(tmp_path: Path, keys: Keys) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text(keys.pem(keys.ec_key))
    es = Authenticator(load_auth_config(jwt_public_key_file=pem, jwt_issuer="idp", leeway=0))
    assert isinstance(bearer(es, token({"iss": "idp"}, keys.ec_key, "ES256")), Principal)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(keys.rsa_key, "r")]}))
    rs = Authenticator(load_auth_config(jwks_file=jwks, jwt_audience="gw"))
    assert isinstance(bearer(rs, token({"aud": "gw"}, keys.rsa_key, "RS256", kid="r")), Principal)


def test_secret_file_loads_without_its_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    config = load_auth_config(jwt_secret_file=path)
    assert config.jwt_secret == SECRET
    assert isinstance(bearer(Authenticator(config), token(GOOD)), Principal)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\r\n", "empty"), (b"\xff" + SECRET.encode(), "not UTF-8 text")],
)
def test_bad_secret_file_is_a_relay_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(RelayError, match=message) as info:
        load_auth_config(jwt_secret_file=path)
    assert "\\xff" not in str(info.value)
    with pytest.raises(RelayError, match="JWT secret file"):
        load_auth_config(jwt_secret_file=tmp_path / "absent")


def test_secret_given_twice_is_a_relay_error(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    with pytest.raises(RelayError, match="not both"):
        load_auth_config(jwt_secret=SECRET, jwt_secret_file=path)


# --- re-authorization (reload) ----------------------------------------------------------------

API_KEYS_INFO = {
    "prod-key": ApiKeyInfo(scopes={"chat:read"}),
    "sandbox-key": ApiKeyInfo(scopes={"chat:write"}, environment="sandbox"),
}


def reauthorize(
    authenticator: Authenticator,
    principal: Principal | Rejection,
    *,
    api: StreamingAPI = BOTH,
    topic: Topic = SCOPED,
) -> Principal | Rejection:
    assert isinstance(principal, Principal), principal
    return authenticator.reauthorize(principal, api=api, topic=topic)


def test_reauthorize_refuses_a_revoked_api_key_and_applies_a_changed_one() -> None:
    before = Authenticator(AuthConfig(api_keys=API_KEYS_INFO))
    prod = auth(before, headers=[("apikey", "prod-key")], topic=SCOPED)
    assert reauthorize(before, prod) == prod
    revoked = Authenticator(AuthConfig(api_keys={"sandbox-key": ApiKeyInfo()}))
    assert rejected(reauthorize(revoked, prod)) == "API key revoked"
    narrowed = Authenticator(AuthConfig(api_keys={"prod-key": ApiKeyInfo(scopes={"other"})}))
    assert "insufficient scope" in rejected(reauthorize(narrowed, prod), 403)
    moved = Authenticator(
        AuthConfig(api_keys={"prod-key": ApiKeyInfo(scopes={"chat:read"}, environment="sandbox")})
    )
    again = reauthorize(moved, prod)
    assert isinstance(again, Principal)
    assert again.environment is Environment.SANDBOX
    gone = Authenticator(AuthConfig(jwt_secret=SECRET))
    assert rejected(reauthorize(gone, prod)) == "no API keys are configured on this gateway"


def test_reauthorize_refuses_a_token_whose_key_was_rotated_out(keys: Keys) -> None:
    principal = bearer(HS, token(GOOD))
    assert reauthorize(HS, principal, topic=UNSCOPED) == principal
    same = Authenticator(AuthConfig(jwt_secret=SECRET, api_keys={"k": ApiKeyInfo()}))
    assert reauthorize(same, principal, topic=UNSCOPED) == principal
    rotated = Authenticator(AuthConfig(jwt_secret=OTHER_SECRET))
    reason = rejected(reauthorize(rotated, principal, topic=UNSCOPED))
    assert reason == "the token's signing key is no longer accepted"
    both = {"keys": [jwk(keys.rsa_key, "old"), jwk(keys.rsa_other, "new")]}
    jwks = Authenticator(AuthConfig(jwks=both))
    signed = bearer(jwks, token(GOOD, keys.rsa_key, "RS256", kid="old"))
    # the kid may be reused for another key: the key material decides
    renamed = Authenticator(AuthConfig(jwks={"keys": [jwk(keys.rsa_key, "renamed")]}))
    assert reauthorize(renamed, signed, topic=UNSCOPED) == signed
    swapped = Authenticator(AuthConfig(jwks={"keys": [jwk(keys.rsa_other, "old")]}))
    rejected(reauthorize(swapped, signed, topic=UNSCOPED))
    pem = Authenticator(AuthConfig(jwt_public_key=keys.pem(keys.rsa_key)))
    assert reauthorize(pem, signed, topic=UNSCOPED) == signed


def test_reauthorize_follows_the_api_and_topic_requirements() -> None:
    authenticator = Authenticator(AuthConfig(jwt_secret=SECRET, api_keys=API_KEYS_INFO))
    key = auth(authenticator, headers=[("apikey", "prod-key")], topic=SCOPED)
    tok = bearer(authenticator, token(GOOD), topic=SCOPED)
    assert isinstance(key, Principal)
    assert isinstance(tok, Principal)
    only_tokens = make_api(OAUTH2)
    reason = rejected(reauthorize(authenticator, key, api=only_tokens))
    assert reason == "this API no longer accepts API keys"
    assert reauthorize(authenticator, tok, api=only_tokens) == tok
    write_only = Topic(
        name="/rooms", publish=TopicOperation(operation=Operation.PUBLISH, scopes=("chat:write",))
    )
    rejected(reauthorize(authenticator, tok, topic=write_only), 403)
    anonymous = Principal(kind=None)
    for opened in (make_api(), BOTH):
        topic = SCOPED if opened.security == () else attrs.evolve(SCOPED, auth_type=AuthType.NONE)
        assert reauthorize(authenticator, key, api=opened, topic=topic) == anonymous
        assert reauthorize(authenticator, anonymous, api=opened, topic=topic) == anonymous
    reason = rejected(reauthorize(authenticator, anonymous))
    assert reason == "authentication is now required"


def test_reauthorize_keeps_the_principals_of_an_api_key_lookup() -> None:
    authenticator = Authenticator(AuthConfig(api_keys=lambda key: ApiKeyInfo()))
    principal = auth(authenticator, headers=[("apikey", "anything")])
    assert isinstance(principal, Principal)
    assert principal.credential_id == hashlib.sha256(b"anything").digest()
    assert reauthorize(authenticator, principal, topic=UNSCOPED) == principal


# --- credential placement ---------------------------------------------------------------------


def test_token_in_the_access_token_query_parameter() -> None:
    assert isinstance(auth(HS, query=[("access_token", token(GOOD))]), Principal)


def test_credentials_in_header_and_query_are_ambiguous() -> None:
    tok = token(GOOD)
    authenticator = Authenticator(AuthConfig(jwt_secret=SECRET, api_keys={"k": ApiKeyInfo()}))
    cases = [
        ([("Authorization", f"Bearer {tok}")], [("access_token", tok)]),
        ([("Authorization", f"Bearer {tok}")], [("apikey", "k")]),
        ([("apikey", "k")], [("apikey", "k")]),
        ([("apikey", "k"), ("Authorization", f"Bearer {tok}")], []),
        ([], [("access_token", tok), ("apikey", "k")]),
        ([], [("access_token", tok), ("access_token", tok)]),
        ([("apikey", "k"), ("APIKEY", "k")], []),
    ]
    for headers, query in cases:
        assert "more than one credential" in rejected(
            auth(authenticator, headers=headers, query=query)
        ), (headers, query)


def test_duplicate_authorization_headers_are_refused() -> None:
    tok = token(GOOD)
    headers = [("Authorization", f"Bearer {tok}"), ("authorization", f"Bearer {tok}")]
    rejected(auth(HS, headers=headers))


@pytest.mark.parametrize("name", ["AUTHORIZATION", "authorization", "AuThOrIzAtIoN"])
def test_header_names_ignore_case(name: str) -> None:
    assert isinstance(auth(HS, headers=[(name, f"Bearer {token(GOOD)}")]), Principal)


def test_non_ascii_lookalike_header_names_are_not_credentials() -> None:
    keyed = Authenticator(AuthConfig(api_keys={"k": ApiKeyInfo()}))
    # U+212A KELVIN SIGN lowers to "k" in Python; it is not the apikey header.
    assert "missing credentials" in rejected(auth(keyed, headers=[("api\u212aey", "k")]))


def test_query_parameter_names_are_exact() -> None:
    assert "missing credentials" in rejected(auth(HS, query=[("ACCESS_TOKEN", token(GOOD))]))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_ignores_case(scheme: str) -> None:
    assert isinstance(auth(HS, headers=[("Authorization", f"{scheme} {token(GOOD)}")]), Principal)


@pytest.mark.parametrize(
    "value",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "", "Token abc", "Bearer a b", "Bearerx.y.z"],
)
def test_other_authorization_forms_are_refused(value: str) -> None:
    rejected(auth(HS, headers=[("Authorization", value)]))


def test_missing_credentials_say_what_to_send() -> None:
    reason = rejected(auth(HS))
    assert "Authorization: Bearer" in reason
    assert "apikey" in reason
    only_keys = rejected(auth(HS, api=make_api(API_KEY)))
    assert "Bearer" not in only_keys


def test_credential_of_a_kind_the_api_does_not_accept() -> None:
    authenticator = Authenticator(AuthConfig(jwt_secret=SECRET, api_keys={"k": ApiKeyInfo()}))
    reason = rejected(auth(authenticator, headers=[("apikey", "k")], api=make_api(OAUTH2)))
    assert reason == "this API does not accept API keys"
    reason = rejected(bearer(authenticator, token(GOOD), api=make_api(API_KEY)))
    assert reason == "this API does not accept bearer tokens"


def test_reasons_never_echo_the_credential() -> None:
    tok = token({"exp": NOW - 1000, "sub": "alice"})
    for outcome in (
        bearer(HS, tok),
        bearer(HS, tok + "x"),
        auth(HS, headers=[("apikey", "sekrit-key")]),
        auth(HS, headers=[("Authorization", "Basic sekrit")]),
    ):
        reason = rejected(outcome)
        assert tok not in reason
        assert "sekrit" not in reason
        assert "alice" not in reason


# --- scopes and open access -------------------------------------------------------------------


def test_topic_scopes_need_one_of_them() -> None:
    reader = bearer(HS, token({"scope": "chat:read"}), topic=SCOPED)
    writer = bearer(HS, token({"scp": ["chat:write", "x"]}), topic=SCOPED)
    assert isinstance(reader, Principal)
    assert isinstance(writer, Principal)
    reason = rejected(bearer(HS, token({"scope": "chat:admin"}), topic=SCOPED), 403)
    assert "chat:read" in reason
    assert "chat:write" in reason
    rejected(bearer(HS, token({}), topic=SCOPED), 403)


def test_topic_without_scopes_admits_any_valid_credential() -> None:
    assert isinstance(bearer(HS, token({}), topic=UNSCOPED), Principal)


def test_bad_credential_on_a_scoped_topic_is_401_not_403() -> None:
    rejected(bearer(HS, token({"scope": "chat:read"}, OTHER_SECRET), topic=SCOPED), 401)


def test_open_topic_needs_no_credentials() -> None:
    open_topic = attrs.evolve(SCOPED, auth_type=AuthType.NONE)
    assert auth(HS, topic=open_topic) == Principal(kind=None)
    # Credentials on an open topic are not examined, even bad ones.
    assert bearer(HS, "garbage", topic=open_topic) == Principal(kind=None)
    for auth_type in (AuthType.ANY, AuthType.APPLICATION, AuthType.APPLICATION_USER):
        rejected(auth(HS, topic=attrs.evolve(SCOPED, auth_type=auth_type)))


def test_open_api_needs_no_credentials() -> None:
    principal = auth(HS, api=make_api(), topic=SCOPED)
    assert principal == Principal(
        kind=None, subject=None, scopes=frozenset(), environment="production", expires_at=None
    )


# --- arbitrary input --------------------------------------------------------------------------

NAMES = st.sampled_from(["Authorization", "authorization", "APIKEY", "apikey", "X-Other", "Host"])
QUERY_NAMES = st.sampled_from(["access_token", "apikey", "room"])
JWTISH = st.builds(
    lambda parts, sep: sep.join(parts),
    st.lists(st.text(alphabet='AZaz09_-=.{}"', max_size=40), min_size=1, max_size=4),
    st.sampled_from([".", "", " "]),
)
VALUES = st.one_of(
    st.text(max_size=200),
    JWTISH,
    st.builds(lambda v: "Bearer " + v, st.one_of(st.text(max_size=200), JWTISH)),
    st.builds(
        lambda v: "Bearer " + sign({"alg": "HS256"}, v, SECRET.encode()),
        st.dictionaries(
            st.sampled_from(["exp", "nbf", "iat", "scope", "scp", "sub", "aud", "iss", "keytype"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(max_size=5),
                st.lists(st.text(max_size=5), max_size=3),
            ),
        ),
    ),
)
FULL = Authenticator(
    AuthConfig(
        jwt_secret=SECRET,
        jwt_issuer="idp",
        jwt_audience="gw",
        api_keys={"k": ApiKeyInfo(scopes=frozenset({"chat:read"}))},
    )
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.tuples(st.one_of(NAMES, st.text(max_size=20)), VALUES), max_size=4),
    query=st.lists(st.tuples(st.one_of(QUERY_NAMES, st.text(max_size=10)), VALUES), max_size=3),
    topic=st.sampled_from([SCOPED, UNSCOPED]),
    now=st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=4e9),
)
def test_arbitrary_headers_and_query_never_raise(
    headers: list[tuple[str, str]], query: list[tuple[str, str]], topic: Topic, now: float
) -> None:
    outcome = FULL.authenticate(api=BOTH, topic=topic, headers=headers, query=query, now=now)
    assert isinstance(outcome, (Principal, Rejection))
    if isinstance(outcome, Rejection):
        assert outcome.status in (401, 403)
    elif topic is SCOPED:
        assert outcome.scopes & set(SCOPED.scopes)


# --- WWW-Authenticate -------------------------------------------------------------------------


def challenges(outcome: Principal | Rejection) -> tuple[str, ...]:
    assert isinstance(outcome, Rejection), outcome
    return outcome.challenges


def test_401_challenges_each_accepted_kind_and_names_a_bad_token() -> None:
    """RFC 9110 11.6.1: a 401 carries a challenge; RFC 6750 3.1: no error code when no
    credential came, ``invalid_token`` for a bad one, ``invalid_request`` for a malformed one."""
    keyed = make_api(API_KEY)
    bearer_only = make_api(OAUTH2)
    expired = token({"exp": NOW - 1000})
    assert challenges(auth(HS)) == ('Bearer realm="Chat"', 'ApiKey realm="Chat"')
    assert challenges(auth(HS, api=keyed)) == ('ApiKey realm="Chat"',)
    assert challenges(bearer(HS, expired, api=bearer_only)) == (
        'Bearer realm="Chat", error="invalid_token", error_description="token expired"',
    )
    assert challenges(bearer(HS, "x.y.z", api=bearer_only)) == (
        'Bearer realm="Chat", error="invalid_token", error_description="malformed bearer token"',
    )
    malformed = auth(HS, headers=[("Authorization", "Bearer a b")], api=bearer_only)
    assert challenges(malformed)[0].startswith('Bearer realm="Chat", error="invalid_request"')
    twice = auth(HS, query=[("access_token", expired)] * 2, api=bearer_only)
    assert challenges(twice)[0].startswith('Bearer realm="Chat", error="invalid_request"')
    # another scheme, or an API key where tokens are taken, is as if no credential came
    basic = auth(HS, headers=[("Authorization", "Basic dXNlcjpwYXNz")], api=bearer_only)
    assert challenges(basic) == ('Bearer realm="Chat"',)
    assert challenges(auth(HS, headers=[("apikey", "k")], api=bearer_only)) == (
        'Bearer realm="Chat"',
    )
    assert challenges(auth(HS, headers=[("apikey", "k")], api=keyed)) == ('ApiKey realm="Chat"',)


def test_403_of_a_token_names_the_scope_it_needs() -> None:
    outcome = bearer(HS, token({"scope": "other"}), topic=SCOPED)
    rejected(outcome, 403)
    assert challenges(outcome) == (
        'Bearer realm="Chat", error="insufficient_scope", scope="chat:write chat:read"',
    )
    keyed = Authenticator(AuthConfig(api_keys={"k": ApiKeyInfo()}))
    key_outcome = auth(keyed, headers=[("apikey", "k")], topic=SCOPED)
    rejected(key_outcome, 403)
    assert challenges(key_outcome) == ()  # RFC 6750 says nothing of API keys


def test_challenge_parameters_stay_quoted_strings() -> None:
    """A realm or scope with quotes, backslashes or non-ASCII cannot break the header."""
    odd = attrs.evolve(make_api(OAUTH2), name='Chat "β" \\ x')
    [value] = challenges(auth(HS, api=odd))
    assert value == 'Bearer realm="Chat ??? ? x"'
    weird_scope = Topic(
        name="/w",
        publish=TopicOperation(operation=Operation.PUBLISH, scopes=('a"b', "ok", "c d")),
    )
    [value] = challenges(bearer(HS, token({}), topic=weird_scope, api=make_api(OAUTH2)))
    assert value.endswith('scope="ok"')


# --- JWT: the canonical-token path ------------------------------------------------------------

_TOKEN_CHARACTERS = [*string.ascii_letters, *string.digits, "-", "_", "=", ".", ""]


@settings(max_examples=400, deadline=None)
@given(
    algorithm=st.sampled_from(["HS256", "RS256", "ES256"]),
    header=st.dictionaries(
        st.sampled_from(["kid", "typ", "crit", "b64", "x"]),
        st.one_of(st.text(max_size=3), st.booleans(), st.lists(st.sampled_from(["b64", "x"]))),
        max_size=3,
    ),
    claims=st.dictionaries(st.sampled_from(["sub", "exp", "nbf", "scope"]), st.integers()),
    edits=st.lists(st.tuples(st.integers(0, 2**16), st.sampled_from(_TOKEN_CHARACTERS))),
    wrong_key=st.booleans(),
)
def test_the_canonical_token_path_decides_as_pyjwt(
    keys: Keys,
    *,
    algorithm: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    edits: list[tuple[int, str]],
    wrong_key: bool,
) -> None:
    """Any token, valid or with characters replaced or removed anywhere (padding, stray bits,
    a fourth segment), with any header: the authenticator decides it as it does with PyJWT
    deciding every token."""
    signing: SigningKey = {
        "HS256": (OTHER_SECRET if wrong_key else SECRET).encode(),
        "RS256": keys.rsa_other if wrong_key else keys.rsa_key,
        "ES256": keys.ec_key,
    }[algorithm]
    config = {
        "HS256": AuthConfig(jwt_secret=SECRET),
        "RS256": AuthConfig(jwt_public_key=keys.pem(keys.rsa_key)),
        "ES256": AuthConfig(jwt_public_key=keys.pem(keys.ec_key)),
    }[algorithm]
    tok = sign({"alg": algorithm, **header}, claims, signing)
    for where, character in edits:
        position = where % (len(tok) + 1)
        tok = tok[:position] + character + tok[position + 1 :]
    fast, plain = Authenticator(config), Authenticator(config)
    plain._prepared.clear()  # no prepared key: PyJWT decides every token
    assert bearer(fast, tok) == bearer(plain, tok)


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_stray_bits_in_any_segment_make_a_token_malformed(segment: int) -> None:
    """Base64url with bits set past the data (another spelling of the same bytes) is refused, as
    PyJWT refuses it, even where the signature over the bytes holds."""
    original = token(GOOD, kid="kk")  # no segment's length a multiple of 4
    parts = original.split(".")
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    last = parts[segment][-1]
    assert len(parts[segment]) % 4  # the last character carries bits past the data
    parts[segment] = parts[segment][:-1] + alphabet[alphabet.index(last) ^ 1]
    assert base64.urlsafe_b64decode(parts[segment] + "==") == base64.urlsafe_b64decode(
        original.split(".")[segment] + "=="
    )
    assert rejected(bearer(HS, ".".join(parts))) == "malformed bearer token"


# --- JWT: tokens seen before ------------------------------------------------------------------

_TIMES = st.one_of(
    st.integers(int(NOW) - 100, int(NOW) + 100), st.floats(NOW - 100, NOW + 100), st.just("soon")
)
_CLAIMS = st.fixed_dictionaries(
    {"iss": st.sampled_from(["idp", "idp", "x"]), "aud": st.sampled_from(["gw", ["gw"]])},
    optional={
        "exp": _TIMES,
        "nbf": _TIMES,
        "iat": _TIMES,
        "sub": st.sampled_from(["alice", "bob", 7]),
        "scope": st.sampled_from(["chat:read", "a b", ["x"], 3]),
        "keytype": st.sampled_from(["SANDBOX", "production"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    algorithm=st.sampled_from(["HS256", "RS256", "ES256"]),
    claims=st.lists(_CLAIMS, min_size=1, max_size=3),
    uses=st.lists(
        st.tuples(
            st.integers(0, 2),  # which token
            st.sampled_from(["as signed"] * 3 + ["other key", "edited signature", "padded"]),
            st.integers(0, 2**16),  # where an edit lands
            st.one_of(  # where the handshake meets a deadline (leeway 30 s), or any time
                st.tuples(
                    st.sampled_from(["exp", "nbf"]),
                    st.sampled_from([30, -30, 0, 31, -31, 29.5, -29.5]),
                ),
                st.floats(NOW - 200, NOW + 200),
            ),
        ),
        min_size=2,
        max_size=12,
    ),
)
def test_a_token_seen_before_is_decided_as_the_first_time(
    keys: Keys,
    *,
    algorithm: str,
    claims: list[dict[str, Any]],
    uses: list[tuple[int, str, int, float | tuple[str, float]]],
) -> None:
    """The same tokens again and again, some with another signature (another key's, an edited
    one, a padded one), at other times: each decision is the one a fresh authenticator makes
    with the plain path, and every signature is checked again (expired, not yet valid and
    wrongly signed tokens are refused though the same token passed before)."""
    signing: dict[str, tuple[SigningKey, SigningKey]] = {
        "HS256": (SECRET.encode(), OTHER_SECRET.encode()),
        "RS256": (keys.rsa_key, keys.rsa_other),
        "ES256": (keys.ec_key, ec.generate_private_key(ec.SECP256R1())),
    }
    good, other = signing[algorithm]
    config = {
        "HS256": AuthConfig(jwt_secret=SECRET, jwt_issuer="idp", jwt_audience="gw"),
        "RS256": AuthConfig(jwt_public_key=keys.pem(keys.rsa_key), jwt_audience="gw"),
        "ES256": AuthConfig(jwt_public_key=keys.pem(keys.ec_key), jwt_issuer="idp"),
    }[algorithm]
    remembering, plain = Authenticator(config), Authenticator(config)
    header = {"alg": algorithm, "typ": "JWT"}
    for which, how, where, when in uses:
        body = claims[which % len(claims)]
        now = when if isinstance(when, float) else _deadline(body, when[0]) + when[1]
        tok = sign(header, body, other if how == "other key" else good)
        if how == "edited signature":
            head, _, signature = tok.rpartition(".")
            position = where % (len(signature) + 1)
            alphabet = string.ascii_letters + string.digits + "-_"
            signature = signature[:position] + alphabet[where % 64] + signature[position + 1 :]
            tok = f"{head}.{signature}"
        elif how == "padded":
            tok += "=" * (where % 3)
        assert remembering._jwt(tok, now) == plain._jwt_plain(tok, now)


def _deadline(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else NOW


def test_a_token_that_passed_is_refused_once_expired_or_with_another_signature() -> None:
    authenticator = Authenticator(AuthConfig(jwt_secret=SECRET, leeway=0))
    tok = token({"sub": "alice", "exp": NOW + 10, "nbf": NOW - 10})
    assert isinstance(bearer(authenticator, tok, now=NOW), Principal)
    assert len(authenticator._verified) == 1  # remembered
    assert rejected(bearer(authenticator, tok, now=NOW + 10)) == "token expired"
    assert rejected(bearer(authenticator, tok, now=NOW - 11)) == "token not yet valid"
    assert isinstance(bearer(authenticator, tok, now=NOW - 10), Principal)
    forged = tok.rpartition(".")[0] + "." + token({}, OTHER_SECRET).rpartition(".")[2]
    assert rejected(bearer(authenticator, forged, now=NOW)) == "invalid token signature"
    other_key = Authenticator(AuthConfig(jwt_secret=OTHER_SECRET, leeway=0))
    assert rejected(bearer(other_key, tok, now=NOW)) == "invalid token signature"
    assert isinstance(bearer(authenticator, tok, now=NOW), Principal)
