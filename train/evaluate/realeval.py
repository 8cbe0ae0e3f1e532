"""Score an exported artifact as the phone runs it, beside the baselines, on the same runs.

Why: the headline is the bundled int8 model on the real-sound set (train.data.realset),
read against counters that do not learn: a number without the metronome beside it says
nothing (a constant 170 steps/min scored 5-s MAE 1.53 where a density model once scored 3.32).

Every counter gives, per run, its step events (times); :func:`score` bins them into 100-fps
frames like the truth (``train.data.features.step_frames``) for the window metrics of
:func:`train.evaluate.metrics.evaluate_runs` and matches them to the true steps for the
per-step ones (the metronomes' window counts are their constant rate's, as in
:mod:`train.evaluate.baselines`):

- ``model``: the artifact through the edge runtime, ``edge.stream.count_offline`` (the
  streaming alignment and event counter ``edge-run`` reproduces exactly, with the card's
  counter parameters): ``CountResult.events``;
- ``metronome``: steps at a constant 170 steps/min; ``metronome-train``: at the mean cadence of
  the run's fold's train runs (the paper's naive baseline, as a cadence);
- ``onset``: :mod:`train.evaluate.baselines`' onset counter, tuned on the run's fold's train runs only;
- ``madmom``, ``madmom-tempo`` (the strong peers, asked for with :data:`PEERS`): madmom's CNN
  onset detector with peak picking, and with its beat-tracking DBN (:mod:`train.evaluate.baselines`),
  tuned likewise; left out with a note when madmom is not installed.

Scored runs: every labeled run of the dataset (the real-sound set: the tuned baselines
cross-validate over its folds), or the test split of given folds (the synthetic test fold).
Reported: 5-s MAE, PCC, median and worst total-count error, cadence MAE, per-step precision,
recall and F-measure (+-50 ms) and the timing error of the matched steps, for all runs and per
source (package, or session) and per surface.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from edge.counter import CounterParams
from edge.util import atomic_write
from edge.contract import SAMPLE_RATE
from edge.frontend import FRAMES_PER_SECOND, HOP_LENGTH

WINDOW_S = 5.0
PEERS = ("madmom", "madmom-tempo")
DEFAULT_COUNTERS = ("model", "metronome", "metronome-train", "onset")
COUNTERS = DEFAULT_COUNTERS + PEERS
TUNED = ("metronome-train", "onset", "madmom", "madmom-tempo")  # fitted on the train runs of the scored run's fold
CARD_METRICS = ("mae", "pcc", "tce_median", "tce_max", "cadence_mae", "step_precision", "step_recall", "step_f", "timing_median_ms")


@dataclass
class Score:
    """One counter on a set of runs."""

    mae: float  # 5-s windows
    pcc: float
    tce_median: float  # total-count error, % of the true count
    tce_max: float
    cadence_mae: float  # steps/min on 10-s windows
    n_runs: int
    n_windows: int
    step_precision: float  # per step, +-50 ms, pooled over the runs (train.evaluate.metrics.step_scores)
    step_recall: float
    step_f: float
    timing_mae_ms: float  # |predicted - true| of the matched steps: mean, median; and the median signed error
    timing_median_ms: float
    timing_bias_ms: float


@dataclass
class Report:
    dataset: str
    artifact: str
    runs: list[dict]  # run_id, source, surface, true, and per counter its total
    overall: dict[str, Score]
    by_source: dict[str, dict[str, Score]] = field(default_factory=dict)
    by_surface: dict[str, dict[str, Score]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        def clean(x):
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return clean(asdict(self))


def score(pred_events: Sequence[np.ndarray], true_events: Sequence[np.ndarray], n_frames: Sequence[int],
          pred_frames: Sequence[np.ndarray] | None = None) -> Score:
    """Score step events of runs against their true steps; run i spans ``n_frames[i]`` front-end
    frames. ``pred_frames``: per-frame counts for the window metrics (default: the events binned)."""
    from train.data.features import step_frames
    from train.evaluate.metrics import evaluate_runs

    if pred_frames is None:
        pred_frames = [step_frames(e, n) for e, n in zip(pred_events, n_frames)]
    preds = [np.asarray(f, np.float64) for f in pred_frames]
    truths = [step_frames(e, n).astype(np.float64) for e, n in zip(true_events, n_frames)]
    r = evaluate_runs(preds, truths, window_frames=int(WINDOW_S * FRAMES_PER_SECOND), fps=FRAMES_PER_SECOND,
                      pred_events=pred_events, true_events=true_events)
    tce = np.asarray(r.tce_runs, np.float64)
    return Score(r.mae, r.pcc, r.tce_median, float(np.nanmax(tce)) if np.isfinite(tce).any() else math.nan, r.cadence_mae,
                 r.n_runs, r.n_windows, r.step_precision, r.step_recall, r.step_f, r.timing_mae_ms, r.timing_median_ms,
                 r.timing_bias_ms)


def _sources(root: Path) -> dict[str, str]:
    """run_id -> source package, from a real-sound set's runs.jsonl (empty for other datasets)."""
    path = root / "runs.jsonl"
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            info = json.loads(line)
            if "package" in info:
                out[info["run_id"]] = info["package"]
    return out


