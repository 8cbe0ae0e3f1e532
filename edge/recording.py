"""The recording folder: a run's raw audio and motion, as a phone (or `edge-run --mic --record-dir`) writes it.

A recording is one folder::

    FOLDER/
      recording.json   metadata (below)
      audio.wav        the microphone, mono PCM 16-bit WAV at any rate (16 kHz from footfall)
      accel.csv        t_s,x,y,z   accelerometer: seconds on the sensor clock, m/s^2 with gravity
      gyro.csv         t_s,x,y,z   gyroscope, rad/s (optional)

``recording.json``::

    {"format": "footfall-recording", "version": 1,
     "audio": {"file": "audio.wav", "sample_rate": 16000, "frames": N, "start_s": 0.0},
     "accel": {"file": "accel.csv", "unit": "m/s^2"},        # absent for audio-only recordings
     "gyro":  {"file": "gyro.csv", "unit": "rad/s"},          # optional
     "device": "...", "arm": "L" | "R" | "", "orientation": "...", "runner_id": "...",
     "created": "2024-05-01T07:30:00Z"}

``audio.start_s`` is the sensor-clock time of the first audio sample as the recorder saw it;
the importer (``footfall data import-imu``) corrects it by cross-correlation, so a recorder that
only knows it roughly (a second or two) is fine. Everything here is numpy + soundfile: no torch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from edge.util import WriteError, write_all

FORMAT = "footfall-recording"
VERSION = 1
META = "recording.json"
AUDIO = "audio.wav"
ACCEL = "accel.csv"
GYRO = "gyro.csv"
MOTION_HEADER = ("t_s", "x", "y", "z")


class RecordingError(ValueError):
    """A recording folder that cannot be written or read; one line naming the path."""


def check_folder(folder: Path, force: bool) -> None:
    """:class:`RecordingError` when ``folder`` cannot take a new recording (it is a file, or holds
    one and not ``force``); nothing is written."""
    if folder.exists() and not folder.is_dir():
        raise RecordingError(f"{folder}: exists and is not a folder")
    if folder.is_dir():
        clash = [n for n in (META, AUDIO, ACCEL, GYRO) if (folder / n).exists()]
        if clash and not force:
            raise RecordingError(f"{folder}: already holds a recording ({', '.join(clash)}); choose another folder or pass --force")


def _prepare(folder: Path, force: bool) -> None:
    check_folder(folder, force)
    folder.mkdir(parents=True, exist_ok=True)


class WavWriter:
    """Mono 16-bit PCM WAV written block by block, a valid file after every block.

    The header's sizes are rewritten in place after each block (no new space needed), so a run
    killed outright still leaves a WAV holding what was written. A block that cannot be written
    (a full disk) is taken back whole: the file is cut to the blocks before it, its header says
    so, and :class:`edge.util.WriteError` names the file and what it keeps; later writes do
    nothing (``failed``).

    Samples are scaled by 32768 (and clipped), the inverse of how a 16-bit file is read to float,
    so 16-bit audio written here reads back bit-identical.
    """

    HEADER_BYTES = 44

    def __init__(self, path: str | Path, sample_rate: int, exclusive: bool = True) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.frames = 0
        self.failed = False
        self.created = not os.path.lexists(self.path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        self._fd = os.open(self.path, flags, 0o666)
        try:
            write_all(self._fd, self._header(0))
        except OSError:
            self.discard()
            raise

    def _header(self, frames: int) -> bytes:
        data = min(2 * frames, 0xFFFFFFFF - 36)  # a RIFF size field stops at 4 GiB (37 h at 16 kHz)
        return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, self.sample_rate, 2 * self.sample_rate, 2, 16)
                + b"data" + struct.pack("<I", data))

    def write(self, block: np.ndarray) -> None:
        if self.failed or self._fd < 0:
            return
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        pcm = np.clip(np.round(x * np.float32(32768)), -32768, 32767).astype("<i2")
        try:
            write_all(self._fd, pcm.tobytes())
        except OSError as e:
            self.failed = True
            with contextlib.suppress(OSError):  # not a regular file: nothing to take back
                os.ftruncate(self._fd, self.HEADER_BYTES + 2 * self.frames)  # the blocks before this one, whole
                os.pwrite(self._fd, self._header(self.frames), 0)
            kept = (f"the recording keeps the {self.frames / self.sample_rate:.1f} s before it" if self.frames
                    else "nothing was recorded")
            raise WriteError(f"{self.path}: cannot write ({e.strerror}); {kept}") from e
        self.frames += len(pcm)
        os.pwrite(self._fd, self._header(self.frames), 0)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def discard(self) -> None:
        """Close, and remove the file if this writer created it (a run refused before its first block)."""
        self.close()
        if self.created:
            self.path.unlink(missing_ok=True)


def write_motion_csv(path: Path, t_s: np.ndarray, xyz: np.ndarray) -> None:
    """``t_s,x,y,z`` rows: (n,) seconds, (n, 3) values."""
    xyz = np.asarray(xyz, dtype=np.float64)
    t_s = np.asarray(t_s, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(t_s) != len(xyz):
        raise RecordingError(f"{path}: motion needs (n,) times and (n, 3) values, got {t_s.shape} and {xyz.shape}")
    table = np.column_stack([t_s, xyz])
    np.savetxt(path, table, delimiter=",", fmt=("%.6f", "%.5f", "%.5f", "%.5f"), header=",".join(MOTION_HEADER), comments="")


def _meta(sample_rate: int, frames: int, audio_start_s: float, has_accel: bool, has_gyro: bool, extra: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "audio": {"file": AUDIO, "sample_rate": int(sample_rate), "frames": int(frames), "start_s": float(audio_start_s)},
    }
    if has_accel:
        meta["accel"] = {"file": ACCEL, "unit": "m/s^2"}
    if has_gyro:
        meta["gyro"] = {"file": GYRO, "unit": "rad/s"}
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    for k, v in (extra or {}).items():
        if k in ("format", "version", "audio", "accel", "gyro"):
            raise RecordingError(f"metadata key {k!r} is reserved")
        meta[k] = v
    return meta


def write_recording(
    folder: str | Path,
    audio: np.ndarray,
    sample_rate: int,
    accel: tuple[np.ndarray, np.ndarray] | None = None,
    gyro: tuple[np.ndarray, np.ndarray] | None = None,
    audio_start_s: float = 0.0,
    meta: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write a whole recording folder at once (audio float in [-1, 1]; accel/gyro as (t_s, xyz))."""
    import soundfile as sf

    folder = Path(folder)
    _prepare(folder, force)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    sf.write(str(folder / AUDIO), pcm, int(sample_rate), subtype="PCM_16")
    if accel is not None:
        write_motion_csv(folder / ACCEL, *accel)
    if gyro is not None:
        write_motion_csv(folder / GYRO, *gyro)
    info = _meta(sample_rate, len(pcm), audio_start_s, accel is not None, gyro is not None, meta)
    (folder / META).write_text(json.dumps(info, indent=1) + "\n")
    return folder


