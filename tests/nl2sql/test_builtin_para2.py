"""Paraphrase consistency, second round: groups of wordings of one question on a small chain of
veterinary clinics written here (clinics in staff-count bands that may have closed, pet owners,
visits with a fee and a 1-5 `csat` survey score). Every member of a group must give the
group's gold result, checked by running both on the same SQLite database:

* a rating asked as a verb or an adjective ("how do owners rate their visits", "how satisfied
  are owners with ...") is the satisfaction score, also where the column is only an acronym
  (`csat` = customer satisfaction), and "rating" alone reaches it by the acronym's long form;
* an average said last ("..., on average?") is the same average said first;
* a band of a company's size said by its employees ("employee-count bracket", "headcount
  band") is the size band;
* a "rep" (a sales or account representative) is the person a row's `account_manager_id`
  names, never the boss of an org chart (`manager_id`), and a rep's "book of business" is the
  clients they look after;
* an event said by another verb than its date column's ("settled", "collected" for `paid_on`)
  links to that date, so a period applies to it and a ranking by it counts only the rows it
  happened to ("settled the most visits");
* "what is the top fee" asks for the highest fee, not for the row that has it;
* a number of rows chosen by a ranking ("Which 2 regions have the most clinics?", "the two
  regions with the most clinics") is the top N ("Top 2 regions with the most clinics").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.idioms import (
    counted_choice_as_top,
    move_trailing_average,
    rewrite_idioms,
)
from tests.nl2sql.gym import assert_same_answer, generate, sqlite_loaded, sqlite_snapshot

CLINICS_DDL = """
CREATE TABLE staff (
    staff_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    manager_id INTEGER REFERENCES staff(staff_id)
);
CREATE TABLE clinics (
    clinic_id INTEGER PRIMARY KEY,
    clinic_name TEXT NOT NULL,
    region TEXT NOT NULL,
    size_band TEXT NOT NULL,
    opened_on DATE NOT NULL,
    closed_on DATE,
    account_manager_id INTEGER REFERENCES staff(staff_id)
);
CREATE TABLE owners (
    owner_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    city TEXT NOT NULL
);
CREATE TABLE visits (
    visit_id INTEGER PRIMARY KEY,
    clinic_id INTEGER NOT NULL REFERENCES clinics(clinic_id),
    owner_id INTEGER NOT NULL REFERENCES owners(owner_id),
    visited_on DATE NOT NULL,
    fee REAL NOT NULL,
    csat INTEGER,
    paid_on DATE
)
"""
REGIONS = ["North", "North", "North", "North", "South", "South", "South", "East", "East", "West"]
BANDS = ["1-5", "6-20", "21+"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    # 10 clinics: 4 in the North, 3 South, 2 East, 1 West (no tie at the top two); clinics
    # 3, 6 and 9 have closed, so the bands' closed shares differ.
    # the supplier's staff: 1 heads sales, 2-4 report to 1 and look after the clinics (2 has
    # four, 3 has three, 4 has two; clinic 10 has nobody)
    staff = [
        (1, "Maeve Quinn", None),
        (2, "Ronan Hale", 1),
        (3, "Nessa Kerr", 1),
        (4, "Tadhg Rowe", 1),
    ]
    reps = [2, 3, 2, 4, 2, 3, 2, 3, 4, None]
    clinics = [
        (i, f"Clinic {i:02d}", REGIONS[i - 1], BANDS[i % 3], f"20{10 + i}-03-01",
         f"2023-0{i % 9 + 1}-15" if i % 3 == 0 else None, reps[i - 1])
        for i in range(1, 11)
    ]  # fmt: skip
    owners = [(i, f"Owner {i:02d}", ["Leeds", "York", "Hull"][i % 3]) for i in range(1, 13)]
    visits = [
        (i, i % 10 + 1, i % 12 + 1, f"2024-{i % 12 + 1:02d}-{i % 27 + 1:02d}", 30.0 + (i % 7) * 5,
         None if i % 6 == 0 else i % 5 + 1,
         None if i % 4 == 0 or (i > 48 and i % 12 != 1)
         else f"{2024 + (i % 12 == 11)}-{(i + 1) % 12 + 1:02d}-02")
        for i in range(1, 61)
    ]  # fmt: skip
    return {"staff": staff, "clinics": clinics, "owners": owners, "visits": visits}


@pytest.fixture(scope="module")
def clinics_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clinics") / "clinics.sqlite"
    return sqlite_loaded(path, CLINICS_DDL, _tables())


@pytest.fixture(scope="module")
def clinics(clinics_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(clinics_path, "clinics")


@pytest.fixture(scope="module")
def clinics_db(clinics_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{clinics_path}?mode=ro", uri=True)
    yield conn
    conn.close()


GROUPS: dict[str, tuple[str, list[str]]] = {
    "average satisfaction": (
        "SELECT AVG(csat) FROM visits",
        [
            "What is the average CSAT of visits?",
            "Mean satisfaction rating across all rated visits",
            "On average, how do owners rate their visits on the 1-5 survey?",
            "How satisfied are owners with their visits, on average?",
        ],
    ),
    "closed share per size band": (
        "SELECT size_band, 100.0 * SUM(closed_on IS NOT NULL) / COUNT(*) FROM clinics"
        " GROUP BY size_band",
        [
            "What percentage of clinics in each size band have closed?",
            "For every employee-count bracket, what percent of its clinics have closed?",
            "What percent of clinics have closed per headcount band?",
        ],
    ),
    "top regions by clinics": (
        "SELECT region FROM clinics GROUP BY region ORDER BY COUNT(*) DESC LIMIT 2",
        [
            "Top 2 regions with the most clinics",
            "Which 2 regions have the most clinics?",
            "What are the two regions with the most clinics?",
        ],
    ),
    "clinics per rep": (
        "SELECT s.full_name, COUNT(*) FROM clinics c JOIN staff s"
        " ON s.staff_id = c.account_manager_id GROUP BY s.staff_id, s.full_name",
        [
            "How many clinics does each account manager look after?",
            "How many clinics does each rep own?",
            "Number of clinics per sales representative",
        ],
    ),
    "owner with the most visits paid": (
        "SELECT o.full_name FROM visits v JOIN owners o ON o.owner_id = v.owner_id"
        " WHERE v.paid_on IS NOT NULL GROUP BY o.owner_id, o.full_name"
        " ORDER BY COUNT(*) DESC LIMIT 1",
        [
            "Which owner paid the most visits?",
            "Which owner settled the most visits?",
            "Which owner has settled the most visits?",
        ],
    ),
    "highest fee in the north": (
        "SELECT MAX(v.fee) FROM visits v JOIN clinics c ON c.clinic_id = v.clinic_id"
        " WHERE c.region = 'North'",
        [
            "What is the highest visit fee in the North?",
            "What is the top visit fee in the North?",
            "What's the maximum fee of a visit in the North?",
        ],
    ),
    "visits paid in a year": (
        "SELECT COUNT(*) FROM visits WHERE paid_on >= '2025-01-01' AND paid_on < '2026-01-01'",
        [
            "How many visits were paid in 2025?",
            "How many visits were settled in 2025?",
            "Number of visits collected during 2025",
        ],
    ),
}


@pytest.mark.parametrize(
    ("group", "question"),
    [(name, q) for name, (_, questions) in GROUPS.items() for q in questions],
)
def test_every_wording_of_a_question_gives_the_same_right_answer(
    clinics: SchemaSnapshot, clinics_db: sqlite3.Connection, group: str, question: str
) -> None:
    assert_same_answer(clinics_db, generate(clinics, question).sql, GROUPS[group][0])


def test_the_group_members_agree_with_each_other(
    clinics: SchemaSnapshot, clinics_db: sqlite3.Connection
) -> None:
    """The consistency `nlsql eval` measures: one result per group, no member declining."""
    for name, (_, questions) in GROUPS.items():
        results = {
            tuple(sorted(map(repr, clinics_db.execute(generate(clinics, q).sql).fetchall())))
            for q in questions
        }
        assert len(results) == 1, name


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        (
            "On average, how do customers rate their support?",
            "On average, what satisfaction rating do customers give their support?",
        ),
        (
            "How satisfied were pet owners with the visit?",
            "what satisfaction rating do pet owners give the visit?",
        ),
        ("Clinics per employee-count bracket", "Clinics per size bracket"),
        ("Accounts by headcount band", "Accounts by size band"),
        ("the book of business of each sales rep", "the clients of each rep"),
        ("account representatives per region", "representatives per region"),
        ("How many staff count?", "How many staff count?"),
        ("What is the interest rate?", "What is the interest rate?"),
        ("What is the top fee among visits?", "What is the highest fee among visits?"),
        ("What is the top clinic by fees?", "What is the top clinic by fees?"),
        ("What are the top 3 clinics?", "What are the top 3 clinics?"),
    ],
)
def test_idioms_of_ratings_and_size_bands_are_rewritten(said: str, plain: str) -> None:
    assert rewrite_idioms(said) == plain


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        ("How satisfied are owners, on average?", "On average, How satisfied are owners?"),
        ("What is the average fee, on average?", "What is the average fee, on average?"),
        (
            "How many visits does an owner make, on average?",
            "How many visits does an owner make, on average?",
        ),
        ("Fees on average paid", "Fees on average paid"),
    ],
)
def test_an_average_said_last_moves_first(said: str, plain: str) -> None:
    assert move_trailing_average(said) == plain


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        ("Which 3 regions have the most clinics?", "top 3 regions have the most clinics?"),
        ("the two owners with the fewest visits", "top two owners with the fewest visits"),
        ("Which 3 clinics are in the North?", "Which 3 clinics are in the North?"),
        ("Which 2024 visits had the highest fee?", "Which 2024 visits had the highest fee?"),
        ("Which 3 clinics have the highest fees?", "Which 3 clinics have the highest fees?"),
    ],
)
def test_a_number_of_rows_chosen_by_a_ranking_is_a_top_n(said: str, plain: str) -> None:
    assert counted_choice_as_top(said) == plain


def test_a_rep_is_never_the_boss_of_an_org_chart(clinics: SchemaSnapshot) -> None:
    """ "rep" names the key of a row's person in charge (`clinics.account_manager_id`), not a
    table's reference to its own rows: no reading of staff's reps joins staff to its manager."""
    try:
        sql = generate(clinics, "Which staff are reps?").sql
    except QuestionNotUnderstood:
        return
    assert "manager_id" not in sql.replace("account_manager_id", "")


def test_a_key_named_for_an_owner_is_no_rep(clinics: SchemaSnapshot) -> None:
    """`visits.owner_id` names the pet's owner; "each rep" of visits is not read as it."""
    try:
        sql = generate(clinics, "How many visits does each rep have?").sql
    except QuestionNotUnderstood:
        return
    assert "owner_id" not in sql


def test_an_event_said_after_its_rows_is_not_grouped_by(clinics: SchemaSnapshot) -> None:
    """ "the most visits settled": the participle after its noun is not read as the date to
    group by (only a verb with its object, "settled the most visits", links to `paid_on`)."""
    try:
        sql = generate(clinics, "Which owner has had the most visits settled?").sql
    except QuestionNotUnderstood:
        return
    assert "GROUP BY visits.paid_on" not in sql
