"""Runs made of recorded one-shots: wide data for the step model, on top of the generator.

The generator (``train.data.synth``) models a run in detail but teaches its own timbres. These runs
keep only its timing (a runner's plan, cadence curve and step times, stops and walks included)
and make every step from the *recorded* train-split footstep and impact one-shots of the sound
corpus, over a recorded or generated bed, through a randomised phone chain. Each run has a
consistent timbre (one to three one-shots, one EQ) with per-step jitter, as a real run has.
Each kit is also given a timbre of its own (:func:`kit_timbre`): every one-shot of the kit is
resampled by one factor (pitch and length together, as a bigger or smaller foot, shoe or floor)
and coloured by one resonance, so the few recorded footstep sounds stand for many.

The chain is a composed, seeded list of small transforms (:data:`CHAIN`), each with its
probability and its parameter ranges in one place, applied in order to the mixed run:
room (a decaying-noise response), bed at an SNR, microphone EQ tilt, band limits, an AGC-like
compressor, clipping, the run's level. Written with numpy/scipy (``scipy.signal`` filters):
the whole chain costs about a second per minute of audio here.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import signal

from edge.contract import SAMPLE_RATE as SR

Transform = Callable[[np.ndarray, np.random.Generator, dict], np.ndarray]


@dataclass(frozen=True)
class Step:
    """One transform of the chain: applied with probability ``p``; ``fn(x, rng, info)``."""

    name: str
    p: float
    fn: Transform


def _db(x: float) -> float:
    return 10 ** (x / 20)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def room(x, rng, info, rt60=(0.1, 0.8)):
    t60 = rng.uniform(*rt60)
    m = int(t60 * SR)
    ir = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / SR / t60) * _db(rng.uniform(-18, -6))
    ir[0] = 1.0
    info["rt60_s"] = round(t60, 3)
    return signal.oaconvolve(x, ir)[: len(x)]


def tilt(x, rng, info, db_per_octave=(-6.0, 6.0)):
    """A microphone's or a pocket's colour: a spectral tilt around 1 kHz."""
    s = rng.uniform(*db_per_octave)
    spec = np.fft.rfft(x)
    f = np.maximum(np.fft.rfftfreq(len(x), 1 / SR), 20.0)
    info["tilt_db_oct"] = round(s, 2)
    return np.fft.irfft(spec * 10 ** (s * np.log2(f / 1000.0) / 20), len(x))


def band_limit(x, rng, info, hp=(60.0, 250.0), lp=(3000.0, 7900.0)):
    lo, hi = rng.uniform(*hp), rng.uniform(*lp)
    info["band_hz"] = (round(lo), round(hi))
    sos = signal.butter(4, [lo, hi], btype="band", fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def compress(x, rng, info, ratio=(2.0, 8.0), release_s=(0.05, 0.5)):
    """An AGC-like compressor: the gain follows a fast-attack, slow-release envelope."""
    r, rel = rng.uniform(*ratio), rng.uniform(*release_s)
    env = signal.lfilter([1 - np.exp(-1 / (rel * SR))], [1, -np.exp(-1 / (rel * SR))], np.abs(x))
    thr = np.percentile(env, rng.uniform(40, 80)) + 1e-9
    gain = np.where(env > thr, (env / thr) ** (1 / r - 1), 1.0)
    info["compress_ratio"] = round(r, 2)
    return x * gain


def clip(x, rng, info, headroom_db=(-6.0, 0.0)):
    c = _db(rng.uniform(*headroom_db)) * np.abs(x).max()
    info["clip"] = True
    return np.clip(x, -c, c)


CHAIN: tuple[Step, ...] = (
    Step("room", 0.5, room),
    Step("tilt", 0.8, tilt),
    Step("band_limit", 0.7, band_limit),
    Step("compress", 0.3, compress),
    Step("clip", 0.1, clip),
)
SNR_DB = (-10.0, 20.0)  # step energy against the bed
LEVEL_DBFS = (-45.0, -8.0)  # the run's RMS level
FAR_FOOT_DB = (0.0, 12.0)  # the far foot is up to this much quieter
STEP_JITTER_DB = 2.0  # per-step level jitter (std)
STRETCH = (0.95, 1.05)  # per-step resampling of the one-shot (on top of the kit's)
KIT_STRETCH = (0.6, 1.7)  # the kit's resampling, log-uniform: about -9 to +9 semitones
KIT_EQ_P = 0.7  # probability of the kit's resonance
KIT_EQ_HZ = (80.0, 4000.0)  # its centre, log-uniform
KIT_EQ_DB = (-12.0, 15.0)  # its gain
KIT_EQ_Q = (0.7, 4.0)


def _resample(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times longer (and lower): linear interpolation."""
    return np.interp(np.arange(int(len(x) * factor)) / factor, np.arange(len(x)), x)


def _peaking(f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """A peaking-EQ biquad (b, a): ``gain_db`` at ``f0`` Hz, bandwidth set by ``q``."""
    a_ = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / SR
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a_, -2 * np.cos(w), 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * np.cos(w), 1 - alpha / a_])
    return b / a[0], a / a[0]


