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

A streaming model (a card with ``state``) takes the next packet ``(1, 1, N_MELS, P)`` and one
tensor per state buffer, and gives the logits and the new state buffers (same order). Its backend
keeps the state (zeros at load and after :meth:`Backend.reset`): ``run(packet)`` feeds
``[packet, *state]``, keeps what comes back and returns the logits ``(P // 4,)``, so a caller
streams with ``reset()`` once and ``run()`` per packet, as with a windowed model. The ExecuTorch and
ONNX backends keep it as float32 arrays; LiteRT in the interpreter's own state tensors
(:class:`LiteRTBackend`).

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
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from edge.card import FORMATS, CardError, ModelCard, load_verified_card
from edge.counter import DENSITY_FPS, DENSITY_STRIDE
from edge.frontend import N_MELS


class BackendError(RuntimeError):
    """A runtime that is missing or cannot load/run the artifact; one line, cause chained."""


StateShapes = list[tuple[str, tuple[int, ...]]]  # [(name, shape)] of a streaming model's state, in input order


class Backend:
    """Common interface; subclasses fill ``input_shape`` and ``output_shape`` from the runtime
    (the packet and the logits for a streaming model), ``state_shapes`` (the state buffers, as the
    runtime reports them: names where it has them) and implement :meth:`_invoke`.

    ``state``: the card's state shapes (``ModelCard.state_shapes``): ``[]`` for a windowed card,
    whose artifact must have 1 input and 1 output; None (no card) takes what the artifact has.
    Whether the shapes match the card is :func:`check_backend_matches_card`'s business.
    """

    format = ""
    state_shapes: StateShapes = []  # class default: a subclass that skips __init__ is windowed

    def __init__(self, path: str | Path, threads: int = 1, state: StateShapes | None = None) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = Path(path)
        self.threads = threads
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()
        self.card_state = state
        self.state_shapes = []
        self._state: list[np.ndarray] = []

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Backend").lower()

    @property
    def window_frames(self) -> int:
        return self.input_shape[-1]

    @property
    def stateful(self) -> bool:
        return bool(self.state_shapes)

    @property
    def _windowed_card(self) -> bool:
        return self.card_state is not None and not self.card_state

    def _check_io(self, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]]) -> None:
        """The artifact's inputs and outputs, in the model's order: fills the shapes and the state.

        One input and one output: a windowed model. 1 + n of each: a streaming one, whose state
        output i has the shape of state input i (it is fed back there next call).
        """
        n_in, n_out = len(in_shapes), len(out_shapes)
        if self._windowed_card and (n_in != 1 or n_out != 1) or n_in != n_out or n_in < 1:
            raise BackendError(f"{self.path.name}: expected 1 input and 1 output"
                               f"{'' if self._windowed_card else ' (or 1 + n of each: packet and state)'}, got {n_in} and {n_out}")
        for i, (a, b) in enumerate(zip(in_shapes[1:], out_shapes[1:]), 1):
            if a != b:
                raise BackendError(f"{self.path.name}: state output {i} has shape {list(b)}, its input {list(a)}")
        self.input_shape, self.output_shape = in_shapes[0], out_shapes[0]
        names = [n for n, _ in self.card_state or []]
        if len(names) != n_in - 1:
            names = [f"state{i}" for i in range(n_in - 1)]
        self.state_shapes = list(zip(names, in_shapes[1:]))
        self.reset()

    def reset(self) -> None:
        """Back to the initial state (zeros) before a new stream; nothing to do for a windowed model."""
        self._state = [np.zeros(shape, np.float32) for _, shape in self.state_shapes]

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """float32 inputs in the model's order -> float32 outputs in its order (fresh arrays)."""
        raise NotImplementedError

    def run(self, logmel: np.ndarray) -> np.ndarray:
        """(1, 1, N_MELS, W) float32 log-mel -> (W // 4,) float32 step density (a streaming model:
        the next packet, with the state the previous call left)."""
        y, *state = self._invoke([logmel, *self._state])
        if self._state:
            self._state = state
        return y.reshape(-1)

    def __repr__(self) -> str:
        state = f", state={len(self.state_shapes)}" if self.state_shapes else ""
        return f"{type(self).__name__}({self.path.name!r}, threads={self.threads}, input={self.input_shape}{state})"


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
    import logging  # here, as only a .pte needs it: a .tflite run does without its import (2 ms)

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """float -> int8/uint8 with round-half-to-even and saturation, as TFLite does."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def _dequantizer(q: tuple[float, int, np.dtype] | None):
    """The float32 values of an output tensor of quantization ``q`` (``LiteRTBackend._quant``).

    8-bit codes are looked up in a table of :func:`dequantize`'s 256 values (the same bits):
    0.6 us a call against its 2.7 for the 4 logits of a packet. A float tensor passes as it is.
    """
    if q is None:
        return lambda y: y
    scale, zero_point, dtype = q
    if dtype.itemsize != 1:
        return lambda y: dequantize(y, scale, zero_point)
    table = dequantize(np.arange(256, dtype=np.uint8).view(dtype), scale, zero_point)
    return lambda y: table.take(y.view(np.uint8))


def _converter(q_out: tuple[float, int, np.dtype] | None, q_in: tuple[float, int, np.dtype] | None):
    """A state output's values as its input takes them when their quantization differs: through float32."""

    def convert(value: np.ndarray) -> np.ndarray:
        x = value if q_out is None else dequantize(value, *q_out[:2])
        return x if q_in is None else quantize(x, *q_in)

    return convert


