"""The seed paper's metrics, and footfall's run-level ones, over per-frame step predictions.

Paper (Wagner et al.): per-window MAE and Pearson PCC on non-overlapping windows, a naive
baseline predicting the mean train-window count, and the calibrated MAE for comparing window
lengths, cMAE = MAE x 20 / window_s (5-s MAE x 4, 10-s MAE x 2; the error per 20 s).
footfall adds the total-count error of each run (%) and the cadence error in steps/min on 10-s
windows, the numbers a runner sees (on the paper's 5-s windows a cadence error is the MAE x 12).

Every counter is evaluated the same way: it gives, for each test run, a per-frame predicted
step count (a step-event counter gives 1 at each event's frame; the naive baseline a density),
and :func:`evaluate_runs` windows prediction and truth identically.

Per step (counters that give step times): each predicted step is matched to at most one true
step within +-:data:`STEP_TOLERANCE_S` (:func:`match_steps`: a largest one-to-one matching, as
``mir_eval.onset.f_measure`` counts it); precision = matched / predicted, recall = matched /
true, F = 2 matched / (predicted + true), pooled over the runs of a set. The timing error of the
matched steps (predicted - true) is given as its mean and median absolute value and its median
(the bias), in ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.contract import FRAMES_PER_SECOND
from edge.util import jsonable, write_json
from train.data.windows import window_index, window_sums

REF_WINDOW_S = 20  # cMAE reference: the longest window of the paper
CADENCE_WINDOW_S = 10
STEP_TOLERANCE_S = 0.05  # a predicted step within 50 ms of a true one is that step (the onset-detection convention)
_TIE_S = 1e-9  # a step exactly at the tolerance matches, whatever the float rounding of the two times


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"mae: shapes differ {pred.shape} vs {true.shape}")
    return float(np.mean(np.abs(pred - true))) if pred.size else math.nan


def pcc(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (the naive baseline) or empty."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"pcc: shapes differ {pred.shape} vs {true.shape}")
    if pred.size < 2:
        return math.nan
    dp, dt = pred - pred.mean(), true - true.mean()
    # constant up to float noise (window sums of a constant density): undefined, not +-1
    if np.abs(dp).max() <= 1e-9 * (1 + abs(pred.mean())) or np.abs(dt).max() <= 1e-9 * (1 + abs(true.mean())):
        return math.nan
    return float(dp @ dt) / math.sqrt(float(dp @ dp) * float(dt @ dt))


def cmae(mae_value: float, window_s: float, ref_s: float = REF_WINDOW_S) -> float:
    """Calibrated MAE (paper, Table V): MAE x ref_s / window_s."""
    return mae_value * ref_s / window_s


def total_count_error_pct(pred_total: np.ndarray, true_total: np.ndarray) -> np.ndarray:
    """Per-run |predicted - true| / true x 100; NaN for runs with no true steps."""
    pred_total, true_total = np.asarray(pred_total, np.float64), np.asarray(true_total, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(true_total > 0, 100.0 * np.abs(pred_total - true_total) / true_total, np.nan)


def cadence_mae(pred_counts: np.ndarray, true_counts: np.ndarray, window_s: float = CADENCE_WINDOW_S) -> float:
    """MAE of cadence in steps/min, from step counts of ``window_s`` windows."""
    return mae(pred_counts, true_counts) * 60.0 / window_s


def match_steps(pred: np.ndarray, true: np.ndarray, tolerance_s: float = STEP_TOLERANCE_S) -> tuple[np.ndarray, np.ndarray]:
    """A one-to-one matching of predicted to true step times (s) within +-``tolerance_s``.

    The matching is a largest one (as ``mir_eval.util.match_events``), and of the largest ones the
    one with the least total |error|. Returns index arrays ``(i_pred, i_true)`` into the *sorted*
    inputs, in time order. A predicted and a true step can only be in one matching problem if a
    chain of events at most ``tolerance_s`` apart joins them, so the times are cut at larger gaps
    and each small cluster is solved exactly (an assignment whose cost rewards a match first and
    closeness second).
    """
    if tolerance_s <= 0:
        raise ValueError(f"tolerance_s must be positive, got {tolerance_s}")
    pred = np.sort(np.asarray(pred, np.float64).ravel())
    true = np.sort(np.asarray(true, np.float64).ravel())
    if not pred.size or not true.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    times = np.concatenate([pred, true])
    is_true = np.concatenate([np.zeros(pred.size, bool), np.ones(true.size, bool)])
    index = np.concatenate([np.arange(pred.size), np.arange(true.size)])
    order = np.argsort(times, kind="stable")
    times, is_true, index = times[order], is_true[order], index[order]
    cuts = np.flatnonzero(np.diff(times) > tolerance_s + _TIE_S) + 1
    out_p, out_t = [], []
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(times)]):
        p, t = index[lo:hi][~is_true[lo:hi]], index[lo:hi][is_true[lo:hi]]
        if not p.size or not t.size:
            continue
        err = np.abs(pred[p][:, None] - true[t][None, :])  # (n_pred, n_true) in this cluster
        ok = err <= tolerance_s + _TIE_S
        bonus = 1.0 + tolerance_s * len(p)  # one more match outweighs any sum of |errors| in the cluster
        rows, cols = linear_sum_assignment(np.where(ok, err - bonus, 0.0))
        keep = ok[rows, cols]
        out_p.append(p[rows[keep]])
        out_t.append(t[cols[keep]])
    if not out_p:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i_pred, i_true = np.concatenate(out_p), np.concatenate(out_t)
    order = np.argsort(true[i_true], kind="stable")
    return i_pred[order].astype(np.int64), i_true[order].astype(np.int64)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


@dataclass
class StepScore:
    """Per-step accuracy of predicted step times against true ones (module docstring)."""

    n_pred: int
    n_true: int
    n_matched: int
    precision: float  # matched / predicted; NaN with no predicted step
    recall: float  # matched / true; NaN with no true step
    f_measure: float  # 2 matched / (predicted + true); NaN with neither
    timing_mae_ms: float  # mean |predicted - true| of the matched steps; NaN with none matched
    timing_median_ms: float  # median |predicted - true|
    timing_bias_ms: float  # median (predicted - true): > 0 is late


def step_scores(pred_events: Sequence[np.ndarray], true_events: Sequence[np.ndarray],
                tolerance_s: float = STEP_TOLERANCE_S) -> StepScore:
    """Per-step precision, recall, F-measure and timing error, pooled over runs (``pred_events[i]``
    and ``true_events[i]`` are the step times of run i, in seconds)."""
    if len(pred_events) != len(true_events):
        raise ValueError(f"step times of {len(pred_events)} runs for the truth of {len(true_events)}")
    n_pred = n_true = 0
    errors = []
    for p, t in zip(pred_events, true_events):
        p, t = np.sort(np.asarray(p, np.float64).ravel()), np.sort(np.asarray(t, np.float64).ravel())
        i_pred, i_true = match_steps(p, t, tolerance_s)
        n_pred, n_true = n_pred + p.size, n_true + t.size
        errors.append(p[i_pred] - t[i_true])
    dt = np.concatenate(errors or [np.zeros(0)]) * 1e3
    m = int(dt.size)
    return StepScore(
        n_pred=n_pred, n_true=n_true, n_matched=m,
        precision=_ratio(m, n_pred), recall=_ratio(m, n_true), f_measure=_ratio(2 * m, n_pred + n_true),
        timing_mae_ms=float(np.abs(dt).mean()) if m else math.nan,
        timing_median_ms=float(np.median(np.abs(dt))) if m else math.nan,
        timing_bias_ms=float(np.median(dt)) if m else math.nan,
    )


def naive_predictions(train_counts: np.ndarray, n: int) -> np.ndarray:
    """The paper's naive baseline: the mean train-window count, for ``n`` windows."""
    train_counts = np.asarray(train_counts, np.float64)
    if train_counts.size == 0:
        raise ValueError("naive baseline needs at least one training window")
    return np.full(n, float(train_counts.mean()))


