"""Handshake authentication: credentials in, a :class:`Principal` or a :class:`Rejection` out.

The rules, in the order :meth:`Authenticator.authenticate` applies them:

1. An API without security schemes, or a topic whose ``x-auth-type`` is ``None``, is open: the
   principal is anonymous and credentials are not examined.
2. Credentials are the ``Authorization`` header (``Bearer <JWT>``), the ``apikey`` header, and
   the ``access_token`` and ``apikey`` query parameters.  Header names are matched without
   regard to ASCII case; query names exactly.  None of them: 401.  More than one (two headers,
   a header and a query parameter, a token and a key): 401, whatever the values — an ambiguous
   request is refused rather than resolved.
3. The credential must be of a kind the API's security accepts (oauth2: bearer JWT; api_key),
   and valid: else 401.
4. Scopes follow WSO2: a topic whose operations name scopes (``x-scopes``) admits a credential
   that holds *at least one* of them; else 403.  A topic without scopes admits any valid
   credential.

Every 401 carries a ``WWW-Authenticate`` challenge per kind of credential the API accepts
(RFC 9110 section 11.6.1; RFC 6750 section 3 for bearer tokens), with the API's name as the
realm: ``Bearer realm="Chat"`` when no credential came, ``Bearer realm="Chat",
error="invalid_token", error_description="token expired"`` for a bad token,
``error="invalid_request"`` for a malformed or repeated one; API keys have no registered
scheme, so their challenge is ``ApiKey realm="Chat"``.  A 403 for a bearer token lacking the
topic's scope carries ``error="insufficient_scope"`` and the ``scope`` it needs.

JWTs: only HS256, RS256 and ES256; each configured key is bound to one algorithm, and a token
whose header names another is refused, so neither ``alg: none`` nor a token signed HS256 with an
RSA public key as the secret can pass.  ``exp`` and ``nbf`` are checked against the caller's
clock with a small leeway (both optional, as in RFC 7519); ``iss`` and ``aud`` only when
configured.  Scopes come from ``scope`` and ``scp``, each a space-separated string (RFC 8693
section 4.2) or a list of strings (as several identity providers write them), combined; any
other type is a malformed token (401).  ``keytype: SANDBOX`` (any case) selects the sandbox
environment.

API keys are looked up by their SHA-256 digest, so the authenticator holds no key in clear.

Re-authorization (:meth:`Authenticator.reauthorize`, for a reload) judges an open connection's
principal as a new handshake with the same credential would be judged under the current keys,
API and topic, without the credential itself: a principal remembers only its credential's
identity (an API key's digest, or the fingerprint of the key that verified its token).  An API
key must still be configured (its current scopes and environment then apply); a token's
verifying key must still be configured; the API must still accept the credential's kind and
the topic's scopes must still admit it; an anonymous principal stays only on an open topic.
The token's claims are not read again: its expiry is already the connection's deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from asyncapi_gw.errors import RelayError
from asyncapi_gw.model import AuthKind, Environment, StreamingAPI, Topic, freeze, thaw
from asyncapi_gw.relay.routing import CREDENTIAL_QUERY_PARAMETERS

__all__ = [
    "DEFAULT_LEEWAY",
    "JWT_ALGORITHMS",
    "MAX_CREDENTIAL_LENGTH",
    "ApiKeyInfo",
    "AuthConfig",
    "Authenticator",
    "Principal",
    "Rejection",
    "issue_hs256_token",
]

JWT_ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_LEEWAY = 30.0  # seconds of clock skew tolerated on exp and nbf
MAX_LEEWAY = 300.0
MAX_CREDENTIAL_LENGTH = 8192  # characters; longer tokens and keys are refused unparsed
MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key is at least as long as the hash
MIN_RSA_BITS = 2048

_JWKS_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}  # by kty; EC keys must be on P-256
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*")
# Signing inputs (header.payload) of tokens whose signature held, with what their claims gave:
# at most this many per authenticator, the oldest forgotten first.
MAX_VERIFIED_TOKENS = 4096


def _scope_set(scopes: Iterable[str]) -> frozenset[str]:
    return frozenset(scopes)


def _environment(value: Environment | str) -> Environment:
    """An :class:`Environment`, from itself or its value (``"production"``, ``"sandbox"``)."""
    try:
        return Environment(value)
    except ValueError:
        raise ValueError(f"environment must be 'production' or 'sandbox', not {value!r}") from None


@attrs.frozen(kw_only=True)
class Principal:
    """Who connected: ``kind`` ``None`` is anonymous (open API or open topic).

    ``subject`` names the principal: a JWT's ``sub`` (``None`` when the token has none), or an
    API key's name (see :class:`ApiKeyInfo`); never the credential.

    ``expires_at`` (epoch seconds, leeway included) is when a JWT stops being accepted; the
    relay closes the connection then (4001).  ``None``: the credential does not expire.
    ``credential_id`` identifies the credential without holding it: the SHA-256 digest of an
    API key, or the fingerprint of the key that verified a JWT (``None``: anonymous).
    """

    kind: AuthKind | None
    subject: str | None = None
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_scope_set)
    environment: Environment = attrs.field(default=Environment.PRODUCTION, converter=_environment)
    expires_at: float | None = None
    credential_id: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class Rejection:
    """A refused handshake: HTTP ``status`` (401 or 403), a plain-text ``reason`` that is safe
    to send to the client (it never repeats the credential), and the ``WWW-Authenticate``
    ``challenges`` to answer with (the relay joins them in one header, comma-separated)."""

    status: int
    reason: str
    error: str | None = None
    """The RFC 6750 error code when a bearer token was refused: ``invalid_request`` (malformed
    or repeated), ``invalid_token`` or ``insufficient_scope``."""
    challenges: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ApiKeyInfo:
    """What an API key grants, and ``name``: who holds it (the principal the access log, the
    per-principal quota and the principal header name; never the key itself).  Keys sharing a
    name are one principal.  Without a name the principal is ``key-`` and the first 12 hex
    digits of the key's SHA-256."""

    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_scope_set)
    environment: Environment = attrs.field(default=Environment.PRODUCTION, converter=_environment)
    name: str | None = None


