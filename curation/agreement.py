"""How far readers agree: chance-corrected coefficients, overlaps, and each reader against the consensus.

Inputs are the same tables as in :mod:`curation.consensus`, ``{case_id: {reader: answer}}``
with ``None`` for "not answered". A coefficient that is undefined (no variation at all in the
answers) is NaN with an :class:`UndefinedAgreementWarning`, as scikit-learn does.

References
----------
Cohen (1960), Educ. Psychol. Meas. 20:37-46; Cohen (1968), Psychol. Bull. 70:213-220 (weighted);
Fleiss (1971), Psychol. Bull. 76:378-382; Krippendorff (2011), "Computing Krippendorff's alpha-
reliability", https://repository.upenn.edu/asc_papers/43; Dice (1945); Jaccard (1912).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import _inputs as I

__all__ = ["UndefinedAgreementWarning", "cohen_kappa", "pairwise_kappa", "fleiss_kappa", "krippendorff_alpha",
           "dice", "iou", "match_boxes", "box_agreement", "pairwise_mask_agreement", "pairwise_box_agreement",
           "ReaderMatrix", "reader_accuracy", "intra_reader_agreement", "workload"]

KAPPA_WEIGHTS = (None, "linear", "quadratic")
ALPHA_LEVELS = ("nominal", "ordinal", "interval", "ratio")


class UndefinedAgreementWarning(UserWarning):
    """A coefficient is undefined for these answers (no variation to correct for): NaN returned."""


def _undefined(what):
    warnings.warn(f"{what} is undefined: the answers show no variation; returning NaN",
                  UndefinedAgreementWarning, stacklevel=3)
    return math.nan


def _disagreement_weights(k, weights):
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(np.float64)
    if weights == "linear":
        return np.abs(i - j).astype(np.float64)
    if weights == "quadratic":
        return ((i - j) ** 2).astype(np.float64)
    raise ValueError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")


def _kappa_from_pairs(first, second, index, weights, what):
    k = len(index)
    table = np.zeros((k, k))
    np.add.at(table, ([index[a] for a in first], [index[b] for b in second]), 1)
    w = _disagreement_weights(k, weights)
    observed = table / table.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    expected_disagreement = (w * expected).sum()
    if expected_disagreement == 0:
        return _undefined(what)
    return float(1 - (w * observed).sum() / expected_disagreement)


def cohen_kappa(answers, reader_a, reader_b, *, weights=None, categories=None) -> float:
    """Cohen's kappa between two readers on the cases both answered.

    κ = 1 − Σᵢⱼ wᵢⱼ oᵢⱼ / Σᵢⱼ wᵢⱼ eᵢⱼ, where oᵢⱼ is the share of cases that reader A put in
    category i and reader B in j, eᵢⱼ = oᵢ· o·ⱼ the share expected by chance from each reader's
    own frequencies, and wᵢⱼ the disagreement weight: unweighted 1 for i ≠ j (then κ =
    (pₒ − pₑ)/(1 − pₑ)), ``"linear"`` |i − j|, ``"quadratic"`` (i − j)² for ordered answers.
    1 is perfect agreement, 0 what chance gives. Equal to ``statsmodels.stats.inter_rater.cohens_kappa``
    and ``sklearn.metrics.cohen_kappa_score``.

    Parameters
    ----------
    answers : ``{case_id: {reader: label}}``.
    reader_a, reader_b : the two readers.
    weights : None, "linear" or "quadratic".
    categories : the possible answers in their order (needed for weights when answers do not
        sort naturally, and so that an unused category between two used ones keeps its place);
        default: every answer in the table (all readers), sorted, as :func:`pairwise_kappa` uses.
    """
    answers = I.table(answers, allow_empty_cases=True)
    _disagreement_weights(1, weights)
    for reader in (reader_a, reader_b):
        if not any(reader in row for row in answers.values()):
            raise ValueError(f"{I.where(reader=reader)}: has no answers")
    common = {c: row for c, row in answers.items() if reader_a in row and reader_b in row}
    if not common:
        raise ValueError(f"readers {reader_a!r} and {reader_b!r} answered no case in common")
    index = I.category_index([answers], categories, ordered=weights is not None)
    return _kappa_from_pairs([r[reader_a] for r in common.values()], [r[reader_b] for r in common.values()],
                             index, weights, "Cohen's kappa")


@dataclass(frozen=True)
class ReaderMatrix:
    """A reader-by-reader table: ``values[i, j]`` between ``readers[i]`` and ``readers[j]`` over the
    ``n_cases[i, j]`` cases both answered (NaN when they share none; the diagonal is each reader
    with themselves)."""

    readers: list
    values: np.ndarray
    n_cases: np.ndarray

    def as_dict(self) -> dict:
        """JSON-ready: nested lists, ``None`` for NaN."""
        return {"readers": list(self.readers),
                "values": [[None if math.isnan(v) else float(v) for v in row] for row in self.values],
                "n_cases": self.n_cases.tolist()}


def pairwise_kappa(answers, *, weights=None, categories=None) -> ReaderMatrix:
    """Cohen's kappa for every pair of readers (see :func:`cohen_kappa`), as a :class:`ReaderMatrix`.

    Categories are taken from all answers (or ``categories``), so every pair uses one scale.
    A pair with no common case, or an undefined kappa, is NaN.
    """
    answers = I.table(answers, allow_empty_cases=True)
    index = I.category_index([answers], categories, ordered=weights is not None)
    readers = I.readers_of(answers)
    n = len(readers)
    values, counts = np.full((n, n), math.nan), np.zeros((n, n), dtype=np.int64)
    for i, j in itertools.combinations_with_replacement(range(n), 2):
        a, b = readers[i], readers[j]
        rows = [row for row in answers.values() if a in row and b in row]
        counts[i, j] = counts[j, i] = len(rows)
        if rows:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedAgreementWarning)
                values[i, j] = values[j, i] = _kappa_from_pairs([r[a] for r in rows], [r[b] for r in rows],
                                                                index, weights, "Cohen's kappa")
    return ReaderMatrix(readers, values, counts)


def fleiss_kappa(answers, *, categories=None) -> float:
    """Fleiss' kappa: agreement among a fixed number n ≥ 2 of readers per case (any readers).

    With nᵢⱼ the readers who put case i in category j, N cases: pⱼ = Σᵢ nᵢⱼ / (N n),
    Pᵢ = (Σⱼ nᵢⱼ² − n) / (n (n − 1)) the agreeing share of reader pairs on case i,
    P̄ = mean Pᵢ, P̄ₑ = Σⱼ pⱼ², κ = (P̄ − P̄ₑ) / (1 − P̄ₑ). Equal to
    ``statsmodels.stats.inter_rater.fleiss_kappa(method="fleiss")``. Every case must have the same
    number of answers: use :func:`krippendorff_alpha` when some are missing.
    """
    answers = I.table(answers)
    index = I.category_index([answers], categories, ordered=False)
    sizes = {c: len(row) for c, row in answers.items()}
    first_case, n = next(iter(sizes.items()))
    for case_id, size in sizes.items():
        if size != n:
            raise ValueError(f"{I.where(case_id)}: {size} answers, but case {first_case!r} has {n}; Fleiss' "
                             "kappa needs the same number on every case (Krippendorff's alpha allows missing answers)")
    if n < 2:
        raise ValueError(f"{I.where(first_case)}: Fleiss' kappa needs at least 2 answers per case")
    counts = np.zeros((len(answers), len(index)))
    for i, row in enumerate(answers.values()):
        for a in row.values():
            counts[i, index[a]] += 1
    p = counts.sum(axis=0) / counts.sum()
    agreement = ((counts ** 2).sum(axis=1) - n) / (n * (n - 1))
    chance = (p ** 2).sum()
    if chance == 1:
        return _undefined("Fleiss' kappa")
    return float((agreement.mean() - chance) / (1 - chance))


def krippendorff_alpha(answers, *, level="nominal", categories=None) -> float:
    """Krippendorff's alpha, any number of readers, missing answers allowed.

    α = 1 − Dₒ / Dₑ, from the coincidence matrix o: each case u with mᵤ ≥ 2 answers adds
    1/(mᵤ − 1) for every ordered pair of its answers (c, k) from two different readers. With
    n꜀ = Σₖ o꜀ₖ and n = Σ꜀ n꜀: Dₒ = Σ o꜀ₖ δ²꜀ₖ / n (observed disagreement) and
    Dₑ = Σ n꜀ nₖ δ²꜀ₖ / (n (n − 1)) (expected from all answers pooled). Cases with one answer
    do not count. The difference δ² depends on ``level``:

    - ``"nominal"``: 0 if c = k, else 1;
    - ``"ordinal"``: (Σ_{g from c to k} n_g − (n꜀ + nₖ)/2)², categories in the order of
      ``categories`` (default: sorted answers);
    - ``"interval"``: (c − k)², numeric answers;
    - ``"ratio"``: ((c − k)/(c + k))², non-negative numeric answers.

    1 is perfect agreement, 0 what chance gives. Equal to ``krippendorff.alpha``.
    """
    if level not in ALPHA_LEVELS:
        raise ValueError(f"level must be one of {ALPHA_LEVELS}, got {level!r}")
    answers = I.table(answers, allow_empty_cases=True)
    if level in ("interval", "ratio"):
        numeric = {c: {r: I.number(a, c, r) for r, a in row.items()} for c, row in answers.items()}
        if level == "ratio" and any(v < 0 for row in numeric.values() for v in row.values()):
            case_id, reader = next((c, r) for c, row in numeric.items() for r, v in row.items() if v < 0)
            raise ValueError(f"{I.where(case_id, reader)}: ratio answers must be non-negative")
        index = {v: i for i, v in enumerate(sorted({v for row in numeric.values() for v in row.values()}))}
        answers = numeric
    else:
        index = I.category_index([answers], categories, ordered=level == "ordinal")
    pairable = [row for row in answers.values() if len(row) >= 2]
    if not pairable:
        raise ValueError("Krippendorff's alpha needs at least one case with 2 or more answers")
    counts = np.zeros((len(pairable), len(index)))
    for u, row in enumerate(pairable):
        for a in row.values():
            counts[u, index[a]] += 1
    m = counts.sum(axis=1)
    coincidence = (counts / (m - 1)[:, None]).T @ counts - np.diag((counts / (m - 1)[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta2 = _alpha_differences(level, np.array(list(index), dtype=object), n_c)
    observed = (coincidence * delta2).sum() / n
    expected = (np.outer(n_c, n_c) * delta2).sum() / (n * (n - 1))
    if expected == 0:
        return _undefined("Krippendorff's alpha")
    return float(1 - observed / expected)


def _alpha_differences(level, values, n_c):
    k = len(values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
        i, j = np.indices((k, k))
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cumulative[hi + 1] - cumulative[lo]
        return (between - (n_c[i] + n_c[j]) / 2) ** 2
    v = values.astype(np.float64)
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    total = v[:, None] + v[None, :]
    return np.divide((v[:, None] - v[None, :]) ** 2, total ** 2, out=np.zeros((k, k)), where=total > 0)


def dice(a, b) -> float:
    """Dice = 2|A ∩ B| / (|A| + |B|) of two binary masks (nonzero = inside); 1 when both are empty."""
    a, b = _mask_pair(a, b)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def iou(a, b) -> float:
    """IoU (Jaccard) = |A ∩ B| / |A ∪ B| of two binary masks; 1 when both are empty."""
    a, b = _mask_pair(a, b)
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _mask_pair(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} and {b.shape}")
    return a != 0, b != 0


def _box_iou_matrix(a, b):
    """IoU of every box of ``a`` (k, 4) with every box of ``b`` (m, 4), boxes ``(x, y, w, h)``."""
    ix = np.clip(np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / union


def match_boxes(a, b, *, iou_threshold: float = 0.5) -> list:
    """Pair boxes of two sets one-to-one, maximising the total IoU (Hungarian algorithm,
    ``scipy.optimize.linear_sum_assignment``); a pair counts when its IoU is at least
    ``iou_threshold``. Boxes ``(x, y, width, height)``. Returns ``[(i, j, iou), ...]``."""
    from scipy.optimize import linear_sum_assignment

    a, b = I.boxes_array(a, None, None), I.boxes_array(b, None, None)
    if not len(a) or not len(b):
        return []
    overlap = _box_iou_matrix(a, b)
    eligible = np.where(overlap >= iou_threshold, overlap, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    return [(int(i), int(j), float(overlap[i, j])) for i, j in zip(rows, cols) if overlap[i, j] >= iou_threshold]


def box_agreement(a, b, *, iou_threshold: float = 0.5) -> dict:
    """Agreement of two sets of boxes on one image, boxes matched by :func:`match_boxes`.

    With M matched pairs: ``dice`` = 2M / (|A| + |B|) (the F1 score of one set against the other),
    ``iou`` = M / (|A| + |B| − M), both 1 when neither set has a box; ``mean_iou`` the mean IoU of
    the matched pairs (NaN without any); ``matched`` = M.
    """
    a, b = I.boxes_array(a, None, None), I.boxes_array(b, None, None)
    pairs = match_boxes(a, b, iou_threshold=iou_threshold)
    m, total = len(pairs), len(a) + len(b)
    return {"dice": 1.0 if total == 0 else 2 * m / total,
            "iou": 1.0 if total == 0 else m / (total - m),
            "mean_iou": float(np.mean([p[2] for p in pairs])) if pairs else math.nan,
            "matched": m}


def _pairwise_mean(answers, score):
    """Mean of ``score(answer_a, answer_b)`` over the cases both readers answered (NaN scores left out)."""
    readers = I.readers_of(answers)
    n = len(readers)
    values, counts = np.full((n, n), math.nan), np.zeros((n, n), dtype=np.int64)
    for i, j in itertools.combinations_with_replacement(range(n), 2):
        a, b = readers[i], readers[j]
        per_case = [score(row[a], row[b]) for row in answers.values() if a in row and b in row]
        per_case = [v for v in per_case if not math.isnan(v)]
        counts[i, j] = counts[j, i] = len(per_case)
        if per_case:
            values[i, j] = values[j, i] = float(np.mean(per_case))
    return ReaderMatrix(readers, values, counts)


def pairwise_mask_agreement(masks, *, metric: str = "dice") -> ReaderMatrix:
    """Mean :func:`dice` (or :func:`iou`) of every pair of readers over the cases both outlined.

    ``masks``: ``{case_id: {reader: 2-D or 3-D binary array}}``, one shape per case.
    """
    measure = {"dice": dice, "iou": iou}.get(metric)
    if measure is None:
        raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
    masks = I.table(masks, "masks", allow_empty_cases=True)
    checked = {}
    for case_id, row in masks.items():
        checked[case_id] = {r: I.binary_mask(m, case_id, r) for r, m in row.items()}
        I.same_shapes(checked[case_id], case_id)
    return _pairwise_mean(checked, measure)


def pairwise_box_agreement(boxes, *, metric: str = "dice", iou_threshold: float = 0.5) -> ReaderMatrix:
    """Mean :func:`box_agreement` ``dice``, ``iou`` or ``mean_iou`` of every pair of readers over
    the cases both read (an empty box list is an answer: "nothing here"). For ``mean_iou`` the
    cases without any matched pair are left out, and ``n_cases`` counts the cases used.

    ``boxes``: ``{case_id: {reader: (k, 4) array-like}}``, ``(x, y, width, height)`` in pixels.
    """
    if metric not in ("dice", "iou", "mean_iou"):
        raise ValueError(f"metric must be 'dice', 'iou' or 'mean_iou', got {metric!r}")
    boxes = I.table(boxes, "boxes", allow_empty_cases=True)
    checked = {c: {r: I.boxes_array(b, c, r) for r, b in row.items()} for c, row in boxes.items()}
    return _pairwise_mean(checked, lambda a, b: box_agreement(a, b, iou_threshold=iou_threshold)[metric])


def reader_accuracy(answers, consensus, *, positive) -> dict:
    """Each reader's sensitivity and specificity against the consensus label.

    A case is positive when its consensus label equals ``positive``, and a reader called it
    positive when their answer equals ``positive`` (every other label is negative).
    Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), NaN when the consensus has no
    positive (no negative) among the reader's cases. Cases whose consensus is None (not
    settled) are left out.

    Parameters
    ----------
    answers : ``{case_id: {reader: label}}``.
    consensus : ``{case_id: label or None}``, e.g. ``{c: v.label for c, v in majority_vote(answers).items()}``.

    Returns
    -------
    ``{reader: {"sensitivity", "specificity", "tp", "fn", "tn", "fp", "n_cases"}}``.
    """
    answers = I.table(answers, allow_empty_cases=True)
    tallies = {r: {"tp": 0, "fn": 0, "tn": 0, "fp": 0} for r in I.readers_of(answers)}
    for case_id, row in answers.items():
        if case_id not in consensus:
            raise ValueError(f"{I.where(case_id)}: not in the consensus (unknown case)")
        truth = consensus[case_id]
        if truth is None:
            continue
        for reader, a in row.items():
            said = I.check_label(a, case_id, reader) == positive
            key = ("tp" if said else "fn") if truth == positive else ("fp" if said else "tn")
            tallies[reader][key] += 1
    out = {}
    for reader, t in tallies.items():
        pos, neg = t["tp"] + t["fn"], t["tn"] + t["fp"]
        out[reader] = {"sensitivity": t["tp"] / pos if pos else math.nan,
                       "specificity": t["tn"] / neg if neg else math.nan,
                       **t, "n_cases": pos + neg}
    return out


def intra_reader_agreement(answers, rereads, *, weights=None, categories=None) -> dict:
    """Each reader against themselves on the cases they read twice.

    ``answers`` holds the first reads and ``rereads`` the second, both ``{case_id: {reader: label}}``.
    For each reader with re-reads: ``kappa`` (:func:`cohen_kappa` between first and second
    read, with ``weights``; NaN when undefined), ``agreement`` (the share of identical answers)
    and ``n_cases``. A re-read of a case the reader never read first raises ValueError.
    """
    answers = I.table(answers, allow_empty_cases=True)
    rereads = I.table(rereads, "rereads", allow_empty_cases=True)
    pairs = {}
    for case_id, row in rereads.items():
        for reader, second in row.items():
            first = answers.get(case_id, {}).get(reader)
            if first is None:
                raise ValueError(f"{I.where(case_id, reader)}: a re-read without a first read of this case")
            pairs.setdefault(reader, []).append((case_id, first, second))
    _disagreement_weights(1, weights)
    index = I.category_index([answers, rereads], categories, ordered=weights is not None)
    out = {}
    for reader, reads in pairs.items():
        firsts, seconds = [a for _, a, _ in reads], [b for _, _, b in reads]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedAgreementWarning)
            kappa = _kappa_from_pairs(firsts, seconds, index, weights, "intra-reader kappa")
        out[reader] = {"kappa": kappa, "agreement": float(np.mean([a == b for a, b in zip(firsts, seconds)])),
                       "n_cases": len(reads)}
    return out


def workload(assignments, answers=None, rereads=None) -> dict:
    """Each reader's workload: what they were given, what they did, and their share of the work.

    Parameters
    ----------
    assignments : ``{reader: [(case_id, is_reread), ...]}`` as :func:`curation.assign` returns.
    answers, rereads : ``{case_id: {reader: answer}}`` of first reads and re-reads done so far.

    Returns
    -------
    ``{reader: {"assigned", "rereads_assigned", "done", "rereads_done", "remaining", "share",
    "relative_load"}}``: ``share`` is the reader's part of all assigned reads, ``relative_load``
    their assigned reads over the mean per reader (1 = an average load, 2 = twice as much).
    An answer for a case not assigned to that reader raises ValueError.
    """
    if not isinstance(assignments, Mapping):
        raise ValueError(f"assignments must be a mapping {{reader: [(case_id, is_reread), ...]}}, "
                         f"got {type(assignments).__name__}")
    out, given = {}, {}
    for reader, queue in assignments.items():
        if isinstance(queue, (str, bytes)) or not all(isinstance(e, (tuple, list)) and len(e) == 2 for e in queue):
            raise ValueError(f"{I.where(reader=reader)}: a queue must be a list of (case_id, is_reread) pairs")
        pairs = [(case_id, bool(is_reread)) for case_id, is_reread in queue]
        first = [c for c, again in pairs if not again]
        again = [c for c, is_reread in pairs if is_reread]
        given[reader] = (set(first), set(again))
        out[reader] = {"assigned": len(first), "rereads_assigned": len(again), "done": 0, "rereads_done": 0}
    for table, slot, key in ((answers, 0, "done"), (rereads, 1, "rereads_done")):
        if table is None:
            continue
        for case_id, row in I.table(table, allow_empty_cases=True).items():
            for reader in row:
                if reader not in given or case_id not in given[reader][slot]:
                    kind = "re-read" if slot else "read"
                    raise ValueError(f"{I.where(case_id, reader)}: answered a {kind} that was not assigned "
                                     "(unknown case for this reader)")
                out[reader][key] += 1
    total = sum(w["assigned"] + w["rereads_assigned"] for w in out.values())
    mean = total / len(out) if out else 0
    for w in out.values():
        load = w["assigned"] + w["rereads_assigned"]
        w["remaining"] = load - w["done"] - w["rereads_done"]
        w["share"] = load / total if total else math.nan
        w["relative_load"] = load / mean if mean else math.nan
    return out
