"""Audio sources: iterables of 16-kHz mono float32 blocks (contract 1), with their statistics.

- :class:`FileSource`: any file soundfile reads, streamed in blocks at its own rate, downmixed
  (channel mean) and resampled with soxr's streaming resampler at the quality ``load_audio``
  uses (bit-identical to it, so a streamed file gives exactly the offline count); optionally
  paced in real time.
- :class:`StdinSource`: raw PCM on stdin (s16le or f32le, any rate and channel count, channels
  interleaved and downmixed), a WAV stream, or a whole file in another container; also a FIFO or
  ``<(...)`` given as a file (:func:`is_stream`), which cannot be sought in.
- :class:`MicSource`: a sounddevice callback ``InputStream`` at the device's native rate; the
  callback only copies the block into a bounded queue (a full queue drops the block and counts
  it; PortAudio overflow flags are counted as xruns; neither ever raises); the consumer resamples
  to 16 kHz with a streaming resampler.

Every source counts samples, clipped samples (|x| >= :data:`CLIP_LEVEL`) and keeps the level
(dBFS RMS) of the last block. Sources stop early when their ``stop`` event is set (Ctrl-C).

Documented behaviour on bad input (``edge-run`` turns :class:`AudioError` and
:class:`MicError` into one-line errors; one raised mid-stream comes after the blocks before it,
so what was counted so far is kept and summarised):

- missing, unreadable/corrupt or empty (0 samples) file: :class:`AudioError` before any block;
- a file that stops decoding midway (a broken FLAC frame): the blocks before it, then
  :class:`AudioError` naming the time;
- a file that decodes to less than its header announces (a truncated WAV, a corrupt Ogg): counted
  as far as it decodes, with a warning giving the decoded and the announced duration;
- an Ogg file that does not end with its end-of-stream page (cut short, or other bytes appended:
  libsndfile announces only what it decodes): counted as far as it decodes, with a warning that it
  is damaged after that many seconds (:func:`ogg_end_problem`);
- MP4/M4A and AAC (a phone recorder's formats): :class:`AudioError` saying how to convert them
  with ffmpeg;
- NaN/inf samples in a file or on stdin: the samples before the first bad one, then
  :class:`AudioError` naming it; from a microphone, non-finite samples are replaced by 0 and
  counted (``bad_samples``);
- sample rates below :data:`edge.audio.MIN_SAMPLE_RATE`: :class:`AudioError` before any block;
  other rates below 16 kHz: resampled, with a warning (the top mel bands are empty); higher
  rates and multichannel audio: resampled and downmixed;
- stdin: a RIFF/WAVE header is read (its rate, channels and encoding replace ``--stdin-rate``
  and ``--stdin-format``); other containers (FLAC, Ogg, MP3, ...) are read whole and decoded;
  anything else is raw PCM;
- clipped audio: counted like any other audio; ``clipped_fraction`` reports it;
- no input device / unknown device / no PortAudio: :class:`MicError`; a device that stops
  delivering audio mid-run: :class:`MicError` after the blocks it delivered.

Warnings are one line each, collected in ``Source.warnings`` (those known when the source opens
are there before the first block).
"""

from __future__ import annotations

import io
import math
import os
import queue
import stat
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from edge.audio import AudioError, check_rate, to_mono
from edge.frontend import SAMPLE_RATE

