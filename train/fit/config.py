"""Training configuration: one typed dataclass, read from YAML, overridden from the CLI.

Layers, later wins: the dataclass defaults (the seed paper's recipe), a preset
(``train/presets/<name>.yaml``: ``smoke``, ``cpu``, ``gpu``), a user YAML file, then
``key=value`` overrides (``model_args.cnn14.width=0.5`` reaches into nested mappings). Unknown
keys fail, values are coerced to the field's type (YAML 1.1 reads ``1e-3`` as a string), and
``__post_init__`` checks ranges, so a bad config stops before any data is touched.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from edge.contract import EVAL_WINDOW_S, FRAMES_PER_SECOND
from edge.util import atomic_write

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("auto", "adam", "adamw", "sgd")
TARGETS = ("frames", "count")


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the key and the problem."""


def split_list(value: str) -> list[str]:
    """A comma-separated config value as its non-empty items, in order."""
    return [p.strip() for p in value.split(",") if p.strip()]


@dataclass
class TrainConfig:
    """Everything a teacher training run depends on; saved beside its checkpoints."""

    # what to train, on what
    model: str = "cnn14"
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # {model name: build_model overrides}
    data: str = ""  # dataset folder (contract 5)
    fold: int = 0  # test group k; val = (k + 1) % n_folds, train = the rest
    n_folds: int = 5
    out: str = "runs/train"  # run folder: config.yaml, last.pt, best.pt, metrics.csv
    extra_train: str = ""  # comma-separated dataset folders whose labeled runs join every fold's training side
    # labeled dataset folders (comma-separated) that choose the kept weights: "" chooses by the
    # validation windows' MAE; a real-sound validation set (footfall data realset --split val) and
    # held-out step-free runs choose by how the event counter counts them (5-s MAE at the best
    # counter threshold), which the schedule and early stopping follow too
    select_on: str = ""

    # windows and targets
    window_s: float = float(EVAL_WINDOW_S)  # the paper's 5-s windows, (1, 64, 500)
    train_hop_s: float | None = None  # None: non-overlapping training windows, as the paper
    target: str = "frames"  # "frames": steps per output frame (shift-tolerant BCE); "count": the weak window count

    # optimisation (paper: Adam 1e-3 for CNNs, AdamW 1e-4 for transformers, batch 32)
    epochs: int = 100
    max_steps: int = 0  # stop after this many optimizer steps in total (0: no cap)
    batch_size: int = 32  # global: split evenly over DDP ranks
    optimizer: str = "auto"  # auto: adamw for models with attention, adam otherwise; sgd: momentum 0.9
    lr: float | None = None  # None: 1e-3 (adam) / 1e-4 (adamw) / 1e-2 (sgd)
    weight_decay: float | None = None  # None: 0 (adam) / 0.01 (adamw)
    adam_eps: float | None = None  # None: 1e-8 (adam) / 1e-7 (adamw, as the paper)
    grad_clip: float = 0.0  # max grad norm; 0: off
    plateau_factor: float = 0.9  # lr x factor ...
    plateau_patience: int = 5  # ... after this many epochs without val-MAE improvement
    min_lr: float = 1e-6
    early_stop_patience: int = 20  # stop after this many epochs without val-MAE improvement; 0: off

    # runtime
    device: str = "auto"  # auto: cuda when present
    precision: str = "auto"  # auto: bf16 (fp16 without bf16 support) on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP (CUDA only)
    num_workers: int = -1  # data-loader workers; -1: 0 on CPU (features are in memory), 4 per GPU
    threads: int = 0  # torch intra-op threads; 0: cores / local ranks
    seed: int = 0
    ckpt_every_steps: int = 0  # also checkpoint every N steps inside an epoch (0: epoch ends only)
    eval_batch_size: int = 64
    progress: bool = True  # rich progress bar (rank 0)
    tensorboard: bool = True  # also log to out/tb when tensorboard is installed

    def __post_init__(self) -> None:
        _coerce_fields(self)
        if not self.model:
            raise ConfigError("model: empty; pass a registered model name")
        for name, args in self.model_args.items():
            if not isinstance(args, dict):
                raise ConfigError(f"model_args.{name}: expected a mapping of build_model overrides, got {args!r}")
        if self.n_folds < 2:
            raise ConfigError(f"n_folds: {self.n_folds}; need at least 2")
        if not 0 <= self.fold < self.n_folds:
            raise ConfigError(f"fold: {self.fold} out of range; expected 0..{self.n_folds - 1}")
        if self.window_frames <= 0 or abs(self.window_frames - self.window_s * FRAMES_PER_SECOND) > 1e-6:
            raise ConfigError(f"window_s: {self.window_s} is not a positive whole number of 10-ms frames")
        if self.train_hop_s is not None and (self.hop_frames <= 0 or abs(self.hop_frames - self.train_hop_s * FRAMES_PER_SECOND) > 1e-6):
            raise ConfigError(f"train_hop_s: {self.train_hop_s} is not a positive whole number of 10-ms frames")
        _check_choice("target", self.target, TARGETS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        if self.precision == "fp16" and self.device == "cpu":
            raise ConfigError("precision: fp16 needs CUDA; use fp32 or bf16 on the CPU")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: {getattr(self, name)}; must be >= 1")
        for name in ("max_steps", "early_stop_patience", "ckpt_every_steps", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: {getattr(self, name)}; must be >= 0")
        if self.num_workers < -1:
            raise ConfigError(f"num_workers: {self.num_workers}; must be >= 0, or -1 for automatic")
        if self.plateau_patience < 1:
            raise ConfigError(f"plateau_patience: {self.plateau_patience}; must be >= 1")
        if not 0 < self.plateau_factor < 1:
            raise ConfigError(f"plateau_factor: {self.plateau_factor}; must be in (0, 1)")
        for name in ("lr", "weight_decay", "adam_eps", "min_lr", "grad_clip"):
            v = getattr(self, name)
            if v is not None and (v < 0 or (name in ("lr", "adam_eps") and v == 0)):
                raise ConfigError(f"{name}: {v}; must be {'> 0' if name in ('lr', 'adam_eps') else '>= 0'}")

    # derived
    @property
    def window_frames(self) -> int:
        return round(self.window_s * FRAMES_PER_SECOND)

    @property
    def extra_roots(self) -> list[str]:
        """The ``extra_train`` dataset folders, in order."""
        return split_list(self.extra_train)

    @property
    def hop_frames(self) -> int:
        return self.window_frames if self.train_hop_s is None else round(self.train_hop_s * FRAMES_PER_SECOND)

    def args_for(self, model: str | None = None) -> dict[str, Any]:
        """The build_model overrides of ``model`` (default: this config's model)."""
        return dict(self.model_args.get(model or self.model, {}))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r}; expected one of {', '.join(choices)}")


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, dict, ``X | None``) or ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    bad = ConfigError(f"{name}: {value!r} is not a valid {getattr(tp, '__name__', tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    return value


def _coerce_fields(cfg: TrainConfig) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, _coerce(f.name, getattr(cfg, f.name), hints[f.name]))


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}")
    return data


