"""Accuracy on the test runs of a fold, and agreement with the reference, for every subject.

Each subject counts each test run the way it is deployed:

- students (PyTorch and every artifact): ``edge.stream.count_offline`` -- the streaming alignment
  (overlapping windows of the card's length every hop, centre frames committed) that
  ``StreamCounter`` reproduces exactly, so this *is* the on-device count;
- the reference teacher: ``train.evaluate.predict.predict_run_frames`` -- its own window (5 s), the
  paper's non-overlapping grid plus a tail window, batched (on CUDA when present): exactly how
  the trainer scores it.

Both give a per-frame step prediction at 100 frames/s (a 25-fps density frame spread evenly over
its 4 front-end frames), which :func:`train.evaluate.metrics.evaluate_runs` windows like the truth: 5-s
MAE and PCC over the paper's non-overlapping windows, median total-count error over runs (%).
Agreement with the reference: per 5-s window, subject count minus reference count (mean |d|,
mean d, max |d|). The relative accuracy cost is (MAE - MAE_ref) / MAE_ref.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.counter import DENSITY_STRIDE
from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH

WINDOW_5S = 5 * FRAMES_PER_SECOND  # the paper's 5-s windows, front-end frames


@dataclass
class TestRun:
    run_id: str
    audio: Path
    truth: np.ndarray  # (n_frames,) steps per front-end frame (100 fps)
    recording: object = field(default=None, repr=False)  # train.data.recordings.Recording

    @property
    def n_frames(self) -> int:
        return len(self.truth)

    @property
    def seconds(self) -> float:
        return self.n_frames / FRAMES_PER_SECOND


@dataclass
class TestSet:
    root: Path
    fold: int
    runs: list[TestRun]

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    def describe(self) -> str:
        return f"{self.root} fold {self.fold} test split: {len(self.runs)} labeled runs, {self.seconds / 60:.1f} min"


def load_test_set(root: str | Path, fold: int, max_runs: int | None = None) -> TestSet:
    """The labeled runs of fold ``fold``'s test split (the first ``max_runs`` of them)."""
    from edge.audio import load_audio
    from train.data.features import fold_recordings, step_frames
    from train.data.recordings import load_steps

    from bench.subjects import BenchError

    try:
        recs = fold_recordings(root, fold, "test")
    except Exception as e:
        raise BenchError(f"{root}: cannot read the dataset ({str(e).splitlines()[0]})") from e
    if not recs:
        raise BenchError(f"{root}: fold {fold} has no labeled test runs")
    runs = []
    for rec in recs[: max_runs or None]:
        n_frames = len(load_audio(rec.audio)) // HOP_LENGTH  # exactly the frames the front end makes
        runs.append(TestRun(rec.run_id, rec.audio, step_frames(load_steps(rec.steps), n_frames).astype(np.float64), rec))
    return TestSet(Path(root), fold, runs)


def density_to_frames(density: np.ndarray, n_frames: int) -> np.ndarray:
    """(D,) density at 25 fps -> (n_frames,) steps per 100-fps frame (sum kept; frames past 4 D get 0)."""
    per = np.repeat(np.asarray(density, np.float64) / DENSITY_STRIDE, DENSITY_STRIDE)[:n_frames]
    return np.pad(per, (0, n_frames - len(per)))


def stream_frames(backend, card, audio: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame prediction of a deployed model: the streaming (offline-equal) count of ``audio``."""
    from edge.stream import count_offline

    result = count_offline(backend, card, audio, keep=True)
    return density_to_frames(result.counted, n_frames)  # as counted: with the card's rate calibration, if any


def reference_frames(model, run: TestRun, window_frames: int, device: str = "cpu") -> np.ndarray:
    """Per-frame prediction of the reference teacher on its own window grid (train.evaluate.predict)."""
    from edge.audio import load_audio
    from edge.stream import offline_log_mel
    from train.evaluate.predict import predict_run_frames

    mel = offline_log_mel(load_audio(run.audio))
    pred = predict_run_frames(model, mel, window_frames, device=device)
    return pred[: run.n_frames] if len(pred) >= run.n_frames else np.pad(pred, (0, run.n_frames - len(pred)))


@dataclass
class Accuracy:
    key: str
    mae: float
    pcc: float
    tce_median: float  # %
    cadence_mae: float  # steps/min
    n_runs: int
    n_windows: int
    rel_mae_cost_pct: float | None = None  # vs the reference
    rel_mae_cost_vs_student_pct: float | None = None  # vs the fp32 PyTorch student (the cost of export + int8)
    count_diff: dict = field(default_factory=dict)  # per 5-s window vs the reference

    def to_dict(self) -> dict:
        clean = lambda v: None if v is None or (isinstance(v, float) and not math.isfinite(v)) else (round(v, 5) if isinstance(v, float) else v)  # noqa: E731
        return {k: ({kk: clean(vv) for kk, vv in v.items()} if isinstance(v, dict) else clean(v)) for k, v in self.__dict__.items()}


def _windows(frames: list[np.ndarray]) -> np.ndarray:
    from train.data.windows import window_index, window_sums

    out = [window_sums(f, window_index(len(f), WINDOW_5S), WINDOW_5S) for f in frames]
    return np.concatenate(out) if out else np.zeros(0)


def score(key: str, preds: list[np.ndarray], truths: list[np.ndarray], reference: list[np.ndarray] | None = None,
          reference_mae: float | None = None) -> Accuracy:
    """Metrics of per-frame predictions ``preds`` against ``truths`` (and the reference's predictions)."""
    from train.evaluate.metrics import evaluate_runs

    res = evaluate_runs(preds, truths, window_frames=WINDOW_5S, fps=FRAMES_PER_SECOND)
    acc = Accuracy(key, res.mae, res.pcc, res.tce_median, res.cadence_mae, res.n_runs, res.n_windows)
    if reference is not None:
        d = _windows(preds) - _windows(reference)
        totals = np.array([p.sum() - r.sum() for p, r in zip(preds, reference)])
        acc.count_diff = {
            "mean_abs": float(np.abs(d).mean()) if d.size else math.nan,
            "mean": float(d.mean()) if d.size else math.nan,
            "max_abs": float(np.abs(d).max()) if d.size else math.nan,
            "total_abs_mean": float(np.abs(totals).mean()) if totals.size else math.nan,
        }
    if reference_mae is not None and reference_mae > 0 and math.isfinite(res.mae):
        acc.rel_mae_cost_pct = 100.0 * (res.mae - reference_mae) / reference_mae
    return acc
