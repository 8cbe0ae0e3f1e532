"""Golden vectors for the Java DSP core of ``android_demo`` (ring buffer, log-mel, counter).

``python -m edge.golden OUT [--model PATH] [--seconds S] [--seed N]`` writes, for one fixed
input, everything the Java side must reproduce:

============================  =========  ===================  =======================================
file                          dtype      shape                what
============================  =========  ===================  =======================================
``pcm.f32``                   float32    (n_samples,)         16-kHz mono input in [-1, 1]
``logmel.f32``                float32    (64, n_frames)       ``edge.frontend.log_mel(pcm)``, mel-major
``window_input.f32``          float32    (n_windows, 64, W)   the model input of every window (the
                                                              tail of a short stream right-padded
                                                              with ``pad_log_mel``)
``window_logits.f32``         float32    (n_windows, W // 4)  the model's step-onset logits per window
``committed_logits.f32``      float32    (n_frames // 4,)     the logits the counter commits
``mel_filters.f32``           float32    (64, 257)            the frozen filterbank (for reference)
``updates.csv``               text       one row per window   window,start_frame,lo,hi,t,t_final,
                                                              steps,cadence_spm,cadence_state,events
                                                              (space-separated step times in s)
``counter_cases.json``        JSON                            logit tracks made to hit every rule of
                                                              the counter (:func:`counter_cases`)
``index.json``                JSON                            this table (``files``: dtype, shape,
                                                              order), the front-end and alignment
                                                              constants, the model and its ``card``,
                                                              the ``counter`` parameters and constants,
                                                              the per-window ``updates`` and the
                                                              ``totals``
============================  =========  ===================  =======================================

All ``.f32`` files are raw little-endian IEEE-754 float32 in C (row-major) order with no header:
element ``[i, j]`` of a (rows, cols) array is at byte offset ``4 * (i * cols + j)``. Windows are
those of ``edge.counter.Alignment.plan``: window ``i`` starts at front-end frame
``updates[i].start_frame`` and commits its local output frames ``[lo, hi)`` to
:class:`edge.counter.Counter` (parameters: the card's ``counter``). Each update holds what the
counter says once that window's logits are committed: ``steps`` (events so far), ``t_final``,
``cadence_spm``, ``cadence_state``, ``active_s``, ``peak_cadence_spm`` and ``events``, the step
times that window counted. At the end of the stream ``Counter.flush()`` counts what was still
held (``totals.flushed_events``); those times join the last window's ``events``, as
``edge.stream.StreamCounter.finish`` returns them, with the final ``steps`` (its other fields as
the window left them; the engine emits the flushed events in a final update of their own when no
tail window runs). ``totals`` are the counter after the flush: ``steps``, ``n_events``,
every event time, ``active_s`` and the mean and peak cadence (``null``: none).

Without ``--model`` (and without a bundled model) the logits come from :class:`OnsetBackend`,
a fixed numpy function of the log-mel (energy onsets) that stands in for a network: the Java
counter is tested on logits, whichever model made them. A streaming card (:func:`stream_card`:
a ``state``, window == hop == the packet; ``alignment.stateful`` in the index) runs
:class:`StreamOnsetBackend`, which carries its state from packet to packet: each window is then
a packet, taken once, and the tail is the remaining frames as one padded packet (it never reaches
back); the model is reset at the start of the stream.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from edge.contract import CARD_SCHEMA_VERSION, HOP_FRAMES, OUTPUT_KIND, WINDOW_FRAMES
from edge.card import ModelCard
from edge.counter import (
    ACTIVE_BIN_S,
    ACTIVE_MIN_SPM,
    CADENCE_MIN_S,
    DENSITY_FPS,
    DENSITY_STRIDE,
    MIN_GAP,
    PAD_LOG_MEL,
    RETRO_S,
    SILENT_LOG_MEL,
    SILENT_LOGIT,
    TEMPO_STEP,
    TRACK_RATE,
    Alignment,
    Counter,
    CounterParams,
    _Tracker,
)
from edge.frontend import (
    FRAMES_PER_SECOND,
    N_MELS,
    SAMPLE_RATE,
    frontend_params,
    mel_filters,
)
from edge.stream import _window_logits, offline_log_mel, schedule

GOLDEN_FORMAT = "footfall-golden/2"

# OnsetBackend: logit = ONSET_GAIN * (sum over 4 frames of relu(rise of the mean log-mel - ONSET_THETA) / ONSET_RISE) - ONSET_OFFSET
ONSET_THETA = 0.5  # nats of mean log-mel rise per 10 ms below which nothing counts (noise flicker)
ONSET_RISE = 4.5  # mean log-mel rise (nats) of one click of click_track(): one click ~ 1 unit
ONSET_GAIN = 8.0  # logit per unit of rise: a click's frame reaches about +4 (p 0.98) ...
ONSET_OFFSET = 4.0  # ... and a frame with no rise sits at -4 (p 0.02)
# a window's first output frame is never an onset: at a stream's start its front-end frames still
# see the zeros before the audio, a rise that is no click
# StreamOnsetBackend: the same rise, against the previous packet's last frame (state "prev"), plus
# LEVEL_WEIGHT * clip(mean log-mel - level, +-LEVEL_CLIP), level (state "level") an exponential
# average of the mean log-mel with LEVEL_RATE per output frame; both states start at 0
LEVEL_WEIGHT = 0.25  # logit per nat above the background level
LEVEL_CLIP = 4.0  # nats: at most +-1 logit
LEVEL_RATE = 0.1  # per 40-ms output frame: a time constant of 0.4 s
STREAM_STATE = ({"name": "prev", "shape": [1, 1, 1, 1]}, {"name": "level", "shape": [1, 1, 1, 1]})


class OnsetBackend:
    """A fixed, deterministic numpy "model" with the model contract (log-mel -> step-onset logits).

    ``logit[j] = ONSET_GAIN * sum_{t=4j}^{4j+3} relu(e[t] - e[t-1] - ONSET_THETA) / ONSET_RISE -
    ONSET_OFFSET`` with ``e[t]`` the mean over mel bands of frame t; the rise of a window's first
    output frame (t < 4) is 0. It responds
    to energy onsets, so counts on :func:`click_track` are meaningful; the tests hold torch/ONNX/
    LiteRT/ExecuTorch exports of the same network (``tests/edge_fixtures.py``) against it.
    """

    format = "numpy"
    name = "numpy-onset"

    def __init__(self, window_frames: int, threads: int = 1) -> None:
        self.path = Path("onset.numpy")
        self.threads = threads
        self.input_shape = (1, 1, N_MELS, window_frames)
        self.output_shape = (1, window_frames // DENSITY_STRIDE)

    def reset(self) -> None:
        """No state: nothing to reset."""

    def run(self, logmel: np.ndarray) -> np.ndarray:
        e = logmel[0, 0].mean(axis=0, dtype=np.float32)  # (T,)
        rise = np.zeros_like(e)
        rise[1:] = np.maximum(e[1:] - e[:-1] - np.float32(ONSET_THETA), 0)
        rise[:DENSITY_STRIDE] = 0  # the first output frame
        units = rise.reshape(-1, DENSITY_STRIDE).sum(axis=1) * np.float32(ONSET_GAIN / ONSET_RISE)
        return (units - np.float32(ONSET_OFFSET)).astype(np.float32)


class StreamOnsetBackend(OnsetBackend):
    """A stateful stand-in for a streaming network: each call takes the next packet of the stream.

    The rise of :class:`OnsetBackend`, its first frame's against the previous packet's last frame
    (state ``prev``), plus ``LEVEL_WEIGHT * clip(m[j] - level, -LEVEL_CLIP, LEVEL_CLIP)`` with
    ``m[j]`` the mean log-mel of output frame j and ``level`` (state) an exponential average of
    ``m`` (``LEVEL_RATE`` per frame, updated after each frame). Every logit depends on the packets
    before it: a stream not started from :meth:`reset` or a packet run twice changes the logits.
    """

    name = "numpy-onset-stream"

    def __init__(self, window_frames: int, threads: int = 1) -> None:
        super().__init__(window_frames, threads)
        self.path = Path("onset-stream.numpy")
        self.reset()

    def reset(self) -> None:
        """The initial state: zeros, as a streaming model's."""
        self.state = [np.zeros(s["shape"], dtype=np.float32) for s in STREAM_STATE]

    def run(self, logmel: np.ndarray) -> np.ndarray:
        prev, level = self.state
        e = logmel[0, 0].mean(axis=0, dtype=np.float32)  # (P,)
        rise = np.maximum(e - np.concatenate([prev.reshape(1), e[:-1]]) - np.float32(ONSET_THETA), 0)
        units = rise.reshape(-1, DENSITY_STRIDE).sum(axis=1) * np.float32(ONSET_GAIN / ONSET_RISE)
        out = units - np.float32(ONSET_OFFSET)
        lv = level.reshape(())
        for j, m in enumerate(e.reshape(-1, DENSITY_STRIDE).mean(axis=1, dtype=np.float32)):
            out[j] += np.float32(LEVEL_WEIGHT) * np.clip(m - lv, np.float32(-LEVEL_CLIP), np.float32(LEVEL_CLIP))
            lv = lv + np.float32(LEVEL_RATE) * (m - lv)
        self.state = [e[-1:].reshape(prev.shape), np.asarray(lv, dtype=np.float32).reshape(level.shape)]
        return out.astype(np.float32)


