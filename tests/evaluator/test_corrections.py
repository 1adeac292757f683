"""Issue 13's independent check: each case it found, reproduced (and the peers it names)."""

import numpy as np
import pytest
import torch

import evaluator
from evaluator import SubmissionInvalid, detection as D, segmentation as Sg, statistics as S


# ----------------------------------------------------------------------------- NSD tolerance
@pytest.mark.parametrize("method", ["edt", "cdist"])
def test_nsd_counts_a_distance_of_exactly_the_tolerance_on_every_path(method):
    # (12, 7) is 5 pixels of 0.6 mm from (7, 7): 3 mm, which 12·0.6 − 7·0.6 rounds above
    t = np.zeros((30, 30), bool)
    t[0, 0] = t[7, 7] = True
    p = np.zeros((30, 30), bool)
    p[0, 0] = p[12, 7] = True
    assert Sg.normalized_surface_dice(t, p, (0.6, 0.6), tolerance=3.0, method=method, device="cpu") == 1.0


@pytest.mark.parametrize("method", ["edt", "cdist"])
def test_nsd_is_not_lowered_by_float32_spacing(method):
    # NIfTI keeps spacing as float32: the 0.8 × 0.6 mm diagonal becomes 1.00000002 mm
    spacing = (float(np.float32(0.8)), float(np.float32(0.6)), 1.0)
    assert np.hypot(spacing[0], spacing[1]) > 1.0
    t = np.zeros((12, 12, 6), bool)
    t[3:8, 3:8, 2:4] = True
    p = np.roll(np.roll(t, 1, 0), 1, 1)
    at_tolerance = Sg.normalized_surface_dice(t, p, spacing, tolerance=1.0, method=method, device="cpu")
    just_above = Sg.normalized_surface_dice(t, p, spacing, tolerance=1.0001, method=method, device="cpu")
    assert at_tolerance == pytest.approx(just_above, abs=1e-12)


# ----------------------------------------------------------------------------- HD95 and MONAI
def test_hd95_agrees_with_monai_as_shipped_to_float32_precision(rng):
    monai = pytest.importorskip("monai.metrics")
    from scipy import ndimage

    for _ in range(10):
        a = ndimage.binary_dilation(rng.random((20, 24, 18)) > 0.97, iterations=2)
        b = ndimage.binary_dilation(rng.random((20, 24, 18)) > 0.97, iterations=2)
        spacing = tuple(float(v) for v in rng.choice([0.5, 0.7, 1.0, 1.3, 2.5], 3))
        want = float(monai.compute_hausdorff_distance(torch.as_tensor(b[None, None]), torch.as_tensor(a[None, None]),
                                                      percentile=95, spacing=spacing))
        assert Sg.hausdorff_distance_95(a, b, spacing, device="cpu") == pytest.approx(want, rel=1e-6)


# ----------------------------------------------------------------------------- rankings
def test_rank_then_aggregate_gives_a_missing_value_the_worst_observed_rank_plus_one():
    v = np.array([[0.9, 0.9], [0.8, np.nan], [0.7, np.nan], [0.6, 0.5]])
    ranks, mean_rank = S.rank_then_aggregate(v, higher_is_better=True)
    assert ranks.tolist() == [1, 2, 3, 3]  # challengeR; rank K for a missing value gave 1, 2, 4, 2
    assert mean_rank.tolist() == [1.0, 2.5, 3.0, 3.0]


def test_a_win_counts_when_p_equals_alpha(rng):
    base = rng.random(30)
    v = np.vstack([base + 0.1, base])
    p = S.significance_ranking(v, higher_is_better=True)["p_values"][0, 1]
    at = S.significance_ranking(v, higher_is_better=True, alpha=p)
    assert at["scores"].tolist() == [1.0, 0.0] and at["ranks"].tolist() == [1, 2]


@pytest.mark.parametrize("method", ["median", "rank_then_aggregate", "significance"])
def test_rank_stability_reapplies_the_ranking_method(rng, method):
    v = np.vstack([rng.random(25) + 0.04 * k for k in range(4)])
    out = S.rank_stability(v, higher_is_better=True, method=method, n_resamples=20, seed=5)
    W = S.resample_weights(25, 20, 5).numpy().astype(int)
    for r, w in enumerate(W):
        i = np.repeat(np.arange(25), w)
        assert out["bootstrap_ranks"][:, r].tolist() == S.rank_by(v[:, i], method, higher_is_better=True)[0].tolist()


# ----------------------------------------------------------------------------- FROC
def get_cpm(fps, sens, rates):
    """The LUNA16 organisers' getCPM (noduleCADEvaluationLUNA16.py), as published."""
    fixed = [0.0] * len(rates)
    for i, rate in enumerate(rates):
        prior = max(fps)
        for j, fp in enumerate(fps):
            if abs(fp - rate) < prior:
                fixed[i] = sens[j]
                prior = abs(fp - rate)
    return float(np.mean(fixed)), fixed


