"""The paper's metrics (MAE, PCC, cMAE, naive) and footfall's run-level ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from train.evaluate.metrics import (
    cadence_mae,
    cmae,
    evaluate_runs,
    mae,
    naive_predictions,
    pcc,
    results_json,
    results_table,
    save_results,
    summarize,
    total_count_error_pct,
)


def test_mae_pcc():
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert pcc([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pcc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    assert pcc(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert math.isnan(pcc([2, 2, 2], [1, 2, 3]))  # a constant predictor has no correlation
    with pytest.raises(ValueError):
        mae([1, 2], [1, 2, 3])


def test_cmae_is_the_papers_calibration():
    # Table V: 5-s MAE 0.847 -> cMAE 3.388, 10-s 2.025 -> 4.050, 20-s unchanged
    assert cmae(0.847, 5) == pytest.approx(3.388)
    assert cmae(2.025, 10) == pytest.approx(4.050)
    assert cmae(4.047, 20) == pytest.approx(4.047)


def test_total_count_error_and_cadence():
    np.testing.assert_allclose(total_count_error_pct([90, 110, 5], [100, 100, 0]), [10, 10, np.nan])
    assert cadence_mae([28, 30], [30, 30]) == pytest.approx(6.0)  # 1 step / 10 s = 6 spm


def test_naive():
    np.testing.assert_allclose(naive_predictions([10, 12, 14], 4), [12] * 4)
    with pytest.raises(ValueError):
        naive_predictions([], 3)


def make_truth(n_frames=3000, period=35, seed=0):
    rng = np.random.default_rng(seed)
    t = np.zeros(n_frames, np.float32)
    t[np.arange(int(rng.integers(0, period)), n_frames, period)] = 1
    return t


def test_evaluate_runs_perfect_and_shifted():
    truth = [make_truth(seed=s) for s in range(3)]
    perfect = evaluate_runs(truth, truth, 500, fold=2)
    assert perfect.mae == 0 and perfect.tce_median == 0 and perfect.cadence_mae == 0
    assert perfect.n_windows == 18 and perfect.n_runs == 3 and perfect.fold == 2
    # one extra step in every window: MAE 1, cMAE 4, +6 spm on 10-s windows (2 steps / 10 s = 12 spm)
    extra = [t.copy() for t in truth]
    for e in extra:
        e[np.arange(0, len(e), 500) + 1] += 1
    r = evaluate_runs(extra, truth, 500)
    assert r.mae == pytest.approx(1.0) and r.cmae == pytest.approx(4.0)
    assert r.cadence_mae == pytest.approx(12.0)
    assert r.tce_median == pytest.approx(100 * 6 / truth[0].sum(), rel=0.2)


def test_naive_density_reproduces_the_paper_naive():
    truth = [make_truth(period=p) for p in (30, 35, 40)]
    mean_count = 14.0
    dens = [np.full(len(t), mean_count / 500) for t in truth]
    r = evaluate_runs(dens, truth, 500)
    counts = np.concatenate([t.reshape(-1, 500).sum(1) for t in truth])
    assert r.mae == pytest.approx(mae(naive_predictions([mean_count], len(counts)), counts))
    assert math.isnan(r.pcc)


def test_summary_table_json(tmp_path):
    truth = [make_truth(seed=s) for s in range(2)]
    res = [evaluate_runs([t + 0.01 * k for t in truth], truth, 500, fold=k) for k in range(3)]
    s = summarize(res)
    assert s["mae"]["mean"] == pytest.approx(np.mean([r.mae for r in res]))
    assert s["mae"]["std"] == pytest.approx(np.std([r.mae for r in res]))
    table = results_table(res, "t")
    assert table.row_count == 4
    path = save_results(tmp_path / "r.json", res, baseline="x")
    data = json.loads(path.read_text())
    assert data["baseline"] == "x" and len(data["folds"]) == 3
    naive = evaluate_runs([np.full(len(t), 0.03) for t in truth], truth, 500)
    assert json.loads(json.dumps(results_json([naive])))["folds"][0]["pcc"] is None  # NaN -> null
    assert results_json(res)["summary"]["mae"]["mean"] == pytest.approx(s["mae"]["mean"])
