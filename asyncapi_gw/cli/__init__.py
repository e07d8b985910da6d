"""The ``asyncapi-gw`` command line: the only place that prints or exits."""

from __future__ import annotations

from asyncapi_gw.cli.main import main

__all__ = ["main"]
