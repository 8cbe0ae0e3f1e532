"""Accuracy on the test runs of a fold, and agreement with the reference, for every subject.

Each subject counts each test run the way it is deployed, as step events (times):

- students (PyTorch and every artifact): ``edge.stream.count_offline`` -- the streaming alignment
  (overlapping windows of the card's length every hop, centre frames committed) and the event
  counter with the card's parameters, which ``StreamCounter`` reproduces exactly, so these *are*
  the on-device steps (``CountResult.events``);
- the reference teacher: ``train.evaluate.predict.predict_run_logits`` on its own window (5 s),
  batched (on CUDA when present), then ``edge.counter.count_events``: exactly how the trainer
  scores it (``predict_run_frames``).

The events become a per-frame train at 100 frames/s (``train.evaluate.predict.event_frames``: 1
at each step's frame), which :func:`train.evaluate.metrics.evaluate_runs` windows like the truth:
5-s MAE and PCC over the paper's non-overlapping windows, median total-count error over runs (%);
and are matched to the true steps for the per-step precision, recall and F-measure (+-50 ms)
and the timing error. Agreement with the reference: per 5-s window, subject count minus
reference count (mean |d|, mean d, max |d|). The relative accuracy cost is (MAE - MAE_ref) / MAE_ref.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH

WINDOW_5S = 5 * FRAMES_PER_SECOND  # the paper's 5-s windows, front-end frames


@dataclass
class TestRun:
    run_id: str
    audio: Path
    truth: np.ndarray  # (n_frames,) steps per front-end frame (100 fps)
    steps: np.ndarray  # (n,) the true step times (s)
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
        steps = load_steps(rec.steps)
        runs.append(TestRun(rec.run_id, rec.audio, step_frames(steps, n_frames).astype(np.float64), steps, rec))
    return TestSet(Path(root), fold, runs)


def stream_events(backend, card, audio: np.ndarray) -> np.ndarray:
    """Step times (s) of a deployed model: the streaming (offline-equal) count of ``audio``, with
    the card's counter parameters."""
    from edge.stream import count_offline

    return np.asarray(count_offline(backend, card, audio, keep=True).events, np.float64)


def reference_events(model, run: TestRun, window_frames: int, device: str = "cpu") -> np.ndarray:
    """Step times (s) of the reference teacher on its own window schedule (train.evaluate.predict)."""
    from edge.audio import load_audio
    from edge.stream import offline_log_mel
    from train.evaluate.predict import predict_run_events

    return predict_run_events(model, offline_log_mel(load_audio(run.audio)), window_frames, device=device)


def frames_of(events: np.ndarray, run: TestRun) -> np.ndarray:
    """Step times -> (n_frames,) steps per 100-fps frame of ``run`` (``train.evaluate.predict.event_frames``)."""
    from train.evaluate.predict import event_frames

    return event_frames(events, run.n_frames)


@dataclass
class Accuracy:
    key: str
    mae: float
    pcc: float
    tce_median: float  # %
    cadence_mae: float  # steps/min
    n_runs: int
    n_windows: int
    step_precision: float = math.nan  # per step, +-50 ms (train.evaluate.metrics.step_scores)
    step_recall: float = math.nan
    step_f: float = math.nan
    timing_median_ms: float = math.nan  # median |predicted - true| of the matched steps
    timing_bias_ms: float = math.nan  # median (predicted - true)
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


def score(key: str, events: list[np.ndarray], runs: list[TestRun], reference: list[np.ndarray] | None = None,
          reference_mae: float | None = None) -> Accuracy:
    """Metrics of the step times ``events`` of each of ``runs`` (and agreement with the reference's
    step times ``reference``)."""
    from train.evaluate.metrics import evaluate_runs

    preds = [frames_of(e, r) for e, r in zip(events, runs)]
    res = evaluate_runs(preds, [r.truth for r in runs], window_frames=WINDOW_5S, fps=FRAMES_PER_SECOND,
                        pred_events=events, true_events=[r.steps for r in runs])
    acc = Accuracy(key, res.mae, res.pcc, res.tce_median, res.cadence_mae, res.n_runs, res.n_windows,
                   step_precision=res.step_precision, step_recall=res.step_recall, step_f=res.step_f,
                   timing_median_ms=res.timing_median_ms, timing_bias_ms=res.timing_bias_ms)
    if reference is not None:
        ref = [frames_of(e, r) for e, r in zip(reference, runs)]
        d = _windows(preds) - _windows(ref)
        totals = np.array([p.sum() - r.sum() for p, r in zip(preds, ref)])
        acc.count_diff = {
            "mean_abs": float(np.abs(d).mean()) if d.size else math.nan,
            "mean": float(d.mean()) if d.size else math.nan,
            "max_abs": float(np.abs(d).max()) if d.size else math.nan,
            "total_abs_mean": float(np.abs(totals).mean()) if totals.size else math.nan,
        }
    if reference_mae is not None and reference_mae > 0 and math.isfinite(res.mae):
        acc.rel_mae_cost_pct = 100.0 * (res.mae - reference_mae) / reference_mae
    return acc
