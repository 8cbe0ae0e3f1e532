"""The locked environment: every installed package, transitive ones included, pinned per venv.

    python scripts/lock.py refresh [full|edge|qnn ...]   # resolve again from pyproject / qnn.in
    python scripts/lock.py check VENV LOCK                 # exit 1 when VENV differs from LOCK

Three locks live in ``requirements/``, one per venv the Makefile builds:

- ``full.lock``: ``.venv`` after ``make test`` (``.[edge,train,export,dev]``);
- ``edge.lock``: ``.venv`` after ``make demo`` (``.[edge]``), resolved *within* ``full.lock`` so
  that the device side and the host side never disagree on a version;
- ``qnn.lock``: ``.venv-qnn`` (the HTP simulator's runtime, from ``requirements/qnn.in``).

``refresh`` builds each venv from scratch in a temporary folder (the current pins are not
consulted, except that edge is resolved inside the new full lock) and writes ``pip freeze --all``
of it. The Makefile installs with ``pip install -r LOCK`` and the project itself with ``--no-deps``,
so nothing outside a lock is ever resolved. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
EXTRAS = {"full": ".[edge,train,export,dev]", "edge": ".[edge]"}
HEADER = "# {name}.lock: every package of this venv, pinned. Refresh: make lock (python scripts/lock.py refresh {name})\n"


def _normal(name: str) -> str:
    """PEP 503 name normalisation (Foo_bar == foo-bar)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``name==version`` lines -> {normalised name: version}; comments and blanks skipped."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path}: {line!r} is not pinned with ==")
        pins[_normal(name)] = version.strip()
    return pins


def freeze(venv: Path) -> dict[str, str]:
    """What is installed in ``venv`` (the project's own editable install excluded)."""
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all", "--exclude-editable"],
                         check=True, capture_output=True, text=True).stdout
    pins: dict[str, str] = {}
    for line in out.splitlines():
        if "==" in line:
            name, _, version = line.partition("==")
            pins[_normal(name)] = version.strip()
    return pins


def differences(installed: dict[str, str], locked: dict[str, str]) -> list[str]:
    """One line per package that is missing, extra or at another version."""
    lines = []
    for name in sorted(set(installed) | set(locked)):
        have, want = installed.get(name), locked.get(name)
        if have == want:
            continue
        if have is None:
            lines.append(f"missing  {name}=={want}")
        elif want is None:
            lines.append(f"extra    {name}=={have} (not in the lock)")
        else:
            lines.append(f"drifted  {name}=={have} (lock: {want})")
    return lines


def check(venv: Path, lock: Path) -> int:
    diff = differences(freeze(venv), read_lock(lock))
    if diff:
        print(f"{venv} differs from {lock.relative_to(REPO)} ({len(diff)} packages); reinstall with make, or refresh with make lock:")
        print("\n".join("  " + d for d in diff))
        return 1
    print(f"{venv}: matches {lock.relative_to(REPO)} ({len(read_lock(lock))} packages)")
    return 0


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
                   check=True, cwd=REPO)


def refresh(names: list[str]) -> None:
    """Resolve each named venv from scratch and write its lock (full before edge: edge is resolved within it)."""
    LOCKS.mkdir(exist_ok=True)
    for name in [n for n in ("full", "edge", "qnn") if n in names]:
        with tempfile.TemporaryDirectory(prefix=f"footfall-lock-{name}-") as tmp:
            venv = Path(tmp) / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            if name == "qnn":
                _pip(venv, "-r", str(LOCKS / "qnn.in"))
            elif name == "edge":
                _pip(venv, "-c", str(LOCKS / "full.lock"), "setuptools", "-e", EXTRAS[name])
            else:
                _pip(venv, "setuptools", "-e", EXTRAS[name])
            pins = freeze(venv)
        lock = LOCKS / f"{name}.lock"
        tmp_lock = lock.with_suffix(".lock.tmp")
        tmp_lock.write_text(HEADER.format(name=name) + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items())))
        tmp_lock.replace(lock)
        print(f"wrote {lock.relative_to(REPO)} ({len(pins)} packages)")


def main(argv: list[str]) -> int:
    if argv[:1] == ["refresh"]:
        names = argv[1:] or ["full", "edge", "qnn"]
        unknown = sorted(set(names) - {"full", "edge", "qnn"})
        if unknown:
            print(f"error: unknown lock(s) {unknown}; expected full, edge, qnn", file=sys.stderr)
            return 2
        refresh(names)
        return 0
    if argv[:1] == ["check"] and len(argv) == 3:
        venv, lock = Path(argv[1]), Path(argv[2])
        if not (venv / "bin" / "python").exists():
            print(f"error: {venv} is not a venv (no bin/python)", file=sys.stderr)
            return 2
        if not lock.is_file():
            print(f"error: {lock}: no such lock file", file=sys.stderr)
            return 2
        return check(venv, lock.resolve())
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
