"""Each contract value is defined once, in ``edge/contract.py``; the code restates none of them.

The scan reads the code tokens of every module in the product layers (comments and strings,
docstrings included, are skipped: shapes like ``(B, T // 4)`` document the contract) and fails
on a literal used as a contract value: the density stride in arithmetic on frames, windows or
hops, or as a ``stride=`` / ``time_multiple =`` value, the sample rate, the 160-sample hop, a frame rate given as ``fps=``, and the
window/hop defaults (``window_frames=200``, ``hop_frames=48``, ...).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from edge import contract as C

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("edge", "train", "export", "release", "bench", "footfall")
CONTRACT = ROOT / "edge" / "contract.py"

ARITH = {"//", "%", "/", "*", "//=", "*=", "/="}
FRAME_NAMES = re.compile(r"^(\w+_)?(window|hop)(_frames)?$|^frames$|^(window|hop)_len$")
FRAME_WORDS = re.compile(r"frame|window|hop|density|stride|^[wWtTn]$|^(win|length|span|start)$", re.I)
STRIDE_NAMES = re.compile(r"^(\w+_)?(stride|time_multiple)$")
FPS_NAMES = re.compile(r"^(\w+_)?fps$|^frames_per_second$")
RATE_NAMES = re.compile(r"^(\w+_)?(sample_rate|sr|rate)$")


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.INDENT, tokenize.DEDENT}
    if hasattr(tokenize, "FSTRING_MIDDLE"):
        skip |= {tokenize.FSTRING_START, tokenize.FSTRING_MIDDLE, tokenize.FSTRING_END}
    return [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline) if t.type not in skip]


def _value(tok: tokenize.TokenInfo) -> float | None:
    if tok.type != tokenize.NUMBER:
        return None
    try:
        return float(tok.string.replace("_", ""))
    except ValueError:
        return None


def _assigned(tokens: list[tokenize.TokenInfo], i: int) -> str | None:
    """The name a NUMBER at ``i`` is assigned or defaulted to (``name=N``, ``name: int = N``), if any."""
    if i < 2 or tokens[i - 1].string != "=":
        return None
    j, depth = i - 2, 0
    while j >= 0:  # back to the start of this parameter or statement
        s = tokens[j].string
        if s in (")", "]"):
            depth += 1
        elif s in ("(", "["):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (s in (",", ";") or tokens[j].type == tokenize.NEWLINE):
            break
        j -= 1
    seg = tokens[j + 1 : i - 1]
    k = next((n for n, t in enumerate(seg) if t.string == ":"), len(seg))
    return seg[k - 1].string if k and seg[k - 1].type == tokenize.NAME else None


def stray_literals(path: Path) -> list[str]:
    """``path:line: why`` for every contract literal in the code tokens of ``path``."""
    tokens = _code_tokens(path)
    found = []
    for i, tok in enumerate(tokens):
        v = _value(tok)
        if v is None:
            continue
        prev = tokens[i - 1].string if i else ""
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        name = _assigned(tokens, i) or ""
        why = None
        near = [t.string for t in tokens[max(0, i - 4) : i + 5] if t.type == tokenize.NAME and t.start[0] == tok.start[0]]
        if v == C.DENSITY_STRIDE and (((prev in ARITH or nxt in ARITH) and any(FRAME_WORDS.search(n) for n in near))
                                      or STRIDE_NAMES.match(name)):
            why = "the density stride"
        elif v == C.SAMPLE_RATE:
            why = "the sample rate"
        elif v == C.HOP_LENGTH and (prev in ARITH or nxt in ARITH or name in ("hop_length", "hop")):
            why = "the front-end hop (samples)"
        elif FPS_NAMES.match(name) and v in (C.FRAMES_PER_SECOND, C.DENSITY_FPS):
            why = "a frame rate"
        elif RATE_NAMES.match(name) and v == C.SAMPLE_RATE:
            why = "the sample rate"
        elif FRAME_NAMES.match(name) and v in (48, C.WINDOW_FRAMES, C.HOP_FRAMES, C.EVAL_WINDOW_FRAMES):
            why = f"a window/hop default ({name}={tok.string})"
        if why:
            found.append(f"{path.relative_to(ROOT) if ROOT in path.parents else path}:{tok.start[0]}: {tok.string} is {why}; import it from edge.contract")
    return found


def _modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py") if p != CONTRACT)


def test_no_stray_contract_literals():
    stray = [line for p in _modules() for line in stray_literals(p)]
    assert not stray, "contract values restated outside edge/contract.py:\n" + "\n".join(stray)


RESTATED = [
    "n = n_frames // 4\n",
    "hop = max(4, w // 2 // 4 * 4)\n",
    "density = per[s // 4 : (s + window_frames) // 4]\n",
    "class M:\n    time_multiple = 4\n",
    "def f(stride=4):\n    pass\n",
    "def f(window_frames: int = 200, hop_frames: int = 48):\n    pass\n",
    "class S:\n    window_frames: int = 240\n    hop_frames: int = 200\n",
    "SR = 16_000\n",
    "n = samples // 160\n",
    "def g(fps: float = 100):\n    pass\n",
    "g(fps=25)\n",
]
OTHER_NUMBERS = [
    '"""(B, 1, 64, T) -> (B, T // 4)"""\n',
    "x = 4  # four of something else\n",
    "fade = min(800, len(x) // 4)\n",
    "snare = eighths[i % 4 == 2]\n",
    "timeout = max(600.0, 4 * budget_s)\n",
    "layers = [(64, 2, 3, 2, 2), (4, 24, 2, 2)]\n",
    "n = 200 + x\n",
]


