"""Trainer pieces on tiny inputs: config, one step, data, evaluation, the CLI, a smoke run, CV."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from tests.fixtures import TINY_MODEL_ARGS, make_dataset, tiny_config
from train.fit.config import ConfigError, TrainConfig, list_presets, load_config
from train.fit.losses import ShiftTolerantBCE, onset_loss, weak_count_loss
from train.fit.trainer import GlooSyncBatchNorm, ResumableBatchSampler, train, train_step


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n_runners=5, seconds=20)


def _app() -> typer.Typer:
    from train.cli.fit import register

    app = typer.Typer(add_completion=False)
    register(app)
    return app


# ---------------------------------------------------------------- config


def test_config_defaults_are_the_paper_recipe():
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.plateau_factor, cfg.plateau_patience, cfg.window_frames) == (32, 0.9, 5, 500)
    assert cfg.lr is None and cfg.optimizer == "auto"  # 1e-3 Adam for CNNs, resolved by the trainer


def test_config_unknown_key_fails_and_names_valid_keys(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key.*learning_rate.*valid keys"):
        load_config(path=tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(overrides=["bogus=1"])


def test_config_yaml_types_and_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nepochs: '7'\nmodel_args:\n  cnn14: {width: 0.5}\n")  # YAML 1.1 reads 1e-3 as a string
    cfg = load_config(path=tmp_path / "c.yaml", overrides=["model_args.cnn14.dropout=0.0", "compile=true", "train_hop_s=null"])
    assert cfg.lr == 1e-3 and cfg.epochs == 7 and cfg.compile is True and cfg.train_hop_s is None
    assert cfg.args_for("cnn14") == {"width": 0.5, "dropout": 0.0}
    with pytest.raises(ConfigError, match="epochs"):
        load_config(overrides={"epochs": "many"})


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"fold": 5}, "fold: 5 out of range"),
        ({"precision": "fp8"}, "precision"),
        ({"window_s": 0.005}, "window_s"),
        ({"batch_size": 0}, "batch_size"),
        ({"plateau_factor": 1.5}, "plateau_factor"),
        ({"device": "cpu", "precision": "fp16"}, "fp16 needs CUDA"),
    ],
)
def test_config_validation(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**changes)


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"], ids=lambda n: f"{n}-preset")  # a bare "gpu" id reads as the gpu marker
def test_presets_are_valid_configs(name):
    assert name in list_presets()
    cfg = load_config(name)
    from train.models import make_config

    for model, args in cfg.model_args.items():
        make_config(model, **args)  # every override is a real key of that model's config


# ---------------------------------------------------------------- one step


def _tiny_model(**changes):
    from train.models import build_model

    torch.manual_seed(0)
    return build_model("cnn14", **{**TINY_MODEL_ARGS["cnn14"], **changes})


def _bce(z: float, y: float) -> float:
    return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))


def test_shift_tolerant_bce_forgives_a_frame_of_jitter_and_ignores_the_step_neighbourhood():
    loss = ShiftTolerantBCE(tolerance=1, pos_weight=2.0)
    y = torch.zeros(1, 12)
    y[0, 5] = 1.0
    on_time = torch.full((1, 12), -4.0)
    on_time[0, 5] = 4.0
    late = torch.full((1, 12), -4.0)
    late[0, 6] = 4.0  # one frame late: the same loss
    torch.testing.assert_close(loss(late, y), loss(on_time, y))
    two_late = torch.full((1, 12), -4.0)
    two_late[0, 7] = 4.0  # two frames late: the positive is missed
    assert loss(two_late, y) > 5 * loss(on_time, y)
    # by hand: frames 1..10 (the edges are cut); the positive (pooled logit 4, weight 2), the far
    # negatives 1, 2 and 8..10 (pooled -4 each, or 4 at frame 6's neighbours 6 and 7 -> near, ignored)
    expected = (2 * _bce(4.0, 1.0) + 5 * _bce(-4.0, 0.0)) / 10  # the mean over the 10 frames kept
    assert loss(on_time, y).item() == pytest.approx(expected, rel=1e-5)


def test_onset_loss_takes_step_frames_or_weak_counts():
    logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, -10.0, 10.0]])
    assert weak_count_loss(logits, torch.tensor([1.5, 2.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert onset_loss(logits, torch.tensor([1.5, 2.0])).item() == pytest.approx(0.0, abs=1e-6)  # (B,): counts
    frames = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    assert onset_loss(logits, frames).item() == pytest.approx(ShiftTolerantBCE()(logits, frames).item())


@pytest.fixture
def one_thread():
    """Tests share 2 cores with other work: one intra-op thread avoids OpenMP spin-wait stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_step_learns_a_fixed_batch(one_thread):
    model = _tiny_model()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 64, 48, generator=g) - 8.0
    y = torch.zeros(8, 12)
    y[:, 3::4] = 1.0  # a step every 4th output frame
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [train_step(model, (x, y), opt, scaler, "fp32")[0].item() for _ in range(25)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]
    loss, pred = train_step(model, (x, y), opt, scaler, "fp32")
    assert pred.shape == (8,) and not pred.requires_grad and loss.dtype == torch.float32


