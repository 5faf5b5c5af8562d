"""The confidence refit (`scripts/fit_confidence.py`): it converges where a plain Newton step
would overshoot, and every doubt keeps a judged weight, so a refit after merging new doubts
neither crashes nor silently stops declining what a rare doubt catches."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

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
