"""Export on a tiny model: every target that runs here, reloaded in its runtime and compared with
PyTorch; the parity gate failing; cards and `footfall inspect` catching a corrupted artifact.

The exports are done once per module (they dominate the time); the QNN tests skip with the
install hint when ``.venv-qnn`` is absent.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge.card import CardError, card_path, load_verified_card, sha256_file
from edge.counter import CounterParams
from edge.frontend import N_MELS, SAMPLE_RATE, log_mel
from export import targets as T
from export.parity import FP32_REL_TOL, INT8_COUNT_TOL, chunk_counts, compare, window_counts
from export import pipeline
from export.pipeline import ExportSource, Windows, export_model, torch_logits
from export.runtimes import _dequantize, _quantize, run_artifact
from tests.tiny_model import tiny_model

W = 200  # the students' 2-s window
# a counter that starts and stops cheaply and takes an untrained network's flat activation as steps:
# with the shipped defaults a 2-s window must hold a sure cadence to count at all, and the tiny
# model's would count nothing, leaving the count parity checks below nothing to compare
LIVE = CounterParams(threshold=0.02, switch_prob=0.2)


def clicky_logmel(seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """Real log-mel of noise with footstep-like clicks every ~0.36 s: (64, 100 * seconds)."""
    rng = np.random.default_rng(seed)
    audio = (0.01 * rng.standard_normal(int(SAMPLE_RATE * seconds))).astype(np.float32)
    for t in np.arange(0.2, seconds - 0.1, 0.36):
        i = int(t * SAMPLE_RATE)
        audio[i : i + 200] += 0.5 * np.exp(-np.arange(200) / 30) * rng.standard_normal(200)
    return log_mel(audio)


def cut(mel: np.ndarray) -> np.ndarray:
    n = mel.shape[1] // W
    return np.ascontiguousarray(mel[:, : n * W].reshape(N_MELS, n, W).transpose(1, 0, 2)[:, None])


@pytest.fixture(scope="module")
def windows() -> Windows:
    x = cut(clicky_logmel())  # 6 consecutive windows of one "run"
    return Windows(ptq=x, parity=x, runs=np.zeros(len(x), int), source={"test": "clicky noise"})


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model, windows):
    """Every CPU target x precision of the tiny model through the whole pipeline, once."""
    out = tmp_path_factory.mktemp("export")
    source = ExportSource(model, name="tiny", window_frames=W, hop_frames=48, counter=LIVE)
    return export_model(source, windows, out, targets=("pte", "tflite", "onnx"), precisions=("fp32", "int8"))


def test_tiny_model_has_live_logits(model, windows):
    logits = torch_logits(model, windows.parity)
    assert logits.shape == (len(windows.parity), W // 4)
    assert logits.std() > 1e-3 and np.isfinite(logits).all()  # it responds to its input
    assert window_counts(logits, LIVE).sum() > 0  # the counter finds steps in its windows


def test_every_cpu_target_exports_and_passes_parity(exported):
    got = {(r.target, r.precision): r for r in exported.reports}
    assert set(got) == {(t, p) for t in ("pte", "tflite", "onnx") for p in ("fp32", "int8")}
    for (target, precision), r in got.items():
        assert r.status == "ok", r.line()
        assert r.parity["passed"]
        if precision == "fp32":
            assert r.parity["rel_max_abs"] <= FP32_REL_TOL
        else:
            assert r.parity["count_diff_mean"] <= INT8_COUNT_TOL
            assert r.quantization == "ptq"
        assert r.parity["count_5s_diff_mean"] is not None  # consecutive windows -> 5-s chunks
    assert exported.ok
    report = json.loads((Path(exported.out_dir) / "export_report.json").read_text())
    assert report["ok"] and len(report["artifacts"]) == 6


def test_pte_is_fully_delegated_to_xnnpack(exported):
    for r in exported.reports:
        if r.target == "pte":
            assert r.info["delegated_ops"] > 0
            assert r.info["non_delegated"] == {}, r.info


def test_windows_with_a_zero_stride_axis_export_to_pte(tmp_path, model):
    """Windows stacked the way a dataset gives them (``np.stack(...)[:, None]``) carry stride 0 on
    their size-1 channel axis; numpy and torch both call that contiguous. The .pte exports
    (fp32 and int8) must still lower, reload in the ExecuTorch runtime and pass parity."""
    mel = clicky_logmel(8.0)
    stacked = np.stack([mel[:, i * W : (i + 1) * W] for i in range(mel.shape[1] // W)])[:, None]
    assert stacked.strides[1] == 0 and stacked.flags.c_contiguous  # the shape of the bug
    example = torch.from_numpy(np.ascontiguousarray(stacked[:1]))
    assert 0 in example.stride() and example.is_contiguous()
    assert 0 not in T._check_example(example).stride()
    windows = Windows(ptq=stacked, parity=stacked, runs=np.zeros(len(stacked), int), source={"test": "stride 0"})
    source = ExportSource(model, name="tiny", window_frames=W, hop_frames=48)
    result = export_model(source, windows, tmp_path, targets=("pte",), precisions=("fp32", "int8"))
    assert [r.status for r in result.reports] == ["ok", "ok"], [r.line() for r in result.reports]
    assert result.ok


def test_int8_tflite_io_is_handled(exported, windows, model):
    (r,) = [r for r in exported.reports if r.target == "tflite" and r.precision == "int8"]
    io = r.info["io"]
    assert io["input"]["dtype"] in ("int8", "float32") and io["output"]["dtype"] in ("int8", "float32")
    y = run_artifact(r.artifact, windows.parity[:2], "litert")
    ref = torch_logits(model, windows.parity[:2])
    assert np.abs(window_counts(y, LIVE) - window_counts(ref, LIVE)).mean() <= INT8_COUNT_TOL


def test_int8_io_tensors_are_quantized_with_their_parameters():
    detail = {"dtype": np.int8, "quantization": (0.05, -4)}
    x = np.array([-7.0, 0.0, 0.5, 100.0], np.float32)
    q = _quantize(x, detail)
    assert q.dtype == np.int8 and q.tolist() == [-128, -4, 6, 127]  # clipped at both ends
    assert np.allclose(_dequantize(q[1:3], detail), [0.0, 0.5])
    assert _quantize(x, {"dtype": np.float32, "quantization": (0.0, 0)}).dtype == np.float32


def test_cards_verify_and_describe_the_artifact(exported):
    for r in exported.reports:
        card = load_verified_card(r.artifact)
        assert card.sha256 == sha256_file(r.artifact)
        assert card.window_frames == W and card.input_shape == [1, 1, N_MELS, W] and card.hop_frames == 48
        assert card.precision == r.precision and card.backend == r.backend
        assert card.parity["passed"] and card.tools["torch"] == torch.__version__


def test_inspect_prints_the_card_and_catches_corruption(exported, tmp_path):
    from footfall.cli import app

    r = next(r for r in exported.reports if r.target == "onnx" and r.precision == "fp32")
    runner = CliRunner()
    ok = runner.invoke(app, ["inspect", r.artifact])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["sha256"] == sha256_file(r.artifact)

    # a copy with one byte flipped, its card beside it
    bad = tmp_path / Path(r.artifact).name
    shutil.copy(r.artifact, bad)
    shutil.copy(card_path(r.artifact), card_path(bad))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CardError, match="sha256 mismatch"):
        load_verified_card(bad)
    res = runner.invoke(app, ["inspect", str(bad)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256 mismatch" in lines[0] and "Traceback" not in res.output

    res = runner.invoke(app, ["inspect", str(tmp_path / "missing.tflite")])
    assert res.exit_code == 2 and "no such model file" in res.stderr


def test_parity_gate_fails_on_a_wrong_artifact(tmp_path, model, windows):
    """An artifact of another model fails the gate: reported, exit status bad, no card written."""
    other = tiny_model(seed=1)
    path = T.to_onnx(other, torch.from_numpy(windows.parity[:1]), tmp_path / "tiny_fp32.onnx").path
    ref = torch_logits(model, windows.parity)
    exported = T.Exported(path, "onnx", "fp32", "onnxruntime")
    report = pipeline._finish(exported, ExportSource(model, name="tiny", window_frames=W), windows, ref, "pytorch fp32", 0.0, {})
    assert report.status == "parity-failed" and report.failed
    assert "FAILED" in report.message and "without a card" in report.message
    assert report.card is None
    with pytest.raises(CardError, match="no model card"):
        load_verified_card(path)


def test_compare_gates():
    ref = np.full((4, 50), -4.0)
    ref[:, 5::8] = 3.0  # a step every 8 frames: 6 per window
    assert compare(ref + 1e-6, ref, "fp32", "xnnpack").passed
    assert not compare(ref * 1.001, ref, "fp32", "xnnpack").passed
    lost = ref.copy()
    lost[:, 5] = -4.0  # every window loses its first step: the counts differ by 1
    assert not compare(lost, ref, "int8", "litert").passed
    one = ref.copy()
    one[0, 5] = -4.0  # one window of 4 loses one step: 0.25 steps a window
    assert not compare(one, ref, "int8", "litert").passed
    many = np.concatenate([ref] * 10)
    many_one = many.copy()
    many_one[0, 5] = -4.0  # one window of 40: 0.025, inside both limits
    assert compare(many_one, many, "int8", "litert").passed and compare(many_one, many, "int8", "qnn-htp:SM8650").passed
    assert compare(ref + 0.5, ref, "int8", "litert").passed  # logits off by 0.5: the same steps
    # 5-s chunks: 5 windows of 50 frames of one run -> 2 chunks of 125 frames, their events counted
    assert chunk_counts(np.concatenate([ref] * 2)[:5], np.zeros(5, int)).tolist() == [15.0, 15.0]


def test_export_cli_bad_input_is_one_line(tmp_path):
    from footfall.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["export", str(tmp_path / "none.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no such checkpoint" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "none.pt"), "--to", "pte,coreml"])
    assert res.exit_code == 2 and "coreml" in res.stderr


# ----------------------------------------------------------------------------- QAT graphs


@pytest.fixture(scope="module")
def qat_graph(model, windows):
    """A QAT-converted PT2E graph as train.quant.qat makes it (XNNPACK quantizer, folded int8 weights)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    m = copy.deepcopy(model).train()
    x = torch.from_numpy(windows.parity[:4])
    batch = torch.export.Dim("batch", min=1, max=64)
    graph = prepare_qat_pt2e(torch.export.export(m, (x,), dynamic_shapes=({0: batch},)).module(), T.xnnpack_quantizer(qat=True))
    with torch.no_grad():  # observers see real windows (no training: the test is about lowering)
        graph(x)
    graph = convert_pt2e(graph)  # fold_quantize=True: int8 weights, as train.quant.qat saves them
    move_exported_model_to_eval(graph)
    return graph


