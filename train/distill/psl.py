"""Pseudo-strong labels (PSL, Dinkel et al.): a frozen teacher relabels every recording finely.

The teacher (trained on weak 5-s window counts) runs over each recording with overlapping
windows; where windows overlap, their step densities are averaged, giving one dense track per
recording at 25 frames/s (:func:`predict_track`). A pseudo-strong label is the soft step count of
a segment of ``n`` seconds, the sum of the track over that segment (``n`` in :data:`SEGMENTS_S`).
Unlabeled runs get labels too: that is the point of relabeling.

On disk, beside the dataset (``DATA/psl/<teacher>-<sha8>/`` unless told otherwise)::

    provenance.json        teacher path + sha256 + name/config, window/hop, segments, dataset,
                           front end, versions, "complete" once every recording is labeled
    tracks/<run>.npy       (T // 4,) float32: the overlap-averaged teacher density of one run
    segments_<n>s.npz      {run_id: (n_segments,) float32} soft step counts of whole n-s segments
                           [k n, (k + 1) n), k = 0 .. floor(duration / n) - 1
    analysis.json / .png   PSL vs true per-segment counts (``footfall psl analyze``)

Relabeling is sharded by recording under ``torchrun`` (rank r takes recordings r, r + W, ...),
writes each track atomically and skips tracks already present, so an interrupted run resumes.
Every recording is batched on its own, so the labels do not depend on the number of processes.

Segments of 0.5 s are 12.5 density frames: segment sums use fractional frame overlaps
(:func:`segment_matrix`), so every segment length is exact for a piecewise-constant density.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from edge.card import sha256_file
from edge.counter import DENSITY_FPS, DENSITY_STRIDE, PAD_LOG_MEL  # 25 density frames/s, 4 front-end frames each
from edge.frontend import FRAMES_PER_SECOND, frontend_params
from edge.util import atomic_write as _atomic_write_bytes, tool_versions, write_json

SEGMENTS_S = (0.5, 1.0, 2.0, 5.0)
PROVENANCE = "provenance.json"
TRACKS_DIR = "tracks"
PSL_FORMAT = "footfall.psl"
PSL_VERSION = 1


class PSLError(ValueError):
    """Unusable PSL input or output (teacher, folder, provenance); the message is one line."""


# --------------------------------------------------------------------------- segment arithmetic


def segment_frames(segment_s: float) -> float:
    """Density frames per segment of ``segment_s`` seconds (0.5 s -> 12.5)."""
    if not segment_s > 0:
        raise PSLError(f"segment length must be > 0 s, got {segment_s}")
    return segment_s * DENSITY_FPS


def n_segments(n_frames: int, seg_frames: float) -> int:
    """Whole segments of ``seg_frames`` that fit in ``n_frames`` density frames."""
    return int(math.floor(n_frames / seg_frames + 1e-9))


def segment_matrix(n_frames: int, seg_frames: float, n_segs: int | None = None) -> np.ndarray:
    """(n_frames, n_segs) float32: overlap of density frame f = [f, f+1) with segment k.

    Segment k is [k * seg_frames, (k + 1) * seg_frames) in frame units, so ``density @ P`` are
    the segment sums of a piecewise-constant density, exact for fractional segment lengths.
    """
    n_segs = n_segments(n_frames, seg_frames) if n_segs is None else n_segs
    f = np.arange(n_frames, dtype=np.float64)[:, None]
    lo = np.arange(n_segs, dtype=np.float64)[None, :] * seg_frames
    overlap = np.minimum(f + 1, lo + seg_frames) - np.maximum(f, lo)
    return np.clip(overlap, 0.0, 1.0).astype(np.float32)


def segment_sums(track: np.ndarray, seg_frames: float) -> np.ndarray:
    """(n_frames,) density -> (n_segs,) float32 sums over the whole segments."""
    track = np.asarray(track, dtype=np.float64)
    return (track @ segment_matrix(len(track), seg_frames).astype(np.float64)).astype(np.float32)


def label_curve(seg_counts: np.ndarray, seg_frames: float) -> tuple[np.ndarray, np.ndarray]:
    """Segment counts -> their cumulative curve (knots at k * seg_frames, cumulative counts).

    The counting analogue of the PSL paper's label propagation: a segment's count is spread
    evenly over its span, so the cumulative count is piecewise linear between the knots and the
    label of any interval, aligned with the segments or not, is a difference of two
    interpolations (:func:`interval_sums`). Exact for fractional segments (0.5 s = 12.5 frames).
    """
    seg_counts = np.asarray(seg_counts, dtype=np.float64)
    knots = np.arange(len(seg_counts) + 1, dtype=np.float64) * seg_frames
    return knots, np.concatenate([[0.0], np.cumsum(seg_counts)])


def interval_sums(curve: tuple[np.ndarray, np.ndarray], starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Label mass of intervals [starts, ends) (density frames, may be fractional) -> float64."""
    knots, cum = curve
    return np.interp(ends, knots, cum) - np.interp(starts, knots, cum)


