"""The torch twin of ``edge/frontend.py`` for batched (GPU) feature extraction.

It imports every constant and the frozen filterbank from ``edge.frontend``; only the arithmetic
is re-expressed in torch. ``tests/test_frontend.py`` holds it equal to the numpy front end.
"""

from __future__ import annotations

import torch

from edge.frontend import HISTORY, HOP_LENGTH, LOG_EPS, N_FFT, mel_filters


class LogMel(torch.nn.Module):
    """(B, n) audio -> (B, 1, N_MELS, n // HOP_LENGTH) log-mel, causal framing as edge."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float32), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filters().copy()), persistent=False)  # (N_MELS, N_FREQS)

    def forward(self, audio: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        if audio.ndim == 1:
            audio = audio[None]
        batch, n = audio.shape
        n_frames = n // HOP_LENGTH
        if history is None:
            history = audio.new_zeros(batch, HISTORY)
        padded = torch.cat([history, audio[:, : n_frames * HOP_LENGTH]], dim=1)
        frames = padded.unfold(1, N_FFT, HOP_LENGTH)[:, :n_frames]  # (B, T, N_FFT)
        spec = torch.fft.rfft(frames * self.window, n=N_FFT, dim=-1)  # (B, T, N_FREQS)
        power = spec.real.square() + spec.imag.square()
        mel = power @ self.filters.T  # (B, T, N_MELS)
        return torch.log(mel + LOG_EPS).transpose(1, 2).unsqueeze(1)