def test_qat_graph_lowers_to_every_cpu_target(tmp_path, qat_graph, windows):
    assert T.is_quantized_graph(qat_graph)
    example = torch.from_numpy(windows.parity[:1])
    ref = torch_logits(qat_graph, windows.parity)
    for fn in (T.to_pte, T.to_tflite, T.to_onnx):
        e = fn(qat_graph, example, tmp_path / f"qat.{fn.__name__[3:]}", "int8")
        assert e.quantization == "qat"
        y = run_artifact(e.path, windows.parity, e.backend)
        assert np.abs(window_counts(y, LIVE) - window_counts(ref, LIVE)).mean() <= INT8_COUNT_TOL, fn.__name__
    with pytest.raises(T.ExportError, match="quantized graph"):
        T.to_onnx(qat_graph, example, tmp_path / "x.onnx", "fp32")


def test_unfold_weight_quantize_is_exact(qat_graph, windows):
    x = torch.from_numpy(windows.parity[:2])
    unfolded = T.unfold_weight_quantize(qat_graph)
    weights = [T._get_attr(unfolded, n.target) for n in unfolded.graph.nodes if n.op == "get_attr"]
    assert not any(w.dtype == torch.int8 for w in weights if isinstance(w, torch.Tensor))
    assert any(w.dtype == torch.int8 for n in qat_graph.graph.nodes if n.op == "get_attr"
               for w in [T._get_attr(qat_graph, n.target)] if isinstance(w, torch.Tensor))  # it had some
    assert torch.equal(unfolded(x), qat_graph(x))


