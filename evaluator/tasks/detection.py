"""Detection, in the RSNA pneumonia challenge's formats (Kaggle 2018).

Formats
-------
Truth: CSV ``patientId,x,y,width,height,Target``, one row per box; an image without boxes has
one row with ``Target`` 0 and empty coordinates. Every patientId listed is an image.

Predictions: CSV ``patientId,PredictionString``, one row per image; ``PredictionString`` is
``"conf x y width height conf x y width height ..."`` (space separated, finite numbers,
width and height ≥ 0; empty for no boxes). An image without a row has no boxes and counts in
``missing_cases``.

Metrics: ``map`` (RSNA mean over images of TP/(TP+FP+FN) averaged over IoU 0.40–0.75,
images with neither truth nor predictions left out), ``froc`` (the competition performance
metric: mean sensitivity at 1/8..8 false positives per image, read off the curve by
``froc_rule``) and ``froc_sensitivity`` (the seven sensitivities). When the truth has boxes the
result also has ``froc_curve``: ``{"fp_per_image", "sensitivity", "fp_rates", "rule"}``, the
curve's points (at most about 200, keeping every point the rule reads at the rates).

Options
-------
iou_thresholds (0.40, 0.45, ..., 0.75); froc_iou (None: a hit is a prediction whose centre is
inside the truth box; a number: IoU above it); froc_fp_rates (1/8 ... 8); froc_rule
("interpolated", as MONAI's ``compute_froc_score`` and CAMELYON16, or "nearest", as the LUNA16
organisers' ``getCPM``, see :func:`evaluator.detection.froc_read`); max_bytes (200 MB),
max_line_bytes (1 MiB).
"""

from __future__ import annotations

import numpy as np

from .. import detection as D
from ..problems import ProblemLog
from ..readers import iter_csv, format_header, parse_float
from ._common import (CSV_HELP, CSV_OPTIONS, case_facts, clean, label_of, resolve_options, subset_rows,
                      truth_log)

DEFAULTS = {**CSV_OPTIONS, "iou_thresholds": D.RSNA_IOU_THRESHOLDS, "froc_iou": None,
            "froc_fp_rates": D.FROC_FP_RATES, "froc_rule": "interpolated"}
HELP = {**CSV_HELP,
        "iou_thresholds": ("list", "IoU thresholds of the mAP (RSNA: 0.40, 0.45, ..., 0.75)."),
        "froc_iou": ("float", "FROC hit rule: empty for centre-in-box (LUNA16), or an IoU a hit must exceed."),
        "froc_fp_rates": ("list", "False positives per image at which the FROC reads the sensitivity."),
        "froc_rule": ("str", "How the FROC reads a sensitivity at each rate: 'interpolated' (a line between "
                      "curve points, as MONAI and CAMELYON16) or 'nearest' (the nearest curve point, 0 where "
                      "the curve never comes near: the LUNA16 organisers' calculator).")}
TRUTH_HEADER = ["patientId", "x", "y", "width", "height", "Target"]
PRED_HEADER = ["patientId", "PredictionString"]


def read_truth(path, name=None):
    """Return ``(ids, boxes)`` with ``boxes[i]`` an (k, 4) array; a bad file raises ValueError."""
    log = truth_log(path, name)
    got = iter_csv(path, log, max_bytes=None)
    if got is None:
        log.raise_if_any(ValueError)
    header, rows = got
    if header != TRUTH_HEADER:
        rows.close()
        raise ValueError(f"{log.file}: expected header {format_header(TRUTH_HEADER)!r}, "
                         f"found {format_header(header)!r}")
    boxes: dict[str, list] = {}
    for row, f in rows:
        if len(f) != 6:
            log.add(f"has {len(f)} columns, expected 6", row=row)
            continue
        pid, target = f[0], f[5]
        boxes.setdefault(pid, [])
        if target not in ("0", "1"):
            log.add(f"Target must be 0 or 1, found {target!r}", row=row, column="Target")
            continue
        if target == "1":
            vals = [parse_float(v, log, row=row, column=c) for v, c in zip(f[1:5], TRUTH_HEADER[1:5])]
            if None in vals:
                continue
            if vals[2] < 0 or vals[3] < 0:
                log.add("width and height must be non-negative", row=row)
                continue
            boxes[pid].append(vals)
    log.raise_if_any(ValueError)
    ids = list(boxes)
    return ids, [np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4) for i in ids]


def describe(truth, options, *, strict=True, name=None):
    ids, boxes = read_truth(truth, name)
    strata = {i: "positive" if len(b) else "negative" for i, b in zip(ids, boxes)}
    return case_facts("detection", ids, header=list(PRED_HEADER), strata=strata)


def read_predictions(path, ids, options, name=None):
    """Return ``{patientId: (p, 5) array}``; raise SubmissionInvalid listing every problem."""
    log = ProblemLog(label_of(path, name))
    got = iter_csv(path, log, max_bytes=options["max_bytes"], max_rows=len(ids),
                   max_line_bytes=options["max_line_bytes"])
    out = {}
    if got is not None:
        header, rows = got
        if header != PRED_HEADER:
            rows.close()
            log.add(f"wrong header: expected {format_header(PRED_HEADER)!r}, found {format_header(header)!r}", row=1)
        else:
            known, seen = set(ids), {}
            for row, f in rows:
                if len(f) != 2:
                    log.add(f"has {len(f)} columns, expected 2 (patientId,PredictionString)", row=row)
                    continue
                pid, text = f
                if pid in seen:
                    log.add(f"duplicate patientId {pid!r}: rows {seen[pid]} and {row}", row=row,
                            column="patientId", case_id=pid)
                    continue
                seen[pid] = row
                if pid not in known:
                    log.add(f"unknown patientId {pid!r}", row=row, column="patientId", case_id=pid)
                    continue
                parsed = _parse_prediction_string(text, log, row, pid)
                if parsed is not None:
                    out[pid] = parsed
    log.raise_if_any()
    return out


def _parse_prediction_string(text, log, row, pid):
    tokens = text.split()
    if len(tokens) % 5:
        log.add(f"has {len(tokens)} numbers; expected groups of 5 (confidence x y width height)", row=row,
                column="PredictionString", case_id=pid)
        return None
    vals = []
    for tok in tokens:
        v = parse_float(tok, log, row=row, column="PredictionString", case_id=pid)
        if v is None:
            return None
        vals.append(v)
    arr = np.asarray(vals, dtype=np.float64).reshape(-1, 5)
    if (arr[:, 3:] < 0).any():
        log.add("a box has a negative width or height", row=row, column="PredictionString", case_id=pid)
        return None
    return arr


def validate(predictions, facts, options=None, name=None):
    options = resolve_options(options, DEFAULTS, "detection")
    read_predictions(predictions, facts["case_ids"], options, name)


def score(truth, predictions, options=None, case_ids=None, name=None):
    options = resolve_options(options, DEFAULTS, "detection")
    ids, boxes = read_truth(truth)
    preds = read_predictions(predictions, ids, options, name)
    keep = subset_rows(ids, case_ids)
    ids, boxes = [ids[i] for i in keep], [boxes[i] for i in keep]
    plist = [preds.get(i, np.zeros((0, 5))) for i in ids]
    per_image = D.rsna_map_per_image(boxes, plist, thresholds=tuple(options["iou_thresholds"]))
    kept = per_image[~np.isnan(per_image)]
    metrics = {"map": clean(float(kept.mean()) if kept.size else float("nan"))}
    rates, rule = tuple(options["froc_fp_rates"]), options["froc_rule"]
    if rule not in D.FROC_RULES:
        raise ValueError(f"froc_rule must be one of {', '.join(D.FROC_RULES)}, got {rule!r}")
    events = curve = None
    if sum(len(b) for b in boxes):
        froc, sens = D.froc_score(boxes, plist, fp_rates=rates, iou_threshold=options["froc_iou"], rule=rule)
        metrics["froc"] = clean(froc)
        metrics["froc_sensitivity"] = clean(sens)
        events = D.froc_events(boxes, plist, iou_threshold=options["froc_iou"])
        fpi, sens = D.froc_curve_of(events)
        kept = D.froc_curve_points(fpi, rates)
        curve = {"fp_per_image": clean(fpi[kept]), "sensitivity": clean(sens[kept]), "fp_rates": list(rates),
                 "rule": rule}
    else:
        metrics["froc"] = None

    def replicate(W):  # the mAP is a per-case mean, bootstrapped by evaluator.intervals
        if events is None:
            return {}
        return {"froc": D.froc_scores_weighted(events, W, rates, rule, W.device).mean(1)}

    per_case = [{"case_id": i, "missing": i not in preds, "n_predictions": int(len(p)), "map": clean(s)}
                for i, p, s in zip(ids, plist, per_image)]
    result = {"task": "detection", "n_cases": len(ids), "missing_cases": sum(i not in preds for i in ids),
              "metrics": metrics, "per_case": per_case, "_intervals": {"replicate": replicate}}
    if curve is not None:
        result["froc_curve"] = curve
    return result
