"""The streaming engine: PCM blocks in, step counts out; and the offline count it must equal.

``StreamCounter.push(pcm)`` takes 16-kHz mono float32 blocks of any size. Each block goes
through the incremental front end (``edge.frontend.StreamingLogMel``: only the frames the block
completes are computed) into a :class:`~edge.ringbuffer.FrameRing`; for every whole window the
block completes (every hop), the model runs on it and the :class:`~edge.counter.Counter`
commits the step-onset logits the :class:`~edge.counter.Alignment` assigns to that window and
turns them into step events.
``finish()`` runs the end-of-stream tail window. :func:`count_offline` computes the log-mel of
a whole recording at once and runs the windows of ``Alignment.plan`` over it, with the same
alignment and counter code; streaming a file in blocks of any size gives the offline count.

A window of digital silence (every log-mel value at or below :data:`~edge.counter.SILENT_LOG_MEL`)
is not run: its frames read :data:`~edge.counter.SILENT_LOGIT` ("no step") and a streaming model's
state stays as it was. A window whose sound starts after digital silence is run with those first
silent frames set to the mean level (per band) of its frames of sound. A streaming model's band norm
would otherwise learn the silence as the level to subtract and hear the first seconds of sound after
it as one loud, flat stretch: the bundled model lost the first 5 s of the sample run after 10 s of
digital silence (40 of 53 steps in 20 s; 53 without the silence), and after 0.1 s of it the first
three steps, as often as not (a microphone's first zeros). Both paths share this
(:func:`_window_logits`).

Memory is bounded once the engine is built (model input, the counter's bounded state, a latency
ring; the ring and the front end's scratch grow to the largest block seen); ``keep=True``
additionally keeps the committed logits and the step times (tests, offline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from edge.audio import check_finite
from edge.backends import Backend
from edge.card import ModelCard
from edge.counter import DENSITY_STRIDE, PAD_LOG_MEL, SILENT_LOG_MEL, SILENT_LOGIT, Alignment, Counter
from edge.frontend import FRAMES_PER_SECOND, HISTORY, HOP_LENGTH, N_MELS, SAMPLE_RATE, StreamingLogMel, log_mel
from edge.ringbuffer import FrameRing


@dataclass(frozen=True)
class Update:
    """What one model run (one hop) changed."""

    window: int  # 0, 1, ... in stream order (the tail window is the last)
    t: float  # audio seconds consumed when this window ran
    t_final: float  # the count is final up to this audio time (s)
    steps: float  # cumulative count up to t_final
    cadence_spm: float  # 60 / the local step period while steps run, else 0
    latency_ms: float  # model inference time of this window
    events: tuple[float, ...] = ()  # times (s) of the steps counted by this window (a train's first ones late)
    tail: bool = False  # the end-of-stream window

    def to_json(self) -> dict:
        # edge.cli._hop_lines writes this record as text for --json (tests/test_edge_cli.py holds them equal)
        return {
            "t": round(self.t, 4),
            "t_final": round(self.t_final, 4),
            "steps": self.steps,
            "cadence_spm": round(self.cadence_spm, 2),
            "latency_ms": round(self.latency_ms, 3),
            "events": [round(e, 3) for e in self.events],
        }


@dataclass
class CountResult:
    """A finished count (offline, or a stream after ``finish()``)."""

    steps: float  # the number of step events
    n_events: int
    windows: int  # model runs, tail included
    n_frames: int  # front-end frames of the audio
    audio_s: float
    logits: np.ndarray | None = None  # committed step-onset logits (n_frames // 4,), with keep=True
    events: list[float] | None = None  # step times (s), with keep=True
    active_s: float = 0.0  # a runner's figures (edge.counter module docstring)
    mean_cadence_spm: float | None = None
    peak_cadence_spm: float | None = None


@dataclass
class LatencyStats:
    """Inference times: running count/mean/max and a ring of the last ``size`` for percentiles."""

    size: int = 4096
    n: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    _ring: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ring = np.zeros(self.size, dtype=np.float64)

    def add(self, ms: float) -> None:
        self._ring[self.n % self.size] = ms
        self.n += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile, linear between the closest ranks (``np.percentile``'s default
        method). Worked out here: ``np.percentile`` imports ``numpy.ma`` on its first call, 8 ms of
        an ``edge-run`` process."""
        if not self.n:
            return 0.0
        x = np.sort(self._ring[: min(self.n, self.size)])
        i = q / 100 * (len(x) - 1)
        lo = int(i)
        hi = min(lo + 1, len(x) - 1)
        return float(x[lo] + (x[hi] - x[lo]) * (i - lo))


