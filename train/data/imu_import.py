"""Step labels for a runner's own recordings, from the phone's accelerometer (`footfall data import-imu`).

A recording folder (:mod:`edge.recording`, or a phone sensor-logger export: an audio file and a
CSV of timestamps + x/y/z) becomes runs of the dataset format (contract 5):

1. **Read** the accelerometer onto a uniform ``ANALYSIS_HZ`` grid; gaps in the stamps are marked
   invalid, a clipped sensor and backwards stamps are reported.
2. **Align the clocks**: the audio's onset envelope is cross-correlated with the acceleration jerk
   (impacts are sharp in both) over ``±max_offset`` around the start the recorder wrote. The lag
   of the peak (parabolic sub-sample) is the offset; its confidence is how far the peak stands
   above the best rival peak (steps are periodic, so the rivals sit a step away). Local offsets
   over the run give the drift, corrected linearly when it matters.
3. **Detect steps**: the band-passed acceleration magnitude (foot-strike transients, 6-25 Hz),
   rectified and smoothed, is peak-picked with the minimum spacing set by the local cadence
   (autocorrelation, with the stride-rate octave checked), so arm swing at half the step rate and
   noise between strikes do not count.
4. **Judge every 5-s window**: *still* (little motion: zero steps, sure), *steps* (periodic and
   regular: sure), or masked: *uncertain* (aperiodic motion such as handling the phone, irregular
   intervals) and *gap* (no sensor data). Masked windows are cut out, not guessed: each stretch of
   sure windows at least ``min_segment_s`` long is written as a run of its own.

Everything that is wrong with a recording is one line: an error (:class:`ImuImportError`) when
nothing useful can come out, a warning (in the result) when labels come out with a caveat. The
input folder is only read.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from edge.frontend import SAMPLE_RATE

ANALYSIS_HZ = 200.0  # uniform grid for the sensor and the audio envelope (5-ms resolution)
WINDOW_S = 5.0  # the paper's window: confidence is judged per window
MIN_SENSOR_HZ = 25.0  # below this a foot strike (a ~30 ms transient) is not seen
GAP_S = 0.1  # stamps further apart than this (and 5 median intervals) are a gap
STEP_PERIOD_S = (0.25, 0.8)  # 75..240 steps/min: walking to sprinting
STILL_LEVEL = 0.35  # m/s^2: band-passed magnitude std below this is standing still
MIN_OVERLAP_S = 20.0  # audio and sensor must share this much time
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
ACCEL_NAMES = ("accel.csv", "accelerometer.csv", "accelerometer_uncalibrated.csv", "acceleration.csv", "raw data.csv")


class ImuImportError(ValueError):
    """A recording that cannot be labelled; one line naming the file and the problem."""


# ---------------------------------------------------------------------------------------------
# reading


@dataclass
class Motion:
    """An accelerometer stream: sensor-clock seconds and m/s^2 (gravity included)."""

    t: np.ndarray  # (n,) float64, increasing
    xyz: np.ndarray  # (n, 3) float64
    path: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def rate_hz(self) -> float:
        return float(1.0 / np.median(np.diff(self.t)))


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def _time_column(names: list[str]) -> int | None:
    """Index of the timestamp column: t_s / seconds_elapsed first, then any name with time/stamp."""
    plain = [re.sub(r"\s*\(.*\)$", "", n) for n in names]
    for want in ("t_s", "seconds_elapsed", "time_s", "elapsed", "time", "timestamp", "ts", "t"):
        if want in plain:
            return plain.index(want)
    for i, n in enumerate(names):
        if "time" in n or "stamp" in n:
            return i
    return None


def _axis_column(names: list[str], axis: str) -> int | None:
    plain = [re.sub(r"\s*\(.*\)$", "", n) for n in names]
    exact = (axis, f"a{axis}", f"acc_{axis}", f"accel_{axis}", f"acc{axis}", f"gf{axis}", f"acceleration {axis}",
             f"linear acceleration {axis}", f"{axis}-axis", f"{axis} axis", f"{axis}_axis")
    for i, n in enumerate(plain):
        if n in exact:
            return i
    for i, n in enumerate(plain):
        if re.search(rf"(^|[ _\-]){axis}$", n):
            return i
    return None


def read_motion_csv(path: str | Path) -> Motion:
    """Read an accelerometer CSV: footfall's ``t_s,x,y,z`` or a sensor-logger app's export.

    Recognised: a timestamp column (``t_s``, ``seconds_elapsed``, ``time``, ``timestamp``, ``Time (s)``,
    ...; seconds, milliseconds or nanoseconds, told apart by the median interval) and x/y/z
    columns (``x``, ``ax``, ``accel_x``, ``Acceleration x (m/s^2)``, ``gFx``, ...; in m/s^2, or in g
    when a name says ``gF``/``(g)`` or the magnitude is about 1). Sensor Logger's
    ``Accelerometer.csv`` (``time,seconds_elapsed,z,y,x``), phyphox's ``Raw Data.csv`` and Physics
    Toolbox's ``time,gFx,gFy,gFz`` are all this shape.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            sample = f.read(4096)
            f.seek(0)
            delim = ";" if sample.count(";") > sample.count(",") else ("\t" if sample.count("\t") > sample.count(",") else ",")
            rows = [r for r in csv.reader(f, delimiter=delim) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ImuImportError(f"{path}: unreadable accelerometer CSV ({type(e).__name__}: {e})") from e
    if len(rows) < 2:
        raise ImuImportError(f"{path}: no accelerometer samples (expected a header and rows of timestamp,x,y,z)")
    names = [_norm(c) for c in rows[0]]
    ti = _time_column(names)
    ax = [_axis_column(names, a) for a in "xyz"]
    if ti is None or None in ax:
        raise ImuImportError(f"{path}: header {','.join(rows[0])!r}: need a timestamp column (t_s, seconds_elapsed, time, timestamp) "
                             "and x, y, z columns")
    cols = [ti, *ax]
    data = np.full((len(rows) - 1, 4), np.nan)
    bad = 0
    for i, row in enumerate(rows[1:]):
        try:
            data[i] = [float(row[c].replace(",", ".") if delim == ";" else row[c]) for c in cols]
        except (ValueError, IndexError):
            bad += 1
    warnings = []
    ok = np.isfinite(data).all(axis=1)
    if bad or not ok.all():
        if (~ok).mean() > 0.01:
            raise ImuImportError(f"{path}: {int((~ok).sum())} of {len(data)} rows are not numbers; not an accelerometer log?")
        warnings.append(f"{path.name}: skipped {int((~ok).sum())} unreadable row(s)")
    data = data[ok]
    if len(data) < 100:
        raise ImuImportError(f"{path}: only {len(data)} accelerometer samples; need at least 100")
    t, xyz = data[:, 0], data[:, 1:]
    dt = np.median(np.diff(np.sort(t)))
    if dt <= 0:
        raise ImuImportError(f"{path}: timestamps do not advance (median interval {dt:g})")
    header_t = names[ti]
    if "(ns)" in header_t or dt > 1e5:
        t = t * 1e-9
    elif "(ms)" in header_t or dt > 1.0:
        t = t * 1e-3
    back = np.diff(t) <= 0
    if back.any():
        if back.mean() > 0.01:
            raise ImuImportError(f"{path}: {int(back.sum())} timestamps go backwards or repeat; the log is not in time order")
        order = np.argsort(t, kind="stable")
        t, xyz = t[order], xyz[order]
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, xyz = t[keep], xyz[keep]
        warnings.append(f"{path.name}: {int(back.sum())} timestamp(s) out of order or repeated; sorted")
    in_g = any("gf" in n or "(g)" in n for n in (names[c] for c in ax))
    mag = float(np.median(np.linalg.norm(xyz, axis=1)))
    if not in_g and 0.5 < mag < 2.0:
        in_g = True
        warnings.append(f"{path.name}: magnitude about {mag:.2f}: reading the values as g")
    if in_g:
        xyz = xyz * 9.80665
    return Motion(t.astype(np.float64), xyz.astype(np.float64), path, warnings)


def find_files(folder: Path) -> tuple[Path, Path, dict]:
    """The audio file, the accelerometer CSV and the metadata of a recording folder."""
    from edge.recording import RecordingError, read_meta

    if not folder.is_dir():
        raise ImuImportError(f"{folder}: no such recording folder")
    try:
        meta = read_meta(folder)
    except RecordingError as e:
        raise ImuImportError(str(e)) from e
    files = sorted(p for p in folder.iterdir() if p.is_file())
    audio_name = meta.get("audio", {}).get("file")
    audio = folder / audio_name if audio_name else None
    if audio is None or not audio.is_file():
        cands = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
        if not cands:
            others = [p.suffix for p in files if p.suffix.lower() in (".m4a", ".mp4", ".aac", ".3gp", ".opus")]
            hint = f" ({', '.join(sorted(set(others)))} found: convert it to WAV or FLAC first, e.g. ffmpeg -i IN OUT.wav)" if others else ""
            raise ImuImportError(f"{folder}: no audio file ({'/'.join(AUDIO_SUFFIXES)}){hint}")
        if len(cands) > 1:
            raise ImuImportError(f"{folder}: {len(cands)} audio files ({', '.join(p.name for p in cands)}); name one in recording.json")
        audio = cands[0]
    accel_name = meta.get("accel", {}).get("file")
    accel = folder / accel_name if accel_name else None
    if accel is None or not accel.is_file():
        by_name = {p.name.lower(): p for p in files}
        accel = next((by_name[n] for n in ACCEL_NAMES if n in by_name), None)
        if accel is None:
            cands = [p for p in files if p.suffix.lower() == ".csv" and "acc" in p.name.lower()]
            if len(cands) != 1:
                raise ImuImportError(f"{folder}: no accelerometer CSV (accel.csv, Accelerometer.csv, or one *acc*.csv with timestamp,x,y,z)")
            accel = cands[0]
    return audio, accel, meta


# ---------------------------------------------------------------------------------------------
# signals


def uniform(m: Motion, fs: float = ANALYSIS_HZ) -> tuple[float, np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """Linear interpolation onto a uniform grid -> (t0, xyz (k, 3), valid (k,), gaps [(start, length)])."""
    d = np.diff(m.t)
    gap_at = np.flatnonzero(d > max(GAP_S, 5 * np.median(d)))
    t0 = float(m.t[0])
    tg = t0 + np.arange(int((m.t[-1] - t0) * fs) + 1) / fs
    xyz = np.column_stack([np.interp(tg, m.t, m.xyz[:, i]) for i in range(3)])
    valid = np.ones(len(tg), bool)
    gaps = []
    for i in gap_at:
        valid[(tg > m.t[i]) & (tg < m.t[i + 1])] = False
        gaps.append((float(m.t[i]), float(d[i])))
    return t0, xyz, valid, gaps


def clipped_fraction(xyz: np.ndarray) -> tuple[float, float]:
    """Share of samples pinned at the largest |value| of any axis (a saturated sensor), and that value."""
    peak = float(np.abs(xyz).max())
    pinned = np.abs(xyz) >= peak * (1 - 1e-6)
    frac = float(pinned.any(axis=1).mean())
    return (frac, peak) if pinned.sum() >= 3 else (0.0, peak)


def impact_envelope(xyz: np.ndarray, fs: float) -> np.ndarray:
    """Foot-strike strength per sample: the magnitude band-passed 6-25 Hz (above the body's bounce and
    swing and their harmonics, which rectifying would double into the step rate), rectified, smoothed."""
    mag = np.linalg.norm(xyz, axis=1)
    hi = min(25.0, 0.45 * fs)
    bp = signal.sosfiltfilt(signal.butter(2, [6.0, hi], "bandpass", fs=fs, output="sos"), mag)
    return signal.sosfiltfilt(signal.butter(2, 12.0, fs=fs, output="sos"), np.abs(bp))


def motion_level(xyz: np.ndarray, fs: float) -> np.ndarray:
    """Band-passed (0.5-15 Hz) magnitude: what is moving, gravity and sensor drift removed."""
    mag = np.linalg.norm(xyz, axis=1)
    return signal.sosfiltfilt(signal.butter(2, [0.5, min(15.0, 0.45 * fs)], "bandpass", fs=fs, output="sos"), mag)


def jerk_envelope(xyz: np.ndarray, fs: float) -> np.ndarray:
    """Onset strength of the orientation-free jerk |d a / dt|: the rise of its log energy,
    processed like :func:`audio_envelope`, so both mark the start of a strike, not its ringing."""
    j = np.linalg.norm(np.diff(xyz, axis=0, append=xyz[-1:]), axis=1) * fs  # sample i: a[i+1] - a[i]
    loge = np.log(j**2 + 1e-4 * np.median(j**2) + 1e-12)
    loge = signal.sosfiltfilt(signal.butter(2, min(40.0, 0.45 * fs), fs=fs, output="sos"), loge)
    rise = np.maximum(np.diff(loge, prepend=loge[:1]), 0)
    return signal.sosfiltfilt(signal.butter(2, 30.0, fs=fs, output="sos"), rise)


def audio_envelope(audio: np.ndarray, sr: int = SAMPLE_RATE, fs: float = ANALYSIS_HZ) -> np.ndarray:
    """Audio onset strength at ``fs``: log energy in 5-ms hops, its rise (half-wave rectified difference)."""
    hop = int(round(sr / fs))
    n = len(audio) // hop
    x = signal.sosfilt(signal.butter(2, 150.0, "highpass", fs=sr, output="sos"), audio.astype(np.float64))
    e = np.square(x[: n * hop]).reshape(n, hop).mean(axis=1)
    loge = np.log(e + 1e-10 + 1e-4 * np.median(e))
    rise = np.maximum(np.diff(loge, prepend=loge[:1]), 0)
    return signal.sosfiltfilt(signal.butter(2, 30.0, fs=fs, output="sos"), rise)


def _standardize(x: np.ndarray, fs: float) -> np.ndarray:
    """Remove a 1-s moving mean and scale to unit std (so loud stretches do not decide the lag)."""
    from scipy.ndimage import uniform_filter1d

    x = x - uniform_filter1d(x, int(fs), mode="nearest")
    local = np.sqrt(uniform_filter1d(x**2, int(5 * fs), mode="nearest")) + 1e-9
    x = x / local
    return x / (x.std() + 1e-12)


@dataclass
class Alignment:
    """Where the audio starts on the sensor clock: ``start_s + drift * (t_audio - mid_s)``."""

    offset_s: float  # correction to the recorder's audio start (found start - written start)
    start_s: float  # sensor-clock time of the first audio sample (at the run's middle, with drift)
    confidence: float  # 0..1: (peak - best rival peak) / peak of the cross-correlation
    peak_corr: float  # normalised correlation at the peak
    drift_ppm: float = 0.0
    drift_ms: float = 0.0  # over the audio
    mid_s: float = 0.0
    global_start_s: float = 0.0  # the one-lag answer, before the drift line
    lags_s: np.ndarray | None = None  # the searched offsets (for the plot)
    corr: np.ndarray | None = None

    def to_sensor(self, t_audio: np.ndarray) -> np.ndarray:
        return t_audio + self.start_s + self.drift_ppm * 1e-6 * (t_audio - self.mid_s)

    def to_audio(self, t_sensor: np.ndarray) -> np.ndarray:
        k = 1 + self.drift_ppm * 1e-6
        return (t_sensor - self.start_s + self.drift_ppm * 1e-6 * self.mid_s) / k


def _xcorr(a_env: np.ndarray, s_env: np.ndarray, lag0: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised correlation of ``a_env[k]`` with ``s_env[k + lag]`` for lag in lag0 +- max_lag."""
    c = signal.correlate(s_env, a_env, mode="full", method="fft")  # c[i] = sum_k s[k + l] a[k], l = i - (len(a) - 1)
    lags = np.arange(lag0 - max_lag, lag0 + max_lag + 1)
    i = lags + len(a_env) - 1
    ok = (i >= 0) & (i < len(c))
    overlap = np.minimum(len(a_env), len(s_env) - lags) - np.maximum(0, -lags)
    out = np.full(len(lags), -1.0)
    out[ok] = c[i[ok]] / np.maximum(overlap[ok], 1)
    return lags, out


def _peak(lags: np.ndarray, corr: np.ndarray, fs: float, exclude_s: float = 0.08) -> tuple[float, float, float]:
    """(sub-sample lag of the best peak, its height, height of the best peak further than exclude_s)."""
    b = int(np.argmax(corr))
    frac = 0.0
    if 0 < b < len(corr) - 1:
        y0, y1, y2 = corr[b - 1 : b + 2]
        den = y0 - 2 * y1 + y2
        frac = float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) if den < 0 else 0.0
    far = np.abs(lags - lags[b]) > exclude_s * fs
    pk, _ = signal.find_peaks(np.where(far, corr, -np.inf))
    rival = float(corr[pk].max()) if len(pk) else float(corr[far].max()) if far.any() else 0.0
    return lags[b] + frac, float(corr[b]), rival


def align_clocks(
    audio_env: np.ndarray, t0: float, jerk: np.ndarray, valid: np.ndarray, nominal_start: float,
    max_offset_s: float, fs: float = ANALYSIS_HZ, drift_window_s: float = 60.0,
) -> Alignment:
    """Find the audio's start on the sensor clock by cross-correlating onset envelope and jerk."""
    a = _standardize(audio_env, fs)
    s = _standardize(np.where(valid, jerk, 0.0), fs) * valid
    lag0 = int(round((nominal_start - t0) * fs))
    lags, corr = _xcorr(a, s, lag0, int(round(max_offset_s * fs)))
    lag, height, rival = _peak(lags, corr, fs)
    conf = float(np.clip((height - max(rival, 0.0)) / height, 0, 1)) if height > 0 else 0.0
    start = t0 + (lag - 0.5) / fs  # audio frame k holds the energy of [k, k + 1) hops: its onset is at k + 0.5
    dur = len(a) / fs
    al = Alignment(start - nominal_start, start, conf, height, mid_s=dur / 2, lags_s=t0 + lags / fs - nominal_start, corr=corr)
    al.global_start_s = start
    # drift: the same search, +-0.25 s around the global lag, in windows along the run
    if dur >= 2 * drift_window_s:
        w = int(drift_window_s * fs)
        centers, local = [], []
        for k0 in range(0, len(a) - w + 1, w // 2):
            seg = np.zeros_like(a)
            seg[k0 : k0 + w] = a[k0 : k0 + w]
            lg, cr = _xcorr(seg, s, int(round(lag)), int(0.25 * fs))
            l1, h1, r1 = _peak(lg, cr * len(a) / w, fs)
            if h1 > 0 and (h1 - max(r1, 0)) / h1 > 0.1:
                centers.append((k0 + w / 2) / fs)
                local.append((l1 - 0.5) / fs)
        if len(centers) >= 3:
            slope, icpt = np.polyfit(centers, local, 1)
            al.drift_ppm = float(slope * 1e6)
            al.drift_ms = float(slope * dur * 1e3)
            al.start_s = t0 + float(icpt + slope * al.mid_s)
            al.offset_s = al.start_s - nominal_start
    return al


def step_period(env: np.ndarray, fs: float) -> tuple[float, float]:
    """(step period s, periodicity 0..1) of an impact envelope stretch, from its autocorrelation.
    The stride (two steps) is often the stronger repeat on an arm: a peak at half the lag that is
    nearly as strong wins."""
    x = env - env.mean()
    if x.std() < 1e-9 or len(x) < fs * STEP_PERIOD_S[1] * 2:
        return 0.0, 0.0
    ac = signal.correlate(x, x, mode="full", method="fft")[len(x) - 1 :]
    ac = ac / (ac[0] * (len(x) - np.arange(len(x))) / len(x))
    lo, hi = int(STEP_PERIOD_S[0] * fs), int(STEP_PERIOD_S[1] * fs)
    seg = ac[lo : hi + 1]
    pk, _ = signal.find_peaks(seg)
    if not len(pk):
        return 0.0, 0.0
    best = pk[np.argmax(seg[pk])]
    lag = lo + best
    half = lag / 2
    if half >= lo:
        near = pk[np.abs(lo + pk - half) <= 0.1 * half]
        if len(near) and seg[near].max() >= 0.5 * seg[best]:
            lag = lo + near[np.argmax(seg[near])]
    return lag / fs, float(np.clip(ac[lag], 0, 1))


def refine_onsets(idx: np.ndarray, onset: np.ndarray, fs: float, before_s: float = 0.06, after_s: float = 0.01) -> np.ndarray:
    """Move each strike from its envelope peak (the ringing's middle) to its onset: the largest
    jerk rise (:func:`jerk_envelope`) in [peak - before_s, peak + after_s]."""
    out = idx.copy()
    b, a = int(before_s * fs), int(after_s * fs)
    for j, i in enumerate(idx):
        lo, hi = max(0, i - b), min(len(onset), i + a + 1)
        if hi > lo:
            out[j] = lo + int(np.argmax(onset[lo:hi]))
    return out


def detect_steps(env: np.ndarray, level: np.ndarray, fs: float, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cadence-constrained peak picking -> (step sample indices at the envelope peaks, local step
    period per sample (s)).

    The local period comes from 10-s autocorrelation windows (hop 2.5 s); a peak counts when it is
    at least 0.6 periods after the previous one (else the stronger of the two stays), rises above a
    quarter of the local typical peak, and lies where the sensor is moving and valid.
    """
    n = len(env)
    win, hop = int(10 * fs), int(2.5 * fs)
    centers, periods = [], []
    for k0 in range(0, max(n - win, 0) + 1, hop):
        p, _ = step_period(env[k0 : k0 + win], fs)
        if p > 0:
            centers.append(k0 + win / 2)
            periods.append(p)
    if not periods:
        return np.zeros(0, np.int64), np.zeros(n)
    period = np.interp(np.arange(n), centers, periods)
    cand, props = signal.find_peaks(env, distance=int(STEP_PERIOD_S[0] * 0.8 * fs), prominence=0)
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    moving = uniform_filter1d(level**2, int(fs), mode="nearest") > STILL_LEVEL**2
    typical = maximum_filter1d(env, int(1.0 * fs), mode="nearest")
    typical = uniform_filter1d(typical, int(4 * fs), mode="nearest")
    keep = cand[(env[cand] > 0.25 * typical[cand]) & moving[cand] & valid[cand]]
    out: list[int] = []
    for i in keep:
        if out and i - out[-1] < 0.6 * period[i] * fs:
            if env[i] > env[out[-1]]:
                out[-1] = i
            continue
        out.append(int(i))
    return np.asarray(out, np.int64), period


# ---------------------------------------------------------------------------------------------
# windows and the import itself


@dataclass
class Window:
    start_s: float  # audio clock
    end_s: float
    state: str  # still | steps | uncertain | gap
    confidence: float
    n_steps: int
    cadence_spm: float

    @property
    def kept(self) -> bool:
        return self.state in ("still", "steps")


def judge_windows(
    duration_s: float, steps_audio: np.ndarray, to_grid, env: np.ndarray, level: np.ndarray, valid: np.ndarray,
    fs: float, min_confidence: float,
) -> list[Window]:
    """Per 5-s audio window: still / steps / uncertain / gap, with a 0..1 confidence."""
    out = []
    n_win = int(np.ceil(duration_s / WINDOW_S - 1e-9))
    for k in range(n_win):
        a, b = k * WINDOW_S, min((k + 1) * WINDOW_S, duration_s)
        i0, i1 = to_grid(a), to_grid(b)
        if len(env) < i1 <= len(env) + 0.1 * fs:  # the sensor stopped a hair before the audio
            i1 = len(env)
        if -0.1 * fs <= i0 < 0:  # or started a hair after it
            i0 = 0
        inside = steps_audio[(steps_audio >= a) & (steps_audio < b)]
        if i0 < 0 or i1 > len(env) or i1 - i0 < 0.5 * fs:
            out.append(Window(a, b, "gap", 0.0, len(inside), 0.0))
            continue
        cover = valid[i0:i1].mean()
        if cover < 0.98:
            out.append(Window(a, b, "gap", 0.0, len(inside), 0.0))
            continue
        lvl = float(np.sqrt(np.mean(level[i0:i1] ** 2)))
        if lvl < STILL_LEVEL and len(inside) == 0:
            out.append(Window(a, b, "still", float(np.clip(1 - lvl / STILL_LEVEL, 0, 1) * 0.5 + 0.5), 0, 0.0))
            continue
        # context of the window +-2.5 s for the periodicity; the window's own steps for regularity
        c0, c1 = max(0, to_grid(a - 2.5)), min(len(env), to_grid(b + 2.5))
        period, periodicity = step_period(env[c0:c1], fs)
        around = steps_audio[(steps_audio >= a - 1.0) & (steps_audio < b + 1.0)]
        d = np.diff(around)
        d = d[d < 1.2]
        if len(d) < 3 or period <= 0:
            out.append(Window(a, b, "uncertain", 0.0, len(inside), 0.0))
            continue
        cv = float(d.std() / d.mean())
        agree = float(np.clip(1 - abs(np.median(d) - period) / period / 0.25, 0, 1))  # intervals match the cadence
        conf = periodicity * float(np.clip(1 - cv / 0.5, 0, 1)) * agree
        state = "steps" if conf >= min_confidence else "uncertain"
        out.append(Window(a, b, state, round(conf, 3), len(inside), round(60.0 / float(np.median(d)), 1)))
    return out


def kept_segments(windows: list[Window], min_segment_s: float) -> list[tuple[float, float]]:
    """Stretches of consecutive kept windows at least ``min_segment_s`` long -> [(start, end)) s."""
    segs, cur = [], None
    for w in windows:
        if w.kept:
            cur = [w.start_s, w.end_s] if cur is None else [cur[0], w.end_s]
        else:
            if cur is not None:
                segs.append(tuple(cur))
            cur = None
    if cur is not None:
        segs.append(tuple(cur))
    return [(a, b) for a, b in segs if b - a >= min_segment_s - 1e-9]


@dataclass
class ImportResult:
    """What one recording gave: its runs, the alignment, the windows and every warning."""

    name: str
    folder: str
    runner_id: str
    duration_s: float
    sensor_rate_hz: float
    offset_s: float
    offset_confidence: float
    drift_ms: float
    n_steps: int  # detected over the whole audio
    n_labeled_steps: int  # inside the kept stretches
    kept_s: float
    segments: list[tuple[str, float, float, int]]  # run_id, start, end, steps
    warnings: list[str]
    steps_s: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # audio clock, all detected
    windows: list[Window] = field(repr=False, default_factory=list)

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("steps_s", "windows")}
        d["windows"] = [asdict(w) for w in self.windows]
        return d


@dataclass(frozen=True)
class ImportOptions:
    max_offset_s: float = 3.0  # search the clock offset within +- this of the written start
    offset_s: float | None = None  # known offset: skip the search
    min_confidence: float = 0.5  # windows below this are masked
    min_align_confidence: float = 0.25  # below this the alignment is refused (wrong peaks measured at 0.15, right ones >= 0.3)
    min_segment_s: float = 15.0  # shorter kept stretches are dropped
    drift_ms: float = 20.0  # warn and correct above this much drift over the run
    runner_id: str | None = None  # default: recording.json's runner_id, else "me"

    def __post_init__(self) -> None:
        if not 0 < self.max_offset_s <= 60:
            raise ImuImportError(f"max_offset_s {self.max_offset_s}: expected 0 < max_offset_s <= 60")
        if not 0 <= self.min_confidence <= 1:
            raise ImuImportError(f"min_confidence {self.min_confidence}: expected 0..1")
        if self.min_segment_s < WINDOW_S:
            raise ImuImportError(f"min_segment_s {self.min_segment_s}: expected at least one window ({WINDOW_S:g} s)")


def label_recording(folder: str | Path, opts: ImportOptions = ImportOptions()) -> tuple[ImportResult, np.ndarray, dict]:
    """Label one recording folder (read only) -> (result, audio at 16 kHz, plot data)."""
    from edge.audio import AudioError, load_audio

    folder = Path(folder)
    audio_path, accel_path, meta = find_files(folder)
    try:
        audio = load_audio(audio_path)
    except AudioError as e:
        raise ImuImportError(str(e)) from e
    motion = read_motion_csv(accel_path)
    warnings = list(motion.warnings)
    rate = motion.rate_hz
    if rate < MIN_SENSOR_HZ:
        raise ImuImportError(f"{accel_path}: accelerometer at {rate:.1f} Hz; foot strikes need at least {MIN_SENSOR_HZ:g} Hz "
                             "(set the logger to 'fastest' or 'game' rate)")
    fs = ANALYSIS_HZ
    t0, xyz, valid, gaps = uniform(motion, fs)
    for g0, glen in gaps:
        warnings.append(f"{accel_path.name}: sensor gap of {glen:.2f} s at sensor time {g0 - motion.t[0]:.1f} s; the windows it touches are masked")
    frac, peak = clipped_fraction(motion.xyz)
    if frac > 0.001:
        warnings.append(f"{accel_path.name}: accelerometer clipped at +-{peak:.1f} m/s^2 ({peak / 9.81:.1f} g) in {100 * frac:.1f} % of samples; "
                        "strikes are flattened, timing may suffer")
    duration = len(audio) / SAMPLE_RATE
    env = impact_envelope(xyz, fs)
    level = motion_level(xyz, fs)
    jerk = jerk_envelope(xyz, fs)
    a_env = audio_envelope(audio, SAMPLE_RATE, fs)

    written = meta.get("audio", {}).get("start_s")
    nominal = float(written) if written is not None else t0
    if not (motion.t[0] - opts.max_offset_s - duration <= nominal <= motion.t[-1] + opts.max_offset_s):
        warnings.append(f"{folder.name}: the written audio start {nominal:g} s is outside the sensor's clock "
                        f"({motion.t[0]:.3f}..{motion.t[-1]:.3f} s); assuming both started together")
        nominal = t0
    if opts.offset_s is not None:
        al = Alignment(opts.offset_s, nominal + opts.offset_s, 1.0, 0.0, mid_s=duration / 2)
    else:
        al = align_clocks(a_env, t0, jerk, valid, nominal, opts.max_offset_s, fs)
        if al.confidence < opts.min_align_confidence:
            raise ImuImportError(f"{folder}: cannot align audio and sensor clocks (confidence {al.confidence:.2f} < "
                                 f"{opts.min_align_confidence:g}; best offset {al.offset_s:+.3f} s); pass --offset SECONDS if you know it "
                                 "or --max-offset to search further")
        if abs(al.drift_ms) > opts.drift_ms:
            warnings.append(f"{folder.name}: clock drift of {al.drift_ms:+.0f} ms over the run ({al.drift_ppm:+.0f} ppm); corrected linearly")
        else:  # below the threshold the line is noise: keep the one global lag
            al.start_s, al.drift_ppm = al.global_start_s, 0.0
            al.offset_s = al.start_s - nominal
    s_start, s_end = al.to_audio(np.array([motion.t[0], motion.t[-1]]))
    overlap = min(duration, s_end) - max(0.0, s_start)
    if overlap < MIN_OVERLAP_S:
        raise ImuImportError(f"{folder}: audio ({duration:.1f} s) and sensor share only {max(overlap, 0):.1f} s; need {MIN_OVERLAP_S:g} s")
    if s_start > 2.0 or s_end < duration - 2.0:
        warnings.append(f"{folder.name}: lengths differ: audio {duration:.1f} s, sensor covers {max(s_start, 0):.1f}..{min(s_end, duration):.1f} s of it; "
                        "the rest is masked")

    idx, _ = detect_steps(env, level, fs, valid)
    idx = refine_onsets(idx, jerk, fs)
    steps_audio = al.to_audio(t0 + idx / fs)
    steps_audio = steps_audio[(steps_audio >= 0) & (steps_audio < duration)]

    def to_grid(ta: float) -> int:
        return int(round((float(al.to_sensor(np.array([ta]))[0]) - t0) * fs))

    windows = judge_windows(duration, steps_audio, to_grid, env, level, valid, fs, opts.min_confidence)
    segs = kept_segments(windows, opts.min_segment_s)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.resolve().name) or "run"
    runner = opts.runner_id or str(meta.get("runner_id") or "me")
    segments = []
    for j, (a, b) in enumerate(segs):
        run_id = name if len(segs) == 1 and a == 0 and b >= duration - 1e-6 else f"{name}.{j + 1:02d}"
        segments.append((run_id, a, b, int(((steps_audio >= a) & (steps_audio < b)).sum())))
    kept = sum(b - a for _, a, b, _ in segments)
    if not segments:
        warnings.append(f"{folder.name}: no stretch of {opts.min_segment_s:g} s with sure labels; nothing written for it")
    res = ImportResult(name, str(folder), runner, round(duration, 3), round(rate, 2), round(al.offset_s, 4), round(al.confidence, 3),
                       round(al.drift_ms, 1), int(len(steps_audio)), sum(s[3] for s in segments), round(kept, 2), segments, warnings,
                       steps_audio, windows)
    plot = {"t0": t0, "fs": fs, "env": env, "level": level, "valid": valid, "a_env": a_env, "alignment": al}
    return res, audio, plot


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def import_folders(
    folders: list[str | Path], out: str | Path, opts: ImportOptions = ImportOptions(), force: bool = False,
    plot: bool = False, fold: int = 0, progress=None,
) -> list[ImportResult]:
    """Label every recording folder and write one dataset (contract 5) at ``out``.

    ``out/manifest.csv``, ``out/audio/<run>.flac`` (16 kHz), ``out/steps/<run>.csv``, and per
    recording ``out/import/<name>.json`` (alignment, windows, warnings), ``<name>.windows.csv`` and,
    with ``plot``, ``<name>.png``. All runs get ``fold`` (own runs are one runner: one fold).
    """
    from train.data.recordings import MANIFEST, Recording, write_manifest
    from train.data.synth import write_audio

    out = Path(out)
    folders = [Path(f) for f in folders]
    if not folders:
        raise ImuImportError("no recording folders given")
    names = [f.resolve().name for f in folders]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ImuImportError(f"two recordings named {sorted(dup)[0]!r}; run ids come from folder names and must differ")
    for f in folders:
        if _inside(out, f):
            raise ImuImportError(f"--out {out} is inside the recording {f}; the input folder is never written to")
    if (out / MANIFEST).exists() and not force:
        raise ImuImportError(f"{out / MANIFEST} exists; choose another --out or pass --force")
    results, labelled = [], []
    for f in folders:
        if progress:
            progress(f"labelling {f.name}")
        res, audio, pdata = label_recording(f, opts)
        results.append((res, audio, pdata))
    for sub in ("audio", "steps", "import"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    recs = []
    for res, audio, pdata in results:
        for run_id, a, b, _ in res.segments:
            seg_audio = audio[int(round(a * SAMPLE_RATE)) : int(round(b * SAMPLE_RATE))]
            ap, sp = out / "audio" / f"{run_id}.flac", out / "steps" / f"{run_id}.csv"
            write_audio(ap, seg_audio)
            st = res.steps_s[(res.steps_s >= a) & (res.steps_s < b)] - a
            np.savetxt(sp, st, fmt="%.4f", header="time_s", comments="")
            recs.append(Recording(run_id, res.runner_id, ap, sp, "", "own", fold, len(seg_audio) / SAMPLE_RATE))
        (out / "import" / f"{res.name}.json").write_text(json.dumps(res.summary(), indent=1) + "\n")
        with (out / "import" / f"{res.name}.windows.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["start_s", "end_s", "state", "confidence", "n_steps", "cadence_spm", "kept"])
            for win in res.windows:
                w.writerow([f"{win.start_s:.2f}", f"{win.end_s:.2f}", win.state, win.confidence, win.n_steps, win.cadence_spm, int(win.kept)])
        if plot:
            plot_recording(out / "import" / f"{res.name}.png", res, audio, pdata)
        labelled.append(res)
    if not recs:
        raise ImuImportError("no recording gave a sure stretch; nothing to write (see the warnings)")
    write_manifest(out, recs)
    return labelled


def plot_recording(path: Path, res: ImportResult, audio: np.ndarray, pdata: dict, truth: np.ndarray | None = None) -> Path:
    """One figure: audio, acceleration with the steps, window confidence, the clock search."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    al: Alignment = pdata["alignment"]
    fs, t0 = pdata["fs"], pdata["t0"]
    ta = al.to_audio(t0 + np.arange(len(pdata["env"])) / fs)
    fig, ax = plt.subplots(4, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [1, 1.4, 0.6, 0.8]})
    hop = max(1, len(audio) // 20000)
    ax[0].plot(np.arange(0, len(audio), hop) / SAMPLE_RATE, audio[::hop], lw=0.3, color="0.3")
    ax[0].set_ylabel("audio")
    ax[0].set_title(f"{res.name}: {res.n_steps} steps, {res.n_labeled_steps} labelled in {res.kept_s:.0f} of {res.duration_s:.0f} s; "
                    f"clock offset {res.offset_s:+.3f} s (confidence {res.offset_confidence:.2f}), drift {res.drift_ms:+.0f} ms")
    ax[1].plot(ta, pdata["env"], lw=0.5, label="impact envelope (band-passed |a|)")
    ax[1].plot(ta, pdata["level"], lw=0.3, alpha=0.5, label="motion (0.5-15 Hz |a|)")
    y = np.interp(res.steps_s, ta, pdata["env"])
    ax[1].plot(res.steps_s, y, "v", ms=3, color="C3", label="detected steps")
    if truth is not None:
        ax[1].plot(truth, np.zeros_like(truth), "|", ms=6, color="k", label="true steps")
    ax[1].set_ylabel("m/s^2")
    ax[1].legend(loc="upper right", fontsize=7)
    colors = {"still": "C2", "steps": "C0", "uncertain": "C1", "gap": "C7"}
    for w in res.windows:
        for a in ax[:3]:
            if not w.kept:
                a.axvspan(w.start_s, w.end_s, color=colors[w.state], alpha=0.15, lw=0)
        ax[2].bar(w.start_s, w.confidence, width=w.end_s - w.start_s, align="edge", color=colors[w.state])
    ax[2].set_ylim(0, 1)
    ax[2].set_ylabel("confidence")
    ax[2].set_xlabel("audio time (s); shaded: masked (orange uncertain, grey gap)")
    for a in ax[:3]:
        a.set_xlim(0, res.duration_s)
    if al.corr is not None:
        ax[3].plot(al.lags_s, al.corr, lw=0.7)
        ax[3].axvline(res.offset_s, color="C3", lw=0.8)
        ax[3].set_xlabel("clock offset (s)")
        ax[3].set_ylabel("audio x jerk")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
