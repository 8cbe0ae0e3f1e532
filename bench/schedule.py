"""The streaming schedule's trade-off: how soon a step is counted against how well.

A schedule is a hop ``H`` (a window runs every H frames) and a lookahead ``L`` (each window
commits the hop of step-onset logits that ends L frames before its end;
``edge.counter.Alignment``). A step's logits are committed when the window whose commit holds
them runs, ``L`` to ``L + H`` after it lands; the cadence tracker then decides the step ``lag_s``
of committed audio later, and a run's first steps once the run is confirmed (``edge.counter``). Less lookahead gives
the network less right-hand context for the frames it commits; a shorter hop runs the network
``W / H`` times per window length.

:func:`sweep` streams every labeled run of each dataset through ``edge.stream.StreamCounter``
(exactly what ``edge-run`` does) for each schedule and records, per schedule and dataset: the
5-s MAE, total-count error and per-step F-measure of the step events (the card's counter), the
measured step-to-count latency (mean, p95, max; :func:`stream_run`) and the network invocations
per audio second. The metronome's 5-s MAE on the same runs is the floor a model must beat.
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
    step_f: float = math.nan  # per step, +-50 ms (train.evaluate.metrics.step_scores)

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def stream_run(backend, card, audio: np.ndarray, align: Alignment, steps: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """One run streamed hop by hop: (its step events, step-to-count lags in s).

    A step's lag is the audio time of the hop whose :class:`~edge.stream.Update` emits the event
    matched to it (``train.evaluate.metrics.match_steps``, +-50 ms) minus the true step time
    ``steps``: when a runner sees it counted. Steps that no event matches have no lag; events
    only the end of the stream emits (the tail window, the flush) are left out: no runner waits
    for them.
    """
    from edge.stream import StreamCounter
    from train.evaluate.metrics import match_steps

    engine = StreamCounter(backend, card, align=align)
    block = align.hop_frames * HOP_LENGTH
    events: list[float] = []
    emitted_at: list[float] = []  # audio time of the hop that emitted each event (inf: the end of the stream)

    def take(updates) -> None:
        for u in updates:
            events.extend(u.events)
            emitted_at.extend([math.inf if u.tail else u.t] * len(u.events))

    for s in range(0, len(audio), block):
        take(engine.push(audio[s : s + block]))
    take(engine.finish())
    order = np.argsort(events, kind="stable")
    ev, at = np.asarray(events, np.float64)[order], np.asarray(emitted_at, np.float64)[order]
    true = np.sort(np.asarray(steps, np.float64))
    i_ev, i_true = match_steps(ev, true)
    lags = at[i_ev] - true[i_true]
    return ev, [float(v) for v in lags[np.isfinite(lags)]]


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
    from train.evaluate.baselines import metronome_events, metronome_frames
    from train.data.recordings import load_steps
    from train.evaluate.realeval import score

    backend, card = load_model(artifact, threads=1)
    out = []
    for name, runs in datasets.items():
        audios, steps, n_frames = [], [], []
        for r in runs:
            audio = load_audio(r.audio)
            audios.append(audio)
            steps.append(load_steps(r.steps))
            n_frames.append(len(audio) // HOP_LENGTH)
        metronome = score([metronome_events(n) for n in n_frames], steps, n_frames, [metronome_frames(n) for n in n_frames])
        for hop, lookahead in schedules:
            align = Alignment(card.window_frames, hop, DENSITY_STRIDE, lookahead)
            events, lags = [], []
            for audio, st in zip(audios, steps):
                run_events, run_lags = stream_run(backend, card, audio, align, st)
                events.append(run_events)
                lags.extend(run_lags)
            s = score(events, steps, n_frames)
            lag = np.asarray(lags) if lags else np.asarray([math.nan])
            row = ScheduleScore(
                dataset=name, hop_frames=hop, lookahead_frames=align.latency_frames, mae_5s=s.mae,
                tce_median_pct=s.tce_median, latency_mean_s=float(lag.mean()), latency_p95_s=float(np.percentile(lag, 95)),
                latency_max_s=float(lag.max()), invokes_per_s=FRAMES_PER_SECOND / hop, n_runs=len(runs),
                metronome_mae_5s=metronome.mae, step_f=s.step_f,
            )
            progress(f"{name} hop {hop} lookahead {row.lookahead_frames}: MAE {s.mae:.3f}, step F {s.step_f:.3f}, latency mean "
                     f"{row.latency_mean_s:.2f} s p95 {row.latency_p95_s:.2f} s")
            out.append(row)
    return out


GOAL_MEAN_S = 0.5  # a step is counted within half a second of landing, on average
GOAL_P95_S = 0.8

GRID: tuple[tuple[int, int | None], ...] = (
    (200, None), (200, 0), (100, None), (100, 20), (48, 48), (48, 24), (48, 12), (40, 40), (40, 20), (40, 12),
    (32, 20), (32, 12), (28, 20), (28, 16), (28, 12), (24, 24), (24, 20), (24, 16), (24, 12), (20, 20), (20, 16), (20, 12),
)


def choose(rows: Sequence[ScheduleScore], current: tuple[int, int], headline: str = "real") -> tuple[ScheduleScore | None, str]:
    """The default schedule: among those that meet the latency goals on every dataset and are no
    less accurate on ``headline`` than the ``current`` (hop, lookahead), the one that runs the
    network least often; ties go to the lower headline MAE. Returns (row on ``headline``, why)."""
    by = {}
    for r in rows:
        by.setdefault((r.hop_frames, r.lookahead_frames), {})[r.dataset] = r
    base = by.get(current, {}).get(headline)
    if base is None:
        return None, f"the current schedule {current} was not measured on {headline!r}"
    fast = [k for k, d in by.items() if all(r.latency_mean_s <= GOAL_MEAN_S and r.latency_p95_s <= GOAL_P95_S for r in d.values())]
    ok = [k for k in fast if headline in by[k] and by[k][headline].mae_5s <= base.mae_5s]
    if not ok:
        return None, (f"no schedule meets mean <= {GOAL_MEAN_S} s and p95 <= {GOAL_P95_S} s on every set with {headline} "
                      f"5-s MAE <= {base.mae_5s:.3f} (the current one's)")
    best = min(ok, key=lambda k: (by[k][headline].invokes_per_s, by[k][headline].mae_5s))
    r = by[best][headline]
    return r, (f"hop {r.hop_frames * 10} ms, lookahead {r.lookahead_frames * 10} ms: the fewest network runs "
               f"({r.invokes_per_s:g}/s) of the {len(ok)} schedules that count a step within {GOAL_MEAN_S} s on average "
               f"(p95 {GOAL_P95_S} s) on every set and are as accurate on {headline} sound as the default schedule "
               f"(5-s MAE {r.mae_5s:.3f} vs {base.mae_5s:.3f})")


def plot(rows: Sequence[ScheduleScore], path: Path, chosen: ScheduleScore | None = None) -> Path:
    """Latency (mean) against 5-s MAE, one panel per dataset; colour: network runs per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r.dataset for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], sets):
        rs = [r for r in rows if r.dataset == name]
        sc = ax.scatter([r.latency_mean_s for r in rs], [r.mae_5s for r in rs], c=[r.invokes_per_s for r in rs],
                        cmap="viridis", norm=matplotlib.colors.LogNorm(), s=36, zorder=3)
        for r in rs:
            ax.annotate(f"{r.hop_frames * 10}/{r.lookahead_frames * 10}", (r.latency_mean_s, r.mae_5s), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
        if chosen is not None:
            c = next((r for r in rs if (r.hop_frames, r.lookahead_frames) == (chosen.hop_frames, chosen.lookahead_frames)), None)
            if c is not None:
                ax.scatter([c.latency_mean_s], [c.mae_5s], s=160, facecolors="none", edgecolors="red", zorder=4, label="default")
        ax.axhline(rs[0].metronome_mae_5s, color="grey", ls="--", lw=1, label="metronome (170 spm)")
        ax.axvline(GOAL_MEAN_S, color="red", ls=":", lw=1, label=f"goal: mean {GOAL_MEAN_S} s")
        ax.set_xlabel("step-to-count latency, mean (s)")
        ax.set_ylabel("5-s MAE (steps)")
        ax.set_title(f"{name} sound ({rs[0].n_runs} runs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.colorbar(sc, ax=axes[0].tolist(), label="network runs per audio second")
    fig.suptitle("edge-run schedules: hop/lookahead in ms", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def table(rows: Sequence[ScheduleScore]) -> list[str]:
    lines = ["| set | hop (ms) | lookahead (ms) | network runs/s | 5-s MAE | metronome | median count error | step F | "
             "latency mean / p95 / max (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.hop_frames * 10} | {r.lookahead_frames * 10} | {r.invokes_per_s:g} | {r.mae_5s:.3f} | "
                     f"{r.metronome_mae_5s:.3f} | {r.tce_median_pct:.1f} % | {r.step_f:.3f} | {r.latency_mean_s:.2f} / "
                     f"{r.latency_p95_s:.2f} / {r.latency_max_s:.2f} |")
    return lines


def low_latency_schedule(rows: Sequence[ScheduleScore], chosen: ScheduleScore, why: str) -> dict:
    """The card's ``low_latency`` schedule: the chosen hop and lookahead, why, and its scores per set."""
    scores = {r.dataset: {"mae_5s": round(r.mae_5s, 4), "metronome_mae_5s": round(r.metronome_mae_5s, 4),
                          "step_f": round(r.step_f, 4) if math.isfinite(r.step_f) else None,
                          "latency_mean_s": round(r.latency_mean_s, 3), "latency_p95_s": round(r.latency_p95_s, 3),
                          "n_runs": r.n_runs}
              for r in rows if (r.hop_frames, r.lookahead_frames) == (chosen.hop_frames, chosen.lookahead_frames)}
    return {"hop_frames": chosen.hop_frames, "lookahead_frames": chosen.lookahead_frames, "why": why, "scores": scores}
