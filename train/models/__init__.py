"""footfall's model registry (contract 3): log-mel (B, 1, 64, T) -> step density (B, T // 4).

    from train.models import build_model, list_models, save_checkpoint, load_checkpoint
    model = build_model("mobilenetv2", width=0.5)      # overrides replace config fields
    save_checkpoint("ckpt.pt", model, epoch=3)         # name + config dataclass + weights, atomic
    model, meta = load_checkpoint("ckpt.pt")                # rebuilt from the saved config

Teachers: cnn14, cnn10, wvlm_cnn14, crnn, fnn. Students: mobilenetv2, cnn6 (windowed) and streamtcn
(streaming: its state carried between packets, train/models/streaming.py; the bundled one).
``python -m train.models`` prints parameters and MACs per second of audio of each.
"""

from train.models.base import DENSITY_STRIDE, ConfigError, DensityConfig, DensityModel, HeadConfig
from train.models.registry import (
    CheckpointError,
    build_model,
    list_models,
    load_checkpoint,
    make_config,
    model_class,
    register_model,
    save_checkpoint,
)

# importing the model modules registers them
from train.models import cnn, crnn, fnn, mobilenetv2, streaming  # noqa: E402,F401  isort: skip
from train.models.profile import count_macs, count_params, macs_per_second, model_table  # noqa: E402

__all__ = [
    "DENSITY_STRIDE",
    "CheckpointError",
    "ConfigError",
    "DensityConfig",
    "DensityModel",
    "HeadConfig",
    "build_model",
    "count_macs",
    "count_params",
    "list_models",
    "load_checkpoint",
    "macs_per_second",
    "make_config",
    "model_class",
    "model_table",
    "register_model",
    "save_checkpoint",
]
