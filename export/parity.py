"""Parity of an artifact's step-onset logits with its PyTorch reference, and the gate the export applies.

Gates:

- fp32 artifacts: ``max |y - ref| <= 1e-4 * max |ref|`` (logits) over every parity window;
- int8 artifacts on a CPU runtime: mean over windows of ``|events(y) - events(ref)|`` (the
  window's step count, as :func:`edge.counter.count_events` counts it) ``<= 0.10`` steps;
- int8 on the NPU (Qualcomm HTP, simulated): the same count difference ``<= 0.15`` steps.

The largest difference of step probabilities (``sigmoid``) is reported beside the logits'.

The 5-s count difference (the paper's window) is reported too, where the parity windows are
consecutive windows of whole recordings.

A streaming artifact is compared on whole runs streamed packet by packet (``streamed=True``): its
logits are cut into consecutive windows of ``STREAM_WINDOW_FRAMES`` output frames (the shipped
window, 2.4 s, :func:`stream_windows`), and a window's count is the number of the run's events (counted
once on the whole track, as the stream counts them) that fall in it; the gates are the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, WINDOW_FRAMES, EVAL_WINDOW_DENSITY_FRAMES as DENSITY_FRAMES_5S  # 5 s of output frames
from edge.counter import CounterParams, count_events, sigmoid

FP32_REL_TOL = 1e-4
INT8_COUNT_TOL = 0.10
NPU_COUNT_TOL = 0.15
STREAM_WINDOW_FRAMES = WINDOW_FRAMES // DENSITY_STRIDE  # output frames per window of a streamed comparison (the shipped 2.4 s)


def tolerance(precision: str, backend: str) -> tuple[str, float]:
    """(metric, limit) of the gate for an artifact."""
    if precision == "fp32":
        return "rel_max_abs", FP32_REL_TOL
    if backend.startswith("qnn"):
        return "count_diff_mean", NPU_COUNT_TOL
    return "count_diff_mean", INT8_COUNT_TOL


@dataclass
class Parity:
    reference: str  # what the artifact was compared with
    windows: int
    max_abs: float  # logits, per frame
    mean_abs: float
    rel_max_abs: float  # max_abs / max |ref|
    prob_max_abs: float  # max |sigmoid(y) - sigmoid(ref)|
    count_diff_mean: float  # |window count - reference window count|, mean over windows (steps)
    count_diff_max: float
    count_5s_diff_mean: float | None  # the same on 5-s chunks of whole recordings, when known
    metric: str
    limit: float
    passed: bool

    def to_dict(self) -> dict:
        return {k: (round(v, 8) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def summary(self) -> str:
        value = getattr(self, self.metric)
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{verdict}: {self.metric} {value:.3g} (limit {self.limit:g}); logit max|d| {self.max_abs:.3g}, "
            f"mean|d| {self.mean_abs:.3g}, probability max|d| {self.prob_max_abs:.3g}; window count diff mean {self.count_diff_mean:.4f} max {self.count_diff_max:.4f}"
            + (f"; 5-s count diff mean {self.count_5s_diff_mean:.4f}" if self.count_5s_diff_mean is not None else "")
            + f" ({self.windows} windows vs {self.reference})"
        )


def window_counts(logits: np.ndarray, counter: CounterParams | None = None) -> np.ndarray:
    """Step events of each window of ``logits`` (N, F), counted on its own -> (N,)."""
    return np.array([len(count_events(row, counter)) for row in logits], np.float64)


def stream_windows(logits: np.ndarray, runs: np.ndarray, frames: int = STREAM_WINDOW_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Streamed packets' logits (N, P // 4) of consecutive packets of whole runs -> consecutive
    windows ``(M, frames)`` of each run and the run of each window ``(M,)``; a run's tail shorter
    than ``frames`` is left out."""
    rows, row_runs = [], []
    for r in dict.fromkeys(runs.tolist()):  # runs in order of appearance
        track = logits[runs == r].reshape(-1)
        n = len(track) // frames
        rows.append(track[: n * frames].reshape(n, frames))
        row_runs.append(np.full(n, r, dtype=np.asarray(runs).dtype))
    return np.concatenate(rows), np.concatenate(row_runs)


def chunk_counts(logits: np.ndarray, runs: np.ndarray, frames: int = DENSITY_FRAMES_5S,
                 counter: CounterParams | None = None) -> np.ndarray:
    """Step events in consecutive ``frames``-long chunks of each run's concatenated logits.

    ``logits`` (N, F) holds consecutive non-overlapping windows; ``runs`` (N,) says which
    recording each belongs to (windows of a run adjacent and in order). The events of the whole
    track are counted once, then binned by chunk; partial chunks are dropped.
    """
    counts = []
    for r in dict.fromkeys(runs.tolist()):  # runs in order of appearance
        track = logits[runs == r].reshape(-1)
        n = len(track) // frames
        if n == 0:
            continue
        chunk = np.floor(count_events(track, counter) * DENSITY_FPS / frames).astype(np.int64)
        counts.append(np.bincount(chunk[chunk < n], minlength=n).astype(np.float64))
    return np.concatenate(counts) if counts else np.zeros(0)


def compare(
    out: np.ndarray,
    ref: np.ndarray,
    precision: str,
    backend: str,
    reference: str = "pytorch",
    runs: np.ndarray | None = None,
    counter: CounterParams | None = None,
    streamed: bool = False,
) -> Parity:
    """Compare logits ``out`` and ``ref`` (N, F) and apply the gate of ``precision``/``backend``.

    ``counter``: the event counter the artifact ships with (None: the defaults). ``streamed``: the
    rows are consecutive windows of whole streamed runs (:func:`stream_windows`; ``runs`` needed),
    each counted as its share of the run's events.
    """
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"artifact output {out.shape} does not match the reference {ref.shape}")
    diff = np.abs(out - ref)
    if streamed:
        if runs is None:
            raise ValueError("a streamed comparison needs the run of each window")
        frames = out.shape[1]
        count_diff = np.abs(chunk_counts(out, runs, frames, counter) - chunk_counts(ref, runs, frames, counter))
    else:
        count_diff = np.abs(window_counts(out, counter) - window_counts(ref, counter))
    count_5s = None
    if runs is not None:
        c_out, c_ref = chunk_counts(out, runs, counter=counter), chunk_counts(ref, runs, counter=counter)
        count_5s = float(np.abs(c_out - c_ref).mean()) if len(c_ref) else None
    metric, limit = tolerance(precision, backend)
    values = {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "rel_max_abs": float(diff.max() / max(np.abs(ref).max(), 1e-12)),
        "prob_max_abs": float(np.abs(sigmoid(out) - sigmoid(ref)).max()),
        "count_diff_mean": float(count_diff.mean()),
        "count_diff_max": float(count_diff.max()),
    }
    return Parity(
        reference=reference,
        windows=len(out),
        count_5s_diff_mean=count_5s,
        metric=metric,
        limit=limit,
        passed=bool(values[metric] <= limit),
        **values,
    )
