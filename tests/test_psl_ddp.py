"""Relabeling under ``torchrun`` with 2 gloo processes gives the labels one process gives.

Both runs go through the real CLI in subprocesses with one intra-op thread each, so the only
difference is the sharding of recordings over ranks (each recording is batched on its own): the
same step probabilities, bit for bit, and they are the teacher's of its committed track.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _relabel(args: list[str], launcher: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([*launcher, "-m", "train.cli.distill", "psl", "relabel", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.e2e
def test_two_gloo_processes_relabel_like_one(tmp_path):
    from edge.counter import sigmoid
    from train.data.features import recording_logmel
    from train.data.recordings import load_dataset
    from train.distill.psl import committed_logits, load_labels, load_provenance, load_track
    from train.models import build_model, save_checkpoint

    data = make_dataset(tmp_path / "data", n_runners=5, runs_per_runner=1, seconds=8.0)
    torch.manual_seed(0)
    model = build_model("cnn6", width=0.125, dropout=0.0, head_channels=8, head_dilations=[1])
    with torch.no_grad():  # an untrained head is flat by design; make the teacher's frames differ
        torch.nn.init.normal_(model.head.out.weight, std=20.0)
    teacher = save_checkpoint(tmp_path / "teacher.pt", model.eval(), train_config={"window_s": 2.0})
    common = ["--teacher", str(teacher), "--data", str(data), "--device", "cpu", "--no-progress"]
    _relabel([*common, "--out", str(tmp_path / "one")], [sys.executable])
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"]
    _relabel([*common, "--out", str(tmp_path / "two")], torchrun)

    one, two = load_provenance(tmp_path / "one"), load_provenance(tmp_path / "two")
    assert one.complete and two.complete and one.key() == two.key() and one.run_ids == two.run_ids and len(one.run_ids) == 5
    a, b = load_labels(tmp_path / "one"), load_labels(tmp_path / "two")
    for rid in one.run_ids:
        np.testing.assert_array_equal(a[rid], b[rid])
    for rec in load_dataset(data):
        probs = load_track(tmp_path / "two", rec.run_id)
        np.testing.assert_allclose(probs, sigmoid(committed_logits(model, recording_logmel(rec, data), 200, 100)), rtol=1e-5, atol=1e-6)
        assert np.ptp(probs) > 0.1
