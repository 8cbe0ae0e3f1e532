"""int8 students: quantization-aware training (PT2E QAT) and, for comparison, post-training
quantization (PT2E PTQ), both with the XNNPACK quantizer (per-channel symmetric int8 weights,
per-tensor int8 activations) on the CNN alone (the log-mel front end stays outside, float).

QAT (:func:`quantize_student`):

1. export the fp32 student (train mode) at its fixed window, batch dimension dynamic;
2. ``prepare_qat_pt2e``: fake-quantize weights and activations; conv + BatchNorm pairs become
   the QAT conv-bn pattern (BN statistics still move);
3. fine-tune on the student's own targets (the teacher's step probabilities and the true step
   frames: the same data and loss as :mod:`train.distill.student`) at a small learning rate; after ``freeze_bn_epoch`` epochs the BN
   statistics are frozen (the graph moved to eval mode, gradients still flow), after
   ``freeze_observer_epoch`` the quantization ranges too;
4. ``convert_pt2e``: BN folded into the conv weights, real quantize/dequantize pairs;
5. re-export with a dynamic batch and save as ``qat_int8.pt2``.

PTQ: the eval-mode student exported, ``prepare_pt2e`` (histogram observers), a few calibration
batches, ``convert_pt2e`` -> ``ptq_int8.pt2``.

File format (what ``export/`` consumes): a ``torch.export`` program saved with
``torch.export.save``; :func:`load_quantized` reads it back::

    ep = torch.export.load("qat_int8.pt2", extra_files={"footfall.json": ""})
    meta = json.loads(extra_files["footfall.json"])      # also in qat_int8.pt2.json beside it
    y = ep.module()(x)        # x (B, 1, 64, meta["window_frames"]) float32 log-mel -> (B, W // 4) step-onset logits

The graph holds ``quantized_decomposed`` quantize/dequantize ops around the convs (the form
``to_edge_transform_and_lower`` + ``XnnpackPartitioner`` turns into int8 XNNPACK kernels, and
``litert-torch`` converts); its time length is fixed at the student's window (MobileNetV2 does
not lower with a dynamic T), its batch is dynamic (re-export at batch 1 for a ``.pte``).
The metadata says what the model is (name, config, window/hop, output frame rate, params, MACs),
how it was quantized, from which checkpoint and data, and its accuracy next to the fp32 student's.

Accuracy is compared at the student's streaming window (fixed-T graphs cannot run 5-s windows
whole): each run's steps are the events of the logits the edge runtime's streaming alignment
commits, scored on the paper's 5-s windows of the test runs
(``train.distill.student.evaluate(..., stream=True)``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from edge.contract import DENSITY_FPS
from train.fit.config import ConfigError
from train.distill.student import DistillConfig, PackedLoss, build_distill_data, evaluate
from edge.util import atomic_path, jsonable, tool_versions, write_json

log = logging.getLogger("footfall.qat")

PT2E_FORMAT = "footfall.pt2e"
PT2E_VERSION = 1
META_FILE = "footfall.json"  # the metadata entry inside the .pt2 archive
MAX_BATCH = 4096


@dataclass
class QATConfig:
    """A QAT / PTQ run of one student checkpoint; data, labels and fold default to the student's."""

    student: str  # fp32 student checkpoint (footfall distill's best.pt)
    out: str = ""  # default: <student dir>/int8
    data: str = ""  # default: the dataset the student was trained on
    psl: str = ""  # default: the student's PSL folder
    epochs: int = 4
    lr: float = 1e-4  # Adam; 1/10 of the student's
    batch_size: int = 64
    freeze_bn_epoch: int = 2  # epochs with moving BN statistics; then frozen
    freeze_observer_epoch: int = 3  # epochs with moving quantization ranges; then frozen
    max_steps_per_epoch: int = 0  # cap on QAT optimizer steps per epoch (0: none); for smoke runs
    calib_batches: int = 16  # PTQ calibration batches (of batch_size training windows)
    ptq: bool = True  # also make the PTQ variant
    qat: bool = True
    force: bool = False  # replace the graphs and report an earlier run left in ``out``
    device: str = "auto"
    threads: int = 0
    seed: int = 0
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "calib_batches", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: {getattr(self, name)}; must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"lr: {self.lr}; must be > 0")
        if not 0 <= self.freeze_bn_epoch <= self.epochs:
            raise ConfigError(f"freeze_bn_epoch: {self.freeze_bn_epoch}; must be in 0..epochs ({self.epochs})")
        if not 1 <= self.freeze_observer_epoch <= self.epochs:
            raise ConfigError(f"freeze_observer_epoch: {self.freeze_observer_epoch}; must be in 1..epochs ({self.epochs}): ranges need one epoch of observation")
        if self.max_steps_per_epoch < 0:
            raise ConfigError(f"max_steps_per_epoch: {self.max_steps_per_epoch}; must be >= 0")
        if not (self.qat or self.ptq):
            raise ConfigError("nothing to do: qat and ptq both off")


