"""Pseudo-strong labels and distillation: the teacher's committed track, relabeling, frame targets, the loss.

Small real inputs (a 5-runner click dataset, 12-s runs, a 1/16-width teacher) and invariants:
the committed track is the edge runtime's, the labels are the teacher's step probabilities of
it, relabeling resumes and refuses foreign or outdated folders, the student's targets are the
true step frames and the teacher's probabilities of exactly the audio it sees, and its loss is
the documented weighted sum.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_dataset  # noqa: E402

from edge.counter import count_events, sigmoid  # noqa: E402
from train.fit.config import ConfigError  # noqa: E402
from train.distill.psl import (  # noqa: E402
    PSLError,
    analyze,
    committed_logits,
    load_labels,
    load_provenance,
    load_track,
    relabel,
    track_path,
    window_events,
)

TINY_TEACHER = {"width": 0.0625, "dropout": 0.0, "head_channels": 8, "head_dilations": [1]}
TINY_STUDENT = {"width": 0.125, "head_channels": 8, "head_dilations": [1], "blocks": [[1, 16, 1, 1], [6, 24, 1, 2], [6, 32, 1, 2]], "last_channels": 64}


class BlockMean(torch.nn.Module):
    """A local, translation-equivariant 'model': output frame j = mean of its 4 input frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, t = x.shape
        return x.mean(dim=(1, 2)).reshape(b, t // 4, 4).mean(-1)


class PositionAware(BlockMean):
    """BlockMean plus a ramp over the window: which window a frame is taken from shows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + 0.01 * torch.arange(y.shape[1], dtype=y.dtype)


class Marks(torch.nn.Module):
    """Logit +10 where mel band 0 of an output frame's first input frame is marked (> 0), else -10."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x[:, 0, 0, ::4] > 0, 10.0, -10.0)


def _marked_mel(n_frames: int, every_d: int, first_d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(64, n_frames) log-mel at -5 with a mark every ``every_d`` output frames -> (mel, marked output frames)."""
    mel = np.full((64, n_frames), -5.0, np.float32)
    marks = np.arange(first_d, n_frames // 4, every_d)
    mel[0, marks * 4] = 1.0
    return mel, marks


# --------------------------------------------------------------------------- the teacher's track


@pytest.mark.parametrize("window, hop, n", [(200, 100, 1003), (500, 500, 1003), (200, 48, 1003), (96, 32, 1003), (200, 100, 130)])
def test_committed_track_of_a_local_model_is_the_whole_recording(window, hop, n):
    """Each output frame is taken from exactly one window; a local model's frame does not depend on
    which, and a run shorter than a window is padded past its end only."""
    mel = np.random.default_rng(2).standard_normal((64, n)).astype(np.float32)
    whole = BlockMean()(torch.from_numpy(mel[None, None, :, : n // 4 * 4])).numpy()[0]
    track = committed_logits(BlockMean(), mel, window, hop, batch_size=3)
    assert track.shape == (n // 4,) and track.dtype == np.float32
    np.testing.assert_allclose(track, whole, atol=1e-5)


def test_committed_track_is_the_edge_runtimes():
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
    ref = count_offline(Backend(), card, audio).logits
    track = committed_logits(model, log_mel(audio), 200, 48, batch_size=5)
    np.testing.assert_allclose(track, ref, atol=1e-5)


def test_window_events_count_each_window_on_its_own():
    """Non-overlapping windows, each counted alone and shifted to its place; the tail window keeps
    only the frames after the grid."""
    mel, marks = _marked_mel(1130, every_d=9)  # 11.3 s: 2 whole 5-s windows and a 1.3-s tail; a mark every 0.36 s
    times = (marks + 0.5) / 25  # a lone peak's time is its frame's centre
    events = window_events(Marks(), mel, 500, batch_size=2)
    np.testing.assert_allclose(events, times, atol=1e-9)
    np.testing.assert_allclose(count_events(committed_logits(Marks(), mel, 500, 500)), times, atol=1e-9)
    # counted alone, a window's short run of steps is below the counter's train length: a 0.8-s window holds 3
    # counted alone, a 0.8-s window holds two or three steps, too few to start a runner for at most
    # of them: windows that share no counter lose steps that the whole track counts
    short = window_events(Marks(), mel, 80)
    assert len(short) < len(marks) // 2 and len(count_events(committed_logits(Marks(), mel, 80, 80))) == len(marks)


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
    with torch.no_grad():  # an untrained head is flat by design (every frame near the prior); make its frames differ
        torch.nn.init.normal_(model.head.out.weight, std=20.0)
    return save_checkpoint(dataset.parent / "teacher.pt", model, fold=0, train_config={"window_s": 2.0})


@pytest.fixture(scope="module")
def psl_dir(dataset, teacher) -> Path:
    return relabel(teacher, dataset, dataset.parent / "psl", progress=False, device="cpu")


def test_relabel_stores_the_teachers_step_probabilities(dataset, teacher, psl_dir, tmp_path):
    """Every run, the unlabeled one too: sigmoid of the teacher's committed logits, per 40-ms frame."""
    from edge.card import sha256_file
    from train.data.features import recording_logmel
    from train.data.recordings import load_dataset
    from train.evaluate.predict import predict_run_logits
    from train.models import load_checkpoint

    prov = load_provenance(psl_dir)
    recs = load_dataset(dataset)
    assert prov.complete and prov.run_ids == [r.run_id for r in recs] and prov.version == 2
    assert prov.label == "step_probability" and prov.fps == 25
    assert prov.teacher_sha256 == sha256_file(teacher) and prov.teacher_name == "cnn14"
    assert (prov.window_frames, prov.hop_frames) == (200, 100)  # the teacher's window, half-window hop
    assert not list(psl_dir.glob("segments_*"))
    model, _ = load_checkpoint(teacher)
    labels = load_labels(psl_dir)
    assert set(labels) == {r.run_id for r in recs}
    for rec in recs:
        mel = recording_logmel(rec, dataset)
        probs = load_track(psl_dir, rec.run_id)
        assert probs.dtype == np.float32 and probs.shape == (mel.shape[1] // 4,) and ((probs >= 0) & (probs <= 1)).all()
        ref = sigmoid(committed_logits(model, mel, 200, 100))
        np.testing.assert_allclose(probs, ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(labels[rec.run_id], probs)
    assert np.ptp(np.concatenate(list(labels.values()))) > 0.3  # the teacher's frames differ: labels, not a constant
    # the evaluation's own committed track (train.evaluate.predict, at its hop of 1.64 s for a 2-s window) agrees
    other = relabel(teacher, dataset, tmp_path / "hop164", hop_s=1.64, progress=False, device="cpu")
    assert load_provenance(other).hop_frames == 164
    for rec in recs[:3]:
        mel = recording_logmel(rec, dataset)
        np.testing.assert_allclose(load_track(other, rec.run_id), sigmoid(predict_run_logits(model, mel, 200)), rtol=1e-5, atol=1e-6)


def test_an_ensemble_teacher_labels_with_the_mean_of_its_members(dataset, teacher, psl_dir, tmp_path):
    """Several checkpoints: each on the same windows, the label their mean step probability; the
    provenance names every member and keys resume on all of them, in order; members of different
    folds, or one given twice, are refused with one line."""
    from edge.card import sha256_file
    from train.models import build_model, save_checkpoint
    from typer.testing import CliRunner

    from footfall.cli import app

    torch.manual_seed(1)
    model = build_model("cnn14", **TINY_TEACHER)
    with torch.no_grad():
        torch.nn.init.normal_(model.head.out.weight, std=20.0)
    second = save_checkpoint(tmp_path / "second.pt", model, fold=0, train_config={"window_s": 2.0})
    alone = relabel(second, dataset, tmp_path / "alone", progress=False, device="cpu")
    r = CliRunner().invoke(app, ["psl", "relabel", "--teacher", str(teacher), "--teacher", str(second), "--data", str(dataset),
                                 "--out", str(tmp_path / "ens"), "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    ens = tmp_path / "ens"
    prov = load_provenance(ens)
    assert prov.complete and prov.teacher.split(",") == [str(teacher.resolve()), str(second.resolve())]
    assert prov.teacher_name == "ensemble of 2: cnn14, cnn14" and prov.teacher_meta["fold"] == 0
    assert [m["sha256"] for m in prov.teacher_meta["members"]] == [sha256_file(teacher), sha256_file(second)]
    assert prov.teacher_sha256 not in (sha256_file(teacher), sha256_file(second))
    for rid in prov.run_ids:
        want = (load_track(psl_dir, rid) + load_track(alone, rid)) / 2
        np.testing.assert_allclose(load_track(ens, rid), want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(load_track(ens, rid), load_track(alone, rid))
    with pytest.raises(PSLError, match="another teacher"):  # the same members in another order are another teacher
        relabel([second, teacher], dataset, ens, progress=False, device="cpu")
    with pytest.raises(PSLError, match="given twice"):
        relabel([teacher, teacher], dataset, tmp_path / "twice", progress=False, device="cpu")
    other_fold = save_checkpoint(tmp_path / "fold1.pt", model, fold=1, train_config={"window_s": 2.0})
    with pytest.raises(PSLError, match="different folds"):
        relabel([teacher, other_fold], dataset, tmp_path / "folds", progress=False, device="cpu")


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


def test_an_old_format_folder_is_one_clear_line(dataset, teacher, tmp_path):
    """Labels of format 1 (per-segment counts of a density teacher) are refused everywhere with one
    line naming the versions and the way out; --overwrite relabels the folder."""
    from typer.testing import CliRunner

    from footfall.cli import app

    old = tmp_path / "old"
    (old / "tracks").mkdir(parents=True)
    (old / "provenance.json").write_text(json.dumps({
        "teacher": str(teacher), "teacher_sha256": "0" * 64, "teacher_name": "cnn14", "teacher_config": {}, "teacher_meta": {"fold": 0},
        "dataset": str(dataset.resolve()), "window_frames": 200, "hop_frames": 100, "segments_s": [0.5, 1.0, 2.0, 5.0],
        "density_fps": 25.0, "frontend": {}, "n_recordings": 1, "run_ids": ["r00_0"], "complete": True, "format": "footfall.psl",
        "version": 1, "created": "", "tools": {}}))
    np.save(old / "tracks" / "r00_0.npy", np.zeros(300, np.float32))
    np.savez(old / "segments_1s.npz", r00_0=np.zeros(12, np.float32))
    for call in (lambda: load_provenance(old), lambda: load_labels(old), lambda: relabel(teacher, dataset, old, progress=False, device="cpu")):
        with pytest.raises(PSLError) as e:
            call()
        assert "v1" in str(e.value) and "v2" in str(e.value) and "relabel" in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(app, ["distill", "--psl", str(old), "--data", str(dataset), "--out", str(tmp_path / "s"), "--device", "cpu"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "v1" in lines[0] and "Traceback" not in r.output, r.output
    relabel(teacher, dataset, old, progress=False, device="cpu", overwrite=True)
    assert load_provenance(old).version == 2 and not list(old.glob("segments_*")) and len(load_labels(old)) == 10


def test_analysis_of_perfect_labels(dataset, psl_dir, tmp_path):
    """Tracks equal to the true step frames: their sums are the true counts, their events the true steps."""
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
    _finish_folder(perfect, load_provenance(perfect))
    res = analyze(perfect, windows=(1.0, 2.0, 5.0))
    rows = {r["window_s"]: r for r in res["by_group"]["all"]["windows"]}
    for w in (1.0, 2.0, 5.0):
        assert rows[w]["soft_mae"] == pytest.approx(0.0, abs=1e-6) and rows[w]["soft_pcc"] == pytest.approx(1.0)
        assert rows[w]["n_windows"] == 9 * int(12 // w) and rows[w]["true_mean"] > 0
    ev = res["by_group"]["all"]["events"]
    # every step found but one: the cadence tracker's step period changes by 40 ms a step at most, so a
    # step far off its runner's cadence is counted where the cadence puts it, or not; it fills a pause or two
    assert ev["recall"] >= 0.99 and ev["precision"] > 0.9
    missed = round((1.0 - ev["recall"]) * ev["n_true"])
    for w in (1.0, 2.0, 5.0):  # so the count is below the truth in that one step's window at most: its error is its bias but that
        assert 0 <= rows[w]["event_mae"] - rows[w]["event_bias"] <= 2 * missed / rows[w]["n_windows"] + 1e-9
        assert rows[w]["event_pcc"] > 0.5
    assert set(res["by_group"]) == {"all", "fold0", "fold1", "fold2", "fold3", "fold4"}
    assert (perfect / "analysis.json").is_file() and (perfect / "analysis.png").stat().st_size > 1000
    with pytest.raises(PSLError, match="multiple of 0.04"):
        analyze(perfect, windows=(0.5,), plot=False)


def test_match_events_pairs_each_step_once():
    from train.distill.psl import match_events

    true = np.array([1.0, 1.4, 1.8, 2.2])
    assert match_events(true + 0.05, true) == 4
    assert match_events(np.array([1.0, 1.01, 1.5]), true) == 1  # one pairing per true step; 1.5 is 0.1 off
    assert match_events(np.array([]), true) == 0 and match_events(true, np.array([])) == 0


# --------------------------------------------------------------------------- the loss


def _bce(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Frame-by-frame BCE written out: -(p log s(z) + (1 - p) log(1 - s(z)))."""
    s = torch.sigmoid(z.double())
    return -(p * torch.log(s) + (1 - p) * torch.log(1 - s)).mean()


def test_distill_loss_is_the_documented_weighted_sum():
    """loss = |L|/B (alpha soft_bce(z_L, p_L) + (1 - alpha) ShiftTolerantBCE(z_L, y_L)) + |U|/B soft_bce(z_U, p_U)."""
    from train.distill.student import PackedLoss, distill_loss
    from train.fit.losses import ShiftTolerantBCE, weak_count_loss

    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 12, generator=g) * 2
    p = torch.rand(4, 12, generator=g)
    y = torch.zeros(4, 12)
    y[0, [2, 7]] = y[1, [4, 9]] = y[3, [5]] = 1.0
    lab = torch.tensor([1.0, 1.0, 0.0, 1.0])
    L, U = [0, 1, 3], [2]
    stbce = ShiftTolerantBCE()
    for alpha in (0.0, 0.3, 1.0):
        want = 3 / 4 * (alpha * _bce(z[L], p[L]) + (1 - alpha) * stbce(z[L], y[L]).double()) + 1 / 4 * _bce(z[U], p[U])
        assert distill_loss(z, p, y, lab, alpha).item() == pytest.approx(want.item(), rel=1e-5)
    # an all-labeled batch is the plain mix; an unlabeled one the teacher's term alone
    ones = torch.ones(4)
    assert distill_loss(z, p, y, ones, 0.3).item() == pytest.approx((0.3 * _bce(z, p) + 0.7 * stbce(z, y).double()).item(), rel=1e-5)
    assert distill_loss(z, p, y, torch.zeros(4), 0.3).item() == pytest.approx(_bce(z, p).item(), rel=1e-5)
    # an unlabeled window's step frames are never read
    y2 = y.clone()
    y2[2] = 1.0
    assert distill_loss(z, p, y2, lab, 0.3).item() == distill_loss(z, p, y, lab, 0.3).item()
    # the packed target the trainer carries: [p | y | labeled]; true labels have no teacher term, weak ones learn counts
    packed = torch.cat([p, y, lab[:, None]], dim=1)
    assert PackedLoss(0.3)(z, packed).item() == distill_loss(z, p, y, lab, 0.3).item()
    no_teacher = torch.cat([torch.zeros_like(p), y, ones[:, None]], dim=1)
    assert PackedLoss(0.3, "true")(z, no_teacher).item() == pytest.approx(stbce(z, y).item(), rel=1e-6)
    assert PackedLoss(0.3, "weak")(z, no_teacher).item() == pytest.approx(weak_count_loss(z, y.sum(1)).item(), rel=1e-6)
    # it trains: a step of gradient descent on the logits lowers it
    zz = z.clone().requires_grad_(True)
    loss = PackedLoss(0.5)(zz, packed)
    loss.backward()
    assert PackedLoss(0.5)(z - 0.5 * zz.grad, packed).item() < loss.item()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        distill_loss(z, p, y, lab, 1.5)
    with pytest.raises(ConfigError, match="alpha"):
        PackedLoss(-0.1)
    with pytest.raises(ValueError, match="packed target"):
        PackedLoss(0.5)(z, packed[:, :-2])


# --------------------------------------------------------------------------- targets


def _step_frames(steps: np.ndarray, start_frame: int, n_out: int) -> np.ndarray:
    """True steps per output frame of the window starting at front-end frame ``start_frame``, counted directly."""
    k = np.floor(steps * 25 + 1e-9).astype(int) - start_frame // 4
    return np.bincount(k[(k >= 0) & (k < n_out)], minlength=n_out).astype(np.float32)


def test_distill_targets(dataset, psl_dir):
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, unpack

    true_ds = build_distill_data(dataset, 0, "train", "true", None, 200, 100, unlabeled=False)
    assert len(true_ds) == 5 * (1 + (1200 - 200) // 100)  # 5 labeled training runs of 12 s, windows every 1 s
    for i in range(0, len(true_ds), 7):
        r, s = true_ds.index[i]
        _, steps = recording_features(true_ds.recs[r], dataset)
        x, y = true_ds[i]
        assert x.shape == (1, 64, 200) and y.shape == (101,)
        probs, frames, labeled = unpack(y[None], 50)
        np.testing.assert_array_equal(frames[0].numpy(), _step_frames(steps, s, 50))
        assert (probs == 0).all() and labeled.item() == 1.0  # no teacher
    psl_ds = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    runs = {rec.run_id for rec in psl_ds.recs}
    assert "r02_1" in runs and not runs & {"r00_0", "r01_0"}  # unlabeled training run in, test/val runners out
    seen_unlabeled = 0
    for i in range(0, len(psl_ds), 3):
        r, s = psl_ds.index[i]
        rec = psl_ds.recs[r]
        probs, frames, labeled = unpack(psl_ds[i][1][None], 50)
        np.testing.assert_array_equal(probs[0].numpy(), load_track(psl_dir, rec.run_id)[s // 4 : s // 4 + 50])  # the teacher on exactly this audio
        if rec.run_id == "r02_1":
            seen_unlabeled += 1
            assert labeled.item() == 0 and (frames == 0).all()  # unlabeled: PSL only
        else:
            assert labeled.item() == 1 and frames.sum() > 0
    assert seen_unlabeled > 0 and psl_ds.n_unlabeled() == 11
    with pytest.raises(PSLError, match="fold 0"):  # the teacher's test runners are fold 0's
        build_distill_data(dataset, 1, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    with pytest.raises(ValueError, match="unlabeled"):
        build_distill_data(dataset, 0, "train", "true", None, 200, 100, unlabeled=True)


def test_windows_cover_every_output_frame_of_a_run(dataset):
    """2.4-s windows every 2 s: every output frame of a run's windows is trained, the last window
    ends inside the run's whole output frames, and a window's step frames hold all its steps."""
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, unpack

    ds = build_distill_data(dataset, 0, "train", "true", None, 240, 200, unlabeled=False)
    for r, rec in enumerate(ds.recs):
        mel, steps = recording_features(rec, dataset)
        starts = ds.index[ds.index[:, 0] == r, 1]
        assert list(starts) == list(range(0, mel.shape[1] // 4 * 4 - 240 + 1, 200))
        for i in np.flatnonzero(ds.index[:, 0] == r):
            s = ds.index[i, 1]
            _, frames, _ = unpack(ds[i][1][None], 60)
            inside = ((steps * 100 >= s - 1e-6) & (steps * 100 < s + 240 - 1e-6)).sum()
            assert frames.sum().item() == inside


def test_distill_with_extra_training_data(dataset, teacher, psl_dir, tmp_path):
    """Another population's runs (relabeled by the same teacher) join the training side only."""
    from train.distill.student import DistillConfig, build_distill_data, train_student

    extra = make_dataset(tmp_path / "extra", n_runners=2, runs_per_runner=1, seconds=12.0, seed=3, runner_prefix="other")
    extra_psl = relabel(teacher, extra, tmp_path / "extra-psl", progress=False, device="cpu")
    base = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    both = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, extra=[(extra, extra_psl)])
    alone = build_distill_data(extra, 0, "all", "psl", extra_psl, 200, 100, unlabeled=True)
    assert [r.run_id for r in both.recs] == [r.run_id for r in base.recs] + ["r00_0", "r01_0"]
    assert len(both) == len(base) + len(alone) > len(base)
    for i in range(0, len(both), 5):  # each run keeps its own labels
        want = base[i] if i < len(base) else alone[i - len(base)]
        torch.testing.assert_close(both[i][1], want[1], rtol=0, atol=0)
    true = build_distill_data(dataset, 0, "train", "true", None, 200, 100, unlabeled=False, extra=[(extra, None)])
    true_base = build_distill_data(dataset, 0, "train", "true", None, 200, 100, unlabeled=False)
    assert len(true) == len(true_base) + len(alone)  # true labels: no PSL folder read (and no unlabeled run)
    with pytest.raises(ConfigError, match="also in the main dataset"):
        build_distill_data(dataset, 0, "train", "true", None, 200, 100, unlabeled=False, extra=[(dataset, None)])
    with pytest.raises(PSLError, match="labels of dataset"):  # the main dataset's labels given for the extra one
        build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, extra=[(extra, psl_dir)])
    with pytest.raises(ConfigError, match="extra_psl: 0 PSL folder"):
        DistillConfig(data=str(dataset), psl=str(psl_dir), extra_train=str(extra))
    cfg = DistillConfig(data=str(dataset), psl=str(psl_dir), extra_train=str(extra), extra_psl=str(extra_psl), out=str(tmp_path / "s"),
                        model_args={"mobilenetv2": TINY_STUDENT}, batch_size=8, epochs=1, device="cpu", precision="fp32", threads=1,
                        progress=False, tensorboard=False)
    res = train_student(cfg)
    assert np.isfinite(res.test["direct"]["mae"])
    assert json.loads((tmp_path / "s" / "test.json").read_text())["config"]["extra_psl"] == str(extra_psl)


def test_step_free_runs_train_at_zero_steps(dataset, teacher, psl_dir, tmp_path):
    """Negatives (train.data.negatives) are labeled runs without steps: zero step frames, the
    teacher's probabilities of them, the alpha mix."""
    from train.data.negatives import write_negatives
    from train.distill.student import build_distill_data, unpack

    neg = write_negatives(tmp_path / "neg", runs=3, seconds=4.0, seed=1)
    neg_psl = relabel(teacher, neg, tmp_path / "neg-psl", progress=False, device="cpu")
    base = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    both = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, extra=[(neg, neg_psl)])
    added = range(len(base), len(both))
    assert len(added) == 3 * (1 + (400 - 200) // 100)
    for i in added:
        r, s = both.index[i]
        probs, frames, labeled = unpack(both[i][1][None], 50)
        assert labeled.item() == 1 and (frames == 0).all()
        np.testing.assert_array_equal(probs[0].numpy(), load_track(neg_psl, both.recs[r].run_id)[s // 4 : s // 4 + 50])


def test_stretch_moves_frame_targets_with_the_time_axis():
    """Steps move to floor((100 t - start) / (4 rate)); the teacher's frames move as a step at
    their centre would, frames landing together combine as 'at least one step', and rate 1 is the slice."""
    from train.distill.student import stretch_probabilities, stretch_steps

    steps = np.array([0.10, 0.53, 0.95, 1.37])  # s
    np.testing.assert_array_equal(stretch_steps(steps, 8.0, 1.0, 40), _step_frames(steps, 8, 40))
    np.testing.assert_array_equal(np.flatnonzero(stretch_steps(steps, 8.0, 1.25, 40)), np.floor((steps * 100 - 8) / 5).astype(int))
    p = np.full(60, 0.01)
    p[[10, 20, 21, 33]] = [0.9, 0.5, 0.5, 1.0]
    np.testing.assert_allclose(stretch_probabilities(p, 16.0, 1.0, 40), p[4:44], atol=1e-7)
    fast = stretch_probabilities(p, 0.0, 2.0, 30)  # two frames per output frame
    np.testing.assert_allclose(fast[5], 1 - (1 - 0.9) * (1 - 0.01), atol=1e-7)
    np.testing.assert_allclose(fast[10], 1 - 0.5 * 0.5, atol=1e-7)  # frames 20 and 21 together: at least one of two steps
    assert fast[16] == 1.0 and fast.shape == (30,)
    slow = stretch_probabilities(p, 0.0, 0.5, 60)  # one frame per two output frames
    assert slow[21] == pytest.approx(0.9) and slow[41] == slow[43] == pytest.approx(0.5)  # peaks keep their height ...
    assert slow[20] == slow[42] == 0.0  # ... and an output frame between two centres gets 0
    # a step at a frame's centre lands where that frame's probability lands
    for rate in (0.8, 1.0, 1.3):
        centre = (4 * 33 + 2) / 100
        k = np.flatnonzero(stretch_steps(np.array([centre]), 12.0, rate, 60))
        assert stretch_probabilities(p, 12.0, rate, 60)[k] == pytest.approx(1.0)


def test_stretched_windows_show_and_label_the_stretched_audio(dataset, psl_dir):
    """A window read at rate r covers r x its frames of the run; its targets are the true steps and
    the teacher's probabilities of that stretch."""
    from train.data.features import recording_features
    from train.distill.student import build_distill_data, stretch_probabilities, stretch_steps, unpack

    plain = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    ds = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, stretch=0.3)
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
        avail = mel.shape[1] // 4 * 4
        start = min(max(s + (200 - 200 * rate) / 2, 0.0), avail - 200 * rate)
        probs, frames, labeled = unpack(y[None], 50)
        if steps is not None:
            k = np.floor((steps * 100 - start) / (4 * rate) + 1e-9).astype(int)
            want = np.bincount(k[(k >= 0) & (k < 50)], minlength=50)
            np.testing.assert_array_equal(frames[0].numpy(), want)
            np.testing.assert_array_equal(want, stretch_steps(steps, start, rate, 50))
        else:
            assert labeled.item() == 0 and (frames == 0).all()
        np.testing.assert_allclose(probs[0].numpy(), stretch_probabilities(load_track(psl_dir, ds.recs[r].run_id), start, rate, 50), atol=1e-7)
        assert x.shape == (1, 64, 200)
        # the input is the run's log-mel read at that rate (linear between frames)
        j = 57
        pos = start + (j + 0.5) * rate - 0.5
        lo = int(np.floor(pos))
        want_x = mel[:, lo] * (1 - (pos - lo)) + mel[:, min(lo + 1, mel.shape[1] - 1)] * (pos - lo)
        np.testing.assert_allclose(x[0, :, j].numpy(), want_x, rtol=0, atol=1e-4)
    assert min(rates) < 0.9 and max(rates) > 1.1  # the draw spans the range
    # rate 1 is the plain window, targets and all
    ds.stretch = 1e-12
    for i in (0, len(ds) // 2, len(ds) - 1):
        torch.testing.assert_close(ds[i][0], plain[i][0], rtol=0, atol=0)
        torch.testing.assert_close(ds[i][1], plain[i][1], rtol=0, atol=1e-6)


def test_quiet_windows_are_step_free_and_reproducible(dataset, psl_dir):
    """quiet_fraction adds silent / noise-floor windows after the run windows: labeled, every target 0."""
    from edge.frontend import LOG_EPS, log_mel
    from train.distill.student import build_distill_data, quiet_logmels, unpack

    plain = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True)
    quiet = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, quiet_fraction=0.2, seed=3)
    n = len(plain)
    assert plain.n_quiet == 0 and quiet.n_quiet == round(0.2 * n) > 0 and len(quiet) == n + quiet.n_quiet
    for i in range(0, n, 5):  # the run windows are untouched
        torch.testing.assert_close(quiet[i][0], plain[i][0])
        torch.testing.assert_close(quiet[i][1], plain[i][1])
    xs = torch.stack([quiet[i][0] for i in range(n, len(quiet))])
    probs, frames, labeled = unpack(torch.stack([quiet[i][1] for i in range(n, len(quiet))]), 50)
    assert xs.shape == (quiet.n_quiet, 1, 64, 200) and (probs == 0).all() and (frames == 0).all() and (labeled == 1).all()
    power = lambda x: (x.double().exp() - LOG_EPS).clamp_min(0).mean(dim=(-3, -2, -1))  # noqa: E731  mean mel power of windows
    loudest = power(torch.from_numpy(log_mel((np.random.default_rng(0).standard_normal(200 * 160) * 10 ** (-50 / 20)).astype(np.float32)))[None])
    assert (power(xs) <= 1.05 * loudest).all()  # at most -50 dBFS white noise ...
    runs = power(torch.stack([plain[i][0] for i in range(n)]))
    assert power(xs).max() < runs.min() / 10  # ... more than 10 dB below every run window
    floor = np.float32(np.log(LOG_EPS))
    many = quiet_logmels(64, 200, seed=3)
    silent = (many == floor).all(axis=(1, 2))
    assert 4 <= silent.sum() <= 32 and (many[~silent].max(axis=(1, 2)) > floor).all()  # digital silence and noise floors
    again = build_distill_data(dataset, 0, "train", "psl", psl_dir, 200, 100, unlabeled=True, quiet_fraction=0.2, seed=3)
    torch.testing.assert_close(again[len(again) - 1][0], quiet[len(quiet) - 1][0])


# --------------------------------------------------------------------------- evaluation


def test_evaluate_scores_counted_events_on_5s_windows(dataset):
    """A model that finds no step scores the true 5-s counts as its error, both ways of running it."""
    from train.data.features import fold_recordings, recording_features
    from train.distill.student import evaluate

    class Nothing(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], x.shape[-1] // 4), -8.0)

    recs = fold_recordings(dataset, 0, "test")
    counts = []
    for rec in recs:
        _, steps = recording_features(rec, dataset)
        counts += [((steps >= 5 * k) & (steps < 5 * k + 5)).sum() for k in range(2)]  # two whole 5-s windows in 12 s
    for res in (evaluate(Nothing(), recs, dataset), evaluate(Nothing(), recs, dataset, 200, 48, stream=True)):
        assert res.n_windows == len(counts) and res.mae == pytest.approx(np.mean(counts))
    with pytest.raises(ValueError, match="stream=True"):
        evaluate(Nothing(), recs, dataset, 200, 48)


# --------------------------------------------------------------------------- training


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
    assert meta["distill"]["psl_version"] == 2 and meta["distill"]["alpha"] == 0.5 and meta["distill"]["target"] == "step-onset frames"
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


@pytest.mark.parametrize("change, match", [({"ema_decay": 1.0}, "ema_decay"), ({"alpha": 1.2}, "alpha"), ({"alpha": -0.1}, "alpha"),
                                           ({"labels": "weak"}, "unlabeled"), ({"labels": "soft"}, "labels"), ({"psl": ""}, "PSL folder"),
                                           ({"window_s": 1.01}, "window_s"),
                                           ({"quiet_fraction": 0.6}, "quiet_fraction"), ({"quiet_fraction": -0.1}, "quiet_fraction"),
                                           ({"mix_prob": 1.5}, "mix_prob"), ({"mix_db_low": -5.0, "mix_db_high": -10.0}, "mix_db"),
                                           ({"mix_db_high": 3.0}, "mix_db"), ({"gain_db": -1.0}, "gain_db"), ({"stretch": 0.7}, "stretch")])
def test_distill_config_rejects(change, match):
    from train.distill.student import DistillConfig

    with pytest.raises(ConfigError, match=match):
        DistillConfig(**{"data": "x", "psl": "p", **change})


def test_a_segment_count_config_is_refused():
    """A config of the retired segment-count students (segment_s) is an unknown key, not silently ignored."""
    from train.distill.student import DistillConfig

    with pytest.raises(ConfigError, match="unknown key.*segment_s"):
        DistillConfig.from_dict({"data": "x", "psl": "p", "segment_s": 1.0})


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

    maes = {"weak": 1.0, "true": 0.6, "psl": 0.9, "psl+true": 0.8, "psl+true+unlabeled": 0.75, "teacher": 0.7}
    rows = conditions(alpha=0.5)
    assert [c.name for c in rows] == list(maes)
    by_name = {c.name: c.overrides for c in rows}
    assert by_name["psl"]["alpha"] == 1.0 and by_name["psl+true"]["alpha"] == 0.5 and by_name["psl+true+unlabeled"]["unlabeled"]
    for overrides in by_name.values():  # every student row is a valid distillation config
        if overrides:
            DistillConfig(data="x", psl="p", **overrides)
    for fold in (0, 1):
        for name, m in maes.items():
            r = {"mae": m + 0.1 * fold, "pcc": 0.9, "tce_median": 2.0}
            write_json(tmp_path / f"fold{fold}" / name / "test.json", {"direct": r, "stream": {**r, "mae": r["mae"] + 0.05}})
    base = DistillConfig(data=str(tmp_path), psl=str(tmp_path / "psl-fold{fold}"))
    table = ablate(base, tmp_path, folds=(0, 1))
    by = {r["row"]: r for r in table["rows"]}
    assert by["weak"]["mae"] == pytest.approx(1.05) and by["psl+true+unlabeled"]["mae_stream"] == pytest.approx(0.85)
    assert table["verdict"]["psl_vs_weak_pct"] == pytest.approx(100 * (0.8 - 1.05) / 1.05)
    assert table["verdict"]["beats_weak_by_20pct"] and table["verdict"]["within_15pct_of_teacher"]
    for ext in ("json", "csv", "md", "png"):
        assert (tmp_path / f"ablation.{ext}").is_file()
    assert "| psl+true+unlabeled |" in (tmp_path / "ablation.md").read_text()


def test_distill_defaults_are_the_windowed_student_of_the_contract():
    """`footfall distill` with no model options trains the windowed student (the PSL variant's, and
    what the windowed cards describe): MobileNetV2 as SHIPPED_STUDENT, on the contract's window and hop.
    (The bundled model is the streaming student of train/presets/student-stream.yaml: tests/test_recipe.py.)"""
    from edge import contract as C
    from train.distill.student import SHIPPED_STUDENT, DistillConfig
    from train.models import make_config

    cfg = DistillConfig(psl="psl-folder")  # every other field at its default
    built = make_config(cfg.model, **cfg.model_args[cfg.model])
    assert cfg.model == "mobilenetv2"
    for key, value in SHIPPED_STUDENT.items():
        assert json.loads(json.dumps(getattr(built, key))) == json.loads(json.dumps(value)), key
    assert round(cfg.window_s * 100) == C.WINDOW_FRAMES and round(cfg.stream_hop_s * 100) == C.HOP_FRAMES


def test_an_ensemble_scores_as_one_model_with_its_mean_probability(teacher, tmp_path):
    from train.distill.psl import Ensemble, load_teacher
    from train.models import build_model, load_checkpoint, save_checkpoint

    torch.manual_seed(2)
    second = save_checkpoint(tmp_path / "b.pt", build_model("cnn14", **TINY_TEACHER), fold=0, train_config={"window_s": 2.0})
    ens, meta = load_teacher(f"{teacher},{second}")
    assert isinstance(ens, Ensemble) and len(ens.members) == 2 and meta["fold"] == 0
    x = torch.randn(2, 1, 64, 200)
    with torch.no_grad():
        want = (torch.sigmoid(load_checkpoint(teacher)[0].eval()(x)) + torch.sigmoid(load_checkpoint(second)[0].eval()(x))) / 2
        assert torch.allclose(torch.sigmoid(ens(x)), want.clamp(1e-6, 1 - 1e-6), atol=1e-5)
    one, _ = load_teacher(str(teacher))
    assert not isinstance(one, Ensemble)
