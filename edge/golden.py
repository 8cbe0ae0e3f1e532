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
``window_density.f32``        float32    (n_windows, W // 4)  the model's density for each window
``committed_density.f32``     float32    (n_frames // 4,)     the density frames the counter commits
``mel_filters.f32``           float32    (64, 257)            the frozen filterbank (for reference)
``updates.csv``               text       one row per window   window,start_frame,lo,hi,t,t_final,
                                                              steps,cadence_spm,events (space-separated
                                                              step times in s)
``index.json``                JSON                            this table (``files``: dtype, shape,
                                                              order), the front-end and alignment
                                                              constants, the model, its rate
                                                              ``calibration`` (or null), the per-window
                                                              ``updates`` and the totals
============================  =========  ===================  =======================================

All ``.f32`` files are raw little-endian IEEE-754 float32 in C (row-major) order with no header:
element ``[i, j]`` of a (rows, cols) array is at byte offset ``4 * (i * cols + j)``. Windows are
those of ``edge.counter.Alignment.plan``: window ``i`` starts at front-end frame
``updates[i].start_frame`` and commits its local density frames ``[lo, hi)``; ``steps`` is the
cumulative committed density (float64 sum, frame by frame); ``events`` are the step times that
window completed (steps still waiting for their peak at the end of the stream are flushed into
the last window's events; the streaming engine emits them in a final update of their own when
no tail window runs).

Without ``--model`` (and without a bundled model) the density comes from :class:`OnsetBackend`,
a fixed numpy function of the log-mel (energy onsets) that stands in for a network: the Java
counter is tested on densities, whichever model made them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from edge.contract import HOP_FRAMES, WINDOW_FRAMES
from edge.card import ModelCard
from edge.counter import DENSITY_FPS, DENSITY_STRIDE, PAD_LOG_MEL, Alignment, Counter
from edge.frontend import (
    FRAMES_PER_SECOND,
    N_MELS,
    SAMPLE_RATE,
    frontend_params,
    mel_filters,
)
from edge.stream import offline_log_mel, schedule

GOLDEN_FORMAT = "footfall-golden/1"

# OnsetBackend: density = sum over 4 frames of relu(rise of the mean log-mel - ONSET_THETA) / ONSET_RISE
ONSET_THETA = 0.5  # nats of mean log-mel rise per 10 ms below which nothing counts (noise flicker)
ONSET_RISE = 4.5  # mean log-mel rise (nats) of one click of click_track(); calibrated so one click ~ 1 step


class OnsetBackend:
    """A fixed, deterministic numpy "model" with the model contract (log-mel -> density).

    ``density[j] = sum_{t=4j}^{4j+3} relu(e[t] - e[t-1] - ONSET_THETA) / ONSET_RISE`` with
    ``e[t]`` the mean over mel bands of frame t (``e[-1] = e[0]``). It responds to energy
    onsets, so counts on :func:`click_track` are meaningful; the tests hold torch/ONNX/LiteRT/
    ExecuTorch exports of the same network (``tests/edge_fixtures.py``) against it.
    """

    format = "numpy"
    name = "numpy-onset"

    def __init__(self, window_frames: int, threads: int = 1) -> None:
        self.path = Path("onset.numpy")
        self.threads = threads
        self.input_shape = (1, 1, N_MELS, window_frames)
        self.output_shape = (1, window_frames // DENSITY_STRIDE)

    def run(self, logmel: np.ndarray) -> np.ndarray:
        e = logmel[0, 0].mean(axis=0, dtype=np.float32)  # (T,)
        rise = np.zeros_like(e)
        rise[1:] = np.maximum(e[1:] - e[:-1] - np.float32(ONSET_THETA), 0)
        return (rise.reshape(-1, DENSITY_STRIDE).sum(axis=1) / np.float32(ONSET_RISE)).astype(np.float32)


def onset_card(window_frames: int = WINDOW_FRAMES, hop_frames: int = HOP_FRAMES) -> ModelCard:
    """An in-memory card for :class:`OnsetBackend` (no artifact, so nothing to verify)."""
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
        model={"name": "numpy-onset", "theta": ONSET_THETA, "rise": ONSET_RISE},
    )


def click_track(
    seconds: float, spm: float = 170.0, seed: int = 0, noise: float = 0.01, start_s: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a click per step: ``(pcm float32 (n,), step_times float64)``, reproducible.

    Clicks are 8-ms decaying noise bursts of random loudness (peak 0.2-0.5) every 60/spm s
    with 4 % jitter over slowly modulated white noise; a plain test signal, not running audio.
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
    while s < seconds - 0.06:
        steps.append(s)
        i = int(round(s * SAMPLE_RATE))
        pcm[i : i + burst_n] += rng.uniform(0.2, 0.5) * envelope * rng.standard_normal(burst_n)
        s += period * (1.0 + rng.uniform(-0.04, 0.04))
    return np.clip(pcm, -1.0, 1.0).astype(np.float32), np.asarray(steps, dtype=np.float64)


def _write_f32(path: Path, array: np.ndarray) -> dict:
    a = np.ascontiguousarray(array, dtype="<f4")
    path.write_bytes(a.tobytes())
    return {"dtype": "float32", "byte_order": "little", "order": "C", "shape": list(a.shape)}


def write_golden(out: str | Path, backend=None, card: ModelCard | None = None, *, pcm: np.ndarray | None = None,
                 seconds: float = 6.0, seed: int = 0, align: Alignment | None = None) -> dict:
    """Write the golden files into ``out`` (created); return the index that was written.

    ``align``: the schedule (a hop and a lookahead); default, the card's file schedule."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if backend is None:
        card = card or onset_card()
        backend = OnsetBackend(card.window_frames)
    if card is None:
        raise ValueError("a backend needs its model card")
    if pcm is None:
        pcm, _ = click_track(seconds, seed=seed)
    pcm = np.asarray(pcm, dtype=np.float32)
    align = schedule(card, align)
    frames = offline_log_mel(pcm)
    n_frames = frames.shape[1]
    plan = align.plan(n_frames)
    w = align.window_frames
    inputs = np.zeros((len(plan), N_MELS, w), dtype=np.float32)
    densities = np.zeros((len(plan), align.window_d), dtype=np.float32)
    counter = Counter(calibration=card.rate_calibration())
    committed, updates = [], []
    for i, (start, lo, hi) in enumerate(plan):
        n = min(w, n_frames - start)
        inputs[i, :, :n] = frames[:, start : start + n]
        inputs[i, :, n:] = PAD_LOG_MEL
        densities[i] = backend.run(inputs[i][None, None])
        committed.append(densities[i, lo:hi])
        events = counter.commit(densities[i, lo:hi])
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
            "events": events,
        })
    flushed = counter.flush()
    if flushed:
        updates[-1]["events"] = updates[-1]["events"] + flushed
    files = {
        "pcm.f32": _write_f32(out / "pcm.f32", pcm),
        "logmel.f32": _write_f32(out / "logmel.f32", frames),
        "window_input.f32": _write_f32(out / "window_input.f32", inputs),
        "window_density.f32": _write_f32(out / "window_density.f32", densities),
        "committed_density.f32": _write_f32(out / "committed_density.f32", np.concatenate([np.zeros(0), *committed])),
        "mel_filters.f32": _write_f32(out / "mel_filters.f32", mel_filters()),
    }
    with open(out / "updates.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["window", "start_frame", "lo", "hi", "t", "t_final", "steps", "cadence_spm", "events"])
        for u in updates:
            writer.writerow([u["window"], u["start_frame"], u["lo"], u["hi"], repr(u["t"]), repr(u["t_final"]),
                             repr(u["steps"]), repr(u["cadence_spm"]), " ".join(repr(e) for e in u["events"])])
    files["updates.csv"] = {"dtype": "text/csv", "rows": len(updates)}
    index = {
        "format": GOLDEN_FORMAT,
        "files": files,
        "frontend": frontend_params(),
        "alignment": align.describe() | {
            "lookahead_frames": align.lookahead_frames,  # null: each window commits its centre hop
            "density_fps": DENSITY_FPS,
            "commit_offset_density_frames": align.commit_offset_d,
            "ring_capacity_frames": w + DENSITY_STRIDE,
            "pad_log_mel": PAD_LOG_MEL,
            "cadence_window_s": counter.cadence_window_s,
        },
        "model": {"name": getattr(backend, "name", type(backend).__name__), "artifact": card.artifact,
                  "sha256": card.sha256, "precision": card.precision},
        "calibration": card.calibration or None,  # the card's RateCalibration (kind rate_gain), or null
        "n_samples": int(len(pcm)),
        "n_frames": int(n_frames),
        "updates": updates,
        "total_steps": counter.steps,
        "raw_total_steps": counter.raw_steps,  # the uncalibrated sum (== total_steps without calibration)
        "n_events": counter.n_events,
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
          f"{len(index['updates'])} windows, {index['total_steps']:.3f} steps)")


if __name__ == "__main__":
    import typer

    typer.run(main)
