"""Python source that makes a subprocess behave as if some packages were not installed.

Prepended to a ``python -c`` script: a meta-path finder raises ``ModuleNotFoundError`` (with
``name`` set, as a real missing package does) for every top-level name in ``blocked``.
"""

from __future__ import annotations


def blocker(blocked: set[str], why: str = "not installed here") -> str:
    return f"""
import importlib.abc, sys
BLOCKED = {sorted(blocked)!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} ({why})", name=name.split(".")[0])
sys.meta_path.insert(0, Block())
"""
