"""The one place where the site calls the curation algorithms (assignment, consensus).

The framework-free ``curation/`` library is being written beside this app; until it lands on
this branch, the assignment and the case-level majority vote are here, with the signatures the
site needs, so that swapping them for the library's functions changes this module only.
"""

import math
import random
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Deal:
    case: object
    reader: object
    position: int
    is_reread: bool


def assign_cases(cases, reader_weights, *, readers_per_case, reread_share, seed):
    """Deals each case to `readers_per_case` different readers, at random but balanced: each case
    goes to the readers with the least load relative to their weight (random among ties), so no
    reader ever has more than one case above their weighted share. Then each reader gets a
    second, later read of `reread_share` of their own cases. Returns the deals with each reader's
    queue order (positions 0, 1, …; re-reads come after every first read, shuffled)."""
    if readers_per_case > len(reader_weights):
        raise ValueError(f"{readers_per_case} readers per case but only {len(reader_weights)} readers")
    if not 0 <= reread_share <= 1:
        raise ValueError("reread_share must be between 0 and 1")
    rng = random.Random(seed)
    readers = list(reader_weights)
    load = Counter()
    queues = {reader: [] for reader in readers}
    order = list(cases)
    rng.shuffle(order)
    for case in order:
        tie_break = {reader: rng.random() for reader in readers}
        chosen = sorted(readers, key=lambda reader: (load[reader] / reader_weights[reader], tie_break[reader]))
        for reader in chosen[:readers_per_case]:
            load[reader] += 1
            queues[reader].append(case)
    deals = []
    for reader in readers:
        first_reads = queues[reader]
        rng.shuffle(first_reads)
        rereads = rng.sample(first_reads, math.floor(reread_share * len(first_reads)))
        rng.shuffle(rereads)
        deals.extend(Deal(case, reader, position, False) for position, case in enumerate(first_reads))
        deals.extend(Deal(case, reader, len(first_reads) + offset, True) for offset, case in enumerate(rereads))
    return deals


def majority_vote(values):
    """The value most readers gave, or None on a tie (the case then goes to adjudication)."""
    counts = Counter(_hashable(value) for value in values).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    winner = counts[0][0]
    return next(value for value in values if _hashable(value) == winner)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def label_consensus(kind, values):
    """The readers' consensus on one label of one case, or None when it needs an adjudicator.
    Case-level answers: majority vote. Marks (boxes, points, masks) wait for the curation
    library's fusion (weighted box fusion, STAPLE): until then they always go to adjudication."""
    if kind in ("boxes", "points", "masks"):
        return None
    return majority_vote(values)
