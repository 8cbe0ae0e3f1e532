"""The log-mel front end: the one definition footfall has (contract 2).

Every other front end (the torch twin in ``train/models/frontend.py``, the Java one in
``android_demo/core``) is tested equal to this one.

Framing is causal so that streaming reproduces offline frames exactly: frame ``i`` is the
``N_FFT`` samples that *end* at sample ``(i + 1) * HOP_LENGTH``; the stream starts with
``N_FFT - HOP_LENGTH`` zeros of history. Hence ``n`` samples give exactly ``n // HOP_LENGTH``
frames, a 5-s window (80 000 samples) gives 500 frames, and frame ``i`` needs no sample after
``(i + 1) * HOP_LENGTH`` (no look-ahead).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from edge.contract import (  # the front end's contract, defined once (re-exported here)
    F_MAX,
    F_MIN,
    FRAMES_PER_SECOND,
    HISTORY,
    HOP_LENGTH,
    LOG_EPS,
    N_FFT,
    N_FREQS,
    N_MELS,
    SAMPLE_RATE,
    frontend_params,
)

ASSETS = Path(__file__).resolve().parent / "assets"
MEL_FILTERS_PATH = ASSETS / "mel_filters.npy"


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa's default)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def compute_mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters, (N_MELS, N_FREQS) float32.

    Only used to (re)create the frozen ``assets/mel_filters.npy``; runtime code calls
    :func:`mel_filters`, which loads the shipped array.
    """
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FREQS)
    mel_pts = np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2)
    hz_pts = _mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]  # equal area per band
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """The frozen filterbank, (N_MELS, N_FREQS) float32, loaded once from the shipped asset."""
    try:
        filters = np.load(MEL_FILTERS_PATH)
    except FileNotFoundError:  # a source checkout before the asset was generated
        filters = compute_mel_filters()
    filters.setflags(write=False)
    return filters


@lru_cache(maxsize=1)
def hann_window() -> np.ndarray:
    """Periodic Hann window of N_FFT samples (float64), as torch.hann_window(periodic=True)."""
    n = np.arange(N_FFT)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    w.setflags(write=False)
    return w


MEL_GROUP = 8  # mel bands per block of the banded projection
MEL_ROWS = 32  # frames per product of the projection: BLAS sums a row in an order that depends on the rows it is given,
# so every product takes exactly this many (the last one padded) and a frame is computed alike in any block


@lru_cache(maxsize=1)
def _mel_blocks() -> tuple[tuple[int, int, int, np.ndarray], ...]:
    """The filterbank as blocks of MEL_GROUP consecutive bands with the rfft bins they touch.

    Each triangle spans a few bins, so a dense (257 x 64) projection multiplies mostly zeros;
    per block it is ``power[:, lo:hi] @ W[lo:hi, bands]``, a third of the dense work. Returns
    ``(lo, hi, first_band, (hi - lo, bands) float32 weights)`` per block; the entries left out
    are exact zeros of the frozen filterbank.
    """
    filters = mel_filters()
    blocks = []
    for b in range(0, N_MELS, MEL_GROUP):
        bins = np.flatnonzero((filters[b : b + MEL_GROUP] != 0).any(axis=0))
        lo, hi = int(bins[0]), int(bins[-1]) + 1
        w = np.ascontiguousarray(filters[b : b + MEL_GROUP, lo:hi].T, dtype=np.float32)
        w.setflags(write=False)
        blocks.append((lo, hi, b, w))
    return tuple(blocks)


