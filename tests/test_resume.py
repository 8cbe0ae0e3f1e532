"""Kill -9 a training process mid-epoch, ``--resume`` it, and get the uninterrupted run's bits.

Teacher and student go through the same loop and the same checkpoint. Each run checkpoints every
3 steps; the test SIGKILLs it just after a checkpoint inside epoch 0 lands, so the steps taken
after that checkpoint are lost and must be redone identically: the same batches (the epoch's
permutation, the first ones skipped), the same dropout masks and augmentation draws (restored
RNG states), the same Adam moments, schedule and weight average. The resumed run must end with
exactly the uninterrupted run's weights (``torch.equal``, not a tolerance) and metrics.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.fixtures import REPO, TINY_MODEL_ARGS, make_dataset, run_ok, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
# a student small enough for a test (MobileNetV2's table cut short, a narrow head)
TINY_STUDENT = {"width": 0.125, "head_channels": 8, "head_dilations": [1], "blocks": [[1, 16, 1, 1], [6, 24, 1, 2], [6, 32, 1, 2]], "last_channels": 64}
RUNTIME = {"device": "cpu", "precision": "fp32", "threads": 1, "progress": False, "tensorboard": False}


def _write_yaml(path: Path, values: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(values))
    return path


def _kill_mid_epoch(cmd: list[str], out: Path) -> dict:
    """Start ``cmd``, SIGKILL it as soon as its first ``last.pt`` lands; -> the progress saved there."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    at = torch.load(out / "last.pt", weights_only=True)["progress"]
    assert not at["finished"] and at["epoch"] == 0 and at["step_in_epoch"] > 0, at  # killed mid-epoch (normally at step 3)
    return at


def _nan(v):
    """NaN as a marker that equals itself (a validation PCC of windows that all count nothing is NaN in both runs)."""
    return "nan" if isinstance(v, float) and v != v else v


