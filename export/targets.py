"""One function per target: a PyTorch step-onset model -> a saved artifact (contract 3 in, file out).

``to_pte``, ``to_tflite``, ``to_onnx`` each take a model, one example input ``(1, 1, 64, T)``
(it fixes the artifact's input length), a path and a precision, and write the file. A streaming
model is exported as its step (``train.models.streaming.StreamStep``): the example is then a tuple
``(packet, *state)`` and the artifact has one input per element and the outputs ``(logits,
*new state)``, so that the state lives outside the network and the caller carries it:

- ``fp32``: the float model, exported as is.
- ``int8``: a float model is post-training quantized (PT2E, or ORT static QDQ for ONNX) with
  PTQ calibration windows (``ptq_windows``), or -- when ``model`` already is a quantized PT2E graph (QAT
  converted, see :func:`is_quantized_graph`) -- that graph is lowered as it is.

Each returns an :class:`Exported` (the path plus what a reader needs to know about the
lowering, e.g. XNNPACK delegation counts). Nothing here runs an artifact: see
``export/runtimes.py``. The QNN context binary is compiled by ``export/qnn_worker.py`` in its
own virtual environment (see :func:`to_qnn_context`).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from export.quiet import converting
from train.quant.step_quant import _recurrences, step_quantizer, xnnpack_quantizer  # noqa: F401  (the targets' int8 schemes)

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
ONNX_OPSET = 18  # pinned: QDQ per-channel needs >= 13; 18 is what ORT 1.31 and the QNN EP 2.7 both run
ONNX_INPUT, ONNX_OUTPUT = "logmel", "logits"

# Qualcomm SoCs the NPU target compiles for: name -> (QNN soc_model id, HTP architecture)
QNN_SOCS: dict[str, tuple[int, int]] = {
    "SM8550": (43, 73),  # Snapdragon 8 Gen 2
    "SM8650": (57, 75),  # Snapdragon 8 Gen 3
    "SM8750": (69, 79),  # Snapdragon 8 Elite
}
DEFAULT_QNN_SOCS: tuple[str, ...] = ("SM8650", "SM8750")
QNN_WHEEL = "onnxruntime-qnn==2.7.0"
QNN_VENV_HINT = f"make venv-qnn  (= python3 -m venv .venv-qnn && .venv-qnn/bin/pip install {QNN_WHEEL} numpy==2.4.6)"

REPO = Path(__file__).resolve().parents[1]
QNN_WORKER = Path(__file__).resolve().parent / "qnn_worker.py"

PTQ_BATCH = 32  # windows per calibration forward pass
# windows (N, 1, 64, T); for a streaming model, recorded inputs (packet, *state) of its step
PtqWindows = np.ndarray | torch.Tensor | Sequence[torch.Tensor] | Sequence[tuple[torch.Tensor, ...]] | None
Example = torch.Tensor | tuple[torch.Tensor, ...]  # one window, or a streaming step's (packet, *state)


class ExportError(RuntimeError):
    """An export step failed; the message is one line naming the target and the cause."""


class BackendMissing(ExportError):
    """A target's SDK or runtime is not installed here; the message says how to get it."""


@dataclass
class Exported:
    path: Path
    format: str  # pte | tflite | onnx
    precision: str  # fp32 | int8
    backend: str  # xnnpack | litert | onnxruntime | qnn-htp:<SOC>
    quantization: str = "none"  # none | ptq | qat
    info: dict = field(default_factory=dict)  # target specifics: delegation, I/O dtypes, SDK version


# ----------------------------------------------------------------------------- helpers


def _check_example(example: torch.Tensor) -> torch.Tensor:
    if example.ndim != 4 or example.shape[0] != 1 or example.shape[1] != 1:
        raise ExportError(f"example input must be (1, 1, n_mels, T), got {tuple(example.shape)}")
    # A fresh, densely strided copy. Windows stacked in numpy and given their channel axis with
    # `[:, None]` carry stride 0 on that size-1 axis; numpy's ascontiguousarray and torch's
    # .contiguous() both call such an array contiguous and keep the 0, torch.export records it,
    # and ExecuTorch's emitter then refuses the input ("0 in strides is not supported").
    return example.detach().float().clone(memory_format=torch.contiguous_format)


