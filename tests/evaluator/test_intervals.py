"""evaluator.score's intervals: one for every scalar metric, each against a loop written here."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

import evaluator
from evaluator import detection as D, statistics as S

from .test_mask_archives import make_zip, png_bytes


def csv(rows, header):
    return header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def loop_interval(reps):
    return tuple(np.quantile(np.asarray(reps)[np.isfinite(reps)], [0.025, 0.975]))


@pytest.fixture
def binary(write, rng):
    n = 80
    y = rng.integers(0, 2, n)
    s = np.clip(rng.random(n) * 0.8 + 0.25 * y, 0, 1).round(2)
    truth = write("t.csv", csv(zip([f"c{i}" for i in range(n)], y), "case_id,label"))
    pred = write("p.csv", csv(zip([f"c{i}" for i in range(n - 3)], s[:-3]), "case_id,score"))  # 3 missing
    s = s.copy()
    s[-3:] = np.where(y[-3:] == 1, -1.0, 2.0)  # the stand-ins of missing cases
    return truth, pred, y, s


def test_every_scalar_classification_metric_has_an_interval_auc_by_delong(binary):
    truth, pred, y, s = binary
    r = evaluator.score("classification", truth, pred, {"target_sensitivity": 0.9}, n_resamples=300, seed=4)
    json.dumps(r, allow_nan=False)
    scalar = {k for k, v in r["metrics"].items() if not isinstance(v, list)}
    assert set(r["intervals"]) == scalar
    auc = r["intervals"]["auc"]
    assert auc["method"] == "delong" and [auc["low"], auc["high"]] == r["metrics"]["auc_ci"]
    assert auc["level"] == 0.95 and auc["degenerate"] is False
    # every other metric: the percentile interval of the metric on cases drawn within each class
    W = S.resample_weights(len(y), 300, 4, strata=[str(v) for v in y]).numpy().astype(int)
    reps = {"average_precision": [], "sensitivity": [], "specificity": []}
    for w in W:
        i = np.repeat(np.arange(len(y)), w)
        reps["average_precision"].append(skm.average_precision_score(y[i], s[i]))
        reps["sensitivity"].append(skm.recall_score(y[i], s[i] >= 0.5))
        reps["specificity"].append(skm.recall_score(1 - y[i], s[i] < 0.5))
    for k, v in reps.items():
        got = r["intervals"][k]
        assert got["method"] == "bootstrap-stratified"
        assert (got["low"], got["high"]) == pytest.approx(loop_interval(v), abs=1e-12), k
    # the log loss is a per-case mean: a plain bootstrap of the cases
    W = S.resample_weights(len(y), 300, 4).numpy()
    loss = np.array([row["log_loss"] for row in r["per_case"]])
    got = r["intervals"]["log_loss"]
    assert got["method"] == "bootstrap"
    assert (got["low"], got["high"]) == pytest.approx(loop_interval(W @ loss / W.sum(1)), abs=1e-12)


def test_per_case_rows_carry_label_and_score_for_paired_tests(binary):
    truth, pred, y, s = binary
    r = evaluator.score("classification", truth, pred, n_resamples=10)
    assert [row["label"] for row in r["per_case"]] == y.tolist()
    assert [row["score"] for row in r["per_case"]] == pytest.approx(s.tolist())


def test_multi_label_rows_and_intervals(write, rng):
    labels = ["any", "subdural"]
    Y = rng.integers(0, 2, (30, 2))
    P = rng.random((30, 2)).round(2)
    ids = [f"i{k}" for k in range(30)]
    truth = write("t.csv", csv([[c, *row] for c, row in zip(ids, Y)], "case_id,any,subdural"))
    pred = write("p.csv", csv([[c, *row] for c, row in zip(ids, P)], "case_id,any,subdural"))
    r = evaluator.score("classification", truth, pred, n_resamples=50)
    assert r["per_case"][0]["label/subdural"] == Y[0, 1] and r["per_case"][0]["score/any"] == P[0, 0]
    assert r["intervals"]["auc/any"]["method"] == "delong"
    assert r["intervals"]["auc"]["method"] == "bootstrap-stratified"  # the macro mean: no DeLong
    assert r["intervals"]["log_loss/any"]["method"] == "bootstrap-stratified"
    assert set(r["intervals"]) == {k for k, v in r["metrics"].items() if not isinstance(v, list)}


def test_perfect_separation_and_constant_scores_are_degenerate_not_certain(write):
    truth = write("t.csv", "case_id,label\na,1\nb,0\nc,1\nd,0\n")
    perfect = evaluator.score("classification", truth, write("p.csv", "case_id,score\na,0.9\nb,0.1\nc,0.8\nd,0.2\n"),
                              n_resamples=50)
    assert perfect["intervals"]["auc"] == {"low": 1.0, "high": 1.0, "level": 0.95, "method": "delong",
                                           "degenerate": True}
    flat = evaluator.score("classification", truth, write("q.csv", "case_id,score\na,0.5\nb,0.5\nc,0.5\nd,0.5\n"),
                           n_resamples=50)
    assert flat["intervals"]["sensitivity"]["degenerate"] is True
    assert flat["intervals"]["log_loss"]["degenerate"] is True


def test_delong_falls_back_to_the_stratified_bootstrap_with_one_positive(write):
    truth = write("t.csv", "case_id,label\na,1\nb,0\nc,0\nd,0\n")
    r = evaluator.score("classification", truth, write("p.csv", "case_id,score\na,0.6\nb,0.1\nc,0.7\nd,0.2\n"),
                        n_resamples=100)
    assert r["intervals"]["auc"]["method"] == "bootstrap-stratified"
    assert r["intervals"]["auc"]["low"] is not None


def test_one_class_gives_no_interval(write):
    truth = write("t.csv", "case_id,label\na,1\nb,1\n")
    r = evaluator.score("classification", truth, write("p.csv", "case_id,score\na,0.6\nb,0.1\n"), n_resamples=20)
    assert r["metrics"]["auc"] is None
    assert r["intervals"]["auc"]["low"] is None and r["intervals"]["auc"]["degenerate"] is False


def test_regression_intervals_and_the_patient_bootstrap(write, rng):
    n = 60
    y = rng.normal(100, 20, n).round(1)
    p = (y + rng.normal(0, 10, n)).round(1)
    ids = [f"c{i}" for i in range(n)]
    truth = write("t.csv", csv(zip(ids, y), "case_id,value"))
    pred = write("p.csv", csv(zip(ids, p), "case_id,value"))
    r = evaluator.score("regression", truth, pred, n_resamples=200, seed=2)
    err = np.abs(y - p)
    assert [row["mae"] for row in r["per_case"]] == pytest.approx(err.tolist())
    W = S.resample_weights(n, 200, 2).numpy()
    assert (r["intervals"]["mae"]["low"], r["intervals"]["mae"]["high"]) == pytest.approx(
        loop_interval(W @ err / W.sum(1)), abs=1e-9)
    assert (r["intervals"]["rmse"]["low"], r["intervals"]["rmse"]["high"]) == pytest.approx(
        loop_interval(np.sqrt(W @ err ** 2 / W.sum(1))), abs=1e-9)
    # patients: three cases each, drawn whole
    groups = {c: f"p{i // 3}" for i, c in enumerate(ids)}
    g = evaluator.score("regression", truth, pred, groups=groups, n_resamples=200, seed=2)
    idx = S.bootstrap_indices(n // 3, 200, 2).numpy()
    names, patient = np.unique([groups[c] for c in ids], return_inverse=True)  # patients in sorted order
    reps = [np.concatenate([err[patient == k] for k in row]).mean() for row in idx]
    assert g["intervals"]["mae"]["method"] == "bootstrap-patient"
    assert (g["intervals"]["mae"]["low"], g["intervals"]["mae"]["high"]) == pytest.approx(loop_interval(reps), abs=1e-9)
    with pytest.raises(ValueError, match="groups gives no patient for 1 of the 60"):
        evaluator.score("regression", truth, pred, groups={c: "x" for c in ids[1:]}, n_resamples=10)


def test_detection_intervals_of_map_and_froc(write, rng):
    ids = [f"img{i}" for i in range(25)]
    truth_rows, pred_rows, boxes, preds = [], [], [], []
    for pid in ids:
        k = int(rng.integers(0, 3))
        b = (rng.random((k, 4)) * 40).round(1)
        boxes.append(b)
        truth_rows += [[pid, *row, 1] for row in b] or [[pid, "", "", "", "", 0]]
        m = int(rng.integers(0, 4))
        q = np.c_[rng.random(m).round(2), (rng.random((m, 4)) * 40).round(1)]
        if m and k:
            q[0, 1:] = b[0]  # one good hit
        preds.append(q)
        pred_rows.append([pid, " ".join(f"{v:g}" for v in q.ravel())])
    truth = write("t.csv", csv(truth_rows, "patientId,x,y,width,height,Target"))
    pred = write("p.csv", csv(pred_rows, "patientId,PredictionString"))
    r = evaluator.score("detection", truth, pred, n_resamples=100, seed=1)
    assert set(r["intervals"]) == {"map", "froc"}
    W = S.resample_weights(len(ids), 100, 1).numpy().astype(int)
    froc_reps, map_reps = [], []
    for w in W:
        i = np.repeat(np.arange(len(ids)), w)
        froc_reps.append(D.froc_score([boxes[k] for k in i], [preds[k] for k in i])[0] if
                         sum(len(boxes[k]) for k in i) else np.nan)
        per = np.array([row["map"] if row["map"] is not None else np.nan for row in r["per_case"]])[i]
        map_reps.append(np.nanmean(per))
    assert (r["intervals"]["froc"]["low"], r["intervals"]["froc"]["high"]) == pytest.approx(loop_interval(froc_reps))
    assert (r["intervals"]["map"]["low"], r["intervals"]["map"]["high"]) == pytest.approx(loop_interval(map_reps))


def test_segmentation_intervals_are_bootstraps_of_the_per_case_means(tmp_path, rng):
    t, p = {}, {}
    for c in "abcdef":
        m = np.zeros((12, 12), np.uint8)
        m[2:8, 2:8] = 1
        t[c] = m
        q = np.roll(m, int(rng.integers(0, 3)), axis=0)
        p[c] = q
    truth = make_zip(tmp_path / "t.zip", {f"{c}.png": png_bytes(m) for c, m in t.items()})
    pred = make_zip(tmp_path / "p.zip", {f"{c}.png": png_bytes(m) for c, m in p.items()})
    r = evaluator.score("segmentation", truth, pred, n_resamples=100)
    assert set(r["intervals"]) == set(r["metrics"])
    W = S.resample_weights(6, 100, 0).numpy()
    dice = np.array([row["dice"] for row in r["per_case"]])
    assert (r["intervals"]["dice"]["low"], r["intervals"]["dice"]["high"]) == pytest.approx(
        loop_interval(W @ dice / W.sum(1)))
    same = evaluator.score("segmentation", truth, truth, n_resamples=100)
    assert same["intervals"]["dice"]["degenerate"] is True and same["intervals"]["dice"]["low"] == 1.0


def test_bad_bootstrap_settings_are_value_errors(binary):
    truth, pred, _, _ = binary
    with pytest.raises(ValueError, match="n_resamples"):
        evaluator.score("classification", truth, pred, n_resamples=0)
