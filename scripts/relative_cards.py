"""Rewrite the absolute paths in model cards relative to the checkout they were made in.

    python scripts/relative_cards.py --root /path/of/that/checkout edge/assets/*.card.json

Only path strings under ``--root`` change (``edge.card.relative_paths``); every other field and
the layout of the file stay as they are, and the artifacts are not touched (a card binds its
artifact by sha256, so the card still verifies).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.card import relative_paths  # noqa: E402
from edge.util import atomic_write  # noqa: E402


def rewrite(card: Path, roots: list[str]) -> bool:
    """Rewrite ``card`` in place; True when it changed."""
    text = card.read_text()
    new = json.dumps(relative_paths(json.loads(text), roots), indent=2) + "\n"
    if new == text:
        return False
    atomic_write(card, new)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", required=True, help="a checkout the card's paths point into (repeatable)")
    parser.add_argument("cards", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for card in args.cards:
        print(f"{card}: {'made relative' if rewrite(card, args.root) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