def _check_inputs(example: Example) -> tuple[torch.Tensor, ...]:
    """The artifact's sample inputs as a tuple: ``(window,)``, or a streaming step's ``(packet, *state)``."""
    if isinstance(example, torch.Tensor):
        return (_check_example(example),)
    if not example:
        raise ExportError("example inputs are empty")
    packet, *state = example
    return (_check_example(packet), *(s.detach().float().clone(memory_format=torch.contiguous_format) for s in state))


def ptq_inputs(ptq_windows: PtqWindows, example: Example) -> list[tuple[torch.Tensor, ...]]:
    """PTQ calibration inputs as a list of input tuples shaped as ``example`` (it alone when None).

    Windows become ``(window,)``; a streaming step's recorded ``(packet, *state)`` tuples stay tuples.
    """
    inputs = _check_inputs(example)
    if len(inputs) == 1:
        return [(w,) for w in ptq_batches(ptq_windows, inputs[0])]
    if ptq_windows is None:
        return [inputs]
    calib = [tuple(t.detach().float().reshape(e.shape).contiguous() for t, e in zip(inp, inputs, strict=True))
             for inp in ptq_windows]
    if not calib:
        raise ExportError("calibration set is empty")
    return calib


def ptq_batches(ptq_windows: PtqWindows, example: torch.Tensor) -> list[torch.Tensor]:
    """PTQ calibration windows as a list of (1, 1, 64, T) tensors (the example alone when None)."""
    if ptq_windows is None:
        return [example]
    if isinstance(ptq_windows, np.ndarray):
        ptq_windows = torch.from_numpy(np.ascontiguousarray(ptq_windows, dtype=np.float32))
    if isinstance(ptq_windows, torch.Tensor):
        if ptq_windows.ndim == 3:  # (N, 64, T)
            ptq_windows = ptq_windows[:, None]
        ptq_windows = list(ptq_windows.split(1))
    batches = [c.detach().float().reshape(1, *example.shape[1:]).contiguous() for c in ptq_windows]
    if not batches:
        raise ExportError("calibration set is empty")
    return batches


def is_quantized_graph(model: torch.nn.Module) -> bool:
    """True for a PT2E-converted graph (QAT or PTQ): it holds quantize/dequantize ops."""
    if not isinstance(model, torch.fx.GraphModule):
        return False
    return any(
        n.op == "call_function" and "quantized_decomposed" in str(n.target) for n in model.graph.nodes
    )


def _eval(model: torch.nn.Module) -> torch.nn.Module:
    """eval() for eager modules; PT2E graphs refuse .eval() and need their own switch."""
    if isinstance(model, torch.fx.GraphModule):
        from torchao.quantization.pt2e import move_exported_model_to_eval

        model = move_exported_model_to_eval(model)
        for module in model.modules():  # the flag converters read (.eval() itself is disallowed here)
            module.training = False
        return model
    return model.eval()


def _export(model: torch.nn.Module, example: Example) -> torch.export.ExportedProgram:
    """torch.export at the artifact's fixed input shape (a QAT graph's dynamic batch becomes 1)."""
    return torch.export.export(_eval(model), _check_inputs(example), strict=False)


