"""Audio sources: iterables of 16-kHz mono float32 blocks (contract 1), with their statistics.

- :class:`FileSource`: any file soundfile reads, streamed in blocks at its own rate, downmixed
  (channel mean) and resampled with soxr's streaming resampler at the quality ``load_audio``
  uses (bit-identical to it, so a streamed file gives exactly the offline count); optionally
  paced in real time.
- :class:`StdinSource`: raw PCM on stdin (s16le or f32le, any rate and channel count).
- :class:`MicSource`: a sounddevice callback ``InputStream`` at the device's native rate; the
  callback only copies the block into a bounded queue (a full queue drops the block and counts
  it; PortAudio overflow flags are counted as xruns; neither ever raises); the consumer resamples
  to 16 kHz with a streaming resampler.

Every source counts samples, clipped samples (|x| >= :data:`CLIP_LEVEL`) and keeps the level
(dBFS RMS) of the last block. Sources stop early when their ``stop`` event is set (Ctrl-C).

Documented behaviour on bad input (``edge-run`` turns :class:`AudioError` and
:class:`MicError` into one-line errors, exit codes 1 and 2):

- missing, unreadable/corrupt or empty (0 samples) file: :class:`AudioError` before any block;
- NaN/inf samples in a file or on stdin: :class:`AudioError` naming the first bad sample, when
  the stream reaches it (blocks before it have been counted); from a microphone, non-finite
  samples are replaced by 0 and counted (``bad_samples``);
- other sample rates (8 kHz, 48 kHz, ...) and multichannel audio: resampled and downmixed;
- clipped audio: counted like any other audio; ``clipped_fraction`` reports it;
- no input device / unknown device / no PortAudio: :class:`MicError`.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from edge.audio import AudioError
from edge.frontend import SAMPLE_RATE

RESAMPLE_QUALITY = "VHQ"  # as edge.audio.resample: streamed output is bit-identical to it
CLIP_LEVEL = 0.999
LEVEL_FLOOR_DB = -120.0


class MicError(RuntimeError):
    """No usable input device; the message is one line and says how to list devices."""


class Resampler:
    """Streaming soxr resampler to 16 kHz; a pass-through when the input already is 16 kHz."""

    def __init__(self, rate_in: float) -> None:
        self.rate_in = rate_in
        self._rs = None
        if rate_in != SAMPLE_RATE:
            import soxr

            self._rs = soxr.ResampleStream(rate_in, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self._rs is None:
            return x
        return self._rs.resample_chunk(x, last=last)


class Source:
    """Common statistics; subclasses implement ``blocks()``."""

    description = ""

    def __init__(self, block_s: float = 0.1, stop: threading.Event | None = None) -> None:
        if block_s <= 0:
            raise ValueError(f"block_s must be positive, got {block_s}")
        self.block_s = block_s
        self.stop = stop or threading.Event()
        self.samples = 0  # input samples seen (at the input rate, per channel)
        self.clipped = 0
        self.bad_samples = 0
        self.level_db = LEVEL_FLOOR_DB
        self.dropped_blocks = 0
        self.xruns = 0

    def _observe(self, mono: np.ndarray) -> None:
        self.samples += len(mono)
        if len(mono):
            self.clipped += int(np.count_nonzero(np.abs(mono) >= CLIP_LEVEL))
            rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
            self.level_db = max(LEVEL_FLOOR_DB, 20 * np.log10(rms + 1e-12))

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.samples if self.samples else 0.0

    def stats(self) -> dict:
        return {
            "source": self.description,
            "dropped_blocks": self.dropped_blocks,
            "xruns": self.xruns,
            "clipped_fraction": round(self.clipped_fraction, 6),
            "bad_samples": self.bad_samples,
        }

    def blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()


def _check_block(mono: np.ndarray, what: str, offset: int) -> None:
    """AudioError naming the first non-finite sample (``offset``: samples before this block)."""
    bad = ~np.isfinite(mono)
    if bad.any():
        first = offset + int(np.flatnonzero(bad)[0])
        raise AudioError(
            f"{what}: NaN/inf samples (first at input sample {first}); refusing to count on them"
        )


def _downmix(x: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) float32, channels averaged (as edge.audio.to_mono)."""
    return x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]


