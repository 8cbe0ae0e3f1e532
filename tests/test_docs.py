"""Every example in the README runs as written.

The ```sh blocks of the README are run, line by line, with bash, in a scratch folder that holds
what a checkout holds (``edge/assets``: the bundled model and a 10-s cut of the sample run, the
short input). ``make`` lines are left to ``make`` itself. Blocks that train (``footfall``) run as
``slow`` tests, in order; ``edge-run`` blocks are fast. ``README`` is the user guide this test
reads (the proposed one until it replaces README.md).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "docs" / "README.proposed.md"
if not README.exists():
    README = ROOT / "README.md"


def sh_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block (comments stripped; ``make`` lines left out)."""
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        lines = [line.split("  #")[0].strip() for line in body.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith(("#", "make "))])
    return [b for b in blocks if b]


BLOCKS = sh_blocks(README.read_text())
EDGE = [b for b in BLOCKS if not any(line.startswith("footfall") or " runs/" in line for line in b)]
TRAIN = [b for b in BLOCKS if b not in EDGE]


@pytest.fixture
def checkout(tmp_path):
    """A scratch folder with edge/assets as a checkout has it, the sample cut to 10 s."""
    from edge.cli import ASSETS, bundled_models

    assets = tmp_path / "edge" / "assets"
    assets.mkdir(parents=True)
    for model in bundled_models():
        for f in (model, Path(str(model) + ".card.json")):
            shutil.copy2(f, assets / f.name)
    audio, rate = sf.read(ASSETS / "sample_run.wav")
    sf.write(assets / "sample_run.wav", audio[: 10 * rate], rate)
    return tmp_path


def run_block(lines: list[str], cwd: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for line in lines:
        r = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, f"{line}\n{r.stderr[-2000:]}"


def test_readme_has_examples():
    assert len(EDGE) >= 5 and TRAIN, README


@pytest.mark.parametrize("block", EDGE, ids=[b[0][:40] for b in EDGE])
def test_edge_run_examples(block, checkout):
    from edge.cli import bundled_model

    if bundled_model() is None:
        pytest.skip("no bundled model yet (make model)")
    if shutil.which("edge-run", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("edge-run console script not installed (pip install -e .)")
    run_block(block, checkout)


@pytest.mark.slow
def test_training_examples_end_to_end(checkout):
    """Generate data, train, relabel, distill, QAT, export, bench, count: the README's order."""
    for block in TRAIN:
        try:
            run_block(block, checkout)
        except AssertionError as e:
            if "bench" in block[0] and "goal(s) FAILED" in str(e):  # a model this small fails the goals (exit 1)
                continue
            raise
