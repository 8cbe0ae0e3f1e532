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

Step events (:class:`Counter`, parameters :class:`CounterParams` from the card): a *cadence tracker*,
a hidden Markov model of a runner decoded by fixed-lag Viterbi. It runs at twice the output rate
(50 frames/s, 20 ms: a step period of 0.34 s is 17 frames, not 8.5), on the committed logits
interpolated linearly (frame ``2j`` is logit ``j``, frame ``2j + 1`` the mean of logits ``j`` and
``j + 1``: one output frame of lookahead). Its states:

- *off*: no runner;
- *(tempo, phase)*: a runner whose step period is ``p`` frames (``p`` from ``60 * 50 / max_spm``
  to ``60 * 50 / min_spm``, one state a frame: 12-40 frames, 250-75 spm by default) and whose last
  step was ``phase`` frames ago (``0 <= phase < p``). The phase advances one frame a frame; at the
  end of a period the next step is due: the tracker either goes to phase 0 (a *step*) at a tempo
  at most :data:`TEMPO_STEP` frames from the last (the change ``p -> q`` costs
  ``tempo_lambda * |q - p| / p``), or stops (off). From off a runner may start at any tempo.

Scores are log-probabilities relative to "no step here": a step at a frame of logit ``x`` scores
``x - logit(threshold)`` (a step at the threshold's probability is neutral; a quiet step where
the cadence expects one costs little; a step where the network hears nothing costs much), every
other frame 0; starting costs ``log(switch_prob / n_tempi)``, stopping ``log(switch_prob)`` (both
less ``log(1 - switch_prob)``, what every other move costs). So a lone knock, a burst of knocks, a
run of weak peaks without a cadence or sound with no runner stay off, a runner's quiet or missing
step is counted where the cadence says it was, an echo between two steps is not, and loudness
does not scale the count.

Decoding: the frames are processed in blocks of the shortest period (12 frames; no frame of a
block reads what the block writes), then the best path is traced back from the block's best state
and every frame ``lag_s`` or more behind the block's end is *decided*: it is a step if the path has
a step there at least :data:`MIN_GAP` frames after the last step counted. When a decided frame
turns a stop into a run (off -> on), the steps of that run's path before it count too (at most
:data:`RETRO_S` back), late, with their times (a runner is confirmed, then counted from their first
step). ``flush`` decides the frames left from the best final path, where a runner still running
stops (pays the stop: no step is made up where the stream ends before the next one was due).
Everything depends on the committed logits only, never on how they were cut into calls:
streaming equals offline.

Cadence is 60 / the local step period (the mean of the last 8 intervals between counted steps
without the shortest and longest) while the decided state is a runner. A runner's figures (what
``edge-run`` shows): the cadence is *shown* once :data:`CADENCE_MIN_S` of audio is committed, and
reads "no steps" below :data:`ACTIVE_MIN_SPM` or while the decided state is off (a run's first
``lag_s`` included). The stream is cut into :data:`ACTIVE_BIN_S` bins; a bin holding steps at
``ACTIVE_MIN_SPM`` or more is *active*. Active time is the time of the active bins, the mean
cadence their steps per active minute, and the peak cadence the highest cadence shown. Like the count, these depend only on the committed logits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from edge.contract import DENSITY_FPS, DENSITY_STRIDE, FRAMES_PER_SECOND, LOG_EPS  # the output contract (re-exported)

