"""QAT and PTQ of a student (PT2E, XNNPACK int8): the saved graphs and what they promise export.

A tiny MobileNetV2 (three inverted-residual rows at width 1/8) on a 5-runner click dataset,
true step frames (no teacher needed), one short QAT epoch with BN and ranges frozen in the
second: the .pt2 files load, run at any batch size, give the float student's step-onset logits
closely, hold int8 quantize/dequantize ops with BatchNorm folded into the convs, and carry the
metadata export reads.

The pipeline tests are ``slow`` (about a minute on 2 idle cores, mostly inside torchao's
``convert_pt2e``, which exports ~128 conv-bn pattern graphs per call); ``make test-all`` runs them.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_dataset  # noqa: E402

TINY_STUDENT = {"width": 0.125, "head_channels": 8, "head_dilations": [1], "blocks": [[1, 16, 1, 1], [6, 24, 1, 2], [6, 32, 1, 2]], "last_channels": 64}


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from train.distill.student import DistillConfig, _checkpoint_extra
    from train.models import build_model, save_checkpoint
    from train.quant.qat import QATConfig, run_qat

    tmp = tmp_path_factory.mktemp("qat")
    data = make_dataset(tmp / "data", n_runners=5, runs_per_runner=1, seconds=12.0)
    cfg = DistillConfig(data=str(data.resolve()), labels="true", unlabeled=False, psl="", model_args={"mobilenetv2": TINY_STUDENT},
                        window_s=2.0, train_hop_s=1.0, stream_hop_s=0.48, batch_size=8, device="cpu", precision="fp32")
    torch.manual_seed(0)
    student = build_model("mobilenetv2", **TINY_STUDENT)
    ckpt = save_checkpoint(tmp / "student" / "best.pt", student, **_checkpoint_extra(cfg))
    messages, logger = ListHandler(), logging.getLogger("footfall.qat")
    level = logger.level
    logger.addHandler(messages)
    logger.setLevel(logging.INFO)
    try:
        report = run_qat(QATConfig(student=str(ckpt), epochs=2, freeze_bn_epoch=1, freeze_observer_epoch=1, max_steps_per_epoch=2,
                                   batch_size=8, calib_batches=2, device="cpu", threads=1))
    finally:
        logger.removeHandler(messages)
        logger.setLevel(level)
    report["_log"] = messages.lines  # what a user sees while it runs
    return ckpt, ckpt.parent / "int8", report


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.slow
def test_qat_says_what_it_is_doing(quantized):
    """`footfall qat` was silent for a minute: every slow phase now starts with a log line."""
    lines = quantized[2]["_log"]
    phases = ["QAT: loading", "fp32 student: scoring", "PTQ int8: calibrating", "QAT: preparing", "QAT epoch 1/2",
              "QAT epoch 2/2", "QAT int8: converting", "QAT int8: test"]
    found = [next((i for i, line in enumerate(lines) if line.startswith(p)), None) for p in phases]
    assert None not in found and found == sorted(found), lines


@pytest.mark.slow
def test_quantized_graphs_load_and_run_at_any_batch(quantized):
    from train.models import load_checkpoint
    from train.quant.qat import load_quantized

    ckpt, out, _ = quantized
    fp32, _ = load_checkpoint(ckpt)
    x = torch.randn(3, 1, 64, 200)
    for name in ("qat_int8.pt2", "ptq_int8.pt2"):
        model, meta = load_quantized(out / name)
        assert meta == json.loads((out / (name + ".json")).read_text())
        assert model(x[:1]).shape == (1, 50) and model(x).shape == (3, 50)
        y = model(x)  # step-onset logits (any sign)
        assert torch.isfinite(y).all()
        with torch.no_grad():
            ref = fp32(x)
        assert (y - ref).abs().mean() < 0.05 * ref.abs().mean() + 1e-3  # int8 close to the float student
        assert (torch.sigmoid(y) - torch.sigmoid(ref)).abs().max() < 0.05  # and so are its step probabilities
        targets = {str(n.target) for n in model.graph.nodes if n.op == "call_function"}
        assert any("quantize_per_tensor" in t for t in targets) and any("dequantize_per_channel" in t for t in targets)
        # every conv's BatchNorm is folded; only bn0 (per-mel normalisation, no conv before it) stays
        n_bn = sum("batch_norm" in t for t in (str(n.target) for n in model.graph.nodes))
        assert n_bn <= 1


@pytest.mark.slow
def test_metadata_is_what_export_reads(quantized):
    from edge.card import sha256_file
    from train.quant.qat import load_quantized

    ckpt, out, _ = quantized
    _, qat = load_quantized(out / "qat_int8.pt2")
    _, ptq = load_quantized(out / "ptq_int8.pt2")
    for meta in (qat, ptq):
        assert meta["format"] == "footfall.pt2e" and meta["precision"] == "int8"
        assert meta["window_frames"] == 200 and meta["hop_frames"] == 48 and meta["density_fps"] == 25.0
        assert meta["student_checkpoint"] == str(ckpt.resolve()) and meta["student_sha256"] == sha256_file(ckpt)
        assert meta["model"]["name"] == "mobilenetv2" and meta["model"]["params"] > 0
        assert "mae" in meta["accuracy"] and "mae" in meta["reference_accuracy"]
        assert meta["training_data"]["labels"] == "true" and "segment_s" not in meta["training_data"]
    assert "qat" in qat and "qat" not in ptq  # export tells QAT from PTQ by this key
    assert qat["quantization"]["weights"].startswith("int8 per-channel")


@pytest.mark.slow
def test_report_compares_fp32_qat_ptq(quantized):
    from edge.util import jsonable

    _, out, report = quantized
    rows = report["summary"]["test_stream"]
    assert set(rows) == {"fp32", "qat", "ptq"}
    assert {"qat_within_3pct", "qat_better_than_ptq"} <= set(report["summary"])
    assert [h["bn_frozen"] for h in report["qat"]["history"]] == [False, True]
    assert json.loads((out / "report.json").read_text())["summary"] == jsonable(report["summary"])  # NaN (no PCC of an all-zero count) as null


def test_qat_trains_on_the_students_data_mix(quantized):
    """A student trained with quiet windows is fine-tuned by QAT on quiet windows too, on its own
    frame targets (step frames here: true labels)."""
    from train.distill.student import unpack
    from train.quant.qat import QATConfig, _load_student, _train_loader

    _, _, dcfg = _load_student(QATConfig(student=str(quantized[0])))
    ds = _train_loader(dcfg, 0)[0]
    assert ds.n_quiet == 0 and ds.window_frames == 200
    probs, frames, labeled = unpack(torch.stack([ds[i][1] for i in range(len(ds))]), 50)
    assert (probs == 0).all() and (labeled == 1).all() and frames.sum() > 0
    ds = _train_loader(dcfg.replace(quiet_fraction=0.25), 0)[0]
    assert ds.n_quiet > 0 and ds.n_quiet == round(0.25 * (len(ds) - ds.n_quiet))


def test_qat_config_rejects():
    from train.fit.config import ConfigError
    from train.quant.qat import QATConfig

    with pytest.raises(ConfigError, match="freeze_observer_epoch"):
        QATConfig(student="x.pt", freeze_observer_epoch=0)
    with pytest.raises(ConfigError, match="nothing to do"):
        QATConfig(student="x.pt", qat=False, ptq=False)


def test_zero_bn_gammas_are_lifted():
    from train.models import build_model
    from train.quant.qat import nonzero_bn_gammas

    model = build_model("mobilenetv2", **TINY_STUDENT)  # residual head branches start with gamma = 0
    n = nonzero_bn_gammas(model)
    assert n > 0 and nonzero_bn_gammas(model) == 0
    assert all((m.weight != 0).all() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_load_quantized_rejects_other_files(tmp_path):
    from train.fit.config import ConfigError
    from train.quant.qat import load_quantized

    bad = tmp_path / "x.pt2"
    bad.write_bytes(b"not a program")
    with pytest.raises(ConfigError, match="not a footfall int8 graph"):
        load_quantized(bad)
    with pytest.raises(FileNotFoundError):
        load_quantized(tmp_path / "missing.pt2")


def test_the_shipped_int8_graph_is_chosen_on_validation(tmp_path):
    """make model ships QAT or PTQ by the validation MAE; test numbers never take part."""
    from train.quant.qat import _main, select_int8

    def rep(qat_val, ptq_val, qat_test=9.0, ptq_test=0.1):
        return {"qat": {"stream": {"val": {"mae": qat_val}, "test": {"mae": qat_test}}},
                "ptq": {"stream": {"val": {"mae": ptq_val}, "test": {"mae": ptq_test}}}}

    assert select_int8(rep(1.40, 1.47)) == "qat"  # better on validation, although worse on test
    assert select_int8(rep(1.47, 1.40, qat_test=0.1, ptq_test=9.0)) == "ptq"
    assert select_int8(rep(1.40, 1.40)) == "qat"  # tie: the recipe's default
    assert select_int8({"ptq": rep(1, 1.2)["ptq"]}) == "ptq"
    (tmp_path / "report.json").write_text(json.dumps(rep(1.47, 1.40)))
    assert _main(["ship", str(tmp_path)]) == 2  # ptq_int8.pt2 missing: one line, exit 2
    (tmp_path / "ptq_int8.pt2").write_bytes(b"x")
    assert _main(["ship", str(tmp_path)]) == 0
    assert _main(["ship", str(tmp_path / "nope")]) == 2 and _main([]) == 2


def test_cli_refuses_nothing_to_do(tmp_path):
    """``--no-qat --no-ptq`` is a one-line error before any work (``--no-qat`` alone is PTQ only)."""
    from typer.testing import CliRunner

    from footfall.cli import app

    student = tmp_path / "best.pt"
    student.write_bytes(b"")
    res = CliRunner().invoke(app, ["qat", "--student", str(student), "--no-qat", "--no-ptq"])
    assert res.exit_code == 2 and (res.exception is None or isinstance(res.exception, SystemExit))
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nothing to do" in lines[0], res.output


@pytest.mark.slow
def test_qat_says_which_epoch_it_converts_and_what_it_wrote(quantized):
    """Ranges frozen in the second of two epochs: that epoch is chosen on validation, said in words
    (epochs counted from 1), and every file written is returned, in order."""
    _, out, report = quantized
    (line,) = [ln for ln in report["_log"] if ln.startswith("QAT int8: converting")]
    assert line.startswith("QAT int8: converting and scoring epoch 2 of 2 (the lowest validation 5-s MAE") and "-1" not in line
    assert report["qat"]["best_epoch"] == 1 and report["qat"]["converted"].startswith("epoch 2 of 2")
    names = ["ptq_int8.pt2", "ptq_int8.pt2.json", "qat_int8.pt2", "qat_int8.pt2.json", "report.json"]
    assert report["written"] == [str(out / n) for n in names] and all((out / n).is_file() for n in names)
    assert "written" not in json.loads((out / "report.json").read_text())


def test_the_converted_epoch_is_described_never_as_minus_one():
    from train.quant.qat import QATConfig, _chosen_epoch

    cfg = QATConfig(student="x.pt", epochs=3, freeze_observer_epoch=1)
    assert _chosen_epoch(1, 0.8123, cfg, validated=True) == \
        "epoch 2 of 3 (the lowest validation 5-s MAE, 0.8123, of the epochs with frozen ranges)"
    assert _chosen_epoch(None, float("inf"), cfg, validated=False) == \
        "the last epoch (3 of 3): no labelled validation runs to choose one on"
    ranges_moving = QATConfig(student="x.pt", epochs=1, freeze_bn_epoch=0, freeze_observer_epoch=1)  # the README's quick run
    assert _chosen_epoch(None, float("inf"), ranges_moving, validated=True) == (
        "the last epoch (1 of 1): the quantization ranges moved in every epoch (frozen only after the last), "
        "so none was chosen on validation")


def test_qat_never_replaces_an_earlier_run_without_force(tmp_path):
    """Refused in one line before any work: the student here is not even a checkpoint."""
    from typer.testing import CliRunner

    from footfall.cli import app

    student = tmp_path / "best.pt"
    student.write_bytes(b"")
    (tmp_path / "int8").mkdir()
    (tmp_path / "int8" / "qat_int8.pt2").write_bytes(b"an earlier QAT graph")
    res = CliRunner().invoke(app, ["qat", "--student", str(student)])
    assert res.exit_code == 2 and (res.exception is None or isinstance(res.exception, SystemExit))
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [f"error: {tmp_path / 'int8' / 'qat_int8.pt2'} exists; choose another --out or pass --force to replace them"]
    assert (tmp_path / "int8" / "qat_int8.pt2").read_bytes() == b"an earlier QAT graph"
    res = CliRunner().invoke(app, ["qat", "--student", str(student), "--force"])  # allowed: it fails later, on the student
    assert res.exit_code == 2 and "exists" not in res.output


def test_qat_command_names_every_file_it_wrote(tmp_path, monkeypatch):
    import train.quant.qat as Q
    from typer.testing import CliRunner

    from footfall.cli import app

    written = [str(tmp_path / n) for n in ("qat_int8.pt2", "qat_int8.pt2.json", "report.json")]
    row = {"mae": 1.0, "pcc": 0.5, "tce_median": 2.0}
    monkeypatch.setattr(Q, "run_qat", lambda cfg: {"window_frames": 240, "hop_frames": 200, "written": written,
                                                    "summary": {"test_stream": {"fp32": row, "qat": {**row, "mae_rel_change_pct": 0.0}}}})
    res = CliRunner().invoke(app, ["qat", "--student", str(tmp_path / "best.pt"), "--no-ptq"])
    assert res.exit_code == 0, res.output
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("wrote: ")] == [f"wrote: {p}" for p in written]


def test_qat_command_passes_its_thread_count(tmp_path, monkeypatch):
    import train.quant.qat as Q
    from typer.testing import CliRunner

    from footfall.cli import app

    seen = []
    row = {"mae": 1.0, "pcc": 0.5, "tce_median": 2.0}

    def fake(cfg):
        seen.append(cfg.threads)
        return {"window_frames": 16, "hop_frames": 16, "written": [], "summary": {"test_stream": {"fp32": row}}}

    monkeypatch.setattr(Q, "run_qat", fake)
    for args, threads in (([], 0), (["--threads", "1"], 1)):
        res = CliRunner().invoke(app, ["qat", "--student", str(tmp_path / "best.pt"), *args])
        assert res.exit_code == 0, res.output
    assert seen == [0, 1]
    res = CliRunner().invoke(app, ["qat", "--student", str(tmp_path / "best.pt"), "--threads", "-1"])
    assert res.exit_code == 2
