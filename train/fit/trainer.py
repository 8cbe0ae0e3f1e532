"""The training loop of every model here: one loop for a laptop CPU, one GPU, or many under ``torchrun``.

:func:`fit` trains what a :class:`Task` plugs in: a teacher (:func:`teacher_task`, step frames or
weak window counts) or a student (``train.distill.student.student_task``: the teacher's per-frame
probabilities and the true step frames, a distillation loss, augmentation, a weight average). Schedule, DDP, checkpoints and resume are the same for both.

Teacher recipe: the shift-tolerant BCE of ``train.fit.losses`` against step frames (or, with
``target: count``, the paper's weak supervision: MSE between a window's count and the sum of its step
probabilities), Adam 1e-3 (AdamW 1e-4 for attention models), batch 32,
reduce-on-plateau x0.9 after 5 epochs without validation-MAE improvement, early stopping on
validation MAE.

Scale-out: under ``torchrun`` (``WORLD_SIZE`` > 1) the same code runs DistributedDataParallel,
NCCL on GPUs and gloo on CPUs. The global batch is split evenly over ranks; with the
``DistributedSampler`` (``drop_last``) and a batch sampler that drops incomplete batches, global
batch ``b`` holds the same windows for every world size. BatchNorm statistics are synchronised
over the global batch (SyncBatchNorm on CUDA, :class:`GlooSyncBatchNorm` on CPUs), so a run on
N ranks computes what one process computes with the same global batch, up to float rounding
(with dropout > 0 the masks differ). Rank 0 writes every file; metrics are reduced over ranks.

Resume: ``out/last.pt`` holds everything the next step depends on: weights, optimizer,
scheduler, grad scaler, the weight average (students), each rank's RNG states (python, numpy,
torch, CUDA), epoch, step in epoch and the running train sums. It is written atomically at
every epoch end and every ``ckpt_every_steps`` steps; a resumed run skips the batches of the
interrupted epoch it has already seen (the epoch's order is a function of seed and epoch) and
continues bit-for-bit (with 0 loader workers, the CPU default; loader workers keep RNG streams
of their own, which a checkpoint does not hold).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler

from train.fit.config import ConfigError, TrainConfig, save_config
from train.fit.losses import onset_loss, soft_counts
from train.fit.dataset import WindowDataset
from edge.util import atomic_open
from train.models.registry import atomic_torch_save, load_payload

log = logging.getLogger("footfall.train")

STATE_FORMAT = "footfall.train_state"
STATE_VERSION = 1
LAST, BEST, METRICS, CONFIG = "last.pt", "best.pt", "metrics.csv", "config.yaml"
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# config keys a resumed run may change; every other key must match the checkpoint's
RESUME_MUTABLE = ("epochs", "max_steps", "progress", "tensorboard", "num_workers", "threads", "ckpt_every_steps", "early_stop_patience", "eval_batch_size", "out", "data", "device", "compile")
METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_mae", "val_loss", "val_mae", "val_pcc", "select_mae", "select_threshold",
                 "best_val_mae", "epoch_s", "windows_per_s")


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a ``torchrun`` job (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    bn_group: Any = None  # process group for BatchNorm statistics (kept apart from DDP's buckets)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(cfg: TrainConfig, local_rank: int = 0) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device: cuda requested but torch sees no CUDA device; use device=cpu or auto")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def resolve_precision(cfg: TrainConfig, device: torch.device) -> str:
    if cfg.precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if cfg.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision: fp16 needs CUDA; use fp32 or bf16 on the CPU")
    return cfg.precision


@contextlib.contextmanager
def distributed(device_type: str) -> Iterator[DistEnv]:
    """Join the ``torchrun`` process group from its env vars (or reuse an open one); tear down on exit.

    NCCL on CUDA, gloo on CPUs. Outside ``torchrun`` (no ``WORLD_SIZE`` or 1) yields a single-rank env.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield DistEnv()
        return
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    owner = not dist.is_initialized()
    if owner:
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    bn_group = dist.new_group(backend="gloo") if device_type == "cpu" else None
    try:
        yield DistEnv(rank, world, local_rank, local_world, bn_group)
    finally:
        if owner and dist.is_initialized():
            dist.destroy_process_group()