def ptq(model: torch.nn.Module, example: Example, ptq_windows: PtqWindows, quantizer) -> torch.fx.GraphModule:
    """PT2E post-training quantization: export -> prepare -> calibrate -> convert.

    The graph is captured with a dynamic batch so that calibration runs in batches of
    PTQ_BATCH windows (one histogram-observer update per batch). Weights stay
    as float + quantize nodes (``fold_quantize=False``): LiteRT needs them so; XNNPACK
    lowering folds them itself (:func:`fold_weight_quantize`). A streaming step is calibrated
    on recorded ``(packet, *state)`` inputs, batched the same way.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    inputs = _check_inputs(example)
    calib = ptq_inputs(ptq_windows, inputs)
    if len(inputs) > 1:  # a streaming step
        quantizer = step_quantizer(quantizer)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        graph = torch.export.export(
            _eval(model), tuple(t.expand(2, *t.shape[1:]).contiguous() for t in inputs),
            dynamic_shapes=tuple({0: batch} for _ in inputs), strict=False,
        ).module()
        chunk = PTQ_BATCH
    except Exception:  # a model that pins its batch size: calibrate window by window
        graph, chunk = _export(model, inputs).module(), 1
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calib), chunk):
            prepared(*(torch.cat(part) for part in zip(*calib[i : i + chunk])))
    return _eval(convert_pt2e(prepared, fold_quantize=False))


def litert_quantizer():
    from litert_torch.quantize import pt2e_quantizer as pq

    return pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))


_ONNX_STATE_MOVES = {"Concat", "Slice", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Expand"}


def onnx_recurrences(model, state_names: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes that compute a new state from its old value by arithmetic (see
    :func:`step_quantizer`): static quantization leaves them in float."""
    edges: dict = {}  # ("t", tensor) -> the nodes reading it; ("n", node) -> the tensors it writes
    for node in model.graph.node:
        for name in node.input:
            edges.setdefault(("t", name), []).append(("n", node.name))
        edges[("n", node.name)] = [("t", name) for name in node.output]
    op_of = {node.name: node.op_type for node in model.graph.node}
    found = _recurrences(edges, [("t", n) for n in state_names], [("t", f"{n}_out") for n in state_names],
                         lambda v: v[0] == "t" or op_of[v[1]] in _ONNX_STATE_MOVES)
    return sorted(name for kind, name in found if kind == "n")


def onnx_float_nodes(model, state_names: Sequence[str]) -> list[str]:
    """Names of the nodes of a streaming step's ONNX graph that static quantization leaves in float:

    - the state recurrences (:func:`onnx_recurrences`);
    - the input side, every node from the packet input up to and including the first conv on each
      path. The band norm is there: the packet's share of its running sum is a MatMul with a constant
      L x L averaging kernel, which ORT quantized as a weight (7 bits, about 1 % off per tap) and whose
      output it rounded to uint8; both errors were carried on in the running mean, and the bundled
      student's window count difference was 0.13 against the gate's 0.10. Then the first conv and
      its history buffer: the normalised log-mel reaches it unrounded;
    - the output side: the conv that writes the logits (and any reshape after it): a uint8 logit
      moved in steps of about 0.1 around the counter's threshold.

    Together about 8 % of the bundled student's MACs per packet."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {name: node for node in model.graph.node for name in node.output}
    front, todo = set(), [ONNX_INPUT]
    while todo:
        for node in consumers.get(todo.pop(), ()):
            if node.name not in front:
                front.add(node.name)
                if node.op_type != "Conv":
                    todo.extend(node.output)
    found = front | set(onnx_recurrences(model, state_names))
    node = producer.get(ONNX_OUTPUT)
    while node is not None:
        found.add(node.name)
        node = producer.get(node.input[0]) if node.op_type in _ONNX_STATE_MOVES else None
    return sorted(found)


def fold_weight_quantize(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Copy of ``graph`` with quantize ops on constants folded into int8 weights (as XNNPACK wants)."""
    from torchao.quantization.pt2e.constant_fold import constant_fold
    from torchao.quantization.pt2e.quantize_pt2e import _quant_node_constraint

    graph = copy.deepcopy(graph)
    constant_fold(graph, _quant_node_constraint)
    return graph


_DEQUANT_WEIGHT_OPS = ("dequantize_per_channel", "dequantize_per_tensor")


def _get_attr(graph: torch.fx.GraphModule, target: str):
    """The tensor a get_attr node names (targets may be dotted: "features.0.weight")."""
    return functools.reduce(getattr, target.split("."), graph)


def _set_attr(graph: torch.fx.GraphModule, target: str, value: torch.Tensor) -> None:
    *path, name = target.split(".")
    setattr(functools.reduce(getattr, path, graph), name, value)


def _const(graph: torch.fx.GraphModule, arg):
    """A node argument's value: scales and zero points are graph constants or literals."""
    return _get_attr(graph, arg.target) if isinstance(arg, torch.fx.Node) else arg


