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
    LoopThread,
    Stack,
    browser,
    chromium_binary,
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
