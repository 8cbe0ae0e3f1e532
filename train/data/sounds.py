"""The recorded-sound corpus: footsteps, impacts and ambience beds from Debian data packages.

Why: a generator alone teaches a model the generator (ARCHITECTURE.md, "real sounds"). This
module decodes the sound libraries that registry packages ship into one cache folder, with an
index in the manner of soundata/mirdata: every clip names its package and version, the path
inside the package, the licence (read from the package's own ``copyright`` file), a category,
the surface where the file name says it, its original rate and level, and the sha256 of the
source file and of the decoded clip; :func:`validate` re-checks them.

Recordings are split **by source package** (:data:`REGISTRY`, field ``split``): ``train``
packages feed the generators, ``val`` packages only the real-sound validation set that chooses
epochs and thresholds, ``eval`` packages only the real-sound evaluation set results are reported
on (both :mod:`train.data.realset`). Reserved packages (:data:`RESERVED_PREFIXES`) are kept for an
independent evaluation and are refused everywhere.

Layout of the cache (default ``<clone>/data/sounds``, or ``$FOOTFALL_SOUNDS``, or ``--out``)::

    root/
      manifest.csv               one row per clip, all packages (rewritten after every build)
      <package>/index.json       package, version, registry key, licence, clips (the same rows)
      <package>/clips.npz        decoded clips: float32, mono, SAMPLE_RATE, keyed by clip id
      <package>/source/...       the source files taken from the package (re-hashed by validate)
      <package>/copyright        the package's copyright file, as shipped

Building happens only here, at set-up time (``footfall data sounds``): ``apt-get download`` and
``dpkg-deb -x`` into a temporary folder, decode, then one ``os.replace`` publishes the package
(resumable: an interrupted build leaves no half package; idempotent: a package whose registry
entry and version did not change is skipped). Nothing downloads at import or at run time.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from edge.card import sha256_file
from edge.frontend import SAMPLE_RATE
from edge.util import atomic_open

CATEGORIES = ("footstep", "impact", "ambience", "speech", "music", "wind", "cloth")
ONE_SHOTS = ("footstep", "impact", "cloth")  # peak-normalised, short; the rest are beds (RMS-normalised)
SPLITS = ("train", "val", "eval")  # training; choosing models and thresholds; the real-sound evaluation

# Kept for an independent evaluation: never downloaded, listed, decoded or used. Prefixes of the
# Debian package name, and Quake III-derived game data under any name.
RESERVED_PREFIXES = (
    "0ad", "lugaru", "etw", "scorched3d", "supertuxkart", "openarena", "nexuiz", "xonotic", "redeclipse",
    "sauerbraten", "cube2", "minetest", "luanti",
    # Quake III-derived game data
    "ioquake3", "quake3", "urbanterror", "tremulous", "worldofpadman", "smokinguns", "alienarena", "alien-arena",
)
RESERVED_SUBSTRINGS = ("quake", "openarena")

BUILD_VERSION = 4  # bump when decoding/trimming/normalising changes: every package rebuilds
ONE_SHOT_PEAK_DBFS = -1.0  # one-shots are stored at this peak
BED_RMS_DBFS = -20.0  # beds are stored at this RMS (then limited to BED_MAX_PEAK)
BED_MAX_PEAK = 0.99
TRIM_DB = 50.0  # trim leading/trailing samples quieter than the clip's peak minus this
TRIM_PRE_S, TRIM_POST_S = 0.005, 0.02  # kept around the trimmed span
ONSET_DB = 20.0  # a one-shot's onset: first sample within this of its peak
MAX_ONE_SHOT_S = 1.5
MAX_BED_S = 90.0
MIN_CLIP_S = 0.02
# cutting a clip of several footfalls into one-shots (``Rule.split_events``)
EVENT_HOP = 16  # samples (1 ms) of the envelope
EVENT_MIN_GAP_S = 0.15  # footfalls closer than this are one event
EVENT_REL_DB = 20.0  # an event peak is within this of the clip's loudest
EVENT_MAX_S = 0.5

ENV_ROOT = "FOOTFALL_SOUNDS"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO_ROOT / "data" / "sounds"
MANIFEST = "manifest.csv"
INDEX = "index.json"
CLIPS = "clips.npz"
MANIFEST_COLUMNS = (
    "clip_id", "package", "version", "path", "licence", "category", "surface", "family", "split", "duration_s",
    "onset_s", "orig_sample_rate", "orig_channels", "level_dbfs", "peak_dbfs", "event", "sha256_source", "sha256_clip",
)


class SoundsError(ValueError):
    """A corpus that cannot be built or used; one line naming the package, file or tool."""


def is_reserved(name: str) -> bool:
    n = name.strip().lower()
    return n.startswith(RESERVED_PREFIXES) or any(s in n for s in RESERVED_SUBSTRINGS)


def check_not_reserved(name: str) -> None:
    if is_reserved(name):
        raise SoundsError(f"package {name!r} is reserved for an independent evaluation (RESERVED_PREFIXES); it is never used")


# --------------------------------------------------------------------------------------------
# the registry: the one place that says which packages, which files, what they are


@dataclass(frozen=True)
class Rule:
    """Files of a package matching ``glob`` (fnmatch on the path inside the package, no leading /)."""

    glob: str
    category: str
    surface: str = ""  # where the file name says it
    split_events: bool = False  # one file of several footfalls: cut into one-shots at its onsets
    max_files: int = 0  # 0: all matches (sorted by path); else the first max_files

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"rule {self.glob!r}: category {self.category!r} not in {CATEGORIES}")


@dataclass(frozen=True)
class Package:
    """One Debian data package: its split role, the files taken and what they are."""

    name: str
    split: str  # train | val | eval: a package is in exactly one
    rules: tuple[Rule, ...]
    licence_hint: str  # used only when the copyright file is not machine-readable (DEP-5)
    note: str = ""

    def __post_init__(self) -> None:
        check_not_reserved(self.name)
        if self.split not in SPLITS:
            raise ValueError(f"package {self.name}: split {self.split!r} not in {SPLITS}")

    def key(self) -> str:
        """Hash of the entry and the build code version: a change rebuilds the package."""
        blob = json.dumps({"entry": asdict(self), "build": BUILD_VERSION, "sample_rate": SAMPLE_RATE}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def rule_for(self, path: str) -> Rule | None:
        return next((r for r in self.rules if fnmatch.fnmatchcase(path, r.glob)), None)


_TW = "usr/share/games/teeworlds/data/audio/"
_HW = "usr/share/games/hedgewars/Data/Sounds/"
_FD = "usr/share/freedroidrpg/data/sound/"
_WN = "usr/share/games/wesnoth/1.16/data/core/sounds/"
_ST = "usr/share/games/supertux2/sounds/"
_HY = "usr/share/hydrogen/data/drumkits/"
_AS = "usr/share/asterisk/sounds/en_US_f_Allison/"
_FL = "usr/share/games/flare/mods/"
_MG = "usr/share/games/megaglest/"
_CE = "usr/share/games/caveexpress/sounds/"
_AR = "usr/share/games/ardentryst/Sounds/"
_SP = "usr/share/sonic-pi/samples/"
_CB = "usr/share/games/colobot/sounds/"

REGISTRY: tuple[Package, ...] = (
    # ---- train: the generator's recorded sounds
    Package("teeworlds-data", "train", (
        Rule(_TW + "foley_foot_*.wv", "footstep"),
        Rule(_TW + "foley_land-*.wv", "impact"),
        Rule(_TW + "foley_body_impact-*.wv", "impact"),
        Rule(_TW + "music_menu.wv", "music"),
    ), "CC-BY-SA-3.0", "small: the corpus make test builds"),
    Package("hedgewars-data", "train", (
        Rule(_HW + "steps.ogg", "footstep", split_events=True),
        Rule(_HW + "*impact.ogg", "impact"),
        Rule(_HW + "bump.ogg", "impact"),
        Rule("usr/share/games/hedgewars/Data/Music/*.ogg", "music", max_files=14),  # step-free beds: music with a beat
    ), "GFDL-1.3"),
    Package("freedroidrpg-data", "train", (
        Rule(_FD + "effects/tux_footstep.ogg", "footstep", split_events=True),
        Rule(_FD + "music/*.ogg", "music"),
    ), "GPL-2+"),
    Package("wesnoth-1.16-data", "train", (
        Rule(_WN + "ambient/birds*.ogg", "ambience", "forest"),
        Rule(_WN + "ambient/morning.ogg", "ambience"),
        Rule(_WN + "ambient/night.ogg", "ambience"),
        Rule(_WN + "ambient/campfire.ogg", "ambience"),
        Rule(_WN + "horse-*canter.wav", "footstep", "hooves", split_events=True),  # about 6 hoofbeats a file
        Rule(_WN + "club.ogg", "impact"),
        Rule(_WN + "mace.*", "impact"),
        Rule(_WN + "staff.*", "impact"),
        Rule(_WN + "fist.ogg", "impact"),
        Rule(_WN + "flail.ogg", "impact"),
        Rule(_WN + "mud-fist.ogg", "impact"),
    ), "GPL-2+"),
    Package("caveexpress-data", "train", (
        Rule(_CE + "npc-*-walk.ogg", "footstep", split_events=True),  # walking loops (a heavy creature among them)
        Rule(_CE + "npc-walking-attack.ogg", "footstep", split_events=True),  # a running loop
        Rule(_CE + "player-land[0-9].ogg", "impact"),
        Rule(_CE + "crate-hit[0-9].ogg", "impact"),
        Rule(_CE + "stone-hit.ogg", "impact"),
    ), "CC-BY-SA-4.0"),
    Package("ardentryst", "train", (
        Rule(_AR + "NYX/NYX_STEP_CONCRETE*.ogg", "footstep", "concrete"),  # recorded shoes, one step a file
        Rule(_AR + "NYX/NYX_STEP_DIRT*.ogg", "footstep", "dirt"),
        Rule(_AR + "NYX/NYX_STEP_GRASS*.ogg", "footstep", "grass"),
        Rule(_AR + "NYX/NYX_STEP_SNOW*.ogg", "footstep", "snow"),
        Rule(_AR + "Hit.ogg", "impact"),
        Rule(_AR + "WoodHit.ogg", "impact", "wood"),
        Rule(_AR + "Rock.ogg", "impact", "rock"),
    ), "CC-BY-SA-3.0"),
    Package("sonic-pi-samples", "train", (
        Rule(_SP + "tabla_*.flac", "impact", split_events=True),  # hand-drum thuds
        Rule(_SP + "drum_tom_*.flac", "impact"),
        Rule(_SP + "drum_bass_*.flac", "impact"),
        Rule(_SP + "drum_heavy_kick.flac", "impact"),
    ), "CC0-1.0"),
    Package("supertux-data", "train", (
        Rule(_ST + "rain.wav", "ambience"),
        Rule(_ST + "waterfall.wav", "ambience"),
        Rule("usr/share/games/supertux2/music/forest/*.ogg", "music", max_files=10),
        Rule("usr/share/games/supertux2/music/retro/*.ogg", "music"),
    ), "GPL-3+"),
    Package("hydrogen-drumkits", "train", (
        Rule(_HY + "*/*[Kk]ick*.wav", "impact"),
        Rule(_HY + "*/*[Tt]om*.wav", "impact"),
        Rule(_HY + "*/*[Ss]nare*.wav", "impact", max_files=40),
    ), "GPL-2+", "percussive impacts"),
    Package("asterisk-core-sounds-en-wav", "train", (
        Rule(_AS + "*.wav", "speech", max_files=80),
    ), "CC-BY-SA-3.0", "recorded speech prompts (one speaker)"),
    # more voices, so that speech is not one speaker's: a French (female), an Italian (male) and a
    # Russian (female) speaker's prompts
    Package("asterisk-core-sounds-fr-wav", "train", (
        Rule("usr/share/asterisk/sounds/fr_CA_f_June/*.wav", "speech", max_files=40),
    ), "CC-BY-SA-3.0", "recorded speech prompts (one speaker)"),
    Package("asterisk-core-sounds-it-wav", "train", (
        Rule("usr/share/asterisk/sounds/it_IT_m_Carlo/*.wav", "speech", max_files=40),
    ), "CC-BY-SA-3.0", "recorded speech prompts (one speaker)"),
    Package("asterisk-core-sounds-ru-wav", "train", (
        Rule("usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/*.wav", "speech", max_files=40),
    ), "CC-BY-SA-3.0", "recorded speech prompts (one speaker)"),
    # more music, so that a beat under a melody is heard in many arrangements (step-free beds): a
    # point-and-click adventure's soundtrack and a strategy game's
    Package("drascula-music", "train", (
        Rule("usr/share/scummvm/drascula/audio/track*.ogg", "music", max_files=16),
    ), "Drascula-License", "recorded game music"),
    Package("asc-music", "train", (
        Rule("usr/share/games/asc/music/*.mp3", "music"),
    ), "GPL-2+", "recorded game music"),
    # more recorded footsteps, so that a step is heard on more surfaces and from more recordists:
    # a puzzle game's shoes on sand, grass, snow, steel, stone and wood (a few steps a file), a
    # strategy game's marching unit and single steps, two platformers' single steps
    Package("berusky2-data", "train", (
        Rule("usr/share/games/berusky2/sound/sound/steps*.wav", "footstep", split_events=True),
        Rule("usr/share/games/berusky2/sound/sound/wstep[0-9].wav", "footstep", split_events=True),
    ), "GPL-2+", "large (560 MB): 11 files are taken"),
    Package("freeciv-data", "train", (
        Rule("usr/share/games/freeciv/stdsounds/Tread.ogg", "footstep", "march", split_events=True),
        Rule("usr/share/games/freeciv/stdsounds/foot3.ogg", "footstep"),
    ), "GPL-2+"),
    Package("amphetamine-data", "train", (
        Rule("usr/share/games/amphetamine/sounds/step.wav", "footstep"),
    ), "GPL-2+"),
    Package("cavepacker-data", "train", (
        Rule("usr/share/games/cavepacker/sounds/step.ogg", "footstep"),
    ), "CC-BY-SA-4.0"),
    # ---- val: footsteps never trained on, for the real-sound validation set that chooses epochs and
    # thresholds (train.data.realset --split val; its beds are the train split's), and speech and
    # music never trained on, for the step-free runs that choose beside it (footfall data negatives
    # --split val)
    Package("colobot-common-sounds", "val", (
        Rule(_CB + "sound005.wav", "footstep", "mud"),  # numbered files: the game's sound table names them
        Rule(_CB + "sound027.wav", "footstep", "water"),
        Rule(_CB + "sound059.wav", "footstep", "rock"),
        Rule(_CB + "sound060.wav", "footstep", "rock"),
    ), "GPL-3+"),
    Package("btanks-data", "val", (
        Rule("usr/share/games/btanks/data/sounds/man-steps.ogg", "footstep", "boots", split_events=True),
    ), "GPL-2+"),
    Package("freedink-data", "val", (
        Rule("usr/share/games/dink/dink/Sound/stairs.wav", "footstep", "wood", split_events=True),
    ), "public-domain"),
    # more footsteps never trained on, so that the choice hears hooves, marching boots and a
    # person walking, as the evaluation set has creatures, hooves and shoes
    Package("triplea", "val", (
        Rule("usr/share/games/triplea/assets/sounds/generic/territory_capture_land/*marching.mp3", "footstep", "march", split_events=True),
        Rule("usr/share/games/triplea/assets/sounds/classical/territory_capture_blitz/*galloping.mp3", "footstep", "hooves", split_events=True),
    ), "GPL-2+"),
    Package("scratch", "val", (
        Rule("usr/share/scratch/Media/Sounds/Human/Footsteps-[0-9].*", "footstep", "shoes", split_events=True),
        Rule("usr/share/scratch/Media/Sounds/Animal/HorseGallop.wav", "footstep", "hooves", split_events=True),
    ), "CC-BY-SA-3.0"),
    Package("asterisk-moh-opsound-wav", "val", (
        Rule("usr/share/asterisk/moh/*.wav", "music"),  # music on hold: electronic tracks with a beat
    ), "CC-BY-SA-3.0"),
    Package("asterisk-prompt-it-menardi-wav", "val", (
        Rule("usr/share/asterisk/sounds/it_IT_f_Menardi/*.wav", "speech", max_files=60),
    ), "CC-BY-SA-3.0", "recorded speech prompts (one speaker, not the train split's)"),
    # ---- eval: only the real-sound evaluation set (train.data.realset)
    Package("flare-game", "eval", (
        Rule(_FL + "fantasycore/soundfx/steps/step_echo*.ogg", "footstep", "stone"),
        Rule(_FL + "fantasycore/soundfx/steps/step_*.ogg", "footstep"),
        Rule(_FL + "fantasycore/soundfx/environment/*wind_loop.ogg", "wind"),
        Rule(_FL + "fantasycore/soundfx/environment/bird_twitter_loop.ogg", "ambience", "forest"),
        Rule(_FL + "fantasycore/soundfx/environment/forest_owl_loop.ogg", "ambience", "forest"),
        Rule(_FL + "fantasycore/soundfx/environment/raven_loop.ogg", "ambience"),
        Rule(_FL + "fantasycore/soundfx/environment/river_loop.ogg", "ambience"),
        Rule(_FL + "empyrean_campaign/soundfx/environment/rain.ogg", "ambience"),
        Rule(_FL + "fantasycore/soundfx/npcs/*_merchant_*.ogg", "speech"),
        Rule(_FL + "fantasycore/soundfx/inventory/inventory_cloth.ogg", "cloth"),
        Rule(_FL + "fantasycore/music/*_theme.ogg", "music"),  # step-free evaluation only (realset's beds are ambience and wind)
    ), "CC-BY-SA-3.0+"),
    Package("megaglest-data", "eval", (
        Rule(_MG + "techs/megapack/commondata/sounds/horseman_walk*.wav", "footstep", "hooves", split_events=True),
        Rule(_MG + "techs/megapack/commondata/sounds/golem_walk*.wav", "footstep", split_events=True),
        Rule(_MG + "techs/megapack/factions/magic/units/*/sounds/*walk*.wav", "footstep", split_events=True),
        Rule(_MG + "techs/megapack/factions/persian/units/elephant/sounds/elewalk*.wav", "footstep", split_events=True),
        Rule(_MG + "tilesets/*/sounds/*day.ogg", "ambience"),
        Rule(_MG + "tilesets/*/sounds/night*.ogg", "ambience"),
        Rule(_MG + "tilesets/*/sounds/rain.*", "ambience"),
        Rule(_MG + "tilesets/*/sounds/wind.ogg", "wind"),
        Rule(_MG + "techs/megapack/factions/*/music/*.ogg", "music"),  # step-free evaluation only
    ), "CC-BY-SA-3.0"),
)

PROFILES: dict[str, tuple[str, ...]] = {
    "small": ("teeworlds-data",),  # make test: 7.6 MB download, train split only
    "full": tuple(p.name for p in REGISTRY),  # make model / on demand
}


def registry() -> dict[str, Package]:
    """Name -> entry; refuses duplicates and reserved names (checked again at every build)."""
    out: dict[str, Package] = {}
    for p in REGISTRY:
        check_not_reserved(p.name)
        if p.name in out:
            raise SoundsError(f"package {p.name} listed twice in REGISTRY")
        out[p.name] = p
    return out


def split_packages(split: str) -> tuple[str, ...]:
    """Names of the registry packages of one split role."""
    return tuple(p.name for p in REGISTRY if p.split == split)


def default_root() -> Path:
    """``$FOOTFALL_SOUNDS`` if set, else ``<clone>/data/sounds`` (git-ignored)."""
    env = os.environ.get(ENV_ROOT)
    return Path(env) if env else DEFAULT_ROOT


# --------------------------------------------------------------------------------------------
# licence from a Debian copyright file


def _dep5_stanzas(text: str) -> list[tuple[list[str], str]]:
    """(Files patterns, first line of License) per stanza of a machine-readable copyright file."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:\s*(.*(?:\n[ \t].*)*)", block, re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)$", block, re.M)
        if files and lic:
            # hydrogen-drumkits names upstream archives (Kit.h2drumkit) that install as a folder Kit/
            pats = [re.sub(r"\.h2drumkit$", "/*", p) for p in files.group(1).split()]
            out.append((pats, lic.group(1).strip()))
    return out


