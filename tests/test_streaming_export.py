"""Streaming export: a small untrained streamtcn exported with its state as explicit inputs and
outputs, reloaded through ``edge.backends`` and streamed packet by packet against PyTorch's
``model(whole run)``; ``reset()``; cards with ``state``; a card whose state does not match refused.

fp32 goes through the whole export line (``export_model``: cards, streamed parity). int8 artifacts
are made by the targets directly and carded here by hand: an untrained network's logits cross the
counter's threshold at random, so the count gate of the export says little about the mechanics
these tests check. The .tflite and .pte int8 conversions take 15 to 90 s each (slow).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edge.backends import BackendError, load_backend, load_model
from edge.card import CardError, load_card, sha256_file, write_card
from edge.counter import CounterParams
from edge.golden import click_track
from edge.stream import offline_log_mel
from export import targets as T
from export.parity import FP32_REL_TOL, STREAM_WINDOW_FRAMES, compare, stream_windows
from export.pipeline import ExportSource, Windows, export_model, stream_inputs, stream_step, streams_from_file, torch_stream_logits
from export.targets import ExportError
from tests.edge_fixtures import copy_artifact, onset_artifacts
from train.models import build_model

P = 4  # frames per packet
FORMATS = ("onnx", "tflite", "pte")
INT8_CORR = 0.99  # measured 0.998-0.999 (all three runtimes) on the click track
INT8_MAX_ABS = 1.0  # logits; measured 0.36 (pte, tflite) and 0.49 (onnx), the logits spanning -5..9


@pytest.fixture(scope="module")
def model():
    """An untrained small streamtcn whose logits vary by a few units (its output layer widened:
    at its initialisation they sit within 0.1 of the bias and the counter finds nothing)."""
    torch.manual_seed(0)
    m = build_model("streamtcn", channels=(8, 8, 8), tcn_channels=16, dilations=(1, 2), packet_frames=P).eval()
    with torch.no_grad():
        m.out.weight.normal_(0, 0.5)
    return m


@pytest.fixture(scope="module")
def mel() -> np.ndarray:
    """(64, 1200): 12 s of a click track's log-mel."""
    return offline_log_mel(click_track(12.0, seed=3)[0])


@pytest.fixture(scope="module")
def streams(tmp_path_factory, mel) -> Windows:
    path = tmp_path_factory.mktemp("streams") / "run.npy"
    np.save(path, mel)
    return streams_from_file(path, P)


@pytest.fixture(scope="module")
def reference(model, mel) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(mel[None, None].copy()))[0].numpy()


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, model, streams):
    """The fp32 artifacts of every CPU target through the whole export line, once."""
    out = tmp_path_factory.mktemp("export")
    result = export_model(ExportSource(model, name="stream"), streams, out, targets=FORMATS, precisions=("fp32",))
    return {r.target: r for r in result.reports}


def stream(backend, mel: np.ndarray, packets: int | None = None) -> np.ndarray:
    """The logits of ``mel`` streamed packet by packet from where ``backend``'s state is."""
    n = mel.shape[1] // P if packets is None else packets
    return np.concatenate([backend.run(np.ascontiguousarray(mel[None, None, :, i * P : (i + 1) * P])) for i in range(n)])


def int8_artifact(fmt: str, model, streams, fp32, folder) -> str:
    """The int8 artifact of ``fmt`` made by its target, with a card made from the fp32 one."""
    path = folder / f"stream_int8.{fmt}"
    calib = stream_inputs(model, streams.ptq, streams.ptq_runs)
    example = (torch.from_numpy(streams.parity[:1].copy()), *model.initial_state())
    names = {"state_names": [n for n, _ in model.state_specs()]} if fmt == "onnx" else {}
    getattr(T, f"to_{fmt}")(stream_step(model), example, path, "int8", calib, **names)
    card = dataclasses.replace(load_card(fp32[fmt].artifact), artifact=path.name, precision="int8", sha256=sha256_file(path))
    write_card(card, path)
    return str(path)


