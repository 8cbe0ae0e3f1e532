"""The named model registry and checkpoints that rebuild their model from its saved config.

A checkpoint is one ``torch.save``d dict (loadable with ``weights_only=True``)::

    {"format": "footfall.model", "version": 1, "name": "cnn14", "config": {...dataclass fields},
     "state_dict": {...}, "extra": {...}}
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edge.util import atomic_open
from train.models.base import ConfigError, DensityConfig, DensityModel

CHECKPOINT_FORMAT = "footfall.model"
CHECKPOINT_VERSION = 1
_RESERVED_META = ("format", "version", "name", "config")

_REGISTRY: dict[str, type[DensityModel]] = {}


class CheckpointError(RuntimeError):
    """A file that is not a footfall model checkpoint, or one that does not fit its model."""


def register_model(name: str):
    """Class decorator: register a :class:`DensityModel` subclass under ``name`` (sets ``cls.name``)."""

    def decorate(cls: type[DensityModel]) -> type[DensityModel]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} already registered by {_REGISTRY[name].__qualname__}")
        if not (isinstance(cls, type) and issubclass(cls, DensityModel)):
            raise TypeError(f"@register_model({name!r}) needs a DensityModel subclass, got {cls!r}")
        if cls.role not in ("teacher", "student"):
            raise TypeError(f"{cls.__qualname__}.role must be 'teacher' or 'student', got {cls.role!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_models(role: str | None = None) -> list[str]:
    """Registered names, sorted; ``role='teacher'`` or ``'student'`` to filter."""
    if role not in (None, "teacher", "student"):
        raise ValueError(f"role must be None, 'teacher' or 'student', got {role!r}")
    return sorted(n for n, cls in _REGISTRY.items() if role is None or cls.role == role)


def model_class(name: str) -> type[DensityModel]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; registered: {', '.join(list_models())}") from None


def make_config(name: str, **overrides: Any) -> DensityConfig:
    """The config dataclass of model ``name`` with ``overrides``; unknown keys raise ConfigError."""
    config_class = model_class(name).config_class
    valid = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} for model {name!r}; valid keys: {', '.join(valid)}")
    return config_class(**overrides)


def build_model(name: str, **overrides: Any) -> DensityModel:
    """A freshly initialised model ``name``; ``overrides`` replace fields of its config dataclass."""
    return model_class(name)(make_config(name, **overrides))


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel (``.module``) or torch.compile (``._orig_mod``)."""
    while not isinstance(model, DensityModel):
        inner = getattr(model, "module", getattr(model, "_orig_mod", None))
        if not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def _check_plain(value: Any, where: str) -> None:
    """Extras must survive ``torch.load(weights_only=True)``: plain Python containers and tensors."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint extra {where}: keys must be str or int, got {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"checkpoint extra {where} is a {type(value).__name__}; store plain Python (str, numbers, lists, dicts) "
        "or tensors, e.g. str(path) or array.tolist()"
    )


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (``edge.util.atomic_open``, fsynced), then
    fsync the folder so that the rename itself is durable: ``path`` is always whole, old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(obj, f)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_payload(path: str | os.PathLike, kind: str, fmt: str, version: int, error: type[Exception], map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load`` (weights only) the dict at ``path`` written as ``fmt`` version ``version``.

    A missing file raises FileNotFoundError; an unreadable file, another format or another
    version raises ``error`` with one line naming ``path`` and ``kind`` (what the file should be).
    """
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise error(f"{path}: not a loadable {kind} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{path}: not a {kind} (format {fmt!r} expected)")
    if payload.get("version") != version:
        raise error(f"{path}: {kind} version {payload.get('version')!r}; this code reads version {version}")
    return payload


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write ``model`` (its name, config and weights) and ``extra`` to ``path`` atomically.

    The file appears complete or not at all: written to a temporary file in the same folder,
    fsynced, then ``os.replace``d over ``path``. DDP / torch.compile wrappers are unwrapped.
    ``extra`` (epoch, metrics, optimizer state, ...) must be plain Python or tensors.
    """
    model = _unwrap(model)
    if not isinstance(model, DensityModel) or model.name not in _REGISTRY:
        raise TypeError(f"save_checkpoint needs a registered DensityModel, got {type(model).__qualname__}")
    clash = sorted(set(extra) & set(_RESERVED_META))
    if clash:
        raise ValueError(f"checkpoint extra keys {clash} are reserved ({', '.join(_RESERVED_META)})")
    _check_plain(extra, "extra")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "name": model.name,
        "config": dataclasses.asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[DensityModel, dict[str, Any]]:
    """Rebuild the model saved at ``path`` from its config and load its weights (strictly).

    Returns ``(model, meta)``: the model in eval mode, and meta = ``{"name", "config" (a dict),
    "version", **extra}``. A missing or unexpected weight, an unknown model name or config key
    raises; nothing is silently skipped.
    """
    path = Path(path)
    payload = load_payload(path, "footfall model checkpoint", CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, map_location)
    name, config = payload["name"], payload["config"]
    try:
        model = build_model(name, **config)
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from e
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit {name} built from the saved config: {e}") from e
    model.to(map_location).eval()
    meta = {"name": name, "config": config, "version": payload["version"], **payload["extra"]}
    return model, meta