@pytest.mark.parametrize("snippet, restated", [(s, True) for s in RESTATED] + [(s, False) for s in OTHER_NUMBERS])
def test_the_scan_finds_restated_contracts_and_nothing_else(tmp_path, snippet, restated):
    path = tmp_path / "probe.py"
    path.write_text(snippet)
    assert bool(stray_literals(path)) == restated, snippet


def test_derived_values_divide_exactly():
    assert C.FRAMES_PER_SECOND * C.HOP_LENGTH == C.SAMPLE_RATE
    assert C.DENSITY_FPS * C.DENSITY_STRIDE == C.FRAMES_PER_SECOND
    assert C.WINDOW_FRAMES % C.DENSITY_STRIDE == 0 and C.HOP_FRAMES % C.DENSITY_STRIDE == 0
    assert C.EVAL_WINDOW_DENSITY_FRAMES * C.DENSITY_STRIDE == C.EVAL_WINDOW_FRAMES
    assert C.exact_div(500, 4) == 125
    with pytest.raises(ValueError, match="whole multiple"):
        C.exact_div(502, 4)


def test_every_layer_uses_the_one_definition():
    import edge.card as card
    import edge.counter as counter
    import edge.frontend as frontend
    import export.parity as parity
    import export.pipeline as pipeline
    import train.fit.config as config
    import train.models.base as base

    assert frontend.SAMPLE_RATE is C.SAMPLE_RATE and frontend.HOP_LENGTH is C.HOP_LENGTH and frontend.N_MELS is C.N_MELS
    assert frontend.frontend_params is C.frontend_params
    assert counter.DENSITY_STRIDE is C.DENSITY_STRIDE and counter.DENSITY_FPS is C.DENSITY_FPS
    assert base.DENSITY_STRIDE is C.DENSITY_STRIDE
    assert parity.DENSITY_FRAMES_5S == C.EVAL_WINDOW_DENSITY_FRAMES
    assert config.TrainConfig().window_frames == C.EVAL_WINDOW_FRAMES
    source_defaults = {f.name: f.default for f in __import__("dataclasses").fields(pipeline.ExportSource)}
    assert (source_defaults["window_frames"], source_defaults["hop_frames"]) == (C.WINDOW_FRAMES, C.HOP_FRAMES)
    assert card.ModelCard.__dataclass_fields__["schema"].default == C.CARD_SCHEMA_VERSION


def test_the_shipped_recipe_and_model_are_the_contract():
    """The shipped student's window and streaming hop, its config defaults and the bundled cards agree."""
    import json

    from train.distill.student import DistillConfig

    cfg = DistillConfig(psl="unused")
    assert (cfg.window_frames, cfg.stream_hop_frames) == (C.WINDOW_FRAMES, C.HOP_FRAMES)
    cards = sorted((ROOT / "edge" / "assets").glob("*.card.json"))
    assert cards
    for path in cards:
        card = json.loads(path.read_text())
        # a streaming model takes each packet once (the shipped packet); a windowed one, the shipped window and hop
        shipped = (C.PACKET_FRAMES, C.PACKET_FRAMES) if card.get("state") else (C.WINDOW_FRAMES, C.HOP_FRAMES)
        assert (card["window_frames"], card["hop_frames"], card["density_fps"]) == (*shipped, C.DENSITY_FPS), path.name
        assert card["frontend"] == C.frontend_params(), path.name