# ----------------------------------------------------------------------------- Qualcomm HTP


@pytest.fixture(scope="module")
def qnn_ready():
    reason = T.qnn_available()
    if reason:
        pytest.skip(reason)


def test_qnn_context_runs_on_the_htp_simulator(tmp_path, qnn_ready, model, windows):
    source = ExportSource(model, name="tiny", window_frames=W, hop_frames=48)
    result = export_model(source, windows, tmp_path, targets=("qnn",), precisions=("int8",), socs=("SM8650", "SM8750"))
    assert [r.backend for r in result.reports] == ["qnn-htp:SM8650", "qnn-htp:SM8750"]
    for r in result.reports:
        assert r.status == "ok", r.line()
        assert r.parity["count_diff_mean"] <= 0.15
        assert r.info["simulator"] and r.info["qnn_sdk"]
        assert load_verified_card(r.artifact).backend == r.backend
    # one binary per SoC: the two contexts differ
    assert sha256_file(result.reports[0].artifact) != sha256_file(result.reports[1].artifact)


def test_missing_qnn_venv_is_skipped_with_the_fix(tmp_path, monkeypatch, model, windows):
    monkeypatch.setenv("FOOTFALL_QNN_PYTHON", str(tmp_path / "no-such-python"))
    assert "venv-qnn" in T.qnn_available()
    source = ExportSource(model, name="tiny", window_frames=W)
    result = export_model(source, windows, tmp_path, targets=("qnn",), precisions=("int8",), socs=("SM8650",))
    (r,) = result.reports
    assert r.status == "skipped" and "onnxruntime-qnn" in r.message and result.ok


