from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import asyncapi_gw

# The relay's names load on first use (websockets and PyJWT with them).
RELAY_EXPORTS = {
    "ApiKeyInfo",
    "AuthConfig",
    "OnInvalid",
    "OnThrottle",
    "OnWrongDirection",
    "Relay",
    "RelayConfig",
}


def test_exports_are_exactly_all() -> None:
    public = {name for name in dir(asyncapi_gw) if not name.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(asyncapi_gw.__path__)}
    assert set(asyncapi_gw.__all__) <= public | RELAY_EXPORTS
    assert set(asyncapi_gw.__all__) >= RELAY_EXPORTS
    helpers = {"annotations", "TYPE_CHECKING", "Any"}
    assert public - set(asyncapi_gw.__all__) - modules - helpers == set()
    assert asyncapi_gw.__all__ == sorted(asyncapi_gw.__all__)
    for name in asyncapi_gw.__all__:
        assert getattr(asyncapi_gw, name) is not None


def test_relay_names_at_the_top_level_are_the_relay_package_s() -> None:
    from asyncapi_gw import relay

    for name in RELAY_EXPORTS | {"Environment"}:
        assert name in relay.__all__
        assert getattr(asyncapi_gw, name) is getattr(relay, name), name


def test_auth_config_is_importable_from_the_top_level() -> None:
    from asyncapi_gw import ApiKeyInfo, AuthConfig, Environment, RelayConfig

    auth = AuthConfig(api_keys={"k": ApiKeyInfo(environment=Environment.SANDBOX)})
    assert RelayConfig(auth=auth).auth is auth


def test_every_public_module_declares_all() -> None:
    for info in pkgutil.walk_packages(asyncapi_gw.__path__, "asyncapi_gw."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        assert isinstance(getattr(module, "__all__", None), list), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = asyncapi_gw.NoSuchThing  # type: ignore[attr-defined]


# Pure modules: no file, network or process I/O, nor a module that does it.
PURE = ["model", "errors", "relay/auth", "relay/routing", "relay/principal", "relay/config"]
IO_MODULES = {"asyncapi_gw.documents", "asyncapi_gw.relay.credentials", "pathlib", "os", "io"}
IO_MODULES |= {"socket", "ssl", "asyncio", "subprocess", "shutil", "tempfile"}


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_no_io(name: str) -> None:
    path = Path(asyncapi_gw.__file__).parent / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open", f"{name}.py:{node.lineno} opens a file"
    assert imported & IO_MODULES == set()
