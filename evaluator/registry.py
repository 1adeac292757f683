"""The one registry of metrics: the site's leaderboard, the CLI and the shared tests read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Metric", "METRICS"]


@dataclass(frozen=True)
class Metric:
    """A leaderboard metric.

    ``kind`` says how ``function`` is called: ``"binary"`` ``f(y_true, y_score)``,
    ``"regression"`` ``f(y_true, y_pred)``, ``"segmentation"`` ``f(truth_mask, pred_mask,
    spacing)`` (one case), ``"detection"`` ``f(truth_boxes, predictions)`` (lists per image).
    ``per_case`` is True when the task's ``per_case`` rows carry this metric.
    """

    name: str
    task: str
    higher_is_better: bool
    description: str
    function: Callable | None = field(default=None, compare=False, repr=False)
    kind: str = ""
    per_case: bool = False


def _build():
    from . import classification as C
    from . import regression as R
    from . import detection as D
    from . import segmentation as S

    def sens(y, s):
        return C.sensitivity_specificity(y, s)[0]

    def spec(y, s):
        return C.sensitivity_specificity(y, s)[1]

    items = [
        Metric("auc", "classification", True, "Area under the ROC curve (Mann-Whitney), macro over labels; "
               "its interval is DeLong's.", C.roc_auc_score, "binary"),
        Metric("sensitivity", "classification", True, "TP/(TP+FN), positive when score >= threshold (0.5).",
               sens, "binary"),
        Metric("specificity", "classification", True, "TN/(TN+FP), positive when score >= threshold (0.5).",
               spec, "binary"),
        Metric("average_precision", "classification", True, "Step-wise average precision (sklearn).",
               C.average_precision_score, "binary"),
        Metric("log_loss", "classification", False, "Binary cross-entropy, weighted over labels when "
               "log_loss_weights is set (RSNA: 2 on 'any').", C.log_loss, "binary", per_case=True),
        Metric("mae", "regression", False, "Mean absolute error; mae_ci is a bootstrap 95% interval.",
               R.mean_absolute_error, "regression", per_case=True),
        Metric("rmse", "regression", False, "Root mean squared error.", R.root_mean_squared_error, "regression"),
        Metric("map", "detection", True, "RSNA pneumonia mean average precision over IoU 0.40-0.75.",
               D.rsna_map, "detection", per_case=True),
        Metric("froc", "detection", True, "Competition performance metric: mean FROC sensitivity at 1/8..8 "
               "false positives per image, interpolated (MONAI, CAMELYON16) or, with froc_rule='nearest', "
               "the nearest curve point (the LUNA16 organisers' calculator).", D.froc_score, "detection"),
        Metric("dice", "segmentation", True, "Dice 2|A∩B|/(|A|+|B|), mean over cases.", S.dice_score,
               "segmentation", per_case=True),
        Metric("iou", "segmentation", True, "Jaccard |A∩B|/|A∪B|, mean over cases.", S.iou_score,
               "segmentation", per_case=True),
        Metric("hd95", "segmentation", False, "95th percentile Hausdorff distance in mm (MONAI).",
               S.hausdorff_distance_95, "segmentation", per_case=True),
        Metric("nsd", "segmentation", True, "Normalized surface Dice at a tolerance in mm.",
               S.normalized_surface_dice, "segmentation", per_case=True),
        Metric("volume_difference", "segmentation", False, "Absolute volume difference in mm³ (mL × 1000).",
               S.absolute_volume_difference, "segmentation", per_case=True),
    ]
    return {m.name: m for m in items}


METRICS: dict[str, Metric] = {}


def _load():
    if not METRICS:
        METRICS.update(_build())
    return METRICS
