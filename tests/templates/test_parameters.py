"""Template definitions, question matching and typed binding: one line per case."""

from __future__ import annotations

from typing import Any

import pytest

from backend.templates.errors import TemplateInvalid, TemplateParameterInvalid
from backend.templates.models import QueryTemplate
from backend.templates.parameters import (
    bind_parameters,
    coerce_value,
    match_template,
    validate_definition,
)
from backend.templates.schemas import TemplateParameter

REVENUE_SQL = (
    "SELECT SUM(p.amount) AS revenue FROM payments p JOIN orders o ON o.id = p.order_id "
    "JOIN customers c ON c.id = o.customer_id "
    "WHERE c.country = :country AND strftime('%Y', p.paid_at) = CAST(:year AS TEXT)"
)
REVENUE_PARAMS = [
    {"name": "country", "type": "string"},
    {"name": "year", "type": "integer", "default": 2024},
]


def template(
    question: str = "revenue in {country} in {year}",
    sql: str = REVENUE_SQL,
    parameters: list[dict[str, Any]] | None = None,
    *,
    verified: bool = False,
    usage_count: int = 0,
    name: str = "t",
) -> QueryTemplate:
    return QueryTemplate(
        name=name,
        question_template=question,
        sql_template=sql,
        parameters=REVENUE_PARAMS if parameters is None else parameters,
        is_verified=verified,
        usage_count=usage_count,
    )


@pytest.mark.parametrize(
    "value, type_, expected",
    [
        ("France", "string", "France"),
        (42, "string", "42"),
        ("2023", "integer", 2023),
        ("1,000", "integer", 1000),
        (7.0, "integer", 7),
        ("3.5", "number", 3.5),
        ("12", "number", 12),
        (2.25, "number", 2.25),
        ("2024-02-29", "date", "2024-02-29"),
        ("yes", "boolean", True),
        ("False", "boolean", False),
        (1, "boolean", True),
    ],
)
def test_coerce_value(value: Any, type_: str, expected: Any) -> None:
    assert coerce_value(value, type_) == expected


@pytest.mark.parametrize(
    "value, type_",
    [
        (True, "integer"),
        ("12abc", "integer"),
        (1.5, "integer"),
        ("nan", "number"),
        (float("inf"), "number"),
        ("2023-02-30", "date"),
        ("yesterday", "date"),
        ("maybe", "boolean"),
        (2, "boolean"),
        (["a"], "string"),
        ("x" * 1001, "string"),
        (None, "string"),
    ],
)
def test_coerce_value_refuses(value: Any, type_: str) -> None:
    with pytest.raises(ValueError):
        coerce_value(value, type_)


@pytest.mark.parametrize(
    "question, sql, params, problem",
    [
        ("revenue in {country}", "SELECT :country AS c", [], "{country} in the question"),
        ("q", "SELECT :a AS a", [], ":a in the SQL"),
        ("q", "SELECT 1", [{"name": "a"}], "'a' is not used"),
        ("q {a} {a}", "SELECT :a", [{"name": "a"}], "more than once"),
        ("q", "SELECT :a", [{"name": "a"}, {"name": "a"}], "declared twice"),
        ("q", "SELECT :n", [{"name": "n", "type": "integer", "default": "ten"}], "default of 'n'"),
        ("q", "DELETE FROM customers", [], "read-only SELECT"),
        ("q", "SELECT 1; DROP TABLE customers", [], "exactly one statement"),
        ("q", "SELEC 1 FRM", [], "does not parse"),
        ("q", "SELECT * FROM t WHERE a = ?", [], "named parameters"),
        ("{a} {b}", "SELECT :a, :b", [{"name": "a"}, {"name": "b"}], "need a word between"),
        (
            "{a} x {b} y {c}",
            "SELECT :a, :b, :c",
            [{"name": n} for n in "abc"],
            "at most 2 string placeholders",
        ),
    ],
)
def test_validate_definition_refuses(
    question: str, sql: str, params: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        validate_definition(
            question_template=question,
            sql_template=sql,
            parameters=[TemplateParameter.model_validate(p) for p in params],
        )
    assert problem in f"{caught.value.message} {caught.value.details}"


def test_validate_definition_accepts_a_consistent_template() -> None:
    validate_definition(
        question_template="revenue in {country} in {year}",
        sql_template=REVENUE_SQL,
        parameters=[TemplateParameter.model_validate(p) for p in REVENUE_PARAMS],
        dialect="sqlite",
    )


@pytest.mark.parametrize(
    "question, expected",
    [
        ("revenue in France in 2023", {"country": "France", "year": 2023}),
        ("Revenue   IN  United Kingdom in 2022?", {"country": "United Kingdom", "year": 2022}),
        ("revenue in 'Côte d'Ivoire' in 2021", {"country": "Côte d'Ivoire", "year": 2021}),
        ("revenue in France in last year", None),  # year must be an integer
        ("revenue in France", None),
        ("what is the revenue in France in 2023", None),
    ],
)
def test_match_template(question: str, expected: dict[str, Any] | None) -> None:
    found = match_template(question, [template()])
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found[1] == expected


def test_match_template_prefers_verified_then_specific_templates() -> None:
    general = template("revenue in {country} in {year}", name="general", usage_count=50)
    specific = template("revenue in {country} in {year}", name="verified", verified=True)
    assert match_template("revenue in Peru in 2020", [general, specific])[0].name == "verified"  # type: ignore[index]

    loose = template(
        "{what} in {year}",
        "SELECT :what, :year",
        [{"name": "what"}, {"name": "year", "type": "integer"}],
        name="loose",
    )
    strict = template(name="strict")
    assert match_template("revenue in Peru in 2020", [loose, strict])[0].name == "strict"  # type: ignore[index]


def test_bind_parameters_uses_defaults_and_coerces() -> None:
    assert bind_parameters(template(), {"country": "Japan"}) == {"country": "Japan", "year": 2024}
    assert bind_parameters(template(), {"country": "Japan", "year": "2021"})["year"] == 2021


def test_bind_parameters_lists_every_problem() -> None:
    with pytest.raises(TemplateParameterInvalid) as caught:
        bind_parameters(template(), {"year": "MMXX", "limit": 5})
    error = caught.value
    assert error.status_code == 422
    assert sorted(e["parameter"] for e in error.details["errors"]) == ["country", "limit", "year"]
    assert "year must be an integer" in error.message


def test_a_pathological_question_does_not_match_and_returns() -> None:
    many = template(
        "{a} in {b} in {c} in {n}",
        "SELECT :a, :b, :c, :n",
        [
            {"name": "a"},
            {"name": "b"},
            {"name": "c", "type": "date"},
            {"name": "n", "type": "integer"},
        ],
    )
    assert match_template("in " * 160 + "x", [many]) is None  # backtracking stays bounded
    assert match_template("in " * 400, [many]) is None  # longer than any question matched
    assert match_template("p in q in 2024-01-31 in 7", [many]) == (
        many,
        {"a": "p", "b": "q", "c": "2024-01-31", "n": 7},
    )
