#!/usr/bin/env python3
"""The `[build]` command of Python plugins: runs `plinth_sdk.build` from this checkout.

    [build]
    command = ["python3", "<path to>/sdk/python/build.py", "app"]

It needs nothing installed but componentize-py (see requirements.lock); `--help` lists the
options for running it by hand.
"""

import sys
from pathlib import Path

# The SDK lives next to this file; it is bundled into the component from there too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from plinth_sdk.build import main  # noqa: E402 — needs the path above

if __name__ == "__main__":
    sys.exit(main())
