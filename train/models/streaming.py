"""A streaming student: causal convolutions whose state is carried between calls.

The windowed students recompute a 2.4-s window every hop; this one consumes each new packet of
log-mel frames once. Every layer looks only back in time, so the same weights run two ways that
give the same numbers:

- ``forward(x)``: a whole (B, 1, 64, T) log-mel, the history before frame 0 taken as zeros
  (training, offline evaluation, the PSL relabelling) -> (B, T // 4) step-onset logits;
- ``step(x, *state)``: the next packet (1, 1, 64, P) of a stream and the state the previous call
  returned -> (1, P // 4) logits and the new state. Streaming a run packet by packet from
  :meth:`StreamTCN.initial_state` gives what ``forward`` gives on the whole run.

Layers (time at 25 frames/s after the first reshape; ``k`` frames of kernel look back ``k - 1``):

1. *causal band normalisation*: each mel band minus its running mean, an exponential average of
   time constant ``norm_tau_s`` with the start-up bias removed (as Adam's moments): gain and a
   microphone's colour are additive per band in log-mel and leave the input within a few
   seconds, and nothing waits for a window to end. State: the running sum and its weight.
2. *frame stacking*: four 10-ms frames become four channels of one 40-ms frame (no state).
3. ``len(channels)`` conv blocks, kernel (3 bands x 3 frames, causal), each halving frequency,
   BatchNorm, ReLU. State: the last 2 input frames of each.
4. a 1x1 projection of the remaining bands x channels to ``tcn_channels``.
5. residual blocks of a causal dilated conv (kernel ``kernel``, dilation d; state: the last
   ``(kernel - 1) d`` frames), BatchNorm, ReLU, a 1x1 conv and BatchNorm, added to the input.
   (1, 2, 4, 8, 16, 1) with kernel 3 reach back 64 output frames (2.6 s, five to eight steps).
6. dropout and a 1x1 conv to one logit per 40-ms frame.

Every tensor stays 4-D (B, C, F, T) so that each op exports to ExecuTorch, LiteRT and ONNX; a
state tensor is (1, C, F, frames) and ``state_specs`` names them (``export`` gives each one an
input and an output of the artifact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge.contract import FRAMES_PER_SECOND, PACKET_FRAMES
from train.models.base import DENSITY_STRIDE, ConfigError, DensityConfig, DensityModel
from train.models.layers import init_weights
from train.models.registry import register_model


LONG_FRAMES = 1024  # inputs longer than this run in chunks of it (the band norm's kernel is L x L)


@dataclass
class StreamTCNConfig(DensityConfig):
    """norm_tau_s: time constant of the causal per-band mean (seconds).
    channels: output channels of the 2-D conv blocks (each halves frequency).
    tcn_channels, dilations, kernel: the residual dilated causal convs at 25 frames/s.
    packet_frames: front-end frames per streaming call (a multiple of 4; the export's ``--window``
        sets it, the weights do not depend on it): the shipped 160 ms by default.
    lookahead: output frames (40 ms) of the future each output may see; 0 (a student) streams.
        A teacher with ``lookahead`` L > 0 is the same causal network read L frames late: the
        logit of frame t is the causal logit of frame t + L, the input past its end repeating the
        last frame. It hears a step's whole sound and what follows it before it speaks, which no
        streaming student can; it runs windows (``streaming`` is False) and has no ``step``.
    ``centre_bands`` (window centring) does not apply: the normalisation here is causal.
    """

    norm_tau_s: float = 3.0
    channels: tuple[int, ...] = (16, 32, 32)
    tcn_channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)
    kernel: int = 3
    packet_frames: int = PACKET_FRAMES
    dropout: float = 0.1
    centre_bands: bool = False
    lookahead: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.1 <= self.norm_tau_s <= 60.0:
            raise ConfigError(f"norm_tau_s must be in [0.1, 60] seconds, got {self.norm_tau_s}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"channels must be positive, got {self.channels}")
        if self.n_mels % (2 ** len(self.channels)):
            raise ConfigError(f"n_mels={self.n_mels} is not divisible by 2 ** {len(self.channels)} (one halving per block)")
        if self.tcn_channels < 1 or any(d < 1 for d in self.dilations):
            raise ConfigError(f"tcn_channels and dilations must be >= 1, got {self.tcn_channels}, {self.dilations}")
        if self.kernel < 1:
            raise ConfigError(f"kernel must be >= 1, got {self.kernel}")
        if self.packet_frames < DENSITY_STRIDE or self.packet_frames % DENSITY_STRIDE:
            raise ConfigError(f"packet_frames must be a positive multiple of {DENSITY_STRIDE}, got {self.packet_frames}")
        if not 0 <= self.lookahead <= 50:
            raise ConfigError(f"lookahead must be 0 to 50 output frames (2 s), got {self.lookahead}")
        if self.centre_bands:
            raise ConfigError("streamtcn normalises each band causally (norm_tau_s); centre_bands needs a whole window")


class CausalBandNorm(nn.Module):
    """Each band minus its bias-corrected exponential running mean (module docstring, layer 1).

    With decay ``a`` per frame: ``s_t = a s_{t-1} + (1 - a) x_t``, ``w_t = a w_{t-1} + (1 - a)``
    from ``s = w = 0``; the mean is ``s_t / w_t``. A chunk of L frames is one matmul with a fixed
    L x L lower-triangular kernel plus the decayed carry, so chunks of any length (a packet, a
    training window) give the same numbers; :meth:`run` returns the new ``(s, w)``.
    """

    def __init__(self, tau_s: float) -> None:
        super().__init__()
        self.decay = math.exp(-1.0 / (tau_s * FRAMES_PER_SECOND))
        self._kernels: dict[tuple[int, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def _kernel(self, n: int, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, ref.device, ref.dtype)
        if key not in self._kernels:  # built in numpy: a constant to torch.export, never float64 ops in the graph
            a = self.decay
            t = np.arange(n, dtype=np.float64)
            lag = t[None, :] - t[:, None]  # [i, j] = j - i
            k = np.where(lag >= 0, (1 - a) * a ** np.maximum(lag, 0), 0.0)  # input i -> output j
            carry = a ** (t + 1)  # what the state before the chunk weighs at output j
            self._kernels[key] = tuple(torch.from_numpy(v.astype(np.float32)).to(ref.device, ref.dtype) for v in (k, carry))
        return self._kernels[key]

    def run(self, x: torch.Tensor, s: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, 1, F, L), s (B, 1, F, 1), w (B, 1, 1, 1) -> (normalised x, new s, new w)."""
        k, carry = self._kernel(x.shape[-1], x)
        sums = torch.matmul(x, k) + s * carry  # (B, 1, F, L)
        weights = (1.0 - carry) + w * carry  # (B, 1, 1, L)
        return x - sums / weights, sums[..., -1:], weights[..., -1:]