def _quantizer(is_qat: bool):
    from train.quant.step_quant import xnnpack_quantizer

    return xnnpack_quantizer(qat=is_qat)


def quantizer_description(is_qat: bool) -> dict[str, Any]:
    return {
        "framework": "pt2e (torchao)",
        "quantizer": "executorch XNNPACKQuantizer",
        "config": f"get_symmetric_quantization_config(is_per_channel=True, is_qat={is_qat})",
        "weights": "int8 per-channel symmetric [-127, 127]",
        "activations": "int8 per-tensor affine [-128, 127]",
        "method": "qat" if is_qat else "ptq",
        "scope": "the CNN only; log-mel front end outside, float",
    }


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


def export_graph(model: torch.nn.Module, window_frames: int) -> torch.export.ExportedProgram:
    """``torch.export`` at (B, 1, n_mels, window_frames) with B dynamic (the QAT batch pitfall)."""
    n_mels = model.config.n_mels if hasattr(model, "config") else 64
    x = torch.randn(2, 1, n_mels, window_frames)
    return torch.export.export(model, (x,), dynamic_shapes=({0: _batch_dim()},))


def nonzero_bn_gammas(model: torch.nn.Module, eps: float = 1e-4) -> int:
    """Give BatchNorm scales that are exactly 0 a tiny value; returns how many were changed.

    The PT2E QAT conv-bn pattern divides the conv output by ``gamma / running_std``, so a zero
    gamma (e.g. a residual branch initialised to identity and not yet trained) makes NaNs.
    An ``eps`` gamma changes that branch's output by ~eps (it was 0).
    """
    changed = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                zero = m.weight == 0
                changed += int(zero.sum())
                m.weight[zero] = eps
    return changed


def _set_observers(graph: torch.nn.Module, enabled: bool) -> None:
    from torchao.quantization.pt2e.fake_quantize import disable_observer, enable_observer

    graph.apply(enable_observer if enabled else disable_observer)


def _load_student(cfg: QATConfig) -> tuple[torch.nn.Module, dict, DistillConfig]:
    from train.models import load_checkpoint

    path = Path(cfg.student)
    if not path.is_file():
        raise ConfigError(f"student: {path}: no such checkpoint")
    model, meta = load_checkpoint(path)
    tc = meta.get("train_config")
    if not isinstance(tc, dict) or "labels" not in tc:
        raise ConfigError(f"student: {path}: not a `footfall distill` checkpoint (no distillation config inside)")
    dcfg = DistillConfig.from_dict({**tc, "data": cfg.data or tc["data"], "psl": cfg.psl or tc.get("psl", ""), "batch_size": cfg.batch_size,
                                    "device": "cpu", "precision": "fp32"}, where=f"{path} train_config")
    return model, meta, dcfg


