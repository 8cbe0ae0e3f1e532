"""Parity of an artifact's density with its PyTorch reference, and the gate the export applies.

Gates:

- fp32 artifacts: ``max |y - ref| <= 1e-4 * max |ref|`` over every parity window;
- int8 artifacts on a CPU runtime: mean over windows of ``|sum(y) - sum(ref)|`` (the window's
  step count) ``<= 0.10`` steps;
- int8 on the NPU (Qualcomm HTP, simulated): the same count difference ``<= 0.15`` steps.

The 5-s count difference (the paper's window) is reported too, where the parity windows are
consecutive windows of whole recordings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edge.contract import EVAL_WINDOW_DENSITY_FRAMES as DENSITY_FRAMES_5S  # 5 s of density frames

FP32_REL_TOL = 1e-4
INT8_COUNT_TOL = 0.10
NPU_COUNT_TOL = 0.15


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
    max_abs: float  # density, per frame
    mean_abs: float
    rel_max_abs: float  # max_abs / max |ref|
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
            f"{verdict}: {self.metric} {value:.3g} (limit {self.limit:g}); density max|d| {self.max_abs:.3g}, "
            f"mean|d| {self.mean_abs:.3g}; window count diff mean {self.count_diff_mean:.4f} max {self.count_diff_max:.4f}"
            + (f"; 5-s count diff mean {self.count_5s_diff_mean:.4f}" if self.count_5s_diff_mean is not None else "")
            + f" ({self.windows} windows vs {self.reference})"
        )


def chunk_counts(density: np.ndarray, runs: np.ndarray, frames: int = DENSITY_FRAMES_5S) -> np.ndarray:
    """Counts of consecutive ``frames``-long chunks of each run's concatenated density.

    ``density`` (N, F) holds consecutive non-overlapping windows; ``runs`` (N,) says which
    recording each belongs to (windows of a run adjacent and in order). Partial chunks are dropped.
    """
    counts = []
    for r in dict.fromkeys(runs.tolist()):  # runs in order of appearance
        track = density[runs == r].reshape(-1)
        n = len(track) // frames
        counts.append(track[: n * frames].reshape(n, frames).sum(axis=1))
    return np.concatenate(counts) if counts else np.zeros(0)


def compare(
    out: np.ndarray,
    ref: np.ndarray,
    precision: str,
    backend: str,
    reference: str = "pytorch",
    runs: np.ndarray | None = None,
) -> Parity:
    """Compare densities ``out`` and ``ref`` (N, F) and apply the gate of ``precision``/``backend``."""
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"artifact output {out.shape} does not match the reference {ref.shape}")
    diff = np.abs(out - ref)
    count_diff = np.abs(out.sum(axis=1) - ref.sum(axis=1))
    count_5s = None
    if runs is not None:
        c_out, c_ref = chunk_counts(out, runs), chunk_counts(ref, runs)
        count_5s = float(np.abs(c_out - c_ref).mean()) if len(c_ref) else None
    metric, limit = tolerance(precision, backend)
    values = {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "rel_max_abs": float(diff.max() / max(np.abs(ref).max(), 1e-12)),
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
