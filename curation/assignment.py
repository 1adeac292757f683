"""Random, balanced assignment of cases to readers, with a share of cases read twice."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["assign", "reader_quotas"]


def reader_quotas(n_cases: int, readers: list, readers_per_case: int, weights=None, *, rng=None) -> dict:
    """How many cases each reader gets: ``{reader: int}`` summing to ``n_cases × readers_per_case``.

    A reader's share is sᵣ = n_cases × readers_per_case × wᵣ / Σw, except that no reader can read
    more than every case once: shares above ``n_cases`` are capped there and the rest is shared
    out among the others in proportion to their weights (water-filling). Each quota is sᵣ
    rounded down or up (largest remainders first, ties at random with ``rng``), so it is within
    1 of the share.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    w = np.array([1.0 if weights is None else weights[r] for r in readers])
    total = n_cases * readers_per_case
    capped = np.zeros(len(readers), dtype=bool)
    while True:
        free = total - n_cases * capped.sum()
        share = np.where(capped, n_cases, free * w / w[~capped].sum() if (~capped).any() else 0.0)
        over = (share > n_cases) & ~capped
        if not over.any():
            break
        capped |= over
    share = np.round(share, 9)  # so that a share of exactly 50 is not floored to 49 by rounding error
    quota = np.floor(share).astype(np.int64)
    remainder = share - quota
    short = int(total - quota.sum())
    order = np.lexsort((rng.random(len(readers)), -remainder))
    quota[order[:short]] += 1
    return dict(zip(readers, quota.tolist()))


def assign(case_ids, readers, readers_per_case, *, weights=None, reread_fraction=0.0, seed=0) -> dict:
    """Assign each case to ``readers_per_case`` different readers, at random but balanced.

    Each reader gets their quota of cases (:func:`reader_quotas`: within 1 of their weighted
    share, so never more than ⌈share⌉ + 1), and never the same case twice. The cases go out in
    a random order; each goes to the readers with the most quota left, ties broken at random
    (the bipartite Havel–Hakimi construction, which always completes). Then
    ``round(reread_fraction × quota)`` of each reader's cases, drawn at random, are added at the
    end of that reader's queue as re-reads, for intra-reader agreement. Everything is drawn from
    ``numpy.random.default_rng(seed)``: the same inputs and seed give the same queues.

    Parameters
    ----------
    case_ids : sequence of distinct case ids.
    readers : sequence of distinct reader ids.
    readers_per_case : int, 1 ≤ readers_per_case ≤ len(readers).
    weights : ``{reader: positive number}`` for every reader (default: all equal).
    reread_fraction : float in [0, 1].
    seed : int.

    Returns
    -------
    ``{reader: [(case_id, is_reread), ...]}`` in reading order, every reader present.
    """
    case_ids, readers = list(case_ids), list(readers)
    _check(case_ids, readers, readers_per_case, weights, reread_fraction)
    rng = np.random.default_rng(seed)
    quotas = reader_quotas(len(case_ids), readers, readers_per_case, weights, rng=rng)
    left = np.array([quotas[r] for r in readers])
    queues = {r: [] for r in readers}
    for c in rng.permutation(len(case_ids)):
        chosen = np.lexsort((rng.random(len(readers)), -left))[:readers_per_case]
        left[chosen] -= 1
        for i in chosen:
            queues[readers[i]].append((case_ids[c], False))
    for reader, queue in queues.items():
        n_again = round(reread_fraction * len(queue))
        again = rng.choice(len(queue), size=n_again, replace=False)
        queue.extend((queue[i][0], True) for i in again)
    return queues


def _check(case_ids, readers, readers_per_case, weights, reread_fraction):
    for what, ids in (("case", case_ids), ("reader", readers)):
        seen = set()
        for x in ids:
            if x in seen:
                raise ValueError(f"{what} {x!r} is listed twice")
            seen.add(x)
    if not case_ids:
        raise ValueError("no cases to assign")
    if not readers:
        raise ValueError("no readers to assign cases to")
    if isinstance(readers_per_case, bool) or int(readers_per_case) != readers_per_case or readers_per_case < 1:
        raise ValueError(f"readers_per_case must be a positive integer, got {readers_per_case!r}")
    if readers_per_case > len(readers):
        raise ValueError(f"readers_per_case is {readers_per_case} but there are only {len(readers)} readers "
                         "(no reader reads a case twice)")
    if weights is not None:
        for reader in readers:
            if reader not in weights:
                raise ValueError(f"reader {reader!r} has no weight")
            w = weights[reader]
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                raise ValueError(f"reader {reader!r}: the weight must be a positive number")
        unknown = [r for r in weights if r not in set(readers)]
        if unknown:
            raise ValueError(f"reader {unknown[0]!r} has a weight but is not among the readers")
    if not (isinstance(reread_fraction, (int, float)) and 0 <= reread_fraction <= 1):
        raise ValueError(f"reread_fraction must be in [0, 1], got {reread_fraction!r}")
