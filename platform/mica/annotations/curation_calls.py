"""The one place where the site calls the curation library: assignment, consensus, agreement.

Answers go in as the library's tables ``{key: {reader: answer}}`` and come out as the site's
values: lists for multiple choice, marks ``{instance, frame, x, y, width, height}`` for boxes.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

import curation


@dataclass(frozen=True)
class Deal:
    case: object
    reader: object
    position: int
    is_reread: bool


def assign_cases(cases, reader_weights, *, readers_per_case, reread_share, seed):
    """curation.assign: each case to `readers_per_case` readers, balanced by weight, never twice
    to one reader, then re-reads of `reread_share` of each reader's cases at the end of the queue."""
    queues = curation.assign(list(cases), list(reader_weights), readers_per_case, weights=dict(reader_weights),
                             reread_fraction=reread_share, seed=seed)
    return [Deal(case, reader, position, is_reread)
            for reader, queue in queues.items() for position, (case, is_reread) in enumerate(queue)]


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def majority_vote(values):
    """The value most readers gave, or None on a tie (the case then goes to adjudication)."""
    vote = curation.majority_vote({"case": {index: _hashable(value) for index, value in enumerate(values)}})["case"]
    return list(vote.label) if isinstance(vote.label, tuple) else vote.label


def fused_boxes(marks_by_reader, image_sizes):
    """Boxes by weighted box fusion, image by image (a reader with no box on an image said
    "nothing here"); None when a box was drawn that too few readers confirm."""
    images = sorted({(mark["instance"], mark["frame"]) for marks in marks_by_reader for mark in marks})
    if not images:
        return []
    table = {image: {reader: _inside([m for m in marks if (m["instance"], m["frame"]) == image],
                                     image_sizes[image[0]])
                     for reader, marks in enumerate(marks_by_reader)} for image in images}
    fused = curation.fuse_boxes(table, {image: image_sizes[image[0]] for image in images})
    if any(result.needs_adjudication for result in fused.values()):
        return None
    return [{"instance": instance, "frame": frame, "x": x, "y": y, "width": width, "height": height}
            for (instance, frame), result in fused.items() for x, y, width, height in result.boxes.tolist()]


def _inside(marks, size):
    """Boxes (x, y, width, height) cut at the image's edge (the viewer cuts them; stored marks
    are only checked from 0), those left with no area dropped."""
    width, height = size
    boxes = []
    for mark in marks:
        x2, y2 = min(mark["x"] + mark["width"], width), min(mark["y"] + mark["height"], height)
        if x2 > mark["x"] and y2 > mark["y"]:
            boxes.append((mark["x"], mark["y"], x2 - mark["x"], y2 - mark["y"]))
    return boxes


def mask_from_runs(mark):
    """A mask mark's pixels (rows × columns, bool) from its run lengths, background first, row by row."""
    runs = mark["rle"]
    values = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return values.reshape(int(mark["rows"]), int(mark["columns"]))


def runs_of(mask):
    """The run lengths (background first) of a 2-D mask, row by row: the inverse of mask_from_runs."""
    flat = np.asarray(mask, bool).ravel()
    edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


def stapled_masks(marks_by_reader, image_sizes):
    """Masks by STAPLE, image by image (a reader with no mask on an image drew nothing there);
    None when a reader's mask does not have its image's size (the adjudicator then decides)."""
    images = sorted({(mark["instance"], mark["frame"]) for marks in marks_by_reader for mark in marks})
    consensus = []
    for instance, frame in images:
        columns, rows = image_sizes[instance]
        masks = {}
        for reader, marks in enumerate(marks_by_reader):
            mask = np.zeros((rows, columns), bool)
            for mark in marks:
                if (mark["instance"], mark["frame"]) == (instance, frame):
                    if (int(mark["rows"]), int(mark["columns"])) != (rows, columns):
                        return None
                    mask |= mask_from_runs(mark)
            masks[reader] = mask
        with warnings.catch_warnings():  # no reader marked anything here: STAPLE is undefined, the mask empty
            warnings.simplefilter("ignore", RuntimeWarning)
            fused = curation.staple({"image": masks})["image"].mask.astype(bool)
        if fused.any():
            consensus.append({"instance": instance, "frame": frame, "rows": rows, "columns": columns,
                              "rle": runs_of(fused)})
    return consensus


def label_consensus(kind, values, image_sizes=None):
    """The readers' consensus on one label of one case, or None when it needs an adjudicator:
    majority vote for case-level answers, weighted box fusion for boxes (a box needs more than
    half of the readers), STAPLE for masks; points go to adjudication."""
    if kind == "boxes":
        return fused_boxes([value or [] for value in values], image_sizes)
    if kind == "masks":
        return stapled_masks([value or [] for value in values], image_sizes)
    if kind == "points":
        return None
    return majority_vote(values)


def kappa_matrix(answers):
    """Cohen's kappa of every pair of readers on a case-level label: ``{case: {reader: answer}}``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", curation.UndefinedAgreementWarning)
        matrix = curation.pairwise_kappa({case: {r: _hashable(a) for r, a in row.items()} for case, row in answers.items()})
    return {(first, second): _number(matrix.values[i, j])
            for i, first in enumerate(matrix.readers) for j, second in enumerate(matrix.readers)}


def krippendorff_alpha(answers, level):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", curation.UndefinedAgreementWarning)
        return _number(curation.krippendorff_alpha(
            {case: {r: _hashable(a) for r, a in row.items()} for case, row in answers.items()}, level=level))


def _number(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