def check_int8(path: str, mel, reference) -> None:
    backend, card = load_model(path)
    assert card.streaming and backend.stateful
    y = stream(backend, mel)
    assert np.corrcoef(y, reference)[0, 1] > INT8_CORR
    assert np.abs(y - reference).max() < INT8_MAX_ABS
    backend.reset()
    np.testing.assert_array_equal(stream(backend, mel, 50), y[:50])


# --------------------------------------------------------------------------- the model and the export line


def test_a_streaming_source_takes_its_packet(model):
    source = ExportSource(model, name="stream")
    assert source.streaming and source.window_frames == source.hop_frames == P
    assert source.state_shapes() == [(n, tuple(s)) for n, s in model.state_specs()]
    assert not ExportSource(build_model("fnn")).streaming


def test_streaming_needs_whole_runs(tmp_path, model, mel):
    windows = mel[:, :1200].reshape(64, 6, 200).transpose(1, 0, 2)  # (N, 64, W) windows: not a run
    np.save(tmp_path / "windows.npy", windows)
    with pytest.raises(ExportError, match="whole run"):
        streams_from_file(tmp_path / "windows.npy", P)
    x = np.ascontiguousarray(mel[:, :400].reshape(64, 100, P).transpose(1, 0, 2)[:, None])
    with pytest.raises(ExportError, match="whole runs"):
        export_model(ExportSource(model), Windows(ptq=x, parity=x), tmp_path, targets=("onnx",), precisions=("fp32",))


def test_stream_inputs_are_the_states_the_stream_has(model, streams):
    calib = stream_inputs(model, streams.ptq, streams.ptq_runs, max_inputs=100)
    assert 50 <= len(calib) <= 100 and len(calib[0]) == 1 + len(model.state_specs())
    assert all(not s.any() for s in calib[0][1:])  # the run's first packet: the initial state
    assert calib[-1][2].item() > 0.9  # the band norm's weight late in the run (it starts at 0)
    ref = torch_stream_logits(model, streams.parity, streams.runs)
    assert ref.shape == (len(streams.parity), 1)


def test_streamed_comparison_counts_whole_runs():
    w = STREAM_WINDOW_FRAMES
    track = np.full(2 * w + 7, -5.0)
    track[5 : 2 * w : 9] = 5.0  # a step every 0.36 s, one in the last frame of the first window
    assert track[w - 1] == 5.0
    runs = np.zeros(len(track), int)
    rows, row_runs = stream_windows(track[:, None], runs)
    assert rows.shape == (2, w) and row_runs.tolist() == [0, 0]  # the 7-frame tail left out
    moved = np.full(2 * w + 7, -5.0)  # the runner a frame late from that step on: it is counted in the next window
    moved[5 : w - 1 : 9] = 5.0
    moved[w : 2 * w : 9] = 5.0
    out, _ = stream_windows(moved[:, None], runs)
    p = compare(out, rows, "int8", "litert", runs=row_runs, streamed=True)
    assert p.windows == 2 and p.count_diff_mean == 1.0 and p.count_diff_max == 1.0
    assert compare(rows, rows, "int8", "litert", runs=row_runs, streamed=True).count_diff_max == 0
    with pytest.raises(ValueError, match="run of each window"):
        compare(rows, rows, "int8", "litert", streamed=True)