def unfold_weight_quantize(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Copy of ``graph`` where int8 weight constants become float + quantize (as LiteRT wants).

    ``convert_pt2e`` folds weights to int8 by default; LiteRT's converter rejects a plain int8
    tensor entering ``dequantize``. quantize(dequantize(q)) == q, so this is exact.
    """
    graph = copy.deepcopy(graph)
    qd = torch.ops.quantized_decomposed
    requantized: dict[str, torch.fx.Node] = {}  # weight name -> its new quantize node (DQ may be duplicated)
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or not any(op in str(node.target) for op in _DEQUANT_WEIGHT_OPS):
            continue
        src = node.args[0]
        if src.op != "get_attr":
            continue
        if src.target not in requantized:
            q = _get_attr(graph, src.target)
            if q.dtype not in (torch.int8, torch.uint8):
                continue
            if "per_channel" in str(node.target):
                scales, zero_points, axis = _const(graph, node.args[1]), _const(graph, node.args[2]), node.args[3]
                shape = [1] * q.ndim
                shape[axis] = -1
                w = (q.float() - zero_points.view(shape).float()) * scales.view(shape).float()
                qop = qd.quantize_per_channel.default
            else:
                w = (q.float() - _const(graph, node.args[2])) * _const(graph, node.args[1])
                qop = qd.quantize_per_tensor.default
            _set_attr(graph, src.target, torch.nn.Parameter(w, requires_grad=False))
            with graph.graph.inserting_before(node):
                requantized[src.target] = graph.graph.call_function(qop, (src, *node.args[1:]))
        node.replace_input_with(src, requantized[src.target])
    changed = bool(requantized)
    if changed:
        graph.graph.lint()
        graph.recompile()
    return graph


def dequantized_float_edges(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``graph`` with every float edge between two quantized ops routed through its Q/DQ pair.

    litert-torch's PT2E annotator leaves the edge from one residual add (or a ReLU) to the next
    add in float: the value is quantized for its other users, but the add reads the float tensor.
    The converter then keeps those adds in float with a DEQUANTIZE before and a QUANTIZE after
    (12 float adds, 30 converts in the shipped student). Reading the same value through its
    existing Q/DQ pair, as every other user does, makes them int8 adds; the numbers are those of
    int8 everywhere else in the graph.
    """
    qd = torch.ops.quantized_decomposed
    quant, dequant = qd.quantize_per_tensor.default, qd.dequantize_per_tensor.default
    changed = 0
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.add.Tensor:
            continue
        for arg in [a for a in node.args if isinstance(a, torch.fx.Node)]:
            if arg.op != "call_function" or arg.target in (quant, dequant):
                continue
            dq = next((d for q in arg.users if q.target == quant for d in q.users if d.target == dequant), None)
            if dq is not None:
                node.replace_input_with(arg, dq)
                changed += 1
    if changed:
        graph.graph.lint()
        graph.recompile()
    return graph


def _graph_for(target: str, model, example: Example, precision: Precision, ptq_windows: PtqWindows,
               quantizer_factory) -> tuple[torch.nn.Module, str]:
    """The graph a target lowers and its quantization: fp32, the float model as it is; int8, the given
    quantized graph (``qat``) or PTQ with the target's quantizer (``ptq``)."""
    if precision != "int8":
        if is_quantized_graph(model):
            raise ExportError(f"{target}: fp32 asked for, but the model is a quantized graph")
        return model, "none"
    if is_quantized_graph(model):
        return model, "qat"
    return ptq(model, example, ptq_windows, quantizer_factory()), "ptq"


# ----------------------------------------------------------------------------- ExecuTorch


def _delegation(graph_module: torch.fx.GraphModule) -> dict:
    """Operator counts inside XNNPACK subgraphs and left on the portable CPU kernels."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    delegated, outside = {}, {}
    for op, b in info.delegation_by_operator.items():
        if op == "getitem":  # tuple plumbing around each delegate call, not a real op
            continue
        if b.delegated:
            delegated[op] = b.delegated
        if b.non_delegated:
            outside[op] = b.non_delegated
    return {
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "delegated_ops": sum(delegated.values()),
        "non_delegated_ops": sum(outside.values()),
        "non_delegated": outside,  # op -> count; empty when the whole network runs in XNNPACK
    }


@converting()  # their chatter would bury the export report (export.quiet)
def to_pte(model: torch.nn.Module, example: Example, path: str | Path, precision: Precision = "fp32",
           ptq_windows: PtqWindows = None) -> Exported:
    """ExecuTorch program for XNNPACK: export -> (int8: PT2E) -> to_edge_transform_and_lower -> .pte.

    A streaming step's inputs and outputs keep their order (the runtime addresses them by position).
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    example, path = _check_inputs(example), Path(path)
    model, quantization = _graph_for("to_pte", model, example, precision, ptq_windows, xnnpack_quantizer)
    if precision == "int8":
        model = fold_weight_quantize(model)
    edge = to_edge_transform_and_lower(_export(model, example), partitioner=[XnnpackPartitioner()])
    info = _delegation(edge.exported_program().graph_module)
    program = edge.to_executorch()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(program.buffer)
    return Exported(path, "pte", precision, "xnnpack", quantization, info)


# ----------------------------------------------------------------------------- LiteRT


@converting()  # their chatter would bury the export report (export.quiet)
def to_tflite(model: torch.nn.Module, example: Example, path: str | Path, precision: Precision = "fp32",
              ptq_windows: PtqWindows = None) -> Exported:
    """LiteRT flatbuffer via litert-torch; int8 with its PT2E quantizer (int8 I/O tensors).

    A QAT graph is converted as it is (weights unfolded first, as the converter needs). A streaming
    step's tensors are named ``args_<i>`` and ``output_<i>`` in its signature, in argument and result
    order (the backend maps them by those names; the interpreter's tensor list may be in another order).
    """
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    example, path = _check_inputs(example), Path(path)
    model, quantization = _graph_for("to_tflite", model, example, precision, ptq_windows, litert_quantizer)
    quant_config = None
    if precision == "int8":
        model = dequantized_float_edges(unfold_weight_quantize(model))
        # tells the converter to turn the graph's Q/DQ pairs into static int8 kernels
        quant_config = QuantConfig(pt2e_quantizer=litert_quantizer())
    edge_model = litert_torch.convert(_eval(model), example, quant_config=quant_config)
    path.parent.mkdir(parents=True, exist_ok=True)
    edge_model.export(str(path))
    return Exported(path, "tflite", precision, "litert", quantization, litert_delegation(path))


def litert_delegation(path: str | Path) -> dict:
    """How LiteRT's default XNNPACK delegate takes the model: ``delegated_subgraphs`` is the
    number of XNNPACK partitions (1: the whole graph runs in XNNPACK; each extra partition means
    ops between them run on LiteRT's reference kernels, with a hand-over both ways)."""
    from edge.backends import load_backend

    ops = load_backend(path)._interp._get_ops_details()
    return {"delegated_subgraphs": sum(op["op_name"] == "DELEGATE" for op in ops)}


# ----------------------------------------------------------------------------- ONNX


def onnx_io_names(state_names: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(input names, output names): ``logmel`` then each state; ``logits`` then each ``<state>_out``."""
    return [ONNX_INPUT, *state_names], [ONNX_OUTPUT, *(f"{n}_out" for n in state_names)]


def _onnx_export(model: torch.nn.Module, example: Example, path: Path, state_names: Sequence[str] = ()) -> None:
    """torch.onnx.export (dynamo) at the pinned opset, weights inside the file."""
    import contextlib
    import io

    example = _check_inputs(example)
    if len(state_names) != len(example) - 1:
        raise ExportError(f"to_onnx: {len(example) - 1} state input(s) but {len(state_names)} state name(s)")
    input_names, output_names = onnx_io_names(state_names)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates each stage on stdout
        torch.onnx.export(
            _export(model, example),
            example,
            str(path),
            dynamo=True,
            opset_version=ONNX_OPSET,
            external_data=False,
            input_names=input_names,
            output_names=output_names,
            verbose=False,
        )


class _Windows:
    """ORT CalibrationDataReader over input tuples (a window, or a step's packet and state; duck-typed:
    get_next/rewind)."""

    def __init__(self, inputs: list[tuple[torch.Tensor, ...]], names: Sequence[str] = (ONNX_INPUT,)) -> None:
        self.inputs = [tuple(t.numpy() for t in inp) for inp in inputs]
        self.names = list(names)
        self.rewind()

    def get_next(self):
        inp = next(self._it, None)
        return None if inp is None else dict(zip(self.names, inp, strict=True))

    def rewind(self) -> None:
        self._it = iter(self.inputs)


def batchnorm_to_affine(src: Path, dst: Path) -> int:
    """Rewrite inference BatchNormalization nodes as Mul + Add with folded constants.

    torch.onnx fuses BN into a preceding conv; a standalone BN (e.g. a student's input
    normalisation over mel bands) stays. The QNN HTP backend ran such a node as
    ``scale * x + bias`` without its running mean/variance (a constant output, on QNN 2.51),
    so the QNN path folds them first: y = x * s + t, s = scale / sqrt(var + eps),
    t = bias - mean * s. Returns the number of nodes rewritten.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    nodes, rewritten = [], 0
    for node in model.graph.node:
        names = list(node.input)
        if node.op_type != "BatchNormalization" or len(node.output) != 1 or not all(n in inits for n in names[1:5]):
            nodes.append(node)
            continue
        scale, bias, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in names[1:5])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        s = scale / np.sqrt(var + eps)
        t = bias - mean * s
        stem = node.output[0]
        shape = (-1, 1, 1)  # channels first, (N, C, H, W): broadcast over H and W
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(s.reshape(shape).astype(np.float32), f"{stem}_bn_scale"),
                numpy_helper.from_array(t.reshape(shape).astype(np.float32), f"{stem}_bn_shift"),
            ]
        )
        nodes.append(helper.make_node("Mul", [names[0], f"{stem}_bn_scale"], [f"{stem}_bn_scaled"], name=f"{stem}_bn_mul"))
        nodes.append(helper.make_node("Add", [f"{stem}_bn_scaled", f"{stem}_bn_shift"], [stem], name=f"{stem}_bn_add"))
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return rewritten


def saturating_clips_to_relu(src: Path, dst: Path) -> int:
    """Rewrite ``Clip(min=0, max=hi)`` nodes as ``Relu`` where every consumer is a QuantizeLinear
    whose largest representable value is <= hi. Returns the number of nodes rewritten.

    Exact: the quantizer saturates at that value anyway, so Q(clip(x, 0, hi)) == Q(relu(x)).
    Why: the PT2E XNNPACK quantizer gives a ReLU6 the quantization of its input, a range that
    reaches below zero, and the QNN HTP backend (QNN 2.51 via onnxruntime-qnn 2.7) drops such a
    Clip entirely when ``hi`` is at or above the top of that range, negative values included
    (the bundled student's HTP context missed its parity limit by 4x because of it). A Relu it runs.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def top_of(q) -> float | None:
        """Largest real value a QuantizeLinear can represent (per-tensor only), or None."""
        if len(q.input) < 2 or q.input[1] not in values:
            return None
        scale = values[q.input[1]]
        zp = values.get(q.input[2]) if len(q.input) > 2 and q.input[2] else np.zeros((), np.uint8)
        if zp is None or scale.size != 1 or zp.size != 1:
            return None
        return float((np.iinfo(zp.dtype).max - int(zp)) * float(scale))

    outputs = {o.name for o in model.graph.output}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Clip" or len(node.input) < 3 or not all(n in values for n in node.input[1:3]):
            continue
        lo, hi = float(values[node.input[1]]), float(values[node.input[2]])
        qs = consumers.get(node.output[0], [])
        if lo != 0.0 or not qs or any(q.op_type != "QuantizeLinear" for q in qs) or node.output[0] in outputs:
            continue
        tops = [top_of(q) for q in qs]
        if any(t is None or t > hi for t in tops):
            continue
        node.op_type = "Relu"
        del node.input[1:]
        rewritten += 1
    onnx.save(model, str(dst))
    return rewritten


def _least_error_range(values: np.ndarray, levels: int = 255, bins: int = 1024, steps: int = 41) -> tuple[float, float]:
    """The ``[lo, hi]`` (0 inside) of an asymmetric ``levels + 1``-step quantizer with the least
    squared error on ``values``: the observed range, each end pulled in to 20-100 % of itself.
    A histogram stands in for the values."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if hi <= lo:
        return lo, hi
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    x = (edges[:-1] + edges[1:]) / 2
    pull = np.linspace(0.2, 1.0, steps)
    his = (hi * pull if hi > 0 else np.zeros(1))[:, None]
    best = (np.inf, lo, hi)
    for low in lo * pull if lo < 0 else (0.0,):
        scale = (his - low) / levels
        zero = np.round(-low / scale)
        err = (((np.clip(np.round(x / scale) + zero, 0, levels) - zero) * scale - x) ** 2) @ counts
        i = int(np.argmin(err))
        if err[i] < best[0]:
            best = (float(err[i]), float(low), float(his[i, 0]))
    return best[1], best[2]