class LiteRTBackend(Backend):
    """A ``.tflite`` artifact in the LiteRT interpreter.

    A streaming model's state stays in the interpreter: after each invoke every state output is
    copied into its state input, so the next call sets only the packet and reads only the logits
    (the base class would read 11 state tensors out and set them back in as fresh arrays each
    call). A state whose input and output share a dtype and quantization (float, or int8 with the
    same scale and zero point: all of the bundled model's) is copied as the runtime gives it,
    exact; another goes through float32, as a caller's float state would.
    The interpreter's numpy views cannot be held across ``invoke()`` (it refuses while one lives),
    so the copy goes through ``get_tensor``/``set_tensor``. A call of the bundled model costs about
    10 us besides its 24-us invoke, against 19 us when the state went in and out as arrays.
    """

    format = "tflite"

    def __init__(self, path: str | Path, threads: int = 1, state: StateShapes | None = None) -> None:
        super().__init__(path, threads, state)
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
        if (len(inp) > 1 or len(out) > 1) and not self._windowed_card:
            inp, out = self._signature_order(inp, out)
        self._ins, self._outs = inp, out
        self._in, self._out = inp[0], out[0]
        ins_q, outs_q = [self._quant(t) for t in inp], [self._quant(t) for t in out]
        self._in_q, self._out_q = ins_q[0], outs_q[0]
        self._dequantize_logits = _dequantizer(self._out_q)
        # (state input, its output, the conversion between them: None where the value passes as it is,
        # both float or both of the same quantization: an integer buffer then is carried exact, with
        # no conversion per call; the others through float32)
        self._carry = [(i["index"], o["index"], None if q_in == q_out else _converter(q_out, q_in))
                       for i, o, q_in, q_out in zip(inp[1:], out[1:], ins_q[1:], outs_q[1:])]
        zeros = [np.zeros(i["shape"], np.float32) for i in inp[1:]]
        self._initial = [(i["index"], z if q is None else quantize(z, *q)) for i, z, q in zip(inp[1:], zeros, ins_q[1:])]
        self._check_io([tuple(int(d) for d in t["shape"]) for t in inp], [tuple(int(d) for d in t["shape"]) for t in out])

    def reset(self) -> None:
        """The state inputs back to their initial zeros (quantized zeros for an integer tensor)."""
        for index, value in self._initial:
            self._interp.set_tensor(index, value)

    def run(self, logmel: np.ndarray) -> np.ndarray:
        """One call, windowed or streaming alike: the packet in, invoke, the state outputs into the
        state inputs for the next call (none for a windowed model), the logits out."""
        it = self._interp
        it.set_tensor(self._in["index"], logmel if self._in_q is None else quantize(logmel, *self._in_q))
        it.invoke()
        for index_in, index_out, convert in self._carry:
            value = it.get_tensor(index_out)
            it.set_tensor(index_in, value if convert is None else convert(value))
        return self._dequantize_logits(it.get_tensor(self._out["index"])).reshape(-1)

    def _signature_order(self, inp: list[dict], out: list[dict]) -> tuple[list[dict], list[dict]]:
        """Input and output tensors in the order of the converted function's arguments and results.

        The interpreter lists tensors in its own order (outputs by tensor index, which follows the
        graph, not the results); the signature names them ``args_<i>`` and ``output_<i>`` (litert-torch),
        so the number in each name is the position. Names without one keep the signature's order.
        """
        sigs = self._interp.get_signature_list()
        if len(sigs) != 1:
            raise BackendError(f"{self.path.name}: expected one signature to order its {len(inp)} inputs by, got {len(sigs)}")
        runner = self._interp.get_signature_runner()
        by_index = {t["index"]: t for t in inp + out}

        def ordered(details: dict) -> list[dict]:
            names = list(details)
            numbers = [re.search(r"(\d+)$", n) for n in names]
            if all(numbers):
                names = [n for _, n in sorted(zip((int(m.group(1)) for m in numbers), names))]
            return [by_index[details[n]["index"]] for n in names]

        return ordered(runner.get_input_details()), ordered(runner.get_output_details())

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


