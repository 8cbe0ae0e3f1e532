"""What ``footfall bench`` measures: the reference teacher, the PyTorch student and every exported
artifact of a folder, each as a :class:`Subject` that can be loaded as an edge-style backend.

An artifact folder (the export pipeline's output) holds ``*.pte``, ``*.tflite`` and ``*.onnx``
files, each with its model card (``x.pte.card.json``), and usually the float student checkpoint
(``*.pt``) they came from; the teacher checkpoint may live there too. :func:`discover` finds them:

- the teacher: ``--teacher`` (required unless one ``*.pt`` in the folder is a teacher);
- the PyTorch student: ``--student``, else the checkpoint the cards name (``model.checkpoint``),
  else the one ``*.pt`` in the folder whose model is a student;
- edge artifacts: every file with a card that verifies (sha256, front end, shapes). Files that
  cannot be benchmarked here (no card, a card that does not verify, an NPU context binary) are
  listed in :attr:`Discovery.skipped` with the reason, never silently dropped. What it looks for
  and does not find (the int8 ``.pte`` the goals are about, the float student) is in
  :attr:`Discovery.missing`, with how to make or pass it.

Every subject, PyTorch or not, is run through the same interface as ``edge/``'s backends
(``run(logmel (1, 1, 64, W)) -> step-onset logits (W // 4,)``), so the streaming engine, the
offline counter and the timing loop treat them all alike; :class:`TorchBackend` is that adapter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.card import CARD_SUFFIX, FORMATS, CardError, ModelCard, card_path, load_verified_card
from edge.contract import DENSITY_FPS, DENSITY_STRIDE, EVAL_WINDOW_FRAMES, HOP_FRAMES, WINDOW_FRAMES
from edge.frontend import FRAMES_PER_SECOND, N_MELS, frontend_params

REPO = Path(__file__).resolve().parents[1]  # card paths are relative to it (export.pipeline.provenance_roots)

TEACHER_WINDOW_FRAMES = EVAL_WINDOW_FRAMES  # the paper's 5-s window, when a checkpoint does not say
RUNTIMES = {"pytorch": "PyTorch", "pte": "ExecuTorch", "tflite": "LiteRT", "onnx": "ONNX Runtime"}


class BenchError(RuntimeError):
    """Something ``footfall bench`` cannot work with; one line that names the fix."""


@dataclass
class Subject:
    """One thing to benchmark: a checkpoint run by PyTorch, or an exported artifact."""

    key: str  # unique, file-name safe: "teacher-cpu", "student-pytorch", "student_int8.pte"
    role: str  # reference | student
    format: str  # pytorch | pte | tflite | onnx
    precision: str  # fp32 | int8
    path: Path
    window_frames: int
    hop_frames: int
    model_name: str = ""
    device: str = "cpu"  # cpu | cuda (PyTorch subjects only)
    backend: str = ""  # xnnpack | litert | onnxruntime | pytorch
    quantization: str = "none"  # none | ptq | qat
    params: int | None = None
    macs: int | None = None  # multiply-accumulates of one model invocation (one window)
    card: ModelCard | None = field(default=None, repr=False)
    counter: dict = field(default_factory=dict)  # a PyTorch subject's counter parameters ({}: the defaults)

    @property
    def label(self) -> str:
        """Short human name: "teacher cnn14 fp32 · PyTorch cuda", "student int8 · .pte"."""
        if self.format == "pytorch":
            return f"{self.role if self.role != 'reference' else 'teacher'} {self.model_name} {self.precision} · PyTorch {self.device}"
        return f"student {self.precision} · .{self.format}" + (" (QAT)" if self.quantization == "qat" else "")

    @property
    def runtime(self) -> str:
        return RUNTIMES[self.format]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def is_torch(self) -> bool:
        return self.format == "pytorch"

    @property
    def window_s(self) -> float:
        return self.window_frames / FRAMES_PER_SECOND

    @property
    def hop_s(self) -> float:
        return self.hop_frames / FRAMES_PER_SECOND

    def stream_card(self) -> ModelCard:
        """The card the streaming engine needs (window, hop, output rate, counter); a PyTorch subject
        gets an unverified one describing its checkpoint, with :attr:`counter`."""
        if self.card is not None:
            return self.card
        return ModelCard(
            artifact=self.path.name,
            format="pytorch",
            precision=self.precision,
            backend="pytorch",
            sha256="",
            window_frames=self.window_frames,
            hop_frames=self.hop_frames,
            density_fps=DENSITY_FPS,
            input_shape=[1, 1, N_MELS, self.window_frames],
            frontend=frontend_params(),
            model={"name": self.model_name, "params": self.params},
            counter=dict(self.counter),
        )

    def to_dict(self) -> dict:
        return {
            "key": self.key, "label": self.label, "role": self.role, "format": self.format, "runtime": self.runtime,
            "precision": self.precision, "backend": self.backend, "quantization": self.quantization, "device": self.device,
            "path": str(self.path), "size_bytes": self.size_bytes, "window_frames": self.window_frames,
            "hop_frames": self.hop_frames, "model": self.model_name, "params": self.params, "macs_per_window": self.macs,
        }


@dataclass
class Discovery:
    subjects: list[Subject]
    skipped: list[tuple[str, str]]  # (file, why it is not benchmarked here)
    dataset: Path | None = None  # the dataset the cards were checked on, when it still exists
    fold: int | None = None  # the fold the models were trained for (cards / checkpoints)
    # what the bench looked for and did not find, with how to get it: (what, "make it with: ..."). Not an error:
    # what depends on it is reported as not measured, and only a goal measured and missed fails the bench
    missing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def reference(self) -> Subject:
        return next(s for s in self.subjects if s.role == "reference" and s.device == "cpu")


# ----------------------------------------------------------------------------- PyTorch adapter


class TorchBackend:
    """A PyTorch step-onset model behind ``edge``'s backend interface: one window per ``run``.

    On CUDA each run is bracketed by CUDA events recorded before the host-to-device copy and after
    the device-to-host copy, and synchronised; :attr:`last_event_ms` holds that device time (the
    timing loop reports it). On the CPU ``threads`` sets torch's intra-op threads at every run,
    since that setting is process-wide and the timing loop interleaves subjects.
    """

    format = "pytorch"

    def __init__(self, model, path: str | Path, window_frames: int, device: str = "cpu", threads: int = 1) -> None:
        import torch

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._torch = torch
        self.path = Path(path)
        self.threads = threads
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_shape = (1, 1, N_MELS, window_frames)
        self.output_shape = (1, window_frames // DENSITY_STRIDE)
        self.last_event_ms: float | None = None
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    @property
    def name(self) -> str:
        return f"pytorch-{self.device.type}"

    @property
    def window_frames(self) -> int:
        return self.input_shape[-1]

    def run(self, logmel: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(logmel, dtype=np.float32))
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            if not self._cuda:
                return self.model(x).numpy().reshape(-1).astype(np.float32, copy=True)
            self._start.record()
            y = self.model(x.to(self.device)).to("cpu")
            self._end.record()
            self._end.synchronize()
            self.last_event_ms = float(self._start.elapsed_time(self._end))
            return y.numpy().reshape(-1).astype(np.float32, copy=True)


def load_backend(subject: Subject, threads: int = 1, model=None):
    """A runnable backend for ``subject`` at ``threads`` threads (``model``: an already loaded
    PyTorch module to reuse)."""
    if subject.is_torch:
        if model is None:
            model, _ = load_checkpoint(subject.path)
        return TorchBackend(model, subject.path, subject.window_frames, subject.device, threads)
    from edge.backends import check_backend_matches_card, load_backend as edge_load_backend

    backend = edge_load_backend(subject.path, threads=threads)
    check_backend_matches_card(backend, subject.card)
    return backend


# ----------------------------------------------------------------------------- discovery


def load_checkpoint(path: str | Path):
    """``train.models.load_checkpoint`` with a one-line error."""
    from train.models import load_checkpoint as load

    try:
        return load(path)
    except FileNotFoundError as e:
        raise BenchError(f"{path}: no such checkpoint") from e
    except Exception as e:  # CheckpointError and friends: already one line, keep the cause
        raise BenchError(f"{path}: cannot load it as a footfall checkpoint ({str(e).splitlines()[0]})") from e


def _role(path: Path) -> str | None:
    """"teacher"/"student" of a checkpoint, read without building the model; None if unreadable."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        from train.models import model_class

        return model_class(payload["name"]).role
    except Exception:
        return None