def activation_ranges(model, inputs: list[tuple[torch.Tensor, ...]], input_names: Sequence[str],
                      float_nodes: Sequence[str] = ()) -> dict[str, tuple[float, float]]:
    """Quantization range of every float tensor of ``model`` (inputs included) run on ``inputs``, as
    the least squared error range (what PT2E's histogram observer aims at; min and max let a few
    outliers widen the step of every value). A concat outside ``float_nodes`` gives its range to its
    inputs: a conv's history buffer and the new frames joined to it then share one scale and zero
    point (as the PT2E paths share them), with no second rounding between them."""
    import onnx
    import onnxruntime as ort

    model = copy.deepcopy(model)
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in node.output if t not in outputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every tensor as the graph names it
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    seen: dict[str, list[np.ndarray]] = {}
    for inp in inputs:
        feed = {n: t.numpy() for n, t in zip(input_names, inp, strict=True)}
        for name, value in [*zip(names, sess.run(names, feed)), *feed.items()]:
            if isinstance(value, np.ndarray) and value.dtype == np.float32:
                seen.setdefault(name, []).append(value.ravel())
    ranges = {name: _least_error_range(np.concatenate(v)) for name, v in seen.items()}
    skip = set(float_nodes)
    for node in model.graph.node:
        if node.op_type == "Concat" and node.name not in skip and node.output[0] in ranges:
            ranges.update((name, ranges[node.output[0]]) for name in node.input if name in ranges)
    return ranges