def test_fp32_artifacts_pass_parity_and_carry_state_in_their_cards(fp32, model):
    specs = model.state_specs()
    for fmt, r in fp32.items():
        assert r.status == "ok", r.line()
        assert r.parity["rel_max_abs"] <= FP32_REL_TOL and r.parity["max_abs"] < 1e-3
        stream_info = r.parity["stream"]
        assert stream_info["packets"] == 300 and stream_info["run_count_diff_max"] == 0
        assert stream_info["run_counts"][0] > 0  # the counter finds events: the count check means something
        card = load_card(r.artifact)
        assert card.streaming and card.state_shapes() == [(n, tuple(s)) for n, s in specs]
        assert card.window_frames == card.hop_frames == P and card.input_shape == [1, 1, 64, P]
        assert not card.low_latency and card.parity["stream"] == stream_info
        assert card.model["params"] == sum(p.numel() for p in model.parameters()) and card.model["macs_per_second"] > 0
        assert card.counter_params() == CounterParams()  # the tracker's defaults (no --counter-on)


def test_onnx_io_names(fp32, model):
    graph = onnx.load(fp32["onnx"].artifact).graph
    names = [n for n, _ in model.state_specs()]
    assert [i.name for i in graph.input] == ["logmel", *names]
    assert [o.name for o in graph.output] == ["logits", *(f"{n}_out" for n in names)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_streams_as_pytorch_and_reset_restarts(fp32, mel, reference, fmt):
    backend, card = load_model(fp32[fmt].artifact)
    assert backend.stateful and [s for _, s in backend.state_shapes] == [s for _, s in card.state_shapes()]
    y = stream(backend, mel)
    assert y.shape == reference.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, reference, rtol=0, atol=1e-3)
    again = stream(backend, mel, 50)  # the state carried on: not the start of the run
    assert np.abs(again - y[:50]).max() > 1e-3
    backend.reset()
    np.testing.assert_allclose(stream(backend, mel, 50), y[:50], rtol=0, atol=1e-6)


def test_load_backend_without_a_card_sees_the_state(fp32, model):
    specs = model.state_specs()
    onnx_backend = load_backend(fp32["onnx"].artifact)
    assert onnx_backend.state_shapes == [(n, tuple(s)) for n, s in specs]  # by the ONNX names
    tflite_backend = load_backend(fp32["tflite"].artifact)
    assert [s for _, s in tflite_backend.state_shapes] == [tuple(s) for _, s in specs]
    with pytest.raises(BackendError, match="expected 1 input and 1 output"):
        load_backend(fp32["onnx"].artifact, state=[])  # told it is windowed


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_a_card_whose_state_does_not_match_is_refused(fp32, tmp_path, fmt):
    path = copy_artifact(Path(fp32[fmt].artifact), tmp_path)
    original = load_card(path)
    state = [dict(s) for s in original.state]
    state[-1] = {"name": state[-1]["name"], "shape": [1, 16, 1, 6]}  # a longer history than the artifact's
    write_card(dataclasses.replace(original, state=state), path)
    with pytest.raises(CardError, match=r"state is .*\[1, 16, 1, 4\]\], its card says .*\[1, 16, 1, 6\]\]"):
        load_model(path)
    write_card(dataclasses.replace(original, state=state[:-1]), path)  # one buffer missing
    with pytest.raises(CardError, match="state"):
        load_model(path)
    write_card(dataclasses.replace(original, state=[]), path)  # a windowed card on a streaming artifact
    with pytest.raises(CardError, match="state"):
        load_model(path)
    write_card(original, path)
    load_model(path)


def test_windowed_artifacts_still_load():
    path = onset_artifacts(kinds=("onnx",))["onnx"]
    backend, card = load_model(path)
    assert not card.streaming and not backend.stateful and backend.state_shapes == []
    x = np.full((1, 1, 64, 200), -7.0, np.float32)
    y = backend.run(x)
    backend.reset()  # a no-op
    assert y.shape == (50,) and np.array_equal(backend.run(x), y)


# --------------------------------------------------------------------------- int8


@pytest.fixture(scope="module")
def onnx_int8(tmp_path_factory, model, streams, fp32) -> str:
    return int8_artifact("onnx", model, streams, fp32, tmp_path_factory.mktemp("onnx_int8"))