def evaluate_artifact(
    artifact: str | Path | None,
    dataset: str | Path,
    folds: Sequence[int] | None = None,
    n_folds: int = 5,
    counters: Sequence[str] = DEFAULT_COUNTERS,
    threads: int = 1,
    progress: Optional[Callable[[str], None]] = None,
) -> Report:
    """Score ``artifact`` (None: baselines only) and the baselines ``counters`` (any of
    :data:`COUNTERS`; add :data:`PEERS` for madmom) on ``dataset``'s labeled runs."""
    from edge.audio import load_audio
    from edge.stream import count_offline, offline_log_mel
    from train.evaluate.baselines import (METRONOME_SPM, MadmomGrid, OnsetGrid, _segment_truth, import_madmom, madmom_activation,
                                          metronome_events, metronome_frames, onset_events, train_cadence_spm)
    from train.data.features import step_frames
    from train.data.folds import split as split_folds
    from train.data.recordings import labeled, load_dataset, load_steps

    say = progress or (lambda msg: None)
    unknown = [c for c in counters if c not in COUNTERS]
    if unknown:
        raise ValueError(f"unknown counter(s) {', '.join(unknown)}; expected {', '.join(COUNTERS)}")
    counters = list(counters)
    if artifact is None:
        counters = [c for c in counters if c != "model"]
    notes = []
    if any(c.startswith("madmom") for c in counters):
        try:
            import_madmom()
        except ImportError as e:
            counters = [c for c in counters if not c.startswith("madmom")]
            notes.append(f"madmom and madmom-tempo skipped: {str(e).splitlines()[0]}")
    root = Path(dataset).resolve()
    recs = labeled(load_dataset(root, n_folds=n_folds))
    if not recs:
        raise ValueError(f"{root}: no labeled runs")
    if folds:
        scored = [r for k in folds for r in split_folds(recs, k, n_folds)[2]]
    else:
        scored = list(recs)
    fold_of_scored = {r.run_id: r.fold for r in scored}
    # the runs whose features are needed: scored ones, plus the train runs of their folds (tuning)
    need_train = any(c in TUNED for c in counters)
    train_of: dict[int, list] = {}
    if need_train:
        for k in sorted({f for f in fold_of_scored.values()}):
            train_of[k] = split_folds(recs, k, n_folds)[0]
    if need_train and any(not rs for rs in train_of.values()):
        # e.g. a user's own runs, all in one fold: nothing to tune on without looking at the scored runs
        left_out = [c for c in counters if c in TUNED]
        counters = [c for c in counters if c not in TUNED]
        notes.append(f"{' and '.join(left_out)} skipped: no training runs outside the scored fold(s) to tune them on")
        need_train, train_of = False, {}
    for note in notes:
        say(note)
    wanted = {r.run_id: r for r in scored}
    for rs in train_of.values():
        wanted.update({r.run_id: r for r in rs})
    backend = card = None
    if "model" in counters:
        from edge.backends import load_model

        backend, card = load_model(artifact, threads=threads)
    madmoms = [c for c in counters if c.startswith("madmom")]
    n_frames: dict[str, int] = {}
    true_steps: dict[str, np.ndarray] = {}
    mels: dict[str, np.ndarray] = {}
    acts: dict[str, np.ndarray] = {}
    events: dict[str, dict[str, np.ndarray]] = {c: {} for c in counters}
    rates: dict[str, dict[str, np.ndarray]] = {c: {} for c in counters if c.startswith("metronome")}  # their window counts
    for i, (run_id, rec) in enumerate(wanted.items()):
        say(f"{i + 1}/{len(wanted)} {run_id}")
        audio = load_audio(rec.audio)
        n_frames[run_id] = len(audio) // HOP_LENGTH
        true_steps[run_id] = load_steps(rec.steps)
        if "onset" in counters:
            mels[run_id] = offline_log_mel(audio)
        if madmoms:
            acts[run_id] = madmom_activation(audio)
        if backend is not None and run_id in fold_of_scored:
            res = count_offline(backend, card, audio, keep=True)
            events["model"][run_id] = np.asarray(res.events, np.float64)
    truth = {i: step_frames(true_steps[i], n_frames[i]) for i in wanted}
    extra: dict = {"metronome_spm": METRONOME_SPM, "folds": {}, **({"skipped": "; ".join(notes)} if notes else {})}
    onset_grid = None
    if "onset" in counters:
        say(f"onset grid over {len(mels)} runs")
        onset_grid = OnsetGrid(mels)
    if madmoms:
        say(f"{' and '.join(madmoms)} grids over {len(acts)} runs")
    madmom_grids = {c: MadmomGrid(acts, n_frames, c) for c in madmoms}
    window_frames = int(WINDOW_S * FRAMES_PER_SECOND)
    for k, train in sorted(train_of.items()) if need_train else [(None, [])]:
        test = [r for r in scored if k is None or r.fold == k]
        fx: dict = {}
        seg_truth = {r.run_id: _segment_truth(truth[r.run_id]) for r in train}
        if "metronome-train" in counters:
            spm = train_cadence_spm([truth[r.run_id] for r in train])
            fx["metronome_train_spm"] = spm
            for r in test:
                events["metronome-train"][r.run_id] = metronome_events(n_frames[r.run_id], spm)
                rates["metronome-train"][r.run_id] = metronome_frames(n_frames[r.run_id], spm)
        if onset_grid is not None:
            params, train_mae = onset_grid.tune([r.run_id for r in train], seg_truth, window_frames)
            fx["onset_params"], fx["onset_train_mae"] = asdict(params), train_mae
            for r in test:
                events["onset"][r.run_id] = onset_events(mels[r.run_id], params)
        for c, g in madmom_grids.items():
            params, train_mae = g.tune([r.run_id for r in train], seg_truth, window_frames)
            fx[f"{c}_params"], fx[f"{c}_train_mae"] = asdict(params), train_mae
            for r in test:
                events[c][r.run_id] = g.events_of(r.run_id, params)
        if k is not None:
            extra["folds"][str(k)] = fx
    for r in scored:
        if "metronome" in counters:
            events["metronome"][r.run_id] = metronome_events(n_frames[r.run_id])
            rates["metronome"][r.run_id] = metronome_frames(n_frames[r.run_id])
    sources = _sources(root)
    src = {r.run_id: sources.get(r.run_id) or r.session or "-" for r in scored}
    surf = {r.run_id: r.surface or "-" for r in scored}

    def frames(c: str, i: str) -> np.ndarray:
        return rates[c][i] if c in rates else step_frames(events[c][i], n_frames[i])

    def table(ids: list[str]) -> dict[str, Score]:
        return {c: score([events[c][i] for i in ids], [true_steps[i] for i in ids], [n_frames[i] for i in ids],
                         [frames(c, i) for i in ids]) for c in counters}

    ids = [r.run_id for r in scored]
    runs = [{"run_id": i, "source": src[i], "surface": surf[i], "true": float(truth[i].sum()),
             **{c: round(float(frames(c, i).sum()), 2) for c in counters}} for i in ids]
    by_source = {g: table([i for i in ids if src[i] == g]) for g in sorted(set(src.values()))}
    by_surface = {g: table([i for i in ids if surf[i] == g]) for g in sorted(set(surf.values()))}
    if card is not None:
        extra["card"] = {"sha256": card.sha256, "counter": card.counter_params().to_dict()}
    extra["scored"] = "all labeled runs" if not folds else f"test split of fold(s) {', '.join(map(str, folds))}"
    return Report(str(root), str(artifact) if artifact else "", runs, table(ids), by_source, by_surface, extra)


