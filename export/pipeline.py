"""``footfall export``: one straight line per artifact, export -> quantize -> lower -> save ->
reload in its runtime -> compare with PyTorch -> model card.

Entry points:

- :func:`export_all` (``checkpoint`` path -> artifacts + cards in ``out_dir``): what the CLI runs.
- :func:`export_model` (an in-memory :class:`ExportSource` + :class:`Windows`): the same line
  without files in; QAT code or tests call it directly.

What gets exported at int8 is decided by the source: a float checkpoint (``.pt``, from
``train.models.save_checkpoint``) is post-training quantized per target (PT2E for ``.pte`` and
``.tflite``, ORT static QDQ for ``.onnx`` and the NPU); a quantized graph (``.pt2`` from
``train.quant.qat``, QAT or PTQ converted) is lowered as it is to every target, and the float student
it names (``student_checkpoint`` in its metadata) gives the fp32 artifacts.

A streaming model (``streaming = True``, e.g. ``streamtcn``) is exported as its step
(``train.models.streaming.StreamStep``): each artifact takes a packet and the state buffers and
gives the logits and the new state buffers. It is calibrated and compared on whole runs
(:func:`streams_from_dataset`, :func:`streams_from_file`): PTQ on the ``(packet, *state)`` inputs
the float model is given while streaming the calibration runs, parity by streaming each parity run
through the reloaded artifact packet by packet; its card lists the state (``ModelCard.state``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from edge.card import ModelCard, card_path, relative_paths, sha256_file, write_card
from edge.util import tool_versions
from edge.counter import CounterParams
from edge.contract import DENSITY_FPS, DENSITY_STRIDE, EVAL_WINDOW_DENSITY_FRAMES, FRAMES_PER_SECOND, HOP_FRAMES, N_MELS, WINDOW_FRAMES
from export import runtimes
from export.parity import Parity, compare, stream_windows
from export.targets import (
    DEFAULT_QNN_SOCS,
    PRECISIONS,
    QNN_SOCS,
    BackendMissing,
    Exported,
    ExportError,
    ptq_batches,
    is_quantized_graph,
    qnn_available,
    to_onnx,
    to_pte,
    to_qnn_context,
    to_tflite,
)

log = logging.getLogger("footfall.export")

TARGETS: tuple[str, ...] = ("pte", "tflite", "onnx", "qnn")
MAX_PTQ = 64  # PTQ calibration windows
MAX_PARITY = 160  # windows (whole recordings, so that 5-s chunks are contiguous)
MAX_NPU_PARITY = 48  # windows; the HTP simulator is slow: 0.3 s per window (MobileNetV2 w0.25), 6 s (Cnn6)
NPU_BUDGET_S = 60.0  # per SoC (the SoCs run in parallel); the simulator stops there ...
NPU_MIN_WINDOWS = 8  # ... but not before this many windows
SAMPLE_AUDIO = Path(__file__).resolve().parents[1] / "edge" / "assets" / "sample_run.wav"
REPORT_FILE = "export_report.json"  # beside the artifacts: every target's status, parity and timings
MAX_PTQ_INPUTS = 320  # a streaming model's calibration inputs: (packet, *state) at every k-th packet streamed
STREAM_RUN_S = 60.0  # a streaming model's calibration and parity runs: at most this much of each, from its start

def provenance_roots() -> list[str]:
    """Paths in a card are written relative to the repository (or else the working folder), never absolute."""
    return [str(Path(__file__).resolve().parents[1]), str(Path.cwd().resolve())]


# ----------------------------------------------------------------------------- inputs


@dataclass
class ExportSource:
    """What to export.

    float_model: the fp32 PyTorch model (eval mode); the fp32 artifacts and the PTQ input.
        None when only a quantized graph is at hand (then no fp32 artifact).
    int8_model: a PT2E-converted graph (``train.quant.qat`` output: QAT or PTQ), lowered as it is for
        every int8 artifact; None -> each target post-training quantizes ``float_model``.
    """

    float_model: torch.nn.Module | None
    int8_model: torch.nn.Module | None = None
    name: str = "model"
    window_frames: int = WINDOW_FRAMES
    hop_frames: int = HOP_FRAMES
    meta: dict = field(default_factory=dict)  # checkpoint metadata (config, training data, ...)
    checkpoint: str = ""  # where it came from, for the cards
    float_sha256: str = ""  # of the float checkpoint (.pt) it is, or that its int8 graph was quantized from
    provenance: dict = field(default_factory=dict)  # how to make it again (footfall model: recipe, git commit, data seeds)
    counter: CounterParams = field(default_factory=CounterParams)  # the event counter it ships with (cards, accuracy)
    counter_choice: dict = field(default_factory=dict)  # how that counter was chosen (export --counter-on), for the cards

    def __post_init__(self) -> None:
        if self.float_model is None and self.int8_model is None:
            raise ExportError("nothing to export: neither a float model nor an int8 graph")
        if self.int8_model is not None and not is_quantized_graph(self.int8_graph):
            raise ExportError("int8_model is not a quantized PT2E graph (no quantize/dequantize ops)")
        if self.streaming:  # one packet per call, each once: the packet is the window and the hop
            packet = int((self.float_model or self.int8_model).packet_frames)
            if self.int8_model is not None:  # a QAT step (train.quant.stream_qat): its packet is fixed
                if not getattr(self.int8_model, "streaming", False):
                    raise ExportError("the int8 graph is windowed but its float model streams: quantize the streaming step (footfall qat)")
                if self.float_model is None:
                    raise ExportError("a streaming model's int8 step is exported beside its float student: its checkpoint "
                                      "(the graph's student_checkpoint) is missing")
                if packet != self.int8_model.packet_frames:
                    raise ExportError(f"--window {packet}: the int8 step was trained on {self.int8_model.packet_frames}-frame "
                                      "packets; leave --window out or give that")
            self.window_frames = self.hop_frames = packet
        if self.window_frames <= 0 or self.window_frames % DENSITY_STRIDE:
            raise ExportError(f"window_frames must be a positive multiple of {DENSITY_STRIDE}, got {self.window_frames}")
        if not 0 < self.hop_frames <= self.window_frames or self.hop_frames % DENSITY_STRIDE:
            raise ExportError(f"hop_frames must be a multiple of {DENSITY_STRIDE} in (0, {self.window_frames}], got {self.hop_frames}")

    @property
    def quantization(self) -> str:
        """How the int8 artifacts are quantized: ``qat`` (train.quant.qat metadata has a "qat" entry) or ``ptq``."""
        return "qat" if self.int8_model is not None and "qat" in self.meta else "ptq"

    @property
    def int8_graph(self) -> torch.nn.Module | None:
        """The quantized graph every int8 target lowers: a streaming QAT step's graph, else ``int8_model``."""
        return getattr(self.int8_model, "step_graph", self.int8_model)

    @property
    def streaming(self) -> bool:
        """A model that carries state between packets (``streaming = True``): exported as its step."""
        return bool(getattr(self.float_model, "streaming", False) or getattr(self.int8_model, "streaming", False))

    def state_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """A streaming model's ``[(name, shape)]`` state buffers, in the artifact's input order; [] if windowed."""
        return [(str(n), tuple(int(d) for d in shape)) for n, shape in self.float_model.state_specs()] if self.streaming else []


