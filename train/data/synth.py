"""Synthetic armband-phone running audio with exact step times: footfall's embedded default data.

No public recording of running with step ground truth exists, so footfall trains its bundled
model on this generator. It models what a phone on the upper arm hears, and it is meant to be
hard: a plain onset counter must do badly, while a network that learns the runner's own impact
signature and its rhythm can still count.

One run is built in three groups of sources, each a float64 signal at 16 kHz:

- **steps**: the runner's own footfalls. A surface- and shoe-dependent impact kernel at every
  step onset (thump + contact noise + surface texture: grit, gravel grains, leaves, grass
  swish, tartan or treadmill-deck resonance, heel-to-forefoot double impacts), the near foot
  louder and brighter than the far one, plus the quieter toe-off scuff one contact time later.
  The labels are the sample-exact onsets of the impact kernels.
- **body**: confounders that move with the runner, at levels relative to the steps: armband
  rustle and phone knocks at stride rate (half the step rate, phase-shifted from the steps),
  breathing locked 2:2 or 3:3 to the steps, other runners at another cadence (their steps):
  passers-by, and for many runs a partner or club group alongside for most of the run.
- **ambient**: wind rising with speed, arm-swing whoosh, traffic swells, birds, speech babble,
  rain, gym music and treadmill motor/belt, a noise bed. Scaled as a whole to hit the run's
  target SNR (step energy vs. everything else in 250-4000 Hz, after the phone's filters),
  drawn from -12 to +18 dB; where the body sources alone are louder than that (a loose,
  rustling armband), the run ends below its target. ``info["snr_db"]`` is what was reached
  (the default dataset spans about -11 to +13 dB, median about 0; the whole-band SNR is
  ``info["snr_fullband_db"]``).

The phone then adds self-noise, high-passes (~100-200 Hz), rides the gain (AGC) and sometimes
clips. Runners are parameter sets (mass, cadence, gait, shoe, armband, phone), so folds made by
runner are runner-independent. Everything is drawn from ``numpy.random.SeedSequence`` keyed by
(seed, runner[, run[, layer]]): a run is reproducible on its own, whatever else is generated.

Everything is vectorised: events are (n, K) kernel matrices (shaped by FFT, overlap-added with
``np.bincount``), continuous noises are FFT-shaped, envelopes are computed at 100 Hz.
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.ndimage import uniform_filter1d

from edge.frontend import SAMPLE_RATE

SR = SAMPLE_RATE
CTRL_RATE = 100  # Hz: cadence, speed and envelopes live on this grid, interpolated to SR

SURFACES = ("asphalt", "gravel", "forest", "grass", "track", "treadmill")
SURFACE_WEIGHTS = (0.22, 0.16, 0.16, 0.12, 0.14, 0.20)
RUN_SPM = (140.0, 200.0)  # running cadence range, steps per minute
WALK_SPM = (100.0, 125.0)  # walking cadence range
SNR_DB = (-14.0, 14.0)  # per-run target: step energy vs. everything else, in SNR_BAND_HZ
SNR_BAND_HZ = (250.0, 4000.0)
N_FOLDS = 5

IMPACT_LEN = 4096  # samples (256 ms): impact kernel incl. heel-to-forefoot slap when walking
SCUFF_LEN = 1536  # 96 ms toe-off scuff
RUSTLE_LEN = 2048  # 128 ms armband rustle / phone knock
STEPS_DECIMALS = 7  # step times are sample-aligned: k / 16000 s has at most 7 decimals

# per-layer random streams of a run: adding a layer never changes the others
_LAYERS = ("plan", "steps", "impacts", "scuffs", "rustle", "breath", "others", "wind", "traffic",
           "birds", "speech", "rain", "music", "machine", "bed", "phone", "levels", "recorded")
_TAG_RUNNER, _TAG_RUN, _TAG_DATASET = 1, 2, 3


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, key)]))


# ---------------------------------------------------------------------------------------------
# runners


@dataclass(frozen=True)
class Shoe:
    kind: str
    hardness: float  # 0 soft foam .. 1 hard plate: contact-noise level and attack speed
    brightness_hz: float  # low-pass corner of the contact noise on a hard surface
    decay: float  # duration scale of the contact noise


# kind: (hardness, brightness Hz, decay) ranges
SHOES = {
    "cushioned": ((0.15, 0.45), (1800.0, 3500.0), (1.1, 1.6)),
    "daily": ((0.35, 0.6), (2500.0, 4500.0), (0.9, 1.2)),
    "racing": ((0.65, 0.95), (4000.0, 7000.0), (0.6, 0.9)),
    "trail": ((0.45, 0.7), (2500.0, 5000.0), (0.9, 1.3)),
    "minimal": ((0.55, 0.85), (3500.0, 6500.0), (0.6, 0.9)),
}


@dataclass(frozen=True)
class Runner:
    """One synthetic runner: body, gait, shoe, armband and phone. Same for all their runs."""

    index: int
    runner_id: str
    mass_kg: float
    run_spm: float  # preferred running cadence
    walk_spm: float
    stride_cv: float  # coefficient of variation of step intervals
    stride_rho: float  # AR(1) correlation of consecutive intervals
    lr_timing: float  # intervals ending on the left foot are (1 + x) long, on the right (1 - x)
    phone_arm: str  # "L" or "R": the foot on the phone's side is the near (louder) one
    far_foot_db: float  # the far foot is quieter by this much
    strike: str  # heel / midfoot / forefoot
    shoe: Shoe
    step_length_m: float  # at the preferred cadence
    armband_looseness: float  # 0 tight .. 1 loose: rustle level, phone knocks
    rustle_phase: float  # rustle after the near-foot impact, fraction of a stride (0.5 = far foot)
    rustle_back: float  # level of the other arm reversal's rustle, relative to the main one
    rustle_db: float  # rustle energy per event relative to a near-foot impact
    breath_ratio: int  # steps per inhale and per exhale: 2 -> 2:2, 3 -> 3:3
    breath_db: float  # breathing power relative to the steps
    hp_hz: float  # phone microphone high-pass corner
    hp_order: int
    lp_hz: float
    agc: bool
    agc_release_s: float
    self_noise_db: float  # phone self-noise relative to the mix


def runner_id(seed: int, index: int) -> str:
    return f"s{seed}r{index:03d}"


def sample_runner(seed: int, index: int) -> Runner:
    """Draw runner ``index`` of the population ``seed`` (independent of any other runner)."""
    rng = _rng(seed, _TAG_RUNNER, index)
    kind = str(rng.choice(list(SHOES), p=[0.3, 0.3, 0.15, 0.15, 0.1]))
    (h0, h1), (b0, b1), (d0, d1) = SHOES[kind]
    shoe = Shoe(kind, float(rng.uniform(h0, h1)), float(rng.uniform(b0, b1)), float(rng.uniform(d0, d1)))
    looseness = float(rng.beta(1.5, 2.0))
    return Runner(
        index=index,
        runner_id=runner_id(seed, index),
        mass_kg=float(np.clip(rng.normal(68, 11), 45, 105)),
        run_spm=float(np.clip(rng.normal(168, 9), 150, 188)),
        walk_spm=float(rng.uniform(106, 120)),
        stride_cv=float(rng.uniform(0.02, 0.05)),
        stride_rho=float(rng.uniform(0.2, 0.7)),
        lr_timing=float(rng.uniform(0.0, 0.03)),
        phone_arm=str(rng.choice(["L", "R"], p=[0.4, 0.6])),
        # the far foot is shadowed by the torso and its sound reaches the arm through less bone;
        # for some runners (soft landing on the weak leg, phone high on the arm) it nearly vanishes
        far_foot_db=float(rng.uniform(3.0, 9.0) if rng.random() < 0.45 else rng.uniform(14.0, 26.0)),
        strike=str(rng.choice(["heel", "midfoot", "forefoot"], p=[0.6, 0.25, 0.15])),
        shoe=shoe,
        step_length_m=float(rng.uniform(0.95, 1.45)),
        armband_looseness=looseness,
        rustle_phase=float(rng.uniform(0.06, 0.44)),
        rustle_back=float(rng.uniform(0.05, 0.5)),
        rustle_db=float(-16.0 + 20.0 * looseness + rng.normal(0, 3)),
        breath_ratio=int(rng.choice([2, 3], p=[0.65, 0.35])),
        breath_db=float(rng.uniform(-34, -14)),
        hp_hz=float(rng.uniform(100, 200)),
        hp_order=int(rng.choice([2, 4])),
        lp_hz=float(rng.uniform(6000, 7800)),
        agc=bool(rng.random() < 0.7),
        agc_release_s=float(rng.uniform(0.8, 4.0)),
        self_noise_db=float(rng.uniform(-50, -35)),
    )


# ---------------------------------------------------------------------------------------------
# cadence plan and step times


@dataclass(frozen=True)
class Segment:
    kind: str  # run / surge / hill / walk / stop
    start_s: float
    end_s: float
    spm: float  # target cadence (0 standing)


def session_of(surface: str) -> str:
    """KIRun's session types: treadmill, track, free outdoor run."""
    return surface if surface in ("treadmill", "track") else "outdoor"