RESAMPLE_QUALITY = "VHQ"  # as edge.audio.resample: streamed output is bit-identical to it
CLIP_LEVEL = 0.999
_CLIP_SQUARE = float(np.float32(CLIP_LEVEL)) ** 2  # float32 samples are compared with float32(CLIP_LEVEL)
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
        self.warnings: list[str] = []

    def _check_rate(self, rate: float, what: str) -> None:
        warning = check_rate(rate, what)
        if warning:
            self.warnings.append(warning)

    def _observe(self, mono: np.ndarray) -> int | None:
        """Count a block's samples and clipped samples and take its level, up to its first NaN/inf
        sample; return that sample's index (None: the block is finite).

        The block's float64 squares serve all three, with no pass of its own for the NaN check nor
        an abs copy (9 against 12 ms for a 10-min file): a square sum that is not finite means a
        NaN/inf sample (finite float32 squares cannot add up to inf), and ``|x| >= CLIP_LEVEL``
        (compared in float32) is ``x * x >= _CLIP_SQUARE``, both squares exact in float64. The
        level's mean square is ``np.mean``'s sum over the same squares, bit for bit.
        """
        squares = np.square(mono, dtype=np.float64)
        total = np.add.reduce(squares)
        bad = None
        if not math.isfinite(total):
            bad = int(np.flatnonzero(~np.isfinite(mono))[0])
            squares = squares[:bad]
            total = np.add.reduce(squares)
        n = len(squares)
        self.samples += n
        if n:
            self.clipped += int(np.count_nonzero(squares >= _CLIP_SQUARE))
            rms = float(np.sqrt(total / n))
            self.level_db = max(LEVEL_FLOOR_DB, 20 * np.log10(rms + 1e-12))
        return bad

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
            "warnings": list(self.warnings),
        }

    def blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()


def _nan_error(what: str, first: int, rate: float) -> AudioError:
    return AudioError(
        f"{what}: NaN/inf samples (first at input sample {first}, {first / rate:.2f} s); refusing to count on them"
    )


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# --------------------------------------------------------------------------- WAV headers


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved PCM: ``encoding`` one of :data:`ENCODINGS`."""

    rate: int
    channels: int
    encoding: str
    data_bytes: int | None = None  # a WAV data chunk's size; None: up to the end of the stream

    @property
    def frame_bytes(self) -> int:
        return ENCODINGS[self.encoding] * self.channels

    def decode(self, data: bytes) -> np.ndarray:
        """Whole frames of ``data`` -> (n, channels) float32 in [-1, 1]."""
        enc = self.encoding
        if enc == "s24":
            b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            x = ((v ^ 0x800000) - 0x800000).astype(np.float32) / np.float32(2**23)
        elif enc == "u8":
            x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / np.float32(128)
        else:
            dtype, scale = {"s16": ("<i2", 2**-15), "s32": ("<i4", 2**-31), "f32": ("<f4", 1.0), "f64": ("<f8", 1.0)}[enc]
            x = np.frombuffer(data, dtype).astype(np.float32) * np.float32(scale)
        return x.reshape(-1, self.channels)


ENCODINGS = {"u8": 1, "s16": 2, "s24": 3, "s32": 4, "f32": 4, "f64": 8}  # bytes per sample
_WAV_ENCODINGS = {(1, 8): "u8", (1, 16): "s16", (1, 24): "s24", (1, 32): "s32", (3, 32): "f32", (3, 64): "f64"}


def read_wav_header(read: Callable[[int], bytes], what: str) -> PcmFormat:
    """Parse a RIFF/WAVE header up to the first byte of its data chunk (``read(n)``: next n bytes).

    PCM 8/16/24/32-bit, float 32/64-bit, and WAVE_FORMAT_EXTENSIBLE of those; a data size of 0
    or 0xFFFFFFFF (a WAV written to a pipe) means "up to the end of the stream".
    """
    head = read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError(f"{what}: not a RIFF/WAVE header")
    fmt = None
    while True:
        chunk = read(8)
        if len(chunk) < 8:
            raise AudioError(f"{what}: WAV header ends before its data chunk")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            if fmt is None:
                raise AudioError(f"{what}: WAV data chunk before its fmt chunk")
            rate, channels, encoding = fmt
            return PcmFormat(rate, channels, encoding, None if size in (0, 0xFFFFFFFF) else size)
        body = read(size + (size & 1))
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioError(f"{what}: WAV fmt chunk too short ({len(body)} bytes)")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the tag opens the sub-format GUID
                tag = struct.unpack("<H", body[24:26])[0]
            encoding = _WAV_ENCODINGS.get((tag, bits))
            if encoding is None or channels < 1 or rate < 1:
                raise AudioError(f"{what}: unsupported WAV encoding (format tag {tag:#x}, {bits} bits, {channels} ch, {rate} Hz)")
            fmt = (rate, channels, encoding)


def wav_announced_frames(path: Path) -> int | None:
    """Frames a WAV file's header announces (None: not a WAV, or no size announced)."""
    try:
        with open(path, "rb") as f:
            pcm = read_wav_header(f.read, str(path))
    except (AudioError, OSError, struct.error):
        return None
    return None if pcm.data_bytes is None else pcm.data_bytes // pcm.frame_bytes