def test_train_step_bf16_autocast_keeps_fp32_weights_and_loss(one_thread):
    model = _tiny_model()
    x = torch.randn(4, 1, 64, 100) - 8.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = train_step(model, (x, torch.ones(4)), opt, torch.amp.GradScaler("cpu", enabled=False), "bf16")
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_gloo_sync_batchnorm_is_a_plain_batchnorm_alone():
    bn = torch.nn.BatchNorm2d(3)
    sync = GlooSyncBatchNorm(bn, group=None)
    assert sync.state_dict().keys() == bn.state_dict().keys()  # checkpoints load into the plain model
    x = torch.randn(4, 3, 5, 6)
    torch.testing.assert_close(sync(x), bn(x))  # no process group: falls back to BatchNorm


# ---------------------------------------------------------------- data


def test_dataset_items_and_step_frame_targets(dataset):
    from train.data.features import fold_windows
    from train.fit.dataset import WindowDataset

    ws = fold_windows(dataset, 0, window_frames=100, split="train")
    counts = WindowDataset(ws, "count")
    dens = WindowDataset(ws, "frames")
    x, y = counts[3]
    assert x.shape == (1, 64, 100) and x.dtype == torch.float32 and y.shape == ()
    xd, yd = dens[3]
    assert torch.equal(x, xd) and yd.shape == (25,)
    sums = torch.stack([dens[i][1].sum() for i in range(len(dens))])
    torch.testing.assert_close(sums, counts.targets)  # the step frames sum to the weak label


def test_resumable_batch_sampler_skips_exactly_the_seen_batches():
    from torch.utils.data import DistributedSampler

    ds = list(range(50))
    full = ResumableBatchSampler(DistributedSampler(ds, num_replicas=1, rank=0, seed=3, drop_last=True), 8)
    full.set_epoch(2)
    part = ResumableBatchSampler(DistributedSampler(ds, num_replicas=1, rank=0, seed=3, drop_last=True), 8)
    part.set_epoch(2, start=4)
    assert list(part) == list(full)[4:] and len(list(full)) == 6 == full.batches_per_epoch
    # two ranks of 4 draw, batch by batch, the windows of one rank of 8
    ranks = []
    for r in range(2):
        b = ResumableBatchSampler(DistributedSampler(ds, num_replicas=2, rank=r, seed=3, drop_last=True), 4)
        b.set_epoch(2)
        ranks.append(list(b))
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(b) for b in full]


# ---------------------------------------------------------------- evaluation


def test_run_predictions_count_as_edge_run_counts(dataset, one_thread):
    """Training's evaluation of a run commits the logits edge-run commits and counts the same events."""
    from edge.card import ModelCard
    from edge.audio import load_audio
    from edge.stream import count_offline
    from train.data.features import fold_windows, recording_logmel
    from train.evaluate.predict import eval_alignment, predict_logits, predict_run_frames, predict_run_logits

    model = _tiny_model().eval()
    with torch.no_grad():
        model.head.out.bias.fill_(0.5)  # an untrained net at the threshold: plenty of peaks to count
    rec = fold_windows(dataset, 0, window_frames=100, split="test").recs[0]
    mel = recording_logmel(rec, dataset)

    class TorchBackend:
        path = Path("tiny.pt")

        def run(self, x):
            return predict_logits(model, torch.from_numpy(x))[0]

    align = eval_alignment(100)
    card = ModelCard("tiny.pt", "pt", "fp32", "torch", "", 100, align.hop_frames, 25.0, [1, 1, 64, 100])
    ref = count_offline(TorchBackend(), card, load_audio(rec.audio))
    logits = predict_run_logits(model, mel, 100)
    np.testing.assert_allclose(logits, ref.logits, rtol=0, atol=1e-5)
    # the same counter on them: an untrained net's activation is flat, so logits 1e-5 apart may
    # tie-break the cadence tracker's path differently; on the same logits the events are the same
    from edge.counter import count_events
    from train.evaluate.predict import event_frames

    frames = predict_run_frames(model, mel, 100)
    assert ref.n_events > 0 and np.array_equal(count_events(ref.logits), np.asarray(ref.events))
    np.testing.assert_array_equal(frames, event_frames(count_events(logits), mel.shape[1]))
    assert abs(frames.sum() - ref.n_events) <= 1