def onset_card(window_frames: int = WINDOW_FRAMES, hop_frames: int = HOP_FRAMES, counter: dict | None = None) -> ModelCard:
    """An in-memory card for :class:`OnsetBackend` (no artifact, so nothing to verify);
    ``counter``: the card's counter parameters (default: none, the counter's defaults)."""
    return ModelCard(
        artifact="onset.numpy",
        format="numpy",
        precision="fp32",
        backend="numpy",
        sha256="",
        window_frames=window_frames,
        hop_frames=hop_frames,
        density_fps=DENSITY_FPS,
        input_shape=[1, 1, N_MELS, window_frames],
        model={"name": "numpy-onset", "theta": ONSET_THETA, "rise": ONSET_RISE, "gain": ONSET_GAIN, "offset": ONSET_OFFSET},
        counter=dict(counter or {}),
    )


def stream_card(packet_frames: int = 8, counter: dict | None = None) -> ModelCard:
    """An in-memory card for :class:`StreamOnsetBackend`: a streaming model (``state``) that takes
    ``packet_frames`` frames per call; ``counter`` as for :func:`onset_card`."""
    card = onset_card(packet_frames, packet_frames, counter)
    card.artifact = "onset-stream.numpy"
    card.model = card.model | {"name": StreamOnsetBackend.name, "level_weight": LEVEL_WEIGHT, "level_clip": LEVEL_CLIP,
                               "level_rate": LEVEL_RATE}
    card.state = [dict(s) for s in STREAM_STATE]
    return card