class FileSource(Source):
    """Stream an audio file in blocks of ``block_s`` seconds (see the module docstring)."""

    def __init__(self, path: str | Path, block_s: float = 0.1, realtime: bool = False,
                 stop: threading.Event | None = None) -> None:
        import soundfile as sf

        super().__init__(block_s, stop)
        self.path = Path(path)
        self.realtime = realtime
        if not self.path.exists():
            raise AudioError(f"{self.path}: no such audio file")
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:  # LibsndfileError, RuntimeError, TypeError...
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise AudioError(f"{self.path}: unreadable audio ({msg})") from e
        if self._file.frames == 0:
            self._file.close()
            raise AudioError(f"{self.path}: empty audio (0 samples)")
        self.rate = self._file.samplerate
        self.channels = self._file.channels
        seconds = self._file.frames / self.rate
        self.description = f"{self.path.name} ({self.rate} Hz, {self.channels} ch, {seconds:.1f} s)"

    def blocks(self) -> Iterator[np.ndarray]:
        resample = Resampler(self.rate)
        n = max(1, int(round(self.block_s * self.rate)))
        t0 = time.perf_counter()
        try:
            while not self.stop.is_set():
                x = self._file.read(n, dtype="float32", always_2d=True)
                last = len(x) < n or self._file.tell() >= self._file.frames
                mono = _downmix(x)
                _check_block(mono, str(self.path), self.samples)
                self._observe(mono)
                out = resample(mono, last=last)
                if self.realtime:  # pace: do not hand out audio before its time
                    ahead = self.samples / self.rate - (time.perf_counter() - t0)
                    if ahead > 0:
                        self.stop.wait(ahead)
                if len(out):
                    yield out
                if last:
                    break
        finally:
            self._file.close()


class StdinSource(Source):
    """Raw PCM from a binary stream (default ``sys.stdin.buffer``)."""

    FORMATS = {"s16le": ("<i2", 1 / 32768.0), "f32le": ("<f4", 1.0)}

    def __init__(self, rate: int = SAMPLE_RATE, fmt: str = "s16le", channels: int = 1, block_s: float = 0.1,
                 stream: BinaryIO | None = None, stop: threading.Event | None = None) -> None:
        super().__init__(block_s, stop)
        if fmt not in self.FORMATS:
            raise ValueError(f"unknown raw PCM format {fmt!r} (expected one of {sorted(self.FORMATS)})")
        if rate <= 0 or channels <= 0:
            raise ValueError(f"rate and channels must be positive, got {rate} Hz, {channels} ch")
        self.rate, self.fmt, self.channels = rate, fmt, channels
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.description = f"stdin ({fmt}, {rate} Hz, {channels} ch)"

    def blocks(self) -> Iterator[np.ndarray]:
        dtype, scale = self.FORMATS[self.fmt]
        frame_bytes = np.dtype(dtype).itemsize * self.channels
        n_bytes = max(1, int(round(self.block_s * self.rate))) * frame_bytes
        resample = Resampler(self.rate)
        pending = b""
        while not self.stop.is_set():
            chunk = self.stream.read(n_bytes)
            data = pending + (chunk or b"")
            usable = len(data) // frame_bytes * frame_bytes
            pending = data[usable:]
            x = (np.frombuffer(data[:usable], dtype=dtype).astype(np.float32) * np.float32(scale))
            mono = _downmix(x.reshape(-1, self.channels))
            _check_block(mono, "stdin", self.samples)
            self._observe(mono)
            out = resample(mono, last=not chunk)
            if len(out):
                yield out
            if not chunk:
                break
        if self.samples == 0 and not self.stop.is_set():
            raise AudioError("stdin: empty audio (0 samples)")