# ----------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def student_checkpoint(tmp_path_factory):
    """A registered student (smallest MobileNetV2) saved as the trainer saves it."""
    from train.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("mobilenetv2", width=0.25, head_channels=16).eval()
    path = tmp_path_factory.mktemp("ckpt") / "student.pt"
    return save_checkpoint(path, model, window_s=2.0)


def test_export_command_end_to_end(tmp_path, student_checkpoint):
    from footfall.cli import app

    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(8.0))  # a long (64, T) log-mel: cut into consecutive windows
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32",
                                   "--calib", str(calib), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 ok" in res.stdout
    card = load_verified_card(out / "mobilenetv2_fp32.onnx")
    assert card.window_frames == 200 and card.model["name"] == "mobilenetv2" and card.model["params"] > 0
    report = json.loads((out / "export_report.json").read_text())
    assert report["ok"] and report["artifacts"][0]["parity"]["passed"]


def test_export_command_fails_when_parity_fails(tmp_path, student_checkpoint, monkeypatch):
    """The gate is the exit status: a (here impossibly strict) tolerance missed -> exit 1, one line why."""
    import export.parity

    from footfall.cli import app

    monkeypatch.setattr(export.parity, "FP32_REL_TOL", 0.0)
    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(4.0))
    res = CliRunner().invoke(app, ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32",
                                   "--calib", str(calib), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "parity FAILED" in errors[0] and "Traceback" not in res.output
    assert not card_path(tmp_path / "out" / "mobilenetv2_fp32.onnx").exists()


# what the converters and runtimes print at start-up and while they work, which a user cannot act on:
# absl's and TensorFlow's C++ log lines (oneDNN notice, op counts), litert-torch's progress banners,
# ExecuTorch's cpuinfo lines, ONNX Runtime's quantizer warnings on the root logger, Python warnings
NOISE = re.compile(r"absl|oneDNN|^[IWEF]\d{4} |flatbuffer_export|LiteRT-Torch|cpuinfo|^WARNING:root:|Warning: |^INFO: Created")


def footfall_process(*args) -> subprocess.CompletedProcess:
    """`footfall ARGS` in a process of its own: native libraries write to its file descriptor 2."""
    code = "import sys; from footfall.cli import app; sys.argv = ['footfall'] + sys.argv[1:]; app()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=900)


def test_export_is_quiet_unless_verbose_and_names_every_file_it_wrote(tmp_path, student_checkpoint):
    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(4.0))
    out = tmp_path / "quiet"
    res = footfall_process("export", student_checkpoint, "--to", "tflite", "--precision", "fp32", "--calib", calib, "--out", out)
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stderr.splitlines() if NOISE.search(line)] == [], res.stderr
    plan, row = res.stderr.splitlines()  # what it compares on, then one line per artifact: nothing else
    assert "windows of calib.npy" in plan and row.startswith("tflite fp32") and " ok " in row
    wrote = [line.removeprefix("wrote: ") for line in res.stdout.splitlines() if line.startswith("wrote: ")]
    assert wrote == [str(out / "mobilenetv2_fp32.tflite"), str(out / "mobilenetv2_fp32.tflite.card.json"), str(out / "export_report.json")]
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in wrote)  # each file it left, named once

    loud = footfall_process("export", student_checkpoint, "--to", "tflite", "--precision", "fp32", "--calib", calib,
                            "--out", tmp_path / "verbose", "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert [line for line in loud.stderr.splitlines() if NOISE.search(line)], "--verbose shows what the default hides"


@pytest.mark.slow
def test_int8_export_to_every_cpu_target_is_quiet(tmp_path, student_checkpoint):
    """int8 adds ONNX Runtime's quantizer warnings and the ExecuTorch runtime's cpuinfo lines."""
    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(4.0))
    res = footfall_process("export", student_checkpoint, "--to", "pte,tflite,onnx", "--precision", "int8", "--calib", calib,
                           "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stderr.splitlines() if NOISE.search(line)] == [], res.stderr
    assert len(res.stderr.splitlines()) == 4 and res.stdout.count("wrote: ") == 7


def test_parity_windows_of_a_file_name_it(tmp_path):
    calib = tmp_path / "steps.npy"
    np.save(calib, clicky_logmel(4.0))
    source = pipeline.windows_from_file(calib, W).source
    assert source["calibration"] == "2 windows of steps.npy"
    assert source["parity"] == "2 windows of steps.npy, the calibration file"


def test_export_never_replaces_an_earlier_export_without_force(tmp_path, student_checkpoint):
    from footfall.cli import app

    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(4.0))
    out = tmp_path / "out"
    args = ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32", "--calib", str(calib), "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    card = load_verified_card(out / "mobilenetv2_fp32.onnx")
    assert card.model["float_checkpoint_sha256"] == sha256_file(student_checkpoint)  # what binds a float student to its artifacts
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and res.stdout == "" and "Traceback" not in res.output
    (line,) = res.stderr.strip().splitlines()
    assert line == (f"error: {out / 'mobilenetv2_fp32.onnx'} exists (and 2 more file(s) this export writes); "
                    "choose another --out or pass --force to replace them")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    res = CliRunner().invoke(app, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("wrote: ") == 3


def test_saturating_clips_become_relus_with_identical_quantized_output(tmp_path):
    """A ReLU6 quantized with its input's range (PT2E): where the range tops out at or below 6 the
    Clip is rewritten as Relu (the QNN HTP dropped such Clips, negatives included); else it stays."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    def chain(tag: str, scale: float) -> list:
        s, z = f"{tag}_s", f"{tag}_z"
        inits.extend([numpy_helper.from_array(np.array(scale, np.float32), s), numpy_helper.from_array(np.array(-6, np.int8), z)])
        return [
            helper.make_node("QuantizeLinear", ["x", s, z], [f"{tag}_q0"]),
            helper.make_node("DequantizeLinear", [f"{tag}_q0", s, z], [f"{tag}_d0"]),
            helper.make_node("Clip", [f"{tag}_d0", "lo", "hi"], [f"{tag}_c"]),
            helper.make_node("QuantizeLinear", [f"{tag}_c", s, z], [f"{tag}_q1"]),
            helper.make_node("DequantizeLinear", [f"{tag}_q1", s, z], [f"{tag}_y"]),
        ]

    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    nodes = chain("a", 0.044) + chain("b", 0.05)  # tops: 133 * 0.044 = 5.85 <= 6 (rewritten), 6.65 > 6 (kept)
    graph = helper.make_graph(nodes, "clips", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info(f"{t}_y", TensorProto.FLOAT, [1, 64]) for t in "ab"], inits)
    src, dst = tmp_path / "clips.onnx", tmp_path / "relus.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), str(src))

    assert T.saturating_clips_to_relu(src, dst) == 1
    ops = {n.output[0]: n.op_type for n in onnx.load(str(dst)).graph.node}
    assert ops["a_c"] == "Relu" and ops["b_c"] == "Clip"
    x = np.linspace(-8, 8, 64, dtype=np.float32)[None]  # below 0, inside, above both tops and above 6
    before = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    after = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert before[0].min() == 0.0 and before[1].max() == pytest.approx(6.0, abs=0.05)


def test_a_student_runs_whole_in_xnnpack_in_both_runtimes(tmp_path, student_checkpoint, windows):
    """int8 .tflite in one XNNPACK partition (an int8 AVERAGE_POOL_2D used to split it in two and
    run between them on LiteRT's reference kernels) and int8 throughout (the residual adds used to
    run in float between a DEQUANTIZE and a QUANTIZE), int8 .pte with nothing left outside XNNPACK.
    (fp32 is whole in both; the tiny model's exports above check its .pte.)"""
    from train.models import load_checkpoint

    model = load_checkpoint(student_checkpoint)[0].eval()
    example = torch.from_numpy(windows.parity[:1])
    calib = [torch.from_numpy(w[None]) for w in windows.ptq]
    tfl = T.to_tflite(model, example, tmp_path / "s_int8.tflite", "int8", calib)
    assert tfl.info == {"delegated_subgraphs": 1}, tfl.info
    from edge.backends import load_backend

    ops = [op["op_name"] for op in load_backend(tfl.path)._interp._get_ops_details()]
    # int8 throughout: one QUANTIZE of the float input, no float island (a DEQUANTIZE) inside
    assert ops.count("QUANTIZE") == 1 and "DEQUANTIZE" not in ops and "AVERAGE_POOL_2D" not in ops, ops
    pte = T.to_pte(model, example, tmp_path / "s_int8.pte", "int8", calib)
    assert pte.info["delegated_subgraphs"] == 1 and pte.info["non_delegated"] == {}, pte.info


def test_export_ships_the_counter_chosen_on_a_validation_set(tmp_path, student_checkpoint):
    """--counter-on: the cards carry the threshold choose_counter picks on that set with the float
    model, and say how it was chosen; without it, the counter's defaults."""
    from edge.counter import CounterParams
    from footfall.cli import app
    from tests.fixtures import make_dataset
    from train.evaluate.realeval import choose_counter
    from train.models import load_checkpoint

    val = make_dataset(tmp_path / "val", n_runners=2, seconds=12, seed=4, runner_prefix="val")
    calib = tmp_path / "calib.npy"
    np.save(calib, clicky_logmel(4.0))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32", "--calib", str(calib),
                                   "--out", str(out), "--counter-on", str(val)])
    assert res.exit_code == 0, res.output
    model, meta = load_checkpoint(student_checkpoint)
    params, choice = choose_counter(model, val, 200)
    card = load_verified_card(out / "mobilenetv2_fp32.onnx")
    assert card.counter == params.to_dict() and card.model["counter_chosen_on"]["threshold"] == params.threshold
    assert card.model["counter_chosen_on"]["mae_by_threshold"] == choice["mae_by_threshold"]
    assert card.model["counter_chosen_on"] == choice | {"datasets": card.model["counter_chosen_on"]["datasets"]}
    res = CliRunner().invoke(app, ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32", "--calib", str(calib),
                                   "--out", str(tmp_path / "plain")])
    plain = load_verified_card(tmp_path / "plain" / "mobilenetv2_fp32.onnx")
    assert plain.counter == CounterParams().to_dict() and "counter_chosen_on" not in plain.model
    res = CliRunner().invoke(app, ["export", str(student_checkpoint), "--to", "onnx", "--precision", "fp32", "--calib", str(calib),
                                   "--out", str(tmp_path / "bad"), "--counter-on", str(tmp_path / "nowhere")])
    assert res.exit_code != 0 and "Traceback" not in res.output and "no such dataset folder" in res.output
    assert not (tmp_path / "bad" / "mobilenetv2_fp32.onnx").exists()
