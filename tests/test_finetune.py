"""`footfall finetune` on generated own runs (imported from their accelerometer) lowers the
held-out run's 5-s MAE of counted steps. A tiny student from scratch keeps it to seconds."""

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
