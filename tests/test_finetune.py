"""`footfall finetune` on generated own runs (imported from their accelerometer) lowers the
held-out run's 5-s MAE of counted steps. A tiny student from scratch keeps it to seconds.

By default it starts from the bundled float student (edge/assets/<model>_float.pt): the float model
the bundled int8 artifacts were exported from, checked here against them."""

import json
from pathlib import Path

import pytest
import torch

from train.data.imu import make_recording
from train.data.imu_import import import_folders
from train.fit.finetune import FinetuneConfig, FinetuneError, finetune
from train.models.registry import build_model, save_checkpoint


@pytest.fixture(scope="module")
def own_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    folders = []
    for run in range(3):
        make_recording(root / f"rec{run}", seed=21, runner=4, run=run, duration_s=60.0, offset_s=0.3 * run, surface="track")
        folders.append(root / f"rec{run}")
    import_folders(folders, root / "data", fold=0)
    return root


def test_finetune_lowers_heldout_mae(own_runs, tmp_path):
    init = tmp_path / "tiny.pt"
    torch.manual_seed(0)  # the init is the test's input: fixed, whatever ran before in this process
    model = build_model("mobilenetv2", width=0.25, head_channels=16, head_dilations=(1,))
    save_checkpoint(init, model, window_frames=200)
    cfg = FinetuneConfig(str(init), str(own_runs / "data"), str(tmp_path / "ft.pt"), epochs=4, lr=2e-3, batch_size=8, threads=1)
    res = finetune(cfg)
    assert res.after_mae < res.before_mae, res
    assert Path(res.out).is_file() and res.holdout and res.holdout[0] not in res.train_runs
    with pytest.raises(FinetuneError, match="exists; choose another --out or pass --force"):
        finetune(cfg)
    with pytest.raises(FinetuneError, match="no such labelled run"):
        finetune(FinetuneConfig(str(init), str(own_runs / "data"), str(tmp_path / "x.pt"), holdout=["nope"]))


# ----------------------------------------------------------------------------- the bundled float student


