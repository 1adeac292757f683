"""Every bad input raises ValueError naming the case and the reader where it was found.

Tried here: a reader with no answers, a case nobody answered, an unknown case (not in the
consensus, not assigned, no first read, no image size), masks of different shapes, non-binary
and non-integer masks, a box with negative or zero width, NaN coordinates, a box outside the
image, a label outside the categories, NaN and unhashable labels, text for a number, unequal
numbers of readers for Fleiss' kappa, an unknown weighting or level, a table that is not a mapping,
a reader's queue that is not (case_id, is_reread) pairs.
"""

import math

import numpy as np
import pytest

import curation

BOX = [[10, 10, 20, 20]]


@pytest.mark.parametrize("call, message", [
    (lambda: curation.cohen_kappa({"c1": {"A": 1, "B": 1}}, "A", "Z"), "reader 'Z': has no answers"),
    (lambda: curation.cohen_kappa({"c1": {"A": 1}, "c2": {"B": 1}}, "A", "B"), "answered no case in common"),
    (lambda: curation.majority_vote({"c1": {"A": 1}, "c2": {"A": None}}), "case 'c2': no reader answered"),
    (lambda: curation.majority_vote({"c1": {"A": [1, 2]}}), "case 'c1', reader 'A': a label must be"),
    (lambda: curation.majority_vote({"c1": {"A": math.nan}}), "case 'c1', reader 'A': the answer is NaN"),
    (lambda: curation.majority_vote([("c1", "A", 1)]), "answers must be a mapping"),
    (lambda: curation.majority_vote({"c1": ["A"]}), "case 'c1': expected a mapping"),
    (lambda: curation.reader_accuracy({"c1": {"A": 1}, "c9": {"A": 0}}, {"c1": 1}, positive=1),
     "case 'c9': not in the consensus"),
    (lambda: curation.intra_reader_agreement({"c1": {"A": 1}}, {"c1": {"B": 1}}),
     "case 'c1', reader 'B': a re-read without a first read"),
    (lambda: curation.workload({"A": [("c1", False)]}, answers={"c2": {"A": 1}}),
     "case 'c2', reader 'A': answered a read that was not assigned"),
    (lambda: curation.workload({"A": [("c1", False)]}, answers={"c1": {"B": 1}}),
     "case 'c1', reader 'B': answered a read that was not assigned"),
    (lambda: curation.workload({"A": ["c1"]}), "reader 'A': a queue must be a list of"),
    (lambda: curation.workload([("A", "c1")]), "assignments must be a mapping"),
    (lambda: curation.fuse_boxes({"c1": {"A": BOX}}, {"c2": (64, 64)}), "case 'c1': no image size"),
    (lambda: curation.fuse_boxes({"c1": {"A": [[1, 2, -3, 4]]}}, {"c1": (64, 64)}),
     "case 'c1', reader 'A': box 0 has a negative width or height"),
    (lambda: curation.fuse_boxes({"c1": {"A": [BOX[0], [1, 2, 0, 4]]}}, {"c1": (64, 64)}),
     "case 'c1', reader 'A': box 1 has zero width"),
    (lambda: curation.fuse_boxes({"c1": {"A": [[1, np.nan, 3, 4]]}}, {"c1": (64, 64)}),
     "case 'c1', reader 'A': box 0 holds NaN"),
    (lambda: curation.fuse_boxes({"c1": {"A": [[60, 10, 20, 20]]}}, {"c1": (64, 64)}),
     "case 'c1', reader 'A': a box lies outside the 64×64 image"),
    (lambda: curation.fuse_boxes({"c1": {"A": [[1, 2, 3]]}}, {"c1": (64, 64)}),
     r"case 'c1', reader 'A': boxes must have shape \(k, 4\)"),
    (lambda: curation.fuse_boxes({"c1": {"A": BOX}}, {"c1": (0, 64)}), "case 'c1': the image size must be"),
    (lambda: curation.pairwise_box_agreement({"c1": {"A": BOX, "B": [[0, 0, -1, 1]]}}),
     "case 'c1', reader 'B': box 0 has a negative width"),
    (lambda: curation.staple({"c1": {"A": np.zeros((4, 4)), "B": np.zeros((4, 5))}}),
     r"case 'c1', reader 'B': mask shape \(4, 5\) differs from reader 'A'"),
    (lambda: curation.majority_vote_mask({"c1": {"A": np.zeros((4, 4)), "B": np.zeros((3, 4))}}),
     r"case 'c1', reader 'B': mask shape \(3, 4\) differs"),
    (lambda: curation.pairwise_mask_agreement({"c1": {"A": np.zeros((4, 4)), "B": np.zeros((2, 2))}}),
     "case 'c1', reader 'B': mask shape"),
    (lambda: curation.staple({"c1": {"A": np.full((4, 4), 2)}}), "case 'c1', reader 'A': a binary mask must hold only 0 and 1"),
    (lambda: curation.staple({"c1": {"A": np.zeros(4)}}), r"case 'c1', reader 'A': a mask must be 2-D or 3-D"),
    (lambda: curation.majority_vote_mask({"c1": {"A": np.full((2, 2), 1.5)}}), "case 'c1', reader 'A': mask labels must be integers"),
    (lambda: curation.cohen_kappa({"c1": {"A": "x", "B": "q"}}, "A", "B", categories=["x", "y"]),
     "case 'c1', reader 'B': the answer is not one of the 2 categories"),
    (lambda: curation.cohen_kappa({"c1": {"A": 1, "B": 2}}, "A", "B", weights="cubic"), "weights must be one of"),
    (lambda: curation.cohen_kappa({"c1": {"A": "x", "B": 2}}, "A", "B", weights="linear"),
     "cannot be ordered: pass categories"),
    (lambda: curation.fleiss_kappa({"c1": {"A": 1, "B": 1}, "c2": {"A": 1, "B": 1, "C": 2}}),
     "case 'c2': 3 answers, but case 'c1' has 2"),
    (lambda: curation.krippendorff_alpha({"c1": {"A": 1, "B": "two"}}, level="interval"),
     "case 'c1', reader 'B': expected a number"),
    (lambda: curation.krippendorff_alpha({"c1": {"A": 1, "B": -2}}, level="ratio"),
     "case 'c1', reader 'B': ratio answers must be non-negative"),
    (lambda: curation.krippendorff_alpha({"c1": {"A": 1}}, level="nominal"), "at least one case with 2"),
    (lambda: curation.krippendorff_alpha({"c1": {"A": 1, "B": 1}}, level="bogus"), "level must be one of"),
])
def test_bad_input_is_refused_with_the_case_and_reader(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_messages_never_quote_an_answer():
    secret = "patient Jane Doe 1970-01-01"
    with pytest.raises(ValueError) as err:
        curation.cohen_kappa({"c1": {"A": secret, "B": "x"}}, "A", "B", categories=["x"])
    assert "Jane" not in str(err.value)
