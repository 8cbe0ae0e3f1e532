"""The peer baselines: the onset counter counts a clean click track, tunes on train runs only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import train.evaluate.baselines as baselines
from edge.frontend import SAMPLE_RATE, log_mel
from train.evaluate.baselines import OnsetParams, detect_steps, evaluate_baseline
from footfall.cli import app
from train.data.folds import split
from train.data.recordings import load_dataset


def click_track(seconds: float, spm: float, seed: int, noise: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """Decaying noise bursts at ``spm`` with 2% timing jitter, near foot louder; white noise floor."""
    rng = np.random.default_rng(seed)
    period = 60.0 / spm
    t = 0.2 + np.cumsum(rng.normal(period, 0.02 * period, int(seconds / period) + 2))
    t = t[t < seconds - 0.1]
    x = noise * rng.standard_normal(int(seconds * SAMPLE_RATE))
    n = int(0.03 * SAMPLE_RATE)
    env = np.exp(-np.arange(n) / (0.004 * SAMPLE_RATE))
    for i, s in enumerate(t):
        k = int(s * SAMPLE_RATE)
        x[k : k + n] += (0.2 if i % 2 else 0.12) * env * rng.standard_normal(n)
    return x.astype(np.float32), t


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clicks")
    rows = []
    for i in range(5):  # one runner per fold
        x, t = click_track(20.0, spm=150 + 8 * i, seed=i)
        sf.write(root / f"run{i}.wav", x, SAMPLE_RATE)
        with open(root / f"run{i}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["time_s"], *([f"{v:.4f}"] for v in t)])
        rows.append([f"run{i}", f"p{i}", f"run{i}.wav", f"run{i}.csv", "track", "s", i])
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["run_id", "runner_id", "audio", "steps", "surface", "session", "fold"], *rows])
    return root


@pytest.mark.parametrize("spm", [140, 170, 200])
def test_onset_counts_a_click_track(spm):
    x, t = click_track(30.0, spm=spm, seed=spm)
    found = detect_steps(log_mel(x), OnsetParams(band="wide", delta=2.0, rel=0.3, alpha=0.65, gate=0.0))
    assert abs(len(found) - len(t)) <= 0.03 * len(t)
    # and at the right places: every true step has a detection within 30 ms
    frames = np.floor(t * 100)
    assert np.abs(frames[:, None] - found[None, :]).min(axis=1).max() <= 3


def test_onset_baseline_tunes_on_train_runs_only(clicks, monkeypatch):
    seen: list[list[str]] = []
    original = baselines.OnsetGrid.tune

    def spy(self, run_ids, true_segments, window_frames):
        seen.append(list(run_ids))
        assert set(true_segments) == set(run_ids)  # no truth of other runs is even handed over
        return original(self, run_ids, true_segments, window_frames)

    monkeypatch.setattr(baselines.OnsetGrid, "tune", spy)
    recs = load_dataset(clicks)
    small = [OnsetParams(b, d, r, a, g) for b in ("wide", "low") for d in (1.0, 2.0) for r in (0.0, 0.3) for a in (0.5, 0.65) for g in (0.0, 0.3)]
    run = evaluate_baseline(recs, clicks, "onset", 5, configs=small)
    assert len(run.results) == 5
    for k, ids in enumerate(seen):
        train, val, test = split(recs, k)
        assert sorted(ids) == sorted(r.run_id for r in train)
    for r in run.results:
        assert r.mae < 1.0 and r.tce_median < 3.0  # a clean click track is easy
        assert OnsetParams(**r.extra["params"]) in small


def test_naive_baseline_predicts_train_mean(clicks):
    recs = load_dataset(clicks)
    run = evaluate_baseline(recs, clicks, "naive", 5)
    for r in run.results:
        assert np.isnan(r.pcc)
        train_mean = r.extra["train_mean_count"]
        assert r.pred_mean == pytest.approx(train_mean)


def test_eval_cli(clicks, tmp_path):
    runner = CliRunner()
    out = tmp_path / "naive.json"
    res = runner.invoke(app, ["eval", "--baseline", "naive", str(clicks), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["baseline"] == "naive" and len(data["folds"]) == 5 and data["summary"]["mae"]["mean"] > 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["eval", "--baseline", "naive", "NOPE"], "no such dataset folder"),
        (["eval", "--baseline", "magic", "CLICKS"], "unknown baseline"),
        (["eval", "CLICKS"], "--baseline"),
        (["eval", "--baseline", "naive", "--window", "7", "CLICKS"], "--window"),
        (["eval", "--baseline", "naive", "BROKEN"], "manifest.csv:2"),
    ],
)
def test_eval_cli_errors_are_one_line(clicks, tmp_path, args, needle):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.csv").write_text("run_id,runner_id,audio,steps,surface,session,fold\na,p,missing.wav,,,,\n")
    args = [{"NOPE": str(tmp_path / "nope"), "CLICKS": str(clicks), "BROKEN": str(broken)}.get(a, a) for a in args]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
