"""The builtin engine's lexical knowledge, value linking, inferred joins and semantic-layer links.

The database is a small parcel-delivery business written here (a domain the engine was never
tuned on) that declares no foreign keys at all: its joins must be inferred from names and
types. The robustness set at the end asks the same things in several wordings (synonyms,
reordered clauses, columns not named); every wording must be answered right or declined, and
the wordings of one ask that are answered must agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.lexicon import normalise_amounts, split_identifier, tokenise
from backend.nl2sql.engines.builtin.linking import (
    SchemaIndex,
    definition_suggestions,
    link,
    link_definitions,
    value_keys,
)
from backend.nl2sql.evaluation import has_top_level_order, results_match
from backend.semantic.layer import SemanticLayer

PARCELS = """
CREATE TABLE countries (code TEXT PRIMARY KEY, country_name TEXT NOT NULL, continent TEXT NOT NULL);
CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT NOT NULL,
    signup_channel TEXT NOT NULL, country_code TEXT NOT NULL, created_at TEXT NOT NULL,
    closed_at TEXT);
CREATE TABLE drivers (id INTEGER PRIMARY KEY, driver_name TEXT NOT NULL, hire_date TEXT NOT NULL,
    is_contractor INTEGER NOT NULL, salary_amt REAL NOT NULL);
CREATE TABLE shipments (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, driver_id INTEGER,
    status TEXT NOT NULL, shipped_on TEXT NOT NULL, delivered_on TEXT, weight_kg REAL NOT NULL,
    fee_amt REAL NOT NULL, pkg_qty INTEGER NOT NULL);
CREATE TABLE kpis (id INTEGER PRIMARY KEY, mrr REAL, monthly_active_users INTEGER);
INSERT INTO countries VALUES ('DE', 'Germany', 'Europe'), ('FR', 'France', 'Europe'),
  ('US', 'United States', 'North America'), ('JP', 'Japan', 'Asia');
INSERT INTO customers VALUES
  (1, 'Ada Park', 'ada@hotmail.com', 'web_shop', 'DE', '2023-01-05', NULL),
  (2, 'Ben Ortiz', 'ben@gmail.com', 'mobile_app', 'US', '2023-03-10', NULL),
  (3, 'Chen Li', 'chen@hotmail.com', 'web_shop', 'JP', '2023-06-01', '2024-02-01'),
  (4, 'Dana Ruiz', 'dana@acme.io', 'call_centre', 'FR', '2024-01-20', NULL),
  (5, 'Eli Stone', 'eli@gmail.com', 'mobile_app', 'DE', '2024-05-02', NULL);
INSERT INTO drivers VALUES (1, 'Sam Hill', '2021-04-01', 0, 41000), (2, 'Rita Moss', '2022-09-15',
  1, 38000), (3, 'Tom Vega', '2023-02-01', 1, 36500);
INSERT INTO shipments VALUES
  (1, 1, 1, 'delivered', '2024-01-03', '2024-01-06', 2.5, 12.0, 1),
  (2, 1, 2, 'delivered', '2024-02-10', '2024-02-12', 10.0, 40.0, 3),
  (3, 2, 1, 'in_transit', '2024-06-20', NULL, 1.0, 8.5, 1),
  (4, 3, 3, 'returned', '2023-11-11', '2023-11-20', 4.0, 22.0, 2),
  (5, 4, NULL, 'pending', '2024-06-28', NULL, 7.5, 30.0, 2),
  (6, 5, 2, 'delivered', '2024-05-10', '2024-05-11', 0.5, 5.0, 1),
  (7, 2, 3, 'delivered', '2024-03-01', '2024-03-09', 20.0, 90.0, 5),
  (8, 5, 1, 'in_transit', '2024-06-25', NULL, 3.0, 15.0, 1);
