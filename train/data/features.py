"""Log-mel features per recording, cached on disk, and fold-level window sets for training.

The log-mel of a whole recording is ``edge.frontend.log_mel(load_audio(path))``: (64, T)
float32 at 100 fps, T = n_samples // 160. It is computed once and cached as
``root/.cache/logmel/<run_id>.<key>.npy``, where ``key`` hashes the audio's path, size and
mtime and the front-end parameters: editing the audio or the front end invalidates the entry.
Writes are atomic (a unique temporary file, then ``os.replace``), so concurrent processes
(DDP ranks, parallel evaluations) may share a cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.audio import load_audio
from edge.contract import EVAL_WINDOW_FRAMES, LABEL_SCALE
from edge.util import atomic_open
from edge.frontend import FRAMES_PER_SECOND, N_MELS, frontend_params, log_mel
from train.data.folds import N_FOLDS, split as split_folds
from train.data.recordings import Recording, labeled, load_dataset, load_steps
from train.data.windows import frame_of, window_index, window_sums

CACHE_DIR = ".cache/logmel"
SPLITS = ("train", "val", "test", "all")


def step_frames(steps: np.ndarray, n_frames: int, fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Per-frame step counts (n_frames,) float32: a step at time t lands in frame floor(t * fps).

    Steps at or past frame ``n_frames`` (the incomplete last hop of the audio) are dropped.
    """
    frames = frame_of(steps, fps)
    frames = frames[(frames >= 0) & (frames < n_frames)]
    return (np.bincount(frames, minlength=n_frames) * LABEL_SCALE).astype(np.float32)


