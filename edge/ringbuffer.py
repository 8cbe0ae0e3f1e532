"""A fixed-capacity ring of log-mel frames: written as frames arrive, read as model windows.

The streaming engine keeps only the frames that a future window can still need: at most one
window (``W`` frames) plus the ``DENSITY_STRIDE`` frames the end-of-stream tail window may reach
back (see ``edge.counter.Alignment.tail``), so ``capacity = W + DENSITY_STRIDE`` (for the
students: 200 + 4 frames x 64 mels x 4 bytes = 52 KB), and the frames of the block being counted
(:meth:`FrameRing.reserve`: the ring grows to the largest block seen). The storage is allocated
when it grows; :meth:`FrameRing.write` and :meth:`FrameRing.read_into` copy with at most two
slices and allocate nothing.
"""

from __future__ import annotations

import numpy as np


class FrameRing:
    """Ring of ``(rows, capacity)`` float32 frames addressed by absolute frame index."""

    def __init__(self, rows: int, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.rows, self.capacity = rows, capacity
        self._buf = np.zeros((rows, capacity), dtype=np.float32)
        self.written = 0  # absolute index of the next frame to be written
        self._kept = 0  # the oldest frame a growth kept (those before it were gone)

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest frame still held."""
        return max(self._kept, self.written - self.capacity)

    def reset(self) -> None:
        self._buf[:] = 0.0
        self.written = self._kept = 0

    def reserve(self, capacity: int) -> None:
        """Hold at least ``capacity`` frames from now on; the frames held stay."""
        if capacity <= self.capacity:
            return
        self._kept = self.oldest
        held = np.empty((self.rows, self.written - self._kept), dtype=np.float32)
        self.read_into(self._kept, held)
        self._buf = np.zeros((self.rows, capacity), dtype=np.float32)
        self.capacity = capacity
        self.written = self._kept
        self.write(held)

    def write(self, frames: np.ndarray) -> None:
        """Append ``(rows, k)`` frames; only the last ``capacity`` frames of a long write stay."""
        k = frames.shape[1]
        if frames.shape[0] != self.rows:
            raise ValueError(f"expected ({self.rows}, k) frames, got {frames.shape}")
        if k > self.capacity:  # only the newest frames can still be read
            frames, skipped = frames[:, k - self.capacity :], k - self.capacity
            self.written += skipped
            k = self.capacity
        pos = self.written % self.capacity
        first = min(k, self.capacity - pos)
        self._buf[:, pos : pos + first] = frames[:, :first]
        if first < k:  # wrapped round
            self._buf[:, : k - first] = frames[:, first:]
        self.written += k

    def read_into(self, start: int, out: np.ndarray) -> None:
        """Copy frames ``[start, start + out.shape[1])`` into ``out`` (``(rows, n)``, preallocated)."""
        n = out.shape[1]
        if start < self.oldest or start + n > self.written:
            raise IndexError(
                f"frames [{start}, {start + n}) not held (ring holds [{self.oldest}, {self.written}), "
                f"capacity {self.capacity})"
            )
        pos = start % self.capacity
        first = min(n, self.capacity - pos)
        out[:, :first] = self._buf[:, pos : pos + first]
        if first < n:  # wrapped round
            out[:, first:] = self._buf[:, : n - first]