# ---------------------------------------------------------------- training runs


def test_smoke_preset_trains_a_teacher_through_the_cli(dataset, tmp_path):
    """``footfall train --preset smoke``: a few steps of a Cnn14 teacher, a loadable best.pt, metrics."""
    from train.models import load_checkpoint

    out = tmp_path / "run"
    res = CliRunner().invoke(_app(), ["train", "--preset", "smoke", "--data", str(dataset), "--fold", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, meta = load_checkpoint(out / "best.pt")
    assert meta["name"] == "cnn14" and meta["fold"] == 1 and math.isfinite(meta["val_mae"])
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,step,lr,train_loss,train_mae,val_loss,val_mae,val_pcc")
    assert len(rows) >= 2
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["progress"]["finished"] and state["progress"]["global_step"] == load_config("smoke").max_steps


def test_plateau_schedule_is_x0_9_after_5_epochs_without_improvement():
    from train.fit.trainer import make_scheduler

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = make_scheduler(TrainConfig(), opt)
    lrs = []
    for val_mae in [1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.93, 0.8, 0.85]:
        sched.step(val_mae)
        lrs.append(opt.param_groups[0]["lr"])
    # bad epochs after the 0.9: 0.95, 0.91, 0.9 (no better), 0.92, 0.93 -> the fifth one cuts
    assert lrs == pytest.approx([1e-3] * 6 + [9e-4] * 3)


def test_training_is_deterministic(dataset, tmp_path):
    cfg = tiny_config(dataset, tmp_path / "a", epochs=2)
    a = train(cfg)
    b = train(cfg.replace(out=str(tmp_path / "b")))
    wa = torch.load(a.last_path, weights_only=True)["model"]
    wb = torch.load(b.last_path, weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.history[-1]["val_mae"] == b.history[-1]["val_mae"] and a.best_epoch == b.best_epoch


def test_early_stopping_stops(dataset, tmp_path):
    res = train(tiny_config(dataset, tmp_path / "run", epochs=50, lr=0.0 + 1e-12, early_stop_patience=2))
    assert res.stop_reason.startswith("early stop") and len(res.history) < 50


def test_early_stopped_run_resumes_with_more_patience(dataset, tmp_path):
    first = train(tiny_config(dataset, tmp_path / "run", epochs=6, lr=1e-12, early_stop_patience=1))
    assert first.stop_reason.startswith("early stop")
    again = train(tiny_config(dataset, tmp_path / "run", epochs=6, lr=1e-12, early_stop_patience=1), resume=True)
    assert len(again.history) == len(first.history)  # same patience: nothing more to do
    more = train(tiny_config(dataset, tmp_path / "run", epochs=6, lr=1e-12, early_stop_patience=0), resume=True)
    same = lambda rows: [{k: "nan" if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows]  # noqa: E731
    # (an untrained net counts no steps: its validation PCC is NaN, which equals nothing)
    assert len(more.history) == 6 and same(more.history[: len(first.history)]) == same(first.history)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--data", "/nonexistent/footfall"], "no such dataset folder"),
        (["--set", "learning_rate=1"], "unknown key"),
        (["--fold", "7"], "fold: 7 out of range"),
        (["--preset", "laptop"], "preset 'laptop'"),
        (["--model", "resnet999"], "unknown model"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(dataset, tmp_path, args, match):
    base = ["train", "--preset", "smoke", "--data", str(dataset), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(_app(), base + args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], res.output


def test_extra_training_data_joins_the_training_side_only(dataset, tmp_path):
    from train.data.features import fold_windows
    from train.fit.trainer import _load_datasets

    extra = make_dataset(tmp_path / "extra", n_runners=3, seconds=20, seed=1, runner_prefix="other")
    cfg = tiny_config(dataset, tmp_path / "o", extra_train=f"{extra}, ")
    assert cfg.extra_roots == [str(extra)]
    train_ds, val_ds = _load_datasets(cfg)
    main = fold_windows(dataset, 0, cfg.window_frames, split="train")
    assert len(train_ds) == len(main) + 3 * 20  # every 1-s window of the 3 extra 20-s runs
    assert {r.runner_id for r in train_ds.windows.recs} == {r.runner_id for r in main.recs} | {"other00", "other01", "other02"}
    np.testing.assert_array_equal(train_ds.counts[: len(main)], main.counts)
    assert len(val_ds) == len(fold_windows(dataset, 0, cfg.window_frames, split="val"))  # val and test untouched
    x, y = train_ds[len(train_ds) - 1]  # the last extra window is a real slice of its run
    assert x.shape == (1, 64, 100) and float(y.sum()) == train_ds.counts[-1]  # step frames by default
    res = train(cfg.replace(epochs=1))
    assert res.history[0]["step"] == -(-len(train_ds) // cfg.batch_size)


@pytest.mark.parametrize("which, match", [("same", "also in the main dataset"), ("missing", "no such dataset folder")])
def test_extra_training_data_bad_input_is_one_line_exit_2(dataset, tmp_path, which, match):
    extra = dataset if which == "same" else tmp_path / "nowhere"
    args = ["train", "--preset", "smoke", "--data", str(dataset), "--out", str(tmp_path / "o"), "--set", f"extra_train={extra}"]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], res.output
    assert not (tmp_path / "o" / "last.pt").exists()


def test_cli_refuses_to_overwrite_a_run_without_resume(dataset, tmp_path):
    out = tmp_path / "o"
    args = ["train", "--preset", "smoke", "--data", str(dataset), "--out", str(out)]
    assert CliRunner().invoke(_app(), args).exit_code == 0
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2 and "--resume" in res.output
    res = CliRunner().invoke(_app(), args + ["--resume", "--set", "lr=0.5"])
    assert res.exit_code == 2 and "different config" in res.output
    assert CliRunner().invoke(_app(), args + ["--resume"]).exit_code == 0  # finished: nothing left to do


def test_cross_validation_writes_table_ii(tmp_path):
    """``footfall cv``: one fold of a tiny teacher plus both baselines; Table II files and the PNG."""
    data = make_dataset(tmp_path / "data", n_runners=5, seconds=30, seed=1)
    out = tmp_path / "cv"
    res = CliRunner().invoke(
        _app(),
        ["cv", "--model", "cnn14", "--folds", "1", "--preset", "smoke", "--data", str(data), "--out", str(out),
         "--set", "window_s=5", "--set", "batch_size=4", "--set", "max_steps=2"],
    )
    assert res.exit_code == 0, res.output
    table = (out / "table_ii.md").read_text()
    for row in ("cnn14", "Naive baseline", "Onset counter"):
        assert row in table
    assert "±" in table and (out / "counts.png").stat().st_size > 1000
    assert (out / "cnn14" / "fold0" / "test.json").is_file()
    res = CliRunner().invoke(_app(), ["cv", "--folds", "9", "--data", str(data), "--out", str(out)])
    assert res.exit_code == 2 and "--folds 9" in res.output


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_train_on_cuda_with_autocast(dataset, tmp_path, precision):
    res = train(tiny_config(dataset, tmp_path / "run", device="cuda", precision=precision, max_steps=5, num_workers=2))
    assert math.isfinite(res.best_val_mae)


@pytest.mark.gpu
def test_train_on_cuda_compiled(dataset, tmp_path):
    res = train(tiny_config(dataset, tmp_path / "run", device="cuda", compile=True, max_steps=3))
    assert math.isfinite(res.best_val_mae)


def test_a_selection_set_chooses_the_kept_weights_by_its_counted_runs(dataset, tmp_path):
    """select_on: every epoch the kept model counts the sets' runs with the event counter at every
    threshold; the lowest 5-s MAE (not the validation windows') chooses best.pt; metrics.csv has it."""
    from train.evaluate.realeval import choose_counter
    from train.models import load_checkpoint

    chooser = make_dataset(tmp_path / "chooser", n_runners=2, seconds=20, seed=3, runner_prefix="sel")
    quiet = make_dataset(tmp_path / "quiet", n_runners=1, seconds=20, seed=5, runner_prefix="q")
    res = train(tiny_config(dataset, tmp_path / "run", epochs=3, select_on=f"{chooser},{quiet}"))
    scores = [row["select_mae"] for row in res.history]
    assert all(np.isfinite(scores)) and res.best_epoch == int(np.argmin(scores))
    assert res.best_val_mae == min(scores)
    model, _ = load_checkpoint(res.best_path)
    params, choice = choose_counter(model, [chooser, quiet], tiny_config(dataset, tmp_path / "x").window_frames)
    assert choice["runs"] == 3 and min(choice["mae_by_threshold"].values()) == pytest.approx(min(scores), abs=1e-4)
    assert params.threshold == res.history[res.best_epoch]["select_threshold"]
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"select_mae", "select_threshold"} <= set(header)


def test_a_selection_set_that_is_not_a_dataset_is_one_line_exit_2(dataset, tmp_path):
    args = ["train", "--preset", "smoke", "--data", str(dataset), "--out", str(tmp_path / "o"), "--set", f"select_on={tmp_path / 'nowhere'}"]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "select_on" in lines[0] and "no such dataset folder" in lines[0], res.output
