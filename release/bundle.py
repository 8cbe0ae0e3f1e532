"""Write the bundled default into ``edge/assets``: the sample run and the shipping artifacts.

``python -m release.bundle sample`` synthesises the 60-s sample run from a runner *outside* the
default dataset (population seed 0, runner index 100: no fold ever trained on it), at a moderate
SNR on asphalt, as 16-bit WAV plus its true step times (contract 5).
``python -m release.bundle artifacts EXPORT_DIR`` copies the int8 ``.tflite`` and ``.pte`` (each
with its model card) from an export folder; the card's sha256 binds each file, so they are
copied byte for byte.
``python -m release.bundle counter DATASETS`` chooses the counter again (the cadence tracker's
threshold, :func:`train.evaluate.realeval.choose_counter`; a card's old counter is replaced) on DATASETS
(comma-separated: the real-sound validation set and held-out step-free runs, as ``footfall export
--counter-on``) and writes it into every bundled card; the artifacts are not touched. The logits it
chooses on are those of what the export chose on: the bundled float student (``streamtcn_float.pt``)
for int8 by PTQ, the bundled ``.tflite`` itself, streamed through its runtime, for int8 by QAT (its
step was trained quantized: the bundled float student, the float form of its trained weights, is
close to it but not it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "edge" / "assets"
SAMPLE_RUNNER, SAMPLE_SECONDS, SAMPLE_SURFACE, SAMPLE_SNR_DB = 100, 60.0, "asphalt", 6.0


def write_sample(assets: Path = ASSETS) -> Path:
    import soundfile as sf

    from edge.frontend import SAMPLE_RATE
    from train.data.synth import synthesize_run, write_steps

    audio, times, info = synthesize_run(0, SAMPLE_RUNNER, 0, SAMPLE_SECONDS, SAMPLE_SURFACE, snr_db=SAMPLE_SNR_DB)
    assets.mkdir(parents=True, exist_ok=True)
    wav = assets / "sample_run.wav"
    sf.write(wav, np.asarray(audio, np.float32), SAMPLE_RATE, subtype="PCM_16")
    write_steps(assets / "sample_run.steps.csv", times, info["feet"])
    print(f"wrote {wav} ({wav.stat().st_size / 1e6:.2f} MB, {len(times)} steps, SNR {info['snr_db']} dB)")
    return wav


def copy_artifacts(export_dir: Path, assets: Path = ASSETS) -> list[Path]:
    picked = []
    for ext in (".tflite", ".pte"):
        found = sorted(p for p in Path(export_dir).glob(f"*int8*{ext}") if Path(f"{p}.card.json").exists())
        if not found:
            raise SystemExit(f"error: no int8 {ext} with a model card in {export_dir}")
        for old in assets.glob(f"*{ext}*"):
            old.unlink()
        for src in (found[0], Path(f"{found[0]}.card.json")):
            shutil.copy2(src, assets / src.name)
            picked.append(assets / src.name)
    for p in picked:
        print(f"bundled {p} ({p.stat().st_size / 1e6:.2f} MB)")
    return picked


def artifact_stream(artifact: Path):
    """A bundled streaming artifact as a module for :func:`train.evaluate.realeval.choose_counter`:
    (B, 1, F, T) log-mel -> (B, T // 4) logits, each row cut into packets and streamed through the
    artifact's runtime from its initial state (``export.runtimes.stream_artifact``), as ``edge-run``
    streams a run (a last partial packet padded with zeros, its logits dropped)."""
    import torch

    from edge.card import load_verified_card
    from edge.contract import DENSITY_STRIDE
    from export.runtimes import stream_artifact

    card = load_verified_card(artifact)
    packet, state = int(card.window_frames), card.state_shapes()

    class ArtifactStream(torch.nn.Module):
        streaming = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mel = x.detach().cpu().numpy().astype(np.float32)
            b, _, f, t = mel.shape
            n = -(-t // packet)
            mel = np.pad(mel, ((0, 0), (0, 0), (0, 0), (0, n * packet - t)))
            packets = mel.reshape(b, 1, f, n, packet).transpose(0, 3, 1, 2, 4).reshape(b * n, 1, f, packet)
            logits = stream_artifact(artifact, packets, np.repeat(np.arange(b), n), state)
            return torch.from_numpy(logits.reshape(b, -1)[:, : t // DENSITY_STRIDE])

    return ArtifactStream().eval()


def choose_counter_again(datasets: str, assets: Path = ASSETS) -> list[Path]:
    from edge.card import load_card, verify_card, write_card
    from edge.cli import bundled_models
    from train.evaluate.realeval import choose_counter
    from train.models import load_checkpoint

    floats = sorted(assets.glob("*_float.pt"))
    cards = bundled_models(assets)
    if len(floats) != 1 or not cards:
        raise SystemExit(f"error: {assets} holds {len(floats)} float students and {len(cards)} artifacts; need one and some")
    loaded = []
    for p in cards:  # the counter is what this chooses: a card's old one (another counter's, say) is not checked
        card = load_card(p)
        card.counter = {}
        verify_card(card, p)
        loaded.append((p, card))
    window = {card.window_frames for _, card in loaded}
    if len(window) != 1:
        raise SystemExit(f"error: the bundled cards disagree on the window: {sorted(window)}")
    quantization = {card.model.get("quantization") for _, card in loaded}
    if quantization == {"qat"}:  # trained quantized: the counter reads the int8 logits (the .tflite's)
        tflite = [p for p, _ in loaded if p.suffix == ".tflite"]
        if not tflite:
            raise SystemExit(f"error: {assets} holds no .tflite of the QAT model to choose the counter on")
        model = artifact_stream(tflite[0])
    elif len(quantization) > 1:
        raise SystemExit(f"error: the bundled cards disagree on the quantization: {sorted(map(str, quantization))}")
    else:
        model, _ = load_checkpoint(floats[0])
        model.eval()
    params, choice = choose_counter(model, datasets, window.pop())
    for path, card in loaded:
        card.counter = params.to_dict()
        card.model = {**card.model, "counter_chosen_on": choice}
        write_card(card, path)
    print(f"counter: the cadence tracker at threshold {params.threshold:g} (5-s MAE "
          f"{choice['mae_by_threshold'][f'{params.threshold:g}']:.3f} on {choice['runs']} runs) written into "
          f"{', '.join(p.name for p, _ in loaded)}")
    return [p for p, _ in loaded]


def main(argv: list[str]) -> int:
    if argv[:1] == ["sample"]:
        write_sample()
    elif len(argv) == 2 and argv[0] == "artifacts":
        copy_artifacts(Path(argv[1]))
    elif len(argv) == 2 and argv[0] == "counter":
        choose_counter_again(argv[1])
    else:
        print("usage: python -m release.bundle sample | artifacts EXPORT_DIR | counter DATASETS", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
