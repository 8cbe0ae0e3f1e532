"""The environment is the lock: every venv the Makefile builds holds exactly its lock file."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"


def _lock_module():
    spec = importlib.util.spec_from_file_location("footfall_lock", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()


def test_this_venv_is_exactly_the_full_lock():
    diff = lock.differences(lock.freeze(Path(sys.prefix)), lock.read_lock(LOCKS / "full.lock"))
    assert not diff, "the test venv differs from requirements/full.lock:\n" + "\n".join(diff)


def test_the_qnn_venv_is_exactly_its_lock():
    venv = ROOT / ".venv-qnn"
    if not (venv / "bin" / "python").exists():
        pytest.skip(".venv-qnn not built (make venv-qnn)")
    diff = lock.differences(lock.freeze(venv), lock.read_lock(LOCKS / "qnn.lock"))
    assert not diff, ".venv-qnn differs from requirements/qnn.lock:\n" + "\n".join(diff)


def test_the_device_side_lock_agrees_with_the_host_side_lock():
    edge, full = lock.read_lock(LOCKS / "edge.lock"), lock.read_lock(LOCKS / "full.lock")
    disagree = {k: (v, full.get(k)) for k, v in edge.items() if full.get(k) != v}
    assert not disagree, f"edge.lock pins that full.lock does not: {disagree}"
    for runtime in ("ai-edge-litert", "onnxruntime", "sounddevice", "numpy", "soxr"):
        assert runtime in edge


def test_every_direct_pin_of_pyproject_is_in_the_locks():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    full, edge = lock.read_lock(LOCKS / "full.lock"), lock.read_lock(LOCKS / "edge.lock")
    groups = {"base": project["dependencies"], **project["optional-dependencies"]}
    for group, reqs in groups.items():
        for req in reqs:
            name, version = re.split(r"==", req.split(";")[0].strip())
            name = lock._normal(name)
            assert full.get(name, "").split("+")[0] == version, f"{group}: {req} vs full.lock {full.get(name)}"
            if group in ("base", "edge"):
                assert edge.get(name, "").split("+")[0] == version, f"{group}: {req} vs edge.lock {edge.get(name)}"


def test_differences_name_missing_extra_and_drifted_packages(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text("# header\nNumPy==2.4.6\nfoo_bar==1.0  # comment\nkeep==3\n")
    locked = lock.read_lock(path)
    assert locked == {"numpy": "2.4.6", "foo-bar": "1.0", "keep": "3"}
    diff = lock.differences({"numpy": "2.4.5", "keep": "3", "extra-pkg": "0.1"}, locked)
    assert diff == ["extra    extra-pkg==0.1 (not in the lock)", "missing  foo-bar==1.0", "drifted  numpy==2.4.5 (lock: 2.4.6)"]
    path.write_text("unpinned>=1\n")
    with pytest.raises(ValueError, match="not pinned"):
        lock.read_lock(path)