def _assert_same_state(a: dict, b: dict) -> None:
    """Two ``last.pt`` states hold bit-identical weights, optimizer moments, schedule and position."""
    timing = ("epoch_s", "windows_per_s")
    untimed = lambda progress: {**progress, "history": [{k: _nan(v) for k, v in row.items() if k not in timing} for row in progress["history"]]}  # noqa: E731
    assert untimed(a["progress"]) == untimed(b["progress"])
    assert a["model"].keys() == b["model"].keys()
    for name, w in a["model"].items():
        assert torch.equal(b["model"][name], w), name
    for (ka, sa), (kb, sb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        assert ka == kb and sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sb[key], sa[key]), (ka, key)
    assert a["scheduler"] == b["scheduler"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _assert_same_metrics(a: Path, b: Path) -> None:
    """The metrics files hold each epoch once, with the same numbers (timings aside)."""
    ra, rb = _rows(a), _rows(b)
    assert [r["epoch"] for r in rb] == [r["epoch"] for r in ra] and ra
    for x, y in zip(ra, rb):
        for key in ("step", "lr", "train_loss", "train_mae", "val_loss", "val_mae", "val_pcc", "best_val_mae"):
            assert y[key] == x[key], key


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    """A teacher (dropout on, so the RNG matters) killed in epoch 0 and resumed from its folder alone."""
    data = make_dataset(tmp_path / "data", n_runners=5, seconds=20)
    args = {"cnn14": {**TINY_MODEL_ARGS["cnn14"], "dropout": 0.2}}
    config = _write_yaml(tmp_path / "resume.yaml", {"model": "cnn14", "model_args": args, "window_s": 1.0, "batch_size": 8, "epochs": 3,
                                                   "ckpt_every_steps": 3, **RUNTIME})
    cmd = lambda out: [sys.executable, "-m", "train.cli.fit", "train", "--config", str(config), "--data", str(data), "--out", str(out)]  # noqa: E731

    run_ok(cmd(tmp_path / "straight"))
    out = tmp_path / "killed"
    _kill_mid_epoch(cmd(out), out)
    # the run folder knows its config: --out and --resume alone
    run_ok([sys.executable, "-m", "train.cli.fit", "train", "--out", str(out), "--resume"])

    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["progress"]["global_step"] == straight["progress"]["global_step"] == 21
    _assert_same_state(straight, resumed)
    _assert_same_metrics(tmp_path / "straight" / "metrics.csv", out / "metrics.csv")


def test_student_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    """A PSL student (the teacher's step probabilities and the true step frames, alpha 0.5) with
    every random part on (quiet windows, stretch, mixing, gain, weight average) killed in epoch 0
    and resumed: the same weights, average, best.pt and test scores."""
    from train.models import build_model, save_checkpoint
    from train.distill.psl import relabel

    data = make_dataset(tmp_path / "data", n_runners=5, runs_per_runner=2, seconds=20)
    torch.manual_seed(0)
    model = build_model("cnn14", **TINY_MODEL_ARGS["cnn14"])
    with torch.no_grad():  # an untrained head is flat by design; make the teacher's frames differ
        torch.nn.init.normal_(model.head.out.weight, std=20.0)
    teacher = save_checkpoint(tmp_path / "teacher.pt", model, fold=0, train_config={"window_s": 2.0})
    psl = relabel(teacher, data, tmp_path / "psl", progress=False, device="cpu")
    config = _write_yaml(tmp_path / "student.yaml", {"model_args": {"mobilenetv2": TINY_STUDENT}, "batch_size": 4, "epochs": 2,
                                                     "early_stop_patience": 0, "ckpt_every_steps": 3, "ema_decay": 0.9, "quiet_fraction": 0.1,
                                                     "stretch": 0.15, "mix_prob": 0.5, "gain_db": 6.0, **RUNTIME})
    cmd = lambda out, *extra: [sys.executable, "-m", "train.cli.distill", "distill", "--config", str(config), "--psl", str(psl),  # noqa: E731
                               "--data", str(data), "--out", str(out), *extra]

    run_ok(cmd(tmp_path / "straight"))
    out = tmp_path / "killed"
    _kill_mid_epoch(cmd(out), out)
    run_ok(cmd(out, "--resume"))

    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert straight["progress"]["global_step"] > 2 * 3 and straight["ema"]["updates"] == resumed["ema"]["updates"] == straight["progress"]["global_step"]
    _assert_same_state(straight, resumed)
    for name, w in straight["ema"]["model"].items():
        assert torch.equal(resumed["ema"]["model"][name], w), name
    best_a = torch.load(tmp_path / "straight" / "best.pt", weights_only=True)["state_dict"]
    best_b = torch.load(out / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(best_b[k], v) for k, v in best_a.items())
    _assert_same_metrics(tmp_path / "straight" / "metrics.csv", out / "metrics.csv")
    test_a, test_b = (json.loads((d / "test.json").read_text()) for d in (tmp_path / "straight", out))
    assert test_a["direct"] == test_b["direct"] and test_a["stream"] == test_b["stream"]
    assert (test_a["config"]["labels"], test_a["config"]["alpha"], test_a["config"]["unlabeled"]) == ("psl", 0.5, True)


def test_resume_reads_a_key_missing_from_an_older_checkpoint_as_its_default():
    """A config field added after a checkpoint was written (e.g. distill's ema_decay) ran with its
    default: resuming with the default is the same config, resuming with another value is not."""
    import dataclasses

    from train.fit.config import ConfigError
    from train.distill.student import DistillConfig
    from train.fit.trainer import check_resume_config

    cfg = DistillConfig(labels="weak", unlabeled=False)
    older = cfg.to_dict()
    del older["ema_decay"]
    check_resume_config(older, cfg, Path("last.pt"))  # same run: no error
    with pytest.raises(ConfigError, match=r"last.pt: --resume with a different config \(ema_decay: 0.0 -> 0.99\)"):
        check_resume_config(older, dataclasses.replace(cfg, ema_decay=0.99), Path("last.pt"))
    with pytest.raises(ConfigError, match=r"lr: 0.001 -> 0.002"):  # a key present and changed still fails
        check_resume_config(older | {"lr": 0.001}, dataclasses.replace(cfg, lr=0.002), Path("last.pt"))
