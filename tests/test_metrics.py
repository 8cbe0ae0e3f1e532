"""The paper's metrics (MAE, PCC, cMAE, naive), footfall's run-level ones and the per-step ones."""

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
    match_steps,
    naive_predictions,
    pcc,
    results_json,
    results_table,
    save_results,
    step_scores,
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


# ---- per step: one-to-one matching within +-50 ms


def pairs(pred, true, tol=0.05):
    i, j = match_steps(pred, true, tol)
    p, t = np.sort(pred), np.sort(true)
    return [(round(float(p[a]), 6), round(float(t[b]), 6)) for a, b in zip(i, j)]


def test_match_steps_hand_cases():
    assert pairs([0.0, 0.5, 1.0], [0.03, 0.56, 1.2]) == [(0.0, 0.03)]  # 60 ms and 200 ms are misses
    assert pairs([1.0, 2.0], [2.0, 1.0]) == [(1.0, 1.0), (2.0, 2.0)]  # any input order
    # one-to-one: two predictions near one step match it once, the closer one
    assert pairs([0.98, 1.015], [1.0]) == [(1.015, 1.0)]
    assert pairs([1.0], [0.98, 1.015]) == [(1.0, 1.015)]
    # the largest matching, not the nearest pair first: 1.04 is closest to 1.06, but pairing them
    # would leave both 1.00 and 1.10 alone
    assert pairs([1.04, 1.10], [1.00, 1.06]) == [(1.04, 1.0), (1.10, 1.06)]
    # the tolerance is inclusive: exactly 50 ms matches, 51 ms does not
    assert pairs([0.55], [0.5]) == [(0.55, 0.5)] and pairs([0.551], [0.5]) == []
    assert pairs([0.5], [0.551], tol=0.06) == [(0.5, 0.551)]
    assert pairs([], [1.0]) == [] and pairs([1.0], []) == []
    with pytest.raises(ValueError, match="tolerance"):
        match_steps([1.0], [1.0], 0.0)


def test_match_steps_is_a_largest_and_closest_matching():
    """Against the exact optimum of the whole problem (one assignment over every pair, no clusters)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    rng = np.random.default_rng(0)
    for trial in range(300):
        true = np.sort(rng.uniform(0, 3, rng.integers(0, 12)))
        pred = np.sort(rng.uniform(0, 3, rng.integers(0, 12)))
        i, j = match_steps(pred, true)
        assert len(set(i)) == len(i) and len(set(j)) == len(j)  # one-to-one
        assert np.all(np.abs(pred[i] - true[j]) <= 0.05 + 1e-9)
        if not (pred.size and true.size):
            assert i.size == 0
            continue
        err = np.abs(pred[:, None] - true[None, :])
        ok = err <= 0.05 + 1e-9
        largest = int((maximum_bipartite_matching(csr_matrix(ok.astype(np.int8)), perm_type="column") >= 0).sum())
        assert i.size == largest, trial
        r, c = linear_sum_assignment(np.where(ok, err - 100.0, 0.0))
        best = err[r, c][ok[r, c]].sum()
        assert np.abs(pred[i] - true[j]).sum() == pytest.approx(best, abs=1e-9), trial


def test_step_scores_hand_cases():
    s = step_scores([[0.0, 0.5, 1.0]], [[0.03, 0.56, 1.2]])
    assert (s.n_pred, s.n_true, s.n_matched) == (3, 3, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 3) and s.f_measure == pytest.approx(1 / 3)
    assert s.timing_mae_ms == pytest.approx(30.0) and s.timing_bias_ms == pytest.approx(-30.0)  # early
    # two runs pool their counts: 3 of 4 predictions, 3 of 5 steps
    s = step_scores([[1.0, 2.01, 3.0], [0.5]], [[1.02, 2.0, 3.03, 4.0], [0.6]])
    assert (s.n_pred, s.n_true, s.n_matched) == (4, 5, 3)
    assert s.precision == pytest.approx(3 / 4) and s.recall == pytest.approx(3 / 5)
    assert s.f_measure == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert s.timing_mae_ms == pytest.approx(20.0) and s.timing_median_ms == pytest.approx(20.0)
    assert s.timing_bias_ms == pytest.approx(-20.0)  # errors -20, +10, -30 ms
    # nothing predicted: recall and F are 0, precision undefined; nothing at all: all undefined
    s = step_scores([[]], [[1.0, 2.0]])
    assert s.recall == 0 and s.f_measure == 0 and math.isnan(s.precision) and math.isnan(s.timing_mae_ms)
    s = step_scores([[]], [[]])
    assert math.isnan(s.f_measure) and math.isnan(s.recall)
    with pytest.raises(ValueError):
        step_scores([[1.0]], [])


def test_evaluate_runs_per_step():
    truth_t = 0.2 + 0.35 * np.arange(40)  # 14.2 s, 170 spm
    n = 1500
    frames = lambda t: np.bincount(np.floor(np.asarray(t) * 100).astype(int), minlength=n).astype(np.float64)  # noqa: E731
    late = truth_t + 0.03  # every step 30 ms late: all matched
    r = evaluate_runs([frames(late)], [frames(truth_t)], 500, pred_events=[late], true_events=[truth_t])
    assert r.step_f == 1.0 and r.step_precision == 1.0 and r.step_recall == 1.0
    assert r.timing_mae_ms == pytest.approx(30.0) and r.timing_bias_ms == pytest.approx(30.0)
    # half a period off: the same counts, MAE 0 on most windows, but not one step is right
    off = truth_t + 0.175
    r = evaluate_runs([frames(off[off < 15])], [frames(truth_t)], 500, pred_events=[off], true_events=[truth_t])
    assert r.step_f == 0.0 and r.mae <= 1.0 and math.isnan(r.timing_mae_ms)
    # steps beyond the run's frames are scored by neither side
    r = evaluate_runs([frames(truth_t)], [frames(truth_t)], 500, pred_events=[np.r_[truth_t, 15.5]], true_events=[np.r_[truth_t, 15.2]])
    assert r.step_f == 1.0
    # without step times the per-step scores are undefined, not zero
    assert math.isnan(evaluate_runs([frames(truth_t)], [frames(truth_t)], 500).step_f)
    with pytest.raises(ValueError, match="both"):
        evaluate_runs([frames(truth_t)], [frames(truth_t)], 500, pred_events=[truth_t])
    res = [evaluate_runs([frames(late)], [frames(truth_t)], 500, fold=k, pred_events=[late], true_events=[truth_t]) for k in range(2)]
    assert summarize(res)["step_f"]["mean"] == 1.0 and summarize(res)["timing_bias_ms"]["mean"] == pytest.approx(30.0)
    assert results_json(res)["folds"][0]["step_recall"] == 1.0
