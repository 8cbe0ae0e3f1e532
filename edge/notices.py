"""What the input is, beside what was counted: silence, a constant (DC) level, a steady tone.

None of these is running, yet a model may count a few steps in them; ``edge-run`` tells the runner
so in its summary rather than handing over a count of nothing. :class:`InputCheck` keeps cheap
statistics of the 16-kHz blocks as they pass (numpy only: a few vector operations per block and
one FFT per :data:`SPECTRUM_EVERY_S` of audio) and turns them into notices at the end:

- silent: the RMS of the whole input is below :data:`SILENCE_DBFS` (digital silence, a muted or
  unplugged microphone);
- DC: the mean holds more than :data:`DC_SHARE` of the power (a constant level, not sound), over
  :data:`FRAME_S` at least (a few samples of any sound hold a mean);
- steady tone: the level of :data:`FRAME_S` frames hardly moves (coefficient of variation below
  :data:`STEADY_CV`; footfalls make it swing) and the :data:`PEAK_BINS` strongest bins of the
  summed spectrum hold more than :data:`TONE_SHARE` of its power (a sine, mains hum, a square
  wave's harmonics; noise spreads its power over every bin);
- otherwise, no step counted in at least :data:`NO_STEPS_MIN_S`: "no running heard".

The judgements are over the whole input: a run with a silent minute in it is a run.
"""

from __future__ import annotations

import functools

import numpy as np

from edge.frontend import SAMPLE_RATE

SILENCE_DBFS = -90.0  # a microphone's own noise is at -70 dBFS or above; below this nothing was recorded
DC_SHARE = 0.9  # mean^2 / mean(x^2)
FRAME_S = 0.1  # level frames: long enough that a tone of 20 Hz or more gives a constant frame power
FRAME = int(FRAME_S * SAMPLE_RATE)  # 1600 samples
STEADY_CV = 0.1  # std / mean of the frame powers: white noise 0.035, a sine 0-0.04, steps on a run > 1
SPECTRUM_S = 1.0  # slices of 1 s: 1-Hz bins
SPECTRUM = int(SPECTRUM_S * SAMPLE_RATE)  # 16000 samples -> 8001 bins
SPECTRUM_EVERY_S = 10.0  # one slice per 10 s of audio (the first at 0 s)
PEAK_BINS = 80  # 1 % of the bins: a tone and its Hann-window neighbours, ~26 odd harmonics of a square wave
TONE_SHARE = 0.9  # a sine > 0.999, a square wave ~0.99, white noise ~0.02, a run 0.02-0.07
NO_STEPS_MIN_S = 10.0  # shorter inputs with no step say nothing: the count shows it


@functools.cache
def _window() -> np.ndarray:
    """The Hann window of a spectrum slice, (SPECTRUM,) float32."""
    return np.hanning(SPECTRUM).astype(np.float32)


class InputCheck:
    """Statistics of the counted audio (16-kHz mono float32 blocks, in order); see the module docstring."""

    def __init__(self) -> None:
        self.samples = 0
        self._sum = 0.0  # of x
        self._power = 0.0  # sum of x^2
        self._carry = np.zeros(0, np.float32)  # samples of an unfinished level frame
        self._frames = 0
        self._frame_sum = 0.0  # of the frame powers
        self._frame_sq = 0.0  # of their squares
        self._slice: list[np.ndarray] = []  # the spectrum slice being gathered
        self._slice_len = 0
        self._next_slice = 0  # sample index where the next slice starts
        self._spectrum = np.zeros(SPECTRUM // 2 + 1)

    def observe(self, block: np.ndarray) -> None:
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if not len(x):
            return
        start = self.samples
        self.samples += len(x)
        self._sum += float(x.sum(dtype=np.float64))
        self._power += float(np.dot(x, x))  # float32 BLAS: a float64 dot costs 100x more here

        framed = np.concatenate([self._carry, x]) if len(self._carry) else x
        n = len(framed) // FRAME
        if n:
            f = framed[: n * FRAME].reshape(n, FRAME)
            p = np.einsum("ij,ij->i", f, f).astype(np.float64) / FRAME  # (n,) frame powers
            self._frames += n
            self._frame_sum += float(p.sum())
            self._frame_sq += float(np.square(p).sum())
        self._carry = framed[n * FRAME :].copy()

        end = self.samples
        while True:  # the part of this block that belongs to the slice being gathered
            lo = max(self._next_slice + self._slice_len, start)
            hi = min(self._next_slice + SPECTRUM, end)
            if hi <= lo:
                break
            self._slice.append(x[lo - start : hi - start])
            self._slice_len += hi - lo
            if self._slice_len < SPECTRUM:
                break
            s = np.concatenate(self._slice) * _window()
            self._spectrum += np.abs(np.fft.rfft(s)) ** 2
            self._slice, self._slice_len = [], 0
            self._next_slice += int(SPECTRUM_EVERY_S * SAMPLE_RATE)

    @property
    def level_dbfs(self) -> float:
        """RMS level of everything observed (-inf for digital silence)."""
        rms = np.sqrt(self._power / self.samples) if self.samples else 0.0
        return float(20 * np.log10(rms)) if rms > 0 else float("-inf")

    def tone_hz(self) -> float | None:
        """The frequency of the strongest bin when the input is a steady tone, else None."""
        if not self._frames or not self._spectrum.any():
            return None
        mean = self._frame_sum / self._frames
        cv = np.sqrt(max(0.0, self._frame_sq / self._frames - mean * mean)) / mean if mean > 0 else 0.0
        if cv >= STEADY_CV:
            return None
        share = np.sort(self._spectrum)[-PEAK_BINS:].sum() / self._spectrum.sum()
        return float(np.argmax(self._spectrum) / SPECTRUM_S) if share > TONE_SHARE else None

    def notices(self, steps: int) -> list[str]:
        """One line per thing the runner should know about the input (``steps``: the whole steps counted)."""
        if not self.samples:
            return []
        seconds = self.samples / SAMPLE_RATE
        level = self.level_dbfs
        if level < SILENCE_DBFS:
            what = "digital silence" if level == float("-inf") else f"{level:.0f} dBFS"
            return [f"no running heard: the input is silent ({what}); is the microphone muted or covered?"]
        if self._frames and self._sum**2 / self.samples > DC_SHARE * self._power:  # a constant level over a frame at least
            return ["no running heard: the input is a constant (DC) level, not sound"]
        tone = self.tone_hz()
        if tone is not None:
            counted = f"; the {steps} steps counted are not a run's" if steps else ""
            return [f"the input is a steady tone (strongest at {tone:.0f} Hz), not running{counted}"]
        if steps == 0 and seconds >= NO_STEPS_MIN_S:
            return ["no running heard: no step in the whole input"]
        return []