@dataclass
class FoldResult:
    """Metrics of one fold's test runs."""

    fold: int
    window_s: float
    n_runs: int
    n_windows: int
    mae: float
    pcc: float
    cmae: float
    tce_median: float  # median over runs of the total-count error, %
    tce_mean: float
    cadence_mae: float  # steps/min on 10-s windows
    true_mean: float  # mean true count per window
    pred_mean: float
    tce_runs: list = field(default_factory=list)  # total-count error % of each run, in order
    extra: dict = field(default_factory=dict)  # e.g. tuned parameters
    # per step (counters that give step times; NaN otherwise), pooled over the runs: see StepScore
    step_precision: float = math.nan
    step_recall: float = math.nan
    step_f: float = math.nan
    timing_mae_ms: float = math.nan
    timing_median_ms: float = math.nan
    timing_bias_ms: float = math.nan


def _within(events: np.ndarray, seconds: float) -> np.ndarray:
    """The step times in [0, seconds)."""
    ev = np.asarray(events, np.float64).ravel()
    return ev[(ev >= 0) & (ev < seconds)]


def evaluate_runs(
    pred_frames: Sequence[np.ndarray],
    true_frames: Sequence[np.ndarray],
    window_frames: int,
    fps: float = FRAMES_PER_SECOND,
    fold: int = -1,
    pred_events: Sequence[np.ndarray] | None = None,
    true_events: Sequence[np.ndarray] | None = None,
    tolerance_s: float = STEP_TOLERANCE_S,
) -> FoldResult:
    """Score per-frame predictions against per-frame truth, run by run.

    ``pred_frames[i]`` and ``true_frames[i]`` are (T_i,) per-frame step counts of run i at
    ``fps`` frames/s (predictions may be fractional). Windows are the paper's: non-overlapping,
    whole ones only. Totals are over whole runs; cadence uses 10-s windows.

    ``pred_events`` and ``true_events`` (both or neither): the step times (s) of each run, for the
    per-step scores; only steps within the run's frames, [0, T_i / fps), are scored, as in the
    per-frame arrays.
    """
    if len(pred_frames) != len(true_frames):
        raise ValueError(f"{len(pred_frames)} predictions for {len(true_frames)} runs")
    if (pred_events is None) != (true_events is None):
        raise ValueError("per-step scores need both pred_events and true_events")
    if pred_events is not None and not (len(pred_events) == len(true_events) == len(true_frames)):
        raise ValueError(f"step times of {len(pred_events)} and {len(true_events)} runs for {len(true_frames)} runs")
    cad_frames = int(round(CADENCE_WINDOW_S * fps))
    p_win, t_win, p_cad, t_cad, p_tot, t_tot = [], [], [], [], [], []
    for p, t in zip(pred_frames, true_frames):
        p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
        if p.shape != t.shape:
            raise ValueError(f"prediction of {p.shape} frames for truth of {t.shape}")
        starts = window_index(len(t), window_frames)
        p_win.append(window_sums(p, starts, window_frames))
        t_win.append(window_sums(t, starts, window_frames))
        cs = window_index(len(t), cad_frames)
        p_cad.append(window_sums(p, cs, cad_frames))
        t_cad.append(window_sums(t, cs, cad_frames))
        p_tot.append(p.sum())
        t_tot.append(t.sum())
    pw, tw = np.concatenate(p_win or [[]]), np.concatenate(t_win or [[]])
    tce = total_count_error_pct(np.array(p_tot), np.array(t_tot))
    window_s = window_frames / fps
    m = mae(pw, tw)
    steps = {}
    if pred_events is not None:
        sc = step_scores([_within(e, len(t) / fps) for e, t in zip(pred_events, true_frames)],
                         [_within(e, len(t) / fps) for e, t in zip(true_events, true_frames)], tolerance_s)
        steps = {"step_precision": sc.precision, "step_recall": sc.recall, "step_f": sc.f_measure,
                 "timing_mae_ms": sc.timing_mae_ms, "timing_median_ms": sc.timing_median_ms, "timing_bias_ms": sc.timing_bias_ms}
    return FoldResult(
        fold=fold,
        window_s=window_s,
        n_runs=len(true_frames),
        n_windows=int(pw.size),
        mae=m,
        pcc=pcc(pw, tw),
        cmae=cmae(m, window_s),
        tce_median=float(np.nanmedian(tce)) if np.isfinite(tce).any() else math.nan,
        tce_mean=float(np.nanmean(tce)) if np.isfinite(tce).any() else math.nan,
        cadence_mae=cadence_mae(np.concatenate(p_cad or [[]]), np.concatenate(t_cad or [[]])),
        true_mean=float(tw.mean()) if tw.size else math.nan,
        pred_mean=float(pw.mean()) if pw.size else math.nan,
        tce_runs=[float(v) for v in tce],
        **steps,
    )


METRIC_COLUMNS = ("mae", "pcc", "cmae", "tce_median", "cadence_mae", "step_f")
METRIC_TITLES = {"mae": "MAE", "pcc": "PCC", "cmae": "cMAE", "tce_median": "total err % (median)", "cadence_mae": "cadence MAE (spm)",
                 "step_f": "step F (+-50 ms)"}
STEP_COLUMNS = ("step_precision", "step_recall", "timing_mae_ms", "timing_median_ms", "timing_bias_ms")  # in the summary


def summarize(results: Sequence[FoldResult]) -> dict[str, dict[str, float]]:
    """Mean and std (population, over folds) of each metric; NaN folds are skipped.

    ``tce_pooled`` is the median total-count error over the test runs of all folds together.
    """
    runs = np.array([v for r in results for v in r.tce_runs], np.float64)
    runs = runs[np.isfinite(runs)]
    out = {"tce_pooled": {"median": float(np.median(runs)) if runs.size else math.nan}}
    for name in METRIC_COLUMNS + ("tce_mean",) + STEP_COLUMNS:
        v = np.array([getattr(r, name) for r in results], np.float64)
        v = v[np.isfinite(v)]
        out[name] = {"mean": float(v.mean()) if v.size else math.nan, "std": float(v.std()) if v.size else math.nan}
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def results_table(results: Sequence[FoldResult], title: str = ""):
    """A rich Table: one row per fold, then mean ± std."""
    from rich.table import Table

    table = Table(title=title or None)
    table.add_column("fold", justify="right")
    table.add_column("runs", justify="right")
    table.add_column("windows", justify="right")
    for name in METRIC_COLUMNS:
        table.add_column(METRIC_TITLES[name], justify="right")
    for r in results:
        table.add_row(str(r.fold), str(r.n_runs), str(r.n_windows), *(_fmt(getattr(r, n), 1 if n in ("tce_median", "cadence_mae") else 3) for n in METRIC_COLUMNS))
    s = summarize(results)
    if len(results) > 1:
        table.caption = f"median total-count error over all {sum(r.n_runs for r in results)} test runs: {_fmt(s['tce_pooled']['median'], 1)} %"
    table.add_section()
    table.add_row(
        "mean ± std", str(sum(r.n_runs for r in results)), str(sum(r.n_windows for r in results)),
        *(f"{_fmt(s[n]['mean'], 1 if n in ('tce_median', 'cadence_mae') else 3)} ± {_fmt(s[n]['std'], 1 if n in ('tce_median', 'cadence_mae') else 3)}" for n in METRIC_COLUMNS),
    )
    return table


def results_json(results: Sequence[FoldResult], **meta) -> dict:
    """A JSON-ready dict: meta, per-fold results, mean/std summary (NaN -> null)."""
    return jsonable({**meta, "folds": [asdict(r) for r in results], "summary": summarize(results)})


def save_results(path: str | Path, results: Sequence[FoldResult], **meta) -> Path:
    return write_json(path, results_json(results, **meta))