@dataclass
class Windows:
    """Log-mel windows (N, 1, 64, W) float32 for PTQ calibration (``ptq``) and for the parity check.

    ``runs[i]`` names the recording of parity window i when the windows are consecutive,
    non-overlapping windows of whole recordings (5-s counts and accuracy need that);
    ``frame_steps`` then holds each run's true per-frame steps (100 fps) when labeled.
    """

    ptq: np.ndarray
    parity: np.ndarray
    runs: np.ndarray | None = None
    frame_steps: list[np.ndarray] | None = None
    source: dict = field(default_factory=dict)
    ptq_runs: np.ndarray | None = None  # the run of each calibration window when they are consecutive packets of whole runs

    def head(self, n: int) -> Windows:
        """The first ``n`` parity windows (consecutive windows stay consecutive)."""
        return Windows(self.ptq, self.parity[:n], None if self.runs is None else self.runs[:n], self.frame_steps,
                       {**self.source, "parity": f"{min(n, len(self.parity))} of {self.source.get('parity', 'the windows')}"},
                       self.ptq_runs)

    @property
    def streams(self) -> bool:
        """Consecutive packets of whole runs, for calibration and parity both (what a streaming model needs)."""
        return self.runs is not None and self.ptq_runs is not None


def _window_frames_of(meta: dict) -> int | None:
    if meta.get("window_frames"):
        return int(meta["window_frames"])
    if meta.get("window_s"):
        return int(round(float(meta["window_s"]) * FRAMES_PER_SECOND))
    return None


