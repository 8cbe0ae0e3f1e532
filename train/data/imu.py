"""A generated own-run recording: the generator's audio plus a matching arm-worn accelerometer.

The audio and the step times come from :func:`train.data.synth.synthesize_run`; this module adds
what the phone's accelerometer would have measured on the runner's upper arm at the same time,
with its own (offset, optionally drifting) clock, so the importer (:mod:`train.data.imu_import`)
can be checked against exact truth.

Model of the arm (world frame z up, the accelerometer measures specific force a - g):

* the body bounces once per step: vertical acceleration peaking at each foot strike, with an
  amplitude that grows with cadence (walking ~2, running ~6-10 m/s^2);
* each foot strike sends an impact transient up the body: a damped ~18-28 Hz oscillation
  starting at the step time (a few m/s^2 walking, 5-15 running);
* the upper arm swings once per stride (half the step rate) about the shoulder: it tilts the
  phone (gravity rotates in the phone frame) and adds tangential and centripetal acceleration;
* the phone sits in the armband at a random orientation (any roll about the arm, some tilt,
  either way up); the sensor has a bias, white noise, a rate of 50-200 Hz and jittered stamps;
* standing is still apart from a little sway; *handling* (the runner taking the phone in hand
  during a stop) is large aperiodic motion: the importer must mask it, not count it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from train.data.synth import SR, synthesize_run

G = 9.81
WALK_CADENCE_SPM = 132  # below this a moving stretch is walking (the generator's threshold)


@dataclass(frozen=True)
class ImuConfig:
    """What varies between generated accelerometer streams (drawn per recording from its seed)."""

    rate_hz: tuple[float, float] = (100.0, 200.0)  # sensor rate range (uniform)
    noise: tuple[float, float] = (0.02, 0.12)  # white noise std, m/s^2
    bias: float = 0.15  # per-axis bias std, m/s^2
    stamp_jitter_s: float = 0.0005  # timestamp jitter std
    handling_p: float = 1.0  # chance of a handling stretch in a stop (or a quiet walk) when there is one
    clip_g: float | None = None  # saturate every axis at +-clip_g * G (a cheap sensor); None: no clipping
    drift_ppm: float = 0.0  # sensor clock runs fast by this much relative to the audio clock
    gaps: tuple[tuple[float, float], ...] = field(default_factory=tuple)  # (start, length) s of dropped samples


def _rot(axis: int, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices about a coordinate axis: (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.zeros(np.shape(c) + (3, 3))
    m[..., axis, axis] = o
    m[..., i, i], m[..., i, j], m[..., j, i], m[..., j, j] = c, -s, s, c
    return m


def random_orientation(rng: np.random.Generator) -> np.ndarray:
    """Arm frame (x forward, y lateral, z along the arm, up) -> phone frame: any roll about the
    arm, up to 25 deg of tilt, either way up."""
    roll = rng.uniform(-np.pi, np.pi)
    tilt = rng.uniform(-0.45, 0.45, 2)
    flip = _rot(0, np.pi) if rng.random() < 0.5 else np.eye(3)
    return flip @ _rot(0, tilt[0]) @ _rot(1, tilt[1]) @ _rot(2, roll)


def step_phase(t: np.ndarray, steps: np.ndarray, max_gap_s: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Continuous step phase at times ``t`` (integer k at step k) and a 0..1 activity envelope
    (1 between steps closer than ``max_gap_s``, fading over half a step at the ends of a bout)."""
    if len(steps) < 2:
        return np.zeros_like(t), np.zeros_like(t)
    k = np.arange(len(steps), dtype=np.float64)
    phase = np.interp(t, steps, k, left=np.nan, right=np.nan)
    d = np.diff(steps)
    period = np.median(d[d < max_gap_s]) if np.any(d < max_gap_s) else 0.5
    # extrapolate half a period either side so the first and last steps have a bounce around them
    phase = np.where(t < steps[0], (t - steps[0]) / period, phase)
    phase = np.where(t > steps[-1], len(steps) - 1 + (t - steps[-1]) / period, phase)
    idx = np.clip(np.searchsorted(steps, t) - 1, 0, len(steps) - 2)
    inside = (t >= steps[idx]) & (t <= steps[idx + 1]) & (d[idx] < max_gap_s)
    near_step = np.min(np.abs(t[:, None] - steps[np.clip(np.searchsorted(steps, t)[:, None] + [-1, 0], 0, len(steps) - 1)]), axis=1) < period / 2
    active = (inside | near_step).astype(np.float64)
    return phase, active