ApiKeyLookup = Callable[[str], "ApiKeyInfo | None"]


def _freeze_api_keys(
    value: Mapping[str, ApiKeyInfo] | ApiKeyLookup | None,
) -> Mapping[str, ApiKeyInfo] | ApiKeyLookup | None:
    if isinstance(value, Mapping):
        return types.MappingProxyType(dict(value))
    return value


def _freeze_jwks(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else freeze(value)


@attrs.frozen(kw_only=True)
class AuthConfig:
    """Key material and claim expectations.  At most one JWT key source: a shared secret
    (HS256), a PEM public key (RS256 or ES256 by its type) or a JWKS (RSA and P-256 EC keys).

    ``api_keys`` maps each key to what it grants, or is a callable that embedders supply
    (``None`` for an unknown key; its exceptions propagate).  Secrets are left out of ``repr``.
    """

    jwt_secret: str | None = attrs.field(default=None, repr=False)
    jwt_public_key: str | None = None
    jwks: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze_jwks, hash=False)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    leeway: float = DEFAULT_LEEWAY
    api_keys: Mapping[str, ApiKeyInfo] | ApiKeyLookup | None = attrs.field(
        default=None, converter=_freeze_api_keys, repr=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        given = [
            name
            for name, value in (
                ("a JWT secret", self.jwt_secret),
                ("a JWT public key", self.jwt_public_key),
                ("a JWKS", self.jwks),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise RelayError(f"give one JWT key source, not {' and '.join(given)}")
        if self.jwks is not None and not isinstance(self.jwks, Mapping):
            raise RelayError("a JWKS must be an object with a 'keys' list")
        if isinstance(self.leeway, bool) or not 0 <= self.leeway <= MAX_LEEWAY:
            raise RelayError(f"JWT leeway must be 0 to {MAX_LEEWAY:g} seconds, not {self.leeway}")
        if isinstance(self.api_keys, Mapping):
            for number, (key, info) in enumerate(self.api_keys.items(), start=1):
                if not isinstance(key, str) or not key or len(key) > MAX_CREDENTIAL_LENGTH:
                    raise RelayError(
                        f"API key #{number} must be a non-empty string of at most "
                        f"{MAX_CREDENTIAL_LENGTH} characters"
                    )
                if not isinstance(info, ApiKeyInfo):
                    raise RelayError(f"API key #{number} must map to an ApiKeyInfo")


def issue_hs256_token(secret: str, claims: Mapping[str, Any]) -> str:
    """A JWT signed with ``secret`` (HS256), as an identity provider sharing that secret with
    the relay would issue it: for demonstrations and local trials (``asyncapi-gw demo``)."""
    return jwt.encode(dict(claims), secret, algorithm="HS256")


def _key_principal(info: ApiKeyInfo, digest: bytes) -> Principal:
    return Principal(
        kind=AuthKind.API_KEY,
        subject=info.name if info.name is not None else "key-" + digest.hex()[:12],
        scopes=info.scopes,
        environment=info.environment,
        credential_id=digest,
    )


@attrs.frozen
class _Key:
    """A verification key bound to the one algorithm it may verify; ``fingerprint`` (SHA-256
    of the algorithm and the key material) names it without holding it."""

    algorithm: str
    key: bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey = attrs.field(repr=False)
    fingerprint: bytes = attrs.field(repr=False)


def _secret_key(secret: str) -> _Key:
    data = secret.encode("utf-8")
    if len(data) < MIN_SECRET_BYTES:
        raise RelayError(
            f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes for HS256 (RFC 7518 3.2)"
        )
    return _Key("HS256", data, hashlib.sha256(b"HS256:" + data).digest())


def _public_key(key: object, where: str) -> _Key:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise RelayError(f"{where}: RSA key of {key.key_size} bits; {MIN_RSA_BITS} at least")
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ES256"
    else:
        raise RelayError(f"{where}: need an RSA or P-256 EC public key")
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return _Key(algorithm, key, hashlib.sha256(algorithm.encode() + b":" + der).digest())


def _pem_key(pem: str) -> _Key:
    try:
        key = load_pem_public_key(pem.encode("ascii", "replace"))
    except (ValueError, UnsupportedAlgorithm):
        raise RelayError(
            "JWT public key: not a PEM public key (a private key or certificate is refused)"
        ) from None
    return _public_key(key, "JWT public key")


def _jwks_keys(jwks: Mapping[str, Any]) -> dict[str | None, _Key]:
    entries = jwks.get("keys")
    if not isinstance(entries, (list, tuple)):
        raise RelayError("JWKS: must hold a 'keys' list")
    keys: dict[str | None, _Key] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"JWKS key #{number}"
        if not isinstance(entry, Mapping):
            raise RelayError(f"{where}: must be an object")
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise RelayError(f"{where}: 'kid' must be a string")
        kty = entry.get("kty")
        algorithm = _JWKS_ALGORITHMS.get(kty) if isinstance(kty, str) else None
        if (
            algorithm is None
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", algorithm) != algorithm
            or (algorithm == "ES256" and entry.get("crv") != "P-256")
        ):
            continue  # encryption keys and other algorithms are not ours to use
        if "d" in entry:
            raise RelayError(f"{where}: holds private key material; publish public keys only")
        try:
            built = jwt.PyJWK(thaw(entry), algorithm).key
        except jwt.PyJWTError as exc:
            raise RelayError(f"{where}: {exc}") from None
        if kid in keys:
            raise RelayError(f"{where}: key id {kid!r} is not unique")
        keys[kid] = _public_key(built, where)
    if not keys:
        raise RelayError("JWKS: no RSA or P-256 EC signing key")
    return keys


def _reject(reason: str, status: int = 401, error: str | None = None) -> Rejection:
    """A refusal; :meth:`Authenticator.authenticate` adds its challenges."""
    return Rejection(status=status, reason=reason, error=error)


_BEARER_FORM = "the Authorization header must be 'Bearer <token>'"
_REQUEST, _TOKEN, _SCOPE = "invalid_request", "invalid_token", "insufficient_scope"
# Characters a quoted realm, error_description or scope may hold (RFC 6750 section 3).
_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _quoted(text: str) -> str:
    return '"' + _QUOTABLE.sub("?", text) + '"'


def _challenges(api: StreamingAPI, outcome: Rejection, required: Iterable[str]) -> tuple[str, ...]:
    """The ``WWW-Authenticate`` values for ``outcome`` on ``api``: for a 401, one challenge per
    kind of credential the API accepts, bearer first; for a 403 of a bearer token, its scope."""
    realm = f"realm={_quoted(api.name)}"
    error = outcome.error
    if outcome.status == 403:
        if error is None:
            return ()
        scope = " ".join(s for s in required if _SCOPE_TOKEN.fullmatch(s))
        needed = f", scope={_quoted(scope)}" if scope else ""
        return (f'Bearer {realm}, error="{error}"{needed}',)
    found: list[str] = []
    if AuthKind.OAUTH2 in api.auth_kinds:
        bearer = f"Bearer {realm}"
        if error is not None:
            bearer += f', error="{error}", error_description={_quoted(outcome.reason)}'
        found.append(bearer)
    if AuthKind.API_KEY in api.auth_kinds:
        found.append(f"ApiKey {realm}")
    return tuple(found)


def _time_claim(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _space_separated(value: str) -> list[str]:
    return [s for s in value.split(" ") if s]


def _jwt_scopes(claims: Mapping[str, Any]) -> frozenset[str] | str:
    """Scopes from ``scope`` and ``scp``, each a space-separated string or a list of strings;
    the name of the first malformed claim instead."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found += _space_separated(value)
        elif isinstance(value, list) and all(isinstance(s, str) for s in value):
            found += [s for s in value if s]
        elif value is not None:
            return name
    return frozenset(found)


_ANONYMOUS = Principal(kind=None)
_CREDENTIAL_HEADERS = {"authorization": AuthKind.OAUTH2, "apikey": AuthKind.API_KEY}
_HOW_TO_SEND = {
    AuthKind.OAUTH2: "an 'Authorization: Bearer' header or an access_token query parameter",
    AuthKind.API_KEY: "an apikey header or query parameter",
}


class Authenticator:
    """Decides each handshake from an :class:`AuthConfig`; keys are parsed once, here.

    Raises :class:`RelayError` on unusable key material (a short secret, a small RSA key, a
    private key, a JWKS without a usable key or with a repeated ``kid``).
    """

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._jws = jwt.PyJWS(algorithms=list(JWT_ALGORITHMS))
        self._fixed_key: _Key | None = None
        if config.jwt_secret is not None:
            self._fixed_key = _secret_key(config.jwt_secret)
        elif config.jwt_public_key is not None:
            self._fixed_key = _pem_key(config.jwt_public_key)
        self._jwks = None if config.jwks is None else _jwks_keys(config.jwks)
        verifying = [] if self._fixed_key is None else [self._fixed_key]
        verifying += [] if self._jwks is None else self._jwks.values()
        self._fingerprints = frozenset(key.fingerprint for key in verifying)
        # Each key prepared once by PyJWT's algorithm for it (as PyJWT prepares it on every
        # decode): what _canonical_payload verifies with.  A key PyJWT refuses is left to it.
        self._prepared: dict[bytes, tuple[Any, Any]] = {}
        for verifier in verifying:
            algorithm = self._jws.get_algorithm_by_name(verifier.algorithm)
            try:
                prepared = algorithm.prepare_key(verifier.key)
            except jwt.PyJWTError:
                continue
            self._prepared[verifier.fingerprint] = (algorithm, prepared)
        # A configured key's principal never changes: built once, by the key's digest.
        self._api_keys: dict[bytes, Principal] | ApiKeyLookup | None
        if isinstance(config.api_keys, Mapping):
            self._api_keys = {}
            for key, info in config.api_keys.items():
                digest = _digest(key)
                self._api_keys[digest] = _key_principal(info, digest)
        else:
            self._api_keys = config.api_keys
        self._verified: dict[str, _Verified] = {}

    @property
    def has_jwt_key(self) -> bool:
        return self._fixed_key is not None or self._jwks is not None

    @property
    def has_api_keys(self) -> bool:
        return self._api_keys is not None

    def config_warnings(self, api: StreamingAPI) -> tuple[str, ...]:
        """What makes ``api`` refuse every credential of a kind it accepts, for the log."""
        label = f"API {api.name!r} {api.version}"
        found = []
        if AuthKind.OAUTH2 in api.auth_kinds and not self.has_jwt_key:
            found.append(
                f"{label} accepts bearer tokens but no JWT key is configured "
                "(secret, public key or JWKS): every token will be refused with 401"
            )
        if AuthKind.API_KEY in api.auth_kinds and not self.has_api_keys:
            found.append(
                f"{label} accepts API keys but none are configured: "
                "every API key will be refused with 401"
            )
        return tuple(found)

    def authenticate(
        self,
        *,
        api: StreamingAPI,
        topic: Topic,
        headers: Sequence[tuple[str, str]],
        query: Sequence[tuple[str, str]],
        now: float,
    ) -> Principal | Rejection:
        """The principal for a handshake on ``topic`` of ``api``, or why it is refused, with
        its ``WWW-Authenticate`` challenges.

        ``headers`` and ``query`` are (name, value) pairs as received; ``now`` is epoch seconds.
        """
        outcome = self._decide(api, topic, headers, query, now)
        if isinstance(outcome, Rejection):
            challenges = _challenges(api, outcome, topic.scopes)
            return attrs.evolve(outcome, challenges=challenges)
        return outcome

    def _decide(
        self,
        api: StreamingAPI,
        topic: Topic,
        headers: Sequence[tuple[str, str]],
        query: Sequence[tuple[str, str]],
        now: float,
    ) -> Principal | Rejection:
        accepted = api.auth_kinds
        if not accepted or topic.is_open:
            return _ANONYMOUS
        # (kind, value, whether the value is an Authorization header to unwrap)
        found = [
            (_CREDENTIAL_HEADERS[name.lower()], value, name.lower() == "authorization")
            for name, value in headers
            if name.isascii() and name.lower() in _CREDENTIAL_HEADERS
        ]
        found += [
            (CREDENTIAL_QUERY_PARAMETERS[name], value, False)
            for name, value in query
            if name in CREDENTIAL_QUERY_PARAMETERS
        ]
        if not found:
            ways = " or ".join(_HOW_TO_SEND[kind] for kind in AuthKind if kind in accepted)
            return _reject(f"missing credentials: send {ways}")
        if len(found) > 1:
            return _reject("more than one credential sent; send exactly one", error=_REQUEST)
        kind, value, authorization = found[0]
        # RFC 6750 section 3.1: a credential of another kind or scheme gets no error code
        error = _TOKEN if kind is AuthKind.OAUTH2 else None
        if kind not in accepted:
            what = "bearer tokens" if kind is AuthKind.OAUTH2 else "API keys"
            return _reject(f"this API does not accept {what}")
        if len(value) > MAX_CREDENTIAL_LENGTH:
            return _reject("credential too long", error=error)
        if authorization:
            parts = [part for part in value.split(" ") if part]
            if not parts or parts[0].lower() != "bearer":
                return _reject(_BEARER_FORM)
            if len(parts) != 2:
                return _reject(_BEARER_FORM, error=_REQUEST)
            value = parts[1]
        outcome = self._jwt(value, now) if kind is AuthKind.OAUTH2 else self._api_key(value)
        if isinstance(outcome, Rejection):
            return attrs.evolve(outcome, error=error)
        scoped = _scoped(outcome, topic)
        if isinstance(scoped, Rejection) and error is not None:
            return attrs.evolve(scoped, error=_SCOPE)
        return scoped

    def reauthorize(
        self, principal: Principal, *, api: StreamingAPI, topic: Topic
    ) -> Principal | Rejection:
        """What ``principal``, authenticated earlier (perhaps under other keys, on another
        version of ``topic``), is now on ``topic`` of ``api``: the principal a new handshake
        with the same credential would get, or why it would be refused (see the module's
        docstring).  An embedder's API key lookup cannot be asked again without the key: its
        principals stay as they are."""
        accepted = api.auth_kinds
        if not accepted or topic.is_open:
            return _ANONYMOUS
        kind = principal.kind
        if kind is None:
            return _reject("authentication is now required")
        if kind not in accepted:
            what = "bearer tokens" if kind is AuthKind.OAUTH2 else "API keys"
            return _reject(f"this API no longer accepts {what}")
        if kind is AuthKind.OAUTH2:
            if principal.credential_id not in self._fingerprints:
                return _reject("the token's signing key is no longer accepted")
        elif self._api_keys is None:
            return _reject("no API keys are configured on this gateway")
        elif isinstance(self._api_keys, dict):
            current = self._api_keys.get(principal.credential_id or b"")
            if current is None:
                return _reject("API key revoked")
            principal = current
        return _scoped(principal, topic)

    def _api_key(self, value: str) -> Principal | Rejection:
        if self._api_keys is None:
            return _reject("no API keys are configured on this gateway")
        if isinstance(self._api_keys, dict):
            principal = self._api_keys.get(_digest(value))
        else:
            info = self._api_keys(value)
            principal = None if info is None else _key_principal(info, _digest(value))
        if principal is None:
            return _reject("invalid API key")
        return principal

    def _jwt(self, token: str, now: float) -> Principal | Rejection:
        """:meth:`_jwt_plain`, by a second implementation for a token seen before: its
        signature is verified again (with the key its header picked, prepared once), its
        ``exp`` and ``nbf`` checked against ``now``; what its header and claims gave
        otherwise (the key, issuer, audience, scopes, subject: the same bytes give the same)
        is taken from the first time.  Only a token whose signature held and whose claims gave
        a principal is remembered, by its signing input; any other token, or one whose
        signature is not canonical base64url, is decided by :meth:`_jwt_plain`."""
        signing_input, _, signature = token.rpartition(".")
        known = self._verified.get(signing_input)
        if known is None or not _TOKEN_SHAPE.fullmatch(token) or "=" in signature:
            return self._jwt_plain(token, now)
        try:
            signed = _canonical_base64url(signature)
        except ValueError:
            return self._jwt_plain(token, now)
        if not known.algorithm.verify(signing_input.encode(), known.key, signed):
            return _reject("invalid token signature")
        if known.expires_at is not None and now >= known.expires_at:
            return _reject("token expired")
        if known.not_before is not None and now + self._config.leeway < known.not_before:
            return _reject("token not yet valid")
        return known.principal

    def _jwt_plain(self, token: str, now: float) -> Principal | Rejection:
        if not self.has_jwt_key:
            return _reject("no key is configured on this gateway to verify bearer tokens")
        if not _TOKEN_SHAPE.fullmatch(token):
            return _reject("malformed bearer token")
        # The unverified header only picks the key; PyJWT parses it again, strictly, and
        # verifies with that key's algorithm alone.  (PyJWT's own header parse would double the
        # cost of an HS256 check.)
        head = token.partition(".")[0].rstrip("=")
        try:
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, RecursionError):
            return _reject("malformed bearer token")
        if not isinstance(header, dict):
            return _reject("malformed bearer token")
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in JWT_ALGORITHMS:
            return _reject("token algorithm not accepted (HS256, RS256 or ES256 only)")
        if kid is not None and not isinstance(kid, str):
            return _reject("malformed bearer token")
        key = self._key_for(kid)
        if key is None:
            return _reject("unknown token key id")
        if key.algorithm != algorithm:
            return _reject("token algorithm does not match the gateway's key")
        payload = self._canonical_payload(token, header, key)
        canonical = payload is not None
        if payload is None:
            payload = self._payload(token, key)
        if isinstance(payload, Rejection):
            return payload
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError):
            return _reject("malformed bearer token")
        if not isinstance(claims, dict):
            return _reject("malformed bearer token")
        outcome = self._claims(claims, now, key)
        if canonical and isinstance(outcome, Principal):
            self._remember(token, claims, outcome, self._prepared[key.fingerprint])
        return outcome

    def _remember(
        self,
        token: str,
        claims: Mapping[str, Any],
        principal: Principal,
        prepared: tuple[Any, Any],
    ) -> None:
        """Keep what a verified token's header and claims gave, for :meth:`_jwt`."""
        verified = self._verified
        if len(verified) >= MAX_VERIFIED_TOKENS:
            del verified[next(iter(verified))]
        nbf = _time_claim(claims["nbf"]) if "nbf" in claims else None
        verified[token.rpartition(".")[0]] = _Verified(
            algorithm=prepared[0],
            key=prepared[1],
            expires_at=principal.expires_at,
            not_before=nbf,
            principal=principal,
        )

    def _payload(self, token: str, key: _Key) -> bytes | Rejection:
        """The payload of ``token`` once PyJWT verified it with ``key``: the plain path."""
        try:
            payload: bytes = self._jws.decode(token, key.key, algorithms=[key.algorithm])
        except jwt.InvalidSignatureError:
            return _reject("invalid token signature")
        except jwt.PyJWTError:
            return _reject("malformed bearer token")
        return payload

    def _canonical_payload(
        self, token: str, header: Mapping[str, Any], key: _Key
    ) -> bytes | Rejection | None:
        """:meth:`_payload` for the common token, by a second implementation: three segments
        of unpadded, canonical base64url (no ``=``, no stray bits), a header without ``crit``
        or ``b64``, verified by PyJWT's algorithm with the key it prepared once; ``None`` for
        any other token, which :meth:`_payload` then decides."""
        prepared = self._prepared.get(key.fingerprint)
        if prepared is None or "=" in token or "crit" in header or "b64" in header:
            return None
        head, body, signature = token.split(".")  # the shape: three segments
        try:
            _canonical_base64url(head)  # the header the caller read from it
            payload = _canonical_base64url(body)
            signed = _canonical_base64url(signature)
        except ValueError:
            return None
        algorithm, prepared_key = prepared
        if not algorithm.verify(f"{head}.{body}".encode(), prepared_key, signed):
            return _reject("invalid token signature")
        return payload

    def _key_for(self, kid: str | None) -> _Key | None:
        if self._jwks is None:
            return self._fixed_key
        key = self._jwks.get(kid)
        if key is None and kid is None and len(self._jwks) == 1:
            key = next(iter(self._jwks.values()))
        return key

    def _claims(self, claims: Mapping[str, Any], now: float, key: _Key) -> Principal | Rejection:
        leeway = self._config.leeway
        times: dict[str, float] = {}
        for name in ("exp", "nbf", "iat"):
            if name in claims:
                value = _time_claim(claims[name])
                if value is None:
                    return _reject(f"malformed '{name}' claim")
                times[name] = value
        if "exp" in times and now >= times["exp"] + leeway:
            return _reject("token expired")
        if "nbf" in times and now + leeway < times["nbf"]:
            return _reject("token not yet valid")
        issuer = self._config.jwt_issuer
        if issuer is not None and claims.get("iss") != issuer:
            return _reject("token issuer not accepted")
        audience = self._config.jwt_audience
        if audience is not None:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or audience not in audiences:
                return _reject("token audience not accepted")
        scopes = _jwt_scopes(claims)
        if isinstance(scopes, str):
            return _reject(
                f"malformed '{scopes}' claim: a space-separated string or a list of strings"
            )
        subject = claims.get("sub")
        if subject is not None and not isinstance(subject, str):
            return _reject("malformed 'sub' claim")
        keytype = claims.get("keytype")
        sandbox = isinstance(keytype, str) and keytype.lower() == "sandbox"
        return Principal(
            kind=AuthKind.OAUTH2,
            subject=subject,
            scopes=scopes,
            environment=Environment.SANDBOX if sandbox else Environment.PRODUCTION,
            expires_at=times["exp"] + leeway if "exp" in times else None,
            credential_id=key.fingerprint,
        )


@attrs.frozen
class _Verified:
    """What a token's signing input gave once its signature held: the key that verified it
    (PyJWT's algorithm and the key it prepared), its deadlines (``exp`` with the leeway,
    ``nbf`` without) and its principal."""

    algorithm: Any
    key: Any
    expires_at: float | None
    not_before: float | None
    principal: Principal


def _canonical_base64url(segment: str) -> bytes:
    """The bytes of an unpadded base64url ``segment`` that is the one encoding of them (as
    PyJWT requires); :class:`ValueError` otherwise.  The caller has checked the alphabet."""
    if len(segment) % 4 == 1:
        raise ValueError("no base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=") != segment.encode():
        raise ValueError("not canonical")
    return data


def _scoped(principal: Principal, topic: Topic) -> Principal | Rejection:
    """``principal`` when it holds one of the topic's scopes (or the topic names none)."""
    required = topic.scopes
    if required and principal.scopes.isdisjoint(required):
        return _reject(f"insufficient scope: needs one of {', '.join(required)}", 403)
    return principal


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
