"""Quantization-aware training of the streaming student, on the graph that ships: its step.

A streaming student ships as its step (``train.models.streaming.StreamStep``: a packet of log-mel
frames and the state buffers in, the packet's logits and the new buffers out), so that is what is
quantized and trained here, not the whole-window forward:

1. the float student's BatchNorms are folded into their convs (eval statistics: a packet of four
   output frames is no batch to take statistics of);
2. the step is exported at the shipped packet, batch dynamic, and ``prepare_qat_pt2e`` fake-quantizes
   it with the XNNPACK QAT scheme as the export's PTQ annotates a step (``train.quant.step_quant.step_quantizer``:
   the band norm's running mean stays float, a conv's history buffer shares its ``cat``'s qparams);
3. every training window is streamed through it packet by packet from the initial state, the state
   carried (gradients flow through it, as the recurrence runs on the phone), and the packets' logits
   joined are trained with the student's own loss and targets at a small learning rate; after
   ``freeze_observer_epoch`` epochs the quantization ranges are frozen;
4. ``convert_pt2e`` gives real quantize/dequantize pairs: the int8 step the export lowers as it is
   (``--to pte,tflite``; its parity reference is this graph streamed in PyTorch).

The saved ``qat_int8.pt2`` holds that step (batch dynamic) and metadata naming the packet and the state
buffers; :func:`train.quant.qat.load_quantized` gives it back wrapped in :class:`StreamedGraph`, which
runs windows or whole runs as the float student does (``streaming = True``), so the evaluation, the
counter's choice and the export's reference take it as they take the float model.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edge.contract import DENSITY_STRIDE

log = logging.getLogger("footfall.qat")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of a streamtcn (eval mode) with every BatchNorm folded into the conv before it.

    The conv gets a bias (``w * g / s``, ``b' = beta + (b - mean) g / s``) and the BatchNorm becomes an
    identity, so the step graph is convs, ReLUs and adds only: the form the XNNPACK quantizer
    annotates as conv + ReLU, and the form ``convert_pt2e`` would have folded to anyway.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = _conv_bn_pairs(model)
    m = copy.deepcopy(model).eval()
    for conv_name, bn_name in pairs:
        conv_parent, _, conv_attr = conv_name.rpartition(".")
        bn_parent, _, bn_attr = bn_name.rpartition(".")
        fused = fuse_conv_bn_eval(m.get_submodule(conv_name), m.get_submodule(bn_name))
        setattr(m.get_submodule(conv_parent), conv_attr, fused)
        setattr(m.get_submodule(bn_parent), bn_attr, nn.Identity())
    return m


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """A streamtcn's (conv, BatchNorm) pairs, by their names in the model: the pairs
    :func:`fold_batchnorm` folds and :func:`trained_float` unfolds."""
    from train.models.streaming import StreamTCN

    if not isinstance(model, StreamTCN):
        raise TypeError(f"a streamtcn was expected, got {type(model).__name__}")
    pairs = [(f"blocks.{i}.conv.conv", f"blocks.{i}.bn") for i in range(len(model.blocks))]
    pairs.append(("proj", "proj_bn"))
    for i in range(len(model.tcn)):
        pairs += [(f"tcn.{i}.conv.conv", f"tcn.{i}.bn1"), (f"tcn.{i}.mix", f"tcn.{i}.bn2")]
    return pairs


def trained_float(model: nn.Module, step_graph: nn.Module) -> nn.Module:
    """The float form of a QAT step's weights, as a student of ``model``'s kind and config.

    QAT trains the step's float weights under fake quantization, so after it they are no longer the
    float student's. This copies them back into a copy of ``model`` (the float student the step was
    prepared from): every conv gets its folded weight, and its BatchNorm holds the folded bias as an
    affine identity (weight 1, bias b, running mean 0, running variance 1 - eps), so in eval mode the
    copy computes what the QAT step computes in float, without the quantization. ``step_graph`` is the
    saved step (``qat_int8.pt2``'s module): its parameters are named ``model.<name>`` after the folded
    student's.
    """
    names = dict(step_graph.named_parameters())
    pairs = _conv_bn_pairs(model)
    m = copy.deepcopy(model).eval()
    modules = dict(m.named_modules())
    expected = {f"model.{c}.weight" for c, _ in pairs} | {f"model.{c}.bias" for c, _ in pairs}
    other = {k for k in names if k not in expected}
    own = {f"model.{k}": v for k, v in m.named_parameters()}
    missing = sorted(expected - names.keys()) + sorted(other - own.keys())
    if missing:
        raise ValueError(f"the step graph does not hold this student's folded weights (missing or foreign: {', '.join(missing[:4])})")
    with torch.no_grad():
        for conv_name, bn_name in pairs:
            conv, bn = modules[conv_name], modules[bn_name]
            w, b = names[f"model.{conv_name}.weight"], names[f"model.{conv_name}.bias"]
            if conv.weight.shape != w.shape:
                raise ValueError(f"{conv_name}: the step's weight is {tuple(w.shape)}, the student's {tuple(conv.weight.shape)}")
            conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for k in other:  # the parameters QAT trained outside the folded pairs (the output conv)
            own[k].copy_(names[k])
    return m


class StreamedGraph(nn.Module):
    """A step graph (packet + state -> logits + state) run over windows or whole runs, as the float
    streaming student's ``forward``: (B, 1, F, T) -> (B, T // 4), each row streamed packet by packet
    from zero state; a last partial packet is padded with zeros, whose logits are dropped (the step is
    causal: they change nothing before them).

    The graph is held outside the module tree: a converted PT2E graph refuses ``.eval()``, and it is
    already in eval mode (``train``/``eval`` here only set the flag).
    """

    streaming = True

    def __init__(self, graph: nn.Module, packet_frames: int, state_shapes: list[tuple[str, tuple[int, ...]]]) -> None:
        super().__init__()
        if packet_frames <= 0 or packet_frames % DENSITY_STRIDE:
            raise ValueError(f"packet_frames must be a positive multiple of {DENSITY_STRIDE}, got {packet_frames}")
        self.__dict__["step_graph"] = graph
        self.packet_frames = int(packet_frames)
        self.state_shapes = [(str(n), tuple(int(d) for d in s)) for n, s in state_shapes]

    def train(self, mode: bool = True) -> "StreamedGraph":
        self.training = mode
        return self

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        return [torch.zeros((batch, *shape[1:])) for _, shape in self.state_shapes]

    def step(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.step_graph(x, *state))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, _, t = x.shape
        p = self.packet_frames
        whole = -(-t // p) * p
        if whole != t:
            x = F.pad(x, (0, whole - t))
        state, out = self.initial_state(b), []
        for i in range(0, whole, p):
            y, *state = self.step(x[..., i : i + p].contiguous(), *state)
            out.append(y)
        return torch.cat(out, dim=-1)[:, : t // DENSITY_STRIDE]


def example_inputs(model: nn.Module, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """A packet and the initial state at ``batch`` (the export captures a dynamic batch from 2)."""
    x = torch.randn(batch, 1, model.config.n_mels, model.packet_frames)
    return (x, *model.initial_state(batch))


def _dynamic_batch(inputs: tuple[torch.Tensor, ...], flat: bool = False) -> tuple:
    """``dynamic_shapes`` of a step: the batch of the packet and of each state buffer. ``step(x, *state)``
    binds as the packet, then one tuple of the buffers; a converted graph's ``forward`` takes them flat."""
    from train.quant.qat import _batch_dim

    batch = _batch_dim()
    return tuple({0: batch} for _ in inputs) if flat else ({0: batch}, tuple({0: batch} for _ in inputs[1:]))


def export_step(model: nn.Module) -> torch.fx.GraphModule:
    """The (BatchNorm-folded) student's step exported at its packet, every input's batch dynamic."""
    from train.models.streaming import StreamStep

    inputs = example_inputs(model)
    return torch.export.export(StreamStep(model).eval(), inputs, dynamic_shapes=_dynamic_batch(inputs), strict=False).module()


def prepare(model: nn.Module) -> torch.fx.GraphModule:
    """The fake-quantized step of a float streamtcn (BatchNorm folded here), ready to train."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from train.quant.step_quant import step_quantizer, xnnpack_quantizer

    return prepare_qat_pt2e(export_step(fold_batchnorm(model)), step_quantizer(xnnpack_quantizer(qat=True)))


def warm_packets(model: nn.Module) -> int:
    """Packets after which a stream started from zeros has filled every conv's history: the first
    ones see the zero state only the start of a run has, so calibration does not observe them."""
    return -(-model.receptive_field_frames * DENSITY_STRIDE // model.packet_frames)


@torch.no_grad()
def calibrate(streamed: StreamedGraph, loader, batches: int, warm: int) -> int:
    """Set a prepared step's int8 ranges from streamed training windows before QAT; returns the packets observed.

    QAT's moving-average observers start from the first tensor they see, and a stream's first packet
    carries an all-zero state: ranges of zero width, widened at 1 % a call, clamp every later state
    (a step fake-quantized from a cold start does not correlate with its float self). Here the
    fake quantization is off, the first ``warm`` packets of each window are not observed, and each
    observed packet weighs 1/n of the running range (the mean of the packets' extremes), so the ranges
    are those of a stream in its steady state.
    """
    from torchao.quantization.pt2e.fake_quantize import disable_fake_quant, disable_observer, enable_fake_quant, enable_observer

    graph, p = streamed.step_graph, streamed.packet_frames
    observers = [m for m in graph.modules() if hasattr(m, "averaging_constant")]
    constants = [m.averaging_constant for m in observers]
    graph.apply(disable_fake_quant)
    n = 0
    try:
        for b, (x, _) in enumerate(loader):
            if b >= batches:
                break
            state = streamed.initial_state(len(x))
            for k, i in enumerate(range(0, x.shape[-1], p)):
                observe = k >= warm
                graph.apply(enable_observer if observe else disable_observer)
                if observe:
                    n += 1
                    for m in observers:
                        m.averaging_constant = 1.0 / n
                _, *state = streamed.step(x[..., i : i + p].contiguous(), *state)
    finally:
        for m, c in zip(observers, constants):
            m.averaging_constant = c
        graph.apply(enable_observer)
        graph.apply(enable_fake_quant)
    if not n:
        raise ValueError(f"no packet to calibrate on: the training windows are not longer than {warm} packets of warm-up")
    return n


def set_observers(graph: torch.fx.GraphModule, weights: bool, activations: bool = False) -> None:
    """Let the weights' ranges (per channel) and the activations' (per tensor) move or not.

    After :func:`calibrate` the activations' ranges stay as it set them: observed again during
    training they would take in every window's zero-state start at 1 % a packet and narrow."""
    from torchao.quantization.pt2e.fake_quantize import disable_observer, enable_observer

    for m in graph.modules():
        observer = getattr(m, "activation_post_process", None)
        if observer is None or not hasattr(m, "observer_enabled"):
            continue
        on = weights if "PerChannel" in type(observer).__name__ else activations
        (enable_observer if on else disable_observer)(m)


def save_step(path, graph: torch.fx.GraphModule, model: nn.Module, meta: dict[str, Any]) -> None:
    """Re-export a converted step (batch dynamic) and save it with ``meta`` (inside and beside), atomically."""
    import json

    from train.quant.qat import META_FILE
    from edge.util import atomic_path, jsonable, write_json

    inputs = example_inputs(model)
    ep = torch.export.export(graph, inputs, dynamic_shapes=_dynamic_batch(inputs, flat=True), strict=False)
    text = json.dumps(jsonable(meta), indent=2)
    with atomic_path(path, suffix=path.suffix) as tmp:
        torch.export.save(ep, str(tmp), extra_files={META_FILE: text})
    write_json(path.with_name(path.name + ".json"), json.loads(text))


def run_stream_qat(cfg, model: nn.Module, dcfg, loader, out, base_meta: dict, score) -> dict[str, Any]:
    """QAT of a streaming student's step (module docstring) on ``loader``'s training windows; writes
    ``qat_int8.pt2`` (+ ``.json``) into ``out`` and returns the report's ``fp32`` and ``qat`` parts:
    ``score(model, splits)`` of each (streamed 5-s scores of the validation and test runs of the
    student's fold) and the training history."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from train.distill.student import PackedLoss
    from train.fit.trainer import seed_everything
    from train.quant.qat import _progress_bar, quantizer_description

    seed_everything(cfg.seed)
    model = model.cpu().eval()
    P, shapes = model.packet_frames, model.state_specs()
    W = dcfg.window_frames
    if W % P:
        raise ValueError(f"the student's training window ({W} frames) is not a whole number of {P}-frame packets")
    report: dict[str, Any] = {"fp32": {"stream": score(model)}}
    log.info("fp32 student: test 5-s MAE %.4f (streamed)", report["fp32"]["stream"]["test"]["mae"])
    t0 = time.perf_counter()
    log.info("QAT: folding BatchNorm, exporting the %d-frame step, fake-quantizing it", P)
    graph = prepare(model)
    streamed = StreamedGraph(graph, P, shapes)  # each training window streamed through the fake-quantized step
    warm = min(warm_packets(model), W // P - 1)
    observed = calibrate(streamed, loader, cfg.calib_batches, warm)
    log.info("QAT: int8 ranges from %d streamed packets of %d training batches (the first %d of each window, warming up, left out)",
             observed, min(cfg.calib_batches, len(loader)), warm)
    loss_fn = PackedLoss(dcfg.alpha, dcfg.labels)
    optimizer = torch.optim.Adam(graph.parameters(), lr=cfg.lr)
    steps_per_epoch = min(len(loader), cfg.max_steps_per_epoch or len(loader))
    history, step, best = [], 0, (float("inf"), None, None)
    bar = _progress_bar()
    task = bar.add_task("QAT", total=cfg.epochs * steps_per_epoch)
    bar.start()
    try:
        for epoch in range(cfg.epochs):
            obs_frozen = epoch >= cfg.freeze_observer_epoch
            set_observers(graph, weights=not obs_frozen)
            loss_sum, n = 0.0, 0
            for i, (x, y) in enumerate(loader):
                if i >= steps_per_epoch:
                    break
                loss = loss_fn(streamed(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(graph.parameters(), 5.0)
                optimizer.step()
                loss_sum, n, step = loss_sum + loss.item() * len(y), n + len(y), step + 1
                bar.update(task, advance=1, description=f"QAT epoch {epoch + 1}/{cfg.epochs}, loss {loss_sum / max(n, 1):.4f}")
            set_observers(graph, weights=False)
            with torch.no_grad():
                val = score(streamed, splits=("val",))["val"]
            validated = val["n_windows"] > 0
            history.append({"epoch": epoch, "train_loss": loss_sum / max(n, 1), "val_mae": val["mae"] if validated else None,
                            "observers_frozen": obs_frozen})
            log.info("QAT epoch %d/%d  loss %.4f | %s%s", epoch + 1, cfg.epochs, loss_sum / max(n, 1),
                     f"validation 5-s MAE {val['mae']:.4f} (fake-quant, streamed)" if validated else "no labelled validation runs",
                     " | ranges frozen" if obs_frozen else "")
            if obs_frozen and validated and val["mae"] < best[0]:
                best = (val["mae"], {k: v.detach().clone() for k, v in graph.state_dict().items()}, epoch)
    finally:
        bar.stop()
    if best[1] is not None:
        graph.load_state_dict(best[1])
    set_observers(graph, weights=False)
    from train.quant.qat import _chosen_epoch

    chosen = _chosen_epoch(best[2], best[0], cfg, validated=any(h["val_mae"] is not None for h in history))
    log.info("QAT int8: converting the step and scoring %s", chosen)
    qat = move_exported_model_to_eval(convert_pt2e(graph, fold_quantize=False))
    with torch.no_grad():
        report["qat"] = {"stream": score(StreamedGraph(qat, P, shapes)), "history": history, "best_epoch": best[2], "converted": chosen,
                         "seconds": time.perf_counter() - t0}
    save_step(out / "qat_int8.pt2", qat, model, {
        **base_meta, "precision": "int8", "quantization": {**quantizer_description(True), "scope": (
            "the streaming step (packet and state in, logits and state out); BatchNorm folded first; the band norm's running mean float")},
        "streaming": {"packet_frames": P, "state": [[name, list(shape)] for name, shape in shapes]},
        "input_shape": [-1, 1, model.config.n_mels, P],
        "qat": {"epochs": cfg.epochs, "lr": cfg.lr, "freeze_observer_epoch": cfg.freeze_observer_epoch, "best_epoch": best[2],
                "converted": chosen, "steps": step, "training_windows": len(loader.dataset)},
        "accuracy": report["qat"]["stream"]["test"], "reference_accuracy": report["fp32"]["stream"]["test"]})
    log.info("QAT int8: test 5-s MAE %.4f (streamed)", report["qat"]["stream"]["test"].get("mae", float("nan")))
    return report


def load_streamed(module: nn.Module, meta: dict) -> StreamedGraph:
    """A loaded step graph and its metadata -> :class:`StreamedGraph` (``meta["streaming"]`` names the packet and state)."""
    s = meta["streaming"]
    return StreamedGraph(module, int(s["packet_frames"]), [(n, tuple(shape)) for n, shape in s["state"]])