def load_source(
    checkpoint: str | Path,
    int8: str | Path | None = None,
    window_frames: int | None = None,
    hop_frames: int | None = None,
) -> ExportSource:
    """A float checkpoint (``.pt``) and/or a quantized graph (``.pt2``) -> :class:`ExportSource`.

    ``checkpoint`` may itself be the ``.pt2``: its ``student_checkpoint`` gives the float model
    when that file still exists. The window comes from the argument, else the metadata
    (``window_frames`` or ``window_s``), else the shipped window; the hop likewise (``edge.contract``).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ExportError(f"{checkpoint}: no such checkpoint")
    if checkpoint.suffix == ".pt2":
        int8, checkpoint = checkpoint, None
    float_model, int8_model, meta = None, None, {}
    if int8 is not None:
        # registers the quantized_decomposed ops the saved graph calls (torch.export.load needs them)
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401

        from train.quant.qat import load_quantized

        int8 = Path(int8)
        if not int8.is_file():
            raise ExportError(f"{int8}: no such int8 graph")
        try:
            int8_model, meta = load_quantized(int8)
        except Exception as e:
            message = str(e).splitlines()[0]
            raise ExportError(message if str(int8) in message else f"{int8}: {message}") from e
        student = meta.get("student_checkpoint")
        if checkpoint is None and student and Path(student).is_file():
            checkpoint = Path(student)
    float_sha256 = meta.get("student_sha256", "")  # train.quant.qat records it in the graph's metadata
    if checkpoint is not None:
        from train.models import load_checkpoint

        try:
            float_model, float_meta = load_checkpoint(checkpoint)
        except Exception as e:
            message = str(e).splitlines()[0]
            raise ExportError(message if str(checkpoint) in message else f"{checkpoint}: {message}") from e
        meta = {**float_meta, **meta}
        float_sha256 = sha256_file(checkpoint)
    name = (meta.get("model") or {}).get("name") if isinstance(meta.get("model"), dict) else None
    name = name or meta.get("name") or getattr(float_model, "name", "") or "model"
    if getattr(float_model, "streaming", False) and getattr(int8_model, "streaming", False) and window_frames is None:
        float_model.config.packet_frames = int(int8_model.packet_frames)  # a QAT step's packet is fixed
    if getattr(float_model, "streaming", False):  # --window sets its packet (the weights do not depend on it)
        if hop_frames is not None and hop_frames != (window_frames or float_model.packet_frames):
            raise ExportError(f"a streaming model takes each packet once: --hop {hop_frames} must equal the packet "
                              f"({window_frames or float_model.packet_frames} frames), or leave it out")
        if window_frames is not None:
            if window_frames <= 0 or window_frames % DENSITY_STRIDE:
                raise ExportError(f"--window {window_frames}: a streaming model's packet must be a positive multiple of "
                                  f"{DENSITY_STRIDE} frames")
            float_model.config.packet_frames = int(window_frames)
            if isinstance(meta.get("config"), dict):  # what the cards record as the model's config
                meta["config"] = {**meta["config"], "packet_frames": int(window_frames)}
    window = window_frames or _window_frames_of(meta) or WINDOW_FRAMES
    hop = hop_frames or meta.get("hop_frames") or (
        int(round(float(meta["stream_hop_s"]) * FRAMES_PER_SECOND)) if meta.get("stream_hop_s") else None
    ) or min(HOP_FRAMES, window)
    return ExportSource(
        float_model=float_model,
        int8_model=int8_model,
        name=str(name),
        window_frames=int(window),
        hop_frames=int(hop),
        meta=meta,
        checkpoint=str(int8 or checkpoint),
        float_sha256=float_sha256,
    )


def _spread(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    return np.arange(n) if k >= n else np.linspace(0, n - 1, k).round().astype(int)


def _cut(logmel: np.ndarray, window_frames: int) -> np.ndarray:
    """(64, T) -> consecutive non-overlapping windows (N, 1, 64, W)."""
    n = logmel.shape[1] // window_frames
    return np.ascontiguousarray(
        logmel[:, : n * window_frames].reshape(N_MELS, n, window_frames).transpose(1, 0, 2)[:, None], dtype=np.float32
    )


def windows_from_dataset(
    root: str | Path, window_frames: int, fold: int = 0, max_ptq: int = MAX_PTQ, max_parity: int = MAX_PARITY
) -> Windows:
    """PTQ calibration windows from the validation side of ``fold``, parity from its test side (whole runs)."""
    from train.data.features import fold_windows

    try:
        val = fold_windows(root, fold, window_frames, window_frames, split="val", only_labeled=False)
        test = fold_windows(root, fold, window_frames, window_frames, split="test", only_labeled=False)
    except Exception as e:
        raise ExportError(f"{root}: cannot read the dataset ({str(e).splitlines()[0]})") from e
    if len(val) == 0 or len(test) == 0:
        raise ExportError(f"{root}: fold {fold} has no {'validation' if len(val) == 0 else 'test'} windows of {window_frames} frames")
    ptq = np.stack([val.window(int(i)) for i in _spread(len(val), max_ptq)])[:, None]
    keep, total = [], 0  # whole recordings until the budget is spent
    for r in range(len(test.recs)):
        idx = np.flatnonzero(test.index[:, 0] == r)
        if total and total + len(idx) > max_parity:
            break
        keep.append(idx[: max_parity])
        total += len(keep[-1])
    idx = np.concatenate(keep)
    parity = np.stack([test.window(int(i)) for i in idx])[:, None]
    runs = test.index[idx, 0]
    labeled = all(test.frame_steps[r] is not None for r in np.unique(runs))
    return Windows(
        ptq=np.ascontiguousarray(ptq, np.float32),
        parity=np.ascontiguousarray(parity, np.float32),
        runs=runs,
        frame_steps=[test.frame_steps[r] for r in range(len(test.recs))] if labeled else None,
        source={"dataset": str(Path(root).resolve()), "fold": fold, "calibration": f"val split, {len(ptq)} windows",
                "parity": f"test split, {len(parity)} windows of {len(np.unique(runs))} runs"},
    )


def _audio_run(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An audio file's log-mel (64, T) and, when its steps lie beside it (contract 5:
    ``<stem>.steps.csv``), its step frames (T,) float32 (they give the export's accuracy); else None."""
    from edge.audio import load_audio
    from edge.frontend import log_mel

    try:
        mel = log_mel(load_audio(path))
    except Exception as e:
        raise ExportError(f"{path}: not a log-mel .npy nor readable audio ({str(e).splitlines()[0]})") from e
    steps_csv = path.with_name(path.stem + ".steps.csv")
    if not steps_csv.is_file():
        return mel, None
    from train.data.features import step_frames
    from train.data.recordings import load_steps

    return mel, step_frames(load_steps(steps_csv), mel.shape[1]).astype(np.float32)


def windows_from_file(path: str | Path, window_frames: int, max_ptq: int = MAX_PTQ, max_parity: int = MAX_PARITY) -> Windows:
    """Windows from a ``.npy`` of log-mel ((N, 64, W), (N, 1, 64, W) or a long (64, T)) or an audio file.

    The same windows serve PTQ calibration and parity (said so in the report and the cards).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such calibration file")
    runs, frame_steps = None, None
    if path.suffix == ".npy":
        x = np.load(path).astype(np.float32)
        if x.ndim == 2:
            x = _cut(x, window_frames)
            runs = np.zeros(len(x), int)
        elif x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (1, N_MELS, window_frames):
            raise ExportError(f"{path}: log-mel windows of shape (N, [1,] {N_MELS}, {window_frames}) expected, got {np.load(path).shape}")
    else:
        mel, steps = _audio_run(path)
        x = _cut(mel, window_frames)
        runs = np.zeros(len(x), int)
        frame_steps = None if steps is None else [steps]
    if len(x) == 0:
        raise ExportError(f"{path}: shorter than one window of {window_frames} frames")
    parity_idx = np.arange(min(len(x), max_parity))  # a prefix: consecutive windows stay consecutive
    return Windows(
        ptq=x[_spread(len(x), max_ptq)],
        parity=x[parity_idx],
        runs=None if runs is None else runs[parity_idx],
        frame_steps=frame_steps,
        source={"file": str(path.resolve()), "calibration": f"{min(len(x), max_ptq)} windows of {path.name}",
                "parity": f"{len(parity_idx)} windows of {path.name}, the calibration file"},
    )


def _streams(runs: Iterable[tuple[np.ndarray, np.ndarray | None]], packet_frames: int, budget_frames: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Whole runs' log-mel ``(mel (64, T), frame steps or None)``, read lazily -> consecutive packets
    ``(N, 1, 64, P)``, the run of each (its position among the runs read) and the frame steps of those
    runs: at most ``STREAM_RUN_S`` of each run from its start, runs in order until ``budget_frames``."""
    packets, run_of, steps, total = [], [], [], 0
    for r, (mel, frame_steps) in enumerate(runs):
        if total + packet_frames > budget_frames:
            break
        steps.append(frame_steps)
        n = min(mel.shape[1], int(STREAM_RUN_S * FRAMES_PER_SECOND), budget_frames - total) // packet_frames * packet_frames
        if n == 0:  # shorter than a packet
            continue
        packets.append(_cut(np.asarray(mel[:, :n], np.float32), packet_frames))
        run_of.append(np.full(len(packets[-1]), r, int))
        total += n
    if not packets:
        raise ExportError(f"no run of at least {packet_frames} frames")
    return np.concatenate(packets), np.concatenate(run_of), steps


