"""The seed paper's metrics, and footfall's run-level ones, over per-frame step predictions.

Paper (Wagner et al.): per-window MAE and Pearson PCC on non-overlapping windows, a naive
baseline predicting the mean train-window count, and the calibrated MAE for comparing window
lengths, cMAE = MAE x 20 / window_s (5-s MAE x 4, 10-s MAE x 2; the error per 20 s).
footfall adds the total-count error of each run (%) and the cadence error in steps/min on 10-s
windows, the numbers a runner sees.

Every counter is evaluated the same way: it gives, for each test run, a per-frame predicted
step count (a density; a step-time detector gives ``step_frames`` of its detections), and
:func:`evaluate_runs` windows prediction and truth identically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.contract import FRAMES_PER_SECOND
from edge.util import jsonable, write_json
from train.data.windows import window_index, window_sums

REF_WINDOW_S = 20  # cMAE reference: the longest window of the paper
CADENCE_WINDOW_S = 10


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


def evaluate_runs(
    pred_frames: Sequence[np.ndarray],
    true_frames: Sequence[np.ndarray],
    window_frames: int,
    fps: float = FRAMES_PER_SECOND,
    fold: int = -1,
) -> FoldResult:
    """Score per-frame predictions against per-frame truth, run by run.

    ``pred_frames[i]`` and ``true_frames[i]`` are (T_i,) per-frame step counts of run i at
    ``fps`` frames/s (predictions may be fractional). Windows are the paper's: non-overlapping,
    whole ones only. Totals are over whole runs; cadence uses 10-s windows.
    """
    if len(pred_frames) != len(true_frames):
        raise ValueError(f"{len(pred_frames)} predictions for {len(true_frames)} runs")
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
    )


METRIC_COLUMNS = ("mae", "pcc", "cmae", "tce_median", "cadence_mae")
METRIC_TITLES = {"mae": "MAE", "pcc": "PCC", "cmae": "cMAE", "tce_median": "total err % (median)", "cadence_mae": "cadence MAE (spm)"}


def summarize(results: Sequence[FoldResult]) -> dict[str, dict[str, float]]:
    """Mean and std (population, over folds) of each metric; NaN folds are skipped.

    ``tce_pooled`` is the median total-count error over the test runs of all folds together.
    """
    runs = np.array([v for r in results for v in r.tce_runs], np.float64)
    runs = runs[np.isfinite(runs)]
    out = {"tce_pooled": {"median": float(np.median(runs)) if runs.size else math.nan}}
    for name in METRIC_COLUMNS + ("tce_mean",):
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
