"""Audio in: every reader returns mono float32 in [-1, 1] at 16 kHz (contract 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.frontend import N_FREQS, SAMPLE_RATE, mel_filters

# Inputs below SAMPLE_RATE are resampled, but what lies above their Nyquist frequency is not
# there: at 8 kHz the top 22 % of the mel bands are empty and a 16-kHz model counted a run 48 %
# low (a warning); below MIN_SAMPLE_RATE (a third of the bands empty at 6 kHz) a count means
# nothing (an error).
MIN_SAMPLE_RATE = 8_000


class AudioError(ValueError):
    """Audio that cannot be used; the message is one line naming the file and the problem."""


def missing_band_fraction(rate: float) -> float:
    """Fraction of the front end's mel bands whose peak lies above ``rate / 2`` (empty at that rate)."""
    peaks = np.linspace(0.0, SAMPLE_RATE / 2, N_FREQS)[mel_filters().argmax(axis=1)]  # (N_MELS,) Hz
    return float(np.mean(peaks > rate / 2))


def check_rate(rate: float, what: str) -> str | None:
    """Refuse a rate too low to count (:class:`AudioError`); a warning line for one below 16 kHz."""
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"{what}: sample rate {rate:g} Hz is too low to count steps (at least {MIN_SAMPLE_RATE} Hz; "
            f"the model hears up to {SAMPLE_RATE // 2} Hz)"
        )
    if rate < SAMPLE_RATE:
        return (
            f"{what}: sample rate {rate:g} Hz: nothing above {rate / 2:g} Hz, so {100 * missing_band_fraction(rate):.0f} % "
            f"of the model's mel bands are empty; the count may be low (record at {SAMPLE_RATE} Hz or more)"
        )
    return None


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged.

    Stereo is ``(L + R) * 0.5``: the same bits as ``mean(axis=1)`` (one float32 add, then an exact
    halving) at a thirtieth of its cost (1.48 against 0.05 ms per audio second, measured).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        return audio
    if audio.shape[1] == 1:
        return audio[:, 0]
    if audio.shape[1] == 2:
        mono = np.add(audio[:, 0], audio[:, 1])
        mono *= np.float32(0.5)
        return mono
    return audio.mean(axis=1, dtype=np.float32)


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
