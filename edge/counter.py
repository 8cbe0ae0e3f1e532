"""From step-onset logits to steps: the streaming alignment, step events and cadence.

Every model maps a window of ``W`` log-mel frames to ``W // 4`` step-onset logits at 25 frames/s
(contract 3): ``sigmoid`` of a frame is the probability that a step lands in it. A stream is cut
into windows that start every ``H`` frames (the hop; both ``W`` and ``H`` come from the model
card). Windows overlap by ``W - H`` frames, so each output frame is predicted by several windows;
the counter takes each one from exactly one window ("commits" it) and finds the steps in the
committed track.

Alignment (in output frames: ``Wd = W // 4``, ``Hd = H // 4``, commit offset
``c = (Wd - Hd) // 2`` by default, or ``c = Wd - Hd - L // 4`` with a lookahead of ``L`` frames;
window ``k`` covers front-end frames ``[k H, k H + W)``):

- window ``k`` commits ``Hd`` output frames, local ``[c, c + Hd)``, i.e. global output frames
  ``[k Hd + c, (k + 1) Hd + c)``: by default its centre hop, the frames with the most context on
  both sides, never the edges where the network sees half a footstep; with a lookahead, the hop
  that ends ``L`` frames before the window's end (sooner, with less right-hand context);
- window 0 also commits its head, local ``[0, c)``, so the count starts at time 0;
- at the end of the stream (``F`` front-end frames, ``D = F // 4`` output frames) the frames
  after the last commit are taken from one final *tail* window, the last full window that
  ends on an output-frame boundary, starting at front-end frame ``4 D - W``; if the whole
  stream is shorter than one window, the tail window is frames ``[0, F)`` right-padded with
  :data:`PAD_LOG_MEL` (the log-mel of digital silence). It commits output frames
  ``[committed, D)``. The trailing ``F mod 4`` frames (< 40 ms) are not counted.

These rules depend only on the number of frames, never on how the audio was cut into blocks, so
streaming a recording block by block commits exactly the frames, from exactly the windows, that
offline processing of the whole recording commits (``edge.stream.count_offline`` and
``edge.stream.StreamCounter`` share :class:`Alignment` and :class:`Counter`).

Latency: window ``k`` runs once audio up to front-end frame ``k H + W`` has arrived and commits
up to frame ``k H + 4 c + H``; the committed track trails the audio by ``W - H - 4 c`` front-end
frames (the lookahead), and a step waits up to one hop more for the window that commits it
(``bench.schedule`` measures both on real runs).

Step events (:class:`Counter`, parameters :class:`CounterParams` from the card), in stream order:

1. *peaks*: frame ``j`` is a peak when its logit reaches the threshold's, is higher than frame
   ``j - 1`` and not lower than ``j + 1`` (one frame of lookahead); its time is the frame's
   centre moved by the vertex of the parabola through the three logits (within half a frame);
   *the cadence gate*, within a train (stage 3) once it has a local step period: a peak sooner
   than ``min_phase`` periods after the last step counted is dropped (an echo, a step's second
   transient), and with a ``weak_threshold`` a peak that reaches only that lower threshold is a
   peak when it lands where the next step is due (one period after the last, give or take
   ``gap_tolerance`` of a period): a quiet step the cadence expects counts, a quiet knock does not;
2. *minimum interval*: of two peaks closer than ``min_interval_s`` the higher one stays; a peak
   is final once the committed audio is ``min_interval_s`` past it. With ``keep_first`` (a
   streaming model's card) the first one stays instead and is final at once: a causal network
   peaks at a step's onset, and the runner sees the step a quarter second sooner;
3. *trains*: steps count once ``train_steps`` of them follow each other at most ``max_gap_s``
   apart (then all of them count, with their times); a lone knock counts nothing. A gap longer
   than ``max_gap_s`` ends the train;
4. *the cadence prior*: within a train, a gap of 2 or 3 local step periods (the mean of the
   last 8 intervals without the shortest and longest), give or take ``gap_tolerance`` of a
   period, gets the steps it missed,
   evenly spaced.

So a step the network is unsure of still counts once, and loudness does not scale the count (a
density summed over frames did both wrong). Cadence is 60 / the local step period while a train
runs. A runner's figures (what ``edge-run`` shows): the cadence is *shown* once
:data:`CADENCE_MIN_S` of audio is final, and reads "no steps" below :data:`ACTIVE_MIN_SPM` or
outside a train. The stream is cut into :data:`ACTIVE_BIN_S` bins; a bin holding steps at
``ACTIVE_MIN_SPM`` or more is *active*. Active time is the time of the active bins, the mean cadence
their steps per active minute, and the peak cadence the highest cadence shown. Like the count,
these depend only on the committed logits, never on block sizes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, FRAMES_PER_SECOND, LOG_EPS  # the output contract (re-exported)

PAD_LOG_MEL = float(np.float32(np.log(LOG_EPS)))  # log-mel of digital silence (-27.6), pads short streams
CADENCE_MIN_S = 3.0  # no cadence is shown before this much audio is final (too few steps to say)
ACTIVE_MIN_SPM = 60.0  # slower than the slowest walk (~90 spm): "no steps"
ACTIVE_BIN_S = 2.0  # active time is counted in bins of this length


@dataclass(frozen=True)
class Alignment:
    """Which output frames each window commits; see the module docstring for the rules.

    All ``*_frames`` are front-end frames (100/s); ``*_d`` are output frames (25/s).
    ``lookahead_frames``: None commits each window's centre hop; a number commits the hop that
    ends that many frames before the window's end (less right-hand context, less latency).
    """

    window_frames: int  # W
    hop_frames: int  # H
    stride: int = DENSITY_STRIDE
    lookahead_frames: int | None = None  # L (None: (W - H) / 2, rounded down to the stride)
    stateful: bool = False  # a streaming model: W == H, each packet once, the tail never reaches back

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
        if self.stateful and (h != w or la is not None):
            raise ValueError(f"a streaming model takes each packet once: hop {h} must equal the packet {w}, no lookahead")

    @property
    def window_d(self) -> int:
        return self.window_frames // self.stride

    @property
    def hop_d(self) -> int:
        return self.hop_frames // self.stride

    @property
    def commit_offset_d(self) -> int:
        """c: first committed output frame of a window (after window 0)."""
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
        """Global output frames committed once regular windows 0..n_windows-1 have run."""
        return 0 if n_windows == 0 else (n_windows - 1) * self.hop_d + self.commit_offset_d + self.hop_d

    def n_windows(self, n_frames: int) -> int:
        """Regular windows that fit in ``n_frames`` front-end frames."""
        return 0 if n_frames < self.window_frames else (n_frames - self.window_frames) // self.hop_frames + 1

    def tail(self, n_frames: int, committed_d: int) -> tuple[int, int, int] | None:
        """The final window of a stream of ``n_frames`` frames, or None if nothing is left.

        Returns ``(start_frame, lo, hi)``: the window starts at front-end frame ``start_frame``
        (frames past the end of the stream are padding) and commits local output frames
        ``[lo, hi)``, i.e. global ``[committed_d, n_frames // stride)``.
        """
        total_d = n_frames // self.stride
        if committed_d >= total_d:
            return None
        if self.stateful:  # the state has seen every committed frame: the rest, padded, as one packet
            return committed_d * self.stride, 0, total_d - committed_d
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
            "stateful": self.stateful,
            "commit_offset_frames": self.commit_offset_d * self.stride,
            "latency_frames": self.latency_frames,
            "latency_s": self.latency_s,
        }


@dataclass(frozen=True)
class CounterParams:
    """The event counter's parameters (a model card's ``counter``; the defaults are the shipped ones).

    threshold: a peak's step probability (``sigmoid`` of the logit) must reach it.
    min_interval_s: two steps are at least this far apart (240 spm); of two closer peaks the higher wins.
    train_steps, max_gap_s: steps count once ``train_steps`` of them follow each other at most
        ``max_gap_s`` apart (a walk at 48 spm); a lone knock, a door or a cough counts nothing.
    fill_gaps: the cadence prior: a gap within ``gap_tolerance`` periods of 2 or 3 local step periods
        gets the steps it missed (a quiet far foot, a step drowned by a passing car).
    keep_first: of two peaks closer than ``min_interval_s`` the first stays (final as soon as it is
        a peak) instead of the higher (final ``min_interval_s`` later).
    weak_threshold: the cadence gate's lower threshold (a probability, at most ``threshold``): within
        a train, a peak reaching it counts where the next step is due; None: no weak peaks.
    min_phase: the cadence gate: within a train, a peak sooner than this many local step periods
        after the last step is dropped; 0: none is.
    """

    threshold: float = 0.2
    min_interval_s: float = 0.25
    train_steps: int = 4
    max_gap_s: float = 1.25
    fill_gaps: bool = True
    gap_tolerance: float = 0.2
    keep_first: bool = False
    weak_threshold: float | None = None
    min_phase: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"counter threshold {self.threshold!r} must be a probability in (0, 1)")
        if not 0.0 < self.min_interval_s < self.max_gap_s <= 10.0:
            raise ValueError(f"counter needs 0 < min_interval_s < max_gap_s <= 10, got {self.min_interval_s!r}, {self.max_gap_s!r}")
        if not (isinstance(self.train_steps, int) and 1 <= self.train_steps <= 16):
            raise ValueError(f"counter train_steps {self.train_steps!r} must be a whole number in [1, 16]")
        if not 0.0 <= self.gap_tolerance < 0.5:
            raise ValueError(f"counter gap_tolerance {self.gap_tolerance!r} must be in [0, 0.5)")
        if not isinstance(self.keep_first, bool):
            raise ValueError(f"counter keep_first {self.keep_first!r} must be true or false")
        w = self.weak_threshold
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 < w <= self.threshold):
            raise ValueError(f"counter weak_threshold {w!r} must be a probability in (0, threshold {self.threshold!r}], or null")
        m = self.min_phase
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= m < 1.0:
            raise ValueError(f"counter min_phase {m!r} must be in [0, 1)")

    @classmethod
    def from_dict(cls, d: dict | None) -> "CounterParams":
        """From a card's ``counter`` ({} or None: the defaults); unknown keys are refused."""
        if not d:
            return cls()
        if not isinstance(d, dict):
            raise ValueError(f"counter must be an object, got {str(d)[:60]}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown counter parameters {unknown} (known: {sorted(names)})")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def threshold_logit(self) -> float:
        return _logit(self.threshold)

    @property
    def peak_logit(self) -> float:
        """The logit a peak must reach: the weak threshold's, or the threshold's without one."""
        return self.threshold_logit if self.weak_threshold is None else _logit(self.weak_threshold)

    @property
    def lag_s(self) -> float:
        """The longest an event can wait before it is emitted (a train being confirmed)."""
        return max(self.train_steps, 3) * self.max_gap_s + self.min_interval_s


