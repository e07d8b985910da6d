"""Fixtures of the real-client tests: one relay stack on a background loop for the whole
group, and the client binaries (skipped with a reason when not installed)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from realclients_harness import (
    Browser,
    Front,
    LoopThread,
    Stack,
    browser,
    chromium_binary,
    front_for,
    start_stack,
    stop_stack,
    wscat_binary,
)

INSTALL = "run tests/realclients/install.sh"


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture(scope="session")
def stack(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = loop_thread.run(start_stack(loop_thread, tmp_path_factory.mktemp("tls")))
    yield started
    loop_thread.run(stop_stack(started))


@pytest.fixture(scope="session")
def chromium(loop_thread: LoopThread) -> Iterator[Browser]:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(f"Chromium not found at /usr/lib/chromium/chromium: {INSTALL}")
    with browser(loop_thread, binary) as started:
        yield started


@pytest.fixture(scope="session")
def wscat() -> str:
    binary = wscat_binary()
    if binary is None:
        pytest.skip(f"wscat not found in tests/realclients/node_modules or on PATH: {INSTALL}")
    return binary


ASGI_KINDS = ("uvicorn-sansio+fastapi", "hypercorn")  # the relay mounted in FastAPI; alone


@pytest.fixture(scope="module", params=("listener", *ASGI_KINDS))
def ws_front(
    request: pytest.FixtureRequest, loop_thread: LoopThread, stack: Stack
) -> Iterator[Front]:
    """Each front in turn: the stack's own listener, then the ASGI app under real servers."""
    yield from front_for(request.param, loop_thread, stack)


@pytest.fixture(scope="module", params=ASGI_KINDS)
def asgi_front(
    request: pytest.FixtureRequest, loop_thread: LoopThread, stack: Stack
) -> Iterator[Front]:
    """The ASGI app under each real server, in front of the stack's backends."""
    yield from front_for(request.param, loop_thread, stack)
