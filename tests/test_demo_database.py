"""The bundled demo database: realistic, related, and rebuilt identically by its script."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backend.demo import DEMO_DB_PATH
from backend.demo.builder import build_demo_database


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}


def test_the_bundled_file_is_what_the_builder_makes(tmp_path: Path) -> None:
    rebuilt = tmp_path / "shop.sqlite"
    build_demo_database(rebuilt)
    assert _dump(rebuilt) == _dump(DEMO_DB_PATH)


def test_the_demo_data_is_worth_asking_about() -> None:
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as conn:
        fks = {
            t: conn.execute(f"PRAGMA foreign_key_list('{t}')").fetchall()
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        total_rows = sum(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in fks)
        years = {
            r[0] for r in conn.execute("SELECT DISTINCT strftime('%Y', order_date) FROM orders")
        }
        orphans = conn.execute(
            "SELECT COUNT(*) FROM order_items i LEFT JOIN orders o ON o.id = i.order_id "
            "WHERE o.id IS NULL"
        ).fetchone()[0]
        never_ordered = conn.execute(
            "SELECT COUNT(*) FROM products p WHERE NOT EXISTS "
            "(SELECT 1 FROM order_items i WHERE i.product_id = p.id)"
        ).fetchone()[0]
    assert len(fks) >= 6
    assert sum(1 for rows in fks.values() if rows) >= 4
    assert 3000 <= total_rows <= 50000
    assert {"2021", "2022", "2023", "2024"} <= years
    assert orphans == 0
    assert never_ordered > 0