def cache_key(audio: Path) -> str:
    st = Path(audio).stat()
    blob = json.dumps(
        {"audio": str(Path(audio).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "frontend": frontend_params()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:80]


def cache_path(rec: Recording, root: str | Path) -> Path:
    return Path(root) / CACHE_DIR / f"{_safe_name(rec.run_id)}.{cache_key(rec.audio)}.npy"


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def recording_logmel(rec: Recording, root: str | Path, mmap: bool = False) -> np.ndarray:
    """(64, T) float32 log-mel of the whole recording, from the cache or computed and cached.

    ``mmap=True`` returns a read-only memory map (cheap for large datasets).
    Raises ``edge.audio.AudioError`` for audio that cannot be decoded.
    """
    path = cache_path(rec, root)
    if path.is_file():
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError):  # a truncated or foreign file: recompute it
            path.unlink(missing_ok=True)
    mel = log_mel(load_audio(rec.audio))
    assert mel.shape[0] == N_MELS
    _atomic_save(path, mel)
    for stale in path.parent.glob(f"{_safe_name(rec.run_id)}.*.npy"):  # older keys of this run
        if stale != path and re.fullmatch(r"[0-9a-f]{16}", stale.name.split(".")[1]):
            stale.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r") if mmap else mel


def recording_features(rec: Recording, root: str | Path, mmap: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(log-mel (64, T) float32, step times (n,) float64 or None for an unlabeled run)."""
    mel = recording_logmel(rec, root, mmap=mmap)
    steps = load_steps(rec.steps) if rec.steps is not None else None
    return mel, steps


@dataclass
class WindowSet:
    """Windows of a set of recordings with their step counts, ready for a data loader.

    ``index[i] = (r, start)``: window ``i`` is ``logmels[r][:, start:start + window_frames]``.
    ``counts[i]`` is its step count (approach 1 of the paper); ``frame_steps[r]`` holds the
    per-frame step counts of recording ``r`` (100 fps), for finer targets (PSL, density losses).

    Typical torch use::

        ws = fold_windows(root, k=0, window_frames=500, hop_frames=250, split="train")
        x, y = ws.batch(np.arange(32))          # (32, 64, 500) float32, (32,) float32
    """

    recs: list[Recording]
    logmels: list[np.ndarray]  # (64, T_r) float32 each
    frame_steps: list[np.ndarray | None]  # (T_r,) float32 each; None for unlabeled runs
    index: np.ndarray  # (N, 2) int64: recording position, start frame
    counts: np.ndarray  # (N,) float32; NaN for windows of unlabeled runs
    window_frames: int
    hop_frames: int
    fps: int = FRAMES_PER_SECOND
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    def window(self, i: int) -> np.ndarray:
        """(64, window_frames) float32 log-mel of window ``i`` (a view when possible)."""
        r, s = self.index[i]
        return self.logmels[r][:, s : s + self.window_frames]

    def batch(self, idx: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``idx`` -> (x (B, 64, W) float32, counts (B,) float32)."""
        idx = np.asarray(idx, dtype=np.int64)
        x = np.stack([np.asarray(self.window(int(i)), dtype=np.float32) for i in idx])
        return x, self.counts[idx]

    def window_frame_steps(self, i: int) -> np.ndarray:
        """(window_frames,) per-frame step counts of window ``i`` (for density targets)."""
        r, s = self.index[i]
        fs = self.frame_steps[r]
        if fs is None:
            raise ValueError(f"window {i} belongs to unlabeled run {self.recs[r].run_id!r}")
        return fs[s : s + self.window_frames]


def build_windows(
    recs: Sequence[Recording],
    root: str | Path,
    window_frames: int = EVAL_WINDOW_FRAMES,
    hop_frames: int | None = None,
    mmap: bool = False,
) -> WindowSet:
    """Window every recording of ``recs`` (labeled or not); see :class:`WindowSet`."""
    hop = window_frames if hop_frames is None else hop_frames
    logmels, frame_steps, index, counts = [], [], [], []
    for r, rec in enumerate(recs):
        mel, steps = recording_features(rec, root, mmap=mmap)
        n = mel.shape[1]
        fs = step_frames(steps, n) if steps is not None else None
        starts = window_index(n, window_frames, hop)
        logmels.append(mel)
        frame_steps.append(fs)
        index.append(np.stack([np.full(len(starts), r, dtype=np.int64), starts], axis=1))
        counts.append(window_sums(fs, starts, window_frames).astype(np.float32) if fs is not None else np.full(len(starts), np.nan, np.float32))
    return WindowSet(
        recs=list(recs),
        logmels=logmels,
        frame_steps=frame_steps,
        index=np.concatenate(index) if index else np.zeros((0, 2), np.int64),
        counts=np.concatenate(counts) if counts else np.zeros(0, np.float32),
        window_frames=window_frames,
        hop_frames=hop,
    )


def concat_windows(sets: Sequence[WindowSet]) -> WindowSet:
    """One window set of several (same window and hop): recordings appended, indices shifted."""
    if not sets:
        raise ValueError("no window sets to join")
    w, hop = sets[0].window_frames, sets[0].hop_frames
    if any(s.window_frames != w or s.hop_frames != hop for s in sets):
        raise ValueError("window sets of different window or hop lengths cannot be joined")
    index, offset = [], 0
    for s in sets:
        index.append(s.index + np.array([offset, 0], np.int64))
        offset += len(s.recs)
    return WindowSet(
        recs=[r for s in sets for r in s.recs],
        logmels=[m for s in sets for m in s.logmels],
        frame_steps=[f for s in sets for f in s.frame_steps],
        index=np.concatenate(index),
        counts=np.concatenate([s.counts for s in sets]),
        window_frames=w,
        hop_frames=hop,
        meta=dict(sets[0].meta, joined=[s.meta for s in sets[1:]]),
    )


def extra_recordings(root: str | Path, main_runners: set[str]) -> list[Recording]:
    """Every run of dataset ``root``, extra training data beside a main dataset whose runner ids
    are ``main_runners``. Raises ValueError when a runner runs in both: a fold's test runners
    must stay unseen."""
    recs = load_dataset(root)
    shared = sorted({r.runner_id for r in recs} & main_runners)
    if shared:
        raise ValueError(f"extra training data {root}: runner(s) {', '.join(shared[:3])}{' ...' if len(shared) > 3 else ''} also in the main dataset; use runners of another population (synth --seed)")
    return recs


def extra_windows(roots: Sequence[str | Path], exclude_runners: set[str], window_frames: int, hop_frames: int | None = None) -> list[WindowSet]:
    """Windows of every labeled run of the datasets ``roots`` (extra training data for every fold;
    see :func:`extra_recordings`)."""
    out = []
    for root in roots:
        recs = labeled(extra_recordings(root, exclude_runners))
        if not recs:
            raise ValueError(f"extra training data {root}: no labeled runs")
        ws = build_windows(recs, root, window_frames, hop_frames)
        ws.meta = {"root": str(Path(root).resolve()), "split": "extra"}
        out.append(ws)
    return out


def fold_recordings(root: str | Path, k: int, split: str = "train", n_folds: int = N_FOLDS, only_labeled: bool = True) -> list[Recording]:
    """The recordings of one side of fold ``k`` ("train", "val", "test" or "all")."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}; expected one of {', '.join(SPLITS)}")
    recs = load_dataset(root, n_folds=n_folds)
    if split != "all":
        train, val, test = split_folds(recs, k, n_folds)
        recs = {"train": train, "val": val, "test": test}[split]
    return labeled(recs) if only_labeled else recs


def fold_windows(
    root: str | Path,
    k: int,
    window_frames: int = EVAL_WINDOW_FRAMES,
    hop_frames: int | None = None,
    split: str = "train",
    n_folds: int = N_FOLDS,
    only_labeled: bool = True,
    mmap: bool = False,
) -> WindowSet:
    """Windows and counts of one side of fold ``k``: the trainer's entry point.

    ``hop_frames=None`` gives the paper's non-overlapping windows (use it for val/test);
    a shorter hop gives overlapping training windows. ``only_labeled=False`` includes
    unlabeled runs (their counts are NaN), e.g. for PSL relabeling.
    """
    recs = fold_recordings(root, k, split, n_folds, only_labeled)
    ws = build_windows(recs, root, window_frames, hop_frames, mmap=mmap)
    ws.meta = {"root": str(Path(root).resolve()), "fold": k, "split": split, "n_folds": n_folds}
    return ws