def resegment(seg_counts: np.ndarray, seg_frames: float, new_seg_frames: float) -> np.ndarray:
    """Counts of segments of ``seg_frames`` spread evenly and re-summed over whole segments of
    ``new_seg_frames`` inside the same span -> float32 (e.g. 5-s weak counts at 1-s resolution)."""
    curve = label_curve(seg_counts, seg_frames)
    n_new = n_segments(int(math.floor(curve[0][-1] + 1e-9)), new_seg_frames) if len(seg_counts) else 0
    lo = np.arange(n_new, dtype=np.float64) * new_seg_frames
    return interval_sums(curve, lo, lo + new_seg_frames).astype(np.float32)


def true_segments(steps: np.ndarray, n_density_frames: int, segment_s: float) -> np.ndarray:
    """True step counts of whole ``segment_s`` segments (steps counted by front-end frame, as
    :func:`train.data.windows.window_counts`): (n_segs,) float32."""
    from train.data.windows import frame_of

    seg_ff = segment_s * FRAMES_PER_SECOND  # front-end frames per segment (0.5 s -> 50)
    n_segs = n_segments(n_density_frames, segment_frames(segment_s))
    seg = np.floor(frame_of(steps) / seg_ff + 1e-9).astype(np.int64)
    seg = seg[(seg >= 0) & (seg < n_segs)]
    return np.bincount(seg, minlength=n_segs).astype(np.float32)


# --------------------------------------------------------------------------- dense prediction


def window_starts(n_frames: int, window_frames: int, hop_frames: int) -> np.ndarray:
    """Starts (front-end frames) of overlapping windows covering all ``n_frames``.

    The regular grid 0, hop, 2 hop, ... plus one last window flush with the end (rounded down to a
    density frame) so that no tail frame is left without a prediction.
    """
    if window_frames % DENSITY_STRIDE or hop_frames % DENSITY_STRIDE or hop_frames <= 0:
        raise PSLError(f"window ({window_frames}) and hop ({hop_frames}) must be positive multiples of {DENSITY_STRIDE} front-end frames")
    if n_frames <= window_frames:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - window_frames + 1, hop_frames, dtype=np.int64)
    last = (n_frames - window_frames) // DENSITY_STRIDE * DENSITY_STRIDE
    return starts if starts[-1] == last else np.append(starts, last)


Predictor = Callable[[torch.Tensor], torch.Tensor]  # (B, 1, 64, W) -> (B, W // 4)