class CausalConv2d(nn.Module):
    """A conv whose time kernel looks back only: ``kt - 1`` (x dilation) frames of history."""

    def __init__(self, c_in: int, c_out: int, kf: int, kt: int, stride_f: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.history = (kt - 1) * dilation
        self.conv = nn.Conv2d(c_in, c_out, (kf, kt), stride=(stride_f, 1), padding=(kf // 2, 0), dilation=(1, dilation), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence, zeros before frame 0."""
        return self.conv(F.pad(x, (self.history, 0)) if self.history else x)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The next frames of a stream with the last ``history`` input frames before them."""
        if not self.history:
            return self.conv(x), state
        full = torch.cat([state, x], dim=-1)
        return self.conv(full), full[..., -self.history :]


class _Block(nn.Module):
    """Conv block: causal conv (3 x 3, frequency stride 2), BatchNorm, ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = CausalConv2d(c_in, c_out, 3, 3, stride_f=2)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, state = self.conv.step(x, state)
        return F.relu(self.bn(y)), state


class _Residual(nn.Module):
    """Residual block: causal dilated conv, BatchNorm, ReLU, 1x1 conv, BatchNorm, + input."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = CausalConv2d(channels, channels, 1, kernel, dilation=dilation)
        self.bn1 = nn.BatchNorm2d(channels)
        self.mix = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def _rest(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.mix(F.relu(self.bn1(y)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._rest(x, self.conv(x))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, state = self.conv.step(x, state)
        return self._rest(x, y), state


@register_model("streamtcn")
class StreamTCN(DensityModel):
    """Causal band norm -> frame stacking -> conv blocks -> 1x1 -> dilated residual convs -> logit.

    (B, 1, 64, T) -> (B, T / 4); see the module docstring. A student: the streaming on-device model.
    """

    role = "student"
    config_class = StreamTCNConfig
    streaming = True

    def __init__(self, config: StreamTCNConfig) -> None:
        super().__init__(config)
        self.norm = CausalBandNorm(config.norm_tau_s)
        c_in, bands = DENSITY_STRIDE, config.n_mels
        blocks = []
        for c in config.channels:
            blocks.append(_Block(c_in, c))
            c_in, bands = c, bands // 2
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Conv2d(c_in * bands, config.tcn_channels, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(config.tcn_channels)
        self.tcn = nn.ModuleList(_Residual(config.tcn_channels, config.kernel, d) for d in config.dilations)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Conv2d(config.tcn_channels, 1, 1)
        self.apply(init_weights)
        nn.init.normal_(self.out.weight, std=1e-3)  # the output starts at out_bias on any input (the shipped run: 0.01)
        nn.init.constant_(self.out.bias, config.out_bias)
        self._bands = bands
        if config.lookahead:  # a teacher: it reads ahead, so it runs windows and never streams
            self.streaming = False
            self.role = "teacher"

    # -- shapes ------------------------------------------------------------------------------
    @property
    def packet_frames(self) -> int:
        return self.config.packet_frames

    def state_specs(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape)]`` of the state tensors ``step`` takes and returns, in order (batch 1)."""
        cfg = self.config
        specs = [("norm_sum", (1, 1, cfg.n_mels, 1)), ("norm_weight", (1, 1, 1, 1))]
        c_in, bands = DENSITY_STRIDE, cfg.n_mels
        for i, c in enumerate(cfg.channels):
            specs.append((f"block{i}", (1, c_in, bands, self.blocks[i].conv.history)))
            c_in, bands = c, bands // 2
        for i, block in enumerate(self.tcn):
            if block.conv.history:
                specs.append((f"tcn{i}", (1, cfg.tcn_channels, 1, block.conv.history)))
        return specs

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """The state at the start of a stream: zeros (the bias-corrected mean starts from nothing)."""
        device = next(self.parameters()).device
        return [torch.zeros((batch, *shape[1:]), device=device) for _, shape in self.state_specs()]

    @property
    def receptive_field_frames(self) -> int:
        """Output frames (40 ms) of history one output frame depends on, itself included."""
        return 1 + sum(b.conv.history for b in self.blocks) + sum(b.conv.history for b in self.tcn)

    # -- the two ways to run -----------------------------------------------------------------
    def _stack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, T) -> (B, 4, F, T / 4): four 10-ms frames as the channels of one 40-ms frame."""
        b, _, f, t = x.shape
        return x.reshape(b, f, t // DENSITY_STRIDE, DENSITY_STRIDE).permute(0, 3, 1, 2)

    def _head(self, y: torch.Tensor) -> torch.Tensor:
        b, c, f, t = y.shape
        y = F.relu(self.proj_bn(self.proj(y.reshape(b, c * f, 1, t))))
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ahead = self.config.lookahead
        if ahead:  # the causal logits of frames t + L, the input's last frame repeated past its end
            return self._causal(F.pad(x, (0, ahead * DENSITY_STRIDE, 0, 0), mode="replicate"))[:, ahead:]
        return self._causal(x)

    def _causal(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, t = x.shape
        if t > LONG_FRAMES:  # a whole run: in chunks with the state carried (memory stays bounded)
            state, out = self.initial_state(b), []
            for i in range(0, t, LONG_FRAMES):
                y, *state = self._step(x[..., i : i + LONG_FRAMES], *state)
                out.append(y)
            return torch.cat(out, dim=-1)
        zeros_s = x.new_zeros(b, 1, f, 1)
        zeros_w = x.new_zeros(b, 1, 1, 1)
        x, _, _ = self.norm.run(x, zeros_s, zeros_w)
        y = self._stack(x)
        for block in self.blocks:
            y = block(y)
        y = self._head(y)
        for block in self.tcn:
            y = block(y)
        return self.out(self.dropout(y)).reshape(b, t // DENSITY_STRIDE)

    def step(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One packet (B, 1, F, P) and the state (``state_specs`` order) -> (logits (B, P / 4), *new state)."""
        if self.config.lookahead:
            raise ConfigError(f"a streamtcn with lookahead {self.config.lookahead} reads ahead and cannot stream; run it on windows")
        return self._step(x, *state)

    def _step(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, _, f, t = x.shape
        s, w, *convs = state
        x, s, w = self.norm.run(x, s, w)
        new = [s, w]
        y = self._stack(x)
        it = iter(convs)
        for block in self.blocks:
            y, st = block.step(y, next(it))
            new.append(st)
        y = self._head(y)
        for block in self.tcn:
            if block.conv.history:
                y, st = block.step(y, next(it))
                new.append(st)
            else:
                y = block(y)
        return (self.out(self.dropout(y)).reshape(b, t // DENSITY_STRIDE), *new)


class StreamStep(nn.Module):
    """``model.step`` as a module's ``forward``: what export captures (packet + state in, logits + state out)."""

    def __init__(self, model: StreamTCN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.step(x, *state)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        m = self.model
        device = next(m.parameters()).device
        x = torch.randn(1, 1, m.config.n_mels, m.packet_frames, device=device)
        return (x, *m.initial_state())
