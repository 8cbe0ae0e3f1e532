"""Predict step counts with a trained model and score them with :mod:`train.evaluate.metrics`.

Two views of the same predictions:

- windows of a :class:`~train.fit.dataset.WindowDataset` -> predicted counts (N,) (validation in the
  training loop; the paper's per-window MAE / PCC);
- whole runs -> a per-frame prediction at 100 fps (each density frame's value spread evenly over
  its 4 front-end frames), which :func:`train.evaluate.metrics.evaluate_runs` windows exactly as it windows
  the truth and as it windows the baselines: the protocol for test folds (Table II).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from edge.contract import DENSITY_STRIDE, EVAL_WINDOW_S
from edge.frontend import FRAMES_PER_SECOND
from train.fit.dataset import WindowDataset
from train.data.windows import window_index, window_sums
from train.evaluate.metrics import FoldResult, evaluate_runs

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES.get(precision, torch.float32), enabled=precision in AUTOCAST_DTYPES)


@torch.no_grad()
def predict_density(model: nn.Module, x: torch.Tensor, device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 64) -> np.ndarray:
    """(N, 1, 64, T) log-mel windows -> (N, T // 4) float32 densities, in eval mode, batched."""
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
) -> np.ndarray:
    """Predicted step counts (sum of the density) of windows ``indices`` of ``ds`` -> (n,) float64."""
    idx = np.arange(len(ds)) if indices is None else np.asarray(indices, dtype=np.int64)
    counts = []
    for i in range(0, len(idx), batch_size):
        x = torch.stack([ds[int(j)][0] for j in idx[i : i + batch_size]])
        counts.append(predict_density(model, x, device, precision, batch_size).sum(axis=1, dtype=np.float64))
    return np.concatenate(counts) if counts else np.zeros(0, np.float64)


def run_windows(n_frames: int, window_frames: int, time_multiple: int = DENSITY_STRIDE) -> list[tuple[int, int, int]]:
    """Cover a run with model windows -> [(start, length, keep_from)] in front-end frames.

    Non-overlapping windows of ``window_frames`` (the paper's grid), then one window ending at the
    last whole density frame for the tail, of which only the frames after the grid are kept
    (``keep_from``). A run shorter than a window is covered by one shorter window (a multiple of
    ``time_multiple``). Frames past the last whole density frame are left uncovered.
    """
    end = n_frames - n_frames % DENSITY_STRIDE
    if end < window_frames:
        length = n_frames - n_frames % time_multiple
        return [(0, length, 0)] if length > 0 else []
    grid = list(range(0, end - window_frames + 1, window_frames))
    out = [(s, window_frames, 0) for s in grid]
    covered = grid[-1] + window_frames
    if covered < end:
        out.append((end - window_frames, window_frames, covered - (end - window_frames)))
    return out


@torch.no_grad()
def predict_run_frames(
    model: nn.Module,
    logmel: np.ndarray,
    window_frames: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    batch_size: int = 64,
) -> np.ndarray:
    """(64, T) log-mel of a whole run -> (T,) predicted steps per front-end frame (100 fps)."""
    n = logmel.shape[1]
    pieces = run_windows(n, window_frames, getattr(model, "time_multiple", DENSITY_STRIDE))
    pred = np.zeros(n, np.float64)
    mel = torch.from_numpy(np.require(logmel, np.float32, ["C", "W"]))  # a read-only memmap is copied
    for length in sorted({p[1] for p in pieces}):
        group = [p for p in pieces if p[1] == length]
        x = torch.stack([mel[:, s : s + length] for s, _, _ in group]).unsqueeze(1)  # (N, 1, 64, length)
        dens = predict_density(model, x, device, precision, batch_size)  # (N, length // 4)
        for (s, _, keep), d in zip(group, dens):
            per_frame = np.repeat(d.astype(np.float64) / DENSITY_STRIDE, DENSITY_STRIDE)  # 25 fps -> 100 fps, sum kept
            pred[s + keep : s + length] = per_frame[keep:]
    return pred


@dataclass
class RunPredictions:
    """Per-frame predictions and truth of a set of runs (what Table II and the plots are made of)."""

    run_ids: list[str]
    pred_frames: list[np.ndarray]
    true_frames: list[np.ndarray]
    window_frames: int

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

    ids, preds, trues = [], [], []
    for rec in recs:
        mel, steps = recording_features(rec, root)
        if steps is None:
            continue
        ids.append(rec.run_id)
        preds.append(predict_run_frames(model, mel, window_frames, device, precision, batch_size))
        trues.append(step_frames(steps, mel.shape[1]).astype(np.float64))
    return RunPredictions(ids, preds, trues, window_frames)


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
    return evaluate_runs(runs.pred_frames, runs.true_frames, window_frames, FRAMES_PER_SECOND, fold=fold), runs


def evaluate_fold_checkpoint(path: str | Path, root: str | Path, fold: int, split: str = "test", window_s: float = EVAL_WINDOW_S, device: str = "cpu") -> FoldResult:
    """Load a ``best.pt`` (any registry checkpoint) and score it on a split of a fold."""
    from train.models import load_checkpoint

    model, _meta = load_checkpoint(path, map_location=device)
    return evaluate_model(model, root, fold, split, window_s, device=device)[0]
