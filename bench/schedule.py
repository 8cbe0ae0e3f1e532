"""The streaming schedule's trade-off: how soon a step is counted against how well.

A schedule is a hop ``H`` (a window runs every H frames) and a lookahead ``L`` (each window
commits the hop of density that ends L frames before its end; ``edge.counter.Alignment``). A
step is counted when the window whose commit holds it runs: ``L`` to ``L + H`` after it lands,
``L + H / 2`` on average. Less lookahead gives the network less right-hand context for the
frames it commits; a shorter hop runs the network ``W / H`` times per window length.

:func:`sweep` streams every labeled run of each dataset through ``edge.stream.StreamCounter``
(exactly what ``edge-run`` does) for each schedule and records, per schedule and dataset: the
5-s MAE and total-count error of the count (the card's rate calibration included), the
measured step-to-count latency (mean, p95, max; :func:`stream_run`) and the network invocations per audio second.
The metronome's 5-s MAE on the same runs is the floor a model must beat.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge.counter import DENSITY_STRIDE, Alignment
from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH


@dataclass
class ScheduleScore:
    dataset: str
    hop_frames: int
    lookahead_frames: int
    mae_5s: float
    tce_median_pct: float
    latency_mean_s: float
    latency_p95_s: float
    latency_max_s: float
    invokes_per_s: float
    n_runs: int
    metronome_mae_5s: float

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def centre_lookahead(window_frames: int, hop_frames: int) -> int:
    """The lookahead of the centre commit (``Alignment`` without one)."""
    return Alignment(window_frames, hop_frames).latency_frames


def stream_run(backend, card, audio: np.ndarray, align: Alignment) -> tuple[np.ndarray, list[float]]:
    """One run streamed hop by hop: (committed density as counted, step-to-count lags in s).

    A step's lag is the audio time of the hop at which the count a runner sees (whole steps)
    first includes it, minus the step's time (its event: the peak of its density bump). Steps
    only the end-of-stream flush counts are left out: no runner waits for them.
    """
    from edge.stream import StreamCounter

    engine = StreamCounter(backend, card, keep=True, align=align)
    block = align.hop_frames * HOP_LENGTH
    counted_at: list[float] = []  # counted_at[k]: audio time when the shown count reached k + 1
    events: list[float] = []

    def take(updates) -> None:
        for u in updates:
            events.extend(u.events)
            if not u.tail:
                counted_at.extend([u.t] * (int(math.floor(u.steps + 0.5)) - len(counted_at)))

    for s in range(0, len(audio), block):
        take(engine.push(audio[s : s + block]))
    take(engine.finish())
    lags = [t - e for t, e in zip(counted_at, events)]
    return engine.result().counted, lags


def sweep(
    artifact: str | Path,
    datasets: dict[str, Sequence],
    schedules: Sequence[tuple[int, int | None]],
    progress: Callable[[str], None] = lambda m: None,
) -> list[ScheduleScore]:
    """Score each ``(hop_frames, lookahead_frames or None for the centre)`` on each dataset.

    ``datasets``: name -> labeled runs (``train.data.recordings`` records with ``audio`` and
    ``steps``); each run is decoded once.
    """
    from edge.audio import load_audio
    from edge.backends import load_model
    from train.evaluate.baselines import metronome_frames
    from train.data.features import step_frames
    from train.data.recordings import load_steps
    from train.evaluate.realeval import density_frames, score

    backend, card = load_model(artifact, threads=1)
    out = []
    for name, runs in datasets.items():
        audios, truths = [], []
        for r in runs:
            audio = load_audio(r.audio)
            audios.append(audio)
            truths.append(step_frames(load_steps(r.steps), len(audio) // HOP_LENGTH).astype(np.float64))
        metronome = score([metronome_frames(len(t)).astype(np.float64) for t in truths], truths)
        for hop, lookahead in schedules:
            align = Alignment(card.window_frames, hop, DENSITY_STRIDE, lookahead)
            preds, lags = [], []
            for audio, truth in zip(audios, truths):
                counted, run_lags = stream_run(backend, card, audio, align)
                preds.append(density_frames(counted, len(truth), DENSITY_STRIDE))
                lags.extend(run_lags)
            s = score(preds, truths)
            lag = np.asarray(lags) if lags else np.asarray([math.nan])
            row = ScheduleScore(
                dataset=name, hop_frames=hop, lookahead_frames=align.latency_frames, mae_5s=s.mae,
                tce_median_pct=s.tce_median, latency_mean_s=float(lag.mean()), latency_p95_s=float(np.percentile(lag, 95)),
                latency_max_s=float(lag.max()), invokes_per_s=FRAMES_PER_SECOND / hop, n_runs=len(runs),
                metronome_mae_5s=metronome.mae,
            )
            progress(f"{name} hop {hop} lookahead {row.lookahead_frames}: MAE {s.mae:.3f}, latency mean "
                     f"{row.latency_mean_s:.2f} s p95 {row.latency_p95_s:.2f} s")
            out.append(row)
    return out