def _window_of(meta: dict, default: int) -> int:
    for where in (meta, meta.get("train_config") or {}):
        if where.get("window_frames"):
            return int(where["window_frames"])
        if where.get("window_s"):
            return int(round(float(where["window_s"]) * FRAMES_PER_SECOND))
    return default


def _fold_of(meta: dict) -> int | None:
    for where in (meta, meta.get("train_config") or {}, meta.get("training_data") or {}):
        if isinstance(where, dict) and where.get("fold") is not None:
            return int(where["fold"])
    return None


def _size_of(model, window_frames: int) -> tuple[int | None, int | None]:
    from train.models import count_macs, count_params

    try:
        return int(count_params(model)), int(count_macs(model, window_frames))
    except Exception:  # a model outside the registry's interface: size by parameters only
        return int(sum(p.numel() for p in model.parameters())), None


def torch_subject(path: Path, role: str, hop_frames: int, device: str = "cpu", model=None, meta: dict | None = None,
                  window_frames: int | None = None) -> tuple[Subject, object, dict]:
    """A PyTorch subject from a checkpoint (or an already loaded ``model`` with its ``meta``)."""
    if model is None:
        model, meta = load_checkpoint(path)
    meta = meta or {}
    window = window_frames or _window_of(meta, TEACHER_WINDOW_FRAMES if role == "reference" else WINDOW_FRAMES)
    multiple = getattr(model, "time_multiple", DENSITY_STRIDE)
    if window % multiple:
        raise BenchError(f"{path}: window of {window} frames is not a multiple of {model.name}'s time multiple {multiple}")
    params, macs = _size_of(model, window)
    key = ("teacher" if role == "reference" else "student-pytorch") + ("-cuda" if device == "cuda" else ("-cpu" if role == "reference" else ""))
    subject = Subject(key=key, role=role, format="pytorch", precision="fp32", path=Path(path), window_frames=window,
                      hop_frames=hop_frames, model_name=getattr(model, "name", type(model).__name__), device=device,
                      backend="pytorch", params=params, macs=macs)
    return subject, model, meta


