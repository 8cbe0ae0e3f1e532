"""A tiny step-onset model with the registry's interface, for fast export tests (test scaffolding, not shipped).

It follows contract 3 (log-mel ``(B, 1, 64, T)`` -> step-onset logits ``(B, T // 4)`` at
25 frames/s) with the attributes every registered model has (``name``,
``config``, ``time_multiple``, ``example_inputs``), so anything that exports a student can
export it in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edge.contract import DENSITY_STRIDE, N_MELS, WINDOW_FRAMES


@dataclass
class TinyConfig:
    channels: int = 8


class TinyOnsetNet(nn.Module):
    name = "tiny"
    time_multiple = DENSITY_STRIDE  # two 2x poolings in time

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        self.config = config or TinyConfig()
        c = self.config.channels
        self.norm = nn.BatchNorm2d(1)  # log-mel sits near -7 +- 4; tiny_model() sets these statistics
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(), nn.AvgPool2d(2),
        )  # (B, 1, 64, T) -> (B, 2c, 16, T // 4)
        self.head = nn.Conv2d(2 * c, 1, (N_MELS // 4, 1))  # collapses the mel axis: (B, 1, 1, T // 4)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(logmel))).flatten(1)  # (B, T // 4) logits

    def example_inputs(self, frames: int = WINDOW_FRAMES) -> tuple[torch.Tensor]:
        return (torch.randn(1, 1, N_MELS, frames),)


def tiny_model(seed: int = 0, channels: int = 8) -> TinyOnsetNet:
    """A deterministic, eval-mode tiny model whose logits vary on log-mel input."""
    torch.manual_seed(seed)
    model = TinyOnsetNet(TinyConfig(channels=channels))
    with torch.no_grad():
        model.norm.running_mean.fill_(-7.0)
        model.norm.running_var.fill_(16.0)
        model.head.bias.fill_(-1.0)  # about one frame in four above the counter's threshold
    return model.eval()