def preset(name: str) -> dict[str, Any]:
    """The raw values of a named preset (``smoke``, ``cpu``, ``gpu``)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"preset {name!r}: unknown; expected one of {', '.join(list_presets())}")
    return read_yaml(path)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as a YAML scalar)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. epochs=10 or model_args.cnn14.width=0.5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return [k.strip() for k in key.split(".")], value


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge, everything else replaces."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(values: dict[str, Any], overrides: Mapping[str, Any] | list[str]) -> dict[str, Any]:
    """Apply ``{"a.b": v}`` or ``["a.b=v", ...]`` to a raw config mapping."""
    items = [parse_override(o) for o in overrides] if isinstance(overrides, list) else [(k.split("."), v) for k, v in overrides.items()]
    out = dict(values)
    for keys, value in items:
        nested: Any = value
        for k in reversed(keys[1:]):
            nested = {k: nested}
        out = merge(out, {keys[0]: nested}) if isinstance(nested, dict) else {**out, keys[0]: nested}
    return out


def load_config(
    preset_name: str | None = None,
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | list[str] | None = None,
) -> TrainConfig:
    """Defaults <- preset <- YAML file <- overrides -> a validated :class:`TrainConfig`."""
    values: dict[str, Any] = {}
    where = "config"
    if preset_name:
        values = merge(values, preset(preset_name))
        where = f"preset {preset_name}"
    if path is not None:
        values = merge(values, read_yaml(path))
        where = str(path)
    if overrides:
        values = apply_overrides(values, overrides)
        where = f"{where} + overrides" if (preset_name or path) else "overrides"
    return TrainConfig.from_dict(values, where=where)


def save_config(cfg: TrainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomic)."""
    return atomic_write(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
