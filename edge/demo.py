"""``make demo``: stream the bundled sample run through edge-run and print what a runner sees.

The output is edge-run's summary, as the README shows it; ``--verbose`` (``make demo
DEMO_ARGS=--verbose``) adds the engineer's lines after it: the model and its schedule, how long
the count took, and the counted steps against the true ones.

Uses the bundled default model (``edge/assets/*.tflite`` with its card, else ``.pte``/``.onnx``;
see ``edge.cli.bundled_model``) and the sample run ``edge/assets/sample_run.wav`` with its step
times ``edge/assets/sample_run.steps.csv`` (contract 5: ``time_s[,foot]``, one row per step,
an optional header). If any of them is missing, says which and how to make them
(``make model``), and exits 1. Torch-free.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from edge.cli import ASSETS, bundled_model, print_summary, run_stream
from edge.contract import FRAMES_PER_SECOND
from edge.sources import FileSource

SAMPLE = "sample_run.wav"
SAMPLE_STEPS = "sample_run.steps.csv"
TARGET_ERROR_PCT = 3.0  # the bundled model's promise on its sample


def read_steps(path: Path) -> list[float]:
    """Step times (s) of a contract-5 steps CSV: first column, header optional."""
    times = []
    for i, line in enumerate(path.read_text().splitlines()):
        cell = line.split(",")[0].strip()
        if not cell:
            continue
        try:
            times.append(float(cell))
        except ValueError:
            if i:  # only the first row may be a header
                raise ValueError(f"{path}:{i + 1}: not a time in seconds: {cell!r}") from None
    return times


def missing_assets(assets: Path = ASSETS) -> list[str]:
    missing = []
    if bundled_model(assets) is None:
        missing.append(f"a model with its card ({assets}/*.tflite + *.tflite.card.json, or .pte/.onnx)")
    for name in (SAMPLE, SAMPLE_STEPS):
        if not (assets / name).exists():
            missing.append(str(assets / name))
    return missing


def main(assets: Path = ASSETS, verbose: bool = False) -> int:
    missing = missing_assets(assets)
    if missing:
        print("edge demo: the bundled default is not here yet; missing:", file=sys.stderr)
        for m in missing:
            print(f"  - {m}", file=sys.stderr)
        print("build it with `make model` (trains and exports the default student, writes the sample run)",
              file=sys.stderr)
        return 1
    from edge.audio import AudioError
    from edge.backends import BackendError, load_model
    from edge.card import CardError

    artifact = bundled_model(assets)
    try:
        backend, card = load_model(artifact)
        source = FileSource(assets / SAMPLE, stop=threading.Event())
        summary = run_stream(source, backend, card)  # the live view shows on a terminal only
    except (AudioError, BackendError, CardError) as e:
        print(f"edge demo: error: {e}", file=sys.stderr)
        return 1
    print_summary(summary)
    if summary["error"]:
        print(f"edge demo: error: {summary['error']}", file=sys.stderr)
        return 1
    if verbose:
        print_engineer_lines(artifact, card, summary, len(read_steps(assets / SAMPLE_STEPS)))
    return 0


def print_engineer_lines(artifact: Path, card, summary: dict, truth: int) -> None:
    """The model and its schedule, how long the count took, and the count against the truth."""
    debug = summary["debug"]
    counted = summary["steps"]
    error = 100.0 * (counted - truth) / truth if truth else float("nan")
    verdict = "ok" if abs(error) <= TARGET_ERROR_PCT else f"outside the {TARGET_ERROR_PCT:.0f} % target"
    what = (f"each {card.window_frames / FRAMES_PER_SECOND:.2f}-s packet once, its state carried" if card.streaming else
            f"a {card.window_frames / FRAMES_PER_SECOND:.2f}-s window every {card.hop_frames / FRAMES_PER_SECOND:.2f} s, "
            f"the count final {debug['alignment']['latency_s']:.2f} s behind the audio")
    print(f"model   {artifact.name} ({card.precision}; {what})")
    print(f"sample  {SAMPLE}: {summary['audio_s']:.1f} s counted in {summary['wall_s']:.2f} s "
          f"(the network took {debug['latency_ms_median']:.2f} ms a call, median)")
    print(f"steps   counted {counted:.0f}   true {truth}   error {error:+.2f} %  [{verdict}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m edge.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="add the engineer's lines after the summary")
    raise SystemExit(main(verbose=parser.parse_args().verbose))