def test_froc_reading_rules_on_a_curve_with_a_vertical_step():
    fpi = torch.tensor([[0.0, 0.5, 0.5, 1.0]], dtype=torch.float64)
    sens = torch.tensor([[0.0, 0.2, 0.6, 0.8]], dtype=torch.float64)
    rates = [0.25, 0.5, 0.75, 4.0]
    # interpolated: at fp = 0.5 the highest sensitivity reached; beyond the end, the last one
    assert D.froc_read(fpi, sens, rates, "interpolated")[0].tolist() == pytest.approx([0.1, 0.6, 0.7, 0.8])
    # nearest: the first nearest point; 0 at 4 FP/image, which the curve (max 1) never comes near
    assert D.froc_read(fpi, sens, rates, "nearest")[0].tolist() == pytest.approx(
        get_cpm([0.0, 0.5, 0.5, 1.0], [0.0, 0.2, 0.6, 0.8], rates)[1])


def random_detection(rng, n=40):
    truth = [rng.random((rng.integers(0, 3), 4)) * 50 for _ in range(n)]
    preds = [np.c_[np.round(rng.random(k), 2), rng.random((k, 4)) * 50] for k in rng.integers(0, 6, n)]
    for t, p in zip(truth, preds):
        if len(t) and len(p):
            p[0, 1:] = t[0]
    return truth, preds


def test_froc_interpolated_is_monai_and_nearest_is_luna16(rng):
    monai = pytest.importorskip("monai.metrics")
    truth, preds = random_detection(rng)
    fpi, sens = D.froc_curve(truth, preds)
    assert len(set(fpi.tolist())) < len(fpi)  # vertical steps, where np.interp's answer is an accident
    rates = [r + 0.003 for r in D.FROC_FP_RATES]  # between curve points, np.interp is well defined
    want = monai.compute_froc_score(fpi[::-1], sens[::-1], rates)
    assert D.froc_score(truth, preds, fp_rates=rates)[0] == pytest.approx(float(want), abs=1e-12)
    assert D.froc_score(truth, preds, rule="nearest")[0] == pytest.approx(
        get_cpm(fpi.tolist(), sens.tolist(), D.FROC_FP_RATES)[0], abs=1e-12)


def test_the_froc_rule_is_a_detection_option(write):
    truth = write("t.csv", "patientId,x,y,width,height,Target\na,0,0,10,10,1\nb,,,,,0\n")
    pred = write("p.csv", "patientId,PredictionString\na,0.9 0 0 10 10\nb,0.5 0 0 5 5\n")
    near = evaluator.score("detection", truth, pred, {"froc_rule": "nearest"}, n_resamples=10)
    inter = evaluator.score("detection", truth, pred, n_resamples=10)
    # curve (0, 0), (0, 1), (0.5, 1): every rate reads 1 when interpolated; nearest takes the first
    # of equally near points, (0, 0) at 1/8 and 1/4, and scores 0 from 1 FP/image on
    assert inter["metrics"]["froc"] == 1.0
    assert near["metrics"]["froc_sensitivity"] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert near["metrics"]["froc_sensitivity"] == get_cpm([0, 0, 0.5], [0, 1, 1], D.FROC_FP_RATES)[1]
    with pytest.raises(ValueError, match="froc_rule must be one of interpolated, nearest"):
        evaluator.score("detection", truth, pred, {"froc_rule": "luna"})


# ----------------------------------------------------------------------------- extra rows
@pytest.mark.parametrize("task, truth, extra, message", [
    ("classification", "case_id,label\na,1\nb,0\n", "case_id,score\na,0.1\nb,0.2\nzz,0.3\n",
     "row 4, column 'case_id', case 'zz': unknown case id"),
    ("detection", "patientId,x,y,width,height,Target\na,,,,,0\nb,1,1,2,2,1\n",
     "patientId,PredictionString\na,\nb,\na,\n", "row 4, column 'patientId', case 'a': duplicate patientId"),
    ("detection", "patientId,x,y,width,height,Target\na,,,,,0\nb,1,1,2,2,1\n",
     "patientId,PredictionString\na,\nb,\nq,\n", "row 4, column 'patientId', case 'q': unknown patientId"),
    ("regression", "case_id,value\na,1\nb,2\n", "case_id,value\na,1\nb,2\nb,3\n",
     "row 4, column 'case_id', case 'b': duplicate case id"),
])
def test_an_extra_row_is_named_for_what_it_is(write, task, truth, extra, message):
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate(task, write("p.csv", extra), truth=write("t.csv", truth))
    assert len(exc.value.problems) == 1 and message in str(exc.value.problems[0])
    assert "more rows" not in str(exc.value)