OGG_MAX_PAGE = 27 + 255 + 255 * 255  # header, segment table, body: the largest Ogg page (bytes)


def ogg_end_problem(f: BinaryIO) -> str | None:
    """Why an Ogg stream (``f``: seekable, binary) does not end as a whole one does, or None.

    A whole stream ends with a page flagged end-of-stream that ends exactly at the end of the
    file. libsndfile decodes a cut file, or one with other bytes after its audio, up to the last
    whole page and announces just that much, so neither would otherwise be noticed. Reads only the
    last :data:`OGG_MAX_PAGE` bytes.
    """
    size = f.seek(0, io.SEEK_END)
    start = max(0, size - OGG_MAX_PAGE)
    f.seek(start)
    tail = f.read()
    i = tail.rfind(b"OggS")
    while i >= 0:  # the last page is the one that parses and ends exactly at the end of the file
        if i + 27 <= len(tail) and tail[i + 4] == 0:
            n_seg = tail[i + 26]
            table = tail[i + 27 : i + 27 + n_seg]
            end = i + 27 + n_seg + sum(table)
            if len(table) == n_seg and end == len(tail):
                return None if tail[i + 5] & 0x04 else "its last page is not the end of the stream: cut short"
        i = tail.rfind(b"OggS", 0, i)
    return "it does not end with a whole Ogg page: cut short, or other bytes after the audio"


