"""Rebuild the bundled demo database (backend/demo/shop.sqlite) from its fixed seed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.demo.builder import build_demo_database  # noqa: E402

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO_DB_PATH
    build_demo_database(target)
    print(f"wrote {target}")