def licence_of(copyright_text: str, path: str, hint: str) -> tuple[str, str]:
    """Licence of ``path`` (inside the package) -> (licence, how it was found).

    DEP-5 files name paths of the upstream source tree, not of the installed package
    (``share/hedgewars/Data/Sounds/*`` is installed as ``usr/share/games/hedgewars/Data/Sounds/``),
    so a stanza matches when a tail of its pattern of at least a literal folder and a file
    pattern matches a tail of the installed path (the last matching stanza wins, as in DEP-5).
    A file that is not machine-readable gets the registry's hint, recorded as such.
    """
    parts = path.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    best, best_score = None, -1
    for patterns, lic in _dep5_stanzas(copyright_text):
        for pat in patterns:
            if pat == "*":
                if best is None:
                    best, best_score = (lic, "dep5: Files: *"), 0
                continue
            pp = pat.split("/")
            heads = [pp[j:] for j in range(max(1, len(pp) - 1)) if len(pp) - j >= 2 and not any(ch in pp[j] for ch in "*?[")] or [pp]
            # tail matching is looser than DEP-5's exact paths: the longest matched pattern wins
            # (``hedgewars/*`` also matches ``.../hedgewars/Data/Sounds/x.ogg``), then the last
            score = max((len(h) for h in heads for t in tails if fnmatch.fnmatchcase(t, "/".join(h))), default=-1)
            if score >= 1 and score >= best_score:
                best, best_score = (lic, f"dep5: Files: {pat}"), score
    if best:
        return best
    return hint, "registry (copyright file not machine-readable)"


