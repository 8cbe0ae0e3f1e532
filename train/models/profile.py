"""Size and cost of a model: parameters, and multiply-accumulates by forward hooks.

MACs count the layers that dominate: Conv1d/Conv2d (``output elements x in/groups x kernel``),
Linear (``output elements x in_features``) and GRU/LSTM (``steps x gates x (input + hidden) x
hidden`` per layer and direction). BatchNorm (folded at export), pooling, activations and adds are
left out: they are a small fraction for every model here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edge.contract import EVAL_WINDOW_FRAMES, FRAMES_PER_SECOND


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(module: nn.Conv1d | nn.Conv2d, output: torch.Tensor) -> int:
    return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def _linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    return output.numel() * module.in_features


def _rnn_macs(module: nn.RNNBase, output: tuple) -> int:
    out = output[0]
    steps_x_batch = out.shape[0] * out.shape[1] if out.dim() == 3 else out.shape[0]
    # weight_ih/hh of every layer and direction is (gates * hidden, in) and (gates * hidden, hidden);
    # each is applied once per step and batch element
    weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight_"))
    return steps_x_batch * weights


_COUNTERS = {nn.Conv1d: _conv_macs, nn.Conv2d: _conv_macs, nn.Linear: _linear_macs, nn.GRU: _rnn_macs, nn.LSTM: _rnn_macs}


@torch.no_grad()
def count_macs(model: nn.Module, frames: int = EVAL_WINDOW_FRAMES) -> int:
    """Multiply-accumulates of one forward pass on one (1, 1, n_mels, frames) input."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output) -> None:
        nonlocal total
        total += _COUNTERS[type(module)](module, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in _COUNTERS]
    was_training = model.training
    model.eval()
    try:
        (x,) = model.example_inputs(frames)
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def macs_per_second(model: nn.Module, frames: int = EVAL_WINDOW_FRAMES) -> float:
    """MACs per second of audio, measured on a ``frames``-frame window (5 s by default)."""
    return count_macs(model, frames) * FRAMES_PER_SECOND / frames


def model_table(names: list[str] | None = None, frames: int = EVAL_WINDOW_FRAMES) -> list[dict]:
    """One row per registered model at its default config: name, role, params, MMAC/s."""
    from train.models.registry import build_model, list_models, model_class

    rows = []
    for name in names or list_models():
        model = build_model(name)
        rows.append(
            {
                "name": name,
                "role": model_class(name).role,
                "params": count_params(model),
                "mmac_per_s": macs_per_second(model, frames) / 1e6,
            }
        )
    return rows
