"""Splitting a test set into a public and a private part (the public and private leaderboards)."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

__all__ = ["split_cases"]

#: The most folds a split is made of: private_fraction is matched to within 1/(2 × this).
MAX_FOLDS = 20


def split_cases(case_ids, *, strata=None, groups=None, private_fraction=0.5, seed=0) -> dict[str, str]:
    """Map each case id to ``"public"`` or ``"private"``.

    The cases are dealt into k folds by scikit-learn's ``StratifiedGroupKFold`` (shuffled,
    seeded), and m of them form the private part, m/k being the fraction nearest
    ``private_fraction`` with k ≤ 20 and k ≤ the number of groups; so the split is

    - seeded: the same inputs (in the same order) and ``seed`` give the same split;
    - stratified by ``strata`` (``{case_id: str}``, e.g. ``describe_truth(...)["strata"]``):
      each stratum is divided in about the same proportion;
    - grouped by ``groups`` (``{case_id: patient pseudonym}``): the cases of one group are
      all public or all private, so no patient is in both parts (proportions are then as
      near as group sizes allow);

    and both at once. Raises ValueError for fewer than 2 groups (or cases), a fraction outside
    (0, 1), duplicate case ids, or ``strata``/``groups`` that miss a case.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from .tasks._common import ids_from

    ids = ids_from(case_ids)
    if not 0 < float(private_fraction) < 1:
        raise ValueError(f"private_fraction must lie strictly between 0 and 1, got {private_fraction!r}")
    y = _per_case(ids, strata, "strata") if strata is not None else ["all"] * len(ids)
    g = _per_case(ids, groups, "groups") if groups is not None else ids
    n_groups = len(set(g))
    if n_groups < 2:
        raise ValueError(f"cannot split {n_groups} {'group' if groups is not None else 'case'} into two parts")
    part = Fraction(float(private_fraction)).limit_denominator(min(MAX_FOLDS, n_groups))
    m, k = part.numerator, part.denominator
    if m == 0 or m == k:  # the fraction rounds to none or all: one fold of the most folds allowed, or all but one
        k = min(MAX_FOLDS, n_groups)
        m = 1 if m == 0 else k - 1
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed))
    with warnings.catch_warnings():
        # "the least populated class has fewer members than n_splits": rare strata are spread as well as they can be
        warnings.simplefilter("ignore", UserWarning)
        tests = [test for _, test in folds.split(np.zeros(len(ids)), y, g)]
    private = np.zeros(len(ids), dtype=bool)
    for test in tests[:m]:
        private[test] = True
    return {c: "private" if p else "public" for c, p in zip(ids, private)}


def _per_case(ids, mapping, what):
    missing = sum(c not in mapping for c in ids)
    if missing:
        raise ValueError(f"{what} has no value for {missing} of the {len(ids)} cases")
    return [str(mapping[c]) for c in ids]