def schedule(card: ModelCard, align: Alignment | None = None) -> Alignment:
    """The windows a stream runs: ``align`` when given (its window must be the model's), else the
    card's file schedule (:meth:`edge.card.ModelCard.alignment`)."""
    if align is None:
        return card.alignment()
    if align.stateful != card.streaming:
        raise ValueError("a streaming model runs its packets once (its card's schedule); a windowed model, windows")
    if align.window_frames != card.window_frames:
        raise ValueError(f"schedule window {align.window_frames} frames != the model's {card.window_frames}")
    return align


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _window_logits(backend: Backend, x: np.ndarray, window_d: int) -> np.ndarray:
    """Run one window and check the output's shape (the one place both paths call the model); a
    window of digital silence is not run, and silence before a window's sound takes its level
    (module docstring)."""
    frames = x[0, 0]
    loud = frames.max(axis=0) > SILENT_LOG_MEL
    if not loud.any():
        return np.full(window_d, SILENT_LOGIT, np.float32)
    if not loud[0]:  # sound after digital silence: the silent frames take the level of the window's sound
        x = x.copy()
        first = int(np.argmax(loud))
        x[0, 0][:, :first] = frames[:, loud].astype(np.float64).mean(axis=1, keepdims=True).astype(np.float32)
    d = backend.run(x)
    if d.shape != (window_d,):
        raise ValueError(f"{backend.path.name}: model returned an output of shape {d.shape}, expected ({window_d},)")
    return d