@lru_cache(maxsize=1)
def _rfft_packed():
    """The in-place packed real FFT: ``f(x)`` overwrites (T, N_FFT) float32 ``x`` with its spectrum.

    It is SciPy's pocketfft (``scipy.fftpack.rfft``'s kernel, ``r2r_fftpack``). Importing it the
    usual way runs ``scipy.fft``'s array-API layer first: 0.33 s, more than the whole front end
    of a 10-min file. The kernel is a self-contained extension module, so it is loaded from the
    installed scipy's folder directly (~1 ms), without importing any of scipy's Python. Should a
    scipy release move it, the usual import is the fallback: the same kernel, the same numbers,
    only the slower start.
    """
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("scipy")  # locates the package without importing it
    folder = Path(spec.origin).parent / "fft" / "_pocketfft" if spec and spec.origin else None
    for path in sorted(folder.glob("pypocketfft*.so")) if folder and folder.is_dir() else []:
        try:
            loader = importlib.machinery.ExtensionFileLoader("pypocketfft", str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("pypocketfft", path, loader=loader))
            loader.exec_module(module)
            kernel = module.r2r_fftpack
        except (ImportError, AttributeError, OSError):
            break
        return lambda x: kernel(x, (1,), True, True, 0, x, 1)
    from scipy import fftpack

    return lambda x: fftpack.rfft(x, axis=-1, overwrite_x=True)


@lru_cache(maxsize=1)
def _hann32() -> np.ndarray:
    w = hann_window().astype(np.float32)
    w.setflags(write=False)
    return w