def test_the_bundled_float_student_is_what_the_int8_models_were_made_from():
    """edge/assets/<model>_float.pt: weights and config only, small, bound by sha256 to its record, and
    the float model the bundled int8 artifacts came from (their cards' sha256s, and its output)."""
    import json

    import numpy as np

    from edge.backends import load_backend
    from edge.card import sha256_file
    from edge.frontend import ASSETS
    from export.pipeline import SAMPLE_AUDIO, torch_logits, windows_from_file
    from train.fit.finetune import bundled_student, record_path
    from train.models import load_checkpoint

    student = bundled_student()  # checks the sha256 its record holds
    record = json.loads(record_path(student).read_text())
    assert student.stat().st_size < 5e6
    payload = torch.load(student, weights_only=True)
    assert sorted(payload) == ["config", "extra", "format", "name", "state_dict", "version"]
    assert not {"optimizer", "scheduler", "train_config", "ema"} & set(payload["extra"]), payload["extra"].keys()
    bundled = {p.name[: -len(".card.json")]: json.loads(p.read_text()) for p in ASSETS.glob("*.card.json")}
    assert {name: a["sha256"] for name, a in record["int8_artifacts"].items()} == {name: sha256_file(ASSETS / name) for name in bundled}, \
        "the int8 artifacts were bundled again: bundle their float student too (python -m train.fit.finetune bundle CHECKPOINT)"
    model, meta = load_checkpoint(student)
    tflite = ASSETS / next(name for name in bundled if name.endswith(".tflite"))
    card = bundled[tflite.name]
    if card.get("state"):  # a streaming model: its packets streamed through the artifact against the whole run
        from edge.audio import load_audio
        from edge.stream import offline_log_mel

        p = card["window_frames"]
        mel = offline_log_mel(load_audio(SAMPLE_AUDIO)[: 20 * 16000])
        mel = mel[:, : mel.shape[1] // p * p]
        backend = load_backend(tflite, state=[(s["name"], tuple(s["shape"])) for s in card["state"]])
        int8 = np.concatenate([backend.run(np.ascontiguousarray(mel[None, None, :, i : i + p])) for i in range(0, mel.shape[1], p)])
        with torch.no_grad():
            ref = model.eval()(torch.from_numpy(mel[None, None].copy()))[0].numpy()
    else:
        assert meta["window_frames"] == card["window_frames"]
        x = windows_from_file(SAMPLE_AUDIO, meta["window_frames"], max_parity=12).parity
        backend = load_backend(tflite)
        int8 = np.stack([backend.run(w[None]) for w in x])
        ref = torch_logits(model, x)
    # int8 against its own float model: the export's parity (mean |d| 0.19 on 150 windows); another model is far off
    assert np.abs(int8 - ref).mean() < 0.4 and np.corrcoef(int8.ravel(), ref.ravel())[0, 1] > 0.99


def test_finetune_starts_from_the_bundled_student_by_default(own_runs, tmp_path):
    from typer.testing import CliRunner

    from footfall.cli import app
    from train.fit.finetune import bundled_student, record_path

    out = tmp_path / "mine.pt"
    res = CliRunner().invoke(app, ["finetune", str(own_runs / "data"), "--out", str(out), "--epochs", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    student = bundled_student()
    assert f"starting from {student}" in res.stderr
    assert res.stdout.strip().splitlines()[-1] == f"wrote: {out}"
    adapted = torch.load(out, weights_only=True)
    assert adapted["extra"]["finetune"]["init"] == str(student)
    assert adapted["extra"]["finetune"]["init_sha256"] == json.loads(record_path(student).read_text())["sha256"]
    # batch-norm statistics stay frozen while it adapts: they are the bundled student's, bit for bit
    start = torch.load(student, weights_only=True)["state_dict"]
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(adapted["state_dict"][k], start[k]) for k in stats)
    fresh = build_model(adapted["name"], **adapted["config"]).state_dict()
    assert not all(torch.equal(fresh[k], start[k]) for k in stats)  # (not what a new model starts with)


def test_without_a_bundled_student_finetune_says_to_pass_init(own_runs, tmp_path, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    import train.fit.finetune as ft
    from footfall.cli import app
    from train.fit.finetune import bundled_student, record_path

    def refused() -> str:
        res = CliRunner().invoke(app, ["finetune", str(own_runs / "data"), "--out", str(tmp_path / "mine.pt")])
        assert res.exit_code == 2 and res.stdout == "" and (res.exception is None or isinstance(res.exception, SystemExit))
        (line,) = res.stderr.strip().splitlines()
        return line

    assets = tmp_path / "assets"
    assets.mkdir()
    monkeypatch.setattr(ft, "ASSETS", assets)
    line = refused()
    assert line.startswith(f"error: no bundled float student in {assets}") and "--init CHECKPOINT" in line
    student = bundled_student(ft.REPO / "edge" / "assets")
    shutil.copy2(record_path(student), assets)
    (assets / student.name).write_bytes(student.read_bytes()[:-1])  # cut short: not the file its record names
    assert "is not the" in refused() and not (tmp_path / "mine.pt").exists()


def test_bundle_student_slims_the_checkpoint_the_cards_name(tmp_path):
    from edge.card import sha256_file
    from train.fit.finetune import FinetuneError, bundle_student, bundled_student
    from train.models import load_checkpoint

    torch.manual_seed(0)
    model = build_model("mobilenetv2", width=0.25, head_channels=16, head_dilations=(1,))
    ckpt = save_checkpoint(tmp_path / "best.pt", model, window_frames=200, epoch=3,
                           optimizer={"exp_avg": torch.ones(1000)}, train_config={"data": "/somewhere/data"})
    assets = tmp_path / "assets"
    assets.mkdir()
    card = {"sha256": "a" * 64, "window_frames": 200, "model": {"checkpoint": "runs/x/best.pt", "float_checkpoint_sha256": "b" * 64}}
    (assets / "mobilenetv2_int8.tflite.card.json").write_text(json.dumps(card))
    with pytest.raises(FinetuneError, match="was exported from another checkpoint"):
        bundle_student(ckpt, assets)
    assert list(assets.glob("*.pt")) == []
    card["model"]["float_checkpoint_sha256"] = sha256_file(ckpt)
    (assets / "mobilenetv2_int8.tflite.card.json").write_text(json.dumps(card))
    student, record = bundle_student(ckpt, assets)
    assert (student.name, record.name) == ("mobilenetv2_float.pt", "mobilenetv2_float.pt.json")
    assert bundled_student(assets) == student
    slim, meta = load_checkpoint(student)
    assert all(torch.equal(a, b) for a, b in zip(slim.state_dict().values(), model.state_dict().values()))
    assert meta["window_frames"] == 200 and not {"optimizer", "train_config", "epoch"} & set(meta)
    assert student.stat().st_size < ckpt.stat().st_size
    assert json.loads(record.read_text())["int8_artifacts"] == {"mobilenetv2_int8.tflite": {"sha256": "a" * 64, "exported_from": "runs/x/best.pt"}}
