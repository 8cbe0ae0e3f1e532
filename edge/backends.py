"""Inference backends: one class per runtime, chosen by the artifact's extension.

=========  ==========================================================  ====================
suffix     runtime                                                     import
=========  ==========================================================  ====================
.tflite    LiteRT (``ai_edge_litert``), else ``tflite_runtime``        at load
.pte       ExecuTorch runtime (``executorch.runtime``, XNNPACK)        lazily, at load
.onnx      ONNX Runtime (CPU execution provider)                       at load
=========  ==========================================================  ====================

Every backend runs one fixed window: ``run(logmel)`` takes ``(1, 1, N_MELS, W)`` float32 and
returns the step density ``(W // DENSITY_STRIDE,)`` float32. int8 ``.tflite`` models may have
int8/uint8 input and output tensors: inputs are quantized with the tensor's scale and zero
point and outputs dequantized, so callers always see float32.

:func:`load_model` is the door ``edge-run`` uses: it verifies the model card against the file
(sha256, front end, window; ``edge.card.verify_card``) and then the card against what the
runtime reports (input shape, density length). Any mismatch is a :class:`edge.card.CardError`.

The ExecuTorch Python bindings link libtorch, so running a ``.pte`` from Python imports torch
(through ``executorch.runtime``, and here to wrap numpy arrays as tensors); nothing else in
``edge/`` does. On a phone the C++ ExecuTorch runtime needs no torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from edge.card import FORMATS, CardError, ModelCard, load_verified_card
from edge.counter import DENSITY_FPS, DENSITY_STRIDE
from edge.frontend import N_MELS


class BackendError(RuntimeError):
    """A runtime that is missing or cannot load/run the artifact; one line, cause chained."""


class Backend:
    """Common interface; subclasses fill ``input_shape`` and ``output_shape`` from the runtime."""

    format = ""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = Path(path)
        self.threads = threads
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Backend").lower()

    @property
    def window_frames(self) -> int:
        return self.input_shape[-1]

    def run(self, logmel: np.ndarray) -> np.ndarray:
        """(1, 1, N_MELS, W) float32 log-mel -> (W // 4,) float32 step density."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name!r}, threads={self.threads}, input={self.input_shape})"


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native code prints on file descriptor 2 meanwhile (LiteRT's "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU."): start-up chatter a user cannot act on. Errors
    still arrive as exceptions. A no-op where stderr has no file descriptor (captured)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


# Python loggers whose start-up warnings a user cannot act on: torchao's "Failed to load
# .../_C_mxfp8...so" (CUDA kernels a CPU build never uses) and torch's pytree deprecation note
# about torchao's enums. Errors still show.
NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_startup_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """float -> int8/uint8 with round-half-to-even and saturation, as TFLite does."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


class LiteRTBackend(Backend):
    format = "tflite"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e_litert:
            try:  # the older runtime (needs numpy < 2); an optional fallback only
                from tflite_runtime.interpreter import Interpreter
            except ImportError:
                raise BackendError(
                    f"{self.path.name}: no LiteRT runtime: pip install ai-edge-litert (or tflite-runtime)"
                ) from e_litert
        try:
            with quiet_native_stderr():
                self._interp = Interpreter(model_path=str(self.path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"{self.path.name}: LiteRT cannot load it ({str(e).splitlines()[0]})") from e
        inp, out = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise BackendError(f"{self.path.name}: expected 1 input and 1 output, got {len(inp)} and {len(out)}")
        self._in, self._out = inp[0], out[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self.output_shape = tuple(int(d) for d in self._out["shape"])
        self._in_q = self._quant(self._in)
        self._out_q = self._quant(self._out)

    @staticmethod
    def _quant(detail: dict) -> tuple[float, int, np.dtype] | None:
        """(scale, zero_point, dtype) of an integer tensor, None for a float one."""
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            return None
        scale, zero_point = detail["quantization"]
        if not scale:
            raise BackendError(f"integer tensor {detail['name']!r} ({dtype}) has no quantization parameters")
        return float(scale), int(zero_point), dtype

    @property
    def name(self) -> str:
        io = "int8-io" if self._in_q or self._out_q else "float-io"
        return f"litert ({io})"

    def run(self, logmel: np.ndarray) -> np.ndarray:
        x = logmel if self._in_q is None else quantize(logmel, *self._in_q)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])
        y = y.astype(np.float32) if self._out_q is None else dequantize(y, *self._out_q[:2])
        return y.reshape(-1)


class ExecuTorchBackend(Backend):
    format = "pte"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        quiet_startup_loggers()
        try:  # heavy (imports torch, ~9 s cold): only when a .pte is actually run
            with warnings.catch_warnings(), quiet_native_stderr():  # "ExperimentalWarning", cpuinfo chatter
                warnings.simplefilter("ignore")
                from executorch.runtime import Runtime
        except ImportError as e:
            raise BackendError(
                f"{self.path.name}: running a .pte from Python needs executorch (pip install executorch; its "
                f"bindings link libtorch): use the .tflite or .onnx artifact for a torch-free runtime ({e})"
            ) from e
        # ExecuTorch's Python bindings link libtorch and take only torch tensors as inputs; edge/ does
        # not import torch itself, it borrows the module those bindings have already loaded.
        self._torch = sys.modules["torch"]
        try:
            import executorch.extension.pybindings.portable_lib as _lib

            with quiet_native_stderr():
                _lib._unsafe_reset_threadpool(threads)  # process-wide XNNPACK thread pool
        except (ImportError, AttributeError, RuntimeError):
            pass
        try:
            with quiet_native_stderr():
                program = Runtime.get().load_program(self.path)
                self._method = program.load_method("forward")
        except Exception as e:  # the bindings raise RuntimeError/ValueError with long texts
            raise BackendError(f"{self.path.name}: ExecuTorch cannot load it ({str(e).splitlines()[0]})") from e
        self._program = program  # keeps the method's memory alive
        meta = self._method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise BackendError(f"{self.path.name}: expected 1 input and 1 output")
        self.input_shape = tuple(meta.input_tensor_meta(0).sizes())
        self.output_shape = tuple(meta.output_tensor_meta(0).sizes())

    @property
    def name(self) -> str:
        return "executorch"

    def run(self, logmel: np.ndarray) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(logmel, dtype=np.float32))  # shares memory
        (y,) = self._method.execute([x])
        return y.numpy().astype(np.float32, copy=True).reshape(-1)


class OnnxBackend(Backend):
    format = "onnx"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendError(f"{self.path.name}: ONNX Runtime missing: pip install onnxruntime") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... classes
            raise BackendError(f"{self.path.name}: ONNX Runtime cannot load it ({str(e).splitlines()[0]})") from e
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"{self.path.name}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
        self._in_name = inputs[0].name
        # a dynamic dimension is reported as a string or None: -1 here
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        self.output_shape = tuple(d if isinstance(d, int) else -1 for d in outputs[0].shape)

    @property
    def name(self) -> str:
        return "onnxruntime"

    def run(self, logmel: np.ndarray) -> np.ndarray:
        (y,) = self._sess.run(None, {self._in_name: logmel})
        return np.asarray(y, dtype=np.float32).reshape(-1)


BACKENDS: dict[str, type[Backend]] = {".tflite": LiteRTBackend, ".pte": ExecuTorchBackend, ".onnx": OnnxBackend}
assert set(BACKENDS) == set(FORMATS)


def load_backend(artifact: str | Path, threads: int = 1) -> Backend:
    """The backend for ``artifact``, chosen by its extension (no card check; see :func:`load_model`)."""
    artifact = Path(artifact)
    cls = BACKENDS.get(artifact.suffix)
    if cls is None:
        raise BackendError(f"{artifact}: unknown model format {artifact.suffix!r} (expected one of {sorted(BACKENDS)})")
    if not artifact.exists():
        raise BackendError(f"{artifact}: no such model file")
    return cls(artifact, threads=threads)


def check_backend_matches_card(backend: Backend, card: ModelCard) -> None:
    """The card's window and density rate against what the runtime says the artifact takes."""
    where = backend.path.name
    if card.density_fps != DENSITY_FPS or card.density_stride != DENSITY_STRIDE:
        raise CardError(f"{where}: card density_fps {card.density_fps} != this runtime's {DENSITY_FPS} frames/s")
    want_in = (1, 1, N_MELS, card.window_frames)
    got_in = tuple(backend.input_shape)
    if len(got_in) != 4 or any(g not in (w, -1) for g, w in zip(got_in, want_in)):
        raise CardError(f"{where}: the model takes input {list(got_in)}, its card says {list(want_in)}")
    out_len = int(np.prod([d for d in backend.output_shape if d != -1])) if backend.output_shape else -1
    if -1 not in backend.output_shape and out_len != card.window_frames // DENSITY_STRIDE:
        raise CardError(
            f"{where}: the model outputs {list(backend.output_shape)} (density of {out_len} frames); a window of "
            f"{card.window_frames} frames needs {card.window_frames // DENSITY_STRIDE}"
        )


def load_model(artifact: str | Path, threads: int = 1) -> tuple[Backend, ModelCard]:
    """Load an artifact with its verified card: ``(backend, card)``.

    Raises :class:`CardError` (missing/mismatching card) or :class:`BackendError` (runtime).
    """
    card = load_verified_card(artifact)
    backend = load_backend(artifact, threads=threads)
    check_backend_matches_card(backend, card)
    return backend, card

