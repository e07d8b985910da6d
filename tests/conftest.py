"""Makes the tests' shared helper modules (``tls_certificates``, ``redis_server``) importable in
any import mode, and gives every test directory the ``redis_server`` fixture."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_server import RedisServer, running_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` of the test's own on a free loopback port (skips, saying why,
    only where none is installed)."""
    with running_redis(tmp_path) as server:
        yield server
