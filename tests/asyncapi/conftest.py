"""Makes ``document_strategies`` (the codec tests' shared helpers) importable in any import mode."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
