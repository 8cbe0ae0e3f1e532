"""Building blocks shared by the models; all stay 4-D (B, C, F, T) so that every op exports.

Export notes (measured with ExecuTorch 1.5.1 XNNPACK and LiteRT 2.3's XNNPACK delegate): a mean
over the frequency axis alone (``mean(dim=2)``) is *not* delegated by ExecuTorch; ``avg_pool2d``
with a (F, 1) kernel is, in fp32 and int8, but LiteRT leaves an int8 AVERAGE_POOL_2D whose output
scale differs from its input's outside XNNPACK (two partitions, and a requantize between them);
a sum of the F rows times 1/F is delegated everywhere (:func:`collapse_frequency`). Standalone
BatchNorm, max/avg pooling, ReLU/ReLU6, add, mul, cat and reshape are delegated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def init_weights(module: nn.Module) -> None:
    """Kaiming (fan-in) convs, unit BatchNorm, Xavier linears, zero biases; apply via ``model.apply``.

    Fan-in keeps activations at unit scale through the untrained network in eval mode too (fresh
    BatchNorm statistics are the identity), so untrained models give non-trivial outputs for export
    parity checks; fan-out shrank them ~1e-8 through MobileNetV2's depthwise convs.
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MelNorm(nn.Module):
    """PANNs ``bn0``: a BatchNorm per mel band (statistics over batch and time), learned.

    (B, 1, F, T) -> (B, F, 1, T) [free: moves a size-1 axis] -> BatchNorm2d(F) -> (B, 1, F, T).
    Log-mel values are about -14..+5; this puts them near zero mean, unit variance per band.

    With ``centre``, each band's mean over the window's time axis is subtracted first: log-mel
    is log power, so a gain (level) or a static EQ (microphone colour) is an additive constant
    per band, which the centring removes exactly.
    """

    def __init__(self, n_mels: int, centre: bool = False) -> None:
        super().__init__()
        self.centre = centre
        self.bn = nn.BatchNorm2d(n_mels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, F, 1, T)
        if self.centre:  # a global average pool per band (whole in XNNPACK), subtracted
            x = x - x.mean(dim=(2, 3), keepdim=True)  # (B, F, 1, T) - (B, F, 1, 1)
        return self.bn(x).transpose(1, 2)


class ConvBlock(nn.Module):
    """PANNs conv block: ``n_convs`` x (k x k conv, BatchNorm, ReLU), then avg pool (freq, time).

    Cnn10/Cnn14 use two 3x3 convs per block, Cnn6 one 5x5 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int = 3, n_convs: int = 2, pool: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*layers)
        self.pool = tuple(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if self.pool != (1, 1):
            x = F.avg_pool2d(x, self.pool)  # floor: odd leftovers are dropped, as in PANNs
        return x


def collapse_frequency(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, C, 1, T): mean over the frequency axis (PANNs' ``mean(dim=3)``).

    Written as the sum of the F frequency rows times 1/F: adds and one multiply, which XNNPACK
    runs in fp32 and int8 under both ExecuTorch and LiteRT (module docstring). The earlier
    ``avg_pool2d`` with an (F, 1) kernel left LiteRT's int8 graph in two XNNPACK partitions, and
    the int8 ``.tflite`` ran slower than the fp32 one on a CPU without VNNI. No weights: trained
    checkpoints load unchanged, and for F a power of two (every model here) the float result is
    bit-identical to the average pool's. F is static in every export (only T may vary).
    """
    f = x.shape[2]
    if f == 1:
        return x
    total = x[:, :, 0:1]
    for i in range(1, f):
        total = total + x[:, :, i : i + 1]
    return total * (1.0 / f)


class TemporalResidual(nn.Module):
    """x + BN(conv_(1 x k), dilation d, along time) then ReLU; 'same' length, centred."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, (1, kernel), padding=(0, dilation * (kernel // 2)), dilation=(1, dilation), bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn(self.conv(x)))


class DensityHead(nn.Module):
    """(B, C, F, T') features at 25 frames/s -> (B, T') step-onset logits.

    Frequency collapse (mean), a 1x1 projection to ``channels``, one residual dilated temporal
    conv per entry of ``dilations`` (local context: a few steps either side), dropout, a 1x1 conv
    to one channel whose bias starts at ``out_bias``: a logit, no sigmoid in the graph (the
    counter applies it, the loss works on logits).
    """

    def __init__(self, in_channels: int, channels: int, *, dilations: tuple[int, ...], kernel: int, dropout: float, out_bias: float) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.temporal = nn.Sequential(*[TemporalResidual(channels, kernel, d) for d in dilations])
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Conv2d(channels, 1, 1)
        self.out_bias = out_bias

    @classmethod
    def from_config(cls, in_channels: int, config) -> "DensityHead":
        """The head a ``base.HeadConfig`` describes, on ``in_channels`` input channels."""
        return cls(
            in_channels,
            config.head_channels,
            dilations=config.head_dilations,
            kernel=config.head_kernel,
            dropout=config.dropout,
            out_bias=config.out_bias,
        )

    def reset_parameters(self) -> None:
        """Call after the model-wide ``init_weights``: residual branches start as identities, and the
        output starts at ~``out_bias`` everywhere (a typical cadence's step rate)."""
        for block in self.temporal:
            nn.init.zeros_(block.bn.weight)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.constant_(self.out.bias, self.out_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.temporal(self.project(collapse_frequency(x)))  # (B, H, 1, T')
        x = self.out(self.dropout(x))  # (B, 1, 1, T') logits
        return x.flatten(1)  # (B, T')