def test_int8_onnx_streams_close_to_pytorch(onnx_int8, mel, reference):
    ops = {n.op_type for n in onnx.load(onnx_int8).graph.node}
    assert "QuantizeLinear" in ops
    check_int8(onnx_int8, mel, reference)


def test_int8_onnx_keeps_the_band_norm_and_both_ends_float(onnx_int8, model, mel):
    """ORT quantized the band norm's MatMul (its averaging kernel as a weight, its output to uint8)
    and the running mean carried the error on; the first conv's input and the logits were rounded
    too. They stay float, and a conv's history buffer shares one scale with the frames joined to it."""
    graph = onnx.load(onnx_int8).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}

    def rounded(tensor: str) -> bool:  # read through a DequantizeLinear
        return tensor in producer and producer[tensor].op_type == "DequantizeLinear"

    def qparams(node) -> tuple[float, int]:
        return float(inits[node.input[1]]), int(inits[node.input[2]])

    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    assert matmul.input[0] == "logmel" and inits[matmul.input[1]].dtype == np.float32
    for name in ("norm_sum_out", "norm_weight_out", "block0_out"):
        assert not rounded(producer[name].input[0])
    convs = [n for n in graph.node if n.op_type == "Conv"]  # in graph order
    head = producer["logits"]
    while head.op_type != "Conv":
        head = producer[head.input[0]]
    assert convs[0] is not head and not any(map(rounded, convs[0].input))
    assert not rounded(head.input[1]) and not any(head.output[0] in n.input for n in graph.node if n.op_type == "QuantizeLinear")
    assert all(rounded(c.input[1]) for c in convs[1:-1]) and convs[-1] is head  # the rest: int8 weights
    cats = [n for n in graph.node if n.op_type == "Concat" and rounded(n.input[0])]
    assert len(cats) == len(model.state_specs()) - 3  # every state but the band norm's two and the first conv's history
    for cat in cats:
        q = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == cat.output[0])
        assert {qparams(producer[i]) for i in cat.input} == {qparams(q)}

    # streamed: the band norm's state and the first conv's history are PyTorch's, float for float
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_int8, providers=["CPUExecutionProvider"])
    names = [n for n, _ in model.state_specs()]
    ours, theirs = [s.numpy() for s in model.initial_state()], model.initial_state()
    with torch.no_grad():
        for i in range(mel.shape[1] // P):
            x = np.ascontiguousarray(mel[None, None, :, i * P : (i + 1) * P])
            ours = sess.run([f"{n}_out" for n in names], dict(zip(["logmel", *names], [x, *ours])))
            _, *theirs = model.step(torch.from_numpy(x), *theirs)
    for name, a, b in list(zip(names, ours, theirs))[:3]:
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_least_error_range_beats_min_max():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 20000), rng.exponential(3, 200)])  # a long thin tail

    def mse(lo: float, hi: float) -> float:
        scale = (hi - lo) / 255
        zero = np.round(-lo / scale)
        return float((((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale - x) ** 2).mean())

    lo, hi = T._least_error_range(x)
    assert x.min() <= lo < 0 < hi < x.max() and mse(lo, hi) < mse(x.min(), x.max())
    assert T._least_error_range(np.maximum(x, 0))[0] == 0.0  # a ReLU's output keeps its zero at 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tflite", "pte"])
def test_int8_streams_close_to_pytorch(tmp_path, model, streams, fp32, mel, reference, fmt):
    path = int8_artifact(fmt, model, streams, fp32, tmp_path)
    if fmt == "tflite":  # int8 state tensors, quantized and carried by the backend
        backend = load_backend(path)
        carried_raw = [convert is None and value.dtype.kind == "i"  # an int8 buffer carried as the runtime gives it
                       for (_, _, convert), (_, value) in zip(backend._carry, backend._initial)]
        assert backend._in_q is None and backend._out_q is not None and any(carried_raw)
    check_int8(path, mel, reference)
