"""`footfall export` and `footfall inspect`: thin typer layer over :mod:`export.pipeline` and
:mod:`edge.card`.

Exit codes: 0 done (a target whose SDK is missing is skipped with a line saying how to get it);
1 an export failed or an artifact missed its parity gate; 2 bad input (one line, no traceback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from edge.util import fail as _fail

TARGETS_HELP = "comma-separated: pte, tflite, onnx, qnn"


def _split(value: str) -> list[str]:
    return [v.strip().lower() for v in value.split(",") if v.strip()]


def export_command(
    checkpoint: Path = typer.Argument(..., help="float checkpoint (.pt) or a quantized graph from `footfall qat` (.pt2)"),
    to: str = typer.Option("pte,tflite,onnx,qnn", "--to", help=TARGETS_HELP),
    precision: str = typer.Option("int8,fp32", "--precision", help="comma-separated: int8, fp32"),
    out: Path = typer.Option(Path("out/export"), "--out", help="output folder: artifacts, their cards, export_report.json"),
    int8: Optional[Path] = typer.Option(None, "--int8", help="an int8 graph from `footfall qat` (.pt2) to export for int8, instead of quantizing CHECKPOINT here"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset: calibrate on the fold's validation runs, compare on its test runs"),
    fold: int = typer.Option(0, "--fold", help="fold of --data"),
    calib: Optional[Path] = typer.Option(None, "--calib", help="without --data: log-mel windows (.npy) or an audio file; default the bundled sample run"),
    soc: str = typer.Option("SM8650,SM8750", "--soc", help="Qualcomm SoCs for the qnn target"),
    window: Optional[int] = typer.Option(None, "--window", help="input frames per artifact (default: the checkpoint's window; a streaming model's packet, a multiple of 4)"),
    hop: Optional[int] = typer.Option(None, "--hop", help="streaming hop in frames written to the cards (default: the checkpoint's, else the shipped hop, edge.contract.HOP_FRAMES)"),
    provenance: Optional[Path] = typer.Option(None, "--provenance", help="JSON recorded in every card as training_data.provenance (footfall model writes RUNS/recipe.json: recipe, git commit, data seeds)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    force: bool = typer.Option(False, "--force", help="replace the artifacts, cards and report an earlier export left in --out"),
    counter_on: Optional[str] = typer.Option(None, "--counter-on", help="dataset folders, comma-separated: a real-sound validation set (footfall "
                                             "data realset --split val) and step-free runs; the step counter's threshold is chosen there and "
                                             "shipped in the cards (default: the counter's defaults)"),
    verbose: bool = typer.Option(False, "--verbose", help="also show what the converters and runtimes print (start-up notices, warnings)"),
) -> None:
    """Export a trained model for phones: ExecuTorch (.pte), LiteRT (.tflite), ONNX, Qualcomm NPU.

    Each artifact is loaded again in its own runtime, its output compared with PyTorch's, and a
    model card written beside it (edge-run refuses an artifact without a matching card). At the
    end every file written is listed."""
    from export import quiet

    quiet.set_verbose(verbose)  # before the converters load: their start-up lines are hidden unless --verbose
    from export.pipeline import TARGETS, export_all
    from export.targets import PRECISIONS, ExportError

    targets, precisions, socs = _split(to), _split(precision), [s.upper() for s in _split(soc)]
    for name, values, valid in (("--to", targets, TARGETS), ("--precision", precisions, PRECISIONS)):
        unknown = sorted(set(values) - set(valid))
        if unknown or not values:
            _fail(f"{name} {','.join(values) or '(empty)'}: expected some of {', '.join(valid)}")
    if data is not None and calib is not None:
        _fail("give --data or --calib, not both")
    try:
        recorded = json.loads(provenance.read_text()) if provenance is not None else None
        result = export_all(checkpoint, targets, precisions, out, data, int8=int8, ptq_file=calib, fold=fold, socs=socs,
                            window_frames=window, hop_frames=hop, progress=lambda line: typer.echo(line, err=True),
                            provenance=recorded, force=force, counter_on=counter_on)
    except (ExportError, FileNotFoundError, ValueError) as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        counts = {s: sum(r.status == s for r in result.reports) for s in ("ok", "skipped", "parity-failed", "error")}
        int8_from = f" (int8 from {result.source['int8_from']})" if "int8" in precisions else ""
        typer.echo(f"{result.source['name']}: {', '.join(f'{n} {s}' for s, n in counts.items() if n)} in {result.seconds:.0f} s{int8_from}")
    for path in result.written():  # stdout holds only the JSON with --json
        typer.echo(f"wrote: {path}", err=as_json)
    failed = [r for r in result.reports if r.failed]
    for r in failed:
        typer.echo(f"error: {r.target} {r.precision} {r.backend}: {r.message}", err=True)
    if failed:
        raise typer.Exit(1)


def inspect_command(
    artifact: Path = typer.Argument(..., help="an exported .pte / .tflite / .onnx with its .card.json beside it"),
) -> None:
    """Print ARTIFACT's model card and verify it (sha256, front end, shapes); exit 2 on a mismatch."""
    from edge.card import CardError, card_path, load_verified_card

    try:
        card = load_verified_card(artifact)
    except CardError as e:
        _fail(str(e))
    typer.echo(card.to_json())
    typer.echo(f"ok: {artifact.name} matches {card_path(artifact).name} (sha256 {card.sha256[:12]}…)", err=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
    app.command("inspect")(inspect_command)