def make_plan(rng: np.random.Generator, runner: Runner, surface: str, duration_s: float) -> list[Segment]:
    """A cadence plan: steady running, surges, hills, walking breaks, traffic-light stops."""
    pref = runner.run_spm
    out: list[tuple[str, float, float]] = []

    def running(delta: float = 0.0) -> float:
        return float(np.clip(pref + delta + rng.normal(0, 2.0), *RUN_SPM))

    def walking() -> float:
        return float(np.clip(runner.walk_spm + rng.normal(0, 3.0), *WALK_SPM))

    def stop_sequence(stand: tuple[float, float]) -> None:  # decelerate, stand, set off again
        out.append(("walk", rng.uniform(2, 6), walking()))
        out.append(("stop", rng.uniform(*stand), 0.0))
        if rng.random() < 0.6:
            out.append(("walk", rng.uniform(1.5, 5), walking()))

    total = 0.0
    if rng.random() < 0.45:
        out.append(("walk", rng.uniform(6, 40), walking()))  # warm-up walk
    stop_p = {"asphalt": 0.2, "treadmill": 0.05, "track": 0.1}.get(surface, 0.07)
    while total < duration_s:
        u = rng.random()
        if surface == "treadmill":
            if u < 0.65:
                out.append(("run", rng.uniform(40, 150), running(rng.normal(0, 5))))
            elif u < 1 - stop_p:
                out.append(("surge", rng.uniform(20, 60), running(rng.uniform(8, 18))))
            else:
                out.append(("walk", rng.uniform(3, 8), walking()))
                out.append(("stop", rng.uniform(5, 20), 0.0))  # on the side rails, belt running
        elif surface == "track":
            if u < 0.4:
                out.append(("run", rng.uniform(40, 120), running()))
            elif u < 0.7:
                out.append(("surge", rng.uniform(30, 90), running(rng.uniform(10, 22))))
            elif u < 1 - stop_p:
                out.append(("walk", rng.uniform(20, 90), walking()))  # recovery
            else:
                stop_sequence((10, 40))
        else:
            if u < 0.45:
                out.append(("run", rng.uniform(30, 150), running()))
            elif u < 0.57:
                out.append(("surge", rng.uniform(10, 40), running(rng.uniform(8, 18))))
            elif u < 0.75:
                out.append(("hill", rng.uniform(30, 90), running(rng.uniform(3, 9))))  # uphill: shorter, quicker steps
                out.append(("run", rng.uniform(15, 60), running(rng.uniform(-4, 4))))
            elif u < 1 - stop_p:
                out.append(("walk", rng.uniform(15, 60), walking()))
            else:
                stop_sequence((5, 50))
        total = float(sum(d for _, d, _ in out))
    if rng.random() < 0.3 and duration_s > 60:
        cool = rng.uniform(10, 40)  # cool-down walk replaces the end
        keep, acc = [], 0.0
        for kind, d, spm in out:
            if acc >= duration_s - cool:
                break
            keep.append((kind, min(d, duration_s - cool - acc), spm))
            acc += keep[-1][1]
        out = keep + [("walk", duration_s - acc, walking())]

    segs, t = [], 0.0
    for kind, d, spm in out:
        if t >= duration_s:
            break
        end = min(duration_s, t + d)
        segs.append(Segment(kind, round(t, 3), round(end, 3), round(spm, 2)))
        t = end
    return segs


def cadence_curve(plan: list[Segment], n_ctrl: int, rng: np.random.Generator, ramp_s: float = 4.0) -> np.ndarray:
    """Instantaneous target cadence at CTRL_RATE (n_ctrl,), 0 while standing.

    Within a moving stretch, targets are smoothed (two box filters of ``ramp_s``: smooth
    transitions) and wander by about +-1.5 spm; stops are hard zeros.
    """
    target = np.zeros(n_ctrl)
    for seg in plan:
        target[int(seg.start_s * CTRL_RATE) : int(np.ceil(seg.end_s * CTRL_RATE))] = seg.spm
    wander = signal.lfilter([0.02], [1, -0.98], rng.standard_normal(n_ctrl))  # ~1 s correlation
    wander *= 1.5 / (wander.std() + 1e-9)
    curve = np.zeros(n_ctrl)
    for i0, i1 in _true_runs(target > 0):
        c = target[i0:i1]
        size = int(ramp_s * CTRL_RATE)
        if i1 - i0 > 1:
            c = uniform_filter1d(uniform_filter1d(c, size, mode="nearest"), size, mode="nearest")
        curve[i0:i1] = np.clip(c + wander[i0:i1], WALK_SPM[0] - 2, RUN_SPM[1])
    return curve


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) index ranges where ``mask`` is True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise (stationary from the first sample)."""
    e = rng.standard_normal(n)
    e[0] /= np.sqrt(1 - rho**2)
    return signal.lfilter([np.sqrt(1 - rho**2)], [1, -rho], e)


def step_times(
    cadence: np.ndarray, duration_s: float, rng: np.random.Generator, cv: float, rho: float, lr_timing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step onsets from a cadence curve -> (times s float64, sample-aligned, strictly increasing;
    feet int8 0=L 1=R). Phase integration of the cadence, then AR(1) interval jitter of CV ``cv``
    and a left/right timing asymmetry; each moving stretch starts on a random foot."""
    n_samples = int(round(duration_s * SR))
    times, feet = [], []
    for i0, i1 in _true_runs(cadence > 0):
        t = (np.arange(i0, i1) + 1) / CTRL_RATE
        phase = np.cumsum(cadence[i0:i1] / 60.0) / CTRL_RATE - rng.uniform(0.15, 0.9)
        k = np.arange(max(0, int(np.ceil(phase[0]))), int(np.floor(phase[-1])) + 1)
        if len(k) == 0:
            continue
        tk = np.interp(k, phase, t)
        ft = (int(rng.integers(2)) + np.arange(len(tk))) % 2
        if len(tk) > 1:
            d = np.diff(tk)
            asym = np.where(ft[1:] == 0, lr_timing, -lr_timing)
            d = d * (1 + np.clip(cv * _ar1(rng, len(d), rho) + asym, -0.3, 0.3))
            tk = tk[0] + np.concatenate([[0.0], np.cumsum(d)])
        keep = tk < i1 / CTRL_RATE
        times.append(tk[keep])
        feet.append(ft[keep])
    if not times:
        return np.zeros(0), np.zeros(0, dtype=np.int8)
    idx = np.round(np.concatenate(times) * SR).astype(np.int64)
    ft = np.concatenate(feet).astype(np.int8)
    ok = (idx >= 0) & (idx < n_samples)
    idx, ft = idx[ok], ft[ok]
    ok = np.concatenate([[True], np.diff(idx) > 0])  # never two steps on one sample
    return idx[ok] / SR, ft[ok]


# ---------------------------------------------------------------------------------------------
# signal helpers


def _freqs(n: int) -> np.ndarray:
    return np.fft.rfftfreq(n, 1.0 / SR)


def _band(f: np.ndarray, lo, hi, order: int = 2) -> np.ndarray:
    """Butterworth-like band-pass magnitude; lo/hi scalars or (n, 1) arrays; order 1 or 2."""
    f = np.maximum(f, 1e-3)
    a, b = (f / hi) ** 2, (lo / f) ** 2
    if order == 2:
        a, b = a * a, b * b
    return 1.0 / np.sqrt((1 + a) * (1 + b))


def _peak(f: np.ndarray, f0, q: float) -> np.ndarray:
    """Resonance magnitude (1 at f0), lo/f0 scalars or (n, 1)."""
    f = np.maximum(f, 1e-3)
    return 1.0 / np.sqrt(1 + q**2 * (f / f0 - f0 / f) ** 2)


