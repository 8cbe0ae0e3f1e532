"""Pseudo-strong labels and distillation: segment arithmetic, dense tracks, relabeling, targets.

Small real inputs (a 5-runner click dataset, 12-s runs, a 1/16-width teacher) and invariants:
label mass is conserved, overlap averaging equals running the model on the whole recording,
the streamed track is the edge runtime's, relabeling resumes and refuses foreign folders.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_dataset  # noqa: E402

from train.fit.config import ConfigError  # noqa: E402
from train.distill.psl import (  # noqa: E402
    PSLError,
    analyze,
    interval_sums,
    label_curve,
    load_provenance,
    load_segments,
    load_track,
    predict_track,
    relabel,
    resegment,
    segment_matrix,
    segment_sums,
    stream_track,
    track_path,
    true_segments,
)

TINY_TEACHER = {"width": 0.0625, "dropout": 0.0, "head_channels": 8, "head_dilations": [1]}
TINY_STUDENT = {"width": 0.125, "head_channels": 8, "head_dilations": [1], "blocks": [[1, 16, 1, 1], [6, 24, 1, 2], [6, 32, 1, 2]], "last_channels": 64}


class BlockMean(torch.nn.Module):
    """A local, translation-equivariant 'model': density frame j = mean of its 4 input frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, t = x.shape
        return x.mean(dim=(1, 2)).reshape(b, t // 4, 4).mean(-1)


class PositionAware(BlockMean):
    """BlockMean plus a ramp over the window: which window a frame is taken from shows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + 0.01 * torch.arange(y.shape[1], dtype=y.dtype)


# --------------------------------------------------------------------------- arithmetic


def test_segment_matrix_fractional_segments():
    P = segment_matrix(50, 12.5)  # 2 s of density frames in 0.5-s segments
    assert P.shape == (50, 4)
    np.testing.assert_allclose(P.sum(0), 12.5)
    np.testing.assert_allclose(P.sum(1), 1.0)  # every frame fully assigned
    assert P[12, 0] == pytest.approx(0.5) and P[12, 1] == pytest.approx(0.5)


def test_label_curve_conserves_mass_and_reads_any_interval():
    rng = np.random.default_rng(0)
    counts = rng.uniform(0, 5, 7)
    curve = label_curve(counts, 12.5)
    k = np.arange(7)
    np.testing.assert_allclose(interval_sums(curve, k * 12.5, (k + 1) * 12.5), counts)  # aligned: the labels
    # misaligned intervals: the spread counts, e.g. the middle of two segments
    np.testing.assert_allclose(interval_sums(curve, np.array([6.25]), np.array([18.75])), [(counts[0] + counts[1]) / 2])
    # 5-s weak counts spread to 1 s: each 1-s segment gets a fifth, totals kept
    weak = np.array([12.0, 7.0])
    np.testing.assert_allclose(resegment(weak, 125, 25), np.repeat(weak / 5, 5))


def test_true_segments_match_window_counts():
    from train.data.windows import window_counts, window_index

    steps = np.sort(np.random.default_rng(1).uniform(0, 20, 60))
    n_frames = 2000  # 20 s at 100 fps
    for seg in (0.5, 1.0, 2.0, 5.0):
        w = round(seg * 100)
        ref = window_counts(steps, window_index(n_frames, w), w)
        np.testing.assert_array_equal(true_segments(steps, n_frames // 4, seg), ref)


# --------------------------------------------------------------------------- dense tracks


@pytest.mark.parametrize("window, hop", [(200, 100), (500, 500), (200, 48), (96, 32)])
def test_overlap_averaged_track_equals_whole_recording(window, hop):
    mel = np.random.default_rng(2).standard_normal((64, 1003)).astype(np.float32)
    whole = BlockMean()(torch.from_numpy(mel[None, None, :, :1000])).numpy()[0]
    track = predict_track(BlockMean(), mel, window, hop, batch_size=3)
    assert track.shape == (250,)
    np.testing.assert_allclose(track, whole, atol=1e-5)


def test_short_recording_is_padded_and_trimmed():
    mel = np.random.default_rng(3).standard_normal((64, 130)).astype(np.float32)
    track = predict_track(BlockMean(), mel, 200, 100)
    np.testing.assert_allclose(track, BlockMean()(torch.from_numpy(mel[None, None, :, :128])).numpy()[0], atol=1e-5)


def test_stream_track_is_the_edge_runtimes_count():
    from edge.frontend import log_mel
    from edge.golden import onset_card
    from edge.stream import count_offline

    model = PositionAware()
    audio = np.random.default_rng(4).uniform(-0.3, 0.3, 16000 * 7 + 1234).astype(np.float32)

    class Backend:
        path = Path("fake.pte")

        def run(self, x):
            return model(torch.from_numpy(x)).numpy()[0]

    card = onset_card(window_frames=200, hop_frames=48)  # a real card: only its alignment matters here
    ref = count_offline(Backend(), card, audio).density
    track = stream_track(model, log_mel(audio), 200, 48, batch_size=5)
    np.testing.assert_allclose(track, ref, atol=1e-5)


# --------------------------------------------------------------------------- relabel


def _unlabel(root: Path, run_id: str) -> None:
    path = root / "manifest.csv"
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        if r["run_id"] == run_id:
            r["steps"] = ""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """5 runners x 2 runs of 12 s (runner i in fold group i); r02_1 (a training runner) unlabeled."""
    root = make_dataset(tmp_path_factory.mktemp("psl") / "data", n_runners=5, runs_per_runner=2, seconds=12.0)
    _unlabel(root, "r02_1")
    return root


@pytest.fixture(scope="module")
def teacher(dataset) -> Path:
    from train.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("cnn14", **TINY_TEACHER)
    return save_checkpoint(dataset.parent / "teacher.pt", model, fold=0, train_config={"window_s": 2.0})


@pytest.fixture(scope="module")
def psl_dir(dataset, teacher) -> Path:
    return relabel(teacher, dataset, dataset.parent / "psl", segments=(0.5, 1.0, 2.0, 5.0), progress=False, device="cpu")


def test_relabel_labels_every_run_with_provenance(dataset, teacher, psl_dir):
    from edge.card import sha256_file
    from train.data.features import recording_logmel
    from train.data.recordings import load_dataset
    from train.models import load_checkpoint

    prov = load_provenance(psl_dir)
    recs = load_dataset(dataset)
    assert prov.complete and prov.run_ids == [r.run_id for r in recs]
    assert prov.teacher_sha256 == sha256_file(teacher) and prov.teacher_name == "cnn14"
    assert (prov.window_frames, prov.hop_frames) == (200, 100)  # the teacher's window, half-window hop
    model, _ = load_checkpoint(teacher)
    for rec in recs:  # the unlabeled run too
        mel = recording_logmel(rec, dataset)
        track = load_track(psl_dir, rec.run_id)
        np.testing.assert_allclose(track, predict_track(model, mel, 200, 100), rtol=1e-5, atol=1e-6)
        for seg in (0.5, 1.0, 2.0, 5.0):
            labels = load_segments(psl_dir, seg)[rec.run_id]
            assert len(labels) == int(len(track) / (seg * 25) + 1e-9)
            np.testing.assert_allclose(labels, segment_sums(track, seg * 25), rtol=1e-5)
    assert (track >= 0).all()


def test_relabel_resumes_and_refuses_foreign_folders(dataset, teacher, psl_dir):
    missing = track_path(psl_dir, "r03_0")
    kept = track_path(psl_dir, "r01_0")
    before, mtime = np.load(missing), kept.stat().st_mtime_ns
    missing.unlink()
    relabel(teacher, dataset, psl_dir, progress=False, device="cpu")
    np.testing.assert_array_equal(np.load(missing), before)
    assert kept.stat().st_mtime_ns == mtime  # not recomputed
    with pytest.raises(PSLError, match="another teacher, dataset, window or hop"):
        relabel(teacher, dataset, psl_dir, hop_s=0.4, progress=False, device="cpu")


def test_analysis_of_perfect_labels(dataset, psl_dir, tmp_path):
    """Tracks equal to the true per-frame steps: zero PSL error at whole-frame segments."""
    import shutil

    from train.data.features import step_frames
    from train.data.recordings import load_dataset, load_steps
    from train.distill.psl import _finish_folder

    perfect = tmp_path / "perfect"
    shutil.copytree(psl_dir, perfect)
    recs = load_dataset(dataset)
    for rec in recs:
        n = len(load_track(perfect, rec.run_id))
        if rec.steps is not None:
            np.save(track_path(perfect, rec.run_id), step_frames(load_steps(rec.steps), n, fps=25))
    _finish_folder(perfect, load_provenance(perfect), recs)
    res = analyze(perfect, segments=(1.0, 2.0, 5.0))
    rows = {r["segment_s"]: r for r in res["by_group"]["all"]}
    for s in (1.0, 2.0, 5.0):
        assert rows[s]["psl_mae"] == pytest.approx(0.0, abs=1e-6)
        assert rows[s]["timed_mae"] == pytest.approx(0.0, abs=1e-6)  # perfect timing, true counts
    assert rows[5.0]["weak_mae"] == pytest.approx(0.0, abs=1e-6) and rows[1.0]["weak_mae"] > 0
    assert (perfect / "analysis.json").is_file() and (perfect / "analysis.png").stat().st_size > 1000


def test_timed_track_keeps_the_teachers_timing_and_takes_the_true_count():
    from train.distill.psl import timed_track

    track = np.array([0.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 9.0])  # 2 windows of 4 frames, a tail
    out = timed_track(track, np.array([8.0, 2.0]), 4)
    np.testing.assert_allclose(out, [0.0, 4.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5])  # silent window: spread evenly
    assert timed_track(track, np.array([0.0, 0.0]), 4).sum() == 0.0


# --------------------------------------------------------------------------- distillation


def test_distill_loss_is_the_alpha_mix():
    from train.distill.student import distill_loss

    P = torch.from_numpy(segment_matrix(50, 25.0))
    pred = torch.rand(3, 50)
    psl, weak = torch.rand(3, 2) * 3, torch.rand(3, 2) * 3
    seg = pred @ P
    a = ((seg - psl) ** 2).mean(1).mean()
    b = ((seg - weak) ** 2).mean(1).mean()
    assert distill_loss(pred, psl, weak, 1.0, P) == pytest.approx(a.item(), rel=1e-6)
    assert distill_loss(pred, psl, weak, 0.0, P) == pytest.approx(b.item(), rel=1e-6)
    assert distill_loss(pred, psl, weak, 0.3, P) == pytest.approx(0.3 * a.item() + 0.7 * b.item(), rel=1e-6)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        distill_loss(pred, psl, weak, 1.5, P)


def test_distill_targets(dataset, psl_dir):
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, unpack

    true_ds = build_distill_data(dataset, 0, "train", "true", 1.0, None, 200, 100, alpha=0.5, unlabeled=False)
    for i in range(0, len(true_ds), 7):
        r, s = true_ds.index[i]
        _, steps = recording_features(true_ds.recs[r], dataset)
        x, y = true_ds[i]
        assert x.shape == (1, 64, 200)
        seg, weak, alpha = unpack(y[None], true_ds.n_segs)
        expected = [((steps >= (s + j * 100) / 100) & (steps < (s + (j + 1) * 100) / 100)).sum() for j in range(2)]
        np.testing.assert_allclose(seg[0].numpy(), expected, atol=1e-5)
        five = ((steps >= (s // 500) * 5) & (steps < (s // 500) * 5 + 5)).sum()
        if s % 500 + 200 <= 500:  # inside one 5-s window: two fifths of its count, spread
            np.testing.assert_allclose(weak[0].sum().item(), five * 2 / 5, rtol=1e-5)
        assert alpha.item() == 0.5
    psl_ds = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True)
    runs = {rec.run_id for rec in psl_ds.recs}
    assert "r02_1" in runs and not runs & {"r00_0", "r01_0"}  # unlabeled training run in, test/val runners out
    unl = [i for i, (r, _) in enumerate(psl_ds.index) if psl_ds.recs[r].run_id == "r02_1"]
    _, weak, alpha = unpack(psl_ds.targets[unl], psl_ds.n_segs)
    assert (alpha == 1).all() and (weak == 0).all()  # unlabeled runs: PSL only
    with pytest.raises(PSLError, match="fold 0"):  # the teacher's test runners are fold 0's
        build_distill_data(dataset, 1, "train", "psl", 1.0, psl_dir, 200, 100, alpha=1.0, unlabeled=True)


def test_loss_segments_tile_the_whole_window(dataset):
    """A 2.4-s window at 1-s segments: 1 + 1 + 0.4 s. Every density frame is in exactly one loss
    segment, so every frame the streaming counter commits is trained (the 0.4 s once was not)."""
    from edge.counter import Alignment
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, unpack

    ds = build_distill_data(dataset, 0, "train", "true", 1.0, None, 240, 200, alpha=0.5, unlabeled=False)
    assert ds.n_segs == 3
    np.testing.assert_allclose(ds.seg_matrix.sum(1).numpy(), 1.0)  # each of the 60 density frames once
    np.testing.assert_allclose(ds.seg_matrix.sum(0).numpy(), [25, 25, 10])
    align = Alignment(240, 200)
    lo, hi = align.commit(1)
    assert ds.seg_matrix[lo:hi].sum(1).min() == 1.0  # what a regular window commits is covered
    for i in range(0, len(ds), 5):
        r, s = ds.index[i]
        _, steps = recording_features(ds.recs[r], dataset)
        seg, _, _ = unpack(ds[i][1][None], ds.n_segs)
        whole = [((steps >= (s + j * 100) / 100) & (steps < (s + (j + 1) * 100) / 100)).sum() for j in range(3)]
        # true labels are 1-s counts spread evenly: the 0.4-s segment holds 0.4 of its second's count
        np.testing.assert_allclose(seg[0].numpy(), [whole[0], whole[1], 0.4 * whole[2]], atol=1e-5)


def test_distill_with_extra_training_data(dataset, teacher, psl_dir, tmp_path):
    """Another population's runs (relabeled by the same teacher) join the training side only."""
    from train.distill.student import DistillConfig, build_distill_data, train_student

    extra = make_dataset(tmp_path / "extra", n_runners=2, runs_per_runner=1, seconds=12.0, seed=3, runner_prefix="other")
    extra_psl = relabel(teacher, extra, tmp_path / "extra-psl", segments=(0.5, 1.0, 2.0, 5.0), progress=False, device="cpu")
    base = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True)
    both = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True, extra=[(extra, extra_psl)])
    alone = build_distill_data(extra, 0, "all", "psl", 1.0, extra_psl, 200, 100, alpha=0.5, unlabeled=True)
    assert [r.run_id for r in both.recs] == [r.run_id for r in base.recs] + ["r00_0", "r01_0"]
    assert len(both) == len(base) + len(alone) > len(base)
    torch.testing.assert_close(both.targets, torch.cat([base.targets, alone.targets]))  # each run keeps its own labels
    weak = build_distill_data(dataset, 0, "train", "weak", 1.0, None, 200, 100, alpha=0.0, unlabeled=False, extra=[(extra, None)])
    weak_base = build_distill_data(dataset, 0, "train", "weak", 1.0, None, 200, 100, alpha=0.0, unlabeled=False)
    assert len(weak) == len(weak_base) + len(alone)  # weak labels: no PSL folder read (and no unlabeled run)
    with pytest.raises(ConfigError, match="also in the main dataset"):
        build_distill_data(dataset, 0, "train", "weak", 1.0, None, 200, 100, alpha=0.0, unlabeled=False, extra=[(dataset, None)])
    with pytest.raises(PSLError, match="labels of dataset"):  # the main dataset's labels given for the extra one
        build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True, extra=[(extra, psl_dir)])
    with pytest.raises(ConfigError, match="extra_psl: 0 PSL folder"):
        DistillConfig(data=str(dataset), psl=str(psl_dir), extra_train=str(extra))
    cfg = DistillConfig(data=str(dataset), psl=str(psl_dir), extra_train=str(extra), extra_psl=str(extra_psl), out=str(tmp_path / "s"),
                        model_args={"mobilenetv2": TINY_STUDENT}, batch_size=8, epochs=1, device="cpu", precision="fp32", threads=1,
                        progress=False, tensorboard=False)
    res = train_student(cfg)
    assert np.isfinite(res.test["direct"]["mae"])
    assert json.loads((tmp_path / "s" / "test.json").read_text())["config"]["extra_psl"] == str(extra_psl)


