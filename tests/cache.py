"""Where tests keep what is slow to build (exported fixture models, the tiny bench scenario).

Under the clone, in ``.cache/tests/`` (git-ignored), so a fresh clone always starts cold and
builds what it needs; ``$FOOTFALL_TEST_CACHE`` moves it. Every entry is named by a key that
hashes the lock file of the environment (``requirements/full.lock``: every package version
that could change an artifact) and the project's code it depends on, so an entry made by other
code or other packages is never reused. Stale entries are left for ``make clean``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "full.lock"


def cache_root() -> Path:
    return Path(os.environ.get("FOOTFALL_TEST_CACHE") or ROOT / ".cache" / "tests")


def code_key(paths: Iterable[Path], *extra: object) -> str:
    """sha256 over the lock file, every ``*.py`` file under ``paths`` (files or folders, sorted) and ``extra``."""
    h = hashlib.sha256()
    files: list[Path] = []
    for p in [LOCK, *paths]:
        p = Path(p)
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes() if f.exists() else b"-")
    h.update(repr(extra).encode())
    return h.hexdigest()[:16]


def keyed_dir(name: str, paths: Iterable[Path], *extra: object) -> Path:
    """``cache_root()/name-<key>`` (not created)."""
    return cache_root() / f"{name}-{code_key(paths, *extra)}"
