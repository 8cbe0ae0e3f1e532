"""Torch view of a fold's windows: log-mel (1, 64, T) and its target.

The log-mels come from :mod:`train.data.features` (computed once per recording, cached on disk,
held in memory), so an item is a slice and a copy, with no audio decoding or FFT in the loop.

Targets (the model head emits a step density at 25 frames/s, ``T // 4`` frames per window):

- ``"count"``: the weak label of the seed paper, the window's step count, a scalar;
- ``"density"``: per-density-frame step counts, ``(T // 4,)``; their sum is the count;
- an explicit ``(N,)`` or ``(N, T // 4)`` array (e.g. a teacher's pseudo-strong labels for PSL).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edge.contract import DENSITY_STRIDE
from train.data.features import WindowSet, fold_windows


class WindowDataset(Dataset):
    """``ds[i] -> (x (1, 64, W) float32, target)``; target () for counts, (W // 4,) for step frames."""

    def __init__(self, windows: WindowSet, target: str | np.ndarray = "count"):
        self.windows = windows
        w = windows.window_frames
        if isinstance(target, str):
            if target == "count":
                if np.isnan(windows.counts).any():
                    raise ValueError("count targets need labeled runs; this window set has unlabeled ones")
                targets = windows.counts.astype(np.float32)
            elif target == "frames":
                if w % DENSITY_STRIDE or windows.hop_frames % DENSITY_STRIDE:
                    raise ValueError(f"step-frame targets need window and hop in multiples of {DENSITY_STRIDE} frames, got {w} and {windows.hop_frames}")
                targets = np.stack([windows.window_frame_steps(i).reshape(-1, DENSITY_STRIDE).sum(axis=1) for i in range(len(windows))]) if len(windows) else np.zeros((0, w // DENSITY_STRIDE), np.float32)
            else:
                raise ValueError(f"target {target!r}; expected 'frames', 'count' or an array")
        else:
            targets = np.asarray(target, dtype=np.float32)
            if targets.shape not in ((len(windows),), (len(windows), w // DENSITY_STRIDE)):
                raise ValueError(f"targets of shape {targets.shape} for {len(windows)} windows of {w} frames; expected ({len(windows)},) or ({len(windows)}, {w // DENSITY_STRIDE})")
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        # zero-copy torch views of the per-recording log-mels; an item slices one of them
        self._mels = [torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)) for m in windows.logmels]
        self._index = windows.index
        self.window_frames = w

    @classmethod
    def from_fold(cls, root: str | Path, k: int, split: str, window_frames: int, hop_frames: int | None = None, target: str = "count", n_folds: int = 5) -> "WindowDataset":
        return cls(fold_windows(root, k, window_frames, hop_frames, split=split, n_folds=n_folds), target)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, s = self._index[i]
        return self._mels[r][:, s : s + self.window_frames].unsqueeze(0), self.targets[i]

    @property
    def counts(self) -> np.ndarray:
        """(N,) true window counts (from the step annotations, whatever the target)."""
        return self.windows.counts
