"""FNN: the seed paper's feed-forward baseline (5 hidden layers of 256, ReLU), applied frame-wise.

The paper feeds one feature vector per 5-s window and regresses its count. Here the same MLP maps
each density frame's context, ``context_frames`` log-mel frames x 64 bands centred on its 4 frames,
to a density; the whole window is then one strided conv (the first layer, a linear map of the
flattened context) and 1x1 convs (the other layers), so it stays one exportable graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from train.models.base import DENSITY_STRIDE, ConfigError, DensityConfig, DensityModel
from train.models.layers import MelNorm, init_weights
from train.models.registry import register_model


@dataclass
class FnnConfig(DensityConfig):
    """hidden units per layer and how many hidden layers (paper: 5 x 256); context_frames: the
    input of each density frame, 4 + 2 p front-end frames (52 = 0.52 s, about a stride)."""

    hidden: int = 256
    layers: int = 5
    context_frames: int = 52

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden < 1 or self.layers < 1:
            raise ConfigError(f"hidden and layers must be >= 1, got {self.hidden}, {self.layers}")
        if self.context_frames < DENSITY_STRIDE or (self.context_frames - DENSITY_STRIDE) % 2:
            raise ConfigError(f"context_frames must be {DENSITY_STRIDE} + an even number (centred context), got {self.context_frames}")


@register_model("fnn")
class Fnn(DensityModel):
    """bn0 -> Linear(64 x context -> hidden) per density frame -> (layers - 1) x Linear(hidden) ->
    Linear(hidden -> 1) -> ReLU; each hidden layer with ReLU and dropout. A baseline teacher."""

    role = "teacher"
    config_class = FnnConfig

    def __init__(self, config: FnnConfig) -> None:
        super().__init__(config)
        pad = (config.context_frames - DENSITY_STRIDE) // 2
        self.bn0 = MelNorm(config.n_mels, config.centre_bands)
        layers: list[nn.Module] = [
            nn.Conv2d(1, config.hidden, (config.n_mels, config.context_frames), stride=(1, DENSITY_STRIDE), padding=(0, pad))
        ]
        for _ in range(config.layers - 1):
            layers += [nn.ReLU(inplace=True), nn.Dropout(config.dropout), nn.Conv2d(config.hidden, config.hidden, 1)]
        layers += [nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Conv2d(config.hidden, 1, 1)
        self.apply(init_weights)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.constant_(self.out.bias, config.out_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(self.bn0(x))  # (B, hidden, 1, T/4)
        return self.out(x).flatten(1)  # (B, T/4) logits