def quantize_onnx(
    float_onnx: Path, path: Path, windows: list[torch.Tensor] | list[tuple[torch.Tensor, ...]], for_qnn: bool = False,
    state_names: Sequence[str] = (),
) -> None:
    """ORT static QDQ quantization with calibration windows (or a streaming step's recorded inputs).

    CPU: uint8 activations and per-channel int8 weights in 7 bits (U8S8, ``reduce_range``). ORT's
    x86 kernels multiply uint8 by int8 (VPMADDUBSW, VPDPBUSD with VNNI); with int8 activations
    (S8S8) the shipped student's architecture ran at 0.7x the speed of its fp32 graph on an AVX-512
    VNNI CPU, with U8S8 at 1.1x. The 7-bit weights keep the pairwise products of VPMADDUBSW inside int16 on CPUs
    without VNNI, where 8-bit weights could saturate. QNN HTP: ORT's QNN config (uint8
    activations, per-channel int8 weights) for the NPU's kernels.

    A streaming step (``state_names``) keeps :func:`onnx_float_nodes` in float and takes its
    activation ranges from :func:`activation_ranges` (least squared error, each conv's history
    buffer on one scale) instead of the calibration's min and max. The bundled student's int8 step
    ran at 0.98-1.01x the speed of its fp32 one (one thread, 160-ms packet, AVX-512 VNNI): at about
    1 MMAC a call, ORT's cost per node, not the arithmetic, sets the time.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        if for_qnn:
            folded = Path(tmp) / "folded.onnx"
            batchnorm_to_affine(float_onnx, folded)
            float_onnx = folded
        # symbolic shape inference trips on some Cnn6 exports; the shapes here are static anyway
        quant_pre_process(str(float_onnx), str(pre), skip_symbolic_shape=True)
        inputs = [w if isinstance(w, tuple) else (w,) for w in windows]
        reader = _Windows(inputs, onnx_io_names(state_names)[0])
        if for_qnn:
            from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

            config = get_qnn_qdq_config(
                str(pre), reader, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True
            )
            quantize(str(pre), str(path), config)
        else:
            import onnx

            exclude, extra = None, {}
            if state_names:
                graph = onnx.load(str(pre))
                exclude = onnx_float_nodes(graph, state_names)
                ranges = activation_ranges(graph, inputs, onnx_io_names(state_names)[0], exclude)
                extra["TensorQuantOverrides"] = {
                    name: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for name, (lo, hi) in ranges.items()
                }
            quantize_static(
                str(pre),
                str(path),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=exclude,
                extra_options=extra,
            )


@converting()  # their chatter would bury the export report (export.quiet)
def to_onnx(
    model: torch.nn.Module,
    example: Example,
    path: str | Path,
    precision: Precision = "fp32",
    ptq_windows: PtqWindows = None,
    for_qnn: bool = False,
    state_names: Sequence[str] = (),
) -> Exported:
    """ONNX at opset ONNX_OPSET; int8 is QDQ: ORT static quantization, or the QAT graph's own Q/DQ.

    ``for_qnn`` picks the QDQ scheme the Qualcomm HTP wants (input of :func:`to_qnn_context`).
    ``state_names`` name a streaming step's state inputs (and ``<name>_out`` its outputs), in order.
    """
    example, path = _check_inputs(example), Path(path)
    if precision == "fp32" or is_quantized_graph(model):
        if precision == "fp32" and is_quantized_graph(model):
            raise ExportError("to_onnx: fp32 asked for, but the model is a quantized graph")
        _onnx_export(model, example, path, state_names)
        quantization = "qat" if precision == "int8" else "none"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            float_onnx = Path(tmp) / "float.onnx"
            _onnx_export(model, example, float_onnx, state_names)
            quantize_onnx(float_onnx, path, ptq_inputs(ptq_windows, example), for_qnn=for_qnn, state_names=state_names)
        quantization = "ptq"
    if for_qnn:
        saturating_clips_to_relu(path, path)
    import onnx

    ops = sorted({n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node})
    return Exported(path, "onnx", precision, "onnxruntime", quantization, {"opset": ONNX_OPSET, "ops": ops})


# ----------------------------------------------------------------------------- Qualcomm HTP


def qnn_python() -> Path:
    """The interpreter of the QNN venv: $FOOTFALL_QNN_PYTHON, else <repo>/.venv-qnn/bin/python."""
    return Path(os.environ.get("FOOTFALL_QNN_PYTHON") or REPO / ".venv-qnn" / "bin" / "python")


def run_qnn_worker(args: list[str], timeout: float = 600) -> dict:
    """Run ``export/qnn_worker.py`` in the QNN venv; returns its JSON answer (last stdout line)."""
    python = qnn_python()
    if not python.exists():
        raise BackendMissing(f"qnn: no QNN Python at {python}; install it with: {QNN_VENV_HINT}")
    try:
        proc = subprocess.run([str(python), str(QNN_WORKER), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ExportError(f"qnn worker {args[0]} did not finish in {timeout:.0f} s") from e
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    answer = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or not answer.get("ok"):
        reason = answer.get("error") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if answer.get("missing"):
            raise BackendMissing(f"qnn: {reason}; install it with: {QNN_VENV_HINT}")
        raise ExportError(f"qnn worker {args[0]} failed: {reason}")
    return answer


def to_qnn_context(qdq_onnx: str | Path, path: str | Path, soc: str) -> Exported:
    """Ahead-of-time HTP context binary for ``soc``, saved as an ONNX EPContext model.

    The QDQ model is compiled by the QNN execution provider (onnxruntime-qnn, QNN SDK inside
    the wheel) with the EP context cache on; the binary is embedded in ``path``.
    """
    soc = soc.upper()
    if soc not in QNN_SOCS:
        raise ExportError(f"qnn: unknown SoC {soc!r} (known: {', '.join(QNN_SOCS)})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soc_model, htp_arch = QNN_SOCS[soc]
    t0 = time.perf_counter()
    answer = run_qnn_worker(
        ["compile", "--model", str(qdq_onnx), "--out", str(path), "--soc-model", str(soc_model), "--htp-arch", str(htp_arch)]
    )
    info = {
        "soc": soc,
        "soc_model": soc_model,
        "htp_arch": f"v{htp_arch}",
        "qnn_sdk": answer.get("qnn_sdk"),
        "onnxruntime_qnn": answer.get("onnxruntime_qnn"),
        "compile_s": round(time.perf_counter() - t0, 2),
        "simulator": answer.get("simulator", True),
    }
    return Exported(path, "onnx", "int8", f"qnn-htp:{soc}", "ptq", info)


def qnn_available() -> str | None:
    """None when the QNN target can run here, else a one-line reason with the fix."""
    try:
        run_qnn_worker(["probe"], timeout=120)
    except ExportError as e:
        return str(e)
    return None
