"""The confidence refit (`scripts/fit_confidence.py`): it converges where a plain Newton step
would overshoot, and every doubt keeps a judged weight, so a refit after merging new doubts
neither crashes nor silently stops declining what a rare doubt catches."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from backend.nl2sql.engines.builtin.confidence import FEATURES


def _fit_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "fit_confidence.py"
    spec = importlib.util.spec_from_file_location("fit_confidence_spconf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _loss(x: np.ndarray, y: np.ndarray, bias: float, weights: np.ndarray) -> float:
    z = bias + x @ weights
    return float((np.logaddexp(0.0, z) - y * z).sum())


def test_the_fit_converges_from_a_judged_weight_far_from_the_data() -> None:
    # Orchard pickers: one feature on every other reading, a judged weight far too high.
    # A full Newton step from there overshoots and the Hessian goes singular; the halved step
    # walks down to the optimum.
    fit = _fit_script().fit
    rng = np.random.default_rng(0)
    n = 300
    x = np.column_stack([np.arange(n) % 2, rng.random(n) * 3]).astype(float)
    y = (rng.random(n) < 0.7).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bias, weights = fit(x, y, np.ones(n), 0.5, np.array([8.0, 0.0]))
    assert np.isfinite(bias) and np.all(np.isfinite(weights))
    assert abs(weights[0]) < 2.0  # the data, not the judgement, decides a common feature
    # no better point nearby: the fit is the penalised optimum
    penalty = 0.25 * ((weights[0] - 8.0) ** 2 + weights[1] ** 2)
    best = _loss(x, y, bias, weights) + penalty
    for delta in (0.05, -0.05):
        moved = _loss(x, y, bias + delta, weights) + penalty
        assert moved >= best - 1e-6


def test_every_feature_has_a_judged_weight_and_a_new_doubt_gets_the_default() -> None:
    script = _fit_script()
    missing = [name for name in FEATURES if name not in script.PRIOR]
    assert missing == []  # a doubt refitted toward 0 would stop declining on its own
    judged = script.priors(["unasked_keys", "a_doubt_added_later"])
    assert judged["unasked_keys"] == script.PRIOR["unasked_keys"]
    assert judged["a_doubt_added_later"] == script.DEFAULT_PRIOR < 0


def test_a_doubt_the_training_sets_never_show_keeps_its_judged_weight() -> None:
    script = _fit_script()
    names = script.NAMES
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(400):
        x = [0.0] * len(names)
        x[names.index("unknown_share")] = float(rng.random() < 0.4)
        right = bool(rng.random() > 0.2 + 0.5 * x[names.index("unknown_share")])
        rows.append((x, right))
    bias, weights = script._fit_sets([("crates", rows, 400)], 10.0)
    fitted = dict(zip(names, weights, strict=True))
    assert fitted["unknown_share"] < -1.0  # learnt from the data
    for rare in ("tested_flags_shown", "two_way_activity", "counted_labels", "unseen_names"):
        assert abs(fitted[rare] - script.PRIOR[rare]) < 1e-6  # never seen: judged weight kept
    assert "tested_flags_shown" in script._rarely_seen([("crates", rows, 400)])
    assert "unknown_share" not in script._rarely_seen([("crates", rows, 400)])


def _orchard(root: Path) -> Path:
    """A one-database question set: `orchard` (pickers and the crates they filled)."""
    db = root / "database" / "orchard"
    db.mkdir(parents=True)
    conn = sqlite3.connect(db / "orchard.sqlite")
    conn.executescript(
        """
        CREATE TABLE pickers (picker_id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER);
        CREATE TABLE crates (crate_id INTEGER PRIMARY KEY, weight REAL,
            picker_id INTEGER REFERENCES pickers(picker_id));
        INSERT INTO pickers VALUES (1, 'Ana', 31), (2, 'Ben', 45), (3, 'Caro', 27);
        INSERT INTO crates VALUES (1, 10.5, 1), (2, 12.0, 1), (3, 9.0, 2), (4, 11.0, 3);
        """
    )
    conn.commit()
    conn.close()
    questions = [
        {"db_id": "orchard", "question": "How many pickers are there?",
         "query": "SELECT count(*) FROM pickers"},
        {"db_id": "orchard", "question": "What is the average age of pickers?",
         "query": "SELECT avg(age) FROM pickers"},
        {"db_id": "orchard", "question": "List the names of pickers older than 30.",
         "query": "SELECT name FROM pickers WHERE age > 30"},
        {"db_id": "orchard", "question": "What is the heaviest crate weight?",
         "query": "SELECT max(weight) FROM crates"},
    ]  # fmt: skip
    path = root / "questions.json"
    path.write_text(json.dumps(questions), encoding="utf-8")
    return path


def test_a_measured_set_is_scored_side_by_side_but_never_fitted_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _fit_script()
    questions = _orchard(tmp_path / "train")
    held = _orchard(tmp_path / "held")
    spec = f"{questions}:{questions.parent / 'database'}"
    measured = f"{held}:{held.parent / 'database'}"
    monkeypatch.setattr(sys, "argv", ["fit", spec, "--measure", measured, "--threshold", "0.5"])
    script.main()
    out = capsys.readouterr().out
    shipped = next(line for line in out.splitlines() if line.startswith("shipped model"))
    fitted = next(line for line in out.splitlines() if line.startswith("this fit"))
    for line in (shipped, fitted):
        assert line.count("EX ") == 2 and line.count("AUC ") == 2  # the fitted set and the measured
    assert "measured only, never fitted on" in out
    # the pooled fit saw only the training set: the generalisation block names one set
    assert out.count("fitted on ") == 0  # (one set alone: no cross-set lines)
