"""``python -m jobtui.tui [--database URL] [--demo] [--read-only]``: the console alone."""

from __future__ import annotations

import sys

from .launch import main

sys.exit(main())
