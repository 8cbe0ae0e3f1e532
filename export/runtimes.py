"""Reload an artifact in its own runtime and run log-mel windows through it.

Every function maps windows ``(N, 1, 64, T)`` float32 -> densities ``(N, T // 4)`` float32,
one window per call, as the device runs them (every artifact has batch 1). A streaming artifact
(packet and state in, logits and state out) is run by :func:`stream_artifact`: whole runs, packet
by packet, with the state carried, through ``edge.backends`` as ``edge-run`` runs it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from export.quiet import running
from export.targets import QNN_SOCS, ExportError, run_qnn_worker


def run_pte(path: str | Path, windows: np.ndarray) -> np.ndarray:
    """ExecuTorch runtime (Python bindings; they link libtorch)."""
    import torch

    with running():  # the runtime's "[cpuinfo_utils.cpp:..]" start-up lines
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(path)).load_method("forward")
        out = [method.execute([torch.from_numpy(np.ascontiguousarray(w[None]))])[0].numpy().reshape(-1) for w in windows]
    return np.stack(out).astype(np.float32)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """float -> the tensor's integer dtype with its (scale, zero point); identity for float tensors."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def tflite_interpreter(path: str | Path, runtime: str = "ai-edge-litert", threads: int = 1):
    """A LiteRT interpreter: ``ai-edge-litert`` (the maintained one) or ``tflite-runtime``."""
    if runtime == "ai-edge-litert":
        from ai_edge_litert.interpreter import Interpreter
    elif runtime == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        raise ExportError(f"unknown LiteRT runtime {runtime!r} (ai-edge-litert or tflite-runtime)")
    with running():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


def tflite_io(path: str | Path) -> dict:
    """Input/output dtypes and quantization parameters (int8 models may take and give int8); a
    streaming model's state tensors too, in its order (``state_inputs``, ``state_outputs``)."""
    from edge.backends import LiteRTBackend

    with running():
        backend = LiteRTBackend(path)  # orders a streaming model's tensors by its signature

    def describe(t: dict) -> dict:
        return {"dtype": np.dtype(t["dtype"]).name, "shape": t["shape"].tolist(), "quantization": list(t["quantization"])}

    io = {"input": describe(backend._ins[0]), "output": describe(backend._outs[0])}
    if backend.stateful:
        io["state_inputs"] = [describe(t) for t in backend._ins[1:]]
        io["state_outputs"] = [describe(t) for t in backend._outs[1:]]
    return io


def run_tflite(path: str | Path, windows: np.ndarray, runtime: str = "ai-edge-litert") -> np.ndarray:
    """LiteRT interpreter; int8 I/O tensors are quantized/dequantized with their own parameters."""
    interpreter = tflite_interpreter(path, runtime)
    (i,), (o,) = interpreter.get_input_details(), interpreter.get_output_details()
    out = []
    for w in windows:
        interpreter.set_tensor(i["index"], _quantize(w[None], i))
        interpreter.invoke()
        out.append(_dequantize(interpreter.get_tensor(o["index"]), o).reshape(-1))
    return np.stack(out)


def tflite_runtime_available() -> bool:
    """tflite-runtime needs numpy < 2, so it imports only in a venv of its own."""
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except Exception:  # ImportError, or a numpy ABI error at import
        return False
    return True


def run_onnx(path: str | Path, windows: np.ndarray) -> np.ndarray:
    """ONNX Runtime, CPU execution provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: np.ascontiguousarray(w[None])})[0].reshape(-1) for w in windows]).astype(np.float32)


def run_qnn(path: str | Path, windows: np.ndarray, soc: str, budget_s: float = 0.0, min_windows: int = 8) -> tuple[np.ndarray, dict]:
    """The EPContext model on the HTP (simulator on x86), in the QNN venv; returns (logits, info).

    With ``budget_s`` > 0 the worker may stop early: the logits then cover a prefix of
    ``windows`` (``info["windows"]`` of them, at least ``min_windows``).
    """
    soc_model, htp_arch = QNN_SOCS[soc.upper()]
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(inputs, np.ascontiguousarray(windows, dtype=np.float32))
        info = run_qnn_worker(
            ["run", "--model", str(path), "--soc-model", str(soc_model), "--htp-arch", str(htp_arch),
             "--inputs", str(inputs), "--outputs", str(outputs), "--budget-s", str(budget_s), "--min-windows", str(min_windows)],
            timeout=max(600.0, 4 * budget_s),
        )
        return np.load(outputs), info


def stream_artifact(path: str | Path, packets: np.ndarray, runs: np.ndarray,
                    state: list[tuple[str, tuple[int, ...]]]) -> np.ndarray:
    """A streaming artifact over consecutive packets ``(N, 1, 64, P)`` of whole runs (``runs`` (N,):
    the run of each, a run's packets adjacent and in order) -> logits ``(N, P // 4)``.

    The state starts from zeros at each run's first packet (``Backend.reset``) and is carried
    packet to packet by the backend; ``state`` is the model's ``[(name, shape)]``, checked against
    what the runtime reports.
    """
    from edge.backends import load_backend

    with running():
        backend = load_backend(path, state=state)
    got = [tuple(s) for _, s in backend.state_shapes]
    if got != [tuple(s) for _, s in state]:
        raise ExportError(f"{Path(path).name}: the artifact's state is {[list(s) for s in got]}, the model's "
                          f"{[list(s) for _, s in state]}")
    packets = np.asarray(packets, dtype=np.float32)
    out, previous = [], None
    for x, r in zip(packets, runs):
        if r != previous:
            backend.reset()
            previous = r
        out.append(backend.run(np.ascontiguousarray(x[None])))
    return np.stack(out).astype(np.float32)


def run_artifact(path: str | Path, windows: np.ndarray, backend: str) -> np.ndarray:
    """Dispatch on the card's backend: xnnpack | litert | tflite-runtime | onnxruntime | qnn-htp:<SOC>."""
    windows = np.asarray(windows, dtype=np.float32)
    if backend == "xnnpack":
        return run_pte(path, windows)
    if backend in ("litert", "ai-edge-litert"):
        return run_tflite(path, windows, "ai-edge-litert")
    if backend == "tflite-runtime":
        return run_tflite(path, windows, "tflite-runtime")
    if backend == "onnxruntime":
        return run_onnx(path, windows)
    if backend.startswith("qnn-htp:"):
        return run_qnn(path, windows, backend.split(":", 1)[1])[0]
    raise ExportError(f"no runtime for backend {backend!r}")
