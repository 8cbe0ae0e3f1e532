"""`footfall` in an install without its host-side extras: one line naming the extra, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.blocking import blocker

ROOT = Path(__file__).resolve().parents[1]

# a device-only install (pip install -e '.[edge]'): no torch, no yaml, no matplotlib, no export tools
DEVICE_ONLY = blocker({"torch", "torchao", "executorch", "litert_torch", "yaml", "matplotlib", "onnx", "onnxscript"}) + """
from footfall.cli import app
sys.argv = ["footfall"] + sys.argv[1:]
app()
"""


def footfall_device_only(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DEVICE_ONLY, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,extra,module", [(["train", "--preset", "smoke", "--data", "nowhere"], "train", "yaml"),
                                               (["export", "student.pt"], "train", "torch")])
def test_missing_extra_is_one_line(args, extra, module):
    r = footfall_device_only(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"footfall: error: `footfall {args[0]}` needs the '{extra}' extra, which is not installed here "
        f"(no module {module!r}): pip install -e '.[{extra}]'"], r.stderr
    assert r.stdout == ""


def test_help_works_without_the_extras():
    r = footfall_device_only("--help")
    assert r.returncode == 0 and "train" in r.stdout and r.stderr == ""


def test_start_up_is_quiet():
    """No torchao/torch start-up chatter (the .so files it cannot load, pytree deprecation notes)."""
    pytest.importorskip("torchao")
    r = subprocess.run([sys.executable, "-c", "import sys; from footfall.cli import app; import torchao; "
                        "from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e; sys.argv = ['footfall', '--help']; app()"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr
