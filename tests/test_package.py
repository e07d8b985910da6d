from __future__ import annotations

import importlib
import pkgutil

import pytest

import asyncapi_gw


def test_exports_are_exactly_all() -> None:
    public = {name for name in dir(asyncapi_gw) if not name.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(asyncapi_gw.__path__)}
    assert set(asyncapi_gw.__all__) <= public | {"Relay", "RelayConfig"}
    helpers = {"annotations", "TYPE_CHECKING", "Any"}
    assert public - set(asyncapi_gw.__all__) - modules - helpers == set()
    for name in asyncapi_gw.__all__:
        assert getattr(asyncapi_gw, name) is not None


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