def _window_outputs(model: Predictor, logmel: np.ndarray, window_frames: int, starts: Sequence[int], batch_size: int,
                    device: str | torch.device) -> Iterator[tuple[int, np.ndarray]]:
    """``model`` on the windows of ``logmel`` (64, T) that start at ``starts``, ``batch_size`` at a time.

    A recording shorter than a window is padded with the log-mel floor. Yields (index of the
    batch's first window in ``starts``, densities (B, window_frames // 4) float32); a model that
    returns another shape is a PSLError.
    """
    n_mels, T = logmel.shape
    mel = np.asarray(logmel, dtype=np.float32)
    if T < window_frames:
        mel = np.concatenate([mel, np.full((n_mels, window_frames - T), PAD_LOG_MEL, np.float32)], axis=1)
    x_all = torch.from_numpy(np.require(mel, np.float32, ["C", "W"]))  # a read-only memmap is copied
    wd = window_frames // DENSITY_STRIDE
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        x = torch.stack([x_all[:, int(s) : int(s) + window_frames] for s in chunk]).unsqueeze(1).to(device)
        y = model(x).float().cpu().numpy()
        if y.shape != (len(chunk), wd):
            raise PSLError(f"model returned {tuple(y.shape)} for input {tuple(x.shape)}; expected ({len(chunk)}, {wd})")
        yield b, y


@torch.inference_mode()
def predict_track(model: Predictor, logmel: np.ndarray, window_frames: int, hop_frames: int, batch_size: int = 32, device: str | torch.device = "cpu") -> np.ndarray:
    """Run ``model`` over a whole recording; overlapping densities averaged -> (T // 4,) float32.

    ``logmel`` is (64, T). Windows of ``window_frames`` at ``hop_frames`` (see
    :func:`window_starts`); a recording shorter than a window is padded with the log-mel floor and
    the padding's output dropped. ``model`` is any callable (an eval-mode module, a converted
    PT2E graph) mapping (B, 1, 64, W) to (B, W // 4). With hop == window it is the paper's
    non-overlapping protocol exactly. Batches never mix recordings, so the result is
    independent of how recordings are distributed over processes.
    """
    T = logmel.shape[1]
    D = T // DENSITY_STRIDE
    starts = window_starts(max(T, window_frames), window_frames, hop_frames)
    wd = window_frames // DENSITY_STRIDE
    acc = np.zeros(max(D, wd) + wd, dtype=np.float64)
    cnt = np.zeros_like(acc)
    for b, y in _window_outputs(model, logmel, window_frames, starts, batch_size, device):
        for s, dens in zip(starts[b : b + len(y)], y.astype(np.float64)):
            d0 = int(s) // DENSITY_STRIDE
            acc[d0 : d0 + wd] += dens
            cnt[d0 : d0 + wd] += 1
    track = acc[:D] / np.maximum(cnt[:D], 1)
    return track.astype(np.float32)


@torch.inference_mode()
def stream_track(model: Predictor, logmel: np.ndarray, window_frames: int, hop_frames: int, batch_size: int = 32, device: str | torch.device = "cpu") -> np.ndarray:
    """The density a streaming counter integrates: ``edge.counter.Alignment``'s commits.

    Same windows, padding and committed frames as ``edge.stream.count_offline`` (each window
    commits its centre hop), but batched: the offline twin of running the model on a phone with
    window ``window_frames`` and hop ``hop_frames``. (64, T) -> (T // 4,) float32.
    """
    from edge.counter import Alignment

    T = logmel.shape[1]
    plan = Alignment(window_frames, hop_frames).plan(T)
    out = []
    for b, y in _window_outputs(model, logmel, window_frames, [s for s, _, _ in plan], batch_size, device):
        out.extend(d[lo:hi] for (_, lo, hi), d in zip(plan[b : b + len(y)], y))
    track = np.concatenate(out) if out else np.zeros(0, np.float32)
    assert len(track) == T // DENSITY_STRIDE, (len(track), T)
    return track.astype(np.float32)


# --------------------------------------------------------------------------- provenance and storage


