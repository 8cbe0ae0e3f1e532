#!/usr/bin/env bash
# make model: the recipe of the bundled default lives in train/recipes/default.yaml; this only runs it
# (extra arguments, e.g. --dry-run, go to `footfall model`).
set -euo pipefail
exec "${BIN:-.venv/bin}/footfall" model --recipe train/recipes/default.yaml "$@"
