"""``python -m asyncapi_gw``."""

from __future__ import annotations

import sys

from asyncapi_gw.cli import main

sys.exit(main())
