"""Kill -9 a training process mid-epoch, ``--resume`` it, and get the uninterrupted run's weights.

The run checkpoints every 3 steps of 7-step epochs; the test SIGKILLs it just after its first
checkpoint lands (in epoch 0, at step 3), so the steps taken after that checkpoint are lost and
must be redone identically: the same batches (the epoch's permutation, the first 3 skipped), the
same dropout masks (restored RNG states), the same Adam moments and schedule. Dropout is on here,
so a resume that did not restore the RNG would not match.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.fixtures import TINY_MODEL_ARGS, make_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _write_config(path: Path) -> Path:
    import yaml

    args = {"cnn14": {**TINY_MODEL_ARGS["cnn14"], "dropout": 0.2}}  # RNG matters on resume
    path.write_text(
        yaml.safe_dump(
            {
                "model": "cnn14",
                "model_args": args,
                "window_s": 1.0,
                "batch_size": 8,
                "epochs": 3,
                "ckpt_every_steps": 3,
                "device": "cpu",
                "precision": "fp32",
                "threads": 1,
                "progress": False,
                "tensorboard": False,
            }
        )
    )
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cmd(config: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "train.cli_train", "train", "--config", str(config), "--data", str(data), "--out", str(out), *extra]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    data = make_dataset(tmp_path / "data", n_runners=5, seconds=20)
    config = _write_config(tmp_path / "resume.yaml")

    _run(_cmd(config, data, tmp_path / "straight"))

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(config, data, out), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (out / "last.pt").exists():  # atomic rename: once it exists, it is whole
            assert proc.poll() is None, f"training exited before its first checkpoint:\n{proc.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(out / "last.pt", weights_only=True)
    at = state["progress"]
    assert not at["finished"] and at["step_in_epoch"] in (3, 6), at  # killed mid-epoch (normally epoch 0, step 3)

    # the run folder knows its config: --out and --resume alone
    _run([sys.executable, "-m", "train.cli_train", "train", "--out", str(out), "--resume"])

    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["progress"]["global_step"] == straight["progress"]["global_step"] == 21
    for name, w in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], w, rtol=0, atol=1e-6, msg=lambda m: f"{name}: {m}")
    for group_a, group_b in zip(straight["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        torch.testing.assert_close(group_b["exp_avg_sq"], group_a["exp_avg_sq"], rtol=0, atol=1e-9)
    # the metrics file holds each epoch once, with the uninterrupted run's numbers
    a, b = _rows(tmp_path / "straight" / "metrics.csv"), _rows(out / "metrics.csv")
    assert [r["epoch"] for r in b] == ["0", "1", "2"]
    for ra, rb in zip(a, b):
        for key in ("step", "lr", "train_loss", "train_mae", "val_loss", "val_mae", "val_pcc"):
            assert rb[key] == ra[key], key


def test_resume_reads_a_key_missing_from_an_older_checkpoint_as_its_default():
    """A config field added after a checkpoint was written (e.g. distill's ema_decay) ran with its
    default: resuming with the default is the same config, resuming with another value is not."""
    import dataclasses

    from train.config import ConfigError
    from train.distill import DistillConfig
    from train.trainer import check_resume_config

    cfg = DistillConfig(labels="weak", unlabeled=False)
    older = cfg.to_dict()
    del older["ema_decay"]
    check_resume_config(older, cfg, Path("last.pt"))  # same run: no error
    with pytest.raises(ConfigError, match=r"last.pt: --resume with a different config \(ema_decay: 0.0 -> 0.99\)"):
        check_resume_config(older, dataclasses.replace(cfg, ema_decay=0.99), Path("last.pt"))
    with pytest.raises(ConfigError, match=r"lr: 0.001 -> 0.002"):  # a key present and changed still fails
        check_resume_config(older | {"lr": 0.001}, dataclasses.replace(cfg, lr=0.002), Path("last.pt"))