def _artifact_key(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.name)


def edge_subjects(folder: Path) -> tuple[list[Subject], list[tuple[str, str]]]:
    """Every artifact in ``folder`` whose card verifies; the others with the reason."""
    subjects, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix in FORMATS and p.is_file()):
        if not card_path(path).exists():
            skipped.append((path.name, f"no model card ({path.name}{CARD_SUFFIX}): export/pipeline.py writes one only when parity holds"))
            continue
        try:
            card = load_verified_card(path)
        except CardError as e:
            skipped.append((path.name, f"card does not verify: {e}"))
            continue
        if card.backend.startswith("qnn"):
            skipped.append((path.name, f"{card.backend} context binary: runs on the Qualcomm NPU (or its simulator, export/qnn_worker.py), not timed here"))
            continue
        model = card.model or {}
        macs_s = model.get("macs_per_second")
        subjects.append(Subject(
            key=_artifact_key(path), role="student", format=card.format, precision=card.precision, path=path,
            window_frames=card.window_frames, hop_frames=card.hop_frames, model_name=str(model.get("name", "")),
            backend=card.backend, quantization=str(model.get("quantization", "none")), params=model.get("params"),
            macs=int(round(macs_s * card.window_frames / FRAMES_PER_SECOND)) if macs_s else None, card=card,
        ))
    return subjects, skipped


