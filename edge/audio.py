"""Audio in: every reader returns mono float32 in [-1, 1] at 16 kHz (contract 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.frontend import SAMPLE_RATE


class AudioError(ValueError):
    """Audio that cannot be used; the message is one line naming the file and the problem."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1, dtype=np.float32) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Offline high-quality resampling (soxr VHQ); a no-op when the rates are equal."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(audio, sr_in, sr_out, quality="VHQ").astype(np.float32)


def check_finite(audio: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(audio)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise AudioError(f"{what}: {int(bad.sum())} NaN/inf samples (first at sample {first}); refusing to count on them")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any file soundfile can read; downmix and resample to ``sample_rate``.

    Raises :class:`AudioError` for missing, unreadable, empty or non-finite audio.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such audio file")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AudioError(f"{path}: unreadable audio ({msg})") from e
    if audio.size == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    check_finite(audio, str(path))
    return resample(to_mono(audio), sr, sample_rate)