def _shape_rows(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Zero-phase FFT filter of each row of (n, K) ``x`` by magnitude (n or 1, K // 2 + 1)."""
    return np.fft.irfft(np.fft.rfft(x, axis=-1) * gain, n=x.shape[-1], axis=-1)


def _colored_noise(rng: np.random.Generator, n: int, gain_fn, rate: int = SR) -> np.ndarray:
    """Unit-RMS Gaussian noise of length n with magnitude spectrum gain_fn(freqs Hz).

    Shaped in the frequency domain (float32). A band-limited noise can be made at a lower
    ``rate`` and linearly interpolated to SR (its images sit > 20 dB down).
    """
    m = sfft.next_fast_len(int(np.ceil(n * rate / SR)) + 2, real=True)
    f = np.fft.rfftfreq(m, 1.0 / rate).astype(np.float32)
    spec = np.empty(len(f), np.complex64)
    spec.real = rng.standard_normal(len(f), dtype=np.float32)
    spec.imag = rng.standard_normal(len(f), dtype=np.float32)
    spec *= np.asarray(gain_fn(f), np.float32)
    spec[0] = 0
    x = sfft.irfft(spec, n=m)
    x = x[:n] if rate == SR else _upsample(x, SR // rate, n)
    return x / np.sqrt(_power(x))


def _slow_noise(rng: np.random.Generator, n_ctrl: int, corr_s: float) -> np.ndarray:
    """Unit-variance low-pass noise at CTRL_RATE with correlation time ~corr_s."""
    a = np.exp(-1.0 / (corr_s * CTRL_RATE))
    x = signal.lfilter([1 - a], [1, -a], signal.lfilter([1 - a], [1, -a], rng.standard_normal(n_ctrl + 200)))[200:]
    return (x - x.mean()) / (x.std() + 1e-12)


def _upsample(x: np.ndarray, factor: int, n: int) -> np.ndarray:
    """Linear interpolation by an integer factor (sample i of x at output sample i * factor),
    as one broadcast (m - 1, factor) operation rather than np.interp's search; n <= len(x) * factor."""
    m = int(np.ceil(n / factor)) + 1
    if len(x) < m:
        x = np.concatenate([x, np.full(m - len(x), x[-1])])
    x = np.asarray(x[:m], np.float64)
    ramp = np.arange(factor) / factor
    return (x[:-1, None] + np.diff(x)[:, None] * ramp).ravel()[:n]


def _to_audio_rate(ctrl: np.ndarray, n: int) -> np.ndarray:
    """A CTRL_RATE control signal (sample i at time i / CTRL_RATE) -> n samples at SR."""
    return _upsample(ctrl, SR // CTRL_RATE, n)


def _place(n: int, starts: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Overlap-add kernels (m, K) at integer sample ``starts`` (m,) into a signal of length n."""
    out = np.zeros(n)
    if len(starts) == 0:
        return out
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(kernels.shape[1])
    ok = (idx >= 0) & (idx < n)
    out += np.bincount(idx[ok], weights=kernels[ok], minlength=n)[:n]
    return out


def _fade_tail(k: np.ndarray, frac: float = 0.1) -> np.ndarray:
    m = max(1, int(k.shape[-1] * frac))
    k[..., -m:] *= np.linspace(1.0, 0.0, m)
    return k


def _unit_energy(k: np.ndarray) -> np.ndarray:
    return k / (np.sqrt(np.sum(k**2, axis=-1, keepdims=True)) + 1e-12)


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def _power(x: np.ndarray) -> float:
    x = x.ravel()
    return float(np.dot(x, x)) / max(len(x), 1) + 1e-20


# ---------------------------------------------------------------------------------------------
# the runner's own footfalls


@dataclass(frozen=True)
class SurfaceSound:
    thump_hz: tuple[float, float]  # body/ground thump (damped sinusoid)
    thump_tau_s: tuple[float, float]
    thump_db: float
    click_lp_hz: tuple[float, float]  # contact noise band (scaled by shoe brightness)
    click_hp_hz: float
    click_tau_s: tuple[float, float]
    rise_s: tuple[float, float]  # attack time
    res_hz: tuple[float, float] | None  # surface resonance (tartan, treadmill deck)
    res_db: float
    texture: str  # none / grit / grains / leaves / swish
    texture_db: float
    texture_tau_s: tuple[float, float]
    scuff_db: float  # toe-off scuff relative to the impact


SURFACE_SOUNDS = {
    "asphalt": SurfaceSound((70, 130), (0.004, 0.010), -4, (3500, 7000), 300, (0.0015, 0.004), (0.0002, 0.0008), None, 0, "grit", -14, (0.008, 0.02), -12),
    "gravel": SurfaceSound((60, 110), (0.005, 0.012), -8, (2000, 4500), 300, (0.002, 0.006), (0.0005, 0.002), None, 0, "grains", 3, (0.02, 0.05), -4),
    "forest": SurfaceSound((45, 90), (0.010, 0.025), 0, (600, 1400), 100, (0.004, 0.010), (0.002, 0.005), None, 0, "leaves", -6, (0.03, 0.07), -10),
    "grass": SurfaceSound((40, 80), (0.012, 0.030), -1, (300, 800), 80, (0.006, 0.015), (0.003, 0.008), None, 0, "swish", -9, (0.03, 0.08), -14),
    "track": SurfaceSound((60, 120), (0.005, 0.012), -6, (2500, 5000), 250, (0.002, 0.005), (0.0003, 0.001), (500, 1100), 8, "none", -60, (0.01, 0.02), -10),
    "treadmill": SurfaceSound((70, 150), (0.020, 0.050), 0, (3000, 6000), 300, (0.001, 0.003), (0.0002, 0.0006), (180, 400), 5, "none", -60, (0.01, 0.02), -8),
}


def _impact_kernels(
    rng: np.random.Generator, snd: SurfaceSound, shoe: Shoe, strike: str, mass_kg: float,
    walking: np.ndarray, far: np.ndarray,
) -> np.ndarray:
    """(n, IMPACT_LEN) unit-energy impact kernels, onset at sample 0 of each row."""
    n, K = len(walking), IMPACT_LEN
    if n == 0:
        return np.zeros((0, K))
    t = np.arange(K) / SR
    walk = walking[:, None]

    def draw(rng_pair, spread):  # a run-level centre and per-step spread (lognormal)
        c = rng.uniform(*rng_pair)
        return c * np.exp(rng.normal(0, spread, (n, 1)))

    rise = draw(snd.rise_s, 0.2) * (1.6 - shoe.hardness) * np.where(walk, 1.8, 1.0)
    onset = -np.expm1(-t / rise)  # (n, K)

    f_th = draw(snd.thump_hz, 0.08) * (70.0 / mass_kg) ** 0.3
    thump = np.sin(2 * np.pi * f_th * t) * onset * np.exp(-t / draw(snd.thump_tau_s, 0.15))
    thump = _unit_energy(thump) * _db(snd.thump_db) * (mass_kg / 70.0)  # heavier runners thump more

    # contact noise; heel strikes (and every walking step) get a second, forefoot impact
    tau_c = draw(snd.click_tau_s, 0.2) * shoe.decay * np.where(walk, 1.5, 1.0)
    if strike == "heel":
        delay, ratio = rng.uniform(0.010, 0.030, (n, 1)), rng.uniform(0.4, 0.8, (n, 1))
    elif strike == "midfoot":
        delay, ratio = rng.uniform(0.005, 0.012, (n, 1)), rng.uniform(0.0, 0.3, (n, 1))
    else:
        delay, ratio = rng.uniform(0.020, 0.050, (n, 1)), rng.uniform(0.1, 0.3, (n, 1))  # soft heel touch
    delay = np.where(walk, rng.uniform(0.06, 0.12, (n, 1)), delay)
    ratio = np.where(walk, rng.uniform(0.5, 1.0, (n, 1)), ratio)
    t2 = np.maximum(t - delay, 0.0)
    env = onset * np.exp(-t / tau_c) + ratio * (t >= delay) * -np.expm1(-t2 / rise) * np.exp(-t2 / tau_c)
    lp = draw(snd.click_lp_hz, 0.12) * (shoe.brightness_hz / 3500.0) * np.where(far, 0.5, 1.0)[:, None]
    lp = lp * np.where(walk, 0.7, 1.0)
    f = _freqs(K)
    gain = _band(f, snd.click_hp_hz, np.minimum(lp, 7800.0))
    if snd.res_hz is not None:
        gain = gain * (1 + (_db(snd.res_db) - 1) * _peak(f, draw(snd.res_hz, 0.05), 4.0))
    click = _unit_energy(_shape_rows(rng.standard_normal((n, K)), gain) * env) * (0.5 + shoe.hardness)

    kern = thump + click
    if snd.texture != "none":
        tau_x = draw(snd.texture_tau_s, 0.25)
        if snd.texture == "grains":  # crunchy gravel: a decaying shower of tiny impacts
            rate = rng.uniform(2000, 6000, (n, 1)) * np.exp(-t / tau_x)
            sparse = (rng.random((n, K)) < rate / SR) * rng.standard_normal((n, K)) * rng.lognormal(0, 0.7, (n, K))
            tex = _shape_rows(sparse, _band(f, rng.uniform(800, 1800, (n, 1)), 7500, 2)) * onset
            tex *= 1.0 + 0.3 * (shoe.kind == "trail")  # lugs clatter
        elif snd.texture == "leaves":  # crackling leaves, twigs; not under every step
            crackle = rng.standard_normal((n, K)) * (0.25 + (rng.random((n, K)) < 0.05) * rng.lognormal(0, 1, (n, K)))
            tex = _shape_rows(crackle, _band(f, 1000, 6000)) * -np.expm1(-t / 0.008) * np.exp(-t / tau_x)
            tex *= rng.lognormal(0, 0.8, (n, 1))
        elif snd.texture == "swish":  # grass blades brushing the shoe
            tex = _shape_rows(rng.standard_normal((n, K)), _band(f, 1500, 6000)) * np.sin(np.pi * np.minimum(t / (2 * tau_x), 1.0)) ** 2
        else:  # grit under the sole
            tex = _shape_rows(rng.standard_normal((n, K)), _band(f, 3000, 7500)) * onset * np.exp(-t / tau_x)
        kern = kern + _db(snd.texture_db) * (0.5 + shoe.hardness) * _unit_energy(tex)
    return _unit_energy(_fade_tail(kern))


def _scuff_kernels(rng: np.random.Generator, snd: SurfaceSound, n: int) -> np.ndarray:
    """(n, SCUFF_LEN) unit-energy toe-off scuffs (granular on gravel)."""
    K = SCUFF_LEN
    t = np.arange(K) / SR
    f = _freqs(K)
    tau = rng.uniform(0.01, 0.03, (n, 1))
    env = -np.expm1(-t / rng.uniform(0.003, 0.01, (n, 1))) * np.exp(-t / tau)
    if snd.texture == "grains":
        src = (rng.random((n, K)) < 0.3) * rng.standard_normal((n, K))
    else:
        src = rng.standard_normal((n, K))
    lo = 300.0 if snd.texture in ("swish", "leaves") else 800.0
    return _unit_energy(_fade_tail(_shape_rows(src, _band(f, lo, rng.uniform(3000, 6500, (n, 1)))) * env))


# ---------------------------------------------------------------------------------------------
# body sources


def _rustle_kernels(rng: np.random.Generator, n: int, runner: Runner) -> np.ndarray:
    """(n, RUSTLE_LEN) unit-energy armband rustles: crackly fabric scratch + phone knock."""
    K = RUSTLE_LEN
    t = np.arange(K) / SR
    f = _freqs(K)
    crackle = rng.standard_normal((n, K)) * (0.3 + (rng.random((n, K)) < 0.04) * rng.lognormal(0, 1, (n, K)))
    lo = 500 + 1000 * (runner.index % 7) / 7.0
    fabric = _shape_rows(crackle, _band(f, lo * rng.lognormal(0, 0.2, (n, 1)), rng.uniform(4000, 7800, (n, 1))))
    fabric *= -np.expm1(-t / rng.uniform(0.001, 0.008, (n, 1))) * np.exp(-t / rng.uniform(0.01, 0.04, (n, 1)))
    fabric = _unit_energy(fabric)
    knock_on = rng.random((n, 1)) < runner.armband_looseness
    knock = np.sin(2 * np.pi * rng.uniform(150, 500, (n, 1)) * t) * -np.expm1(-t / 0.0005) * np.exp(-t / rng.uniform(0.004, 0.012, (n, 1)))
    knock = _unit_energy(knock) * knock_on * rng.uniform(0.5, 1.5, (n, 1))
    return _unit_energy(_fade_tail(fabric + knock))


def _breathing(rng, n, cad, runner, effort, is_stop) -> np.ndarray:
    """Breathing locked to the steps: one inhale over ``breath_ratio`` steps, one exhale over as many."""
    n_ctrl = len(cad)
    rate = np.where(cad > 0, cad / 60.0 / (2 * runner.breath_ratio), rng.uniform(0.3, 0.5))  # breaths / s
    psi = np.cumsum(rate) / CTRL_RATE + rng.random()
    x = psi % 1.0
    inhale = np.where(x < 0.5, np.sin(np.pi * x / 0.5) ** 2, 0.0)
    y = np.clip((x - 0.5) / 0.5, 0, 1)
    exhale = np.where(x >= 0.5, -np.expm1(-y / 0.06) * np.exp(-y / 0.3), 0.0) * 1.6
    loud = effort * (1.0 + 0.5 * is_stop)
    f1, f2 = rng.uniform(500, 1000), rng.uniform(1300, 2600)
    ex = _colored_noise(rng, n, lambda f: _band(f, 200, 4000) * (0.3 + _peak(f, f1, 2) + 0.7 * _peak(f, f2, 3)))
    inh = _colored_noise(rng, n, lambda f: _band(f, 600, 7000) * (0.3 + _peak(f, f2, 2)))
    return _to_audio_rate(exhale * loud, n) * ex + _to_audio_rate(inhale * loud * rng.uniform(0.3, 0.7), n) * inh


def _other_runners(rng, n, runner, surface, steps_level) -> tuple[np.ndarray, list[dict]]:
    """Other runners passing or alongside, at another cadence: their (quieter) footfalls."""
    duration = n / SR
    p = {"track": 0.8, "treadmill": 0.55, "asphalt": 0.65}.get(surface, 0.55)
    out = np.zeros(n)
    episodes: list[dict] = []
    if rng.random() >= p:
        return out, episodes
    snd = SURFACE_SOUNDS[surface]
    # a training partner or a club group alongside for most of the run (on the next treadmill
    # in a gym), at a cadence of their own and about as loud as our far foot; then passers-by
    partner = surface != "treadmill" and rng.random() < 0.6 or surface == "treadmill" and rng.random() < 0.4
    for k in range(int(rng.integers(1, 4))):
        alongside = partner and k == 0
        length = float(duration * rng.uniform(0.6, 1.0)) if alongside else float(min(duration, rng.uniform(10, 200)))
        t0 = float(rng.uniform(0, max(duration - length, 0.0) + 1e-9))
        delta = rng.uniform(5, 25) * rng.choice([-1, 1])
        spm = float(np.clip(runner.run_spm + delta, *RUN_SPM))
        if abs(spm - runner.run_spm) < 5:
            spm = float(np.clip(runner.run_spm - np.sign(delta) * rng.uniform(5, 25), *RUN_SPM))
        n_ctrl = int(np.ceil(length * CTRL_RATE))
        cad = np.full(n_ctrl, spm) + 1.5 * _slow_noise(rng, n_ctrl, 5.0)
        times, feet = step_times(cad, length, rng, rng.uniform(0.02, 0.05), 0.4, rng.uniform(0, 0.03))
        if len(times) == 0:
            continue
        kind = str(rng.choice(list(SHOES)))
        (h0, h1), (b0, b1), (d0, d1) = SHOES[kind]
        shoe = Shoe(kind, rng.uniform(h0, h1), rng.uniform(b0, b1), rng.uniform(d0, d1))
        strike = str(rng.choice(["heel", "midfoot", "forefoot"]))
        far = np.ones(len(times), bool)  # a few metres away: duller than our own near foot
        kern = _impact_kernels(rng, snd, shoe, strike, float(rng.uniform(50, 95)), np.zeros(len(times), bool), far)
        passing = not alongside and rng.random() < 0.6
        u = times / length
        env = np.exp(-0.5 * ((u - 0.5) / 0.18) ** 2) if passing else np.clip(np.minimum(u, 1 - u) / 0.05, 0, 1)
        level_db = float(rng.uniform(-10, 2) if alongside else rng.uniform(-16, -3))
        amp = steps_level * _db(level_db) * env * rng.lognormal(0, 0.2, len(times))
        out += _place(n, np.round((t0 + times) * SR).astype(np.int64), kern * amp[:, None])
        episodes.append({"start_s": round(t0, 2), "length_s": round(length, 2), "spm": round(spm, 1),
                         "level_db": round(level_db, 1), "passing": bool(passing),
                         "alongside": bool(alongside)})
    return out, episodes


# ---------------------------------------------------------------------------------------------
# ambient sources (each returned at unit power over the run, or None when absent)


def _wind(rng, n, speed, outdoor) -> np.ndarray:
    """Low-frequency gusty wind on the mic, rising with running speed (and ambient wind)."""
    n_ctrl = len(speed)
    ambient = rng.uniform(0.0, 3.0) if outdoor else 0.0
    # gusts (seconds) and buffeting (tens of ms): wind noise on a mic comes in bursts
    gust = np.exp(rng.uniform(0.3, 0.9) * _slow_noise(rng, n_ctrl, rng.uniform(0.5, 3.0))
                  + rng.uniform(0.2, 0.8) * _slow_noise(rng, n_ctrl, rng.uniform(0.03, 0.15)))
    level = ((speed if outdoor else 0.3 * speed) + ambient * gust) ** 2
    fc = rng.uniform(120, 400)
    noise = _colored_noise(rng, n, lambda f: _band(f, 8, fc, 1) / np.sqrt(np.maximum(f, 8) / 8), rate=2000)
    return _to_audio_rate(level, n) * noise


def _arm_whoosh(rng, n, stride_phase, speed) -> np.ndarray:
    """Air over the mic as the arm swings: peaks twice per stride at the arm's top speed."""
    env = np.sin(2 * np.pi * stride_phase) ** 2 * speed
    fc = rng.uniform(200, 600)
    noise = _colored_noise(rng, n, lambda f: _band(f, 30, fc, 1), rate=4000)
    return _to_audio_rate(env, n) * noise


def _traffic(rng, n, surface) -> tuple[np.ndarray | None, int]:
    """Passing cars: broadband swells (tyres + engine rumble) over a distant traffic bed."""
    per_min = {"asphalt": (2, 10), "track": (0.5, 4), "gravel": (0, 3), "grass": (0, 3), "forest": (0, 1)}.get(surface)
    if per_min is None:
        return None, 0
    duration = n / SR
    n_ctrl = int(np.ceil(duration * CTRL_RATE)) + 1
    n_cars = int(rng.poisson(rng.uniform(*per_min) * duration / 60))
    tc = np.arange(n_ctrl) / CTRL_RATE
    env = np.full(n_ctrl, rng.uniform(0.02, 0.15))  # the distant bed
    if n_cars:
        centre = rng.uniform(-2, duration + 2, n_cars)[:, None]
        width = rng.uniform(0.7, 2.5, n_cars)[:, None]
        peak = rng.lognormal(0, 0.6, n_cars)[:, None]
        env = env + np.sum(peak / (1 + ((tc - centre) / width) ** 2), axis=0)
    tyres = _colored_noise(rng, n, lambda f: _band(f, 300, 2500, 1))
    engine = _colored_noise(rng, n, lambda f: _band(f, 30, 200, 2), rate=2000)
    return _to_audio_rate(env, n) * (tyres + rng.uniform(0.3, 1.0) * engine), n_cars


def _birds(rng, n, surface) -> tuple[np.ndarray | None, int]:
    """Bird songs: bursts of frequency-swept chirps with vibrato."""
    per_min = {"forest": (2, 8), "grass": (1, 5), "gravel": (1, 5), "track": (0.5, 3), "asphalt": (0, 2)}.get(surface)
    if per_min is None:
        return None, 0
    duration = n / SR
    n_songs = int(rng.poisson(rng.uniform(*per_min) * duration / 60))
    if n_songs == 0:
        return None, 0
    starts, rows = [], []
    for s in range(n_songs):  # a few songs: the chirps of all of them are built at once below
        t0 = rng.uniform(0, duration)
        m = int(rng.integers(3, 13))
        dur = rng.uniform(0.03, 0.2) * np.exp(rng.normal(0, 0.1, m))
        gaps = rng.uniform(0.03, 0.15, m)
        onsets = t0 + np.concatenate([[0.0], np.cumsum(dur + gaps)[:-1]])
        f0 = rng.uniform(2000, 7000)
        sweep = rng.uniform(-2500, 2500)
        amp = rng.lognormal(0, 0.5)
        for i in range(m):
            starts.append(onsets[i])
            rows.append((dur[i], f0 * np.exp(rng.normal(0, 0.05)), sweep, amp, rng.uniform(0, 30)))
    K = int(0.2 * SR * 1.25)
    t = np.arange(K) / SR
    p = np.array(rows)
    dur, f0, sweep, amp, vib = (p[:, i : i + 1] for i in range(5))
    inst = np.clip(f0 + sweep * np.minimum(t / dur, 1) + 300 * np.sin(2 * np.pi * vib * t), 800, 7800)
    phase = 2 * np.pi * np.cumsum(inst, axis=1) / SR
    env = np.sin(np.pi * np.clip(t / dur, 0, 1)) ** 2
    chirps = amp * env * (np.sin(phase) + 0.2 * np.sin(2 * phase))
    return _place(n, np.round(np.array(starts) * SR).astype(np.int64), chirps), n_songs


def _speech(rng, n, surface) -> tuple[np.ndarray | None, int]:
    """Babble: passers-by talking, syllables of a pulse source through random formants."""
    per_min = {"asphalt": (0.5, 4), "track": (1, 5), "treadmill": (1, 6), "forest": (0, 1.5)}.get(surface, (0, 2))
    duration = n / SR
    n_utt = int(rng.poisson(rng.uniform(*per_min) * duration / 60))
    if n_utt == 0:
        return None, 0
    starts, rows = [], []
    for _ in range(n_utt):
        t0, length = rng.uniform(0, duration), rng.uniform(0.8, 4.0)
        f0 = rng.uniform(90, 250)
        amp = rng.lognormal(0, 0.5)
        t = t0
        while t < t0 + length:
            d = rng.uniform(0.1, 0.28)
            starts.append(t)
            rows.append((d, f0 * np.exp(rng.normal(0, 0.08)), amp * rng.lognormal(0, 0.3),
                         rng.uniform(300, 900), rng.uniform(900, 2500), rng.uniform(2400, 3500)))
            t += d + rng.uniform(0.02, 0.15)
    K = int(0.3 * SR)
    t = np.arange(K) / SR
    p = np.array(rows)
    dur, f0, amp = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    pitch = f0 * (1 - 0.15 * t / 0.3)
    saw = 2 * ((np.cumsum(pitch, axis=1) / SR) % 1.0) - 1
    src = saw + 0.15 * rng.standard_normal(saw.shape)
    f = _freqs(K)
    gain = sum(_peak(f, p[:, 3 + i : 4 + i], 6.0) / (1 + i) for i in range(3)) * _band(f, 80, 5000)
    env = np.sin(np.pi * np.clip(t / dur, 0, 1)) ** 0.7
    syl = amp * _shape_rows(src, gain) * env
    return _place(n, np.round(np.array(starts) * SR).astype(np.int64), syl), n_utt


def _rain(rng, n) -> tuple[np.ndarray, float]:
    """Rain: a dense shower of drop clicks, hiss, and the occasional big drop on the armband."""
    rate = rng.uniform(300, 3000)  # drops / s
    m = int(rng.poisson(rate * n / SR))
    drops = np.bincount(rng.integers(0, n, m), weights=rng.standard_normal(m) * rng.pareto(3.0, m), minlength=n)
    m_big = int(rng.poisson(rng.uniform(0.2, 2.0) * n / SR))
    drops[rng.integers(0, n, m_big)] += rng.choice([-1, 1], m_big) * rng.uniform(8, 30, m_big)
    m_fft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(drops, n=m_fft) * _band(_freqs(m_fft), 1000, 7000, 1)
    shower = sfft.irfft(spec, n=m_fft)[:n]
    shower /= np.sqrt(_power(shower))
    return shower + rng.uniform(0.2, 0.6) * _colored_noise(rng, n, lambda f: _band(f, 500, 7500, 1)), rate


def _music(rng, n) -> tuple[np.ndarray, float]:
    """Gym music from the speakers: kick, snare, hi-hat at a tempo of its own, plus a pad."""
    bpm = rng.uniform(100, 175)
    beat = 60.0 / bpm
    duration = n / SR
    t0 = rng.uniform(0, beat)
    eighths = np.arange(t0, duration, beat / 2)
    i = np.arange(len(eighths))
    K = 4096
    t = np.arange(K) / SR
    f = _freqs(K)
    kick_t = eighths[i % 2 == 0]
    kick = np.sin(2 * np.pi * (55 * t + 60 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.08)
    kick = np.tile(kick, (len(kick_t), 1))
    snare_t = eighths[i % 4 == 2]
    snare = _shape_rows(rng.standard_normal((len(snare_t), K)), _band(f, 800, 6000)) * np.exp(-t / 0.04) * 0.6
    hat = _shape_rows(rng.standard_normal((len(eighths), K)), _band(f, 6000, 7800)) * np.exp(-t / 0.012) * 0.2
    drums = (_place(n, np.round(kick_t * SR).astype(np.int64), kick)
             + _place(n, np.round(snare_t * SR).astype(np.int64), snare)
             + _place(n, np.round(eighths * SR).astype(np.int64), hat))
    bars = np.floor(np.arange(n) / SR / (4 * beat)).astype(np.int64)
    n_bars = int(bars[-1]) + 1
    pad = np.zeros(n)
    for root in rng.uniform(110, 330, 3):  # three voices, a new chord every bar
        notes = root * 2 ** (rng.integers(0, 7, n_bars) / 12)
        pad += np.sin(2 * np.pi * np.cumsum(notes[bars]) / SR)
    music = drums / np.sqrt(_power(drums)) + rng.uniform(0.2, 0.8) * pad / np.sqrt(_power(pad))
    return music, float(bpm)


def _treadmill(rng, n, speed, steps_idx) -> np.ndarray:
    """Treadmill machine: motor hum whose pitch follows the belt speed and dips under each
    footfall, PWM whine, belt rolling noise and the belt seam's click once per revolution."""
    n_ctrl = len(speed)
    belt = speed.copy()
    moving = belt > 0
    if moving.any():  # standing on the rails: the belt keeps its last speed
        last = np.maximum.accumulate(np.where(moving, np.arange(n_ctrl), 0))
        belt = belt[last]
        belt[: np.argmax(moving)] = belt[np.argmax(moving)]
    else:
        belt[:] = 2.5
    dips = np.bincount(np.minimum(steps_idx // (SR // CTRL_RATE), n_ctrl - 1), minlength=n_ctrl).astype(float)
    dips = signal.lfilter([1.0], [1, -np.exp(-1 / (0.08 * CTRL_RATE))], dips)
    f_motor = _to_audio_rate(belt * rng.uniform(12, 20) * (1 - 0.015 * dips), n)
    z = np.exp(2j * np.pi * np.cumsum(f_motor) / SR)
    zh, hum = np.ones(n, complex), np.zeros(n)
    for h in range(1, 7):  # harmonics by repeated complex multiplication (cheaper than sin)
        zh *= z
        hum += (zh * np.exp(1j * rng.uniform(0, 2 * np.pi))).imag * rng.uniform(0.3, 1.0) / h
    hum *= _to_audio_rate(1 + 0.3 * dips, n)
    whine = 0.05 * np.sin(2 * np.pi * rng.uniform(2000, 6000) / SR * np.arange(n))
    rolling = _colored_noise(rng, n, lambda f: _band(f, 200, 2500, 1))
    loop_m = rng.uniform(4.0, 6.0)  # belt loop length
    revs = np.cumsum(belt / loop_m) / CTRL_RATE
    seam_idx = np.searchsorted(revs, np.arange(1, int(revs[-1]) + 1)) * (SR // CTRL_RATE)
    K = 512
    tk = np.arange(K) / SR
    seam = np.sin(2 * np.pi * 900 * tk) * np.exp(-tk / 0.004)
    clicks = _place(n, seam_idx, np.tile(seam, (len(seam_idx), 1)) * rng.uniform(1, 4))
    parts = [hum, whine, rolling, clicks]
    return sum(w * p / np.sqrt(_power(p)) for w, p in zip((1.0, 0.2, 0.7, 0.5), parts))


# ---------------------------------------------------------------------------------------------
# the phone


def _agc(x: np.ndarray, release_s: float, strength: float, target_db: float = -20.0) -> tuple[np.ndarray, np.ndarray]:
    """Slow automatic gain control on 20-ms frames: fast attack (~0.1 s), slow release.
    Returns (audio, gain in dB per frame). A frame loop, not a sample loop (50 frames/s)."""
    hop = SR // 50
    n_fr = len(x) // hop + 1
    pad = np.zeros(n_fr * hop)
    pad[: len(x)] = x
    level = 10 * np.log10(np.mean(pad.reshape(n_fr, hop) ** 2, axis=1) + 1e-12)
    a_att, a_rel = np.exp(-1 / (0.1 * 50)), np.exp(-1 / (release_s * 50))
    smooth = np.empty(n_fr)
    s = float(np.median(level))
    for i, v in enumerate(level):
        a = a_att if v > s else a_rel
        s = a * s + (1 - a) * v
        smooth[i] = s
    gain_db = np.clip(strength * (target_db - smooth), -20, 20)
    gain_db -= np.median(gain_db)
    g = _upsample(10 ** (gain_db / 20), hop, len(x))
    return x * g, gain_db


# ---------------------------------------------------------------------------------------------
# a run


# ---------------------------------------------------------------------------------------------
# recorded sounds (train.data.sounds, train split only) mixed with the procedural ones


BED_CATEGORIES = ("ambience", "wind", "speech", "music")


def balanced_beds(beds: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Beds listed so that a uniform draw picks each category equally often: a rarer category's
    clips are listed more times (the same arrays, no copies). Without it the corpus's 80 short
    speech prompts would be nine draws in ten, and its two music beds one in fifty."""
    by: dict[str, list[np.ndarray]] = {}
    for category, audio in beds:
        by.setdefault(category, []).append(audio)
    most = max((len(v) for v in by.values()), default=0)
    out: list[np.ndarray] = []
    for category in BED_CATEGORIES:
        clips = by.get(category, [])
        out += [clips[i % len(clips)] for i in range(most)] if clips else []
    return tuple(out)


@dataclass(frozen=True)
class Recorded:
    """Recorded one-shots and beds the generator mixes in, with their domain randomisation.

    steps: footstep and impact one-shots, each cut to start at its onset (the step's label point).
    beds: ambience, wind, speech and music beds, looped under the run.
    step_share: per run, the share of steps whose procedural impact is replaced by a recorded one
        (drawn uniformly in this range: some runs all recorded, some mostly procedural).
    level_db: per run, the whole run's level relative to the procedural generator's (which puts
        the peak at 0.3-0.95): -30 dB is a phone deep in a pocket, +10 dB clips like a loud one.
    stretch: per-step time/pitch stretch factor range (resampling); tilt_db: per-step spectral
        tilt in dB per octave around 1 kHz (microphone, shoe and distance colour).
    reverb_p / rt60_s: share of runs given a simulated room/outdoor response (exponentially
        decaying noise) and its RT60 range.
    """

    steps: tuple[np.ndarray, ...]
    beds: tuple[np.ndarray, ...]
    packages: tuple[str, ...] = ()
    step_share: tuple[float, float] = (0.3, 1.0)
    level_db: tuple[float, float] = (-30.0, 10.0)
    stretch: tuple[float, float] = (0.85, 1.18)
    tilt_db: tuple[float, float] = (-4.0, 4.0)
    reverb_p: float = 0.5
    rt60_s: tuple[float, float] = (0.1, 0.9)

    @classmethod
    def from_corpus(cls, root: str | Path | None = None, without: Sequence[str] = ()) -> Recorded:
        """The ``train`` split of a sound corpus (:mod:`train.data.sounds`); eval packages never enter.
        ``without``: packages whose one-shots are no step sound here (their beds stay)."""
        from train.data.sounds import load_clips

        clips = load_clips(root, split="train")
        unknown = sorted(set(without) - {c.package for c in clips})
        if unknown:
            raise ValueError(f"--without {','.join(unknown)}: no train-split package of that name in the corpus")
        steps = tuple(c.audio[int(round(c.onset_s * SR)) :].astype(np.float32) for c in clips
                      if c.category in ("footstep", "impact") and c.package not in without)
        beds = balanced_beds([(c.category, c.audio.astype(np.float32)) for c in clips if c.category in BED_CATEGORIES])
        if not steps:
            raise ValueError("the sound corpus has no train-split footstep or impact clips; build it with `footfall data sounds`")
        return cls(tuple(s for s in steps if len(s) > 32), beds, tuple(sorted({c.package for c in clips})))


def _recorded_kernels(rng: np.random.Generator, rec: Recorded, kern: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace a run-level share of the rows of ``kern`` (n, K) by recorded one-shots -> (kernels, how many)."""
    n, K = kern.shape
    take = np.flatnonzero(rng.random(n) < rng.uniform(*rec.step_share))
    if len(take) == 0:
        return kern, 0
    out = kern.copy()
    f = _freqs(K)
    octaves = np.log2(np.maximum(f, 20.0) / 1000.0)
    for i in take:
        clip = rec.steps[int(rng.integers(len(rec.steps)))]
        stretch = rng.uniform(*rec.stretch)  # > 1: longer and lower
        m = min(K, int(len(clip) * stretch))
        x = np.interp(np.arange(m) / stretch, np.arange(len(clip)), clip)
        row = np.zeros(K)
        row[:m] = x
        row = sfft.irfft(sfft.rfft(row) * 10 ** (rng.uniform(*rec.tilt_db) * octaves / 20), n=K)
        out[i] = row
    return _unit_energy(_fade_tail(out)), len(take)


def _recorded_bed(rng: np.random.Generator, rec: Recorded, n: int) -> np.ndarray:
    """A recorded bed looped from a random offset to n samples (joins crossfaded over 50 ms)."""
    x = rec.beds[int(rng.integers(len(rec.beds)))].astype(np.float64)
    fade = min(800, len(x) // 4)
    reps = int(np.ceil((n + len(x)) / max(len(x) - fade, 1))) + 1
    out = np.zeros(reps * len(x))
    ramp = np.linspace(0.0, 1.0, fade)
    seg = x.copy()
    if fade:
        seg[:fade] *= ramp
        seg[-fade:] *= ramp[::-1]
    for k in range(reps):
        out[k * (len(x) - fade) : k * (len(x) - fade) + len(x)] += seg
    start = int(rng.integers(len(x)))
    return out[start : start + n]


def _reverb(rng: np.random.Generator, x: np.ndarray, rt60_s: float) -> np.ndarray:
    """x convolved with a simulated response: a direct path and exponentially decaying noise (-60 dB at rt60_s)."""
    m = int(rt60_s * SR)
    t = np.arange(m) / SR
    ir = rng.standard_normal(m) * np.exp(-6.9 * t / rt60_s) * _db(rng.uniform(-14, -4))
    ir[0] = 1.0
    return signal.oaconvolve(x, ir)[: len(x)]


def synthesize_run(
    seed: int = 0,
    runner: int | Runner = 0,
    run: int = 0,
    duration_s: float = 60.0,
    surface: str | None = None,
    snr_db: float | None = None,
    recorded: Recorded | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Synthesise one run of ``runner`` (an index into population ``seed``, or a Runner).

    With ``recorded``, a share of the footfalls are recorded one-shots, a recorded bed joins the
    ambience, the run may get a simulated room response and its level is drawn over tens of dB
    (:class:`Recorded`); all of it from a random stream of its own, so without ``recorded`` a
    run is bit-identical to what the generator always made.

    Returns (audio float32 (n,) in [-1, 1] at 16 kHz, step onsets float64 seconds (sorted,
    unique, sample-aligned, inside the audio), info): ``info`` holds the surface, session,
    cadence statistics, the SNR, the confounders present and ``feet`` (a string of L/R, one
    per step). Deterministic in (seed, runner, run, duration_s, surface, snr_db).
    """
    if not isinstance(runner, Runner):
        runner = sample_runner(seed, int(runner))
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    layer_rng = {name: _rng(seed, _TAG_RUN, runner.index, run, i) for i, name in enumerate(_LAYERS)}
    lv = layer_rng["levels"]
    if surface is None:
        surface = str(lv.choice(SURFACES, p=SURFACE_WEIGHTS))
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; expected one of {', '.join(SURFACES)}")
    target_snr = float(lv.uniform(*SNR_DB)) if snr_db is None else float(snr_db)
    outdoor = surface != "treadmill"
    n = int(round(duration_s * SR))
    n_ctrl = int(np.ceil(duration_s * CTRL_RATE)) + 1

    # --- plan, cadence, steps
    prng = layer_rng["plan"]
    plan = make_plan(prng, runner, surface, duration_s)
    cad = cadence_curve(plan, n_ctrl, prng, ramp_s=float(prng.uniform(3, 6)))
    times, feet = step_times(cad, duration_s, layer_rng["steps"], runner.stride_cv, runner.stride_rho, runner.lr_timing)
    idx = np.round(times * SR).astype(np.int64)
    walking = np.interp(times, np.arange(n_ctrl) / CTRL_RATE, cad) < 132 if len(times) else np.zeros(0, bool)
    near = np.array([runner.phone_arm == "L", runner.phone_arm == "R"])[feet] if len(times) else np.zeros(0, bool)
    speed_factor = np.clip(cad / runner.run_spm, 0, 1.3)
    step_len = runner.step_length_m * np.clip((cad - 90) / (runner.run_spm - 90), 0.5, 1.3)
    speed = cad / 60.0 * step_len  # m/s, 0 standing
    is_stop = (cad <= 0).astype(float)
    effort = np.clip(cad / runner.run_spm, 0.6, 1.25) ** 2
    hill = np.zeros(n_ctrl)
    for seg in plan:
        if seg.kind in ("hill", "surge"):
            hill[int(seg.start_s * CTRL_RATE) : int(seg.end_s * CTRL_RATE)] = 1.0
    effort = effort * (1 + 0.5 * uniform_filter1d(hill, 20 * CTRL_RATE, mode="nearest"))

    # --- own footfalls
    irng = layer_rng["impacts"]
    snd = SURFACE_SOUNDS[surface]
    kern = _impact_kernels(irng, snd, runner.shoe, runner.strike, runner.mass_kg, walking, ~near)
    rec_rng, n_recorded = layer_rng["recorded"], 0
    if recorded is not None and len(times):
        kern, n_recorded = _recorded_kernels(rec_rng, recorded, kern)
    fatigue = _db(1.0) ** _slow_noise(irng, n_ctrl, 30.0)
    amp = np.ones(len(times))
    if len(times):
        ti = np.minimum((times * CTRL_RATE).astype(int), n_ctrl - 1)
        amp = (np.where(near, 1.0, _db(-runner.far_foot_db)) * fatigue[ti] * irng.lognormal(0, 0.25, len(times))
               * np.where(walking, _db(irng.uniform(-8, -3)), np.maximum(speed_factor[ti], 0.85) ** 2))
    steps_sig = _place(n, idx, kern * amp[:, None])
    srng = layer_rng["scuffs"]
    # stance lasts ~62 % of a stride walking, 0.18-0.28 s running: the scuff is at toe-off
    contact = np.where(walking, 0.62 * 120 / np.maximum(np.interp(times, np.arange(n_ctrl) / CTRL_RATE, cad), 1),
                       srng.uniform(0.18, 0.28)) if len(times) else np.zeros(0)
    scuffs = _scuff_kernels(srng, snd, len(times)) * (amp * _db(snd.scuff_db) * srng.lognormal(0, 0.35, len(times)))[:, None]
    steps_sig += _place(n, idx + np.round(contact * SR).astype(np.int64), scuffs)
    near_level = 1.0  # a near-foot running impact has unit energy: body levels are relative to it

    # --- body: armband rustle at stride rate, breathing, other runners
    rrng = layer_rng["rustle"]
    body = np.zeros(n)
    n_rustle = 0
    if len(times) > 2:
        d = np.diff(times)
        stride = 2 * np.median(d[d < 0.8]) if np.any(d < 0.8) else 0.7
        main = np.flatnonzero(near)  # the arm swings once per stride
        off = runner.rustle_phase * stride + rrng.normal(0, 0.015, len(main))
        second = rrng.random(len(main)) < 0.2 + 0.6 * runner.armband_looseness  # the other reversal
        r_t = np.concatenate([times[main] + off, times[main][second] + off[second] + stride / 2])
        r_a = np.concatenate([np.ones(len(main)), np.full(int(second.sum()), runner.rustle_back)])
        r_a *= np.where(walking[np.concatenate([main, main[second]])], 0.5, 1.0) * rrng.lognormal(0, 0.45, len(r_a))
        r_a *= rrng.random(len(r_a)) > 0.1  # some swings are silent
        # standing: fiddling with the armband, checking the phone
        stand_t = np.arange(n_ctrl)[cad <= 0] / CTRL_RATE
        fiddle = stand_t[rrng.random(len(stand_t)) < rrng.uniform(0.1, 0.4) / CTRL_RATE]
        r_t = np.concatenate([r_t, fiddle])
        r_a = np.concatenate([r_a, rrng.lognormal(0, 0.5, len(fiddle))])
        n_rustle = len(r_t)
        rustle = _place(n, np.round(r_t * SR).astype(np.int64), _rustle_kernels(rrng, len(r_t), runner) * (near_level * _db(runner.rustle_db) * r_a)[:, None])
        body += rustle
    breath = _breathing(layer_rng["breath"], n, cad, runner, effort, is_stop)
    steps_power = _power(steps_sig)
    breath *= np.sqrt(steps_power * 10 ** (runner.breath_db / 10) / _power(breath))
    body += breath
    others, episodes = _other_runners(layer_rng["others"], n, runner, surface, near_level)
    body += others
    rel = lambda x: round(float(10 * np.log10(_power(x) / steps_power)), 1) if np.any(x) else None  # noqa: E731
    body_db = {"rustle": rel(body - breath - others), "breath": rel(breath), "other_runners": rel(others)}

    # --- ambient: each layer at unit power times a level drawn per run, then scaled for the SNR
    layers: dict[str, tuple[np.ndarray, float]] = {}
    meta: dict[str, object] = {}
    stride_phase = np.cumsum(np.maximum(cad, 0) / 120.0) / CTRL_RATE
    wind = _wind(layer_rng["wind"], n, speed, outdoor)
    layers["wind"] = (wind, lv.uniform(-2, 14) if outdoor else lv.uniform(-25, -10))  # mostly below SNR_BAND_HZ
    layers["arm_whoosh"] = (_arm_whoosh(layer_rng["wind"], n, stride_phase, speed), lv.uniform(-10, 2))
    traffic, n_cars = _traffic(layer_rng["traffic"], n, surface)
    if traffic is not None:
        layers["traffic"] = (traffic, lv.uniform(-6, 6))
    meta["cars"] = n_cars
    birds, n_songs = _birds(layer_rng["birds"], n, surface)
    if birds is not None:
        layers["birds"] = (birds, lv.uniform(-12, 0))
    meta["bird_songs"] = n_songs
    speech, n_utt = _speech(layer_rng["speech"], n, surface)
    if speech is not None:
        layers["speech"] = (speech, lv.uniform(-10, 3))
    meta["utterances"] = n_utt
    rain_p = lv.random()
    if outdoor and rain_p < 0.2:
        rain, rate = _rain(layer_rng["rain"], n)
        layers["rain"] = (rain, lv.uniform(-6, 6))
        meta["rain_drops_per_s"] = round(rate)
    if not outdoor:
        layers["treadmill"] = (_treadmill(layer_rng["machine"], n, speed, idx), lv.uniform(-3, 6))
        if lv.random() < 0.75:
            music, bpm = _music(layer_rng["music"], n)
            layers["music"] = (music, lv.uniform(-8, 4))
            meta["music_bpm"] = round(bpm, 1)
    layers["bed"] = (_colored_noise(layer_rng["bed"], n, lambda f: 1 / np.sqrt(np.maximum(f, 20))), lv.uniform(-18, -8))
    if recorded is not None and recorded.beds:
        layers["recorded_bed"] = (_recorded_bed(rec_rng, recorded, n), rec_rng.uniform(-6, 8))
    ambient = np.zeros(n)
    for sig, level in layers.values():
        ambient += sig * (_db(level) / np.sqrt(_power(sig)))

    # --- the phone: band-limit, SNR, self-noise, AGC, level, clipping
    ph = layer_rng["phone"]
    sos = np.concatenate([signal.butter(runner.hp_order, runner.hp_hz, "highpass", fs=SR, output="sos"),
                          signal.butter(4, runner.lp_hz, "lowpass", fs=SR, output="sos")])
    steps_f, body_f, amb_f = (signal.sosfilt(sos, x) for x in (steps_sig, body, ambient))
    # the SNR is measured where the impacts' contact noise lives (not in the wind's rumble)
    band = signal.butter(2, SNR_BAND_HZ, "bandpass", fs=SR, output="sos")
    p_steps, p_body, p_amb = (_power(signal.sosfilt(band, x)) for x in (steps_f, body_f, amb_f))
    p_rest_target = p_steps / 10 ** (target_snr / 10)
    g2 = max(p_rest_target - p_body, 0.02 * p_rest_target) / p_amb  # body sources alone may be louder
    mix = steps_f + body_f + np.sqrt(g2) * amb_f
    rt60 = None
    if recorded is not None and rec_rng.random() < recorded.reverb_p:
        rt60 = float(rec_rng.uniform(*recorded.rt60_s))
        mix = _reverb(rec_rng, mix, rt60)
    actual_snr = 10 * np.log10(p_steps / (p_body + g2 * p_amb))
    full_snr = 10 * np.log10(_power(steps_f) / (_power(body_f) + g2 * _power(amb_f)))  # whole band, after the HP
    mix += ph.standard_normal(n) * np.sqrt(_power(mix)) * _db(runner.self_noise_db)
    agc_gain_db = np.zeros(1)
    if runner.agc:
        mix, agc_gain_db = _agc(mix, runner.agc_release_s, float(ph.uniform(0.4, 1.0)))
    clip_run = ph.random() < 0.12  # occasional clipping: the loudest 0.05-0.5 % of samples
    if clip_run:
        gain = ph.uniform(1.0, 1.6) / (np.quantile(np.abs(mix), 1 - ph.uniform(0.0005, 0.005)) + 1e-12)
    else:
        gain = ph.uniform(0.3, 0.95) / (np.abs(mix).max() + 1e-12)
    level_db = float(rec_rng.uniform(*recorded.level_db)) if recorded is not None else 0.0
    audio = np.clip(mix * gain * _db(level_db), -1.0, 1.0).astype(np.float32)
    clipped = float(np.mean(np.abs(audio) >= 1.0))

    # --- what was made
    d = np.diff(times)
    inst = 60.0 / d[d < 60.0 / 95] if len(d) else np.zeros(0)
    running = inst[inst >= 135]
    seg_time = {k: round(sum(s.end_s - s.start_s for s in plan if s.kind == k), 2) for k in ("run", "surge", "hill", "walk", "stop")}
    info = {
        "runner_id": runner.runner_id,
        "run": run,
        "seed": seed,
        "surface": surface,
        "session": session_of(surface),
        "duration_s": round(n / SR, 4),
        "n_steps": int(len(times)),
        "cadence_spm": {
            "median": round(float(np.median(inst)), 1) if len(inst) else None,
            "running_median": round(float(np.median(running)), 1) if len(running) else None,
            "p5": round(float(np.percentile(inst, 5)), 1) if len(inst) else None,
            "p95": round(float(np.percentile(inst, 95)), 1) if len(inst) else None,
        },
        "time_s": seg_time,
        "snr_db": round(float(actual_snr), 2),
        "snr_target_db": round(target_snr, 2),
        "snr_fullband_db": round(float(full_snr), 2),
        "body_snr_db": round(float(10 * np.log10(p_steps / p_body)), 2),
        "runner": {"mass_kg": round(runner.mass_kg, 1), "run_spm": round(runner.run_spm, 1), "strike": runner.strike,
                   "shoe": runner.shoe.kind, "stride_cv": round(runner.stride_cv, 4), "phone_arm": runner.phone_arm,
                   "far_foot_db": round(runner.far_foot_db, 1), "armband_looseness": round(runner.armband_looseness, 2),
                   "breath": f"{runner.breath_ratio}:{runner.breath_ratio}"},
        "confounders": {
            "rustle_events": n_rustle, "rustle_db": round(runner.rustle_db, 1),
            "breath_db": round(runner.breath_db, 1), "other_runners": episodes,
            "body_db": body_db, "ambient_db": {k: round(float(v[1]), 1) for k, v in layers.items()}, **meta,
        },
        "phone": {"hp_hz": round(runner.hp_hz), "agc": runner.agc,
                  "agc_range_db": round(float(np.ptp(agc_gain_db)), 1), "clipped_fraction": round(clipped, 5)},
        "plan": [[s.kind, s.start_s, s.end_s, s.spm] for s in plan],
        "feet": "".join("LR"[int(f)] for f in feet),
    }
    if recorded is not None:
        info["recorded"] = {"steps": n_recorded, "packages": list(recorded.packages), "level_db": round(level_db, 1),
                            "rt60_s": None if rt60 is None else round(rt60, 2)}
    return audio, times, info


# ---------------------------------------------------------------------------------------------
# writing a dataset (contract 5)


def write_steps(path: Path, times: np.ndarray, feet: str) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "foot"])
        for t, foot in zip(times, feet):
            w.writerow([f"{t:.{STEPS_DECIMALS}f}", foot])


def write_audio(path: Path, audio: np.ndarray) -> None:
    """FLAC, 16 kHz mono, PCM_16 (quantised here, so the file is exactly what we say)."""
    import soundfile as sf

    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    sf.write(str(path), pcm, SR, format="FLAC", subtype="PCM_16")


@dataclass(frozen=True)
class RunJob:
    seed: int
    runner: int
    run: int
    duration_s: float
    surface: str
    labeled: bool
    out: str
    sounds: str | None = None  # a sound corpus: mix its train-split clips in (Recorded)


@lru_cache(maxsize=2)
def _recorded(root: str) -> Recorded:
    """One load per worker process."""
    return Recorded.from_corpus(root)


def _make_run(job: RunJob) -> dict:
    """Worker: synthesise one run, write its audio (and steps when labeled), return its info."""
    t0 = time.perf_counter()
    recorded = _recorded(job.sounds) if job.sounds is not None else None
    audio, times, info = synthesize_run(job.seed, job.runner, job.run, job.duration_s, job.surface, recorded=recorded)
    run_id = f"{info['runner_id']}_{job.run}"
    out = Path(job.out)
    audio_rel = f"audio/{run_id}.flac"
    write_audio(out / audio_rel, audio)
    steps_rel = ""
    if job.labeled:
        steps_rel = f"steps/{run_id}.csv"
        write_steps(out / steps_rel, times, info["feet"])
    info.pop("feet")
    info.update(run_id=run_id, audio=audio_rel, steps=steps_rel, labeled=job.labeled,
                synth_s=round(time.perf_counter() - t0, 2))
    return info


def plan_dataset(runners: int, runs: int, seed: int, unlabeled_fraction: float, n_folds: int = N_FOLDS):
    """Who runs on what, the runner folds and which runs are unlabeled -> (jobs-args, folds).

    Surfaces: balanced over the dataset, distinct within a runner while possible.
    Unlabeled runs: about ``unlabeled_fraction`` of the runs of every fold, never all of a
    fold's runs (every fold keeps labeled runs for training and testing).
    """
    from train.data.folds import assign_folds

    if runners < n_folds:
        raise ValueError(f"{runners} runners cannot fill {n_folds} runner-independent folds; need at least {n_folds}")
    if not 0.0 <= unlabeled_fraction < 1.0:
        raise ValueError(f"unlabeled_fraction must be in [0, 1), got {unlabeled_fraction}")
    ids = [runner_id(seed, i) for i in range(runners)]
    folds = assign_folds([r for r in ids for _ in range(runs)], n_folds=n_folds, seed=seed)
    rng = _rng(seed, _TAG_DATASET)
    surfaces = {}
    count = dict.fromkeys(SURFACES, 0)
    for i in range(runners):  # greedy: the least used surfaces so far, distinct within a runner
        used: set[str] = set()
        for r in range(runs):
            free = [x for x in SURFACES if x not in used] or list(SURFACES)
            low = min(count[x] for x in free)
            pick = str(rng.choice([x for x in free if count[x] == low]))
            surfaces[(i, r)] = pick
            used.add(pick)
            count[pick] += 1
    unlabeled = set()
    for g in range(n_folds):
        members = [(i, r) for i in range(runners) for r in range(runs) if folds[ids[i]] == g]
        k = min(int(round(unlabeled_fraction * len(members))), len(members) - 1)
        if k > 0:
            unlabeled.update(members[j] for j in rng.choice(len(members), size=k, replace=False))
    return surfaces, folds, unlabeled


def synthesize_dataset(
    out: str | Path,
    runners: int = 20,
    minutes: float = 4.0,
    runs: int = 3,
    seed: int = 0,
    unlabeled_fraction: float = 0.2,
    workers: int = 2,
    progress: bool = True,
    report: bool = True,
    sounds: str | Path | None = None,
) -> Path:
    """Write a synthetic dataset in the recordings format (contract 5) -> the dataset folder.

    ``sounds``: a sound corpus (:mod:`train.data.sounds`) whose train-split clips are mixed in
    (:class:`Recorded`); None keeps the purely procedural generator.

    ``out``/manifest.csv, audio/<run_id>.flac, steps/<run_id>.csv (labeled runs only),
    runs.jsonl (per-run info for the report) and, with ``report``, report/ (see
    :mod:`train.data.report`). Runs are synthesised in ``workers`` processes; the result does
    not depend on their number.
    """
    from train.data.recordings import Recording, write_manifest

    if runs < 1 or not 0 < minutes < np.inf:  # NaN too
        raise ValueError(f"need runs >= 1 and minutes > 0 (a finite number), got runs={runs}, minutes={minutes}")
    out = Path(out)
    surfaces, folds, unlabeled = plan_dataset(runners, runs, seed, unlabeled_fraction)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "steps").mkdir(parents=True, exist_ok=True)
    recorded = None
    if sounds is not None:
        recorded = Recorded.from_corpus(sounds)  # fails here, once, on a missing or empty corpus
        sounds = str(Path(sounds).resolve())
    jobs = [RunJob(seed, i, r, float(minutes) * 60.0, surfaces[(i, r)], (i, r) not in unlabeled, str(out), sounds)
            for i in range(runners) for r in range(runs)]
    infos: list[dict] = []
    t0 = time.perf_counter()
    pool = None
    if workers > 1:
        # fork where there is fork (no re-import of __main__); all workers start at the first
        # submit, before the progress bar starts its refresh thread
        method = "fork" if "fork" in get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context(method))
        futures = [pool.submit(_make_run, j) for j in jobs]
    try:
        with _progress(progress) as bar:
            task = bar.add_task(f"synth {len(jobs)} runs x {minutes:g} min", total=len(jobs)) if bar else None
            for info in (f.result() for f in as_completed(futures)) if pool else map(_make_run, jobs):
                infos.append(info)
                if bar:
                    bar.advance(task)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    order = {(runner_id(seed, j.runner), j.run): k for k, j in enumerate(jobs)}
    infos.sort(key=lambda d: order[(d["runner_id"], d["run"])])
    recs = []
    for info in infos:
        info["fold"] = folds[info["runner_id"]]
        recs.append(Recording(info["run_id"], info["runner_id"], out.resolve() / info["audio"],
                              out.resolve() / info["steps"] if info["steps"] else None,
                              info["surface"], info["session"], info["fold"]))
    with (out / "runs.jsonl").open("w") as f:
        for info in infos:
            f.write(json.dumps(info) + "\n")
    write_manifest(out, recs)
    meta = {"generator": "train.data.synth", "seed": seed, "runners": runners, "runs": runs, "minutes": minutes,
            "unlabeled_fraction": unlabeled_fraction, "wall_s": round(time.perf_counter() - t0, 1), "workers": workers,
            "recorded_packages": list(recorded.packages) if recorded is not None else []}
    (out / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")
    if report:
        from train.data.report import write_report

        write_report(out)
    return out


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(enabled: bool):
    if not enabled:
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
