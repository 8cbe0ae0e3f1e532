"""PANNs CNNs (Kong et al. 2020) as step-density models: Cnn6, Cnn10, Cnn14 and Wavegram-Logmel-Cnn14.

One class, :class:`PannsCnn`, built from a table of conv blocks; the registered names differ only
in their default table. Changes from PANNs, all forced by contract 3 (density at 25 frames/s):

- time is pooled by exactly 4 (the first two blocks pool 2 x 2, the rest pool frequency only), so
  the later blocks see 4x-8x more frames than in PANNs (more MACs per second, same weights);
- no global time pooling and no fc layers: the frequency axis is averaged away and a temporal
  density head (``layers.DensityHead``) gives one non-negative value per 40 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from train.models.base import DENSITY_STRIDE, ConfigError, DensityModel, HeadConfig, width_channels
from train.models.layers import ConvBlock, DensityHead, MelNorm, init_weights
from train.models.registry import register_model

# Conv block tables. Row: (channels at width 1, convs per block, kernel, freq pool, time pool).
CNN6_BLOCKS = ((64, 1, 5, 2, 2), (128, 1, 5, 2, 2), (256, 1, 5, 2, 1), (512, 1, 5, 2, 1))  # 64 mels -> 4 bands left
CNN10_BLOCKS = ((64, 2, 3, 2, 2), (128, 2, 3, 2, 2), (256, 2, 3, 2, 1), (512, 2, 3, 2, 1))  # 64 mels -> 4 bands left
# Cnn10's blocks and two more: 64 mels -> 2 bands left (PANNs' last block does not pool either)
CNN14_BLOCKS = CNN10_BLOCKS + ((1024, 2, 3, 2, 1), (2048, 2, 3, 1, 1))


@dataclass
class CnnConfig(HeadConfig):
    """width: channel multiplier for every block (1.0 = PANNs). blocks: the conv block table, rows
    (channels, n_convs, kernel, freq_pool, time_pool); the time pools must multiply to 4.
    dropout (inherited) also follows every block, as in PANNs (p = 0.2)."""

    width: float = 1.0
    blocks: tuple[tuple[int, int, int, int, int], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width <= 0:
            raise ConfigError(f"width must be > 0, got {self.width}")
        if not self.blocks or any(len(row) != 5 for row in self.blocks):
            raise ConfigError(f"blocks must be non-empty rows of (channels, n_convs, kernel, freq_pool, time_pool), got {self.blocks}")
        time_stride = math.prod(row[4] for row in self.blocks)
        if time_stride != DENSITY_STRIDE:
            raise ConfigError(f"the time pools of blocks multiply to {time_stride}; the density head needs exactly {DENSITY_STRIDE}")
        freq_stride = math.prod(row[3] for row in self.blocks)
        if self.n_mels % freq_stride:
            raise ConfigError(f"n_mels={self.n_mels} is not divisible by the blocks' frequency pooling {freq_stride}")

    def channels(self) -> list[int]:
        return [width_channels(row[0], self.width) for row in self.blocks]


@dataclass
class Cnn6Config(CnnConfig):
    blocks: tuple[tuple[int, int, int, int, int], ...] = CNN6_BLOCKS


@dataclass
class Cnn10Config(CnnConfig):
    blocks: tuple[tuple[int, int, int, int, int], ...] = CNN10_BLOCKS


@dataclass
class Cnn14Config(CnnConfig):
    blocks: tuple[tuple[int, int, int, int, int], ...] = CNN14_BLOCKS


def conv_blocks(config: CnnConfig, in_channels: int, first: int = 0) -> nn.ModuleList:
    """ConvBlocks for rows ``first:`` of the table, starting from ``in_channels``."""
    blocks = nn.ModuleList()
    channels = config.channels()
    for (_, n_convs, kernel, freq_pool, time_pool), out_channels in zip(config.blocks[first:], channels[first:]):
        blocks.append(ConvBlock(in_channels, out_channels, kernel=kernel, n_convs=n_convs, pool=(freq_pool, time_pool)))
        in_channels = out_channels
    return blocks


class PannsCnn(DensityModel):
    """bn0 -> conv blocks (dropout after each) -> density head. (B, 1, F, T) -> (B, T // 4)."""

    config_class = CnnConfig

    def __init__(self, config: CnnConfig) -> None:
        super().__init__(config)
        self.bn0 = MelNorm(config.n_mels, config.centre_bands)
        self.blocks = conv_blocks(config, in_channels=1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = DensityHead.from_config(config.channels()[-1], config)
        self.apply(init_weights)
        self.head.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x)  # (B, 1, F, T)
        for block in self.blocks:
            x = self.dropout(block(x))  # last: (B, C, F / 32 or / 16, T / 4)
        return self.head(x)  # (B, T / 4)


@register_model("cnn6")
class Cnn6(PannsCnn):
    """PANNs Cnn6: four single 5x5 conv blocks, 64..512 channels (x width). A student."""

    role = "student"
    config_class = Cnn6Config


@register_model("cnn10")
class Cnn10(PannsCnn):
    """PANNs Cnn10: four blocks of two 3x3 convs, 64..512 channels (x width). A teacher."""

    role = "teacher"
    config_class = Cnn10Config


@register_model("cnn14")
class Cnn14(PannsCnn):
    """PANNs Cnn14: six blocks of two 3x3 convs, 64..2048 channels (x width). A teacher."""

    role = "teacher"
    config_class = Cnn14Config


@dataclass
class WvLmCnn14Config(Cnn14Config):
    """Cnn14 plus the learned 'wavegram' branch. wave_channels: width of its temporal conv stack at
    width 1 (PANNs: 64, 128); wave_maps: how many (F/2)-band maps its output channels are folded
    into (PANNs: 128 channels -> 4 maps of 32 bands)."""

    wave_channels: int = 64
    wave_maps: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.wave_channels < 1 or self.wave_maps < 1:
            raise ConfigError(f"wave_channels and wave_maps must be >= 1, got {self.wave_channels}, {self.wave_maps}")
        if self.blocks[0][4] != 2:
            raise ConfigError("wvlm_cnn14 concatenates the wavegram at half frame rate: the first block must pool time by 2")


class TemporalConvBlock(nn.Module):
    """PANNs ``ConvPreWavBlock`` in 4-D: two (1 x 3) convs along time with BN + ReLU, then an
    optional max pool along time. Input (B, C, 1, T)."""

    def __init__(self, in_channels: int, out_channels: int, time_pool: int = 1) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (1, 3), padding=(0, 1), bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (1, 3), padding=(0, 2), dilation=(1, 2), bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.time_pool = time_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if self.time_pool > 1:
            x = F.max_pool2d(x, (1, self.time_pool))
        return x


@register_model("wvlm_cnn14")
class WvLmCnn14(DensityModel):
    """Wavegram-Logmel-Cnn14 (PANNs), the seed paper's best-PCC model, within contract 3. A teacher.

    PANNs runs two branches and concatenates them after the first conv block: the log-mel Cnn14
    branch (conv block 1: 64 channels, pooled to (T/2, 32 bands)) and a *wavegram* branch, a
    learned time-frequency representation computed from the **raw waveform** by 1-D convolutions
    and pooling along time, whose 128 output channels are folded into 4 maps of 32 pseudo-frequency
    bands at T/2, passed through a 2-D conv block (4 -> 64) and concatenated (-> 128 channels).

    **Deviation:** footfall models take log-mel only (contract 2: the front end stays outside the
    graph), so there is no waveform here. The second branch is the same learned 1-D conv stack
    but over the log-mel *frames*: the 64 normalised mel bands are its input channels, and it
    convolves along time at 100 frames/s (a learned re-representation of the spectrogram, as
    PANNs' branch is of the waveform). What it cannot learn is anything inside one 10-ms frame
    (phase, sub-frame transients), which is what the waveform branch of PANNs could add. The
    fold into ``wave_maps`` maps of F/2 bands, the 2-D conv block on them, the concatenation after
    conv block 1 and everything after it follow PANNs. Shapes (width 1)::

        bn0(x) (B,1,64,T) ──► conv block 1 ────────────────────────────► (B, 64, 32, T/2) ─┐
              └─ as (B,64,1,T) ─► 1-D convs along time, max pool 2 ─► (B,128,1,T/2)        ├─ cat (B,128,32,T/2)
                 ─► fold (B,4,32,T/2) ─► conv block (4 -> 64, no pool) ─► (B, 64, 32, T/2) ─┘
        ─► Cnn14 blocks 2..6 ─► density head ─► (B, T/4)
    """

    role = "teacher"
    config_class = WvLmCnn14Config

    def __init__(self, config: WvLmCnn14Config) -> None:
        super().__init__(config)
        channels = config.channels()
        _, _, first_kernel, first_freq_pool, _ = config.blocks[0]
        self.wave_bands = config.n_mels // first_freq_pool
        wave = width_channels(config.wave_channels, config.width)
        self.bn0 = MelNorm(config.n_mels, config.centre_bands)
        self.logmel_block = conv_blocks(config, in_channels=1)[0]
        self.wave_branch = nn.Sequential(  # (B, n_mels, 1, T) -> (B, maps * bands, 1, T / 2)
            nn.Conv2d(config.n_mels, wave, (1, 5), padding=(0, 2), bias=False),  # PANNs pre_conv0
            nn.BatchNorm2d(wave),
            nn.ReLU(inplace=True),
            TemporalConvBlock(wave, wave, time_pool=2),  # pre_block1
            TemporalConvBlock(wave, 2 * wave),  # pre_block2
            TemporalConvBlock(2 * wave, config.wave_maps * self.wave_bands),  # pre_block3
        )
        self.wave_block = ConvBlock(config.wave_maps, channels[0], kernel=first_kernel, pool=(1, 1))  # pre_block4
        self.blocks = conv_blocks(config, in_channels=channels[0] * 2, first=1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = DensityHead.from_config(channels[-1], config)
        self.apply(init_weights)
        self.head.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x)  # (B, 1, F, T)
        logmel = self.logmel_block(x)  # (B, C1, F/2, T/2)
        wave = self.wave_branch(x.transpose(1, 2))  # (B, maps * F/2, 1, T/2)
        wave = wave.reshape(wave.shape[0], self.config.wave_maps, self.wave_bands, wave.shape[-1])  # fold: (B, maps, F/2, T/2)
        wave = self.wave_block(wave)  # (B, C1, F/2, T/2)
        x = self.dropout(torch.cat([logmel, wave], dim=1))  # (B, 2 C1, F/2, T/2)
        for block in self.blocks:
            x = self.dropout(block(x))  # last: (B, C6, F/32, T/4)
        return self.head(x)  # (B, T/4)