def click_track(
    seconds: float, spm: float = 170.0, seed: int = 0, noise: float = 0.01, start_s: float = 0.3,
    drop: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a click per step: ``(pcm float32 (n,), step_times float64)``, reproducible.

    Clicks are 8-ms decaying noise bursts of random loudness (peak 0.2-0.5) every 60/spm s
    with 4 % jitter over slowly modulated white noise; a plain test signal, not running audio.
    ``drop``: the indices of clicks left silent (a step the microphone missed); they are not in
    ``step_times``, and every other sample is as without ``drop``.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    pcm = rng.standard_normal(n) * noise * (1.0 + 0.3 * np.sin(2 * np.pi * 0.13 * t))
    period = 60.0 / spm
    steps = []
    s = start_s
    burst_n = int(0.05 * SAMPLE_RATE)
    envelope = np.exp(-np.arange(burst_n) / (0.008 * SAMPLE_RATE))
    k = 0
    while s < seconds - 0.06:
        i = int(round(s * SAMPLE_RATE))
        burst = rng.uniform(0.2, 0.5) * envelope * rng.standard_normal(burst_n)  # drawn even when dropped
        if k not in drop:
            steps.append(s)
            pcm[i : i + burst_n] += burst[: len(pcm[i : i + burst_n])]
        s += period * (1.0 + rng.uniform(-0.04, 0.04))
        k += 1
    return np.clip(pcm, -1.0, 1.0).astype(np.float32), np.asarray(steps, dtype=np.float64)


def _write_f32(path: Path, array: np.ndarray) -> dict:
    a = np.ascontiguousarray(array, dtype="<f4")
    path.write_bytes(a.tobytes())
    return {"dtype": "float32", "byte_order": "little", "order": "C", "shape": list(a.shape)}


def _figures(counter: Counter) -> dict:
    """The counter's state that a runner sees (edge.counter module docstring)."""
    return {
        "steps": counter.steps,
        "n_events": counter.n_events,
        "t_final": counter.t_final,
        "t_decided": counter.t_decided,
        "cadence_spm": counter.cadence_spm(),
        "cadence_state": counter.cadence_state(),
        "active_frames": counter.active_frames,
        "active_steps": counter.active_steps,
        "active_s": counter.active_s,
        "mean_cadence_spm": counter.mean_cadence(),
        "peak_cadence_spm": counter.peak_cadence,
    }


def counter_constants(params: CounterParams) -> dict:
    """What the Java counter derives from ``params`` and its own constants, to hold them equal: the
    tracker's scores (the threshold's logit, the start and stop costs, every tempo change's cost),
    its periods, block, lag and back-pointer memory, and the module's constants."""
    tracker = _Tracker(params)
    lo, hi = params.periods
    n = len(tracker.per)
    # row i: the costs of tempo i -> j for j = i - TEMPO_STEP .. i + TEMPO_STEP within the periods
    # (the tracker's band k = i - j + TEMPO_STEP holds the change into tempo j)
    costs = [[float(tracker.band[i - j + TEMPO_STEP, j]) for j in range(max(0, i - TEMPO_STEP), min(n, i + TEMPO_STEP + 1))]
             for i in range(n)]
    return {
        "threshold_logit": params.threshold_logit,
        "start_cost": tracker.start,
        "stop_cost": tracker.stop,
        "bias": tracker.bias,
        "tempo_costs": costs,
        "period_min": lo,
        "period_max": hi,
        "n_tempi": n,
        "block": tracker.block,
        "lag_frames": params.lag_frames,
        "keep": tracker.keep,
        "bin_lag_frames": Counter(params=params)._lag_frames,
        "track_fps": params.fps,
        "track_rate": TRACK_RATE,
        "tempo_step": TEMPO_STEP,
        "min_gap": MIN_GAP,
        "retro_s": RETRO_S,
        "cadence_min_s": CADENCE_MIN_S,
        "active_min_spm": ACTIVE_MIN_SPM,
        "active_bin_s": ACTIVE_BIN_S,
        "fps": DENSITY_FPS,
    }


# the counter parameter sets counter_cases() runs every track with (the defaults first)
CASE_PARAMS = (
    {},
    {"threshold": 0.5},  # a high threshold: a quiet step costs, a half-strength far foot is no step
    {"threshold": 0.002},  # a low one: noise and a short burst of knocks may start a runner
    {"min_spm": 140.0, "max_spm": 190.0},  # a narrow cadence range: periods 16-21, blocks of 16
    {"min_spm": 100.0, "max_spm": 240.0},  # 12.5 frames rounded up: an odd block of 13 (tracker frames come in pairs)
    {"min_spm": 30.0, "max_spm": 300.0},  # the widest range: periods 10-100, the shortest block
    {"tempo_lambda": 0.0},  # tempo changes free: ties between the tempi a step may come from
    {"tempo_lambda": 400.0},  # tempo changes all but barred
    {"switch_prob": 0.2},  # runners start and stop cheaply: a lone knock is nearly a run
    {"threshold": 0.5, "switch_prob": 0.2},  # a missed step costs, a stop is cheap: two missed steps stop a runner
    {"lag_s": 0.0},  # every frame decided at the end of its block
    {"lag_s": 0.25},  # 12.5 frames, rounded half to even: 12 (a block)
    {"lag_s": 9.5, "switch_prob": 0.001},  # a lag longer than RETRO_S: runs confirmed late, at the flush
)


def _bump(x: np.ndarray, t: float, height: float, rng: np.random.Generator) -> None:
    """A step at ``t`` s on the logit track ``x`` (25 frames/s): its frame at ``height``, the frames
    either side lower by a random amount (a step's onset between two frames), never lowering any."""
    j = int(t * DENSITY_FPS)
    if not 0 <= j < len(x):
        return
    x[j] = max(x[j], height)
    for k in (j - 1, j + 1):
        if 0 <= k < len(x):
            x[k] = max(x[k], height - rng.uniform(0.3, 5.0))


def _case_tracks(seed: int) -> dict[str, np.ndarray]:
    """Step-onset logit tracks (float32, 25 frames/s) that reach every branch of the counter."""
    rng = np.random.default_rng(seed)
    tracks = {}
    # a runner: 2 s of nothing, a run at 170 spm (jitter 4 %) with a quiet step, one and two steps
    # missing and an echo half a step after one, a 6-s stop with a lone knock in it, a walk at
    # 110 spm, and the last step in the last frame
    n = 1000
    x = np.full(n, -6.0) + rng.normal(0, 0.5, n)
    t, k = 2.0, 0
    while t < 13.0:
        if k not in (9, 17, 18):
            _bump(x, t, 0.0 if k == 25 else rng.uniform(1.0, 5.0), rng)
        if k == 12:
            _bump(x, t + 0.18, 1.0, rng)  # an echo
        t += 60 / 170 * (1.0 + rng.uniform(-0.04, 0.04))
        k += 1
    _bump(x, 16.0, 4.0, rng)  # a lone knock in the stop
    t = 19.0
    while t < n / DENSITY_FPS:
        end = int(t * DENSITY_FPS) + 1  # the stream ends on the last step's frame
        _bump(x, t, rng.uniform(1.0, 5.0), rng)
        t += 60 / 110 * (1.0 + rng.uniform(-0.03, 0.03))
    tracks["runner"] = x[:end].astype(np.float32)
    # a tempo change without a stop: a run slowing from 180 to 110 spm and back, a step at most
    # a few percent longer than the last
    n = 1100
    x = np.full(n, -6.0) + rng.normal(0, 0.3, n)
    t, spm = 1.0, 180.0
    while t < 42.0:
        _bump(x, t, rng.uniform(2.0, 5.0), rng)
        spm = max(110.0, spm * 0.985) if t < 22.0 else min(180.0, spm / 0.985)
        t += 60 / spm
    tracks["slowdown"] = x.astype(np.float32)
    # a far foot: every other step at half strength (logit -1: p 0.27), at 150 spm, up to the end
    # of a partial activity bin
    q = np.full(712, -6.0, dtype=np.float32)
    q[12::20] = 3.0
    q[22::20] = -1.0
    q[13::20] = q[23::20] = -4.0
    tracks["far_foot"] = q
    # a metronome: symmetric peaks (the odd tracker frames between them equal) every 9 frames
    # (166.7 spm), one, two and one missing
    m = np.full(500, -6.0, dtype=np.float32)
    beats = [j for i, j in enumerate(range(10, 490, 9)) if i not in (15, 25, 26, 40)]
    m[beats] = 3.0
    m[[j - 1 for j in beats]] = m[[j + 1 for j in beats]] = 1.0
    tracks["metronome"] = m
    # 60 spm on the dot (two tracker periods of the fastest 120 spm, or one of 60 spm: slower than the
    # defaults' 75), with steps on the 2-s activity bins' and the 60-spm active limits
    e = np.full(412, -6.0, dtype=np.float32)
    e[24::25] = 3.0
    e[23::25] = e[25::25] = 0.0
    tracks["sixty"] = e
    # a lone knock, and later a burst of three knocks 0.12 s apart: no runner
    kn = np.full(300, -7.0, dtype=np.float32)
    kn[60] = 5.0
    kn[200:207:3] = 5.0
    tracks["knocks"] = kn
    # noise: random peaks with no cadence
    tracks["noise"] = (rng.normal(-3.5, 1.5, 800)).astype(np.float32)
    # ties everywhere: whole logits in [-3, 3] (equal scores of many paths), and plateaus of 1 to
    # 11 frames of them
    tracks["integers"] = rng.integers(-3, 4, 600).astype(np.float32)
    tracks["plateaus"] = np.repeat(rng.integers(-3, 4, 120), rng.integers(1, 12, 120)).astype(np.float32)
    # two levels on plateaus of 1 to 3 frames, a fixed track (whatever the seed): with free tempo
    # changes a runner stops where two tempi end their periods at one frame with equal scores, and
    # the stop is the first tempo's (as numpy's argmax takes it)
    r = np.random.default_rng(1001)
    tracks["two_levels"] = np.repeat(r.choice([-6.0, 3.0], 80, p=[0.7, 0.3]), r.integers(1, 4, 80))[:300].astype(np.float32)
    tracks["silence"] = np.full(200, -8.0, dtype=np.float32)
    # streams shorter than one block (a single frame: its two tracker frames; 5 frames with a
    # step), and none at all
    tracks["one_frame"] = np.array([4.0], dtype=np.float32)
    tracks["short"] = np.array([-6.0, -6.0, 4.0, -6.0, 3.0], dtype=np.float32)
    tracks["empty"] = np.zeros(0, dtype=np.float32)
    return tracks


def counter_cases(seed: int = 0) -> dict:
    """Every :func:`_case_tracks` track counted by :class:`edge.counter.Counter` with every
    :data:`CASE_PARAMS` set, committed in random chunks: per chunk the events and the figures."""
    rng = np.random.default_rng(seed + 1)
    cases = []
    for name, logits in _case_tracks(seed).items():
        for p in CASE_PARAMS:
            params = CounterParams.from_dict(p)
            counter = Counter(params=params)
            chunks, i = [], 0
            while i < len(logits):
                n = int(rng.integers(1, 60))
                events = counter.commit(logits[i : i + n])
                chunks.append({"n": len(logits[i : i + n]), "events": events} | _figures(counter))
                i += n
            flushed = counter.flush()
            cases.append({
                "name": name,
                "params": params.to_dict(),
                "constants": counter_constants(params),
                "logits": [float(v) for v in logits],  # float32 values, exact in JSON
                "chunks": chunks,
                "flushed": flushed,
                "totals": _figures(counter),
            })
    return {"format": GOLDEN_FORMAT, "fps": DENSITY_FPS, "cases": cases}


def write_golden(out: str | Path, backend=None, card: ModelCard | None = None, *, pcm: np.ndarray | None = None,
                 seconds: float = 6.0, seed: int = 0, align: Alignment | None = None) -> dict:
    """Write the golden files into ``out`` (created); return the index that was written.

    ``align``: the schedule (a hop and a lookahead); default, the card's file schedule."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if backend is None:
        card = card or onset_card()
        backend = (StreamOnsetBackend if card.streaming else OnsetBackend)(card.window_frames)
    if card is None:
        raise ValueError("a backend needs its model card")
    if pcm is None:
        pcm, _ = click_track(seconds, seed=seed)
    pcm = np.asarray(pcm, dtype=np.float32)
    align = schedule(card, align)
    params = card.counter_params()
    frames = offline_log_mel(pcm)
    n_frames = frames.shape[1]
    plan = align.plan(n_frames)
    w = align.window_frames
    inputs = np.zeros((len(plan), N_MELS, w), dtype=np.float32)
    logits = np.zeros((len(plan), align.window_d), dtype=np.float32)
    counter = Counter(params=params)
    backend.reset()  # a streaming model starts the stream from its initial state
    committed, updates, all_events = [], [], []
    for i, (start, lo, hi) in enumerate(plan):
        n = min(w, n_frames - start)
        inputs[i, :, :n] = frames[:, start : start + n]
        inputs[i, :, n:] = PAD_LOG_MEL
        logits[i] = _window_logits(backend, inputs[i][None, None], align.window_d)  # (the engine's call: silence not run)
        committed.append(logits[i, lo:hi])
        events = counter.commit(logits[i, lo:hi])
        all_events += events
        is_tail = i == len(plan) - 1 and (start, lo, hi) != (align.window_start(i), *align.commit(i))
        updates.append({
            "window": i,
            "start_frame": start,
            "lo": lo,
            "hi": hi,
            "tail": bool(is_tail),
            "t": (len(pcm) / SAMPLE_RATE) if is_tail else (start + w) / FRAMES_PER_SECOND,
            "t_final": counter.t_final,
            "steps": counter.steps,
            "cadence_spm": counter.cadence_spm(),
            "cadence_state": counter.cadence_state(),
            "active_s": counter.active_s,
            "peak_cadence_spm": counter.peak_cadence,
            "events": events,
        })
    flushed = counter.flush()
    all_events += flushed
    if flushed:  # the last update gets the flushed events and the final count
        updates[-1]["events"] = updates[-1]["events"] + flushed
        updates[-1]["steps"] = counter.steps
    files = {
        "pcm.f32": _write_f32(out / "pcm.f32", pcm),
        "logmel.f32": _write_f32(out / "logmel.f32", frames),
        "window_input.f32": _write_f32(out / "window_input.f32", inputs),
        "window_logits.f32": _write_f32(out / "window_logits.f32", logits),
        "committed_logits.f32": _write_f32(out / "committed_logits.f32", np.concatenate([np.zeros(0), *committed])),
        "mel_filters.f32": _write_f32(out / "mel_filters.f32", mel_filters()),
    }
    with open(out / "updates.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["window", "start_frame", "lo", "hi", "t", "t_final", "steps", "cadence_spm", "cadence_state", "events"])
        for u in updates:
            writer.writerow([u["window"], u["start_frame"], u["lo"], u["hi"], repr(u["t"]), repr(u["t_final"]),
                             repr(u["steps"]), repr(u["cadence_spm"]), u["cadence_state"],
                             " ".join(repr(e) for e in u["events"])])
    files["updates.csv"] = {"dtype": "text/csv", "rows": len(updates)}
    (out / "counter_cases.json").write_text(json.dumps(counter_cases(seed)) + "\n")
    files["counter_cases.json"] = {"dtype": "application/json"}
    index = {
        "format": GOLDEN_FORMAT,
        "files": files,
        "frontend": frontend_params(),
        "output": OUTPUT_KIND,
        "card_schema": CARD_SCHEMA_VERSION,
        "alignment": align.describe() | {
            "lookahead_frames": align.lookahead_frames,  # null: each window commits its centre hop
            "density_fps": DENSITY_FPS,
            "commit_offset_density_frames": align.commit_offset_d,
            "ring_capacity_frames": w + DENSITY_STRIDE,
            "pad_log_mel": PAD_LOG_MEL,
            "silent_log_mel": SILENT_LOG_MEL,
            "silent_logit": SILENT_LOGIT,
        },
        "model": {"name": getattr(backend, "name", type(backend).__name__), "artifact": card.artifact,
                  "sha256": card.sha256, "precision": card.precision},
        "card": dataclasses.asdict(card),  # the model card as its JSON file holds it
        "counter": params.to_dict(),  # the card's counter parameters, defaults filled in
        "counter_constants": counter_constants(params),
        "n_samples": int(len(pcm)),
        "n_frames": int(n_frames),
        "updates": updates,
        "totals": _figures(counter) | {"events": all_events, "flushed_events": flushed},
    }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(
    out: Path,
    model: Path | None = None,
    seconds: float = 6.0,
    seed: int = 0,
    low_latency: bool = False,
) -> None:
    """Write golden vectors into OUT (model: an artifact with its card; default: the numpy onset model;
    low_latency: on the card's low-latency schedule)."""
    backend = card = None
    if model is not None:
        from edge.backends import load_model

        backend, card = load_model(model)
    align = None
    if low_latency:
        card = card or onset_card()
        if not card.low_latency:
            raise SystemExit(f"--low-latency: {card.artifact}'s card has no low-latency schedule (give --model with one)")
        align = card.alignment(low_latency=True)
    index = write_golden(out, backend, card, seconds=seconds, seed=seed, align=align)
    print(f"wrote {len(index['files'])} golden files to {out} ({index['n_samples']} samples, "
          f"{len(index['updates'])} windows, {index['totals']['n_events']} steps)")


if __name__ == "__main__":
    import typer

    typer.run(main)
