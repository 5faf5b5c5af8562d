"""The bundled demo database: a small, realistic shop to ask the first questions of."""

from pathlib import Path

DEMO_DB_PATH = Path(__file__).resolve().parent / "shop.sqlite"
