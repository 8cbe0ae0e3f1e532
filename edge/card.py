"""Model cards (contract 4): a JSON file beside each artifact saying what it is.

``edge-run`` refuses an artifact whose card does not match it (sha256, front end, shapes).
The card of ``student_int8.tflite`` is ``student_int8.tflite.card.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from edge.contract import CARD_SCHEMA_VERSION, DENSITY_FPS, DENSITY_STRIDE, FRAMES_PER_SECOND, N_MELS, OUTPUT_KIND, frontend_params
from edge.counter import Alignment, CounterParams
from edge.util import atomic_write

CARD_SUFFIX = ".card.json"
SCHEMA_1 = (f"a schema-1 card: its model gives a step density, which this runtime no longer counts "
            f"(schema {CARD_SCHEMA_VERSION} models give step-onset logits); train and export the model again")
FORMATS = {".pte": "pte", ".tflite": "tflite", ".onnx": "onnx"}


class CardError(ValueError):
    """A missing, malformed or mismatching model card; the message is one line."""


@dataclass
class ModelCard:
    artifact: str  # file name of the artifact, relative to the card
    format: str  # pte | tflite | onnx
    precision: str  # fp32 | int8
    backend: str  # xnnpack | litert | onnxruntime | qnn-htp:<soc> ...
    sha256: str
    window_frames: int  # input T of the network (front-end frames)
    hop_frames: int  # streaming hop, in front-end frames
    density_fps: float  # output frame rate (25: one step-onset logit per 40 ms)
    input_shape: list[int]  # (1, 1, N_MELS, window_frames)
    frontend: dict = field(default_factory=frontend_params)
    model: dict = field(default_factory=dict)  # name, params, macs_per_second, config
    training_data: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)  # this artifact: mae_5s, pcc_5s, total_count_error_pct
    reference_accuracy: dict = field(default_factory=dict)  # the same, of its PyTorch reference
    parity: dict = field(default_factory=dict)  # max/mean abs diff vs PyTorch, count diff
    tools: dict = field(default_factory=dict)  # versions of what made it
    created: str = ""
    output: str = OUTPUT_KIND  # what the network gives per output frame: a step-onset logit
    counter: dict = field(default_factory=dict)  # edge.counter.CounterParams (the cadence tracker); {} = defaults
    low_latency: dict = field(default_factory=dict)  # edge-run --low-latency: hop_frames, lookahead_frames (+ why, scores); {} = none
    state: list = field(default_factory=list)  # a streaming model's state tensors, [{"name", "shape"}] in input order; [] = windowed
    schema: int = CARD_SCHEMA_VERSION  # edge.contract.CARD_SCHEMA_VERSION of the writer; cards before it had none (1)

    def counter_params(self) -> CounterParams:
        """The event counter's parameters; malformed ones are a :class:`CardError`."""
        try:
            return CounterParams.from_dict(self.counter)
        except (TypeError, ValueError) as e:
            raise CardError(f"{self.artifact}{CARD_SUFFIX}: bad counter: {e}") from e

    def alignment(self, low_latency: bool = False) -> Alignment:
        """The windows ``edge-run`` runs: by default a window every ``hop_frames`` with its
        centre hop committed (the most context, the fewest network runs); with ``low_latency``
        (``edge-run --low-latency``) the card's ``low_latency`` schedule when it has one: a shorter
        hop and lookahead, so that a step is counted within half a second (``footfall
        bench-schedule`` chooses it from the latency/accuracy trade-off; docs/schedule)."""
        if self.streaming:  # one schedule: each packet once, as it completes
            try:
                return Alignment(self.window_frames, self.hop_frames, self.density_stride, None, stateful=True)
            except ValueError as e:
                raise CardError(f"{self.artifact}{CARD_SUFFIX}: {e}") from e
        s = self.low_latency if low_latency else {}
        if not isinstance(s, dict):
            raise CardError(f"{self.artifact}{CARD_SUFFIX}: low_latency must be an object, got {str(s)[:60]}")
        try:
            return Alignment(self.window_frames, int(s.get("hop_frames", self.hop_frames)), self.density_stride,
                             None if s.get("lookahead_frames") is None else int(s["lookahead_frames"]))
        except (TypeError, ValueError) as e:
            raise CardError(f"{self.artifact}{CARD_SUFFIX}: bad low_latency: {e}") from e

    @property
    def streaming(self) -> bool:
        """A model that carries state between calls: each call takes the next ``window_frames`` frames
        (a packet) once, with the state the previous call returned; windows never overlap."""
        return bool(self.state)

    def state_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape)]`` of the state tensors, in the artifact's input order."""
        return [(str(s["name"]), tuple(int(d) for d in s["shape"])) for s in self.state]

    @property
    def density_stride(self) -> int:
        """Front-end frames per density frame (``edge.contract.DENSITY_STRIDE`` for a card this runtime runs)."""
        return round(FRAMES_PER_SECOND / self.density_fps)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False)


def relative_paths(obj, roots: list[str | Path]):
    """``obj`` with every absolute path string under one of ``roots`` made relative to it.

    Cards record provenance (datasets, checkpoints, PSL folders) relative to the repository, so
    they say how to make the model again in any clone, not where one development checkout was.
    """
    if isinstance(obj, dict):
        return {k: relative_paths(v, roots) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, roots) for v in obj]
    if isinstance(obj, str) and obj.startswith("/"):
        for root in roots:
            root = str(root).rstrip("/")
            if obj.startswith(root + "/"):
                return obj[len(root) + 1 :]
    return obj