class Workspace:
    """Scratch arrays for :func:`frames_to_log_mel` of up to ``capacity`` frames, reused every call.

    Per hop the front end needs ~0.6 MB of temporaries (200 frames). Fresh arrays that size are
    mmapped by malloc and page-faulted in on every call, which cost more than the FFT itself
    (1.3 ms against 0.6 ms per hop, measured with the earlier float64 front end); a streaming
    front end keeps them.
    """

    def __init__(self, capacity: int) -> None:
        capacity = -(-capacity // MEL_ROWS) * MEL_ROWS  # whole chunks of the mel projection
        self.capacity = capacity
        self.frames = np.empty((capacity, N_FFT), dtype=np.float32)  # windowed, then its spectrum
        self.power = np.empty((capacity, N_FREQS), dtype=np.float32)
        self.mel = np.empty((capacity, N_MELS), dtype=np.float32)

    @classmethod
    def fit(cls, work: "Workspace | None", n_frames: int) -> "Workspace":
        """``work`` if it holds ``n_frames``, else a new workspace of that size."""
        return work if work is not None and work.capacity >= n_frames else cls(n_frames)


def frames_to_log_mel(frames: np.ndarray, work: Workspace | None = None) -> np.ndarray:
    """Log-mel of already-cut frames: (T, N_FFT) samples -> (N_MELS, T) float32.

    float32 throughout, as the torch twin the models were trained on (tested equal within 1e-4).
    The real FFT is SciPy's in-place ``fftpack.rfft`` kernel (:func:`_rfft_packed`): it writes
    its packed spectrum ``[r0, r1, i1, ..., r255, i255, r256]`` over its input instead of
    allocating a complex array, at 0.65 us a frame against numpy's float32 rfft's 1.4.
    Then the power of each bin, the banded mel projection (:func:`_mel_blocks`) and the log.
    ``work`` (at least T frames) holds the temporaries so that a stream allocates only the result.
    About 2.5x faster than the float64 numpy version it replaced (0.4 against 1.0 ms for a 2-s
    hop of 200 frames, one thread).

    A frame's result does not depend on the other frames, to the bit: BLAS sums a row's mel
    projection in an order that depends on how many rows the call holds (the same frame in batches
    of different sizes differed in the last bit, <= 5e-7 in log-mel, and an int8 model's input
    then landed in the next quantization step now and then), so the projection always takes
    :data:`MEL_ROWS` rows at a time. Streaming reproduces the offline frames bit for bit, whatever
    the blocks (``tests/test_frontend.py``).
    """
    t = len(frames)
    work = Workspace.fit(work, t)
    x = np.multiply(frames, _hann32(), out=work.frames[:t])
    x = _rfft_packed()(x)  # packed real spectrum, in place
    np.square(x, out=x)
    power = work.power[:t]
    power[:, 0] = x[:, 0]
    np.add(x[:, 1 : N_FFT - 1 : 2], x[:, 2:N_FFT:2], out=power[:, 1 : N_FREQS - 1])
    power[:, N_FREQS - 1] = x[:, N_FFT - 1]
    mel = work.mel[:t]
    padded_t = -(-t // MEL_ROWS) * MEL_ROWS
    if padded_t > t:  # the last chunk's rows past the frames: zeros (any finite value would do)
        work.power[t:padded_t] = 0.0
    # always MEL_ROWS rows a product: the same sums for a frame in any call. The chunks are a stack
    # that one matmul call takes: numpy still calls BLAS once per MEL_ROWS-row matrix, with the same
    # operands as one call per chunk (the same bits), at a third of the dispatch cost (the 56 calls
    # for a 2-s block's 200 frames cost 78 us, the 8 calls 30)
    chunks = padded_t // MEL_ROWS
    power_chunks = work.power[:padded_t].reshape(chunks, MEL_ROWS, N_FREQS)
    mel_chunks = work.mel[:padded_t].reshape(chunks, MEL_ROWS, N_MELS)
    for lo, hi, b, w in _mel_blocks():
        np.matmul(power_chunks[:, :, lo:hi], w, out=mel_chunks[:, :, b : b + w.shape[1]])
    mel += np.float32(LOG_EPS)
    np.log(mel, out=mel)
    return mel.T.copy()  # a fresh (N_MELS, T) array: the workspace is reused


def frame_signal(padded: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, N_FFT) strided view: frame i = padded[i*HOP : i*HOP + N_FFT].

    ``as_strided`` directly (read-only): ``sliding_window_view`` costs ~0.15 ms of Python per call,
    a tenth of a hop's front end.
    """
    padded = np.ascontiguousarray(padded)
    n_frames = max(0, min(n_frames, (len(padded) - N_FFT) // HOP_LENGTH + 1))
    step = padded.strides[0]
    return np.lib.stride_tricks.as_strided(padded, shape=(n_frames, N_FFT), strides=(HOP_LENGTH * step, step), writeable=False)


def log_mel(audio: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
    """Log-mel spectrogram of mono 16-kHz float audio: (n,) -> (N_MELS, n // HOP_LENGTH).

    ``history`` is the HISTORY samples preceding ``audio`` (zeros at the start of a stream);
    passing it lets a slice of a long recording reproduce the frames of the whole recording.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"log_mel expects mono audio of shape (n,), got {audio.shape}")
    if history is None:
        history = np.zeros(HISTORY, dtype=np.float32)
    elif history.shape != (HISTORY,):
        raise ValueError(f"history must hold {HISTORY} samples, got {history.shape}")
    n_frames = len(audio) // HOP_LENGTH
    if n_frames == 0:
        return np.zeros((N_MELS, 0), dtype=np.float32)
    padded = np.concatenate([history.astype(np.float32), audio[: n_frames * HOP_LENGTH]])
    return frames_to_log_mel(frame_signal(padded, n_frames))


class StreamingLogMel:
    """Incremental front end: push blocks of any size, get exactly the offline frames.

    Keeps a fixed buffer of HISTORY + HOP_LENGTH - 1 pending samples at most; each push
    computes only the frames its samples complete.
    """

    def __init__(self) -> None:
        self._pending = np.zeros(HISTORY, dtype=np.float32)  # history + not-yet-framed samples
        self.frames_emitted = 0
        self._work: Workspace | None = None  # grown to the largest block seen, then reused
        self._buf = np.empty(0, dtype=np.float32)  # pending + the pushed block, likewise reused

    def reset(self) -> None:
        self.__init__()

    def push(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 samples -> (N_MELS, k) new frames (k may be 0)."""
        samples = np.asarray(samples, dtype=np.float32)
        p, need = len(self._pending), len(self._pending) + len(samples)
        if len(self._buf) < need:
            self._buf = np.empty(need, dtype=np.float32)
        buf = self._buf[:need]
        buf[:p] = self._pending
        buf[p:] = samples
        n_frames = (len(buf) - HISTORY) // HOP_LENGTH
        if n_frames <= 0:
            self._pending = buf.copy()
            return np.zeros((N_MELS, 0), dtype=np.float32)
        self._work = Workspace.fit(self._work, n_frames)
        out = frames_to_log_mel(frame_signal(buf, n_frames), self._work)
        self._pending = buf[n_frames * HOP_LENGTH :].copy()
        self.frames_emitted += n_frames
        return out