def kit_timbre(kit: list[np.ndarray], rng: np.random.Generator, info: dict) -> list[np.ndarray]:
    """A run's kit with a timbre of its own: one resampling factor (:data:`KIT_STRETCH`) and, with
    probability :data:`KIT_EQ_P`, one resonance (:data:`KIT_EQ_HZ`, :data:`KIT_EQ_DB`, :data:`KIT_EQ_Q`)
    for all its one-shots; each is peak-normalised again after."""
    factor = float(np.exp(rng.uniform(*np.log(KIT_STRETCH))))
    info["kit_stretch"] = round(factor, 3)
    out = [_resample(k[: SR // 2].astype(np.float64), factor) for k in kit]
    if rng.random() < KIT_EQ_P:
        f0 = float(np.exp(rng.uniform(*np.log(KIT_EQ_HZ))))
        g, q = float(rng.uniform(*KIT_EQ_DB)), float(rng.uniform(*KIT_EQ_Q))
        b, a = _peaking(f0, g, q)
        out = [signal.lfilter(b, a, k) for k in out]
        info["kit_eq"] = (round(f0), round(g, 1), round(q, 2))
    return [k / (np.abs(k).max() + 1e-12) for k in out]


def oneshot_run(seed: int, index: int, seconds: float, steps: tuple[np.ndarray, ...], beds: tuple[np.ndarray, ...]
                ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One run: (audio float32 in [-1, 1], step times s, info)."""
    from train.data import synth

    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 7]))
    runner = synth.sample_runner(seed, index)
    surface = str(rng.choice(synth.SURFACES))
    n, n_ctrl = int(seconds * SR), int(np.ceil(seconds * synth.CTRL_RATE)) + 1
    plan = synth.make_plan(rng, runner, surface, seconds)
    cad = synth.cadence_curve(plan, n_ctrl, rng, ramp_s=float(rng.uniform(3, 6)))
    times, feet = synth.step_times(cad, seconds, rng, runner.stride_cv, runner.stride_rho, runner.lr_timing)
    kit = [steps[int(i)] for i in rng.integers(len(steps), size=int(rng.integers(1, 4)))]
    far_db = rng.uniform(*FAR_FOOT_DB)
    near_foot = int(rng.integers(2))
    info = {"surface": surface, "far_foot_db": round(far_db, 1), "kit": len(kit)}
    kit = kit_timbre(kit, rng, info)
    x = np.zeros(n + 2 * SR)
    for t, foot in zip(times, feet):
        k = _resample(kit[int(rng.integers(len(kit)))], rng.uniform(*STRETCH))
        g = _db(rng.normal(0, STEP_JITTER_DB) - (far_db if foot != near_foot else 0.0))
        i = int(round(t * SR))
        x[i : i + len(k)] += g * k
    x = x[:n]
    for step in CHAIN[:1]:  # the room acts on the steps before the bed joins
        if rng.random() < step.p:
            x = step.fn(x, rng, info)
    if beds:
        bed = beds[int(rng.integers(len(beds)))].astype(np.float64)
        bed = np.roll(np.resize(bed, n), int(rng.integers(max(len(bed), 1))))
        snr = rng.uniform(*SNR_DB)
        x = x + bed / _rms(bed) * _rms(x) / _db(snr)
        info["snr_db"] = round(snr, 1)
    for step in CHAIN[1:]:
        if rng.random() < step.p:
            x = step.fn(x, rng, info)
    x = x / _rms(x) * _db(rng.uniform(*LEVEL_DBFS))
    peak = np.abs(x).max()
    if peak > 1.0:
        x = x / peak
    return x.astype(np.float32), times, info


def write_oneshot_runs(out: str | Path, *, runs: int = 60, seconds: float = 60.0, seed: int = 0,
                       sounds: str | Path | None = None, force: bool = False, without: Sequence[str] = ()) -> Path:
    """A labelled dataset (contract 5) of ``runs`` one-shot runs from the corpus's train split;
    ``without``: packages whose one-shots make no step here (e.g. the drum kits: a kick or a tom is a
    step sound only by resemblance, and music is made of them; their beds stay under the steps)."""
    from train.data.synth import Recorded, write_audio, write_steps

    out = Path(out)
    if (out / "manifest.csv").exists() and not force:
        raise FileExistsError(f"{out}: a dataset is already there (pass force to replace it)")
    rec = Recorded.from_corpus(sounds, without=tuple(without))
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "steps").mkdir(exist_ok=True)
    rows, infos = [], []
    for i in range(runs):
        audio, times, info = oneshot_run(seed, i, seconds, rec.steps, rec.beds)
        run_id = f"shot{seed}_{i:03d}"
        write_audio(out / "audio" / f"{run_id}.flac", audio)
        write_steps(out / "steps" / f"{run_id}.csv", times, "L" * len(times))
        rows.append({"run_id": run_id, "runner_id": run_id, "audio": f"audio/{run_id}.flac", "steps": f"steps/{run_id}.csv",
                     "surface": info["surface"], "session": "oneshot", "fold": i % 5})
        infos.append({"run_id": run_id, **info})
    with (out / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "oneshots.json").write_text(json.dumps({"runs": runs, "seconds": seconds, "seed": seed,
                                                   "packages": list(rec.packages),
                                                   "without": sorted(without), "info": infos}, indent=1))
    return out
