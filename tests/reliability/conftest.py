"""Makes the relay suites' helpers (``relay_harness``, ``relay_load``) importable in any import
mode."""

from __future__ import annotations

import sys
from pathlib import Path

here = Path(__file__).parent
for folder in (here, here.parent / "relay"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
