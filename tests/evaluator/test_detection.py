"""RSNA mAP against a straightforward loop written here, FROC on hand-checked data, the formats."""

import json

import numpy as np
import pytest
import torch

import evaluator
from evaluator import SubmissionInvalid, detection as D


def iou_loop(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def map_loop(truth, preds):
    """The Kaggle evaluation text, one image and one threshold at a time."""
    scores = []
    for t, p in zip(truth, preds):
        if len(t) == 0 and len(p) == 0:
            continue
        order = sorted(range(len(p)), key=lambda i: -p[i][0])
        per_t = []
        for thr in np.arange(0.4, 0.751, 0.05):
            matched = set()
            tp = 0
            for i in order:
                best, best_iou = None, -1.0
                for j, g in enumerate(t):
                    if j in matched:
                        continue
                    v = iou_loop(p[i][1:], g)
                    if v > thr and v > best_iou:
                        best, best_iou = j, v
                if best is not None:
                    matched.add(best)
                    tp += 1
            fp, fn = len(p) - tp, len(t) - tp
            per_t.append(tp / (tp + fp + fn))
        scores.append(np.mean(per_t))
    return float(np.mean(scores))


def random_images(rng, n):
    truth, preds = [], []
    for _ in range(n):
        k = rng.integers(0, 4)
        t = np.c_[rng.uniform(0, 800, (k, 2)), rng.uniform(50, 300, (k, 2))]
        # predictions near the truth boxes plus some noise boxes
        kept = t[rng.random(k) < 0.7]
        near = kept + rng.normal(0, 25, kept.shape)
        q = rng.integers(0, 3)
        noise = np.c_[rng.uniform(0, 800, (q, 2)), rng.uniform(50, 300, (q, 2))]
        boxes = np.abs(np.vstack([near.reshape(-1, 4), noise]))
        conf = np.round(rng.random(len(boxes)), 2)
        truth.append(t)
        preds.append(np.c_[conf, boxes])
    return truth, preds


@pytest.mark.parametrize("seed", range(4))
def test_map_matches_the_loop(seed):
    rng = np.random.default_rng(seed)
    truth, preds = random_images(rng, 150)
    assert D.rsna_map(truth, preds) == pytest.approx(map_loop(truth, preds), abs=1e-12)


def test_iou_must_be_strictly_greater_than_the_threshold():
    # IoU exactly 0.5: a hit for thresholds 0.40 and 0.45 only
    t = [np.array([[0, 0, 10, 10]])]
    p = [np.array([[0.9, 0, 0, 10, 5]])]
    assert D.rsna_map(t, p) == pytest.approx(2 / 8)


def test_images_without_truth_or_predictions():
    t = [np.zeros((0, 4)), np.zeros((0, 4)), np.array([[0, 0, 10, 10]])]
    p = [np.zeros((0, 5)), np.array([[0.5, 0, 0, 5, 5]]), np.zeros((0, 5))]
    s = D.rsna_map_per_image(t, p)
    assert np.isnan(s[0]) and s[1] == 0 and s[2] == 0
    assert D.rsna_map(t, p) == 0.0


def test_froc_on_hand_checked_data():
    # 2 images, 2 lesions. Image 1: hit on lesion A at 0.9, a second hit on A at 0.8 (ignored),
    # an FP at 0.7. Image 2: FP at 0.6, hit on lesion B at 0.3.
    t = [np.array([[0, 0, 10, 10]]), np.array([[100, 100, 10, 10]])]
    p = [np.array([[0.9, 1, 1, 8, 8], [0.8, 2, 2, 4, 4], [0.7, 50, 50, 5, 5]]),
         np.array([[0.6, 300, 300, 5, 5], [0.3, 101, 101, 8, 8]])]
    fpi, sens = D.froc_curve(t, p)
    # thresholds 0.9, 0.7, 0.6, 0.3 (0.8 is not a point of the curve: hits on a found lesion are ignored)
    assert fpi.tolist() == [0, 0, 0.5, 1.0, 1.0]
    assert sens.tolist() == [0, 0.5, 0.5, 0.5, 1.0]
    score, at = D.froc_score(t, p)
    assert at.tolist() == pytest.approx([0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0])
    assert score == pytest.approx(np.mean(at))


TRUTH = "patientId,x,y,width,height,Target\np1,10,10,100,100,1\np1,300,300,50,50,1\np2,,,,,0\np3,,,,,0\n"


def test_the_task_scores_rsna_files(write):
    pred = "patientId,PredictionString\np1,0.9 10 10 100 100 0.5 0 0 5 5\np2,0.4 1 1 5 5\n"
    r = evaluator.score("detection", write("t.csv", TRUTH), write("p.csv", pred))
    truth = [np.array([[10, 10, 100, 100], [300, 300, 50, 50]]), np.zeros((0, 4)), np.zeros((0, 4))]
    preds = [np.array([[0.9, 10, 10, 100, 100], [0.5, 0, 0, 5, 5]]), np.array([[0.4, 1, 1, 5, 5]]), np.zeros((0, 5))]
    assert r["metrics"]["map"] == pytest.approx(map_loop(truth, preds))
    assert r["n_cases"] == 3 and r["missing_cases"] == 1
    assert r["per_case"][2]["map"] is None


@pytest.mark.parametrize("text, msg", [
    ("patientId,PredictionString\np1,0.9 10 10 100\n", "expected groups of 5"),
    ("patientId,PredictionString\np1,0.9 10 10 abc 5\n", "'abc' is not a number"),
    ("patientId,PredictionString\np1,0.9 10 10 -5 5\n", "negative width"),
    ("patientId,PredictionString\np1,\np1,\n", "duplicate patientId 'p1'"),
    ("patientId,PredictionString\npX,\n", "unknown patientId 'pX'"),
    ("patientId,boxes\np1,\n", "expected 'patientId,PredictionString'"),
])
def test_the_task_validates(write, text, msg):
    with pytest.raises(SubmissionInvalid, match=msg):
        evaluator.validate("detection", write("p.csv", text), truth=write("t.csv", TRUTH))


def _many_boxes_files(write, n_images=300, seed=3):
    """A truth with a box on most images and predictions with several thousand confidences: a
    curve far longer than what a result stores."""
    rng = np.random.default_rng(seed)
    truth, pred = ["patientId,x,y,width,height,Target"], ["patientId,PredictionString"]
    for i in range(n_images):
        if i % 4:
            truth.append(f"img{i},100,100,50,50,1")
        else:
            truth.append(f"img{i},,,,,0")
        boxes = [f"{rng.uniform():.6f} {rng.uniform(0, 160):.1f} {rng.uniform(0, 160):.1f} 40 40"
                 for _ in range(rng.integers(0, 25))]
        pred.append(f"img{i},{' '.join(boxes)}")
    return write("t.csv", "\n".join(truth) + "\n"), write("p.csv", "\n".join(pred) + "\n")


@pytest.mark.parametrize("options", [{}, {"froc_rule": "nearest"}, {"froc_iou": 0.1},
                                     {"froc_fp_rates": [0.05, 0.3, 3, 50]}])
def test_the_result_keeps_a_small_froc_curve_that_reads_the_same_sensitivities(write, options):
    truth, pred = _many_boxes_files(write)
    r = evaluator.score("detection", truth, pred, options, n_resamples=20)
    curve = r["froc_curve"]
    json.dumps(curve, allow_nan=False)
    assert len(curve["fp_per_image"]) == len(curve["sensitivity"]) <= 200
    full_fpi, _ = D.froc_curve(*_arrays(truth, pred), iou_threshold=options.get("froc_iou"))
    assert len(full_fpi) > 1000  # the curve was really cut down
    assert curve["rule"] == options.get("froc_rule", "interpolated")
    assert curve["fp_rates"] == list(options.get("froc_fp_rates", D.FROC_FP_RATES))
    assert curve["fp_per_image"][0] == 0 and curve["sensitivity"][0] == 0
    assert curve["fp_per_image"][-1] == pytest.approx(full_fpi[-1])
    read = D.froc_read(torch.tensor([curve["fp_per_image"]], dtype=torch.float64),
                       torch.tensor([curve["sensitivity"]], dtype=torch.float64),
                       curve["fp_rates"], curve["rule"])[0].tolist()
    assert read == r["metrics"]["froc_sensitivity"]


def _arrays(truth, pred):
    from evaluator.tasks import detection as task

    ids, boxes = task.read_truth(truth)
    preds = task.read_predictions(pred, ids, task.DEFAULTS)
    return boxes, [preds.get(i, np.zeros((0, 5))) for i in ids]


def test_no_froc_curve_without_truth_boxes(write):
    truth = write("t.csv", "patientId,x,y,width,height,Target\np1,,,,,0\n")
    r = evaluator.score("detection", truth, write("p.csv", "patientId,PredictionString\np1,0.5 1 1 2 2\n"))
    assert r["metrics"]["froc"] is None and "froc_curve" not in r
