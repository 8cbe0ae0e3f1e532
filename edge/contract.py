"""footfall's contracts: every value two layers (or the phone) must agree on, defined once, here.

Torch-free and import-free, so every layer can import it: the front end (``edge/frontend.py``),
the counter (``edge/counter.py``), the models (``train/models/base.py``), training configs,
export, bench and the model cards. Derived values are computed with :func:`exact_div`, which
refuses a contract that does not divide evenly (as whisper's ``audio.py`` does), so changing one
number cannot silently produce a fractional frame rate. ``tests/test_contract.py`` fails on a
stray literal of the stride, hop or window in the code.
"""

from __future__ import annotations

from typing import Final


def exact_div(x: int, y: int) -> int:
    """``x // y``, refusing a remainder: a contract value derived from others must be whole."""
    if y == 0 or x % y:
        raise ValueError(f"{x} is not a whole multiple of {y}")
    return x // y


# ---------------------------------------------------------------- audio and the log-mel front end
SAMPLE_RATE: Final[int] = 16_000  # Hz, mono float32 in [-1, 1]
N_FFT: Final[int] = 512  # 32 ms analysis window (hann, periodic)
HOP_LENGTH: Final[int] = 160  # 10 ms between front-end frames
N_MELS: Final[int] = 64
F_MIN: Final[float] = 20.0  # Hz; footfall impacts carry energy well below 100 Hz
F_MAX: Final[float] = SAMPLE_RATE / 2
LOG_EPS: Final[float] = 1e-12  # log(mel + LOG_EPS): floor at -27.6 for digital silence, 60 dB below
# the old 1e-6, so a run 30 dB quieter than usual keeps its steps above the floor (the models centre
# each band over their window, which removes gain and colour exactly; a floor would not)

FRAMES_PER_SECOND: Final[int] = exact_div(SAMPLE_RATE, HOP_LENGTH)  # 100 front-end frames per second
N_FREQS: Final[int] = exact_div(N_FFT, 2) + 1  # 257 rfft bins
HISTORY: Final[int] = N_FFT - HOP_LENGTH  # 352 samples of left context per frame

# ---------------------------------------------------------------- the models' output
# Every model maps log-mel to one step-onset *logit* per output frame (sigmoid: the probability that
# a step lands in that frame); the counter tracks a cadence through it (edge/counter.py). The names
# keep "density" for the output frame grid (stride and rate), which the old density head shared.
OUTPUT_KIND: Final[str] = "step_onset_logit"
DENSITY_STRIDE: Final[int] = 4  # front-end frames per output frame
DENSITY_FPS: Final[int] = exact_div(FRAMES_PER_SECOND, DENSITY_STRIDE)  # 25 output frames per second (40 ms)
LABEL_SCALE: Final[float] = 1.0  # label units per step: a window's frame labels sum to its step count

# ---------------------------------------------------------------- windows (front-end frames)
WINDOW_FRAMES: Final[int] = 240  # the shipped student's input window, 2.4 s
HOP_FRAMES: Final[int] = 200  # the shipped streaming hop, 2.0 s: one model call per hop
PACKET_FRAMES: Final[int] = 16  # the shipped streaming model's packet, 160 ms: one call per packet, its state carried
EVAL_WINDOW_S: Final[int] = 5  # the seed paper's evaluation window (and the teachers' input), seconds
EVAL_WINDOW_FRAMES: Final[int] = EVAL_WINDOW_S * FRAMES_PER_SECOND  # 500
EVAL_WINDOW_DENSITY_FRAMES: Final[int] = exact_div(EVAL_WINDOW_FRAMES, DENSITY_STRIDE)  # 125

# ---------------------------------------------------------------- model cards
CARD_SCHEMA_VERSION: Final[int] = 2  # ModelCard.schema: bump when a card field changes meaning or goes away
# (2: the output is a step-onset logit counted as events; 1 was a step density counted as its sum)

# every window and hop the shipped model uses is whole in density frames
for _frames in (WINDOW_FRAMES, HOP_FRAMES, PACKET_FRAMES, EVAL_WINDOW_FRAMES):
    exact_div(_frames, DENSITY_STRIDE)
if not 0 < HOP_FRAMES <= WINDOW_FRAMES:
    raise ValueError(f"HOP_FRAMES {HOP_FRAMES} not in (0, WINDOW_FRAMES {WINDOW_FRAMES}]")
del _frames


def frontend_params() -> dict:
    """The front-end description every model card carries and ``edge-run`` checks."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "f_min": F_MIN,
        "f_max": F_MAX,
        "log_eps": LOG_EPS,
        "window": "hann_periodic",
        "framing": "causal_left_pad",
    }
