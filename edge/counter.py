"""From step density to steps: the streaming alignment, step events and cadence.

Every model maps a window of ``W`` log-mel frames to a non-negative step density of ``W // 4``
frames at 25 frames/s (contract 3); the sum of the density is the number of steps. A stream is
cut into windows that start every ``H`` frames (the hop; both ``W`` and ``H`` come from the
model card). Windows overlap by ``W - H`` frames, so each density frame is predicted by several
windows; the counter takes each one from exactly one window ("commits" it) and adds it up.

Alignment (in density frames: ``Wd = W // 4``, ``Hd = H // 4``, commit offset
``c = (Wd - Hd) // 2`` by default, or ``c = Wd - Hd - L // 4`` with a lookahead of ``L`` frames;
window ``k`` covers front-end frames ``[k H, k H + W)``):

- window ``k`` commits ``Hd`` density frames, local ``[c, c + Hd)``, i.e. global density frames
  ``[k Hd + c, (k + 1) Hd + c)``: by default its centre hop, the frames with the most context on
  both sides, never the edges where the network sees half a footstep; with a lookahead, the hop
  that ends ``L`` frames before the window's end (sooner, with less right-hand context);
- window 0 also commits its head, local ``[0, c)``, so the count starts at time 0;
- at the end of the stream (``F`` front-end frames, ``D = F // 4`` density frames) the frames
  after the last commit are taken from one final *tail* window, the last full window that
  ends on a density-frame boundary, starting at front-end frame ``4 D - W``; if the whole
  stream is shorter than one window, the tail window is frames ``[0, F)`` right-padded with
  :data:`PAD_LOG_MEL` (the log-mel of digital silence). It commits density frames
  ``[committed, D)``. The trailing ``F mod 4`` frames (< 40 ms) are not counted.

These rules depend only on the number of frames, never on how the audio was cut into blocks, so
streaming a recording block by block commits exactly the density frames, from exactly the
windows, that offline processing of the whole recording commits (``edge.stream.count_offline``
and ``edge.stream.StreamCounter`` share :class:`Alignment` and :class:`Counter`).

Latency: window ``k`` runs once audio up to front-end frame ``k H + W`` has arrived and makes
the count final up to frame ``k H + 4 c + H``; the count therefore trails the audio by
``W - H - 4 c`` front-end frames (the lookahead; by default about ``(W - H) / 2``: 0.2 s for
W = 240, H = 200), and a step waits up to one hop more for the window that commits it
(``bench.schedule`` measures both on real runs).

Step events: the k-th step (k = 1, 2, ...) happens when the cumulative committed density
reaches ``k - 0.5``; its time is that of the highest density frame committed since the previous
event (the peak of the bump that carried the count over), at the frame's centre. It is emitted
once that bump has peaked (a later frame is lower), or at the end of the stream, so after
``flush()`` the number of events is ``floor(steps + 0.5)``. Cadence is the committed density mass of
the last 10 s (less at the start of a stream) in steps per minute.

A runner's figures (what ``edge-run`` shows): the cadence is *shown* once
:data:`CADENCE_MIN_S` of audio is final, and reads "no steps" below :data:`ACTIVE_MIN_SPM`. The
stream is cut into :data:`ACTIVE_BIN_S` bins of committed density; a bin whose rate reaches
``ACTIVE_MIN_SPM`` is *active*. Active time is the time of the active bins, the mean cadence is
their steps per active minute, and the peak cadence is the highest shown cadence at the end of an
active bin. Like the count, these depend only on the committed density, never on block sizes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, FRAMES_PER_SECOND, LOG_EPS  # the density contract (re-exported)

CADENCE_WINDOW_S = 10.0  # cadence = steps in the last 10 s of committed audio, per minute
PAD_LOG_MEL = float(np.float32(np.log(LOG_EPS)))  # log-mel of digital silence (-13.8), pads short streams
CADENCE_MIN_S = 3.0  # no cadence is shown before this much audio is final (too few steps to say)
ACTIVE_MIN_SPM = 60.0  # slower than the slowest walk (~90 spm): "no steps"
ACTIVE_BIN_S = 2.0  # active time is counted in bins of this length


@dataclass(frozen=True)
class Alignment:
    """Which density frames each window commits; see the module docstring for the rules.

    All ``*_frames`` are front-end frames (100/s); ``*_d`` are density frames (25/s).
    ``lookahead_frames``: None commits each window's centre hop; a number commits the hop that
    ends that many frames before the window's end (less right-hand context, less latency).
    """

    window_frames: int  # W
    hop_frames: int  # H
    stride: int = DENSITY_STRIDE
    lookahead_frames: int | None = None  # L (None: (W - H) / 2, rounded down to the stride)

    def __post_init__(self) -> None:
        w, h, s, la = self.window_frames, self.hop_frames, self.stride, self.lookahead_frames
        if not (0 < h <= w):
            raise ValueError(f"hop_frames {h} must be in (0, window_frames {w}]")
        if w % s or h % s:
            raise ValueError(
                f"window_frames {w} and hop_frames {h} must be multiples of the density stride {s} "
                f"(e.g. hop {h - h % s or s} or {h - h % s + s})"
            )
        if la is not None and (la % s or not 0 <= la <= w - h):
            raise ValueError(f"lookahead_frames {la} must be a multiple of {s} in [0, {w - h}] (window {w} - hop {h})")

    @property
    def window_d(self) -> int:
        return self.window_frames // self.stride

    @property
    def hop_d(self) -> int:
        return self.hop_frames // self.stride

    @property
    def commit_offset_d(self) -> int:
        """c: first committed density frame of a window (after window 0)."""
        if self.lookahead_frames is None:
            return (self.window_d - self.hop_d) // 2
        return self.window_d - self.hop_d - self.lookahead_frames // self.stride

    @property
    def latency_frames(self) -> int:
        """Front-end frames between the newest audio a window sees and the end of its commit."""
        return self.window_frames - self.hop_frames - self.commit_offset_d * self.stride

    @property
    def latency_s(self) -> float:
        return self.latency_frames / FRAMES_PER_SECOND

    def window_start(self, k: int) -> int:
        """First front-end frame of regular window k."""
        return k * self.hop_frames

    def window_end(self, k: int) -> int:
        return k * self.hop_frames + self.window_frames

    def commit(self, k: int) -> tuple[int, int]:
        """Local density-frame range [lo, hi) that regular window k commits."""
        c = self.commit_offset_d
        return (0 if k == 0 else c), c + self.hop_d

    def committed_after(self, n_windows: int) -> int:
        """Global density frames committed once regular windows 0..n_windows-1 have run."""
        return 0 if n_windows == 0 else (n_windows - 1) * self.hop_d + self.commit_offset_d + self.hop_d

    def n_windows(self, n_frames: int) -> int:
        """Regular windows that fit in ``n_frames`` front-end frames."""
        return 0 if n_frames < self.window_frames else (n_frames - self.window_frames) // self.hop_frames + 1

    def tail(self, n_frames: int, committed_d: int) -> tuple[int, int, int] | None:
        """The final window of a stream of ``n_frames`` frames, or None if nothing is left.

        Returns ``(start_frame, lo, hi)``: the window starts at front-end frame ``start_frame``
        (frames past the end of the stream are padding) and commits local density frames
        ``[lo, hi)``, i.e. global ``[committed_d, n_frames // stride)``.
        """
        total_d = n_frames // self.stride
        if committed_d >= total_d:
            return None
        start = max(0, total_d * self.stride - self.window_frames)
        first_d = start // self.stride
        return start, committed_d - first_d, total_d - first_d

    def plan(self, n_frames: int) -> list[tuple[int, int, int]]:
        """Every window of a stream of ``n_frames`` frames: ``[(start_frame, lo, hi), ...]``."""
        windows = [(self.window_start(k), *self.commit(k)) for k in range(self.n_windows(n_frames))]
        tail = self.tail(n_frames, self.committed_after(len(windows)))
        return windows + ([tail] if tail else [])

    def describe(self) -> dict:
        return {
            "window_frames": self.window_frames,
            "hop_frames": self.hop_frames,
            "density_stride": self.stride,
            "commit_offset_frames": self.commit_offset_d * self.stride,
            "latency_frames": self.latency_frames,
            "latency_s": self.latency_s,
        }


@dataclass(frozen=True)
class RateCalibration:
    """Gain on the step density as a function of the recent uncalibrated rate (module docstring).

    ``g(r) = clip(1 + slope_per_spm * (r - centre_spm), gain_min, gain_max)``, with ``r`` the
    committed density of the last ``window_s`` seconds in steps per minute.
    """

    centre_spm: float
    slope_per_spm: float
    window_s: float = CADENCE_WINDOW_S
    gain_min: float = 0.5
    gain_max: float = 1.5

    def __post_init__(self) -> None:
        values = (self.centre_spm, self.slope_per_spm, self.window_s, self.gain_min, self.gain_max)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
            raise ValueError(f"rate calibration values must be finite numbers, got {values}")
        if not 0 < self.gain_min <= 1 <= self.gain_max:
            raise ValueError(f"rate calibration needs 0 < gain_min <= 1 <= gain_max, got {self.gain_min}, {self.gain_max}")
        if not 1.0 / DENSITY_FPS <= self.window_s <= 600:
            raise ValueError(f"rate calibration window_s {self.window_s} not in [{1.0 / DENSITY_FPS}, 600] s")

    @classmethod
    def from_dict(cls, d: dict) -> "RateCalibration":
        """From a card's ``calibration`` (extra keys, such as the fit report, are ignored)."""
        if not isinstance(d, dict) or d.get("kind") != "rate_gain":
            raise ValueError(f"calibration must be an object with kind 'rate_gain', got {str(d)[:80]}")
        try:
            return cls(**{k: d[k] for k in ("centre_spm", "slope_per_spm", "window_s", "gain_min", "gain_max") if k in d})
        except TypeError as e:
            raise ValueError(f"calibration: {e}") from e

    def to_dict(self) -> dict:
        return {"kind": "rate_gain", **dataclasses.asdict(self)}

    def window_frames(self, fps: int = DENSITY_FPS) -> int:
        return max(1, round(self.window_s * fps))

    def gain(self, rate_spm):
        """g(r), for a float or an array of rates in steps per minute."""
        return np.clip(1.0 + self.slope_per_spm * (np.asarray(rate_spm, np.float64) - self.centre_spm), self.gain_min, self.gain_max)

    def apply(self, density: np.ndarray, fps: int = DENSITY_FPS) -> np.ndarray:
        """Calibrate a whole committed density track at once (what :class:`Counter` does frame by frame)."""
        raw = np.asarray(density, np.float64)
        n = self.window_frames(fps)
        c = np.concatenate([[0.0], np.cumsum(raw)])
        i = np.arange(1, len(raw) + 1)
        lo = np.maximum(0, i - n)
        rate = (c[i] - c[lo]) * 60.0 * fps / (i - lo)
        return raw * self.gain(rate)


@dataclass
class Counter:
    """Integrates committed density frames into steps, step events and cadence.

    Fixed memory: the cadence window is a ring of ``CADENCE_WINDOW_S * DENSITY_FPS`` frames;
    events are handed out by :meth:`commit` and not kept.
    """

    fps: int = DENSITY_FPS
    cadence_window_s: float = CADENCE_WINDOW_S
    calibration: RateCalibration | None = None
    steps: float = 0.0  # cumulative committed (calibrated) density (float64 sum, frame by frame)
    raw_steps: float = 0.0  # the same without the calibration
    n_events: int = 0
    frames: int = 0  # density frames committed so far
    _ring: np.ndarray = field(init=False, repr=False)
    _peak_val: float = field(default=-np.inf, init=False, repr=False)
    _peak_frame: int = field(default=0, init=False, repr=False)
    _pending: int = field(default=0, init=False, repr=False)  # crossings waiting for their bump's peak
    _raw: np.ndarray = field(init=False, repr=False)  # uncalibrated density of the calibration window
    _raw_sum: float = field(default=0.0, init=False, repr=False)
    active_frames: int = field(default=0, init=False)  # density frames in active bins (module docstring)
    active_steps: float = field(default=0.0, init=False)  # steps in active bins
    peak_cadence: float | None = field(default=None, init=False)  # highest shown cadence at the end of an active bin
    _bin_steps: float = field(default=0.0, init=False, repr=False)
    _bin_frames: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._ring = np.zeros(round(self.cadence_window_s * self.fps), dtype=np.float64)
        n = self.calibration.window_frames(self.fps) if self.calibration is not None else 1
        self._raw = np.zeros(n, dtype=np.float64)
        self._bin_len = round(ACTIVE_BIN_S * self.fps)

    @property
    def t_final(self) -> float:
        """Audio time (s) up to which the count is final."""
        return self.frames / self.fps

    def commit(self, density: np.ndarray) -> list[float]:
        """Add the next density frames (1-D, in stream order); return the times of new steps."""
        events = []
        ring, n_ring = self._ring, len(self._ring)
        cal, raw, n_raw = self.calibration, self._raw, len(self._raw)
        rate_scale = 60.0 * self.fps
        for v in np.asarray(density, dtype=np.float64):
            v = float(v)
            j = self.frames
            self.raw_steps += v
            if cal is not None:  # the gain of the uncalibrated rate over the last window_s, this frame included
                self._raw_sum += v - raw[j % n_raw]
                raw[j % n_raw] = v
                rate = self._raw_sum * rate_scale / min(j + 1, n_raw)
                v = v * min(max(1.0 + cal.slope_per_spm * (rate - cal.centre_spm), cal.gain_min), cal.gain_max)
            if self._pending and v < self._peak_val:  # the bump that carried the count over has peaked
                events.extend(self._emit())
            self.steps += v
            ring[j % n_ring] = v
            if v > self._peak_val:
                self._peak_val, self._peak_frame = v, j
            while self.steps >= self.n_events + self._pending + 0.5:
                self._pending += 1
            self.frames += 1
            self._bin_steps += v
            self._bin_frames += 1
            if self._bin_frames == self._bin_len:
                self._close_bin()
        return events

    def flush(self) -> list[float]:
        """End of stream: close the last (partial) activity bin; emit the steps still waiting for their peak."""
        if self._bin_frames:
            self._close_bin()
        return self._emit() if self._pending else []

    def _close_bin(self) -> None:
        n, steps = self._bin_frames, self._bin_steps
        self._bin_frames, self._bin_steps = 0, 0.0
        if steps * 60.0 * self.fps / n < ACTIVE_MIN_SPM:
            return
        self.active_frames += n
        self.active_steps += steps
        shown = self.shown_cadence()
        if shown is not None:
            self.peak_cadence = shown if self.peak_cadence is None else max(self.peak_cadence, shown)

    @property
    def active_s(self) -> float:
        return self.active_frames / self.fps

    def mean_cadence(self) -> float | None:
        """Steps per active minute, or None before any active bin."""
        return self.active_steps * 60.0 * self.fps / self.active_frames if self.active_frames else None

    def shown_cadence(self) -> float | None:
        """The cadence a runner is shown: None until :data:`CADENCE_MIN_S` is final or while
        below :data:`ACTIVE_MIN_SPM` ("no steps"); see :meth:`cadence_state`."""
        cadence = self.cadence_spm()
        return cadence if self.cadence_state() == "steps" else None

    def cadence_state(self) -> str:
        """``"warming up"`` (too little audio final), ``"no steps"`` or ``"steps"``."""
        if self.frames < CADENCE_MIN_S * self.fps:
            return "warming up"
        return "steps" if self.cadence_spm() >= ACTIVE_MIN_SPM else "no steps"

    def _emit(self) -> list[float]:
        events = [(self._peak_frame + 0.5) / self.fps] * self._pending
        self.n_events += self._pending
        self._pending = 0
        self._peak_val = -np.inf
        return events

    def cadence_spm(self) -> float:
        """Steps per minute over the last ``cadence_window_s`` of committed audio."""
        if self.frames == 0:
            return 0.0
        span = min(self.frames, len(self._ring))
        return float(self._ring.sum()) * 60.0 * self.fps / span
