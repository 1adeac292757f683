"""Mica's curation library: reader assignment, consensus, agreement and ground-truth export.

A framework-free library: it never imports Django, Celery or the site. Inputs are plain data,
a table ``{case_id: {reader: answer}}`` (``None`` for "not answered"), and outputs are plain
data or small frozen dataclasses. Every bad input raises ``ValueError`` naming the case and
the reader. See ``curation/README.md`` for the definitions and references.

>>> import curation
>>> votes = curation.majority_vote({"c1": {"ann": "yes", "bob": "yes", "eve": "no"}})
>>> votes["c1"].label
'yes'
"""

from .agreement import (ReaderMatrix, UndefinedAgreementWarning, box_agreement, cohen_kappa, dice, fleiss_kappa,
                        intra_reader_agreement, iou, krippendorff_alpha, match_boxes, pairwise_box_agreement,
                        pairwise_kappa, pairwise_mask_agreement, reader_accuracy, workload)
from .assignment import assign, reader_quotas
from .consensus import (FusedBoxes, LabelStaple, MaskVote, StapleResult, Vote, fuse_boxes, majority_vote,
                        majority_vote_mask, multilabel_staple, needing_adjudication, staple)
from .export import (write_classification_truth, write_detection_truth, write_mask_truth, write_multilabel_truth,
                     write_regression_truth)

__all__ = ["assign", "reader_quotas",
           "majority_vote", "fuse_boxes", "staple", "multilabel_staple", "majority_vote_mask", "needing_adjudication",
           "Vote", "FusedBoxes", "StapleResult", "LabelStaple", "MaskVote",
           "cohen_kappa", "pairwise_kappa", "fleiss_kappa", "krippendorff_alpha", "dice", "iou", "match_boxes",
           "box_agreement", "pairwise_mask_agreement", "pairwise_box_agreement", "reader_accuracy",
           "intra_reader_agreement", "workload", "ReaderMatrix", "UndefinedAgreementWarning",
           "write_classification_truth", "write_multilabel_truth", "write_regression_truth", "write_detection_truth",
           "write_mask_truth"]
