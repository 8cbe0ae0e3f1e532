"""`footfall finetune`: adapt a student checkpoint to a runner's own labelled runs.

The student is by default the bundled one: the float checkpoint the bundled int8 models were
exported from, ``edge/assets/<model>_float.pt`` (weights and config only; its sha256 and where it
came from in the record beside it, ``<model>_float.pt.json``; :func:`bundle_student` writes both,
:func:`bundled_student` finds and checks them). ``edge/`` only holds the file: loading it is here.

The own runs come from ``footfall data import-imu`` (labels from the phone's accelerometer). One
or more runs are held out; the student is scored on them (the paper's 5-s windows, MAE) before
and after (the paper's 5-s windows, MAE of the counted step events). Training is a short, plain
loop sized for a laptop CPU: windows of the student's own length from the other runs, the
shift-tolerant BCE of its step-onset logits against the true step frames
(:class:`train.fit.losses.ShiftTolerantBCE`, as a teacher learns; the labels are exact where they
exist: masked stretches were cut out by the importer), AdamW at a small learning rate,
batch-norm statistics frozen (a few minutes of audio cannot re-estimate them). The result is a
checkpoint like any other student (``footfall export`` takes it), with ``finetune`` in its extra.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge.card import CARD_SUFFIX, relative_paths, sha256_file
from edge.contract import DENSITY_FPS, DENSITY_STRIDE, EVAL_WINDOW_FRAMES, WINDOW_FRAMES
from edge.frontend import ASSETS
from edge.util import tool_versions, write_json
from train.data.recordings import Recording, labeled, load_dataset
from train.fit.losses import ShiftTolerantBCE

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FLOAT_SUFFIX = "_float.pt"  # edge/assets/<model>_float.pt: the bundled float student
# what a bundled student keeps of its checkpoint's extra, beside weights and config: its window
# and streaming hop (finetune and export read them) and what it was trained on
BUNDLED_EXTRA = ("fold", "data", "window_s", "window_frames", "stream_hop_s", "distill")


class FinetuneError(ValueError):
    """A finetune that cannot run; one line."""


@dataclass
class FinetuneConfig:
    init: str  # the student checkpoint (.pt) to adapt
    data: str  # the own-runs dataset (footfall data import-imu --out)
    out: str  # the adapted checkpoint (.pt)
    holdout: list[str] = field(default_factory=list)  # run ids scored before/after; default the last labelled run
    epochs: int = 6
    lr: float = 3e-4
    batch_size: int = 16
    seed: int = 0
    threads: int = 0  # 0: torch's default

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise FinetuneError(f"epochs {self.epochs}: need at least 1")
        if not 0 < self.lr <= 0.1:
            raise FinetuneError(f"lr {self.lr}: expected 0 < lr <= 0.1 (e.g. 3e-4)")
        if self.batch_size < 1:
            raise FinetuneError(f"batch_size {self.batch_size}: need at least 1")


@dataclass
class FinetuneResult:
    out: str
    holdout: list[str]
    train_runs: list[str]
    before_mae: float
    after_mae: float
    before_total_err_pct: float
    after_total_err_pct: float
    windows: int
    seconds: float


def _split(recs: list[Recording], holdout: list[str]) -> tuple[list[Recording], list[Recording]]:
    ids = [r.run_id for r in recs]
    if not holdout:
        holdout = [ids[-1]]
    unknown = [h for h in holdout if h not in ids]
    if unknown:
        raise FinetuneError(f"--holdout {unknown[0]!r}: no such labelled run; the runs are {', '.join(ids)}")
    held = [r for r in recs if r.run_id in holdout]
    train = [r for r in recs if r.run_id not in holdout]
    if not train:
        raise FinetuneError(f"every labelled run is held out ({', '.join(holdout)}); leave at least one to train on")
    return train, held


def _score(model, recs, data) -> tuple[float, float]:
    from train.distill.student import evaluate

    res = evaluate(model, recs, data, window_frames=EVAL_WINDOW_FRAMES, batch_size=16)
    return float(res.mae), float(res.tce_median)


def _windows(recs: list[Recording], data: str, window_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Every run cut into windows of the student's length at half-window hops -> (mel (N, 64, W), steps per output frame (N, W // 4))."""
    from train.data.features import recording_features, step_frames

    mels, targets = [], []
    hop = window_frames // 2 // DENSITY_STRIDE * DENSITY_STRIDE  # whole output frames, so targets align with the audio
    for r in recs:
        mel, steps = recording_features(r, data)
        n = mel.shape[1]
        per = step_frames(steps, n // DENSITY_STRIDE, fps=DENSITY_FPS)
        for s in range(0, n - window_frames + 1, hop):
            mels.append(np.asarray(mel[:, s : s + window_frames]))
            targets.append(per[s // DENSITY_STRIDE : (s + window_frames) // DENSITY_STRIDE])
    if not mels:
        raise FinetuneError(f"the training runs are shorter than one window ({window_frames / 100:g} s)")
    return np.stack(mels).astype(np.float32), np.stack(targets).astype(np.float32)


def _freeze_bn(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (the same path, a symlink or a hard link)."""
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def finetune(cfg: FinetuneConfig, force: bool = False, progress=None) -> FinetuneResult:
    """Adapt ``cfg.init`` on the own runs of ``cfg.data``; held-out MAE before and after."""
    from train.models import count_params, load_checkpoint
    from train.models.registry import CheckpointError, save_checkpoint

    out = Path(cfg.out)
    if _same_file(out, Path(cfg.init)):  # even with force: the model adapted from must survive
        raise FinetuneError(f"--out {out} is the checkpoint it starts from ({cfg.init}); it is never overwritten, "
                            "not even with --force: choose another --out")
    if out.resolve().is_relative_to(ASSETS.resolve()):  # even with force: a second student there hides the bundled one
        raise FinetuneError(f"--out {out}: {ASSETS} holds the bundled models (and the one float student finetune starts "
                            "from); it is never written, not even with --force: choose another --out")
    if out.exists() and not force:
        raise FinetuneError(f"{out} exists; choose another --out or pass --force")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    try:
        model, meta = load_checkpoint(cfg.init)
    except FileNotFoundError:
        raise FinetuneError(f"{cfg.init}: no such checkpoint") from None
    except CheckpointError as e:
        raise FinetuneError(str(e)) from e
    if progress:
        progress(f"starting from {cfg.init} ({meta['name']}, {count_params(model)} parameters)")
    recs = labeled(load_dataset(cfg.data))
    if len(recs) < 2:
        raise FinetuneError(f"{cfg.data}: {len(recs)} labelled run(s); finetune needs one to train on and one to hold out")
    train_recs, held = _split(recs, list(cfg.holdout))
    window_frames = int(meta.get("window_frames") or WINDOW_FRAMES)
    t_start = time.time()
    model.eval()
    before = _score(model, held, cfg.data)
    x, y = _windows(train_recs, cfg.data, window_frames)
    x_t, y_t = torch.from_numpy(x)[:, None], torch.from_numpy(y)  # (N, 1, 64, W), (N, W // 4)
    loss_fn = ShiftTolerantBCE()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(cfg.epochs):
        model.train()
        _freeze_bn(model)
        order = torch.randperm(len(x_t), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            b = order[i : i + cfg.batch_size]
            loss = loss_fn(model(x_t[b]), y_t[b])  # logits (B, W // 4) against step frames
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        if progress:
            progress(f"epoch {epoch + 1}/{cfg.epochs}: step-frame BCE {total / len(order):.4f}")
    model.eval()
    after = _score(model, held, cfg.data)
    extra = {k: v for k, v in meta.items() if k not in ("name", "config", "version")}
    extra["finetune"] = {"init": str(cfg.init), "init_sha256": sha256_file(cfg.init), "data": str(cfg.data), "holdout": [r.run_id for r in held],
                         "train_runs": [r.run_id for r in train_recs], "epochs": cfg.epochs, "lr": cfg.lr,
                         "before_mae": before[0], "after_mae": after[0]}
    try:
        save_checkpoint(out, model, **extra)
    except (TypeError, ValueError):  # an older checkpoint's extra that is not plain: keep only ours
        save_checkpoint(out, model, window_frames=window_frames, finetune=extra["finetune"])
    return FinetuneResult(str(out), [r.run_id for r in held], [r.run_id for r in train_recs], before[0], after[0],
                          before[1], after[1], len(x_t), round(time.time() - t_start, 1))


# ----------------------------------------------------------------------------- the bundled float student


def record_path(student: str | Path) -> Path:
    """The record beside a bundled student: ``<model>_float.pt.json``."""
    student = Path(student)
    return student.with_name(student.name + ".json")


def bundled_student(assets: Path | None = None) -> Path:
    """The float student in ``assets`` (default ``edge/assets``: ``<model>_float.pt``), checked
    against the sha256 its record holds."""
    assets = ASSETS if assets is None else assets
    found = sorted(assets.glob(f"*{FLOAT_SUFFIX}"))
    if not found:
        raise FinetuneError(f"no bundled float student in {assets} (a `footfall model` bundles one, <model>{FLOAT_SUFFIX}); "
                            "pass --init CHECKPOINT to start from a student of your own")
    if len(found) > 1:
        raise FinetuneError(f"{len(found)} bundled float students in {assets} ({', '.join(p.name for p in found)}); pass --init to choose one")
    student, record = found[0], record_path(found[0])
    try:
        recorded = json.loads(record.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FinetuneError(f"{record}: the bundled student's record is missing or unreadable ({type(e).__name__}); "
                            "pass --init CHECKPOINT") from e
    actual = sha256_file(student)
    if actual != recorded:  # e.g. a Git LFS pointer, or a file changed since it was bundled
        raise FinetuneError(f"{student}: sha256 {actual[:12]}… is not the {recorded[:12]}… its record {record.name} holds; "
                            "restore it, or pass --init CHECKPOINT")
    return student


def bundle_student(checkpoint: str | Path, assets: Path = ASSETS) -> list[Path]:
    """Write ``checkpoint`` slimmed (weights, config, window, training data; no optimizer or trainer
    state) into ``assets`` as ``<model>_float.pt`` with its record; returns both paths.

    It must be the float checkpoint the bundled int8 artifacts were exported from, so that finetune
    starts from the weights the phone runs: refused when a card records another checkpoint's sha256
    (``model.float_checkpoint_sha256``; cards of older exports record none and are taken on trust).
    When the cards say the artifacts are a QAT step (``model.quantization`` "qat"), QAT moved the
    weights away from the checkpoint's: what is bundled is then the float form of the step's trained
    weights (:func:`train.quant.stream_qat.trained_float`), read from the step's graph (the cards'
    ``model.checkpoint``), which must have been quantized from ``checkpoint``.
    Replaces an earlier bundled student, as the release bundle replaces the artifacts.
    """
    from train.models import CheckpointError, count_params, load_checkpoint, save_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FinetuneError(f"{checkpoint}: no such checkpoint")
    cards = {p.name[: -len(CARD_SUFFIX)]: json.loads(p.read_text()) for p in sorted(assets.glob(f"*{CARD_SUFFIX}"))}
    if not cards:
        raise FinetuneError(f"{assets}: no bundled int8 artifacts with cards; bundle them first (python -m release.bundle artifacts EXPORT_DIR)")
    sha = sha256_file(checkpoint)
    for name, card in cards.items():
        recorded = card.get("model", {}).get("float_checkpoint_sha256")
        if recorded and recorded != sha:
            raise FinetuneError(f"{checkpoint}: {name} was exported from another checkpoint "
                                f"({card['model'].get('checkpoint')}, sha256 {recorded[:12]}…, not {sha[:12]}…)")
    try:
        model, meta = load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise FinetuneError(str(e)) from e
    roots = [str(REPO), str(Path.cwd().resolve())]
    qat = _qat_graph(cards, sha, roots)
    if qat is not None:  # the int8 step was trained quantized: bundle the float form of its trained weights
        from train.quant.stream_qat import trained_float

        try:
            model = trained_float(model, qat[1])
        except (TypeError, ValueError) as e:
            raise FinetuneError(f"{qat[0]}: {e}") from e
    extra = relative_paths({k: meta[k] for k in BUNDLED_EXTRA if k in meta}, roots)
    for old in assets.glob(f"*{FLOAT_SUFFIX}*"):  # an earlier student and its record
        old.unlink()
    student = assets / f"{meta['name']}{FLOAT_SUFFIX}"
    save_checkpoint(student, model, **extra)
    record = {
        "artifact": student.name,
        "sha256": sha256_file(student),
        "what": ("the float student the bundled int8 artifacts were exported from; footfall finetune starts from it" if qat is None else
                 "the float form of the weights the bundled int8 step was trained to by QAT (the student's BatchNorms folded into "
                 "its convs, each held as an affine identity); footfall finetune starts from it"),
        "model": {"name": meta["name"], "config": meta["config"], "params": count_params(model)},
        "window_frames": meta.get("window_frames"),
        "bundled_from": relative_paths({"checkpoint": str(checkpoint.resolve()), "sha256": sha, "epoch": meta.get("epoch"),
                                        "val_mae": meta.get("val_mae"),
                                        **({"qat_graph": str(qat[0].resolve()), "qat_sha256": sha256_file(qat[0])} if qat else {})},
                                       roots),
        # the artifacts it belongs with, and the checkpoint each card says it was exported from
        "int8_artifacts": {name: {"sha256": card["sha256"], "exported_from": card.get("model", {}).get("checkpoint")}
                           for name, card in cards.items()},
        "tools": tool_versions("torch"),
    }
    write_json(record_path(student), record)
    return [student, record_path(student)]


def _qat_graph(cards: dict[str, dict], sha: str, roots: list[str]) -> tuple[Path, torch.nn.Module] | None:
    """The int8 step the bundled cards were exported from, when QAT made it (``model.quantization``
    "qat", ``model.checkpoint`` its ``.pt2``): its path and step module; None for PTQ exports. Refused
    when the cards disagree, the graph is gone or it was quantized from another checkpoint."""
    qat = {card.get("model", {}).get("checkpoint") for card in cards.values() if card.get("model", {}).get("quantization") == "qat"}
    if not qat:
        return None
    if len(qat) > 1 or len(qat) != len({card.get("model", {}).get("checkpoint") for card in cards.values()}):
        raise FinetuneError(f"the bundled cards were exported from different graphs ({', '.join(sorted(map(str, qat)))})")
    recorded = Path(qat.pop())
    path = next((p for p in [recorded, *(Path(r) / recorded for r in roots)] if p.is_file()), None)
    if path is None:
        raise FinetuneError(f"{recorded}: the QAT graph the bundled int8 artifacts were exported from is not here; "
                            "its float weights are the student to bundle (run the bundle where it was trained)")
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  (registers the ops the saved graph calls)

    from train.quant.qat import load_quantized

    try:
        streamed, meta = load_quantized(path)
    except Exception as e:  # (ConfigError, FileNotFoundError, a torch load error): one line
        raise FinetuneError(f"{path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if meta.get("student_sha256") != sha:
        raise FinetuneError(f"{path} was quantized from another checkpoint (sha256 {str(meta.get('student_sha256'))[:12]}…, not {sha[:12]}…)")
    if not hasattr(streamed, "step_graph"):
        raise FinetuneError(f"{path}: not a streaming student's QAT step (only those are bundled with their float form)")
    return path, streamed.step_graph


def _main(argv: list[str]) -> int:
    """``python -m train.fit.finetune bundle CHECKPOINT``: bundle the float student (a recipe's last stage)."""
    if len(argv) != 2 or argv[0] != "bundle":
        print("usage: python -m train.fit.finetune bundle CHECKPOINT  (the float student the bundled int8 artifacts came from)",
              file=sys.stderr)
        return 2
    try:
        written = bundle_student(argv[1])
    except FinetuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
