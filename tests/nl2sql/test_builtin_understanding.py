"""How the offline engine understands analysts' wording, on a small business schema of another
domain written here (a chain of gyms): which date an event names, the date of the rows a
measure adds up, flags said of the rows, aggregate words that are part of a column's name,
rows listed with their label, "cheapest first" and abbreviated name columns.

Each answer is checked by running it and the hand-written gold SQL on the same SQLite file."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator, schema_index
from backend.nl2sql.engines.builtin.interpret import parse
from backend.nl2sql.engines.builtin.lexicon import split_identifier
from backend.nl2sql.engines.builtin.sqlbuild import render
from tests.nl2sql.gym import sqlite_snapshot
from tests.nl2sql.test_builtin_grammar import assert_same_answer

GYM_DDL = """
CREATE TABLE tiers (
    tier_id INTEGER PRIMARY KEY,
    tier_name TEXT NOT NULL,
    monthly_fee REAL NOT NULL,
    max_members INTEGER,
    launched_on TEXT NOT NULL
);
CREATE TABLE trainers (
    trainer_id INTEGER PRIMARY KEY,
    FName TEXT NOT NULL,
    LName TEXT NOT NULL,
    is_remote INTEGER NOT NULL,
    hired_on TEXT NOT NULL,
    title TEXT NOT NULL
);
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    tier_id INTEGER NOT NULL REFERENCES tiers(tier_id),
    joined_on TEXT NOT NULL,
    cancelled_at TEXT,
    newsletter_opt_in INTEGER NOT NULL,
    classes INTEGER NOT NULL,
    nps INTEGER,
    personal_trainer_id INTEGER REFERENCES trainers(trainer_id),
    phone TEXT
);
CREATE TABLE payments (
    payment_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    paid_on TEXT NOT NULL,
    amount REAL NOT NULL
);
CREATE TABLE repairs (
    repair_id INTEGER PRIMARY KEY,
    machine TEXT NOT NULL,
    priority TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    fixed_at TEXT,
    is_urgent INTEGER NOT NULL,
    cost REAL NOT NULL,
    reported_by INTEGER REFERENCES members(member_id),
    channel TEXT NOT NULL,
    site_code TEXT NOT NULL
);
CREATE TABLE climate_log (
    log_id INTEGER PRIMARY KEY,
    gym_room TEXT NOT NULL,
    log_date TEXT NOT NULL,
    max_temperature REAL NOT NULL,
    mean_temperature REAL NOT NULL,
    min_temperature REAL NOT NULL
);
"""
TIERS = [
    (1, "Basic", 19.0, 500, "2019-01-01"),
    (2, "Plus", 29.0, 300, "2021-06-01"),
    (3, "Premium", 49.0, None, "2024-03-01"),
    (4, "Student", 15.0, 200, "2022-09-01"),
]
ROOMS = ["Cardio", "Weights", "Studio"]
MACHINES = ["treadmill", "rower", "bike"]
PRIORITIES = ["low", "normal", "high", "critical"]
CHANNELS = ["phone", "app", "desk"]
SITES = ["BRU", "ANT", "GNT"]


def _build_gym(path: Path) -> None:
    rng = random.Random(11)
    conn = sqlite3.connect(path)
    conn.executescript(GYM_DDL)
    conn.executemany("INSERT INTO tiers VALUES (?, ?, ?, ?, ?)", TIERS)
    trainers = [
        (i, f"First{i}", f"Last{i}", int(i % 3 == 0), str(date(2018, 1, 1) + timedelta(i * 97)),
         "Personal Trainer" if i <= 5 else "Group Instructor")
        for i in range(1, 10)
    ]  # fmt: skip
    conn.executemany("INSERT INTO trainers VALUES (?, ?, ?, ?, ?, ?)", trainers)
    members = []
    for i in range(1, 121):
        joined = date(2022, 1, 1) + timedelta(days=rng.randint(0, 900))
        cancelled = (
            str(joined + timedelta(days=rng.randint(30, 400))) if rng.random() < 0.3 else None
        )
        members.append(
            (
                i,
                f"Member {i}",
                rng.randint(1, 4),
                str(joined),
                cancelled,
                int(rng.random() < 0.4),
                rng.randint(0, 40),
                rng.choice([None, *range(11)]),
                (i % 9) + 1 if i % 4 else None,
                f"+32 470 {i:06d}" if i % 3 else None,
            )
        )
    conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", members)
    payments = []
    for i in range(1, 601):
        day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 700))
        payments.append((i, rng.randint(1, 120), str(day), float(rng.choice([15, 19, 29, 49]))))
    conn.executemany("INSERT INTO payments VALUES (?, ?, ?, ?)", payments)
    repairs = []
    for i in range(1, 81):
        reported = date(2024, 1, 1) + timedelta(days=rng.randint(0, 300))
        at = f"{reported} {rng.randint(6, 20):02d}:00:00"
        hours = rng.randint(1, 96)
        fixed = None if i % 9 == 0 else f"{reported + timedelta(hours=hours)} 12:00:00"
        repairs.append(
            (i, MACHINES[i % 3], PRIORITIES[i % 4], at, fixed, int(i % 5 == 0),
             float(40 + (i * 37) % 300), (i * 7) % 120 + 1, CHANNELS[i % 3], SITES[i % 4 % 3])
        )  # fmt: skip
    conn.executemany("INSERT INTO repairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", repairs)
    logs = []
    for i in range(1, 91):
        mean = 18 + rng.random() * 8
        logs.append(
            (i, ROOMS[i % 3], str(date(2024, 6, 1) + timedelta(days=i // 3)),
             round(mean + 3 + rng.random() * 4, 1), round(mean, 1),
             round(mean - 3 - rng.random() * 4, 1))
        )  # fmt: skip
    conn.executemany("INSERT INTO climate_log VALUES (?, ?, ?, ?, ?, ?)", logs)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def gym_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gym") / "gym.sqlite"
    _build_gym(path)
    return path


@pytest.fixture(scope="module")
def gym(gym_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(gym_path, "gym")


@pytest.fixture(scope="module")
def gym_db(gym_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{gym_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(schema: SchemaSnapshot, question: str) -> str:
    request = GenerationRequest(question=question, schema=schema, history=[], dialect="sqlite")
    return BuiltinGenerator().generate(request).sql


UNDERSTOOD = [
    # the event a verb names picks the date: losing members is their cancellation
    ("How many members did we lose in 2023?",
     "SELECT COUNT(*) FROM members"
     " WHERE cancelled_at >= '2023-01-01' AND cancelled_at < '2024-01-01'"),
    ("How many new members signed up in 2023?",
     "SELECT COUNT(*) FROM members WHERE joined_on >= '2023-01-01' AND joined_on < '2024-01-01'"),
    # a period goes on the date of the rows the measure adds up, not the grouped table's
    ("Total payment amount in 2024 by tier name",
     "SELECT t.tier_name, SUM(p.amount) FROM payments p JOIN members m"
     " ON m.member_id = p.member_id JOIN tiers t ON t.tier_id = m.tier_id"
     " WHERE p.paid_on >= '2024-01-01' AND p.paid_on < '2025-01-01' GROUP BY t.tier_name"),
    # a yes/no column said of the rows is a filter, and the rows are named by their label
    ("Which of our trainers work remotely?",
     "SELECT FName, LName FROM trainers WHERE is_remote = 1"),
    ("How many members have opted in to the newsletter?",
     "SELECT COUNT(*) FROM members WHERE newsletter_opt_in = 1"),
    # an aggregate word that is part of the column's name is not an aggregate over it
    ("What is the average mean temperature?", "SELECT AVG(mean_temperature) FROM climate_log"),
    ("On which dates was the maximum temperature above 27?",
     "SELECT log_date FROM climate_log WHERE max_temperature > 27"),
    ("What is the log date and mean temperature of the 3 logs with the highest max"
     " temperature?",
     "SELECT log_date, mean_temperature FROM climate_log ORDER BY max_temperature DESC LIMIT 3"),
    # rows listed one by one carry their label; "cheapest first" sorts, it does not pick one
    ("List every tier with its monthly fee, cheapest first.",
     "SELECT tier_name, monthly_fee FROM tiers ORDER BY monthly_fee"),
    # durations: the time between the row's start and the event a verb or noun names
    ("What's the average resolution time in hours for each priority?",
     "SELECT priority, AVG((julianday(fixed_at) - julianday(reported_at)) * 24) FROM repairs"
     " GROUP BY priority"),
    ("Avg hours from report to fix, by priority",
     "SELECT priority, AVG((julianday(fixed_at) - julianday(reported_at)) * 24) FROM repairs"
     " GROUP BY priority"),
    ("For each priority, how many hours on average does it take us to fix a machine?",
     "SELECT priority, AVG((julianday(fixed_at) - julianday(reported_at)) * 24) FROM repairs"
     " GROUP BY priority"),
    # two values (or a flag and its opposite) compared: a figure for each, not one filter
    ("Average hours to fix for urgent versus non-urgent repairs",
     "SELECT is_urgent, AVG((julianday(fixed_at) - julianday(reported_at)) * 24) FROM repairs"
     " GROUP BY is_urgent"),
    ("What is the average cost of treadmill and rower repairs?",
     "SELECT machine, AVG(cost) FROM repairs WHERE machine IN ('treadmill', 'rower')"
     " GROUP BY machine"),
    ("What is the average cost of repairs on a treadmill or a rower?",
     "SELECT AVG(cost) FROM repairs WHERE machine IN ('treadmill', 'rower')"),
    # negations said as "leaving out"; "no <event> recorded" is the event's empty date
    ("What's our current member count, leaving out anyone who has cancelled?",
     "SELECT COUNT(*) FROM members WHERE cancelled_at IS NULL"),
    ("Count the repairs that have no fix recorded.",
     "SELECT COUNT(*) FROM repairs WHERE fixed_at IS NULL"),
    # "monthly count" is a time bucket; "per-member fee" is the unit of a rate, not a breakdown
    ("Monthly count of new members for 2023",
     "SELECT strftime('%Y-%m', joined_on), COUNT(*) FROM members"
     " WHERE joined_on >= '2023-01-01' AND joined_on < '2024-01-01' GROUP BY 1 ORDER BY 1"),
    ("List every tier with its monthly per-member fee, cheapest first.",
     "SELECT tier_name, monthly_fee FROM tiers ORDER BY monthly_fee"),
    # the name a pattern is matched against is not shown
    ("What are the last names of trainers whose first names start with First1?",
     "SELECT LName FROM trainers WHERE FName LIKE 'First1%'"),
    ("What are the monthly fees of tiers whose names start with P?",
     "SELECT monthly_fee FROM tiers WHERE tier_name LIKE 'P%'"),
    # "class fee": a column word of another table before a price word is the unit
    ("Tiers sorted by class fee, ascending, with their monthly fee",
     "SELECT tier_name, monthly_fee FROM tiers ORDER BY monthly_fee"),
    # "no <bound>": a max_/min_ column left empty
    ("Which tiers have no member limit?", "SELECT tier_name FROM tiers WHERE max_members IS NULL"),
    # "sign-ups" are the rows of the one table whose creation date records them
    ("2023 sign-ups: how many did we get?",
     "SELECT COUNT(*) FROM members WHERE joined_on >= '2023-01-01' AND joined_on < '2024-01-01'"),
    ("New sign-ups per month in 2023",
     "SELECT strftime('%Y-%m', joined_on), COUNT(*) FROM members"
     " WHERE joined_on >= '2023-01-01' AND joined_on < '2024-01-01' GROUP BY 1 ORDER BY 1"),
    # an acronym's column is named by its expansion's head ("promoter score" for `nps`)
    ("What's the average promoter score rating of our members?", "SELECT AVG(nps) FROM members"),
    # a role named by a key (`personal_trainer_id`) is the rows in that role, not a title
    ("How many members does each personal trainer coach?",
     "SELECT t.FName, t.LName, COUNT(*) FROM members m JOIN trainers t"
     " ON t.trainer_id = m.personal_trainer_id GROUP BY t.trainer_id"),
    ("Count of members assigned to each personal trainer",
     "SELECT t.FName, t.LName, COUNT(*) FROM members m JOIN trainers t"
     " ON t.trainer_id = m.personal_trainer_id GROUP BY t.trainer_id"),
    ("For each personal trainer, what percentage of the members they coach have cancelled?",
     "SELECT t.FName, t.LName, 100.0 * SUM(m.cancelled_at IS NOT NULL) / COUNT(*) FROM members m"
     " JOIN trainers t ON t.trainer_id = m.personal_trainer_id GROUP BY t.trainer_id"),
    ("Which personal trainers work remotely?",
     "SELECT FName, LName FROM trainers WHERE title = 'Personal Trainer' AND is_remote = 1"),
    # "by phone": a stored value of the counted rows' own column, not another table's column
    ("How many repairs came in by phone?", "SELECT COUNT(*) FROM repairs WHERE channel = 'phone'"),
    # "current" rows: their table's one ending date is still empty
    ("How many current members are on each tier?",
     "SELECT t.tier_name, COUNT(*) FROM members m JOIN tiers t ON t.tier_id = m.tier_id"
     " WHERE m.cancelled_at IS NULL GROUP BY t.tier_id"),
    ("List our current members who have opted in to the newsletter.",
     "SELECT full_name FROM members WHERE cancelled_at IS NULL AND newsletter_opt_in = 1"),
    # "top N rows by a total, with their total": the figure shown is the ranked total
    ("Top 3 members by payment amount, with their payment amount",
     "SELECT m.full_name, SUM(p.amount) AS total FROM payments p JOIN members m"
     " ON m.member_id = p.member_id GROUP BY m.member_id ORDER BY total DESC LIMIT 3"),
    # the values a categorical code column takes, each once
    ("What site codes do repairs come from?", "SELECT DISTINCT site_code FROM repairs"),
    # FName/LName read as first and last name: a full name is both
    ("What are the full names of all trainers?", "SELECT FName, LName FROM trainers"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), UNDERSTOOD, ids=[q for q, _ in UNDERSTOOD])
def test_the_engine_understands(
    gym: SchemaSnapshot, gym_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(gym_db, ask(gym, question), gold)


READINGS = [
    # "reported by phone": the channel of the rows, not the reporter's phone column
    ("How many repairs were reported by phone?",
     "SELECT COUNT(*) FROM repairs WHERE channel = 'phone'"),
    # "how many have cancelled": the rows where the event happened, not a count of dates
    ("How many people have cancelled?",
     "SELECT COUNT(*) FROM members WHERE cancelled_at IS NOT NULL"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), READINGS, ids=[q for q, _ in READINGS])
def test_the_engine_reads(
    gym: SchemaSnapshot, gym_db: sqlite3.Connection, question: str, gold: str
) -> None:
    """The reading itself, whatever confidence the engine then puts in it (a word here is
    unknown to the schema, which rightly lowers it)."""
    index = schema_index(gym)
    assert_same_answer(gym_db, render(parse(question, index), index, "sqlite"), gold)


def test_the_column_of_an_aggregate_is_never_another_aggregates(gym: SchemaSnapshot) -> None:
    """ "mean temperature" never reads `max_temperature` (nor `min_temperature`)."""
    sql = ask(gym, "What is the mean temperature in the Studio room on each log date?")
    assert "mean_temperature" in sql
    assert "max_temperature" not in sql and "min_temperature" not in sql


def test_the_date_of_the_named_event_is_not_doubted(gym: SchemaSnapshot) -> None:
    """A question that names the event ("lose") answers without doubting which date it means."""
    request = GenerationRequest(
        question="How many members did we lose in 2023?", schema=gym, history=[], dialect="sqlite"
    )
    generation = BuiltinGenerator().generate(request)
    assert "cancelled_at" in generation.sql


def test_abbreviated_name_columns_split_into_their_words() -> None:
    assert split_identifier("LName") == ["last", "name"]
    assert split_identifier("FName") == ["first", "name"]
    assert split_identifier("customer_firstName") == ["customer", "first", "name"]
    assert split_identifier("XPos") == ["x", "position"]