def discover(
    artifacts: str | Path,
    teacher: str | Path | None = None,
    student: str | Path | None = None,
    cuda: bool | None = None,
) -> tuple[Discovery, dict[str, object]]:
    """Find every subject of an artifact folder -> (Discovery, {subject key: loaded torch model}).

    ``cuda``: also time the teacher on CUDA (default: when available). The teacher always runs on
    the CPU too: the speed-up of the edge models is measured against it on the same CPU.
    """
    folder = Path(artifacts)
    if not folder.is_dir():
        raise BenchError(f"{folder}: no such artifact folder (the output of `footfall export`: .pte/.tflite/.onnx with their cards)")
    edge, skipped = edge_subjects(folder)
    hop = edge[0].hop_frames if edge else HOP_FRAMES
    hops = {s.hop_frames for s in edge}
    if len(hops) > 1:
        raise BenchError(f"{folder}: artifacts with different streaming hops {sorted(hops)}: bench one export at a time")

    skipped += [(p.name, "a quantized PT2E graph (footfall qat): its int8 artifacts are timed, the eager graph is not a "
                         "deployment runtime") for p in sorted(folder.glob("*.pt2"))]
    pte = None if any(s.format == "pte" and s.precision == "int8" for s in edge) else _missing_pte(folder, edge, skipped)
    missing = [pte] if pte else []
    checkpoints = sorted(folder.glob("*.pt"))
    roles = {p: _role(p) for p in checkpoints}
    if teacher is None:
        found = [p for p, r in roles.items() if r == "teacher"]
        if len(found) != 1:
            why = "none" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
            raise BenchError(f"{folder}: the reference teacher is needed: pass --teacher CKPT (teacher checkpoints in the folder: {why})")
        teacher = found[0]
    if student is None:
        named = {Path(s.card.model.get("checkpoint", "")) for s in edge if s.card and s.card.model.get("checkpoint")}
        named = [p for p in named if p.suffix == ".pt" and p.is_file()]
        found = named or [p for p, r in roles.items() if r == "student"]
        student = found[0] if len(found) == 1 else None
        if student is None and found:
            skipped.append(("student checkpoint", f"several candidates ({', '.join(map(str, found))}): pass --student CKPT"))
        elif student is None:
            missing.append(("the float student checkpoint (the PyTorch student is not timed)",
                            "pass it with: --student CKPT, the .pt the artifacts were exported from"))

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    models: dict[str, object] = {}
    subjects: list[Subject] = []
    ref, ref_model, ref_meta = torch_subject(Path(teacher), "reference", hop)
    subjects.append(ref)
    models[ref.key] = ref_model
    if cuda:
        import copy

        gpu, gpu_model, _ = torch_subject(Path(teacher), "reference", hop, "cuda", copy.deepcopy(ref_model), ref_meta, ref.window_frames)
        subjects.append(gpu)
        models[gpu.key] = gpu_model
    fold = _fold_of(ref_meta)
    if student is not None:
        window = edge[0].window_frames if edge else None
        st, st_model, st_meta = torch_subject(Path(student), "student", hop, window_frames=window)
        subjects.append(st)
        models[st.key] = st_model
        fold = _fold_of(st_meta) if _fold_of(st_meta) is not None else fold
        counters = {json.dumps(s.card.counter, sort_keys=True) for s in edge}
        if len(counters) == 1:  # the student counts its steps as its artifacts do
            st.counter = dict(edge[0].card.counter)
        for s in edge:  # artifacts of this student: size them from the checkpoint when the card does not
            s.params = s.params or st.params
            s.macs = s.macs or (st.macs if s.window_frames == st.window_frames else None)
            s.model_name = s.model_name or st.model_name
    subjects.extend(edge)

    dataset = None
    for s in edge:
        ws = (s.card.parity or {}).get("windows_source") or {}
        if ws.get("dataset") and (found := _card_folder(ws["dataset"])):
            dataset = found
            fold = ws.get("fold", fold)
            break
        train = (s.card.training_data or {}).get("data")
        if train and (found := _card_folder(train)):
            dataset = found
    return Discovery(subjects, skipped, dataset, fold, missing), models


def _missing_pte(folder: Path, edge: list[Subject], skipped: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The not-found entry for the goals' subject, the student's int8 .pte, with the export that makes
    it from the source the other artifacts' cards name; None when a .pte is there but cannot be
    benchmarked (it is then among the skipped files, with the reason)."""
    if any(name.endswith(".pte") for name, _ in skipped):
        return None
    cards = [s.card for s in edge if s.card is not None]
    source = next((c.model["checkpoint"] for c in cards if c.model.get("checkpoint")), "CHECKPOINT")
    data = next((c.parity["windows_source"]["dataset"] for c in cards
                 if (c.parity or {}).get("windows_source", {}).get("dataset")), None)
    return ("the student's int8 .pte, the artifact the goals are measured on",
            f"make it with: footfall export {source} --to pte --precision int8{f' --data {data}' if data else ''} --out {folder}")


def _card_folder(path: str) -> Path | None:
    """A folder a card names, absolute or relative to the repository (else the working folder), if it exists."""
    p = Path(path)
    for candidate in ([p] if p.is_absolute() else [REPO / p, p]):
        if candidate.is_dir():
            return candidate.resolve()
    return None
