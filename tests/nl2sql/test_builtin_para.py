"""Paraphrase consistency: groups of wordings of one question, on a small lending library's
schema written here (librarians with a manager, members who may have left, books, loans with
a late fee percentage). Every member of a group must give the group's gold result:

* an event said by another verb than its column's: members "we lost" / who "quit" are the ones
  whose `left_on` is set, loans "brought back" are the returned ones, as "left" already was;
* "what percent of" is a share even where a column's name holds `pct` (`fee_pct`) that the
  question does not name;
* idioms of organisations: "report to nobody", "not managed by anyone", "at the top of the org
  chart" say "no manager" (`manager_id` empty), and so does "no supervisor" by a synonym;
* "paid a higher salary" is the verb of a salary, not a named "paid" state of the glossary;
* "with the price shown" asks for the column; "does" is the auxiliary verb, not a word to link;
* a compound noun of two tables ("book loans") names the second one;
* "typical" and "combined" before an amount ask for its average and its total; a breakdown
  said first ("By genre, what's the average price?") is the same breakdown;
* a polite frame around a question ("Can you tell me ...", "I'd like to know ...", "I need you
  to ...") asks the question inside it.

Each answer is checked by running it and the gold query on the same SQLite database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.idioms import (
    move_fronted_breakdown,
    rewrite_idioms,
    strip_request_frame,
)
from backend.nl2sql.engines.builtin.lexicon import lemmatise, tokenise
from backend.semantic.layer import SemanticLayer
from tests.nl2sql.gym import assert_same_answer, generate, sqlite_loaded, sqlite_snapshot

LIBRARY_DDL = """
CREATE TABLE librarians (
    librarian_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    salary REAL NOT NULL,
    hired_on DATE NOT NULL,
    manager_id INTEGER REFERENCES librarians(librarian_id)
);
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    city TEXT NOT NULL,
    joined_on DATE NOT NULL,
    left_on DATE
);
CREATE TABLE books (
    book_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    genre TEXT NOT NULL,
    price REAL NOT NULL
);
CREATE TABLE loans (
    loan_id INTEGER PRIMARY KEY,
    book_id INTEGER NOT NULL REFERENCES books(book_id),
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    loaned_on DATE NOT NULL,
    returned_on DATE,
    fee_pct REAL NOT NULL
)
"""
NAMES = ["Ada Byrne", "Cian Walsh", "Orla Nolan", "Eoin Kelly", "Aoife Ryan", "Liam Doyle"]
CITIES = ["Cork", "Galway", "Sligo"]
GENRES = ["poetry", "history", "crime"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    # 1 heads the library; 2 and 3 report to 1; 4, 5 to 2; 6 to 3. 4 and 6 earn more than
    # their manager.
    librarians = [
        (1, NAMES[0], 60000.0, "2010-01-04", None),
        (2, NAMES[1], 45000.0, "2012-05-01", 1),
        (3, NAMES[2], 41000.0, "2013-09-02", 1),
        (4, NAMES[3], 47000.0, "2016-02-15", 2),
        (5, NAMES[4], 39000.0, "2018-11-20", 2),
        (6, NAMES[5], 43000.0, "2019-03-11", 3),
    ]
    members = [
        (i, f"Member {i:02d}", CITIES[i % 3], f"2021-{i % 12 + 1:02d}-05",
         f"2024-{i % 12 + 1:02d}-20" if i % 4 == 0 else None)
        for i in range(1, 21)
    ]  # fmt: skip
    books = [(i, f"Book {i:02d}", GENRES[i % 3], 8.0 + i * 1.25) for i in range(1, 13)]
    loans = [
        (i, i % 12 + 1, i % 20 + 1, f"2024-{i % 12 + 1:02d}-03",
         None if i % 5 == 0 else f"2024-{i % 12 + 1:02d}-17", float(i % 4) * 5)
        for i in range(1, 41)
    ]  # fmt: skip
    return {"librarians": librarians, "members": members, "books": books, "loans": loans}


@pytest.fixture(scope="module")
def library_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("library") / "library.sqlite"
    return sqlite_loaded(path, LIBRARY_DDL, _tables())


@pytest.fixture(scope="module")
def library(library_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(library_path, "library")


@pytest.fixture(scope="module")
def library_db(library_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{library_path}?mode=ro", uri=True)
    yield conn
    conn.close()


_NO_SUPERVISOR = "SELECT full_name FROM librarians WHERE manager_id IS NULL"
_ABOVE_SUPERVISOR = (
    "SELECT e.full_name FROM librarians e JOIN librarians s ON s.librarian_id = e.manager_id"
    " WHERE e.salary > s.salary"
)
GROUPS: dict[str, tuple[str, list[str]]] = {
    "members who left": (
        "SELECT COUNT(*) FROM members WHERE left_on IS NOT NULL",
        [
            "How many members have left?",
            "How many members have we lost?",
            "Count the members who quit.",
            "Number of members that we lost",
        ],
    ),
    "members still here": (
        "SELECT COUNT(*) FROM members WHERE left_on IS NULL",
        [
            "How many members have not left?",
            "How many members haven't we lost?",
            "Number of members that have not quit",
        ],
    ),
    "share of members lost": (
        "SELECT 100.0 * SUM(left_on IS NOT NULL) / COUNT(*) FROM members",
        [
            "What percentage of members have left?",
            "What percent of members have left?",
            "What percent of our members have we lost?",
        ],
    ),
    "share lost per city": (
        "SELECT city, 100.0 * SUM(left_on IS NOT NULL) / COUNT(*) FROM members GROUP BY city",
        [
            "What percentage of members in each city have left?",
            "For every city, what percent of its members have we lost?",
            "Per city, what percent of members quit?",
        ],
    ),
    "no manager": (
        _NO_SUPERVISOR,
        [
            "Which librarians have no supervisor?",
            "Which librarians report to nobody?",
            "List the librarians who are not managed by anyone.",
            "Which librarian sits at the top of the org chart?",
        ],
    ),
    "above their manager": (
        _ABOVE_SUPERVISOR,
        [
            "Which librarians earn more than their manager?",
            "Which librarians earn more than the person they report to?",
            "Is any librarian paid a higher salary than the person they report to? List them.",
        ],
    ),
    "price list": (
        "SELECT title, price FROM books ORDER BY price",
        [
            "List every book with its price, cheapest first.",
            "Books sorted by price, ascending, with the price shown",
            "Books with the price displayed, from lowest to highest price",
        ],
    ),
    "loans per member": (
        "SELECT m.full_name, COUNT(*) FROM loans l JOIN members m ON m.member_id = l.member_id"
        " GROUP BY m.member_id, m.full_name",
        [
            "How many loans does each member have?",
            "Number of loans per member",
            "Count of loans for each member",
        ],
    ),
    "asked politely": (
        "SELECT COUNT(*) FROM books WHERE genre = 'poetry'",
        [
            "How many poetry books are there?",
            "Can you tell me how many poetry books there are?",
            "I'd like to know how many poetry books we have",
            "Could you count the poetry books?",
            "I need you to count the poetry books.",
        ],
    ),
    "which genres, asked politely": (
        "SELECT DISTINCT genre FROM books",
        [
            "Which genres do we have books in?",
            "Can you tell me which genres do we have books in?",
            "Please tell me: which genres do we have books in?",
            "I want to see which genres we have books in",
        ],
    ),
    "average price per genre": (
        "SELECT genre, AVG(price) FROM books GROUP BY genre",
        [
            "What is the average price of books in each genre?",
            "By genre, what's the average book price?",
            "What's the typical book price per genre?",
            "Per genre, the mean price of a book",
        ],
    ),
    "total price of poetry": (
        "SELECT SUM(price) FROM books WHERE genre = 'poetry'",
        [
            "What is the total price of the poetry books?",
            "What's the combined price of the poetry books?",
            "Sum of the prices of poetry books",
        ],
    ),
    "book loans": (
        "SELECT COUNT(*) FROM loans",
        ["How many loans are there?", "How many book loans are there?", "Count the book loans."],
    ),
}


@pytest.mark.parametrize(
    ("group", "question"),
    [(name, q) for name, (_, questions) in GROUPS.items() for q in questions],
)
def test_every_wording_of_a_question_gives_the_same_right_answer(
    library: SchemaSnapshot, library_db: sqlite3.Connection, group: str, question: str
) -> None:
    assert_same_answer(library_db, generate(library, question).sql, GROUPS[group][0])


def test_the_group_members_agree_with_each_other(
    library: SchemaSnapshot, library_db: sqlite3.Connection
) -> None:
    """The consistency `nlsql eval` measures: one result per group, no member declining."""
    for name, (_, questions) in GROUPS.items():
        results = {
            tuple(sorted(map(repr, library_db.execute(generate(library, q).sql).fetchall())))
            for q in questions
        }
        assert len(results) == 1, name


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        ("Who reports to no one?", "Who have no manager?"),
        ("staff reporting to nobody", "staff have no manager"),
        ("Which nurses don't report to anyone?", "Which nurses have no manager?"),
        ("Who is at the top of the hierarchy?", "Who have no manager?"),
        ("The report to the board", "The report to the board"),
        ("Who reports to Ada?", "Who reports to Ada?"),
    ],
)
def test_idioms_are_rewritten_in_plain_words_and_nothing_else_is(said: str, plain: str) -> None:
    assert rewrite_idioms(said) == plain


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        ("Can you tell me which plans are cheapest?", "which plans are cheapest?"),
        ("I'd like to know how many books we have", "how many books we have"),
        ("Hi, could you please list the members?", "list the members?"),
        ("I need you to show me the loans.", "show me the loans."),
        ("Tell me the titles of the books", "Tell me the titles of the books"),
        ("Please", "Please"),
    ],
)
def test_a_polite_frame_is_taken_off_the_question_inside_it(said: str, plain: str) -> None:
    assert strip_request_frame(said) == plain


@pytest.mark.parametrize(
    ("said", "plain"),
    [
        ("By plan tier, what's our MRR?", "what's our MRR by plan tier?"),
        ("Per region, how many accounts", "how many accounts per region"),
        ("By 2024, how many members had left?", "By 2024, how many members had left?"),
        ("By how much did fees grow, in total?", "By how much did fees grow, in total?"),
    ],
)
def test_a_breakdown_said_first_moves_after_what_it_breaks_down(said: str, plain: str) -> None:
    assert move_fronted_breakdown(said) == plain


def test_does_is_the_auxiliary_and_us_the_pronoun_but_the_us_stays_a_place() -> None:
    lemmas = [t.lemma for t in tokenise("How much does it take to pay us in the US")]
    assert "doe" not in lemmas and lemmas.count("we") == 1 and "us" in lemmas
    assert lemmatise("does") == "do"


def test_a_verb_of_paying_with_an_object_is_not_the_glossary_paid_state(
    library: SchemaSnapshot, library_db: sqlite3.Connection
) -> None:
    """Before: "paid" was read as the layer's "paid" filter of loans (a fee paid) and the
    question declined with "a comparison has no value to compare with"."""
    layer = SemanticLayer.model_validate(
        {
            "filters": [
                {"name": "paid", "table": "loans", "condition": "loans.fee_pct = 0"},
            ]
        }
    )
    question = "Is any librarian paid a higher salary than the person they report to? List them."
    request = GenerationRequest(
        question=question, schema=library, history=[], dialect="sqlite", semantic=layer
    )
    assert_same_answer(library_db, BuiltinGenerator().generate(request).sql, _ABOVE_SUPERVISOR)
