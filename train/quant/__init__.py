"""Quantization: QAT and PTQ of a student (PT2E, XNNPACK int8) and the int8 graph to ship."""
