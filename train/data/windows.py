"""Approach 1 of the seed paper: fixed windows over a recording, each labeled with its step count.

Windows are counted in front-end frames (100 fps; a 5-s window is 500 frames, as the model
input (1, 64, 500)). Evaluation uses non-overlapping windows (hop = window); training may use
a shorter hop. Only whole windows are kept: the tail shorter than a window is dropped.

A step at time t belongs to frame ``frame_of(t) = floor(t * fps)``; a window [s, s + W) counts
the steps whose frame lies in it, so window counts are sums of :func:`train.data.features.step_frames`.
"""

from __future__ import annotations

import numpy as np

from edge.frontend import FRAMES_PER_SECOND

WINDOW_SECONDS = (5, 10, 20)  # the paper's windows
_EPS = 1e-9  # 0.29 s * 100 = 28.999999999999996: snap float noise to the intended frame


def seconds_to_frames(seconds: float, fps: int = FRAMES_PER_SECOND) -> int:
    frames = round(seconds * fps)
    if frames <= 0 or abs(frames - seconds * fps) > 1e-6:
        raise ValueError(f"window of {seconds} s is not a positive whole number of frames at {fps} fps")
    return frames


def frame_of(times: np.ndarray, fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Step times (s) -> frame indices (int64), floor(t * fps)."""
    return np.floor(np.asarray(times, dtype=np.float64) * fps + _EPS).astype(np.int64)


def window_index(n_frames: int, window_frames: int, hop_frames: int | None = None) -> np.ndarray:
    """Start frames of the whole windows of ``window_frames`` that fit in ``n_frames``.

    ``hop_frames`` defaults to ``window_frames`` (non-overlapping, the paper's protocol).
    Returns (n_windows,) int64, possibly empty.
    """
    hop = window_frames if hop_frames is None else hop_frames
    if window_frames <= 0 or hop <= 0:
        raise ValueError(f"window_frames and hop_frames must be positive, got {window_frames}, {hop}")
    if n_frames < window_frames:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - window_frames + 1, hop, dtype=np.int64)


def window_counts(steps: np.ndarray, starts: np.ndarray, window_frames: int, fps: float = FRAMES_PER_SECOND) -> np.ndarray:
    """Number of steps in each window [start, start + window_frames) -> (n_windows,) float32."""
    frames = frame_of(steps, fps)  # sorted, as steps are
    starts = np.asarray(starts, dtype=np.int64)
    lo = np.searchsorted(frames, starts, side="left")
    hi = np.searchsorted(frames, starts + window_frames, side="left")
    return (hi - lo).astype(np.float32)


def window_sums(per_frame: np.ndarray, starts: np.ndarray, window_frames: int) -> np.ndarray:
    """Sum a per-frame signal (step counts or a predicted density) over each window -> float64."""
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(per_frame, dtype=np.float64))])
    starts = np.asarray(starts, dtype=np.int64)
    return csum[starts + window_frames] - csum[starts]
