"""CRNN: PANNs-style conv blocks, then a bidirectional GRU along time, then the density head.

A teacher only: the bidirectional GRU sees the whole window in both directions, which neither
streams nor lowers to XNNPACK/LiteRT int8 (recurrent ops); the students are conv-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from train.models.base import ConfigError, DensityModel
from train.models.cnn import CnnConfig, conv_blocks
from train.models.layers import DensityHead, MelNorm, collapse_frequency, init_weights
from train.models.registry import register_model

# Row: (channels at width 1, convs per block, kernel, freq pool, time pool): 64 mels -> 8 bands.
CRNN_BLOCKS = (
    (64, 2, 3, 2, 2),
    (128, 2, 3, 2, 2),
    (256, 2, 3, 2, 1),
)


@dataclass
class CrnnConfig(CnnConfig):
    """Conv block table and width as ``CnnConfig``; gru_hidden units per direction, gru_layers
    stacked bidirectional layers (dropout between them). The GRU gives the temporal context, so
    the head has no temporal convs by default (``head_dilations=()``)."""

    blocks: tuple[tuple[int, int, int, int, int], ...] = CRNN_BLOCKS
    head_dilations: tuple[int, ...] = ()
    gru_hidden: int = 128
    gru_layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gru_hidden < 1 or self.gru_layers < 1:
            raise ConfigError(f"gru_hidden and gru_layers must be >= 1, got {self.gru_hidden}, {self.gru_layers}")


@register_model("crnn")
class Crnn(DensityModel):
    """bn0 -> conv blocks -> mean over frequency -> BiGRU over the T/4 frames -> density head."""

    role = "teacher"
    config_class = CrnnConfig

    def __init__(self, config: CrnnConfig) -> None:
        super().__init__(config)
        channels = config.channels()[-1]
        self.bn0 = MelNorm(config.n_mels, config.centre_bands)
        self.blocks = conv_blocks(config, in_channels=1)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            channels,
            config.gru_hidden,
            num_layers=config.gru_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.gru_layers > 1 else 0.0,
        )
        self.head = DensityHead.from_config(2 * config.gru_hidden, config)
        self.apply(init_weights)
        self.head.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x)  # (B, 1, F, T)
        for block in self.blocks:
            x = self.dropout(block(x))
        x = collapse_frequency(x).squeeze(2).transpose(1, 2)  # (B, T/4, C)
        x, _ = self.gru(x)  # (B, T/4, 2 H)
        return self.head(x.transpose(1, 2).unsqueeze(2))  # (B, 2 H, 1, T/4) -> (B, T/4)