INSERT INTO kpis VALUES (1, 1200.5, 340);
"""


@pytest.fixture(scope="module")
def parcels(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("parcels") / "parcels.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(PARCELS)
    conn.commit()
    conn.close()
    engine = open_sqlite_read_only(path)
    try:
        snapshot = introspect(engine, db_type="sqlite", database_name="parcels")
    finally:
        engine.dispose()
    assert not any(t.foreign_keys for t in snapshot.tables), "the point: no declared keys"
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, ro
    ro.close()


def _ask(
    snapshot: SchemaSnapshot, question: str, layer: SemanticLayer | None = None
) -> tuple[str, str] | None:
    """(sql, explanation), or None when the engine declines."""
    try:
        g = BuiltinGenerator().generate(
            GenerationRequest(question=question, schema=snapshot, semantic=layer)
        )
    except QuestionNotUnderstood:
        return None
    return g.sql, g.explanation


def _links(index: SchemaIndex, question: str) -> list[tuple[str, str, list[str]]]:
    tokens = tokenise(question)
    return [
        (m.kind, m.text, [f"{c.table}.{c.name}" for c in m.columns] + [t.name for t in m.tables])
        for m in link(index, tokens, skip=set())
    ]


# ------------------------------------------------------------------ words


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("pkg_qty", ["package", "quantity"]),
        ("fee_amt", ["fee", "amount"]),
        ("dept_no", ["department", "number"]),
        ("customerFirstName", ["customer", "first", "name"]),
        ("HTTPStatusCode", ["http", "status", "code"]),
        ("order_date", ["order", "date"]),
    ],
)
def test_identifiers_split_into_words_with_abbreviations_expanded(
    name: str, words: list[str]
) -> None:
    assert split_identifier(name) == words


@pytest.mark.parametrize(
    ("question", "number"),
    [
        ("invoices over €1,200", "1200"),
        ("more than $1.5M of revenue", "1500000"),
        ("at least 20k calls", "20000"),
        ("a discount above 15 %", "15"),
        ("a discount above 15 percent", "15"),
        ("over 2 million users", "2000000"),
    ],
)
def test_amounts_as_people_write_them_are_numbers(question: str, number: str) -> None:
    numbers = [t.lemma for t in tokenise(question) if t.kind == "number"]
    assert numbers == [number]


def test_a_lone_capital_m_after_a_number_is_not_millions() -> None:
    assert normalise_amounts("the 3 M company") == "the 3 M company"


def test_stored_values_match_across_case_spacing_underscores_and_hyphens() -> None:
    assert ("web", "shop") in value_keys("web_shop")
    assert ("how", "to") in value_keys("how-to")
    assert ("how-to",) in value_keys("how-to")
    assert ("business", "plus") in value_keys("  Business Plus ")


# ------------------------------------------------------------------ linking


def test_values_written_differently_from_how_they_are_stored(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = parcels
    answer = _ask(snapshot, "How many customers signed up through the web shop?")
    assert answer is not None
    assert "signup_channel = 'web_shop'" in answer[0]
    assert conn.execute(answer[0]).fetchall() == [(2,)]


def test_a_stored_value_may_begin_with_a_small_word(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0])
    assert ("value", "in transit", ["shipments.status"]) in _links(
        index, "shipments in transit by driver"
    )


@pytest.mark.parametrize(
    ("question", "pattern", "expected"),
    [
        ("Which customers use a hotmail address?", "%@hotmail.%", {("Ada Park",), ("Chen Li",)}),
        ("List the gmail customers", "%@gmail.%", {("Ben Ortiz",), ("Eli Stone",)}),
        ("Customers with an email at acme.io", "%@acme.io", {("Dana Ruiz",)}),
    ],
)
def test_email_domains_are_matched_as_part_of_the_address(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
    question: str,
    pattern: str,
    expected: set[tuple[str]],
) -> None:
    snapshot, conn = parcels
    answer = _ask(snapshot, question)
    assert answer is not None
    assert f"LIKE '{pattern}'" in answer[0]
    assert set(conn.execute(answer[0]).fetchall()) == expected


def test_an_english_word_is_not_an_email_domain(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0])
    tokens = tokenise("customers who live in France")
    assert all(m.pattern is None for m in link(index, tokens, skip=set()))


def test_acronyms_link_columns_by_their_expansion_and_the_reverse(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0])
    assert ("column", "monthly recurring revenue", ["kpis.mrr"]) in _links(
        index, "total monthly recurring revenue"
    )
    assert ("column", "MAU", ["kpis.monthly_active_users"]) in _links(index, "the MAU figure")


def test_joins_are_inferred_from_names_and_types_and_said_so(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = parcels
    index = SchemaIndex(snapshot)
    assert index.join_path("shipments", "customers") == [
        ("shipments", "customer_id", "customers", "id")
    ]
    assert index.join_path("customers", "countries") == [
        ("customers", "country_code", "countries", "code")
    ]
    assert index.join_origin("shipments", "drivers") == "inferred"
    assert index.join_origin("drivers", "countries") is None
    answer = _ask(snapshot, "Name the customers from France")
    assert answer is not None
    sql, explanation = answer
    assert conn.execute(sql).fetchall() == [("Dana Ruiz",)]
    assert "customers.country_code = countries.code" in explanation
    assert "inferred from the column names" in explanation


def test_a_text_code_never_joins_a_numeric_key() -> None:
    snapshot = SchemaSnapshot.model_validate(
        {
            "db_type": "sqlite",
            "database_name": "x",
            "tables": [
                {"name": "plans", "columns": [
                    {"name": "id", "type": "INTEGER", "primary_key": True},
                ]},
                {"name": "orders", "columns": [
                    {"name": "id", "type": "INTEGER", "primary_key": True},
                    {"name": "plan_code", "type": "TEXT"},
                ]},
            ],
        }
    )  # fmt: skip
    assert SchemaIndex(snapshot).join_path("orders", "plans") is None


# ------------------------------------------------------------------ the semantic layer

LAYER = SemanticLayer.model_validate(
    {
        "tables": [
            {"name": "customers", "synonyms": ["clients", "shippers"], "columns": [
                {"name": "signup_channel", "synonyms": ["acquisition channel"],
                 "values": {"app": "mobile_app", "phone": "call_centre"}},
                {"name": "email", "hidden": True},
            ]},
            {"name": "drivers", "hidden": True},
            {"name": "shipments", "synonyms": ["parcels"], "columns": [
                {"name": "fee_amt", "synonyms": ["postage"]},
            ]},
        ],
        "measures": [{"name": "shipping revenue", "synonyms": ["takings"], "table": "shipments",
                      "expression": "SUM(shipments.fee_amt)",
                      "filter": "shipments.status = 'delivered'"}],
        "filters": [{"name": "active customer", "table": "customers",
                     "condition": "customers.closed_at IS NULL"}],
        "joins": [{"from_table": "shipments", "from_column": "customer_id",
                   "to_table": "customers", "to_column": "id"}],
    }
)  # fmt: skip


def test_layer_synonyms_and_value_phrases_link_tables_columns_and_values(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0], LAYER)
    links = _links(index, "clients by acquisition channel")
    assert ("table", "clients", ["customers"]) in links
    assert ("column", "acquisition channel", ["customers.signup_channel"]) in links
    assert ("value", "app", ["customers.signup_channel"]) in _links(index, "shippers on the app")
    assert ("column", "postage", ["shipments.fee_amt"]) in _links(index, "total postage")
    snapshot, conn = parcels
    answer = _ask(snapshot, "How many clients signed up on the app?", LAYER)
    assert answer is not None
    assert conn.execute(answer[0]).fetchall() == [(2,)]


def test_hidden_tables_and_columns_are_never_linked_nor_selected(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = parcels
    index = SchemaIndex(snapshot, LAYER)
    assert "drivers" not in index.tables
    assert index.column("customers", "email") is None
    assert index.join_path("shipments", "drivers") is None
    for question in ("List the drivers", "What is the email of Ada Park?", "hotmail customers"):
        answer = _ask(snapshot, question, LAYER)
        assert answer is None or ("email" not in answer[0] and "drivers" not in answer[0]), answer


def test_declared_joins_are_used_and_named_as_the_layers(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0], LAYER)
    assert index.join_origin("shipments", "customers") == "layer"
    assert index.join_origin("customers", "countries") == "inferred"


def test_named_measures_and_filters_are_found_in_a_question(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = SchemaIndex(parcels[0], LAYER)
    found = link_definitions(index, tokenise("Takings from active customers by month"))
    assert [(d.definition.kind, d.definition.name, d.text) for d in found] == [
        ("measure", "shipping revenue", "Takings"),
        ("filter", "active customer", "active customers"),
    ]
    assert link_definitions(SchemaIndex(parcels[0]), tokenise("active customers")) == []


# ------------------------------------------------------------------ robustness set

# Asks in several wordings (synonyms, reordered clauses, columns not named), with gold SQL.
GROUPS: list[tuple[str, list[str]]] = [
    ("SELECT COUNT(*) FROM customers WHERE signup_channel = 'web_shop'", [
        "How many customers signed up through the web shop?",
        "How many clients came in via the web shop?",
        "Count customers with signup channel web_shop",
        "Through the web shop, how many customers signed up?",
    ]),
    ("SELECT COUNT(*) FROM customers WHERE country_code = 'DE'", [
        "How many customers do we have in Germany?",
        "Number of customers located in Germany",
        "In Germany, how many customers are there?",
    ]),
    ("SELECT driver_name FROM drivers WHERE is_contractor = 1", [
        "Which drivers are contractors?",
        "Show drivers who are contractors",
        "Who among the drivers is a contractor?",
    ]),
    ("SELECT SUM(fee_amt) FROM shipments WHERE status = 'delivered'", [
        "What is the total fee of delivered shipments?",
        "Sum of fees for shipments that were delivered",
        "Total delivered shipment fees",
    ]),
    ("SELECT COUNT(*) FROM shipments WHERE weight_kg > 5", [
        "How many shipments weigh more than 5 kg?",
        "Number of shipments with a weight above 5",
        "Count the shipments heavier than 5 kg",
    ]),
    ("SELECT id, fee_amt FROM shipments WHERE fee_amt > 20", [
        "Shipments with a fee over €20",
        "List shipments whose fee exceeds 20 dollars",
    ]),
    ("SELECT full_name FROM customers WHERE email LIKE '%@hotmail.%'", [
        "Which customers use a hotmail address?",
        "List the Hotmail customers",
    ]),
    ("SELECT full_name FROM customers WHERE signup_channel = 'mobile_app'", [
        "Which customers signed up on the mobile app?",
        "Customers who joined via mobile app",
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("gold", "wordings"), GROUPS, ids=[g[1][0] for g in GROUPS])
def test_every_wording_is_right_or_declined_and_answered_wordings_agree(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection], gold: str, wordings: list[str]
) -> None:
    snapshot, conn = parcels
    gold_rows = conn.execute(gold).fetchall()
    outcomes = []
    for question in wordings:
        answer = _ask(snapshot, question)
        if answer is None:
            outcomes.append("declined")
            continue
        rows = conn.execute(answer[0]).fetchall()
        right = results_match(gold_rows, rows, ordered=has_top_level_order(gold))
        outcomes.append("right" if right else f"wrong: {answer[0]}")
    assert all(o in ("right", "declined") for o in outcomes), list(
        zip(wordings, outcomes, strict=True)
    )


def test_the_robustness_set_is_mostly_answered(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    """Declining everything would pass the test above; most wordings must get answers."""
    snapshot, _ = parcels
    wordings = [q for _, group in GROUPS for q in group]
    answered = sum(_ask(snapshot, q) is not None for q in wordings)
    assert answered >= 0.7 * len(wordings), answered


def test_results_do_not_depend_on_where_the_question_came_from(tmp_path: Path) -> None:
    """The index built for a snapshot with a layer is not reused for the same snapshot without."""
    conn = sqlite3.connect(tmp_path / "p.sqlite")
    conn.executescript(PARCELS)
    conn.close()
    engine = open_sqlite_read_only(tmp_path / "p.sqlite")
    try:
        snapshot = introspect(engine, db_type="sqlite", database_name="p")
    finally:
        engine.dispose()
    with_layer = _ask(snapshot, "List the drivers", LAYER)
    without = _ask(snapshot, "List the drivers")
    assert without is not None and "drivers" in without[0]
    assert with_layer is None or "drivers" not in with_layer[0]


# ------------------------------------------------------------------ related words

HOSPITAL = SchemaSnapshot.model_validate(
    {
        "db_type": "sqlite",
        "database_name": "hospital",
        "tables": [
            {"name": "doctor", "columns": [
                {"name": "doctor_id", "type": "INTEGER", "primary_key": True},
                {"name": "doctor_name", "type": "TEXT"},
                {"name": "specialty", "type": "TEXT"},
            ]},
            {"name": "car", "columns": [
                {"name": "car_id", "type": "INTEGER", "primary_key": True},
                {"name": "plate", "type": "TEXT"},
            ]},
        ],
    }
)  # fmt: skip


@pytest.mark.parametrize(
    ("question", "table"),
    [("How many physicians are there?", "doctor"), ("List all vehicles", "car")],
)
def test_a_word_that_is_no_name_links_to_the_name_it_means(question: str, table: str) -> None:
    index = SchemaIndex(HOSPITAL)
    assert [(kind, names) for kind, _, names in _links(index, question)] == [("table", [table])]
    mention = link(index, tokenise(question), skip=set())[0]
    assert mention.score < 2.0, "a link by meaning alone is a weak link"


def test_an_unrelated_word_links_to_nothing() -> None:
    index = SchemaIndex(HOSPITAL)
    assert _links(index, "How many nurses are there?") == []


def test_a_decline_offers_the_layers_definitions_the_question_names(
    parcels: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = parcels
    index = SchemaIndex(snapshot, LAYER)
    assert definition_suggestions(index, "takings of active customers") == [
        "shipping revenue = SUM(shipments.fee_amt) where shipments.status = 'delivered'",
        "active customer: customers.closed_at IS NULL",
    ]
    with pytest.raises(QuestionNotUnderstood) as caught:
        BuiltinGenerator().generate(
            GenerationRequest(
                question="takings by shipment weight", schema=snapshot, semantic=LAYER
            )
        )
    texts = [s.text for s in caught.value.suggestions]
    assert any("shipping revenue = SUM(shipments.fee_amt)" in t for t in texts), texts
