"""Predict step counts with a trained model and score them with :mod:`train.evaluate.metrics`.

A model gives step-onset logits; steps are the events :func:`edge.counter.count_events` finds in
them, exactly as ``edge-run`` counts. Two views of the same predictions:

- windows of a :class:`~train.fit.dataset.WindowDataset` -> predicted counts (N,) (validation in the
  training loop): each window's events on their own;
- whole runs -> the committed logit track of the streaming alignment (``edge.counter.Alignment``,
  centre hops), its events, and a per-frame event train at 100 fps (1 at each step's frame), which
  :func:`train.evaluate.metrics.evaluate_runs` windows exactly as it windows the truth and the
  baselines: the protocol for test folds (Table II).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, EVAL_WINDOW_S
from edge.counter import PAD_LOG_MEL, Alignment, CounterParams, count_events
from edge.frontend import FRAMES_PER_SECOND
from train.fit.dataset import WindowDataset
from train.data.windows import window_index, window_sums
from train.evaluate.metrics import FoldResult, evaluate_runs

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES.get(precision, torch.float32), enabled=precision in AUTOCAST_DTYPES)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 64) -> np.ndarray:
    """(N, 1, 64, T) log-mel windows -> (N, T // 4) float32 step-onset logits, in eval mode, batched."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(x), batch_size):
            with _autocast(device, precision):
                out.append(model(x[i : i + batch_size].to(device, non_blocking=True)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, x.shape[-1] // DENSITY_STRIDE), np.float32)


@torch.no_grad()
def predict_counts(
    model: nn.Module,
    ds: WindowDataset,
    indices: Sequence[int] | np.ndarray | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
    params: CounterParams | None = None,
) -> np.ndarray:
    """Predicted step counts (the events of each window's logits) of windows ``indices`` of ``ds`` -> (n,) float64."""
    idx = np.arange(len(ds)) if indices is None else np.asarray(indices, dtype=np.int64)
    counts = []
    for i in range(0, len(idx), batch_size):
        x = torch.stack([ds[int(j)][0] for j in idx[i : i + batch_size]])
        counts.extend(len(count_events(row, params)) for row in predict_logits(model, x, device, precision, batch_size))
    return np.asarray(counts, np.float64)


def eval_alignment(window_frames: int) -> Alignment:
    """The schedule runs are scored on: the window, a hop of about 5/6 of it, centre hops committed
    (the shipped 2.4-s student: hop 2.0 s, as ``edge-run`` runs it)."""
    hop = max(DENSITY_STRIDE, window_frames * 5 // 6 // DENSITY_STRIDE * DENSITY_STRIDE)
    return Alignment(window_frames, hop)


@torch.no_grad()
def predict_run_logits(
    model: nn.Module,
    logmel: np.ndarray,
    window_frames: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
) -> np.ndarray:
    """(64, T) log-mel of a whole run -> (T // 4,) committed logits (:func:`eval_alignment`'s schedule;
    a streaming model, one with ``streaming = True``, runs the whole run once, as ``edge-run`` streams it)."""
    n = logmel.shape[1]
    if getattr(model, "streaming", False):
        mel = np.ascontiguousarray(logmel[None, None, :, : n // DENSITY_STRIDE * DENSITY_STRIDE], np.float32)
        return predict_logits(model, torch.from_numpy(mel), device, precision, 1)[0]
    align = eval_alignment(window_frames)
    plan = align.plan(n)
    out = np.zeros(n // DENSITY_STRIDE, np.float32)
    mel = np.require(logmel, np.float32, ["C", "W"])
    x = np.full((len(plan), 1, mel.shape[0], window_frames), PAD_LOG_MEL, np.float32)
    for i, (start, _lo, _hi) in enumerate(plan):
        piece = mel[:, start : start + window_frames]
        x[i, 0, :, : piece.shape[1]] = piece
    logits = predict_logits(model, torch.from_numpy(x), device, precision, batch_size)
    for (start, lo, hi), row in zip(plan, logits):
        d0 = start // DENSITY_STRIDE
        out[d0 + lo : d0 + hi] = row[lo:hi]
    return out


def event_frames(events: np.ndarray, n_frames: int, fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Step times (s) -> (n_frames,) steps per front-end frame (1 at each step's frame)."""
    from train.data.features import step_frames  # the truth's own framing, so both fall in the same frames

    return step_frames(np.asarray(events, np.float64), n_frames, fps).astype(np.float64)


def predict_run_frames(
    model: nn.Module,
    logmel: np.ndarray,
    window_frames: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
    params: CounterParams | None = None,
) -> np.ndarray:
    """(64, T) log-mel of a whole run -> (T,) counted steps per front-end frame (100 fps)."""
    return event_frames(predict_run_events(model, logmel, window_frames, device, precision, batch_size, params), logmel.shape[1])


def predict_run_events(
    model: nn.Module,
    logmel: np.ndarray,
    window_frames: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
    params: CounterParams | None = None,
) -> np.ndarray:
    """(64, T) log-mel of a whole run -> the step times (s) the event counter finds in its committed logits."""
    return count_events(predict_run_logits(model, logmel, window_frames, device, precision, batch_size), params, DENSITY_FPS)


@dataclass
class RunPredictions:
    """Per-frame predictions and truth of a set of runs (what Table II and the plots are made of)."""

    run_ids: list[str]
    pred_frames: list[np.ndarray]
    true_frames: list[np.ndarray]
    window_frames: int
    pred_events: list[np.ndarray] = field(default_factory=list)  # step times (s) counted, per run
    true_events: list[np.ndarray] = field(default_factory=list)  # true step times (s), per run

    def window_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, true) counts of the paper's non-overlapping windows, all runs concatenated."""
        p, t = [], []
        for pf, tf in zip(self.pred_frames, self.true_frames):
            starts = window_index(len(tf), self.window_frames)
            p.append(window_sums(pf, starts, self.window_frames))
            t.append(window_sums(tf, starts, self.window_frames))
        return np.concatenate(p or [np.zeros(0)]), np.concatenate(t or [np.zeros(0)])


def predict_runs(
    model: nn.Module,
    recs: Sequence,
    root: str | Path,
    window_frames: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
) -> RunPredictions:
    """Per-frame predictions for labeled recordings ``recs`` (features from the cache)."""
    from train.data.features import recording_features, step_frames

    ids, preds, trues, events, true_events = [], [], [], [], []
    for rec in recs:
        mel, steps = recording_features(rec, root)
        if steps is None:
            continue
        ids.append(rec.run_id)
        events.append(predict_run_events(model, mel, window_frames, device, precision, batch_size))
        preds.append(event_frames(events[-1], mel.shape[1]))
        true_events.append(np.asarray(steps, np.float64))
        trues.append(step_frames(steps, mel.shape[1]).astype(np.float64))
    return RunPredictions(ids, preds, trues, window_frames, events, true_events)


def evaluate_model(
    model: nn.Module,
    root: str | Path,
    fold: int,
    split: str = "test",
    window_s: float = 5.0,
    n_folds: int = 5,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
) -> tuple[FoldResult, RunPredictions]:
    """Score ``model`` on one side (``train``/``val``/``test``) of fold ``fold`` of dataset ``root``."""
    from train.data.features import fold_recordings

    window_frames = round(window_s * FRAMES_PER_SECOND)
    recs = fold_recordings(root, fold, split, n_folds)
    runs = predict_runs(model, recs, root, window_frames, device, precision, batch_size)
    return evaluate_runs(runs.pred_frames, runs.true_frames, window_frames, FRAMES_PER_SECOND, fold=fold,
                         pred_events=runs.pred_events, true_events=runs.true_events), runs


def evaluate_fold_checkpoint(path: str | Path, root: str | Path, fold: int, split: str = "test", window_s: float = EVAL_WINDOW_S, device: str = "cpu") -> FoldResult:
    """Load a ``best.pt`` (any registry checkpoint) and score it on a split of a fold."""
    from train.models import load_checkpoint

    model, _meta = load_checkpoint(path, map_location=device)
    return evaluate_model(model, root, fold, split, window_s, device=device)[0]