def is_step_free(dataset: str | Path, n_folds: int = 5) -> bool:
    """Whether every labeled run of ``dataset`` has no steps (``footfall data negatives``): a set
    that scores what a counter finds where there is nothing to find."""
    from train.data.recordings import labeled, load_dataset, load_steps

    recs = labeled(load_dataset(Path(dataset), n_folds=n_folds))
    return bool(recs) and all(len(load_steps(r.steps)) == 0 for r in recs)


@dataclass
class StepFreeReport:
    """Steps counted on step-free runs: per run, and per kind (the run's session) in steps a minute."""

    dataset: str
    artifact: str
    runs: list[dict]  # run_id, kind, seconds, and each counter's steps
    by_kind: dict[str, dict[str, dict[str, float]]]  # kind -> counter -> {runs, minutes, per_min_median, per_min_max, runs_over_1}
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


STEP_FREE_COUNTERS = ("model", "onset")
STEP_FREE_LIMIT = 1.0  # steps a minute a step-free run may hold (a lone knock)


def tune_onset(dataset: str | Path, progress: Optional[Callable[[str], None]] = None):
    """The onset counter's parameters tuned on every labeled run of ``dataset`` (5-s MAE):
    the settings it is scored at where a set has nothing to tune on."""
    from edge.audio import load_audio
    from edge.stream import offline_log_mel
    from train.evaluate.baselines import OnsetGrid, _segment_truth
    from train.data.features import step_frames
    from train.data.recordings import labeled, load_dataset, load_steps

    say = progress or (lambda msg: None)
    recs = labeled(load_dataset(Path(dataset).resolve()))
    if not recs or all(len(load_steps(r.steps)) == 0 for r in recs):
        raise ValueError(f"{dataset}: no labeled steps to tune the onset counter on (give a set with steps, e.g. data/realval)")
    mels, seg_truth = {}, {}
    for i, rec in enumerate(recs):
        say(f"onset tuning: {i + 1}/{len(recs)} {rec.run_id}")
        audio = load_audio(rec.audio)
        mels[rec.run_id] = offline_log_mel(audio)
        seg_truth[rec.run_id] = _segment_truth(step_frames(load_steps(rec.steps), len(audio) // HOP_LENGTH))
    say(f"onset grid over {len(mels)} runs")
    params, _ = OnsetGrid(mels).tune(list(mels), seg_truth, int(WINDOW_S * FRAMES_PER_SECOND))
    return params


def step_free_report(artifact: str | Path, dataset: str | Path, tune_on: str | Path, threads: int = 1,
                     progress: Optional[Callable[[str], None]] = None) -> StepFreeReport:
    """Count the steps ``artifact`` (through the edge runtime, as ``edge-run``) and the onset counter
    (tuned on the labeled runs of ``tune_on``: a step-free set has nothing to tune on) find in every
    run of a step-free dataset; a step counter should find none."""
    from edge.audio import load_audio
    from edge.backends import load_model
    from edge.stream import count_offline, offline_log_mel
    from train.evaluate.baselines import onset_events
    from train.data.recordings import labeled, load_dataset

    say = progress or (lambda msg: None)
    root = Path(dataset).resolve()
    recs = labeled(load_dataset(root))
    backend, card = load_model(artifact, threads=threads)
    onset = tune_onset(tune_on, say)
    runs = []
    for i, rec in enumerate(recs):
        say(f"{i + 1}/{len(recs)} {rec.run_id}")
        audio = load_audio(rec.audio)
        runs.append({"run_id": rec.run_id, "kind": rec.session or "-", "seconds": round(len(audio) / SAMPLE_RATE, 3),
                     "model": int(count_offline(backend, card, audio).steps),
                     "onset": int(len(onset_events(offline_log_mel(audio), onset)))})
    by_kind: dict[str, dict[str, dict[str, float]]] = {}
    for kind in sorted({r["kind"] for r in runs}):
        rs = [r for r in runs if r["kind"] == kind]
        minutes = sum(r["seconds"] for r in rs) / 60.0
        by_kind[kind] = {}
        for c in STEP_FREE_COUNTERS:
            per_min = [r[c] * 60.0 / r["seconds"] if r["seconds"] else 0.0 for r in rs]
            by_kind[kind][c] = {"runs": len(rs), "minutes": round(minutes, 2), "per_min_median": round(float(np.median(per_min)), 2),
                                "per_min_max": round(max(per_min), 2), "runs_over_1": sum(v > STEP_FREE_LIMIT for v in per_min)}
    extra = {"card": {"sha256": card.sha256, "counter": card.counter_params().to_dict()}, "onset_params": asdict(onset),
             "onset_tuned_on": str(Path(tune_on).resolve())}
    return StepFreeReport(str(root), str(artifact), runs, by_kind, extra)


def step_free_table(report: StepFreeReport, title: str = ""):
    """A rich Table: per kind, each counter's steps a minute (median / worst) and runs over the limit."""
    from rich.table import Table

    t = Table(title=title or None)
    t.add_column("kind")
    t.add_column("runs", justify="right")
    for c in STEP_FREE_COUNTERS:
        t.add_column(c, justify="right")
    for kind, by in report.by_kind.items():
        t.add_row(kind, str(next(iter(by.values()))["runs"]),
                  *(f"{by[c]['per_min_median']:.0f} / {by[c]['per_min_max']:.0f} ({by[c]['runs_over_1']})" for c in STEP_FREE_COUNTERS))
    t.caption = (f"steps a minute, median / worst run (runs over {STEP_FREE_LIMIT:g} a minute): no run holds a step, every "
                 f"step counted is a false one; the onset counter tuned on {Path(report.extra['onset_tuned_on']).name}")
    return t


def _f(x: float, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def overall_table(report: Report, title: str = ""):
    """A rich Table: one row per counter."""
    from rich.table import Table

    t = Table(title=title or None)
    for col in ("counter", "runs", "5-s MAE", "PCC", "total err % median", "total err % worst", "cadence MAE spm",
                "step P", "step R", "step F", "timing err ms mean / median"):
        t.add_column(col, justify="left" if col == "counter" else "right", no_wrap=col == "counter")
    for c, s in report.overall.items():
        t.add_row(c, str(s.n_runs), _f(s.mae), _f(s.pcc), _f(s.tce_median, 1), _f(s.tce_max, 1), _f(s.cadence_mae, 1),
                  _f(s.step_precision), _f(s.step_recall), _f(s.step_f), f"{_f(s.timing_mae_ms, 1)} / {_f(s.timing_median_ms, 1)}")
    t.caption = "per step: a predicted step within +-50 ms of a true one, one to one; timing error of the matched steps"
    return t


def group_table(groups: dict[str, dict[str, Score]], what: str):
    """A rich Table: one row per group, 5-s MAE, median total error and step F of every counter."""
    from rich.table import Table

    t = Table(title=f"per {what}: 5-s MAE / median total-count error % / step F")
    t.add_column(what)
    t.add_column("runs", justify="right")
    counters = list(next(iter(groups.values()))) if groups else []
    for c in counters:
        t.add_column(c, justify="right")
    for g, scores in groups.items():
        n = next(iter(scores.values())).n_runs if scores else 0
        t.add_row(g, str(n), *(f"{_f(scores[c].mae, 2)} / {_f(scores[c].tce_median, 1)} / {_f(scores[c].step_f, 2)}" for c in counters))
    return t


def save_report(report: Report, path: str | Path) -> Path:
    return atomic_write(path, json.dumps(report.to_json(), indent=1) + "\n")


def write_to_card(report: Report, artifact: str | Path, key: str) -> Path:
    """Record ``report`` in the artifact's card as ``accuracy[key]``: the model and every baseline
    on the same runs, and which set it was (its path, runs and the sha256 of its manifest). The
    artifact is not touched; the card is rewritten atomically and still verifies."""
    from edge.card import load_verified_card, sha256_file, write_card

    if not key.isidentifier():
        raise ValueError(f"card key {key!r}: use a plain name such as real_sound or synthetic")
    card = load_verified_card(artifact)
    root = Path(report.dataset)
    card.accuracy[key] = {
        "dataset": root.name, "scored": report.extra.get("scored", ""), "runs": report.overall["model"].n_runs,
        "manifest_sha256": sha256_file(root / "manifest.csv"),
        **{name: {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else None) for k, v in asdict(sc).items()
                  if k in CARD_METRICS} for name, sc in report.overall.items()},
    }
    return write_card(card, artifact)


# the step-probability thresholds :func:`choose_counter` tries (edge.counter: the probability at which a
# step where the cadence puts one is neutral evidence; lower counts quieter steps, and more sound with no runner)
THRESHOLDS = (0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.14, 0.2)

@dataclass
class ChoiceRuns:
    """The labeled runs that choose a model's epoch and its counter: real-sound validation runs,
    and step-free runs (labeled with no steps, so a counter that counts them pays in the same 5-s
    MAE). Log-mel, true steps and length of each run, loaded once."""

    datasets: list[str]
    mels: list[np.ndarray]
    truths: list[np.ndarray]
    frames: list[int]

    @classmethod
    def load(cls, datasets: str | Path | Sequence[str | Path]) -> "ChoiceRuns":
        """From a dataset folder, a comma-separated list of them, or a sequence."""
        from edge.audio import load_audio
        from edge.stream import offline_log_mel
        from train.data.recordings import labeled, load_dataset, load_steps

        if isinstance(datasets, (str, Path)):
            datasets = [d.strip() for d in str(datasets).split(",") if d.strip()]
        datasets = list(dict.fromkeys(Path(d).as_posix() for d in datasets))  # a set named twice counts once
        out = cls(datasets, [], [], [])
        for root in datasets:
            recs = labeled(load_dataset(Path(root)))
            if not recs:
                raise ValueError(f"{root}: no labeled runs to choose with")
            for r in recs:
                audio = load_audio(r.audio)
                out.mels.append(offline_log_mel(audio))
                out.truths.append(load_steps(r.steps))
                out.frames.append(len(audio) // HOP_LENGTH)
        if not out.mels:
            raise ValueError("no dataset to choose with")
        if max(out.frames) < WINDOW_S * FRAMES_PER_SECOND:  # the 5-s MAE of such runs is NaN: nothing to choose by
            raise ValueError(f"{', '.join(out.datasets)}: no run there is as long as a 5-s window, so nothing can be chosen on it; "
                             "give runs of 10 s or more (footfall data realset --split val)")
        return out

    def maes(self, model, window_frames: int, thresholds: Sequence[float] = THRESHOLDS, device="cpu", precision: str = "fp32",
             batch_size: int = 64) -> dict[float, float]:
        """5-s MAE of ``model``'s events over all the runs, per counter threshold (the model runs once a
        run, on ``device``: where a training run keeps it)."""
        tracks = self.tracks(model, window_frames, device, precision, batch_size)
        return {thr: self.mae(tracks, model_counter(model, thr)) for thr in thresholds}

    def tracks(self, model, window_frames: int, device="cpu", precision: str = "fp32", batch_size: int = 64) -> list[np.ndarray]:
        """``model``'s committed step-onset logits of every run."""
        from train.evaluate.predict import predict_run_logits

        return [predict_run_logits(model, mel, window_frames, device, precision, batch_size) for mel in self.mels]

    def mae(self, tracks: Sequence[np.ndarray], params) -> float:
        """5-s MAE over all the runs of the events ``params`` counts in ``tracks``."""
        from edge.counter import count_events

        return score([count_events(t, params) for t in tracks], self.truths, self.frames).mae


def model_counter(model, threshold: float):
    """The counter a model's card ships at ``threshold`` (the cadence tracker's other parameters at
    their defaults, for every model)."""
    return CounterParams(threshold=threshold)


def best_threshold(maes: dict[float, float]) -> float:
    """The threshold of the lowest MAE; a tie goes to the higher threshold (the safer one on sound with no runner)."""
    return min(maes, key=lambda t: (round(maes[t], 6), -t))


def choose_counter(model, datasets, window_frames: int, thresholds: Sequence[float] = THRESHOLDS):
    """The counter a float model ships with, chosen on :class:`ChoiceRuns` (a real-sound validation
    set, ``footfall data realset --split val``, and held-out step-free runs): the cadence tracker's
    threshold whose events have the lowest 5-s MAE over their runs; a tie goes to the higher
    threshold (the safer one on sound with no runner). The rest at their defaults.

    Returns ``(CounterParams, choice)``, ``choice`` = what a card records: the sets, the threshold
    and the MAE of every threshold tried.
    """
    runs = datasets if isinstance(datasets, ChoiceRuns) else ChoiceRuns.load(datasets)
    tracks = runs.tracks(model, window_frames)
    maes = {thr: runs.mae(tracks, model_counter(model, thr)) for thr in thresholds}
    best = best_threshold(maes)
    choice = {"datasets": runs.datasets, "runs": len(runs.mels), "metric": "5-s MAE", "threshold": best,
              "mae_by_threshold": {f"{t:g}": round(m, 4) for t, m in maes.items()}}
    return model_counter(model, best), choice