def test_stretched_windows_count_the_steps_they_show(dataset):
    """A window read at rate r covers r x its frames of the run, and its labels are the true
    steps inside that stretch (true labels: exact), split over its segments."""
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, unpack

    plain = build_distill_data(dataset, 0, "train", "true", 1.0, None, 200, 100, alpha=0.5, unlabeled=False)
    ds = build_distill_data(dataset, 0, "train", "true", 1.0, None, 200, 100, alpha=0.5, unlabeled=False, stretch=0.3)
    torch.manual_seed(0)
    rates = []
    for i in range(0, len(ds), 5):
        r, s = ds.index[i]
        mel, steps = recording_features(ds.recs[r], dataset)
        before = torch.get_rng_state()
        x, y = ds[i]
        torch.set_rng_state(before)  # replay the draw to know the rate
        rate = float(np.exp((float(torch.rand(())) * 2 - 1) * np.log1p(0.3)))
        rates.append(rate)
        avail = ds._runs[r].span * 4
        start = min(max(s + (200 - 200 * rate) / 2, 0.0), avail - 200 * rate)
        seg, weak, alpha = unpack(y[None], ds.n_segs)
        # true steps in the stretched segments: frame of a step = floor(t * 100), counted whole per
        # frame, so compare with the frame-resolution count within one step at each edge
        edges = [start + j * 100 * rate for j in range(3)]
        frames = np.floor(steps * 100 + 1e-9)
        expected = [((frames >= edges[j]) & (frames < edges[j + 1])).sum() for j in range(2)]
        assert np.all(np.abs(seg[0].numpy() - expected) <= 1.0), (seg, expected, rate)
        assert alpha.item() == 0.5 and x.shape == (1, 64, 200)
        # the input is the run's log-mel read at that rate (linear between frames)
        j = 57
        p = start + (j + 0.5) * rate - 0.5
        lo = int(np.floor(p))
        want = mel[:, lo] * (1 - (p - lo)) + mel[:, min(lo + 1, mel.shape[1] - 1)] * (p - lo)
        np.testing.assert_allclose(x[0, :, j].numpy(), want, rtol=0, atol=1e-4)
    assert min(rates) < 0.9 and max(rates) > 1.1  # the draw spans the range
    # rate 1 is the plain window, targets and all
    ds.stretch = 1e-12
    for i in (0, len(ds) // 2):
        torch.testing.assert_close(ds[i][0], plain[i][0], rtol=0, atol=0)
        torch.testing.assert_close(ds[i][1], plain[i][1], rtol=0, atol=1e-6)


def test_quiet_windows_are_step_free_and_reproducible(dataset, psl_dir):
    """quiet_fraction adds silent / noise-floor windows after the run windows, at zero steps."""
    from edge.frontend import LOG_EPS
    from train.distill.student import build_distill_data, quiet_logmels, unpack

    plain = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True)
    quiet = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True, quiet_fraction=0.2, seed=3)
    n = len(plain)
    assert plain.n_quiet == 0 and quiet.n_quiet == round(0.2 * n) > 0 and len(quiet) == n + quiet.n_quiet
    for i in range(0, n, 5):  # the run windows are untouched
        torch.testing.assert_close(quiet[i][0], plain[i][0])
        torch.testing.assert_close(quiet[i][1], plain[i][1])
    xs = torch.stack([quiet[i][0] for i in range(n, len(quiet))])
    seg, weak, alpha = unpack(quiet.targets[n:], quiet.n_segs)
    assert xs.shape == (quiet.n_quiet, 1, 64, 200) and (seg == 0).all() and (weak == 0).all() and (alpha == 0.5).all()
    floor = np.float32(np.log(LOG_EPS))
    assert (xs.amax(dim=(1, 2, 3)) < floor + 6).all()  # at most -50 dBFS: far below any run
    many = quiet_logmels(64, 200, seed=3)
    silent = (many == floor).all(axis=(1, 2))
    assert 4 <= silent.sum() <= 32 and (many[~silent].max(axis=(1, 2)) > floor).all()  # digital silence and noise floors
    again = build_distill_data(dataset, 0, "train", "psl", 1.0, psl_dir, 200, 100, alpha=0.5, unlabeled=True, quiet_fraction=0.2, seed=3)
    torch.testing.assert_close(again[len(again) - 1][0], quiet[len(quiet) - 1][0])