# --------------------------------------------------------------------------------------------
# decoding and conditioning


def _run(cmd: Sequence[str], cwd: Path | None = None, what: str = "") -> bytes:
    try:
        res = subprocess.run(list(cmd), cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError as e:
        raise SoundsError(f"{cmd[0]} not found; {what or 'install it'}") from e
    if res.returncode != 0:
        err = (res.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
        raise SoundsError(f"{' '.join(cmd[:3])}: exit {res.returncode}: {err}")
    return res.stdout


def decode_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Any file soundfile reads, or WavPack (.wv, via ``wvunpack`` or ``ffmpeg``) -> ((n, ch) float32, rate)."""
    import soundfile as sf

    path = Path(path)
    if path.suffix.lower() == ".wv":
        if shutil.which("wvunpack"):
            data = _run(["wvunpack", "-q", "-y", str(path), "-o", "-"])
        elif shutil.which("ffmpeg"):
            data = _run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "wav", "-"])
        else:
            raise SoundsError(f"{path.name}: WavPack needs wvunpack or ffmpeg; apt-get install wavpack")
        src: object = io.BytesIO(data)
    else:
        src = str(path)
    try:
        audio, sr = sf.read(src, dtype="float32", always_2d=True)
    except Exception as e:  # LibsndfileError, RuntimeError...
        raise SoundsError(f"{path.name}: undecodable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    return audio, int(sr)


def _dbfs(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-10)))


def trim(x: np.ndarray) -> np.ndarray:
    """Drop leading/trailing samples below peak - TRIM_DB (keeping a little either side)."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (-TRIM_DB / 20))
    lo = max(0, int(loud[0]) - int(TRIM_PRE_S * SAMPLE_RATE))
    hi = min(len(x), int(loud[-1]) + 1 + int(TRIM_POST_S * SAMPLE_RATE))
    return x[lo:hi]


def onset_s(x: np.ndarray) -> float:
    """Seconds from the start to the first sample within ONSET_DB of the peak (a step's label point)."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak <= 0:
        return 0.0
    return float(np.argmax(np.abs(x) >= peak * 10 ** (-ONSET_DB / 20))) / SAMPLE_RATE


def split_events(x: np.ndarray) -> list[np.ndarray]:
    """Cut a recording of several footfalls into one-shots, one per envelope peak.

    Peaks of the 1-ms max envelope at least EVENT_MIN_GAP_S apart and within EVENT_REL_DB of the
    loudest; each event runs from its rise (TRIM_PRE_S before it) to the next event's rise.
    """
    from scipy.signal import find_peaks

    n = len(x) // EVENT_HOP
    if n < 3:
        return [x]
    env = np.abs(x[: n * EVENT_HOP]).reshape(n, EVENT_HOP).max(axis=1)
    peaks, _ = find_peaks(env, height=env.max() * 10 ** (-EVENT_REL_DB / 20), distance=int(EVENT_MIN_GAP_S * SAMPLE_RATE / EVENT_HOP))
    if len(peaks) <= 1:
        return [x]
    starts = []
    for p in peaks:  # walk back from the peak to where the envelope rose above -ONSET_DB of it
        lo = p
        while lo > 0 and env[lo - 1] >= env[p] * 10 ** (-ONSET_DB / 20) and p - lo < 30:
            lo -= 1
        starts.append(max(0, lo * EVENT_HOP - int(TRIM_PRE_S * SAMPLE_RATE)))
    starts.append(len(x))
    max_n = int(EVENT_MAX_S * SAMPLE_RATE)
    return [x[a : min(b, a + max_n)] for a, b in zip(starts[:-1], starts[1:]) if b - a > 0]


def condition(audio: np.ndarray, sr: int, category: str) -> tuple[np.ndarray, dict]:
    """Down-mix, resample to SAMPLE_RATE, trim, cap the length and level-normalise -> (clip, levels)."""
    from edge.audio import resample, to_mono

    mono = to_mono(audio)
    levels = {"level_dbfs": round(_dbfs(float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))), 2) if mono.size else -200.0,
              "peak_dbfs": round(_dbfs(float(np.abs(mono).max())), 2) if mono.size else -200.0}
    x = trim(resample(mono, sr, SAMPLE_RATE).astype(np.float64))
    one_shot = category in ONE_SHOTS
    x = x[: int((MAX_ONE_SHOT_S if one_shot else MAX_BED_S) * SAMPLE_RATE)]
    if one_shot:
        x = x * (10 ** (ONE_SHOT_PEAK_DBFS / 20) / max(float(np.abs(x).max()), 1e-12)) if x.size else x
    elif x.size:
        x = x * (10 ** (BED_RMS_DBFS / 20) / max(float(np.sqrt(np.mean(x**2))), 1e-12))
        x = x * min(1.0, BED_MAX_PEAK / max(float(np.abs(x).max()), 1e-12))
    return x.astype(np.float32), levels


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def clip_sha256(x: np.ndarray) -> str:
    """sha256 of a decoded clip: its little-endian float32 samples."""
    return sha256_bytes(np.ascontiguousarray(x, dtype="<f4").tobytes())


file_sha256 = sha256_file  # the one file hash of the project (edge.card), under the corpus's name


# --------------------------------------------------------------------------------------------
# building


@dataclass
class BuildResult:
    package: str
    status: str  # built | skipped
    version: str
    clips: int
    seconds: float  # of decoded audio


def _apt_version(name: str) -> str | None:
    """The candidate version apt would download, or None when apt cannot say."""
    if not shutil.which("apt-cache"):
        return None
    try:
        out = subprocess.run(["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    m = re.search(r"^Version:\s*(\S+)", out, re.M)
    return m.group(1) if m else None


def _fetch(name: str, into: Path) -> tuple[Path, str]:
    """apt-get download + dpkg-deb -x into ``into``/root -> (unpacked root, version)."""
    check_not_reserved(name)
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise SoundsError(f"{name}: building the sound corpus needs apt-get and dpkg-deb (a Debian system)")
    _run(["apt-get", "download", "-q", name], cwd=into, what="a Debian system")
    debs = sorted(into.glob(f"{name}_*.deb"))
    if not debs:
        raise SoundsError(f"{name}: apt-get download left no .deb")
    version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"]).decode().strip()
    root = into / "root"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
    for d in debs:
        d.unlink()  # the .deb is not kept
    return root, version


def _clip_id(package: str, path: str, event: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", path.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("_")
    digest = hashlib.sha256(path.encode()).hexdigest()[:6]
    return f"{package}:{stem}-{digest}" + (f"-e{event:02d}" if event >= 0 else "")


def family_of(path: str) -> str:
    """The sound's family from its file name, digits and separators stripped (``step_leather3`` -> ``step_leather``)."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[-_ ]*\d+$", "", stem).lower()


def decode_package(pkg: Package, unpacked: Path, version: str, out: Path,
                   tick: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Decode the files of ``pkg`` under ``unpacked`` into ``out`` (clips.npz, source/, copyright) -> rows."""
    copyright_file = unpacked / "usr/share/doc" / pkg.name / "copyright"
    text = copyright_file.read_text(errors="replace") if copyright_file.is_file() else ""
    if text:
        shutil.copyfile(copyright_file, out / "copyright")
    files: list[tuple[str, Rule]] = []
    taken: dict[int, int] = {}
    all_paths = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file() and not p.is_symlink())
    for rel in all_paths:
        rule = pkg.rule_for(rel)
        if rule is None:
            continue
        i = pkg.rules.index(rule)
        if rule.max_files and taken.get(i, 0) >= rule.max_files:
            continue
        if (unpacked / rel).stat().st_size == 0:
            continue
        taken[i] = taken.get(i, 0) + 1
        files.append((rel, rule))
    if not files:
        raise SoundsError(f"{pkg.name} {version}: no file matches its registry rules; check the globs against dpkg -c")
    arrays: dict[str, np.ndarray] = {}
    rows: list[dict] = []
    seen_src: set[str] = set()
    for rel, rule in files:
        if tick:
            tick(rel.rsplit("/", 1)[-1])
        src = unpacked / rel
        src_sha = file_sha256(src)
        if src_sha in seen_src:  # the same recording under two names (tilesets share sounds)
            continue
        seen_src.add(src_sha)
        audio, sr = decode_file(src)
        licence, how = licence_of(text, rel, pkg.licence_hint)
        dest = out / "source" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        mono_full, levels = condition(audio, sr, rule.category)
        if rule.split_events and rule.category in ONE_SHOTS:
            from edge.audio import resample, to_mono

            whole = trim(resample(to_mono(audio), sr, SAMPLE_RATE).astype(np.float64))
            pieces = [(k, condition(e[:, None].astype(np.float32), SAMPLE_RATE, rule.category)[0]) for k, e in enumerate(split_events(whole))]
        else:
            pieces = [(-1, mono_full)]
        for k, x in pieces:
            if len(x) < MIN_CLIP_S * SAMPLE_RATE or not np.any(x):
                continue
            cid = _clip_id(pkg.name, rel, k)
            arrays[cid] = x
            rows.append({
                "clip_id": cid, "package": pkg.name, "version": version, "path": rel, "licence": licence,
                "licence_source": how, "category": rule.category, "surface": rule.surface, "family": family_of(rel),
                "split": pkg.split, "duration_s": round(len(x) / SAMPLE_RATE, 4),
                "onset_s": round(onset_s(x), 5) if rule.category in ONE_SHOTS else 0.0,
                "orig_sample_rate": sr, "orig_channels": int(audio.shape[1]), **levels, "event": k,
                "sha256_source": src_sha, "sha256_clip": clip_sha256(x),
            })
    if not rows:
        raise SoundsError(f"{pkg.name} {version}: every matched file decoded to silence")
    np.savez(out / CLIPS, **{r["clip_id"]: arrays[r["clip_id"]] for r in rows})
    return rows


def _read_index(root: Path, name: str) -> dict | None:
    path = root / name / INDEX
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build_package(pkg: Package, root: Path, force: bool = False,
                  tick: Optional[Callable[[str], None]] = None) -> BuildResult:
    """Fetch, decode and publish one package (skipped when its registry key and version match)."""
    check_not_reserved(pkg.name)
    root.mkdir(parents=True, exist_ok=True)
    old = _read_index(root, pkg.name)
    if old and not force and old.get("registry_key") == pkg.key():
        candidate = _apt_version(pkg.name)
        if candidate is None or candidate == old.get("version"):
            return BuildResult(pkg.name, "skipped", old["version"], len(old["clips"]), sum(c["duration_s"] for c in old["clips"]))
    for stale in root.glob(f".build-{pkg.name}-*"):  # left by an interrupted build (resumable: start this package over)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{pkg.name}-", dir=root))
    try:
        if tick:
            tick("apt-get download")
        unpacked, version = _fetch(pkg.name, tmp)
        out = tmp / "out"
        out.mkdir()
        rows = decode_package(pkg, unpacked, version, out, tick)
        index = {"package": pkg.name, "version": version, "split": pkg.split, "registry_key": pkg.key(),
                 "build_version": BUILD_VERSION, "sample_rate": SAMPLE_RATE, "entry": asdict(pkg), "clips": rows}
        (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
        dest = root / pkg.name
        if dest.exists():  # publish atomically: the old package is moved aside, then removed
            aside = tmp / "old"
            os.replace(dest, aside)
        os.replace(out, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildResult(pkg.name, "built", version, len(rows), sum(r["duration_s"] for r in rows))


def write_manifest(root: Path) -> Path:
    """``root/manifest.csv``: every clip of every built package (atomic)."""
    names = sorted(p.parent.name for p in root.glob(f"*/{INDEX}"))
    rows = [r for name in names if (idx := _read_index(root, name)) for r in idx["clips"]]
    path = root / MANIFEST
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def resolve_packages(profile: str | None, packages: Sequence[str] = ()) -> list[Package]:
    """The registry entries of a profile and/or explicit names (refusing reserved and unknown ones)."""
    reg = registry()
    names: list[str] = []
    if profile:
        if profile not in PROFILES:
            raise SoundsError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
        names += PROFILES[profile]
    for n in packages:
        check_not_reserved(n)
        if n not in reg:
            raise SoundsError(f"package {n!r} is not in the registry (train.data.sounds.REGISTRY); known: {', '.join(reg)}")
        names.append(n)
    if not names:
        raise SoundsError("nothing to build: give --profile or --package")
    return [reg[n] for n in dict.fromkeys(names)]


def build(root: str | Path | None = None, profile: str | None = "small", packages: Sequence[str] = (),
          force: bool = False, progress: bool = True) -> list[BuildResult]:
    """Build (or skip, when up to date) the packages of ``profile`` and ``packages`` into ``root``."""
    root = Path(root) if root is not None else default_root()
    todo = resolve_packages(profile, packages)
    results = []
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("sounds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      transient=True) as bar:
            task = bar.add_task("", total=len(todo))
            for pkg in todo:
                results.append(build_package(pkg, root, force, tick=lambda s, p=pkg: bar.update(task, description=f"{p.name}: {s}")))
                bar.advance(task)
    else:
        results = [build_package(pkg, root, force) for pkg in todo]
    write_manifest(root)
    return results


# --------------------------------------------------------------------------------------------
# reading and validating


@dataclass(frozen=True)
class Clip:
    """One decoded clip: mono float32 at SAMPLE_RATE, normalised (see ``level_dbfs`` for the original)."""

    clip_id: str
    package: str
    split: str
    category: str
    surface: str
    family: str
    onset_s: float  # one-shots: where the impact starts (a step's label point); 0 for beds
    level_dbfs: float  # original RMS level
    licence: str
    audio: np.ndarray


def read_manifest(root: str | Path | None = None) -> list[dict]:
    """Rows of ``root/manifest.csv``; refuses a missing corpus and reserved package names."""
    root = Path(root) if root is not None else default_root()
    path = root / MANIFEST
    if not path.is_file():
        raise SoundsError(f"{path}: no sound corpus; build it with `footfall data sounds --profile small` (or full)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        check_not_reserved(r["package"])
    return rows


def load_clips(root: str | Path | None = None, split: str = "train", category: str | None = None,
               packages: Iterable[str] | None = None) -> list[Clip]:
    """The clips of one split role (and category / packages), decoded, in manifest order.

    The generators use ``split="train"``; only :mod:`train.data.realset` uses ``"val"`` (the
    real-sound validation set, for choosing) and ``"eval"`` (the real-sound evaluation set).
    """
    if split not in SPLITS:
        raise SoundsError(f"split {split!r} not in {SPLITS}")
    if category is not None and category not in CATEGORIES:
        raise SoundsError(f"category {category!r} not in {CATEGORIES}")
    root = Path(root) if root is not None else default_root()
    want = set(packages) if packages is not None else None
    rows = [r for r in read_manifest(root) if r["split"] == split and (category is None or r["category"] == category)
            and (want is None or r["package"] in want)]
    out: list[Clip] = []
    by_pkg: dict[str, list[dict]] = {}
    for r in rows:
        by_pkg.setdefault(r["package"], []).append(r)
    for name, rs in by_pkg.items():
        with np.load(root / name / CLIPS) as z:
            for r in rs:
                out.append(Clip(r["clip_id"], name, r["split"], r["category"], r["surface"], r["family"], float(r["onset_s"]),
                                float(r["level_dbfs"]), r["licence"], np.asarray(z[r["clip_id"]], dtype=np.float32)))
    return out


def validate(root: str | Path | None = None, sources: bool = True) -> list[str]:
    """Re-check every clip's sha256 (and, with ``sources``, every kept source file's) -> problems (empty: valid).

    Also checks that ``manifest.csv`` lists exactly the packages' clips, that no package is
    reserved and that a package's split matches the registry.
    """
    root = Path(root) if root is not None else default_root()
    problems: list[str] = []
    reg = registry()
    rows = read_manifest(root)
    listed = {r["clip_id"]: r for r in rows}
    indexed: set[str] = set()
    source_sha: dict[Path, str] = {}  # events cut from one file share it
    for name in sorted({r["package"] for r in rows}):
        idx = _read_index(root, name)
        if idx is None:
            problems.append(f"{name}: in {MANIFEST} but {root / name / INDEX} is missing or unreadable")
            continue
        if name in reg and idx["split"] != reg[name].split:
            problems.append(f"{name}: built as {idx['split']} but the registry says {reg[name].split}")
        try:
            z = np.load(root / name / CLIPS)
        except (OSError, ValueError) as e:
            problems.append(f"{name}: {CLIPS} unreadable ({e})")
            continue
        with z:
            for c in idx["clips"]:
                indexed.add(c["clip_id"])
                if c["clip_id"] not in z.files:
                    problems.append(f"{c['clip_id']}: missing from {name}/{CLIPS}")
                elif clip_sha256(z[c["clip_id"]]) != c["sha256_clip"]:
                    problems.append(f"{c['clip_id']}: decoded clip sha256 differs from the index (tampered or corrupt)")
                m = listed.get(c["clip_id"])
                if m is None or m["sha256_clip"] != c["sha256_clip"] or m["sha256_source"] != c["sha256_source"]:
                    problems.append(f"{c['clip_id']}: {MANIFEST} row missing or differs from {name}/{INDEX}")
                if sources:
                    src = root / name / "source" / c["path"]
                    if not src.is_file():
                        problems.append(f"{c['clip_id']}: source file {src} missing")
                    elif source_sha.setdefault(src, file_sha256(src)) != c["sha256_source"]:
                        problems.append(f"{c['clip_id']}: source file sha256 differs from the index")
    for cid in sorted(set(listed) - indexed):
        problems.append(f"{cid}: in {MANIFEST} but in no package index")
    return problems
