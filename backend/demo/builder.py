"""Builds the demo shop database deterministically (same seed, same rows, every time)."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20240101
START = date(2021, 1, 1)
END = date(2024, 12, 31)

SCHEMA = """
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT
);
CREATE TABLE suppliers (
    id INTEGER PRIMARY KEY,
    company_name TEXT NOT NULL,
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    contact_email TEXT
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    supplier_id INTEGER NOT NULL REFERENCES suppliers(id),
    unit_price NUMERIC(10, 2) NOT NULL,
    unit_cost NUMERIC(10, 2) NOT NULL,
    units_in_stock INTEGER NOT NULL,
    discontinued INTEGER NOT NULL DEFAULT 0,
    launched_on DATE NOT NULL
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    title TEXT NOT NULL,
    country TEXT NOT NULL,
    hire_date DATE NOT NULL,
    manager_id INTEGER REFERENCES employees(id),
    salary NUMERIC(10, 2) NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    company_name TEXT,
    segment TEXT NOT NULL,
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    signup_date DATE NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    employee_id INTEGER NOT NULL REFERENCES employees(id),
    order_date TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    shipped_date TIMESTAMP,
    ship_country TEXT NOT NULL,
    ship_city TEXT NOT NULL,
    shipping_cost NUMERIC(10, 2) NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(10, 2) NOT NULL,
    discount NUMERIC(4, 2) NOT NULL DEFAULT 0
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    amount NUMERIC(12, 2) NOT NULL,
    method TEXT NOT NULL,
    paid_at TIMESTAMP NOT NULL
);
CREATE INDEX ix_orders_customer_id ON orders(customer_id);
CREATE INDEX ix_orders_order_date ON orders(order_date);
CREATE INDEX ix_order_items_order_id ON order_items(order_id);
CREATE INDEX ix_order_items_product_id ON order_items(product_id);
CREATE INDEX ix_payments_order_id ON payments(order_id);
"""

CITIES = {
    "France": ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes"],
    "Germany": ["Berlin", "Munich", "Hamburg", "Cologne", "Frankfurt"],
    "United States": ["New York", "Chicago", "Austin", "Seattle", "Boston", "Denver"],
    "United Kingdom": ["London", "Manchester", "Bristol", "Edinburgh"],
    "Spain": ["Madrid", "Barcelona", "Valencia", "Seville"],
    "Italy": ["Rome", "Milan", "Turin", "Naples"],
    "Canada": ["Toronto", "Montreal", "Vancouver", "Calgary"],
    "Brazil": ["Sao Paulo", "Rio de Janeiro", "Curitiba"],
    "Japan": ["Tokyo", "Osaka", "Kyoto"],
    "Australia": ["Sydney", "Melbourne", "Brisbane"],
}
COUNTRY_WEIGHTS = {
    "United States": 22,
    "Germany": 14,
    "France": 13,
    "United Kingdom": 12,
    "Canada": 8,
    "Spain": 7,
    "Italy": 7,
    "Brazil": 6,
    "Japan": 6,
    "Australia": 5,
}
FIRST_NAMES = [
    "Alice",
    "Bruno",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yuki",
    "Zoe",
    "Amelie",
    "Ben",
    "Clara",
    "Diego",
    "Elena",
    "Farid",
    "Giulia",
    "Hannah",
    "Ivan",
    "Julia",
    "Kenji",
    "Lea",
    "Marco",
    "Nina",
]
LAST_NAMES = [
    "Martin",
    "Schmidt",
    "Smith",
    "Garcia",
    "Rossi",
    "Dubois",
    "Muller",
    "Johnson",
    "Lopez",
    "Bianchi",
    "Bernard",
    "Fischer",
    "Brown",
    "Fernandez",
    "Romano",
    "Moreau",
    "Weber",
    "Taylor",
    "Sanchez",
    "Ricci",
    "Laurent",
    "Wagner",
    "Wilson",
    "Perez",
    "Costa",
    "Tanaka",
    "Silva",
    "Nguyen",
    "Kowalski",
    "Andersen",
    "Murphy",
    "Novak",
    "Ito",
    "Santos",
    "Clark",
]
CATEGORIES = [
    ("Beverages", "Coffees, teas, juices and soft drinks"),
    ("Bakery", "Breads, pastries and biscuits"),
    ("Dairy", "Cheeses, yogurts and butter"),
    ("Pantry", "Pasta, rice, sauces and spices"),
    ("Produce", "Fresh and dried fruit and vegetables"),
    ("Snacks", "Chips, nuts and chocolate"),
    ("Household", "Cleaning and kitchen supplies"),
    ("Personal Care", "Soaps, shampoos and lotions"),
]
PRODUCT_WORDS = {
    "Beverages": [
        "Espresso Beans",
        "Green Tea",
        "Orange Juice",
        "Sparkling Water",
        "Cold Brew",
        "Chai Latte Mix",
        "Apple Cider",
        "Lemonade",
        "Oolong Tea",
        "Hot Cocoa",
    ],
    "Bakery": [
        "Sourdough Loaf",
        "Butter Croissant",
        "Rye Bread",
        "Oat Biscuits",
        "Bagels",
        "Cinnamon Rolls",
        "Baguette",
        "Shortbread",
    ],
    "Dairy": [
        "Aged Cheddar",
        "Greek Yogurt",
        "Salted Butter",
        "Brie",
        "Mozzarella",
        "Parmesan",
        "Kefir",
        "Cream Cheese",
    ],
    "Pantry": [
        "Spaghetti",
        "Basmati Rice",
        "Tomato Sauce",
        "Olive Oil",
        "Sea Salt",
        "Black Pepper",
        "Honey",
        "Maple Syrup",
        "Chickpeas",
        "Lentils",
    ],
    "Produce": [
        "Dried Apricots",
        "Medjool Dates",
        "Raisins",
        "Sun-Dried Tomatoes",
        "Dried Mango",
        "Mixed Berries",
    ],
    "Snacks": [
        "Sea Salt Chips",
        "Roasted Almonds",
        "Dark Chocolate",
        "Trail Mix",
        "Pretzels",
        "Cashews",
        "Popcorn",
        "Granola Bars",
    ],
    "Household": [
        "Dish Soap",
        "Paper Towels",
        "Sponges",
        "Laundry Detergent",
        "Trash Bags",
        "Glass Cleaner",
    ],
    "Personal Care": [
        "Lavender Soap",
        "Argan Shampoo",
        "Hand Cream",
        "Toothpaste",
        "Body Lotion",
        "Lip Balm",
    ],
}
SUPPLIER_NAMES = [
    "Nordic Provisions",
    "Alpine Foods",
    "Sunrise Traders",
    "Golden Harvest",
    "Blue River Co",
    "Maple Leaf Supply",
    "Iberia Imports",
    "Tuscany Fine Foods",
    "Pacific Rim Goods",
    "Outback Organics",
    "Rhine Valley Wholesale",
    "Atlantic Grocers",
]
SEGMENTS = [("Consumer", 60), ("Small Business", 28), ("Enterprise", 12)]
STATUSES = [("delivered", 78), ("shipped", 8), ("processing", 5), ("cancelled", 6), ("returned", 3)]
METHODS = [("card", 62), ("paypal", 20), ("bank_transfer", 12), ("gift_card", 6)]
TITLES = ["Sales Representative", "Account Manager", "Sales Manager", "Inside Sales Associate"]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]] | dict[str, int]) -> str:
    items = list(pairs.items()) if isinstance(pairs, dict) else pairs
    return rng.choices([k for k, _ in items], weights=[w for _, w in items])[0]


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def build_demo_database(path: Path) -> None:
    """Write the demo shop to `path` (replacing it); same seed, same content."""
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        _fill(conn, rng)
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()


def _fill(conn: sqlite3.Connection, rng: random.Random) -> None:
    conn.executemany(
        "INSERT INTO categories (id, name, description) VALUES (?, ?, ?)",
        [(i + 1, name, desc) for i, (name, desc) in enumerate(CATEGORIES)],
    )
    suppliers = []
    for i, name in enumerate(SUPPLIER_NAMES):
        country = _weighted(rng, COUNTRY_WEIGHTS)
        slug = name.lower().replace(" ", "")
        suppliers.append((i + 1, name, country, rng.choice(CITIES[country]), f"sales@{slug}.com"))
    conn.executemany("INSERT INTO suppliers VALUES (?, ?, ?, ?, ?)", suppliers)

    products: list[tuple[Any, ...]] = []
    for cat_id, (cat_name, _) in enumerate(CATEGORIES, start=1):
        for word in PRODUCT_WORDS[cat_name]:
            price = _money(rng.uniform(2.5, 45.0) * (1.8 if cat_name == "Household" else 1.0))
            cost = _money(price * rng.uniform(0.45, 0.75))
            products.append(
                (
                    len(products) + 1,
                    word,
                    cat_id,
                    rng.randint(1, len(SUPPLIER_NAMES)),
                    price,
                    cost,
                    rng.randint(0, 400),
                    1 if rng.random() < 0.08 else 0,
                    _day(rng, date(2019, 1, 1), date(2023, 6, 30)).isoformat(),
                )
            )
    conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", products)

    employees = []
    for i in range(18):
        country = _weighted(rng, COUNTRY_WEIGHTS)
        manager = None if i < 3 else rng.randint(1, 3)
        title = "Regional Director" if i < 3 else rng.choice(TITLES)
        salary = _money(rng.uniform(95000, 140000) if i < 3 else rng.uniform(42000, 88000))
        employees.append(
            (
                i + 1,
                rng.choice(FIRST_NAMES),
                rng.choice(LAST_NAMES),
                title,
                country,
                _day(rng, date(2015, 1, 1), date(2023, 12, 31)).isoformat(),
                manager,
                salary,
            )
        )
    conn.executemany("INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?)", employees)

    customers = []
    emails: set[str] = set()
    for i in range(600):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = _weighted(rng, COUNTRY_WEIGHTS)
        segment = _weighted(rng, SEGMENTS)
        email = f"{first}.{last}{i + 1}@example.com".lower()
        emails.add(email)
        company = (
            f"{last} {rng.choice(['GmbH', 'Ltd', 'SARL', 'Inc', 'SpA', 'SL'])}"
            if segment != "Consumer"
            else None
        )
        customers.append(
            (
                i + 1,
                first,
                last,
                email,
                company,
                segment,
                country,
                rng.choice(CITIES[country]),
                _day(rng, date(2020, 6, 1), date(2024, 10, 31)).isoformat(),
            )
        )
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", customers)

    # A few products are never ordered, so "products never ordered" has an answer.
    orderable = [p for p in products if p[0] % 17 != 0]
    orders: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    for order_id in range(1, 3201):
        cust = rng.choice(customers)
        signup = date.fromisoformat(cust[8])
        order_day = _day(rng, max(signup, START), END) if signup < END else END
        # Growth over the years: later dates are more likely to be kept.
        if rng.random() < 0.35 * (1 - (order_day.year - 2021) / 4):
            order_day = _day(rng, date(2023, 1, 1), END)
        when = datetime(
            order_day.year, order_day.month, order_day.day, rng.randint(7, 22), rng.randint(0, 59)
        )
        status = _weighted(rng, STATUSES)
        if when.date() > date(2024, 12, 20) and status == "delivered":
            status = "processing"
        shipped = (
            (when + timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 12))).isoformat(sep=" ")
            if status in ("delivered", "shipped", "returned")
            else None
        )
        ship_country = cust[6] if rng.random() < 0.93 else _weighted(rng, COUNTRY_WEIGHTS)
        orders.append(
            (
                order_id,
                cust[0],
                rng.randint(1, len(employees)),
                when.isoformat(sep=" "),
                status,
                shipped,
                ship_country,
                rng.choice(CITIES[ship_country]),
                _money(rng.uniform(0, 25)),
            )
        )
        total = 0.0
        for product in rng.sample(orderable, rng.choices([1, 2, 3, 4, 5], [30, 30, 20, 12, 8])[0]):
            qty = rng.choices([1, 2, 3, 4, 6, 10, 24], [35, 25, 15, 10, 8, 5, 2])[0]
            discount = rng.choices([0.0, 0.05, 0.1, 0.15, 0.2], [70, 12, 10, 5, 3])[0]
            items.append((len(items) + 1, order_id, product[0], qty, product[4], discount))
            total += qty * product[4] * (1 - discount)
        if status != "cancelled":
            paid = when + timedelta(minutes=rng.randint(0, 2880))
            payments.append(
                (
                    len(payments) + 1,
                    order_id,
                    _money(total + orders[-1][8]),
                    _weighted(rng, METHODS),
                    paid.isoformat(sep=" "),
                )
            )
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
    conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?)", items)
    conn.executemany("INSERT INTO payments VALUES (?, ?, ?, ?, ?)", payments)