def synthesize_accel(
    steps: np.ndarray,
    info: dict,
    duration_s: float,
    rng: np.random.Generator,
    cfg: ImuConfig = ImuConfig(),
    offset_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The arm-worn accelerometer for a run whose steps (audio clock, s) and plan are given.

    The sensor clock reads ``t_audio + offset_s`` (times ``1 + drift_ppm * 1e-6``); it covers
    the audio from start to end. Returns (t_s (n,) sensor clock, xyz (n, 3) m/s^2, truth info:
    rate, orientation, handling stretches in audio time, clipping).
    """
    rate = float(rng.uniform(*cfg.rate_hz))
    n = int(duration_s * rate)
    t = np.arange(n) / rate + rng.normal(0, cfg.stamp_jitter_s, n)  # audio clock at each sample
    t = np.sort(np.clip(t, 0, duration_s))
    phase, active = step_phase(t, steps)
    active = signal.filtfilt(*signal.butter(2, 1.0, fs=rate), active)  # bouts fade in and out (~0.5 s)
    d = np.diff(steps)
    inst = np.interp(t, steps[1:], 60.0 / np.maximum(d, 1e-3)) if len(steps) > 1 else np.zeros_like(t)
    running = np.clip((inst - WALK_CADENCE_SPM + 8) / 16, 0, 1)  # 0 walking .. 1 running
    phase = np.nan_to_num(phase)

    # vertical bounce, peaking at each strike
    bounce_amp = rng.uniform(1.5, 3.0) + running * rng.uniform(4.0, 7.0)
    a_z = active * bounce_amp * np.cos(2 * np.pi * phase)
    # impact transients: damped oscillations from each step time
    f_imp = rng.uniform(18, 28)
    tau = rng.uniform(0.012, 0.025)
    step_amp = np.where(np.interp(steps, t, running) > 0.5, rng.uniform(5, 12), rng.uniform(1.5, 3.5)) * rng.lognormal(0, 0.2, len(steps))
    impact = np.zeros(n)
    lo = np.searchsorted(t, steps)
    hi = np.searchsorted(t, steps + 8 * tau)
    for s, a, i0, i1 in zip(steps, step_amp, lo, hi):
        dt = t[i0:i1] - s
        impact[i0:i1] += a * np.exp(-dt / tau) * np.sin(2 * np.pi * f_imp * dt + 0.3)
    # small forward/lateral body sway at the step rate
    a_x = active * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * phase + rng.uniform(0, 2 * np.pi))
    a_y = active * rng.uniform(0.3, 1.0) * np.sin(np.pi * phase + rng.uniform(0, 2 * np.pi))
    f_world = np.column_stack([a_x, a_y, G + a_z + impact])  # specific force, world frame

    # arm swing about the lateral (y) axis: once per stride
    swing_amp = active * (rng.uniform(0.2, 0.35) + running * rng.uniform(0.2, 0.4))  # rad
    swing_phase = np.pi * phase + rng.uniform(0, 2 * np.pi)  # half the step phase rate
    theta = swing_amp * np.sin(swing_phase) + rng.uniform(-0.15, 0.15)
    r = rng.uniform(0.12, 0.2)  # shoulder to phone, m
    theta_d = np.gradient(theta, t)
    theta_dd = np.gradient(theta_d, t)
    arm = np.einsum("nji,nj->ni", _rot(1, theta), f_world)  # world -> arm: R^T f
    arm[:, 0] += r * theta_dd
    arm[:, 2] += r * theta_d**2

    # handling: the phone out of the armband in a stop (or on a quiet walk), aperiodic motion
    handling: list[tuple[float, float]] = []
    if rng.random() < cfg.handling_p:
        stops = [(a, b) for kind, a, b, _ in info["plan"] if kind == "stop" and b - a > 8]
        if stops:
            a, b = stops[int(rng.integers(len(stops)))]
            length = min(b - a - 2, rng.uniform(6, 15))
            start = rng.uniform(a + 1, b - 1 - length)
            handling.append((round(start, 3), round(start + length, 3)))
    rot = np.broadcast_to(random_orientation(rng), (n, 3, 3)).copy()
    for a, b in handling:
        m = (t >= a) & (t < b)
        k = int(m.sum())
        win = np.sin(np.pi * np.linspace(0, 1, k)) ** 2
        sos = signal.butter(2, [0.3, 4.0], "bandpass", fs=rate, output="sos")
        wobble = signal.sosfiltfilt(sos, rng.standard_normal((k, 3)), axis=0)
        wobble *= rng.uniform(0.8, 1.6) / wobble.std(axis=0)
        rot[m] = rot[m] @ _rot(0, win * wobble[:, 0]) @ _rot(1, win * wobble[:, 1]) @ _rot(2, win * wobble[:, 2])
        jolt = signal.sosfiltfilt(signal.butter(2, [0.5, 8.0], "bandpass", fs=rate, output="sos"), rng.standard_normal((k, 3)), axis=0)
        arm[m] += win[:, None] * jolt / jolt.std(axis=0) * rng.uniform(2, 5)
    sway = signal.sosfiltfilt(signal.butter(2, 0.5, fs=rate, output="sos"), rng.standard_normal((n, 3)), axis=0)
    arm += (1 - active)[:, None] * sway / (sway.std(axis=0) + 1e-9) * 0.05
    xyz = np.einsum("nij,nj->ni", rot, arm)
    xyz += rng.normal(0, cfg.bias, 3) + rng.normal(0, rng.uniform(*cfg.noise), (n, 3))
    clipped = 0.0
    if cfg.clip_g is not None:
        lim = cfg.clip_g * G
        clipped = float(np.mean(np.abs(xyz) >= lim))
        xyz = np.clip(xyz, -lim, lim)

    t_sensor = (t + offset_s) * (1 + cfg.drift_ppm * 1e-6)
    keep = np.ones(n, bool)
    for a, length in cfg.gaps:
        keep &= ~((t >= a) & (t < a + length))
    truth = {"rate_hz": round(rate, 2), "offset_s": offset_s, "drift_ppm": cfg.drift_ppm, "handling": handling,
             "clipped_fraction": round(clipped, 5), "gaps": [list(g) for g in cfg.gaps]}
    return t_sensor[keep], xyz[keep], truth


def make_recording(folder: str | Path, seed: int = 0, runner: int = 0, run: int = 0, duration_s: float = 120.0,
                   offset_s: float = 0.0, surface: str | None = None, cfg: ImuConfig = ImuConfig(), force: bool = False) -> dict:
    """Write a generated recording folder (``edge.recording`` layout) and its truth.

    The recording's metadata says the audio starts at sensor time 0 (``audio.start_s``) while it
    really starts at ``offset_s``: the clock offset the importer must find. The true steps (audio
    clock) go to ``FOLDER/truth.steps.csv`` and the truth to ``FOLDER/truth.json`` (the importer
    ignores both). Returns the truth dict (with ``steps``, an array).
    """
    import json

    from edge.recording import write_recording
    from train.data.synth import write_steps

    audio, steps, info = synthesize_run(seed=seed, runner=runner, run=run, duration_s=duration_s, surface=surface)
    rng = np.random.default_rng([seed, runner, run, 0x1A0])
    t_s, xyz, truth = synthesize_accel(steps, info, len(audio) / SR, rng, cfg, offset_s)
    meta = {"device": "footfall generator", "arm": info["runner"]["phone_arm"], "orientation": "random",
            "runner_id": info["runner_id"], "generated": {"seed": seed, "runner": runner, "run": run}}
    folder = write_recording(folder, audio, SR, accel=(t_s, xyz), audio_start_s=0.0, meta=meta, force=force)
    write_steps(Path(folder) / "truth.steps.csv", steps, info["feet"])
    truth.update({"n_steps": int(len(steps)), "plan": info["plan"], "runner_id": info["runner_id"], "duration_s": len(audio) / SR})
    (Path(folder) / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    truth["steps"] = steps
    return truth
