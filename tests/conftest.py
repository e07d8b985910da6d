"""Makes the tests' shared helper modules (``tls_certificates``) importable in any import mode."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