@dataclass
class Provenance:
    """Where a set of pseudo-strong labels came from; ``provenance.json`` of a PSL folder."""

    teacher: str  # checkpoint path as given (resolved)
    teacher_sha256: str
    teacher_name: str
    teacher_config: dict
    teacher_meta: dict  # plain metadata of the checkpoint (fold, epoch, val metrics ...)
    dataset: str  # resolved dataset folder
    window_frames: int  # teacher input window, front-end frames (100 /s)
    hop_frames: int  # relabeling hop, front-end frames
    segments_s: list[float]
    density_fps: float = DENSITY_FPS
    frontend: dict = field(default_factory=frontend_params)
    n_recordings: int = 0
    run_ids: list[str] = field(default_factory=list)
    complete: bool = False
    format: str = PSL_FORMAT
    version: int = PSL_VERSION
    created: str = ""
    tools: dict = field(default_factory=dict)

    def key(self) -> dict:
        """What must match for existing tracks to be reused (resume)."""
        return {k: getattr(self, k) for k in ("teacher_sha256", "dataset", "window_frames", "hop_frames", "density_fps", "frontend")}


def track_path(psl_dir: str | Path, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return Path(psl_dir) / TRACKS_DIR / f"{safe}.npy"


def segments_path(psl_dir: str | Path, segment_s: float) -> Path:
    return Path(psl_dir) / f"segments_{segment_s:g}s.npz"


def load_provenance(psl_dir: str | Path) -> Provenance:
    path = Path(psl_dir) / PROVENANCE
    if not path.is_file():
        raise PSLError(f"{psl_dir}: not a PSL folder (no {PROVENANCE}); make one with `footfall psl relabel`")
    try:
        data = json.loads(path.read_text())
        prov = Provenance(**data)
    except (json.JSONDecodeError, TypeError) as e:
        raise PSLError(f"{path}: unreadable provenance ({e})") from e
    if prov.format != PSL_FORMAT or prov.version != PSL_VERSION:
        raise PSLError(f"{path}: format {prov.format!r} v{prov.version}; this code reads {PSL_FORMAT!r} v{PSL_VERSION}")
    return prov


def load_track(psl_dir: str | Path, run_id: str) -> np.ndarray:
    path = track_path(psl_dir, run_id)
    if not path.is_file():
        raise PSLError(f"{path}: no PSL track for run {run_id!r}; relabel (it resumes) to complete {psl_dir}")
    return np.load(path)


def load_segments(psl_dir: str | Path, segment_s: float) -> dict[str, np.ndarray]:
    """{run_id: (n_segs,) float32} pseudo-strong labels of ``segment_s`` from a complete PSL folder.

    Read from ``segments_<n>s.npz`` when present, else derived from the dense tracks (any n > 0).
    """
    prov = load_provenance(psl_dir)
    if not prov.complete:
        raise PSLError(f"{psl_dir}: relabeling incomplete; rerun `footfall psl relabel` with the same arguments to resume")
    path = segments_path(psl_dir, segment_s)
    if path.is_file():
        with np.load(path) as z:
            return {rid: z[rid] for rid in prov.run_ids}
    seg = segment_frames(segment_s)
    return {rid: segment_sums(load_track(psl_dir, rid), seg) for rid in prov.run_ids}


# --------------------------------------------------------------------------- relabel


def default_out(data: str | Path, teacher: str | Path, sha: str) -> Path:
    return Path(data) / "psl" / f"{Path(teacher).stem}-{sha[:8]}"


def _tools() -> dict:
    return tool_versions("torch", "numpy")


def _plain(meta: dict) -> dict:
    """The JSON-able scalars/containers of a checkpoint's meta (drops tensors, optimizer state)."""
    out = {}
    for k, v in meta.items():
        if k in ("config", "optimizer", "scheduler", "scaler", "rng"):
            continue
        try:
            json.dumps(v)
        except TypeError:
            continue
        out[k] = v
    return out


def teacher_window_s(meta: dict, default: float = 5.0) -> float:
    """The window a checkpoint was trained on: its ``window_s`` extra, or its training config's."""
    if "window_s" in meta:
        return float(meta["window_s"])
    for key in ("train_config", "train", "cfg"):
        cfg = meta.get(key)
        if isinstance(cfg, dict) and "window_s" in cfg:
            return float(cfg["window_s"])
    return default


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PSLError(f"device {device!r}: CUDA is not available here; use cpu or auto")
    return torch.device(device)


def relabel(
    teacher: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    segments: Sequence[float] = SEGMENTS_S,
    window_s: float | None = None,
    hop_s: float | None = None,
    batch_size: int = 32,
    device: str | None = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Relabel every recording of ``data`` with ``teacher``; returns the PSL folder.

    ``window_s`` defaults to the teacher's training window (its checkpoint's ``window_s`` or
    5 s), ``hop_s`` to half of it (each frame averaged over two windows). Under ``torchrun``
    recordings are sharded over ranks; rank 0 writes provenance and segment files. Reruns with
    the same teacher, data, window and hop resume; a mismatch fails unless ``overwrite``.
    """
    from train.data.features import recording_logmel
    from train.data.recordings import load_dataset
    from train.models import load_checkpoint
    from train.fit.trainer import all_gather_objects, barrier, distributed

    device_type = resolve_device(device).type
    with distributed(device_type) as env:
        teacher, data = Path(teacher).resolve(), Path(data).resolve()
        if not teacher.is_file():
            raise PSLError(f"{teacher}: no such teacher checkpoint")
        segments = sorted({float(s) for s in segments})
        for s in segments:
            segment_frames(s)
        recs = load_dataset(data)
        model, meta = load_checkpoint(teacher)
        dev = torch.device("cuda", env.local_rank) if device_type == "cuda" else torch.device("cpu")
        model.to(dev).eval()
        tm = int(getattr(model, "time_multiple", DENSITY_STRIDE))
        window_s = float(window_s if window_s is not None else teacher_window_s(meta))
        window_frames = round(window_s * FRAMES_PER_SECOND)
        hop_frames = round((hop_s if hop_s is not None else window_s / 2) * FRAMES_PER_SECOND)
        hop_frames = max(DENSITY_STRIDE, hop_frames // DENSITY_STRIDE * DENSITY_STRIDE)
        if window_frames <= 0 or window_frames % tm or window_frames % DENSITY_STRIDE:
            raise PSLError(f"window {window_s} s = {window_frames} frames is not a positive multiple of {model.name}'s time_multiple {tm}")
        if batch_size < 1:
            raise PSLError(f"batch size must be >= 1, got {batch_size}")
        sha = sha256_file(teacher)
        out = Path(out).resolve() if out is not None else default_out(data, teacher, sha)
        prov = Provenance(
            teacher=str(teacher),
            teacher_sha256=sha,
            teacher_name=meta["name"],
            teacher_config=meta["config"],
            teacher_meta=_plain(meta),
            dataset=str(data),
            window_frames=window_frames,
            hop_frames=hop_frames,
            segments_s=segments,
            n_recordings=len(recs),
            run_ids=[r.run_id for r in recs],
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            tools=_tools(),
        )

        # rank 0 checks / starts the folder; everyone learns the verdict
        error = None
        if env.is_main:
            try:
                _start_folder(out, prov, overwrite)
            except PSLError as e:
                error = str(e)
        error = all_gather_objects(env, error)[0]
        if error:
            raise PSLError(error)

        mine = [r for i, r in enumerate(recs) if i % env.world_size == env.rank]
        todo = [r for r in mine if not track_path(out, r.run_id).is_file()]
        with _progress(progress and env.is_main, f"relabel (rank 0 of {env.world_size})", len(mine), len(mine) - len(todo)) as advance:
            for rec in todo:
                mel = recording_logmel(rec, data, mmap=True)
                track = predict_track(model, mel, window_frames, hop_frames, batch_size, dev)
                _atomic_write_bytes(track_path(out, rec.run_id), lambda f, t=track: np.save(f, t))
                advance()
        barrier(env)
        if env.is_main:
            _finish_folder(out, prov, recs)
        barrier(env)
        return out


def _start_folder(out: Path, prov: Provenance, overwrite: bool) -> None:
    path = out / PROVENANCE
    if path.is_file():
        try:
            old = load_provenance(out)
            same = old.key() == prov.key()
        except PSLError:
            same = False
        if not same and not overwrite:
            raise PSLError(
                f"{out}: holds labels from another teacher, dataset, window or hop; pass --out elsewhere or --overwrite"
            )
        if not same:
            for p in (out / TRACKS_DIR).glob("*.npy"):
                p.unlink()
            for p in out.glob("segments_*s.npz"):
                p.unlink()
    (out / TRACKS_DIR).mkdir(parents=True, exist_ok=True)
    write_json(path, asdict(prov))


def _finish_folder(out: Path, prov: Provenance, recs) -> None:
    tracks = {r.run_id: load_track(out, r.run_id) for r in recs}
    for s in prov.segments_s:
        seg = segment_frames(s)
        labels = {rid: segment_sums(t, seg) for rid, t in tracks.items()}
        _atomic_write_bytes(segments_path(out, s), lambda f, lab=labels: np.savez(f, **lab))
    prov.complete = True
    write_json(out / PROVENANCE, asdict(prov))


class _progress:
    """A rich progress bar (or nothing); ``with _progress(...) as advance: advance()``."""

    def __init__(self, enabled: bool, title: str, total: int, done: int = 0):
        self.enabled, self.title, self.total, self.done = enabled, title, total, done
        self._bar = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
        self._bar.start()
        task = self._bar.add_task(self.title, total=self.total, completed=self.done)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


# --------------------------------------------------------------------------- label analysis


@dataclass
class SegmentStats:
    segment_s: float
    n_segments: int
    true_mean: float  # mean true count per segment
    psl_mae: float
    psl_bias: float  # mean(psl - true)
    psl_rmse: float
    psl_pcc: float
    weak_mae: float  # the 5-s window count spread evenly (label propagation), for reference
    weak_bias: float
    weak_pcc: float
    # the teacher's timing with the true count: its track rescaled in each 5-s window to the weak
    # label. Lower than weak_mae only where the teacher places steps inside a window better than
    # spreading them evenly does: the information PSL can add to a labeled run
    timed_mae: float
    timed_pcc: float


def timed_track(track: np.ndarray, window_counts: np.ndarray, window_frames: int) -> np.ndarray:
    """The teacher's density rescaled in each window of ``window_frames`` to ``window_counts``:
    its timing, the weak label's count (spread evenly where the teacher put nothing)."""
    n = len(window_counts)
    x = np.asarray(track[: n * window_frames], np.float64).reshape(n, window_frames)
    s = x.sum(axis=1, keepdims=True)
    c = np.asarray(window_counts, np.float64)[:, None]
    even = np.broadcast_to(c / window_frames, x.shape)
    return np.where(s > 1e-6, x * c / np.maximum(s, 1e-12), even).reshape(-1)


def analyze(
    psl_dir: str | Path,
    data: str | Path | None = None,
    segments: Sequence[float] = SEGMENTS_S,
    plot: bool = True,
) -> dict:
    """Compare pseudo-strong labels with the true per-segment counts of the labeled runs.

    For each segment length: MAE, bias, RMSE and PCC of PSL vs truth, the same for the weak
    label spread evenly (what a student without PSL learns from), and for the teacher's timing with
    the weak label's count (:func:`timed_track`). Segments are restricted to the
    frames covered by whole 5-s windows so that every row sees the same audio. Also per fold
    group. Writes ``analysis.json`` (and ``analysis.png``) into ``psl_dir``; returns the dict.
    """
    from train.data.recordings import load_dataset, load_steps
    from train.evaluate.metrics import pcc

    prov = load_provenance(psl_dir)
    if not prov.complete:
        raise PSLError(f"{psl_dir}: relabeling incomplete; rerun `footfall psl relabel` to resume")
    data = Path(data or prov.dataset)
    recs = [r for r in load_dataset(data) if r.steps is not None and r.run_id in set(prov.run_ids)]
    if not recs:
        raise PSLError(f"{data}: no labeled runs to compare the pseudo-strong labels with")
    cover = segment_frames(5.0)
    rows: dict[str, list] = {"all": []}
    scatter = {}
    for s in sorted({float(x) for x in segments}):
        seg = segment_frames(s)
        per_group: dict[str, tuple[list, list, list]] = {}
        for rec in recs:
            track = load_track(psl_dir, rec.run_id)
            D = n_segments(len(track), cover) * int(cover)  # whole 5-s windows only
            if D == 0:
                continue
            steps = load_steps(rec.steps)
            t = true_segments(steps, D, s)
            p = segment_sums(track[:D], seg)
            weak5 = true_segments(steps, D, 5.0)
            w = resegment(weak5, cover, seg)  # the weak label, spread
            q = segment_sums(timed_track(track[:D], weak5, int(cover)), seg)
            for g in ("all", f"fold{rec.fold}"):
                acc = per_group.setdefault(g, ([], [], [], []))
                acc[0].append(t), acc[1].append(p), acc[2].append(w), acc[3].append(q)
        for g, (t, p, w, q) in sorted(per_group.items()):
            t, p, w, q = (np.concatenate(a).astype(np.float64) for a in (t, p, w, q))
            rows.setdefault(g, []).append(asdict(SegmentStats(
                segment_s=s, n_segments=int(t.size), true_mean=float(t.mean()),
                psl_mae=float(np.abs(p - t).mean()), psl_bias=float((p - t).mean()),
                psl_rmse=float(np.sqrt(((p - t) ** 2).mean())), psl_pcc=pcc(p, t),
                weak_mae=float(np.abs(w - t).mean()), weak_bias=float((w - t).mean()), weak_pcc=pcc(w, t),
                timed_mae=float(np.abs(q - t).mean()), timed_pcc=pcc(q, t),
            )))
            if g == "all":
                scatter[s] = (t, p, w)
    # the teacher's own test group is the honest one: its other groups it trained or validated on
    result = {"psl": str(psl_dir), "dataset": str(data), "teacher_sha256": prov.teacher_sha256,
              "teacher_fold": prov.teacher_meta.get("fold"), "n_runs": len(recs), "by_group": rows}
    write_json(Path(psl_dir) / "analysis.json", result)
    if plot:
        _plot_analysis(Path(psl_dir) / "analysis.png", rows["all"], scatter)
    return result


def _plot_analysis(path: Path, stats: list[dict], scatter: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segs = [r["segment_s"] for r in stats]
    fig, axes = plt.subplots(1, 1 + len(scatter), figsize=(4 * (1 + len(scatter)), 3.6))
    ax = axes[0]
    x = np.arange(len(segs))
    ax.bar(x - 0.27, [r["psl_mae"] for r in stats], 0.27, label="PSL")
    ax.bar(x, [r["timed_mae"] for r in stats], 0.27, label="PSL timing, true 5-s count")
    ax.bar(x + 0.27, [r["weak_mae"] for r in stats], 0.27, label="weak (spread 5-s count)")
    ax.set_xticks(x, [f"{s:g} s" for s in segs])
    ax.set_ylabel("MAE vs true segment count")
    ax.set_title("label error per segment")
    ax.legend(fontsize=8)
    for ax, (s, (t, p, _)) in zip(axes[1:], sorted(scatter.items())):
        lim = float(max(t.max(), p.max(), 1.0)) + 0.5
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, t.size)
        ax.scatter(t + jitter, p, s=3, alpha=0.3)
        ax.plot([0, lim], [0, lim], "k--", lw=0.8)
        ax.set_xlim(-0.5, lim), ax.set_ylim(-0.5, lim)
        ax.set_xlabel("true steps"), ax.set_ylabel("PSL (teacher)")
        ax.set_title(f"{s:g}-s segments")
    fig.tight_layout()
    _atomic_write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