def _downmix(x: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) float32, channels averaged (``edge.audio.to_mono``: the offline path's bits)."""
    return to_mono(x)


class FileSource(Source):
    """Stream an audio file in blocks of ``block_s`` seconds (see the module docstring)."""

    def __init__(self, path: str | Path, block_s: float = 0.1, realtime: bool = False,
                 stop: threading.Event | None = None) -> None:
        super().__init__(block_s, stop)
        self.path = Path(path)
        self.realtime = realtime
        if not self.path.exists():
            raise AudioError(f"{self.path}: no such audio file")
        if self.path.is_dir():
            raise AudioError(f"{self.path}: is a folder, not an audio file")
        self._file, self.announced = _open_soundfile(str(self.path), str(self.path))
        self.announced = max(self.announced, wav_announced_frames(self.path) or 0)
        self._damage = None
        if self._file.format == "OGG":
            with open(self.path, "rb") as f:
                self._damage = ogg_end_problem(f)
        self.rate = self._file.samplerate
        self.channels = self._file.channels
        self.description = f"{self.path.name} ({self.rate} Hz, {self.channels} ch, {self.announced / self.rate:.1f} s)"
        try:
            self._check_rate(self.rate, str(self.path))
        except AudioError:
            self._file.close()
            raise

    def blocks(self) -> Iterator[np.ndarray]:
        return _soundfile_blocks(self, self._file, str(self.path), self.announced, self.realtime, self._damage)


def is_stream(path: str) -> bool:
    """True for a FIFO or character device (``<(...)``, ``/dev/stdin``): audio that can be read only
    once, front to back, so it is read like stdin (soundfile would seek)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _convert_hint(what: str, name: str = "run.m4a") -> str:
    """Refusing MP4/M4A or AAC (no decoder here), with the ffmpeg line that converts ``name``."""
    import shlex

    src, wav = shlex.quote(name), shlex.quote(Path(name).with_suffix(".wav").name)
    return (f"{what}, which edge-run cannot decode; convert it with ffmpeg: ffmpeg -i {src} {wav}, "
            f"or pipe it: ffmpeg -i {src} -f wav - | edge-run -")


def _container_hint(file) -> str | None:
    """The hint for a container soundfile cannot read (MP4/M4A, ADTS AAC), told by its first bytes."""
    try:
        if isinstance(file, (str, Path)):
            with open(file, "rb") as f:
                head = f.read(12)
        else:
            pos = file.tell()
            head = file.read(12)
            file.seek(pos)
    except OSError:
        return None
    name = Path(file).name if isinstance(file, (str, Path)) else "run.m4a"
    if head[4:8] == b"ftyp":
        return _convert_hint("an MP4/M4A (AAC) file", name)
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:  # ADTS sync word, layer 0: AAC
        return _convert_hint("AAC audio", name)
    return None


def _open_soundfile(file, what: str):
    """(soundfile.SoundFile, frames it announces); :class:`AudioError` if unreadable or empty."""
    import soundfile as sf

    try:
        f = sf.SoundFile(file)
    except Exception as e:  # LibsndfileError, RuntimeError, TypeError...
        hint = _container_hint(file)
        if hint:
            raise AudioError(f"{what}: {hint}") from e
        raise AudioError(f"{what}: unreadable audio ({_one_line(e)})") from e
    if f.frames == 0:
        f.close()
        raise AudioError(f"{what}: empty audio (0 samples)")
    return f, f.frames


def _soundfile_blocks(src: Source, f, what: str, announced: int, realtime: bool = False,
                      damage: str | None = None) -> Iterator[np.ndarray]:
    """The blocks of an open soundfile.SoundFile (FileSource; a container on stdin). ``damage``:
    why the file's end is broken (:func:`ogg_end_problem`), said with the duration decoded."""
    rate = f.samplerate
    resample = Resampler(rate)
    n = max(1, int(round(src.block_s * rate)))
    # 16-bit PCM (a phone's WAV, most FLAC) is read as stored and scaled here: v / 32768 is exact in
    # float32, so these are the float samples libsndfile gives, bit for bit, at a third of its cost
    # (8 against 24 ms to read a 10-min WAV)
    pcm16 = f.subtype == "PCM_16"
    t0 = time.perf_counter()
    try:
        while not src.stop.is_set():
            try:
                x = f.read(n, dtype="int16" if pcm16 else "float32", always_2d=True)
                if pcm16:
                    x = np.multiply(x, np.float32(2**-15), dtype=np.float32)
            except Exception as e:  # libsndfile gives up mid-file: a broken FLAC frame, ...
                tail = resample(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield tail
                raise AudioError(
                    f"{what}: unreadable audio after {src.samples / rate:.1f} s ({_one_line(e)})"
                ) from e
            last = len(x) < n or f.tell() >= f.frames
            mono = _downmix(x)
            bad = src._observe(mono)
            if bad is not None:  # the samples before it are counted; then stop
                mono, last = mono[:bad], True
            out = resample(mono, last=last)
            if realtime:  # pace: do not hand out audio before its time
                ahead = src.samples / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    src.stop.wait(ahead)
            if len(out):
                yield out
            if bad is not None:
                raise _nan_error(what, src.samples, rate)
            if last:
                break
        if not src.stop.is_set() and damage:
            src.warnings.append(
                f"{what}: the file is damaged after {src.samples / rate:.1f} s ({damage}); counted the "
                f"{src.samples / rate:.1f} s before it"
            )
        elif not src.stop.is_set() and src.samples < announced:
            src.warnings.append(
                f"{what}: decoded {src.samples / rate:.1f} s of the {announced / rate:.1f} s its header announces "
                "(truncated or corrupt file); counted what was decoded"
            )
    finally:
        f.close()


class StdinSource(Source):
    """Audio on a binary stream (default ``sys.stdin.buffer``): raw PCM, a WAV stream, or a whole
    file in another container (see the module docstring). The first 12 bytes are read at once, to
    tell which."""

    FORMATS = {"s16le": "s16", "f32le": "f32"}  # raw PCM formats: --stdin-format -> encoding
    CONTAINERS = (b"fLaC", b"OggS", b"ID3", b"FORM", b"caff", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")

    def __init__(self, rate: int = SAMPLE_RATE, fmt: str = "s16le", channels: int = 1, block_s: float = 0.1,
                 stream: BinaryIO | None = None, stop: threading.Event | None = None, name: str = "stdin") -> None:
        super().__init__(block_s, stop)
        if fmt not in self.FORMATS:
            raise ValueError(f"unknown raw PCM format {fmt!r} (expected one of {sorted(self.FORMATS)})")
        if rate <= 0 or channels <= 0:
            raise ValueError(f"rate and channels must be positive, got {rate} Hz, {channels} ch")
        self.name = name
        self.stream = stream if stream is not None else sys.stdin.buffer
        self._head = self._read(12)
        self._file = None
        self._damage = None
        if self._head[4:8] == b"ftyp":  # MP4/M4A: not raw PCM, and no decoder here
            raise AudioError(f"{name}: {_convert_hint('an MP4/M4A (AAC) stream')}")
        if self._head[:4] == b"RIFF" and self._head[8:12] == b"WAVE":
            buffered = [self._head]  # the sniffed bytes first, then the stream

            def read(n: int) -> bytes:
                head = buffered.pop() if buffered else b""
                if len(head) > n:
                    buffered.append(head[n:])
                    return head[:n]
                return head + self._read(n - len(head))

            pcm = read_wav_header(read, name)
            self._head = b""
            self.kind = "WAV"
        elif self._head.startswith(self.CONTAINERS):
            data, self._head = self._head + self._read(-1), b""
            self._file, self.announced = _open_soundfile(io.BytesIO(data), name)
            if self._file.format == "OGG":
                self._damage = ogg_end_problem(io.BytesIO(data))
            pcm = PcmFormat(self._file.samplerate, self._file.channels, "f32")
            self.kind = "file"
        else:
            pcm = PcmFormat(rate, channels, self.FORMATS[fmt])
            self.kind = fmt
        self.pcm = pcm
        self.rate, self.channels, self.fmt = pcm.rate, pcm.channels, fmt
        self.description = f"{name} ({self.kind}, {pcm.rate} Hz, {pcm.channels} ch)"
        self._check_rate(pcm.rate, name)

    def _read(self, n: int) -> bytes:
        """n bytes (all that is left for n < 0), fewer only at the end of the stream."""
        if n < 0:
            return self.stream.read()
        parts, got = [], 0
        while got < n:
            chunk = self.stream.read(n - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def blocks(self) -> Iterator[np.ndarray]:
        if self._file is not None:
            yield from _soundfile_blocks(self, self._file, self.name, self.announced, damage=self._damage)
            return
        pcm = self.pcm
        frame_bytes = pcm.frame_bytes
        n_bytes = max(1, int(round(self.block_s * pcm.rate))) * frame_bytes
        left = pcm.data_bytes  # bytes of the WAV data chunk still to come (None: to the end)
        resample = Resampler(pcm.rate)
        pending, self._head = self._head, b""
        while not self.stop.is_set():
            want = n_bytes if left is None else min(n_bytes, left)
            chunk = self.stream.read(want) if want > 0 else b""
            if left is not None:
                left -= len(chunk)
            data = pending + (chunk or b"")
            usable = len(data) // frame_bytes * frame_bytes
            pending = data[usable:]
            mono = _downmix(pcm.decode(data[:usable]))
            bad = self._observe(mono)
            if bad is not None:
                mono = mono[:bad]
            out = resample(mono, last=not chunk or bad is not None)
            if len(out):
                yield out
            if bad is not None:
                raise _nan_error(self.name, self.samples, pcm.rate)
            if not chunk:
                break
        if self.samples == 0 and not self.stop.is_set():
            raise AudioError(f"{self.name}: empty audio (0 samples)")
        if left and not self.stop.is_set():
            self.warnings.append(
                f"{self.name}: the WAV stream ended {left / frame_bytes / pcm.rate:.1f} s before the end its header "
                "announces (truncated); counted what came"
            )


def import_sounddevice():
    """sounddevice, or :class:`MicError` when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as e:  # "PortAudio library not found"
        raise MicError(f"no audio input: PortAudio is missing ({e}); apt-get install libportaudio2, then {HINT}") from e
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
        self._check_rate(self.rate, f"input device {self.info['name']!r}")
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