PAD_LOG_MEL = float(np.float32(np.log(LOG_EPS)))  # log-mel of digital silence (-27.6), pads short streams
# a model window whose every log-mel value is at or below this (30 dB above the log's floor, quieter
# than any microphone's self-noise: digital silence or a muted input) is not run: its frames read
# SILENT_LOGIT, "no step", and a streaming model's state waits unchanged for the sound to come back
SILENT_LOG_MEL = float(np.float32(PAD_LOG_MEL + math.log(1000.0)))
SILENT_LOGIT = -20.0
CADENCE_MIN_S = 3.0  # no cadence is shown before this much audio is final (too few steps to say)
ACTIVE_MIN_SPM = 60.0  # slower than the slowest walk (~90 spm): "no steps"
ACTIVE_BIN_S = 2.0  # active time is counted in bins of this length
TRACK_RATE = 2  # the cadence tracker's frames per output frame (50 frames/s: 20 ms)
TEMPO_STEP = 2  # the most a runner's step period changes from one step to the next, in tracker frames (40 ms)
MIN_GAP = 10  # two counted steps are at least this many tracker frames apart (0.2 s, 300 spm)
RETRO_S = 8.0  # a run confirmed late is counted back to its first step, at most this long before (a weakly
# heard runner's first steps: the choosing runs' error falls from 4 s to 8 s and is flat beyond)
SCORE_GRID = 2.0**24  # the tracker's start and stop costs and a step's bias are rounded to 1 / SCORE_GRID (so a
# log a last bit apart in another libm, the Java twin's, gives the same scores)


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
    """The cadence tracker's parameters (a model card's ``counter``; the defaults are the shipped ones).

    threshold: the step probability (``sigmoid`` of the logit) at which a step where the cadence
        puts one is neutral evidence: a step at a frame of logit ``x`` scores ``x - logit(threshold)``.
        Lower: quieter steps and more sound without a runner count.
    min_spm, max_spm: the cadences a runner may have (steps a minute).
    tempo_lambda: the cost of a change of step period from one step to the next, per relative change.
    switch_prob: the probability, per tracker frame (20 ms), that a runner starts or stops.
    lag_s: each tracker frame is decided this long after it is committed (the count trails the audio
        by it; a longer lag settles more ambiguous stretches before counting them).
    """

    threshold: float = 0.05
    min_spm: float = 75.0
    max_spm: float = 250.0
    tempo_lambda: float = 30.0
    switch_prob: float = 1e-5
    lag_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("threshold", "min_spm", "max_spm", "tempo_lambda", "switch_prob", "lag_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"counter {name} {v!r} must be a number")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"counter threshold {self.threshold!r} must be a probability in (0, 1)")
        if not 30.0 <= self.min_spm < self.max_spm <= 300.0:
            raise ValueError(f"counter needs 30 <= min_spm < max_spm <= 300 steps a minute, got {self.min_spm!r}, {self.max_spm!r}")
        lo, hi = self.periods
        if hi - lo < TEMPO_STEP:
            raise ValueError(f"counter min_spm {self.min_spm!r} and max_spm {self.max_spm!r} leave too few step periods "
                             f"({lo}-{hi} tracker frames); widen them")
        if not 0.0 <= self.tempo_lambda <= 1000.0:
            raise ValueError(f"counter tempo_lambda {self.tempo_lambda!r} must be in [0, 1000]")
        if not 0.0 < self.switch_prob < 0.5:
            raise ValueError(f"counter switch_prob {self.switch_prob!r} must be in (0, 0.5)")
        if not 0.0 <= self.lag_s <= 10.0:
            raise ValueError(f"counter lag_s {self.lag_s!r} must be in [0, 10] seconds")

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
            old = {"train_steps", "weak_threshold", "min_phase", "keep_first", "fill_gaps", "min_interval_s", "max_gap_s", "gap_tolerance"}
            if set(unknown) & old:
                raise ValueError(f"this card's counter is a peak picker's ({', '.join(sorted(set(unknown) & old))}); the counter is a "
                                 "cadence tracker now: export the model again, or choose its counter again "
                                 "(python -m release.bundle counter)")
            raise ValueError(f"unknown counter parameters {unknown} (known: {sorted(names)})")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def fps(self) -> int:
        """The tracker's frames per second."""
        return DENSITY_FPS * TRACK_RATE

    @property
    def periods(self) -> tuple[int, int]:
        """The shortest and longest step period, in tracker frames."""
        return math.ceil(60.0 * self.fps / self.max_spm - 1e-9), math.floor(60.0 * self.fps / self.min_spm + 1e-9)

    @property
    def threshold_logit(self) -> float:
        return _logit(self.threshold)

    @property
    def lag_frames(self) -> int:
        """The decision lag in tracker frames."""
        return round(self.lag_s * self.fps)


def _logit(p: float) -> float:
    """The logit of a probability in (0, 1)."""
    return math.log(p / (1.0 - p))


def _grid(x: float) -> float:
    """``x`` rounded to the nearest multiple of 1 / :data:`SCORE_GRID` (half to even)."""
    return round(x * SCORE_GRID) / SCORE_GRID


def sigmoid(x):
    """The step probability of a logit (float or array), computed as the counter does."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


class _Tracker:
    """The cadence tracker's Viterbi recursion and traceback (module docstring); :class:`Counter` drives it.

    Tempo ``i`` has period ``p_i = p_min + i`` frames. Its scores live in a ring of ``p_i`` slots:
    state ``(i, phase)`` at frame ``u`` is slot ``(u - phase) mod p_i``, so advancing every phase
    moves nothing, and the state whose period ends at ``u`` (phase ``p_i - 1`` at ``u - 1``) sits in
    the slot that the step at ``u`` (phase 0) overwrites. The back-pointers of the last frames are
    kept: for each frame and tempo, where its step came from (a tempo, or -1: from off), where off
    came from (-1: off, or the tempo that stopped) and the first frame of the stretch of off it is in.
    """

    def __init__(self, params: CounterParams) -> None:
        lo, hi = params.periods
        self.per = np.arange(lo, hi + 1, dtype=np.int64)
        n = len(self.per)
        self.block = int(lo)  # frames per block: none reads what its block writes
        self.base = np.concatenate([[0], np.cumsum(self.per)[:-1]]).astype(np.int64)
        self.tempo_of = np.repeat(np.arange(n), self.per)
        self.slot_of = np.arange(int(self.per.sum())) - self.base[self.tempo_of]
        # the cost of a change of tempo i -> j = i + k - TEMPO_STEP, by band k (k = 0 .. 2 TEMPO_STEP; i ascending with k):
        # tempo_lambda * |p_j - p_i| / p_i, -inf where tempo i does not exist
        w = 2 * TEMPO_STEP + 1
        self.band = np.full((w, n), -np.inf)
        for k in range(w):
            for j in range(n):
                i = j + k - TEMPO_STEP
                if 0 <= i < n:
                    self.band[k, j] = -params.tempo_lambda * (abs(int(self.per[j]) - int(self.per[i])) / float(self.per[i]))
        self._padded = np.full((self.block, n + 2 * TEMPO_STEP), -np.inf)
        self._bands = np.lib.stride_tricks.sliding_window_view(self._padded, n, axis=1)  # (block, k, j): tempo i = j + k - TEMPO_STEP
        self._steps = np.arange(self.block)
        self._to = np.arange(n)[None, :] - TEMPO_STEP
        stay = math.log1p(-params.switch_prob)
        self.start = _grid(math.log(params.switch_prob) - math.log(n) - stay)  # off -> a tempo's first step
        self.stop = _grid(math.log(params.switch_prob) - stay)  # a period ends with no step: off
        self.bias = _grid(-params.threshold_logit)
        self.score = np.full(int(self.per.sum()), -np.inf)
        self.off = 0.0
        self.off_since = 0  # the first frame of the stretch of off the last frame's off is in
        self.t = 0  # tracker frames processed
        self.keep = params.lag_frames + round(RETRO_S * params.fps) + 2 * self.block + 2  # back-pointer frames kept
        self.from_tempo = np.zeros((self.keep, n), np.int16)
        self.from_off = np.zeros(self.keep, np.int16)
        self.since = np.zeros(self.keep, np.int64)

    def run(self, e: np.ndarray) -> None:
        """Process a whole block (``len(e) <= block`` frames of interpolated logits, starting at a
        multiple of the block or at the end of the stream)."""
        b, n = len(e), len(self.per)
        u = self.t + self._steps[:b]
        slots = self.base[None, :] + (u[:, None] % self.per[None, :])
        last = self.score[slots]  # (b, n): the period of tempo i ends at u
        # off: stop at u if a period ends better than staying off; the chain of off scores, in order
        stop_from = last.argmax(axis=1)
        stops = (last[self._steps[:b], stop_from] + self.stop).tolist()
        offs = [self.off]
        from_off = [-1] * b
        since = [0] * b
        for k, v in enumerate(stops):  # (b <= 12)
            if v > offs[k]:
                offs.append(v)
                from_off[k] = int(stop_from[k])
                self.off_since = self.t + k
            else:
                offs.append(offs[k])
            since[k] = self.off_since
        off = np.asarray(offs)
        # a step at u at tempo j: from the best ended period of tempo i = j + k - TEMPO_STEP (+ the change's cost), or from off
        self._padded[:b, TEMPO_STEP : TEMPO_STEP + n] = last
        cand = self._bands[:b] + self.band  # (b, k, j): tempo i = j + k - TEMPO_STEP
        best_k = cand.argmax(axis=1)  # (b, n)
        best = cand.max(axis=1)
        started = off[:-1, None] + self.start
        from_start = started > best
        best = np.where(from_start, started, best)
        src = np.where(from_start, -1, best_k + self._to)
        self.score[slots] = best + (e[:, None] + self.bias)
        self.off = float(off[-1])
        m = max(self.off, float(self.score.max()))
        self.score -= m
        self.off -= m
        ring = u % self.keep
        self.from_tempo[ring] = src
        self.from_off[ring] = from_off
        self.since[ring] = since
        self.t += b

    def best_state(self, final: bool = False) -> tuple[int, int] | None:
        """The best state at the last frame processed: ``(tempo, phase)``, or None for off. At the end
        of the stream (``final``) a runner still running stops there: their score pays the stop (so
        no step is made up where the stream ends before the runner's next one)."""
        k = int(np.argmax(self.score))
        if not self.score[k] + (self.stop if final else 0.0) > self.off:
            return None
        i = int(self.tempo_of[k])
        return i, int((self.t - 1 - self.slot_of[k]) % self.per[i])

    def path(self, lo: int, final: bool = False) -> tuple[np.ndarray, list[int]]:
        """The best path over frames ``lo .. t - 1`` (``lo`` within the back-pointers kept; ``final``:
        the stream ends at ``t``): whether each frame is a runner's (``on[u - lo]``), and its steps
        (frames, descending)."""
        on = np.zeros(self.t - lo, bool)
        steps: list[int] = []
        s, u = self.best_state(final), self.t - 1
        while u >= lo:
            if s is None:  # off since the stretch began, then the tempo that stopped (or the start)
                v = int(self.since[u % self.keep])
                if v <= lo:
                    break
                j = int(self.from_off[v % self.keep])
                s, u = (j, int(self.per[j]) - 1), v - 1
                continue
            i, ph = s
            on[max(lo, u - ph) - lo : u + 1 - lo] = True
            u -= ph  # the step at u
            if u < lo:
                break
            steps.append(u)
            j = int(self.from_tempo[u % self.keep, i])
            s = None if j < 0 else (j, int(self.per[j]) - 1)
            u -= 1
        return on, steps


@dataclass
class Counter:
    """Turns committed step-onset logits, frame by frame, into step events, cadence and active time
    (the cadence tracker of the module docstring). Fixed memory: the tracker's scores (one a state),
    its back-pointers of the last ``lag_s + RETRO_S``, the last 8 step intervals and the open
    activity bins."""

    fps: int = DENSITY_FPS
    params: CounterParams = field(default_factory=CounterParams)
    n_events: int = 0
    frames: int = 0  # output frames committed so far
    active_frames: int = field(default=0, init=False)  # frames in active bins (module docstring)
    active_steps: int = field(default=0, init=False)  # steps in active bins
    peak_cadence: float | None = field(default=None, init=False)  # highest cadence shown

    def __post_init__(self) -> None:
        if self.fps != DENSITY_FPS:
            raise ValueError(f"the counter runs on {DENSITY_FPS} output frames a second, not {self.fps}")
        self._tr = _Tracker(self.params)
        self._prev: float | None = None  # the last committed logit (its second tracker frame waits for the next)
        self._pending: list[float] = []  # tracker frames not yet processed (less than a block)
        self._decided = 0  # tracker frames decided
        self._on = False  # the last decided frame's state is a runner
        self._last_u: int | None = None  # tracker frame of the last step counted
        self._last_t: float | None = None
        self._intervals: list[float] = []  # the last 8 intervals between counted steps
        self._bins: dict[int, int] = {}  # open activity bins: index -> steps
        self._bins_closed = 0  # bins [0, _bins_closed) are closed
        self._bin_len = round(ACTIVE_BIN_S * self.fps)
        # a step is never older than this (output frames behind the committed one): a block ends at the
        # last committed frame's first tracker frame, decides up to lag_frames behind it, and counts a
        # confirmed run back RETRO_S further from the frame decided before that block
        retro = round(RETRO_S * self.params.fps)
        self._lag_frames = 1 + math.ceil((self._tr.block + self.params.lag_frames + retro) / TRACK_RATE)

    @property
    def steps(self) -> float:
        """The count so far (a float, as every layer reports counts)."""
        return float(self.n_events)

    @property
    def t_final(self) -> float:
        """Audio time (s) up to which the model's output is committed."""
        return self.frames / self.fps

    @property
    def t_decided(self) -> float:
        """Audio time (s) up to which the tracker has decided (``t_final`` less the lag, about)."""
        return self._decided / self.params.fps

    def commit(self, logits: np.ndarray) -> list[float]:
        """Add the next committed logits (1-D, stream order); return the times (s) of the steps
        counted by them (a run's first steps are counted late, with their times)."""
        events: list[float] = []
        for v in np.asarray(logits, dtype=np.float32).astype(np.float64):
            v = float(v)
            if self._prev is not None:
                self._pending.append(self._prev)
                self._pending.append(0.5 * (self._prev + v))
            self._prev = v
            self.frames += 1
            if len(self._pending) >= self._tr.block:
                self._run(self._pending[: self._tr.block], events)
                del self._pending[: self._tr.block]
            if self.frames % self._bin_len == 0:
                self._close_bins(self.frames - self._lag_frames)
        return events

    def flush(self) -> list[float]:
        """End of stream: the last logit's frames, then every frame left decided from the best final path."""
        events: list[float] = []
        if self._prev is not None:
            self._pending.extend((self._prev, self._prev))
            self._prev = None
        while self._pending:
            self._run(self._pending[: self._tr.block], events, final=not self._pending[self._tr.block :])
            del self._pending[: self._tr.block]
        self._close_bins(self.frames + self._bin_len)
        return events

    def _run(self, block: list[float], events: list[float], final: bool = False) -> None:
        tr = self._tr
        tr.run(np.asarray(block, np.float64))
        upto = tr.t if final else tr.t - self.params.lag_frames
        if upto <= self._decided:
            return
        lo = self._decided
        on, steps = tr.path(lo, final)
        steps.reverse()
        if on[0] and not self._on:  # a run confirmed at the first frame decided: its steps before it count too
            lo = max(0, lo - round(RETRO_S * self.params.fps))
            on, steps = tr.path(lo, final)
            steps.reverse()
            j = self._decided - lo
            while j > 0 and on[j - 1]:
                j -= 1
            for u in steps:
                if lo + j <= u < self._decided:
                    self._step(u, events)
        for u in steps:  # (a run confirmed later than the first frame: its steps start within the frames decided)
            if self._decided <= u < upto:
                self._step(u, events)
        self._on = bool(on[upto - 1 - lo])
        self._decided = upto

    def _step(self, u: int, events: list[float]) -> None:
        if self._last_u is not None and u - self._last_u < MIN_GAP:
            return
        t = (u + 1) / self.params.fps  # tracker frame 2j is output frame j, whose centre is (j + 0.5) / 25 s
        self._last_u = u
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
        their shortest and longest (robust to one miss or echo)."""
        n = len(self._intervals)
        if n < 3:
            return None
        total = 0.0
        for v in sorted(self._intervals)[1:-1]:  # plain left-to-right sums (as the Java twin; not sum()'s compensation)
            total += v
        return total / (n - 2)

    # -- a runner's figures ------------------------------------------------------------------
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
        """The current cadence: 60 / the local step period while the tracker follows a runner, else 0."""
        period = self.period()
        return 60.0 / period if self._on and period else 0.0

    def shown_cadence(self) -> float | None:
        """The cadence a runner is shown: None until :data:`CADENCE_MIN_S` of audio is committed or
        while no steps run ("no steps"); see :meth:`cadence_state`."""
        return self.cadence_spm() if self.cadence_state() == "steps" else None

    def cadence_state(self) -> str:
        """``"warming up"`` (too little audio committed), ``"no steps"`` (the tracker has decided on no
        runner, or not yet on one) or ``"steps"``."""
        if self.frames < CADENCE_MIN_S * self.fps:
            return "warming up"
        return "steps" if self.cadence_spm() >= ACTIVE_MIN_SPM else "no steps"


def count_events(logits: np.ndarray, params: CounterParams | None = None, fps: int = DENSITY_FPS) -> np.ndarray:
    """Step times (s) of a whole committed logit track: the offline view of :class:`Counter`."""
    c = Counter(fps=fps, params=params or CounterParams())
    events = c.commit(logits)
    events.extend(c.flush())
    return np.sort(np.asarray(events, np.float64))