def all_gather_objects(env: DistEnv, obj: Any) -> list[Any]:
    if not env.enabled:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span every rank's batch, on CPU tensors (gloo).

    ``nn.SyncBatchNorm`` needs CUDA kernels; this is the same computation in plain ops: the
    per-channel sum and count, then the centred sum of squares, summed over ranks by a
    differentiable all-reduce (two passes: log-mel means near -8 make E[x^2] - E[x]^2 lossy).
    Its state dict is a plain BatchNorm's, so checkpoints load into the unconverted model.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, group: Any) -> None:
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        self.load_state_dict(bn.state_dict())
        self.group = group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        view = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // x.shape[1])
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), self.group)
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.view(view)
        var = _AllReduceSum.apply((centred * centred).sum(dims), self.group) / n  # biased, for normalising
        y = centred * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), m)  # unbiased, as F.batch_norm
        return y


def convert_gloo_sync_batchnorm(module: nn.Module, group: Any) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` by a :class:`GlooSyncBatchNorm` (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, (GlooSyncBatchNorm, nn.SyncBatchNorm)):
            setattr(module, name, GlooSyncBatchNorm(child, group).to(next(child.buffers()).device))
        else:
            convert_gloo_sync_batchnorm(child, group)
    return module


# --------------------------------------------------------------------------- one step


def train_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: str,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = onset_loss,
    grad_clip: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step; precision is ``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 with loss scaling).

    ``batch`` = (x (B, 1, 64, T), target (B,) or (B, T // 4)) on the model's device. Returns the
    detached loss and the expected window counts (B,) (sums of step probabilities), without
    synchronising the device.
    """
    x, target = batch
    with torch.autocast(x.device.type, dtype=AUTOCAST_DTYPES.get(precision, torch.float32), enabled=precision in AUTOCAST_DTYPES):
        logits = model(x)  # (B, T // 4)
    logits = logits.float()  # the loss in fp32 whatever the compute precision
    loss = loss_fn(logits, target)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), soft_counts(logits.detach())


# --------------------------------------------------------------------------- optimisation


def has_attention(model: nn.Module) -> bool:
    """Transformer-style models (any attention layer) get AdamW, as in the paper."""
    return any(isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer)) or "attention" in type(m).__name__.lower() for m in model.modules())


def make_optimizer(cfg: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    kind = cfg.optimizer if cfg.optimizer != "auto" else ("adamw" if has_attention(model) else "adam")
    fused = {"fused": True} if device.type == "cuda" else {}
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=1e-2 if cfg.lr is None else cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay or 0.0)
    if kind == "adam":
        return torch.optim.Adam(
            model.parameters(),
            lr=1e-3 if cfg.lr is None else cfg.lr,
            eps=1e-8 if cfg.adam_eps is None else cfg.adam_eps,
            weight_decay=0.0 if cfg.weight_decay is None else cfg.weight_decay,
            **fused,
        )
    return torch.optim.AdamW(
        model.parameters(),
        lr=1e-4 if cfg.lr is None else cfg.lr,
        betas=(0.9, 0.999),
        eps=1e-7 if cfg.adam_eps is None else cfg.adam_eps,
        weight_decay=0.01 if cfg.weight_decay is None else cfg.weight_decay,
        **fused,
    )


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    # torch reduces once ``num_bad_epochs > patience``: patience - 1 gives "after N bad epochs";
    # threshold 0: "improvement" means a lower val MAE, the same test as early stopping's
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience - 1, threshold=0.0, min_lr=cfg.min_lr
    )


# --------------------------------------------------------------------------- data


class ResumableBatchSampler(Sampler[list[int]]):
    """Whole batches of a (distributed) sampler; an epoch may start at batch ``start``.

    The epoch's order is fixed by ``sampler.set_epoch``: skipping ``start`` batches lands on exactly
    the batch an interrupted run would have drawn next, without loading the skipped ones.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.start = start

    @property
    def batches_per_epoch(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(BatchSampler(self.sampler, self.batch_size, drop_last=True)), self.start, None)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)


def auto_workers(cfg: TrainConfig, device: torch.device, env: DistEnv) -> int:
    if cfg.num_workers >= 0:
        return cfg.num_workers
    if device.type == "cpu":
        return 0  # features are in memory; workers would only compete with the model for cores
    return max(1, min(4, (os.cpu_count() or 1) // env.local_world_size - 1))


def make_train_loader(ds: WindowDataset, cfg: TrainConfig, env: DistEnv, device: torch.device) -> tuple[DataLoader, ResumableBatchSampler]:
    per_rank = cfg.batch_size // env.world_size
    sampler = DistributedSampler(ds, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed, drop_last=True)
    batches = ResumableBatchSampler(sampler, per_rank)
    workers = auto_workers(cfg, device, env)
    loader = DataLoader(
        ds,
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        # the loader draws its base seed from this generator, not from the global RNG, so creating
        # an iterator (which a resumed run does at a different point) leaves the model's RNG alone
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return loader, batches


# --------------------------------------------------------------------------- state


def capture_rng(device: torch.device) -> dict[str, Any]:
    """RNG states of python, numpy, torch (and this process's CUDA device), weights_only-loadable."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_state(path: Path) -> dict[str, Any]:
    """The training state at ``path`` (``last.pt``), or a one-line ConfigError saying why it cannot be resumed."""
    return load_payload(path, "footfall training state", STATE_FORMAT, STATE_VERSION, ConfigError)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING  # a required field: never equal to a value


def check_resume_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = cfg.to_dict()
    # a key the checkpoint lacks is a field added since it was written: it ran with that field's default
    was = {f.name: saved[f.name] if f.name in saved else _field_default(f) for f in dataclasses.fields(cfg)}
    diff = sorted(k for k in current if k not in RESUME_MUTABLE and was[k] != current[k])
    if diff:
        what = ", ".join(f"{k}: {was[k]!r} -> {current[k]!r}" for k in diff)
        raise ConfigError(f"{path}: --resume with a different config ({what}); only {', '.join(RESUME_MUTABLE)} may change")


@dataclass
class Progress:
    """The loop's position and the early-stopping bookkeeping (all saved in ``last.pt``)."""

    epoch: int = 0  # the epoch in progress (or next to start)
    step_in_epoch: int = 0  # optimizer steps of ``epoch`` already taken
    global_step: int = 0
    best_val_mae: float = math.inf  # the best of what chooses the weights: val MAE, or select_mae with select_on
    best_epoch: int = -1
    bad_epochs: int = 0
    finished: bool = False
    stop_reason: str = ""
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainResult:
    out: Path
    best_path: Path
    last_path: Path
    best_val_mae: float
    best_epoch: int
    global_step: int
    stop_reason: str
    history: list[dict[str, float]]


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    """Rewrite the whole CSV from the history (so a resumed run never duplicates rows); the
    ``select_*`` columns only when the run chooses on ``select_on``."""
    chooses = any("select_mae" in row for row in history)
    fields = [f for f in METRIC_FIELDS if chooses or not f.startswith("select_")]
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class _TensorBoard:
    def __init__(self, enabled: bool, logdir: Path) -> None:
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the CSV is the record
                return
            self.writer = SummaryWriter(str(logdir))

    def log(self, row: dict[str, float]) -> None:
        if self.writer is None:
            return
        for k, v in row.items():
            if k not in ("epoch", "step") and isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(k, v, row["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return RichProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        disable=not enabled,
        transient=True,
    )


# --------------------------------------------------------------------------- what a run plugs in


def window_counts(target: torch.Tensor) -> torch.Tensor:
    """The window counts (B,) of a teacher target: the weak count (B,) or density frames (B, T') summed."""
    return target if target.dim() == 1 else target.sum(dim=-1)


class WeightEMA:
    """Exponential moving average of a model's weights (and float buffers: BatchNorm statistics).

    ``update`` after every optimizer step; the decay warms up as ``min(decay, (1 + n) / (10 + n))``
    so the first steps do not drag the random initialisation along. On the small, noisy schedules
    of a CPU student the averaged weights validate steadier than any single epoch's (see the cpu
    preset). ``model`` is a full copy of the trained model, so it can be evaluated and
    checkpointed as one.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        import copy

        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        live = model.state_dict()
        for name, avg in self.model.state_dict().items():
            if avg.is_floating_point():
                avg.lerp_(live[name].detach(), 1.0 - d)
            else:
                avg.copy_(live[name])

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["model"])


@dataclass
class Task:
    """What one kind of run plugs into :func:`fit`: its data, its loss, what its checkpoints say.

    A teacher (:func:`teacher_task`) learns step frames (or weak counts) with :func:`~train.fit.losses.onset_loss`; a student
    (``train.distill.student.student_task``) learns the teacher's probabilities and the true step frames with ``train.distill.student.PackedLoss``,
    with its batches augmented and its weights averaged. The rest (schedule, DDP, validation on
    whole windows, checkpoints, resume) is the loop's and the same for both.
    """

    train_ds: Any  # a map-style dataset: ds[i] -> (x (1, 64, W), target), target as ``loss_fn`` reads it
    val_ds: WindowDataset  # validation windows with their true counts (model selection)
    summary: str  # what is trained on what: the start of the run's first log line
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = onset_loss  # (logits (B, T'), target batch) -> loss
    true_counts: Callable[[torch.Tensor], torch.Tensor] | None = window_counts  # target batch -> counts (B,) for the train MAE; None: none
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # input batch on the device -> augmented (draws from checkpointed RNG)
    ema_decay: float = 0.0  # > 0: validate and keep a WeightEMA of the weights
    init: Callable[[nn.Module], None] | None = None  # a fresh run only: load its starting weights into the model
    windows: dict[str, int] = field(default_factory=dict)  # config key -> input frames the model must take
    best_extra: dict[str, Any] = field(default_factory=dict)  # plain metadata saved in best.pt beside epoch, step and metrics


def _load_datasets(cfg: TrainConfig) -> tuple[WindowDataset, WindowDataset]:
    from edge.audio import AudioError
    from train.data.features import concat_windows, extra_windows, fold_windows
    from train.data.recordings import DatasetError, load_dataset

    try:
        train_ws = fold_windows(cfg.data, cfg.fold, cfg.window_frames, cfg.hop_frames, split="train", n_folds=cfg.n_folds)
        if cfg.extra_roots:
            main_runners = {r.runner_id for r in load_dataset(cfg.data, n_folds=cfg.n_folds)}
            train_ws = concat_windows([train_ws, *extra_windows(cfg.extra_roots, main_runners, cfg.window_frames, cfg.hop_frames)])
        val_ws = fold_windows(cfg.data, cfg.fold, cfg.window_frames, None, split="val", n_folds=cfg.n_folds)
        train_ds, val_ds = WindowDataset(train_ws, cfg.target), WindowDataset(val_ws, "count")
    except (DatasetError, AudioError):
        raise  # already one line naming the file
    except ValueError as e:  # a fold without runs of a group, a window the data cannot give, ...
        raise ConfigError(f"{cfg.data}: {e}") from e
    if len(val_ds) == 0:
        raise ConfigError(f"fold {cfg.fold}: no validation windows (group {(cfg.fold + 1) % cfg.n_folds} has no labeled runs of {cfg.window_s:g} s)")
    return train_ds, val_ds


def teacher_task(cfg: TrainConfig) -> Task:
    """A teacher: the fold's windows with their step frames (``target: frames``; shift-tolerant BCE)
    or their weak counts (``target: count``; through the sum of the activation)."""
    train_ds, val_ds = _load_datasets(cfg)
    summary = f"{cfg.model} on fold {cfg.fold}: {len(train_ds)} train / {len(val_ds)} val windows of {cfg.window_s:g} s"
    return Task(train_ds, val_ds, summary, windows={"window_s": cfg.window_frames}, best_extra={"fold": cfg.fold, "data": cfg.data, "train_config": cfg.to_dict()})


# --------------------------------------------------------------------------- the loop


def _build_model(cfg: TrainConfig, device: torch.device, windows: dict[str, int]) -> nn.Module:
    from train.models import ConfigError as ModelConfigError, build_model

    try:
        model = build_model(cfg.model, **cfg.args_for())
    except ModelConfigError as e:  # unknown name (lists the registered ones), key or value
        raise ConfigError(f"model {cfg.model}: {e}") from e
    for key, frames in windows.items():
        if frames % model.time_multiple:
            raise ConfigError(f"{key}: {getattr(cfg, key)} s = {frames} frames, not a multiple of {cfg.model}'s time_multiple {model.time_multiple}")
    return model.to(device)


def _evaluate_windows(model: nn.Module, ds: WindowDataset, env: DistEnv, device: torch.device, precision: str, batch_size: int) -> dict[str, float]:
    """Val loss/MAE/PCC on all windows: each rank predicts every world_size-th window, then gather."""
    from train.evaluate.predict import predict_counts
    from train.evaluate.metrics import mae, pcc

    idx = np.arange(env.rank, len(ds), env.world_size)
    pred = predict_counts(model, ds, idx, device=device, precision=precision, batch_size=batch_size)
    parts = all_gather_objects(env, (idx, pred))
    order = np.concatenate([p[0] for p in parts])
    pred_all = np.empty(len(ds), np.float64)
    pred_all[order] = np.concatenate([p[1] for p in parts])
    true = ds.counts.astype(np.float64)
    return {"val_loss": float(np.mean((pred_all - true) ** 2)), "val_mae": mae(pred_all, true), "val_pcc": pcc(pred_all, true)}


class SelectionSet:
    """The runs of ``select_on`` (:class:`~train.evaluate.realeval.ChoiceRuns`, loaded once): each
    epoch the kept model counts them with the event counter at every threshold it may ship with, and
    the lowest 5-s MAE (the model at its best threshold, as the export will choose it) picks ``best.pt``.
    Every rank scores every run (seconds), so all agree."""

    def __init__(self, datasets: str, window_frames: int) -> None:
        from train.data.recordings import DatasetError
        from train.evaluate.realeval import ChoiceRuns

        try:
            self.runs = ChoiceRuns.load(datasets)
        except (DatasetError, ValueError) as e:
            raise ConfigError(f"select_on: {e}") from e
        self.window_frames = window_frames

    def mae(self, model: nn.Module, device: torch.device, precision: str, batch_size: int) -> tuple[float, float]:
        """(the lowest 5-s MAE over the thresholds, that threshold); the model runs on ``device``."""
        from train.evaluate.realeval import best_threshold

        maes = self.runs.maes(model, self.window_frames, device=device, precision=precision, batch_size=batch_size)
        thr = best_threshold(maes)
        return maes[thr], thr


def _sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Give every rank rank 0's buffers (BatchNorm running stats) before evaluating or saving."""
    if env.enabled:
        for b in model.buffers():
            dist.broadcast(b, src=0)


@dataclass
class Run:
    """A run about to start or resume: this process's place in the job, device, precision and the saved state (None: fresh)."""

    env: DistEnv
    device: torch.device
    precision: str
    state: dict[str, Any] | None


@contextlib.contextmanager
def open_run(cfg: TrainConfig, resume: bool) -> Iterator[Run]:
    """Join the process group (under ``torchrun``), resolve device and precision, read ``out/last.pt``.

    An existing ``last.pt`` needs ``resume`` and a config that differs only in
    :data:`RESUME_MUTABLE` keys; anything unusable is a one-line ConfigError before any data loads.
    """
    last_path = Path(cfg.out) / LAST
    device_type = resolve_device(cfg).type  # validated before any process group is joined
    with distributed(device_type) as env:
        device = resolve_device(cfg, env.local_rank)
        precision = resolve_precision(cfg, device)
        if cfg.batch_size % env.world_size:
            raise ConfigError(f"batch_size: {cfg.batch_size} does not split evenly over {env.world_size} ranks")
        state = None
        if last_path.is_file():
            if not resume:
                raise ConfigError(f"{last_path} exists: pass --resume to continue that run, or choose another --out")
            state = load_state(last_path)
            check_resume_config(state["config"], cfg, last_path)
        elif resume and env.is_main:
            log.info("no %s yet: starting a fresh run", last_path)
        yield Run(env, device, precision, state)


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train the teacher ``cfg.model`` on fold ``cfg.fold`` of ``cfg.data``; files go to ``cfg.out``.

    Under ``torchrun`` every rank calls this; rank 0 writes. Raises ConfigError / DatasetError
    (one-line messages) for unusable input before any training.
    """
    if not cfg.data:
        raise ConfigError("data: no dataset folder given (--data DIR)")
    if not Path(cfg.data).is_dir():
        raise ConfigError(f"data: {cfg.data}: no such dataset folder")
    for extra in cfg.extra_roots:
        if not Path(extra).is_dir():
            raise ConfigError(f"extra_train: {extra}: no such dataset folder")
    cfg = cfg.replace(data=str(Path(cfg.data).resolve()), out=str(Path(cfg.out).resolve()),
                      extra_train=",".join(str(Path(e).resolve()) for e in cfg.extra_roots))
    with open_run(cfg, resume) as run:
        return fit(cfg, run, lambda: teacher_task(cfg))


def fit(cfg: TrainConfig, run: Run, make_task: Callable[[], Task]) -> TrainResult:
    """The training loop of every model here: build, resume, train, validate, checkpoint.

    ``make_task`` builds the data, loss and metadata (called after seeding, so that anything it
    draws is reproducible). Files: ``config.yaml``, ``last.pt`` (at every epoch end and every
    ``ckpt_every_steps`` steps), ``best.pt`` (the best validation MAE; the weight average when
    the task keeps one), ``metrics.csv``.
    """
    return _Loop(cfg, run, make_task).run()


class _Loop:
    """One run of :func:`fit`: the model, optimizer, schedule, data and position it carries."""

    def __init__(self, cfg: TrainConfig, run: Run, make_task: Callable[[], Task]) -> None:
        env, device, state = run.env, run.device, run.state
        self.cfg, self.env, self.device, self.precision = cfg, env, device, run.precision
        self.out = Path(cfg.out)
        self.last_path, self.best_path = self.out / LAST, self.out / BEST
        if device.type == "cpu":
            torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // env.local_world_size))
        else:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        seed_everything(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.task = task = make_task()
        if len(task.train_ds) < cfg.batch_size:
            raise ConfigError(f"fold {cfg.fold}: {len(task.train_ds)} training windows, fewer than one batch of {cfg.batch_size}")
        model = _build_model(cfg, device, task.windows)
        if env.enabled and cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if device.type == "cuda" else convert_gloo_sync_batchnorm(model, env.bn_group)
        self.raw_model = raw_model = model
        if state is None and task.init is not None:
            task.init(raw_model)
        self.ema = WeightEMA(raw_model, task.ema_decay) if task.ema_decay else None
        self.optimizer = make_optimizer(cfg, raw_model, device)
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler(device.type, enabled=run.precision == "fp16")
        self.loader, self.batches = make_train_loader(task.train_ds, cfg, env, device)
        self.select = SelectionSet(cfg.select_on, task.windows.get("window_s", cfg.window_frames)) if cfg.select_on else None
        seed_everything(cfg.seed + 1 + env.rank)  # per-rank streams for dropout and friends

        self.prog = Progress()
        self.running = [0.0, 0.0, 0]  # this rank's loss sum, abs-error sum, windows in the current epoch
        if state is not None:
            self._restore(state)
        self.model = raw_model
        if env.enabled:
            # synchronised BatchNorm keeps the running statistics equal on every rank: no broadcast needed
            self.model = nn.parallel.DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None,
                                                             broadcast_buffers=not cfg.sync_bn)
        if cfg.compile:
            self.model = torch.compile(self.model)

    def _restore(self, state: dict[str, Any]) -> None:
        cfg, env, prog = self.cfg, self.env, Progress(**state["progress"])
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if prog.finished and not prog.stop_reason.startswith("early stop") and prog.epoch < cfg.epochs and (not cfg.max_steps or prog.global_step < cfg.max_steps):
            prog.finished, prog.stop_reason = False, ""  # resumed with a longer schedule
        elif (prog.finished and prog.stop_reason.startswith("early stop") and prog.epoch < cfg.epochs
              and (not cfg.early_stop_patience or prog.bad_epochs < cfg.early_stop_patience)):
            prog.finished, prog.stop_reason = False, ""  # resumed with more patience than it stopped on
        ranks = state["ranks"]
        if len(ranks) == env.world_size:
            restore_rng(ranks[env.rank]["rng"], self.device)
            self.running = list(ranks[env.rank]["running"])
        else:  # the data order survives a new world size (it is per global batch), RNG streams cannot
            if env.is_main:
                log.warning("resuming %d-rank state on %d ranks: RNG streams restart, the result is not bit-exact", len(ranks), env.world_size)
            seed_everything(cfg.seed + 1 + env.rank + prog.global_step)
            self.running = [0.0, 0.0, 0] if prog.step_in_epoch == 0 else [float("nan"), float("nan"), 1]
        self.prog = prog
        if env.is_main:
            log.info("resuming %s at epoch %d, step %d/%d", self.out, prog.epoch, prog.step_in_epoch, self.batches.batches_per_epoch)

    def save_last(self) -> None:
        """Every rank's RNG and running sums, rank 0's weights, optimizer, schedule, position: ``last.pt``, atomically."""
        ranks = all_gather_objects(self.env, {"rng": capture_rng(self.device), "running": list(self.running)})
        if self.env.is_main:
            atomic_torch_save(
                {
                    "format": STATE_FORMAT,
                    "version": STATE_VERSION,
                    "config": self.cfg.to_dict(),
                    "model": {k: v.detach().cpu() for k, v in self.raw_model.state_dict().items()},
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "ema": self.ema.state_dict() if self.ema is not None else None,
                    "progress": dataclasses.asdict(self.prog),
                    "world_size": self.env.world_size,
                    "ranks": ranks,
                },
                self.last_path,
            )

    def run(self) -> TrainResult:
        cfg, env, prog, out = self.cfg, self.env, self.prog, self.out
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, out / CONFIG)
            log.info(
                "%s, %d steps/epoch, global batch %d on %d rank(s), %s %s, %.2fM parameters",
                self.task.summary, self.batches.batches_per_epoch, cfg.batch_size, env.world_size, self.device, self.precision,
                sum(p.numel() for p in self.raw_model.parameters()) / 1e6,
            )
        self.tb = _TensorBoard(cfg.tensorboard and env.is_main, out / "tb")
        self.bar = _progress_bar(cfg.progress and env.is_main)
        try:
            with self.bar:
                while not prog.finished and prog.epoch < cfg.epochs:
                    self._epoch()
                if not prog.finished:
                    prog.finished, prog.stop_reason = True, prog.stop_reason or f"{cfg.epochs} epochs"
                    self.save_last()
        finally:
            self.tb.close()
        barrier(env)
        if env.is_main:
            write_metrics_csv(out / METRICS, prog.history)
            log.info("done (%s): best %s %.4f at epoch %d -> %s", prog.stop_reason,
                     "choice runs MAE" if cfg.select_on else "val MAE", prog.best_val_mae, prog.best_epoch, self.best_path)
        return TrainResult(out, self.best_path, self.last_path, prog.best_val_mae, prog.best_epoch, prog.global_step, prog.stop_reason, prog.history)

    def _steps(self) -> tuple[float, bool]:
        """The steps of the current epoch (or the rest of an interrupted one); -> seconds, whether max_steps was hit."""
        cfg, env, device, prog, task, running = self.cfg, self.env, self.device, self.prog, self.task, self.running
        steps = self.batches.batches_per_epoch
        self.batches.set_epoch(prog.epoch, start=prog.step_in_epoch)
        bar = self.bar
        bar_task = bar.add_task(f"epoch {prog.epoch}", total=steps, completed=prog.step_in_epoch, stats="")
        self.model.train()
        t0, seen = time.perf_counter(), 0
        # device-side accumulators: no host sync per step
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        err_sum = torch.zeros((), dtype=torch.float64, device=device)

        def flush() -> None:
            nonlocal seen
            running[0] += loss_sum.item()
            running[1] += err_sum.item()
            running[2] += seen
            loss_sum.zero_(), err_sum.zero_()
            seen = 0

        hit_max_steps = False
        for x, y in self.loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if task.augment is not None:
                x = task.augment(x)
            loss, pred = train_step(self.model, (x, y), self.optimizer, self.scaler, self.precision, loss_fn=task.loss_fn, grad_clip=cfg.grad_clip)
            if self.ema is not None:
                self.ema.update(self.raw_model)
            loss_sum += loss.double() * len(y)
            if task.true_counts is not None:
                err_sum += (pred - task.true_counts(y)).abs().sum().double()
            seen += len(y)
            prog.step_in_epoch += 1
            prog.global_step += 1
            if env.is_main and (device.type == "cpu" or prog.step_in_epoch % 10 == 0 or prog.step_in_epoch == steps):  # .item() syncs a GPU
                n = running[2] + seen
                mae = f"  MAE {(running[1] + err_sum.item()) / n:.3f}" if task.true_counts is not None else ""
                bar.update(bar_task, completed=prog.step_in_epoch, stats=f"loss {(running[0] + loss_sum.item()) / n:.4f}{mae}")
            else:
                bar.update(bar_task, completed=prog.step_in_epoch)
            hit_max_steps = bool(cfg.max_steps) and prog.global_step >= cfg.max_steps
            if cfg.ckpt_every_steps and prog.global_step % cfg.ckpt_every_steps == 0 and prog.step_in_epoch < steps and not hit_max_steps:
                flush()
                self.save_last()
            if hit_max_steps:
                break
        flush()
        bar.remove_task(bar_task)
        return time.perf_counter() - t0, hit_max_steps

    def _epoch(self) -> None:
        """One epoch: steps, validation, schedule, early stopping, ``best.pt``, ``metrics.csv``, ``last.pt``."""
        from train.models import save_checkpoint

        cfg, env, device, prog = self.cfg, self.env, self.device, self.prog
        epoch = prog.epoch
        epoch_s, hit_max_steps = self._steps()

        # train metrics over all ranks, validation over all windows
        totals = torch.tensor(self.running, dtype=torch.float64, device=device)  # NCCL reduces GPU tensors only
        if env.enabled:
            dist.all_reduce(totals)
        totals = totals.cpu()
        train_row = {"train_loss": (totals[0] / totals[2]).item()}
        if self.task.true_counts is not None:
            train_row["train_mae"] = (totals[1] / totals[2]).item()
        _sync_buffers(self.raw_model, env)
        if self.ema is not None:
            _sync_buffers(self.ema.model, env)
        scored = self.ema.model if self.ema is not None else self.raw_model  # what is validated is what is kept
        val = _evaluate_windows(scored, self.task.val_ds, env, device, self.precision, cfg.eval_batch_size)
        if self.select is not None:
            val["select_mae"], val["select_threshold"] = self.select.mae(scored, device, self.precision, cfg.eval_batch_size)
        chosen = val.get("select_mae", val["val_mae"])  # what chooses the kept weights (TrainConfig.select_on)
        self.scheduler.step(chosen)
        improved = chosen < prog.best_val_mae
        if improved:
            prog.best_val_mae, prog.best_epoch, prog.bad_epochs = chosen, epoch, 0
        else:
            prog.bad_epochs += 1
        row = {
            "epoch": epoch,
            "step": prog.global_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            **train_row,
            **val,
            "best_val_mae": prog.best_val_mae,
            "epoch_s": epoch_s,
            "windows_per_s": float(totals[2].item()) / epoch_s if epoch_s > 0 else math.nan,
        }
        prog.history.append(row)
        prog.epoch, prog.step_in_epoch = epoch + 1, 0
        self.running[:] = [0.0, 0.0, 0]
        if hit_max_steps:
            prog.finished, prog.stop_reason = True, f"max_steps {cfg.max_steps}"
        elif cfg.early_stop_patience and prog.bad_epochs >= cfg.early_stop_patience:
            prog.finished, prog.stop_reason = True, f"early stop: no val-MAE improvement for {prog.bad_epochs} epochs"
        if env.is_main:
            if improved:
                save_checkpoint(self.best_path, scored, epoch=epoch, step=prog.global_step, val_mae=val["val_mae"], val_pcc=_finite(val["val_pcc"]),
                                **self.task.best_extra)
            write_metrics_csv(self.out / METRICS, prog.history)
            self.tb.log(row)
            train_mae = f" MAE {train_row['train_mae']:.3f}" if "train_mae" in train_row else ""
            select = (f" | choice runs MAE {val['select_mae']:.3f} (threshold {val['select_threshold']:g})"
                      if "select_mae" in val else "")
            log.info(
                "epoch %d  train loss %.4f%s | val loss %.4f MAE %.3f PCC %.3f%s%s | lr %.2e | %.1f s",
                epoch, train_row["train_loss"], train_mae, val["val_loss"], val["val_mae"], val["val_pcc"], select, " *" if improved else "",
                row["lr"], epoch_s,
            )
        self.save_last()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
