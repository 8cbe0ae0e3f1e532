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
    PAD_LOG_MEL,
    Alignment,
    Counter,
    CounterParams,
)
from edge.frontend import (
    FRAMES_PER_SECOND,
    N_MELS,
    SAMPLE_RATE,
    frontend_params,
    mel_filters,
)
from edge.stream import offline_log_mel, schedule

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
        "cadence_spm": counter.cadence_spm(),
        "cadence_state": counter.cadence_state(),
        "active_frames": counter.active_frames,
        "active_steps": counter.active_steps,
        "active_s": counter.active_s,
        "mean_cadence_spm": counter.mean_cadence(),
        "peak_cadence_spm": counter.peak_cadence,
    }


def counter_constants(params: CounterParams) -> dict:
    """What the Java counter derives from ``params`` and its own constants, to hold them equal."""
    return {
        "threshold_logit": params.threshold_logit,
        "peak_logit": params.peak_logit,
        "lag_s": params.lag_s,
        "cadence_min_s": CADENCE_MIN_S,
        "active_min_spm": ACTIVE_MIN_SPM,
        "active_bin_s": ACTIVE_BIN_S,
        "fps": DENSITY_FPS,
    }


# the counter parameter sets counter_cases() runs every track with (the defaults first)
CASE_PARAMS = (
    {},
    {"train_steps": 2, "fill_gaps": False},
    {"threshold": 0.8, "min_interval_s": 0.32, "max_gap_s": 1.0, "gap_tolerance": 0.45},  # 0.32 s: 8 frames
    {"train_steps": 1, "threshold": 0.3, "min_interval_s": 0.12, "max_gap_s": 0.6, "gap_tolerance": 0.0},
    {"train_steps": 3, "min_interval_s": 0.03},  # shorter than a frame: adjacent frames may both be steps
    {"keep_first": True},  # of close peaks the first, final at once (a streaming model's card)
    {"keep_first": True, "train_steps": 2, "threshold": 0.8, "min_interval_s": 0.32, "max_gap_s": 1.0},  # 8 frames on the dot
    # the cadence gate: weak peaks where the next step is due, early peaks dropped (a streaming card's)
    {"keep_first": True, "threshold": 0.8, "weak_threshold": 0.2, "min_phase": 0.6, "min_interval_s": 0.12},
    {"threshold": 0.8, "weak_threshold": 0.2, "min_phase": 0.7, "gap_tolerance": 0.3},  # with the interval rule's higher peak
    {"keep_first": True, "min_phase": 0.5, "min_interval_s": 0.12, "fill_gaps": False},  # early peaks dropped, no weak ones
)


def _case_tracks(seed: int) -> dict[str, np.ndarray]:
    """Step-onset logit tracks (float32, 25 frames/s) that reach every branch of the counter."""
    rng = np.random.default_rng(seed)
    tracks = {}
    # ties everywhere: whole logits in [-3, 3] (plateaus, a peak exactly at the 0.5 threshold's 0,
    # equal neighbours on either side, a flat parabola)
    tracks["integers"] = rng.integers(-3, 4, 600).astype(np.float32)
    # plateaus of 1 to 11 frames (0.04-0.44 s): a flat top is one peak, at its first frame
    tracks["plateaus"] = np.repeat(rng.integers(-3, 4, 120), rng.integers(1, 12, 120)).astype(np.float32)
    # a runner: a bump every 0.36 s (jitter 6 %), one, two and three steps missing, double peaks
    # closer than the minimum interval, a lone knock, a 3-s stop, a walk at 100 spm, and the
    # tops of some bumps on a plateau; the last bump in the last frame
    n = 1500
    x = np.full(n, -4.0) + rng.normal(0, 0.4, n)
    t, k, times = 1.0, 0, []
    while t < 24.0:
        if 9.0 <= t < 12.0:  # the stop
            t = 12.0
        period = 0.36 if t < 12.0 else 0.6
        if k not in (5, 12, 13, 30, 31, 32):
            times.append(t)
        t += period * (1.0 + rng.uniform(-0.06, 0.06))
        k += 1
    times.append(10.5)  # a knock during the stop
    for i, ti in enumerate(times):
        j = int(ti * DENSITY_FPS)
        h = rng.uniform(0.5, 6.0)
        x[j] = max(x[j], h)
        x[j - 1] = max(x[j - 1], h - rng.uniform(0.5, 4.0))
        if j + 1 < n:
            x[j + 1] = max(x[j + 1], h - rng.uniform(0.0, 4.0) if i % 7 else h)  # every 7th: a plateau
        if i % 11 == 3 and j + 5 < n:
            x[j + 5] = h + 0.5  # a second peak 0.2 s later (inside the 0.25-s minimum interval)
    x[-1] = 5.0
    tracks["runner"] = x.astype(np.float32)
    # a quiet run: every other step just under the threshold (a far foot), at 150 spm, up to
    # the end of a partial activity bin
    q = np.full(712, -5.0, dtype=np.float32)
    q[12::10] = 2.0
    q[17::10] = -0.05
    tracks["far_foot"] = q
    # a metronome: symmetric peaks (times on frame centres) every 8 frames, 1 and 2 missing
    m = np.full(500, -6.0, dtype=np.float32)
    beats = [j for i, j in enumerate(range(10, 480, 8)) if i not in (20, 30, 31, 45)]
    m[beats] = 3.0
    m[[j - 1 for j in beats]] = m[[j + 1 for j in beats]] = 1.0
    tracks["metronome"] = m
    # 60 spm on the dot: flat-topped peaks (a plateau's vertex is half a frame on) at 1, 2, 3 ... s,
    # so intervals, the period and 2-s bins sit exactly on the 1-s gap, 60-spm and cadence limits
    e = np.full(412, -6.0, dtype=np.float32)
    e[24::25] = e[25::25] = 3.0
    e[23::25] = 1.0
    tracks["sixty"] = e
    tracks["silence"] = np.full(200, -8.0, dtype=np.float32)
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
        logits[i] = backend.run(inputs[i][None, None])
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
