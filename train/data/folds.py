"""Runner-independent folds (the seed paper's protocol: 5 folds, 60/20/20 train/val/test).

Runners are dealt into ``n_folds`` groups once; the manifest's ``fold`` column stores each
run's group (the same for every run of a runner). Fold ``k`` of the cross-validation tests on
group ``k``, validates on group ``(k + 1) % n_folds`` and trains on the remaining groups, so no
runner is ever on two sides of a split.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Protocol, Sequence, TypeVar

import numpy as np

N_FOLDS = 5


class HasRunner(Protocol):
    runner_id: str
    fold: int | None


R = TypeVar("R", bound=HasRunner)


def assign_folds(runner_ids: Iterable[str], n_folds: int = N_FOLDS, seed: int = 0) -> dict[str, int]:
    """Deal runners into ``n_folds`` balanced groups; returns ``{runner_id: group}``.

    ``runner_ids`` may repeat (one entry per run): groups are then balanced by number of runs
    as well as by number of runners. Greedy: runners in a seeded random order, heaviest first,
    each to the group with the fewest runs so far (ties: fewest runners, then lowest index).
    With one run per runner the group sizes differ by at most one. Deterministic in ``seed``.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    runs = Counter(str(r) for r in runner_ids)
    if len(runs) < n_folds:
        raise ValueError(f"{len(runs)} runners cannot fill {n_folds} runner-independent folds; need at least {n_folds}")
    rng = np.random.default_rng(seed)
    order = sorted(runs)  # a fixed order before shuffling, so the result ignores input order
    order = [order[i] for i in rng.permutation(len(order))]
    order.sort(key=lambda r: -runs[r])  # stable: shuffled order among equally heavy runners
    group_runs = [0] * n_folds
    group_runners = [0] * n_folds
    out: dict[str, int] = {}
    for runner in order:
        g = min(range(n_folds), key=lambda i: (group_runs[i], group_runners[i], i))
        out[runner] = g
        group_runs[g] += runs[runner]
        group_runners[g] += 1
    return out


def split(recs: Sequence[R], k: int, n_folds: int = N_FOLDS) -> tuple[list[R], list[R], list[R]]:
    """Fold ``k`` -> (train, val, test): test = group k, val = group (k+1) % n_folds, train = rest.

    Every record must carry its group in ``.fold`` (as :func:`train.data.recordings.load_dataset`
    gives them: folds missing from the manifest are assigned there). Unlabeled runs stay in
    their group; callers that need labels filter with ``train.data.recordings.labeled``.
    """
    if not 0 <= k < n_folds:
        raise ValueError(f"fold k={k} out of range 0..{n_folds - 1}")
    missing = [r for r in recs if r.fold is None]
    if missing:
        raise ValueError(f"run of runner {missing[0].runner_id!r} has no fold; assign folds first (assign_folds)")
    val_group = (k + 1) % n_folds
    train = [r for r in recs if r.fold not in (k, val_group)]
    val = [r for r in recs if r.fold == val_group]
    test = [r for r in recs if r.fold == k]
    return train, val, test


def check_runner_independent(recs: Sequence[HasRunner]) -> None:
    """Raise ValueError if a runner's runs sit in more than one fold."""
    seen: dict[str, int | None] = {}
    for r in recs:
        if r.runner_id in seen and seen[r.runner_id] != r.fold:
            raise ValueError(f"runner {r.runner_id!r} is in folds {seen[r.runner_id]} and {r.fold}; folds must be runner-independent")
        seen[r.runner_id] = r.fold