def streams_from_dataset(
    root: str | Path, packet_frames: int, fold: int = 0, max_ptq: int = MAX_PTQ, max_parity: int = MAX_PARITY
) -> Windows:
    """A streaming model's :class:`Windows`: consecutive packets of whole runs, calibration from the
    validation side of ``fold``, parity from its test side (as :func:`windows_from_dataset`).

    The budgets are those of the windowed export in audio: ``max_ptq`` and ``max_parity`` windows of
    ``WINDOW_FRAMES`` frames, at most ``STREAM_RUN_S`` of each run (from its start: the state starts there).
    """
    from train.data.features import fold_recordings, recording_features, step_frames

    def read(recs) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:  # only the runs the budget reaches
        for rec in recs:
            mel, steps = recording_features(rec, root, mmap=True)
            yield mel, None if steps is None else step_frames(steps, mel.shape[1]).astype(np.float32)

    try:
        val = fold_recordings(root, fold, "val", only_labeled=False)
        test = fold_recordings(root, fold, "test", only_labeled=False)
        if not val or not test:
            raise ExportError(f"{root}: fold {fold} has no {'validation' if not val else 'test'} runs")
        ptq, ptq_runs, _ = _streams(read(val), packet_frames, max_ptq * WINDOW_FRAMES)
        parity, runs, steps = _streams(read(test), packet_frames, max_parity * WINDOW_FRAMES)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{root}: cannot read the dataset ({str(e).splitlines()[0]})") from e
    seconds = len(parity) * packet_frames / FRAMES_PER_SECOND
    return Windows(
        ptq=ptq,
        parity=parity,
        runs=runs,
        frame_steps=steps if all(s is not None for s in steps) else None,
        source={"dataset": str(Path(root).resolve()), "fold": fold,
                "calibration": f"val split, {len(np.unique(ptq_runs))} runs streamed ({len(ptq) * packet_frames / FRAMES_PER_SECOND:.0f} s)",
                "parity": f"test split, {len(np.unique(runs))} runs streamed ({seconds:.0f} s, {len(parity)} packets)"},
        ptq_runs=ptq_runs,
    )


