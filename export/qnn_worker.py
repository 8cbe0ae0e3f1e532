"""Qualcomm HTP worker: compile a QDQ ONNX model to an HTP context binary and run it.

Runs inside the QNN virtual environment (``.venv-qnn``: ``onnxruntime-qnn`` + numpy), never in
the main one: the plugin wheel brings its own ``onnxruntime`` and the QNN SDK libraries,
whose x86_64 ``libQnnHtp.so`` compiles for a given SoC and executes the result on the HTP
simulator. It imports numpy and onnxruntime only; ``export/targets.py`` drives it::

    python export/qnn_worker.py probe
    python export/qnn_worker.py compile --model int8_qdq.onnx --out ctx.onnx --soc-model 57 --htp-arch 75
    python export/qnn_worker.py run --model ctx.onnx --soc-model 57 --htp-arch 75 --inputs x.npy --outputs y.npy [--budget-s 60]

Each command prints one JSON line (``{"ok": true, ...}`` or ``{"ok": false, "error": ...,
"missing": bool}``) and exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

INSTALL = "onnxruntime-qnn==2.7.0"


def _answer(ok: bool, **fields) -> int:
    print(json.dumps({"ok": ok, **fields}), flush=True)
    return 0 if ok else 1


def _load_qnn():
    """(onnxruntime, QNN EP devices, versions); raises ImportError naming what is missing."""
    import onnxruntime as ort

    try:
        import onnxruntime_qnn as oq
    except ImportError as e:
        raise ImportError(f"the QNN execution provider is not installed ({INSTALL})") from e
    ort.register_execution_provider_library(oq.EP_NAME, oq.get_library_path())
    devices = [d for d in ort.get_ep_devices() if d.ep_name == oq.EP_NAME]
    if not devices:
        raise ImportError(f"{oq.EP_NAME} registered no device (library {oq.get_library_path()})")
    from onnxruntime_qnn import build_and_package_info as info

    versions = {"onnxruntime": ort.__version__, "onnxruntime_qnn": info.__version__, "qnn_sdk": getattr(info, "qnn_version", None)}
    return ort, devices, versions


def _options(ort, devices, soc_model: int, htp_arch: int):
    so = ort.SessionOptions()
    so.log_severity_level = 3  # the EP warns about Windows-only features on every session
    # every node on the HTP, or fail: a silent CPU fallback would make the parity check meaningless
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_provider_for_devices(devices, {"backend_type": "htp", "soc_model": str(soc_model), "htp_arch": str(htp_arch)})
    return so


def compile_context(model: str, out: str, soc_model: int, htp_arch: int) -> dict:
    """QDQ ONNX -> EPContext ONNX with the HTP context binary embedded (ep.context_embed_mode 1)."""
    ort, devices, versions = _load_qnn()
    if os.path.exists(out):
        os.remove(out)  # the EP refuses to overwrite an existing context model
    so = _options(ort, devices, soc_model, htp_arch)
    so.add_session_config_entry("ep.context_enable", "1")
    so.add_session_config_entry("ep.context_file_path", out)
    so.add_session_config_entry("ep.context_embed_mode", "1")
    t0 = time.perf_counter()
    ort.InferenceSession(model, sess_options=so)
    if not os.path.exists(out):
        raise RuntimeError(f"the QNN EP wrote no context model to {out}")
    return {"compile_s": round(time.perf_counter() - t0, 3), "simulator": _is_simulator(), **versions}


def run_context(model: str, soc_model: int, htp_arch: int, inputs: str, outputs: str, budget_s: float = 0.0, min_windows: int = 1) -> dict:
    """Run the windows of ``inputs`` ((N, 1, 64, T) float32 .npy) one by one; save (n, T') .npy.

    The HTP simulator is slow for big nets (seconds per window for Cnn6): with ``budget_s`` > 0
    it stops once the budget is spent and at least ``min_windows`` ran (n <= N, a prefix).
    """
    import numpy as np

    ort, devices, versions = _load_qnn()
    session = ort.InferenceSession(model, sess_options=_options(ort, devices, soc_model, htp_arch))
    name = session.get_inputs()[0].name
    windows = np.load(inputs).astype(np.float32)
    t0 = time.perf_counter()
    out = []
    for w in windows:
        out.append(session.run(None, {name: np.ascontiguousarray(w[None])})[0].reshape(-1))
        if budget_s > 0 and len(out) >= min_windows and time.perf_counter() - t0 > budget_s:
            break
    np.save(outputs, np.stack(out).astype(np.float32))
    seconds = time.perf_counter() - t0
    return {"windows": len(out), "of": len(windows), "ms_per_window": round(1000 * seconds / len(out), 2),
            "simulator": _is_simulator(), **versions}


def _is_simulator() -> bool:
    """On x86_64 the HTP backend cannot reach a real NPU: it executes on the HTP simulator."""
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    for name in ("compile", "run"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--soc-model", type=int, required=True)
        p.add_argument("--htp-arch", type=int, required=True)
        if name == "compile":
            p.add_argument("--out", required=True)
        else:
            p.add_argument("--inputs", required=True)
            p.add_argument("--outputs", required=True)
            p.add_argument("--budget-s", type=float, default=0.0, help="stop after this many seconds (0: run all)")
            p.add_argument("--min-windows", type=int, default=1, help="run at least this many windows")
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            return _answer(True, **_load_qnn()[2], simulator=_is_simulator())
        if args.command == "compile":
            return _answer(True, **compile_context(args.model, args.out, args.soc_model, args.htp_arch))
        return _answer(True, **run_context(args.model, args.soc_model, args.htp_arch, args.inputs, args.outputs,
                                           args.budget_s, args.min_windows))
    except ImportError as e:
        return _answer(False, error=str(e).splitlines()[0], missing=True)
    except Exception as e:  # reported to the parent process as one line; it decides what to do
        return _answer(False, error=f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}", missing=False)


if __name__ == "__main__":
    sys.exit(main())