def _train_loader(dcfg: DistillConfig, seed: int):
    ds = build_distill_data(dcfg.data, dcfg.fold, "train", dcfg.labels, dcfg.psl or None, dcfg.window_frames, dcfg.hop_frames,
                            dcfg.unlabeled, dcfg.n_folds, quiet_fraction=dcfg.quiet_fraction, seed=dcfg.seed, extra=dcfg.extra_sources())
    loader = torch.utils.data.DataLoader(ds, batch_size=dcfg.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    return ds, loader


def _score(fn: Callable, dcfg: DistillConfig, recs_by_split: dict, device, batch_size: int, direct: bool = False) -> dict[str, dict]:
    """{split: FoldResult dict} of a callable on the val/test runs (stream; or direct 5-s windows)."""
    out = {}
    for split, recs in recs_by_split.items():
        if direct:
            r = evaluate(fn, recs, dcfg.data, dcfg.val_window_frames, None, batch_size, device, dcfg.fold)
        else:
            r = evaluate(fn, recs, dcfg.data, dcfg.window_frames, dcfg.stream_hop_frames, batch_size, device, dcfg.fold, stream=True)
        out[split] = dataclasses.asdict(r)
    return out


def out_dir(cfg: QATConfig) -> Path:
    """Where a run writes: ``cfg.out``, else ``int8/`` beside the student checkpoint."""
    return Path(cfg.out) if cfg.out else Path(cfg.student).resolve().parent / "int8"


def planned_outputs(cfg: QATConfig) -> list[Path]:
    """The files :func:`run_qat` writes, in order: each int8 graph and its metadata, then the report."""
    out = out_dir(cfg)
    graphs = [out / f"{name}_int8.pt2" for name, on in (("ptq", cfg.ptq), ("qat", cfg.qat)) if on]
    return [p for g in graphs for p in (g, g.with_name(g.name + ".json"))] + [out / "report.json"]


def run_qat(cfg: QATConfig) -> dict[str, Any]:
    """fp32 student -> QAT int8 and PTQ int8 graphs (``.pt2``) + a report; returns the report.

    Single process (QAT of a small student takes minutes). Writes into ``cfg.out``:
    ``qat_int8.pt2`` (+ ``.json``), ``ptq_int8.pt2`` (+ ``.json``), ``report.json``; the returned
    report lists them under ``written`` (:func:`planned_outputs`). Files of an earlier run there are
    replaced only with ``cfg.force``: otherwise the run is refused before any work.
    """
    import os

    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e

    from edge.card import sha256_file
    from train.data.features import fold_recordings
    from train.models import count_params, macs_per_second
    from train.fit.trainer import seed_everything, train_step

    existing = [p for p in planned_outputs(cfg) if p.exists()]
    if existing and not cfg.force:
        more = f" (and {len(existing) - 1} more file(s) this run writes)" if len(existing) > 1 else ""
        raise ConfigError(f"{existing[0]} exists{more}; choose another --out or pass --force to replace them")
    log.info("QAT: loading the student and its data")
    torch.set_num_threads(cfg.threads or max(1, os.cpu_count() or 1))
    device = torch.device("cuda" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and device.type != "cuda":
        raise ConfigError("device: cuda requested but torch sees no CUDA device")
    model, meta, dcfg = _load_student(cfg)
    out = out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    W = dcfg.window_frames
    seed_everything(cfg.seed)
    recs = {s: fold_recordings(dcfg.data, dcfg.fold, s, n_folds=dcfg.n_folds) for s in ("val", "test")}
    ds, loader = _train_loader(dcfg, cfg.seed)
    loss_fn = PackedLoss(dcfg.alpha, dcfg.labels)
    base_meta = {
        "format": PT2E_FORMAT,
        "version": PT2E_VERSION,
        "model": {"name": meta["name"], "config": meta["config"], "params": count_params(model),
                  "macs_per_second": macs_per_second(model, W), "time_multiple": model.time_multiple},
        "window_frames": W,
        "hop_frames": dcfg.stream_hop_frames,
        "density_fps": float(DENSITY_FPS),  # output frames per second (the cards' key)
        "input_shape": [-1, 1, model.config.n_mels, W],  # -1: dynamic batch
        "student_checkpoint": str(Path(cfg.student).resolve()),
        "student_sha256": sha256_file(cfg.student),
        "training_data": {"dataset": dcfg.data, "fold": dcfg.fold, "labels": dcfg.labels, "alpha": dcfg.alpha,
                          "unlabeled": dcfg.unlabeled, "psl": dcfg.psl, "extra_train": dcfg.extra_roots,
                          "distill": meta.get("distill", {})},
        "tools": _tools(),
    }

    if getattr(model, "streaming", False):  # its step is what ships: QAT of the step (train.quant.stream_qat)
        return _run_stream(cfg, model, dcfg, loader, out, recs, base_meta)

    model.to(device).eval()
    log.info("fp32 student: scoring %d validation and %d test runs (streamed, then 5-s windows)", len(recs["val"]), len(recs["test"]))
    report: dict[str, Any] = {"student": base_meta["student_checkpoint"], "window_frames": W, "hop_frames": dcfg.stream_hop_frames,
                              "fp32": {"stream": _score(model, dcfg, recs, device, cfg.eval_batch_size),
                                       "direct": _score(model, dcfg, recs, device, cfg.eval_batch_size, direct=True)}}
    log.info("fp32 student: test 5-s MAE %.4f (stream), %.4f (direct)", report["fp32"]["stream"]["test"]["mae"], report["fp32"]["direct"]["test"]["mae"])

    if cfg.ptq:
        log.info("PTQ int8: calibrating on %d batches, converting, scoring", cfg.calib_batches)
        t0 = time.perf_counter()
        graph = prepare_pt2e(export_graph(model.cpu().eval(), W).module(), _quantizer(False))
        with torch.no_grad():
            for i, (x, _) in enumerate(loader):
                if i >= cfg.calib_batches:
                    break
                graph(x)
        ptq = convert_pt2e(graph)
        move_exported_model_to_eval(ptq)
        report["ptq"] = {"stream": _score(ptq, dcfg, recs, "cpu", cfg.eval_batch_size), "seconds": time.perf_counter() - t0}
        _save(out / "ptq_int8.pt2", ptq, W, model.config.n_mels, {**base_meta, "precision": "int8", "quantization": quantizer_description(False),
              "calibration": {"batches": cfg.calib_batches, "batch_size": dcfg.batch_size},
              "accuracy": report["ptq"]["stream"]["test"], "reference_accuracy": report["fp32"]["stream"]["test"]})
        log.info("PTQ int8: test 5-s MAE %.4f (stream)", report["ptq"]["stream"]["test"]["mae"])

    if cfg.qat:
        t0 = time.perf_counter()
        model.to(device).train()
        if nonzero_bn_gammas(model):
            log.info("QAT: BatchNorm scales that were exactly 0 set to 1e-4 (the QAT conv-bn pattern divides by them)")
        log.info("QAT: preparing the fake-quantized graph")
        graph = prepare_qat_pt2e(export_graph(model, W).module(), _quantizer(True)).to(device)
        optimizer = torch.optim.Adam(graph.parameters(), lr=cfg.lr)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        history, step, best = [], 0, (float("inf"), None, None)  # (val MAE, weights, epoch) of the best epoch
        steps_per_epoch = min(len(loader), cfg.max_steps_per_epoch or len(loader))
        bar = _progress_bar()
        task = bar.add_task("QAT", total=cfg.epochs * steps_per_epoch)
        bar.start()
        for epoch in range(cfg.epochs):
            bn_frozen, obs_frozen = epoch >= cfg.freeze_bn_epoch, epoch >= cfg.freeze_observer_epoch
            (move_exported_model_to_eval if bn_frozen else move_exported_model_to_train)(graph)
            _set_observers(graph, not obs_frozen)
            loss_sum, n = 0.0, 0
            for i, (x, y) in enumerate(loader):
                if cfg.max_steps_per_epoch and i >= cfg.max_steps_per_epoch:
                    break
                loss, _ = train_step(graph, (x.to(device), y.to(device)), optimizer, scaler, "fp32", loss_fn=loss_fn)
                loss_sum, n, step = loss_sum + loss.item() * len(y), n + len(y), step + 1
                bar.update(task, advance=1, description=f"QAT epoch {epoch + 1}/{cfg.epochs}, loss {loss_sum / max(n, 1):.4f}")
            # validate the fake-quantized graph: eval mode, ranges untouched by validation audio
            move_exported_model_to_eval(graph)
            _set_observers(graph, False)
            # hop = window: the cheapest streaming pass (one window per 2 s), enough to pick an epoch
            val = evaluate(graph, recs["val"], dcfg.data, W, W, cfg.eval_batch_size, device, dcfg.fold, stream=True)
            validated = val.n_windows > 0  # a fold whose validation runs are missing or unlabelled scores nothing
            history.append({"epoch": epoch, "train_loss": loss_sum / max(n, 1), "val_mae": val.mae if validated else None,
                            "bn_frozen": bn_frozen, "observers_frozen": obs_frozen})
            log.info("QAT epoch %d/%d  loss %.4f | %s%s%s", epoch + 1, cfg.epochs, loss_sum / max(n, 1),
                     f"validation 5-s MAE {val.mae:.4f} (fake-quant)" if validated else "no labelled validation runs",
                     " | BN frozen" if bn_frozen else "", " | ranges frozen" if obs_frozen else "")
            # keep the best epoch once the ranges are frozen (what is converted is what was validated)
            if obs_frozen and validated and val.mae < best[0]:
                best = (val.mae, {k: v.detach().clone() for k, v in graph.state_dict().items()}, epoch)
        bar.stop()
        if best[1] is not None:
            graph.load_state_dict(best[1])
        move_exported_model_to_eval(graph)
        _set_observers(graph, False)
        chosen = _chosen_epoch(best[2], best[0], cfg, validated=any(h["val_mae"] is not None for h in history))
        log.info("QAT int8: converting and scoring %s", chosen)
        qat = convert_pt2e(graph.cpu())  # BN folded into the convs here
        move_exported_model_to_eval(qat)
        report["qat"] = {"stream": _score(qat, dcfg, recs, "cpu", cfg.eval_batch_size), "history": history, "best_epoch": best[2],
                         "converted": chosen, "seconds": time.perf_counter() - t0}
        _save(out / "qat_int8.pt2", qat, W, model.config.n_mels, {**base_meta, "precision": "int8", "quantization": quantizer_description(True),
              "qat": {"epochs": cfg.epochs, "lr": cfg.lr, "freeze_bn_epoch": cfg.freeze_bn_epoch, "freeze_observer_epoch": cfg.freeze_observer_epoch,
                      "best_epoch": best[2], "converted": chosen, "steps": step},
              "accuracy": report["qat"]["stream"]["test"], "reference_accuracy": report["fp32"]["stream"]["test"]})
        log.info("QAT int8: test 5-s MAE %.4f (stream)", report["qat"]["stream"]["test"]["mae"])

    report["summary"] = summarize(report)
    write_json(out / "report.json", report)
    report["written"] = [str(p) for p in planned_outputs(cfg)]  # for the caller to name; not in report.json
    return report


def _run_stream(cfg: QATConfig, model, dcfg: DistillConfig, loader, out: Path, recs: dict, base_meta: dict) -> dict[str, Any]:
    """QAT of a streaming student's step; no PTQ graph here (the export calibrates the float step itself)."""
    from train.quant.stream_qat import run_stream_qat

    if not cfg.qat:
        raise ConfigError("a streaming student's PTQ is the export's (footfall export of its checkpoint); footfall qat trains its step (leave --no-qat out)")

    def score(m, splits=("val", "test")) -> dict:
        return _score(m, dcfg, {s: recs[s] for s in splits}, "cpu", cfg.eval_batch_size)

    P = model.packet_frames
    base_meta = {**base_meta, "window_frames": P, "hop_frames": P, "training_window_frames": dcfg.window_frames}
    report: dict[str, Any] = {"student": base_meta["student_checkpoint"], "window_frames": P, "hop_frames": P,
                              **run_stream_qat(cfg, model, dcfg, loader, out, base_meta, score)}
    report["summary"] = summarize(report)
    write_json(out / "report.json", report)
    report["written"] = [str(out / n) for n in ("qat_int8.pt2", "qat_int8.pt2.json", "report.json")]
    return report


def _chosen_epoch(best_epoch: int | None, best_mae: float, cfg: QATConfig, validated: bool) -> str:
    """Which epoch's weights QAT converts, and why, in words (epochs counted from 1).

    ``best_epoch`` (0-based, None when no epoch was chosen) is the one with the lowest validation
    MAE among those with frozen quantization ranges; without one, the last epoch's weights stay.
    """
    last = f"the last epoch ({cfg.epochs} of {cfg.epochs})"
    if best_epoch is not None:
        return f"epoch {best_epoch + 1} of {cfg.epochs} (the lowest validation 5-s MAE, {best_mae:.4f}, of the epochs with frozen ranges)"
    if not validated:
        return f"{last}: no labelled validation runs to choose one on"
    return f"{last}: the quantization ranges moved in every epoch (frozen only after the last), so none was chosen on validation"


def _progress_bar():
    """A bar over the QAT steps on stderr (drawn only on a terminal; the log lines say the rest)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


def summarize(report: dict) -> dict[str, Any]:
    """Test 5-s MAE/PCC/total-count error of fp32, QAT and PTQ at the streaming window, and the
    relative MAE changes QAT is judged by (within 3 % of fp32, better than PTQ)."""
    rows = {}
    for name in ("fp32", "qat", "ptq"):
        if name in report:
            t = report[name]["stream"]["test"]
            rows[name] = {"mae": t["mae"], "pcc": t["pcc"], "tce_median": t["tce_median"]}
    ref = rows["fp32"]["mae"]
    for name in ("qat", "ptq"):
        if name in rows:
            rows[name]["mae_rel_change_pct"] = 100.0 * (rows[name]["mae"] - ref) / ref if ref else float("nan")
    out: dict[str, Any] = {"test_stream": rows}
    if "qat" in rows:
        out["qat_within_3pct"] = bool(rows["qat"]["mae_rel_change_pct"] <= 3.0)
    if "qat" in rows and "ptq" in rows:
        out["qat_better_than_ptq"] = bool(rows["qat"]["mae"] < rows["ptq"]["mae"])
    if "qat" in rows or "ptq" in rows:
        out["ship"] = select_int8(report)
    return out


def select_int8(report: dict) -> str:
    """The int8 graph to ship, ``"qat"`` or ``"ptq"``: the lower *validation* 5-s MAE (streamed).

    Chosen on the validation runners, never on the test runners, so that the test numbers stay an
    unbiased estimate; QAT on a tie (it is the recipe's default). A missing variant loses.
    """
    val = {k: report[k]["stream"]["val"]["mae"] for k in ("qat", "ptq") if k in report}
    if not val:
        raise ValueError("report has neither a QAT nor a PTQ result")
    return min(val, key=lambda k: (val[k], k != "qat"))


def _main(argv: list[str]) -> int:
    """``python -m train.quant.qat ship INT8_DIR``: print the path of the int8 graph to ship."""
    if len(argv) != 2 or argv[0] != "ship":
        print("usage: python -m train.quant.qat ship INT8_DIR  (the folder of footfall qat: report.json, *_int8.pt2)", file=sys.stderr)
        return 2
    folder = Path(argv[1])
    try:
        report = json.loads((folder / "report.json").read_text())
        path = folder / f"{select_int8(report)}_int8.pt2"
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {folder}: no usable QAT/PTQ report ({e})", file=sys.stderr)
        return 2
    if not path.is_file():
        print(f"error: {path}: missing", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))


def _tools() -> dict[str, str]:
    return tool_versions("torch", "torchao", "executorch")


def _save(path: Path, graph: torch.nn.Module, window_frames: int, n_mels: int, meta: dict) -> Path:
    """Re-export a converted graph (dynamic batch) and save it with its metadata (inside and beside)."""
    x = torch.randn(2, 1, n_mels, window_frames)
    ep = torch.export.export(graph, (x,), dynamic_shapes=({0: _batch_dim()},))
    text = json.dumps(jsonable(meta), indent=2)
    with atomic_path(path, suffix=path.suffix) as tmp:
        torch.export.save(ep, str(tmp), extra_files={META_FILE: text})
    write_json(path.with_name(path.name + ".json"), json.loads(text))
    return path


def load_quantized(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A saved int8 graph -> (callable module (B, 1, 64, W) -> (B, W // 4) logits, its metadata)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such quantized model")
    extra = {META_FILE: ""}
    try:
        ep = torch.export.load(str(path), extra_files=extra)
        meta = json.loads(extra[META_FILE])
    except Exception as e:
        raise ConfigError(f"{path}: not a footfall int8 graph ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if meta.get("format") != PT2E_FORMAT:
        raise ConfigError(f"{path}: metadata format {meta.get('format')!r}, expected {PT2E_FORMAT!r}")
    if meta.get("streaming"):  # a streaming student's int8 step: run windows and runs through it packet by packet
        from train.quant.stream_qat import load_streamed

        return load_streamed(ep.module(), meta), meta
    return ep.module(), meta