def _logit(p: float) -> float:
    """The logit of a probability in (0, 1)."""
    return math.log(p / (1.0 - p))


def sigmoid(x):
    """The step probability of a logit (float or array), computed as the counter does."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@dataclass
class Counter:
    """Turns committed step-onset logits, frame by frame, into step events, cadence and active time.

    Four stages, each in stream order with bounded lookahead (module docstring):
    peaks (local maxima at or above the threshold, placed between frames by a parabola through
    the three logits, through the cadence gate), the minimum step interval, step trains and the
    cadence prior (gap filling).
    Fixed memory: a few values per stage, the last 8 step intervals and the open activity bins.
    """

    fps: int = DENSITY_FPS
    params: CounterParams = field(default_factory=CounterParams)
    n_events: int = 0
    frames: int = 0  # output frames committed so far
    active_frames: int = field(default=0, init=False)  # frames in active bins (module docstring)
    active_steps: int = field(default=0, init=False)  # steps in active bins
    peak_cadence: float | None = field(default=None, init=False)  # highest cadence shown

    def __post_init__(self) -> None:
        self._thr = self.params.threshold_logit
        self._peak_thr = self.params.peak_logit  # stage 1 finds peaks down to the weak threshold
        self._v1 = self._v2 = -math.inf  # logits of frames j-1 and j-2
        self._pending: tuple[float, float] | None = None  # (time, logit) of the peak the interval rule holds
        self._first: float | None = None  # keep_first: the last peak kept
        self._held: list[float] = []  # steps of a train not yet long enough to count
        self._in_train = False
        self._last_t: float | None = None  # the last step counted
        self._intervals: list[float] = []  # the last 8 intervals between counted steps
        self._bins: dict[int, int] = {}  # open activity bins: index -> steps
        self._bins_closed = 0  # bins [0, _bins_closed) are closed
        self._bin_len = round(ACTIVE_BIN_S * self.fps)
        self._lag_frames = math.ceil(self.params.lag_s * self.fps) + 2

    @property
    def steps(self) -> float:
        """The count so far (a float, as every layer reports counts)."""
        return float(self.n_events)

    @property
    def t_final(self) -> float:
        """Audio time (s) up to which the model's output is committed."""
        return self.frames / self.fps

    # -- stage 1: peaks ----------------------------------------------------------------------
    def commit(self, logits: np.ndarray) -> list[float]:
        """Add the next committed logits (1-D, stream order); return the times (s) of the steps
        counted by them (a train's first steps and filled gaps are counted late, with their times)."""
        events: list[float] = []
        thr = self._peak_thr
        for v in np.asarray(logits, dtype=np.float32).astype(np.float64):
            v = float(v)
            j = self.frames  # this frame; decide whether frame j - 1 is a peak
            v1, v2 = self._v1, self._v2
            if v1 >= thr and v1 > v2 and v1 >= v:
                den = v2 - 2.0 * v1 + v
                delta = 0.0 if v2 == -math.inf or den >= 0.0 else min(0.5, max(-0.5, 0.5 * (v2 - v) / den))
                self._peak((j - 1 + 0.5 + delta) / self.fps, v1, events)
            self._v2, self._v1 = v1, v
            self.frames = j + 1
            if self._pending is not None and (self.frames - 1) / self.fps >= self._pending[0] + self.params.min_interval_s:
                self._accept(self._pending[0], events)  # nothing later can displace it
                self._pending = None
            if self.frames % self._bin_len == 0:
                self._close_bins(self.frames - self._lag_frames)
        return events

    def flush(self) -> list[float]:
        """End of stream: the last frame's peak, the held interval peak, and every bin closed.
        A train shorter than ``train_steps`` at the end counts nothing."""
        events: list[float] = []
        v1, v2 = self._v1, self._v2
        if v1 >= self._peak_thr and v1 > v2:
            self._peak((self.frames - 1 + 0.5) / self.fps, v1, events)
        self._v1 = self._v2 = -math.inf
        if self._pending is not None:
            self._accept(self._pending[0], events)
            self._pending = None
        self._close_bins(self.frames + self._bin_len)
        return events

    def _gated(self, t: float, v: float) -> bool:
        """The cadence gate: True drops the peak at ``t`` of logit ``v``."""
        prm = self.params
        period = self.period() if self._in_train and self._last_t is not None else None
        if period is None:
            return v < self._thr  # outside a train (or before its period is known) only strong peaks
        g = t - self._last_t
        if g < prm.min_phase * period:
            return True
        return v < self._thr and abs(g - period) > prm.gap_tolerance * period

    # -- stage 2: the minimum interval -------------------------------------------------------
    def _peak(self, t: float, v: float, events: list[float]) -> None:
        if self._gated(t, v):
            return
        if self.params.keep_first:  # the first of close peaks stays, final at once
            if self._first is None or t - self._first >= self.params.min_interval_s:
                self._first = t
                self._accept(t, events)
            return
        p = self._pending
        if p is not None and t - p[0] < self.params.min_interval_s:
            if v > p[1]:
                self._pending = (t, v)
            return
        if p is not None:
            self._accept(p[0], events)
        self._pending = (t, v)

    # -- stage 3: trains and the cadence prior -----------------------------------------------
    def _accept(self, t: float, events: list[float]) -> None:
        prm = self.params
        if not self._in_train:
            if self._held and t - self._held[-1] > prm.max_gap_s:
                self._held.clear()  # too far from the last one: not a train
            self._held.append(t)
            if len(self._held) >= prm.train_steps:
                self._in_train = True
                held, self._held = self._held, []
                self._last_t = None
                for h in held:
                    self._count(h, events)
            return
        g = t - self._last_t
        period = self.period()
        if prm.fill_gaps and period is not None:
            k = round(g / period)
            if k in (2, 3) and abs(g - k * period) <= prm.gap_tolerance * period:
                last = self._last_t
                for i in range(1, k):
                    self._count(last + g * i / k, events)
                self._count(t, events)
                return
        if g > prm.max_gap_s:  # the train broke: this step may start the next one
            self._in_train, self._last_t, self._intervals = False, None, []
            self._accept(t, events)
            return
        self._count(t, events)

    def _count(self, t: float, events: list[float]) -> None:
        if self._last_t is not None:
            self._intervals.append(t - self._last_t)
            del self._intervals[:-8]
        self._last_t = t
        self.n_events += 1
        events.append(t)
        b = int(t * self.fps) // self._bin_len
        if b >= self._bins_closed:  # (a step is never older than the lag, so its bin is open)
            self._bins[b] = self._bins.get(b, 0) + 1
        cadence = self.shown_cadence()
        if cadence is not None and len(self._intervals) >= 6:
            self.peak_cadence = cadence if self.peak_cadence is None else max(self.peak_cadence, cadence)

    def period(self) -> float | None:
        """The local step period (s): the mean of the last 8 step intervals (at least 3) without
        their shortest and longest (robust to one miss or echo, unbiased by 40-ms frames)."""
        n = len(self._intervals)
        if n < 3:
            return None
        total = 0.0
        for v in sorted(self._intervals)[1:-1]:  # plain left-to-right sums (as the Java twin; not sum()'s compensation)
            total += v
        return total / (n - 2)

    # -- stage 4: a runner's figures ---------------------------------------------------------
    def _close_bins(self, upto_frame: int) -> None:
        """Close the activity bins that end at or before ``upto_frame``: no step can land in them now."""
        last = min(upto_frame, self.frames + self._bin_len) // self._bin_len
        for b in range(self._bins_closed, last):
            n = self._bins.pop(b, 0)
            length = min(self._bin_len, self.frames - b * self._bin_len)
            if length > 0 and n * 60.0 * self.fps / length >= ACTIVE_MIN_SPM:
                self.active_frames += length
                self.active_steps += n
        self._bins_closed = max(self._bins_closed, last)

    @property
    def active_s(self) -> float:
        return self.active_frames / self.fps

    def mean_cadence(self) -> float | None:
        """Steps per active minute, or None before any active bin."""
        return self.active_steps * 60.0 * self.fps / self.active_frames if self.active_frames else None

    def cadence_spm(self) -> float:
        """The current cadence: 60 / the local step period while a train runs, else 0."""
        period = self.period()
        running = self._in_train and self._last_t is not None and self.t_final - self._last_t <= self.params.lag_s
        return 60.0 / period if running and period else 0.0

    def shown_cadence(self) -> float | None:
        """The cadence a runner is shown: None until :data:`CADENCE_MIN_S` of audio is final or
        while no steps run ("no steps"); see :meth:`cadence_state`."""
        return self.cadence_spm() if self.cadence_state() == "steps" else None

    def cadence_state(self) -> str:
        """``"warming up"`` (too little audio final), ``"no steps"`` or ``"steps"``."""
        if self.frames < CADENCE_MIN_S * self.fps:
            return "warming up"
        return "steps" if self.cadence_spm() >= ACTIVE_MIN_SPM else "no steps"


def count_events(logits: np.ndarray, params: CounterParams | None = None, fps: int = DENSITY_FPS) -> np.ndarray:
    """Step times (s) of a whole committed logit track: the offline view of :class:`Counter`."""
    c = Counter(fps=fps, params=params or CounterParams())
    events = c.commit(logits)
    events.extend(c.flush())
    return np.sort(np.asarray(events, np.float64))
