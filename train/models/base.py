"""What every footfall model is (contract 3): log-mel (B, 1, 64, T) -> step density (B, T // 4).

A model is an ``nn.Module`` subclass of :class:`DensityModel` whose hyperparameters live in a
dataclass (a subclass of :class:`DensityConfig`). The dataclass is the whole description of the
architecture: it is saved inside every checkpoint and ``load_checkpoint`` rebuilds from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

# every model downsamples time by exactly the density stride (front-end frames per density
# frame), never more, never less; its window defaults to the shipped one
from edge.contract import DENSITY_STRIDE, N_MELS, WINDOW_FRAMES


class ConfigError(ValueError):
    """A model name or config key/value that does not exist or does not fit."""


def as_tuple(value: Any) -> Any:
    """Lists (from YAML, JSON, a CLI) -> tuples, recursively; config tables stay hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(as_tuple(v) for v in value)
    return value


@dataclass
class DensityConfig:
    """Fields every model has; each model's config subclasses this and adds its own.

    n_mels: mel bands of the input (the front end gives 64; fewer only in tests).
    dropout: before the output layer (and elsewhere where a model says so).
    out_bias: initial bias of the output logit: -2 is a step probability of 0.12 per 40-ms
        frame, 3 steps/s, a typical running cadence (a calibrated start for the BCE).
    centre_bands: subtract each mel band's mean over the window before ``bn0``. A gain change of
        the input adds the same constant to every log-mel value, and a static microphone colour
        (EQ) a constant per band: the centred input is blind to both, exactly, inside the graph
        (the count cannot depend on loudness). On by default (the level contract); off only for
        ablations.
    """

    n_mels: int = N_MELS
    dropout: float = 0.2
    out_bias: float = -2.0
    centre_bands: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, as_tuple(getattr(self, f.name)))
        if self.n_mels < 1:
            raise ConfigError(f"n_mels must be >= 1, got {self.n_mels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not -20.0 <= self.out_bias <= 20.0:
            raise ConfigError(f"out_bias is a logit and must be in [-20, 20], got {self.out_bias}")


@dataclass
class HeadConfig(DensityConfig):
    """Adds the temporal density head (``layers.DensityHead``) after the frequency collapse.

    head_channels: its width. head_dilations: one residual temporal conv per entry, kernel
    ``head_kernel`` along time at 25 frames/s; (1, 2, 4) with kernel 3 adds 2 * (1 + 2 + 4) = 14
    frames (0.56 s, a couple of steps) of context on top of the backbone's receptive field.
    """

    head_channels: int = 128
    head_dilations: tuple[int, ...] = (1, 2, 4)
    head_kernel: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head_channels < 1:
            raise ConfigError(f"head_channels must be >= 1, got {self.head_channels}")
        if self.head_kernel < 1 or self.head_kernel % 2 == 0:
            raise ConfigError(f"head_kernel must be odd (centred 'same' padding), got {self.head_kernel}")
        if any(d < 1 for d in self.head_dilations):
            raise ConfigError(f"head_dilations must be >= 1, got {self.head_dilations}")


def width_channels(channels: int, width: float, divisor: int = 8) -> int:
    """``channels * width`` rounded to a multiple of ``divisor``, never more than 10 % below it.

    The rounding of MobileNet (``_make_divisible``), used for every width multiplier here.
    """
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return rounded


class DensityModel(nn.Module):
    """Base class: (B, 1, n_mels, T) float32 log-mel -> (B, T // 4) step-onset logits.

    Subclasses set ``config_class`` and are registered with ``@register_model(name)``, which also
    sets ``name``. ``T`` must be a multiple of ``time_multiple``; the output then has exactly
    ``T // DENSITY_STRIDE`` frames at 25 frames/s; ``sigmoid`` of a frame is the probability that
    a step lands in it (the counter tracks a cadence through it: ``edge.counter``).
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = ""  # "teacher" or "student"
    config_class: ClassVar[type[DensityConfig]] = DensityConfig
    time_multiple: ClassVar[int] = DENSITY_STRIDE
    density_stride: ClassVar[int] = DENSITY_STRIDE

    def __init__(self, config: DensityConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    def example_inputs(self, frames: int = WINDOW_FRAMES, batch: int = 1) -> tuple[torch.Tensor]:
        """``(x,)`` with x of shape (batch, 1, n_mels, frames): the input to export and trace with."""
        if frames <= 0 or frames % self.time_multiple:
            raise ValueError(f"{self.name}: frames must be a positive multiple of {self.time_multiple}, got {frames}")
        device = next(self.parameters()).device
        return (torch.randn(batch, 1, self.config.n_mels, frames, device=device),)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, config={self.config}"