def card_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + CARD_SUFFIX)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_card(card: ModelCard, artifact: str | Path) -> Path:
    """Write the card beside ``artifact`` atomically; returns the card's path."""
    return atomic_write(card_path(artifact), card.to_json() + "\n")


def load_card(artifact: str | Path) -> ModelCard:
    """Read the card beside ``artifact`` (no verification; see :func:`verify_card`)."""
    path = card_path(artifact)
    if not Path(artifact).exists():
        raise CardError(f"{artifact}: no such model file")
    if Path(artifact).is_dir():
        raise CardError(f"{artifact}: is a folder, not a model file (.tflite, .pte or .onnx)")
    if Path(artifact).suffix not in FORMATS:
        raise CardError(f"{artifact}: not a model edge-run runs (.tflite, .pte or .onnx); a checkpoint (.pt) becomes "
                        "one with `footfall export`")
    if not path.exists():
        raise CardError(f"{artifact}: no model card (expected {path.name} beside it)")
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("schema", 1) == 1:  # cards before schema 2 had no "schema" or 1
            raise CardError(f"{path.name}: {SCHEMA_1}")
        names = {f.name for f in dataclasses.fields(ModelCard)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CardError(f"{path}: unknown card fields {unknown}")
        return ModelCard(**data)
    except CardError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise CardError(f"{path}: malformed model card ({str(e).splitlines()[0]})") from e
    except OSError as e:  # a folder, no permission
        raise CardError(f"{path}: cannot read the model card ({e.strerror or e})") from e


def verify_card(card: ModelCard, artifact: str | Path) -> None:
    """Check that ``card`` describes ``artifact`` and the front end this runtime computes."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise CardError(f"{artifact}: no such model file")
    if card.artifact != artifact.name:
        raise CardError(f"{card_path(artifact).name}: card is for {card.artifact!r}, not {artifact.name!r}")
    fmt = FORMATS.get(artifact.suffix)
    if fmt is None:
        raise CardError(f"{artifact}: unknown model format {artifact.suffix!r} (expected one of {sorted(FORMATS)})")
    if card.format != fmt:
        raise CardError(f"{card_path(artifact).name}: card says format {card.format!r}, file is {fmt!r}")
    try:
        digest = sha256_file(artifact)
    except OSError as e:
        raise CardError(f"{artifact}: cannot read the model ({e.strerror or e})") from e
    if digest != card.sha256:
        raise CardError(
            f"{artifact}: sha256 mismatch (file {digest[:12]}…, card {card.sha256[:12]}…): the artifact was changed or corrupted"
        )
    if card.schema == 1:
        raise CardError(f"{card_path(artifact).name}: {SCHEMA_1}")
    if card.schema != CARD_SCHEMA_VERSION:
        raise CardError(f"{card_path(artifact).name}: card schema {card.schema!r}; this runtime reads {CARD_SCHEMA_VERSION}")
    if card.output != OUTPUT_KIND:
        raise CardError(f"{card_path(artifact).name}: card output {card.output!r}; this runtime counts {OUTPUT_KIND!r}")
    if card.density_fps != DENSITY_FPS or card.density_stride != DENSITY_STRIDE:
        raise CardError(f"{card_path(artifact).name}: card density_fps {card.density_fps} != this runtime's {DENSITY_FPS} frames/s")
    ours = frontend_params()
    diff = {k: (card.frontend.get(k), v) for k, v in ours.items() if card.frontend.get(k) != v}
    if diff:
        raise CardError(f"{card_path(artifact).name}: front end differs from this runtime's: {diff} (card, runtime)")
    expected_shape = [1, 1, N_MELS, card.window_frames]
    if list(card.input_shape) != expected_shape:
        raise CardError(f"{card_path(artifact).name}: input_shape {card.input_shape} != {expected_shape}")
    if not (0 < card.hop_frames <= card.window_frames):
        raise CardError(f"{card_path(artifact).name}: hop_frames {card.hop_frames} not in (0, {card.window_frames}]")
    if card.window_frames % card.density_stride or card.hop_frames % card.density_stride:
        raise CardError(
            f"{card_path(artifact).name}: window {card.window_frames} and hop {card.hop_frames} must be multiples "
            f"of the density stride {card.density_stride}"
        )
    if card.state:
        where = card_path(artifact).name
        try:
            shapes = card.state_shapes()
        except (TypeError, KeyError, ValueError) as e:
            raise CardError(f"{where}: bad state (expected a list of {{name, shape}}): {str(e)[:80]}") from e
        if not isinstance(card.state, list) or any(len(s) < 1 or any(d < 1 for d in s) for _, s in shapes):
            raise CardError(f"{where}: bad state shapes {[list(s) for _, s in shapes]}")
        if card.hop_frames != card.window_frames:
            raise CardError(f"{where}: a streaming model takes each packet once: hop_frames {card.hop_frames} "
                            f"must equal window_frames {card.window_frames}")
        if card.low_latency:
            raise CardError(f"{where}: a streaming model has one schedule (no low_latency)")
    card.counter_params()  # a malformed counter or schedule is refused here, before anything runs
    card.alignment(low_latency=True)


def load_verified_card(artifact: str | Path) -> ModelCard:
    card = load_card(artifact)
    verify_card(card, artifact)
    return card