class AudioRecorder:
    """Stream microphone blocks into a recording folder (audio side only: ``edge-run --mic --record-dir``).

    Use as a context manager::

        with AudioRecorder(folder, 16000, meta={"device": name}, force=force) as rec:
            for block in mic:      # float32 (n,) in [-1, 1]
                rec.write(block)

    ``audio_start_s`` defaults to the wall clock (Unix seconds) at opening, so a sensor log
    stamped with Unix time lines up to within the importer's search range. ``recording.json`` is
    written at close with the frame count (also after an exception, so a cut-off run is kept).
    """

    def __init__(self, folder: str | Path, sample_rate: int, meta: dict[str, Any] | None = None,
                 audio_start_s: float | None = None, force: bool = False) -> None:
        import time

        self.folder = Path(folder)
        _prepare(self.folder, force)
        self.sample_rate = int(sample_rate)
        self._meta = dict(meta or {})
        self._start = time.time() if audio_start_s is None else float(audio_start_s)
        self._closed = False
        self._file = WavWriter(self.folder / AUDIO, self.sample_rate, exclusive=False)

    @property
    def frames(self) -> int:
        """Frames in audio.wav (a block that could not be written is not there)."""
        return self._file.frames

    def write(self, block: np.ndarray) -> None:
        """Append a block; :class:`edge.util.WriteError` when the disk takes no more (see :class:`WavWriter`)."""
        self._file.write(block)

    def close(self) -> Path:
        if not self._closed:
            self._closed = True
            self._file.close()
            info = _meta(self.sample_rate, self.frames, self._start, False, False, self._meta)
            (self.folder / META).write_text(json.dumps(info, indent=1) + "\n")
        return self.folder

    def __enter__(self) -> "AudioRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``recording.json`` of ``folder`` ({} when absent); :class:`RecordingError` when unreadable."""
    path = Path(folder) / META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordingError(f"{path}: unreadable metadata ({type(e).__name__}: {e})") from e
    if not isinstance(meta, dict):
        raise RecordingError(f"{path}: metadata is not a JSON object")
    if meta.get("format", FORMAT) != FORMAT or int(meta.get("version", VERSION)) > VERSION:
        raise RecordingError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; expected {FORMAT!r} version <= {VERSION}")
    return meta
