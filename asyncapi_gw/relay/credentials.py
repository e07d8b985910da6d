"""Credential files: the key material ``asyncapi-gw serve``'s options name, read into an
:class:`~asyncapi_gw.relay.auth.AuthConfig`.

This is the only part of the relay's authentication that reads files; the
:class:`~asyncapi_gw.relay.auth.Authenticator` itself only judges values.  YAML and JSON are
read through :mod:`asyncapi_gw.documents`, so a malformed API key file reports its problems with
their line and column, as a malformed AsyncAPI document does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asyncapi_gw.documents import read_document
from asyncapi_gw.errors import DocumentError, RelayError
from asyncapi_gw.relay.auth import DEFAULT_LEEWAY, ApiKeyInfo, AuthConfig

__all__ = ["load_auth_config"]

_KEY_FIELDS = ("name", "scopes", "environment")


def load_auth_config(
    *,
    jwt_secret: str | None = None,
    jwt_secret_file: str | Path | None = None,
    jwt_public_key_file: str | Path | None = None,
    jwks_file: str | Path | None = None,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    api_keys_file: str | Path | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> AuthConfig:
    """An :class:`AuthConfig` from the CLI's options, reading the named files.

    The secret file holds the HS256 secret as UTF-8 text; line breaks at its end are not part
    of it.  The API key file (YAML or JSON) maps each key to ``{name: WHO, scopes: [...],
    environment: production|sandbox}`` (all optional; defaults: a fingerprint of the key, no
    scopes, production).
    Raises :class:`RelayError` on an unreadable or malformed file.
    """
    if jwt_secret_file is not None:
        if jwt_secret is not None:
            raise RelayError("give the JWT secret once: as a value or as a file, not both")
        jwt_secret = _read_text(jwt_secret_file, "JWT secret file", "utf-8").rstrip("\r\n")
        if not jwt_secret:
            raise RelayError(f"JWT secret file {jwt_secret_file}: empty")
    public_key = None
    if jwt_public_key_file is not None:
        public_key = _read_text(jwt_public_key_file, "JWT public key file", "ascii")
    jwks = None
    if jwks_file is not None:
        jwks = _read_data(jwks_file, "JWKS file")
    api_keys = None
    if api_keys_file is not None:
        api_keys = _api_keys_from_data(
            _read_data(api_keys_file, "API key file"), str(api_keys_file)
        )
    return AuthConfig(
        jwt_secret=jwt_secret,
        jwt_public_key=public_key,
        jwks=jwks,
        jwt_issuer=jwt_issuer,
        jwt_audience=jwt_audience,
        leeway=leeway,
        api_keys=api_keys,
    )


def _read_text(path: str | Path, what: str, encoding: str) -> str:
    try:
        return Path(path).read_text(encoding=encoding)
    except OSError as exc:
        raise RelayError(f"{what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # its message would quote a byte of the file
        raise RelayError(f"{what} {path}: not {encoding.upper()} text") from None


def _read_data(path: str | Path, what: str) -> Any:
    try:
        return read_document(path).data
    except DocumentError as exc:
        raise RelayError(f"{what}: {exc.message}", exc.problems) from None


def _api_keys_from_data(data: Any, where: str) -> dict[str, ApiKeyInfo]:
    if not isinstance(data, Mapping):
        raise RelayError(
            f"API key file {where}: must map each key to {{name, scopes, environment}}"
        )
    keys: dict[str, ApiKeyInfo] = {}
    for number, (key, entry) in enumerate(data.items(), start=1):
        # Entries are named by position: the key itself is a secret.
        prefix = f"API key file {where}: entry #{number}"
        if not isinstance(key, str) or not key:
            raise RelayError(f"{prefix}: the key must be a non-empty string")
        fields = {} if entry is None else entry
        if not isinstance(fields, Mapping):
            raise RelayError(f"{prefix}: must be a mapping with 'name', 'scopes', 'environment'")
        unknown = sorted(str(name) for name in fields if name not in _KEY_FIELDS)
        if unknown:
            raise RelayError(f"{prefix}: unknown field(s) {', '.join(unknown)}")
        scopes = fields.get("scopes", [])
        if not isinstance(scopes, (list, tuple)) or not all(
            isinstance(s, str) and s for s in scopes
        ):
            raise RelayError(f"{prefix}: 'scopes' must be a list of non-empty strings")
        name = fields.get("name")
        if name is not None and not (isinstance(name, str) and name):
            raise RelayError(f"{prefix}: 'name' must be a non-empty string")
        environment = fields.get("environment", "production")
        try:
            keys[key] = ApiKeyInfo(scopes=frozenset(scopes), environment=environment, name=name)
        except (ValueError, TypeError):
            raise RelayError(f"{prefix}: 'environment' must be production or sandbox") from None
    return keys
