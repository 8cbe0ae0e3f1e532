"""Quiet by default: what the converters and runtimes print that a user cannot act on stays hidden
while they run; ``footfall export --verbose`` (:func:`set_verbose`) shows all of it.

What is hidden, and how (each only inside :func:`converting` and :func:`running`):

- LiteRT's converter library logs through absl C++ before anything initialises absl logging
  ("WARNING: All log messages before absl::InitializeLog() ...", the oneDNN notice, op counts).
  absl has no environment switch for those, so native stderr (file descriptor 2) is hidden while
  the converter loads and runs; ``TF_CPP_MIN_LOG_LEVEL`` quiets what goes through TensorFlow's own
  logger, and ``LITERT_TORCH_SHOW_PROGRESS`` litert-torch's progress banners.
- ExecuTorch's runtime reads /sys for CPU details when it loads and prints "[cpuinfo_utils.cpp:..]"
  lines where they are missing: native stderr is hidden while a ``.pte`` loads and runs.
- ONNX Runtime's quantizer warns through the root logger ("WARNING:root:Axis 1 is out-of-range
  for weight ..." for every BatchNorm vector): the root logger shows only errors meanwhile.
- The export libraries' FutureWarnings, DeprecationWarnings and torch's UserWarnings.

Errors still arrive: as exceptions, which the export reports in one line each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

from edge.backends import quiet_native_stderr

# read by the native libraries when they load: set (unless the user set them) before they import
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "LITERT_TORCH_SHOW_PROGRESS": "n"}
# Python loggers of the converters that narrate each stage at INFO/WARNING
NOISY_LOGGERS = ("torch.onnx", "torch._export", "torch.export", "absl")

_verbose = False


def set_verbose(verbose: bool) -> None:
    """``True``: hide nothing from here on (the converters' loggers back at their defaults)."""
    global _verbose
    _verbose = verbose
    if verbose:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


@contextlib.contextmanager
def _root_logger_at(level: int) -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(before, level))
    try:
        yield
    finally:
        root.setLevel(before)


@contextlib.contextmanager
def converting() -> Iterator[None]:
    """Around a converter's import and run (also a decorator): its chatter hidden unless verbose."""
    if _verbose:
        yield
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), _root_logger_at(logging.ERROR), quiet_native_stderr():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        yield


@contextlib.contextmanager
def running() -> Iterator[None]:
    """Around a runtime's load and run: its native start-up lines hidden unless verbose."""
    if _verbose:
        yield
        return
    with quiet_native_stderr():
        yield