class ExecuTorchBackend(Backend):
    format = "pte"

    def __init__(self, path: str | Path, threads: int = 1, state: StateShapes | None = None) -> None:
        super().__init__(path, threads, state)
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
        # a program has no tensor names: inputs and outputs are in the exported step's order
        self._check_io([tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())],
                       [tuple(meta.output_tensor_meta(i).sizes()) for i in range(meta.num_outputs())])

    @property
    def name(self) -> str:
        return "executorch"

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xs = [self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in inputs]  # share memory
        # copies: the outputs live in the method's planned memory, which the next call overwrites
        return [y.numpy().astype(np.float32, copy=True) for y in self._method.execute(xs)]


class OnnxBackend(Backend):
    format = "onnx"

    def __init__(self, path: str | Path, threads: int = 1, state: StateShapes | None = None) -> None:
        super().__init__(path, threads, state)
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
        if len(inputs) > 1 and len(outputs) == len(inputs):
            # export names the state outputs "<state input>_out" (export.targets.onnx_io_names): pair
            # them by name; outputs named otherwise stay in the graph's order
            by_name = {o.name: o for o in outputs}
            paired = [by_name.get(f"{i.name}_out") for i in inputs[1:]]
            if all(paired):
                outputs = [next(o for o in outputs if o not in paired), *paired]
        self._in_names = [i.name for i in inputs]
        self._out_names = [o.name for o in outputs]
        self._in_name = self._in_names[0]

        def shape(t) -> tuple[int, ...]:  # a dynamic dimension is reported as a string or None: -1 here
            return tuple(d if isinstance(d, int) else -1 for d in t.shape)

        self._check_io([shape(i) for i in inputs], [shape(o) for o in outputs])
        if len(inputs) > 1:
            self.state_shapes = [(i.name, s) for i, (_, s) in zip(inputs[1:], self.state_shapes)]

    @property
    def name(self) -> str:
        return "onnxruntime"

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ys = self._sess.run(self._out_names, dict(zip(self._in_names, inputs)))
        return [np.asarray(y, dtype=np.float32) for y in ys]


BACKENDS: dict[str, type[Backend]] = {".tflite": LiteRTBackend, ".pte": ExecuTorchBackend, ".onnx": OnnxBackend}
assert set(BACKENDS) == set(FORMATS)


def load_backend(artifact: str | Path, threads: int = 1, state: StateShapes | None = None) -> Backend:
    """The backend for ``artifact``, chosen by its extension (no card check; see :func:`load_model`).

    ``state``: the card's state shapes (``[]``: a windowed model); None: as the artifact's inputs say
    (one input: windowed; more: a packet and state buffers).
    """
    artifact = Path(artifact)
    cls = BACKENDS.get(artifact.suffix)
    if cls is None:
        raise BackendError(f"{artifact}: unknown model format {artifact.suffix!r} (expected one of {sorted(BACKENDS)})")
    if not artifact.exists():
        raise BackendError(f"{artifact}: no such model file")
    return cls(artifact, threads=threads, state=state)


def check_backend_matches_card(backend: Backend, card: ModelCard) -> None:
    """The card's window (a streaming model's packet), state buffers and density rate against what
    the runtime says the artifact takes."""
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
    want_state = [shape for _, shape in card.state_shapes()]
    got_state = [tuple(shape) for _, shape in backend.state_shapes]
    if len(got_state) != len(want_state) or any(
        len(g) != len(w) or any(a not in (b, -1) for a, b in zip(g, w)) for g, w in zip(got_state, want_state)
    ):
        raise CardError(f"{where}: the model's state is {[list(s) for s in got_state]}, its card says {[list(s) for s in want_state]}")


def load_model(artifact: str | Path, threads: int = 1) -> tuple[Backend, ModelCard]:
    """Load an artifact with its verified card: ``(backend, card)``.

    Raises :class:`CardError` (missing/mismatching card) or :class:`BackendError` (runtime).
    """
    card = load_verified_card(artifact)
    # a windowed card lets the backend take what the artifact has, so that state it does not expect
    # is a card mismatch below (CardError), as is a streaming card's state of other shapes
    backend = load_backend(artifact, threads=threads, state=card.state_shapes() or None)
    check_backend_matches_card(backend, card)
    return backend, card