def import_sounddevice():
    """sounddevice, or :class:`MicError` when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as e:  # "PortAudio library not found"
        raise MicError(f"no audio input: PortAudio is missing ({e}); apt-get install libportaudio2") from e
    return sd


def list_devices() -> str:
    """The input devices PortAudio sees, one per line (``*`` marks the default)."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as e:
        raise MicError(f"cannot list audio devices ({e})") from e
    lines = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] > 0:
            mark = "*" if i == default_in else " "
            lines.append(f"{mark} {i:3d}  {d['name']}  ({d['max_input_channels']} in, {d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines) if lines else "(no input devices)"


HINT = "list input devices with: edge-run --list-devices"


def resolve_device(spec: str | int | None) -> tuple[int, dict]:
    """``--device NAME|INDEX`` -> (device for sounddevice, its info); :class:`MicError` if none."""
    sd = import_sounddevice()
    if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
        spec = int(spec)
    try:
        info = sd.query_devices(spec, kind="input") if spec is None else sd.query_devices(spec)
    except (sd.PortAudioError, ValueError) as e:
        what = "no default input device" if spec is None else f"no input device {spec!r}"
        raise MicError(f"{what} ({str(e).splitlines()[0]}); {HINT}") from e
    if info["max_input_channels"] < 1:
        raise MicError(f"device {spec!r} ({info['name']}) has no input channels; {HINT}")
    return info["index"], info


class MicSource(Source):
    """Live microphone; use as a context manager or call :meth:`close`.

    ``on_start(self)`` is called (from the consumer thread) when the first block arrives, i.e.
    once audio is really flowing: ``edge-run`` prints its "listening" line there.
    """

    def __init__(self, device: str | int | None = None, block_s: float = 0.05, queue_blocks: int = 64,
                 stop: threading.Event | None = None, on_start=None) -> None:
        super().__init__(block_s, stop)
        self.sd = import_sounddevice()
        self.device, self.info = resolve_device(device)
        self.rate = float(self.info["default_samplerate"])  # the device's native rate
        self.on_start = on_start
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=queue_blocks)
        self._status_flags = 0
        self.description = f"{self.info['name']} ({self.rate:.0f} Hz)"
        try:
            self._stream = self.sd.InputStream(
                device=self.device, samplerate=self.rate, channels=1, dtype="float32",
                blocksize=max(1, int(round(block_s * self.rate))), callback=self._callback,
            )
        except (self.sd.PortAudioError, ValueError) as e:
            raise MicError(f"cannot open input device {self.info['name']!r} ({str(e).splitlines()[0]}); {HINT}") from e

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: copy and go
        if status:
            if status.input_overflow:
                self.xruns += 1
            self._status_flags += 1
        try:
            self._queue.put_nowait(indata[:, 0].copy())
        except queue.Full:
            self.dropped_blocks += 1
        except Exception:  # never let an exception abort the stream
            self.dropped_blocks += 1

    def blocks(self) -> Iterator[np.ndarray]:
        resample = Resampler(self.rate)
        started = False
        self._stream.start()
        try:
            while not self.stop.is_set():
                try:
                    x = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if not self._stream.active:
                        name = self.info["name"]
                        raise MicError(f"input device {name!r} stopped delivering audio; {HINT}")
                    continue
                if not started:
                    started = True
                    if self.on_start:
                        self.on_start(self)
                bad = ~np.isfinite(x)
                if bad.any():
                    self.bad_samples += int(bad.sum())
                    x = np.where(bad, np.float32(0), x)
                self._observe(x)
                out = resample(x)
                if len(out):
                    yield out
            tail = resample(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield tail
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except self.sd.PortAudioError:
            pass

    def __enter__(self) -> "MicSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