def test_distill_trains_checkpoints_and_resumes(dataset, psl_dir, tmp_path):
    from train.distill.student import DistillConfig, train_student
    from train.models import load_checkpoint

    cfg = DistillConfig(data=str(dataset), psl=str(psl_dir), out=str(tmp_path / "s"), model_args={"mobilenetv2": TINY_STUDENT},
                        batch_size=8, epochs=1, device="cpu", precision="fp32", threads=1, progress=False, tensorboard=False)
    res = train_student(cfg)
    assert res.best_path.is_file() and (tmp_path / "s" / "test.json").is_file()
    assert np.isfinite(res.test["direct"]["mae"]) and np.isfinite(res.test["stream"]["mae"])
    model, meta = load_checkpoint(res.best_path)
    assert meta["distill"]["teacher_sha256"] == load_provenance(psl_dir).teacher_sha256
    assert meta["window_frames"] == 240 and meta["train_config"]["labels"] == "psl"
    with pytest.raises(ConfigError, match="--resume"):
        train_student(cfg)
    res2 = train_student(cfg.replace(epochs=2), resume=True)  # one more epoch on top of the first
    rows = list(csv.DictReader((tmp_path / "s" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and res2.best_epoch in (0, 1)
    assert json.loads((tmp_path / "s" / "test.json").read_text())["config"]["epochs"] == 2


def test_distill_fine_tunes_from_a_checkpoint(dataset, tmp_path):
    """init: a new run (its own data mix, e.g. quiet windows) starts from a student's weights."""
    from train.distill.student import DistillConfig, train_student
    from train.models import load_checkpoint

    base = DistillConfig(data=str(dataset), labels="true", unlabeled=False, psl="", out=str(tmp_path / "a"), model_args={"mobilenetv2": TINY_STUDENT},
                         batch_size=8, epochs=1, max_steps=3, device="cpu", precision="fp32", threads=1, progress=False, tensorboard=False)
    first = train_student(base, evaluate_test=False).best_path
    # a learning rate too small to move anything: the fine-tuned weights are the init's
    tuned = train_student(base.replace(out=str(tmp_path / "b"), init=str(first), lr=1e-12, seed=5, quiet_fraction=0.2), evaluate_test=False).best_path
    fresh = train_student(base.replace(out=str(tmp_path / "c"), lr=1e-12, seed=5), evaluate_test=False).best_path
    w0, w1, w2 = (load_checkpoint(p)[0].state_dict() for p in (first, tuned, fresh))
    convs = [k for k, v in w0.items() if k.endswith("weight") and v.dim() == 4]
    assert convs and all(torch.allclose(w1[k], w0[k], atol=1e-6) for k in convs)
    assert not all(torch.allclose(w2[k], w0[k], atol=1e-3) for k in convs)  # seed 5 from scratch is elsewhere
    assert load_checkpoint(tuned)[1]["train_config"]["init"] == str(first)  # provenance
    other = {**TINY_STUDENT, "last_channels": 32}
    with pytest.raises(ConfigError, match="last_channels differ"):
        train_student(base.replace(out=str(tmp_path / "d"), init=str(first), model_args={"mobilenetv2": other}))
    with pytest.raises(ConfigError, match="init: .*no such checkpoint"):
        train_student(base.replace(out=str(tmp_path / "e"), init=str(tmp_path / "none.pt")))
    # the CLI: --init, and a missing checkpoint is one line, exit 2, before any data is loaded
    from typer.testing import CliRunner

    from footfall.cli import app

    r = CliRunner().invoke(app, ["distill", "--data", str(dataset), "--labels", "true", "--no-unlabeled", "--out", str(tmp_path / "f"),
                                 "--init", str(tmp_path / "none.pt"), "--device", "cpu"])
    assert r.exit_code == 2 and "init:" in r.output and "no such checkpoint" in r.output and "Traceback" not in r.output


def test_weak_labels_need_no_psl_folder(dataset, tmp_path):
    """The ablation's weak row trains before (or without) any teacher: its PSL path is not read."""
    from train.distill.student import DistillConfig, train_student

    cfg = DistillConfig(data=str(dataset), psl=str(tmp_path / "not-relabelled-yet"), labels="weak", unlabeled=False,
                        out=str(tmp_path / "w"), model_args={"mobilenetv2": TINY_STUDENT}, batch_size=8, epochs=1,
                        device="cpu", precision="fp32", threads=1, progress=False, tensorboard=False)
    res = train_student(cfg)
    assert np.isfinite(res.test["direct"]["mae"])
    with pytest.raises(ConfigError, match="no such folder"):  # PSL labels still need their folder
        train_student(cfg.replace(labels="psl", unlabeled=True, out=str(tmp_path / "p")))


def test_weight_ema_decays_warms_up_and_round_trips():
    from torch import nn

    from train.fit.trainer import WeightEMA

    live = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    ema = WeightEMA(live, decay=0.9)
    w0 = live[0].weight.detach().clone()
    with torch.no_grad():
        live[0].weight.add_(1.0)
        live[1].running_mean.fill_(2.0)
        live[1].num_batches_tracked.fill_(7)
    ema.update(live)  # first update: decay min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.model[0].weight, d * w0 + (1 - d) * (w0 + 1))
    assert torch.allclose(ema.model[1].running_mean, torch.full((2,), (1 - d) * 2.0))  # float buffers are averaged
    assert int(ema.model[1].num_batches_tracked) == 7  # integer buffers are copied
    for _ in range(200):
        ema.update(live)
    assert torch.allclose(ema.model[0].weight, w0 + 1, atol=1e-6)  # converges to constant weights
    assert not any(p.requires_grad for p in ema.model.parameters())
    other = WeightEMA(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 201 and all(torch.equal(a, b) for a, b in zip(other.model.state_dict().values(), ema.model.state_dict().values()))


def test_distill_with_weight_ema_resumes_exactly(dataset, psl_dir, tmp_path):
    """The averaged weights are validated and kept, and a resumed run continues the same average."""
    from train.distill.student import DistillConfig, train_student
    from train.fit.trainer import load_state

    base = DistillConfig(data=str(dataset), psl=str(psl_dir), model_args={"mobilenetv2": TINY_STUDENT}, ema_decay=0.9, batch_size=8,
                         epochs=2, early_stop_patience=0, device="cpu", precision="fp32", threads=1, progress=False, tensorboard=False)
    whole = train_student(base.replace(out=str(tmp_path / "whole")), evaluate_test=False)
    first = train_student(base.replace(out=str(tmp_path / "split"), epochs=1), evaluate_test=False)
    # one epoch: best.pt is that epoch's, and it holds the average, not the live weights
    state, best = load_state(first.best_path.parent / "last.pt"), torch.load(first.best_path, map_location="cpu", weights_only=False)["state_dict"]
    assert first.best_epoch == 0 and all(torch.equal(best[k], state["ema"]["model"][k]) for k in best)
    assert not all(torch.equal(best[k], state["model"][k]) for k in best)
    train_student(base.replace(out=str(tmp_path / "split"), epochs=2), resume=True, evaluate_test=False)
    a, b = load_state(tmp_path / "whole" / "last.pt"), load_state(tmp_path / "split" / "last.pt")
    assert a["ema"]["updates"] == b["ema"]["updates"] > 0 and whole.best_epoch in (0, 1)
    for k, v in a["ema"]["model"].items():
        assert torch.equal(b["ema"]["model"][k], v), k


def test_augment_batch_mixes_and_scales_mel_power():
    """Mixing adds another window's power at the asked level below the window's own; gain scales
    the power; both undo and redo the front end's log exactly; off means the batch untouched."""
    from edge.frontend import LOG_EPS, log_mel
    from train.distill.student import augment_batch

    rng = np.random.default_rng(0)
    x = torch.stack([torch.from_numpy(log_mel((rng.standard_normal(24_000) * 0.05 * (i + 1)).astype(np.float32))) for i in range(4)])[:, None]
    power = lambda t: (t.double().exp() - LOG_EPS).clamp_min(0)  # noqa: E731
    assert augment_batch(x, 0.0, (-20.0, -8.0), 0.0) is x
    torch.manual_seed(1)
    y = augment_batch(x, 1.0, (-10.0, -10.0), 0.0)
    own, out = power(x).mean(dim=(1, 2, 3)), power(y).mean(dim=(1, 2, 3))
    torch.testing.assert_close(out / own, torch.full((4,), 1.1, dtype=torch.float64), rtol=1e-4, atol=0)  # +10 % power: -10 dB
    # a silent window gets nothing (its level is 0) and gives nothing
    pair = torch.stack([x[0], torch.full_like(x[0], float(np.log(LOG_EPS)))])
    z = augment_batch(pair, 1.0, (-10.0, -10.0), 0.0)
    torch.testing.assert_close(z, pair, rtol=0, atol=1e-5)
    torch.manual_seed(2)
    g = augment_batch(x, 0.0, (-20.0, -8.0), 6.0)
    ratio_db = 10 * torch.log10(power(g).mean(dim=(1, 2, 3)) / own)
    assert (ratio_db.abs() <= 6.0 + 1e-3).all() and ratio_db.abs().max() > 0.1
    # the spectral shape is kept: a gain is one constant ratio in every (band, frame)
    r = power(g[0]) / power(x[0])
    assert float(r.std() / r.mean()) < 1e-4


def test_distill_with_augmentation_resumes_exactly(dataset, psl_dir, tmp_path):
    """Augmentation draws from the RNG the checkpoints keep: a resumed run equals a whole one."""
    from train.distill.student import DistillConfig, train_student
    from train.fit.trainer import load_state

    base = DistillConfig(data=str(dataset), psl=str(psl_dir), model_args={"mobilenetv2": TINY_STUDENT}, mix_prob=0.5, gain_db=6.0, stretch=0.15,
                         batch_size=8, epochs=2, early_stop_patience=0, device="cpu", precision="fp32", threads=1, progress=False, tensorboard=False)
    train_student(base.replace(out=str(tmp_path / "whole")), evaluate_test=False)
    train_student(base.replace(out=str(tmp_path / "split"), epochs=1), evaluate_test=False)
    train_student(base.replace(out=str(tmp_path / "split"), epochs=2), resume=True, evaluate_test=False)
    a, b = load_state(tmp_path / "whole" / "last.pt"), load_state(tmp_path / "split" / "last.pt")
    for k, v in a["model"].items():
        assert torch.equal(b["model"][k], v), k
    # and it does act: the same run without it ends elsewhere
    train_student(base.replace(out=str(tmp_path / "plain"), mix_prob=0.0, gain_db=0.0), evaluate_test=False)
    c = load_state(tmp_path / "plain" / "last.pt")
    assert any(not torch.equal(c["model"][k], v) for k, v in a["model"].items() if v.is_floating_point())


@pytest.mark.parametrize("change, match", [({"ema_decay": 1.0}, "ema_decay"), ({"alpha": 1.2}, "alpha"), ({"labels": "weak"}, "unlabeled"), ({"psl": ""}, "PSL folder"),
                                           ({"segment_s": 0.333}, "segment_s"), ({"window_s": 1.01}, "window_s"),
                                           ({"quiet_fraction": 0.6}, "quiet_fraction"), ({"quiet_fraction": -0.1}, "quiet_fraction"),
                                           ({"mix_prob": 1.5}, "mix_prob"), ({"mix_db_low": -5.0, "mix_db_high": -10.0}, "mix_db"),
                                           ({"mix_db_high": 3.0}, "mix_db"), ({"gain_db": -1.0}, "gain_db"), ({"stretch": 0.7}, "stretch")])
def test_distill_config_rejects(change, match):
    from train.distill.student import DistillConfig

    with pytest.raises(ConfigError, match=match):
        DistillConfig(**{"data": "x", "psl": "p", **change})


# --------------------------------------------------------------------------- CLI


def test_cli_bad_input_exits_2(tmp_path):
    from typer.testing import CliRunner

    from footfall.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["psl", "relabel", "--teacher", str(tmp_path / "none.pt"), "--data", str(tmp_path)])
    assert r.exit_code == 2 and "no such teacher checkpoint" in r.output
    r = runner.invoke(app, ["distill", "--psl", str(tmp_path), "--data", str(tmp_path), "--alpha", "1.5"])
    assert r.exit_code == 2 and "alpha" in r.output
    r = runner.invoke(app, ["distill", "--student", "cnn14", "--psl", str(tmp_path)])
    assert r.exit_code == 2 and "mobilenetv2" in r.output


# --------------------------------------------------------------------------- ablation


def test_ablation_table_reuses_finished_rows(tmp_path):
    """Every row already run (test.json present): the table, verdict and plot come from them."""
    from train.evaluate.ablation import ablate, conditions
    from train.distill.student import DistillConfig
    from train.distill.psl import write_json

    maes = {"weak": 1.0, "psl-0.5s": 0.9, "psl-1s": 0.8, "psl-2s": 0.85, "psl-5s": 1.1, "psl-1s+unlabeled": 0.75, "true-1s": 0.6, "teacher": 0.7}
    rows = conditions()
    assert [c.name for c in rows] == list(maes)
    for fold in (0, 1):
        for name, m in maes.items():
            r = {"mae": m + 0.1 * fold, "pcc": 0.9, "tce_median": 2.0}
            write_json(tmp_path / f"fold{fold}" / name / "test.json", {"direct": r, "stream": {**r, "mae": r["mae"] + 0.05}})
    base = DistillConfig(data=str(tmp_path), psl=str(tmp_path / "psl-fold{fold}"))
    table = ablate(base, tmp_path, folds=(0, 1))
    by = {r["row"]: r for r in table["rows"]}
    assert by["weak"]["mae"] == pytest.approx(1.05) and by["psl-1s+unlabeled"]["mae_stream"] == pytest.approx(0.85)
    assert table["verdict"]["psl_vs_weak_pct"] == pytest.approx(100 * (0.8 - 1.05) / 1.05)
    assert table["verdict"]["beats_weak_by_20pct"] and table["verdict"]["within_15pct_of_teacher"]
    for ext in ("json", "csv", "md", "png"):
        assert (tmp_path / f"ablation.{ext}").is_file()
    assert "| psl-1s+unlabeled |" in (tmp_path / "ablation.md").read_text()


def test_distill_defaults_are_the_shipped_student():
    """`footfall distill` with no model options trains what edge/assets ships (one convention)."""
    from edge.cli import bundled_model
    from edge.card import load_verified_card
    from train.distill.student import DistillConfig
    from train.models import make_config

    card = load_verified_card(bundled_model())
    cfg = DistillConfig(psl="psl-folder")  # every other field at its default
    built = make_config(cfg.model, **cfg.model_args[cfg.model])
    shipped = card.model["config"]
    for key in ("width", "blocks", "last_channels"):
        assert json.loads(json.dumps(getattr(built, key))) == shipped[key], key
    assert cfg.model == card.model["name"]
    assert round(cfg.window_s * 100) == card.window_frames and round(cfg.stream_hop_s * 100) == card.hop_frames
