from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wso2"


@pytest.fixture
def market(tmp_path: Path) -> Path:
    """A copy of the API-M 4.2 project (AsyncAPI 2.0.0 definition) that a test may edit."""
    return Path(shutil.copytree(FIXTURES / "MarketFeed-1.0.0", tmp_path / "MarketFeed-1.0.0"))


@pytest.fixture
def chats(tmp_path: Path) -> Path:
    """A copy of the API-M 4.7 project (AsyncAPI 3.0.0 definition in JSON)."""
    return Path(shutil.copytree(FIXTURES / "Chats-2.0.0", tmp_path / "Chats-2.0.0"))
