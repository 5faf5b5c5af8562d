"""`nlsql eval`: execution accuracy, its order and tolerance rules, and the predictions file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from backend.nl2sql.engines.base import (
    Generation,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
    Suggestion,
)
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import (
    EvaluationInputError,
    evaluate,
    gold_difficulty,
    has_top_level_order,
    load_questions,
    load_semantic_layer,
    results_match,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# A Spider-style database ("concert_singer"-like) and questions written the way Spider writes them.
SINGERS = [
    (1, "Joe Sharp", "Netherlands", 52),
    (2, "Timbaland", "United States", 32),
    (3, "Justin Brown", "France", 29),
    (4, "Rose White", "France", 41),
    (5, "John Nizinik", "France", 43),
    (6, "Tribal King", "France", 25),
]
QUESTIONS = [
    {"db_id": "singers", "question": "How many singers do we have?",
     "query": "SELECT count(*) FROM singer"},
    {"db_id": "singers", "question": "What is the average age of singers from France?",
     "query": 'SELECT avg(age) FROM singer WHERE country = "France"'},
    {"db_id": "singers", "question": "List the names of singers in descending order of age.",
     "query": "SELECT name FROM singer ORDER BY age DESC"},
    {"db_id": "singers", "question": "Show the country and the number of singers in each country.",
     "query": "SELECT country, count(*) FROM singer GROUP BY country"},
    {"db_id": "singers", "question": "What is the meaning of life?",
     "query": "SELECT name FROM singer WHERE age > 100"},
]  # fmt: skip


@pytest.fixture
def db_root(tmp_path: Path) -> Path:
    folder = tmp_path / "db" / "singers"
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "singers.sqlite")
    conn.execute(
        "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INT)"
    )
    conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", SINGERS)
    conn.commit()
    conn.close()
    return tmp_path / "db"


class FixedAnswers(SqlGenerator):
    """A generator that answers from a table, to score chosen SQL against the gold."""

    name = "fixed"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(self, request: GenerationRequest) -> Generation:
        sql = self.answers.get(request.question)
        if sql is None:
            raise QuestionNotUnderstood("not in the table")
        return Generation(sql=sql, explanation="")


# gold rows, predicted rows, ordered?, same?
MATCHES = [
    ([(1,), (2,)], [(2,), (1,)], False, True),
    ([(1,), (2,)], [(2,), (1,)], True, False),
    ([(1,), (1,), (2,)], [(1,), (2,), (2,)], False, False),
    ([(2,)], [(2.0,)], False, True),
    ([(0.3,)], [(0.1 + 0.2,)], False, True),
    ([(0.3,)], [(0.31,)], False, False),
    ([("a", 1), ("b", 2)], [(1, "a"), (2, "b")], False, True),
    ([("a", 1), ("b", 2)], [(1, "b"), (2, "a")], False, False),
    ([("a", 1)], [("a",)], False, False),
    ([("France",)], [("france",)], False, False),
    ([], [], True, True),
    ([(None,)], [(None,)], False, True),
]


@pytest.mark.parametrize(("gold", "predicted", "ordered", "same"), MATCHES)
def test_results_match(
    gold: list[tuple[object, ...]], predicted: list[tuple[object, ...]], ordered: bool, same: bool
) -> None:
    assert results_match(gold, predicted, ordered=ordered) is same


@pytest.mark.parametrize(
    ("sql", "ordered"),
    [
        ("SELECT name FROM singer ORDER BY age", True),
        (
            "SELECT name FROM singer WHERE age > (SELECT age FROM singer ORDER BY age LIMIT 1)",
            False,
        ),
        ("SELECT count(*) FROM singer", False),
    ],
)
def test_only_a_top_level_order_by_makes_order_matter(sql: str, ordered: bool) -> None:
    assert has_top_level_order(sql) is ordered


@pytest.mark.parametrize(
    ("sql", "difficulty"),
    [
        ("SELECT name FROM singer", "easy"),
        ("SELECT count(*) FROM singer", "easy"),
        ("SELECT country, count(*) FROM singer AS s JOIN concert AS c ON 1 GROUP BY country",
         "medium"),
        ("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)", "hard"),
        ("SELECT name FROM singer EXCEPT SELECT name FROM singer AS s JOIN concert AS c ON 1"
         " WHERE c.year > (SELECT max(year) FROM concert)", "extra"),
    ],
)  # fmt: skip
def test_gold_difficulty_counts_joins_aggregates_subqueries_and_set_operations(
    sql: str, difficulty: str
) -> None:
    assert gold_difficulty(sql) == difficulty


def test_accuracy_counts_order_only_where_gold_orders(db_root: Path) -> None:
    answers = {
        QUESTIONS[0]["question"]: "SELECT COUNT(singer_id) FROM singer",
        QUESTIONS[1]["question"]: (
            "SELECT SUM(age) * 1.0 / COUNT(*) FROM singer WHERE country = 'France'"
        ),
        # right rows, wrong order, and gold orders: wrong
        QUESTIONS[2]["question"]: "SELECT name FROM singer ORDER BY age ASC",
        # right rows in another row order and column order, gold does not order: right
        QUESTIONS[3]["question"]: (
            "SELECT COUNT(*), country FROM singer GROUP BY country ORDER BY 1"
        ),
        # fails to run: wrong
        QUESTIONS[4]["question"]: "SELECT nope FROM singer",
    }  # fmt: skip
    report = evaluate(QUESTIONS, db_root=db_root, generator=FixedAnswers(answers))
    assert report.correct == [True, True, False, True, False]
    assert (report.overall.total, report.overall.answered, report.overall.correct) == (5, 5, 3)
    assert report.overall.accuracy == pytest.approx(0.6)
    assert report.by_database["singers"].correct == 3
    assert report.by_difficulty["easy"].total == 5


def test_declines_count_against_accuracy_but_not_precision(db_root: Path) -> None:
    answers = {QUESTIONS[0]["question"]: "SELECT COUNT(*) FROM singer"}
    report = evaluate(QUESTIONS, db_root=db_root, generator=FixedAnswers(answers))
    assert report.overall.accuracy == pytest.approx(1 / 5)
    assert report.overall.precision == pytest.approx(1.0)
    assert report.decline_rate == pytest.approx(4 / 5)
    assert report.predictions[1].sql is None
    assert report.predictions[1].error is not None
    assert report.predictions[1].error.startswith("declined:")


def test_builtin_engine_answers_spider_style_questions(db_root: Path) -> None:
    report = evaluate(QUESTIONS, db_root=db_root, generator=BuiltinGenerator())
    assert report.correct == [True, True, True, True, False]
    assert report.predictions[4].sql is None


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    from backend.nl2sql.evaluation import EvaluationInputError

    with pytest.raises(EvaluationInputError, match="no database for 'singers'"):
        evaluate(QUESTIONS, db_root=tmp_path, generator=BuiltinGenerator())


def test_questions_file_must_be_a_list_of_questions(tmp_path: Path) -> None:
    from backend.nl2sql.evaluation import EvaluationInputError

    path = tmp_path / "q.json"
    path.write_text(json.dumps({"db_id": "x"}))
    with pytest.raises(EvaluationInputError):
        load_questions(path)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "eval", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_cli_writes_predictions_in_order_and_prints_accuracy(db_root: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    out = tmp_path / "predictions.json"
    result = _run_cli(str(questions), "--db-root", str(db_root), "--out", str(out), "--limit", "5")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(out.read_text())
    assert [p["question"] for p in predictions] == [q["question"] for q in QUESTIONS]
    for p in predictions:
        assert set(p) == {
            "db_id", "question", "sql", "error", "ms", "confidence", "candidate_sql",
            "correct", "candidate_correct",
        }  # fmt: skip
        assert isinstance(p["ms"], float)
    assert predictions[0]["sql"] is not None and predictions[0]["error"] is None
    assert [p["correct"] for p in predictions].count(True) == 4
    assert predictions[4]["sql"] is None and "declined" in predictions[4]["error"]
    assert "overall" in result.stdout and "80.0%" in result.stdout
    assert "db: singers" in result.stdout and "difficulty: easy" in result.stdout
    assert "p95" in result.stdout and "precision" in result.stdout
    assert "confidence >= threshold" in result.stdout


def test_cli_limit_and_questions_without_gold(db_root: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(
        json.dumps([{k: v for k, v in q.items() if k != "query"} for q in QUESTIONS])
    )
    out = tmp_path / "predictions.json"
    result = _run_cli(str(questions), "--db-root", str(db_root), "--out", str(out), "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out.read_text())) == 2
    assert "execution accuracy" not in result.stdout


def test_cli_reports_a_bad_database_folder(tmp_path: Path) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    result = _run_cli(str(questions), "--db-root", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no database for 'singers'" in result.stderr


class Scored(SqlGenerator):
    """Answers from a table with a stated confidence; declines weak ones with the SQL offered."""

    name = "scored"

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers

    def generate(self, request: GenerationRequest) -> Generation:
        sql, confidence = self.answers[request.question]
        if confidence < 0.5:
            raise QuestionNotUnderstood(
                "too weak", suggestions=[Suggestion("Did you mean ...", sql)], confidence=confidence
            )
        return Generation(sql=sql, explanation="", confidence=confidence)


def test_levels_tags_groups_latency_and_the_confidence_curve(db_root: Path) -> None:
    count, france = (
        "SELECT count(*) FROM singer",
        "SELECT avg(age) FROM singer WHERE country = 'France'",
    )
    items = [
        {"db_id": "singers", "question": "a", "query": count, "level": "easy",
         "phenomena": ["count"], "group": "g1"},
        {"db_id": "singers", "question": "b", "query": count, "level": "easy",
         "phenomena": ["count"], "group": "g1"},
        {"db_id": "singers", "question": "c", "query": france, "level": "hard",
         "phenomena": ["aggregate", "filter"], "group": "g2"},
        {"db_id": "singers", "question": "d", "query": france, "level": "hard",
         "phenomena": ["aggregate"], "group": "g2"},
    ]  # fmt: skip
    answers = {
        "a": (count, 0.9),
        "b": (count, 0.8),
        "c": (france, 0.4),  # right, but declined as too weak
        "d": ("SELECT max(age) FROM singer", 0.7),  # answered and wrong
    }
    report = evaluate(items, db_root=db_root, generator=Scored(answers))
    assert report.correct == [True, True, False, False]
    assert report.candidate_correct == [True, True, True, False]
    # The predictions file carries each question's outcome next to its SQL.
    assert [p.correct for p in report.predictions] == report.correct
    assert [p.candidate_correct for p in report.predictions] == report.candidate_correct
    assert (report.by_level["easy"].correct, report.by_level["hard"].answered) == (2, 1)
    assert report.by_tag["count"].precision == 1.0
    assert report.by_tag["aggregate"].precision == 0.0
    assert report.by_tag["filter"].answered == 0
    assert report.consistency == pytest.approx(0.5)  # g1 alike; g2 has a decline
    assert report.groups_all_right == pytest.approx(0.5)
    assert report.p95_ms >= report.median_ms > 0
    curve = {p["threshold"]: p for p in report.curve()}
    assert curve[0.0]["answered"] == 1.0 and curve[0.0]["precision"] == pytest.approx(0.75)
    assert curve[0.5]["answered"] == pytest.approx(0.75)
    assert curve[0.75]["answered"] == pytest.approx(0.5) and curve[0.75]["precision"] == 1.0
    summary = report.summary()
    assert summary["by_level"]["easy"]["precision"] == 1.0
    assert summary["consistency"] == 0.5 and summary["curve"]


class LayerEcho(SqlGenerator):
    """Answers with the number of measures of the semantic layer it was given (0: none)."""

    name = "layer-echo"

    def generate(self, request: GenerationRequest) -> Generation:
        n = len(request.semantic.measures) if request.semantic is not None else 0
        return Generation(sql=f"SELECT {n}", explanation="")


def test_the_semantic_layer_reaches_every_request_and_the_report_names_it(
    db_root: Path, tmp_path: Path
) -> None:
    layer_file = tmp_path / "layer.yaml"
    layer_file.write_text(
        "measures:\n  - {name: average age, table: singer, expression: AVG(singer.age)}\n"
        "today: 2025-06-30\n"
    )
    layer = load_semantic_layer(layer_file)
    items = [{"db_id": "singers", "question": "x", "query": "SELECT 1"}]
    with_layer = evaluate(items, db_root=db_root, generator=LayerEcho(), semantic=layer)
    without = evaluate(items, db_root=db_root, generator=LayerEcho())
    assert (with_layer.correct, without.correct) == ([True], [False])
    assert with_layer.summary()["semantic_layer"] == "0 tables, 1 measures, 0 filters, 0 joins"
    assert without.summary()["semantic_layer"] is None


def test_a_file_that_is_not_a_layer_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("measures: [{name: x}]\n")
    with pytest.raises(EvaluationInputError, match="not a semantic-layer document"):
        load_semantic_layer(bad)
    bad.write_text("tables: [\n")
    with pytest.raises(EvaluationInputError, match="cannot read a semantic layer"):
        load_semantic_layer(bad)


def test_cli_states_the_layer_it_used(db_root: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS[:1]))
    layer_file = tmp_path / "layer.json"
    layer_file.write_text(json.dumps({"filters": [
        {"name": "French", "table": "singer", "condition": "singer.country = 'France'"}
    ]}))  # fmt: skip
    result = _run_cli(
        str(questions), "--db-root", str(db_root), "--semantic-layer", str(layer_file)
    )
    assert result.returncode == 0, result.stderr
    assert f"semantic layer: {layer_file} (0 tables, 0 measures, 1 filters" in result.stdout
    plain = _run_cli(str(questions), "--db-root", str(db_root))
    assert "semantic layer: none" in plain.stdout
    missing = _run_cli(
        str(questions), "--db-root", str(db_root), "--semantic-layer", str(tmp_path / "no.yaml")
    )
    assert missing.returncode == 2 and "cannot read a semantic layer" in missing.stderr


def test_the_business_dev_example_layer_names_real_tables_and_columns() -> None:
    """examples/semantic/business_dev.yaml loads and every name and fragment fits the bench DB."""
    bench = REPO_ROOT.parent / "shared" / "bench" / "business_dev" / "database" / "business_dev"
    database = bench / "business_dev.sqlite"
    layer = load_semantic_layer(REPO_ROOT / "examples" / "semantic" / "business_dev.yaml")
    assert str(layer.today) == "2025-06-30" and layer.measures and layer.filters
    if not database.is_file():
        pytest.skip("the business_dev bench database is not next to this worktree")
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = {
            t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")}
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for table in layer.tables:
            assert {c.name for c in table.columns} <= tables[table.name], table.name
        for join in layer.joins:
            assert join.from_column in tables[join.from_table]
            assert join.to_column in tables[join.to_table]
        for m in layer.measures:
            plans = " JOIN plans ON plans.plan_id = subscriptions.plan_id" * (
                "plans." in m.expression
            )
            where = f" WHERE {m.filter}" if m.filter else ""
            (value,) = conn.execute(
                f"SELECT {m.expression} FROM {m.table}{plans}{where}"
            ).fetchone()
            assert value, m.name
        for f in layer.filters:
            (n,) = conn.execute(f"SELECT COUNT(*) FROM {f.table} WHERE {f.condition}").fetchone()
            assert n > 0, f.name
    finally:
        conn.close()
