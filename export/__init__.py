"""Export: PyTorch step-onset models -> .pte (XNNPACK), .tflite (LiteRT), .onnx (ONNX Runtime) and
Qualcomm HTP context binaries, each reloaded in its runtime, compared with PyTorch and carded.

targets.py  one function per target (to_pte, to_tflite, to_onnx, to_qnn_context) + PT2E helpers
runtimes.py run an artifact in its own runtime (the QNN one through qnn_worker.py in .venv-qnn)
parity.py   the comparison with PyTorch and the gates
pipeline.py export_all / export_model: the straight line per artifact, the report
cli.py      `footfall export`, `footfall inspect`
"""
