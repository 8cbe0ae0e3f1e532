"""QAT of the streaming student's step (train.quant.stream_qat) and its export.

A small streamtcn (BatchNorm statistics made non-trivial, so that folding them is tested) on a
5-runner click dataset, true step frames, two short QAT epochs (ranges frozen in the second): the
BatchNorm fold changes nothing, a step graph streamed equals it run whole, the saved ``qat_int8.pt2``
loads back as a streaming model close to the float student, the report ships it, and ``footfall
export`` lowers that very step to ``.pte`` and ``.tflite`` whose streamed logits match it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures import make_dataset  # noqa: E402

P = 16  # the shipped packet
SMALL = {"channels": (8, 8, 8), "tcn_channels": 16, "dilations": (1, 2), "packet_frames": P}


def small_student(seed: int = 0):
    from train.models import build_model

    torch.manual_seed(seed)
    m = build_model("streamtcn", **SMALL)
    with torch.no_grad():
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.1)
        m.out.weight.normal_(0, 0.5)  # logits that move (at initialisation they sit at the bias)
    return m.eval()


@pytest.fixture(scope="module")
def mel() -> np.ndarray:
    from edge.golden import click_track
    from edge.stream import offline_log_mel

    return offline_log_mel(click_track(12.0, seed=3)[0])


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from train.distill.student import DistillConfig, _checkpoint_extra
    from train.models import save_checkpoint
    from train.quant.qat import QATConfig, run_qat

    tmp = tmp_path_factory.mktemp("sqat")
    data = make_dataset(tmp / "data", n_runners=5, runs_per_runner=1, seconds=12.0)
    cfg = DistillConfig(data=str(data.resolve()), model="streamtcn", labels="true", unlabeled=False, psl="",
                        model_args={"streamtcn": dict(SMALL)}, window_s=1.92, train_hop_s=0.96, stream_hop_s=0.48,
                        batch_size=4, device="cpu", precision="fp32")
    ckpt = save_checkpoint(tmp / "student" / "best.pt", small_student(), **_checkpoint_extra(cfg))
    report = run_qat(QATConfig(student=str(ckpt), epochs=2, freeze_bn_epoch=0, freeze_observer_epoch=1, max_steps_per_epoch=2,
                               batch_size=4, device="cpu", threads=1))
    return ckpt, ckpt.parent / "int8", report


def test_folding_batchnorm_changes_no_logit(mel):
    from train.quant.stream_qat import fold_batchnorm

    m = small_student()
    folded = fold_batchnorm(m)
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in folded.modules())
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()), "the student itself is left as it was"
    x = torch.from_numpy(mel[None, None].copy())
    with torch.no_grad():
        a, b = m(x), folded(x)
    assert float(a.abs().max()) > 1.0  # logits that vary, so the comparison means something
    torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_a_step_graph_streamed_equals_the_student_run_whole(mel):
    from train.quant.stream_qat import StreamedGraph, export_step, fold_batchnorm

    m = small_student()
    graph = export_step(fold_batchnorm(m))
    x = torch.from_numpy(mel[None, None, :, :1000].copy())  # 1000 frames: 62 packets and a partial one
    with torch.no_grad():
        whole = m(x)
        streamed = StreamedGraph(graph, P, m.state_specs())(x)
        two = StreamedGraph(graph, P, m.state_specs())(torch.cat([x, x]))  # the batch is dynamic
    assert streamed.shape == whole.shape == (1, 250)
    torch.testing.assert_close(streamed, whole, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(two[1:], whole, atol=1e-4, rtol=1e-4)


def test_the_float_form_of_a_step_computes_what_the_step_computes(mel):
    """trained_float puts a step graph's (folded) weights back into a student of the same config: run
    whole in float it equals the step streamed, whatever weights that student held before."""
    from train.quant.stream_qat import StreamedGraph, export_step, fold_batchnorm, trained_float

    trained, other = small_student(seed=0), small_student(seed=1)  # the step's weights, and a student that no longer has them
    graph = export_step(fold_batchnorm(trained))
    x = torch.from_numpy(mel[None, None, :, :1024].copy())
    with torch.no_grad():
        step = StreamedGraph(graph, P, trained.state_specs())(x)
        before = other(x)
        back = trained_float(other, graph)
        after = back(x)
    assert float((before - step).abs().mean()) > 0.1  # the other student is far off: the comparison means something
    torch.testing.assert_close(after, step, atol=1e-4, rtol=1e-4)
    assert type(back) is type(other) and back.config == other.config and back is not other
    assert any(not torch.equal(a, b) for a, b in zip(back.state_dict().values(), other.state_dict().values())), "other is left as it was"
    bns = [m for m in back.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(torch.all(bn.weight == 1) and torch.all(bn.running_mean == 0) for bn in bns)


def test_the_float_form_refuses_a_graph_of_another_student():
    from train.models import build_model
    from train.quant.stream_qat import export_step, fold_batchnorm, trained_float

    torch.manual_seed(0)
    wider = build_model("streamtcn", **{**SMALL, "tcn_channels": 24}).eval()
    with pytest.raises(ValueError, match="the step's weight is"):
        trained_float(small_student(), export_step(fold_batchnorm(wider)))
    deeper = build_model("streamtcn", **{**SMALL, "dilations": (1, 2, 4)}).eval()
    with pytest.raises(ValueError, match="does not hold this student's folded weights"):
        trained_float(small_student(), export_step(fold_batchnorm(deeper)))


def test_streamed_graph_refuses_a_packet_off_the_output_grid():
    from train.quant.stream_qat import StreamedGraph

    with pytest.raises(ValueError, match="multiple of 4"):
        StreamedGraph(torch.nn.Identity(), 6, [])


@pytest.mark.slow
def test_qat_of_a_streaming_student_saves_its_int8_step(quantized, mel):
    from export.targets import is_quantized_graph
    from train.models import load_checkpoint
    from train.quant.qat import load_quantized
    from train.quant.stream_qat import StreamedGraph

    ckpt, out, report = quantized
    assert sorted(Path(p).name for p in report["written"]) == ["qat_int8.pt2", "qat_int8.pt2.json", "report.json"]
    assert all(Path(p).is_file() for p in report["written"])
    assert not (out / "ptq_int8.pt2").exists()  # a streaming student's PTQ is the export's
    assert report["summary"]["ship"] == "qat" and report["window_frames"] == report["hop_frames"] == P
    assert [h["observers_frozen"] for h in report["qat"]["history"]] == [False, True]
    model, meta = load_quantized(out / "qat_int8.pt2")
    assert isinstance(model, StreamedGraph) and model.streaming and model.packet_frames == P
    assert is_quantized_graph(model.step_graph)
    student, _ = load_checkpoint(ckpt)
    assert meta["streaming"]["state"] == [[n, list(s)] for n, s in student.state_specs()]
    assert meta["window_frames"] == P and meta["training_window_frames"] == 192 and meta["qat"]["steps"] == 4
    x = torch.from_numpy(mel[None, None].copy())
    with torch.no_grad():
        ref, q = student(x)[0].numpy(), model(x)[0].numpy()
    assert q.shape == ref.shape
    # four steps at lr 1e-4 move the weights little: int8 stays near the float student (measured
    # 0.971 on this click track, calibrated on the dataset's runs; from a cold start, uncalibrated, 0.02)
    assert np.corrcoef(q, ref)[0, 1] > 0.95, np.corrcoef(q, ref)[0, 1]


@pytest.mark.slow
def test_a_qat_steps_bundled_student_is_the_float_form_of_its_trained_weights(quantized, mel, tmp_path):
    """bundle_student, given the checkpoint a QAT step was quantized from, bundles what that step
    was trained to (not the checkpoint's weights), and refuses when the step is not there."""
    import json

    from edge.card import sha256_file
    from train.fit.finetune import FinetuneError, bundle_student
    from train.models import load_checkpoint
    from train.quant.qat import load_quantized
    from train.quant.stream_qat import trained_float

    ckpt, out, _ = quantized
    assets = tmp_path / "assets"
    assets.mkdir()
    card = {"sha256": "a" * 64, "window_frames": P,
            "model": {"checkpoint": str(tmp_path / "gone" / "qat_int8.pt2"), "float_checkpoint_sha256": sha256_file(ckpt), "quantization": "qat"}}
    (assets / "streamtcn_int8.tflite.card.json").write_text(json.dumps(card))
    with pytest.raises(FinetuneError, match="is not here"):
        bundle_student(ckpt, assets)
    card["model"]["checkpoint"] = str(out / "qat_int8.pt2")
    (assets / "streamtcn_int8.tflite.card.json").write_text(json.dumps(card))
    student, record = bundle_student(ckpt, assets)
    bundled, _ = load_checkpoint(student)
    original, _ = load_checkpoint(ckpt)
    step, _ = load_quantized(out / "qat_int8.pt2")
    x = torch.from_numpy(mel[None, None].copy())
    with torch.no_grad():
        expected = trained_float(original, step.step_graph)(x)
        torch.testing.assert_close(bundled.eval()(x), expected, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(original.eval()(x), expected, atol=1e-3)  # QAT moved the weights
    rec = json.loads(record.read_text())
    assert rec["bundled_from"]["qat_sha256"] == sha256_file(out / "qat_int8.pt2") and "float form" in rec["what"]


@pytest.mark.slow
def test_export_lowers_the_qat_step_as_it_is(quantized, mel, tmp_path):
    from export.pipeline import export_model, load_source, streams_from_file

    ckpt, out, _ = quantized
    source = load_source(out / "qat_int8.pt2")
    assert source.streaming and source.float_model is not None and source.window_frames == P
    assert source.quantization == "qat"
    np.save(tmp_path / "run.npy", mel)
    result = export_model(source, streams_from_file(tmp_path / "run.npy", P), tmp_path / "export", targets=("pte", "tflite"),
                          precisions=("int8",))
    assert result.ok, [r.line() for r in result.reports]
    for r in result.reports:
        assert r.status == "ok" and r.parity["reference"] == "pytorch int8 graph (as given)"
        assert r.parity["mean_abs"] < 0.05, r.line()  # the artifact computes the graph QAT converted
    card = __import__("json").loads((tmp_path / "export" / "streamtcn_int8.tflite.card.json").read_text())
    assert card["model"]["quantization"] == "qat"


def test_a_qat_step_refuses_another_packet(quantized, tmp_path):
    from export.pipeline import load_source
    from export.targets import ExportError

    _, out, _ = quantized
    with pytest.raises(ExportError, match="trained on 16-frame packets"):
        load_source(out / "qat_int8.pt2", window_frames=32)


def test_streaming_qat_refuses_ptq_only(tmp_path):
    from train.distill.student import DistillConfig, _checkpoint_extra
    from train.fit.config import ConfigError
    from train.models import save_checkpoint
    from train.quant.qat import QATConfig, run_qat

    data = make_dataset(tmp_path / "data", n_runners=5, runs_per_runner=1, seconds=8.0)
    cfg = DistillConfig(data=str(data.resolve()), model="streamtcn", labels="true", unlabeled=False, psl="",
                        model_args={"streamtcn": dict(SMALL)}, window_s=1.92, train_hop_s=0.96, stream_hop_s=0.48,
                        batch_size=4, device="cpu", precision="fp32")
    ckpt = save_checkpoint(tmp_path / "student" / "best.pt", small_student(), **_checkpoint_extra(cfg))
    with pytest.raises(ConfigError, match="PTQ is the export's"):
        run_qat(QATConfig(student=str(ckpt), qat=False, ptq=True, device="cpu", threads=1))