def streams_from_file(path: str | Path, packet_frames: int, max_ptq: int = MAX_PTQ, max_parity: int = MAX_PARITY) -> Windows:
    """A streaming model's :class:`Windows` from one run: a ``.npy`` log-mel (64, T) or an audio file.

    The same run, from its start, serves calibration and parity (as :func:`windows_from_file`).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such calibration file")
    frame_steps = None
    if path.suffix == ".npy":
        mel = np.load(path).astype(np.float32)
        if mel.ndim != 2 or mel.shape[0] != N_MELS:
            raise ExportError(f"{path}: a streaming model needs a whole run: log-mel of shape ({N_MELS}, T), got {mel.shape}")
    else:
        mel, frame_steps = _audio_run(path)
    if mel.shape[1] < packet_frames:
        raise ExportError(f"{path}: shorter than one packet of {packet_frames} frames")
    ptq, ptq_runs, _ = _streams([(mel, None)], packet_frames, max_ptq * WINDOW_FRAMES)
    parity, runs, _ = _streams([(mel, frame_steps)], packet_frames, max_parity * WINDOW_FRAMES)
    return Windows(
        ptq=ptq,
        parity=parity,
        runs=runs,
        frame_steps=None if frame_steps is None else [frame_steps],
        source={"file": str(path.resolve()), "calibration": f"{path.name} streamed ({len(ptq) * packet_frames / FRAMES_PER_SECOND:.0f} s)",
                "parity": f"{path.name} streamed ({len(parity) * packet_frames / FRAMES_PER_SECOND:.0f} s, {len(parity)} packets), the calibration file"},
        ptq_runs=ptq_runs,
    )


# ----------------------------------------------------------------------------- reports


@dataclass
class TargetReport:
    target: str  # pte | tflite | onnx | qnn
    precision: str
    status: str  # ok | parity-failed | error | skipped
    message: str = ""
    backend: str = ""
    artifact: str | None = None
    card: str | None = None
    quantization: str = "none"
    size_bytes: int = 0
    export_s: float = 0.0
    run_s: float = 0.0
    parity: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("parity-failed", "error")

    def line(self) -> str:
        head = f"{self.target:<7}{self.precision:<5} {self.backend or '-':<17} {self.status:<13}"
        if self.status in ("ok", "parity-failed"):
            p = self.parity
            return (head + f" {self.size_bytes / 1024:.0f} KiB  export {self.export_s:.1f}s"
                    f"  |d| max {p['max_abs']:.2g} mean {p['mean_abs']:.2g}  count diff {p['count_diff_mean']:.4f}"
                    f" ({p['metric']} {p[p['metric']]:.3g} <= {p['limit']:g}: {'yes' if p['passed'] else 'NO'})")
        return head + f" {self.message}"


@dataclass
class ExportResult:
    out_dir: str
    reports: list[TargetReport]
    seconds: float
    source: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.reports)

    def written(self) -> list[str]:
        """Every file the export wrote, in order: each artifact (kept even when its parity failed) and
        its card, then the report."""
        return [p for r in self.reports for p in (r.artifact, r.card) if p] + [str(Path(self.out_dir) / REPORT_FILE)]

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "ok": self.ok, "seconds": round(self.seconds, 1), "source": self.source,
                "artifacts": [asdict(r) for r in self.reports]}


# ----------------------------------------------------------------------------- the line


def _versions(*extra: str) -> dict:
    return tool_versions("torch", "executorch", "torchao", "litert-torch", "ai-edge-litert", "onnx", "onnxruntime", "onnxscript", *extra)


@torch.no_grad()
def torch_logits(model: torch.nn.Module, windows: np.ndarray, batch: int = 32) -> np.ndarray:
    """The PyTorch reference: (N, 1, 64, W) -> (N, W // 4) float32.

    An exported graph may pin its batch size: it is run window by window.
    """
    if isinstance(model, torch.fx.GraphModule):
        batch = 1
    out = []
    for i in range(0, len(windows), batch):
        out.append(model(torch.from_numpy(np.ascontiguousarray(windows[i : i + batch]))).float().numpy())
    return np.concatenate(out).reshape(len(windows), -1)


def stream_step(model: torch.nn.Module) -> torch.nn.Module:
    """A streaming model's step as the module every target exports (``StreamStep``), run once in eval
    mode (its causal band norm's kernel is a constant either way: it is built in numpy)."""
    from train.models.streaming import StreamStep

    step = StreamStep(model).eval()
    with torch.no_grad():
        step(*step.example_inputs())
    return step


@torch.no_grad()
def stream_inputs(model: torch.nn.Module, packets: np.ndarray, runs: np.ndarray, max_inputs: int = MAX_PTQ_INPUTS) -> list[tuple[torch.Tensor, ...]]:
    """PTQ calibration inputs of a streaming model: its step streamed over consecutive packets of whole
    runs (the state from zeros at each run's start), and the ``(packet, *state)`` it was given at every
    k-th packet (k so that there are at most ``max_inputs``): states as the stream really has them."""
    every = max(1, math.ceil(len(packets) / max_inputs))
    inputs, state, previous = [], [], None
    for i, (x, r) in enumerate(zip(packets, runs)):
        if r != previous:
            state, previous = model.initial_state(), r
        x = torch.from_numpy(np.ascontiguousarray(x[None], dtype=np.float32))
        if i % every == 0:
            inputs.append((x, *state))
        _, *state = model.step(x, *state)
    return inputs


@torch.no_grad()
def torch_stream_logits(model: torch.nn.Module, packets: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """The PyTorch reference of a streaming model: consecutive packets (N, 1, 64, P) of whole runs ->
    (N, P // 4). Each run is run whole (``model(run)`` equals streaming it from the initial state)."""
    out = []
    for r in dict.fromkeys(runs.tolist()):  # runs in order of appearance, each one's packets adjacent
        run = packets[runs == r][:, 0]  # (n, 64, P)
        whole = np.ascontiguousarray(run.transpose(1, 0, 2).reshape(N_MELS, -1), dtype=np.float32)[None, None]
        out.append(model(torch.from_numpy(whole)).float().numpy().reshape(len(run), -1))
    return np.concatenate(out)


def accuracy(logits: np.ndarray, windows: Windows, counter: CounterParams | None = None) -> dict:
    """5-s MAE, PCC and median total-count error (%) of the step events in the parity windows' logits, if labeled.

    Each run's consecutive windows are joined into one logit track and counted once (``count_events``).
    """
    if windows.runs is None or windows.frame_steps is None:
        return {}
    from edge.counter import count_events
    from train.evaluate.metrics import evaluate_runs
    from train.evaluate.predict import event_frames

    preds, trues = [], []
    for r in dict.fromkeys(windows.runs.tolist()):
        track = logits[windows.runs == r].reshape(-1)  # 25 fps
        steps = windows.frame_steps[r][: len(track) * DENSITY_STRIDE]
        preds.append(event_frames(count_events(track, counter), len(track), DENSITY_FPS))
        trues.append(steps.reshape(-1, DENSITY_STRIDE).sum(axis=1))
    res = evaluate_runs(preds, trues, window_frames=EVAL_WINDOW_DENSITY_FRAMES, fps=DENSITY_FPS)
    return {"mae_5s": _number(res.mae), "pcc_5s": _number(res.pcc), "total_count_error_pct": _number(res.tce_median),
            "windows_5s": res.n_windows, "runs": res.n_runs}


def _number(value: float) -> float | None:
    """JSON-safe metric: NaN (e.g. the PCC of a constant) becomes null."""
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _model_info(source: ExportSource) -> dict:
    info = {"name": source.name, "config": source.meta.get("config") or (source.meta.get("model") or {}).get("config", {}),
            "checkpoint": source.checkpoint}
    if source.float_sha256:  # what binds the float student to its artifacts (train.fit.finetune.bundle_student checks it)
        info["float_checkpoint_sha256"] = source.float_sha256
    if source.counter_choice:
        info["counter_chosen_on"] = source.counter_choice
    model = source.float_model
    try:
        from train.models import count_params, macs_per_second

        if model is not None:
            info["params"] = int(count_params(model))
            info["macs_per_second"] = int(macs_per_second(model, source.window_frames))
    except Exception:  # a model outside the registry (tests' tiny net): size it by hand
        if model is not None:
            info["params"] = int(sum(p.numel() for p in model.parameters()))
    for key in ("params", "macs_per_second"):
        if key not in info and isinstance(source.meta.get("model"), dict) and key in source.meta["model"]:
            info[key] = source.meta["model"][key]
    return info


def _training_data(meta: dict) -> dict:
    if isinstance(meta.get("training_data"), dict):
        return meta["training_data"]
    return {k: meta[k] for k in ("data", "fold", "window_s", "distill") if k in meta}


def _artifact_name(name: str, target: str, precision: str, soc: str | None = None) -> str:
    ext = {"pte": "pte", "tflite": "tflite", "onnx": "onnx", "qnn": "onnx"}[target]
    return f"{name}_{precision}_qnn_{soc.lower()}.{ext}" if target == "qnn" else f"{name}_{precision}.{ext}"


def planned_outputs(out_dir: str | Path, name: str, targets: Sequence[str], precisions: Sequence[str],
                    socs: Sequence[str] = DEFAULT_QNN_SOCS) -> list[Path]:
    """Every file an export of model ``name`` to ``targets`` x ``precisions`` may write into ``out_dir``:
    each artifact, its card, and the report."""
    out_dir = Path(out_dir)
    files = []
    for target in targets:
        for precision in precisions:
            if target != "qnn":
                names = [_artifact_name(name, target, precision)]
            else:  # one context per SoC, int8 only
                names = [_artifact_name(name, target, precision, soc) for soc in socs] if precision == "int8" else []
            files += [p for n in names for p in (out_dir / n, card_path(out_dir / n))]
    return files + [out_dir / REPORT_FILE]


def _run(exported: Exported, windows: np.ndarray) -> tuple[np.ndarray, dict]:
    if exported.backend.startswith("qnn-htp:"):
        return runtimes.run_qnn(exported.path, windows, exported.backend.split(":", 1)[1], NPU_BUDGET_S, NPU_MIN_WINDOWS)
    return runtimes.run_artifact(exported.path, windows, exported.backend), {}


def _stream_counts(packets: np.ndarray, reference: np.ndarray, windows: Windows, source: ExportSource) -> dict:
    """What a streamed parity run covered, and the step count of each whole run through the shipped
    counter: artifact against PyTorch."""
    from edge.counter import count_events

    runs = list(dict.fromkeys(windows.runs.tolist()))
    counts = [(len(count_events(packets[windows.runs == r].reshape(-1), source.counter)),
               len(count_events(reference[windows.runs == r].reshape(-1), source.counter))) for r in runs]
    return {"packets": len(packets), "packet_frames": source.window_frames, "runs": len(runs),
            "seconds": round(len(packets) * source.window_frames / FRAMES_PER_SECOND, 2),
            "run_counts": [c for c, _ in counts], "reference_run_counts": [c for _, c in counts],
            "run_count_diff_max": max(abs(a - b) for a, b in counts)}


def _finish(
    exported: Exported,
    source: ExportSource,
    windows: Windows,
    reference: np.ndarray,
    reference_name: str,
    export_s: float,
    report_extra: dict,
) -> TargetReport:
    """Reload -> compare -> card (written only when parity holds) for one saved artifact.

    ``windows.parity`` are the windows to run, ``reference`` the PyTorch logits on them. A streaming
    model's are consecutive packets of whole runs: each run is streamed through the artifact with its
    state carried, and the logits compared in consecutive windows of the shipped length (``export.parity.stream_windows``).
    """
    t0 = time.perf_counter()
    stream: dict = {}
    if source.streaming:
        packets = runtimes.stream_artifact(exported.path, windows.parity, windows.runs, source.state_shapes())
        run_s = time.perf_counter() - t0
        run_info: dict = {}
        stream = _stream_counts(packets, reference, windows, source)
        out, row_runs = stream_windows(packets, windows.runs)
        reference, _ = stream_windows(reference, windows.runs)
        windows = replace(windows, runs=row_runs)  # what accuracy() reads: the run of each window
        parity: Parity = compare(out, reference, exported.precision, exported.backend, reference_name, windows.runs,
                                 counter=source.counter, streamed=True)
    else:
        out, run_info = _run(exported, windows.parity)
        run_s = time.perf_counter() - t0
        if len(out) < len(windows.parity):  # the NPU simulator ran out of time budget: compare its prefix
            windows, reference = windows.head(len(out)), reference[: len(out)]
        parity = compare(out, reference, exported.precision, exported.backend, reference_name, windows.runs, counter=source.counter)
    info = {**exported.info, **report_extra}
    if run_info:
        info["runtime"] = {k: v for k, v in run_info.items() if k != "ok"}
    if exported.format == "tflite":
        info["io"] = runtimes.tflite_io(exported.path)
        if source.streaming:
            info["tflite_runtime_parity"] = "not run: a streaming artifact is streamed with ai-edge-litert only"
        elif runtimes.tflite_runtime_available():
            alt = compare(runtimes.run_tflite(exported.path, windows.parity, "tflite-runtime"), reference,
                          exported.precision, exported.backend, reference_name, windows.runs)
            info["tflite_runtime_parity"] = alt.to_dict()
        else:
            info["tflite_runtime_parity"] = "not run: tflite-runtime does not import here (it needs numpy < 2)"
    report = TargetReport(
        target="qnn" if exported.backend.startswith("qnn") else exported.format,
        precision=exported.precision,
        status="ok" if parity.passed else "parity-failed",
        backend=exported.backend,
        artifact=str(exported.path),
        quantization=exported.quantization,
        size_bytes=exported.path.stat().st_size,
        export_s=round(export_s, 2),
        run_s=round(run_s, 2),
        parity=parity.to_dict() | ({"stream": stream} if stream else {}),
        info=info,
    )
    stale = card_path(exported.path)
    stale.unlink(missing_ok=True)  # an old card must not vouch for a new file
    if not parity.passed:
        report.message = f"parity {parity.summary()}; artifact kept without a card (edge-run refuses it)"
        return report
    card = ModelCard(
        artifact=exported.path.name,
        format=exported.format,
        precision=exported.precision,
        backend=exported.backend,
        sha256=sha256_file(exported.path),
        window_frames=source.window_frames,
        hop_frames=source.hop_frames,
        density_fps=float(DENSITY_FPS),
        input_shape=[1, 1, N_MELS, source.window_frames],
        model=relative_paths({**_model_info(source), "quantization": exported.quantization}, provenance_roots()),
        training_data=relative_paths(_training_data(source.meta) | ({"provenance": source.provenance} if source.provenance else {}),
                                     provenance_roots()),
        accuracy=accuracy(out, windows, source.counter),
        reference_accuracy=accuracy(reference, windows, source.counter),
        parity={**report.parity, "windows_source": relative_paths(windows.source, provenance_roots())},
        tools=_versions("onnxruntime-qnn") | ({"qnn_sdk": exported.info["qnn_sdk"]} if exported.info.get("qnn_sdk") else {}),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        counter=source.counter.to_dict(),  # the counter it is scored and shipped with, written out
        state=[{"name": name, "shape": list(shape)} for name, shape in source.state_shapes()],
    )
    report.card = str(write_card(card, exported.path))
    report.message = parity.summary()
    return report


def export_model(
    source: ExportSource,
    windows: Windows,
    out_dir: str | Path,
    targets: Sequence[str] = TARGETS,
    precisions: Sequence[str] = PRECISIONS,
    socs: Sequence[str] = DEFAULT_QNN_SOCS,
    max_npu_windows: int = MAX_NPU_PARITY,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``source`` to every target x precision; each artifact reloaded, compared, carded.

    ``progress`` gets one line per finished artifact (the CLI prints them as they come).

    One failing target does not stop the others; :attr:`ExportResult.ok` is False when any
    export raised or any parity gate failed. A target whose SDK is missing is ``skipped``.
    """
    t_start = time.perf_counter()
    bad = sorted(set(targets) - set(TARGETS)) + sorted(set(precisions) - set(PRECISIONS))
    if bad:
        raise ExportError(f"unknown target/precision {bad}; targets: {', '.join(TARGETS)}; precisions: {', '.join(PRECISIONS)}")
    bad_socs = sorted({s.upper() for s in socs} - set(QNN_SOCS))
    if bad_socs:
        raise ExportError(f"unknown SoC(s) {bad_socs}; known: {', '.join(QNN_SOCS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    W = source.window_frames
    for name, x in (("calibration", windows.ptq), ("parity", windows.parity)):
        if x.ndim != 4 or x.shape[1:] != (1, N_MELS, W) or len(x) == 0:
            raise ExportError(f"{name} windows must be (N, 1, {N_MELS}, {W}), got {x.shape}")
    example = torch.from_numpy(np.ascontiguousarray(windows.parity[:1]))
    float_model = source.float_model
    if source.streaming:
        if not windows.streams:
            raise ExportError("a streaming model is calibrated and compared on whole runs: windows from "
                              "streams_from_dataset or streams_from_file (consecutive packets with their runs)")
        float_model = stream_step(source.float_model)  # what every target exports: packet + state in, logits + state out
        example = (example, *source.float_model.initial_state())
        ptq_windows = stream_inputs(source.float_model, windows.ptq, windows.ptq_runs) if source.int8_model is None else None
    else:
        ptq_windows = ptq_batches(windows.ptq, example)

    # PyTorch references: fp32 -> the float model; int8 -> the quantized graph when given (it is
    # the PyTorch model being exported), else the float model (PTQ error is part of the export)
    if source.streaming:
        ref32 = torch_stream_logits(source.float_model, windows.parity, windows.runs)
        ref8 = torch_stream_logits(source.int8_model, windows.parity, windows.runs) if source.int8_model is not None else ref32
        rows, row_runs = stream_windows(ref32, windows.runs)
        if not len(rows):
            raise ExportError(f"the parity runs are shorter than one window of {WINDOW_FRAMES} frames to compare counts in")
        acc32 = accuracy(rows, replace(windows, runs=row_runs), source.counter)
    else:
        ref32 = torch_logits(source.float_model, windows.parity) if source.float_model is not None else None
        acc32 = accuracy(ref32, windows, source.counter) if ref32 is not None else {}
        ref8 = torch_logits(source.int8_model, windows.parity) if source.int8_model is not None else ref32
    ref8_name = "pytorch int8 graph (as given)" if source.int8_model is not None else "pytorch fp32"

    qnn_missing = qnn_available() if "qnn" in targets and "int8" in precisions else None

    def one(target: str, precision: str, tmp: Path) -> list[TargetReport]:
        """export -> (quantize) -> lower -> save -> reload -> compare -> card, for one target x precision."""
        model = float_model if precision == "fp32" else (source.int8_graph or float_model)
        if target == "qnn" and precision == "fp32":
            return [TargetReport(target, precision, "skipped", "the HTP target is int8 only")]
        if target == "qnn" and source.streaming:
            return [TargetReport(target, precision, "skipped", "the HTP target takes windowed models only (no state inputs)")]
        if model is None:
            return [TargetReport(target, precision, "skipped", "no float model (the int8 graph's student checkpoint is missing)")]
        if target == "qnn" and qnn_missing:
            return [TargetReport(target, precision, "skipped", qnn_missing, backend=f"qnn-htp:{soc.upper()}") for soc in socs]
        ref, ref_name = (ref32, "pytorch fp32") if precision == "fp32" else (ref8, ref8_name)
        t0 = time.perf_counter()
        if target != "qnn":
            fn = {"pte": to_pte, "tflite": to_tflite, "onnx": to_onnx}[target]
            names = {"state_names": [n for n, _ in source.state_shapes()]} if target == "onnx" and source.streaming else {}
            exported = fn(model, example, out_dir / _artifact_name(source.name, target, precision), precision, ptq_windows, **names)
            if precision == "int8":
                exported.quantization = source.quantization
            return [_finish(exported, source, windows, ref, ref_name, time.perf_counter() - t0, {})]
        qdq = to_onnx(model, example, tmp / "qnn_qdq.onnx", "int8", ptq_windows, for_qnn=True)
        qdq_s = time.perf_counter() - t0
        contexts = []
        for soc in socs:
            t1 = time.perf_counter()
            exported = to_qnn_context(qdq.path, out_dir / _artifact_name(source.name, "qnn", precision, soc), soc)
            exported.quantization = source.quantization
            contexts.append((exported, qdq_s + time.perf_counter() - t1))
        # one simulator process per SoC, side by side (each is single-threaded)
        with ThreadPoolExecutor(max_workers=len(contexts)) as pool:
            return list(pool.map(lambda c: _finish(c[0], source, windows.head(max_npu_windows), ref[:max_npu_windows],
                                                   ref_name, c[1], {"qdq_ops": qdq.info.get("ops")}), contexts))

    reports: list[TargetReport] = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in targets:
            for precision in precisions:
                try:
                    done = one(target, precision, Path(tmp))
                except BackendMissing as e:
                    done = [TargetReport(target, precision, "skipped", str(e))]
                except Exception as e:  # the others still export; the failure is reported and fails the run
                    log.debug("export %s %s failed", target, precision, exc_info=True)
                    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    done = [TargetReport(target, precision, "error", f"{type(e).__name__}: {first}"[:400])]
                reports.extend(done)
                for report in done if progress is not None else ():
                    progress(report.line())
    result = ExportResult(str(out_dir), reports, time.perf_counter() - t_start,
                          {"name": source.name, "checkpoint": source.checkpoint, "window_frames": W, "hop_frames": source.hop_frames,
                           **({"streaming": {"packet_frames": W, "state": [[n, list(s)] for n, s in source.state_shapes()]}}
                              if source.streaming else {}),
                           "int8_from": "given quantized graph" if source.int8_model is not None else "post-training quantization",
                           "windows": windows.source, "reference_accuracy_fp32": acc32})
    (out_dir / REPORT_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result


def export_all(
    checkpoint: str | Path,
    targets: Sequence[str] = TARGETS,
    precisions: Sequence[str] = PRECISIONS,
    out_dir: str | Path = "out/export",
    data_root: str | Path | None = None,
    *,
    int8: str | Path | None = None,
    ptq_file: str | Path | None = None,
    fold: int = 0,
    socs: Sequence[str] = DEFAULT_QNN_SOCS,
    window_frames: int | None = None,
    hop_frames: int | None = None,
    max_parity: int = MAX_PARITY,
    progress: Callable[[str], None] | None = None,
    provenance: dict | None = None,
    force: bool = False,
    counter_on: str | Path | None = None,
) -> ExportResult:
    """Checkpoint -> every artifact with its card in ``out_dir`` (see :func:`export_model`).

    checkpoint: a float ``.pt`` (int8 by PTQ) or a quantized ``.pt2`` from ``train.quant.qat`` (int8 as
        given; fp32 from its student checkpoint); ``int8`` adds a ``.pt2`` to a float ``.pt``.
    data_root: a dataset (contract 5): PTQ calibration on fold ``fold``'s validation runs, parity on
        its test runs. Else ``ptq_file`` (``--calib``: a log-mel ``.npy`` or an audio file), else the bundled
        sample run ``edge/assets/sample_run.wav``.
    force: replace what an earlier export left in ``out_dir``; without it, an export that would
        write over any file there is refused (:class:`ExportError`) before any work.
    counter_on: dataset folders (comma-separated): a real-sound validation set (``footfall data
        realset --split val``) and held-out step-free runs; the counter's threshold is chosen on them
        with the float model (:func:`train.evaluate.realeval.choose_counter`) and shipped in every
        card; None: the counter's defaults.
    """
    source = load_source(checkpoint, int8, window_frames, hop_frames)
    if source.streaming and any(f not in (None, source.window_frames) for f in (window_frames, hop_frames)):
        raise ExportError(f"a streaming model takes its {source.window_frames}-frame packet once per call: "
                          f"--window and --hop do not apply")
    source.provenance = dict(provenance or {})
    existing = [p for p in planned_outputs(out_dir, source.name, targets, precisions, socs) if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more file(s) this export writes)" if len(existing) > 1 else ""
        raise ExportError(f"{existing[0]} exists{more}; choose another --out or pass --force to replace them")
    if counter_on is not None:
        # chosen on what the phone runs: a streaming model's QAT step when given (its int8 logits are
        # the counter's input), else the float model (a windowed int8 graph has no whole-run form)
        chooser = source.int8_model if source.streaming and source.int8_model is not None else source.float_model
        if chooser is None:
            raise ExportError("--counter-on needs the float model (a .pt checkpoint) to choose the counter with")
        from train.evaluate.realeval import choose_counter

        if progress:
            on = "the int8 step's logits" if chooser is source.int8_model else "the float model's logits"
            progress(f"choosing the cadence tracker's threshold on {counter_on} ({on})")
        source.counter, source.counter_choice = choose_counter(chooser, counter_on, source.window_frames)
        c = source.counter
        mae = source.counter_choice["mae_by_threshold"][f"{c.threshold:g}"]
        if progress:
            progress(f"counter threshold {c.threshold:g} (5-s MAE {mae:.3f} on {source.counter_choice['runs']} runs)")
    from_dataset, from_file = (streams_from_dataset, streams_from_file) if source.streaming else (windows_from_dataset, windows_from_file)
    if data_root is not None:
        windows = from_dataset(data_root, source.window_frames, fold, max_parity=max_parity)
    elif ptq_file is not None:
        windows = from_file(ptq_file, source.window_frames, max_parity=max_parity)
    elif SAMPLE_AUDIO.is_file():
        windows = from_file(SAMPLE_AUDIO, source.window_frames, max_parity=max_parity)
    else:
        raise ExportError("no real log-mel to calibrate and compare on: pass --data DATASET or --calib FILE (.npy log-mel or audio)")
    if progress is not None:
        default = "; no --data or --calib: the bundled sample run" if data_root is None and ptq_file is None else ""
        if source.streaming:
            progress(f"{source.name}: streaming, {source.window_frames}-frame packets, {len(source.state_shapes())} state buffers; "
                     f"calibration on {windows.source.get('calibration')}, parity on {windows.source.get('parity')}{default}")
        else:
            progress(f"{source.name}: window {source.window_frames} frames, hop {source.hop_frames}; "
                     f"{len(windows.ptq)} calibration and {len(windows.parity)} parity windows ({windows.source.get('parity')}{default})")
    return export_model(source, windows, out_dir, targets, precisions, socs, progress=progress)