class StreamCounter:
    """Counts steps in a stream of 16-kHz mono float32 PCM blocks (see the module docstring)."""

    def __init__(self, backend: Backend, card: ModelCard, *, keep: bool = False, align: Alignment | None = None) -> None:
        if card.density_stride != DENSITY_STRIDE:
            raise ValueError(f"card density stride {card.density_stride} != {DENSITY_STRIDE}")
        self.backend, self.card, self.keep = backend, card, keep
        self.align = schedule(card, align)
        w = card.window_frames
        self.frontend = StreamingLogMel()
        self.ring = FrameRing(N_MELS, w + DENSITY_STRIDE)  # one window + what the tail reaches back
        self._x = np.zeros((1, 1, N_MELS, w), dtype=np.float32)  # model input, reused every hop
        self.counter = Counter(params=card.counter_params())
        if card.streaming:
            backend.reset()  # a streaming model starts every stream from its initial state
        self.latency = LatencyStats()
        self.windows = 0  # regular windows run so far
        self.samples = 0  # PCM samples consumed
        self.frontend_ms = 0.0
        self.finished = False
        self.tail_ran = False
        self._logits: list[np.ndarray] = []
        self._events: list[float] = []

    # -- streaming ---------------------------------------------------------------------------
    def push(self, pcm: np.ndarray) -> list[Update]:
        """Consume a block of samples; return one :class:`Update` per window that ran."""
        if self.finished:
            raise RuntimeError("push() after finish(): build a new StreamCounter for a new stream")
        pcm = np.asarray(pcm, dtype=np.float32)
        if pcm.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n,), got {pcm.shape}")
        if not np.isfinite(pcm).all():
            check_finite(pcm, f"block at sample {self.samples}")
        t0 = time.perf_counter()
        frames = self.frontend.push(pcm)  # (N_MELS, k): only the frames this block completes
        self.frontend_ms += (time.perf_counter() - t0) * 1e3
        self.samples += len(pcm)
        # the block's frames go into the ring at once (it holds them beside what the next window
        # needs from before them), then every window they complete runs: one copy a block, not one
        # a window (a streaming model's 2-s block holds 12 or 13 packets)
        self.ring.reserve(self.align.window_frames + DENSITY_STRIDE + frames.shape[1])
        self.ring.write(frames)
        updates = []
        while (end := self.align.window_end(self.windows)) <= self.ring.written:
            lo, hi = self.align.commit(self.windows)
            updates.append(self._run(self.align.window_start(self.windows), lo, hi, t=end / FRAMES_PER_SECOND))
            self.windows += 1
        return updates

    def finish(self) -> list[Update]:
        """End of stream: run the tail window (if any density frames are left) and freeze."""
        if self.finished:
            return []
        self.finished = True
        tail = self.align.tail(self.ring.written, self.counter.frames)
        updates = []
        if tail is not None:
            start, lo, hi = tail
            self.tail_ran = True
            updates.append(self._run(start, lo, hi, t=self.samples / SAMPLE_RATE, is_tail=True))
        flushed = self.counter.flush()
        if self.keep:
            self._events.extend(flushed)
        if flushed and updates:  # the tail window's update, with the steps the end of the stream counted
            updates[-1] = replace(updates[-1], events=updates[-1].events + tuple(flushed), steps=self.counter.steps)
        elif flushed:
            updates.append(self._update(latency_ms=0.0, events=flushed, t=self.samples / SAMPLE_RATE, is_tail=True))
        return updates

    def _run(self, start: int, lo: int, hi: int, t: float, is_tail: bool = False) -> Update:
        x = self._x[0, 0]
        n = min(self.align.window_frames, self.ring.written - start)  # < W only for a short stream's tail
        self.ring.read_into(start, x[:, :n])
        if n < self.align.window_frames:
            x[:, n:] = PAD_LOG_MEL
        t0 = time.perf_counter()
        d = _window_logits(self.backend, self._x, self.align.window_d)
        ms = (time.perf_counter() - t0) * 1e3
        self.latency.add(ms)
        committed = d[lo:hi]
        events = self.counter.commit(committed)
        if self.keep:
            self._logits.append(committed.copy())
            self._events.extend(events)
        return self._update(ms, events, t, is_tail)

    def _update(self, latency_ms: float, events: list[float], t: float, is_tail: bool) -> Update:
        return Update(
            window=self.windows,
            t=t,
            t_final=self.counter.t_final,
            steps=self.counter.steps,
            cadence_spm=self.counter.cadence_spm(),
            latency_ms=latency_ms,
            events=tuple(events),
            tail=is_tail,
        )

    # -- results -----------------------------------------------------------------------------
    @property
    def steps(self) -> float:
        return self.counter.steps

    @property
    def audio_s(self) -> float:
        return self.samples / SAMPLE_RATE

    def result(self) -> CountResult:
        return CountResult(
            steps=self.counter.steps,
            n_events=self.counter.n_events,
            windows=self.windows + int(self.tail_ran),
            n_frames=self.ring.written,
            audio_s=self.audio_s,
            logits=_joined(self._logits) if self.keep else None,
            events=list(self._events) if self.keep else None,
            **_runner_figures(self.counter),
        )

    def summary(self) -> dict:
        """The count and a runner's figures; engine figures under ``"debug"`` (``edge-run --verbose``)."""
        audio_s = self.audio_s
        busy_ms = self.frontend_ms + self.latency.total_ms
        c = self.counter
        return {
            "steps": c.steps,
            "events": c.n_events,
            "audio_s": round(audio_s, 3),
            "schedule": {"hop_ms": self.align.hop_frames * 1000 // FRAMES_PER_SECOND,
                         "lookahead_ms": self.align.latency_frames * 1000 // FRAMES_PER_SECOND},
            "t_final": round(c.t_final, 3),
            "windows": self.latency.n,
            **{k: _round(v, 2) for k, v in _runner_figures(c).items()},
            "debug": {
                "counter": c.params.to_dict(),
                "cadence_spm": round(c.cadence_spm(), 2),
                "latency_ms_median": round(self.latency.percentile(50), 3),
                "latency_ms_p95": round(self.latency.percentile(95), 3),
                "latency_ms_max": round(self.latency.max_ms, 3),
                "frontend_ms_total": round(self.frontend_ms, 1),
                "rtf": round(busy_ms / 1e3 / audio_s, 5) if audio_s else None,
                "alignment": self.align.describe(),
            },
        }


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def _runner_figures(counter: Counter) -> dict:
    """Active time, mean and peak cadence (``edge.counter`` module docstring); final after ``flush()``."""
    return {
        "active_s": counter.active_s,
        "mean_cadence_spm": counter.mean_cadence(),
        "peak_cadence_spm": counter.peak_cadence,
    }


def offline_log_mel(audio: np.ndarray, chunk_s: float = 60.0) -> np.ndarray:
    """``edge.frontend.log_mel`` of a whole recording, computed in chunks to bound temporaries.

    Each chunk gets the HISTORY samples before it, so the frames are those of one call on the
    whole recording (causal framing); (N_MELS, len(audio) // HOP_LENGTH) float32.
    """
    n_frames = len(audio) // HOP_LENGTH
    out = np.empty((N_MELS, n_frames), dtype=np.float32)
    chunk = max(SAMPLE_RATE, int(chunk_s * SAMPLE_RATE)) // HOP_LENGTH * HOP_LENGTH  # >= 1 s > HISTORY
    for s in range(0, n_frames * HOP_LENGTH, chunk):
        history = audio[s - HISTORY : s] if s else None
        f0 = s // HOP_LENGTH
        block = log_mel(audio[s : s + chunk], history=history)
        out[:, f0 : f0 + block.shape[1]] = block
    return out


def count_offline(backend: Backend, card: ModelCard, audio: np.ndarray, *, keep: bool = True,
                  align: Alignment | None = None) -> CountResult:
    """Count the steps of a whole 16-kHz mono recording: the reference streaming must equal."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n,), got {audio.shape}")
    check_finite(audio, "audio")
    align = schedule(card, align)
    frames = offline_log_mel(audio)
    n_frames = frames.shape[1]
    x = np.zeros((1, 1, N_MELS, align.window_frames), dtype=np.float32)
    counter = Counter(params=card.counter_params())
    if card.streaming:
        backend.reset()
    logits, events = [], []
    plan = align.plan(n_frames)
    for start, lo, hi in plan:
        n = min(align.window_frames, n_frames - start)
        x[0, 0, :, :n] = frames[:, start : start + n]
        x[0, 0, :, n:] = PAD_LOG_MEL
        committed = _window_logits(backend, x, align.window_d)[lo:hi]
        events.extend(counter.commit(committed))
        if keep:
            logits.append(committed.copy())
    events.extend(counter.flush())
    return CountResult(
        steps=counter.steps,
        n_events=counter.n_events,
        windows=len(plan),
        n_frames=n_frames,
        audio_s=len(audio) / SAMPLE_RATE,
        logits=_joined(logits) if keep else None,
        events=events if keep else None,
        **_runner_figures(counter),
    )

