"""Pseudo-strong labels (PSL, Dinkel et al.): a frozen teacher relabels every recording finely.

The teacher runs over each recording in windows of its training window at half-window hops, and
each window commits the output frames the edge runtime would take from it (its centre hop;
``edge.counter.Alignment``), giving one committed logit track per recording at 25 frames/s
(:func:`committed_logits`). A pseudo-strong label is the teacher's step probability of each
output frame, ``sigmoid`` of that track: the soft target a student learns frame by frame
(``train.distill.student``). Unlabeled runs get labels too: that is the point of relabeling.
The teacher may be an ensemble: several checkpoints, each run on the same windows, whose step
probabilities are averaged (their errors partly cancel; their mean is a steadier target than
any one of them).

On disk, beside the dataset (``DATA/psl/<teacher>-<sha8>/`` unless told otherwise)::

    provenance.json        teacher path + sha256 + name/config, window/hop, label kind, dataset,
                           front end, versions, "complete" once every recording is labeled
    tracks/<run>.npy       (T // 4,) float32 in [0, 1]: the teacher's step probability per output frame
    analysis.json / .png   the teacher's steps vs the true steps (``footfall psl analyze``)

Relabeling is sharded by recording under ``torchrun`` (rank r takes recordings r, r + W, ...),
writes each track atomically and skips tracks already present, so an interrupted run resumes.
Every recording is batched on its own, so the labels do not depend on the number of processes.

Format versions: 2 (this one) stores step probabilities; 1 stored the summed step counts of
0.5-5 s segments of a density teacher, which no student reads any more: a version-1 folder is
refused with one line (relabel it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from edge.card import sha256_file
from edge.counter import DENSITY_FPS, DENSITY_STRIDE, PAD_LOG_MEL, Alignment, CounterParams, count_events, sigmoid
from edge.frontend import FRAMES_PER_SECOND, frontend_params
from edge.util import atomic_write as _atomic_write_bytes, tool_versions, write_json

PROVENANCE = "provenance.json"
TRACKS_DIR = "tracks"
PSL_FORMAT = "footfall.psl"
PSL_VERSION = 2  # 2: per-frame step probabilities; 1: per-segment step counts (retired)
LABEL_KIND = "step_probability"  # sigmoid of the teacher's committed step-onset logits, per output frame
ANALYSIS_WINDOWS_S = (1.0, 2.0, 5.0)  # window lengths the analysis counts steps in (whole output frames)
MATCH_TOLERANCE_S = 0.07  # a teacher step within this of a true step is that step (the beat-tracking convention)


class PSLError(ValueError):
    """Unusable PSL input or output (teacher, folder, provenance); the message is one line."""


# --------------------------------------------------------------------------- the teacher's track


Predictor = Callable[[torch.Tensor], torch.Tensor]  # (B, 1, 64, W) -> (B, W // 4) step-onset logits


def _window_outputs(model: Predictor, logmel: np.ndarray, window_frames: int, starts: Sequence[int], batch_size: int,
                    device: str | torch.device) -> Iterator[tuple[int, np.ndarray]]:
    """``model`` on the windows of ``logmel`` (64, T) that start at ``starts``, ``batch_size`` at a time.

    A window reaching past the recording is right-padded with the log-mel floor (digital silence),
    as the edge runtime pads. Yields (index of the batch's first window in ``starts``, logits
    (B, window_frames // 4) float32); a model that returns another shape is a PSLError.
    """
    n_mels, T = logmel.shape
    mel = np.asarray(logmel, dtype=np.float32)
    reach = max(int(s) for s in starts) + window_frames if len(starts) else T
    if reach > T:
        mel = np.concatenate([mel, np.full((n_mels, reach - T), PAD_LOG_MEL, np.float32)], axis=1)
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
def committed_logits(model: Predictor, logmel: np.ndarray, window_frames: int, hop_frames: int, batch_size: int = 32,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """The logit track a streaming counter commits: (64, T) -> (T // 4,) float32.

    Windows of ``window_frames`` every ``hop_frames``, each committing its centre hop, window 0
    its head and a final window the tail (``edge.counter.Alignment``: the same windows, padding
    and commits as ``edge.stream.count_offline``), batched. ``model`` is any callable (an
    eval-mode module, a converted PT2E graph) mapping (B, 1, 64, W) to (B, W // 4). Batches never
    mix recordings, so the result does not depend on how recordings are spread over processes.
    """
    T = logmel.shape[1]
    try:
        plan = Alignment(window_frames, hop_frames).plan(T)
    except ValueError as e:
        raise PSLError(f"window {window_frames} / hop {hop_frames} frames: {e}") from None
    out = []
    for b, y in _window_outputs(model, logmel, window_frames, [s for s, _, _ in plan], batch_size, device):
        out.extend(row[lo:hi] for (_, lo, hi), row in zip(plan[b : b + len(y)], y))
    track = np.concatenate(out) if out else np.zeros(0, np.float32)
    assert len(track) == T // DENSITY_STRIDE, (len(track), T)
    return track.astype(np.float32)


def step_probabilities(logits: np.ndarray) -> np.ndarray:
    """Committed logits -> the pseudo-strong labels: per-frame step probabilities, float32 in [0, 1]."""
    return sigmoid(logits).astype(np.float32)


@torch.inference_mode()
def window_events(model: Predictor, logmel: np.ndarray, window_frames: int, batch_size: int = 32, device: str | torch.device = "cpu",
                  params: CounterParams | None = None) -> np.ndarray:
    """Step times (s) of a recording cut into non-overlapping windows, each counted on its own.

    The paper's protocol for event models: every window of ``window_frames`` (and a last one
    flush with the end, for the frames after the grid) is run and its logits counted alone
    (``edge.counter.count_events``), as a 5-s validation window is; a window keeps the events of
    the frames it commits. (64, T) -> sorted step times.
    """
    plan = Alignment(window_frames, window_frames).plan(logmel.shape[1])
    events = []
    for b, y in _window_outputs(model, logmel, window_frames, [s for s, _, _ in plan], batch_size, device):
        for (start, lo, hi), row in zip(plan[b : b + len(y)], y):
            t = count_events(row, params)
            f = t * DENSITY_FPS
            events.append(t[(f >= lo) & (f < hi)] + start / FRAMES_PER_SECOND)
    return np.sort(np.concatenate(events)) if events else np.zeros(0, np.float64)


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
    hop_frames: int  # relabeling hop, front-end frames; each window commits its centre hop
    label: str = LABEL_KIND
    fps: float = DENSITY_FPS  # label frames per second
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
        return {k: getattr(self, k) for k in ("teacher_sha256", "dataset", "window_frames", "hop_frames", "label", "fps", "frontend", "version")}


def track_path(psl_dir: str | Path, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return Path(psl_dir) / TRACKS_DIR / f"{safe}.npy"


def load_provenance(psl_dir: str | Path) -> Provenance:
    """The provenance of a PSL folder of this format version; anything else is a one-line PSLError."""
    path = Path(psl_dir) / PROVENANCE
    if not path.is_file():
        raise PSLError(f"{psl_dir}: not a PSL folder (no {PROVENANCE}); make one with `footfall psl relabel`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PSLError(f"{path}: unreadable provenance ({e})") from e
    if not isinstance(data, dict) or data.get("format") != PSL_FORMAT:
        raise PSLError(f"{path}: not a footfall PSL provenance (format {data.get('format') if isinstance(data, dict) else None!r})")
    version = data.get("version")
    if version != PSL_VERSION:
        what = " (per-segment step counts of a density teacher)" if version == 1 else ""
        raise PSLError(
            f"{path}: PSL labels of format v{version}{what}; this code reads v{PSL_VERSION} (per-frame step probabilities): "
            "relabel with `footfall psl relabel` into a new --out, or into this one with --overwrite"
        )
    try:
        return Provenance(**data)
    except TypeError as e:
        raise PSLError(f"{path}: unreadable provenance ({e})") from e


def load_track(psl_dir: str | Path, run_id: str) -> np.ndarray:
    """(T // 4,) float32 step probabilities of one run."""
    path = track_path(psl_dir, run_id)
    if not path.is_file():
        raise PSLError(f"{path}: no PSL track for run {run_id!r}; relabel (it resumes) to complete {psl_dir}")
    return np.load(path)


def load_labels(psl_dir: str | Path) -> dict[str, np.ndarray]:
    """{run_id: (T // 4,) float32 step probabilities} of every run of a complete PSL folder."""
    prov = load_provenance(psl_dir)
    if not prov.complete:
        raise PSLError(f"{psl_dir}: relabeling incomplete; rerun `footfall psl relabel` with the same arguments to resume")
    return {rid: load_track(psl_dir, rid) for rid in prov.run_ids}


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


def _teacher_fields(paths: list[Path], metas: list[dict], shas: list[str]) -> dict[str, Any]:
    """Provenance fields of one teacher, or of an ensemble (several checkpoints whose step
    probabilities are averaged): its paths joined by commas, the sha256 of its members' sha256 values
    in order (one key for resume), its members' names, configs and metadata; the fold of the runners
    they trained on, which must be one fold for all."""
    if len(paths) == 1:
        return {"teacher": str(paths[0]), "teacher_sha256": shas[0], "teacher_name": metas[0]["name"],
                "teacher_config": metas[0]["config"], "teacher_meta": _plain(metas[0])}
    folds = {m.get("fold") for m in metas}
    if len(folds) > 1:
        raise PSLError(f"the ensemble's members were trained on different folds ({', '.join(map(str, sorted(folds, key=str)))}); "
                       "a PSL folder's labels are one fold's")
    joined = hashlib.sha256("\n".join(shas).encode()).hexdigest()
    return {"teacher": ",".join(map(str, paths)), "teacher_sha256": joined,
            "teacher_name": f"ensemble of {len(paths)}: " + ", ".join(m["name"] for m in metas),
            "teacher_config": {"members": [m["config"] for m in metas]},
            "teacher_meta": {"fold": folds.pop(), "members": [{"path": str(p), "sha256": h, **_plain(m)} for p, h, m in zip(paths, shas, metas)]}}


class Ensemble(torch.nn.Module):
    """Several step-onset models as one: the logit of their mean step probability (what an
    ensemble teacher's labels are), for code that scores a teacher as one model."""

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.stack([torch.sigmoid(m(x).float()) for m in self.members]).mean(0).clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)


def load_teacher(teacher: str, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The teacher a provenance names (``Provenance.teacher``: one path, or an ensemble's joined by
    commas) as one model, with the (first) member's checkpoint metadata."""
    from train.models import load_checkpoint

    loaded = [load_checkpoint(p, map_location=map_location) for p in str(teacher).split(",")]
    if len(loaded) == 1:
        return loaded[0]
    return Ensemble([m for m, _ in loaded]).eval(), loaded[0][1]


def relabel(
    teacher: str | Path | Sequence[str | Path],
    data: str | Path,
    out: str | Path | None = None,
    window_s: float | None = None,
    hop_s: float | None = None,
    batch_size: int = 32,
    device: str | None = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Relabel every recording of ``data`` with ``teacher``; returns the PSL folder.

    ``teacher`` is one checkpoint or several: an ensemble, whose label is the mean of its members'
    step probabilities (each member on the same windows). ``window_s`` defaults to the (first)
    teacher's training window (its checkpoint's ``window_s`` or 5 s), ``hop_s`` to half of it (each
    window commits its centre half). Under ``torchrun`` recordings are sharded over ranks; rank 0
    writes the provenance. Reruns with the same teacher(s), data, window and hop resume; a mismatch
    (or labels of an older format) fails unless ``overwrite``.
    """
    from train.data.features import recording_logmel
    from train.data.recordings import load_dataset
    from train.models import load_checkpoint
    from train.fit.trainer import all_gather_objects, barrier, distributed

    device_type = resolve_device(device).type
    with distributed(device_type) as env:
        paths = [Path(t).resolve() for t in ([teacher] if isinstance(teacher, (str, Path)) else teacher)]
        if not paths:
            raise PSLError("no teacher checkpoint given")
        if len(set(paths)) < len(paths):
            raise PSLError("a teacher checkpoint is given twice; an ensemble's members are different checkpoints")
        data = Path(data).resolve()
        for t in paths:
            if not t.is_file():
                raise PSLError(f"{t}: no such teacher checkpoint")
        recs = load_dataset(data)
        loaded = [load_checkpoint(t) for t in paths]
        models, metas = [m for m, _ in loaded], [meta for _, meta in loaded]
        dev = torch.device("cuda", env.local_rank) if device_type == "cuda" else torch.device("cpu")
        for model in models:
            model.to(dev).eval()
        window_s = float(window_s if window_s is not None else teacher_window_s(metas[0]))
        window_frames = round(window_s * FRAMES_PER_SECOND)
        hop_frames = round((hop_s if hop_s is not None else window_s / 2) * FRAMES_PER_SECOND)
        hop_frames = min(window_frames, max(DENSITY_STRIDE, hop_frames // DENSITY_STRIDE * DENSITY_STRIDE))
        for model in models:
            tm = int(getattr(model, "time_multiple", DENSITY_STRIDE))
            if window_frames <= 0 or window_frames % tm or window_frames % DENSITY_STRIDE:
                raise PSLError(f"window {window_s} s = {window_frames} frames is not a positive multiple of {model.name}'s time_multiple {tm}")
        if batch_size < 1:
            raise PSLError(f"batch size must be >= 1, got {batch_size}")
        shas = [sha256_file(t) for t in paths]
        fields = _teacher_fields(paths, metas, shas)
        out = Path(out).resolve() if out is not None else default_out(data, paths[0], fields["teacher_sha256"])
        prov = Provenance(
            **fields,
            dataset=str(data),
            window_frames=window_frames,
            hop_frames=hop_frames,
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
                probs = np.mean([step_probabilities(committed_logits(m, mel, window_frames, hop_frames, batch_size, dev)) for m in models],
                                axis=0).astype(np.float32)
                _atomic_write_bytes(track_path(out, rec.run_id), lambda f, p=probs: np.save(f, p))
                advance()
        barrier(env)
        if env.is_main:
            _finish_folder(out, prov)
        barrier(env)
        return out


def _start_folder(out: Path, prov: Provenance, overwrite: bool) -> None:
    path = out / PROVENANCE
    if path.is_file():
        try:
            same = load_provenance(out).key() == prov.key()
        except PSLError:
            if not overwrite:
                raise  # unreadable, or labels of another format version: one line saying so
            same = False
        if not same and not overwrite:
            raise PSLError(f"{out}: holds labels from another teacher, dataset, window or hop; pass --out elsewhere or --overwrite")
        if not same:
            for p in (out / TRACKS_DIR).glob("*.npy"):
                p.unlink()
            for p in out.glob("segments_*s.npz"):  # a version-1 folder's segment counts
                p.unlink()
    (out / TRACKS_DIR).mkdir(parents=True, exist_ok=True)
    write_json(path, asdict(prov))


def _finish_folder(out: Path, prov: Provenance) -> None:
    """Every run's track present: mark the folder complete."""
    missing = [rid for rid in prov.run_ids if not track_path(out, rid).is_file()]
    if missing:
        raise PSLError(f"{out}: no track for {len(missing)} run(s) (first {missing[0]!r}); rerun `footfall psl relabel` to resume")
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


def probability_logits(probs: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Step probabilities -> logits (clipped off 0 and 1), the counter's input."""
    p = np.clip(np.asarray(probs, np.float64), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def match_events(pred: np.ndarray, true: np.ndarray, tolerance_s: float = MATCH_TOLERANCE_S) -> int:
    """How many of the sorted step times ``pred`` lie within ``tolerance_s`` of a distinct true step
    (greedy in time order, which is optimal for one tolerance on a line)."""
    i = j = hits = 0
    while i < len(pred) and j < len(true):
        if abs(pred[i] - true[j]) <= tolerance_s:
            hits, i, j = hits + 1, i + 1, j + 1
        elif pred[i] < true[j]:
            i += 1
        else:
            j += 1
    return hits


@dataclass
class WindowStats:
    window_s: float
    n_windows: int
    true_mean: float  # mean true steps per window
    event_mae: float  # the teacher's steps (its probabilities through the event counter)
    event_bias: float  # mean(events - true)
    event_pcc: float
    soft_mae: float  # the sum of its probabilities (the expected count a student is taught)
    soft_bias: float
    soft_pcc: float


def analyze(
    psl_dir: str | Path,
    data: str | Path | None = None,
    windows: Sequence[float] = ANALYSIS_WINDOWS_S,
    plot: bool = True,
    params: CounterParams | None = None,
) -> dict:
    """Compare the pseudo-strong labels with the true steps of the labeled runs.

    Events: the teacher's steps (its probabilities through the edge event counter) matched to the
    true steps within :data:`MATCH_TOLERANCE_S` (precision, recall, F1). Counts, per window
    length (non-overlapping whole windows of each run): MAE, bias and PCC of the teacher's step
    count and of the sum of its probabilities, against the true count. Also per fold group (the
    teacher's own test group is the honest one). Writes ``analysis.json`` (and ``analysis.png``)
    into ``psl_dir``; returns the dict.
    """
    from train.data.features import step_frames
    from train.data.recordings import load_dataset, load_steps
    from train.evaluate.metrics import pcc

    prov = load_provenance(psl_dir)
    if not prov.complete:
        raise PSLError(f"{psl_dir}: relabeling incomplete; rerun `footfall psl relabel` to resume")
    data = Path(data or prov.dataset)
    recs = [r for r in load_dataset(data) if r.steps is not None and r.run_id in set(prov.run_ids)]
    if not recs:
        raise PSLError(f"{data}: no labeled runs to compare the pseudo-strong labels with")
    wins = sorted({float(w) for w in windows})
    for w in wins:
        if w <= 0 or abs(w * DENSITY_FPS - round(w * DENSITY_FPS)) > 1e-6:
            raise PSLError(f"analysis window {w} s: must be a positive multiple of {1 / DENSITY_FPS:g} s (one label frame)")
    groups: dict[str, dict] = {}
    for rec in recs:
        probs = load_track(psl_dir, rec.run_id)
        steps = load_steps(rec.steps)
        D = len(probs)
        steps = steps[steps < D / DENSITY_FPS]  # the labeled frames only
        events = count_events(probability_logits(probs), params)
        truth = step_frames(steps, D, fps=DENSITY_FPS).astype(np.float64)
        found = step_frames(events, D, fps=DENSITY_FPS).astype(np.float64)
        for g in ("all", f"fold{rec.fold}"):
            acc = groups.setdefault(g, {"hits": 0, "n_pred": 0, "n_true": 0, "windows": {w: ([], [], []) for w in wins}})
            acc["hits"] += match_events(events, steps)
            acc["n_pred"] += len(events)
            acc["n_true"] += len(steps)
            for w in wins:
                n = round(w * DENSITY_FPS)
                k = D // n
                t, e, s = acc["windows"][w]
                t.append(truth[: k * n].reshape(k, n).sum(1))
                e.append(found[: k * n].reshape(k, n).sum(1))
                s.append(probs[: k * n].astype(np.float64).reshape(k, n).sum(1))
    by_group = {}
    for g, acc in sorted(groups.items()):
        precision = acc["hits"] / acc["n_pred"] if acc["n_pred"] else float("nan")
        recall = acc["hits"] / acc["n_true"] if acc["n_true"] else float("nan")
        f1 = 2 * acc["hits"] / (acc["n_pred"] + acc["n_true"]) if acc["n_pred"] + acc["n_true"] else float("nan")
        rows = []
        for w, (t, e, s) in acc["windows"].items():
            t, e, s = (np.concatenate(a) for a in (t, e, s))
            rows.append(asdict(WindowStats(
                window_s=w, n_windows=int(t.size), true_mean=float(t.mean()) if t.size else float("nan"),
                event_mae=float(np.abs(e - t).mean()) if t.size else float("nan"), event_bias=float((e - t).mean()) if t.size else float("nan"),
                event_pcc=pcc(e, t), soft_mae=float(np.abs(s - t).mean()) if t.size else float("nan"),
                soft_bias=float((s - t).mean()) if t.size else float("nan"), soft_pcc=pcc(s, t),
            )))
        by_group[g] = {"events": {"precision": precision, "recall": recall, "f1": f1, "n_teacher": acc["n_pred"], "n_true": acc["n_true"],
                                  "tolerance_s": MATCH_TOLERANCE_S}, "windows": rows}
    result = {"psl": str(psl_dir), "dataset": str(data), "teacher_sha256": prov.teacher_sha256,
              "teacher_fold": prov.teacher_meta.get("fold"), "n_runs": len(recs), "by_group": by_group}
    write_json(Path(psl_dir) / "analysis.json", result)
    if plot:
        _plot_analysis(Path(psl_dir) / "analysis.png", by_group["all"]["windows"])
    return result


def _plot_analysis(path: Path, stats: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    x = np.arange(len(stats))
    ax.bar(x - 0.2, [r["event_mae"] for r in stats], 0.4, label="teacher's steps (event counter)")
    ax.bar(x + 0.2, [r["soft_mae"] for r in stats], 0.4, label="sum of its probabilities")
    ax.set_xticks(x, [f"{r['window_s']:g} s" for r in stats])
    ax.set_ylabel("MAE vs true steps per window")
    ax.set_title("pseudo-strong labels vs the true steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _atomic_write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
