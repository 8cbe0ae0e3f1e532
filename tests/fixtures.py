"""Tiny recordings datasets for trainer tests: clicks at a runner's cadence in noise.

The format is contract 5 (``manifest.csv``, one WAV and one steps CSV per run), so the real
loaders, caches and folds are exercised; the audio is only as hard as a test needs: each step
is a decaying click of random loudness, cadence drifts per run, and the click level and noise
floor vary with the runner, so window counts differ and a tiny model can learn something.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


def _run_audio(rng: np.random.Generator, seconds: float, cadence_spm: float, click_gain: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """(audio (n,) float32, step times (k,) float64) of one run."""
    n = int(seconds * SAMPLE_RATE)
    audio = rng.standard_normal(n).astype(np.float32) * noise
    period = 60.0 / cadence_spm
    t, steps = rng.uniform(0.05, period), []
    while t < seconds - 0.05:
        steps.append(t)
        # cadence drifts and pauses sometimes, so window counts vary
        t += period * rng.uniform(0.9, 1.1) * (3.0 if rng.random() < 0.04 else 1.0)
    click_len = int(0.03 * SAMPLE_RATE)
    env = np.exp(-np.arange(click_len) / (0.004 * SAMPLE_RATE)).astype(np.float32)
    for s in steps:
        i = int(s * SAMPLE_RATE)
        seg = audio[i : i + click_len]
        seg += (click_gain * rng.uniform(0.5, 1.0) * env[: len(seg)] * rng.standard_normal(len(seg))).astype(np.float32)
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio, np.asarray(steps, np.float64)


def make_dataset(root: str | Path, n_runners: int = 5, runs_per_runner: int = 1, seconds: float = 20.0, seed: int = 0, runner_prefix: str = "runner") -> Path:
    """Write a dataset folder with ``n_runners`` runners (runner i in fold group i % 5); returns root.

    Runner ids are ``{runner_prefix}00``, ``{runner_prefix}01``, ...: another prefix gives
    another population (e.g. extra training data beside a main dataset).
    """
    import soundfile as sf

    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "steps").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_runners):
        click_gain = rng.uniform(0.2, 0.6)
        noise = rng.uniform(0.005, 0.03)
        for j in range(runs_per_runner):
            run_id = f"r{r:02d}_{j}"
            audio, steps = _run_audio(rng, seconds, rng.uniform(150, 185), click_gain, noise)
            sf.write(root / "audio" / f"{run_id}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
            with (root / "steps" / f"{run_id}.csv").open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["time_s"])
                w.writerows([[f"{s:.4f}"] for s in steps])
            rows.append([run_id, f"{runner_prefix}{r:02d}", f"audio/{run_id}.wav", f"steps/{run_id}.csv", "track", "s1", r % 5])
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", "runner_id", "audio", "steps", "surface", "session", "fold"])
        w.writerows(rows)
    return root


# a teacher small enough for a test: Cnn14's table at 1/16 width, no dropout (so that DDP and a
# single process draw no random masks and must agree), a narrow head
TINY_MODEL_ARGS = {"cnn14": {"width": 0.0625, "dropout": 0.0, "head_channels": 16, "head_dilations": [1]}}


def tiny_config(data: Path, out: Path, **changes):
    """A TrainConfig for tests: 1-s windows, batch 8, a tiny Cnn14, fp32 on the CPU, no progress bar."""
    from train.fit.config import TrainConfig

    values = dict(
        model="cnn14",
        model_args=TINY_MODEL_ARGS,
        data=str(data),
        out=str(out),
        fold=0,
        window_s=1.0,
        batch_size=8,
        epochs=2,
        device="cpu",
        precision="fp32",
        threads=1,
        progress=False,
        tensorboard=False,
    )
    values.update(changes)
    return TrainConfig(**values)


# --------------------------------------------------------------------------- training subprocesses

REPO = Path(__file__).resolve().parents[1]
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def subprocess_env() -> dict[str, str]:
    """The environment of a training subprocess: outside any torchrun job, one intra-op thread, this checkout first on the path."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_ok(cmd: list[str], timeout: float = 240) -> None:
    """Run ``cmd`` in the repository root; fail the test with its output tails unless it exits 0."""
    import subprocess

    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
