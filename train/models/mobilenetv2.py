"""MobileNetV2 (Sandler et al. 2018) as a step-density student, from its table of inverted residuals.

Strides: the stem and the first strided row halve both axes (time / 4 in all); every later stride
halves frequency only, so the network keeps 25 frames/s to the density head
(64 mels -> 2 bands, T -> T / 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from train.models.base import DENSITY_STRIDE, ConfigError, DensityModel, HeadConfig, width_channels
from train.models.layers import DensityHead, MelNorm, init_weights
from train.models.registry import register_model

# Inverted residual rows (Sandler et al., Table 2): (expansion t, channels c, repeats n, stride s).
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32  # the first 3 x 3 conv, stride 2


@dataclass
class MobileNetV2Config(HeadConfig):
    """width: channel multiplier (0.5 = the shipping student). blocks: rows (t, c, n, s) of the table.
    last_channels: the final 1x1 conv (1280 in the paper; scaled only when width > 1, as torchvision).
    Of the stride-2 layers (stem first), the first ones halve time and frequency until time is
    down by 4; the rest halve frequency only."""

    width: float = 0.5
    blocks: tuple[tuple[int, int, int, int], ...] = INVERTED_RESIDUALS
    last_channels: int = 1280
    head_channels: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width <= 0:
            raise ConfigError(f"width must be > 0, got {self.width}")
        if not self.blocks or any(len(row) != 4 or row[3] not in (1, 2) for row in self.blocks):
            raise ConfigError(f"blocks must be rows of (expansion, channels, repeats, stride in {{1, 2}}), got {self.blocks}")
        strides = [2] + [row[3] for row in self.blocks]
        time_stride = 1
        for s in strides:
            time_stride *= s if time_stride < DENSITY_STRIDE else 1
        if time_stride != DENSITY_STRIDE:
            raise ConfigError(f"the stem and blocks stride time by {time_stride}; the density head needs exactly {DENSITY_STRIDE}")
        freq_stride = math.prod(strides)
        if self.n_mels % freq_stride:
            raise ConfigError(f"n_mels={self.n_mels} is not divisible by the frequency stride {freq_stride}")


def _conv_bn(in_channels: int, out_channels: int, kernel: int = 1, stride: tuple[int, int] = (1, 1), groups: int = 1, relu6: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu6:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise, stride (freq, time) (ReLU6) -> 1x1 linear projection;
    identity shortcut when the shape is unchanged."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers = [] if expansion == 1 else [_conv_bn(in_channels, hidden)]
        layers += [_conv_bn(hidden, hidden, 3, stride=stride, groups=hidden), _conv_bn(hidden, out_channels, relu6=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == (1, 1) and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


@register_model("mobilenetv2")
class MobileNetV2(DensityModel):
    """bn0 -> stem -> inverted residuals (table) -> 1x1 conv -> density head. (B,1,64,T) -> (B,T/4).

    A student: the shipping on-device model at width 0.5. ``time_multiple`` is 4 because the
    padded stride-2 convs round up (T = 4k gives exactly k density frames).
    """

    role = "student"
    config_class = MobileNetV2Config

    def __init__(self, config: MobileNetV2Config) -> None:
        super().__init__(config)
        time_stride = 1

        def next_stride(s: int) -> tuple[int, int]:
            nonlocal time_stride
            st = s if time_stride < DENSITY_STRIDE else 1
            time_stride *= st
            return (s, st)

        channels = width_channels(STEM_CHANNELS, config.width)
        layers: list[nn.Module] = [_conv_bn(1, channels, 3, stride=next_stride(2))]
        for expansion, c, repeats, stride in config.blocks:
            out_channels = width_channels(c, config.width)
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out_channels, next_stride(stride) if i == 0 else (1, 1), expansion))
                channels = out_channels
        last = width_channels(config.last_channels, max(1.0, config.width))
        layers.append(_conv_bn(channels, last))
        self.bn0 = MelNorm(config.n_mels, config.centre_bands)
        self.features = nn.Sequential(*layers)
        self.head = DensityHead.from_config(last, config)
        self.apply(init_weights)
        self.head.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.bn0(x))  # (B, last, F / 32, T / 4)
        return self.head(x)  # (B, T / 4)
