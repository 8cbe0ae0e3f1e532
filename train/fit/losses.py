"""The losses of step-onset models: one logit per 40-ms output frame (contract 3).

- :class:`ShiftTolerantBCE`: against step frames (labels: steps per output frame). A step the
  network puts one frame early or late is not punished: the logits are max-pooled over
  ``+-tolerance`` frames before they meet a positive, and frames within ``2 * tolerance`` of a
  step (but not on it) are left out of the negatives. As in Beat This! (Foscarin et al. 2024).
  Soft labels (a teacher's probabilities, PSL) are compared frame by frame (``tolerance`` 0).
- :func:`weak_count_loss`: the paper's weak supervision, a window's step count, through the sum
  of the activation's probabilities (how a teacher learns from window counts alone).
- :func:`onset_loss`: what a teacher run uses, by the target's shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class ShiftTolerantBCE:
    """BCE on logits (B, T') against step frames (B, T') that tolerates ``tolerance`` frames of jitter.

    ``pos_weight`` weighs the positive frames (about one frame in eight is a step at 190 spm).
    The first and last ``tolerance`` frames of a window are left out (their neighbourhood is cut).
    """

    def __init__(self, tolerance: int = 1, pos_weight: float = 2.0) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 frames, got {tolerance}")
        if pos_weight <= 0:
            raise ValueError(f"pos_weight must be > 0, got {pos_weight}")
        self.tolerance, self.pos_weight = tolerance, pos_weight

    def _spread(self, x: torch.Tensor, radius: int) -> torch.Tensor:
        return F.max_pool1d(x.unsqueeze(1), 2 * radius + 1, stride=1, padding=radius).squeeze(1) if radius else x

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and step frames {tuple(target.shape)} differ")
        tol = self.tolerance
        y = target.clamp(0.0, 1.0)  # two steps in one 40-ms frame are one onset
        pooled = self._spread(logits, tol)  # the best logit within +-tol frames
        near = self._spread(y, 2 * tol)  # > 0 within 2 tol of a step
        weight = (y > 0).float() * self.pos_weight + (near == 0).float()  # positives, and negatives far from steps
        if tol:
            pooled, y, weight = pooled[:, tol:-tol], y[:, tol:-tol], weight[:, tol:-tol]
        # the mean over frames (not over the weights): every rank of a DDP run divides by the same number
        return F.binary_cross_entropy_with_logits(pooled, y, weight=weight, reduction="mean")


def soft_bce(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Frame-by-frame BCE against soft labels in [0, 1] (a teacher's activation)."""
    return F.binary_cross_entropy_with_logits(logits, probs.clamp(0.0, 1.0))


def weak_count_loss(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """MSE between each window's step count (B,) and the sum of its step probabilities."""
    return F.mse_loss(torch.sigmoid(logits).sum(dim=-1), counts)


def onset_loss(logits: torch.Tensor, target: torch.Tensor, _bce: ShiftTolerantBCE = ShiftTolerantBCE()) -> torch.Tensor:
    """A teacher's loss: weak counts (B,) through :func:`weak_count_loss`, step frames (B, T')
    through :class:`ShiftTolerantBCE`."""
    if target.dim() == 1:
        return weak_count_loss(logits, target)
    return _bce(logits, target)


def soft_counts(logits: torch.Tensor) -> torch.Tensor:
    """The expected step count of each window (B,): the sum of its probabilities (progress figures only;
    counts come from the event counter)."""
    return torch.sigmoid(logits).sum(dim=-1)
