"""``torchrun --nproc_per_node 2`` (gloo, CPU) trains what one process trains with the same global batch.

Both runs are real subprocesses of the ``train`` command. Rank r of 2 takes its half of every
global batch of 8 (the DistributedSampler shards the same permutation), BatchNorm statistics span
both halves (GlooSyncBatchNorm), gradients are averaged by DDP and the validation metrics are
gathered from both ranks, so weights and metrics agree with the single process up to float
rounding.

The comparison uses momentum SGD (clipped) and no dropout: Adam's first update is lr * sign(g), which turns
rounding noise in near-zero gradient components into +-lr steps (two correct runs then drift
apart by ~1e-3 relative per step), and dropout draws per-rank masks. Both are properties of the
recipe, not of the scale-out, and would only blur what this test pins down.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
import torch

from tests.fixtures import TINY_MODEL_ARGS, make_dataset, run_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _write_config(path: Path) -> Path:
    import yaml

    path.write_text(
        yaml.safe_dump(
            {
                "model": "cnn14",
                "model_args": TINY_MODEL_ARGS,
                "window_s": 1.0,
                "batch_size": 8,
                "epochs": 2,
                "optimizer": "sgd",
                "lr": 0.003,
                "grad_clip": 1.0,  # clipped on the all-reduced gradient: the same on every rank
                "device": "cpu",
                "precision": "fp32",
                "threads": 1,
                "progress": False,
                "tensorboard": False,
            }
        )
    )
    return path


def _metrics(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_two_gloo_ranks_equal_one_process(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun not found next to the test interpreter"
    data = make_dataset(tmp_path / "data", n_runners=5, seconds=20)
    config = _write_config(tmp_path / "ddp.yaml")
    args = ["-m", "train.cli.fit", "train", "--config", str(config), "--data", str(data), "--fold", "0"]

    run_ok([sys.executable, *args, "--out", str(tmp_path / "single")])
    run_ok([torchrun, "--standalone", "--nproc_per_node", "2", *args, "--out", str(tmp_path / "ddp")])

    single = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    ddp = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert ddp["world_size"] == 2 and len(ddp["ranks"]) == 2 and single["world_size"] == 1
    assert ddp["progress"]["global_step"] == single["progress"]["global_step"] > 0
    num = den = 0.0
    for name, w in single["model"].items():  # weights and BatchNorm running statistics
        v = ddp["model"][name]
        if w.is_floating_point():
            assert (v - w).abs().max().item() < 1e-4, name
            num += float(((v - w) ** 2).sum())
            den += float((w**2).sum())
        else:
            assert torch.equal(v, w), name  # num_batches_tracked
    assert (num / den) ** 0.5 < 1e-5  # rounding level (a different step would be ~1e-3)

    rows_single, rows_ddp = _metrics(tmp_path / "single" / "metrics.csv"), _metrics(tmp_path / "ddp" / "metrics.csv")
    assert len(rows_single) == len(rows_ddp) == 2
    for a, b in zip(rows_single, rows_ddp):
        for key in ("step", "train_loss", "train_mae", "val_loss", "val_mae", "val_pcc"):
            if a[key] != a[key]:  # NaN: a PCC of windows that all count nothing (an untrained net), in both
                assert b[key] != b[key], key
            else:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    # rank 0 alone wrote the run folder
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in (tmp_path / "single").iterdir())
