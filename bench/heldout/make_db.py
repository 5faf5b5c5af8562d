#!/usr/bin/env python3
"""Build database/wholesale/wholesale.sqlite: the operational database of "Keelstone Supply",
a made-up wholesale distributor of hardware and building supplies, from 2021-01-04 to
2025-03-31 ("today" in the data).

Deterministic: a fixed seed and the standard library only; the script prints a digest of the
rows so two builds can be compared (the file's bytes may differ between SQLite versions).

    python3 bench/heldout/make_db.py [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import sqlite3
from pathlib import Path

SEED = 20250331
TODAY = dt.date(2025, 3, 31)
FIRST_DAY = dt.date(2021, 1, 4)
HERE = Path(__file__).resolve().parent
DB_PATH = HERE / "database" / "wholesale" / "wholesale.sqlite"

# Foreign keys: orders -> customers and order_lines -> orders are declared; the others
# (products.supplier_id, customers.rep_id, orders.wh_id, shipments.order_id, ...) are ids by
# name only, as in many real databases.
SCHEMA = """
CREATE TABLE warehouses (
    wh_id       INTEGER PRIMARY KEY,
    wh_code     TEXT NOT NULL UNIQUE,
    city        TEXT NOT NULL,
    country     TEXT NOT NULL,
    opened_on   TEXT NOT NULL,
    closed_on   TEXT,              -- NULL = still operating
    capacity_m2 INTEGER NOT NULL
);
CREATE TABLE suppliers (
    supplier_id    INTEGER PRIMARY KEY,
    supplier_name  TEXT NOT NULL,
    country        TEXT NOT NULL,
    lead_time_days INTEGER NOT NULL,
    is_preferred   INTEGER NOT NULL DEFAULT 0,
    contact_email  TEXT
);
CREATE TABLE categories (
    cat_id        INTEGER PRIMARY KEY,
    cat_name      TEXT NOT NULL,
    parent_cat_id INTEGER           -- NULL = top-level category
);
CREATE TABLE products (
    sku          TEXT PRIMARY KEY,
    product_name TEXT NOT NULL,
    cat_id       INTEGER NOT NULL,
    supplier_id  INTEGER NOT NULL,
    unit_cost    REAL NOT NULL,     -- what Keelstone pays the supplier, EUR
    list_price   REAL NOT NULL,     -- price to customers before discounts, EUR
    weight_kg    REAL,              -- NULL = not measured
    discontinued INTEGER NOT NULL DEFAULT 0,
    added_on     TEXT NOT NULL
);
CREATE TABLE employees (
    emp_id     INTEGER PRIMARY KEY,
    full_name  TEXT NOT NULL,
    job_title  TEXT NOT NULL,
    dept       TEXT NOT NULL,
    wh_id      INTEGER,             -- NULL = office staff, not based at a warehouse
    manager_id INTEGER,             -- NULL = no manager
    hired_on   TEXT NOT NULL,
    left_on    TEXT,                -- NULL = still employed
    salary     REAL NOT NULL        -- yearly, EUR
);
CREATE TABLE customers (
    cust_id      INTEGER PRIMARY KEY,
    cust_name    TEXT NOT NULL,
    segment      TEXT NOT NULL,
    city         TEXT NOT NULL,
    country      TEXT NOT NULL,
    email        TEXT NOT NULL,
    credit_limit REAL NOT NULL,
    rep_id       INTEGER,           -- account manager (employees.emp_id); NULL = none
    created_on   TEXT NOT NULL,
    is_blocked   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    order_id      INTEGER PRIMARY KEY,
    cust_id       INTEGER NOT NULL REFERENCES customers(cust_id),
    order_date    TEXT NOT NULL,
    required_date TEXT NOT NULL,
    channel       TEXT NOT NULL,
    status        TEXT NOT NULL,     -- open | shipped | delivered | cancelled
    wh_id         INTEGER NOT NULL,  -- ships from this warehouse
    taken_by      INTEGER            -- employees.emp_id; NULL = placed on the web portal
);
CREATE TABLE order_lines (
    order_id   INTEGER NOT NULL REFERENCES orders(order_id),
    line_no    INTEGER NOT NULL,
    sku        TEXT NOT NULL,
    qty        INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    disc_pct   REAL NOT NULL DEFAULT 0,  -- 0-100
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE shipments (
    shipment_id  INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL,
    carrier      TEXT NOT NULL,
    shipped_on   TEXT,               -- NULL = not shipped yet
    delivered_on TEXT,               -- NULL = not delivered yet
    freight_cost REAL NOT NULL
);
CREATE TABLE stock_levels (
    wh_id         INTEGER NOT NULL,
    sku           TEXT NOT NULL,
    qty_on_hand   INTEGER NOT NULL,
    reorder_point INTEGER NOT NULL,
    PRIMARY KEY (wh_id, sku)
);
"""

WAREHOUSES = [
    ("RTM", "Rotterdam", "Netherlands", "2014-03-01", None, 42000),
    ("ANR", "Antwerp", "Belgium", "2016-09-15", None, 31000),
    ("DUS", "Duisburg", "Germany", "2018-05-02", None, 27500),
    ("LYS", "Lyon", "France", "2019-11-04", None, 18000),
    ("GDN", "Gdansk", "Poland", "2021-06-01", "2024-02-29", 12000),
    ("MIL", "Milan", "Italy", "2023-04-17", None, 15500),
]

SUPPLIER_NAMES = [
    ("Brenner Werkzeug GmbH", "Germany"),
    ("Vostok Fasteners", "Poland"),
    ("Tidewater Paints", "Netherlands"),
    ("Lumo Lighting Oy", "Finland"),
    ("Atelier Bois SA", "France"),
    ("Sierra Plumbing Co", "Spain"),
    ("Kessel Electric", "Germany"),
    ("Nordhavn Timber", "Denmark"),
    ("Castellan Tools", "Italy"),
    ("Ostrava Steelworks", "Czechia"),
    ("Greenline Garden", "Netherlands"),
    ("Marlow Adhesives", "United Kingdom"),
    ("Pacifica Imports", "China"),
    ("Tern Safety Gear", "Belgium"),
    ("Helio Solar Parts", "Spain"),
    ("Rudd & Sons Hardware", "United Kingdom"),
    ("Anker Bolt AG", "Austria"),
    ("Fjord Insulation", "Norway"),
]

CATEGORY_TREE = {
    "Tools": ["Hand tools", "Power tools", "Measuring"],
    "Fasteners": ["Screws", "Bolts & nuts", "Anchors"],
    "Paint": ["Interior paint", "Exterior paint", "Brushes & rollers"],
    "Electrical": ["Cables", "Lighting", "Switches & sockets"],
    "Plumbing": ["Pipes & fittings", "Taps"],
    "Garden": ["Garden tools", "Irrigation"],
    "Safety": ["Gloves", "Eye protection"],
}

PRODUCT_WORDS = {
    "Hand tools": (["Claw hammer", "Chisel set", "Hacksaw", "Spirit level", "Pliers"], (4, 40)),
    "Power tools": (
        ["Cordless drill", "Angle grinder", "Jigsaw", "Impact driver", "Sander"],
        (45, 320),
    ),
    "Measuring": (["Tape measure", "Laser meter", "Steel ruler", "Caliper"], (3, 90)),
    "Screws": (["Wood screws", "Drywall screws", "Deck screws", "Machine screws"], (2, 18)),
    "Bolts & nuts": (["Hex bolts", "Carriage bolts", "Lock nuts", "Washers"], (2, 15)),
    "Anchors": (["Wall plugs", "Chemical anchor", "Toggle bolts"], (3, 25)),
    "Interior paint": (["Matt emulsion", "Silk emulsion", "Ceiling white"], (12, 60)),
    "Exterior paint": (["Masonry paint", "Wood stain", "Metal primer"], (15, 75)),
    "Brushes & rollers": (["Paint brush", "Roller kit", "Paint tray"], (2, 20)),
    "Cables": (["Twin cable", "Extension reel", "Coax cable"], (8, 70)),
    "Lighting": (["LED bulb", "Flood light", "Batten light", "Downlight"], (3, 85)),
    "Switches & sockets": (["Double socket", "Dimmer switch", "USB socket"], (4, 35)),
    "Pipes & fittings": (["Copper pipe", "Elbow fitting", "Compression tee", "PVC pipe"], (2, 30)),
    "Taps": (["Mixer tap", "Outdoor tap", "Basin tap"], (18, 140)),
    "Garden tools": (["Spade", "Pruning shears", "Rake", "Wheelbarrow"], (9, 110)),
    "Irrigation": (["Garden hose", "Sprinkler", "Drip kit"], (6, 55)),
    "Gloves": (["Work gloves", "Nitrile gloves", "Cut-resistant gloves"], (2, 14)),
    "Eye protection": (["Safety glasses", "Face shield", "Goggles"], (3, 22)),
}
SIZES = ["S", "M", "L", "XL", "Pro", "Lite", "500", "1000", "2.5m", "10m"]

SEGMENTS = [
    ("Retail chain", 0.15),
    ("Independent store", 0.45),
    ("Contractor", 0.28),
    ("Online reseller", 0.12),
]
CITIES = [
    ("Amsterdam", "Netherlands"),
    ("Utrecht", "Netherlands"),
    ("Eindhoven", "Netherlands"),
    ("Rotterdam", "Netherlands"),
    ("Brussels", "Belgium"),
    ("Ghent", "Belgium"),
    ("Antwerp", "Belgium"),
    ("Cologne", "Germany"),
    ("Dusseldorf", "Germany"),
    ("Essen", "Germany"),
    ("Hamburg", "Germany"),
    ("Lyon", "France"),
    ("Paris", "France"),
    ("Lille", "France"),
    ("Grenoble", "France"),
    ("Milan", "Italy"),
    ("Turin", "Italy"),
    ("Gdansk", "Poland"),
    ("Warsaw", "Poland"),
    ("Luxembourg", "Luxembourg"),
]
NAME_PARTS_A = [
    "North",
    "Oak",
    "Prime",
    "Bright",
    "Union",
    "Stone",
    "River",
    "Iron",
    "Blue",
    "Summit",
    "Harbor",
    "Maple",
    "Granite",
    "Cedar",
    "Delta",
    "Alpine",
    "Golden",
    "Silver",
    "Pioneer",
    "Civic",
    "Metro",
    "Crown",
    "Vista",
    "Falcon",
]
NAME_PARTS_B = [
    "Bouw",
    "Hardware",
    "Builders",
    "DIY",
    "Supplies",
    "Renovations",
    "Werk",
    "Home Center",
    "Installations",
    "Depot",
    "Bricolage",
    "Construct",
    "Fix",
    "Trade",
    "Store",
]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "hotmail.com", "web.de", "orange.fr", "ziggo.nl"]
FIRST = [
    "Anna",
    "Bram",
    "Chloe",
    "Daan",
    "Elif",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katja",
    "Lucas",
    "Marta",
    "Niels",
    "Olga",
    "Pieter",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wout",
    "Yara",
    "Zeno",
    "Lena",
    "Milan",
    "Sofie",
    "Ruben",
    "Noor",
    "Timo",
]
LAST = [
    "Jansen",
    "de Vries",
    "Peeters",
    "Muller",
    "Dubois",
    "Rossi",
    "Kowalski",
    "Bakker",
    "Maes",
    "Schmidt",
    "Martin",
    "Bianchi",
    "Nowak",
    "Visser",
    "Claes",
    "Weber",
    "Lefebvre",
    "Ricci",
    "Wojcik",
    "Smit",
    "Janssens",
    "Fischer",
    "Moreau",
    "Romano",
    "Mertens",
]
CARRIERS = [
    ("DHL Freight", 1.0),
    ("DB Schenker", 0.9),
    ("PostNL Pakketten", 0.6),
    ("Own fleet", 0.45),
    ("Kuehne+Nagel", 1.15),
]
CHANNELS = [("phone", 0.3), ("email", 0.2), ("web portal", 0.35), ("EDI", 0.15)]


def day(d: dt.date) -> str:
    return d.isoformat()


def pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w for w, _ in weighted], weights=[p for _, p in weighted])[0]


def build(path: Path) -> str:
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)

    # warehouses
    for i, w in enumerate(WAREHOUSES, start=1):
        con.execute("INSERT INTO warehouses VALUES (?,?,?,?,?,?,?)", (i, *w))
    open_wh = [i for i, w in enumerate(WAREHOUSES, start=1)]

    # suppliers: a couple of countries with a trailing space or in lower case, as typed in
    for i, (name, country) in enumerate(SUPPLIER_NAMES, start=1):
        stored = country
        if i in (4, 11):
            stored = country + " "
        if i == 15:
            stored = country.lower()
        lead = rng.randint(3, 45) if country != "China" else 62
        email = None if i in (9, 17) else f"orders@{name.split()[0].lower()}.example"
        preferred = 1 if i in (1, 3, 6, 7, 10, 14, 16) else 0
        con.execute(
            "INSERT INTO suppliers VALUES (?,?,?,?,?,?)", (i, name, stored, lead, preferred, email)
        )

    # categories: top level, then sub-categories pointing at their parent
    cat_ids: dict[str, int] = {}
    next_cat = 1
    for top in CATEGORY_TREE:
        cat_ids[top] = next_cat
        con.execute("INSERT INTO categories VALUES (?,?,NULL)", (next_cat, top))
        next_cat += 1
    for top, subs in CATEGORY_TREE.items():
        for sub in subs:
            cat_ids[sub] = next_cat
            con.execute("INSERT INTO categories VALUES (?,?,?)", (next_cat, sub, cat_ids[top]))
            next_cat += 1

    # products
    products: list[tuple[str, float, int]] = []  # sku, list_price, discontinued (orderable)
    new_arrivals: list[tuple[str, float, int]] = []
    sku_n = 10000
    seen_names: set[str] = set()
    for sub, (words, (lo, hi)) in PRODUCT_WORDS.items():
        for word in words:
            for _ in range(rng.randint(2, 4)):
                size = rng.choice(SIZES)
                name = f"{word} {size}"
                if name in seen_names:
                    continue
                seen_names.add(name)
                sku_n += rng.randint(1, 9)
                prefix = "".join(p[0] for p in sub.replace("&", "").split()).upper()
                sku = f"{prefix}-{sku_n}"
                price = round(rng.uniform(lo, hi), 2)
                cost = round(price * rng.uniform(0.45, 0.75), 2)
                weight = None if rng.random() < 0.08 else round(rng.uniform(0.05, 18), 2)
                disc = 1 if rng.random() < 0.1 else 0
                supplier = rng.randint(1, len(SUPPLIER_NAMES))
                added = FIRST_DAY + dt.timedelta(days=rng.randint(-900, 1200))
                fresh = rng.random() < 0.04  # a new arrival nobody has ordered yet
                if fresh:
                    added = TODAY - dt.timedelta(days=rng.randint(1, 20))
                con.execute(
                    "INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?)",
                    (sku, name, cat_ids[sub], supplier, cost, price, weight, disc, day(added)),
                )
                (new_arrivals if fresh else products).append((sku, price, disc))

    # employees: a CEO without a manager, department heads, warehouse managers, reps, pickers
    emps: list[dict[str, object]] = []

    def hire(title: str, dept: str, wh: int | None, mgr: int | None, salary: float) -> int:
        eid = len(emps) + 1
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        while any(e["name"] == name for e in emps):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        hired = dt.date(2012, 1, 1) + dt.timedelta(days=rng.randint(0, 4300))
        left = None
        if mgr is not None and rng.random() < 0.18:
            left_day = hired + dt.timedelta(days=rng.randint(200, 2000))
            left = day(left_day) if left_day < TODAY else None
        emps.append(
            {
                "id": eid,
                "name": name,
                "title": title,
                "dept": dept,
                "wh": wh,
                "mgr": mgr,
                "hired": day(hired),
                "left": left,
                "salary": round(salary * rng.uniform(0.9, 1.15), -2),
            }
        )
        return eid

    ceo = hire("Managing Director", "Management", None, None, 165000)
    sales_head = hire("Head of Sales", "Sales", None, ceo, 98000)
    ops_head = hire("Head of Operations", "Operations", None, ceo, 96000)
    fin_head = hire("Finance Director", "Finance", None, ceo, 99000)
    for _ in range(3):
        hire("Accountant", "Finance", None, fin_head, 52000)
    reps = [hire("Account Manager", "Sales", None, sales_head, 54000) for _ in range(14)]
    for _ in range(3):
        hire("Inside Sales", "Sales", None, sales_head, 41000)
    for wh in range(1, len(WAREHOUSES) + 1):
        boss = hire("Warehouse Manager", "Operations", wh, ops_head, 61000)
        for _ in range(rng.randint(3, 6)):
            hire("Order Picker", "Operations", wh, boss, 33000)
        hire("Forklift Driver", "Operations", wh, boss, 36000)
    # one picker earns more than their manager (a self-join question relies on it)
    emps[-2]["salary"] = 75000.0
    for e in emps:
        con.execute(
            "INSERT INTO employees VALUES (?,?,?,?,?,?,?,?,?)",
            (
                e["id"],
                e["name"],
                e["title"],
                e["dept"],
                e["wh"],
                e["mgr"],
                e["hired"],
                e["left"],
                e["salary"],
            ),
        )

    # customers: some city names keep the trailing space or lower case they were typed with
    customers: list[tuple[int, str, str]] = []  # id, segment, created
    used_names: set[str] = set()
    for cid in range(1, 321):
        name = f"{rng.choice(NAME_PARTS_A)} {rng.choice(NAME_PARTS_B)}"
        while name in used_names:
            name = f"{rng.choice(NAME_PARTS_A)} {rng.choice(NAME_PARTS_B)}"
        used_names.add(name)
        seg = pick(rng, SEGMENTS)
        city, country = rng.choice(CITIES)
        r = rng.random()
        if r < 0.04:
            city = city + " "
        elif r < 0.07:
            city = city.lower()
        domain = (
            rng.choice(MAIL_DOMAINS)
            if seg in ("Independent store", "Contractor") and rng.random() < 0.5
            else name.split()[0].lower()
            + "-"
            + name.split()[1].lower().replace(" ", "")
            + ".example"
        )
        email = f"{rng.choice(['info', 'orders', 'inkoop', 'achats', 'office'])}@{domain}"
        if "@" + domain in email and domain in MAIL_DOMAINS:
            email = name.replace(" ", ".").lower() + "@" + domain
        limit = {
            "Retail chain": 60000,
            "Independent store": 12000,
            "Contractor": 20000,
            "Online reseller": 25000,
        }[seg] * rng.choice([0.5, 1, 1, 1.5, 2])
        rep = None if seg == "Online reseller" and rng.random() < 0.6 else rng.choice(reps)
        if rep is None and rng.random() < 0.2:
            rep = rng.choice(reps)
        created = FIRST_DAY + dt.timedelta(days=int(rng.triangular(-1400, 1500, 200)))
        if created >= TODAY:
            created = TODAY - dt.timedelta(days=rng.randint(5, 60))
        blocked = 1 if rng.random() < 0.05 else 0
        con.execute(
            "INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?)",
            (cid, name, seg, city, country, email, limit, rep, day(created), blocked),
        )
        customers.append((cid, seg, day(created)))
    # a few customers that never ordered: created recently or blocked
    silent = {c[0] for c in customers if rng.random() < 0.06}

    # orders, lines, shipments
    wh_open = {
        i: (dt.date.fromisoformat(w[3]), dt.date.fromisoformat(w[4]) if w[4] else None)
        for i, w in enumerate(WAREHOUSES, start=1)
    }
    active_products = [p for p in products if not p[2]]
    order_id = 100000
    line_rows: list[tuple[object, ...]] = []
    ship_rows: list[tuple[object, ...]] = []
    order_rows: list[tuple[object, ...]] = []
    ship_id = 1
    for cid, seg, created in customers:
        if cid in silent:
            continue
        start = max(FIRST_DAY, dt.date.fromisoformat(created))
        per_year = {
            "Retail chain": 30,
            "Independent store": 7,
            "Contractor": 11,
            "Online reseller": 16,
        }[seg] * rng.uniform(0.25, 0.8)
        n = max(1, int(per_year * (TODAY - start).days / 365))
        for _ in range(n):
            # growth: later days are more likely; slow in August and late December
            while True:
                od = start + dt.timedelta(days=int(rng.random() ** 0.8 * (TODAY - start).days))
                if od.month == 8 and rng.random() < 0.4:
                    continue
                if od.month == 12 and od.day > 20 and rng.random() < 0.6:
                    continue
                if od.weekday() == 6:
                    continue
                break
            order_id += rng.randint(1, 3)
            candidates = [
                w
                for w in open_wh
                if wh_open[w][0] <= od and (wh_open[w][1] is None or od <= wh_open[w][1])
            ]
            wh = rng.choice(candidates[:3] if rng.random() < 0.7 else candidates)
            channel = pick(rng, CHANNELS)
            taken = None if channel == "web portal" else rng.choice(reps)
            required = od + dt.timedelta(days=rng.choice([3, 5, 7, 10, 14]))
            age = (TODAY - od).days
            if rng.random() < 0.04:
                status = "cancelled"
            elif age <= 3:
                status = "open"
            elif age <= 10:
                status = rng.choice(["open", "shipped", "shipped", "delivered"])
            elif age <= 20:
                status = "delivered" if rng.random() < 0.8 else "shipped"
            else:
                status = "delivered"
            order_rows.append((order_id, cid, day(od), day(required), channel, status, wh, taken))
            for line_no in range(1, rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6]) + 1):
                sku, price, _ = rng.choice(active_products if od.year >= 2024 else products)
                qty = rng.choice([1, 2, 4, 5, 6, 10, 12, 20, 24, 50, 100])
                if seg == "Retail chain":
                    qty *= 3
                disc = rng.choice([0, 0, 0, 0, 2.5, 5, 5, 10, 15]) if qty >= 10 else 0
                uprice = round(price * (1 + 0.04 * (od.year - 2023)), 2)
                line_rows.append((order_id, line_no, sku, qty, uprice, disc))
            if status == "cancelled":
                continue
            ship = None
            if status != "open":
                ship = od + dt.timedelta(days=rng.choice([0, 1, 1, 1, 2, 2, 3, 5, 8]))
                if ship > TODAY:
                    ship = TODAY
            deliv = None
            if status == "delivered" and ship is not None:
                deliv = ship + dt.timedelta(days=rng.choice([1, 1, 2, 2, 3, 4, 6, 9]))
                if deliv > TODAY:
                    deliv = TODAY
            carrier, factor = rng.choice(CARRIERS)
            freight = round(rng.uniform(18, 140) * factor, 2)
            ship_rows.append(
                (
                    ship_id,
                    order_id,
                    carrier,
                    day(ship) if ship else None,
                    day(deliv) if deliv else None,
                    freight,
                )
            )
            ship_id += 1
    order_rows.sort(key=lambda r: r[0])
    con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", order_rows)
    con.executemany("INSERT INTO order_lines VALUES (?,?,?,?,?,?)", line_rows)
    con.executemany("INSERT INTO shipments VALUES (?,?,?,?,?,?)", ship_rows)

    # stock: every product in the open warehouses, some below their reorder point
    for wh in range(1, len(WAREHOUSES) + 1):
        if WAREHOUSES[wh - 1][4] is not None:
            continue
        for sku, _price, disc in products + new_arrivals:
            if rng.random() < 0.25:
                continue
            reorder = rng.choice([10, 20, 25, 50, 100])
            on_hand = 0 if disc and rng.random() < 0.7 else int(reorder * rng.uniform(0.2, 6))
            con.execute("INSERT INTO stock_levels VALUES (?,?,?,?)", (wh, sku, on_hand, reorder))

    con.commit()
    con.execute("VACUUM")
    con.close()
    return content_digest(path)


def content_digest(path: Path) -> str:
    """The digest `build` prints, read back from a built file."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    digest = hashlib.sha256()
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            digest.update(repr(row).encode())
    con.close()
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DB_PATH)
    args = parser.parse_args()
    digest = build(args.out)
    con = sqlite3.connect(args.out)
    tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    counts = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    con.close()
    print(", ".join(f"{t} {n}" for t, n in counts.items()))
    print(f"{args.out} {args.out.stat().st_size / 1e6:.2f} MB, digest {digest}")


if __name__ == "__main__":
    main()
